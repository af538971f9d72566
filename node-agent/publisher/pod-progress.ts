// The pod-level view of a pod's image pulls, and everything the agent writes from it: the
// labels, the annotations (with the bounded status document) and the ImagesPulled condition.
// Pure: the tracker's per-image statuses in, plain data out; the caller keeps the percent floor
// from one call to the next and does the writing.
import {
  ANNOTATION_ETA_SECONDS,
  ANNOTATION_PHASE,
  ANNOTATION_PROGRESS,
  ANNOTATION_STATUS,
  CONDITION_IMAGES_PULLED,
  LABEL_ETA,
  LABEL_PROGRESS,
  MAX_ERROR_LENGTH,
  MAX_IMAGE_REF_LENGTH,
  MAX_MESSAGE_LENGTH,
  MAX_STATUS_ANNOTATION_BYTES,
  STATUS_VERSION,
  formatDuration,
  isFinal,
  isPresent,
  type ImagePullStatus,
  type Phase,
  type PodPullStatus,
} from '../../common/contract.js';
import { formatBytes, formatBytesPair, formatRate } from '../../common/format.js';
import { eta } from '../tracker/rate.js';
import { kubeTime, shortImage, truncate, utf8Bytes } from './text.js';

/** What podProgress needs besides the images' statuses; every field is optional. */
export interface PodProgressOptions {
  /** The percent last published for this pod: the result never goes below it. */
  floor?: number;
  /**
   * A pull of an image this pod does not wait for is in flight on the node. The kubelet pulls
   * one image at a time by default, so a pod whose next image shows no pull yet is then
   * waiting its turn (Queued), not resolving.
   */
  nodeBusy?: boolean;
  /**
   * Size in bytes of an image with no pull yet (Resolving or Queued), from its manifest in the
   * content store or the registry; null when neither answered.
   */
  sizeOf?: (image: string) => number | null;
  /**
   * Bytes the node must fetch before this pod's images can come (the kubelet pulls serially):
   * what other pods' pulls in flight still need, and the sizes of other pods' images queued
   * ahead of this pod. Default 0.
   */
  bytesAhead?: number;
  /** The node's download rate now (bytes/s), over every pull in flight. Default: this pod's. */
  nodeBytesPerSecond?: number;
  /** Some image queued ahead of this pod has no known size: the ETA is then a lower bound. */
  aheadUnknown?: boolean;
}

/** One pod's pulls seen as a whole. */
export interface PodProgress {
  /** The pod's phase (rules at podProgress). */
  phase: Phase;
  /** Integer percent of the pod's bytes to fetch; 100 only once every image is present. */
  percent: number;
  /**
   * Seconds until the pod's last image is in: the bytes still to come for all its images
   * (queued ones at their manifest size) and for those queued ahead of it on the node, at the
   * node's rate; null when no rate is measured yet.
   */
  etaSeconds: number | null;
  /** Some size behind the ETA is unknown (counted as 0): the real wait is at least etaSeconds. */
  etaIsLowerBound: boolean;
  /** Bytes fetched, summed over the images whose size is known. */
  bytesDone: number;
  /** Bytes to fetch, summed over the images whose size is known (queued ones at their manifest size). */
  bytesTotal: number;
  /** Bytes already on the node, summed over the images. */
  bytesCached: number;
  /** Current rate of the images being fetched, bytes per second. */
  bytesPerSecond: number;
  /** The images in pull order, those waiting behind another pull marked Queued. */
  images: ImagePullStatus[];
  /** The image the one-line message is about: the one being pulled, or the failed one. */
  active: ImagePullStatus | null;
}

/** The condition as the agent writes it (plain JSON for a patch body). */
export interface ConditionBody {
  type: string;
  status: 'True' | 'False';
  reason: Phase;
  message: string;
  /** RFC 3339 at whole seconds. */
  lastTransitionTime: string;
  observedGeneration?: number;
}

/** Everything the agent owns on one pod: written by patches.ts, read back from the pod there. */
export interface PublishedState {
  /** The owned labels (progress, eta), by key. */
  labels: Record<string, string>;
  /** The owned annotations (progress, eta-seconds, phase, status), by key. */
  annotations: Record<string, string>;
  condition: ConditionBody;
}

/** No pull of the image seen yet, so its size is unknown. */
const sizeUnknown = (p: Phase): boolean => p === 'Resolving' || p === 'Queued';

/** An image with no pull yet, counted at its manifest size when known. */
interface Sized {
  status: ImagePullStatus;
  /** Bytes to fetch: the pull's figure, or the manifest size for one not started; null unknown. */
  total: number | null;
  done: number;
}

