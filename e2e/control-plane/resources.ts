// The resource types the stand-in serves, as data: what discovery lists, which field selectors
// each supports, how each is defaulted, prepared on create, validated and printed as a table.
// Pods, namespaces and events carry the API server's behaviour the project relies on; the other
// types (deployments, replicasets, nodes, MutatingWebhookConfigurations) are stored as generic
// objects. `startControlPlane({ resources })` adds types or replaces these by group/resource.
import type { FieldError } from './api-error.js';
import {
  defaultTable,
  deploymentTable,
  eventTable,
  namespaceTable,
  nodeTable,
  podTable,
  type TableConverter,
} from './table.js';
import type { Container, KubeEvent, KubeObject, Pod, PodSpec } from './types.js';
import { validatePodSpec, validatePodSpecUpdate } from './validation.js';

/** Group (`''` for the core group), version and plural resource name. */
export interface ResourceRef {
  group: string;
  version: string;
  resource: string;
}

export interface ResourceType extends ResourceRef {
  kind: string;
  /** Lower-case singular name, as discovery lists it. */
  singular: string;
  namespaced: boolean;
  shortNames?: string[];
  categories?: string[];
  /**
   * Subresources served: `status` (writes only .status), `binding` (pods: sets spec.nodeName),
   * `scale` (an autoscaling/v1 Scale over spec.replicas, for `kubectl scale`).
   */
  subresources: readonly ('status' | 'binding' | 'scale')[];
  /** Whether metadata.generation is kept (1 on create, +1 when anything but metadata/status changes). */
  generation: boolean;
  /** Names are DNS labels (namespaces) instead of DNS subdomains. */
  dnsLabelNames?: boolean;
  /** Field selector fields beyond metadata.name and metadata.namespace. */
  fields?: Record<string, (obj: KubeObject) => string>;
  /** Defaults applied to every object written (as the API server's decoding does). */
  defaults?: (obj: KubeObject) => void;
  /** Run on create after admission: reset status, set server-owned fields. */
  prepareForCreate?: (obj: KubeObject) => void;
  validate?: (obj: KubeObject) => FieldError[];
  validateUpdate?: (next: KubeObject, prev: KubeObject) => FieldError[];
  table?: TableConverter;
}

export function apiVersionOf(r: ResourceRef): string {
  return r.group === '' ? r.version : `${r.group}/${r.version}`;
}

export function sameResource(a: ResourceRef, b: ResourceRef): boolean {
  return a.group === b.group && a.version === b.version && a.resource === b.resource;
}

function defaultContainer(c: Container): void {
  if (typeof c.image === 'string' && c.imagePullPolicy === undefined) {
    const ref = c.image.split('@')[0] ?? '';
    const lastPart = ref.split('/').pop() ?? '';
    const tag = lastPart.includes(':') ? lastPart.slice(lastPart.indexOf(':') + 1) : '';
    const digest = c.image.includes('@');
    c.imagePullPolicy = !digest && (tag === '' || tag === 'latest') ? 'Always' : 'IfNotPresent';
  }
  if (Array.isArray(c.ports)) {
    for (const p of c.ports as { protocol?: string }[]) if (typeof p === 'object') p.protocol ??= 'TCP';
  }
  c.terminationMessagePath ??= '/dev/termination-log';
  c.terminationMessagePolicy ??= 'File';
}

/** The API server's defaults for a pod spec that the project's components read. */
export function defaultPodSpec(spec: PodSpec | undefined): void {
  if (spec === undefined || typeof spec !== 'object') return;
  spec.restartPolicy ??= 'Always';
  spec.dnsPolicy ??= 'ClusterFirst';
  spec.schedulerName ??= 'default-scheduler';
  spec.terminationGracePeriodSeconds ??= 30;
  spec.enableServiceLinks ??= true;
  spec.securityContext ??= {};
  for (const list of [spec.containers, spec.initContainers]) {
    if (!Array.isArray(list)) continue;
    for (const c of list) if (typeof c === 'object') defaultContainer(c);
  }
}

