// Follows every image pull on the node from what containerd shows: in-flight ingests
// (Content/ListStatuses), the manifests committed at the start of a pull, the blobs already
// present, and the image records created at the end. Produces a whole-image view per pull.
//
// How a pull is recognised: containerd's ingest refs ("layer-sha256:<hex>") carry no image
// name. The manifest is committed first, labelled with its config and layers
// (containerd.io/gc.ref.content.config / .l.<i>), so an in-flight blob finds its manifest
// with a label filter; the manifest's JSON then gives every blob and size of the image. If
// the labels are absent, a manifest ingest seen in flight still leads to the manifest.
import type { Logger } from '../../common/logging.js';
import { silentLogger } from '../../common/logging.js';
import { MAX_ERROR_LENGTH, type ImagePullStatus, type Phase } from '../../common/contract.js';
import { errorMessage } from '../../common/errors.js';
import { keepEnds } from '../../common/format.js';
import { formatImageRef, parseImageRef, sourceKey, type ImageRef } from '../../common/image-ref.js';
import type {
  ContainerdEvent,
  ContainerdSource,
  ContentInfo,
  EventSubscription,
  IngestStatus,
} from '../containerd/source.js';
import { currentPlatform, parseManifest, pickPlatform, type BlobRef, type Manifest } from './manifest.js';
import { RateWindow, eta } from './rate.js';
import type { TrackedPull, TrackerSnapshot } from './types.js';

export interface TrackerOptions {
  source: ContainerdSource;
  /** Milliseconds since the epoch; injectable for tests. */
  clock?: () => number;
  pollIntervalMs?: number;
  /** No new bytes for this long: Stalled. */
  stallAfterMs?: number;
  /** Below this rate for stallAfterMs: flagged slow. 0 turns the check off. */
  slowRateBytesPerSecond?: number;
  /** Blobs missing and nothing in flight for this long: Failed. */
  failAfterMs?: number;
  rateWindowMs?: number;
  /** Finished pulls stay visible this long. */
  retentionMs?: number;
  maxPulls?: number;
  platform?: string;
  logger?: Logger;
}

const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/**
 * containerd copies a blob in chunks of this size (content.Copy fills a 1 MiB buffer before it
 * writes), so an ingest's offset moves in 1 MiB steps and up to that much sits unseen in memory.
 */
const WRITE_CHUNK = 1024 * 1024;
/** Layer label indexes searched when tying an in-flight blob to its manifest. */
const LAYER_LABEL_SEARCH = 64;
const INDEX_LABEL_SEARCH = 16;
const REF_RE = /^(layer|config|manifest|index)-(sha256:[0-9a-f]{64})$/;

interface BlobState {
  total: number;
  /** Most bytes seen for this blob: a restarted ingest does not count twice or go backwards. */
  counted: number;
  inFlight: boolean;
  committed: boolean;
  /** When containerd last wrote to the ingest (its clock), null if it did not say. */
  updatedAt: number | null;
}

interface PullState {
  key: string;
  indexDigest: string | null;
  manifestDigest: string;
  configDigest: string;
  sources: Set<string>;
  names: Set<string>;
  blobs: BlobRef[];
  layerDigests: Set<string>;
  cached: Set<string>;
  startedAt: number;
  finishedAt: number | null;
  lastProgressAt: number;
  lastDone: number;
  idleSince: number | null;
  slowSince: number | null;
  rate: RateWindow;
  percentFloor: number;
  phase: Phase;
  error: string | null;
  slow: boolean;
  status: ImagePullStatus;
}

/** An image some pod waits for (told by the publisher), matched to the pull that fetches it. */
interface Expectation {
  ref: ImageRef;
  name: string;
  since: number;
  /** Why the pull failed as the kubelet reports it (ErrImagePull), or null. */
  failed: string | null;
  /** When fail() was last called: a pull that starts after it is a retry, and clears it. */
  failedAt: number;
  /** The image record, once known without a pull to show it: when containerd made it, and the size. */
  record: { createdAt: number; size: number } | null;
}

