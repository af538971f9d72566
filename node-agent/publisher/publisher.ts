// Puts the tracker's view on the pods that wait for the images: the thin, stateful shell around
// the pure core (pod-images, pod-progress, patches, budget, events). For each tracked pod on
// the node it registers the pod's images with the tracker, computes the pod's view whenever
// the pod or a pull changes, and writes it when the budget allows: labels + annotations in one
// merge patch, the condition in one strategic merge patch of pods/status, and events.
// Once a pod's final state is written (all images in) it writes nothing more to it; after a
// failure it keeps following the pod, since the kubelet retries the pull.
// On start-up it reads back what an earlier run wrote (previousStateOf), so a pod left showing
// "Downloading" whose images are in gets its final state, and nothing is written twice.
import type { V1Pod } from '@kubernetes/client-node';
import { blankStatus, isPresent, type ImagePullStatus } from '../../common/contract.js';
import { backoffMs } from '../../common/backoff.js';
import { errorMessage } from '../../common/errors.js';
import type { Logger } from '../../common/logging.js';
import { silentLogger } from '../../common/logging.js';
import type { TrackerSnapshot } from '../tracker/types.js';
import { WriteBudget, type BudgetOptions } from './budget.js';
import { eventBody, eventTransitions, type EventThresholds } from './events.js';
import { classify, type PodWriter } from './kube-writer.js';
import { buildPatch } from './patches.js';
import { asPresent, podImages } from './pod-images.js';
import { nodeView, type NodeView } from './node-queue.js';
import { newEntry, type PodEntry } from './pod-entry.js';
import { podProgress, publishedState, type PodProgress } from './pod-progress.js';

/** What the publisher needs of the tracker. */
export interface PullView {
  /**
   * Follow `image` for a pod; returns its normalised name. `policy`: the pod's pull policy for
   * the image (Always, IfNotPresent, Never).
   */
  expect(image: string, policy?: string): string;
  /** No pod waits for `image` any more. */
  unexpect(image: string): void;
  /** The kubelet reports the pull of `image` failed, with this message. */
  fail(image: string, message: string): void;
  /** `since`: when the pod began to wait (ms); see PullTracker.statusOf. */
  statusOf(image: string, since?: number, policy?: string): ImagePullStatus | null;
  /** Bytes of an image not being pulled yet (content store or registry); null unknown. */
  sizeOf(image: string): number | null;
  /** Every pull on the node. */
  snapshot(): TrackerSnapshot;
  /** Called when the tracker's view changed; returns the unsubscribe function. */
  onChange(cb: (s: TrackerSnapshot) => void): () => void;
}

/** What a Publisher is built from: the agent's `budget` and thresholds, plus its edges. */
export interface PublisherOptions {
  /** This node's name: events' source.host and reportingInstance. */
  nodeName: string;
  /** The tracker (PullTracker implements PullView). */
  tracker: PullView;
  /** Where writes go (KubePodWriter; a fake in tests). */
  writer: PodWriter;
  /** The write budget: the agent's `budget` config, whole. */
  budget: BudgetOptions;
  /** For the PullStalled / PullSlow messages: the agent's `tracker` config fits. */
  thresholds: EventThresholds;
  /** Milliseconds since the epoch; default Date.now. */
  clock?: () => number;
  logger?: Logger;
  /** How often due pods are looked at (default 250 ms). */
  tickMs?: number;
}

// Every image of the pod is in (isPresent): the agent writes nothing more to it. Failed is final
// for the pull but not for the pod: the kubelet retries with back-off, and the retry is followed.

/** Longest wait between two tries of a failing write, when the server gave no Retry-After. */
export const MAX_RETRY_MS = 30_000;

const key = (p: V1Pod): string => `${p.metadata?.namespace ?? ''}/${p.metadata?.name ?? ''}`;

/**
 * Writes each tracked pod's progress on it: one per agent, fed pods by the watch
 * (onPod/onDelete) and pulls by the tracker (onChange). Every `tickMs` it looks at the pods that
 * changed or whose wait is over, computes their view with the pure modules, asks the
 * WriteBudget, and writes through the PodWriter. A failed write is classified
 * (kube-writer.ts classify): a gone pod is forgotten, a retryable one retried with doubling
 * waits up to MAX_RETRY_MS, a rejected one tried again after 30 s; nothing is thrown to the
 * caller.
 */
