// The public contract: every label, annotation, condition and event reason that pulltrace
// writes or reads, in one place. Users' scripts depend on these names; docs/contract.md
// documents each one, and a test checks that every exported key appears there.

/** The prefix of every label, annotation and condition type pulltrace owns. */
export const PREFIX = 'pulltrace.io/';

/** Label set by the webhook on admission; the node agent watches only pods carrying it. */
export const LABEL_TRACKED = `${PREFIX}tracked`;
/** Pod annotation or label (or namespace label) with value "false": pulltrace leaves the pod alone. */
export const KEY_TRACK = `${PREFIX}track`;
/** Pod annotation with value "true": the webhook adds the readiness gate. */
export const ANNOTATION_READINESS_GATE = `${PREFIX}readiness-gate`;

/**
 * Label written by the node agent, for `kubectl get pods -L`: the pod's integer percent (0–100)
 * as a decimal string, e.g. "63"; the same value as ANNOTATION_PROGRESS.
 */
export const LABEL_PROGRESS = `${PREFIX}progress`;
/**
 * Label written by the node agent: the pod's ETA as Go prints a duration, rounded to whole
 * seconds ("5s", "1m5s"; formatDuration). Absent (removed) while the ETA is unknown.
 */
export const LABEL_ETA = `${PREFIX}eta`;

/** Annotation written by the node agent: the pod's integer percent (0–100), as LABEL_PROGRESS. */
export const ANNOTATION_PROGRESS = `${PREFIX}progress`;
/** Annotation written by the node agent: the pod's ETA in whole seconds ("65"); absent when unknown. */
export const ANNOTATION_ETA_SECONDS = `${PREFIX}eta-seconds`;
/** Annotation written by the node agent: the pod's Phase, the same as the condition's reason. */
export const ANNOTATION_PHASE = `${PREFIX}phase`;
/**
 * Annotation written by the node agent: one PodPullStatus as JSON, at most
 * MAX_STATUS_ANNOTATION_BYTES of UTF-8 (docs/status.schema.json).
 */
export const ANNOTATION_STATUS = `${PREFIX}status`;

/** Pod condition type written on pods/status, and used as the readiness gate. */
export const CONDITION_IMAGES_PULLED = `${PREFIX}ImagesPulled`;

/** The condition's reasons; also the value of the phase annotation. */
export const PHASES = [
  'Queued',
  'Resolving',
  'Downloading',
  'Unpacking',
  'Stalled',
  'Failed',
  'Pulled',
  'Cached',
] as const;
/**
 * Where an image's pull (or a pod's, taken as a whole) stands:
 * - `Queued`: no pull of it yet while another pull on the node comes first (the kubelet pulls
 *   one image at a time by default);
 * - `Resolving`: expected by a pod, no pull of it seen in containerd yet (a tag being resolved);
 * - `Downloading`: bytes moving; `Stalled`: no new bytes for --stall-after (and past when
 *   containerd's next 1 MiB write was due); `Unpacking`: every blob in, no image record yet;
 * - `Failed`: blobs missing with nothing in flight for 10 s, or the kubelet reported
 *   ErrImagePull / ImagePullBackOff / InvalidImageName / ErrImageNeverPull;
 * - `Pulled`: present, fetched for this pod; `Cached`: present before the pod waited for it.
 */
export type Phase = (typeof PHASES)[number];

/** The image is on the node: Pulled (fetched for this pod) or Cached (there before it). */
export function isPresent(phase: Phase): boolean {
  return phase === 'Pulled' || phase === 'Cached';
}

/**
 * Nothing more will change for that image's pull: present, or Failed (the kubelet retries a
 * failed pull with back-off, and the retry is a new pull).
 */
export function isFinal(phase: Phase): boolean {
  return isPresent(phase) || phase === 'Failed';
}

/** `value` is one of PHASES (as read back from a pod: a condition reason, an annotation). */
export function isPhase(value: unknown): value is Phase {
  return typeof value === 'string' && (PHASES as readonly string[]).includes(value);
}

