// The control-plane stand-in's fault hook: the rule's matching, count and time limits, the v1
// Status bodies and Retry-After header on the wire, and what real clients make of them (the
// agent's error classification over @kubernetes/client-node, and kubectl's own 429 retries).
import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import { CoreV1Api, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { classify } from '../../node-agent/publisher/kube-writer.js';
import { startControlPlane, type ControlPlane } from './control-plane.js';
import { createFaults, parseFaultPath, type FaultRequest } from './faults.js';
import { kubectlFor, type Kubectl } from './kubectl.js';

let cp: ControlPlane;
let k: Kubectl;
let core: CoreV1Api;

before(async () => {
  cp = await startControlPlane();
  k = kubectlFor(cp.kubeconfigPath);
  const kc = new KubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);
  core = kc.makeApiClient(CoreV1Api);
  await cp.store.pods.create({
    metadata: { name: 'web', namespace: 'default' },
    spec: { containers: [{ name: 'c', image: 'nginx:1.27' }] },
  });
});

after(async () => {
  k.cleanup();
  await cp.stop();
});

beforeEach(() => {
  cp.faults.clear();
});

const isPulltracePatch = (r: FaultRequest) =>
  r.method === 'PATCH' && r.query.get('fieldManager') === 'pulltrace';

async function patchAsAgent(label: string): Promise<void> {
  await core.patchNamespacedPod(
    {
      name: 'web',
      namespace: 'default',
      body: { metadata: { labels: { x: label } } },
      fieldManager: 'pulltrace',
    },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
}

test('parseFaultPath names the resource, object and subresource of REST paths', () => {
  assert.deepEqual(parseFaultPath('/api/v1/namespaces/ns/pods/web/status'), {
    resource: 'pods',
    name: 'web',
    subresource: 'status',
  });
  assert.deepEqual(parseFaultPath('/api/v1/namespaces/ns/events'), { resource: 'events' });
  assert.deepEqual(parseFaultPath('/apis/apps/v1/namespaces/ns/deployments/d/scale'), {
    resource: 'deployments',
    name: 'd',
    subresource: 'scale',
  });
  assert.deepEqual(parseFaultPath('/api/v1/pods'), { resource: 'pods' });
  assert.deepEqual(parseFaultPath('/version'), {});
});

test('a rule ends after `count` answers, or `forMs`, or clear()', () => {
  let t = 1000;
  const f = createFaults(() => t);
  const req: FaultRequest = {
    method: 'GET',
    path: '/api/v1/pods',
    query: new URLSearchParams(),
    headers: {},
  };
  assert.equal(f.check(req), null, 'no rule: served');
  f.set({ status: 500, count: 2 });
  assert.equal(f.check(req)?.code, 500);
  assert.equal(f.check(req)?.code, 500);
  assert.equal(f.check(req), null, 'count used up');
  assert.equal(f.active(), false);
  assert.equal(f.answered().length, 2);

  f.set({ status: 503, forMs: 100, match: (r) => r.method === 'GET' });
  assert.equal(f.answered().length, 0, 'set() starts a new list');
  assert.equal(f.check({ ...req, method: 'POST' }), null, 'not matched');
  assert.equal(f.check(req)?.code, 503);
  t += 100;
  assert.equal(f.check(req), null, 'time is up');

  f.set({ status: 409 });
  assert.equal(f.check(req)?.code, 409);
  f.clear();
  assert.equal(f.check(req), null);
  assert.equal(f.answered().length, 1, 'clear() keeps the list');
  assert.throws(() => f.set({ status: 404 as 409 }), /fault status must be one of/);
});

test('429: TooManyRequests Status with Retry-After, nothing reaches the store', async () => {
  cp.faults.set({
    status: 429,
    retryAfterSeconds: 3,
    match: (r) => r.resource === 'pods' && r.method === 'PATCH',
  });
  const before = cp.store.pods.get({ namespace: 'default', name: 'web' }).metadata?.resourceVersion;
  const res = await fetch(`${cp.url}/api/v1/namespaces/default/pods/web`, {
    method: 'PATCH',
    headers: { 'content-type': 'application/merge-patch+json' },
    body: JSON.stringify({ metadata: { labels: { a: 'b' } } }),
  });
  assert.equal(res.status, 429);
  assert.equal(res.headers.get('retry-after'), '3');
  assert.deepEqual(await res.json(), {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: 'Too many requests, please try again later.',
    reason: 'TooManyRequests',
    code: 429,
    details: { name: 'web', kind: 'pods', retryAfterSeconds: 3 },
  });
  assert.equal(cp.store.pods.get({ namespace: 'default', name: 'web' }).metadata?.resourceVersion, before);
  const get = await fetch(`${cp.url}/api/v1/namespaces/default/pods/web`);
  assert.equal(get.status, 200, 'requests the rule does not match are served');
  assert.deepEqual(
    cp.faults.answered().map((h) => [h.method, h.path, h.status]),
    [['PATCH', '/api/v1/namespaces/default/pods/web', 429]],
  );
});

test("the agent's classification of each fault through @kubernetes/client-node", async () => {
  const cases = [
    { status: 429 as const, retryAfterSeconds: 2, want: { kind: 'retry', afterMs: 2000 }, re: /HTTP 429/ },
    { status: 500 as const, want: { kind: 'retry', afterMs: 1000 }, re: /HTTP 500/ },
    { status: 503 as const, want: { kind: 'retry', afterMs: 1000 }, re: /HTTP 503/ },
    { status: 409 as const, want: { kind: 'retry', afterMs: 200 }, re: /HTTP 409.*modified/s },
  ];
  for (const c of cases) {
    cp.faults.set({
      status: c.status,
      match: isPulltracePatch,
      count: 1,
      ...(c.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: c.retryAfterSeconds }),
    });
    const err = await patchAsAgent(`v${c.status}`).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(err !== null, `${c.status}: the patch failed`);
    const got = classify(err);
    assert.equal(got.kind, c.want.kind, `${c.status}`);
    assert.equal(got.kind === 'retry' ? got.afterMs : -1, c.want.afterMs, `${c.status}`);
    assert.match(got.kind === 'retry' ? got.message : '', c.re);
    await patchAsAgent(`ok${c.status}`);
    assert.equal(
      cp.store.pods.get({ namespace: 'default', name: 'web' }).metadata?.labels?.x,
      `ok${c.status}`,
      'count: 1 lets the next one through',
    );
  }
});

test('kubectl: a 500 is printed as the server error; a 429 with Retry-After is retried by client-go', async () => {
  cp.faults.set({ status: 500, match: (r) => r.resource === 'pods' && r.method === 'GET' });
  const failed = await k.run(['get', 'pods', '-n', 'default']);
  assert.notEqual(failed.code, 0);
  assert.match(failed.stderr, /Error from server \(InternalError\).*Internal error occurred: injected fault/);

  cp.faults.set({
    status: 429,
    retryAfterSeconds: 1,
    count: 2,
    match: (r) => r.resource === 'pods' && r.method === 'GET',
  });
  const ok = await k.run(['get', 'pods', '-n', 'default', '-o', 'name']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /pod\/web/);
  const hits = cp.faults.answered();
  assert.equal(hits.length, 2, 'both 429s were answered, then kubectl got through');
  const gap = (hits[1]?.at ?? 0) - (hits[0]?.at ?? 0);
  assert.ok(gap >= 900, `kubectl waited for Retry-After between its tries (${gap} ms)`);
});
