// The chart's per-node rule on the real API server: the node agent's RBAC and its
// ValidatingAdmissionPolicy, rendered by the real helm and applied with the real kubectl; node
// agents authenticated with tokens bound to their node (as the kubelet would mount them). One
// node's agent may write the pods of its own node and no other's; a token without a node is refused.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  ApiException,
  CoreV1Api,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { waitFor } from '../../test-support/net.js';
import { kubectlFor, type Kubectl } from './kubectl.js';
import { startCluster, type Cluster } from './cluster.js';
import { helmTemplate } from './helm.js';
import { writeClusterKubeconfig } from './kubeconfig.js';
import { nodeBoundToken } from './token.js';

const NS = 'pulltrace';
const RELEASE = 't';
const AGENT_SA = `${RELEASE}-pulltrace-node-agent`;
const STRATEGIC = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);
const MERGE = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

let cluster: Cluster;
let k: Kubectl;
let admin: CoreV1Api;
const cleanups: (() => unknown)[] = [];

function client(kubeconfigPath: string): CoreV1Api {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  return kc.makeApiClient(CoreV1Api);
}

function statusCode(err: unknown): number {
  return err instanceof ApiException ? (err as ApiException<unknown>).code : 0;
}

async function agentFor(nodeName: string): Promise<{ api: CoreV1Api; kubeconfigPath: string }> {
  const tok = await nodeBoundToken(cluster, { namespace: NS, serviceAccount: AGENT_SA, nodeName });
  return { api: client(tok.kubeconfigPath), kubeconfigPath: tok.kubeconfigPath };
}

before(async () => {
  cluster = await startCluster();
  cleanups.push(() => cluster.stop());
  k = kubectlFor(cluster.kubeconfigPath);
  cleanups.push(() => k.cleanup());
  admin = client(cluster.kubeconfigPath);
  for (const ns of [NS, 'apps']) await admin.createNamespace({ body: { metadata: { name: ns } } });
  const rendered = await helmTemplate({
    release: RELEASE,
    namespace: NS,
    showOnly: [
      'templates/serviceaccounts.yaml',
      'templates/node-agent-rbac.yaml',
      'templates/node-agent-policy.yaml',
    ],
    apiVersions: ['admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy'],
  });
  const r = await k.run(['apply', '-f', '-'], { input: rendered });
  assert.equal(r.code, 0, r.stderr);
  // Not yet scheduled: no node may write it.
  await admin.createNamespacedPod({
    namespace: 'apps',
    body: {
      metadata: { name: 'unscheduled' },
      spec: { containers: [{ name: 'app', image: 'registry.test/team/app:1' }] },
    },
  });
  for (const node of ['node-a', 'node-b']) {
    await admin.createNamespacedPod({
      namespace: 'apps',
      body: {
        metadata: { name: `app-on-${node}` },
        spec: { nodeName: node, containers: [{ name: 'app', image: 'registry.test/team/app:1' }] },
      },
    });
  }
});

after(async () => {
  for (const fn of cleanups.reverse()) await fn();
});

const condition = { type: 'pulltrace.io/ImagesPulled', status: 'False', reason: 'Downloading', message: 'x' };

