// The in-memory object store behind the control-plane stand-in, usable in-process: the HTTP
// server is a thin layer over it, and controllers run in the same process (kubelet, deployment
// controller) can use it directly. It behaves like the API server's registry where the project
// depends on it:
//   - one global resourceVersion, moved by every write that changes an object (a write that
//     changes nothing is a no-op, as on the API server); a write carrying a stale
//     metadata.resourceVersion gets 409 Conflict;
//   - create fills generateName, uid, creationTimestamp, generation=1 and resets pod status;
//     metadata.generation moves only when something other than metadata/status changes;
//   - writes to a type's `status` subresource change only .status, other writes keep .status;
//   - a bounded history of changes: a watch from a resourceVersion replays what happened
//     since; an older one than the history holds is Expired (410);
//   - every write goes through the `admit` hook (mutating admission) before it is stored.
// Nothing is persisted.
import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type { Operation } from 'fast-json-patch';
import {
  alreadyExists,
  ApiError,
  badRequest,
  conflict,
  expired,
  internal,
  invalid,
  notFound,
  STALE_OBJECT,
} from './api-error.js';
import { applyJsonPatch, applyPatchOfType, isObject } from './patch.js';
import {
  apiVersionOf,
  BUILTIN_RESOURCES,
  EVENTS,
  fieldValue,
  NAMESPACES,
  PODS,
  type ResourceRef,
  type ResourceType,
} from './resources.js';
import {
  matchFields,
  matchLabels,
  parseFieldSelector,
  parseLabelSelector,
  type FieldRequirement,
  type LabelSelector,
} from './selectors.js';
import type { KubeEvent, KubeObject, Namespace, Pod, PodCondition, WatchEvent } from './types.js';
import { validateMetadata } from './validation.js';

/** Which object: `namespace` is ignored for cluster-scoped types. */
export interface ObjectKey {
  namespace?: string;
  name: string;
}

export interface ListOptions {
  /** Only this namespace (namespaced types); all namespaces when unset. */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
}

export interface WatchOptions extends ListOptions {
  /**
   * Unset, '' or '0': start with an ADDED event per current object. A number: replay every
   * change after it (410 Expired if the history no longer holds it).
   */
  resourceVersion?: string;
  /** Send BOOKMARK events (every `bookmarkIntervalMs` of the store). */
  allowWatchBookmarks?: boolean;
  /** Start with the current objects whatever resourceVersion says, then a bookmark marking their end. */
  sendInitialEvents?: boolean;
}

export interface WriteOptions {
  /** Validate and admit, return the result, store nothing. */
  dryRun?: boolean;
  /** Write the `status` subresource: only .status changes. */
  subresource?: 'status';
}

export interface DeleteOptions {
  dryRun?: boolean;
  preconditions?: { uid?: string; resourceVersion?: string };
}

/** A list as the API returns it (`PodList`, ...), with the store's resourceVersion. */
export interface ObjectList<T extends KubeObject = KubeObject> {
  apiVersion: string;
  kind: string;
  metadata: { resourceVersion: string };
  items: T[];
}

/** One stored change, for in-process listeners (`subscribe`). Objects are copies. */
export interface StoreChange {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  resource: ResourceType;
  /** The new object; for DELETED the last state, carrying the deletion's resourceVersion. */
  object: KubeObject;
  /** The object before a MODIFIED. */
  oldObject?: KubeObject;
  resourceVersion: number;
}

/** What the `admit` hook sees: the fields of an admission.k8s.io/v1 AdmissionRequest. */
export interface AdmissionInput {
  operation: 'CREATE' | 'UPDATE';
  resource: ResourceRef;
  subResource?: string;
  kind: { group: string; version: string; kind: string };
  /** Empty on CREATE with generateName (names are generated after admission, as in a cluster). */
  name: string;
  namespace?: string;
  /** A copy: defaults applied, server-owned fields (uid, resourceVersion...) not yet set on CREATE. */
  object: KubeObject;
  oldObject?: KubeObject;
  dryRun: boolean;
}