/** Event reason on the pod, type Warning: an image got no bytes for --stall-after. */
export const EVENT_PULL_STALLED = 'PullStalled';
/** Event reason on the pod, type Warning: an image's rate stayed below --slow-rate for --stall-after. */
export const EVENT_PULL_SLOW = 'PullSlow';
/** Event reason on the pod, type Warning: an image of the pod failed. */
export const EVENT_PULL_FAILED = 'PullFailed';
/** Event reason on the pod, type Normal: the summary, once all the pod's images are present. */
export const EVENT_IMAGES_PULLED = 'ImagesPulled';

/** The component name events are reported under. */
export const EVENT_SOURCE = 'pulltrace-node-agent';

/** Version of the JSON document in the status annotation (docs/status.schema.json). */
export const STATUS_VERSION = 'pulltrace.io/v1';

/** Bounds on what the agent writes, so nothing grows without limit: the status annotation, in UTF-8 bytes. */
export const MAX_STATUS_ANNOTATION_BYTES = 16 * 1024;
/** Longest condition or event message, in UTF-16 code units (JavaScript string length). */
export const MAX_MESSAGE_LENGTH = 256;
/** Longest image reference in the status document, in UTF-16 code units. */
export const MAX_IMAGE_REF_LENGTH = 512;
/** Longest `error` of an image in the status document, in UTF-16 code units. */
export const MAX_ERROR_LENGTH = 256;

/**
 * One image's pull, as it appears in the status annotation, `pulls --json` and metrics. Built
 * by the tracker (node-agent/tracker/progress.ts for a pull seen in containerd,
 * expectations.ts for an image with none); every byte count is of the platform manifest's
 * distinct blobs (config + layers, a digest listed twice counted once), compressed sizes as the
 * manifest gives them; manifests and indexes themselves are not counted.
 */
export interface ImagePullStatus {
  /**
   * Image reference, normalised as CRI names it (docker.io/library/nginx:1.27); for a pull no
   * pod waits for, the best name containerd gave it (a tag, else repo@digest, else
   * "<source repo>@<digest>"). At most MAX_IMAGE_REF_LENGTH in the status annotation.
   */
  image: string;
  phase: Phase;
  /**
   * Integer percent 0–100: ⌊100 · bytesDone / bytesTotal⌋, never lower than a value shown
   * before for this pull, capped at 99 until the image record exists (Pulled) or the image is
   * present (Cached), then 100. 0 while the size is unknown (Resolving, Queued).
   */
  percent: number;
  /**
   * Bytes fetched so far of those this pull must fetch (committed blobs in full, plus the
   * ingests' offsets from Content/ListStatuses, which move in 1 MiB steps); ≤ bytesTotal.
   */
  bytesDone: number;
  /**
   * Bytes this pull must fetch: the manifest's config and distinct layers minus those already
   * present. 0 while the size is unknown (no pull seen yet).
   */
  bytesTotal: number;
  /**
   * Bytes of the image already on the node before the pull: blobs in the content store, and
   * layers whose blob is gone but whose unpacked snapshot exists. Image size = bytesTotal +
   * bytesCached.
   */
  bytesCached: number;
  /**
   * Distinct layers present: fetched, cached as a blob, or cached as an unpacked snapshot (the
   * config is not a layer); ≤ layersTotal. 0 when the image has no tracked pull.
   */
  layersDone: number;
  /** Distinct layer blobs in the platform manifest; 0 when the image has no tracked pull. */
  layersTotal: number;
  /**
   * Download rate, integer bytes per second: the least-squares slope of bytesDone over a 10 s
   * window, sampled at containerd's own write times. 0 when Stalled, Failed, present or not
   * started.
   */
  bytesPerSecond: number;
  /**
   * Whole seconds until the image's bytes are in (at least 1 while bytes remain); 0 once every
   * byte is in (Unpacking) or present; null (in JSON too) when unknown: no rate yet, Stalled,
   * Failed, or no pull yet.
   */
  etaSeconds: number | null;
  /**
   * RFC 3339 UTC with milliseconds ("2026-11-25T10:00:02.517Z"): when the pull began (the
   * commit time in containerd's content store of its index or manifest), or, for an image with
   * no pull, when the pod began to wait for it. Null when nothing is known yet.
   */
  startedAt: string | null;
  /**
   * RFC 3339 UTC with milliseconds: when the image became present (the poll that found its
   * image record, or the record's creation time for an image that was already there); null
   * until then.
   */
  finishedAt: string | null;
  /** Why the pull failed (phase Failed), one line of at most MAX_ERROR_LENGTH; else null. */
  error: string | null;
}

