// Tests of the publisher's stateful shell (publisher.ts) on a hand-written fake API server and a
// scripted tracker, driven by a fake clock and runOnce() (no timers). The fake API applies the
// patches the way the API server does (JSON merge patch on metadata, strategic merge of
// status.conditions by `type`) and answers with the errors a test asks for, so the tests read
// what lands on the pod rather than the patch bodies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ApiException,
  type CoreV1Event,
  type V1ObjectMeta,
  type V1Pod,
  type V1PodCondition,
  type V1PodSpec,
  type V1PodStatus,
} from '@kubernetes/client-node';
import {
  ANNOTATION_ETA_SECONDS,
  ANNOTATION_PHASE,
  ANNOTATION_PROGRESS,
  ANNOTATION_STATUS,
  CONDITION_IMAGES_PULLED,
  EVENT_IMAGES_PULLED,
  EVENT_PULL_FAILED,
  EVENT_PULL_STALLED,
  LABEL_ETA,
  LABEL_PROGRESS,
  LABEL_TRACKED,
  STATUS_VERSION,
  isValidLabelValue,
  type ImagePullStatus,
  type PodPullStatus,
} from '../../common/contract.js';
import { normalizeImageRef } from '../../common/image-ref.js';
import type { TrackerSnapshot } from '../tracker/types.js';
import type { PodWriter } from './kube-writer.js';
import type { PodPatch } from './patches.js';
import type { BudgetOptions } from './budget.js';
import { MAX_RETRY_MS, Publisher, type PullView } from './publisher.js';
import {
  MB,
  cached,
  imageStatus,
  pod,
  pulled,
  ranStatus,
  resolving,
  waitingStatus,
  type PodSpecLite,
} from '../../test-support/publisher.js';

const T0 = Date.parse('2026-11-25T10:00:00Z');
const NGINX = 'docker.io/library/nginx:1.27';
const BUSYBOX = 'docker.io/library/busybox:1.36';
const OWNER_ANNOTATION = 'team.example/owner';

type Json = Record<string, unknown>;
type CallKind = 'status' | 'event';

/** One request the publisher made, answered or not. */
interface Call {
  kind: CallKind;
  /** namespace/name of the pod (for events: of the involved object). */
  pod: string;
  at: number;
  ok: boolean;
  body: unknown;
}

const clone = <T>(v: T): T => structuredClone(v);

/** An error as @kubernetes/client-node throws it for a non-2xx answer. */
function apiError(
  code: number,
  message: string,
  headers: Record<string, string> = {},
): ApiException<unknown> {
  return new ApiException<unknown>(
    code,
    message,
    { kind: 'Status', apiVersion: 'v1', status: 'Failure', message, code },
    headers,
  );
}

/** An error as fetch throws it when the connection fails. */
function networkError(): Error {
  return new TypeError('fetch failed', {
    cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
  });
}

/** Kubernetes qualified name (the condition type of a pod condition must be one). */
const QUALIFIED_NAME =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const MAX_ANNOTATIONS_BYTES = 256 * 1024;

/**
 * A fake API server for the publisher's three writes, holding pods in memory. It applies merge
 * patches to metadata and strategic merge patches to status.conditions (merge key `type`, a null
 * field removes it), rejects with 422 what the API server rejects (bad label values, too many
 * annotation bytes, a patch reaching outside what it is for), 404s a missing pod, 409s an event
 * name used twice, and fails the next call when told to. Anything a real server would not even
 * parse is kept in `violations`, which every test checks is empty.
 */
class FakeApi implements PodWriter {
  readonly calls: Call[] = [];
  readonly events: CoreV1Event[] = [];
  readonly violations: string[] = [];
  private readonly pods = new Map<string, V1Pod>();
  private readonly failures: { kind: CallKind | null; err: Error }[] = [];
  private changed = new Set<string>();
  private rv = 1;

  constructor(private readonly now: () => number) {}

  create(p: V1Pod): void {
    const c = clone(p);
    (c.metadata ??= {}).resourceVersion = String(this.rv++);
    this.pods.set(keyOf(c), c);
  }

  has(key: string): boolean {
    return this.pods.has(key);
  }

  /** The pod as a GET would return it. */
  get(key: string): V1Pod {
    const p = this.pods.get(key);
    assert.ok(p !== undefined, `no pod ${key}`);
    return clone(p);
  }

  /** A change made by someone else (the kubelet, a user): returns the pod after it. */
  update(key: string, change: (p: V1Pod) => void): V1Pod {
    const p = this.pods.get(key);
    assert.ok(p !== undefined, `no pod ${key}`);
    change(p);
    (p.metadata ??= {}).resourceVersion = String(this.rv++);
    return clone(p);
  }

  delete(key: string): void {
    this.pods.delete(key);
  }

  /** The next call (of `kind`, or any) fails with `err`. */
  failNext(err: Error, kind: CallKind | null = null): void {
    this.failures.push({ kind, err });
  }

  /** Pods our writes changed since the last call: what the watch delivers back. */
  takeChanged(): V1Pod[] {
    const keys = [...this.changed];
    this.changed = new Set();
    return keys.filter((k) => this.pods.has(k)).map((k) => this.get(k));
  }

  /** Successful requests of `kind` to one pod. */
  ok(pod: string, kind?: CallKind): Call[] {
    return this.calls.filter((c) => c.pod === pod && c.ok && (kind === undefined || c.kind === kind));
  }

  /** Times at which the pod's labels/annotations or condition were written (one per publish). */
  writeTimes(pod: string): number[] {
    const times = this.ok(pod)
      .filter((c) => c.kind !== 'event')
      .map((c) => c.at);
    return [...new Set(times)];
  }

  patchStatus(namespace: string, name: string, patch: PodPatch): Promise<V1Pod> {
    return this.attempt('status', `${namespace}/${name}`, patch, (p) => {
      const body = patch as unknown as Json;
      const keys = Object.keys(body);
      if (keys.length === 0 || keys.some((k) => k !== 'metadata' && k !== 'status')) {
        this.violations.push(`pods/status patch with other fields: ${JSON.stringify(body)}`);
      }
      // Everything is checked before anything is applied: the API server takes all or nothing.
      const meta = body.metadata as Json | undefined;
      const apply: (() => void)[] = [];
      if (meta !== undefined) apply.push(this.metadataChange(p, meta));
      if (body.status !== undefined) apply.push(this.conditionChange(p, body.status as Json));
      for (const f of apply) f();
    });
  }

  /** Checks the labels and annotations of a patch; returns what applies them. */
  private metadataChange(p: V1Pod, meta: Json): () => void {
    for (const k of Object.keys(meta)) {
      if (k !== 'labels' && k !== 'annotations') this.violations.push(`patch touches metadata.${k}`);
    }
    const labels = mergeMap(p.metadata?.labels, meta.labels);
    const annotations = mergeMap(p.metadata?.annotations, meta.annotations);
    for (const [k, v] of Object.entries(labels)) {
      if (!isValidLabelValue(v)) throw apiError(422, `metadata.labels: Invalid value: "${v}" (${k})`);
    }
    const size = Object.entries(annotations).reduce((n, [k, v]) => n + Buffer.byteLength(k + v), 0);
    if (size > MAX_ANNOTATIONS_BYTES) throw apiError(422, 'metadata.annotations: Too long');
    return () => Object.assign((p.metadata ??= {}), { labels, annotations });
  }

  /** Checks the conditions of a patch (SMP, merge key `type`); returns what applies them. */
  private conditionChange(p: V1Pod, status: Json): () => void {
    const list = status.conditions;
    if (Object.keys(status).join() !== 'conditions') {
      this.violations.push(`status patch with other fields: ${JSON.stringify(status)}`);
    }
    if (!Array.isArray(list)) throw apiError(422, 'status.conditions: must be a list');
    const conditions = structuredClone(p.status?.conditions ?? []) as unknown as Json[];
    for (const pc of list as Json[]) {
      const type = pc.type;
      if (typeof type !== 'string' || !QUALIFIED_NAME.test(type)) {
        throw apiError(422, `status.conditions.type: Invalid value: ${String(type)}`);
      }
      const existing = conditions.find((c) => c.type === type);
      const target: Json = existing ?? { type };
      for (const [k, v] of Object.entries(pc)) {
        if (v === null) Reflect.deleteProperty(target, k);
        else target[k] = v;
      }
      if (!['True', 'False', 'Unknown'].includes(String(target.status))) {
        throw apiError(422, `status.conditions.status: Unsupported value: ${String(target.status)}`);
      }
      if (
        typeof target.lastTransitionTime === 'string' &&
        Number.isNaN(Date.parse(target.lastTransitionTime))
      ) {
        throw apiError(422, 'status.conditions.lastTransitionTime: not a time');
      }
      if (existing === undefined) conditions.push(target);
    }
    return () => setStatus(p, { conditions: conditions as unknown as V1PodCondition[] });
  }