function sized(images: readonly ImagePullStatus[], sizeOf: (image: string) => number | null): Sized[] {
  return images.map((i) => {
    if (!sizeUnknown(i.phase))
      return { status: i, total: i.bytesTotal, done: Math.min(i.bytesDone, i.bytesTotal) };
    return { status: i, total: sizeOf(i.image), done: 0 };
  });
}

/**
 * Percent of the pod's bytes. An image whose pull has not started counts at its manifest size;
 * when that is unknown too, as the mean size of the known ones, so a pod's first image does not
 * reach 100 % on its own. When a guess was too small, percent holds (it never goes backwards)
 * until the real figure passes it.
 */
function rawPercent(items: readonly Sized[]): number {
  let done = 0;
  let total = 0;
  let known = 0;
  let unknown = 0;
  for (const i of items) {
    if (i.total === null) {
      unknown++;
      continue;
    }
    done += i.done;
    total += i.total;
    if (i.total > 0) known++;
  }
  const estimate = total + (known === 0 ? 0 : (unknown * total) / known);
  // No size known: 100 only when everything is in (a pull that failed before its first byte is 0).
  if (estimate <= 0) return unknown === 0 && items.every((i) => isPresent(i.status.phase)) ? 100 : 0;
  return Math.floor((100 * done) / estimate);
}

/**
 * The pod's view from its images' statuses (one per image, in pull order):
 * - any image Failed → Failed;
 * - every image Pulled or Cached → Cached if all were cached, else Pulled (no image: Cached);
 * - an image with no pull yet while an earlier one is still coming → Queued;
 * - an image being fetched is Stalled → Stalled;
 * - else the phase of the first image being fetched.
 * Percent and ETA cover every image the pod waits for (see PodProgress.etaSeconds).
 */
export function podProgress(
  statuses: readonly ImagePullStatus[],
  opts: PodProgressOptions = {},
): PodProgress {
  let pendingBefore = opts.nodeBusy === true;
  const images = statuses.map((s): ImagePullStatus => {
    if (isFinal(s.phase)) return { ...s };
    const queued = pendingBefore && s.phase === 'Resolving';
    pendingBefore = true;
    return queued ? { ...s, phase: 'Queued', etaSeconds: null, bytesPerSecond: 0 } : { ...s };
  });
  const pending = images.filter((i) => !isFinal(i.phase));
  const fetching = pending.filter((i) => i.phase !== 'Queued');
  const failed = images.find((i) => i.phase === 'Failed');

  let phase: Phase;
  let active: ImagePullStatus | null;
  if (failed !== undefined) {
    phase = 'Failed';
    active = failed;
  } else if (pending.length === 0) {
    phase = images.every((i) => i.phase === 'Cached') ? 'Cached' : 'Pulled';
    active = null;
  } else {
    const stalled = fetching.find((i) => i.phase === 'Stalled');
    active = stalled ?? fetching[0] ?? pending[0] ?? null;
    phase = stalled !== undefined ? 'Stalled' : (active?.phase ?? 'Queued');
  }

  const items = sized(images, opts.sizeOf ?? (() => null));
  const complete = isPresent(phase);
  const floor = Math.max(0, Math.floor(opts.floor ?? 0));
  const percent = complete ? 100 : Math.min(99, Math.max(floor, rawPercent(items)));

  const bytesPerSecond = fetching.reduce((n, i) => n + i.bytesPerSecond, 0);
  const rate = Math.max(bytesPerSecond, opts.nodeBytesPerSecond ?? 0);
  const waiting = items.filter((i) => !isFinal(i.status.phase));
  const own = waiting.reduce((n, i) => n + Math.max(0, (i.total ?? 0) - i.done), 0);
  const etaIsLowerBound =
    !complete && ((opts.aheadUnknown ?? false) || waiting.some((i) => i.total === null));
  let etaSeconds: number | null;
  if (complete) etaSeconds = 0;
  else if (phase === 'Failed' || phase === 'Stalled') etaSeconds = null;
  else if (waiting.length === 1 && fetching.length === 1 && active !== null && (opts.bytesAhead ?? 0) === 0) {
    // One image and nothing ahead: the tracker's own ETA (it allows for bytes not yet flushed).
    etaSeconds = active.etaSeconds;
  } else {
    // Nothing known still to come while images are missing: no figure rather than "0s".
    const remaining = own + (opts.bytesAhead ?? 0);
    etaSeconds = remaining > 0 ? eta(remaining, rate) : null;
  }
  const counted = items.filter((i) => i.total !== null);
  return {
    phase,
    percent,
    etaSeconds,
    etaIsLowerBound: etaIsLowerBound && etaSeconds !== null && etaSeconds > 0,
    bytesDone: counted.reduce((n, i) => n + i.done, 0),
    bytesTotal: counted.reduce((n, i) => n + (i.total ?? 0), 0),
    bytesCached: counted.reduce((n, i) => n + i.status.bytesCached, 0),
    bytesPerSecond,
    images,
    active,
  };
}

