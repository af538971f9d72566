// Which images a pod waits for, read from the pod alone: its init containers' and containers'
// images in the order the kubelet pulls them, which of them the kubelet has not got yet, and
// the pull failures the kubelet reports on the pod (a missing tag or a refused login leaves
// no trace in containerd, so the pod is the only place they show).
import type { V1Container, V1ContainerStatus, V1Pod } from '@kubernetes/client-node';
import { MAX_ERROR_LENGTH } from '../../common/contract.js';
import { normalizeImageRef } from '../../common/image-ref.js';
import { keepEnds } from '../../common/format.js';

/** One distinct image of a pod. */
export interface PodImage {
  /** Normalised reference (common/image-ref.ts), as the tracker and containerd name it. */
  image: string;
  /** Names of the containers (init or not) that run it. */
  containers: string[];
  /** First needed by an init container, so pulled before the main containers' images. */
  init: boolean;
  /** The kubelet shows it present: a container of it started, or has an image ID. */
  present: boolean;
}

/** A pull failure the kubelet reports in a container's waiting state. */
export interface KubeletPullFailure {
  image: string;
  container: string;
  /** ErrImagePull, ImagePullBackOff, InvalidImageName or ErrImageNeverPull. */
  reason: string;
  /** The kubelet's message (or the reason when it gave none), at most MAX_ERROR_LENGTH. */
  message: string;
}

export interface PodImages {
  /** Every distinct image, init containers' first, each in spec order. */
  images: PodImage[];
  /** The images still to come, in pull order: what the pod waits for. */
  waiting: string[];
  /** Failures for images still waited for, one per image, in pull order. */
  failures: KubeletPullFailure[];
}

/** Waiting reasons by which the kubelet says it could not get a container's image. */
export const PULL_FAILURE_REASONS: readonly string[] = [
  'ErrImagePull',
  'ImagePullBackOff',
  'InvalidImageName',
  'ErrImageNeverPull',
];

/** The container has its image: it ran or runs, or the runtime gave the kubelet an image ID. */
function hasImage(s: V1ContainerStatus | undefined): boolean {
  if (s === undefined) return false;
  if (s.imageID !== '') return true;
  return s.state?.running !== undefined || s.state?.terminated !== undefined;
}

/**
 * Reads a pod's images. A pod that has finished (Succeeded or Failed) waits for nothing.
 * Ephemeral (debug) containers are left out: they are added to a running pod, not waited for.
 */
export function podImages(pod: V1Pod): PodImages {
  const statusByName = new Map<string, V1ContainerStatus>();
  for (const s of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]) {
    statusByName.set(s.name, s);
  }
  const byImage = new Map<string, PodImage>();
  const failures = new Map<string, KubeletPullFailure>();
  const visit = (c: V1Container, init: boolean): void => {
    if (c.image === undefined || c.image === '') return;
    const image = normalizeImageRef(c.image);
    let entry = byImage.get(image);
    if (entry === undefined) {
      entry = { image, containers: [], init, present: false };
      byImage.set(image, entry);
    }
    entry.containers.push(c.name);
    const s = statusByName.get(c.name);
    if (hasImage(s)) entry.present = true;
    const waiting = s?.state?.waiting;
    const reason = waiting?.reason ?? '';
    if (PULL_FAILURE_REASONS.includes(reason) && !failures.has(image)) {
      const message = waiting?.message ?? '';
      failures.set(image, {
        image,
        container: c.name,
        reason,
        // Both ends: the image named first, the cause of a wrapped error last.
        message: keepEnds(message === '' ? reason : message, MAX_ERROR_LENGTH),
      });
    }
  };
  for (const c of pod.spec?.initContainers ?? []) visit(c, true);
  for (const c of pod.spec?.containers ?? []) visit(c, false);

  const images = [...byImage.values()];
  const finished = pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
  const waiting = finished ? [] : images.filter((i) => !i.present).map((i) => i.image);
  return {
    images,
    waiting,
    failures: waiting.flatMap((i) => {
      const f = failures.get(i);
      return f === undefined ? [] : [f];
    }),
  };
}
