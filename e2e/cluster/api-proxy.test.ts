// The API proxy's fault rules (faults.ts) and the proxy itself (api-proxy.ts) in front of the real
// kube-apiserver: the rule's matching, count and time limits; the v1 Status bodies and
// Retry-After header on the wire, for matching requests only (the rest reach the real API server);
// and what real clients make of them (the agent's error classification over
// @kubernetes/client-node, and kubectl's own retries). Clients use a ServiceAccount token: the
// proxy cannot forward a client certificate.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { request } from 'node:https';
import { json } from 'node:stream/consumers';
import { after, before, beforeEach, describe, test } from 'node:test';
import { CoreV1Api, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { classify } from '../../node-agent/publisher/kube-writer.js';
import { waitFor } from '../../test-support/net.js';
import { startApiProxy, type ApiProxy } from './api-proxy.js';
import { startCluster, type Cluster } from './cluster.js';
import { createFaults, parseFaultPath, type FaultRequest, type FaultStatus } from './faults.js';
import { kubectlFor, type Kubectl } from './kubectl.js';

const NS = 'proxied';
const SA = 'faulty-client';
const PODS_PATH = `/api/v1/namespaces/${NS}/pods`;
const POD_PATH = `${PODS_PATH}/web`;
const MERGE = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const GET_PODS: FaultRequest = {
  method: 'GET',
  path: '/api/v1/pods',
  query: new URLSearchParams(),
  headers: {},
};

test('parseFaultPath names the resource, object and subresource of REST paths', () => {
  const cases: [string, ReturnType<typeof parseFaultPath>][] = [
    ['/api/v1/namespaces/ns/pods/web/status', { resource: 'pods', name: 'web', subresource: 'status' }],
    ['/api/v1/namespaces/ns/events', { resource: 'events' }],
    [
      '/apis/apps/v1/namespaces/ns/deployments/d/scale',
      { resource: 'deployments', name: 'd', subresource: 'scale' },
    ],
    ['/api/v1/pods', { resource: 'pods' }],
    ['/api/v1/watch/namespaces/ns/pods/web', { resource: 'pods', name: 'web' }],
    ['/api/v1/namespaces/ns', { resource: 'namespaces', name: 'ns' }],
    ['/version', {}],
    ['/apis/apps/v1', {}],
  ];
  for (const [path, want] of cases) assert.deepEqual(parseFaultPath(path), want, path);
});

test('a rule ends after `count` answers, or `forMs`, or clear()', () => {
  let t = 1000;
  const f = createFaults(() => t);
  const req = GET_PODS;
  assert.equal(f.check(req), null, 'no rule: served');
  assert.equal(f.active(), false);
  f.set({ status: 500, count: 2 });
  assert.equal(f.active(), true);
  assert.equal(f.check(req)?.code, 500);
  assert.equal(f.check(req)?.code, 500);
  assert.equal(f.check(req), null, 'count used up');
  assert.equal(f.active(), false);
  const hit = [1000, 'GET', '/api/v1/pods', 500];
  assert.deepEqual(
    f.answered().map((h) => [h.at, h.method, h.path, h.status]),
    [hit, hit],
  );

  f.set({ status: 503, forMs: 100, match: (r) => r.method === 'GET' });
  assert.equal(f.answered().length, 0, 'set() starts a new list');
  assert.equal(f.check({ ...req, method: 'POST' }), null, 'not matched');
  t += 99;
  assert.equal(f.check(req)?.code, 503);
  t += 1;
  assert.equal(f.check(req), null, 'time is up');
  assert.equal(f.active(), false);

  f.set({ status: 409 });
  assert.equal(f.check(req)?.code, 409);
  f.clear();
  assert.equal(f.active(), false);
  assert.equal(f.check(req), null);
  assert.equal(f.answered().length, 1, 'clear() keeps the list');
});

test('set() refuses a status, count or forMs it cannot honour, and keeps the rule in force', () => {
  const f = createFaults(() => 0);
  f.set({ status: 429 });
  const refused = (message: string | RegExp) => ({ name: 'RangeError', message });
  assert.throws(
    () => f.set({ status: 404 as FaultStatus }),
    refused('fault status must be one of 409, 429, 500, 503, 504'),
  );
  assert.throws(() => f.set({ status: 500, count: -1 }), refused(/count must be ≥ 0/));
  assert.throws(() => f.set({ status: 500, count: NaN }), refused(/count must be ≥ 0/));
  assert.throws(() => f.set({ status: 500, forMs: -5 }), refused(/forMs must be ≥ 0/));
  assert.equal(f.check(GET_PODS)?.code, 429, 'the rule set before the refused ones is still in force');
  f.set({ status: 500, count: 0 });
  assert.equal(f.active(), false, 'count 0 answers nothing');
  assert.equal(f.check(GET_PODS), null);
});

// ---------------------------------------------------------------------------------------------
// Through the proxy, in front of a real kube-apiserver.

let cluster: Cluster;
let proxy: ApiProxy;
let token: string;
let ca: Buffer;
/** Straight to the API server, as admin: what the API server really holds. */
let admin: CoreV1Api;
/** Through the proxy, with the ServiceAccount's token (as the node agent). */
let viaProxy: CoreV1Api;
let k: Kubectl;
const cleanups: (() => unknown)[] = [];

function client(kubeconfigPath: string): CoreV1Api {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  return kc.makeApiClient(CoreV1Api);
}

/** One HTTPS request to the proxy with the token, no client library in between. */
async function send(method: string, path: string, body?: object) {
  const headers = {
    authorization: `Bearer ${token}`,
    accept: 'application/json',
    ...(body === undefined ? {} : { 'content-type': 'application/merge-patch+json' }),
  };
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = request(new URL(path, proxy.url), { method, ca, agent: false, headers }, resolve);
    req.once('error', reject).end(body === undefined ? undefined : JSON.stringify(body));
  });
  return {
    status: res.statusCode ?? 0,
    headers: res.headers,
    body: (await json(res)) as Record<string, unknown>,
  };
}

