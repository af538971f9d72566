// Finds the pull an in-flight blob belongs to, and what that pull must fetch: every containerd
// call the tracker makes to discover pulls lives here.
//
// Routes, cheapest exact one first (docs/containerd-discovery.md says which containerd uses
// which, and why):
// 1. The pull's lease (leases.v1.Leases/List + ListResources): every pull, CRI or transfer
//    service, on containerd 1.6–2.x, runs under a lease that holds its ingests and the blobs it
//    committed — the manifest first. An orphan ingest's lease names the manifest, whatever the
//    labels (discard_unpacked_layers writes no gc.ref.content.l.<i> labels).
// 2. Label lookup (shortcut, once per blob): a manifest labelled
//    containerd.io/gc.ref.content.l.<i> or .config == the blob's digest.
// 3. A manifest or index ingest seen in flight: read once it is committed.
// What is already on the node counts as cached: committed blobs, and layers whose blob is gone
// but whose snapshot exists (Snapshots/Stat of the layer's chain ID, from the config's diff_ids).
import type { Logger } from '../../common/logging.js';
import { isCode } from '../../common/errors.js';
import type { ContainerdSource, ContentInfo } from '../containerd/source.js';
import { unpackedLayers } from './snapshots.js';
import {
  MAX_MANIFEST_BYTES,
  distinctBlobs,
  parseManifest,
  pickPlatform,
  type BlobRef,
  type Index,
  type Manifest,
} from './manifest.js';

/** Layer label indexes searched by the label shortcut. */
const LAYER_LABEL_SEARCH = 64;
const INDEX_LABEL_SEARCH = 16;
/** A manifest whose config is not committed yet waits this long for it before it is used. */
const CONFIG_WAIT_MS = 3_000;
const CONFIG_LABEL = 'containerd.io/gc.ref.content.config';
/** Leases looked into per poll at most (a handful exist: one per pull or task in progress). */
const MAX_LEASES_PER_POLL = 32;
/** A lease holding no manifest for this long is not a pull's (or its pull is found otherwise). */
const LEASE_GIVE_UP_MS = 10 * 60_000;
const INDEX_LABEL_PREFIX = 'containerd.io/gc.ref.content.m.';

/** What a PullDiscovery is built with. */
export interface DiscoveryOptions {
  /** "os/arch[/variant]" picked from an index. */
  platform: string;
  /** The snapshotter CRI unpacks into ("overlayfs"): where a discarded layer's snapshot is. */
  snapshotter: string;
  /** How long a manifest ingest seen in flight is waited for, in milliseconds. */
  forgetAfterMs: number;
  log: Logger;
}

/** A pull found: its platform manifest, the index it came from, and what is on the node. */
export interface FoundPull {
  /** The platform manifest's blob (Content/Info: digest, size, labels, commit time). */
  manifest: ContentInfo;
  /** The index it was picked from, when there is one. */
  index: ContentInfo | null;
  /** The manifest, parsed. */
  doc: Manifest;
  /** Distinct blobs, config first. */
  blobs: BlobRef[];
  /** Blobs committed when the pull was found (not in flight), with their info. */
  present: Map<string, ContentInfo>;
  /** Layers with no blob whose unpacked snapshot exists: on the node before the pull. */
  unpacked: Set<string>;
  /** False when the config could not be read yet (the snapshot check is to be redone). */
  snapshotsChecked: boolean;
}

/** An orphan ingest: in flight, tied to no known pull yet. */
export interface Orphan {
  /** The ingest's ref as Content/ListStatuses gives it ("layer-sha256:<hex>"). */
  ref: string;
  /** The blob's digest, from the ref. */
  digest: string;
}

type BlobKind = 'manifest' | 'index' | 'other';

/**
 * Ties in-flight blobs to the pulls they belong to, with read-only containerd calls (Leases
 * List/ListResources, Content Info/List/Read, Snapshots Stat), and remembers between polls what
 * it learnt (which leases are done, which blobs are not manifests). Its methods throw
 * PT_CONTAINERD_UNAVAILABLE when containerd cannot be reached; the tracker then retries the whole
 * poll. Not pure: one per PullTracker.
 */
