// The events the agent records on a pod, once per transition: Warning PullStalled (an image
// gets no bytes), PullSlow (an image trickles below --slow-rate), PullFailed (an image failed),
// and one Normal ImagesPulled summary once all the pod's images are present. Pure: the caller
// keeps the memory between calls and creates the core/v1 Events built here.
import type { CoreV1Event } from '@kubernetes/client-node';
import {
  EVENT_IMAGES_PULLED,
  EVENT_PULL_FAILED,
  EVENT_PULL_SLOW,
  EVENT_PULL_STALLED,
  EVENT_SOURCE,
  MAX_MESSAGE_LENGTH,
  formatDuration,
  isPresent,
  type ImagePullStatus,
} from '../../common/contract.js';
import { formatBytes, formatBytesPair, formatRate, keepEnds } from '../../common/format.js';
import type { TrackerSettings } from '../tracker/types.js';
import type { PodProgress } from './pod-progress.js';
import { shortImage, truncate } from './text.js';

/** Which transitions were already reported for a pod (plain data, kept by the caller). */
export interface EventMemory {
  /** Images (normalised names) reported Stalled and still Stalled. */
  stalled: string[];
  /** Images reported slow (PullSlow) and still slow. */
  slow: string[];
  /** Images reported Failed and still Failed. */
  failed: string[];
  /** The ImagesPulled summary was reported. */
  summarized: boolean;
}

/** The memory of a pod nothing was reported for yet. */
export function emptyEventMemory(): EventMemory {
  return { stalled: [], slow: [], failed: [], summarized: false };
}

/** The reasons the agent records events under (common/contract.ts EVENT_*). */
export type EventReason =
  typeof EVENT_PULL_STALLED | typeof EVENT_PULL_SLOW | typeof EVENT_PULL_FAILED | typeof EVENT_IMAGES_PULLED;

/** An event to record: what happened, before it is addressed to a pod. */
export interface PodEvent {
  type: 'Warning' | 'Normal';
  reason: EventReason;
  message: string;
  /** The image it is about; null for the pod-wide summary. */
  image: string | null;
}

/**
 * The thresholds the events' messages quote: the agent's `tracker` config (--stall-after in
 * milliseconds, --slow-rate in bytes per second, 0 when off).
 */
export type EventThresholds = Pick<TrackerSettings, 'stallAfterMs' | 'slowRateBytesPerSecond'>;

/** What eventTransitions needs besides the pod's view. */
export interface EventOptions extends EventThresholds {
  /** Images the tracker flags slow (TrackedPull.slow), by normalised name. */
  slowImages?: ReadonlySet<string>;
}

function figures(i: ImagePullStatus): string {
  return i.bytesTotal > 0 ? `${i.percent}%, ${formatBytesPair(i.bytesDone, i.bytesTotal)}` : `${i.percent}%`;
}

function seconds(from: string | null, to: string | null): number | null {
  if (from === null || to === null) return null;
  const s = (Date.parse(to) - Date.parse(from)) / 1000;
  return Number.isFinite(s) && s >= 0 ? s : null;
}

/**
 * The summary of a pod whose images are all present: size, time, mean rate, cached share.
 * Time runs from the first image's start to the last one's finish.
 */
export function summaryMessage(p: PodProgress): string {
  const size = p.bytesTotal + p.bytesCached;
  const n = p.images.length;
  const what = n === 1 && p.images[0] !== undefined ? shortImage(p.images[0].image) : `${n} images`;
  if (p.bytesTotal === 0) {
    // A size of 0 is one nobody knows (no record size, no registry answer): not shown as "0 B".
    const known = size > 0 ? ` (${formatBytes(size)})` : '';
    return truncate(`${what} already present on the node${known}`, MAX_MESSAGE_LENGTH);
  }
  const starts = p.images
    .map((i) => i.startedAt)
    .filter((t): t is string => t !== null)
    .sort();
  const ends = p.images
    .map((i) => i.finishedAt)
    .filter((t): t is string => t !== null)
    .sort();
  const took = seconds(starts[0] ?? null, ends[ends.length - 1] ?? null);
  const cachedShare = size > 0 ? Math.round((100 * p.bytesCached) / size) : 0;
  const time =
    took === null
      ? ''
      : ` in ${formatDuration(took)}${took > 0 ? ` (${formatRate(p.bytesTotal / took)} mean)` : ''}`;
  return truncate(
    `${what} (${formatBytes(size)}): ${formatBytes(p.bytesTotal)} fetched${time}, ${cachedShare}% already present`,
    MAX_MESSAGE_LENGTH,
  );
}

