// The one patch that carries a pod's progress to the API server, built as the difference between
// what is on the pod (or was last written) and what should be: a strategic merge patch of
// `pods/<name>/status` holding
// - the owned labels and annotations (`metadata.labels`, `metadata.annotations`; a key to remove
//   is null). The API server's pod status strategy (pkg/registry/core/pod/strategy.go,
//   podStatusStrategy.PrepareForUpdate) resets only spec, deletionTimestamp and ownerReferences
//   on a status write, so metadata changes are kept (e2e/cluster/cluster.test.ts checks it on the
//   real API server);
// - the ImagesPulled condition in status.conditions, whose merge key is `type`, so the kubelet's
//   conditions stay as they are (a JSON merge patch would replace the whole list).
// One request per update, one watch event: half of a metadata patch plus a status patch.
import type { V1Pod } from '@kubernetes/client-node';
import {
  ANNOTATION_ETA_SECONDS,
  ANNOTATION_PHASE,
  ANNOTATION_PROGRESS,
  ANNOTATION_STATUS,
  CONDITION_IMAGES_PULLED,
  LABEL_ETA,
  LABEL_PROGRESS,
  isPhase,
} from '../../common/contract.js';
import type { ConditionBody, PublishedState } from './pod-progress.js';
import { kubeTime } from './text.js';

/** Content type of the patch: a strategic merge patch (merge key of conditions: `type`). */
export const POD_PATCH_TYPE = 'application/strategic-merge-patch+json';

/** The labels the agent owns; no other label is ever in a patch. */
export const OWNED_LABELS: readonly string[] = [LABEL_PROGRESS, LABEL_ETA];
/** The annotations the agent owns; no other annotation is ever in a patch. */
export const OWNED_ANNOTATIONS: readonly string[] = [
  ANNOTATION_PROGRESS,
  ANNOTATION_ETA_SECONDS,
  ANNOTATION_PHASE,
  ANNOTATION_STATUS,
];

/** A condition in a strategic merge patch: fields to drop are null. */
export type ConditionPatch = { type: string } & Record<string, string | number | null>;

/**
 * The body of the pods/status patch. `metadata`: owned labels and annotations to set, null to
 * remove; absent when they are already as wanted. `status`: the one ImagesPulled condition;
 * absent when it is already as wanted. At least one of the two is present.
 */
export interface PodPatch {
  metadata?: {
    labels?: Record<string, string | null>;
    annotations?: Record<string, string | null>;
  };
  status?: { conditions: [ConditionPatch] };
}

/** What was written before, as far as the agent knows: each part may be unknown (null). */
export interface PreviousState {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  condition: ConditionBody | null;
}

function pick(from: Record<string, string> | undefined, keys: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of keys) {
    const v = from?.[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}

function asTime(v: unknown): string | null {
  if (!(v instanceof Date) && typeof v !== 'string') return null;
  try {
    return kubeTime(v);
  } catch {
    return null;
  }
}

/**
 * What the agent wrote on a pod, read back from the pod itself (after a restart, or from a
 * watch event): only the keys it owns, and its condition. A condition it cannot read as its
 * own counts as absent, so the next write replaces it.
 */
export function previousStateOf(pod: V1Pod): PreviousState {
  const meta = pod.metadata;
  const found = pod.status?.conditions?.find((c) => c.type === CONDITION_IMAGES_PULLED);
  let condition: ConditionBody | null = null;
  const reason = found?.reason;
  const time = asTime(found?.lastTransitionTime);
  if (found !== undefined && (found.status === 'True' || found.status === 'False') && isPhase(reason)) {
    condition = {
      type: CONDITION_IMAGES_PULLED,
      status: found.status,
      reason,
      message: found.message ?? '',
      lastTransitionTime: time ?? '',
    };
    if (found.observedGeneration !== undefined) condition.observedGeneration = found.observedGeneration;
  }
  return {
    labels: pick(meta?.labels, OWNED_LABELS),
    annotations: pick(meta?.annotations, OWNED_ANNOTATIONS),
    condition,
  };
}

/** The merge-patch difference of two flat string maps: changed or new keys, removed ones null. */
function mapDiff(
  prev: Record<string, string>,
  next: Record<string, string>,
): Record<string, string | null> | null {
  const out: Record<string, string | null> = {};
  for (const [k, v] of Object.entries(next)) if (prev[k] !== v) out[k] = v;
  for (const k of Object.keys(prev)) if (!(k in next)) out[k] = null;
  return Object.keys(out).length === 0 ? null : out;
}

const CONDITION_FIELDS = ['status', 'reason', 'message', 'lastTransitionTime', 'observedGeneration'] as const;

function sameCondition(a: ConditionBody, b: ConditionBody): boolean {
  return CONDITION_FIELDS.every((f) => a[f] === b[f]);
}

/**
 * The patch from `prev` (null: nothing known, write everything) to `next`, or null when there is
 * nothing to write. Keys the agent does not own are never touched: `next` holds only owned keys,
 * and `prev` is filtered.
 */
export function buildPatch(
  prev: PreviousState | PublishedState | null,
  next: PublishedState,
): PodPatch | null {
  const labels = mapDiff(pick(prev?.labels, OWNED_LABELS), pick(next.labels, OWNED_LABELS));
  const annotations = mapDiff(
    pick(prev?.annotations, OWNED_ANNOTATIONS),
    pick(next.annotations, OWNED_ANNOTATIONS),
  );
  const patch: PodPatch = {};
  if (labels !== null || annotations !== null) {
    patch.metadata = {
      ...(labels === null ? {} : { labels }),
      ...(annotations === null ? {} : { annotations }),
    };
  }
  const before = prev?.condition ?? null;
  if (before === null || !sameCondition(before, next.condition)) {
    const c: ConditionPatch = { ...next.condition };
    // A field left out of a strategic merge patch keeps its old value: clear it explicitly.
    if (before?.observedGeneration !== undefined && next.condition.observedGeneration === undefined) {
      c.observedGeneration = null;
    }
    patch.status = { conditions: [c] };
  }
  return patch.metadata === undefined && patch.status === undefined ? null : patch;
}
