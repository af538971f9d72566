// The chart on the real API server (e2e/cluster: kube-apiserver v1.34.4 with
// MutatingAdmissionPolicy on, etcd, controller-manager, scheduler; one cluster for the file):
// - NOTES as `helm install --dry-run=server` prints them against the cluster's real API versions;
// - every object of the chart, under each values file of charts/testdata/, accepted by the API
//   server with strict field validation (`kubectl apply --dry-run=server --validate=strict`);
// - a real `helm install` / `helm uninstall`;
// - the CEL: the webhook's matchConditions send the real webhook (webhook/app.ts over HTTPS)
//   exactly the pods admit() changes, and the MutatingAdmissionPolicy changes each pod exactly as
//   admit()'s patch does — the API server's own CEL, on real pods, table by table.
// The per-node ValidatingAdmissionPolicy is checked in e2e/cluster/policy.test.ts.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { readdirSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { silentLogger } from '../common/logging.js';
import { kubectlFor, type Kubectl } from '../e2e/cluster/kubectl.js';
import { startCluster, type Cluster } from '../e2e/cluster/cluster.js';
import { HelmError, helmInstall, helm, helmTemplate, type HelmValuesOptions } from '../e2e/cluster/helm.js';
import { applyAsApiServer, decodePatch, makeCerts, type CertDir } from '../test-support/webhook.js';
import { waitFor } from '../test-support/net.js';
import { buildApp } from '../webhook/app.js';
import { createWebhookMetrics } from '../webhook/metrics.js';
import { admit, mutatePod, type JsonObject } from '../webhook/mutate.js';
import { certManagerCrds } from './cert-manager.js';
import { find, get, parseManifests, type Json, type Obj } from './manifests.js';

const TESTDATA = fileURLToPath(new URL('./testdata', import.meta.url));
const NS = 'pulltrace';
/** What this cluster serves beyond helm's defaults, for `helm template`. */
const SERVED = [
  'admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy',
  'admissionregistration.k8s.io/v1/ValidatingAdmissionPolicyBinding',
  'admissionregistration.k8s.io/v1beta1/MutatingAdmissionPolicy',
  'cert-manager.io/v1',
];

let cluster: Cluster;
let k: Kubectl;
let core: CoreV1Api;
const cleanups: (() => unknown)[] = [];

