// Mutating admission through the control-plane stand-in: the real webhook (webhook/, over TLS
// with a certificate from certs/make-certs.sh), MutatingWebhookConfigurations applied with the
// real kubectl, pods created with the real kubectl. A second small HTTPS server stands in for
// "some other webhook" where a case needs one (denials, bad answers, reinvocation order).
import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { stringify } from 'yaml';
import {
  ANNOTATION_READINESS_GATE,
  CONDITION_IMAGES_PULLED,
  KEY_TRACK,
  LABEL_TRACKED,
} from '../../common/contract.js';
import { silentLogger } from '../../common/logging.js';
import { buildApp } from '../../webhook/app.js';
import { createWebhookMetrics, type WebhookMetrics } from '../../webhook/metrics.js';
import { makeCerts, type CertDir } from '../../test-support/webhook.js';
import { readKeyPair } from '../../webhook/tls.js';
import { ruleMatches, webhookAdmission, type MutatingWebhook, type WebhookRule } from './admission.js';
import { startControlPlane, type ControlPlane } from './control-plane.js';
import { kubectlFor, type Kubectl } from './kubectl.js';
import { MUTATING_WEBHOOK_CONFIGURATIONS } from './resources.js';
import type { AdmissionInput, AdmitHook } from './store.js';
import type { JsonObject, KubeObject, Pod } from './types.js';

const WEBHOOK = 'pods.pulltrace.io';

let certs: CertDir;
let otherCa: CertDir;
let webhook: FastifyInstance;
let metrics: WebhookMetrics;
let webhookUrl: string;
let other: FixtureWebhook;
let hung: FixtureWebhook;
let hook: AdmitHook;
let cp: ControlPlane;
let k: Kubectl;
let dir: string;

/** An HTTPS server answering reviews with `answer` (or never, for timeouts); records what it got. */
interface FixtureWebhook {
  url: string;
  requests: { url: string; review: JsonObject }[];
  answer: ((review: JsonObject) => unknown) | null;
  close(): Promise<void>;
}

async function startFixtureWebhook(answer: FixtureWebhook['answer']): Promise<FixtureWebhook> {
  const fixture: Partial<FixtureWebhook> & Pick<FixtureWebhook, 'requests' | 'answer'> = {
    requests: [],
    answer,
  };
  const server: Server = createServer(
    { cert: readFileSync(certs.cert), key: readFileSync(certs.key) },
    (req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const review = JSON.parse(body) as JsonObject;
        fixture.requests.push({ url: req.url ?? '', review });
        if (fixture.answer === null) return; // never answers
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(fixture.answer(review)));
      });
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fixture.url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/mutate`;
  fixture.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return fixture as FixtureWebhook;
}

/** The AdmissionReview answer the fixture gives: allowed, with `ops` as its patch if any. */
function allow(review: JsonObject, ops?: unknown[]): JsonObject {
  const uid = (review.request as JsonObject).uid;
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: {
      uid,
      allowed: true,
      ...(ops === undefined
        ? {}
        : { patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(ops)).toString('base64') }),
    },
  };
}

before(async () => {
  certs = makeCerts();
  otherCa = makeCerts();
  dir = mkdtempSync(join(tmpdir(), 'pt-admission-'));
  metrics = createWebhookMetrics({ processMetrics: false });
  webhook = buildApp({
    logger: silentLogger(),
    metrics,
    mutate: { readinessGateNamespaces: new Set() },
    tls: await readKeyPair(certs.cert, certs.key),
  });
  await webhook.listen({ host: '127.0.0.1', port: 0 });
  webhookUrl = `https://127.0.0.1:${(webhook.server.address() as AddressInfo).port}/mutate`;
  other = await startFixtureWebhook((review) => allow(review));
  hung = await startFixtureWebhook(null);
  // The hook reads the configurations from the store the control plane makes.
  hook = webhookAdmission(() => cp.store);
  cp = await startControlPlane({ admit: hook });
  k = kubectlFor(cp.kubeconfigPath);
});

after(async () => {
  k.cleanup();
  await cp.stop();
  await Promise.all([webhook.close(), other.close(), hung.close()]);
  certs.cleanup();
  otherCa.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  other.requests.length = 0;
  other.answer = (review) => allow(review);
  hung.requests.length = 0;
});

