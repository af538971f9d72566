// What the pull tracker hands to the rest of the agent (publisher, `pulls` command, metrics).
import type { ImagePullStatus } from '../../common/contract.js';

/**
 * The tracker's settings the agent's configuration carries (its `tracker` slice, handed to
 * PullTracker whole); the tracker's other options have defaults.
 */
export interface TrackerSettings {
  /** How often in-flight downloads are read from containerd, milliseconds (--poll-interval). Default 1000, at least 100. */
  pollIntervalMs: number;
  /** A pull with no new bytes for this long is Stalled, milliseconds (--stall-after). Default 30 000. */
  stallAfterMs: number;
  /** A pull below this rate for stallAfterMs is flagged slow, bytes per second (--slow-rate). Default 0: off. */
  slowRateBytesPerSecond: number;
}

/** One image pull the tracker follows, keyed by the digest the pull resolved to. */
export interface TrackedPull {
  /** Stable key: the index digest for a multi-platform image, else the manifest digest. */
  key: string;
  /** Digest of the image index / manifest list, when the image has one. */
  indexDigest: string | null;
  /** Digest of the platform manifest (null while still resolving). */
  manifestDigest: string | null;
  /** Image config digest = the image id (null while still resolving). */
  configDigest: string | null;
  /**
   * Repositories the blobs were fetched from, from the content labels
   * `containerd.io/distribution.source.<host>=<repo>`: "<host>/<repo>", where containerd
   * records the host WITHOUT its port (127.0.0.1:5001/team/app → "127.0.0.1/team/app").
   */
  sources: string[];
  /** Image record names once containerd created them (tag, repo@digest, sha256:id). */
  names: string[];
  /** Rate stayed under --slow-rate for --stall-after (a trickle containerd would not cancel). */
  slow: boolean;
  /** The public view. `status.image` is the best name known so far. */
  status: ImagePullStatus;
}

/** A tracker's answer at one moment: every pull in flight or recently finished. */
export interface TrackerSnapshot {
  /** When the snapshot was taken, by the tracker's clock. */
  at: Date;
  /** Every pull followed: in flight, or finished within the retention (5 min by default). */
  pulls: TrackedPull[];
}