/** The hook's answer: allowed with an optional JSONPatch against `object`, or denied. */
export type AdmissionResult =
  | { allowed: true; patch?: Operation[] }
  | { allowed: false; code?: number; reason?: string; message: string };

/**
 * Mutating admission. Called for every CREATE and UPDATE (incl. subresources and in-process
 * writes) of every type except admissionregistration.k8s.io's own; the hook decides which it
 * acts on (a webhook's rules). A throw is answered 500.
 */
export type AdmitHook = (input: AdmissionInput) => Promise<AdmissionResult>;

export interface StoreOptions {
  /** Types added to, or replacing (same group and resource), the built-in ones. */
  resources?: readonly ResourceType[];
  admit?: AdmitHook;
  /** Changes kept for watch replay (default 10000). */
  historyLimit?: number;
  /** Interval between BOOKMARK events on watches that allow them (default 5000 ms). */
  bookmarkIntervalMs?: number;
  /** Clock for creationTimestamp (default: the system clock). */
  now?: () => Date;
}

/** A running watch. */
export interface Watcher {
  stop(): void;
}

interface ActiveWatch {
  type: ResourceType;
  matches: (obj: KubeObject) => boolean;
  onEvent: (e: WatchEvent) => void;
  timer?: NodeJS.Timeout;
}

interface StoredChange extends StoreChange {
  key: string;
}

const NAME_CHARS = 'bcdfghjklmnpqrstvwxz2456789';
const MAX_UPDATE_RETRIES = 5;