export class PullDiscovery {
  /** Manifest/index digests seen as ingests (or waiting for their config), to read later. */
  private readonly pending = new Map<string, number>();
  private readonly kinds = new Map<string, BlobKind>();
  private readonly indexOf = new Map<string, ContentInfo>();
  /** Leases whose pull is found: not listed again. */
  private readonly doneLeases = new Set<string>();
  /** When each lease not yet tied to a pull was first seen (ms). */
  private readonly leaseSeen = new Map<string, number>();
  /** Orphan blobs of the last poll. */
  private readonly orphanSeen = new Set<string>();
  /** Blobs the label shortcut was tried for. */
  private readonly labelTried = new Set<string>();

  constructor(
    private readonly source: ContainerdSource,
    private readonly o: DiscoveryOptions,
  ) {}

  /** A manifest or index ingest was seen: read it once it is committed. */
  noteManifestIngest(digest: string, now: number): void {
    if (!this.pending.has(digest)) this.pending.set(digest, now);
  }

  /** Marks a blob as known not to be a manifest (a layer or config seen as such). */
  noteOther(digest: string): void {
    if (!this.kinds.has(digest)) this.kinds.set(digest, 'other');
  }

  /**
   * Pulls for `orphans` and for the manifests noted in flight. `known(d)` says a manifest or
   * index already has its pull; `inFlight(d)` that a blob is being fetched (it is not present).
   * Throws PT_CONTAINERD_UNAVAILABLE when containerd cannot be reached; any other failure of
   * one blob is logged and that blob skipped.
   */
  async find(
    orphans: Orphan[],
    known: (digest: string) => boolean,
    inFlight: (digest: string) => boolean,
    now: number,
  ): Promise<FoundPull[]> {
    // Bookkeeping is kept only once the whole search worked: a call failing half way (containerd
    // restarting) leaves the next poll to search again from the same point.
    const leasesDone: string[] = [];
    const tried: string[] = [];
    const heads = new Map<string, ContentInfo>();
    /** Heads found in a lease: the lease holds the index too if there is one. */
    const fromLease = new Set<string>();
    const held = new Set<string>();
    for (const info of await this.viaLeases(orphans, known, leasesDone, held, now)) {
      heads.set(info.digest, info);
      fromLease.add(info.digest);
    }
    // The label shortcut, once per blob, for orphans no lease holds (a client that pulls
    // without one), or that a lease held without its manifest last poll too.
    const stale = orphans.filter(
      (o) => (!held.has(o.digest) || this.orphanSeen.has(o.digest)) && !this.labelTried.has(o.digest),
    );
    if (stale.length > 0) {
      const left = stale.slice(0, 8);
      for (const info of await this.viaLabels(left)) heads.set(info.digest, info);
      tried.push(...left.map((o) => o.digest));
    }
    for (const [digest, since] of this.pending) {
      if (known(digest)) {
        this.pending.delete(digest);
        continue;
      }
      const info = await this.source.contentInfo(digest);
      if (info !== null) heads.set(digest, info);
      else if (now - since > this.o.forgetAfterMs) this.pending.delete(digest);
    }
    const found: FoundPull[] = [];
    for (const info of heads.values()) {
      if (known(info.digest)) continue;
      const f = await this.resolve(info, fromLease.has(info.digest) ? 'none' : null, inFlight, now);
      if (
        f !== null &&
        !known(f.manifest.digest) &&
        !found.some((x) => x.manifest.digest === f.manifest.digest)
      ) {
        found.push(f);
      }
    }
    for (const id of leasesDone) this.doneLeases.add(id);
    this.orphanSeen.clear();
    for (const o of orphans) this.orphanSeen.add(o.digest);
    if (this.labelTried.size + tried.length > 10_000) this.labelTried.clear();
    for (const d of tried) this.labelTried.add(d);
    return found;
  }