/**
 * The events due for this view, and the memory to keep. An image entering Stalled, slow or
 * Failed is reported once; leaving that state re-arms it. The summary is reported once.
 */
export function eventTransitions(
  memory: EventMemory,
  p: PodProgress,
  opts: EventOptions,
): { memory: EventMemory; events: PodEvent[] } {
  const events: PodEvent[] = [];
  const inPhase = (phase: string) => p.images.filter((i) => i.phase === phase);
  const track = (was: readonly string[], now: ImagePullStatus[], emit: (i: ImagePullStatus) => PodEvent) => {
    for (const i of now) if (!was.includes(i.image)) events.push(emit(i));
    return now.map((i) => i.image);
  };
  const name = (i: ImagePullStatus) => shortImage(i.image);

  const stalled = track(memory.stalled, inPhase('Stalled'), (i) => ({
    type: 'Warning',
    reason: EVENT_PULL_STALLED,
    image: i.image,
    message: truncate(
      `no bytes for ${formatDuration(opts.stallAfterMs / 1000)} pulling ${name(i)} (${figures(i)})`,
      MAX_MESSAGE_LENGTH,
    ),
  }));
  const slowNow = p.images.filter(
    (i) => opts.slowImages?.has(i.image) === true && i.phase !== 'Stalled' && i.phase !== 'Failed',
  );
  const slow = track(memory.slow, slowNow, (i) => ({
    type: 'Warning',
    reason: EVENT_PULL_SLOW,
    image: i.image,
    message: truncate(
      `pulling ${name(i)} at ${formatRate(i.bytesPerSecond)}, below ${formatRate(opts.slowRateBytesPerSecond)} for ` +
        `${formatDuration(opts.stallAfterMs / 1000)} (${figures(i)})`,
      MAX_MESSAGE_LENGTH,
    ),
  }));
  const failed = track(memory.failed, inPhase('Failed'), (i) => ({
    type: 'Warning',
    reason: EVENT_PULL_FAILED,
    image: i.image,
    // The cause of a wrapped error is at its end: keep both ends.
    message: keepEnds(`${name(i)}: ${i.error ?? 'the pull did not complete'}`, MAX_MESSAGE_LENGTH),
  }));
  let summarized = memory.summarized;
  if (!summarized && isPresent(p.phase)) {
    events.push({ type: 'Normal', reason: EVENT_IMAGES_PULLED, image: null, message: summaryMessage(p) });
    summarized = true;
  }
  return { memory: { stalled, slow, failed, summarized }, events };
}

/** The pod an event is about. */
export interface PodRef {
  namespace: string;
  name: string;
  uid: string;
}

/** Where and when an event is recorded. */
export interface EventBodyOptions {
  /** This node's name: source.host and reportingInstance. */
  node: string;
  /** The event's time: lastTimestamp, and the name's suffix. */
  now: Date;
  /** Tells apart events made in the same millisecond for one pod. */
  seq?: number;
  /** For a repeat of an earlier event: its count and first time. */
  count?: number;
  firstTimestamp?: Date;
}

/** Event names: the object's name, a dot, and a hex time stamp, as the kubelet names them. */
const MAX_NAME = 253;
/** The API server's limit on reportingInstance. */
const MAX_REPORTING_INSTANCE = 128;

/**
 * The core/v1 Event to create in the pod's namespace: named `<pod name>.<hex nanoseconds>` as the
 * kubelet names its events, involvedObject the pod, source and reportingComponent
 * pulltrace-node-agent on this node.
 */
export function eventBody(e: PodEvent, pod: PodRef, opts: EventBodyOptions): CoreV1Event {
  const nanos = BigInt(opts.now.getTime()) * 1_000_000n + BigInt(opts.seq ?? 0);
  const suffix = `.${nanos.toString(16)}`;
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: {
      // A cut name must still end in an alphanumeric to stay a valid DNS subdomain.
      name: pod.name.slice(0, MAX_NAME - suffix.length).replace(/[-.]+$/, '') + suffix,
      namespace: pod.namespace,
    },
    involvedObject: {
      apiVersion: 'v1',
      kind: 'Pod',
      namespace: pod.namespace,
      name: pod.name,
      uid: pod.uid,
    },
    type: e.type,
    reason: e.reason,
    message: e.message,
    source: { component: EVENT_SOURCE, host: opts.node },
    reportingComponent: EVENT_SOURCE,
    reportingInstance: opts.node.slice(0, MAX_REPORTING_INSTANCE),
    count: opts.count ?? 1,
    firstTimestamp: opts.firstTimestamp ?? opts.now,
    lastTimestamp: opts.now,
  };
}
