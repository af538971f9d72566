import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../common/logging.js';
import { buildApp, BODY_LIMIT } from './app.js';
import { createWebhookMetrics } from './metrics.js';
import { KEY_TRACK } from '../common/contract.js';
import { admit, type JsonObject, type mutatePod } from './mutate.js';
import { decodePatch, podReview } from '../test-support/webhook.js';

const mutateOpts = { readinessGateNamespaces: new Set<string>() };

function app(mutator?: typeof mutatePod) {
  const metrics = createWebhookMetrics({ processMetrics: false });
  const a = buildApp({
    logger: silentLogger(),
    metrics,
    mutate: mutateOpts,
    mutator,
  });
  return { a, metrics };
}

const json = { 'content-type': 'application/json' };

test('POST /mutate answers an AdmissionReview with the patch', async (t) => {
  const { a } = app();
  t.after(() => a.close());
  const res = await a.inject({ method: 'POST', url: '/mutate', headers: json, payload: podReview() });
  assert.equal(res.statusCode, 200);
  const body = res.json<{ apiVersion: string; kind: string; response: { uid: string; patchType: string } }>();
  assert.equal(body.apiVersion, 'admission.k8s.io/v1');
  assert.equal(body.kind, 'AdmissionReview');
  assert.equal(body.response.uid, '705ab4f5-6393-11e8-b7cc-42010a800002');
  assert.equal(body.response.patchType, 'JSONPatch');
});

test('bad input gets a 4xx with a clear message, never a 5xx', async (t) => {
  const { a, metrics } = app();
  t.after(() => a.close());
  const cases: {
    name: string;
    headers: Record<string, string>;
    payload: string;
    status: number;
    code: string;
    re: RegExp;
  }[] = [
    {
      name: 'malformed JSON',
      headers: json,
      payload: '{"apiVersion": ',
      status: 400,
      code: 'PT_ADMISSION_BAD_JSON',
      re: /JSON/,
    },
    {
      name: 'empty body',
      headers: json,
      payload: '',
      status: 400,
      code: 'PT_ADMISSION_BAD_JSON',
      re: /empty/,
    },
    {
      name: 'wrong apiVersion',
      headers: json,
      payload: JSON.stringify({ ...podReview(), apiVersion: 'v1' }),
      status: 400,
      code: 'PT_ADMISSION_BAD_REVIEW',
      re: /apiVersion must be admission.k8s.io\/v1/,
    },
    {
      name: 'missing request',
      headers: json,
      payload: JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }),
      status: 400,
      code: 'PT_ADMISSION_BAD_REVIEW',
      re: /request is missing/,
    },
    {
      name: 'not JSON content type',
      headers: { 'content-type': 'text/plain' },
      payload: 'hello',
      status: 415,
      code: 'PT_ADMISSION_BAD_CONTENT_TYPE',
      re: /application\/json/,
    },
    {
      name: 'body over 3 MiB',
      headers: json,
      payload: JSON.stringify({ ...podReview(), pad: 'x'.repeat(BODY_LIMIT) }),
      status: 413,
      code: 'PT_ADMISSION_TOO_LARGE',
      re: /too large/,
    },
  ];
  for (const c of cases) {
    const res = await a.inject({ method: 'POST', url: '/mutate', headers: c.headers, payload: c.payload });
    assert.equal(res.statusCode, c.status, c.name);
    const body = res.json<{ code: string; message: string }>();
    assert.equal(body.code, c.code, c.name);
    assert.match(body.message, c.re, c.name);
  }
  const text = await metrics.registry.metrics();
  assert.match(text, /pulltrace_webhook_requests_total\{outcome="bad_request"\} 6/);
});

test('an internal fault still admits the pod (HTTP 200, allowed, warning)', async (t) => {
  const { a, metrics } = app(() => {
    throw new TypeError('unexpected');
  });
  t.after(() => a.close());
  const res = await a.inject({ method: 'POST', url: '/mutate', headers: json, payload: podReview() });
  assert.equal(res.statusCode, 200);
  const body = res.json<{ response: { allowed: boolean; patch?: string; warnings: string[] } }>();
  assert.equal(body.response.allowed, true);
  assert.equal(body.response.patch, undefined);
  assert.equal(body.response.warnings.length, 1);
  assert.match(await metrics.registry.metrics(), /pulltrace_webhook_requests_total\{outcome="error"\} 1/);
});

test('the admission port serves /mutate only; its requests are counted in the metrics', async (t) => {
  const { a, metrics } = app();
  t.after(() => a.close());
  await a.inject({ method: 'POST', url: '/mutate', headers: json, payload: podReview() });
  // Health, readiness and metrics are served once, on the side port (common/metrics-server.ts).
  for (const path of ['/healthz', '/readyz', '/metrics'])
    assert.equal((await a.inject(path)).statusCode, 404, path);
  const m = await metrics.registry.metrics();
  assert.match(m, /pulltrace_webhook_requests_total\{outcome="patched"\} 1/);
  assert.match(m, /pulltrace_webhook_patches_total 1/);
  assert.match(m, /pulltrace_webhook_request_duration_seconds_count\{outcome="patched"\} 1/);
  assert.equal((await a.inject('/nope')).statusCode, 404);
});

test('the served answer is exactly the review admit() decides (the response schema drops nothing)', async (t) => {
  const failing: typeof mutatePod = () => {
    throw new TypeError('unexpected');
  };
  const cases: [string, JsonObject, typeof mutatePod | undefined][] = [
    ['patched', podReview(), undefined],
    [
      'opted out',
      podReview((pod) => {
        (pod.metadata as JsonObject).labels = { [KEY_TRACK]: 'false' };
      }),
      undefined,
    ],
    [
      'skipped',
      podReview((_pod, request) => {
        request.operation = 'UPDATE';
      }),
      undefined,
    ],
    ['error, with a warning', podReview(), failing],
  ];
  for (const [name, review, mutator] of cases) {
    const { a } = app(mutator);
    t.after(() => a.close());
    const res = await a.inject({ method: 'POST', url: '/mutate', headers: json, payload: review });
    assert.equal(res.statusCode, 200, name);
    assert.deepEqual(res.json(), admit(review, mutateOpts, mutator).review, name);
  }
});

test('"__proto__" and "constructor" keys in the review are plain data: answered, nothing polluted', async (t) => {
  const { a } = app();
  t.after(() => a.close());
  // JSON.stringify cannot write a "__proto__" key from an object literal; splice it into the text.
  const payload = JSON.stringify(podReview()).replace(
    '"labels":{',
    '"labels":{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}},',
  );
  assert.match(payload, /"__proto__":\{"polluted"/);
  const res = await a.inject({ method: 'POST', url: '/mutate', headers: json, payload });
  assert.equal(res.statusCode, 200, res.body);
  assert.deepEqual(decodePatch(res.json()), [
    { op: 'add', path: '/metadata/labels/pulltrace.io~1tracked', value: 'true' },
  ]);
  assert.equal((Object.prototype as Record<string, unknown>).polluted, undefined);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});
