// Pure: what the node must fetch before a pod's images can come. The kubelet pulls one image
// at a time by default (serializeImagePulls), in the order pods are synced — roughly by
// creation — so a pod waits for what other pods' pulls in flight still need and for the images
// of pods created before it that have not started yet. Their sum, at the node's rate, is how
// long the pod waits before its own bytes move: the first part of its ETA.
import type { ImagePullStatus } from '../../common/contract.js';
import type { TrackedPull } from '../tracker/types.js';

/** One pod waiting on the node: when it began to wait (ms) and its images' statuses. */
export interface WaitingPod {
  /** "namespace/name". */
  key: string;
  /** When it began to wait: its creationTimestamp, ms since the epoch. */
  since: number;
  /** Its images' statuses, in pull order. */
  statuses: readonly ImagePullStatus[];
}

/** Bytes ahead of one pod; `unknown` when an image ahead has no known size (counted as 0). */
export interface Ahead {
  /** Bytes, summed over what is known. */
  bytes: number;
  /** Some image ahead has no known size. */
  unknown: boolean;
}

const notStarted = (s: ImagePullStatus): boolean => s.phase === 'Resolving' || s.phase === 'Queued';
const fetching = (s: ImagePullStatus): boolean =>
  s.phase === 'Downloading' || s.phase === 'Unpacking' || s.phase === 'Stalled';

/**
 * For each pod, the bytes the node fetches before its images: the in-flight pulls' remaining
 * bytes that are not its own (`inFlightRemaining`: Σ bytesTotal − bytesDone over the node's
 * pulls in flight), plus the sizes of not-started images of pods that began to wait before it
 * (each image once, none of its own). `sizeOf` gives a not-started image's size or null.
 */
export function bytesAhead(
  pods: readonly WaitingPod[],
  inFlightRemaining: number,
  sizeOf: (image: string) => number | null,
): Map<string, Ahead> {
  const order = [...pods].sort((a, b) => a.since - b.since || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const out = new Map<string, Ahead>();
  const earlier: WaitingPod[] = [];
  for (const pod of order) {
    const own = new Set(pod.statuses.map((s) => s.image));
    const ownRemaining = pod.statuses
      .filter(fetching)
      .reduce((n, s) => n + Math.max(0, s.bytesTotal - s.bytesDone), 0);
    let bytes = Math.max(0, inFlightRemaining - ownRemaining);
    let unknown = false;
    const counted = new Set<string>();
    for (const e of earlier) {
      for (const s of e.statuses) {
        if (!notStarted(s) || own.has(s.image) || counted.has(s.image)) continue;
        counted.add(s.image);
        const size = sizeOf(s.image);
        if (size === null) unknown = true;
        else bytes += size;
      }
    }
    out.set(pod.key, { bytes, unknown });
    earlier.push(pod);
  }
  return out;
}

/** The node as one publisher pass sees it: pulls in flight, their rate, what each pod waits behind. */
export interface NodeView {
  /** A pull is in flight on the node. */
  busy: boolean;
  /** Σ bytesPerSecond of the pulls in flight. */
  bytesPerSecond: number;
  /** bytesAhead() for each waiting pod, by its key. */
  ahead: Map<string, Ahead>;
}

/** The node's view from the tracker's pulls (in flight or not) and the pods waiting on it. */
export function nodeView(
  pulls: readonly TrackedPull[],
  pods: readonly WaitingPod[],
  sizeOf: (image: string) => number | null,
): NodeView {
  const inFlight = pulls.filter((p) => p.status.finishedAt === null && p.status.phase !== 'Failed');
  const remaining = inFlight.reduce((n, p) => n + Math.max(0, p.status.bytesTotal - p.status.bytesDone), 0);
  return {
    busy: inFlight.length > 0,
    bytesPerSecond: inFlight.reduce((n, p) => n + p.status.bytesPerSecond, 0),
    ahead: bytesAhead(pods, remaining, sizeOf),
  };
}