  createEvent(namespace: string, body: CoreV1Event): Promise<void> {
    const pod = `${body.involvedObject.namespace ?? ''}/${body.involvedObject.name ?? ''}`;
    const call: Call = { kind: 'event', pod, at: this.now(), ok: false, body: clone(body) };
    this.calls.push(call);
    const failure = this.takeFailure('event');
    if (failure !== undefined) return Promise.reject(failure.err);
    if (body.metadata.namespace !== namespace)
      this.violations.push(`event in ${namespace} names another namespace`);
    const name = body.metadata.name ?? '';
    if (this.events.some((e) => e.metadata.namespace === namespace && e.metadata.name === name)) {
      return Promise.reject(apiError(409, `events "${name}" already exists`));
    }
    this.events.push(clone(body));
    call.ok = true;
    return Promise.resolve();
  }

  private takeFailure(kind: CallKind): { err: Error } | undefined {
    const i = this.failures.findIndex((f) => f.kind === null || f.kind === kind);
    return i < 0 ? undefined : this.failures.splice(i, 1)[0];
  }

  private attempt(kind: CallKind, key: string, body: unknown, apply: (p: V1Pod) => void): Promise<V1Pod> {
    const call: Call = { kind, pod: key, at: this.now(), ok: false, body: clone(body) };
    this.calls.push(call);
    const failure = this.takeFailure(kind);
    if (failure !== undefined) return Promise.reject(failure.err);
    const current = this.pods.get(key);
    if (current === undefined) return Promise.reject(apiError(404, `pods "${key}" not found`));
    const next = clone(current);
    try {
      apply(next);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    (next.metadata ??= {}).resourceVersion = String(this.rv++);
    this.pods.set(key, next);
    this.changed.add(key);
    call.ok = true;
    return Promise.resolve(clone(next));
  }
}

/** A JSON merge patch of a flat string map: null removes a key. */
function mergeMap(current: Record<string, string> | undefined, patch: unknown): Record<string, string> {
  const out = { ...current };
  if (patch === undefined) return out;
  for (const [k, v] of Object.entries(patch as Json)) {
    if (v === null) Reflect.deleteProperty(out, k);
    else if (typeof v === 'string') out[k] = v;
    else throw apiError(422, `${k}: must be a string`);
  }
  return out;
}

const keyOf = (p: V1Pod): string => `${p.metadata?.namespace ?? ''}/${p.metadata?.name ?? ''}`;

/**
 * A tracker whose statuses the test scripts. Expected images answer Resolving until a status is
 * set; fail() turns the image Failed with the message, as the real tracker does; snapshot() lists
 * every image with a pull (not Resolving), including images no pod waits for.
 */
class FakeTracker implements PullView {
  readonly expected = new Set<string>();
  readonly failCalls: { image: string; message: string }[] = [];
  readonly unexpectCalls: string[] = [];
  readonly slow = new Set<string>();
  /** Sizes of images not being pulled yet, as the content store or registry would give them. */
  readonly sizes = new Map<string, number>();
  private readonly statuses = new Map<string, ImagePullStatus>();
  private readonly listeners = new Set<(s: TrackerSnapshot) => void>();

  constructor(private readonly now: () => number) {}

  expect(image: string): string {
    const name = normalizeImageRef(image);
    this.expected.add(name);
    return name;
  }

  unexpect(image: string): void {
    this.unexpectCalls.push(image);
    this.expected.delete(image);
  }

  fail(image: string, message: string): void {
    this.failCalls.push({ image, message });
    const s = this.statuses.get(image) ?? resolving(image);
    this.statuses.set(image, { ...s, phase: 'Failed', error: message, etaSeconds: null, bytesPerSecond: 0 });
  }

  statusOf(image: string): ImagePullStatus | null {
    if (!this.expected.has(image)) return null;
    return this.statuses.get(image) ?? resolving(image);
  }

  sizeOf(image: string): number | null {
    return this.sizes.get(image) ?? null;
  }

  snapshot(): TrackerSnapshot {
    return {
      at: new Date(this.now()),
      pulls: [...this.statuses.values()]
        .filter((s) => s.phase !== 'Resolving' && s.phase !== 'Queued')
        .map((s, i) => ({
          key: `sha256:${String(i).padStart(64, '0')}`,
          indexDigest: null,
          manifestDigest: null,
          configDigest: null,
          sources: [],
          names: [s.image],
          slow: this.slow.has(s.image),
          status: { ...s },
        })),
    };
  }