async function kubectl(args: string[], input?: string): Promise<string> {
  const r = await k.run(args, input === undefined ? {} : { input });
  assert.equal(r.code, 0, `kubectl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** Objects as kubectl input (without the test's `__file`). */
function manifest(objects: Obj[]): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'List',
    items: objects.map(({ __file: _f, ...o }) => o),
  });
}

before(async () => {
  cluster = await startCluster();
  cleanups.push(() => cluster.stop());
  k = kubectlFor(cluster.kubeconfigPath);
  cleanups.push(() => k.cleanup());
  const kc = new KubeConfig();
  kc.loadFromFile(cluster.kubeconfigPath);
  core = kc.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: NS } } });
  await core.createNamespace({ body: { metadata: { name: 'shop' } } });
  await core.createNamespace({
    body: { metadata: { name: 'quiet', labels: { 'pulltrace.io/track': 'false' } } },
  });
  // Pods need their namespace's default ServiceAccount (the controller-manager makes it).
  for (const ns of ['default', 'shop', 'quiet', NS]) {
    await waitFor(
      `ServiceAccount ${ns}/default`,
      async () => {
        try {
          await core.readNamespacedServiceAccount({ name: 'default', namespace: ns });
          return true;
        } catch {
          return false;
        }
      },
      30_000,
      100,
    );
  }
});

after(async () => {
  for (const fn of cleanups.reverse()) await fn();
});

async function dryRunInstall(opts: HelmValuesOptions = {}) {
  return helmInstall({
    ...opts,
    release: 'pulltrace',
    namespace: NS,
    kubeconfig: cluster.kubeconfigPath,
    dryRun: true,
  });
}

// ---------------------------------------------------------------------------------------------

let crdsApplied: Promise<void> | undefined;
/** cert-manager's CRDs, from its real chart (what its release's cert-manager.crds.yaml holds). */
function applyCertManagerCrds(): Promise<void> {
  crdsApplied ??= (async () => {
    const crds = await certManagerCrds();
    assert.equal(crds.length, 6);
    await kubectl(['apply', '-f', '-'], manifest(crds));
    await kubectl([
      'wait',
      '--for=condition=Established',
      '--timeout=60s',
      ...crds.map((c) => `crd/${c.metadata.name}`),
    ]);
  })();
  return crdsApplied;
}

test('NOTES and capabilities from the real cluster: the MutatingAdmissionPolicy version, cert-manager needed', async () => {
  // Without cert-manager's CRDs helm refuses the default (certManager) mode before changing anything.
  await assert.rejects(
    dryRunInstall(),
    (err: unknown) =>
      err instanceof HelmError &&
      /no matches for kind "Certificate" in version "cert-manager.io\/v1"/.test(err.message) &&
      /ensure CRDs are installed first/.test(err.message),
  );
  // With a certificate of one's own, no cert-manager is needed.
  const secret = await dryRunInstall({ valuesFiles: [join(TESTDATA, 'secret-tls.yaml')] });
  assert.match(secret.notes, /rollout status deployment\/pulltrace-webhook/);
  assert.match(secret.notes, /rollout status daemonset\/pulltrace-node-agent/);
  assert.match(secret.notes, /-L pulltrace\.io\/progress,pulltrace\.io\/eta/);
  assert.match(secret.notes, /runs as root \(uid 0, no capabilities\)/);
  // The cluster serves ValidatingAdmissionPolicy (1.34): `auto` installs it, and no NOTE.
  const objects = parseManifests(secret.manifest);
  assert.equal(objects.filter((o) => o.kind.startsWith('ValidatingAdmissionPolicy')).length, 2);
  assert.doesNotMatch(secret.notes, /ValidatingAdmissionPolicy/);

  // The policy version comes from the cluster's discovery: v1beta1 on 1.34 with the feature gate.
  const map = await dryRunInstall({ values: { mutatingAdmissionPolicy: { enabled: true } } });
  assert.match(map.notes, /MutatingAdmissionPolicy \(admissionregistration\.k8s\.io\/v1beta1\)/);
  assert.doesNotMatch(map.notes, /rollout status deployment/);
  assert.equal(
    find(parseManifests(map.manifest), 'MutatingAdmissionPolicy').apiVersion,
    'admissionregistration.k8s.io/v1beta1',
  );

  await applyCertManagerCrds();
  const plain = await dryRunInstall();
  assert.match(plain.notes, /rollout status deployment\/pulltrace-webhook/);
  const off = await dryRunInstall({ values: { nodeAgent: { sameNodePolicy: { enabled: false } } } });
  assert.match(off.notes, /NOTE: the ValidatingAdmissionPolicy .* is not\s+installed/);
  const grouped = await dryRunInstall({ valuesFiles: [join(TESTDATA, 'k3s-socket-group.yaml')] });
  assert.match(grouped.notes, /uid 65532 with group 1001/);
});

test('the API server accepts every object of the chart under each values file (strict field validation)', async () => {
  await applyCertManagerCrds();
  const files = ['', ...readdirSync(TESTDATA).filter((f) => f.endsWith('.yaml'))].sort();
  for (const f of files) {
    const objects = parseManifests(
      await helmTemplate({
        release: 'pulltrace',
        namespace: NS,
        valuesFiles: f === '' ? [] : [join(TESTDATA, f)],
        apiVersions: SERVED,
      }),
    );
    // CRDs first, as helm installs them (crds.enabled renders them as templates).
    const crds = objects.filter((o) => o.kind === 'CustomResourceDefinition');
    const rest = objects.filter((o) => o.kind !== 'CustomResourceDefinition');
    if (crds.length > 0)
      await kubectl(['apply', '--dry-run=server', '--validate=strict', '-f', '-'], manifest(crds));
    const r = await k.run(['apply', '--dry-run=server', '--validate=strict', '-f', '-'], {
      input: manifest(rest),
    });
    assert.equal(r.code, 0, `${f || 'defaults'}: ${r.stderr}`);
    assert.equal(
      r.stdout.trim().split('\n').length,
      rest.length,
      `${f || 'defaults'}: one line per object\n${r.stdout}`,
    );
    assert.equal(
      r.stderr.replace(/^Warning: .*kubectl.*skew.*$/gm, '').trim(),
      '',
      `${f || 'defaults'}: no warnings`,
    );
  }
});

test('helm install creates the release on the real API server, helm uninstall removes it', async () => {
  await applyCertManagerCrds();
  const installed = await helmInstall({
    release: 'pulltrace',
    namespace: NS,
    kubeconfig: cluster.kubeconfigPath,
  });
  const objects = parseManifests(installed.manifest);
  assert.ok(objects.length >= 15);
  const names = JSON.parse(
    await kubectl(['get', 'deploy,ds,svc,sa,pdb,certificates,issuers', '-n', NS, '-o', 'json']),
  ) as { items: Obj[] };
  const have = new Set(names.items.map((o) => `${o.kind}/${o.metadata.name}`));
  for (const o of objects.filter((x) => x.metadata.namespace === NS)) {
    assert.ok(have.has(`${o.kind}/${o.metadata.name}`), `${o.kind}/${o.metadata.name} created`);
  }
  const mwc = JSON.parse(
    await kubectl(['get', 'mutatingwebhookconfiguration', 'pulltrace', '-o', 'json']),
  ) as Obj;
  assert.equal(mwc.metadata.annotations?.['cert-manager.io/inject-ca-from'], 'pulltrace/pulltrace-webhook');
  const status = await helm(['status', 'pulltrace', '-n', NS, '-o', 'json'], {
    kubeconfig: cluster.kubeconfigPath,
  });
  assert.equal((JSON.parse(status.stdout) as { info: { status: string } }).info.status, 'deployed');
  const un = await helm(['uninstall', 'pulltrace', '-n', NS, '--wait', '--timeout', '60s'], {
    kubeconfig: cluster.kubeconfigPath,
  });
  assert.equal(un.code, 0, un.stderr);
  const left = await k.run(['get', 'mutatingwebhookconfiguration', 'pulltrace']);
  assert.notEqual(left.code, 0, 'the webhook configuration is gone');
});

// ---------------------------------------------------------------------------------------------
// CEL on the real API server against the webhook's own decisions.

interface PodCase {
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  gates?: { conditionType: string }[];
}

function podCases(): PodCase[] {
  const labelSets: (Record<string, string> | undefined)[] = [
    undefined,
    {},
    { app: 'x' },
    { 'pulltrace.io/tracked': 'true' },
    { 'pulltrace.io/track': 'false' },
  ];
  const annotationSets: (Record<string, string> | undefined)[] = [
    undefined,
    { 'pulltrace.io/track': 'false' },
    { 'pulltrace.io/readiness-gate': 'true' },
    { 'pulltrace.io/readiness-gate': 'false' },
  ];
  const gateSets = [
    undefined,
    [],
    [{ conditionType: 'other' }],
    [{ conditionType: 'pulltrace.io/ImagesPulled' }],
  ];
  const out: PodCase[] = [];
  for (const labels of labelSets) {
    for (const annotations of annotationSets) {
      for (const gates of gateSets) {
        const c: PodCase = {};
        if (labels !== undefined) c.labels = labels;
        if (annotations !== undefined) c.annotations = annotations;
        if (gates !== undefined) c.gates = gates;
        out.push(c);
      }
    }
  }
  return out;
}

function podObject(c: PodCase, name: string, namespace: string): JsonObject {
  const metadata: Json = { name, namespace };
  if (c.labels !== undefined) metadata.labels = c.labels;
  if (c.annotations !== undefined) metadata.annotations = c.annotations;
  const spec: Json = { containers: [{ name: 'c', image: 'nginx' }] };
  if (c.gates !== undefined) spec.readinessGates = c.gates;
  return { apiVersion: 'v1', kind: 'Pod', metadata, spec };
}

function reviewFor(pod: JsonObject, namespace: string): JsonObject {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'u',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      namespace,
      operation: 'CREATE',
      object: pod,
    },
  };
}

/** What admit() makes of the pod: whether it changes it, and the pod after its patch. */
function webhookResult(pod: JsonObject, namespace: string, gated: string[]) {
  const decision = admit(reviewFor(pod, namespace), { readinessGateNamespaces: new Set(gated) });
  const ops = decodePatch(decision.review);
  return { changes: decision.outcome === 'patched', pod: ops === null ? pod : applyAsApiServer(pod, ops) };
}

/** The parts both may change; an empty map or list is the same as none (the API server drops them). */
function view(pod: JsonObject | V1Pod): Json {
  // Plain JSON: the client's objects are class instances.
  const p = JSON.parse(JSON.stringify(pod)) as { metadata?: Json; spec?: Json };
  const nonEmpty = (v: unknown) =>
    v === undefined || v === null || (typeof v === 'object' && Object.keys(v).length === 0) ? undefined : v;
  return {
    labels: nonEmpty(p.metadata?.labels),
    annotations: nonEmpty(p.metadata?.annotations),
    readinessGates: nonEmpty(p.spec?.readinessGates),
  };
}

async function createPod(pod: JsonObject): Promise<V1Pod> {
  return core.createNamespacedPod({ namespace: String(get(pod, 'metadata.namespace')), body: pod });
}

/** Runs `fn` over `items`, `n` at a time. */
async function pool<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

let probes = 0;
/** Creates probe pods until `ok(created)` holds: a configuration change takes a moment to apply. */
async function until(what: string, c: PodCase, namespace: string, ok: (created: V1Pod) => boolean) {
  await waitFor(
    what,
    async () => ok(await createPod(podObject(c, `probe-${++probes}`, namespace))),
    20_000,
    200,
  );
}

const NAMESPACES = ['default', 'shop'];
const GATINGS = [[], ['shop']];

test('matchConditions: the real API server sends the webhook exactly the pods it changes', async () => {
  const certs: CertDir = makeCerts();
  cleanups.push(() => certs.cleanup());
  const gatedNow = new Set<string>();
  const called = new Set<string>();
  const app = buildApp({
    logger: silentLogger(),
    metrics: createWebhookMetrics({ processMetrics: false }),
    mutate: { readinessGateNamespaces: gatedNow },
    tls: { cert: readFileSync(certs.cert), key: readFileSync(certs.key) },
    mutator: (pod, namespace, opts) => {
      called.add(`${namespace}/${String(get(pod, 'metadata.name'))}`);
      return mutatePod(pod, namespace, opts);
    },
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  cleanups.push(() => app.close());
  const url = `https://127.0.0.1:${(app.server.address() as AddressInfo).port}/mutate`;

  let checked = 0;
  let skipped = 0;
  for (const [g, gated] of GATINGS.entries()) {
    const mwc = find(
      parseManifests(
        await helmTemplate({
          values: { webhook: { readinessGateNamespaces: gated } },
          showOnly: ['templates/mutatingwebhookconfiguration.yaml'],
        }),
      ),
      'MutatingWebhookConfiguration',
    );
    // Served by the test's webhook instead of the Service: the rest (selectors, CEL) as rendered.
    const hook = (mwc as unknown as { webhooks: Json[] }).webhooks[0]!;
    hook.clientConfig = { url, caBundle: certs.caBundle };
    gatedNow.clear();
    for (const ns of gated) gatedNow.add(ns);
    await kubectl(['apply', '-f', '-'], manifest([mwc]));
    // In effect: a pod only this configuration sends (first: any new pod; then: a tracked pod in
    // the gated namespace, which now has work to do).
    const probe: PodCase = g === 0 ? {} : { labels: { 'pulltrace.io/tracked': 'true' } };
    const probeNs = g === 0 ? 'default' : 'shop';
    await until(`configuration ${g} in effect`, probe, probeNs, (p) =>
      called.has(`${probeNs}/${p.metadata?.name}`),
    );

    const rows = NAMESPACES.flatMap((ns) => podCases().map((c, i) => ({ ns, c, name: `mc-${g}-${i}` })));
    await pool(rows, 8, async ({ ns, c, name }) => {
      const pod = podObject(c, name, ns);
      const expected = webhookResult(pod, ns, gated);
      const created = await createPod(pod);
      const why = `${JSON.stringify(c)} in ${ns}, gated ${gated.join()}`;
      assert.equal(called.has(`${ns}/${name}`), expected.changes, why);
      assert.deepEqual(view(created), view(expected.pod), why);
      checked++;
      if (!expected.changes) skipped++;
    });
  }
  assert.equal(checked, 320);
  assert.ok(skipped > 50 && skipped < checked - 50, `both outcomes covered (${skipped} skipped)`);
  // The namespaceSelector: the release namespace and opted-out namespaces are never sent.
  for (const ns of [NS, 'quiet', 'kube-system']) {
    const created = await createPod(podObject({}, 'left-alone', ns));
    assert.ok(!called.has(`${ns}/left-alone`), ns);
    assert.equal(created.metadata?.labels, undefined, ns);
  }
  await kubectl(['delete', 'mutatingwebhookconfiguration', 'pulltrace']);
});

