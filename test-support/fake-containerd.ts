// An in-memory ContainerdSource for unit tests of pure logic (the tracker, the `pulls`
// command): ingests, content, image records and snapshots held in maps, and helpers that script
// a pull step by step the way containerd shows one (see node-agent/integration/tracker.test.ts
// for the real sequence). It keeps the two behaviours of the real adapter that callers rely
// on: containerd's filter syntax for List calls, and readBlob's size bound. Failures are
// injected with `down()` and `failNext()`, which reject like the adapter does when the socket
// is gone (PulltraceError PT_CONTAINERD_UNAVAILABLE). Its answers are held to real containerd's
// by one conformance suite run on both (test-support/containerd-conformance.ts); what that
// suite found the fake getting wrong is fixed here and noted where it is done.
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { PulltraceError, type ErrorCode } from '../common/errors.js';
import type {
  ContainerdEvent,
  ContainerdSource,
  ContentInfo,
  EventHandlers,
  EventSubscription,
  ImageRecord,
  IngestStatus,
  Lease,
  LeaseResource,
  SnapshotInfo,
} from '../node-agent/containerd/source.js';

/** The calls a test can make fail with `failNext`. */
export type SourceMethod =
  | 'listIngests'
  | 'contentInfo'
  | 'listContent'
  | 'readBlob'
  | 'listImages'
  | 'getImage'
  | 'statSnapshot'
  | 'listLeases'
  | 'listLeaseResources'
  | 'subscribe';

export interface FakeSourceOptions {
  /** Milliseconds since the epoch; stamps createdAt/updatedAt and events. Default Date.now. */
  clock?: () => number;
  /** Namespace stamped on events. Default "k8s.io". */
  namespace?: string;
  /**
   * The snapshotters containerd loaded: statSnapshot on any other rejects, as containerd's
   * "snapshotter not loaded". Default overlayfs and native (always there on Linux);
   * setSnapshot loads the one it names.
   */
  snapshotters?: string[];
}

export interface ContentOptions {
  labels?: Record<string, string>;
  /** The lease the write happens under (containerd adds the blob to it as a "content" resource). */
  lease?: string;
  /** Default: the clock's now. */
  createdAt?: Date;
}