/** A ServiceAccount that may read and patch pods in NS (and nothing else), and a token for it. */
async function serviceAccountToken(): Promise<string> {
  const ka = kubectlFor(cluster.kubeconfigPath);
  try {
    for (const args of [
      ['create', 'namespace', NS],
      ['create', 'serviceaccount', SA, '-n', NS],
      ['create', 'role', 'pods-rw', '-n', NS, '--verb=get,list,watch,patch', '--resource=pods'],
      ['create', 'rolebinding', 'pods-rw', '-n', NS, '--role=pods-rw', `--serviceaccount=${NS}:${SA}`],
      ['create', 'token', SA, '-n', NS, '--duration=1h'],
    ]) {
      const r = await ka.run(args);
      assert.equal(r.code, 0, `kubectl ${args.join(' ')}: ${r.stderr}`);
      if (args[1] === 'token') return r.stdout.trim();
    }
    throw new Error('unreachable');
  } finally {
    ka.cleanup();
  }
}

async function setUp(): Promise<void> {
  cluster = await startCluster({ scheduler: false });
  cleanups.push(() => cluster.stop());
  ca = readFileSync(cluster.caPath);
  admin = client(cluster.kubeconfigPath);
  token = await serviceAccountToken();
  assert.match(token, /^ey/);
  await admin.createNamespacedPod({
    namespace: NS,
    body: { metadata: { name: 'web' }, spec: { containers: [{ name: 'c', image: 'registry.test/web:1' }] } },
  });
  proxy = await startApiProxy(cluster);
  cleanups.push(() => proxy.stop());
  const kubeconfig = proxy.kubeconfigFor('client', { token, namespace: NS });
  viaProxy = client(kubeconfig);
  k = kubectlFor(kubeconfig);
  cleanups.push(() => k.cleanup());
  // The RoleBinding reaches the RBAC authorizer's cache within moments; wait for it.
  const readable = async () => (await send('GET', POD_PATH)).status === 200;
  await waitFor('the token may read pods through the proxy', readable, 30_000, 100);
}

const podVersion = async () =>
  (await admin.readNamespacedPod({ name: 'web', namespace: NS })).metadata?.resourceVersion;

/** The agent's metadata patch through the proxy: null, or the error client-node threw. */
async function patchAsAgent(label: string, name = 'web', namespace = NS): Promise<unknown> {
  const body = { metadata: { labels: { x: label } } };
  return viaProxy.patchNamespacedPod({ name, namespace, body, fieldManager: 'pulltrace' }, MERGE).then(
    () => null,
    (e: unknown) => e,
  );
}