/** RFC 3339 with seconds, as the API server writes timestamps. */
export function timestamp(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function randomSuffix(): string {
  let s = '';
  for (let i = 0; i < 5; i++) s += NAME_CHARS[Math.floor(Math.random() * NAME_CHARS.length)] ?? 'x';
  return s;
}

/** A promise of fn's result, rejected with what it throws. */
function settle<T>(fn: () => T): Promise<T> {
  return new Promise((resolve) => {
    resolve(fn());
  });
}

function typeKey(r: { group: string; resource: string }): string {
  return `${r.group}/${r.resource}`;
}

/** The object minus metadata and status: what metadata.generation tracks. */
function generationPart(o: KubeObject): KubeObject {
  const { metadata: _m, status: _s, ...rest } = o;
  return rest;
}

/** An object with its resourceVersion removed, to tell a no-op write. */
function withoutRv(o: KubeObject): KubeObject {
  const c = structuredClone(o);
  if (c.metadata !== undefined) Reflect.deleteProperty(c.metadata, 'resourceVersion');
  return c;
}

export class Store {
  /** Types served, by `group/resource`. */
  private readonly types = new Map<string, ResourceType>();
  /** Objects by `group/resource`, then by `namespace/name`. Stored objects are never mutated. */
  private readonly objects = new Map<string, Map<string, KubeObject>>();
  private readonly history: StoredChange[] = [];
  /** The highest resourceVersion whose change has left the history. */
  private compacted = 0;
  private rv = 0;
  private readonly watchers = new Set<ActiveWatch>();
  private readonly listeners = new Set<(c: StoreChange) => void>();
  private readonly historyLimit: number;
  private readonly bookmarkIntervalMs: number;
  private readonly now: () => Date;
  private readonly admit: AdmitHook | undefined;

  /** Typed access to the types the project uses most. */
  readonly pods: TypedResource<Pod>;
  readonly events: TypedResource<KubeEvent>;
  readonly namespaces: TypedResource<Namespace>;

  constructor(opts: StoreOptions = {}) {
    for (const t of [...BUILTIN_RESOURCES, ...(opts.resources ?? [])]) this.types.set(typeKey(t), t);
    this.historyLimit = opts.historyLimit ?? 10_000;
    this.bookmarkIntervalMs = opts.bookmarkIntervalMs ?? 5000;
    this.now = opts.now ?? (() => new Date());
    this.admit = opts.admit;
    this.pods = this.resource<Pod>(PODS);
    this.events = this.resource<KubeEvent>(EVENTS);
    this.namespaces = this.resource<Namespace>(NAMESPACES);
    for (const name of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) {
      const ns = this.normalize(NAMESPACES, { metadata: { name } });
      NAMESPACES.defaults?.(ns);
      this.commitCreate(NAMESPACES, this.prepareNew(NAMESPACES, ns));
    }
  }

  /** Typed access to one resource type. */
  resource<T extends KubeObject>(ref: ResourceRef): TypedResource<T> {
    return new TypedResource<T>(this, this.type(ref));
  }

  /** Every type served. */
  resourceTypes(): ResourceType[] {
    return [...this.types.values()];
  }

  /** The served type for a reference (the version must match too); 404 otherwise. */
  type(ref: ResourceRef): ResourceType {
    const t = this.types.get(typeKey(ref));
    if (t === undefined || t.version !== ref.version) {
      throw new ApiError(
        404,
        'NotFound',
        `the server could not find the requested resource (${ref.resource})`,
      );
    }
    return t;
  }

  /** The current (latest) resourceVersion. */
  get resourceVersion(): string {
    return String(this.rv);
  }

  // ---- reads ----

  /** A copy of one object (404 if there is none); `resource<T>(ref).get` for a typed one. */
  get(ref: ResourceRef, key: ObjectKey): KubeObject {
    const type = this.type(ref);
    return structuredClone(this.stored(type, key));
  }

  list<T extends KubeObject = KubeObject>(ref: ResourceRef, opts: ListOptions = {}): ObjectList<T> {
    const type = this.type(ref);
    const matches = this.matcher(type, opts);
    const items = [...(this.objects.get(typeKey(type))?.values() ?? [])]
      .filter(matches)
      .sort((a, b) => objectPath(a).localeCompare(objectPath(b)))
      .map((o) => structuredClone(o) as T);
    return {
      apiVersion: apiVersionOf(type),
      kind: `${type.kind}List`,
      metadata: { resourceVersion: this.resourceVersion },
      items,
    };
  }

  // ---- writes ----

  async create<T extends KubeObject = KubeObject>(
    ref: ResourceRef,
    input: T,
    opts: WriteOptions & { namespace?: string } = {},
  ): Promise<T> {
    const type = this.type(ref);
    if (!isObject(input)) throw badRequest('the body of the request must be a JSON object');
    let obj = this.normalize(type, structuredClone(input));
    const meta = obj.metadata ?? {};
    if (type.namespaced) {
      const ns = opts.namespace ?? meta.namespace ?? 'default';
      if (meta.namespace !== undefined && meta.namespace !== '' && meta.namespace !== ns) {
        throw badRequest(
          'the namespace of the provided object does not match the namespace sent on the request',
        );
      }
      meta.namespace = ns;
      if (!this.has(NAMESPACES, { name: ns })) throw notFound(NAMESPACES, ns);
    } else {
      Reflect.deleteProperty(meta, 'namespace');
    }
    if (meta.resourceVersion !== undefined && meta.resourceVersion !== '') {
      throw badRequest('resourceVersion should not be set on objects to be created');
    }
    for (const k of ['uid', 'creationTimestamp', 'generation', 'deletionTimestamp', 'resourceVersion']) {
      Reflect.deleteProperty(meta, k);
    }
    obj.metadata = meta;
    type.defaults?.(obj);
    obj = await this.runAdmission(type, 'CREATE', obj, undefined, undefined, opts.dryRun === true);
    obj = this.prepareNew(type, obj);
    const errors = [...validateMetadata(obj, type.dnsLabelNames === true), ...(type.validate?.(obj) ?? [])];
    const name = obj.metadata?.name ?? '';
    if (errors.length > 0) throw invalid(type.group, type.kind, name, errors);
    if (this.has(type, { namespace: obj.metadata?.namespace, name })) throw alreadyExists(type, name);
    if (opts.dryRun === true) return structuredClone(obj) as T;
    return structuredClone(this.commitCreate(type, obj)) as T;
  }

  /** PUT: replaces the object (or only its .status with `subresource: 'status'`). */
  async update<T extends KubeObject = KubeObject>(
    ref: ResourceRef,
    input: T,
    opts: WriteOptions & { key?: ObjectKey } = {},
  ): Promise<T> {
    const type = this.type(ref);
    if (!isObject(input)) throw badRequest('the body of the request must be a JSON object');
    const key = opts.key ?? { namespace: input.metadata?.namespace, name: input.metadata?.name ?? '' };
    return (await this.writeExisting(type, key, 'UPDATE', () => structuredClone(input), opts)) as T;
  }

  /** PATCH with one of the three patch content types (see patch.ts). */
  async patch<T extends KubeObject = KubeObject>(
    ref: ResourceRef,
    key: ObjectKey,
    patchType: string,
    patch: unknown,
    opts: WriteOptions = {},
  ): Promise<T> {
    const type = this.type(ref);
    return (await this.writeExisting(
      type,
      key,
      'UPDATE',
      (current) => applyPatchOfType(current, patchType, patch),
      opts,
    )) as T;
  }

  /** Deletes at once (no graceful deletion, no finalizers); a namespace takes its objects with it. */
  delete<T extends KubeObject = KubeObject>(
    ref: ResourceRef,
    key: ObjectKey,
    opts: DeleteOptions = {},
  ): Promise<T> {
    return settle(() => this.deleteNow(ref, key, opts) as T);
  }

  private deleteNow(ref: ResourceRef, key: ObjectKey, opts: DeleteOptions): KubeObject {
    const type = this.type(ref);
    const current = this.stored(type, key);
    const pre = opts.preconditions;
    if (pre?.uid !== undefined && pre.uid !== current.metadata?.uid) {
      throw conflict(
        type,
        key.name,
        `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${current.metadata?.uid ?? ''}`,
      );
    }
    if (pre?.resourceVersion !== undefined && pre.resourceVersion !== current.metadata?.resourceVersion) {
      throw conflict(
        type,
        key.name,
        `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${current.metadata?.resourceVersion ?? ''}`,
      );
    }
    if (opts.dryRun === true) return structuredClone(current);
    if (typeKey(type) === typeKey(NAMESPACES)) {
      for (const t of this.types.values()) {
        if (!t.namespaced) continue;
        for (const o of [...(this.objects.get(typeKey(t))?.values() ?? [])]) {
          if (o.metadata?.namespace === key.name) this.commitDelete(t, o);
        }
      }
    }
    return structuredClone(this.commitDelete(type, current));
  }

  /**
   * The scheduler's binding (POST pods/NAME/binding): sets spec.nodeName, which no update may
   * change, and the PodScheduled condition. 409 if the pod is already bound.
   */
  bindPod(key: ObjectKey, nodeName: string): Promise<Pod> {
    return settle(() => this.bindNow(key, nodeName));
  }

  private bindNow(key: ObjectKey, nodeName: string): Pod {
    const current = this.stored(PODS, key) as Pod;
    const bound = current.spec?.nodeName;
    if (bound !== undefined && bound !== '') {
      throw conflict(PODS, key.name, `pod ${key.name} is already assigned to node "${bound}"`);
    }
    const next = structuredClone(current);
    next.spec = { containers: [], ...next.spec, nodeName };
    const conditions: PodCondition[] = (next.status?.conditions ?? []).filter(
      (c) => c.type !== 'PodScheduled',
    );
    conditions.push({
      type: 'PodScheduled',
      status: 'True',
      lastProbeTime: null,
      lastTransitionTime: timestamp(this.now()),
    });
    next.status = { ...next.status, conditions };
    return structuredClone(this.commitUpdate(PODS, next, current));
  }

  // ---- watch and change listeners ----

  /**
   * Streams changes of one type matching the options to `onEvent`, synchronously with each
   * write. Throws a 410 Expired ApiError when `resourceVersion` is older than the history,
   * and a 400 for a bad selector.
   */
  watch(ref: ResourceRef, opts: WatchOptions, onEvent: (e: WatchEvent) => void): Watcher {
    const type = this.type(ref);
    const matches = this.matcher(type, opts);
    const rvText = opts.resourceVersion ?? '';
    const initial = rvText === '' || rvText === '0' || opts.sendInitialEvents === true;
    if (!initial) {
      if (!/^\d+$/.test(rvText))
        throw badRequest(`resourceVersion: Invalid value: "${rvText}": must be a number`);
      const from = Number(rvText);
      if (from < this.compacted) {
        throw expired(`too old resource version: ${from} (${this.compacted + 1})`);
      }
    }
    const w: ActiveWatch = { type, matches, onEvent };
    if (initial) {
      for (const o of this.list(type, opts).items) onEvent({ type: 'ADDED', object: o });
      if (opts.sendInitialEvents === true && opts.allowWatchBookmarks === true) {
        onEvent({ type: 'BOOKMARK', object: this.bookmark(type, { 'k8s.io/initial-events-end': 'true' }) });
      }
    } else {
      const from = Number(rvText);
      for (const c of this.history) {
        if (c.resourceVersion <= from) continue;
        const e = this.project(w, c);
        if (e !== null) onEvent(e);
      }
    }
    this.watchers.add(w);
    if (opts.allowWatchBookmarks === true) {
      w.timer = setInterval(() => {
        onEvent({ type: 'BOOKMARK', object: this.bookmark(type) });
      }, this.bookmarkIntervalMs);
      w.timer.unref();
    }
    return {
      stop: () => {
        if (w.timer !== undefined) clearInterval(w.timer);
        this.watchers.delete(w);
      },
    };
  }

  /** Calls `listener` with every change of any type, synchronously; returns the unsubscribe. */
  subscribe(listener: (c: StoreChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** How many watches are open (HTTP and in-process): lets tests wait for a client's watch. */
  watchCount(): number {
    return this.watchers.size;
  }

  /** Stops every watch (their streams end). */
  stopWatches(): void {
    for (const w of this.watchers) if (w.timer !== undefined) clearInterval(w.timer);
    this.watchers.clear();
  }

  // ---- internals ----

  private bookmark(type: ResourceType, annotations?: Record<string, string>): KubeObject {
    return {
      kind: type.kind,
      apiVersion: apiVersionOf(type),
      metadata: {
        resourceVersion: this.resourceVersion,
        ...(annotations === undefined ? {} : { annotations }),
      },
    };
  }

  private matcher(type: ResourceType, opts: ListOptions): (o: KubeObject) => boolean {
    const labels: LabelSelector = parseLabelSelector(opts.labelSelector ?? '');
    const fields: FieldRequirement[] = parseFieldSelector(opts.fieldSelector ?? '');
    // Unknown fields are a 400 even when nothing is stored.
    for (const f of fields) {
      if (
        f.field !== 'metadata.name' &&
        f.field !== 'metadata.namespace' &&
        type.fields?.[f.field] === undefined
      ) {
        throw badRequest(`field label not supported: ${f.field}`);
      }
    }
    const ns = type.namespaced ? opts.namespace : undefined;
    return (o) =>
      (ns === undefined || ns === '' || o.metadata?.namespace === ns) &&
      matchLabels(labels, o.metadata?.labels) &&
      matchFields(fields, (f) => fieldValue(type, o, f));
  }

  /** A stored change as one watcher sees it through its selectors, or null. */
  private project(w: ActiveWatch, c: StoreChange): WatchEvent | null {
    if (typeKey(c.resource) !== typeKey(w.type)) return null;
    const now = w.matches(c.object);
    if (c.type === 'MODIFIED') {
      const before = c.oldObject !== undefined && w.matches(c.oldObject);
      if (now && before) return { type: 'MODIFIED', object: structuredClone(c.object) };
      if (now) return { type: 'ADDED', object: structuredClone(c.object) };
      if (before) return { type: 'DELETED', object: structuredClone(c.object) };
      return null;
    }
    return now ? { type: c.type, object: structuredClone(c.object) } : null;
  }

  private has(type: ResourceType, key: ObjectKey): boolean {
    return this.objects.get(typeKey(type))?.has(this.pathOf(type, key)) === true;
  }

  private pathOf(type: ResourceType, key: ObjectKey): string {
    return type.namespaced ? `${key.namespace ?? 'default'}/${key.name}` : key.name;
  }

  private stored(type: ResourceType, key: ObjectKey): KubeObject {
    const o = this.objects.get(typeKey(type))?.get(this.pathOf(type, key));
    if (o === undefined) throw notFound(type, key.name);
    return o;
  }

  /** apiVersion and kind set (and checked when given), metadata present. */
  private normalize(type: ResourceType, obj: KubeObject): KubeObject {
    const apiVersion = apiVersionOf(type);
    if (obj.apiVersion !== undefined && obj.apiVersion !== '' && obj.apiVersion !== apiVersion) {
      throw badRequest(
        `the API version in the data (${obj.apiVersion}) does not match the expected API version (${apiVersion})`,
      );
    }
    if (obj.kind !== undefined && obj.kind !== '' && obj.kind !== type.kind) {
      throw badRequest(`the kind in the data (${obj.kind}) does not match the expected kind (${type.kind})`);
    }
    if (obj.metadata !== undefined && !isObject(obj.metadata)) throw badRequest('metadata must be an object');
    return { ...obj, apiVersion, kind: type.kind, metadata: obj.metadata ?? {} };
  }

  /** Server-owned fields of a new object (after admission): name from generateName, uid, ... */
  private prepareNew(type: ResourceType, obj: KubeObject): KubeObject {
    const meta = (obj.metadata ??= {});
    if (
      (meta.name === undefined || meta.name === '') &&
      meta.generateName !== undefined &&
      meta.generateName !== ''
    ) {
      do {
        meta.name = `${meta.generateName}${randomSuffix()}`;
      } while (this.has(type, { namespace: meta.namespace, name: meta.name }));
    }
    meta.uid = randomUUID();
    meta.creationTimestamp = timestamp(this.now());
    if (type.generation) meta.generation = 1;
    type.prepareForCreate?.(obj);
    return obj;
  }

  private async runAdmission(
    type: ResourceType,
    operation: 'CREATE' | 'UPDATE',
    obj: KubeObject,
    oldObject: KubeObject | undefined,
    subResource: string | undefined,
    dryRun: boolean,
  ): Promise<KubeObject> {
    if (this.admit === undefined || type.group === 'admissionregistration.k8s.io') return obj;
    let result: AdmissionResult;
    try {
      result = await this.admit({
        operation,
        resource: { group: type.group, version: type.version, resource: type.resource },
        ...(subResource === undefined ? {} : { subResource }),
        kind: { group: type.group, version: type.version, kind: type.kind },
        name: obj.metadata?.name ?? '',
        ...(type.namespaced ? { namespace: obj.metadata?.namespace ?? '' } : {}),
        object: structuredClone(obj),
        ...(oldObject === undefined ? {} : { oldObject: structuredClone(oldObject) }),
        dryRun,
      });
    } catch (err) {
      throw internal(`admission failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (!result.allowed) {
      throw new ApiError(result.code ?? 400, result.reason ?? 'BadRequest', result.message);
    }
    if (result.patch === undefined || result.patch.length === 0) return obj;
    let patched: KubeObject;
    try {
      patched = applyJsonPatch(obj, result.patch);
    } catch (err) {
      throw internal(`admission patch does not apply: ${err instanceof Error ? err.message : String(err)}`);
    }
    patched = this.normalize(type, patched);
    type.defaults?.(patched);
    return patched;
  }

  /**
   * Update or patch: computes the new object from the current one, checks the
   * resourceVersion precondition, admits, validates and stores. Retries when another write
   * landed while admission was awaited (the request had no resourceVersion to hold it to).
   */
  private async writeExisting(
    type: ResourceType,
    key: ObjectKey,
    operation: 'UPDATE',
    compute: (current: KubeObject) => KubeObject,
    opts: WriteOptions,
  ): Promise<KubeObject> {
    const sub = opts.subresource;
    if (sub !== undefined && !type.subresources.includes(sub)) {
      throw new ApiError(
        404,
        'NotFound',
        `the server could not find the requested resource (${type.resource}/${sub})`,
      );
    }
    for (let attempt = 0; ; attempt++) {
      const current = this.stored(type, key);
      const computed = compute(structuredClone(current));
      if (!isObject(computed)) throw badRequest('the result must be a JSON object');
      const body = this.normalize(type, computed);
      const meta = body.metadata ?? {};
      if (meta.name !== undefined && meta.name !== key.name) {
        throw badRequest(
          `the name of the object (${meta.name}) does not match the name on the URL (${key.name})`,
        );
      }
      if (
        type.namespaced &&
        meta.namespace !== undefined &&
        meta.namespace !== '' &&
        meta.namespace !== current.metadata?.namespace
      ) {
        throw badRequest(
          'the namespace of the provided object does not match the namespace sent on the request',
        );
      }
      const wantRv = meta.resourceVersion;
      if (wantRv !== undefined && wantRv !== '' && wantRv !== current.metadata?.resourceVersion) {
        throw conflict(type, key.name, STALE_OBJECT);
      }
      type.defaults?.(body);
      let next = this.prepareUpdate(type, body, current, sub);
      next = await this.runAdmission(type, operation, next, current, sub, opts.dryRun === true);
      if (this.objects.get(typeKey(type))?.get(this.pathOf(type, key)) !== current) {
        if (wantRv !== undefined && wantRv !== '') throw conflict(type, key.name, STALE_OBJECT);
        if (attempt < MAX_UPDATE_RETRIES) continue;
        throw conflict(type, key.name, STALE_OBJECT);
      }
      next = this.prepareUpdate(type, next, current, sub);
      const errors = [
        ...validateMetadata(next, type.dnsLabelNames === true),
        ...(type.validate?.(next) ?? []),
      ];
      if (sub === undefined) errors.push(...(type.validateUpdate?.(next, current) ?? []));
      if (errors.length > 0) throw invalid(type.group, type.kind, key.name, errors);
      if (isDeepStrictEqual(withoutRv(next), withoutRv(current))) return structuredClone(current);
      if (opts.dryRun === true) return structuredClone(next);
      return structuredClone(this.commitUpdate(type, next, current));
    }
  }

  /** Keeps what the write may not change: server-owned metadata, and spec or status by subresource. */
  private prepareUpdate(
    type: ResourceType,
    body: KubeObject,
    current: KubeObject,
    sub: 'status' | undefined,
  ): KubeObject {
    let next: KubeObject;
    if (sub === 'status') {
      next = structuredClone(current);
      if (body.status === undefined) Reflect.deleteProperty(next, 'status');
      else next.status = structuredClone(body.status);
    } else {
      next = structuredClone(body);
      const meta = (next.metadata ??= {});
      const cur = current.metadata ?? {};
      meta.name = cur.name;
      if (type.namespaced) meta.namespace = cur.namespace;
      meta.uid = cur.uid;
      meta.creationTimestamp = cur.creationTimestamp;
      if (cur.deletionTimestamp === undefined) Reflect.deleteProperty(meta, 'deletionTimestamp');
      else meta.deletionTimestamp = cur.deletionTimestamp;
      if (type.subresources.includes('status')) {
        if (current.status === undefined) Reflect.deleteProperty(next, 'status');
        else next.status = structuredClone(current.status);
      }
    }
    const meta = (next.metadata ??= {});
    meta.resourceVersion = current.metadata?.resourceVersion;
    if (type.generation) {
      const gen = current.metadata?.generation ?? 1;
      meta.generation = isDeepStrictEqual(generationPart(next), generationPart(current)) ? gen : gen + 1;
    } else {
      Reflect.deleteProperty(meta, 'generation');
    }
    return next;
  }

  private commitCreate(type: ResourceType, obj: KubeObject): KubeObject {
    const stored = structuredClone(obj);
    stored.metadata = { ...stored.metadata, resourceVersion: String(++this.rv) };
    let byName = this.objects.get(typeKey(type));
    if (byName === undefined) this.objects.set(typeKey(type), (byName = new Map<string, KubeObject>()));
    const path = this.pathOf(type, {
      namespace: stored.metadata.namespace,
      name: stored.metadata.name ?? '',
    });
    byName.set(path, stored);
    this.record({ type: 'ADDED', resource: type, object: stored, resourceVersion: this.rv, key: path });
    return stored;
  }

  private commitUpdate(type: ResourceType, next: KubeObject, current: KubeObject): KubeObject {
    const stored = structuredClone(next);
    stored.metadata = { ...stored.metadata, resourceVersion: String(++this.rv) };
    const path = this.pathOf(type, {
      namespace: current.metadata?.namespace,
      name: current.metadata?.name ?? '',
    });
    this.objects.get(typeKey(type))?.set(path, stored);
    this.record({
      type: 'MODIFIED',
      resource: type,
      object: stored,
      oldObject: current,
      resourceVersion: this.rv,
      key: path,
    });
    return stored;
  }

  private commitDelete(type: ResourceType, current: KubeObject): KubeObject {
    const path = this.pathOf(type, {
      namespace: current.metadata?.namespace,
      name: current.metadata?.name ?? '',
    });
    this.objects.get(typeKey(type))?.delete(path);
    const last = structuredClone(current);
    last.metadata = { ...last.metadata, resourceVersion: String(++this.rv) };
    this.record({ type: 'DELETED', resource: type, object: last, resourceVersion: this.rv, key: path });
    return last;
  }

  private record(change: StoredChange): void {
    this.history.push(change);
    while (this.history.length > this.historyLimit) {
      const dropped = this.history.shift();
      if (dropped !== undefined) this.compacted = dropped.resourceVersion;
    }
    for (const w of this.watchers) {
      const e = this.project(w, change);
      if (e !== null) w.onEvent(e);
    }
    if (this.listeners.size === 0) return;
    for (const l of this.listeners) {
      const pub: StoreChange = {
        type: change.type,
        resource: change.resource,
        object: structuredClone(change.object),
        resourceVersion: change.resourceVersion,
        ...(change.oldObject === undefined ? {} : { oldObject: structuredClone(change.oldObject) }),
      };
      try {
        l(pub);
      } catch {
        // A listener's fault must not fail the write that triggered it.
      }
    }
  }
}

function objectPath(o: KubeObject): string {
  return `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
}

/** One type's operations, typed. Namespaced types default to namespace `default`. */
export class TypedResource<T extends KubeObject> {
  constructor(
    private readonly store: Store,
    readonly type: ResourceType,
  ) {}

  create(obj: T, opts: WriteOptions = {}): Promise<T> {
    return this.store.create(this.type, obj, opts);
  }

  get(key: ObjectKey): T {
    return this.store.get(this.type, key) as T;
  }

  /** The object, or undefined when there is none. */
  tryGet(key: ObjectKey): T | undefined {
    try {
      return this.get(key);
    } catch (err) {
      if (err instanceof ApiError && err.code === 404) return undefined;
      throw err;
    }
  }

  list(opts: ListOptions = {}): ObjectList<T> {
    return this.store.list<T>(this.type, opts);
  }

  update(obj: T, opts: WriteOptions = {}): Promise<T> {
    return this.store.update(this.type, obj, opts);
  }

  updateStatus(obj: T, opts: Omit<WriteOptions, 'subresource'> = {}): Promise<T> {
    return this.store.update(this.type, obj, { ...opts, subresource: 'status' });
  }

  patch(key: ObjectKey, patchType: string, patch: unknown, opts: WriteOptions = {}): Promise<T> {
    return this.store.patch<T>(this.type, key, patchType, patch, opts);
  }

  patchStatus(
    key: ObjectKey,
    patchType: string,
    patch: unknown,
    opts: Omit<WriteOptions, 'subresource'> = {},
  ): Promise<T> {
    return this.store.patch<T>(this.type, key, patchType, patch, { ...opts, subresource: 'status' });
  }

  delete(key: ObjectKey, opts: DeleteOptions = {}): Promise<T> {
    return this.store.delete<T>(this.type, key, opts);
  }

  watch(opts: WatchOptions, onEvent: (e: WatchEvent<T>) => void): Watcher {
    return this.store.watch(this.type, opts, onEvent as (e: WatchEvent) => void);
  }
}
