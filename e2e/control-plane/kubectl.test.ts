// The real /usr/bin/kubectl against the control-plane stand-in: one test per command the
// project's users and scripts rely on (see ../shared/KUBECTL-FACTS.md and README.md).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { randomBytes } from 'node:crypto';
import { waitFor } from '../../test-support/net.js';
import { startControlPlane, type ControlPlane } from './control-plane.js';
import { kubectlFor, type Kubectl } from './kubectl.js';
import { PATCH_TYPES } from './patch.js';
import { DEPLOYMENTS } from './resources.js';
import type { KubeEvent, KubeObject, Pod } from './types.js';

let cp: ControlPlane;
let k: Kubectl;

before(async () => {
  cp = await startControlPlane();
  k = kubectlFor(cp.kubeconfigPath);
});

after(async () => {
  k.cleanup();
  await cp.stop();
});

function name(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString('hex')}`;
}

function podYaml(
  n: string,
  opts: { labels?: Record<string, string>; image?: string; gate?: boolean } = {},
): string {
  const labels = Object.entries(opts.labels ?? { app: 'web' })
    .map(([key, v]) => `    ${key}: "${v}"`)
    .join('\n');
  return [
    'apiVersion: v1',
    'kind: Pod',
    'metadata:',
    `  name: ${n}`,
    '  labels:',
    labels,
    'spec:',
    ...(opts.gate === true ? ['  readinessGates:', '  - conditionType: pulltrace.io/ImagesPulled'] : []),
    '  containers:',
    '  - name: c',
    `    image: ${opts.image ?? 'registry.test/app:1'}`,
    '',
  ].join('\n');
}

async function createPod(n: string, opts: Parameters<typeof podYaml>[1] = {}): Promise<Pod> {
  const r = await k.run(['create', '-f', '-'], { input: podYaml(n, opts) });
  assert.equal(r.code, 0, r.stderr);
  return cp.store.pods.get({ name: n });
}

/** Resolves once `n` more watches are open than before (kubectl's watch has started). */
async function watchesOpened(before: number, n = 1): Promise<void> {
  await waitFor(
    'kubectl to open its watch',
    () => Promise.resolve(cp.store.watchCount() >= before + n),
    20_000,
    20,
  );
}

function ok(r: { code: number | null; stderr: string }): void {
  assert.equal(r.code, 0, `kubectl failed: ${r.stderr}`);
}

test('kubectl get pods: the server-side table (NAME READY STATUS RESTARTS AGE), no wide columns', async () => {
  const n = name('get');
  await createPod(n);
  const r = await k.run(['get', 'pods']);
  ok(r);
  const lines = r.stdout.trim().split('\n');
  assert.match(lines[0] ?? '', /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE$/);
  const row = lines.find((l) => l.startsWith(`${n} `)) ?? '';
  assert.match(row, new RegExp(`^${n}\\s+0/1\\s+Pending\\s+0\\s+\\d+s$`));
  const one = await k.run(['get', 'pod', n, '--no-headers']);
  ok(one);
  assert.match(one.stdout, new RegExp(`^${n}\\s+0/1\\s+Pending`));
  const missing = await k.run(['get', 'pod', 'does-not-exist']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /Error from server \(NotFound\): pods "does-not-exist" not found/);
});

test('kubectl get pods -o wide -L: IP, NODE, NOMINATED NODE, READINESS GATES and label columns', async () => {
  const n = name('wide');
  await createPod(n, { gate: true, labels: { app: 'web', 'pulltrace.io/progress': '42' } });
  await cp.store.bindPod({ name: n }, 'node-a');
  await cp.store.pods.patchStatus({ name: n }, PATCH_TYPES.strategic, {
    status: { podIP: '10.1.2.3', podIPs: [{ ip: '10.1.2.3' }] },
  });
  const args = ['get', 'pods', n, '-o', 'wide', '-L', 'pulltrace.io/progress,pulltrace.io/eta'];
  const r = await k.run(args);
  ok(r);
  const [header = '', row = ''] = r.stdout.trim().split('\n');
  assert.match(
    header,
    /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+IP\s+NODE\s+NOMINATED NODE\s+READINESS GATES\s+PROGRESS\s+ETA$/,
  );
  assert.match(
    row,
    new RegExp(
      `^${n}\\s+0/1\\s+Pending\\s+0\\s+\\d+s\\s+10\\.1\\.2\\.3\\s+node-a\\s+<none>\\s+0/1\\s+42\\s*$`,
    ),
  );
  await cp.store.pods.patchStatus({ name: n }, PATCH_TYPES.strategic, {
    status: { conditions: [{ type: 'pulltrace.io/ImagesPulled', status: 'True' }] },
  });
  await cp.store.pods.patch({ name: n }, PATCH_TYPES.merge, {
    metadata: { labels: { 'pulltrace.io/eta': '0s' } },
  });
  const after = await k.run(args);
  ok(after);
  assert.match(after.stdout.trim().split('\n')[1] ?? '', /\s+1\/1\s+42\s+0s$/);
});

test('kubectl get -o jsonpath: annotation keys with dots and slashes', async () => {
  const n = name('jp');
  await createPod(n);
  await cp.store.pods.patch({ name: n }, PATCH_TYPES.merge, {
    metadata: { annotations: { 'pulltrace.io/progress': '63' } },
  });
  const r = await k.run([
    'get',
    'pod',
    n,
    '-o',
    'jsonpath={.metadata.annotations.pulltrace\\.io/progress} {.metadata.uid}',
  ]);
  ok(r);
  assert.equal(r.stdout, `63 ${cp.store.pods.get({ name: n }).metadata?.uid ?? ''}`);
});

test('kubectl describe pod: conditions, readiness gates, and the events of this pod (by uid)', async () => {
  const n = name('desc');
  const pod = await createPod(n, { gate: true });
  const at = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  const event = (suffix: string, uid: string, reason: string, message: string): KubeEvent => ({
    metadata: { name: `${n}.${suffix}` },
    involvedObject: { apiVersion: 'v1', kind: 'Pod', name: n, namespace: 'default', uid },
    reason,
    message,
    type: 'Normal',
    source: { component: 'kubelet' },
    firstTimestamp: at,
    lastTimestamp: at,
    count: 1,
  });
  await cp.store.events.create(
    event('a', pod.metadata?.uid ?? '', 'Pulling', 'Pulling image "registry.test/app:1"'),
  );
  // Same name, another uid: a previous pod's event that describe must not show.
  await cp.store.events.create(event('b', 'another-uid', 'Killing', 'from an earlier pod'));
  await cp.store.pods.patchStatus({ name: n }, PATCH_TYPES.strategic, {
    status: { conditions: [{ type: 'pulltrace.io/ImagesPulled', status: 'False', reason: 'Downloading' }] },
  });
  const r = await k.run(['describe', 'pod', n]);
  ok(r);
  assert.match(r.stdout, new RegExp(`Name:\\s+${n}`));
  assert.match(r.stdout, /Readiness Gates:\n\s+Type\s+Status\n\s+pulltrace\.io\/ImagesPulled\s+False/);
  assert.match(
    r.stdout,
    /Events:\n\s+Type\s+Reason\s+Age\s+From\s+Message\n[\s-]+\n\s+Normal\s+Pulling\s+\S+\s+kubelet\s+Pulling image "registry\.test\/app:1"/,
  );
  assert.doesNotMatch(r.stdout, /from an earlier pod/);
});

test('kubectl create -f: created, then AlreadyExists; strict field validation refuses unknown fields', async () => {
  const n = name('create');
  const first = await k.run(['create', '-f', '-'], { input: podYaml(n) });
  ok(first);
  assert.equal(first.stdout.trim(), `pod/${n} created`);
  assert.equal(cp.store.pods.get({ name: n }).metadata?.labels?.app, 'web');
  const again = await k.run(['create', '-f', '-'], { input: podYaml(n) });
  assert.equal(again.code, 1);
  assert.match(again.stderr, new RegExp(`Error from server \\(AlreadyExists\\).*pods "${n}" already exists`));
  const bad = await k.run(['create', '-f', '-'], { input: `${podYaml(name('strict'))}bogus: 1\n` });
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /unknown field "bogus"/);
});

test('kubectl apply -f: created, unchanged, configured (strategic merge patch)', async () => {
  const n = name('apply');
  const created = await k.run(['apply', '-f', '-'], { input: podYaml(n) });
  ok(created);
  assert.equal(created.stdout.trim(), `pod/${n} created`);
  const rv = cp.store.pods.get({ name: n }).metadata?.resourceVersion;
  const unchanged = await k.run(['apply', '-f', '-'], { input: podYaml(n) });
  ok(unchanged);
  assert.equal(unchanged.stdout.trim(), `pod/${n} unchanged`);
  assert.equal(cp.store.pods.get({ name: n }).metadata?.resourceVersion, rv);
  const configured = await k.run(['apply', '-f', '-'], {
    input: podYaml(n, { labels: { app: 'web', tier: 'front' }, image: 'registry.test/app:2' }),
  });
  ok(configured);
  assert.equal(configured.stdout.trim(), `pod/${n} configured`);
  const pod = cp.store.pods.get({ name: n });
  assert.equal(pod.metadata?.labels?.tier, 'front');
  assert.equal(pod.spec?.containers[0]?.image, 'registry.test/app:2');
  assert.equal(pod.spec.containers.length, 1);
  assert.equal(pod.metadata.generation, 2);
  assert.ok(
    pod.metadata.annotations?.['kubectl.kubernetes.io/last-applied-configuration']?.includes('app:2'),
  );
});

test('kubectl annotate: adds, refuses to overwrite without --overwrite, removes', async () => {
  const n = name('annotate');
  await createPod(n);
  ok(await k.run(['annotate', 'pod', n, 'pulltrace.io/phase=Downloading']));
  assert.equal(cp.store.pods.get({ name: n }).metadata?.annotations?.['pulltrace.io/phase'], 'Downloading');
  const clash = await k.run(['annotate', 'pod', n, 'pulltrace.io/phase=Pulled']);
  assert.equal(clash.code, 1);
  ok(await k.run(['annotate', 'pod', n, 'pulltrace.io/phase=Pulled', '--overwrite']));
  assert.equal(cp.store.pods.get({ name: n }).metadata?.annotations?.['pulltrace.io/phase'], 'Pulled');
  ok(await k.run(['annotate', 'pod', n, 'pulltrace.io/phase-']));
  assert.equal(cp.store.pods.get({ name: n }).metadata?.annotations?.['pulltrace.io/phase'], undefined);
});

test('kubectl label: adds and removes; the server refuses an invalid label value (422)', async () => {
  const n = name('label');
  await createPod(n);
  ok(await k.run(['label', 'pod', n, 'pulltrace.io/progress=10']));
  assert.equal(cp.store.pods.get({ name: n }).metadata?.labels?.['pulltrace.io/progress'], '10');
  const sel = await k.run(['get', 'pods', '-l', 'pulltrace.io/progress in (10,20)', '-o', 'name']);
  ok(sel);
  assert.equal(sel.stdout.trim(), `pod/${n}`);
  ok(await k.run(['label', 'pod', n, 'pulltrace.io/progress-']));
  assert.equal(cp.store.pods.get({ name: n }).metadata?.labels?.['pulltrace.io/progress'], undefined);
  // kubectl label checks values itself; a merge patch reaches the server's validation.
  const bad = await k.run(['patch', 'pod', n, '--type=merge', '-p', '{"metadata":{"labels":{"bad":"a b"}}}']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, new RegExp(`The Pod "${n}" is invalid: metadata\\.labels: Invalid value: "a b"`));
});

test('kubectl patch --type=json: applies; an add under a missing parent is rejected as the API server does', async () => {
  const n = name('jsonpatch');
  await createPod(n);
  ok(
    await k.run([
      'patch',
      'pod',
      n,
      '--type=json',
      '-p',
      '[{"op":"add","path":"/metadata/labels/x","value":"1"}]',
    ]),
  );
  const before = cp.store.pods.get({ name: n });
  assert.equal(before.metadata?.labels?.x, '1');
  const bad = await k.run([
    'patch',
    'pod',
    n,
    '--type=json',
    '-p',
    '[{"op":"add","path":"/metadata/annotations/a","value":"1"}]',
  ]);
  assert.equal(bad.code, 1);
  assert.match(
    bad.stderr,
    /The request is invalid: the server rejected our request due to an error in our request/,
  );
  const failedTest = await k.run([
    'patch',
    'pod',
    n,
    '--type=json',
    '-p',
    '[{"op":"test","path":"/metadata/name","value":"x"}]',
  ]);
  assert.equal(failedTest.code, 1);
  assert.equal(cp.store.pods.get({ name: n }).metadata?.resourceVersion, before.metadata.resourceVersion);
  const gate = await k.run([
    'patch',
    'pod',
    n,
    '--type=json',
    '-p',
    '[{"op":"add","path":"/spec/readinessGates","value":[{"conditionType":"a.io/B"}]}]',
  ]);
  assert.equal(gate.code, 1);
  assert.match(gate.stderr, /spec: Forbidden: pod updates may not change fields/);
});

test('kubectl patch --subresource=status: conditions merge by type; only status changes', async () => {
  const n = name('status');
  await createPod(n);
  const patch = (cond: object) =>
    k.run([
      'patch',
      'pod',
      n,
      '--subresource=status',
      '-p',
      JSON.stringify({ status: { conditions: [cond] } }),
    ]);
  ok(await patch({ type: 'Ready', status: 'False', reason: 'ContainersNotReady' }));
  ok(await patch({ type: 'pulltrace.io/ImagesPulled', status: 'False', reason: 'Downloading' }));
  ok(await patch({ type: 'pulltrace.io/ImagesPulled', status: 'True', reason: 'Pulled' }));
  const conditions = cp.store.pods.get({ name: n }).status?.conditions ?? [];
  assert.deepEqual(
    conditions.map((c) => `${c.type}=${c.status}/${c.reason ?? ''}`),
    ['Ready=False/ContainersNotReady', 'pulltrace.io/ImagesPulled=True/Pulled'],
  );
  const r = await k.run([
    'get',
    'pod',
    n,
    '--subresource=status',
    '-o',
    'jsonpath={.status.conditions[1].reason}',
  ]);
  ok(r);
  assert.equal(r.stdout, 'Pulled');
  ok(
    await k.run([
      'patch',
      'pod',
      n,
      '--subresource=status',
      '--type=merge',
      '-p',
      '{"metadata":{"labels":{"x":"y"}}}',
    ]),
  );
  assert.equal(cp.store.pods.get({ name: n }).metadata?.labels?.x, undefined);
});

test('kubectl wait --for=condition: returns once a status patch sets the condition', async () => {
  const n = name('wait');
  await createPod(n);
  const before = cp.store.watchCount();
  const waiting = k.start(['wait', '--for=condition=pulltrace.io/ImagesPulled', `pod/${n}`, '--timeout=60s']);
  await watchesOpened(before);
  await cp.store.pods.patchStatus({ name: n }, PATCH_TYPES.strategic, {
    status: { conditions: [{ type: 'pulltrace.io/ImagesPulled', status: 'True', reason: 'Pulled' }] },
  });
  const r = await waiting.done;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), `pod/${n} condition met`);
});

test('kubectl wait --for=condition: another pod getting the condition does not end the wait', async () => {
  const n = name('waitme');
  const other = name('other');
  await createPod(n);
  await createPod(other);
  const before = cp.store.watchCount();
  const waiting = k.start(['wait', '--for=condition=pulltrace.io/ImagesPulled', `pod/${n}`, '--timeout=3s']);
  await watchesOpened(before);
  await cp.store.pods.patchStatus({ name: other }, PATCH_TYPES.strategic, {
    status: { conditions: [{ type: 'pulltrace.io/ImagesPulled', status: 'True' }] },
  });
  const r = await waiting.done;
  assert.equal(r.code, 1);
  assert.match(r.stderr, /timed out waiting for the condition/);
});

test('kubectl get pods -w: a row per change, with label columns', async () => {
  const n = name('watch');
  await createPod(n);
  const before = cp.store.watchCount();
  const watching = k.start(['get', 'pods', n, '-w', '-L', 'pulltrace.io/progress']);
  try {
    await watchesOpened(before);
    await cp.store.pods.patch({ name: n }, PATCH_TYPES.merge, {
      metadata: { labels: { 'pulltrace.io/progress': '55' } },
    });
    await waitFor(
      'the watched row',
      () => Promise.resolve(/\s55\n/.test(watching.output().stdout)),
      20_000,
      20,
    );
  } finally {
    watching.child.kill();
    await watching.done;
  }
  const lines = watching.output().stdout.trim().split('\n');
  assert.match(lines[0] ?? '', /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+PROGRESS$/);
  assert.match(lines.at(-1) ?? '', new RegExp(`^${n}\\s+0/1\\s+Pending\\s+0\\s+\\d+s\\s+55$`));
});

test('kubectl delete pod: gone from the store, a DELETED watch event, then NotFound', async () => {
  const n = name('delete');
  await createPod(n);
  const events: string[] = [];
  const w = cp.store.pods.watch(
    { resourceVersion: cp.store.resourceVersion, fieldSelector: `metadata.name=${n}` },
    (e) => events.push(e.type),
  );
  const r = await k.run(['delete', 'pod', n]);
  w.stop();
  ok(r);
  assert.equal(r.stdout.trim(), `pod "${n}" deleted`);
  assert.deepEqual(events, ['DELETED']);
  assert.equal(cp.store.pods.tryGet({ name: n }), undefined);
  const again = await k.run(['delete', 'pod', n]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /NotFound/);
});

test('kubectl create deployment / namespace (protobuf bodies), kubectl scale (the scale subresource)', async () => {
  const n = name('deploy');
  const ns = name('ns');
  ok(await k.run(['create', 'deployment', n, '--image=registry.test/app:1', '--replicas=3', '--port=8080']));
  ok(await k.run(['create', 'namespace', ns]));
  const d = cp.store.resource<KubeObject>(DEPLOYMENTS).get({ namespace: 'default', name: n });
  const spec = (d.spec ?? {}) as Record<string, unknown>;
  assert.equal(spec.replicas, 3);
  assert.deepEqual(spec.selector, { matchLabels: { app: n } });
  const template = spec.template as { metadata?: { labels?: object }; spec: NonNullable<Pod['spec']> };
  assert.deepEqual(template.metadata?.labels, { app: n });
  const container = template.spec.containers[0];
  assert.equal(container?.image, 'registry.test/app:1');
  assert.deepEqual(container.ports, [{ containerPort: 8080, protocol: 'TCP' }]);
  assert.equal(cp.store.namespaces.get({ name: ns }).status?.phase, 'Active');
  ok(await k.run(['scale', 'deployment', n, '--replicas=5']));
  const scaled = cp.store.resource<KubeObject>(DEPLOYMENTS).get({ namespace: 'default', name: n });
  assert.equal((scaled.spec as { replicas?: number }).replicas, 5);
  assert.equal(scaled.metadata?.generation, 2);
  const r = await k.run(['get', 'deployments', n, '-o', 'wide']);
  ok(r);
  assert.match(
    r.stdout,
    new RegExp(`${n}\\s+0/5\\s+0\\s+0\\s+\\d+s\\s+app\\s+registry\\.test/app:1\\s+app=${n}`),
  );
});