function name(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString('hex')}`;
}

/** The pulltrace webhook as the chart would configure it (timeoutSeconds left to its default), pointed at the test's webhook. */
function pulltraceWebhook(overrides: Partial<MutatingWebhook> = {}): MutatingWebhook {
  return {
    name: WEBHOOK,
    admissionReviewVersions: ['v1'],
    sideEffects: 'None',
    failurePolicy: 'Ignore',
    clientConfig: { url: webhookUrl, caBundle: certs.caBundle },
    rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
    ...overrides,
  };
}

/** Replaces every MutatingWebhookConfiguration with these, applied in this order with kubectl. */
async function configure(...configs: { name: string; webhooks: MutatingWebhook[] }[]): Promise<void> {
  for (const c of cp.store.list(MUTATING_WEBHOOK_CONFIGURATIONS).items) {
    await cp.store.delete(MUTATING_WEBHOOK_CONFIGURATIONS, { name: c.metadata?.name ?? '' });
  }
  for (const c of configs) {
    const file = join(dir, `${c.name}.yaml`);
    writeFileSync(
      file,
      stringify({
        apiVersion: 'admissionregistration.k8s.io/v1',
        kind: 'MutatingWebhookConfiguration',
        metadata: { name: c.name },
        webhooks: c.webhooks,
      }),
    );
    const r = await k.run(['apply', '-f', file]);
    assert.equal(r.code, 0, r.stderr);
  }
}

interface PodOptions {
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

function writePodYaml(n: string, opts: PodOptions = {}): string {
  const file = join(dir, `${n}.yaml`);
  writeFileSync(
    file,
    stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: n,
        ...(opts.namespace === undefined ? {} : { namespace: opts.namespace }),
        labels: opts.labels ?? { app: 'web' },
        ...(opts.annotations === undefined ? {} : { annotations: opts.annotations }),
      },
      spec: { containers: [{ name: 'c', image: 'registry.test/app:1' }] },
    }),
  );
  return file;
}

/** `kubectl create -f pod.yaml`; resolves to the stored pod. */
async function createPod(n: string, opts: PodOptions = {}): Promise<Pod> {
  const r = await k.run(['create', '-f', writePodYaml(n, opts)]);
  assert.equal(r.code, 0, r.stderr);
  return cp.store.pods.get({ namespace: opts.namespace ?? 'default', name: n });
}

/** `kubectl create -f pod.yaml` that must fail; resolves to kubectl's stderr. */
async function createPodFails(n: string, opts: PodOptions = {}): Promise<string> {
  const r = await k.run(['create', '-f', writePodYaml(n, opts)]);
  assert.notEqual(r.code, 0, `kubectl create succeeded: ${r.stdout}`);
  assert.equal(cp.store.pods.tryGet({ namespace: opts.namespace ?? 'default', name: n }), undefined);
  return r.stderr;
}

async function createNamespace(n: string, labels: Record<string, string> = {}): Promise<void> {
  const file = join(dir, `ns-${n}.yaml`);
  writeFileSync(file, stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: n, labels } }));
  const r = await k.run(['create', '-f', file]);
  assert.equal(r.code, 0, r.stderr);
}

/** Requests the real webhook has answered with this outcome so far. */
async function answered(outcome: string): Promise<number> {
  const text = await metrics.registry.metrics();
  const m = new RegExp(`pulltrace_webhook_requests_total\\{outcome="${outcome}"\\} (\\d+)`).exec(text);
  return Number(m?.[1] ?? 0);
}

async function answeredAll(): Promise<number> {
  let n = 0;
  for (const o of ['patched', 'unchanged', 'opted_out', 'skipped', 'error', 'bad_request']) {
    n += await answered(o);
  }
  return n;
}

function podInput(pod: KubeObject, extra: Partial<AdmissionInput> = {}): AdmissionInput {
  return {
    operation: 'CREATE',
    resource: { group: '', version: 'v1', resource: 'pods' },
    kind: { group: '', version: 'v1', kind: 'Pod' },
    name: pod.metadata?.name ?? '',
    namespace: pod.metadata?.namespace ?? 'default',
    object: pod,
    dryRun: false,
    ...extra,
  };
}

function newPod(n: string, labels: Record<string, string> = { app: 'web' }): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: n, namespace: 'default', labels },
    spec: { containers: [{ name: 'c', image: 'registry.test/app:1' }] },
  };
}

test('rules match operations, groups, versions, resources with * and subresources, and scope', () => {
  const pods = { group: '', version: 'v1', resource: 'pods' };
  const create = { operation: 'CREATE' as const, resource: pods, name: 'p', namespace: 'default' };
  const status = { ...create, operation: 'UPDATE' as const, subResource: 'status' };
  const ns = {
    operation: 'CREATE' as const,
    resource: { group: '', version: 'v1', resource: 'namespaces' },
    name: 'shop',
  };
  const deploy = {
    operation: 'CREATE' as const,
    resource: { group: 'apps', version: 'v1', resource: 'deployments' },
    name: 'd',
    namespace: 'default',
  };
  const rule = (r: WebhookRule): WebhookRule => ({
    operations: ['CREATE'],
    apiGroups: [''],
    apiVersions: ['v1'],
    resources: ['pods'],
    ...r,
  });
  const cases: [string, WebhookRule, Parameters<typeof ruleMatches>[1], boolean][] = [
    ['pods CREATE', rule({}), create, true],
    ['wrong operation', rule({ operations: ['UPDATE'] }), create, false],
    ['operation *', rule({ operations: ['*'] }), status, false],
    ['pods does not match pods/status', rule({ operations: ['*'] }), status, false],
    ['pods/status', rule({ operations: ['UPDATE'], resources: ['pods/status'] }), status, true],
    ['pods/* matches pods', rule({ resources: ['pods/*'] }), create, true],
    ['pods/* matches pods/status', rule({ operations: ['*'], resources: ['pods/*'] }), status, true],
    ['*/status', rule({ operations: ['*'], resources: ['*/status'] }), status, true],
    ['*/status does not match pods', rule({ resources: ['*/status'] }), create, false],
    ['* matches pods', rule({ resources: ['*'] }), create, true],
    ['* does not match subresources', rule({ operations: ['*'], resources: ['*'] }), status, false],
    ['*/* matches subresources', rule({ operations: ['*'], resources: ['*/*'] }), status, true],
    ['core group only', rule({ resources: ['*'] }), deploy, false],
    ['apiGroups *', rule({ apiGroups: ['*'], resources: ['deployments'] }), deploy, true],
    ['other version', rule({ apiVersions: ['v1beta1'] }), create, false],
    ['apiVersions *', rule({ apiVersions: ['*'] }), create, true],
    ['scope Namespaced', rule({ scope: 'Namespaced' }), create, true],
    ['scope Cluster, namespaced pod', rule({ scope: 'Cluster' }), create, false],
    ['Namespace is cluster-scoped', rule({ resources: ['namespaces'], scope: 'Cluster' }), ns, true],
    ['Namespace not Namespaced', rule({ resources: ['namespaces'], scope: 'Namespaced' }), ns, false],
    ['no rules fields', {}, create, false],
  ];
  for (const [what, r, input, want] of cases) assert.equal(ruleMatches(r, input), want, what);
});

test('kubectl create -f pod.yaml: the webhook labels the pod pulltrace.io/tracked=true', async () => {
  await configure({ name: 'pulltrace', webhooks: [pulltraceWebhook()] });
  const patched = await answered('patched');
  const n = name('plain');
  const pod = await createPod(n);
  assert.deepEqual(pod.metadata?.labels, { app: 'web', [LABEL_TRACKED]: 'true' });
  assert.equal(pod.spec?.readinessGates, undefined);
  assert.equal(await answered('patched'), patched + 1);
});

test('annotation pulltrace.io/readiness-gate=true adds the gate: kubectl -o wide shows READINESS GATES 0/1', async () => {
  await configure({ name: 'pulltrace', webhooks: [pulltraceWebhook()] });
  const n = name('gated');
  const pod = await createPod(n, { annotations: { [ANNOTATION_READINESS_GATE]: 'true' } });
  assert.equal(pod.metadata?.labels?.[LABEL_TRACKED], 'true');
  assert.deepEqual(pod.spec?.readinessGates, [{ conditionType: CONDITION_IMAGES_PULLED }]);
  const r = await k.run(['get', 'pod', n, '-o', 'wide']);
  assert.equal(r.code, 0, r.stderr);
  const [header = '', row = ''] = r.stdout.trim().split('\n');
  assert.match(header, /READINESS GATES$/);
  assert.match(row, new RegExp(`^${n}\\s.*\\s0/1$`));

  // A second admission of the pod as stored (a reinvocation) changes nothing.
  const again = await hook(podInput(pod));
  assert.deepEqual(again, { allowed: true });
});

test('a pod labelled pulltrace.io/track=false is left untouched', async () => {
  await configure({ name: 'pulltrace', webhooks: [pulltraceWebhook()] });
  const optedOut = await answered('opted_out');
  const pod = await createPod(name('optout'), {
    labels: { app: 'web', [KEY_TRACK]: 'false' },
    annotations: { [ANNOTATION_READINESS_GATE]: 'true' },
  });
  assert.deepEqual(pod.metadata?.labels, { app: 'web', [KEY_TRACK]: 'false' });
  assert.equal(pod.spec?.readinessGates, undefined);
  assert.equal(await answered('opted_out'), optedOut + 1, 'the webhook was called and opted out');
});

test('namespaceSelector: kube-system and namespaces labelled track=false are never sent', async () => {
  await configure({
    name: 'pulltrace',
    webhooks: [
      pulltraceWebhook({
        namespaceSelector: {
          matchExpressions: [
            { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system'] },
            { key: KEY_TRACK, operator: 'NotIn', values: ['false'] },
          ],
        },
      }),
    ],
  });
  const optOut = name('optout-ns');
  const shop = name('shop');
  await createNamespace(optOut, { [KEY_TRACK]: 'false' });
  await createNamespace(shop, { team: 'shop' });
  const calls = await answeredAll();

  const system = await createPod(name('sys'), { namespace: 'kube-system' });
  assert.equal(system.metadata?.labels?.[LABEL_TRACKED], undefined);
  const excluded = await createPod(name('ex'), { namespace: optOut });
  assert.equal(excluded.metadata?.labels?.[LABEL_TRACKED], undefined);
  assert.equal(await answeredAll(), calls, 'the webhook was not called');

  const tracked = await createPod(name('in'), { namespace: shop });
  assert.equal(tracked.metadata?.labels?.[LABEL_TRACKED], 'true');
  assert.equal(await answeredAll(), calls + 1);
});

test('objectSelector: a pod whose labels do not match is never sent', async () => {
  await configure({
    name: 'pulltrace',
    webhooks: [
      pulltraceWebhook({
        objectSelector: { matchExpressions: [{ key: 'example.com/no-webhooks', operator: 'DoesNotExist' }] },
      }),
    ],
  });
  const calls = await answeredAll();
  const skipped = await createPod(name('skip'), { labels: { 'example.com/no-webhooks': 'skip' } });
  assert.equal(skipped.metadata?.labels?.[LABEL_TRACKED], undefined);
  assert.equal(await answeredAll(), calls);
  const sent = await createPod(name('sent'), { labels: { app: 'web' } });
  assert.equal(sent.metadata?.labels?.[LABEL_TRACKED], 'true');
  assert.equal(await answeredAll(), calls + 1);
});

test('a caBundle that does not sign the serving certificate: Ignore admits unmutated, Fail (the default) denies', async () => {
  const wrongCa = { url: webhookUrl, caBundle: otherCa.caBundle };
  await configure({ name: 'pulltrace', webhooks: [pulltraceWebhook({ clientConfig: wrongCa })] });
  const calls = await answeredAll();
  const ignored = await createPod(name('wrongca'));
  assert.deepEqual(ignored.metadata?.labels, { app: 'web' });
  assert.equal(await answeredAll(), calls, 'no request reached the webhook');

  // failurePolicy Fail, and unset (it defaults to Fail).
  const { failurePolicy: _ignore, ...unset } = pulltraceWebhook({ clientConfig: wrongCa });
  const cases: [string, MutatingWebhook][] = [
    ['Fail', pulltraceWebhook({ clientConfig: wrongCa, failurePolicy: 'Fail' })],
    ['unset', unset],
  ];
  for (const [policy, w] of cases) {
    await configure({ name: 'pulltrace', webhooks: [w] });
    const stderr = await createPodFails(name('wrongca'));
    assert.match(
      stderr,
      new RegExp(
        `Error from server \\(InternalError\\): error when creating ".*": Internal error occurred: failed calling webhook "${WEBHOOK}": ` +
          `failed to call webhook: Post "https://127\\.0\\.0\\.1:\\d+/mutate\\?timeout=10s": ` +
          'tls: failed to verify certificate: x509: certificate signed by unknown authority',
      ),
      `failurePolicy ${policy}`,
    );
  }
});

test('a webhook that does not answer within timeoutSeconds: Ignore admits unmutated, Fail denies', async () => {
  const silent = { url: hung.url, caBundle: certs.caBundle };
  await configure({
    name: 'pulltrace',
    webhooks: [pulltraceWebhook({ clientConfig: silent, timeoutSeconds: 1 })],
  });
  const ignored = await createPod(name('slow'));
  assert.deepEqual(ignored.metadata?.labels, { app: 'web' });
  assert.equal(hung.requests.length, 1, 'the review reached the server');
  assert.match(hung.requests[0]?.url ?? '', /^\/mutate\?timeout=1s$/);

  await configure({
    name: 'pulltrace',
    webhooks: [pulltraceWebhook({ clientConfig: silent, timeoutSeconds: 1, failurePolicy: 'Fail' })],
  });
  const stderr = await createPodFails(name('slow'));
  assert.match(
    stderr,
    new RegExp(
      `Internal error occurred: failed calling webhook "${WEBHOOK}": failed to call webhook: ` +
        `Post "https://127\\.0\\.0\\.1:\\d+/mutate\\?timeout=1s": context deadline exceeded`,
    ),
  );
});

test('reinvocationPolicy IfNeeded: called again after a later webhook changed the pod; Never: once', async () => {
  const addTeam = (review: JsonObject) =>
    allow(review, [{ op: 'add', path: '/metadata/labels/team', value: 'payments' }]);
  const later = {
    name: 'b-team',
    webhooks: [
      pulltraceWebhook({
        name: 'team.test.pulltrace.io',
        clientConfig: { url: other.url, caBundle: certs.caBundle },
      }),
    ],
  };

  await configure(
    { name: 'a-pulltrace', webhooks: [pulltraceWebhook({ reinvocationPolicy: 'IfNeeded' })] },
    later,
  );
  other.answer = addTeam;
  let [patched, unchanged] = [await answered('patched'), await answered('unchanged')];
  const pod = await createPod(name('reinv'));
  assert.deepEqual(pod.metadata?.labels, { app: 'web', [LABEL_TRACKED]: 'true', team: 'payments' });
  assert.equal(await answered('patched'), patched + 1);
  assert.equal(await answered('unchanged'), unchanged + 1, 'reinvoked once, nothing left to do');
  assert.equal(other.requests.length, 1, 'the webhook that changed the pod is not reinvoked');

  await configure(
    { name: 'a-pulltrace', webhooks: [pulltraceWebhook({ reinvocationPolicy: 'Never' })] },
    later,
  );
  [patched, unchanged] = [await answered('patched'), await answered('unchanged')];
  await createPod(name('once'));
  assert.equal(await answered('patched'), patched + 1);
  assert.equal(await answered('unchanged'), unchanged, 'not reinvoked');
});

test('configurations run in name order, each webhook seeing the pod as patched so far; reviews are complete', async () => {
  // Created first, runs second: the order is by configuration name.
  await configure(
    { name: 'b-pulltrace', webhooks: [pulltraceWebhook()] },
    {
      name: 'a-recorder',
      webhooks: [
        pulltraceWebhook({
          name: 'recorder.test.pulltrace.io',
          reinvocationPolicy: 'IfNeeded',
          clientConfig: { url: other.url, caBundle: certs.caBundle },
        }),
      ],
    },
  );
  const n = name('order');
  await createPod(n);
  assert.equal(
    other.requests.length,
    2,
    'called, then reinvoked after the pulltrace webhook changed the pod',
  );
  const [first, second] = other.requests.map((r) => r.review.request as JsonObject) as [
    JsonObject,
    JsonObject,
  ];
  const labels = (req: JsonObject) => (req.object as KubeObject).metadata?.labels ?? {};
  assert.equal(labels(first)[LABEL_TRACKED], undefined, 'called before the pulltrace webhook');
  assert.equal(labels(second)[LABEL_TRACKED], 'true', 'reinvoked with the pulltrace patch applied');

  const envelope = other.requests[0]!;
  assert.equal(envelope.review.apiVersion, 'admission.k8s.io/v1');
  assert.equal(envelope.review.kind, 'AdmissionReview');
  assert.match(envelope.url, /^\/mutate\?timeout=10s$/);
  const req = first;
  assert.match(String(req.uid), /^[0-9a-f-]{36}$/);
  assert.notEqual(req.uid, second.uid, 'a new uid per call');
  assert.deepEqual(req.kind, { group: '', version: 'v1', kind: 'Pod' });
  assert.deepEqual(req.resource, { group: '', version: 'v1', resource: 'pods' });
  assert.deepEqual(req.requestKind, req.kind);
  assert.deepEqual(req.requestResource, req.resource);
  assert.equal(req.subResource, undefined);
  assert.equal(req.name, n);
  assert.equal(req.namespace, 'default');
  assert.equal(req.operation, 'CREATE');
  assert.equal((req.userInfo as JsonObject).username, 'system:admin');
  assert.equal((req.object as KubeObject).metadata?.name, n);
  assert.equal(req.oldObject, null);
  assert.equal(req.dryRun, false);
  assert.deepEqual(req.options, { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions' });
});

test('allowed: false denies with the webhook status, as the API server reports it', async () => {
  await configure({
    name: 'deny',
    webhooks: [
      pulltraceWebhook({
        name: 'deny.test.pulltrace.io',
        clientConfig: { url: other.url, caBundle: certs.caBundle },
      }),
    ],
  });
  other.answer = (review) => ({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: {
      uid: (review.request as JsonObject).uid,
      allowed: false,
      status: { code: 403, reason: 'Forbidden', message: 'images from registry.test are not allowed' },
    },
  });
  const stderr = await createPodFails(name('denied'));
  assert.match(
    stderr,
    /Error from server \(Forbidden\): error when creating ".*": admission webhook "deny.test.pulltrace.io" denied the request: images from registry.test are not allowed/,
  );
  // Without a status: 400, "without explanation".
  other.answer = (review) => ({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: { uid: (review.request as JsonObject).uid, allowed: false },
  });
  assert.deepEqual(await hook(podInput(newPod(name('bare')))), {
    allowed: false,
    code: 400,
    reason: '',
    message: 'admission webhook "deny.test.pulltrace.io" denied the request without explanation',
  });
});

test('invalid answers are call failures (failurePolicy decides); a patch that does not apply always denies', async () => {
  const cc = { url: other.url, caBundle: certs.caBundle };
  const review =
    (response: JsonObject, envelope: JsonObject = {}) =>
    (r: JsonObject) => ({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      ...envelope,
      response: { uid: (r.request as JsonObject).uid, allowed: true, ...response },
    });
  const cases: [string, (r: JsonObject) => unknown, RegExp][] = [
    [
      'uid mismatch',
      review({ uid: 'other' }),
      /received invalid webhook response: expected response\.uid="[0-9a-f-]+", got "other"/,
    ],
    [
      'wrong kind',
      review({}, { apiVersion: 'admission.k8s.io/v1beta1' }),
      /expected webhook response of admission\.k8s\.io\/v1, Kind=AdmissionReview, got admission\.k8s\.io\/v1beta1, Kind=AdmissionReview/,
    ],
    [
      'no response',
      () => ({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }),
      /webhook response was absent/,
    ],
    [
      'patch without patchType',
      review({ patch: Buffer.from('[]').toString('base64') }),
      /webhook returned response\.patch but not response\.patchType/,
    ],
    [
      'unsupported patchType',
      review({ patchType: 'MergePatch', patch: Buffer.from('{}').toString('base64') }),
      /unsupported patch type "MergePatch"/,
    ],
  ];
  for (const [what, answer, message] of cases) {
    other.answer = answer;
    await configure({
      name: 'bad',
      webhooks: [
        pulltraceWebhook({ name: 'bad.test.pulltrace.io', clientConfig: cc, failurePolicy: 'Fail' }),
      ],
    });
    const denied = await hook(podInput(newPod(name('bad'))));
    assert.equal(denied.allowed, false, what);
    assert.ok(!denied.allowed);
    assert.equal(denied.code, 500, what);
    assert.match(
      denied.message,
      /^Internal error occurred: failed calling webhook "bad\.test\.pulltrace\.io": /,
      what,
    );
    assert.match(denied.message, message, what);
    await configure({
      name: 'bad',
      webhooks: [
        pulltraceWebhook({ name: 'bad.test.pulltrace.io', clientConfig: cc, failurePolicy: 'Ignore' }),
      ],
    });
    assert.deepEqual(await hook(podInput(newPod(name('bad')))), { allowed: true }, `${what}, Ignore`);
  }

  other.answer = (r) => allow(r, [{ op: 'add', path: '/metadata/annotations/x', value: 'y' }]);
  const stderr = await createPodFails(name('badpatch'));
  assert.match(
    stderr,
    /Internal error occurred: add operation does not apply: doc is missing path: "\/metadata\/annotations\/x": missing value/,
  );
});

test('clientConfig.service is refused with a clear error whatever the failurePolicy', async () => {
  await configure({
    name: 'pulltrace',
    webhooks: [
      pulltraceWebhook({
        clientConfig: {
          service: { name: 'pulltrace-webhook', namespace: 'pulltrace', path: '/mutate' },
          caBundle: certs.caBundle,
        },
      }),
    ],
  });
  const stderr = await createPodFails(name('svc'));
  assert.match(
    stderr,
    new RegExp(
      `failed calling webhook "${WEBHOOK}": clientConfig.service is not supported by the control-plane stand-in .*use clientConfig.url`,
    ),
  );
});

test('server-side dry run: mutated in the answer, nothing stored; refused by a webhook with side effects', async () => {
  await configure({ name: 'pulltrace', webhooks: [pulltraceWebhook()] });
  const n = name('dry');
  const r = await k.run(['create', '-f', writePodYaml(n), '--dry-run=server', '-o', 'json']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((JSON.parse(r.stdout) as Pod).metadata?.labels?.[LABEL_TRACKED], 'true');
  assert.equal(cp.store.pods.tryGet({ name: n }), undefined);

  await configure({ name: 'pulltrace', webhooks: [pulltraceWebhook({ sideEffects: 'Some' })] });
  const refused = await k.run(['create', '-f', writePodYaml(n), '--dry-run=server']);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, new RegExp(`admission webhook "${WEBHOOK}" does not support dry run`));
});

test('subresource rules: pods/status is sent status writes, pods is not', async () => {
  const pod = await cp.store.pods.create(newPod(name('status')));
  const recorder = (resources: string[]) =>
    pulltraceWebhook({
      name: 'status.test.pulltrace.io',
      clientConfig: { url: other.url, caBundle: certs.caBundle },
      rules: [{ operations: ['UPDATE'], apiGroups: [''], apiVersions: ['v1'], resources }],
    });
  const condition = (status: string) => ({
    status: { conditions: [{ type: CONDITION_IMAGES_PULLED, status }] },
  });
  await configure({ name: 'status', webhooks: [recorder(['pods'])] });
  await cp.store.pods.patchStatus(
    { name: pod.metadata?.name ?? '' },
    'application/strategic-merge-patch+json',
    condition('False'),
  );
  assert.equal(other.requests.length, 0);

  await configure({ name: 'status', webhooks: [recorder(['pods/status'])] });
  await cp.store.pods.patchStatus(
    { name: pod.metadata?.name ?? '' },
    'application/strategic-merge-patch+json',
    condition('True'),
  );
  assert.equal(other.requests.length, 1);
  const req = other.requests[0]?.review.request as JsonObject;
  assert.equal(req.subResource, 'status');
  assert.equal(req.requestSubResource, 'status');
  assert.equal(req.operation, 'UPDATE');
  assert.equal((req.oldObject as KubeObject).metadata?.name, pod.metadata?.name);
  assert.deepEqual((req.options as JsonObject).kind, 'UpdateOptions');
});

test('a Namespace is matched against its own labels by namespaceSelector', async () => {
  await configure({
    name: 'ns',
    webhooks: [
      pulltraceWebhook({
        name: 'ns.test.pulltrace.io',
        clientConfig: { url: other.url, caBundle: certs.caBundle },
        rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['namespaces'] }],
        namespaceSelector: { matchLabels: { team: 'shop' } },
      }),
    ],
  });
  await createNamespace(name('other'), { team: 'other' });
  assert.equal(other.requests.length, 0);
  const shop = name('shop');
  await createNamespace(shop, { team: 'shop' });
  assert.equal(other.requests.length, 1);
  assert.equal((other.requests[0]?.review.request as JsonObject).namespace, shop);
  assert.ok(cp.store.namespaces.tryGet({ name: shop }));
});