  /**
   * The manifests and indexes in the leases of pulls not known yet. Every lease not yet tied
   * to a pull is looked at each poll (a pull waiting for a layer another pull fetches has no
   * ingest of its own, but its lease holds its manifest already); one that holds no manifest
   * for LEASE_GIVE_UP_MS is not a pull's and is left alone, unless it holds an orphan ingest.
   */
  private async viaLeases(
    orphans: Orphan[],
    known: (digest: string) => boolean,
    leasesDone: string[],
    held: Set<string>,
    now: number,
  ): Promise<ContentInfo[]> {
    const refs = new Set(orphans.map((o) => o.ref));
    const digests = new Set(orphans.map((o) => o.digest));
    const leases = await this.source.listLeases();
    const live = new Set(leases.map((l) => l.id));
    for (const id of this.doneLeases) if (!live.has(id)) this.doneLeases.delete(id);
    for (const id of this.leaseSeen.keys()) if (!live.has(id)) this.leaseSeen.delete(id);
    const out: ContentInfo[] = [];
    let looked = 0;
    for (const lease of leases) {
      if (this.doneLeases.has(lease.id) || looked >= MAX_LEASES_PER_POLL) continue;
      const seen = this.leaseSeen.get(lease.id) ?? now;
      this.leaseSeen.set(lease.id, seen);
      if (now - seen > LEASE_GIVE_UP_MS && orphans.length === 0) continue;
      looked++;
      const res = await this.source.listLeaseResources(lease.id);
      const holds = res.some(
        (r) => (r.type === 'ingests' && refs.has(r.id)) || (r.type === 'content' && digests.has(r.id)),
      );
      for (const o of orphans) {
        if (
          res.some(
            (r) => (r.type === 'ingests' && r.id === o.ref) || (r.type === 'content' && r.id === o.digest),
          )
        )
          held.add(o.digest);
      }
      if (now - seen > LEASE_GIVE_UP_MS && !holds) continue;
      const heads: ContentInfo[] = [];
      for (const r of res) {
        if (r.type !== 'content' || digests.has(r.id)) continue;
        const info = await this.headOf(r.id);
        if (info !== null) heads.push(info);
      }
      // An index leads to its platform manifest: use it, not the manifests it lists.
      const indexes = heads.filter((h) => this.kinds.get(h.digest) === 'index');
      const chosen = indexes.length > 0 ? indexes : heads;
      if (chosen.length > 0) leasesDone.push(lease.id);
      for (const h of chosen) if (!known(h.digest)) out.push(h);
    }
    return out;
  }

  /** The blob's info if it is a manifest or index, else null; what it is, remembered. */
  private async headOf(digest: string): Promise<ContentInfo | null> {
    const k = this.kinds.get(digest);
    if (k === 'other') return null;
    const info = await this.source.contentInfo(digest);
    if (info === null) return null;
    if (k === undefined) {
      let kind: BlobKind = 'other';
      if (Object.hasOwn(info.labels, CONFIG_LABEL)) kind = 'manifest';
      else if (Object.keys(info.labels).some((l) => l.startsWith(INDEX_LABEL_PREFIX))) kind = 'index';
      else if (info.size <= MAX_MANIFEST_BYTES) kind = (await this.read(digest))?.kind ?? 'other';
      this.kinds.set(digest, kind);
      if (kind === 'other') return null;
    }
    return info;
  }

  /** The label shortcut: manifests whose gc.ref labels name one of the orphans. */
  private async viaLabels(orphans: Orphan[]): Promise<ContentInfo[]> {
    const filters: string[] = [];
    for (const { digest } of orphans) {
      filters.push(`labels."${CONFIG_LABEL}"==${digest}`);
      for (let i = 0; i < LAYER_LABEL_SEARCH; i++)
        filters.push(`labels."containerd.io/gc.ref.content.l.${i}"==${digest}`);
    }
    return this.source.listContent(filters);
  }

  /** Reads a manifest or index; null (and remembered as not one) when it is neither. */
  async read(digest: string): Promise<Manifest | Index | null> {
    const doc = await this.readOrError(digest);
    return doc instanceof Error ? null : doc;
  }

  /** A manifest or index, or why the blob is not one (remembered: it is not read again). */
  private async readOrError(digest: string): Promise<Manifest | Index | Error> {
    try {
      const doc = parseManifest(await this.source.readBlob(digest, MAX_MANIFEST_BYTES));
      this.kinds.set(digest, doc.kind);
      return doc;
    } catch (err) {
      if (isCode(err, 'PT_CONTAINERD_UNAVAILABLE')) throw err;
      this.kinds.set(digest, 'other');
      return err instanceof Error ? err : new Error(String(err));
    }
  }

