// Fuzzing the webhook's HTTP application with generated AdmissionReviews (a seeded PRNG, so a
// failure replays): random JSON, and valid reviews mutated with wrong types, numbers where
// strings belong, missing fields, huge label maps, deep nesting, JSON-pointer characters in
// keys, invalid UTF-8 bytes and cut-off bodies. Every answer must be a valid AdmissionReview
// (uid echoed, a patch that is a base64 JSONPatch applying to the object sent) or a 4xx with a
// JSON error body; never a 5xx, never a crash; and the heap must not grow with the requests.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import { KEY_TRACK, LABEL_TRACKED, ANNOTATION_READINESS_GATE } from '../common/contract.js';
import { silentLogger } from '../common/logging.js';
import { buildApp } from './app.js';
import { createWebhookMetrics } from './metrics.js';
import type { JsonObject } from './mutate.js';
import { podReview } from '../test-support/webhook.js';
import { prng } from '../e2e/env/prng.js';

const SEED = Number(process.env.PULLTRACE_FUZZ_SEED ?? 0x5eed1);
const CASES = 1200;

class Gen {
  constructor(readonly next: () => number) {}

  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  pick<T>(items: readonly T[]): T {
    const v = items[this.int(items.length)];
    if (v === undefined) throw new Error('pick from an empty list');
    return v;
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  string(): string {
    return this.pick<() => string>([
      () => '',
      () => 'web',
      () => 'x'.repeat(this.int(5000)),
      () => 'ünïcødé-名前-🚀',
      () => '"; rm -rf / #',
      () => '</script><script>alert(1)</script>',
      () => 'line\nbreak\r\n\u2028',
      () => '\u0000\u0001\u001f',
      () => '\ud800', // a lone surrogate (JSON.stringify escapes it)
      () => 'a/b~c~1~0',
      () => '__proto__',
      () => 'true',
      () => String(this.next()),
    ])();
  }

  scalar(): unknown {
    return this.pick<() => unknown>([
      () => null,
      () => true,
      () => false,
      () => this.int(1000) - 500,
      () => this.next() * 1e308,
      () => -0,
      () => 2 ** 53 + 1,
      () => this.string(),
    ])();
  }

  /** Any JSON value, up to `depth` levels of arrays and objects. */
  json(depth: number): unknown {
    if (depth <= 0 || this.chance(0.4)) return this.scalar();
    if (this.chance(0.5)) return Array.from({ length: this.int(5) }, () => this.json(depth - 1));
    const o: JsonObject = {};
    for (let i = this.int(6); i > 0; i--)
      o[this.chance(0.2) ? this.pick(KEYS) : this.string()] = this.json(depth - 1);
    return o;
  }
}

/** Keys the webhook reads, so random objects hit them now and then. */
const KEYS = [
  'apiVersion',
  'kind',
  'request',
  'uid',
  'object',
  'metadata',
  'labels',
  'annotations',
  'spec',
  'readinessGates',
  'operation',
  'resource',
  'namespace',
  '__proto__',
  'constructor',
];

/** Paths in a valid review the mutations aim at. */
const PATHS: readonly (readonly string[])[] = [
  ['apiVersion'],
  ['kind'],
  ['request'],
  ['request', 'uid'],
  ['request', 'kind'],
  ['request', 'kind', 'kind'],
  ['request', 'resource'],
  ['request', 'resource', 'group'],
  ['request', 'resource', 'resource'],
  ['request', 'subResource'],
  ['request', 'operation'],
  ['request', 'namespace'],
  ['request', 'dryRun'],
  ['request', 'object'],
  ['request', 'object', 'metadata'],
  ['request', 'object', 'metadata', 'namespace'],
  ['request', 'object', 'metadata', 'labels'],
  ['request', 'object', 'metadata', 'annotations'],
  ['request', 'object', 'spec'],
  ['request', 'object', 'spec', 'readinessGates'],
  ['request', 'object', 'spec', 'containers'],
];

/** The object at `path` (created as needed) and the last key, or null if a scalar is in the way. */
function at(root: JsonObject, path: readonly string[]): { parent: JsonObject; key: string } | null {
  let o: unknown = root;
  for (const k of path.slice(0, -1)) {
    if (typeof o !== 'object' || o === null || Array.isArray(o)) return null;
    const rec = o as JsonObject;
    if (rec[k] === undefined) rec[k] = {};
    o = rec[k];
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return null;
  return { parent: o as JsonObject, key: path[path.length - 1] ?? '' };
}

/**
 * A placeholder for `depth` levels of nesting, made into JSON text by serialize(): deep values
 * are written as text because JSON.stringify recurses (and overflows) where JSON.parse does not.
 */
function deepMark(depth: number, arrays: boolean): string {
  return `\u0007DEEP:${depth}:${arrays ? 'a' : 'o'}\u0007`;
}

/** The review as JSON text, deep placeholders expanded, every MARK made invalid UTF-8. */
function serialize(g: Gen, review: JsonObject): Buffer {
  const text = JSON.stringify(review).replace(
    /"\\u0007DEEP:(\d+):([ao])\\u0007"/g,
    (_m, d: string, kind: string) => {
      const n = Number(d);
      return kind === 'a'
        ? `${'['.repeat(n)}1${']'.repeat(n)}`
        : `${'{"d":'.repeat(n)}"leaf"${'}'.repeat(n)}`;
    },
  );
  return withBadBytes(g, text);
}

/** A body to send, and what made it (for messages and the tally of kinds). */
interface Case {
  kind: string;
  payload: Buffer;
}

const BAD_UTF8 = [
  Buffer.from([0xff]),
  Buffer.from([0xc3, 0x28]),
  Buffer.from([0xed, 0xa0, 0x80]), // an encoded surrogate
  Buffer.from([0xf4, 0x90, 0x80, 0x80]), // above U+10FFFF
  Buffer.from([0xe2, 0x82]), // cut short
];
const MARK = '\u0007MARK\u0007';

/** The review with every MARK in its JSON replaced by invalid UTF-8 bytes. */
function withBadBytes(g: Gen, text: string): Buffer {
  const parts = text.split(JSON.stringify(MARK).slice(1, -1));
  const out: Buffer[] = [];
  parts.forEach((p, i) => {
    if (i > 0) out.push(g.pick(BAD_UTF8));
    out.push(Buffer.from(p, 'utf8'));
  });
  return Buffer.concat(out);
}

function mutated(g: Gen): Case {
  const review = podReview();
  const kinds: string[] = [];
  for (let n = 1 + g.int(3); n > 0; n--) {
    const path = g.pick(PATHS);
    const slot = at(review, path);
    if (slot === null) continue;
    const what = g.pick([
      'wrong-type',
      'delete',
      'number',
      'huge-labels',
      'deep',
      'bad-utf8',
      'gate',
      'pointer-keys',
      'labels-values',
    ] as const);
    kinds.push(what);
    switch (what) {
      case 'wrong-type':
        slot.parent[slot.key] = g.json(3);
        break;
      case 'delete':
        Reflect.deleteProperty(slot.parent, slot.key);
        break;
      case 'number':
        slot.parent[slot.key] = g.int(2) === 0 ? g.int(1e9) : g.next();
        break;
      case 'huge-labels': {
        const labels: JsonObject = {};
        const n = 1000 + g.int(30_000);
        for (let i = 0; i < n; i++) labels[`k${i}.example.com/l-${i}`] = `v${i}`;
        const meta = at(review, ['request', 'object', 'metadata', 'labels']);
        if (meta !== null) meta.parent[meta.key] = labels;
        break;
      }
      case 'deep':
        slot.parent[slot.key] = deepMark(10 + g.int(g.chance(0.1) ? 200_000 : 3000), g.chance(0.5));
        break;
      case 'bad-utf8': {
        const labels = at(review, ['request', 'object', 'metadata', 'labels']);
        if (labels !== null) labels.parent[labels.key] = { app: `we${MARK}b`, [`k${MARK}`]: 'v' };
        const uid = at(review, ['request', 'uid']);
        if (uid !== null && g.chance(0.3)) uid.parent[uid.key] = `uid-${MARK}`;
        break;
      }
      case 'gate': {
        const ann = at(review, ['request', 'object', 'metadata', 'annotations']);
        if (ann !== null)
          ann.parent[ann.key] = { [ANNOTATION_READINESS_GATE]: g.pick(['true', true, 1, 'false', null]) };
        const gates = at(review, ['request', 'object', 'spec', 'readinessGates']);
        if (gates !== null)
          gates.parent[gates.key] = g.pick([[], null, 'x', [1, null, { conditionType: 7 }], g.json(2)]);
        break;
      }
      case 'pointer-keys': {
        const labels = at(review, ['request', 'object', 'metadata', 'labels']);
        if (labels !== null)
          labels.parent[labels.key] = {
            'a/b': '1',
            '~0': '2',
            '~1x': '3',
            '': '4',
            [LABEL_TRACKED]: g.scalar(),
          };
        break;
      }
      case 'labels-values': {
        const labels = at(review, ['request', 'object', 'metadata', 'labels']);
        if (labels !== null)
          labels.parent[labels.key] = { app: g.scalar(), [KEY_TRACK]: g.pick(['false', false, 0, 'true']) };
        break;
      }
    }
  }
  return { kind: `mutated(${kinds.join('+')})`, payload: serialize(g, review) };
}

function randomCase(g: Gen): Case {
  const v = g.json(6);
  if (g.chance(0.5) && typeof v === 'object' && v !== null && !Array.isArray(v)) {
    // Random, but under a valid envelope, so it reaches the review's parsing.
    const o = v as JsonObject;
    o.apiVersion = 'admission.k8s.io/v1';
    o.kind = 'AdmissionReview';
    if (g.chance(0.7)) o.request = { uid: g.string(), ...(g.json(4) as JsonObject) };
  }
  return { kind: 'random', payload: Buffer.from(JSON.stringify(v)) };
}

function garbage(g: Gen): Case {
  const full = Buffer.from(JSON.stringify(podReview()));
  return g.pick<() => Case>([
    () => ({ kind: 'cut', payload: full.subarray(0, g.int(full.length)) }),
    () => ({ kind: 'bytes', payload: Buffer.from(Array.from({ length: g.int(300) }, () => g.int(256))) }),
    () => ({ kind: 'bom', payload: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), full]) }),
    () => ({ kind: 'deep-array', payload: Buffer.from('['.repeat(100_000 + g.int(200_000))) }),
    () => ({ kind: 'deep-closed', payload: Buffer.from(`${'['.repeat(50_000)}${']'.repeat(50_000)}`) }),
  ])();
}