function podQosClass(pod: Pod): string {
  const all = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])];
  const hasResources = all.some((c) => {
    const r = c.resources as { requests?: object; limits?: object } | undefined;
    return Object.keys(r?.requests ?? {}).length > 0 || Object.keys(r?.limits ?? {}).length > 0;
  });
  return hasResources ? 'Burstable' : 'BestEffort';
}

const str = (v: unknown): string =>
  typeof v === 'string' ? v : v === undefined || v === null ? '' : JSON.stringify(v);

export const PODS: ResourceType = {
  group: '',
  version: 'v1',
  resource: 'pods',
  kind: 'Pod',
  singular: 'pod',
  namespaced: true,
  shortNames: ['po'],
  categories: ['all'],
  subresources: ['status', 'binding'],
  generation: true,
  fields: {
    'spec.nodeName': (o) => str((o as Pod).spec?.nodeName),
    'spec.restartPolicy': (o) => str((o as Pod).spec?.restartPolicy),
    'spec.schedulerName': (o) => str((o as Pod).spec?.schedulerName),
    'spec.serviceAccountName': (o) => str((o as Pod).spec?.serviceAccountName),
    'spec.hostNetwork': (o) => String((o as Pod).spec?.hostNetwork === true),
    'status.phase': (o) => str((o as Pod).status?.phase),
    'status.podIP': (o) => str((o as Pod).status?.podIP),
    'status.nominatedNodeName': (o) => str((o as Pod).status?.nominatedNodeName),
  },
  defaults: (o) => {
    defaultPodSpec((o as Pod).spec);
  },
  prepareForCreate: (o) => {
    const pod = o as Pod;
    pod.status = { phase: 'Pending', qosClass: podQosClass(pod) };
  },
  validate: (o) => validatePodSpec(o),
  validateUpdate: (next, prev) => validatePodSpecUpdate(next, prev),
  table: podTable,
};

export const EVENTS: ResourceType = {
  group: '',
  version: 'v1',
  resource: 'events',
  kind: 'Event',
  singular: 'event',
  namespaced: true,
  shortNames: ['ev'],
  subresources: [],
  generation: false,
  fields: {
    'involvedObject.kind': (o) => str((o as KubeEvent).involvedObject.kind),
    'involvedObject.namespace': (o) => str((o as KubeEvent).involvedObject.namespace),
    'involvedObject.name': (o) => str((o as KubeEvent).involvedObject.name),
    'involvedObject.uid': (o) => str((o as KubeEvent).involvedObject.uid),
    'involvedObject.apiVersion': (o) => str((o as KubeEvent).involvedObject.apiVersion),
    'involvedObject.resourceVersion': (o) => str((o as KubeEvent).involvedObject.resourceVersion),
    'involvedObject.fieldPath': (o) => str((o as KubeEvent).involvedObject.fieldPath),
    reason: (o) => str((o as KubeEvent).reason),
    reportingComponent: (o) => str((o as KubeEvent).reportingComponent),
    source: (o) => str((o as KubeEvent).source?.component),
    type: (o) => str((o as KubeEvent).type),
  },
  defaults: (o) => {
    const e = o as KubeEvent;
    if (typeof e.involvedObject !== 'object') e.involvedObject = {};
  },
  validate: (o) => {
    const e = o as KubeEvent;
    const ns = e.metadata?.namespace ?? '';
    const inv = e.involvedObject.namespace;
    if (inv !== undefined && inv !== '' && inv !== ns) {
      return [
        {
          type: 'Invalid',
          field: 'involvedObject.namespace',
          value: inv,
          detail: 'does not match event.namespace',
        },
      ];
    }
    return [];
  },
  table: eventTable,
};