/** An image's status before anything is known of its pull. */
export function blankStatus(image: string, phase: Phase = 'Resolving'): ImagePullStatus {
  return {
    image,
    phase,
    percent: 0,
    bytesDone: 0,
    bytesTotal: 0,
    bytesCached: 0,
    layersDone: 0,
    layersTotal: 0,
    bytesPerSecond: 0,
    etaSeconds: null,
    startedAt: null,
    finishedAt: null,
    error: null,
  };
}

/** The fields of ImagePullStatus, in the order `pulls --json` prints them. */
export const IMAGE_STATUS_FIELDS = Object.keys(blankStatus('')) as (keyof ImagePullStatus)[];

/**
 * The whole document in the `pulltrace.io/status` annotation (JSON Schema:
 * docs/status.schema.json), built by node-agent/publisher/pod-progress.ts and bounded to
 * MAX_STATUS_ANNOTATION_BYTES of UTF-8.
 */
export interface PodPullStatus {
  /** Always STATUS_VERSION for this layout; a reader should ignore a version it does not know. */
  version: typeof STATUS_VERSION;
  /** The pod's phase: the same as the condition's reason and the phase annotation. */
  phase: Phase;
  /**
   * Integer percent 0–100 of the bytes all the pod's images must fetch (an image not started
   * counted at its manifest size, or at the mean of the known sizes when that is unknown too);
   * never goes backwards; ≤ 99 until every image is present, then 100.
   */
  percent: number;
  /**
   * Whole seconds until the pod's last image is in: the bytes still to come of all its images
   * and of those queued ahead of it on the node, at the node's rate; 0 once all are present;
   * null when no rate is measured yet, or Stalled, or Failed.
   */
  etaSeconds: number | null;
  /** Present (true) when a size behind the ETA was unknown: the wait is at least etaSeconds. */
  etaIsLowerBound?: true;
  /** RFC 3339 UTC with milliseconds: when the agent computed this document (its own clock). */
  updatedAt: string;
  /** One entry per image, in the kubelet's pull order: image volumes, init containers, containers. */
  images: ImagePullStatus[];
  /**
   * How many of the pod's images were left out of `images` to keep the annotation within
   * MAX_STATUS_ANNOTATION_BYTES (finished images go first). Absent when none were.
   */
  imagesOmitted?: number;
}

/**
 * Formats seconds the way Go's time.Duration prints them, rounded to whole seconds
 * ("45s", "1m5s", "2h0m3s"): the form Kubernetes users read everywhere, and a valid label value.
 */
export function formatDuration(totalSeconds: number): string {
  const s = Math.max(0, Math.round(totalSeconds));
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const seconds = s % 60;
  if (hours > 0) return `${hours}h${minutes}m${seconds}s`;
  if (minutes > 0) return `${minutes}m${seconds}s`;
  return `${seconds}s`;
}

/** Kubernetes label value syntax: ≤ 63 chars, alphanumeric at both ends, [-_.] inside. */
const LABEL_VALUE_RE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** `value` may be a Kubernetes label value (what LABEL_ETA and LABEL_PROGRESS must be). */
export function isValidLabelValue(value: string): boolean {
  return value.length <= 63 && LABEL_VALUE_RE.test(value);
}