/** Longest image name in the message, so the figures after it always fit. */
const MESSAGE_IMAGE_LENGTH = 120;

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** " ETA 5s" for the pod (all its images), " ETA ≥5s" when a size is unknown; "" when unknown. */
function etaText(p: PodProgress): string {
  if (p.etaSeconds === null) return '';
  return ` ETA ${p.etaIsLowerBound ? '≥' : ''}${formatDuration(p.etaSeconds)}`;
}

/**
 * The condition's one-line message, at most MAX_MESSAGE_LENGTH characters, e.g.
 * `nginx:1.27 63% (42.3/67.0 MB) 5.1 MB/s ETA 5s`. Figures are the active image's.
 */
export function conditionMessage(p: PodProgress): string {
  const n = p.images.length;
  const a = p.active;
  const name = a === null ? '' : truncate(shortImage(a.image), MESSAGE_IMAGE_LENGTH);
  const later = a === null ? 0 : p.images.filter((i) => i !== a && !isFinal(i.phase)).length;
  const more = later > 0 ? `, then ${plural(later, 'more image')}` : '';
  const bytes = (i: ImagePullStatus): string =>
    i.bytesTotal > 0 ? ` (${formatBytesPair(i.bytesDone, i.bytesTotal)})` : '';
  let text: string;
  if (p.phase === 'Pulled') {
    const what = n === 1 && p.images[0] !== undefined ? shortImage(p.images[0].image) : plural(n, 'image');
    const cached = p.bytesCached > 0 ? `, ${formatBytes(p.bytesCached)} already present` : '';
    text = `${truncate(what, MESSAGE_IMAGE_LENGTH)} pulled: ${formatBytes(p.bytesTotal)} fetched${cached}`;
  } else if (p.phase === 'Cached') {
    const only = p.images[0];
    text =
      n === 1 && only !== undefined
        ? `${truncate(shortImage(only.image), MESSAGE_IMAGE_LENGTH)} already present on the node`
        : n === 0
          ? 'no image to pull'
          : `all ${plural(n, 'image')} already present on the node`;
  } else if (a === null) {
    text = p.phase;
  } else if (p.phase === 'Failed') {
    text = `${name} failed: ${a.error ?? 'the pull did not complete'}`;
  } else if (p.phase === 'Queued') {
    text = `${name} queued behind another pull on the node${more}${etaText(p)}`;
  } else if (p.phase === 'Resolving') {
    text = `${name} resolving${more}`;
  } else if (p.phase === 'Unpacking') {
    text = `${name} unpacking (${formatBytes(a.bytesTotal + a.bytesCached)})${more}`;
  } else if (p.phase === 'Stalled') {
    text = `${name} ${a.percent}%${bytes(a)} stalled: no bytes arriving${more}`;
  } else {
    const rate = a.bytesPerSecond > 0 ? ` ${formatRate(a.bytesPerSecond)}` : '';
    text = `${name} ${a.percent}%${bytes(a)}${rate}${more}${etaText(p)}`;
  }
  return truncate(text, MAX_MESSAGE_LENGTH);
}

/** Errors are cut to this length first when the status document is too large. */
const SHORT_ERROR_LENGTH = 64;

function clip(i: ImagePullStatus, errorLength: number): ImagePullStatus {
  return {
    ...i,
    image: truncate(i.image, MAX_IMAGE_REF_LENGTH),
    error: i.error === null ? null : truncate(i.error, errorLength),
  };
}

/** Which images to leave out first: finished ones, then queued, then from the end. */
function dropRank(i: ImagePullStatus, isActive: boolean): number {
  if (isActive) return 0;
  if (isPresent(i.phase)) return 3;
  if (sizeUnknown(i.phase)) return 2;
  return 1;
}

/**
 * The document cut to at most `maxBytes` of UTF-8 JSON: image references and errors at their
 * bounds; then shorter errors; then images left out (counted in `imagesOmitted`), finished ones
 * first, then queued ones, keeping the image being pulled or the failed one to the last.
 */
