// Pure: one pull's public status from its blobs' states and the time. No containerd calls:
// discovery.ts and tracker.ts gather the states; this decides phase, bytes, percent, rate, ETA.
import { MAX_ERROR_LENGTH } from '../../common/contract.js';
import { eta, RateWindow } from './rate.js';
import { blobView, type BlobState, type PullState } from './state.js';

/**
 * containerd copies a blob in chunks of this size (content.Copy fills a 1 MiB buffer before it
 * writes), so an ingest's offset moves in 1 MiB steps and up to that much sits unseen in memory.
 */
export const WRITE_CHUNK = 1024 * 1024;

/** The thresholds progress is judged by; all in milliseconds or bytes per second. */
export interface ProgressOptions {
  /** No new bytes for this long (and past when the next write was due): Stalled. */
  stallAfterMs: number;
  /** Below this rate for stallAfterMs: flagged slow. 0 turns the check off. */
  slowRateBytesPerSecond: number;
  /** Blobs missing and nothing in flight for this long: Failed. */
  failAfterMs: number;
  /** How far back the rate looks (RateWindow), in milliseconds. */
  rateWindowMs: number;
}

/** A pull's blobs' states at one moment; `moving` are the fetching ones. */
interface Tally {
  total: number;
  done: number;
  cachedBytes: number;
  layersDone: number;
  moving: Extract<BlobState, { state: 'fetching' }>[];
  allIn: boolean;
}

function tally(p: PullState, blobs: ReadonlyMap<string, BlobState>): Tally {
  const t: Tally = { total: 0, done: 0, cachedBytes: 0, layersDone: 0, moving: [], allIn: true };
  for (const r of p.blobs) {
    const isLayer = p.layerDigests.has(r.digest);
    const view = blobView(p, blobs, r.digest);
    if (view === 'cached') {
      t.cachedBytes += r.size;
      if (isLayer) t.layersDone++;
      continue;
    }
    t.total += r.size;
    const b = blobs.get(r.digest);
    if (view === 'fetched' || p.finishedAt !== null) {
      // A finished pull has every blob (its image record exists), even ones collected since.
      t.done += r.size;
      if (isLayer) t.layersDone++;
      continue;
    }
    t.allIn = false;
    if (b !== undefined && b.state !== 'fetched') t.done += Math.min(r.size, b.counted);
    if (b?.state === 'fetching') t.moving.push(b);
  }
  return t;
}

/** True when every blob of the pull is cached or fetched. */
export function allBlobsIn(p: PullState, blobs: ReadonlyMap<string, BlobState>): boolean {
  return tally(p, blobs).allIn;
}

/**
 * How long a pull may show no new bytes before it is Stalled: `stallAfterMs`, unless the
 * measured rate says containerd's next 1 MiB write is not due yet (a trickle: 24 KiB/s writes
 * every ~43 s). Then it is Stalled once the write is overdue by stallAfterMs, or by as long
 * again as the gap, whichever comes first: never later than stallAfterMs past when it was due.
 */
export function stallThresholdMs(stallAfterMs: number, rate: number, moving: number): number {
  if (!(rate > 0) || moving === 0) return stallAfterMs;
  const gapMs = ((WRITE_CHUNK * moving) / rate) * 1000;
  return Math.max(stallAfterMs, Math.min(2 * gapMs, gapMs + stallAfterMs));
}

/**
 * When the bytes now counted were written. Offsets move in 1 MiB steps, so sampling "now"
 * makes the rate sag between steps; containerd's own write time does not. If nothing was
 * written for twice the expected gap between writes, "now": a slowing pull shows at once.
 */