test('MutatingAdmissionPolicy: the real API server changes each pod exactly as the webhook does', async () => {
  let compared = 0;
  for (const [g, gated] of GATINGS.entries()) {
    const objects = parseManifests(
      await helmTemplate({
        values: { mutatingAdmissionPolicy: { enabled: true }, webhook: { readinessGateNamespaces: gated } },
        apiVersions: SERVED,
        showOnly: ['templates/mutatingadmissionpolicy.yaml'],
      }),
    );
    assert.equal(find(objects, 'MutatingAdmissionPolicy').apiVersion, 'admissionregistration.k8s.io/v1beta1');
    await kubectl(['apply', '-f', '-'], manifest(objects));
    // Compiled and bound: a new pod gets the label (then, the gate in the gated namespace).
    if (g === 0) {
      await until(
        'the policy to label pods',
        {},
        'default',
        (p) => p.metadata?.labels?.['pulltrace.io/tracked'] === 'true',
      );
    } else {
      await until(
        'the policy to gate pods in shop',
        {},
        'shop',
        (p) => (p.spec?.readinessGates ?? []).length === 1,
      );
    }
    const rows = NAMESPACES.flatMap((ns) => podCases().map((c, i) => ({ ns, c, name: `map-${g}-${i}` })));
    await pool(rows, 8, async ({ ns, c, name }) => {
      const pod = podObject(c, name, ns);
      const expected = webhookResult(pod, ns, gated);
      const created = await createPod(pod);
      assert.deepEqual(
        view(created),
        view(expected.pod),
        `${JSON.stringify(c)} in ${ns}, gated ${gated.join()}`,
      );
      compared++;
    });
  }
  assert.equal(compared, 320);
  // Same namespaces left out as the webhook's.
  for (const ns of [NS, 'quiet']) {
    const created = await createPod(podObject({}, 'map-left-alone', ns));
    assert.equal(created.metadata?.labels, undefined, ns);
  }
  await kubectl(['delete', 'mutatingadmissionpolicy,mutatingadmissionpolicybinding', '--all']);
});