export class Publisher {
  private readonly pods = new Map<string, PodEntry>();
  private readonly budget: WriteBudget;
  private readonly now: () => number;
  private readonly log: Logger;
  private timer: NodeJS.Timeout | null = null;
  private busy: Promise<void> | null = null;
  private offChange: (() => void) | null = null;
  /** Writes made and failed, by kind: running totals for the metrics (node-agent/metrics.ts). */
  readonly counts = { status: 0, events: 0, retries: 0, gone: 0, errors: 0 };

  constructor(private readonly o: PublisherOptions) {
    this.budget = new WriteBudget(o.budget);
    this.now = o.clock ?? Date.now;
    this.log = o.logger ?? silentLogger();
    // Listen from the start, not from start(): pods come from the watch before start() is
    // called, and runOnce() (tests, shutdown) must see the pulls that moved meanwhile.
    this.offChange = o.tracker.onChange(() => {
      for (const e of this.pods.values()) e.dirty = true;
      if (this.timer !== null) this.kick();
    });
  }

  /** Starts the periodic pass (every `tickMs`, default 250 ms). */
  start(): void {
    const tick = () => {
      this.kick();
      this.timer = setTimeout(tick, this.o.tickMs ?? 250);
    };
    tick();
  }

  /** Stops the passes and the tracker subscription; resolves once the pass in progress ended. */
  async stop(): Promise<void> {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.offChange?.();
    this.offChange = null;
    await this.busy;
  }

  /** A pod was added or changed (from the watch). */
  onPod(pod: V1Pod): void {
    const k = key(pod);
    const pi = podImages(pod);
    let e = this.pods.get(k);
    if (e === undefined) {
      e = newEntry(k, pod, pi.waiting);
      this.pods.set(k, e);
    }
    e.pod = pod;
    if (e.done) {
      // A finished pod is looked at again when it waits for an image it did not have (its spec
      // changed: a new pull, from 0 %), or when its generation moved past the one the condition
      // says it observed (an in-place resize, say): then only the condition is written again.
      const newImage = !pi.waiting.every((img) => e.images.includes(img));
      const generation = pod.metadata?.generation;
      const observed = e.prev?.condition?.observedGeneration;
      if (!newImage && (generation === undefined || observed === generation)) return;
      e.done = false;
      if (newImage) e.floor = 0;
    }
    const names = pi.images.map((i) => this.o.tracker.expect(i.image, i.pullPolicy));
    for (const old of e.images) if (!names.includes(old)) this.release(old, k);
    e.images = names;
    e.policies = new Map(pi.images.map((i, n) => [names[n] ?? i.image, i.pullPolicy]));
    e.present = new Set(pi.images.flatMap((i, n) => (i.present ? [names[n] ?? i.image] : [])));
    for (const f of pi.failures) {
      // While backing off the kubelet says only "Back-off pulling image": keep the reason it
      // gave with ErrImagePull (e.g. "not found") when the image is already marked Failed.
      const known = this.o.tracker.statusOf(f.image, this.since(pod));
      if (f.reason === 'ImagePullBackOff' && known?.phase === 'Failed') continue;
      this.o.tracker.fail(
        f.image,
        `${f.reason}: ${f.message.replace(/^Failed to pull image "[^"]*": /, '')}`,
      );
    }
    e.dirty = true;
    this.kick();
  }

  /** A pod was deleted: forget it (its images stay expected while other pods want them). */
  onDelete(pod: V1Pod): void {
    const k = key(pod);
    const e = this.pods.get(k);
    if (e === undefined) return;
    this.pods.delete(k);
    this.budget.forget(k);
    for (const img of e.images) this.release(img, k);
  }

  /** Pods followed and not yet finished (the pulltrace_pods_followed metric). */
  active(): number {
    let n = 0;
    for (const e of this.pods.values()) if (!e.done) n++;
    return n;
  }

