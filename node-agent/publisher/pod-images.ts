// Which images a pod waits for, read from the pod alone: its image volumes', init containers'
// and containers' images in the order the kubelet pulls them (image volumes first: SyncPod
// pulls them before it starts any container), each with its pull policy, which of them the
// kubelet has not got yet, and the pull failures the kubelet reports on the pod (a missing
// tag or a refused login leaves no trace in containerd, so the pod is the only place they show).
import type { V1Container, V1ContainerStatus, V1Pod } from '@kubernetes/client-node';
import { MAX_ERROR_LENGTH, isPresent, type ImagePullStatus } from '../../common/contract.js';
import { normalizeImageRef, parseImageRef } from '../../common/image-ref.js';
import { keepEnds } from '../../common/format.js';

/** One distinct image of a pod. */
export interface PodImage {
  /** Normalised reference (common/image-ref.ts), as the tracker and containerd name it. */
  image: string;
  /** Names of the containers (init or not) that run it. */
  containers: string[];
  /** First needed by an init container, so pulled before the main containers' images. */
  init: boolean;
  /** Needed by an image volume (spec.volumes[].image), pulled before any container. */
  volume: boolean;
  /**
   * The kubelet's pull policy (the strictest asked for the image): `Always` when any user of it
   * says so, as the API server defaults it (`Always` for `:latest` or no tag), else as given.
   */
  pullPolicy: PullPolicy;
  /** The kubelet shows it present: a container of *this* image started, or has its image ID. */
  present: boolean;
}

/** spec.containers[].imagePullPolicy and spec.volumes[].image.pullPolicy. */
export type PullPolicy = 'Always' | 'IfNotPresent' | 'Never';

/** A pull failure the kubelet reports in a container's waiting state. */
export interface KubeletPullFailure {
  image: string;
  container: string;
  /** ErrImagePull, ImagePullBackOff, InvalidImageName or ErrImageNeverPull. */
  reason: string;
  /** The kubelet's message (or the reason when it gave none), at most MAX_ERROR_LENGTH. */
  message: string;
}

/** A pod's images as podImages() reads them from the pod's spec and status. */
export interface PodImages {
  /** Every distinct image in pull order: image volumes, then init containers', then containers'. */
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

/**
 * The container has `image`: it ran or runs, or the runtime gave the kubelet an image ID, and
 * the status is of that image (after `kubectl set image` the old container's status stays until
 * it is replaced: its image ID is the old image's).
 */
function hasImage(s: V1ContainerStatus | undefined, image: string): boolean {
  if (s === undefined) return false;
  if (s.imageID === '' && s.state?.running === undefined && s.state?.terminated === undefined) return false;
  const want = parseImageRef(image);
  const ran = parseImageRef(s.image);
  if (want === null || ran === null) return normalizeImageRef(s.image) === image;
  if (want.digest !== null) {
    // A digest reference: the image ID the kubelet reports (repo@sha256:…) carries it.
    return s.imageID.endsWith(`@${want.digest}`) || ran.digest === want.digest;
  }
  return ran.domain === want.domain && ran.path === want.path && ran.tag === want.tag;
}

/** The policy the API server gives a container or image volume that does not say. */
export function defaultPullPolicy(image: string): PullPolicy {
  const r = parseImageRef(image);
  if (r === null) return 'IfNotPresent';
  return r.digest === null && (r.tag === 'latest' || r.tag === null) ? 'Always' : 'IfNotPresent';
}

function policyOf(given: string | undefined, image: string): PullPolicy {
  return given === 'Always' || given === 'IfNotPresent' || given === 'Never'
    ? given
    : defaultPullPolicy(image);
}

const STRICTNESS: Record<PullPolicy, number> = { Never: 0, IfNotPresent: 1, Always: 2 };

/** The pull failure a container's waiting state reports (PULL_FAILURE_REASONS), or null. */
function pullFailure(
  image: string,
  container: string,
  s: V1ContainerStatus | undefined,
): KubeletPullFailure | null {
  const waiting = s?.state?.waiting;
  const reason = waiting?.reason ?? '';
  if (!PULL_FAILURE_REASONS.includes(reason)) return null;
  const message = waiting?.message ?? '';
  // Both ends: the image named first, the cause of a wrapped error last.
  return { image, container, reason, message: keepEnds(message === '' ? reason : message, MAX_ERROR_LENGTH) };
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
  const entryFor = (raw: string, init: boolean, volume: boolean, policy: PullPolicy): PodImage => {
    const image = normalizeImageRef(raw);
    let entry = byImage.get(image);
    if (entry === undefined) {
      entry = { image, containers: [], init, volume, pullPolicy: policy, present: false };
      byImage.set(image, entry);
    } else if (STRICTNESS[policy] > STRICTNESS[entry.pullPolicy]) {
      entry.pullPolicy = policy;
    }
    return entry;
  };
  const anyStarted = [...statusByName.values()].some(
    (st) => st.state?.running !== undefined || st.state?.terminated !== undefined,
  );
  const visit = (c: V1Container, init: boolean): void => {
    if (c.image === undefined || c.image === '') return;
    const entry = entryFor(c.image, init, false, policyOf(c.imagePullPolicy, c.image));
    const image = entry.image;
    entry.containers.push(c.name);
    const s = statusByName.get(c.name);
    if (hasImage(s, image)) entry.present = true;
    const f = pullFailure(image, c.name, s);
    if (f !== null && !failures.has(image)) failures.set(image, f);
  };
  const volumes: PodImage[] = [];
  for (const v of pod.spec?.volumes ?? []) {
    const ref = v.image?.reference;
    if (ref === undefined || ref === '') continue;
    volumes.push(entryFor(ref, false, true, policyOf(v.image?.pullPolicy, ref)));
  }
  for (const c of pod.spec?.initContainers ?? []) visit(c, true);
  for (const c of pod.spec?.containers ?? []) visit(c, false);
  // The kubelet pulls image volumes before it starts any container: once one has started,
  // they are in.
  if (anyStarted) for (const v of volumes) v.present = true;

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

/**
 * The status of an image the kubelet shows the pod has (a container of that very image
 * started): in, whatever the tracker saw — Pulled if bytes were fetched for it, else Cached
 * (pull policy Always on an unchanged image re-resolves and fetches nothing). `now` in ms.
 */
export function asPresent(s: ImagePullStatus, now: number): ImagePullStatus {
  if (isPresent(s.phase)) return s;
  return {
    ...s,
    phase: s.bytesDone > 0 ? 'Pulled' : 'Cached',
    percent: 100,
    etaSeconds: 0,
    bytesPerSecond: 0,
    error: null,
    finishedAt: s.finishedAt ?? new Date(now).toISOString(),
  };
}
