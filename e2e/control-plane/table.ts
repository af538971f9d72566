// The meta.k8s.io/v1 Table the API server renders when a client asks for `as=Table` (kubectl
// get does): the server computes every cell, kubectl only prints them. Columns of priority 1
// are shown by kubectl with `-o wide` only. The pod columns and the STATUS cell follow the API
// server's pod printer (init-container and waiting/terminated reasons, Terminating, ...).
import type { ContainerStatus, KubeEvent, KubeObject, Namespace, Pod } from './types.js';

export interface ColumnDefinition {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  format: string;
  description: string;
  priority: number;
}

export type Cell = string | number | boolean;

/** Column definitions plus one row of cells per object, in the same order. */
export interface TableParts {
  columns: ColumnDefinition[];
  rows: Cell[][];
}

export type TableConverter = (objects: KubeObject[], now: Date) => TableParts;

function col(name: string, description: string, priority = 0, format = ''): ColumnDefinition {
  return { name, type: 'string', format, description, priority };
}

const NAME = col('Name', 'Name must be unique within a namespace.', 0, 'name');
const AGE = col(
  'Age',
  'CreationTimestamp is a timestamp representing the server time when this object was created.',
);

/** A duration the way kubectl prints ages: 45s, 3m20s, 15m, 5h3m, 2d4h, 400d, 3y20d. */
export function humanDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < -1) return '<invalid>';
  if (s < 0) return '0s';
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 8) return m % 60 === 0 ? `${h}h` : `${h}h${m % 60}m`;
  if (h < 48) return `${h}h`;
  if (h < 24 * 8) return h % 24 === 0 ? `${Math.floor(h / 24)}d` : `${Math.floor(h / 24)}d${h % 24}h`;
  if (h < 24 * 365 * 2) return `${Math.floor(h / 24)}d`;
  const d = Math.floor(h / 24);
  if (h < 24 * 365 * 8)
    return d % 365 === 0 ? `${Math.floor(d / 365)}y` : `${Math.floor(d / 365)}y${d % 365}d`;
  return `${Math.floor(d / 365)}y`;
}

/** Age of a timestamp, `<unknown>` when there is none. */
export function age(timestamp: string | undefined | null, now: Date): string {
  if (timestamp === undefined || timestamp === null || timestamp === '') return '<unknown>';
  const t = Date.parse(timestamp);
  return Number.isNaN(t) ? '<unknown>' : humanDuration(now.getTime() - t);
}

function isRestartableInit(pod: Pod, name: string): boolean {
  return (pod.spec?.initContainers ?? []).some((c) => c.name === name && c.restartPolicy === 'Always');
}

function lastTerminated(s: ContainerStatus): number {
  const t = s.lastState?.terminated?.finishedAt;
  return t === undefined ? 0 : Date.parse(t) || 0;
}