/** "sha256:<hex>" of some bytes, as containerd names content. */
export function sha256Digest(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

// ---------------------------------------------------------------------------------------------
// containerd's filter syntax (the grammar documented in containerd's filters package):
//   filter    := selector ("," selector)*        all selectors must match
//   selector  := fieldpath [operator value]      no operator: the field is present
//   fieldpath := field ("." field)*
//   field     := quoted | [A-Za-z0-9_-]+
//   operator  := "==" | "!=" | "~="
//   value     := quoted | [^\s,]+
// A list of filters matches an object when any one does; an empty list matches everything.
// Only double quotes are supported for quoting (containerd also accepts / and |).

interface Selector {
  path: string[];
  op: 'present' | '==' | '!=' | '~=';
  value: string;
}

type Fields = (path: string[]) => { value: string; present: boolean };

function invalidFilter(input: string, pos: number, why: string): PulltraceError {
  return new PulltraceError(
    'PT_CONTAINERD_CALL_FAILED',
    `invalid filter ${JSON.stringify(input)} at ${pos}: ${why}`,
  );
}

/** Parses one filter string into the selectors that must all match; throws on bad syntax. */
export function parseFilter(input: string): Selector[] {
  let i = 0;
  const skipSpace = () => {
    while (i < input.length && /\s/.test(input.charAt(i))) i++;
  };
  const quoted = (): string => {
    const start = i;
    i++;
    while (i < input.length && input.charAt(i) !== '"') i += input.charAt(i) === '\\' ? 2 : 1;
    if (i >= input.length) throw invalidFilter(input, start, 'quoted literal not terminated');
    i++;
    try {
      return JSON.parse(input.slice(start, i)) as string;
    } catch {
      throw invalidFilter(input, start, 'bad quoted literal');
    }
  };
  const field = (): string => {
    skipSpace();
    if (input.charAt(i) === '"') return quoted();
    const m = /^[A-Za-z0-9_-]+/.exec(input.slice(i));
    if (m === null) throw invalidFilter(input, i, 'expected a field or a quoted string');
    i += m[0].length;
    return m[0];
  };
  const selector = (): Selector => {
    const path = [field()];
    for (;;) {
      skipSpace();
      if (input.charAt(i) !== '.') break;
      i++;
      path.push(field());
    }
    skipSpace();
    if (i >= input.length || input.charAt(i) === ',') return { path, op: 'present', value: '' };
    const op = input.slice(i, i + 2);
    if (op !== '==' && op !== '!=' && op !== '~=') {
      throw invalidFilter(input, i, 'expected an operator (==, != or ~=)');
    }
    i += 2;
    skipSpace();
    if (input.charAt(i) === '"') return { path, op, value: quoted() };
    const m = /^[^\s,]+/.exec(input.slice(i));
    if (m === null) throw invalidFilter(input, i, 'expected a value');
    i += m[0].length;
    return { path, op, value: m[0] };
  };
  const out = [selector()];
  for (;;) {
    skipSpace();
    if (i >= input.length) return out;
    if (input.charAt(i) !== ',') throw invalidFilter(input, i, 'unexpected input');
    i++;
    out.push(selector());
  }
}

function matchSelector(s: Selector, fields: Fields): boolean {
  const { value, present } = fields(s.path);
  switch (s.op) {
    case 'present':
      return present;
    case '==':
      return present && value === s.value;
    case '!=':
      return value !== s.value;
    case '~=':
      try {
        return new RegExp(s.value).test(value);
      } catch {
        return false; // containerd logs a bad expression and matches nothing
      }
  }
}

/** Parses every filter first (one bad filter fails the call, as in containerd). */
function compileFilters(filters: string[]): (fields: Fields) => boolean {
  const parsed = filters.filter((f) => f !== '').map(parseFilter);
  const matchAll = filters.length === 0 || filters.some((f) => f === '');
  return (fields) => matchAll || parsed.some((sels) => sels.every((s) => matchSelector(s, fields)));
}

function labelField(path: string[], labels: Record<string, string>): { value: string; present: boolean } {
  const key = path.join('.');
  return Object.hasOwn(labels, key)
    ? { value: labels[key] ?? '', present: true }
    : { value: '', present: false };
}

/** Fields of a blob as containerd's content store exposes them to filters. */
function contentFields(info: ContentInfo): Fields {
  return (path) => {
    const [head, ...rest] = path;
    if (head === 'digest' && rest.length === 0) return { value: info.digest, present: true };
    if (head === 'labels') return labelField(rest, info.labels);
    return { value: '', present: false };
  };
}

/** Fields of an image record as containerd's image store exposes them to filters. */
function imageFields(img: ImageRecord): Fields {
  return (path) => {
    const [head, ...rest] = path;
    if (head === 'name' && rest.length === 0) return { value: img.name, present: img.name !== '' };
    if (head === 'target' && rest.length === 1) {
      if (rest[0] === 'digest') return { value: img.target.digest, present: img.target.digest !== '' };
      if (rest[0] === 'mediatype') {
        return { value: img.target.mediaType, present: img.target.mediaType !== '' };
      }
    }
    if (head === 'labels') return labelField(rest, img.labels);
    return { value: '', present: false };
  };
}

// ---------------------------------------------------------------------------------------------

interface StoredBlob {
  info: ContentInfo;
  /** The bytes, or null for a blob whose content does not matter (a layer): reads as zeros. */
  data: Buffer | null;
}

const DIGEST_IN_REF = /(sha256:[0-9a-f]{64})/;

/** What containerd (go-digest's Validate) accepts as a digest; anything else is INVALID_ARGUMENT. */
const VALID_DIGEST = /^(?:sha256:[0-9a-f]{64}|sha384:[0-9a-f]{96}|sha512:[0-9a-f]{128})$/;

/** containerd lists from its bolt database, so in key order (byte-wise, as here). */
function byKey<T>(key: (x: T) => string): (a: T, b: T) => number {
  return (a, b) => {
    const x = key(a);
    const y = key(b);
    return x < y ? -1 : x > y ? 1 : 0;
  };
}

function copyInfo(i: ContentInfo): ContentInfo {
  return { ...i, labels: { ...i.labels } };
}

function copyImage(i: ImageRecord): ImageRecord {
  return { ...i, target: { ...i.target }, labels: { ...i.labels } };
}

export class FakeContainerdSource implements ContainerdSource {
  private readonly now: () => number;
  private readonly namespace: string;
  private readonly ingests = new Map<string, IngestStatus>();
  private readonly content = new Map<string, StoredBlob>();
  private readonly images = new Map<string, ImageRecord>();
  private readonly snapshots = new Map<string, Map<string, SnapshotInfo>>();
  private readonly snapshotters: Set<string>;
  private readonly leases = new Map<string, { lease: Lease; resources: LeaseResource[] }>();
  private readonly events = new EventEmitter();
  private failures: { method: SourceMethod | null; code: ErrorCode; after: number; times: number }[] = [];
  private isDown = false;
  private closed = false;
  /** Every call made, in order, by method name. */
  readonly calls: SourceMethod[] = [];

  constructor(opts: FakeSourceOptions = {}) {
    this.now = opts.clock ?? Date.now;
    this.namespace = opts.namespace ?? 'k8s.io';
    this.snapshotters = new Set(opts.snapshotters ?? ['overlayfs', 'native']);
  }

  /** How many times `method` was called. */
  count(method: SourceMethod): number {
    return this.calls.filter((c) => c === method).length;
  }

  // --- failure injection --------------------------------------------------------------------

  /** containerd goes away: every call rejects, open event streams end with an error. */
  down(): void {
    this.isDown = true;
    const err = new PulltraceError('PT_CONTAINERD_UNAVAILABLE', 'event stream ended');
    this.events.emit('ended', err);
    this.events.removeAllListeners();
  }

  /** containerd is back. */
  up(): void {
    this.isDown = false;
  }

  /**
   * Makes calls of `method` (of any method when null) reject: after `after` more calls go
   * through (default 0), the next `times` (default 1) reject with `code`, by default what the
   * adapter raises when containerd cannot be reached.
   */
  failNext(
    method: SourceMethod | null = null,
    opts: { times?: number; after?: number; code?: ErrorCode } = {},
  ): void {
    this.failures.push({
      method,
      code: opts.code ?? 'PT_CONTAINERD_UNAVAILABLE',
      after: opts.after ?? 0,
      times: opts.times ?? 1,
    });
  }

  /** Drops failures queued by failNext that have not happened yet; returns how many. */
  clearFailures(): number {
    const n = this.failures.length;
    this.failures = [];
    return n;
  }

  private gate(method: SourceMethod): PulltraceError | null {
    this.calls.push(method);
    if (this.closed) return new PulltraceError('PT_CONTAINERD_UNAVAILABLE', `${method}: source closed`);
    if (this.isDown) return new PulltraceError('PT_CONTAINERD_UNAVAILABLE', method);
    const f = this.failures.find((x) => x.method === null || x.method === method);
    if (f === undefined) return null;
    if (f.after > 0) {
      f.after--;
      return null;
    }
    f.times--;
    if (f.times <= 0) this.failures.splice(this.failures.indexOf(f), 1);
    return new PulltraceError(f.code, `${method} (injected failure)`);
  }

  // --- scripting a pull ----------------------------------------------------------------------

  /** Creates a lease, as a pull does before its first write (containerd's client.WithLease). */
  createLease(id: string, labels: Record<string, string> = {}): void {
    this.leases.set(id, {
      lease: { id, createdAt: new Date(this.now()), labels: { ...labels } },
      resources: [],
    });
  }

  /** Deletes a lease, as a pull does when it ends. */
  deleteLease(id: string): void {
    if (!this.leases.delete(id)) throw new Error(`no lease ${id}`);
  }

  private holdIn(lease: string | undefined, resource: LeaseResource): void {
    if (lease === undefined) return;
    const l = this.leases.get(lease);
    if (l === undefined) throw new Error(`no lease ${lease}`);
    if (!l.resources.some((r) => r.id === resource.id && r.type === resource.type))
      l.resources.push(resource);
  }

  /**
   * Starts or moves an ingest; `updatedAt` defaults to now, `startedAt` to its first call.
   * With `lease`, the ingest is one of that lease's resources (type "ingests").
   */
  setIngest(
    ref: string,
    offset: number,
    total: number,
    opts: { updatedAt?: Date; lease?: string } = {},
  ): void {
    this.holdIn(opts.lease, { id: ref, type: 'ingests' });
    if (!Number.isSafeInteger(offset) || offset < 0 || (total > 0 && offset > total)) {
      throw new Error(`bad ingest offset ${offset} of ${total} for ${ref}`);
    }
    const at = new Date(this.now());
    const prev = this.ingests.get(ref);
    this.ingests.set(ref, {
      ref,
      offset,
      total,
      expected: '',
      startedAt: prev?.startedAt ?? at,
      updatedAt: opts.updatedAt ?? at,
    });
  }

  /** The ingest is abandoned (a failed or cancelled pull): it leaves the list, nothing is stored. */
  removeIngest(ref: string): void {
    if (!this.ingests.delete(ref)) throw new Error(`no ingest ${ref}`);
    this.releaseIngest(ref);
  }

  /** A lease stops holding an ingest once it is committed or aborted (containerd's metadata store). */
  private releaseIngest(ref: string): void {
    for (const l of this.leases.values()) {
      l.resources = l.resources.filter((r) => !(r.type === 'ingests' && r.id === ref));
    }
  }

  /** Stores a blob with its bytes (manifests, indexes); its digest is theirs. */
  addBlob(data: Buffer | string, opts: ContentOptions = {}): ContentInfo {
    const bytes = Buffer.from(data);
    return this.store(sha256Digest(bytes), bytes.length, bytes, opts);
  }

  /** Stores a blob known by digest and size only (layers, configs): it reads as zeros. */
  addContent(digest: string, size: number, opts: ContentOptions = {}): ContentInfo {
    return this.store(digest, size, null, opts);
  }

  /**
   * Commits the ingest `ref`: it leaves the list and its blob is stored, with the digest in
   * the ref and the ingest's total as size unless `data` is given.
   */
  commit(ref: string, opts: ContentOptions & { data?: Buffer | string } = {}): ContentInfo {
    const ing = this.ingests.get(ref);
    if (ing === undefined) throw new Error(`no ingest ${ref}`);
    this.ingests.delete(ref);
    this.releaseIngest(ref);
    if (opts.data !== undefined) return this.addBlob(opts.data, opts);
    const digest = DIGEST_IN_REF.exec(ref)?.[1];
    if (digest === undefined) throw new Error(`no digest in ref ${ref}`);
    return this.store(digest, ing.total, null, opts);
  }

  private store(digest: string, size: number, data: Buffer | null, opts: ContentOptions): ContentInfo {
    this.holdIn(opts.lease, { id: digest, type: 'content' });
    const at = opts.createdAt ?? new Date(this.now());
    const info: ContentInfo = { digest, size, labels: { ...opts.labels }, createdAt: at, updatedAt: at };
    this.content.set(digest, { info, data });
    return copyInfo(info);
  }

  /** Sets labels on a stored blob (containerd's Content.Update). */
  setLabels(digest: string, labels: Record<string, string>): void {
    const b = this.content.get(digest);
    if (b === undefined) throw new Error(`no blob ${digest}`);
    b.info = { ...b.info, labels: { ...b.info.labels, ...labels }, updatedAt: new Date(this.now()) };
  }

  /** Removes a blob (garbage collection, e.g. a layer discarded after unpack). */
  deleteContent(digest: string): void {
    if (!this.content.delete(digest)) throw new Error(`no blob ${digest}`);
  }

  /**
   * Creates or replaces an image record and emits /images/create (or /images/update). The
   * target's size defaults to the stored blob's, its media type to an OCI manifest.
   */
  createImage(
    name: string,
    target: { digest: string; mediaType?: string; size?: number },
    opts: ContentOptions = {},
  ): ImageRecord {
    const at = opts.createdAt ?? new Date(this.now());
    const existed = this.images.has(name);
    const rec: ImageRecord = {
      name,
      target: {
        digest: target.digest,
        mediaType: target.mediaType ?? 'application/vnd.oci.image.manifest.v1+json',
        size: target.size ?? this.content.get(target.digest)?.info.size ?? 0,
      },
      labels: { ...opts.labels },
      createdAt: at,
      updatedAt: at,
    };
    this.images.set(name, rec);
    this.emit({
      topic: existed ? '/images/update' : '/images/create',
      namespace: this.namespace,
      at: new Date(this.now()),
      name,
    });
    return copyImage(rec);
  }

  /** Removes an image record and emits /images/delete. */
  deleteImage(name: string): void {
    if (!this.images.delete(name)) throw new Error(`no image ${name}`);
    this.emit({ topic: '/images/delete', namespace: this.namespace, at: new Date(this.now()), name });
  }

  /**
   * Adds or replaces a snapshot (e.g. an active "extract-…" one while a layer unpacks). With
   * `lease`, the lease holds it (type "snapshots/<snapshotter>"), as an unpack's snapshots are.
   */
  setSnapshot(snapshotter: string, info: SnapshotInfo, opts: { lease?: string } = {}): void {
    this.holdIn(opts.lease, { id: info.name, type: `snapshots/${snapshotter}` });
    this.snapshotters.add(snapshotter);
    const m = this.snapshots.get(snapshotter) ?? new Map<string, SnapshotInfo>();
    m.set(info.name, { ...info, labels: { ...info.labels } });
    this.snapshots.set(snapshotter, m);
  }

  /** Removes a snapshot (an unpack's active one once committed); leases stop holding it. */
  removeSnapshot(snapshotter: string, name: string): void {
    if (this.snapshots.get(snapshotter)?.delete(name) !== true) throw new Error(`no snapshot ${name}`);
    for (const l of this.leases.values()) {
      l.resources = l.resources.filter((r) => !(r.type === `snapshots/${snapshotter}` && r.id === name));
    }
  }

  /** Delivers an event to every open subscription, synchronously. */
  emit(event: ContainerdEvent): void {
    this.events.emit('event', event);
  }

  /** Open event subscriptions. */
  subscribers(): number {
    return this.events.listenerCount('event');
  }

  // --- ContainerdSource ----------------------------------------------------------------------

  listIngests(): Promise<IngestStatus[]> {
    const err = this.gate('listIngests');
    if (err !== null) return Promise.reject(err);
    return Promise.resolve([...this.ingests.values()].map((i) => ({ ...i })));
  }

  contentInfo(digest: string): Promise<ContentInfo | null> {
    const err = this.gate('contentInfo');
    if (err !== null) return Promise.reject(err);
    if (!VALID_DIGEST.test(digest)) {
      return Promise.reject(
        new PulltraceError('PT_CONTAINERD_CALL_FAILED', `invalid digest ${JSON.stringify(digest)}`),
      );
    }
    const b = this.content.get(digest);
    return Promise.resolve(b === undefined ? null : copyInfo(b.info));
  }

  listContent(filters: string[] = []): Promise<ContentInfo[]> {
    const err = this.gate('listContent');
    if (err !== null) return Promise.reject(err);
    try {
      const match = compileFilters(filters);
      return Promise.resolve(
        [...this.content.values()]
          .filter((b) => match(contentFields(b.info)))
          .map((b) => copyInfo(b.info))
          .sort(byKey((i) => i.digest)),
      );
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
  }

  readBlob(digest: string, maxBytes: number): Promise<Buffer> {
    const err = this.gate('readBlob');
    if (err !== null) return Promise.reject(err);
    const b = this.content.get(digest);
    if (b === undefined) {
      return Promise.reject(new PulltraceError('PT_CONTAINERD_BAD_DATA', `blob ${digest} not found`));
    }
    if (b.info.size > maxBytes) {
      return Promise.reject(
        new PulltraceError('PT_CONTAINERD_BAD_DATA', `blob ${digest} is larger than ${maxBytes} bytes`),
      );
    }
    return Promise.resolve(b.data === null ? Buffer.alloc(b.info.size) : Buffer.from(b.data));
  }

  listImages(filters: string[] = []): Promise<ImageRecord[]> {
    const err = this.gate('listImages');
    if (err !== null) return Promise.reject(err);
    try {
      const match = compileFilters(filters);
      return Promise.resolve(
        [...this.images.values()]
          .filter((i) => match(imageFields(i)))
          .map(copyImage)
          .sort(byKey((i) => i.name)),
      );
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
  }

  getImage(name: string): Promise<ImageRecord | null> {
    const err = this.gate('getImage');
    if (err !== null) return Promise.reject(err);
    const i = this.images.get(name);
    return Promise.resolve(i === undefined ? null : copyImage(i));
  }

  statSnapshot(snapshotter: string, key: string): Promise<SnapshotInfo | null> {
    const err = this.gate('statSnapshot');
    if (err !== null) return Promise.reject(err);
    if (!this.snapshotters.has(snapshotter)) {
      return Promise.reject(
        new PulltraceError('PT_CONTAINERD_CALL_FAILED', `snapshotter not loaded: ${snapshotter}`),
      );
    }
    const snap = this.snapshots.get(snapshotter)?.get(key);
    return Promise.resolve(snap === undefined ? null : { ...snap, labels: { ...snap.labels } });
  }

  listLeases(): Promise<Lease[]> {
    const err = this.gate('listLeases');
    if (err !== null) return Promise.reject(err);
    return Promise.resolve(
      [...this.leases.values()]
        .map((l) => ({ ...l.lease, labels: { ...l.lease.labels } }))
        .sort(byKey((l) => l.id)),
    );
  }

  listLeaseResources(leaseId: string): Promise<LeaseResource[]> {
    const err = this.gate('listLeaseResources');
    if (err !== null) return Promise.reject(err);
    // containerd walks its "content", "ingests", then "snapshots/<name>" buckets, each by key.
    return Promise.resolve(
      (this.leases.get(leaseId)?.resources ?? [])
        .map((r) => ({ ...r }))
        .sort((a, b) => byKey<LeaseResource>((r) => r.type)(a, b) || byKey<LeaseResource>((r) => r.id)(a, b)),
    );
  }

  /**
   * Events are delivered synchronously from the call that caused them. Like the real stream,
   * a subscription made while containerd is down (or failed with failNext) ends with onError
   * asynchronously rather than throwing.
   */
  subscribe(handlers: EventHandlers): EventSubscription {
    const err = this.gate('subscribe');
    if (err !== null) {
      queueMicrotask(() => {
        handlers.onError(err);
      });
      return { close: () => undefined };
    }
    const onEvent = (e: ContainerdEvent) => {
      handlers.onEvent(e);
    };
    const onError = (e: Error) => {
      handlers.onError(e);
    };
    this.events.on('event', onEvent);
    this.events.on('ended', onError);
    return {
      close: () => {
        this.events.off('event', onEvent);
        this.events.off('ended', onError);
      },
    };
  }

  /** Later calls reject; open subscriptions are dropped without an error. */
  close(): void {
    this.closed = true;
    this.events.removeAllListeners();
  }
}