function parseRef(ref: string): { kind: string; digest: string } | null {
  const m = REF_RE.exec(ref);
  if (m?.[1] !== undefined && m[2] !== undefined) return { kind: m[1], digest: m[2] };
  const d = /(sha256:[0-9a-f]{64})/.exec(ref);
  return d?.[1] === undefined ? null : { kind: 'unknown', digest: d[1] };
}

/** "containerd.io/distribution.source.registry.test" = "team/app,other" → ["registry.test/team/app", …]. */
export function sourcesFromLabels(labels: Record<string, string>): string[] {
  const prefix = 'containerd.io/distribution.source.';
  const out: string[] = [];
  for (const [k, v] of Object.entries(labels)) {
    if (!k.startsWith(prefix)) continue;
    const host = k.slice(prefix.length);
    for (const repo of v.split(',')) if (repo !== '') out.push(`${host}/${repo}`);
  }
  return out.sort();
}

function bestName(p: PullState): string {
  const names = [...p.names];
  const tag = names.find((n) => !n.startsWith('sha256:') && !n.includes('@'));
  if (tag !== undefined) return tag;
  const digestRef = names.find((n) => n.includes('@'));
  if (digestRef !== undefined) return digestRef;
  const source = [...p.sources][0];
  return source === undefined ? p.key : `${source}@${p.key}`;
}

export class PullTracker {
  private readonly source: ContainerdSource;
  private readonly now: () => number;
  private readonly o: Required<Omit<TrackerOptions, 'source' | 'clock' | 'logger'>>;
  private readonly log: Logger;
  private readonly blobs = new Map<string, BlobState>();
  private readonly pulls = new Map<string, PullState>();
  /** Manifest/index digests seen as ingests, to read once committed (the no-label path). */
  private readonly pendingManifests = new Map<string, number>();
  /** Digests known not to be a pull's manifest (configs, foreign blobs): not re-read. */
  private readonly notManifests = new Set<string>();
  private readonly listeners = new Set<(s: TrackerSnapshot) => void>();
  private readonly expected = new Map<string, Expectation>();
  private subscription: EventSubscription | null = null;
  private timer: NodeJS.Timeout | null = null;
  private imagesDirty = false;
  private running = false;
  private polling: Promise<void> | null = null;
  private failures = 0;
  /** The last error talking to containerd, or null when the last poll worked. */
  lastError: string | null = null;
  polls = 0;

  constructor(opts: TrackerOptions) {
    this.source = opts.source;
    this.now = opts.clock ?? Date.now;
    this.log = opts.logger ?? silentLogger();
    this.o = {
      pollIntervalMs: opts.pollIntervalMs ?? 1000,
      stallAfterMs: opts.stallAfterMs ?? 30_000,
      slowRateBytesPerSecond: opts.slowRateBytesPerSecond ?? 0,
      failAfterMs: opts.failAfterMs ?? 10_000,
      rateWindowMs: opts.rateWindowMs ?? 10_000,
      retentionMs: opts.retentionMs ?? 5 * 60_000,
      maxPulls: opts.maxPulls ?? 256,
      platform: opts.platform ?? currentPlatform(),
    };
  }

  /** Subscribes to events and polls until stop(). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.subscribe();
    this.schedule(0);
  }

  stop(): void {
    this.running = false;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.subscription?.close();
    this.subscription = null;
  }

  onChange(cb: (s: TrackerSnapshot) => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

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
   * (containerd shows nothing while it resolves a tag). Returns the normalised name.
   */
  expect(image: string): string {
    const ref = parseImageRef(image);
    const name = ref === null ? image : formatImageRef(ref);
    if (ref !== null && !this.expected.has(name)) {
      this.expected.set(name, {
        ref,
        name,
        since: this.now(),
        failed: null,
        failedAt: 0,
        record: null,
      });
    }
    return name;
  }

