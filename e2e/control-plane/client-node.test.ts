// @kubernetes/client-node 1.4 against the control-plane stand-in over HTTP: what the node
// agent and the kubelet stand-in use (typed calls, patches through options, informers, watch).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { randomBytes } from 'node:crypto';
import {
  ApiException,
  CoreV1Api,
  KubeConfig,
  ListWatch,
  PatchStrategy,
  Watch,
  makeInformer,
  setHeaderOptions,
  type V1Pod,
} from '@kubernetes/client-node';
import { waitFor } from '../../test-support/net.js';
import { startControlPlane, type ControlPlane } from './control-plane.js';
import { PATCH_TYPES } from './patch.js';
import type { KubeObject } from './types.js';

let cp: ControlPlane;
let kc: KubeConfig;
let api: CoreV1Api;

before(async () => {
  cp = await startControlPlane({ historyLimit: 50, bookmarkIntervalMs: 50 });
  kc = new KubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);
  api = kc.makeApiClient(CoreV1Api);
});

after(async () => {
  await cp.stop();
});

const name = (p: string) => `${p}-${randomBytes(3).toString('hex')}`;
const namespace = 'default';
const STRATEGIC = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);

function pod(n: string, labels: Record<string, string> = { app: 'web' }): V1Pod {
  return {
    metadata: { name: n, labels },
    spec: { containers: [{ name: 'c', image: 'registry.test/app:1' }] },
  };
}

test('typed calls: create, read, list with label and field selectors, events by involvedObject', async () => {
  const n = name('typed');
  const created = await api.createNamespacedPod({ namespace, body: pod(n, { app: 'typed' }) });
  assert.ok(created.metadata?.creationTimestamp instanceof Date);
  const read = await api.readNamespacedPod({ name: n, namespace });
  assert.equal(read.metadata?.uid, created.metadata.uid);
  assert.equal(read.status?.phase, 'Pending');
  const byLabel = await api.listNamespacedPod({ namespace, labelSelector: 'app=typed' });
  assert.deepEqual(
    byLabel.items.map((p) => p.metadata?.name),
    [n],
  );
  const byField = await api.listNamespacedPod({
    namespace,
    fieldSelector: `metadata.name=${n},status.phase=Pending`,
  });
  assert.equal(byField.items.length, 1);
  assert.ok(Number(byField.metadata?.resourceVersion) >= Number(read.metadata?.resourceVersion));
  await api.createNamespacedEvent({
    namespace,
    body: {
      metadata: { name: `${n}.1` },
      involvedObject: { kind: 'Pod', name: n, namespace, uid: created.metadata.uid ?? '' },
      reason: 'Pulled',
      message: 'done',
      type: 'Normal',
    },
  });
  const events = await api.listNamespacedEvent({
    namespace,
    fieldSelector: `involvedObject.uid=${created.metadata.uid ?? ''}`,
  });
  assert.deepEqual(
    events.items.map((e) => e.reason),
    ['Pulled'],
  );
  await assert.rejects(
    api.readNamespacedPod({ name: 'nope', namespace }),
    (e: unknown) => e instanceof ApiException && e.code === 404,
  );
});

test('patchNamespacedPod with a strategic merge patch through options; status conditions merge by type', async () => {
  const n = name('smp');
  await api.createNamespacedPod({ namespace, body: pod(n) });
  const patched = await api.patchNamespacedPod(
    { name: n, namespace, body: { metadata: { labels: { 'pulltrace.io/progress': '10' } } } },
    STRATEGIC,
  );
  assert.deepEqual(patched.metadata?.labels, { app: 'web', 'pulltrace.io/progress': '10' });
  for (const cond of [
    { type: 'Ready', status: 'False' },
    { type: 'pulltrace.io/ImagesPulled', status: 'False', reason: 'Downloading' },
    { type: 'pulltrace.io/ImagesPulled', status: 'True', reason: 'Pulled' },
  ]) {
    await api.patchNamespacedPodStatus(
      { name: n, namespace, body: { status: { conditions: [cond] } } },
      STRATEGIC,
    );
  }
  const conditions = (await api.readNamespacedPodStatus({ name: n, namespace })).status?.conditions ?? [];
  assert.deepEqual(
    conditions.map((c) => `${c.type}=${c.status}`),
    ['Ready=False', 'pulltrace.io/ImagesPulled=True'],
  );
  // Without the option client-node sends a JSON patch, which must be a list.
  await assert.rejects(
    api.patchNamespacedPod({ name: n, namespace, body: { metadata: { labels: { x: '1' } } } }),
    (e: unknown) => e instanceof ApiException && e.code === 400,
  );
});

