// The real API writer (publisher/kube-writer.ts) against the real kube-apiserver (e2e/cluster):
// the condition is merged into the kubelet's conditions by type (a strategic merge patch of
// pods/status), the labels and annotations into the pod's own (a merge patch), and events are
// created — what pulltrace's contract says it writes, checked on Kubernetes itself.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { CoreV1Api, KubeConfig, PatchStrategy, setHeaderOptions, type V1Pod } from '@kubernetes/client-node';
import { CONDITION_IMAGES_PULLED, LABEL_PROGRESS } from '../../common/contract.js';
import { startCluster, type Cluster } from '../../e2e/cluster/cluster.js';
import { KubePodWriter } from '../publisher/kube-writer.js';
import { buildPatch, previousStateOf } from '../publisher/patches.js';
import { podProgress, publishedState } from '../publisher/pod-progress.js';
import { imageStatus } from '../../test-support/publisher.js';

let cluster: Cluster;
let core: CoreV1Api;
let writer: KubePodWriter;
const ns = `pt-${randomBytes(3).toString('hex')}`;

before(async () => {
  cluster = await startCluster();
  const kc = new KubeConfig();
  kc.loadFromFile(cluster.kubeconfigPath);
  core = kc.makeApiClient(CoreV1Api);
  writer = new KubePodWriter(kc);
  await core.createNamespace({ body: { metadata: { name: ns } } });
});

after(async () => {
  await cluster.stop();
});

/** A pod with the kubelet's own conditions on it, as a kubelet writes them. */
async function kubeletPod(name: string): Promise<V1Pod> {
  await core.createNamespacedPod({
    namespace: ns,
    body: {
      metadata: { name, labels: { app: 'web' }, annotations: { 'example.com/keep': 'yes' } },
      spec: { containers: [{ name: 'app', image: 'registry.test/team/app:1' }] },
    },
  });
  const t = new Date();
  return core.patchNamespacedPodStatus(
    {
      name,
      namespace: ns,
      body: {
        status: {
          conditions: [
            // Conditions the kubelet owns (the scheduler writes PodScheduled: no node here).
            { type: 'ContainersReady', status: 'True', lastTransitionTime: t },
            { type: 'Ready', status: 'False', reason: 'ContainersNotReady', lastTransitionTime: t },
          ],
        },
      },
    },
    setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
  );
}

test('one pods/status patch: the condition joins the kubelet’s conditions; labels and annotations join the pod’s own', async () => {
  const pod = await kubeletPod('web-0');
  const state = publishedState(podProgress([imageStatus()]), { now: new Date() });
  const patch = buildPatch(previousStateOf(pod), state);
  assert.ok(patch?.metadata !== undefined && patch.status !== undefined);
  await writer.patchStatus(ns, 'web-0', patch);
  const got = await core.readNamespacedPod({ name: 'web-0', namespace: ns });
  assert.deepEqual(
    (got.status?.conditions ?? [])
      .filter((c) => c.type !== 'PodScheduled')
      .map((c) => [c.type, c.status])
      .sort(),
    [
      ['ContainersReady', 'True'],
      ['Ready', 'False'],
      [CONDITION_IMAGES_PULLED, 'False'],
    ],
    'the kubelet’s conditions are still there',
  );
  const labels = got.metadata?.labels ?? {};
  const annotations = got.metadata?.annotations ?? {};
  assert.equal(labels.app, 'web');
  assert.equal(labels[LABEL_PROGRESS], '63');
  assert.equal(annotations['example.com/keep'], 'yes');
  // Read back, the written state patches to nothing.
  assert.equal(buildPatch(previousStateOf(got), state), null);
});

test('a later condition update replaces ours only, by type', async () => {
  const pod = await kubeletPod('web-1');
  const first = publishedState(podProgress([imageStatus()]), { now: new Date() });
  const p1 = buildPatch(previousStateOf(pod), first);
  if (p1 !== null) await writer.patchStatus(ns, 'web-1', p1);
  const after1 = await core.readNamespacedPod({ name: 'web-1', namespace: ns });
  const done = publishedState(
    podProgress([imageStatus({ phase: 'Pulled', percent: 100, bytesDone: 67_000_000, etaSeconds: 0 })]),
    { now: new Date(), previous: previousStateOf(after1).condition },
  );
  const p2 = buildPatch(previousStateOf(after1), done);
  assert.ok(p2?.status !== undefined);
  await writer.patchStatus(ns, 'web-1', p2);
  const got = await core.readNamespacedPod({ name: 'web-1', namespace: ns });
  const ours = (got.status?.conditions ?? []).filter((c) => c.type === CONDITION_IMAGES_PULLED);
  assert.equal(ours.length, 1, 'one condition of our type');
  assert.equal(ours[0]?.status, 'True');
  assert.deepEqual(
    (got.status?.conditions ?? [])
      .map((c) => c.type)
      .filter((c) => c !== 'PodScheduled')
      .sort(),
    ['ContainersReady', 'Ready', CONDITION_IMAGES_PULLED],
  );
});

test('events are created on the pod', async () => {
  const pod = await kubeletPod('web-2');
  await writer.createEvent(ns, {
    metadata: { generateName: 'web-2.', namespace: ns },
    involvedObject: { kind: 'Pod', apiVersion: 'v1', name: 'web-2', namespace: ns, uid: pod.metadata?.uid },
    type: 'Normal',
    reason: 'ImagesPulled',
    message: 'nginx:1.27 pulled',
    source: { component: 'pulltrace-node-agent' },
  });
  const events = await core.listNamespacedEvent({
    namespace: ns,
    fieldSelector: `involvedObject.name=web-2`,
  });
  // The scheduler adds its own (FailedScheduling: no node here); ours is the agent's.
  const ours = events.items.filter((e) => e.source?.component === 'pulltrace-node-agent');
  assert.deepEqual(
    ours.map((e) => [e.reason, e.involvedObject.uid]),
    [['ImagesPulled', pod.metadata?.uid]],
  );
});