  /** When the pod began to wait for its images: its creation (ms), if the API said. */
  private since(pod: V1Pod): number | undefined {
    const c = pod.metadata?.creationTimestamp as Date | string | undefined;
    const t = c === undefined ? NaN : new Date(c).getTime();
    return Number.isFinite(t) ? t : undefined;
  }

  private release(image: string, except: string): void {
    for (const [k, e] of this.pods) if (k !== except && !e.done && e.images.includes(image)) return;
    this.o.tracker.unexpect(image);
  }

  /** One pass now (or the one in progress): for tests and shutdown. */
  async runOnce(): Promise<void> {
    if (this.busy === null) this.kick();
    await this.busy;
  }

  private kick(): void {
    if (this.busy !== null) return;
    this.busy = this.pass()
      .catch((err: unknown) => {
        this.log.error({ err }, 'publisher pass failed');
      })
      .finally(() => {
        this.busy = null;
      });
  }

  /** Looks at every pod that changed or whose wait is over, in turn. */
  private async pass(): Promise<void> {
    const snap = this.o.tracker.snapshot();
    const slow = new Set(snap.pulls.filter((p) => p.slow).map((p) => p.status.image));
    // A pod held back by the budget's interval (not by failing writes) is looked at at once
    // when every image is in: the final state does not wait out an interval.
    const finalHeld = (e: PodEntry, now: number) =>
      e.dirty &&
      e.failures === 0 &&
      !e.done &&
      e.images.length > 0 &&
      this.statuses(e, now).every((st) => isPresent(st.phase));
    const due = (e: PodEntry, now: number) =>
      !(e.done && e.pendingEvents.length === 0) &&
      (now >= e.notBefore || finalHeld(e, now)) &&
      (e.dirty || e.pendingEvents.length > 0);
    if (![...this.pods.values()].some((e) => due(e, this.now()))) return;
    const waiting = [...this.pods.values()]
      .filter((e) => !e.done && e.images.length > 0)
      .map((e) => ({ key: e.key, since: this.since(e.pod) ?? 0, statuses: this.statuses(e, this.now()) }));
    const node = nodeView(snap.pulls, waiting, (image) => this.o.tracker.sizeOf(image));
    for (const e of [...this.pods.values()]) {
      const now = this.now();
      if (!due(e, now)) continue;
      await this.sendEvents(e, now);
      if (e.done) continue;
      await this.publish(e, node, slow, now);
    }
  }

  /** Each image's status for this pod; one the kubelet shows the pod has is in (asPresent). */
  private statuses(e: PodEntry, now: number): ImagePullStatus[] {
    return e.images.map((img) => {
      const policy = e.policies.get(img);
      const s = this.o.tracker.statusOf(img, this.since(e.pod), policy) ?? blankStatus(img);
      // Resolving under IfNotPresent/Never: the tracker has not looked the record up yet (an
      // agent just restarted); it tells Pulled from Cached within a poll, so wait for it.
      const unknown = s.phase === 'Resolving' && policy !== 'Always';
      return e.present.has(img) && !unknown ? asPresent(s, now) : s;
    });
  }

  /** The pod's view now, over all its images and the node's queue ahead of it. */
  private progressOf(e: PodEntry, node: NodeView, now: number): PodProgress {
    const statuses = this.statuses(e, now);
    const fetching = statuses.some((s) => ['Downloading', 'Unpacking', 'Stalled'].includes(s.phase));
    const ahead = node.ahead.get(e.key);
    return podProgress(statuses, {
      floor: e.floor,
      nodeBusy: node.busy && !fetching,
      sizeOf: (image) => this.o.tracker.sizeOf(image),
      bytesAhead: ahead?.bytes ?? 0,
      aheadUnknown: ahead?.unknown ?? false,
      nodeBytesPerSecond: node.bytesPerSecond,
    });
  }

