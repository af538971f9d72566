// Follows every image pull on the node from what containerd shows, and answers for the images
// pods wait for. The lifecycle shell: each poll reads the in-flight ingests
// (Content/ListStatuses), moves the blobs' states, lets discovery.ts tie new blobs to their
// pull's manifest, checks image records when containerd says one changed, and hands each
// pull to progress.ts (pure) for its status. expectations.ts ties pods' images to pulls.
import type { ImagePullStatus } from '../../common/contract.js';
import { backoffMs } from '../../common/backoff.js';
import { errorMessage } from '../../common/errors.js';
import type { Logger } from '../../common/logging.js';
import { silentLogger } from '../../common/logging.js';
import type {
  ContainerdEvent,
  ContainerdSource,
  EventSubscription,
  IngestStatus,
} from '../containerd/source.js';
import { PullDiscovery, type FoundPull, type Orphan } from './discovery.js';
import { Expectations, type RegistryLookup } from './expectations.js';
import { currentPlatform } from './manifest.js';
import { advance, type ProgressOptions } from './progress.js';
import { ImageRecords } from './records.js';
import { findUnseen, updateBlobs } from './blob-states.js';
import { newPull } from './new-pull.js';
import { parseIngestRef } from './refs.js';
import type { BlobState, PullState } from './state.js';
import type { TrackedPull, TrackerSettings, TrackerSnapshot } from './types.js';

/** What a PullTracker is built from; durations in ms, rates in bytes per second. */
export interface PullTrackerOptions extends Partial<TrackerSettings>, Partial<ProgressOptions> {
  source: ContainerdSource;
  /** Milliseconds since the epoch; injectable for tests. Default Date.now. */
  clock?: () => number;
  /** Finished pulls stay visible this long. Default 5 min. */
  retentionMs?: number;
  /** Pulls kept at most (finished ones are forgotten first). Default 256. */
  maxPulls?: number;
  /** "os/arch[/variant]" chosen from an index. Default: this process's. */
  platform?: string;
  /** containerd's snapshotter for the CRI (where discarded layers' snapshots are). Default overlayfs. */
  snapshotter?: string;
  /**
   * The registry's answers for pods' images: tag → digest (to tie a tag to its pull) and sizes
   * (for images still queued). Null: no registry lookups; tags are then tied to the newest pull
   * of their repository (the `pulls` command, which follows no pods).
   */
  registry?: RegistryLookup | null;
  logger?: Logger;
}

/**
 * Follows every image pull on the node from containerd (read-only: Content ListStatuses, Info,
 * List, Read; Leases List, ListResources; Snapshots Stat; Images List; Events Subscribe for
 * /images/create and /images/update), polling every `pollIntervalMs` and at once on an image
 * event. Answers, for each image a pod waits for, its ImagePullStatus (statusOf) and, for the
 * node, every pull (snapshot, onChange). A poll that fails (containerd unreachable) leaves the
 * state as it was and is retried with back-off (1×, 2×, 4× the interval, up to 30 s); the last
 * error is in `lastError`.
 */
/** What to check when containerd cannot be read (docs/troubleshooting.md, section 3). */
const CONTAINERD_HINT =
  "check --containerd-address (the chart's nodeAgent.containerd.socketPath) names containerd's socket on the node, mounted into the pod, and that the agent may connect to it (root, or socketGroup)";

export class PullTracker {
  private readonly source: ContainerdSource;
  private readonly now: () => number;
  private readonly progress: ProgressOptions;
  private readonly pollIntervalMs: number;
  private readonly retentionMs: number;
  private readonly maxPulls: number;
  private readonly log: Logger;
  private readonly blobs = new Map<string, BlobState>();
  private readonly pulls = new Map<string, PullState>();
  private readonly discovery: PullDiscovery;
  private readonly expected: Expectations;
  private readonly listeners = new Set<(s: TrackerSnapshot) => void>();
  private readonly unknownRefs = new Set<string>();
  private subscription: EventSubscription | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly records = new ImageRecords();
  private running = false;
  private polling: Promise<void> | null = null;
  private failures = 0;
  /** The last error talking to containerd, or null when the last poll worked. */
  lastError: string | null = null;
  /** Polls made (for tests and metrics). */
  polls = 0;

