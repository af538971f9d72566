// Image records and the pulls they end. CRI writes a pull's records (tag, repo@digest,
// sha256:<config>) only once every layer is fetched and unpacked, even where the layer blobs are
// discarded (and collected) right after: a record targeting a pull's manifest or index, made
// while the pull ran, is its end, and its names are the pull's names.
import type { ContainerdSource, ImageRecord } from '../containerd/source.js';
import { allBlobsIn } from './progress.js';
import type { BlobState, PullState } from './state.js';

/** Names kept for reading at most (a burst of events beyond it waits for the full list). */
const MAX_CHANGED = 10_000;
/** With the event stream up, every record is still listed this often while a pull waits (ms). */
const FULL_LIST_EVERY_MS = 10_000;

/** The records to read: the ones events named, and now and then all of them. */
export class ImageRecords {
  /** Records containerd said were created or updated, to read by name (Images/Get). */
  private readonly names = new Set<string>();
  /** When every record was last listed (ms). */
  private lastFullList = -Infinity;

  /** An /images/create or /images/update event named `name`. */
  changed(name: string): void {
    if (this.names.size < MAX_CHANGED) this.names.add(name);
  }

  /**
   * Reads the records a pull may have made — those events named (Images/Get each, a direct
   * look-up) and every record (Images/List, which walks them all) only while a pull waits for
   * its end: unpacking, or idle with blobs missing (discarded layers may be collected before a
   * poll sees them committed) — every poll without an event stream (`eventsLive` false), every
   * 10 s with one (an event missed across a reconnect); then names and ends the pulls.
   * Throws PT_CONTAINERD_UNAVAILABLE when containerd cannot be reached.
   */
  async check(
    source: ContainerdSource,
    pulls: Iterable<PullState>,
    blobs: ReadonlyMap<string, BlobState>,
    now: number,
    eventsLive: boolean,
  ): Promise<void> {
    const all = [...pulls];
    const waiting = all.some(
      (p) =>
        p.finishedAt === null &&
        (allBlobsIn(p, blobs) || p.idleSince !== null || p.blobs.some((b) => gone(blobs.get(b.digest)))),
    );
    let images: ImageRecord[];
    if (waiting && now - this.lastFullList >= (eventsLive ? FULL_LIST_EVERY_MS : 0)) {
      images = await source.listImages();
      this.lastFullList = now;
      this.names.clear();
    } else if (this.names.size > 0) {
      const names = [...this.names];
      images = [];
      for (const name of names) {
        const rec = await source.getImage(name);
        if (rec !== null) images.push(rec);
      }
      for (const name of names) this.names.delete(name);
    } else {
      return;
    }
    applyRecords(all, blobs, images, now);
  }
}

/**
 * A blob that left the ingests and is not in the content store: being committed, cancelled, or
 * committed and already collected (discard_unpacked_layers, unpacked before this poll): its
 * image record may already say the pull is over.
 */
function gone(b: BlobState | undefined): boolean {
  return b?.state === 'lost' || (b?.state === 'fetching' && b.leaving === true);
}

/** Names pulls after their records; a record made or changed while a pull ran ends it. Pure. */
export function applyRecords(
  pulls: readonly PullState[],
  blobs: ReadonlyMap<string, BlobState>,
  images: readonly ImageRecord[],
  now: number,
): void {
  for (const p of pulls) {
    const mine = images.filter(
      (i) =>
        i.target.digest === p.manifestDigest || (p.indexDigest !== null && i.target.digest === p.indexDigest),
    );
    for (const i of mine) p.names.add(i.name);
    if (mine.length === 0 || p.finishedAt !== null) continue;
    const fresh = mine.some((i) => (i.updatedAt ?? i.createdAt ?? new Date(now)).getTime() >= p.startedAt);
    if (fresh || allBlobsIn(p, blobs)) {
      p.finishedAt = now;
      p.phase = 'Pulled';
      p.error = null;
    }
  }
}