  private async publish(e: PodEntry, node: NodeView, slowNames: Set<string>, now: number): Promise<void> {
    e.dirty = false;
    if (e.images.length === 0) return;
    const progress = this.progressOf(e, node, now);
    const prevCondition = e.prev?.condition ?? null;
    // observedGeneration is the pod's generation now: `kubectl wait` then ignores an older True
    // left from before `kubectl set image` (onPod writes it again when the generation moves).
    const generation = e.pod.metadata?.generation;
    const state = publishedState(progress, {
      now: new Date(now),
      previous: prevCondition,
      ...(generation === undefined ? {} : { generation }),
    });
    const patch = buildPatch(e.prev, state);
    if (patch === null) {
      if (isPresent(progress.phase)) e.done = true;
      return;
    }
    const budgeted = { ...progress, ...(generation === undefined ? {} : { generation }) };
    const offer = this.budget.offer(e.key, budgeted, now);
    if (offer.decision === 'skip') return;
    if (offer.decision === 'later') {
      e.notBefore = offer.at;
      e.dirty = true;
      return;
    }
    const ns = e.pod.metadata?.namespace ?? 'default';
    const name = e.pod.metadata?.name ?? '';
    try {
      await this.o.writer.patchStatus(ns, name, patch);
      this.counts.status++;
    } catch (err) {
      this.failed(e, err, now);
      return;
    }
    this.budget.written(e.key, budgeted, now);
    e.failures = 0;
    e.prev = state;
    e.floor = progress.percent;
    const slowImages = new Set(progress.images.filter((i) => slowNames.has(i.image)).map((i) => i.image));
    const t = eventTransitions(e.memory, progress, { ...this.o.thresholds, slowImages });
    e.memory = t.memory;
    e.pendingEvents.push(...t.events);
    await this.sendEvents(e, now);
    if (isPresent(progress.phase)) {
      e.done = true;
      this.log.info({ pod: e.key, phase: progress.phase }, 'final state written');
    }
  }

  private failed(e: PodEntry, err: unknown, now: number): void {
    const c = classify(err);
    if (c.kind === 'gone') {
      this.counts.gone++;
      this.log.info({ pod: e.key }, 'pod gone; forgetting it');
      this.onDelete(e.pod);
      return;
    }
    if (c.kind === 'retry') {
      this.counts.retries++;
      e.failures++;
      // A Retry-After is the server's own pacing: kept as given. Otherwise the wait doubles
      // with each failure in a row, so an API server in trouble (5xx, timeouts) gets fewer and
      // fewer requests from every node instead of one per pod per second for as long as it lasts.
      const afterMs =
        c.retryAfter === true
          ? c.afterMs
          : backoffMs(e.failures - 1, { baseMs: c.afterMs, maxMs: MAX_RETRY_MS });
      e.notBefore = now + afterMs;
      e.dirty = true;
      this.log.warn({ pod: e.key, err: c.message, retryInMs: afterMs }, 'write failed; retrying');
      return;
    }
    this.counts.errors++;
    // A 4xx other than 404/409/429 is a bug on our side: do not hammer, but try again later.
    e.notBefore = now + 30_000;
    e.dirty = true;
    this.log.error({ pod: e.key, err: c.message }, 'write rejected');
  }

  private async sendEvents(e: PodEntry, now: number): Promise<void> {
    while (e.pendingEvents.length > 0) {
      const ev = e.pendingEvents[0];
      if (ev === undefined) break;
      const got = this.budget.acquire(`${e.key}#event`, now);
      if (!got.ok) {
        e.notBefore = Math.max(e.notBefore, got.at);
        return;
      }
      const uid = e.pod.metadata?.uid ?? '';
      const ns = e.pod.metadata?.namespace ?? 'default';
      const body = eventBody(
        ev,
        { namespace: ns, name: e.pod.metadata?.name ?? '', uid },
        { node: this.o.nodeName, now: new Date(now), seq: e.eventSeq++ },
      );
      try {
        await this.o.writer.createEvent(ns, body);
        this.counts.events++;
        e.pendingEvents.shift();
      } catch (err) {
        const c = classify(err);
        if (c.kind === 'retry') {
          e.notBefore = now + c.afterMs;
          return;
        }
        // Gone or rejected: an event is not worth more tries.
        this.log.warn({ pod: e.key, err: errorMessage(err) }, 'event not recorded');
        e.pendingEvents.shift();
      }
    }
  }
}