export const NAMESPACES: ResourceType = {
  group: '',
  version: 'v1',
  resource: 'namespaces',
  kind: 'Namespace',
  singular: 'namespace',
  namespaced: false,
  shortNames: ['ns'],
  subresources: ['status'],
  generation: false,
  dnsLabelNames: true,
  fields: { 'status.phase': (o) => str((o.status as { phase?: string } | undefined)?.phase) },
  defaults: (o) => {
    const name = o.metadata?.name;
    // The API server labels every namespace with its name (for namespaceSelectors).
    if (name !== undefined && name !== '' && o.metadata !== undefined) {
      o.metadata.labels = { ...o.metadata.labels, 'kubernetes.io/metadata.name': name };
    }
  },
  prepareForCreate: (o) => {
    o.spec = { finalizers: ['kubernetes'] };
    o.status = { phase: 'Active' };
  },
  table: namespaceTable,
};

export const NODES: ResourceType = {
  group: '',
  version: 'v1',
  resource: 'nodes',
  kind: 'Node',
  singular: 'node',
  namespaced: false,
  shortNames: ['no'],
  subresources: ['status'],
  generation: false,
  fields: {
    'spec.unschedulable': (o) =>
      String((o.spec as { unschedulable?: boolean } | undefined)?.unschedulable === true),
  },
  table: nodeTable,
};

interface Workload extends KubeObject {
  spec?: { replicas?: number; template?: { spec?: PodSpec }; [k: string]: unknown };
}

function defaultWorkload(o: KubeObject): void {
  const w = o as Workload;
  if (typeof w.spec !== 'object') return;
  w.spec.replicas ??= 1;
  w.spec.revisionHistoryLimit ??= 10;
  defaultPodSpec(w.spec.template?.spec);
}

export const DEPLOYMENTS: ResourceType = {
  group: 'apps',
  version: 'v1',
  resource: 'deployments',
  kind: 'Deployment',
  singular: 'deployment',
  namespaced: true,
  shortNames: ['deploy'],
  categories: ['all'],
  subresources: ['status', 'scale'],
  generation: true,
  defaults: (o) => {
    defaultWorkload(o);
    const spec = (o as Workload).spec;
    if (spec !== undefined) {
      spec.progressDeadlineSeconds ??= 600;
      const strategy = (spec.strategy ??= {}) as { type?: string; rollingUpdate?: object };
      strategy.type ??= 'RollingUpdate';
      if (strategy.type === 'RollingUpdate')
        strategy.rollingUpdate ??= { maxUnavailable: '25%', maxSurge: '25%' };
    }
  },
  table: deploymentTable,
};

export const REPLICASETS: ResourceType = {
  group: 'apps',
  version: 'v1',
  resource: 'replicasets',
  kind: 'ReplicaSet',
  singular: 'replicaset',
  namespaced: true,
  shortNames: ['rs'],
  categories: ['all'],
  subresources: ['status', 'scale'],
  generation: true,
  defaults: defaultWorkload,
};

export const MUTATING_WEBHOOK_CONFIGURATIONS: ResourceType = {
  group: 'admissionregistration.k8s.io',
  version: 'v1',
  resource: 'mutatingwebhookconfigurations',
  kind: 'MutatingWebhookConfiguration',
  singular: 'mutatingwebhookconfiguration',
  namespaced: false,
  subresources: [],
  generation: true,
  table: defaultTable,
};

/** Every type served unless replaced through `startControlPlane({ resources })`. */
export const BUILTIN_RESOURCES: readonly ResourceType[] = [
  PODS,
  EVENTS,
  NAMESPACES,
  NODES,
  DEPLOYMENTS,
  REPLICASETS,
  MUTATING_WEBHOOK_CONFIGURATIONS,
];

/** Field selector value of `field` on `obj`, or null when the type does not support the field. */
export function fieldValue(type: ResourceType, obj: KubeObject, field: string): string | null {
  if (field === 'metadata.name') return obj.metadata?.name ?? '';
  if (field === 'metadata.namespace') return type.namespaced ? (obj.metadata?.namespace ?? '') : '';
  const get = type.fields?.[field];
  return get === undefined ? null : get(obj);
}
