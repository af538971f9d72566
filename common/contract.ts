// The public contract: every label, annotation, condition and event reason that pulltrace
// writes or reads, in one place. Users' scripts depend on these names; docs/contract.md
// documents each one, and a test checks that every exported key appears there.

export const PREFIX = 'pulltrace.io/';

/** Label set by the webhook on admission; the node agent watches only pods carrying it. */
export const LABEL_TRACKED = `${PREFIX}tracked`;
/** Pod annotation or label (or namespace label) with value "false": pulltrace leaves the pod alone. */
export const KEY_TRACK = `${PREFIX}track`;
/** Pod annotation with value "true": the webhook adds the readiness gate. */
export const ANNOTATION_READINESS_GATE = `${PREFIX}readiness-gate`;

/** Labels written by the node agent, for `kubectl get pods -L`. */
export const LABEL_PROGRESS = `${PREFIX}progress`;
export const LABEL_ETA = `${PREFIX}eta`;

/** Annotations written by the node agent. */
export const ANNOTATION_PROGRESS = `${PREFIX}progress`;
export const ANNOTATION_ETA_SECONDS = `${PREFIX}eta-seconds`;
export const ANNOTATION_PHASE = `${PREFIX}phase`;
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

export function isPhase(value: unknown): value is Phase {
  return typeof value === 'string' && (PHASES as readonly string[]).includes(value);
}

/** Event reasons on the pod. */
export const EVENT_PULL_STALLED = 'PullStalled'; // Warning: no bytes for --stall-after
export const EVENT_PULL_SLOW = 'PullSlow'; // Warning: rate below --slow-rate for --stall-after
export const EVENT_PULL_FAILED = 'PullFailed'; // Warning: an image of the pod failed
export const EVENT_IMAGES_PULLED = 'ImagesPulled'; // Normal: summary once all images are present

/** The component name events are reported under. */
export const EVENT_SOURCE = 'pulltrace-node-agent';

/** Version of the JSON document in the status annotation (docs/status.schema.json). */
export const STATUS_VERSION = 'pulltrace.io/v1';

/** Bounds on what the agent writes, so nothing grows without limit. */
export const MAX_STATUS_ANNOTATION_BYTES = 16 * 1024;
export const MAX_MESSAGE_LENGTH = 256;
export const MAX_IMAGE_REF_LENGTH = 512;
export const MAX_ERROR_LENGTH = 256;

/** One image's pull, as it appears in the status annotation, `pulls --json` and metrics. */
export interface ImagePullStatus {
  /** Image reference, normalised (e.g. docker.io/library/nginx:1.27). */
  image: string;
  phase: Phase;
  /** ⌊100 · bytesDone / bytesTotal⌋, capped at 99 until the image record exists, then 100. */
  percent: number;
  /** Bytes fetched so far of those this pull must fetch; ≤ bytesTotal. */
  bytesDone: number;
  /** Bytes this pull must fetch: the manifest's blobs minus those already present. */
  bytesTotal: number;
  /** Bytes already present on the node before the pull. */
  bytesCached: number;
  layersDone: number;
  layersTotal: number;
  bytesPerSecond: number;
  /** Absent (null in JSON) when unknown. */
  etaSeconds: number | null;
  startedAt: string | null;
  finishedAt: string | null;
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

/** The whole document in the `pulltrace.io/status` annotation. */
export interface PodPullStatus {
  version: typeof STATUS_VERSION;
  phase: Phase;
  percent: number;
  /** Seconds until the pod's last image is in (all its images, and those queued ahead of it). */
  etaSeconds: number | null;
  /** Present (true) when a size behind the ETA was unknown: the wait is at least etaSeconds. */
  etaIsLowerBound?: true;
  updatedAt: string;
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

export function isValidLabelValue(value: string): boolean {
  return value.length <= 63 && LABEL_VALUE_RE.test(value);
}
