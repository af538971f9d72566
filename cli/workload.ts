// Which pods make up a workload's current rollout, decided from the workload objects alone (pure):
// the plugin reads the objects, this picks the label selector of the new pods and how many there
// should be, or says what the rollout still waits for before its pods can be known.
import type {
  V1DaemonSet,
  V1Deployment,
  V1LabelSelector,
  V1PodTemplateSpec,
  V1ReplicaSet,
  V1StatefulSet,
} from '@kubernetes/client-node';
import { InvalidArgumentError } from 'commander';

export type WorkloadKind = 'deployment' | 'statefulset' | 'daemonset';
export interface Workload {
  kind: WorkloadKind;
  name: string;
}

const WORKLOAD_KINDS: Record<string, WorkloadKind> = {
  deployment: 'deployment',
  deployments: 'deployment',
  deploy: 'deployment',
  statefulset: 'statefulset',
  statefulsets: 'statefulset',
  sts: 'statefulset',
  daemonset: 'daemonset',
  daemonsets: 'daemonset',
  ds: 'daemonset',
};

/** `deployment/web`, `deploy/web`, `deployments.apps/web`, `sts/db`, `ds/agent`, as kubectl takes them. */
export function parseWorkload(value: string): Workload {
  const m = /^([a-z]+)(?:\.apps)?\/([a-z0-9]([-a-z0-9.]*[a-z0-9])?)$/.exec(value);
  const kind = m?.[1] === undefined ? undefined : WORKLOAD_KINDS[m[1]];
  if (kind === undefined || m?.[2] === undefined) {
    throw new InvalidArgumentError(
      `expected deployment/NAME, statefulset/NAME or daemonset/NAME, got "${value}"`,
    );
  }
  return { kind, name: m[2] };
}

/** A label selector as the API's `labelSelector` query parameter spells it. */
export function selectorString(sel: V1LabelSelector | undefined): string {
  const parts = Object.entries(sel?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of sel?.matchExpressions ?? []) {
    const values = (e.values ?? []).join(',');
    if (e.operator === 'In') parts.push(`${e.key} in (${values})`);
    else if (e.operator === 'NotIn') parts.push(`${e.key} notin (${values})`);
    else if (e.operator === 'Exists') parts.push(e.key);
    else if (e.operator === 'DoesNotExist') parts.push(`!${e.key}`);
    else throw new Error(`unknown label selector operator "${e.operator}" for key ${e.key}`);
  }
  return parts.join(',');
}

/** What the rollout follows: the pods matching `selector`, `expected` of them; or not yet. */
export type Target =
  { state: 'ready'; selector: string; expected: number } | { state: 'pending'; why: string };

const HASH_LABEL = 'pod-template-hash';

/** JSON with object keys sorted and undefined fields left out, to compare two API objects. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_key, value: unknown) => {
    if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof Date) {
      return value;
    }
    const o = value as Record<string, unknown>;
    return Object.fromEntries(
      Object.keys(o)
        .sort()
        .filter((k) => o[k] !== undefined)
        .map((k) => [k, o[k]]),
    );
  });
}

/** A pod template as plain JSON, without the pod-template-hash label, to compare two. */
function templateKey(t: V1PodTemplateSpec | undefined): string {
  if (t === undefined) return '';
  const plain = JSON.parse(JSON.stringify(t)) as { metadata?: { labels?: Record<string, string> } };
  const labels = Object.entries(plain.metadata?.labels ?? {}).filter(([k]) => k !== HASH_LABEL);
  return canonical({ ...plain, metadata: { ...plain.metadata, labels: Object.fromEntries(labels) } });
}

/**
 * The Deployment's current ReplicaSet: the one it owns whose pod template is the Deployment's,
 * the pod-template-hash label aside (how the Deployment controller and `kubectl rollout`
 * find it); null while the controller has not made it yet.
 */
export function newReplicaSet(d: V1Deployment, replicaSets: V1ReplicaSet[]): V1ReplicaSet | null {
  const uid = d.metadata?.uid;
  const want = templateKey(d.spec?.template);
  const owned = replicaSets.filter((rs) =>
    (rs.metadata?.ownerReferences ?? []).some((o) => o.uid === uid && o.controller === true),
  );
  return owned.find((rs) => templateKey(rs.spec?.template) === want) ?? null;
}

/** Generation N of the spec is not yet seen by its controller: its status speaks of an older one. */
function unobserved(o: {
  metadata?: { generation?: number };
  status?: { observedGeneration?: number };
}): string | null {
  const gen = o.metadata?.generation;
  const seen = o.status?.observedGeneration;
  if (gen === undefined || (seen !== undefined && seen >= gen)) return null;
  return `waiting for the controller to see generation ${gen}`;
}

/** The new pods of a Deployment's rollout: its current ReplicaSet's. */
export function deploymentTarget(d: V1Deployment, replicaSets: V1ReplicaSet[]): Target {
  const pending = unobserved(d);
  if (pending !== null) return { state: 'pending', why: pending };
  const rs = newReplicaSet(d, replicaSets);
  if (rs === null) return { state: 'pending', why: 'waiting for the new ReplicaSet' };
  let selector = selectorString(d.spec?.selector);
  const hash = rs.metadata?.labels?.[HASH_LABEL];
  if (hash !== undefined)
    selector = selector === '' ? `${HASH_LABEL}=${hash}` : `${selector},${HASH_LABEL}=${hash}`;
  return { state: 'ready', selector, expected: d.spec?.replicas ?? 1 };
}

/**
 * A StatefulSet's pods of its update revision: all of them, less those a rolling update's
 * partition keeps on the old revision.
 */
export function statefulSetTarget(s: V1StatefulSet): Target {
  const pending = unobserved(s);
  if (pending !== null) return { state: 'pending', why: pending };
  let selector = selectorString(s.spec?.selector);
  const rev = s.status?.updateRevision;
  if (rev !== undefined && rev !== '') {
    selector += `${selector === '' ? '' : ','}controller-revision-hash=${rev}`;
  }
  const partition = s.spec?.updateStrategy?.rollingUpdate?.partition ?? 0;
  return { state: 'ready', selector, expected: Math.max(0, (s.spec?.replicas ?? 1) - partition) };
}

/** A DaemonSet's pods, one per node it should run on. */
export function daemonSetTarget(ds: V1DaemonSet): Target {
  const pending = unobserved(ds);
  if (pending !== null) return { state: 'pending', why: pending };
  return {
    state: 'ready',
    selector: selectorString(ds.spec?.selector),
    expected: ds.status?.desiredNumberScheduled ?? 0,
  };
}