function generate(g: Gen): Case {
  const r = g.next();
  if (r < 0.55) return mutated(g);
  if (r < 0.9) return randomCase(g);
  return garbage(g);
}

interface Tally {
  patched: number;
  allowed: number;
  rejected: number;
  byStatus: Map<number, number>;
}

/** What the API server would make of the body: the review parsed from its UTF-8 text. */
function parsedAsSent(payload: Buffer): JsonObject | null {
  try {
    // A leading BOM is dropped, as the webhook's body parser does.
    const v = JSON.parse(payload.toString('utf8').replace(/^\uFEFF/, '')) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as JsonObject) : null;
  } catch {
    return null;
  }
}

function isRecord(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Checks one answer; returns what kind it was. */
function check(c: Case, status: number, body: string, tally: Tally): void {
  const where = `${c.kind}: HTTP ${status} ${body.slice(0, 300)}`;
  tally.byStatus.set(status, (tally.byStatus.get(status) ?? 0) + 1);
  assert.ok(status < 500, `never a 5xx: ${where}`);
  const answer = JSON.parse(body) as unknown;
  assert.ok(isRecord(answer), `a JSON object: ${where}`);
  if (status >= 400) {
    assert.ok(status < 500);
    assert.match(String(answer.code), /^PT_ADMISSION_/, where);
    assert.equal(typeof answer.message, 'string', where);
    tally.rejected++;
    return;
  }
  assert.equal(status, 200, where);
  assert.equal(answer.apiVersion, 'admission.k8s.io/v1', where);
  assert.equal(answer.kind, 'AdmissionReview', where);
  const res = answer.response;
  assert.ok(isRecord(res), where);
  assert.equal(res.allowed, true, `never a denial: ${where}`);
  const sent = parsedAsSent(c.payload);
  const req = sent?.request;
  assert.ok(isRecord(req) && typeof req.uid === 'string', `a 200 only for a review with a uid: ${where}`);
  assert.equal(res.uid, req.uid, `uid echoed: ${where}`);
  if (res.patch === undefined) {
    assert.equal(res.patchType, undefined, where);
    tally.allowed++;
    return;
  }
  assert.equal(res.patchType, 'JSONPatch', where);
  const patch = res.patch;
  assert.ok(typeof patch === 'string' && /^[A-Za-z0-9+/]*={0,2}$/.test(patch), `base64: ${where}`);
  const ops = JSON.parse(Buffer.from(patch, 'base64').toString('utf8')) as Operation[];
  assert.ok(Array.isArray(ops) && ops.length > 0, where);
  assert.ok(isRecord(req.object), where);
  // Applied in place (validated, as the API server does): `sent` is a fresh parse, and a clone
  // of the 200 000-level objects some cases send would overflow the stack.
  const patched = fastJsonPatch.applyPatch(req.object, ops, true, true).newDocument;
  const meta = patched.metadata;
  assert.ok(isRecord(meta) && isRecord(meta.labels), where);
  assert.equal(meta.labels[LABEL_TRACKED], 'true', `the patch labels the pod: ${where}`);
  tally.patched++;
}

test(`${CASES} generated AdmissionReviews: valid reviews or 4xx, never a 5xx, heap flat (seed ${SEED})`, async (t) => {
  const app = buildApp({
    logger: silentLogger(),
    metrics: createWebhookMetrics({ processMetrics: false }),
    mutate: { readinessGateNamespaces: new Set(['gated']) },
  });
  t.after(() => app.close());
  const g = new Gen(prng(SEED));
  const tally: Tally = { patched: 0, allowed: 0, rejected: 0, byStatus: new Map() };
  const send = async (c: Case) => {
    const res = await app.inject({
      method: 'POST',
      url: '/mutate',
      headers: { 'content-type': 'application/json' },
      payload: c.payload,
    });
    check(c, res.statusCode, res.body, tally);
  };
  const gc = (globalThis as { gc?: () => void }).gc;
  const heap = async (): Promise<number> => {
    for (let i = 0; i < 3; i++) {
      gc?.();
      await sleep(20);
    }
    return process.memoryUsage().heapUsed;
  };

  // Warm-up: the first requests compile code and fill caches; the heap is measured after.
  const warm = new Gen(prng(SEED ^ 0xffff));
  for (let i = 0; i < 100; i++) await send(generate(warm));
  const before = await heap();
  const kinds = new Map<string, number>();
  for (let i = 0; i < CASES; i++) {
    const c = generate(g);
    for (const k of c.kind.split(/[(+)]/).filter((x) => x !== '')) kinds.set(k, (kinds.get(k) ?? 0) + 1);
    await send(c);
  }
  const afterHeap = await heap();

  // Still answering normally after all that.
  const ok = await app.inject({
    method: 'POST',
    url: '/mutate',
    headers: { 'content-type': 'application/json' },
    payload: podReview(),
  });
  assert.equal(ok.statusCode, 200);

  const grew = (afterHeap - before) / 1024 / 1024;
  // With --expose-gc the heap is compared after full collections; without, after a settle,
  // so the bound is generous (a leak of the bodies sent, ~1 GB in all, would pass it by far).
  const bound = gc === undefined ? 64 : 16;
  t.diagnostic(
    `answers: ${[...tally.byStatus].map(([s, n]) => `${s}×${n}`).join(' ')}; patched ${tally.patched}, ` +
      `allowed unpatched ${tally.allowed}, rejected ${tally.rejected}; cases ${[...kinds].map(([k, n]) => `${k} ${n}`).join(', ')}; ` +
      `heap ${(before / 1024 / 1024).toFixed(1)} → ${(afterHeap / 1024 / 1024).toFixed(1)} MB (${gc === undefined ? 'no gc exposed' : 'after gc'})`,
  );
  assert.ok(grew < bound, `heap grew ${grew.toFixed(1)} MB over ${CASES} requests (bound ${bound} MB)`);
  // Every kind of hostile input was sent, and every outcome reached.
  for (const k of ['wrong-type', 'delete', 'number', 'huge-labels', 'deep', 'bad-utf8', 'random', 'cut']) {
    assert.ok((kinds.get(k) ?? 0) >= 10, `${k} cases: ${kinds.get(k) ?? 0}`);
  }
  assert.ok(tally.patched > 50, `patched answers: ${tally.patched}`);
  assert.ok(tally.allowed > 50, `unpatched answers: ${tally.allowed}`);
  assert.ok(tally.rejected > 50, `4xx answers: ${tally.rejected}`);
});