  /** No pod waits for `image` any more. */
  unexpect(image: string): void {
    const ref = parseImageRef(image);
    this.expected.delete(ref === null ? image : formatImageRef(ref));
  }

  /**
   * The pull of `image` failed where containerd leaves no trace (a missing tag, a refused
   * login): the kubelet reports it on the pod (ErrImagePull), the publisher passes it on here.
   */
  fail(image: string, message: string): void {
    const e = this.expected.get(this.expect(image));
    if (e === undefined) return;
    // The kubelet keeps reporting the old failure while it retries: a pull started since the
    // first report is that retry, so a repeated report does not hide it.
    if (e.failed === null) e.failedAt = this.now();
    e.failed = keepEnds(message, MAX_ERROR_LENGTH - 64);
  }

  /**
   * The status of an expected image under the name the pod gave, or null if not expected.
   * `since` is when the pod began to wait (its creationTimestamp; default: when the image was
   * first expected): a pull that ended before it is not this pod's, and an image whose record
   * is older is Cached for it, not Pulled.
   */
  statusOf(image: string, since?: number): ImagePullStatus | null {
    const ref = parseImageRef(image);
    const e = this.expected.get(ref === null ? image : formatImageRef(ref));
    if (e === undefined) return null;
    const from = since ?? e.since;
    const p = this.match(e, from);
    let base: ImagePullStatus;
    if (p !== undefined) {
      base = { ...p.status, image: e.name };
    } else {
      const rec = e.record ?? this.recordFromPull(e);
      const phase = rec === null ? 'Resolving' : rec.createdAt >= from ? 'Pulled' : 'Cached';
      const size = rec?.size ?? 0;
      base = {
        image: e.name,
        phase,
        percent: rec === null ? 0 : 100,
        bytesDone: phase === 'Pulled' ? size : 0,
        bytesTotal: phase === 'Pulled' ? size : 0,
        bytesCached: phase === 'Cached' ? size : 0,
        layersDone: 0,
        layersTotal: 0,
        bytesPerSecond: 0,
        etaSeconds: rec === null ? null : 0,
        startedAt: new Date(from).toISOString(),
        finishedAt: rec === null ? null : new Date(rec.createdAt).toISOString(),
        error: null,
      };
    }
    // A retry: a pull started after the failure, or bytes moving again since (containerd keeps
    // the earlier attempt's records, so a retry can show up as the old pull resuming).
    const retried =
      p !== undefined && (p.startedAt > e.failedAt || p.lastProgressAt > e.failedAt) && p.phase !== 'Failed';
    if (e.failed !== null && !retried && base.phase !== 'Pulled' && base.phase !== 'Cached') {
      return { ...base, phase: 'Failed', etaSeconds: null, bytesPerSecond: 0, error: e.failed };
    }
    return base;
  }

  /**
   * The pull fetching an expected image: by image record name, then by digest, then by the
   * repository in the distribution-source label (the newest pull of that repository still
   * running or finished after the pod started waiting).
   */
  private match(e: Expectation, since: number): PullState | undefined {
    // A pull that ended before the pod started waiting is not this pod's: the image was
    // already there for it (Cached, found through the image record).
    const pulls = [...this.pulls.values()].filter((p) => p.finishedAt === null || p.finishedAt >= since);
    const byName = pulls.find((p) => p.names.has(e.name));
    if (byName !== undefined) return byName;
    const d = e.ref.digest;
    if (d !== null) return pulls.find((p) => p.key === d || p.manifestDigest === d || p.indexDigest === d);
    const repo = sourceKey(e.ref);
    return pulls.filter((p) => p.sources.has(repo)).sort((a, b) => b.startedAt - a.startedAt)[0];
  }

  /** A finished pull that made the image's record: the record, as far as statusOf needs it. */
  private recordFromPull(e: Expectation): { createdAt: number; size: number } | null {
    for (const p of this.pulls.values()) {
      if (p.finishedAt !== null && p.phase === 'Pulled' && p.names.has(e.name)) {
        return { createdAt: p.finishedAt, size: p.status.bytesTotal + p.status.bytesCached };
      }
    }
    return null;
  }