export function boundStatus(doc: PodPullStatus, maxBytes = MAX_STATUS_ANNOTATION_BYTES): PodPullStatus {
  const size = (d: PodPullStatus): number => utf8Bytes(JSON.stringify(d));
  const { imagesOmitted: _omitted, ...base } = doc;
  const omittedBefore = doc.imagesOmitted ?? 0;
  const withImages = (images: ImagePullStatus[], omitted: number): PodPullStatus =>
    omitted > 0 ? { ...base, images, imagesOmitted: omitted } : { ...base, images };

  let images = doc.images.map((i) => clip(i, MAX_ERROR_LENGTH));
  let out = withImages(images, omittedBefore);
  if (size(out) <= maxBytes) return out;
  images = images.map((i) => clip(i, SHORT_ERROR_LENGTH));
  out = withImages(images, omittedBefore);
  if (size(out) <= maxBytes) return out;

  const activeIndex = images.findIndex((i) => !isPresent(i.phase) && !sizeUnknown(i.phase));
  const order = images
    .map((img, index) => ({ index, rank: dropRank(img, index === activeIndex) }))
    .sort((x, y) => y.rank - x.rank || y.index - x.index);
  const bytes = images.map((i) => utf8Bytes(JSON.stringify(i)));
  const kept = new Set(images.map((_, i) => i));
  let sum = bytes.reduce((n, b) => n + b, 0);
  const estimate = (): number => {
    const shell = utf8Bytes(JSON.stringify(withImages([], omittedBefore + images.length - kept.size)));
    return shell + sum + Math.max(0, kept.size - 1);
  };
  for (const { index } of order) {
    if (estimate() <= maxBytes) break;
    kept.delete(index);
    sum -= bytes[index] ?? 0;
  }
  out = withImages(
    images.filter((_, i) => kept.has(i)),
    omittedBefore + images.length - kept.size,
  );
  return out;
}

/** The status document for the annotation at time `now` (its updatedAt), already bounded. */
export function statusDocument(p: PodProgress, now: Date): PodPullStatus {
  return boundStatus({
    version: STATUS_VERSION,
    phase: p.phase,
    percent: p.percent,
    etaSeconds: p.etaSeconds,
    ...(p.etaIsLowerBound ? { etaIsLowerBound: true as const } : {}),
    updatedAt: now.toISOString(),
    images: p.images,
  });
}

/** When and over what the state is published. */
export interface PublishOptions {
  /** The time written: the document's updatedAt, and a new lastTransitionTime. */
  now: Date;
  /** The pod's metadata.generation; when given, the condition's observedGeneration. */
  generation?: number;
  /** The condition now on the pod: its lastTransitionTime is kept unless the status flips. */
  previous?: Pick<ConditionBody, 'status' | 'lastTransitionTime'> | null;
}

/** The ImagesPulled condition for this view. */
export function imagesPulledCondition(p: PodProgress, opts: PublishOptions): ConditionBody {
  const status = isPresent(p.phase) ? 'True' : 'False';
  const prev = opts.previous;
  const keep = prev !== undefined && prev !== null && prev.status.toLowerCase() === status.toLowerCase();
  const c: ConditionBody = {
    type: CONDITION_IMAGES_PULLED,
    status,
    reason: p.phase,
    message: conditionMessage(p),
    lastTransitionTime: keep ? prev.lastTransitionTime : kubeTime(opts.now),
  };
  if (opts.generation !== undefined) c.observedGeneration = opts.generation;
  return c;
}

/**
 * Everything to publish for this view: labels (progress, eta), annotations (progress,
 * eta-seconds, phase, status) and the condition. ETA keys are absent when the ETA is unknown.
 */
export function publishedState(p: PodProgress, opts: PublishOptions): PublishedState {
  const percent = String(p.percent);
  const labels: Record<string, string> = { [LABEL_PROGRESS]: percent };
  const annotations: Record<string, string> = {
    [ANNOTATION_PROGRESS]: percent,
    [ANNOTATION_PHASE]: p.phase,
    [ANNOTATION_STATUS]: JSON.stringify(statusDocument(p, opts.now)),
  };
  if (p.etaSeconds !== null) {
    labels[LABEL_ETA] = formatDuration(p.etaSeconds);
    annotations[ANNOTATION_ETA_SECONDS] = String(Math.max(0, Math.round(p.etaSeconds)));
  }
  return { labels, annotations, condition: imagesPulledCondition(p, opts) };
}