test('replaceNamespacedPod and replaceNamespacedPodStatus: a stale resourceVersion is 409 Conflict', async () => {
  const n = name('stale');
  const created = await api.createNamespacedPod({ namespace, body: pod(n) });
  await api.patchNamespacedPod({ name: n, namespace, body: { metadata: { labels: { x: '1' } } } }, STRATEGIC);
  const stale: V1Pod = {
    metadata: { name: n, resourceVersion: created.metadata?.resourceVersion ?? '', labels: { y: '1' } },
    spec: created.spec,
  };
  await assert.rejects(
    api.replaceNamespacedPod({ name: n, namespace, body: stale }),
    (e: unknown) =>
      e instanceof ApiException && e.code === 409 && String(e.body).includes('the object has been modified'),
  );
  const fresh = await api.readNamespacedPod({ name: n, namespace });
  const replaced = await api.replaceNamespacedPod({
    name: n,
    namespace,
    body: {
      metadata: { name: n, resourceVersion: fresh.metadata?.resourceVersion ?? '', labels: { y: '1' } },
      spec: fresh.spec,
    },
  });
  const replacedRv = replaced.metadata?.resourceVersion ?? '';
  assert.deepEqual(replaced.metadata?.labels, { y: '1' });
  // PUT pods/status: only the status is taken, the resourceVersion is still a precondition.
  const status = await api.replaceNamespacedPodStatus({
    name: n,
    namespace,
    body: {
      metadata: { name: n, resourceVersion: replacedRv, labels: { z: '1' } },
      status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] },
    },
  });
  assert.equal(status.status?.phase, 'Running');
  assert.deepEqual(status.metadata?.labels, { y: '1' });
  await assert.rejects(
    api.replaceNamespacedPodStatus({
      name: n,
      namespace,
      body: {
        metadata: { name: n, resourceVersion: replacedRv },
        status: { phase: 'Failed' },
      },
    }),
    (e: unknown) => e instanceof ApiException && e.code === 409,
  );
});

test('makeInformer: list then watch; sees adds, updates and deletes made by anyone', async () => {
  const app = name('inf');
  const informer = makeInformer(
    kc,
    `/api/v1/namespaces/${namespace}/pods`,
    () => api.listNamespacedPod({ namespace, labelSelector: `app=${app}` }),
    `app=${app}`,
  );
  const seen: string[] = [];
  informer.on('add', (p) => seen.push(`add ${p.metadata?.name ?? ''}`));
  informer.on('update', (p) =>
    seen.push(`update ${p.metadata?.name ?? ''} ${p.metadata?.labels?.step ?? ''}`),
  );
  informer.on('delete', (p) => seen.push(`delete ${p.metadata?.name ?? ''}`));
  const first = name('first');
  await cp.store.pods.create({
    metadata: { name: first, labels: { app } },
    spec: { containers: [{ name: 'c', image: 'x' }] },
  });
  const before = cp.store.watchCount();
  await informer.start();
  await waitFor('the informer watch', () => Promise.resolve(cp.store.watchCount() > before), 10_000, 20);
  const second = name('second');
  await api.createNamespacedPod({ namespace, body: pod(second, { app }) });
  await cp.store.pods.patch({ name: second }, PATCH_TYPES.merge, { metadata: { labels: { step: '2' } } });
  await cp.store.pods.delete({ name: first });
  await waitFor('the informer events', () => Promise.resolve(seen.length >= 4), 10_000, 20);
  await informer.stop();
  assert.deepEqual(seen, [`add ${first}`, `add ${second}`, `update ${second} 2`, `delete ${first}`]);
  assert.deepEqual(
    informer.list(namespace).map((p) => p.metadata?.name),
    [second],
  );
});