  /** Expected images with no pull: present already (Cached) or still resolving. */
  private async checkExpected(now: number): Promise<void> {
    const waiting = [...this.expected.values()].filter(
      (e) => e.record === null && this.match(e, e.since) === undefined && this.recordFromPull(e) === null,
    );
    if (waiting.length === 0) return;
    const records = await this.source.listImages(waiting.map((e) => `name==${JSON.stringify(e.name)}`));
    for (const e of waiting) {
      const rec = records.find((r) => r.name === e.name);
      if (rec === undefined) continue;
      e.record = {
        createdAt: rec.createdAt?.getTime() ?? now,
        size: await this.imageSize(rec.target.digest),
      };
      e.failed = null;
    }
  }

  /** Bytes of an image's platform manifest's blobs, from the content store; 0 if unreadable. */
  private async imageSize(digest: string): Promise<number> {
    let doc = await this.readJson(digest);
    if (doc?.kind === 'index') {
      const entry = pickPlatform(doc, this.o.platform);
      doc = entry === null ? null : await this.readJson(entry.digest);
    }
    if (doc?.kind !== 'manifest') return 0;
    return [doc.config, ...doc.layers].reduce((n, b) => n + b.size, 0);
  }

  private schedule(ms: number): void {
    if (!this.running) return;
    this.timer = setTimeout(() => {
      void this.pollOnce().finally(() => {
        // Back off while containerd is unreachable: 1×, 2×, 4× … up to 30 s.
        const backoff = Math.min(30_000, this.o.pollIntervalMs * 2 ** Math.min(this.failures, 5));
        this.schedule(this.failures > 0 ? backoff : this.o.pollIntervalMs);
      });
    }, ms);
  }

  private subscribe(attempt = 0): void {
    if (!this.running) return;
    try {
      this.subscription = this.source.subscribe({
        onEvent: (e) => {
          this.onEvent(e);
        },
        onError: (err) => {
          this.log.warn({ err }, 'containerd event stream ended; resubscribing');
          this.subscription = null;
          const delay = Math.min(30_000, 500 * 2 ** Math.min(attempt, 6));
          setTimeout(() => {
            this.subscribe(attempt + 1);
          }, delay).unref();
        },
      });
    } catch (err) {
      this.log.warn({ err }, 'cannot subscribe to containerd events');
    }
  }

