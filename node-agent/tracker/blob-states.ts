// The node-wide blob states (state.ts BlobState) moved on from what containerd shows: the
// in-flight ingests of this poll (Content/ListStatuses), Content/Info for a blob that left the
// list, and one Content/List by digest for blobs fetched whole between two polls.
import type { ContainerdSource, IngestStatus } from '../containerd/source.js';
import type { BlobState, PullState } from './state.js';

/**
 * In-flight blobs move on (`seen`: this poll's ingests by blob digest); one that left the list
 * was committed (Info finds it: `fetched`) or not. Not found, it stays in flight (`leaving`) for
 * one more poll: containerd's metadata store drops the ingest a moment before its transaction
 * records the blob, so a poll in between finds neither; not found again, it is `lost`. A
 * restarted ingest neither counts twice nor goes back. Throws PT_CONTAINERD_UNAVAILABLE when
 * containerd cannot be reached.
 */
export async function updateBlobs(
  source: ContainerdSource,
  blobs: Map<string, BlobState>,
  seen: ReadonlyMap<string, IngestStatus>,
): Promise<void> {
  for (const [digest, ing] of seen) {
    const b = blobs.get(digest);
    const total = ing.total > 0 ? ing.total : (b?.total ?? 0);
    const before = b === undefined || b.state === 'fetched' ? 0 : b.counted;
    const counted = Math.min(Math.max(before, ing.offset), total > 0 ? total : Number.MAX_SAFE_INTEGER);
    blobs.set(digest, { state: 'fetching', total, counted, updatedAt: ing.updatedAt?.getTime() ?? null });
  }
  for (const [digest, b] of blobs) {
    if (b.state !== 'fetching' || seen.has(digest)) continue;
    const info = await source.contentInfo(digest);
    if (info !== null) blobs.set(digest, { state: 'fetched', total: info.size });
    else if (b.leaving === true) blobs.set(digest, { state: 'lost', total: b.total, counted: b.counted });
    else blobs.set(digest, { ...b, leaving: true });
  }
}

/** Blobs looked up per poll at most (a big image's layers wait their turn: 3 download at once). */
const MAX_UNSEEN_PER_POLL = 64;

/**
 * Blobs of running pulls neither in flight nor fetched as far as the tracker knows: a small
 * layer can be fetched whole between two polls and never show as an ingest. Content/Info finds
 * those committed since; without it such a pull would never have all its blobs.
 */
export async function findUnseen(
  source: ContainerdSource,
  blobs: Map<string, BlobState>,
  pulls: Iterable<PullState>,
): Promise<void> {
  const unseen = new Set<string>();
  for (const p of pulls) {
    if (p.finishedAt !== null) continue;
    for (const r of p.blobs) {
      const s = blobs.get(r.digest)?.state;
      if (!p.cached.has(r.digest) && s !== 'fetching' && s !== 'fetched') unseen.add(r.digest);
    }
  }
  // Content/Info per blob (a direct look-up): Content/List would walk the whole store.
  for (const digest of [...unseen].slice(0, MAX_UNSEEN_PER_POLL)) {
    const info = await source.contentInfo(digest);
    if (info !== null) blobs.set(digest, { state: 'fetched', total: info.size });
  }
}
