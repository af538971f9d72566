// Builders for the publisher's tests: image statuses as the tracker reports them, and pods as
// the API server returns them. Defaults describe a pull in progress; tests override fields.
import type { V1Container, V1ContainerStatus, V1Pod } from '@kubernetes/client-node';
import type { ImagePullStatus } from '../common/contract.js';

export const MB = 1_000_000;

/** An image status as PullTracker.statusOf returns it (default: nginx:1.27, 63 % downloaded). */
export function imageStatus(over: Partial<ImagePullStatus> = {}): ImagePullStatus {
  return {
    image: 'docker.io/library/nginx:1.27',
    phase: 'Downloading',
    percent: 63,
    bytesDone: 42_300_000,
    bytesTotal: 67_000_000,
    bytesCached: 0,
    layersDone: 1,
    layersTotal: 3,
    bytesPerSecond: 5_100_000,
    etaSeconds: 5,
    startedAt: '2026-11-25T10:00:00.000Z',
    finishedAt: null,
    error: null,
    ...over,
  };
}

/** A Resolving status: expected, no pull seen yet. */
export function resolving(image: string): ImagePullStatus {
  return imageStatus({
    image,
    phase: 'Resolving',
    percent: 0,
    bytesDone: 0,
    bytesTotal: 0,
    layersDone: 0,
    layersTotal: 0,
    bytesPerSecond: 0,
    etaSeconds: null,
  });
}

/** A Pulled status for an image of `size` bytes fetched. */
export function pulled(
  image: string,
  size: number,
  finishedAt = '2026-11-25T10:00:20.000Z',
): ImagePullStatus {
  return imageStatus({
    image,
    phase: 'Pulled',
    percent: 100,
    bytesDone: size,
    bytesTotal: size,
    layersDone: 3,
    bytesPerSecond: 0,
    etaSeconds: 0,
    finishedAt,
  });
}

/** A Cached status for an image of `size` bytes already present. */
export function cached(image: string, size: number): ImagePullStatus {
  return imageStatus({
    image,
    phase: 'Cached',
    percent: 100,
    bytesDone: 0,
    bytesTotal: 0,
    bytesCached: size,
    layersDone: 0,
    layersTotal: 0,
    bytesPerSecond: 0,
    etaSeconds: 0,
    finishedAt: '2026-11-25T10:00:00.000Z',
  });
}

export interface PodSpecLite {
  name?: string;
  init?: V1Container[];
  containers: V1Container[];
  initStatuses?: V1ContainerStatus[];
  statuses?: V1ContainerStatus[];
  phase?: string;
}

/** A pod on the node, as the API server returns it. */
export function pod(p: PodSpecLite): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: p.name ?? 'web-0', namespace: 'default', uid: 'uid-1', generation: 1 },
    spec: { nodeName: 'node-a', containers: p.containers, initContainers: p.init },
    status: {
      phase: p.phase ?? 'Pending',
      initContainerStatuses: p.initStatuses,
      containerStatuses: p.statuses,
    },
  };
}

/** A container status waiting for its image (imageID empty). */
export function waitingStatus(name: string, image: string, reason = 'ContainerCreating', message?: string) {
  const s: V1ContainerStatus = {
    name,
    image,
    imageID: '',
    ready: false,
    restartCount: 0,
    state: { waiting: message === undefined ? { reason } : { reason, message } },
  };
  return s;
}

/** A container status of a container that ran (image present). */
export function ranStatus(name: string, image: string, state: 'running' | 'terminated' = 'running') {
  const s: V1ContainerStatus = {
    name,
    image,
    imageID: `${image}@sha256:${'a'.repeat(64)}`,
    ready: state === 'running',
    restartCount: 0,
    state: state === 'running' ? { running: {} } : { terminated: { exitCode: 0 } },
  };
  return s;
}