/** One pod's cells: Name, Ready, Status, Restarts, Age, IP, Node, Nominated Node, Readiness Gates. */
export function podRow(pod: Pod, now: Date): Cell[] {
  const spec = pod.spec ?? { containers: [] };
  const status = pod.status ?? {};
  const conditions = status.conditions ?? [];
  let total = spec.containers.length;
  let ready = 0;
  let restarts = 0;
  let lastRestart = 0;
  let reason = status.reason ?? status.phase ?? '';
  if (conditions.some((c) => c.type === 'PodScheduled' && c.reason === 'SchedulingGated'))
    reason = 'SchedulingGated';

  const inits = spec.initContainers ?? [];
  total += inits.filter((c) => c.restartPolicy === 'Always').length;
  let initializing = false;
  let sidecarRestarts = 0;
  let sidecarLastRestart = 0;
  const initStatuses = status.initContainerStatuses ?? [];
  for (const [i, c] of initStatuses.entries()) {
    restarts += c.restartCount ?? 0;
    lastRestart = Math.max(lastRestart, lastTerminated(c));
    const sidecar = isRestartableInit(pod, c.name);
    if (sidecar) {
      sidecarRestarts += c.restartCount ?? 0;
      sidecarLastRestart = Math.max(sidecarLastRestart, lastTerminated(c));
    }
    const term = c.state?.terminated;
    const waiting = c.state?.waiting;
    if (term !== undefined && (term.exitCode ?? 0) === 0) continue;
    if (sidecar && c.started === true) {
      if (c.ready === true) ready++;
      continue;
    }
    if (term !== undefined) {
      reason =
        term.reason !== undefined && term.reason !== ''
          ? `Init:${term.reason}`
          : (term.signal ?? 0) !== 0
            ? `Init:Signal:${term.signal ?? 0}`
            : `Init:ExitCode:${term.exitCode ?? 0}`;
    } else if (
      waiting?.reason !== undefined &&
      waiting.reason !== '' &&
      waiting.reason !== 'PodInitializing'
    ) {
      reason = `Init:${waiting.reason}`;
    } else {
      reason = `Init:${i}/${inits.length}`;
    }
    initializing = true;
    break;
  }

  const initialized = conditions.some((c) => c.type === 'Initialized' && c.status === 'True');
  if (!initializing || initialized) {
    restarts = sidecarRestarts;
    lastRestart = sidecarLastRestart;
    let hasRunning = false;
    const statuses = status.containerStatuses ?? [];
    for (let i = statuses.length - 1; i >= 0; i--) {
      const c = statuses[i];
      if (c === undefined) continue;
      restarts += c.restartCount ?? 0;
      lastRestart = Math.max(lastRestart, lastTerminated(c));
      const waiting = c.state?.waiting;
      const term = c.state?.terminated;
      if (waiting?.reason !== undefined && waiting.reason !== '') reason = waiting.reason;
      else if (term?.reason !== undefined && term.reason !== '') reason = term.reason;
      else if (term !== undefined) {
        reason = (term.signal ?? 0) !== 0 ? `Signal:${term.signal ?? 0}` : `ExitCode:${term.exitCode ?? 0}`;
      } else if (c.ready === true && c.state?.running !== undefined) {
        hasRunning = true;
        ready++;
      }
    }
    if (reason === 'Completed' && hasRunning) {
      reason = conditions.some((c) => c.type === 'Ready' && c.status === 'True') ? 'Running' : 'NotReady';
    }
  }

  const phase = status.phase ?? '';
  const deleting = pod.metadata?.deletionTimestamp !== undefined;
  if (deleting && status.reason === 'NodeLost') reason = 'Unknown';
  else if (deleting && phase !== 'Succeeded' && phase !== 'Failed') reason = 'Terminating';

  const restartCell =
    restarts !== 0 && lastRestart > 0
      ? `${restarts} (${humanDuration(now.getTime() - lastRestart)} ago)`
      : String(restarts);

  const gates = spec.readinessGates ?? [];
  let gateCell = '<none>';
  if (gates.length > 0) {
    const passed = gates.filter(
      (g) => conditions.find((c) => c.type === g.conditionType)?.status === 'True',
    ).length;
    gateCell = `${passed}/${gates.length}`;
  }
  const ip = status.podIPs?.[0]?.ip ?? status.podIP ?? '';
  return [
    pod.metadata?.name ?? '',
    `${ready}/${total}`,
    reason,
    restartCell,
    age(pod.metadata?.creationTimestamp, now),
    ip === '' ? '<none>' : ip,
    spec.nodeName !== undefined && spec.nodeName !== '' ? spec.nodeName : '<none>',
    status.nominatedNodeName !== undefined && status.nominatedNodeName !== ''
      ? status.nominatedNodeName
      : '<none>',
    gateCell,
  ];
}

export const podTable: TableConverter = (objects, now) => ({
  columns: [
    NAME,
    col('Ready', 'The aggregate readiness state of this pod for accepting traffic.'),
    col('Status', 'The aggregate status of the containers in this pod.'),
    col(
      'Restarts',
      'The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.',
    ),
    AGE,
    col(
      'IP',
      'IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.',
      1,
    ),
    col('Node', 'NodeName is a request to schedule this pod onto a specific node.', 1),
    col('Nominated Node', 'nominatedNodeName is set only when this pod preempts other pods on the node.', 1),
    col('Readiness Gates', 'If specified, all readiness gates will be evaluated for pod readiness.', 1),
  ],
  rows: objects.map((o) => podRow(o as Pod, now)),
});

