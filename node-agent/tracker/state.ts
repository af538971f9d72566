// The tracker's state, as plain data: one named state per blob (what containerd shows of it),
// and one record per pull (an image's manifest and what the pull has done with its blobs).
// progress.ts turns these into the public status; discovery.ts and tracker.ts fill them.
import type { ImagePullStatus, Phase } from '../../common/contract.js';
import type { BlobRef } from './manifest.js';
import type { RateWindow } from './rate.js';

/**
 * What containerd shows of one blob, node-wide (two pulls sharing a layer share its state):
 * - `fetching`: an ingest in Content/ListStatuses; `counted` is the most bytes seen (a
 *   restarted ingest neither counts twice nor goes back), `updatedAt` containerd's last write
 *   (ms, its clock), null when it did not say;
 * - `fetched`: committed to the content store while a pull was following it;
 * - `lost`: left the ingest list without being committed (cancelled, failed, or collected
 *   before a poll saw it); `counted` stays what was seen.
 */
export type BlobState =
  /**
   * `leaving`: not in the last poll's ingests and not in the content store either — being
   * committed (containerd drops the ingest before its metadata records the blob) or gone; the
   * next poll decides (fetched or lost). Until then it counts as in flight.
   */
  | { state: 'fetching'; total: number; counted: number; updatedAt: number | null; leaving?: true }
  | { state: 'fetched'; total: number }
  | { state: 'lost'; total: number; counted: number };

/**
 * How one of a pull's blobs stands for that pull: `cached` (there before the pull began: a
 * blob in the content store, or an unpacked snapshot of the layer), or its node-wide state, or
 * `waiting` (not seen yet).
 */
export type BlobView = 'cached' | 'fetched' | 'fetching' | 'lost' | 'waiting';

/** One image pull: the platform manifest's distinct blobs and what has happened to them. */
export interface PullState {
  /** The index digest for a multi-platform image, else the manifest digest. */
  key: string;
  /** The image index's digest, when the pull came from one. */
  indexDigest: string | null;
  /** The platform manifest's digest. */
  manifestDigest: string;
  /** The image config's digest: the image id. */
  configDigest: string;
  /** "<host>/<repo>" from the blobs' distribution-source labels (host without its port). */
  sources: Set<string>;
  /** Image record names, once containerd created them. */
  names: Set<string>;
  /** Config, then each distinct layer (a digest listed twice is fetched once). */
  blobs: BlobRef[];
  /** The manifest's layers in order, repeats included (chain IDs are computed over these). */
  layerOrder: BlobRef[];
  /** The distinct layer digests (what layersDone / layersTotal count). */
  layerDigests: Set<string>;
  /** Blobs there before the pull began. */
  cached: Set<string>;
  /** The layers' chain IDs were checked against the snapshotter (needs the config). */
  snapshotsChecked: boolean;
  /** When the pull began (ms): its index's or manifest's commit time in the content store. */
  startedAt: number;
  /** When the poll that found its image record ran (ms); null while it runs. */
  finishedAt: number | null;
  /** When bytes done last grew (ms), and to how many. */
  lastProgressAt: number;
  lastDone: number;
  /** The rate measured when bytes last moved (bytes/s): when the next 1 MiB write is due. */
  rateAtProgress: number;
  /** Since when (ms) blobs are missing with nothing in flight: Failed after failAfterMs. */
  idleSince: number | null;
  /** Since when (ms) the rate is below --slow-rate: `slow` after stallAfterMs. */
  slowSince: number | null;
  /** Bytes done over time, for bytesPerSecond and the ETA. */
  rate: RateWindow;
  /** The highest percent shown so far: percent never goes back below it. */
  percentFloor: number;
  phase: Phase;
  /** Why the pull failed, when Failed. */
  error: string | null;
  /** Under --slow-rate for --stall-after (TrackedPull.slow). */
  slow: boolean;
  /** The public view, recomputed by progress.ts advance() at every poll. */
  status: ImagePullStatus;
}

/** The view of `digest` for pull `p`, given the node-wide blob states. */
export function blobView(p: PullState, blobs: ReadonlyMap<string, BlobState>, digest: string): BlobView {
  if (p.cached.has(digest)) return 'cached';
  return blobs.get(digest)?.state ?? 'waiting';
}
