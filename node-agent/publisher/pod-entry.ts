// A pod the publisher follows: what it waits for, what was last written on it, and when it may
// be written next. Pure: the publisher keeps the entries and changes them as it writes.
import type { V1Pod } from '@kubernetes/client-node';
import { ANNOTATION_PROGRESS } from '../../common/contract.js';
import { emptyEventMemory, type EventMemory, type PodEvent } from './events.js';
import { previousStateOf, type PreviousState } from './patches.js';
import type { PublishedState } from './pod-progress.js';

/** The publisher's state for one pod ("namespace/name"). */
export interface PodEntry {
  key: string;
  pod: V1Pod;
  images: string[];
  /** Each image's pull policy for this pod. */
  policies: Map<string, string>;
  /** Images the kubelet shows this pod has (a container of that very image started). */
  present: Set<string>;
  /** What is on the pod: read back at start-up, then what was last written. */
  prev: PreviousState | PublishedState | null;
  /** The percent never goes back below this. */
  floor: number;
  memory: EventMemory;
  /** Do not write before this time (budget, back-off). */
  notBefore: number;
  dirty: boolean;
  /** Every image in and written: nothing more to do. */
  done: boolean;
  /** Events due but not yet sent (waiting for tokens). */
  pendingEvents: PodEvent[];
  eventSeq: number;
  /** Writes failed in a row (retryable errors): each one doubles the wait before the next. */
  failures: number;
}

/**
 * A pod seen for the first time, with what an earlier run wrote on it (previousStateOf).
 * `waiting`: the images the kubelet says it still waits for (podImages).
 */
export function newEntry(key: string, pod: V1Pod, waiting: readonly string[]): PodEntry {
  const e: PodEntry = {
    key,
    pod,
    images: [],
    policies: new Map(),
    present: new Set(),
    prev: previousStateOf(pod),
    floor: 0,
    memory: emptyEventMemory(),
    notBefore: 0,
    dirty: true,
    done: false,
    pendingEvents: [],
    eventSeq: 0,
    failures: 0,
  };
  const finished = e.prev?.condition?.status === 'True';
  // What an earlier run published for a pull in progress: percent never goes back below it.
  const written = Number(e.prev?.annotations[ANNOTATION_PROGRESS]);
  if (Number.isFinite(written) && !finished) e.floor = written;
  // An earlier run wrote the final state, for this very spec (its observedGeneration is the
  // pod's generation) or the kubelet has every image: nothing to do. Following its images again
  // would rewrite it from what this run can see (Pulled for Cached, a new transition time) and
  // repeat the summary event; a final state stays final. A newer spec is looked at by onPod.
  const generation = pod.metadata?.generation;
  const sameSpec = generation !== undefined && e.prev?.condition?.observedGeneration === generation;
  if (finished && (waiting.length === 0 || sameSpec)) {
    e.done = true;
    // The images it is finished for: a later status of the same spec brings no new image.
    e.images = [...waiting];
  }
  return e;
}