export const namespaceTable: TableConverter = (objects, now) => ({
  columns: [NAME, col('Status', 'The status of the namespace'), AGE],
  rows: objects.map((o) => [
    o.metadata?.name ?? '',
    (o as Namespace).status?.phase ?? '',
    age(o.metadata?.creationTimestamp, now),
  ]),
});

export const eventTable: TableConverter = (objects, now) => ({
  columns: [
    col('Last Seen', 'Time when last event from this object was seen.'),
    col('Type', 'Type of this event.'),
    col('Reason', 'Reason why this event was generated.'),
    col('Object', 'The object that this event is about.'),
    col('Message', 'A human-readable description of the status of this operation.'),
  ],
  rows: objects.map((o) => {
    const e = o as KubeEvent;
    const kind = (e.involvedObject.kind ?? '').toLowerCase();
    return [
      age(e.lastTimestamp ?? e.eventTime ?? e.metadata?.creationTimestamp, now),
      e.type ?? '',
      e.reason ?? '',
      `${kind}/${e.involvedObject.name ?? ''}`,
      e.message ?? '',
    ];
  }),
});

interface DeploymentLike extends KubeObject {
  spec?: {
    replicas?: number;
    selector?: { matchLabels?: Record<string, string> };
    template?: { spec?: { containers?: { name: string; image?: string }[] } };
  };
  status?: { readyReplicas?: number; updatedReplicas?: number; availableReplicas?: number };
}

export const deploymentTable: TableConverter = (objects, now) => ({
  columns: [
    NAME,
    col('Ready', 'Number of the pod with ready state'),
    col(
      'Up-to-date',
      'Total number of non-terminated pods targeted by this deployment that have the desired template spec.',
    ),
    col(
      'Available',
      'Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.',
    ),
    AGE,
    col('Containers', 'Names of each container in the template.', 1),
    col('Images', 'Images referenced by each container in the template.', 1),
    col(
      'Selector',
      'Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.',
      1,
    ),
  ],
  rows: objects.map((o) => {
    const d = o as DeploymentLike;
    const containers = d.spec?.template?.spec?.containers ?? [];
    const selector = Object.entries(d.spec?.selector?.matchLabels ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    return [
      d.metadata?.name ?? '',
      `${d.status?.readyReplicas ?? 0}/${d.spec?.replicas ?? 1}`,
      d.status?.updatedReplicas ?? 0,
      d.status?.availableReplicas ?? 0,
      age(d.metadata?.creationTimestamp, now),
      containers.map((c) => c.name).join(','),
      containers.map((c) => c.image ?? '').join(','),
      selector === '' ? '<none>' : selector,
    ];
  }),
});

export const nodeTable: TableConverter = (objects, now) => ({
  columns: [
    NAME,
    col('Status', 'The status of the node'),
    col('Roles', 'The roles of the node'),
    AGE,
    col('Version', 'Kubelet Version reported by the node.'),
  ],
  rows: objects.map((o) => {
    const status = o.status as
      { conditions?: { type: string; status: string }[]; nodeInfo?: { kubeletVersion?: string } } | undefined;
    const readyCond = status?.conditions?.find((c) => c.type === 'Ready');
    const ready = readyCond === undefined ? 'Unknown' : readyCond.status === 'True' ? 'Ready' : 'NotReady';
    return [
      o.metadata?.name ?? '',
      ready,
      '<none>',
      age(o.metadata?.creationTimestamp, now),
      status?.nodeInfo?.kubeletVersion ?? '',
    ];
  }),
});

/** The API server's table for types without a printer: Name and Created At. */
export const defaultTable: TableConverter = (objects) => ({
  columns: [
    NAME,
    {
      name: 'Created At',
      type: 'date',
      format: '',
      description:
        'CreationTimestamp is a timestamp representing the server time when this object was created.',
      priority: 0,
    },
  ],
  rows: objects.map((o) => [o.metadata?.name ?? '', o.metadata?.creationTimestamp ?? '']),
});