  constructor(opts: PullTrackerOptions) {
    this.source = opts.source;
    this.now = opts.clock ?? Date.now;
    this.log = opts.logger ?? silentLogger();
    this.progress = {
      stallAfterMs: opts.stallAfterMs ?? 30_000,
      slowRateBytesPerSecond: opts.slowRateBytesPerSecond ?? 0,
      failAfterMs: opts.failAfterMs ?? 10_000,
      rateWindowMs: opts.rateWindowMs ?? 10_000,
    };
    this.pollIntervalMs = opts.pollIntervalMs ?? 1000;
    this.retentionMs = opts.retentionMs ?? 5 * 60_000;
    this.maxPulls = opts.maxPulls ?? 256;
    this.discovery = new PullDiscovery(this.source, {
      platform: opts.platform ?? currentPlatform(),
      snapshotter: opts.snapshotter ?? 'overlayfs',
      forgetAfterMs: this.progress.failAfterMs * 6,
      log: this.log,
    });
    this.expected = new Expectations(this.pulls, this.now, opts.registry ?? null);
  }

  /** Subscribes to events and polls until stop(). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.subscribe();
    this.schedule(0);
  }

  /** Stops polling and closes the event stream; the state stays readable. */
  stop(): void {
    this.running = false;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.subscription?.close();
    this.subscription = null;
  }