  /** From a manifest or index to the pull it describes; null when it cannot be used (yet). */
  private async resolve(
    info: ContentInfo,
    /** The index it came from; 'none' when known to have none; null when not known. */
    index: ContentInfo | 'none' | null,
    inFlight: (digest: string) => boolean,
    now: number,
  ): Promise<FoundPull | null> {
    const doc = await this.readOrError(info.digest);
    if (doc instanceof Error) {
      this.pending.delete(info.digest);
      this.o.log.warn({ err: doc, digest: info.digest }, 'cannot read manifest; its pull is not tracked');
      return null;
    }
    if (doc.kind === 'index') {
      const entry = pickPlatform(doc, this.o.platform);
      if (entry === null) {
        this.pending.delete(info.digest);
        this.o.log.warn(
          { digest: info.digest, platform: this.o.platform },
          'index has no entry for this platform',
        );
        return null;
      }
      const child = await this.source.contentInfo(entry.digest);
      if (child === null) {
        // The platform manifest is not committed yet: look again next poll.
        this.pending.set(entry.digest, this.pending.get(entry.digest) ?? now);
        this.indexOf.set(entry.digest, info);
        return null;
      }
      return this.resolve(child, info, inFlight, now);
    }
    const idx =
      index === 'none'
        ? null
        : (index ?? this.indexOf.get(info.digest) ?? (await this.findIndex(info.digest)));
    const blobs = distinctBlobs(doc);
    // Every call before the pull exists: if one fails, nothing is half made.
    const present = await this.presentBlobs(blobs, inFlight);
    const missing = doc.layers.filter((l) => !present.has(l.digest) && !inFlight(l.digest));
    const unpacked = missing.length === 0 ? new Set<string>() : await this.unpackedLayers(doc, missing);
    const since = this.pending.get(info.digest) ?? now;
    if (unpacked === null && now - since < CONFIG_WAIT_MS) {
      this.pending.set(info.digest, since); // wait for the config to know what is unpacked
      if (idx !== null) this.indexOf.set(info.digest, idx);
      return null;
    }
    this.pending.delete(info.digest);
    this.indexOf.delete(info.digest);
    return {
      manifest: info,
      index: idx,
      doc,
      blobs,
      present,
      unpacked: unpacked ?? new Set(),
      snapshotsChecked: unpacked !== null,
    };
  }

  private async findIndex(manifestDigest: string): Promise<ContentInfo | null> {
    const filters: string[] = [];
    for (let i = 0; i < INDEX_LABEL_SEARCH; i++)
      filters.push(`labels."${INDEX_LABEL_PREFIX}${i}"==${manifestDigest}`);
    const found = await this.source.listContent(filters);
    return found[0] ?? null;
  }

  /** The committed blobs among `refs` that are not in flight, by digest. */
  private async presentBlobs(
    refs: BlobRef[],
    inFlight: (digest: string) => boolean,
  ): Promise<Map<string, ContentInfo>> {
    const out = new Map<string, ContentInfo>();
    for (const ref of refs) {
      if (inFlight(ref.digest)) continue;
      const info = await this.source.contentInfo(ref.digest);
      if (info !== null) out.set(ref.digest, info);
    }
    return out;
  }

  /** Which of `missing` are unpacked already (snapshots.ts); null while the config is unreadable. */
  unpackedLayers(doc: Manifest, missing: BlobRef[]): Promise<Set<string> | null> {
    return unpackedLayers(this.source, this.o.snapshotter, doc, missing, this.o.log);
  }

  /** Bytes of an image's platform manifest's distinct blobs, from the content store; 0 if unreadable. */
  async imageSize(digest: string): Promise<number> {
    let doc = await this.read(digest);
    if (doc?.kind === 'index') {
      const entry = pickPlatform(doc, this.o.platform);
      doc = entry === null ? null : await this.read(entry.digest);
    }
    if (doc?.kind !== 'manifest') return 0;
    return distinctBlobs(doc).reduce((n, b) => n + b.size, 0);
  }
}