  onChange(cb: (s: TrackerSnapshot) => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  /** New statuses from a poll: listeners are told, as the real tracker tells them. */
  set(...statuses: ImagePullStatus[]): void {
    for (const s of statuses) this.statuses.set(s.image, s);
    const snap = this.snapshot();
    for (const cb of this.listeners) cb(snap);
  }
}

/** A status of `image` with `done` of `total` bytes fetched at `rate` bytes per second. */
function downloading(image: string, done: number, total: number, rate: number): ImagePullStatus {
  return imageStatus({
    image,
    phase: 'Downloading',
    percent: Math.floor((100 * done) / total),
    bytesDone: done,
    bytesTotal: total,
    bytesPerSecond: rate,
    etaSeconds: rate > 0 ? Math.max(1, Math.round((total - done) / rate)) : null,
    startedAt: new Date(T0).toISOString(),
  });
}

function stalled(image: string, done: number, total: number): ImagePullStatus {
  return { ...downloading(image, done, total, 0), phase: 'Stalled', etaSeconds: null };
}

/** A tracked pod as the webhook leaves it, with a user label/annotation and a kubelet condition. */
function trackedPod(p: PodSpecLite & { uid?: string; generation?: number }): V1Pod {
  const v = pod(p);
  const name = p.name ?? 'web-0';
  setMeta(v, {
    uid: p.uid ?? `uid-${name}`,
    generation: p.generation ?? 1,
    labels: { [LABEL_TRACKED]: 'true', app: 'web' },
    annotations: { [OWNER_ANNOTATION]: 'team-a' },
  });
  setStatus(v, {
    conditions: [{ type: 'PodScheduled', status: 'True', lastTransitionTime: new Date(T0 - 1000) }],
  });
  // As the API returns it: plain JSON, times as strings.
  return JSON.parse(JSON.stringify(v)) as V1Pod;
}

function setMeta(p: V1Pod, m: Partial<V1ObjectMeta>): void {
  Object.assign((p.metadata ??= {}), m);
}

function setSpec(p: V1Pod, s: Partial<V1PodSpec>): void {
  Object.assign((p.spec ??= { containers: [] }), s);
}

function setStatus(p: V1Pod, s: Partial<V1PodStatus>): void {
  Object.assign((p.status ??= {}), s);
}

/** What an earlier run of the agent left on the pod: its labels, annotations and condition. */
function leftByEarlierRun(
  p: V1Pod,
  left: { labels: Record<string, string>; annotations: Record<string, string>; condition: Json },
): void {
  setMeta(p, {
    labels: Object.assign({}, p.metadata?.labels, left.labels),
    annotations: Object.assign({}, p.metadata?.annotations, left.annotations),
  });
  const conditions = (p.status?.conditions ?? []) as unknown as Json[];
  setStatus(p, { conditions: [...conditions, left.condition] as unknown as V1PodCondition[] });
}

/** A pod waiting for its containers' images (ContainerCreating). */
function waitingPod(name: string, images: string[], over: { init?: string[]; uid?: string } = {}): V1Pod {
  const containers = images.map((image, i) => ({ name: `c${i}`, image }));
  const init = (over.init ?? []).map((image, i) => ({ name: `init${i}`, image }));
  return trackedPod({
    name,
    ...(over.uid === undefined ? {} : { uid: over.uid }),
    containers,
    init,
    statuses: containers.map((c) => waitingStatus(c.name, c.image)),
    initStatuses: init.map((c) => waitingStatus(c.name, c.image, 'PodInitializing')),
  });
}

interface PodView {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  condition: Json | undefined;
  conditions: Json[];
  status: PodPullStatus | undefined;
}

function viewOf(p: V1Pod): PodView {
  const conditions = (p.status?.conditions ?? []) as unknown as Json[];
  const raw = p.metadata?.annotations?.[ANNOTATION_STATUS];
  return {
    labels: Object.assign({}, p.metadata?.labels),
    annotations: Object.assign({}, p.metadata?.annotations),
    condition: conditions.find((c) => c.type === CONDITION_IMAGES_PULLED),
    conditions,
    status: raw === undefined ? undefined : (JSON.parse(raw) as PodPullStatus),
  };
}

/**
 * What `kubectl wait --for=condition=pulltrace.io/ImagesPulled` decides: the condition type and
 * status compared case-insensitively, a condition whose observedGeneration is below the pod's
 * metadata.generation ignored.
 */
function kubectlWaitMet(p: V1Pod): boolean {
  const gen = p.metadata?.generation;
  for (const c of (p.status?.conditions ?? []) as unknown as Json[]) {
    if (String(c.type).toLowerCase() !== CONDITION_IMAGES_PULLED.toLowerCase()) continue;
    const observed = c.observedGeneration;
    if (typeof observed === 'number' && gen !== undefined && observed < gen) continue;
    return String(c.status).toLowerCase() === 'true';
  }
  return false;
}

/**
 * The condition's observedGeneration is the pod's metadata.generation (docs/contract.md): an
 * older one would make `kubectl wait` ignore it, none would let it take a True left from the
 * pod's previous spec.
 */
function assertObservedGenerationCurrent(p: V1Pod): void {
  const c = viewOf(p).condition;
  assert.ok(c !== undefined, 'the condition is there');
  assert.equal(c.observedGeneration, p.metadata?.generation, 'observedGeneration is the pod’s generation');
}

/** The agent's default budget (docs/configuration.md). */
const BUDGET: BudgetOptions = { minPatchIntervalMs: 2000, apiQps: 5, apiBurst: 10, maxWritesPerPull: 25 };

type WorldOptions = Partial<BudgetOptions>;

/** A publisher with its fakes, the clock, and the steps a test takes. */
function world(over: WorldOptions = {}) {
  let now = T0;
  const api = new FakeApi(() => now);
  const tracker = new FakeTracker(() => now);
  const pub = new Publisher({
    nodeName: 'node-a',
    budget: { ...BUDGET, ...over },
    thresholds: { stallAfterMs: 30_000, slowRateBytesPerSecond: 0 },
    tracker,
    writer: api,
    clock: () => now,
  });
  /** Passes until quiet; the watch delivers the pods our writes changed, as it does for real. */
  const settle = async (): Promise<void> => {
    for (let i = 0; i < 10; i++) {
      await pub.runOnce();
      const changed = api.takeChanged();
      for (const p of changed) pub.onPod(p);
      if (changed.length === 0) break;
    }
    await pub.runOnce();
  };
  return {
    api,
    tracker,
    pub,
    settle,
    now: () => now,
    /** The pod is created (or was there at start-up): the watch delivers it. */
    async add(p: V1Pod): Promise<string> {
      api.create(p);
      const key = keyOf(p);
      pub.onPod(api.get(key));
      await settle();
      return key;
    },
    /** Someone else (the kubelet, a user) changes the pod: the watch delivers it. */
    async change(key: string, f: (p: V1Pod) => void): Promise<void> {
      pub.onPod(api.update(key, f));
      await settle();
    },
    async advance(ms: number): Promise<void> {
      now += ms;
      await settle();
    },
    /** Advances in `stepMs` steps up to `ms`, letting `each` script the tracker at every step. */
    async run(ms: number, stepMs: number, each: (elapsed: number) => void): Promise<void> {
      for (let t = stepMs; t <= ms; t += stepMs) {
        now += stepMs;
        each(t);
        await settle();
      }
    },
    pod: (key: string) => api.get(key),
    view: (key: string) => viewOf(api.get(key)),
    check(): void {
      assert.deepEqual(api.violations, []);
    },
  };
}

const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

test('one image: Resolving, Downloading in percent steps, then Pulled, exactly as the contract says', async () => {
  const w = world();
  const key = await w.add(waitingPod('web-0', ['nginx:1.27']));
  assert.deepEqual([...w.tracker.expected], [NGINX]);

  // Resolving: the whole contract, nothing more, other keys and conditions untouched.
  let v = w.view(key);
  assert.deepEqual(v.labels, { [LABEL_TRACKED]: 'true', app: 'web', [LABEL_PROGRESS]: '0' });
  assert.deepEqual(Object.keys(v.annotations).sort(), [
    ANNOTATION_PHASE,
    ANNOTATION_PROGRESS,
    ANNOTATION_STATUS,
    OWNER_ANNOTATION,
  ]);
  assert.equal(v.annotations[OWNER_ANNOTATION], 'team-a');
  assert.equal(v.annotations[ANNOTATION_PROGRESS], '0');
  assert.equal(v.annotations[ANNOTATION_PHASE], 'Resolving');
  assert.deepEqual(
    v.conditions.map((c) => c.type),
    ['PodScheduled', CONDITION_IMAGES_PULLED],
  );
  const { observedGeneration: gen0, ...first } = v.condition ?? {};
  assert.deepEqual(first, {
    type: CONDITION_IMAGES_PULLED,
    status: 'False',
    reason: 'Resolving',
    message: 'nginx:1.27 resolving',
    lastTransitionTime: iso(T0),
  });
  assert.ok(gen0 === undefined || gen0 === 1, `observedGeneration ${String(gen0)}`);
  assert.equal(v.status?.version, STATUS_VERSION);
  assert.equal(v.status.phase, 'Resolving');
  assert.deepEqual(
    v.status.images.map((i) => [i.image, i.phase]),
    [[NGINX, 'Resolving']],
  );
  assert.equal(kubectlWaitMet(w.pod(key)), false);

  // Downloading 67 MB at 3.35 MB/s: 5 points a second, looked at every second.
  const total = 67 * MB;
  const rate = 3.35 * MB;
  const seen: { percent: number; phase: string; at: number }[] = [];
  await w.run(19_000, 1000, (t) => {
    w.tracker.set(downloading(NGINX, Math.min(total, (rate * t) / 1000), total, rate));
  });
  const history = w.api.ok(key, 'status').map((c) => {
    const labels = (c.body as PodPatch).metadata?.labels ?? {};
    const annotations = (c.body as PodPatch).metadata?.annotations ?? {};
    return { labels, annotations, at: c.at };
  });
  for (const h of history) {
    const percent = h.annotations[ANNOTATION_PROGRESS];
    if (percent === undefined || percent === null) continue;
    assert.equal(h.labels[LABEL_PROGRESS], percent, 'label and annotation written together');
    seen.push({ percent: Number(percent), phase: h.annotations[ANNOTATION_PHASE] ?? '', at: h.at });
  }
  const downloadingSteps = seen.filter((s) => s.phase === 'Downloading' || s.phase === '');
  assert.ok(downloadingSteps.length >= 3, `percent steps written: ${JSON.stringify(seen)}`);
  for (let i = 1; i < seen.length; i++) {
    const a = seen[i - 1];
    const b = seen[i];
    assert.ok(a !== undefined && b !== undefined && b.percent >= a.percent, 'percent never goes back');
  }

  v = w.view(key);
  assert.equal(v.annotations[ANNOTATION_PHASE], 'Downloading');
  const percent = Number(v.labels[LABEL_PROGRESS]);
  assert.ok(percent >= 80 && percent <= 99, `percent ${percent}`);
  assert.equal(v.annotations[ANNOTATION_PROGRESS], String(percent));
  assert.match(v.labels[LABEL_ETA] ?? '', /^\d+s$/);
  assert.match(v.annotations[ANNOTATION_ETA_SECONDS] ?? '', /^\d+$/);
  assert.equal(v.condition?.status, 'False');
  assert.equal(v.condition.reason, 'Downloading');
  assert.match(String(v.condition.message), /^nginx:1\.27 \d+% \(\d+\.\d\/67\.0 MB\) 3\.4 MB\/s ETA \d+s$/);
  assert.equal(v.condition.lastTransitionTime, iso(T0), 'kept while the status does not flip');
  assert.equal(v.status?.phase, 'Downloading');
  assert.equal(v.status.images[0]?.bytesTotal, total);
  assert.equal(kubectlWaitMet(w.pod(key)), false);
  assertObservedGenerationCurrent(w.pod(key));

  // Pulled.
  await w.advance(1000);
  const finalAt = w.now();
  w.tracker.set(pulled(NGINX, total, new Date(finalAt).toISOString()));
  await w.settle();
  // The last Downloading write may have been less than 2 s ago: the final one waits for it.
  await w.advance(2000);
  v = w.view(key);
  assert.deepEqual(v.labels, {
    [LABEL_TRACKED]: 'true',
    app: 'web',
    [LABEL_PROGRESS]: '100',
    [LABEL_ETA]: '0s',
  });
  assert.equal(v.annotations[ANNOTATION_PROGRESS], '100');
  assert.equal(v.annotations[ANNOTATION_ETA_SECONDS], '0');
  assert.equal(v.annotations[ANNOTATION_PHASE], 'Pulled');
  assert.equal(v.annotations[OWNER_ANNOTATION], 'team-a');
  const { observedGeneration: genFinal, lastTransitionTime, ...last } = v.condition ?? {};
  assert.deepEqual(last, {
    type: CONDITION_IMAGES_PULLED,
    status: 'True',
    reason: 'Pulled',
    message: 'nginx:1.27 pulled: 67.0 MB fetched',
  });
  assert.ok(genFinal === undefined || genFinal === 1);
  const flippedAt = Date.parse(String(lastTransitionTime));
  assert.ok(flippedAt >= finalAt && flippedAt <= w.now(), 'lastTransitionTime is when it turned True');
  assert.equal(v.status?.phase, 'Pulled');
  assert.equal(v.status.percent, 100);
  assert.equal(kubectlWaitMet(w.pod(key)), true);
  assert.equal(w.pub.active(), 0);

  // One summary event, on the pod (by uid).
  const events = w.api.events.filter((e) => e.reason === EVENT_IMAGES_PULLED);
  assert.equal(events.length, 1);
  assert.equal(events[0]?.type, 'Normal');
  assert.deepEqual(events[0].involvedObject, {
    apiVersion: 'v1',
    kind: 'Pod',
    namespace: 'default',
    name: 'web-0',
    uid: 'uid-web-0',
  });
  assert.match(events[0].message ?? '', /^nginx:1\.27 \(67\.0 MB\): 67\.0 MB fetched/);

  // Nothing more is written: not on tracker noise, the kubelet starting the container, or time.
  const before = w.api.calls.length;
  w.tracker.set(pulled(NGINX, total, new Date(finalAt).toISOString()));
  await w.change(key, (p) => {
    setStatus(p, { phase: 'Running', containerStatuses: [ranStatus('c0', 'nginx:1.27')] });
  });
  await w.run(60_000, 5000, () => undefined);
  assert.equal(w.api.calls.length, before, JSON.stringify(w.api.calls.slice(before)));
  w.check();
});

/**
 * A pull of `seconds` seconds of bytes at about 2 MB/s (the rate wobbles, so the ETA does),
 * looked at every second, stalled during the given ten-second spans (counted from the start).
 */
async function longPull(
  w: ReturnType<typeof world>,
  seconds: number,
  stallSpans: readonly number[],
): Promise<void> {
  const rate = 2 * MB;
  const total = seconds * rate;
  const stalls = new Set(stallSpans);
  let done = 0;
  await w.run((seconds + stallSpans.length * 10 + 5) * 1000, 1000, (t) => {
    if (stalls.has(Math.floor(t / 10_000))) {
      w.tracker.set(stalled(NGINX, done, total));
      return;
    }
    done = Math.min(total, done + rate);
    if (done < total) w.tracker.set(downloading(NGINX, done, total, rate + ((t / 1000) % 7) * 50_000));
    else w.tracker.set(pulled(NGINX, total, new Date(w.now()).toISOString()));
  });
}

for (const [seconds, stallSpans, max] of [
  [1000, [30, 31, 32, 33, 70, 71, 72], 25],
  [3600, [10, 11, 12, 100, 101, 200, 201, 300, 301], 25],
  [1000, [30, 31, 32, 70, 71, 72], 10],
] as const) {
  test(`a ${seconds} s pull with ${new Set(stallSpans.map((s) => Math.floor(s / 10))).size} stalls at 1 s steps keeps within --max-writes-per-pull ${max} and stops at the end`, async (t) => {
    const w = world({ maxWritesPerPull: max });
    const key = await w.add(waitingPod('big-0', ['nginx:1.27']));
    await longPull(w, seconds, stallSpans);
    await w.advance(5000);
    const writes = w.api.writeTimes(key);
    const requests = w.api.ok(key).filter((c) => c.kind !== 'event').length;
    t.diagnostic(
      `${seconds} s pull, max ${max}: ${writes.length} writes, ${requests} API requests, ${w.api.events.length} events`,
    );
    assert.ok(writes.length <= max, `${writes.length} writes`);
    assert.ok(writes.length >= Math.min(10, max - 2), `progress kept showing: ${writes.length} writes`);
    assert.ok(requests <= 2 * max, `${requests} requests`);
    assert.equal(w.view(key).condition?.reason, 'Pulled');
    assert.equal(w.view(key).labels[LABEL_PROGRESS], '100');
    for (let i = 1; i < writes.length; i++) {
      assert.ok((writes[i] ?? 0) - (writes[i - 1] ?? 0) >= BUDGET.minPatchIntervalMs, 'min interval');
    }
    // PullStalled once per stall, whatever the number of looks during it; the summary once.
    const reasons = w.api.events.map((e) => e.reason);
    const stallCount = new Set(stallSpans.map((s) => Math.floor(s / 10))).size;
    assert.equal(reasons.filter((r) => r === EVENT_PULL_STALLED).length, stallCount, JSON.stringify(reasons));
    assert.equal(reasons.filter((r) => r === EVENT_IMAGES_PULLED).length, 1);
    for (const e of w.api.events) assert.equal(e.involvedObject.uid, 'uid-big-0');
    const after = w.api.calls.length;
    await w.run(120_000, 1000, () => undefined);
    assert.equal(w.api.calls.length, after, 'nothing written after the final state');
    w.check();
  });
}

test('--min-patch-interval is kept between two writes to a pod, the final one included', async () => {
  const w = world({ minPatchIntervalMs: 5000 });
  const key = await w.add(waitingPod('web-0', ['nginx:1.27']));
  const total = 100 * MB;
  await w.run(20_000, 1000, (t) => {
    // 10 points a second: every look is worth a write.
    if (t < 10_000) w.tracker.set(downloading(NGINX, (t / 10_000) * total, total, 10 * MB));
    else w.tracker.set(pulled(NGINX, total));
  });
  const times = w.api.writeTimes(key);
  assert.ok(times.length >= 3, `${times.length} writes`);
  for (let i = 1; i < times.length; i++) {
    assert.ok(
      (times[i] ?? 0) - (times[i - 1] ?? 0) >= 5000,
      `writes at ${times.map((t) => t - T0).join(',')}`,
    );
  }
  assert.equal(w.view(key).condition?.reason, 'Pulled');
  w.check();
});

test('an init-container image and a main image: the main one is Queued, then pulled in turn', async () => {
  const w = world();
  const key = await w.add(waitingPod('app-0', ['nginx:1.27'], { init: ['busybox:1.36'] }));
  assert.deepEqual([...w.tracker.expected].sort(), [BUSYBOX, NGINX]);

  w.tracker.set(downloading(BUSYBOX, 2 * MB, 4 * MB, 1 * MB));
  await w.advance(2000);
  let v = w.view(key);
  assert.equal(v.condition?.reason, 'Downloading');
  assert.match(String(v.condition.message), /^busybox:1\.36 50% .*, then 1 more image ETA ≥2s$/);
  assert.deepEqual(
    v.status?.images.map((i) => [i.image, i.phase]),
    [
      [BUSYBOX, 'Downloading'],
      [NGINX, 'Queued'],
    ],
  );
  // The second image's size is not known: it counts as big as the first, so 2 of 8 MB.
  assert.equal(v.labels[LABEL_PROGRESS], '25');
  assert.equal(v.labels[LABEL_ETA], '2s', 'a lower bound while an image size is unknown');
  assert.equal(v.status.etaIsLowerBound, true);

  w.tracker.set(pulled(BUSYBOX, 4 * MB));
  await w.change(key, (p) => {
    setStatus(p, { initContainerStatuses: [ranStatus('init0', 'busybox:1.36', 'terminated')] });
  });
  await w.advance(2000);
  w.tracker.set(downloading(NGINX, 10 * MB, 60 * MB, 5 * MB));
  await w.advance(2000);
  v = w.view(key);
  assert.equal(v.condition?.reason, 'Downloading');
  assert.match(String(v.condition.message), /^nginx:1\.27 16% \(10\.0\/60\.0 MB\)/);
  // 14 of 64 MB; never below what was shown while the second image's size was a guess.
  assert.equal(v.labels[LABEL_PROGRESS], '50');

  w.tracker.set(pulled(NGINX, 60 * MB));
  await w.advance(2000);
  v = w.view(key);
  assert.equal(v.condition?.status, 'True');
  assert.equal(v.condition.reason, 'Pulled');
  assert.equal(v.condition.message, '2 images pulled: 64.0 MB fetched');
  const percents = w.api
    .ok(key, 'status')
    .map((c) => (c.body as PodPatch).metadata?.labels?.[LABEL_PROGRESS])
    .filter((p): p is string => typeof p === 'string')
    .map(Number);
  assert.deepEqual(
    percents,
    [...percents].sort((a, b) => a - b),
    'percent never goes back',
  );
  w.check();
});

test('a pod whose image has no pull yet while another pull runs on the node is Queued', async () => {
  const w = world();
  // An image no tracked pod waits for is being pulled (the kubelet pulls one at a time).
  w.tracker.set(downloading('docker.io/library/redis:7', 5 * MB, 30 * MB, 1 * MB));
  const key = await w.add(waitingPod('web-0', ['nginx:1.27']));
  let v = w.view(key);
  assert.equal(v.condition?.reason, 'Queued');
  assert.equal(v.annotations[ANNOTATION_PHASE], 'Queued');
  // The pull ahead has 25 MB to go at 1 MB/s; nginx's own size is not known: at least 25 s.
  assert.equal(v.condition.message, 'nginx:1.27 queued behind another pull on the node ETA ≥25s');
  assert.equal(v.annotations[ANNOTATION_ETA_SECONDS], '25');
  assert.equal(v.status?.etaIsLowerBound, true);
  // Its manifest size known (content store or registry): 25 MB ahead + its 10 MB, at 1 MB/s.
  w.tracker.sizes.set(NGINX, 10 * MB);
  w.tracker.set(downloading('docker.io/library/redis:7', 6 * MB, 30 * MB, 1 * MB));
  await w.advance(2000);
  v = w.view(key);
  assert.equal(v.condition?.message, 'nginx:1.27 queued behind another pull on the node ETA 34s');
  assert.equal(v.annotations[ANNOTATION_ETA_SECONDS], '34');
  assert.equal(v.status?.etaIsLowerBound, undefined);

  w.tracker.set(pulled('docker.io/library/redis:7', 30 * MB), downloading(NGINX, 1 * MB, 10 * MB, 1 * MB));
  await w.advance(2000);
  v = w.view(key);
  assert.equal(v.condition?.reason, 'Downloading');
  assert.equal(v.labels[LABEL_PROGRESS], '10');
  w.check();
});

test('two pods waiting for the same image both get its progress and final state', async () => {
  const w = world();
  const a = await w.add(waitingPod('a-0', ['nginx:1.27']));
  const b = await w.add(waitingPod('b-0', ['docker.io/library/nginx:1.27']));
  assert.deepEqual([...w.tracker.expected], [NGINX]);

  w.tracker.set(downloading(NGINX, 30 * MB, 60 * MB, 3 * MB));
  await w.advance(2000);
  for (const k of [a, b]) {
    assert.equal(w.view(k).labels[LABEL_PROGRESS], '50', k);
    assert.equal(w.view(k).condition?.reason, 'Downloading', k);
  }
  w.tracker.set(pulled(NGINX, 60 * MB));
  await w.advance(2000);
  for (const k of [a, b]) {
    assert.equal(w.view(k).condition?.status, 'True', k);
    assert.equal(w.view(k).labels[LABEL_PROGRESS], '100', k);
    assert.equal(kubectlWaitMet(w.pod(k)), true, k);
  }
  const summaries = w.api.events.filter((e) => e.reason === EVENT_IMAGES_PULLED);
  assert.deepEqual(summaries.map((e) => e.involvedObject.uid).sort(), ['uid-a-0', 'uid-b-0']);
  assert.equal(
    new Set(w.api.events.map((e) => e.metadata.name)).size,
    w.api.events.length,
    'event names unique',
  );
  w.check();
});

test('an image already present: Cached and condition True at once, in one write', async () => {
  const w = world();
  w.tracker.set(cached(NGINX, 67 * MB));
  // The tracker already knows the image is there when the pod shows up.
  w.tracker.expect(NGINX);
  const key = await w.add(waitingPod('web-0', ['nginx:1.27']));
  const v = w.view(key);
  assert.equal(v.condition?.status, 'True');
  assert.equal(v.condition.reason, 'Cached');
  assert.equal(v.condition.message, 'nginx:1.27 already present on the node');
  assert.equal(v.labels[LABEL_PROGRESS], '100');
  assert.equal(v.annotations[ANNOTATION_PHASE], 'Cached');
  assert.equal(kubectlWaitMet(w.pod(key)), true);
  assert.deepEqual(w.api.writeTimes(key), [T0]);
  assert.equal(w.api.ok(key, 'status').length, 1, 'labels, annotations and condition in one request');
  const events = w.api.events.map((e) => [e.type, e.reason, e.message]);
  assert.deepEqual(events, [
    ['Normal', EVENT_IMAGES_PULLED, 'nginx:1.27 already present on the node (67.0 MB)'],
  ]);
  w.check();
});

test('a kubelet ErrImagePull is passed to the tracker and the pod ends Failed with the message', async () => {
  const w = world();
  const key = await w.add(waitingPod('web-0', ['nginx:1.27']));
  const message =
    'rpc error: code = NotFound desc = failed to resolve reference "docker.io/library/nginx:1.27": not found';
  await w.change(key, (p) => {
    setStatus(p, { containerStatuses: [waitingStatus('c0', 'nginx:1.27', 'ErrImagePull', message)] });
  });
  assert.deepEqual(w.tracker.failCalls[0], { image: NGINX, message: `ErrImagePull: ${message}` });
  await w.advance(2000);
  const v = w.view(key);
  assert.equal(v.condition?.status, 'False');
  assert.equal(v.condition.reason, 'Failed');
  assert.equal(v.condition.message, `nginx:1.27 failed: ErrImagePull: ${message}`);
  assert.equal(v.annotations[ANNOTATION_PHASE], 'Failed');
  assert.equal(v.status?.images[0]?.error, `ErrImagePull: ${message}`);
  assert.equal(v.labels[LABEL_ETA], undefined);
  assert.equal(v.annotations[ANNOTATION_ETA_SECONDS], undefined);
  const failed = w.api.events.filter((e) => e.reason === EVENT_PULL_FAILED);
  assert.equal(failed.length, 1);
  assert.equal(failed[0]?.type, 'Warning');
  assert.equal(failed[0].involvedObject.uid, 'uid-web-0');
  assert.equal(kubectlWaitMet(w.pod(key)), false);
  w.check();
});

test('after a failure the kubelet retries: the pod follows the new pull to Pulled', async () => {
  const w = world();
  const key = await w.add(waitingPod('web-0', ['nginx:1.27']));
  await w.change(key, (p) => {
    setStatus(p, { containerStatuses: [waitingStatus('c0', 'nginx:1.27', 'ErrImagePull', 'registry down')] });
  });
  await w.advance(2000);
  assert.equal(w.view(key).condition?.reason, 'Failed');

  // The kubelet backs off and pulls again; this time the registry answers.
  await w.change(key, (p) => {
    setStatus(p, { containerStatuses: [waitingStatus('c0', 'nginx:1.27', 'ContainerCreating')] });
  });
  w.tracker.set(downloading(NGINX, 20 * MB, 40 * MB, 4 * MB));
  await w.advance(10_000);
  assert.equal(w.view(key).condition?.reason, 'Downloading');
  assert.match(String(w.view(key).condition?.message), /^nginx:1\.27 50% \(20\.0\/40\.0 MB\)/);
  assert.equal(w.api.events.filter((e) => e.reason === EVENT_PULL_FAILED).length, 1);
  w.tracker.set(pulled(NGINX, 40 * MB));
  await w.advance(2000);
  assert.equal(w.view(key).condition?.status, 'True');
  assert.equal(kubectlWaitMet(w.pod(key)), true, 'a readiness gate on it would pass');
  w.check();
});

test('404 on a write: the pod is forgotten, its image unexpected unless another pod wants it', async () => {
  const w = world();
  const a = await w.add(waitingPod('a-0', ['nginx:1.27', 'busybox:1.36']));
  const b = await w.add(waitingPod('b-0', ['nginx:1.27']));
  assert.equal(w.pub.active(), 2);

  // a-0 is deleted; the watch has not said so yet when the next write goes out.
  w.api.delete(a);
  w.tracker.set(downloading(NGINX, 30 * MB, 60 * MB, 3 * MB));
  await w.advance(2000);
  assert.equal(w.pub.active(), 1);
  assert.deepEqual(w.tracker.unexpectCalls, [BUSYBOX]);
  assert.deepEqual([...w.tracker.expected], [NGINX], 'b-0 still waits for nginx');
  assert.equal(w.view(b).labels[LABEL_PROGRESS], '50');

  // Told 404 for b-0 too (deleted and the API answered so): nginx is no longer expected.
  w.api.failNext(apiError(404, 'pods "b-0" not found'), 'status');
  w.tracker.set(downloading(NGINX, 45 * MB, 60 * MB, 3 * MB));
  await w.advance(2000);
  assert.equal(w.pub.active(), 0);
  assert.deepEqual([...w.tracker.expected], []);
  const calls = w.api.calls.length;
  w.tracker.set(pulled(NGINX, 60 * MB));
  await w.advance(5000);
  assert.equal(w.api.calls.length, calls, 'nothing more for forgotten pods');
  w.check();
});

test('429 with Retry-After: nothing is sent before the delay, then the write goes through', async () => {
  const w = world();
  const key = await w.add(waitingPod('web-0', ['nginx:1.27']));
  w.tracker.set(downloading(NGINX, 30 * MB, 60 * MB, 3 * MB));
  w.api.failNext(apiError(429, 'Too many requests', { 'retry-after': '2' }));
  await w.advance(2000);
  const failedAt = w.now();
  const attempts = w.api.calls.filter((c) => c.pod === key && c.kind !== 'event');
  assert.equal(attempts.at(-1)?.ok, false);
  for (const step of [500, 500, 500, 499]) await w.advance(step);
  assert.equal(
    w.api.calls.filter((c) => c.pod === key && c.at > failedAt).length,
    0,
    'no request before Retry-After',
  );
  await w.advance(1);
  assert.equal(w.view(key).labels[LABEL_PROGRESS], '50');
  assert.equal(w.view(key).condition?.reason, 'Downloading');
  assert.ok(w.pub.counts.retries >= 1);
  w.check();
});

for (const [what, err] of [
  ['500', apiError(500, 'etcdserver: request timed out')],
  ['503', apiError(503, 'service unavailable')],
  ['409 (conflict)', apiError(409, 'the object has been modified')],
  ['a network error', networkError()],
] as const) {
  test(`${what} on a write is retried`, async () => {
    const w = world();
    const key = await w.add(waitingPod('web-0', ['nginx:1.27']));
    w.tracker.set(downloading(NGINX, 30 * MB, 60 * MB, 3 * MB));
    w.api.failNext(err, 'status');
    await w.advance(2000);
    assert.equal(w.api.calls.filter((c) => c.pod === key && !c.ok).length, 1);
    assert.notEqual(w.view(key).condition?.reason, 'Downloading', 'the failed write did not land');
    await w.advance(1000);
    assert.equal(w.view(key).condition?.reason, 'Downloading');
    assert.equal(w.view(key).labels[LABEL_PROGRESS], '50');
    assert.equal(w.pub.active(), 1);
    // The final state still lands afterwards.
    w.tracker.set(pulled(NGINX, 60 * MB));
    await w.advance(2000);
    assert.equal(w.view(key).condition?.status, 'True');
    w.check();
  });
}

test('a write the API rejects (422) is not hammered: tried again after 30 s', async () => {
  const w = world();
  const key = await w.add(waitingPod('web-0', ['nginx:1.27']));
  w.tracker.set(downloading(NGINX, 30 * MB, 60 * MB, 3 * MB));
  w.api.failNext(apiError(422, 'Pod "web-0" is invalid'), 'status');
  await w.advance(2000);
  const rejectedAt = w.now();
  await w.run(29_000, 1000, () => undefined);
  assert.equal(w.api.calls.filter((c) => c.pod === key && c.at > rejectedAt).length, 0);
  assert.equal(w.pub.counts.errors, 1);
  await w.advance(1000);
  assert.equal(w.view(key).labels[LABEL_PROGRESS], '50');
  w.check();
});

test('a failing final write is retried until it lands', async () => {
  const w = world();
  const key = await w.add(waitingPod('web-0', ['nginx:1.27']));
  w.tracker.set(pulled(NGINX, 60 * MB));
  w.api.failNext(apiError(500, 'boom'), 'status');
  w.api.failNext(apiError(429, 'slow down', { 'retry-after': '3' }), 'status');
  await w.advance(2000);
  await w.advance(1000);
  assert.equal(w.view(key).condition?.status, 'False');
  await w.advance(3000);
  assert.equal(w.view(key).condition?.status, 'True');
  assert.equal(w.api.events.filter((e) => e.reason === EVENT_IMAGES_PULLED).length, 1);
  w.check();
});

test('a write failing again and again: the wait doubles up to MAX_RETRY_MS; a Retry-After is kept as given', async () => {
  const w = world();
  const key = await w.add(waitingPod('web-0', ['nginx:1.27']));
  w.tracker.set(downloading(NGINX, 30 * MB, 60 * MB, 3 * MB));
  for (let i = 0; i < 7; i++) w.api.failNext(apiError(500, 'etcdserver: request timed out'), 'status');
  await w.run(120_000, 250, () => undefined);
  const tries = w.api.calls.filter((c) => c.pod === key && c.kind === 'status' && c.at > T0).map((c) => c.at);
  const gaps = tries.slice(1).map((t, i) => t - (tries[i] ?? t));
  assert.deepEqual(gaps, [1000, 2000, 4000, 8000, 16000, MAX_RETRY_MS, MAX_RETRY_MS]);
  assert.equal(w.view(key).labels[LABEL_PROGRESS], '50', 'then it lands');

  // After a success the count starts again; a 429's Retry-After is the server's pacing.
  w.tracker.set(downloading(NGINX, 45 * MB, 60 * MB, 3 * MB));
  for (let i = 0; i < 3; i++) w.api.failNext(apiError(429, 'slow down', { 'retry-after': '2' }), 'status');
  const from = w.now();
  await w.run(20_000, 250, () => undefined);
  const later = w.api.calls
    .filter((c) => c.pod === key && c.kind === 'status' && c.at > from)
    .map((c) => c.at);
  assert.deepEqual(
    later.slice(1).map((t, i) => t - (later[i] ?? t)),
    [2000, 2000, 2000],
  );
  assert.equal(w.view(key).labels[LABEL_PROGRESS], '75');
  w.check();
});

test('restart: an earlier run left Downloading 40 %; percent never drops below it and the final state is written', async () => {
  const w = world();
  const earlier = waitingPod('web-0', ['nginx:1.27']);
  const earlierAt = T0 - 60_000;
  leftByEarlierRun(earlier, {
    labels: { [LABEL_PROGRESS]: '40', [LABEL_ETA]: '30s' },
    annotations: {
      [ANNOTATION_PROGRESS]: '40',
      [ANNOTATION_ETA_SECONDS]: '30',
      [ANNOTATION_PHASE]: 'Downloading',
      [ANNOTATION_STATUS]: JSON.stringify({
        version: STATUS_VERSION,
        phase: 'Downloading',
        percent: 40,
        etaSeconds: 30,
        updatedAt: new Date(earlierAt).toISOString(),
        images: [downloading(NGINX, 24 * MB, 60 * MB, 1.2 * MB)],
      }),
    },
    condition: {
      type: CONDITION_IMAGES_PULLED,
      status: 'False',
      reason: 'Downloading',
      message: 'nginx:1.27 40% (24.0/60.0 MB) 1.2 MB/s ETA 30s',
      lastTransitionTime: iso(earlierAt),
      observedGeneration: 1,
    },
  });
  // The new run's tracker starts with no pull seen yet, then sees a resumed pull counted afresh.
  const key = await w.add(earlier);
  let v = w.view(key);
  assert.equal(v.labels[LABEL_PROGRESS], '40');
  assert.equal(v.annotations[ANNOTATION_PROGRESS], '40');
  w.tracker.set(downloading(NGINX, 10 * MB, 60 * MB, 2 * MB));
  await w.advance(2000);
  v = w.view(key);
  assert.ok(Number(v.labels[LABEL_PROGRESS]) >= 40, `label ${v.labels[LABEL_PROGRESS]}`);
  assert.ok(Number(v.annotations[ANNOTATION_PROGRESS]) >= 40);
  assert.equal(v.condition?.lastTransitionTime, iso(earlierAt), 'still False: transition time kept');
  for (const c of w.api.ok(key, 'status')) {
    const p = (c.body as PodPatch).metadata?.annotations?.[ANNOTATION_PROGRESS];
    if (typeof p === 'string') assert.ok(Number(p) >= 40, `wrote ${p}`);
  }

  w.tracker.set(pulled(NGINX, 60 * MB));
  await w.advance(2000);
  v = w.view(key);
  assert.equal(v.condition?.status, 'True');
  assert.equal(v.condition.reason, 'Pulled');
  assert.equal(v.labels[LABEL_PROGRESS], '100');
  assert.equal(v.annotations[ANNOTATION_PHASE], 'Pulled');
  assert.equal(kubectlWaitMet(w.pod(key)), true);
  assertObservedGenerationCurrent(w.pod(key));
  w.check();
});

test('restart: a pod left Downloading whose image is now Pulled gets its final write at once', async () => {
  const w = world();
  const earlier = waitingPod('web-0', ['nginx:1.27']);
  leftByEarlierRun(earlier, {
    labels: { [LABEL_PROGRESS]: '40' },
    annotations: { [ANNOTATION_PROGRESS]: '40', [ANNOTATION_PHASE]: 'Downloading' },
    condition: {
      type: CONDITION_IMAGES_PULLED,
      status: 'False',
      reason: 'Downloading',
      message: 'nginx:1.27 40%',
      lastTransitionTime: iso(T0 - 60_000),
    },
  });
  w.tracker.expect(NGINX);
  w.tracker.set(pulled(NGINX, 60 * MB));
  const key = await w.add(earlier);
  const v = w.view(key);
  assert.deepEqual(w.api.writeTimes(key), [T0]);
  assert.equal(v.condition?.status, 'True');
  assert.equal(v.condition.reason, 'Pulled');
  assert.equal(v.condition.lastTransitionTime, iso(T0));
  assert.equal(v.labels[LABEL_PROGRESS], '100');
  assert.equal(v.annotations[ANNOTATION_PROGRESS], '100');
  assert.equal(v.annotations[ANNOTATION_PHASE], 'Pulled');
  w.check();
});

test('restart: a running pod whose final state an earlier run wrote gets no write and no event', async () => {
  const w = world();
  const earlier = trackedPod({
    name: 'web-0',
    containers: [{ name: 'c0', image: 'nginx:1.27' }],
    statuses: [ranStatus('c0', 'nginx:1.27')],
    phase: 'Running',
  });
  leftByEarlierRun(earlier, {
    labels: { [LABEL_PROGRESS]: '100', [LABEL_ETA]: '0s' },
    annotations: {
      [ANNOTATION_PROGRESS]: '100',
      [ANNOTATION_ETA_SECONDS]: '0',
      [ANNOTATION_PHASE]: 'Pulled',
      [ANNOTATION_STATUS]: '{}',
    },
    condition: {
      type: CONDITION_IMAGES_PULLED,
      status: 'True',
      reason: 'Pulled',
      message: 'nginx:1.27 pulled: 60.0 MB fetched',
      lastTransitionTime: iso(T0 - 3_600_000),
      observedGeneration: 1,
    },
  });
  // The new run's tracker finds the image record older than its expectation: it says Cached.
  w.tracker.set(cached(NGINX, 60 * MB));
  const key = await w.add(earlier);
  await w.run(10_000, 1000, () => undefined);
  assert.deepEqual(w.api.calls, []);
  assert.equal(w.view(key).condition?.reason, 'Pulled');
  assert.equal(w.pub.active(), 0);
  w.check();
});

test('restart: a final state an earlier run wrote for this generation stays, even while the kubelet does not show the image yet', async () => {
  const w = world();
  const earlier = trackedPod({
    name: 'web-0',
    containers: [{ name: 'c0', image: 'nginx:1.27' }],
    // The image is in; the container is still being created (or its status names it otherwise).
    statuses: [waitingStatus('c0', 'nginx:1.27', 'ContainerCreating')],
  });
  earlier.metadata!.generation = 1;
  leftByEarlierRun(earlier, {
    labels: { [LABEL_PROGRESS]: '100', [LABEL_ETA]: '0s' },
    annotations: {
      [ANNOTATION_PROGRESS]: '100',
      [ANNOTATION_ETA_SECONDS]: '0',
      [ANNOTATION_PHASE]: 'Cached',
      [ANNOTATION_STATUS]: '{}',
    },
    condition: {
      type: CONDITION_IMAGES_PULLED,
      status: 'True',
      reason: 'Cached',
      message: 'nginx:1.27 already present on the node',
      lastTransitionTime: iso(T0 - 60_000),
      observedGeneration: 1,
    },
  });
  // This run only has the record, made after the pod was created: it would say Pulled.
  w.tracker.set(pulled(NGINX, 60 * MB));
  const key = await w.add(earlier);
  await w.run(10_000, 1000, () => undefined);
  assert.deepEqual(w.api.calls, [], 'no write, no event');
  assert.equal(w.view(key).condition?.reason, 'Cached');
  assert.equal(w.view(key).condition?.lastTransitionTime, iso(T0 - 60_000));
  // A new spec (kubectl set image) is followed again.
  await w.change(key, (p) => {
    p.metadata!.generation = 2;
    p.spec!.containers[0]!.image = 'docker.io/library/redis:7';
  });
  await w.run(3000, 1000, () => undefined);
  assert.ok(w.api.ok(key, 'status').length >= 1, 'the new image is written');
  w.check();
});

test('kubectl wait keeps working when the pod generation moves on after the final write', async () => {
  const w = world();
  const key = await w.add(waitingPod('web-0', ['nginx:1.27']));
  w.tracker.set(pulled(NGINX, 60 * MB));
  await w.advance(2000);
  assert.equal(kubectlWaitMet(w.pod(key)), true);
  // An in-place resize (or any spec update) bumps metadata.generation.
  await w.change(key, (p) => {
    setMeta(p, { generation: 2 });
    setStatus(p, { phase: 'Running', containerStatuses: [ranStatus('c0', 'nginx:1.27')] });
  });
  await w.advance(5000);
  assertObservedGenerationCurrent(w.pod(key));
  assert.equal(kubectlWaitMet(w.pod(key)), true);
  w.check();
});

test('events: PullStalled once per stall, the summary once, each on the pod by uid', async () => {
  const w = world();
  const key = await w.add(
    waitingPod('web-0', ['nginx:1.27'], { uid: '5d1c2a9e-0000-4000-8000-000000000001' }),
  );
  w.tracker.set(downloading(NGINX, 10 * MB, 60 * MB, 1 * MB));
  await w.advance(2000);
  w.tracker.set(stalled(NGINX, 12 * MB, 60 * MB));
  await w.advance(2000);
  // Still stalled for a while: looked at many times, reported once.
  await w.run(20_000, 1000, () => {
    w.tracker.set(stalled(NGINX, 12 * MB, 60 * MB));
  });
  w.tracker.set(downloading(NGINX, 30 * MB, 60 * MB, 3 * MB));
  await w.advance(2000);
  w.tracker.set(stalled(NGINX, 31 * MB, 60 * MB));
  await w.advance(2000);
  await w.advance(2000);
  w.tracker.set(pulled(NGINX, 60 * MB));
  await w.advance(2000);
  await w.advance(2000);

  const got = w.api.events.map((e) => [e.type, e.reason]);
  assert.deepEqual(got, [
    ['Warning', EVENT_PULL_STALLED],
    ['Warning', EVENT_PULL_STALLED],
    ['Normal', EVENT_IMAGES_PULLED],
  ]);
  for (const e of w.api.events) {
    assert.equal(e.involvedObject.uid, '5d1c2a9e-0000-4000-8000-000000000001');
    assert.equal(e.involvedObject.name, 'web-0');
    assert.equal(e.metadata.namespace, 'default');
    assert.equal(e.source?.host, 'node-a');
  }
  assert.match(w.api.events[0]?.message ?? '', /^no bytes for 30s pulling nginx:1\.27/);
  assert.equal(w.view(key).condition?.reason, 'Pulled');
  w.check();
});

test('an event that fails is retried or dropped, never blocking the pod', async () => {
  const w = world();
  const key = await w.add(waitingPod('web-0', ['nginx:1.27']));
  w.api.failNext(apiError(500, 'boom'), 'event');
  w.tracker.set(pulled(NGINX, 60 * MB));
  await w.advance(2000);
  assert.equal(w.view(key).condition?.status, 'True');
  await w.advance(1000);
  assert.equal(w.api.events.filter((e) => e.reason === EVENT_IMAGES_PULLED).length, 1, 'retried after a 500');
  w.check();
});

test('the final write is made even when the token bucket is empty, once tokens are back', async () => {
  // 2 tokens, 1 a second: two first writes (1 request each) empty the bucket.
  const w = world({ apiQps: 1, apiBurst: 2, minPatchIntervalMs: 0 });
  const a = await w.add(waitingPod('a-0', ['nginx:1.27']));
  const b = await w.add(waitingPod('b-0', ['docker.io/library/redis:7']));
  assert.equal(w.api.writeTimes(a).length, 1);
  assert.equal(w.api.writeTimes(b).length, 1);
  // a-0's image is in at once: the final write (1 request) and its event need tokens.
  w.tracker.set(pulled(NGINX, 60 * MB));
  await w.advance(100);
  assert.equal(w.view(a).condition?.status, 'False', 'no token yet');
  const waitedFrom = w.now();
  let landedAt = -1;
  for (let i = 0; i < 100 && landedAt < 0; i++) {
    await w.advance(100);
    if (w.view(a).condition?.status === 'True') landedAt = w.now();
  }
  assert.ok(landedAt > waitedFrom, 'written once tokens came back');
  assert.ok(landedAt - T0 >= 1000 && landedAt - T0 <= 2000, `landed at +${landedAt - T0} ms`);
  assert.equal(w.view(a).labels[LABEL_PROGRESS], '100');
  await w.advance(2000);
  assert.equal(w.api.events.filter((e) => e.reason === EVENT_IMAGES_PULLED).length, 1);
  // The bucket held: never more than 2 requests in the first second, 1 a second after.
  const requests = w.api.calls.filter((c) => c.ok).map((c) => c.at - T0);
  assert.ok(requests.filter((t) => t < 1000).length <= 2, JSON.stringify(requests));
  assert.ok(requests.filter((t) => t < 2000).length <= 3, JSON.stringify(requests));
  w.check();
});

test('the status annotation stays bounded with many images', async () => {
  const w = world();
  const images = Array.from({ length: 60 }, (_, i) => `registry.example:5000/team/${'x'.repeat(200)}-${i}:1`);
  const key = await w.add(waitingPod('many-0', images));
  assert.equal(w.tracker.expected.size, 60);
  const v = w.view(key);
  const raw = v.annotations[ANNOTATION_STATUS] ?? '';
  assert.ok(Buffer.byteLength(raw) <= 16 * 1024, `${Buffer.byteLength(raw)} bytes`);
  assert.ok((v.status?.imagesOmitted ?? 0) > 0);
  assert.ok(String(v.condition?.message).length <= 256);
  w.check();
});

test('a pod whose image changes lets go of the old one', async () => {
  const w = world();
  const key = await w.add(waitingPod('web-0', ['nginx:1.27']));
  await w.change(key, (p) => {
    setSpec(p, { containers: [{ name: 'c0', image: 'busybox:1.36' }] });
    setStatus(p, { containerStatuses: [waitingStatus('c0', 'busybox:1.36')] });
  });
  assert.deepEqual(w.tracker.unexpectCalls, [NGINX]);
  assert.deepEqual([...w.tracker.expected], [BUSYBOX]);
  w.tracker.set(cached(BUSYBOX, 1 * MB));
  await w.advance(2000);
  assert.equal(w.view(key).condition?.reason, 'Cached');
  w.pub.onDelete(w.pod(key));
  assert.deepEqual([...w.tracker.expected], []);
  w.check();
});

test('a finished pod that needs a new image (its spec changed) is followed again, from 0 %', async () => {
  const w = world();
  const key = await w.add(waitingPod('web-0', ['nginx:1.27']));
  w.tracker.set(pulled(NGINX, 60 * MB));
  await w.advance(2000);
  await w.change(key, (p) => {
    setStatus(p, { phase: 'Running', containerStatuses: [ranStatus('c0', 'nginx:1.27')] });
  });
  assert.equal(w.pub.active(), 0);
  assert.equal(w.view(key).condition?.status, 'True');

  // `kubectl set image pod/web-0 c0=busybox:1.36`: the kubelet pulls the new image.
  await w.change(key, (p) => {
    setMeta(p, { generation: 2 });
    setSpec(p, { containers: [{ name: 'c0', image: 'busybox:1.36' }] });
    setStatus(p, { containerStatuses: [waitingStatus('c0', 'busybox:1.36')] });
  });
  // Before the agent writes again, the old True is for generation 1: kubectl wait ignores it.
  assert.equal(w.view(key).condition?.status, 'True');
  assert.equal(kubectlWaitMet(w.pod(key)), false, 'the old image’s True does not satisfy kubectl wait');
  await w.advance(2000);
  assert.equal(w.pub.active(), 1);
  assert.deepEqual([...w.tracker.expected], [BUSYBOX]);
  let v = w.view(key);
  assert.equal(v.condition?.status, 'False');
  assert.equal(v.condition.reason, 'Resolving');
  assert.equal(v.labels[LABEL_PROGRESS], '0');
  assert.equal(kubectlWaitMet(w.pod(key)), false);
  w.tracker.set(downloading(BUSYBOX, 1 * MB, 4 * MB, 1 * MB));
  await w.advance(2000);
  assert.equal(w.view(key).labels[LABEL_PROGRESS], '25');
  w.tracker.set(pulled(BUSYBOX, 4 * MB));
  await w.advance(2000);
  v = w.view(key);
  assert.equal(v.condition?.status, 'True');
  assert.equal(v.condition.message, 'busybox:1.36 pulled: 4.0 MB fetched');
  assert.equal(kubectlWaitMet(w.pod(key)), true);
  assertObservedGenerationCurrent(w.pod(key));
  w.check();
});