function sampleTime(p: PullState, moving: Tally['moving'], now: number): number {
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
export function unflushed(moving: Tally['moving'], rate: number, now: number): number {
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

/** Moves a running pull's phase, rate and flags on to `now`. */
function advancePhase(p: PullState, t: Tally, now: number, o: ProgressOptions): void {
  const resumed =
    t.moving.length > 0 && (p.idleSince !== null || p.phase === 'Failed' || p.phase === 'Stalled');
  if (resumed && p.phase !== 'Stalled') {
    // A retry after the transfer stopped (cancelled, containerd restarted): a new start. Its
    // time is now, and its rate is measured afresh, not across the gap.
    p.lastProgressAt = now;
    p.rateAtProgress = 0;
    p.rate = new RateWindow(o.rateWindowMs);
  }
  if (p.phase === 'Stalled' && t.done > p.lastDone && p.rateAtProgress > 0 && t.moving.length > 0) {
    // Bytes move again after a stall: the rate is what they move at now, not an average across
    // the stall. The window starts afresh as if the new bytes came at the rate measured before
    // the stall (the best guess until the next write says more).
    const tookMs = ((t.done - p.lastDone) / p.rateAtProgress) * 1000;
    p.rate = new RateWindow(o.rateWindowMs);
    p.rate.add(now - Math.min(tookMs, o.rateWindowMs), p.lastDone);
  }
  p.rate.add(sampleTime(p, t.moving, now), t.done);
  const rate = p.rate.rate();
  if (t.done > p.lastDone) {
    p.lastDone = t.done;
    p.lastProgressAt = now;
    p.rateAtProgress = rate;
  }
  if (t.allIn) {
    p.phase = 'Unpacking';
    p.idleSince = null;
  } else if (t.moving.length === 0) {
    // Nothing transfers and blobs are missing: the pull was cancelled or failed. containerd
    // drops a failed pull's ingests; a retry brings them back (then this clears).
    p.idleSince ??= now;
    if (now - p.idleSince >= o.failAfterMs) {
      p.phase = 'Failed';
      p.error = 'the download stopped before all layers arrived (pull cancelled or registry error)';
    }
  } else {
    p.idleSince = null;
    p.error = null;
    const idle = now - p.lastProgressAt;
    // The rate as bytes last moved, not the one sagging since: it says when the next write is due.
    const due = stallThresholdMs(o.stallAfterMs, p.rateAtProgress, t.moving.length);
    p.phase = idle >= due ? 'Stalled' : 'Downloading';
  }
  const floor = o.slowRateBytesPerSecond;
  const measured = p.rate.span() >= Math.min(o.rateWindowMs, o.stallAfterMs) / 2;
  if (floor > 0 && p.phase === 'Downloading' && measured && rate < floor) p.slowSince ??= now;
  else p.slowSince = null;
  p.slow = p.slowSince !== null && now - p.slowSince >= o.stallAfterMs;
}

/** The best name known for a pull: a tag, else a digest reference, else source@key. */
export function bestName(p: PullState): string {
  const names = [...p.names];
  const tag = names.find((n) => !n.startsWith('sha256:') && !n.includes('@'));
  if (tag !== undefined) return tag;
  const digestRef = names.find((n) => n.includes('@'));
  if (digestRef !== undefined) return digestRef;
  const source = [...p.sources][0];
  return source === undefined ? p.key : `${source}@${p.key}`;
}

/**
 * Advances pull `p` to `now` and sets `p.status`. Percent is ⌊100 · done / total⌋, never goes
 * back, and stays ≤ 99 until the pull is Pulled; bytes are of distinct blobs; the ETA is the
 * remaining bytes (less those written but not yet flushed) at the measured rate.
 */
export function advance(
  p: PullState,
  blobs: ReadonlyMap<string, BlobState>,
  now: number,
  o: ProgressOptions,
): void {
  const t = tally(p, blobs);
  if (p.finishedAt === null) advancePhase(p, t, now, o);
  const pulled = p.phase === 'Pulled';
  let percent = t.total === 0 ? 100 : Math.floor((100 * t.done) / t.total);
  percent = pulled ? 100 : Math.min(99, percent);
  percent = Math.max(p.percentFloor, percent);
  p.percentFloor = percent;
  // Nothing in flight with blobs missing (cancelled, failed, containerd restarting): no rate
  // and no ETA, rather than a made-up one decaying until the pull is called Failed.
  const idle = p.finishedAt === null && t.moving.length === 0 && !t.allIn;
  const rate = pulled || p.phase === 'Failed' || idle ? 0 : p.rate.rate();
  const shownRate = p.phase === 'Stalled' ? 0 : rate;
  const remaining = t.total - t.done - unflushed(t.moving, rate, now);
  p.status = {
    image: bestName(p),
    phase: p.phase,
    percent,
    bytesDone: t.done,
    bytesTotal: t.total,
    bytesCached: t.cachedBytes,
    layersDone: t.layersDone,
    layersTotal: p.layerDigests.size,
    bytesPerSecond: Math.round(shownRate),
    etaSeconds: pulled ? 0 : p.phase === 'Failed' || p.phase === 'Stalled' ? null : eta(remaining, rate),
    startedAt: new Date(p.startedAt).toISOString(),
    finishedAt: p.finishedAt === null ? null : new Date(p.finishedAt).toISOString(),
    error: p.error === null ? null : p.error.slice(0, MAX_ERROR_LENGTH),
  };
}