  private onEvent(e: ContainerdEvent): void {
    if (e.topic === '/images/create' || e.topic === '/images/update') {
      this.imagesDirty = true;
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
      this.failures = 0;
      this.lastError = null;
    } catch (err) {
      this.failures++;
      this.lastError = errorMessage(err);
      // containerd gone or restarting: keep the state as it was, mark nothing Failed for it.
      this.log.warn({ err, failures: this.failures }, 'reading containerd failed');
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
    const expected = [...this.expected.keys()].map((k) => this.statusOf(k));
    return JSON.stringify([this.snapshot().pulls, expected]);
  }

  private async observe(): Promise<void> {
    const now = this.now();
    const ingests = await this.source.listIngests();
    const seen = new Map<string, IngestStatus>();
    for (const ing of ingests) {
      const r = parseRef(ing.ref);
      if (r === null) continue;
      if (r.kind === 'manifest' || r.kind === 'index') {
        if (!this.pendingManifests.has(r.digest) && !this.isKnownManifest(r.digest))
          this.pendingManifests.set(r.digest, now);
        continue;
      }
      seen.set(r.digest, ing);
    }
    await this.updateBlobs(seen);
    await this.discover(seen, now);
    await this.readPendingManifests(now);
    await this.findUnseen();
    const needImages = this.imagesDirty || [...this.pulls.values()].some((p) => p.phase === 'Unpacking');
    if (needImages) await this.checkImages(now);
    for (const p of this.pulls.values()) this.update(p, now);
    // Forget first: an expected image whose pull is forgotten is looked up in the same poll,
    // rather than showing Resolving (0 %) until the next one.
    this.expire(now);
    await this.checkExpected(now);
  }

  private isKnownManifest(digest: string): boolean {
    for (const p of this.pulls.values())
      if (p.manifestDigest === digest || p.indexDigest === digest) return true;
    return false;
  }

  private async updateBlobs(seen: Map<string, IngestStatus>): Promise<void> {
    for (const [digest, ing] of seen) {
      const b = this.blobs.get(digest) ?? {
        total: 0,
        counted: 0,
        inFlight: false,
        committed: false,
        updatedAt: null,
      };
      b.total = ing.total > 0 ? ing.total : b.total;
      b.counted = Math.min(Math.max(b.counted, ing.offset), b.total > 0 ? b.total : Number.MAX_SAFE_INTEGER);
      b.updatedAt = ing.updatedAt?.getTime() ?? null;
      b.inFlight = true;
      b.committed = false;
      this.blobs.set(digest, b);
    }
    // A blob that left the list was committed (Info finds it) or abandoned.
    for (const [digest, b] of this.blobs) {
      if (!b.inFlight || seen.has(digest)) continue;
      b.inFlight = false;
      const info = await this.source.contentInfo(digest);
      if (info !== null) {
        b.committed = true;
        b.total = info.size;
        b.counted = info.size;
      }
    }
  }

  /**
   * Blobs of running pulls neither in flight nor committed as far as the tracker knows: a small
   * layer can be fetched whole between two polls and never show as an ingest. One List call
   * finds those committed since; without it such a pull would never have all its blobs.
   */
  private async findUnseen(): Promise<void> {
    const unseen = new Set<string>();
    for (const p of this.pulls.values()) {
      if (p.finishedAt !== null) continue;
      for (const r of p.blobs) {
        const b = this.blobs.get(r.digest);
        if (!p.cached.has(r.digest) && b?.inFlight !== true && b?.committed !== true) unseen.add(r.digest);
      }
    }
    if (unseen.size === 0) return;
    const found = await this.source.listContent([...unseen].map((d) => `digest==${d}`));
    for (const info of found) {
      if (!unseen.has(info.digest)) continue;
      this.blobs.set(info.digest, {
        total: info.size,
        counted: info.size,
        inFlight: false,
        committed: true,
        updatedAt: null,
      });
    }
  }

  private pullOf(digest: string): PullState | undefined {
    for (const p of this.pulls.values())
      if (p.layerDigests.has(digest) || p.configDigest === digest) return p;
    return undefined;
  }

  /** Ties in-flight blobs that belong to no known pull to their manifest. */
  private async discover(seen: Map<string, IngestStatus>, now: number): Promise<void> {
    const orphans = [...seen.keys()].filter((d) => this.pullOf(d) === undefined).slice(0, 8);
    if (orphans.length === 0) return;
    const filters: string[] = [];
    for (const d of orphans) {
      filters.push(`labels."containerd.io/gc.ref.content.config"==${d}`);
      for (let i = 0; i < LAYER_LABEL_SEARCH; i++)
        filters.push(`labels."containerd.io/gc.ref.content.l.${i}"==${d}`);
    }
    const found = await this.source.listContent(filters);
    for (const info of found) {
      if (this.isKnownManifest(info.digest) || this.notManifests.has(info.digest)) continue;
      await this.addManifest(info, null, now);
    }
  }

  /** Manifests/indexes seen as ingests: once committed, read them (works without labels). */
  private async readPendingManifests(now: number): Promise<void> {
    for (const [digest, since] of this.pendingManifests) {
      if (this.isKnownManifest(digest)) {
        this.pendingManifests.delete(digest);
        continue;
      }
      const info = await this.source.contentInfo(digest);
      if (info === null) {
        if (now - since > this.o.failAfterMs * 6) this.pendingManifests.delete(digest);
        continue;
      }
      await this.addManifest(info, null, now);
      // After it was read: if containerd failed meanwhile, the next poll tries again.
      this.pendingManifests.delete(digest);
    }
  }

  private async readJson(digest: string): Promise<ReturnType<typeof parseManifest> | null> {
    try {
      return parseManifest(await this.source.readBlob(digest, MAX_MANIFEST_BYTES));
    } catch (err) {
      if ((err as { code?: string }).code === 'PT_CONTAINERD_UNAVAILABLE') throw err;
      this.notManifests.add(digest);
      this.log.warn({ err, digest }, 'cannot read manifest; its pull is not tracked');
      return null;
    }
  }

  private async addManifest(info: ContentInfo, index: ContentInfo | null, now: number): Promise<void> {
    const doc = await this.readJson(info.digest);
    if (doc === null) return;
    if (doc.kind === 'index') {
      const entry = pickPlatform(doc, this.o.platform);
      if (entry === null) {
        this.notManifests.add(info.digest);
        return;
      }
      const child = await this.source.contentInfo(entry.digest);
      if (child === null) {
        // The platform manifest is not committed yet: look again next poll.
        this.pendingManifests.set(entry.digest, now);
        this.indexOf.set(entry.digest, info);
        return;
      }
      await this.addManifest(child, info, now);
      return;
    }
    const idx = index ?? this.indexOf.get(info.digest) ?? (await this.findIndex(info.digest));
    // Every call to containerd before the pull exists: if one fails, nothing is half made (a
    // pull whose present blobs were never classified would never have them all).
    const present = await this.presentBlobs([doc.config, ...doc.layers]);
    this.createPull(info, idx, doc, now);
    this.classifyBlobs(info, present, now);
  }

  private readonly indexOf = new Map<string, ContentInfo>();

  private async findIndex(manifestDigest: string): Promise<ContentInfo | null> {
    const filters: string[] = [];
    for (let i = 0; i < INDEX_LABEL_SEARCH; i++)
      filters.push(`labels."containerd.io/gc.ref.content.m.${i}"==${manifestDigest}`);
    const found = await this.source.listContent(filters);
    return found[0] ?? null;
  }

  private createPull(info: ContentInfo, index: ContentInfo | null, m: Manifest, now: number): void {
    const key = index?.digest ?? info.digest;
    if (this.pulls.has(key)) return;
    const blobs = [m.config, ...m.layers];
    const startedAt = Math.min(now, (index ?? info).createdAt?.getTime() ?? now);
    const p: PullState = {
      key,
      indexDigest: index?.digest ?? null,
      manifestDigest: info.digest,
      configDigest: m.config.digest,
      sources: new Set([...sourcesFromLabels(info.labels), ...sourcesFromLabels(index?.labels ?? {})]),
      names: new Set(),
      blobs,
      layerDigests: new Set(m.layers.map((l) => l.digest)),
      cached: new Set(),
      startedAt,
      finishedAt: null,
      lastProgressAt: now,
      lastDone: 0,
      idleSince: null,
      slowSince: null,
      rate: new RateWindow(this.o.rateWindowMs),
      percentFloor: 0,
      phase: 'Downloading',
      error: null,
      slow: false,
      status: {
        image: key,
        phase: 'Downloading',
        percent: 0,
        bytesDone: 0,
        bytesTotal: 0,
        bytesCached: 0,
        layersDone: 0,
        layersTotal: m.layers.length,
        bytesPerSecond: 0,
        etaSeconds: null,
        startedAt: new Date(startedAt).toISOString(),
        finishedAt: null,
        error: null,
      },
    };
    this.pulls.set(key, p);
    this.log.debug({ key, manifest: info.digest, blobs: blobs.length }, 'pull found');
  }

  /**
   * Blobs present when the manifest is found were there before the pull (cached), unless they
   * were committed after the manifest: then this pull fetched them (configs are small and
   * often land before the first poll sees the pull).
   */
  private classifyBlobs(manifest: ContentInfo, present: Map<string, ContentInfo>, now: number): void {
    const p = [...this.pulls.values()].find((x) => x.manifestDigest === manifest.digest);
    if (p === undefined) return;
    const manifestAt = manifest.createdAt?.getTime() ?? now;
    for (const ref of p.blobs) {
      const info = present.get(ref.digest);
      if (info === undefined) continue;
      // Both times come from containerd's clock: a blob committed before this pull's manifest
      // was on the node already (another image's layer, an earlier attempt) and is cached.
      const committedAt = info.createdAt?.getTime() ?? 0;
      if (committedAt >= manifestAt) {
        this.blobs.set(ref.digest, {
          total: ref.size,
          counted: ref.size,
          inFlight: false,
          committed: true,
          updatedAt: null,
        });
      } else {
        p.cached.add(ref.digest);
      }
    }
  }

  /** The committed blobs among `refs` that are not in flight, by digest. */
  private async presentBlobs(refs: BlobRef[]): Promise<Map<string, ContentInfo>> {
    const out = new Map<string, ContentInfo>();
    for (const ref of refs) {
      if (this.blobs.get(ref.digest)?.inFlight === true) continue;
      const info = await this.source.contentInfo(ref.digest);
      if (info !== null) out.set(ref.digest, info);
    }
    return out;
  }

  private async checkImages(now: number): Promise<void> {
    this.imagesDirty = false;
    const images = await this.source.listImages();
    for (const p of this.pulls.values()) {
      const mine = images.filter(
        (i) =>
          i.target.digest === p.manifestDigest ||
          (p.indexDigest !== null && i.target.digest === p.indexDigest),
      );
      for (const i of mine) p.names.add(i.name);
      if (mine.length > 0 && p.finishedAt === null && this.allIn(p)) {
        p.finishedAt = now;
        p.phase = 'Pulled';
        p.error = null;
      }
    }
  }

  private allIn(p: PullState): boolean {
    return p.blobs.every((r) => p.cached.has(r.digest) || this.blobs.get(r.digest)?.committed === true);
  }

  private update(p: PullState, now: number): void {
    let total = 0;
    let done = 0;
    let cachedBytes = 0;
    let layersDone = 0;
    let inFlight = 0;
    const moving: BlobState[] = [];
    for (const r of p.blobs) {
      const isLayer = p.layerDigests.has(r.digest);
      if (p.cached.has(r.digest)) {
        cachedBytes += r.size;
        if (isLayer) layersDone++;
        continue;
      }
      const b = this.blobs.get(r.digest);
      total += r.size;
      done += Math.min(r.size, b?.committed === true ? r.size : (b?.counted ?? 0));
      if (b?.committed === true && isLayer) layersDone++;
      if (b?.inFlight === true) {
        inFlight++;
        moving.push(b);
      }
    }
    if (p.finishedAt === null) {
      p.rate.add(this.sampleTime(p, moving, now), done);
      if (done > p.lastDone) {
        p.lastDone = done;
        p.lastProgressAt = now;
      }
      const rate = p.rate.rate();
      if (this.allIn(p)) {
        p.phase = 'Unpacking';
        p.idleSince = null;
      } else if (inFlight === 0) {
        // Nothing transfers and blobs are missing: the pull was cancelled or failed. containerd
        // drops a failed pull's ingests; a retry brings them back (then this clears).
        p.idleSince ??= now;
        if (now - p.idleSince >= this.o.failAfterMs) {
          p.phase = 'Failed';
          p.error = 'the download stopped before all layers arrived (pull cancelled or registry error)';
        }
      } else {
        p.idleSince = null;
        p.error = null;
        p.phase = now - p.lastProgressAt >= this.o.stallAfterMs ? 'Stalled' : 'Downloading';
      }
      const slowFloor = this.o.slowRateBytesPerSecond;
      if (
        slowFloor > 0 &&
        p.phase === 'Downloading' &&
        p.rate.span() >= Math.min(this.o.rateWindowMs, this.o.stallAfterMs) / 2 &&
        rate < slowFloor
      ) {
        p.slowSince ??= now;
      } else {
        p.slowSince = null;
      }
      p.slow = p.slowSince !== null && now - p.slowSince >= this.o.stallAfterMs;
    }
    const pulled = p.phase === 'Pulled';
    let percent = total === 0 ? 100 : Math.floor((100 * done) / total);
    percent = pulled ? 100 : Math.min(99, percent);
    percent = Math.max(p.percentFloor, percent);
    p.percentFloor = percent;
    const rate = pulled || p.phase === 'Stalled' || p.phase === 'Failed' ? 0 : p.rate.rate();
    const remaining = total - done - this.unflushed(moving, rate, now);
    p.status = {
      image: bestName(p),
      phase: p.phase,
      percent,
      bytesDone: done,
      bytesTotal: total,
      bytesCached: cachedBytes,
      layersDone,
      layersTotal: p.layerDigests.size,
      bytesPerSecond: Math.round(rate),
      etaSeconds: pulled ? 0 : p.phase === 'Failed' ? null : eta(remaining, rate),
      startedAt: new Date(p.startedAt).toISOString(),
      finishedAt: p.finishedAt === null ? null : new Date(p.finishedAt).toISOString(),
      error: p.error === null ? null : p.error.slice(0, MAX_ERROR_LENGTH),
    };
  }

  /**
   * When the bytes now counted were written. Offsets move in 1 MiB steps, so sampling "now"
   * makes the rate sag between steps; containerd's own write time does not. If nothing was
   * written for twice the expected gap between writes, "now": a slowing pull shows at once.
   */
  private sampleTime(p: PullState, moving: BlobState[], now: number): number {
    const writes = moving.map((b) => b.updatedAt).filter((t): t is number => t !== null);
    if (writes.length === 0) return now;
    const lastWrite = Math.min(now, Math.max(...writes));
    if (p.rate.span() === 0) return lastWrite;
    const rate = p.rate.rate();
    const expectedGapMs = rate > 0 ? ((WRITE_CHUNK * moving.length) / rate) * 1000 : 0;
    return now - lastWrite <= 2 * expectedGapMs ? lastWrite : now;
  }

  /**
   * Bytes received but not yet visible in the ingests' offsets: each in-flight blob has had
   * its share of the image's rate since containerd last wrote it, up to one write chunk.
   * Without this an image pulling 4 layers at once looks ~2 MiB behind, and its ETA too long.
   */
  private unflushed(moving: BlobState[], rate: number, now: number): number {
    if (moving.length === 0 || rate <= 0) return 0;
    const share = rate / moving.length;
    let sum = 0;
    for (const b of moving) {
      const left = Math.max(0, b.total - b.counted);
      const guess = b.updatedAt === null ? WRITE_CHUNK / 2 : (share * Math.max(0, now - b.updatedAt)) / 1000;
      sum += Math.min(left, WRITE_CHUNK, guess);
    }
    return sum;
  }

  private expire(now: number): void {
    for (const [key, p] of this.pulls) {
      const ended = p.finishedAt ?? (p.phase === 'Failed' ? p.idleSince : null);
      if (ended !== null && now - ended > this.o.retentionMs) this.forget(key, p);
    }
    if (this.pulls.size > this.o.maxPulls) {
      // Finished pulls go first, oldest first; a running pull only if nothing else is left.
      const rank = (p: PullState) => (p.finishedAt !== null || p.phase === 'Failed' ? 0 : 1);
      const oldest = [...this.pulls.values()].sort((a, b) => rank(a) - rank(b) || a.startedAt - b.startedAt);
      for (const p of oldest.slice(0, this.pulls.size - this.o.maxPulls)) this.forget(p.key, p);
    }
  }

  private forget(key: string, p: PullState): void {
    this.pulls.delete(key);
    for (const r of p.blobs) if (this.pullOf(r.digest) === undefined) this.blobs.delete(r.digest);
  }
}