async function wire429(): Promise<void> {
  proxy.faults.set({
    status: 429,
    retryAfterSeconds: 3,
    match: (r) => r.resource === 'pods' && r.method === 'PATCH',
  });
  const rv = await podVersion();
  const res = await send('PATCH', POD_PATH, { metadata: { labels: { a: 'b' } } });
  assert.equal(res.status, 429);
  assert.equal(res.headers['retry-after'], '3');
  assert.deepEqual(res.body, {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: 'Too many requests, please try again later.',
    reason: 'TooManyRequests',
    code: 429,
    details: { name: 'web', kind: 'pods', retryAfterSeconds: 3 },
  });
  assert.equal(await podVersion(), rv, 'the patch never reached the API server');
  const get = await send('GET', POD_PATH);
  assert.equal(get.status, 200, 'requests the rule does not match are served');
  assert.equal((get.body.metadata as { resourceVersion?: string }).resourceVersion, rv, 'by the API server');
  const version = await send('GET', '/version');
  assert.equal(version.status, 200);
  assert.match(String(version.body.gitVersion), /^v1\.\d+\.\d+/);
  assert.deepEqual(
    proxy.faults.answered().map((h) => [h.method, h.path, h.status]),
    [['PATCH', POD_PATH, 429]],
  );
  assert.deepEqual(
    proxy.requests().map((r) => [r.method, r.path, r.status, r.faulted]),
    [
      ['PATCH', POD_PATH, 429, true],
      ['GET', POD_PATH, 200, false],
      ['GET', '/version', 200, false],
    ],
  );
}

const STALE = 'the object has been modified; please apply your changes to the latest version and try again';
/** Each status's reason, message and details beyond the object's name and kind. */
const STATUS_CASES: [FaultStatus, string, string, object][] = [
  [409, 'Conflict', `Operation cannot be fulfilled on pods "web": ${STALE}`, {}],
  [
    500,
    'InternalError',
    'Internal error occurred: injected fault',
    { causes: [{ message: 'injected fault' }] },
  ],
  [
    503,
    'ServiceUnavailable',
    'the server is currently unable to handle the request',
    { retryAfterSeconds: 2 },
  ],
  [504, 'Timeout', 'Timeout: request did not complete within the allotted timeout', {}],
];

async function wireEachStatus(): Promise<void> {
  const rv = await podVersion();
  for (const [code, reason, message, extra] of STATUS_CASES) {
    proxy.faults.set({ status: code, retryAfterSeconds: 2, match: (r) => r.method === 'PATCH' });
    const res = await send('PATCH', POD_PATH, { metadata: { labels: { a: 'b' } } });
    assert.equal(res.status, code);
    const retryAfter = code === 503 ? '2' : undefined;
    assert.equal(res.headers['retry-after'], retryAfter, `${code}: Retry-After only on 429 and 503`);
    const details = { name: 'web', kind: 'pods', ...extra };
    const want = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', code, reason, message };
    assert.deepEqual(res.body, { ...want, details }, `${code}`);
  }
  proxy.faults.set({ status: 500, message: 'etcd is on fire', match: (r) => r.path === POD_PATH });
  const custom = await send('PATCH', POD_PATH, { metadata: { labels: { a: 'b' } } });
  assert.equal(custom.body.message, 'etcd is on fire');
  assert.equal(await podVersion(), rv, 'no faulted patch reached the API server');
  assert.equal((await send('GET', PODS_PATH)).status, 200, 'other requests are served');
  assert.equal(proxy.requests().filter((r) => r.faulted).length, STATUS_CASES.length + 1);
}

const isPulltracePatch = (r: FaultRequest) =>
  r.method === 'PATCH' && r.query.get('fieldManager') === 'pulltrace';

const CLASSIFY_CASES = [
  { status: 429 as const, retryAfterSeconds: 2, afterMs: 2000, re: /^HTTP 429: Too many requests, please/ },
  { status: 500 as const, afterMs: 1000, re: /^HTTP 500: Internal error occurred: injected fault$/ },
  { status: 503 as const, afterMs: 1000, re: /^HTTP 503: the server is currently unable/ },
  { status: 504 as const, afterMs: 1000, re: /^HTTP 504: Timeout: request did not complete/ },
  { status: 409 as const, afterMs: 200, re: /^HTTP 409: Operation cannot be fulfilled on pods "web": the/ },
];

async function classifyEachFault(): Promise<void> {
  for (const c of CLASSIFY_CASES) {
    proxy.faults.set({
      status: c.status,
      match: isPulltracePatch,
      count: 1,
      ...(c.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: c.retryAfterSeconds }),
    });
    const err = await patchAsAgent(`v${c.status}`);
    assert.ok(err !== null, `${c.status}: the patch failed`);
    const got = classify(err);
    assert.equal(got.kind, 'retry', `${c.status}`);
    assert.equal(got.afterMs, c.afterMs, `${c.status}`);
    assert.equal(got.retryAfter === true, c.status === 429, `${c.status}: the server's own delay`);
    assert.match(got.message, c.re);
    assert.equal(await patchAsAgent(`ok${c.status}`), null, `${c.status}: count 1 lets the next one through`);
    const pod = await admin.readNamespacedPod({ name: 'web', namespace: NS });
    assert.equal(pod.metadata?.labels?.x, `ok${c.status}`, 'and the API server stored it');
  }
}

