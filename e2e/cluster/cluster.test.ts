// The real control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler built by
// e2e/env/build-kube.sh) driven by the machine's real kubectl: the facts pulltrace's contract
// rests on, checked against Kubernetes itself rather than against our stand-in. The answers are
// written down in README.md ("What the real API server does").
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { CoreV1Api, KubeConfig, PatchStrategy, setHeaderOptions, type V1Pod } from '@kubernetes/client-node';
import { kubectlFor, type Kubectl } from './kubectl.js';
import { startCluster, type Cluster } from './cluster.js';
import { NODE_NAME_EXTRA, nodeBoundToken } from './token.js';

const CONDITION = 'pulltrace.io/ImagesPulled';
const STRATEGIC = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);
const MERGE = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

let cluster: Cluster;
let k: Kubectl;
let core: CoreV1Api;
let ns: string;
/** What before() started, stopped in reverse by after() even when before() failed half-way. */
const cleanups: (() => unknown)[] = [];

function name(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString('hex')}`;
}

before(async () => {
  cluster = await startCluster();
  cleanups.push(() => cluster.stop());
  k = kubectlFor(cluster.kubeconfigPath);
  cleanups.push(() => k.cleanup());
  const kc = new KubeConfig();
  kc.loadFromFile(cluster.kubeconfigPath);
  core = kc.makeApiClient(CoreV1Api);
  ns = name('pt');
  const r = await k.run(['create', 'namespace', ns]);
  assert.equal(r.code, 0, r.stderr);
});

after(async () => {
  for (const fn of cleanups.reverse()) await fn();
});

/** A pod bound to no node (no kubelet runs in these tests: it stays Pending, which is all we need). */
async function createPod(n: string, nodeName?: string): Promise<V1Pod> {
  return core.createNamespacedPod({
    namespace: ns,
    body: {
      metadata: { name: n, labels: { app: 'web' } },
      spec: {
        ...(nodeName === undefined ? {} : { nodeName }),
        containers: [{ name: 'app', image: 'registry.test/team/app:1' }],
      },
    },
  });
}

function condition(status: 'True' | 'False', extra: Record<string, unknown> = {}) {
  return {
    type: CONDITION,
    status,
    reason: status === 'True' ? 'Pulled' : 'Downloading',
    message: 'm',
    ...extra,
  };
}

async function patchStatus(n: string, body: object): Promise<V1Pod> {
  return core.patchNamespacedPodStatus({ name: n, namespace: ns, body }, STRATEGIC);
}

function conditionOf(p: V1Pod) {
  return p.status?.conditions?.find((c) => c.type === CONDITION);
}

test('starts in seconds; /livez?verbose lists etcd; the server is the built version', async () => {
  const t = cluster.timings;
  console.log(`start timings (ms from start): ${JSON.stringify(t)}`);
  const live = await k.run(['get', '--raw', '/livez?verbose']);
  assert.equal(live.code, 0, live.stderr);
  assert.match(live.stdout, /\[\+\]etcd ok/);
  assert.match(live.stdout, /livez check passed/);
  const ready = await k.run(['get', '--raw', '/readyz?verbose']);
  assert.match(ready.stdout, /\[\+\]etcd-readiness ok/);
  const v = await k.run(['version', '-o', 'json']);
  assert.equal(v.code, 0, v.stderr);
  const version = JSON.parse(v.stdout) as {
    serverVersion: { gitVersion: string };
    clientVersion: { gitVersion: string };
  };
  assert.match(version.serverVersion.gitVersion, /^v1\.\d+\.\d+/);
  console.log(`server ${version.serverVersion.gitVersion}, kubectl ${version.clientVersion.gitVersion}`);
});

test('the chart can be checked: MutatingAdmissionPolicy (v1beta1) and ValidatingAdmissionPolicy (v1) are served', async () => {
  const r = await k.run(['api-resources', '--api-group=admissionregistration.k8s.io', '-o', 'wide']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /mutatingadmissionpolicies\s+.*admissionregistration\.k8s\.io\/v1beta1/);
  assert.match(r.stdout, /validatingadmissionpolicies\s+.*admissionregistration\.k8s\.io\/v1\s/);
});

test('the scheduler binds a pod to a registered node', async () => {
  const node = name('node');
  await core.createNode({
    body: {
      metadata: { name: node, labels: { 'kubernetes.io/hostname': node } },
      status: {
        conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'test' }],
        allocatable: { cpu: '4', memory: '8Gi', pods: '110' },
        capacity: { cpu: '4', memory: '8Gi', pods: '110' },
      },
    },
  });
  try {
    const p = name('sched');
    await createPod(p);
    const r = await k.run(['wait', '--for=condition=PodScheduled', `pod/${p}`, '-n', ns, '--timeout=30s']);
    assert.equal(r.code, 0, r.stderr);
    const got = await core.readNamespacedPod({ name: p, namespace: ns });
    assert.equal(got.spec?.nodeName, node);
  } finally {
    await core.deleteNode({ name: node });
  }
});

test('kubectl wait --for=condition=pulltrace.io/ImagesPulled returns after a strategic-merge patch of pods/status', async () => {
  const p = name('wait');
  await createPod(p);
  const waiting = k.start(['wait', `--for=condition=${CONDITION}`, `pod/${p}`, '-n', ns, '--timeout=30s']);
  // False first: wait must not return on it.
  await patchStatus(p, { status: { conditions: [condition('False')] } });
  const t0 = Date.now();
  await patchStatus(p, { status: { conditions: [condition('True')] } });
  const r = await waiting.done;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /condition met/);
  console.log(`kubectl wait returned ${Date.now() - t0} ms after the True patch`);
  // The strategic merge patch merged by type: PodScheduled (if any) and ours side by side.
  const got = await core.readNamespacedPod({ name: p, namespace: ns });
  assert.equal(conditionOf(got)?.status, 'True');
});

test('one pods/status patch carries labels, annotations and the condition together (metadata is kept)', async () => {
  const p = name('meta');
  await createPod(p);
  const patched = await patchStatus(p, {
    metadata: {
      labels: { 'pulltrace.io/progress': '63', 'pulltrace.io/eta': '1m5s' },
      annotations: { 'pulltrace.io/phase': 'Downloading', 'pulltrace.io/progress': '63' },
    },
    status: { conditions: [condition('False')] },
  });
  assert.equal(patched.metadata?.labels?.['pulltrace.io/progress'], '63');
  const got = await core.readNamespacedPod({ name: p, namespace: ns });
  const labels = got.metadata?.labels ?? {};
  assert.equal(labels['pulltrace.io/progress'], '63', 'label kept');
  assert.equal(labels['pulltrace.io/eta'], '1m5s');
  assert.equal(labels.app, 'web', 'strategic merge keeps other labels');
  assert.equal(got.metadata?.annotations?.['pulltrace.io/phase'], 'Downloading', 'annotation kept');
  assert.equal(conditionOf(got)?.status, 'False');
  // The same through kubectl (what a user can try by hand).
  const r = await k.run([
    'patch',
    `pod/${p}`,
    '-n',
    ns,
    '--subresource=status',
    '--type=strategic',
    '-p',
    JSON.stringify({
      metadata: {
        labels: { 'pulltrace.io/progress': '100' },
        annotations: { 'pulltrace.io/phase': 'Pulled' },
      },
      status: { conditions: [condition('True')] },
    }),
  ]);
  assert.equal(r.code, 0, r.stderr);
  const after2 = await core.readNamespacedPod({ name: p, namespace: ns });
  const meta2 = after2.metadata ?? {};
  assert.equal(meta2.labels?.['pulltrace.io/progress'], '100');
  assert.equal(meta2.annotations?.['pulltrace.io/phase'], 'Pulled');
  assert.equal(conditionOf(after2)?.status, 'True');
  // Not everything: pods/status never changes spec (nor ownerReferences); a spec change is dropped silently.
  const spec = await patchStatus(p, { spec: { activeDeadlineSeconds: 60 } });
  assert.equal(spec.spec?.activeDeadlineSeconds, undefined);
  assert.equal(spec.metadata?.generation, 1);
});

test('observedGeneration: kubectl wait ignores a condition older than the pod generation; an omitted one keeps the old value', async () => {
  const p = name('gen');
  await createPod(p);
  const wait = (timeout: string) =>
    k.run(['wait', `--for=condition=${CONDITION}`, `pod/${p}`, '-n', ns, `--timeout=${timeout}`]);
  // Generation 1, condition without observedGeneration, no status.observedGeneration: matches.
  await patchStatus(p, { status: { conditions: [condition('True')] } });
  assert.equal((await wait('10s')).code, 0);
  // A spec change bumps metadata.generation (activeDeadlineSeconds may be set on a running pod).
  const bumped = await core.patchNamespacedPod(
    { name: p, namespace: ns, body: { spec: { activeDeadlineSeconds: 3600 } } },
    MERGE,
  );
  assert.equal(bumped.metadata?.generation, 2);
  // kubectl falls back to status.observedGeneration when the condition has none: a kubelet
  // that has not seen generation 2 yet (status.observedGeneration 1) hides our condition.
  await patchStatus(p, { status: { observedGeneration: 1 } });
  const behind = await wait('2s');
  assert.equal(behind.code, 1, 'no match while status.observedGeneration < generation');
  assert.match(behind.stderr, /timed out/);
  // Explicitly stale on the condition: no match either.
  await patchStatus(p, { status: { conditions: [condition('True', { observedGeneration: 1 })] } });
  assert.equal((await wait('2s')).code, 1);
  // The pod's generation on the condition: match, whatever status.observedGeneration says.
  await patchStatus(p, { status: { conditions: [condition('True', { observedGeneration: 2 })] } });
  assert.equal((await wait('10s')).code, 0);
  // Left out later, it is not cleared: the strategic merge keeps the field, and the API server
  // copies the old value into a condition written without one (preserveOldObservedGeneration).
  const kept = await patchStatus(p, { status: { conditions: [condition('False')] } });
  assert.equal(conditionOf(kept)?.observedGeneration, 2);
  const replaced = await core.patchNamespacedPodStatus(
    { name: p, namespace: ns, body: { status: { conditions: [condition('True')] } } },
    MERGE,
  );
  assert.equal(conditionOf(replaced)?.observedGeneration, 2, 'even a JSON merge patch replacing the list');
});

test('a TokenRequest bound to a pod on a node gives the user extra authentication.kubernetes.io/node-name', async () => {
  const nodeName = name('tok-node');
  const tok = await nodeBoundToken(cluster, { namespace: ns, serviceAccount: 'agent', nodeName });
  const claimedNode = tok.claims.node;
  assert.equal(claimedNode?.name, nodeName);
  assert.ok(claimedNode.uid, 'the node exists, so its uid is in the token too');
  assert.equal(tok.claims.pod?.name, tok.pod.metadata?.name);
  const who = kubectlFor(tok.kubeconfigPath);
  try {
    const r = await who.run(['auth', 'whoami', '-o', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const review = JSON.parse(r.stdout) as {
      status: { userInfo: { username: string; extra?: Record<string, string[]> } };
    };
    assert.equal(review.status.userInfo.username, `system:serviceaccount:${ns}:agent`);
    assert.deepEqual(review.status.userInfo.extra?.[NODE_NAME_EXTRA], [nodeName]);
    // No RBAC for it yet: authenticated, not authorized.
    const denied = await who.run(['get', 'pods', '-n', ns]);
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /forbidden/);
  } finally {
    who.cleanup();
  }
});

test('a pod bound to a node with no Node object: the token still names the node (no uid)', async () => {
  const nodeName = name('ghost');
  const tok = await nodeBoundToken(cluster, {
    namespace: ns,
    serviceAccount: 'agent2',
    nodeName,
    createNode: false,
  });
  const claimedNode = tok.claims.node ?? { name: '' };
  assert.equal(claimedNode.name, nodeName);
  assert.equal(claimedNode.uid, undefined);
});