test("one node's agent writes its own node's pods and is refused on another node's", async () => {
  const a = await agentFor('node-a');
  // The policy takes effect once the API server has compiled it: poll for the first refusal.
  let refusal = '';
  await waitFor(
    'the ValidatingAdmissionPolicy to refuse node-a writing a pod on node-b',
    async () => {
      try {
        await a.api.patchNamespacedPodStatus(
          { name: 'app-on-node-b', namespace: 'apps', body: { status: { conditions: [condition] } } },
          STRATEGIC,
        );
        return false;
      } catch (err) {
        if (statusCode(err) !== 403) throw err;
        refusal = String((err as ApiException<unknown>).body);
        return true;
      }
    },
    15_000,
    200,
  );
  assert.match(refusal, /may only change pods bound to that node/);
  assert.match(refusal, /node-a/);
  // Its own node: the agent's one patch (labels and condition through pods/status) is allowed.
  await a.api.patchNamespacedPodStatus(
    {
      name: 'app-on-node-a',
      namespace: 'apps',
      body: { metadata: { labels: { 'pulltrace.io/progress': '5' } }, status: { conditions: [condition] } },
    },
    STRATEGIC,
  );
  // The pod itself it may not patch at all, even on its own node: RBAC gives it pods/status only.
  await assert.rejects(
    a.api.patchNamespacedPod(
      {
        name: 'app-on-node-a',
        namespace: 'apps',
        body: { metadata: { labels: { 'pulltrace.io/progress': '5' } } },
      },
      MERGE,
    ),
    (err: unknown) =>
      statusCode(err) === 403 &&
      /cannot patch resource \\*"pods\\*" in API group/.test(String((err as ApiException<unknown>).body)),
  );
  // Labels through pods/status (which the API server keeps, see cluster.test.ts) of another node's pod: refused.
  await assert.rejects(
    a.api.patchNamespacedPodStatus(
      {
        name: 'app-on-node-b',
        namespace: 'apps',
        body: { metadata: { labels: { 'pulltrace.io/progress': '5' } } },
      },
      STRATEGIC,
    ),
    (err: unknown) => statusCode(err) === 403,
  );
  // A pod not yet bound to a node: refused too.
  await assert.rejects(
    a.api.patchNamespacedPodStatus(
      { name: 'unscheduled', namespace: 'apps', body: { status: { conditions: [condition] } } },
      STRATEGIC,
    ),
    (err: unknown) =>
      statusCode(err) === 403 &&
      /may only change pods bound to that node/.test(String((err as ApiException<unknown>).body)),
  );
  // node-b's agent: the other way round.
  const b = await agentFor('node-b');
  await b.api.patchNamespacedPodStatus(
    { name: 'app-on-node-b', namespace: 'apps', body: { status: { conditions: [condition] } } },
    STRATEGIC,
  );
});

test('a token of the agent without a node (not bound to a pod) is refused: fail closed', async () => {
  const tr = await admin.createNamespacedServiceAccountToken({
    name: AGENT_SA,
    namespace: NS,
    body: { spec: { audiences: [], expirationSeconds: 600 } },
  });
  const path = writeClusterKubeconfig(`${cluster.dir}/kubeconfigs/unbound-agent`, {
    server: cluster.url,
    caPath: cluster.caPath,
    credentials: { token: tr.status?.token ?? '' },
  });
  await assert.rejects(
    client(path).patchNamespacedPodStatus(
      { name: 'app-on-node-a', namespace: 'apps', body: { status: { conditions: [condition] } } },
      STRATEGIC,
    ),
    (err: unknown) =>
      statusCode(err) === 403 &&
      /ValidatingAdmissionPolicy .*same-node.* denied request/.test(
        String((err as ApiException<unknown>).body),
      ),
  );
});

test('kubectl auth can-i: the agent may patch pods/status only, and may not patch, create or delete pods', async () => {
  const a = await agentFor('node-a');
  const ka = kubectlFor(a.kubeconfigPath);
  try {
    const can = async (...args: string[]) => (await ka.run(['auth', 'can-i', ...args])).stdout.trim();
    assert.equal(await can('patch', 'pods', '-n', 'apps'), 'no');
    assert.equal(await can('patch', 'pods', '--subresource=status', '-n', 'apps'), 'yes');
    assert.equal(await can('delete', 'pods', '-n', 'apps'), 'no');
    assert.equal(await can('create', 'pods', '-n', 'apps'), 'no');
  } finally {
    ka.cleanup();
  }
});

test('the policy binds only the agent: another ServiceAccount with the same role, and the admin, are not matched', async () => {
  // Same ClusterRole, token bound to node-a: RBAC allows it, and the policy does not apply.
  await admin.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name: 'other' } } });
  const rb = await k.run([
    'create',
    'clusterrolebinding',
    'other-agent-role',
    `--clusterrole=${AGENT_SA}`,
    `--serviceaccount=${NS}:other`,
  ]);
  assert.equal(rb.code, 0, rb.stderr);
  const tok = await nodeBoundToken(cluster, { namespace: NS, serviceAccount: 'other', nodeName: 'node-a' });
  await client(tok.kubeconfigPath).patchNamespacedPodStatus(
    { name: 'app-on-node-b', namespace: 'apps', body: { status: { conditions: [condition] } } },
    STRATEGIC,
  );
  await admin.patchNamespacedPodStatus(
    { name: 'app-on-node-b', namespace: 'apps', body: { status: { conditions: [condition] } } },
    STRATEGIC,
  );
});