test('Watch: bookmarks when allowed; a too-old resourceVersion is an ERROR event with a 410 Status', async () => {
  const n = name('w');
  const created = await cp.store.pods.create({
    metadata: { name: n },
    spec: { containers: [{ name: 'c', image: 'x' }] },
  });
  const watch = new Watch(kc);
  const events: { type: string; obj: KubeObject }[] = [];
  let ended: unknown = 'not yet';
  const req = await watch.watch(
    `/api/v1/namespaces/${namespace}/pods`,
    {
      resourceVersion: cp.store.resourceVersion,
      allowWatchBookmarks: true,
      fieldSelector: `metadata.name=${n}`,
    },
    (type, obj: KubeObject) => events.push({ type, obj }),
    (err) => {
      ended = err;
    },
  );
  await cp.store.pods.patch({ name: n }, PATCH_TYPES.merge, { metadata: { labels: { a: '1' } } });
  await waitFor('a bookmark', () => Promise.resolve(events.some((e) => e.type === 'BOOKMARK')), 10_000, 20);
  req.abort();
  assert.equal(events[0]?.type, 'MODIFIED');
  assert.equal(events[0].obj.metadata?.labels?.a, '1');
  const bookmark = events.find((e) => e.type === 'BOOKMARK');
  assert.equal(bookmark?.obj.metadata?.resourceVersion, cp.store.resourceVersion);

  // Push the pod's creation out of the 50-change history.
  for (let i = 0; i < 60; i++)
    await cp.store.pods.patch({ name: n }, PATCH_TYPES.merge, { metadata: { labels: { i: String(i) } } });
  const expired: { type: string; obj: KubeObject }[] = [];
  ended = 'not yet';
  await watch.watch(
    `/api/v1/namespaces/${namespace}/pods`,
    { resourceVersion: created.metadata?.resourceVersion ?? '' },
    (type, obj: KubeObject) => expired.push({ type, obj }),
    (err) => {
      ended = err;
    },
  );
  await waitFor('the watch to end', () => Promise.resolve(ended !== 'not yet'), 10_000, 20);
  assert.equal(expired.length, 1);
  assert.equal(expired[0]?.type, 'ERROR');
  assert.deepEqual(
    [expired[0].obj.kind, expired[0].obj.code, expired[0].obj.reason],
    ['Status', 410, 'Expired'],
  );
});

test('ListWatch: when its resourceVersion has left the history, the watch gets 410 and it relists', async () => {
  const app = name('lw');
  let lists = 0;
  const lw = new ListWatch<V1Pod>(
    `/api/v1/namespaces/${namespace}/pods`,
    new Watch(kc),
    () => {
      lists++;
      return api.listNamespacedPod({ namespace, labelSelector: `app=${app}` });
    },
    false,
    `app=${app}`,
  );
  const before = cp.store.watchCount();
  await lw.start();
  await waitFor('the watch', () => Promise.resolve(cp.store.watchCount() > before), 10_000, 20);
  const a = name('lwa');
  await cp.store.pods.create({
    metadata: { name: a, labels: { app } },
    spec: { containers: [{ name: 'c', image: 'x' }] },
  });
  await waitFor('a in the cache', () => Promise.resolve(lw.get(a, namespace) !== undefined), 10_000, 20);
  // Changes the informer does not see (other labels) push its resourceVersion out of the history.
  const other = name('other');
  await cp.store.pods.create({
    metadata: { name: other },
    spec: { containers: [{ name: 'c', image: 'x' }] },
  });
  for (let i = 0; i < 60; i++)
    await cp.store.pods.patch({ name: other }, PATCH_TYPES.merge, { metadata: { labels: { i: String(i) } } });
  assert.equal(lists, 1);
  cp.closeWatchStreams();
  await waitFor('the relist', () => Promise.resolve(lists === 2), 10_000, 20);
  const b = name('lwb');
  await cp.store.pods.create({
    metadata: { name: b, labels: { app } },
    spec: { containers: [{ name: 'c', image: 'x' }] },
  });
  await waitFor('b in the cache', () => Promise.resolve(lw.get(b, namespace) !== undefined), 10_000, 20);
  await lw.stop();
  assert.deepEqual(
    lw
      .list(namespace)
      .map((p) => p.metadata?.name)
      .sort(),
    [a, b].sort(),
  );
});