async function classifyRealErrors(): Promise<void> {
  const missing = await patchAsAgent('x', 'no-such-pod');
  assert.deepEqual(classify(missing), { kind: 'gone' }, "the real API server's 404");
  const forbidden = classify(await patchAsAgent('x', 'web', 'default'));
  assert.equal(forbidden.kind, 'fatal', "the real API server's RBAC 403");
  assert.match(
    forbidden.message,
    /^HTTP 403: pods "web" is forbidden: User "system:serviceaccount:proxied:faulty-client" cannot patch/,
  );
  assert.deepEqual(
    proxy.requests().map((r) => [r.status, r.faulted]),
    [
      [404, false],
      [403, false],
    ],
  );
}

const podGets = (r: FaultRequest) => r.resource === 'pods' && r.method === 'GET';

async function kubectlPrints5xx(): Promise<void> {
  const cases = [
    { status: 500 as const, re: /^Error from server \(InternalError\): Internal error occurred: injected/ },
    { status: 504 as const, re: /^Error from server \(Timeout\): Timeout: request did not complete/ },
  ];
  for (const c of cases) {
    proxy.faults.set({ status: c.status, match: podGets });
    const failed = await k.run(['get', 'pods']);
    assert.equal(failed.code, 1, `${c.status}`);
    assert.match(failed.stderr, c.re);
    assert.equal(proxy.faults.answered().length, 1, `${c.status}: without Retry-After, not retried`);
  }
}

/** kubectl's tries of `get pods` answered by the rule, and the one that got through. */
async function kubectlRetries(rule: { status: 429 | 503; count: number }): Promise<number[]> {
  proxy.clearRequests();
  proxy.faults.set({ ...rule, retryAfterSeconds: 1, match: podGets });
  const ok = await k.run(['get', 'pods', '-o', 'name']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stdout, 'pod/web\n');
  const tries = proxy.requests().filter((r) => r.path === PODS_PATH);
  assert.deepEqual(
    tries.map((r) => [r.status, r.faulted]),
    [...Array.from({ length: rule.count }, () => [rule.status, true]), [200, false]],
    `${rule.status}: answered ${rule.count} times, then the API server's answer`,
  );
  return tries.map((r) => r.at);
}

async function kubectlHonoursRetryAfter(): Promise<void> {
  for (const rule of [
    { status: 429 as const, count: 2 },
    { status: 503 as const, count: 1 },
  ]) {
    const at = await kubectlRetries(rule);
    for (let i = 1; i < at.length; i++) {
      const gap = at[i]! - at[i - 1]!;
      assert.ok(gap >= 900, `${rule.status}: kubectl waited for Retry-After: 1 between tries (${gap} ms)`);
    }
  }
}

async function kubectlGivesUp(): Promise<void> {
  proxy.faults.set({ status: 429, retryAfterSeconds: 0, match: podGets });
  const failed = await k.run(['get', 'pods'], { timeoutMs: 120_000 });
  assert.equal(failed.code, 1);
  const said = 'Error from server (TooManyRequests): Too many requests, please try again later.\n';
  assert.equal(failed.stderr, said);
  assert.equal(proxy.faults.answered().length, 11, 'one try and client-go’s 10 retries');
}

describe('through the proxy, in front of the real API server', { timeout: 300_000 }, () => {
  before(setUp, { timeout: 180_000 });
  after(async () => {
    for (const fn of cleanups.reverse()) await fn();
  });
  beforeEach(() => {
    proxy.faults.clear();
    proxy.clearRequests();
  });
  test('429: a TooManyRequests Status with Retry-After; the rest reach the API server', wire429);
  test('409, 500, 503, 504: their Status bodies, Retry-After on 503 only; a message', wireEachStatus);
  test("the agent's classification of each fault through @kubernetes/client-node", classifyEachFault);
  test("the API server's own 404 and 403 pass through: gone and fatal", classifyRealErrors);
  test('kubectl: a 500 or 504 without Retry-After is printed, not retried', kubectlPrints5xx);
  test('kubectl: a 429 or 503 with Retry-After is retried after that delay', kubectlHonoursRetryAfter);
  test('kubectl: a 429 that never ends fails after client-go’s 10 retries', kubectlGivesUp);
});