  /**
   * Calls `cb` after each poll whose outcome differs from the one before (any pull's or any
   * expected image's status). Returns the function that removes it.
   */
  onChange(cb: (s: TrackerSnapshot) => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  /** Every pull followed, as copies: in flight, or finished within `retentionMs`. */
  snapshot(): TrackerSnapshot {
    return {
      at: new Date(this.now()),
      pulls: [...this.pulls.values()].map((p): TrackedPull => ({
        key: p.key,
        indexDigest: p.indexDigest,
        manifestDigest: p.manifestDigest,
        configDigest: p.configDigest,
        sources: [...p.sources],
        names: [...p.names],
        slow: p.slow,
        status: { ...p.status },
      })),
    };
  }

  /**
   * Follows `image` for a waiting pod: until a pull for it shows up its status is Resolving
   * (containerd shows nothing while it resolves a tag). `policy`: the pod's imagePullPolicy.
   * Returns the normalised name.
   */
  expect(image: string, policy?: string): string {
    return this.expected.expect(image, policy);
  }

  /** No pod waits for `image` any more. */
  unexpect(image: string): void {
    this.expected.unexpect(image);
  }

  /**
   * The pull of `image` failed where containerd leaves no trace (a missing tag, a refused
   * login): the kubelet reports it on the pod (ErrImagePull), the publisher passes it on here.
   */
  fail(image: string, message: string): void {
    this.expected.fail(image, message);
  }

  /**
   * The status of an expected image under the name the pod gave, or null if not expected.
   * `since` is when the pod began to wait (its creationTimestamp, ms; default: when the image
   * was first expected): a pull that ended before it is not this pod's, and an image whose
   * record is older is Cached for it, not Pulled — unless `policy` is Always (the pod's
   * imagePullPolicy): then an older record does not count and the image is Resolving until its
   * pull or a newer record shows.
   */
  statusOf(image: string, since?: number, policy?: string): ImagePullStatus | null {
    return this.expected.statusOf(image, since, policy);
  }

  /**
   * Bytes of an expected image not yet being pulled (for a pod's ETA over images still queued):
   * the size of its manifest's blobs from the content store when its record is there, else the
   * registry's figure; null when neither is known.
   */
  sizeOf(image: string): number | null {
    return this.expected.sizeOf(image);
  }

  private schedule(ms: number): void {
    if (!this.running) return;
    this.timer = setTimeout(() => {
      void this.pollOnce().finally(() => {
        // Back off while containerd is unreachable: 1×, 2×, 4× … up to 30 s.
        const wait = backoffMs(this.failures, { baseMs: this.pollIntervalMs, maxMs: 30_000 });
        this.schedule(this.failures > 0 ? wait : this.pollIntervalMs);
      });
    }, ms);
  }

  private subscribe(attempt = 0): void {
    if (!this.running) return;
    // One resubscription per lost stream, however many times it reports its end: otherwise
    // each outage would double the streams and their retry loops.
    const stream = { ended: false };
    let subscription: EventSubscription | null = null;
    try {
      subscription = this.source.subscribe({
        onEvent: (e) => {
          this.onEvent(e);
        },
        onError: (err) => {
          if (stream.ended) return;
          stream.ended = true;
          subscription?.close();
          this.log.warn({ err }, 'containerd event stream ended; resubscribing');
          if (this.subscription === subscription) this.subscription = null;
          const delay = backoffMs(attempt, { baseMs: 500, maxMs: 30_000 });
          setTimeout(() => {
            this.subscribe(attempt + 1);
          }, delay).unref();
        },
      });
      // Ended already while subscribing: closed here, since onError could not yet.
      if (stream.ended) subscription.close();
      else this.subscription = subscription;
    } catch (err) {
      this.log.warn({ err }, 'cannot subscribe to containerd events; trying again');
      setTimeout(
        () => {
          this.subscribe(attempt + 1);
        },
        backoffMs(attempt, { baseMs: 500, maxMs: 30_000 }),
      ).unref();
    }
  }

  private onEvent(e: ContainerdEvent): void {
    if (e.topic === '/images/create' || e.topic === '/images/update') {
      this.records.changed(e.name);
      // Completion is event-driven: check the image records now, not at the next poll.
      void this.pollOnce();
    }
  }

  /** One full observation. Concurrent calls share the one in progress. */
  pollOnce(): Promise<void> {
    this.polling ??= this.doPoll().finally(() => {
      this.polling = null;
    });
    return this.polling;
  }

  private async doPoll(): Promise<void> {
    const before = this.fingerprint();
    try {
      await this.observe();
      if (this.lastError !== null) this.log.info('reading containerd works again');
      this.failures = 0;
      this.lastError = null;
    } catch (err) {
      this.failures++;
      const message = errorMessage(err);
      // containerd gone or restarting: keep the state as it was, mark nothing Failed for it.
      // Said once per cause (at warn, with what to check), not once per retry.
      if (message !== this.lastError) {
        this.log.warn(
          { err: message, failures: this.failures, hint: CONTAINERD_HINT },
          'reading containerd failed; retrying with back-off',
        );
      } else {
        this.log.debug({ failures: this.failures }, 'reading containerd still fails');
      }
      this.lastError = message;
      return;
    } finally {
      this.polls++;
    }
    if (this.fingerprint() === before) return;
    const snap = this.snapshot();
    for (const cb of this.listeners) cb(snap);
  }

  /** What listeners see: every pull's and every expected image's status. */
  private fingerprint(): string {
    const expected = this.expected.names().map((k) => this.statusOf(k));
    return JSON.stringify([this.snapshot().pulls, expected]);
  }

  private async observe(): Promise<void> {
    const now = this.now();
    const seen = new Map<string, IngestStatus>();
    const orphans: Orphan[] = [];
    for (const ing of await this.source.listIngests()) {
      const r = parseIngestRef(ing.ref);
      if (r === null) {
        if (!this.unknownRefs.has(ing.ref) && this.unknownRefs.size < 1000) {
          this.unknownRefs.add(ing.ref);
          this.log.debug({ ref: ing.ref }, 'ingest ref of an unknown form; ignored');
        }
        continue;
      }
      if (r.kind === 'manifest' || r.kind === 'index') {
        if (!this.isKnownManifest(r.digest)) this.discovery.noteManifestIngest(r.digest, now);
        continue;
      }
      if (r.kind === 'layer' || r.kind === 'config') this.discovery.noteOther(r.digest);
      seen.set(r.digest, ing);
      if (this.pullOf(r.digest) === undefined) orphans.push({ ref: ing.ref, digest: r.digest });
    }
    await updateBlobs(this.source, this.blobs, seen);
    const found = await this.discovery.find(
      orphans,
      (d) => this.isKnownManifest(d),
      (d) => this.blobs.get(d)?.state === 'fetching',
      now,
    );
    for (const f of found) this.createPull(f, now);
    await this.recheckSnapshots();
    await findUnseen(this.source, this.blobs, this.pulls.values());
    await this.checkImages(now);
    for (const p of this.pulls.values()) advance(p, this.blobs, now, this.progress);
    // Forget first: an expected image whose pull is forgotten is looked up in the same poll,
    // rather than showing Resolving (0 %) until the next one.
    this.expire(now);
    await this.expected.checkRecords(this.source, (d) => this.discovery.imageSize(d));
  }

  private isKnownManifest(digest: string): boolean {
    for (const p of this.pulls.values())
      if (p.manifestDigest === digest || p.indexDigest === digest) return true;
    return false;
  }

  private pullOf(digest: string): PullState | undefined {
    for (const p of this.pulls.values())
      if (p.layerDigests.has(digest) || p.configDigest === digest) return p;
    return undefined;
  }

  /** Pulls found before their config was committed: which missing layers are unpacked already. */
  private async recheckSnapshots(): Promise<void> {
    for (const p of this.pulls.values()) {
      if (p.snapshotsChecked || p.finishedAt !== null) continue;
      const doc = {
        kind: 'manifest' as const,
        config: p.blobs[0] ?? { digest: p.configDigest, size: 0 },
        layers: p.layerOrder,
      };
      const waiting = p.blobs.filter(
        (b) => p.layerDigests.has(b.digest) && !p.cached.has(b.digest) && !this.blobs.has(b.digest),
      );
      const unpacked = await this.discovery.unpackedLayers(doc, waiting);
      if (unpacked === null) continue;
      p.snapshotsChecked = true;
      for (const d of unpacked) p.cached.add(d);
    }
  }

  private createPull(f: FoundPull, now: number): void {
    const { pull, fetched } = newPull(f, now, this.progress.rateWindowMs);
    if (this.pulls.has(pull.key)) return;
    for (const [digest, total] of fetched) this.blobs.set(digest, { state: 'fetched', total });
    this.pulls.set(pull.key, pull);
    this.log.debug({ key: pull.key, manifest: f.manifest.digest, blobs: f.blobs.length }, 'pull found');
  }

  private async checkImages(now: number): Promise<void> {
    await this.records.check(this.source, this.pulls.values(), this.blobs, now, this.subscription !== null);
  }

  private expire(now: number): void {
    for (const [key, p] of this.pulls) {
      const ended = p.finishedAt ?? (p.phase === 'Failed' ? p.idleSince : null);
      if (ended !== null && now - ended > this.retentionMs) this.forget(key, p);
    }
    if (this.pulls.size > this.maxPulls) {
      // Finished pulls go first, oldest first; a running pull only if nothing else is left.
      const rank = (p: PullState) => (p.finishedAt !== null || p.phase === 'Failed' ? 0 : 1);
      const oldest = [...this.pulls.values()].sort((a, b) => rank(a) - rank(b) || a.startedAt - b.startedAt);
      for (const p of oldest.slice(0, this.pulls.size - this.maxPulls)) this.forget(p.key, p);
    }
  }

  private forget(key: string, p: PullState): void {
    this.pulls.delete(key);
    for (const r of p.blobs) if (this.pullOf(r.digest) === undefined) this.blobs.delete(r.digest);
  }
}
