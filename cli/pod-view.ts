// What the kubectl plugin shows of one pod, read only from the public contract (the status
// annotation and the condition), so it works for any pod pulltrace tracks, on any cluster.
import type { V1Pod } from '@kubernetes/client-node';
import {
  ANNOTATION_STATUS,
  CONDITION_IMAGES_PULLED,
  LABEL_TRACKED,
  STATUS_VERSION,
  isPhase,
  type ImagePullStatus,
  type PodPullStatus,
} from '../common/contract.js';

export interface PodView {
  namespace: string;
  name: string;
  tracked: boolean;
  /** The agent's document, when it has written one. */
  status: PodPullStatus | null;
  condition: { status: string; reason: string; message: string } | null;
  /** Every container has started (running or terminated): its images are certainly present. */
  containersStarted: boolean;
}

function isImageStatus(v: unknown): v is ImagePullStatus {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return typeof o.image === 'string' && isPhase(o.phase) && typeof o.percent === 'number';
}

/** Parses the status annotation; null when absent, of another version, or malformed. */
export function parseStatusAnnotation(text: string | undefined): PodPullStatus | null {
  if (text === undefined) return null;
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof doc !== 'object' || doc === null) return null;
  const o = doc as Record<string, unknown>;
  if (o.version !== STATUS_VERSION || !isPhase(o.phase) || typeof o.percent !== 'number') return null;
  if (!Array.isArray(o.images) || !o.images.every(isImageStatus)) return null;
  return doc as PodPullStatus;
}

export function podView(pod: V1Pod): PodView {
  const meta = pod.metadata;
  const cond = pod.status?.conditions?.find(
    (c) => c.type.toLowerCase() === CONDITION_IMAGES_PULLED.toLowerCase(),
  );
  const specCount = (pod.spec?.containers.length ?? 0) + (pod.spec?.initContainers?.length ?? 0);
  const statuses = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
  const started =
    specCount > 0 &&
    statuses.length >= specCount &&
    statuses.every((s) => s.state?.running !== undefined || s.state?.terminated !== undefined);
  return {
    namespace: meta?.namespace ?? '',
    name: meta?.name ?? '',
    tracked: meta?.labels?.[LABEL_TRACKED] === 'true',
    status: parseStatusAnnotation(meta?.annotations?.[ANNOTATION_STATUS]),
    condition:
      cond === undefined
        ? null
        : { status: cond.status, reason: cond.reason ?? '', message: cond.message ?? '' },
    containersStarted: started,
  };
}

/** All images of the pod are present: the condition says so, or the containers run. */
export function imagesIn(v: PodView): boolean {
  return v.condition?.status.toLowerCase() === 'true' || v.containersStarted;
}

/** The failure reason, when pulltrace reports one. */
export function failure(v: PodView): string | null {
  if (v.condition?.reason === 'Failed' || v.status?.phase === 'Failed') {
    const failed = v.status?.images.find((i) => i.phase === 'Failed');
    const detail =
      failed === undefined ? v.condition?.message : `${failed.image}: ${failed.error ?? 'failed'}`;
    return `${v.namespace}/${v.name}: ${detail ?? 'image pull failed'}`;
  }
  return null;
}

export type RolloutState = { state: 'waiting' } | { state: 'done' } | { state: 'failed'; reason: string };

/** A rollout is done when `expected` pods exist and all have their images in. */
export function rolloutState(views: PodView[], expected: number): RolloutState {
  for (const v of views) {
    const f = failure(v);
    if (f !== null) return { state: 'failed', reason: f };
  }
  if (views.length >= expected && views.every(imagesIn)) return { state: 'done' };
  return { state: 'waiting' };
}
