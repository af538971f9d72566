// The store in-process: the API server behaviours pulltrace relies on, without HTTP.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApiError } from './api-error.js';
import { PATCH_TYPES } from './patch.js';
import { DEPLOYMENTS, MUTATING_WEBHOOK_CONFIGURATIONS, PODS } from './resources.js';
import { Store, type AdmissionInput, type StoreChange } from './store.js';
import type { KubeObject, Pod, WatchEvent } from './types.js';

function newPod(name: string, extra: Partial<Pod> = {}): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: { app: 'web' } },
    spec: { containers: [{ name: 'c', image: 'nginx:1.27' }] },
    ...extra,
  };
}

const code = (c: number, reason?: string) => (e: unknown) =>
  e instanceof ApiError && e.code === c && (reason === undefined || e.reason === reason);

test('create fills server fields, resets status, defaults the spec; a second create is 409 AlreadyExists', async () => {
  const store = new Store();
  const created = await store.pods.create({ ...newPod('a'), status: { phase: 'Running' } });
  const m = created.metadata ?? {};
  assert.match(m.uid ?? '', /^[0-9a-f-]{36}$/);
  assert.match(m.creationTimestamp ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.equal(m.namespace, 'default');
  assert.equal(m.generation, 1);
  assert.equal(m.resourceVersion, store.resourceVersion);
  assert.deepEqual(created.status, { phase: 'Pending', qosClass: 'BestEffort' });
  assert.equal(created.spec?.restartPolicy, 'Always');
  assert.equal(created.spec.containers[0]?.imagePullPolicy, 'IfNotPresent');
  await assert.rejects(store.pods.create(newPod('a')), code(409, 'AlreadyExists'));
  const dry = await store.pods.create(newPod('b'), { dryRun: true });
  assert.equal(dry.metadata?.name, 'b');
  assert.equal(store.pods.tryGet({ name: 'b' }), undefined, 'a dry run stores nothing');
});

test('generateName gives distinct names; a missing namespace is 404; bad labels and names are 422', async () => {
  const store = new Store();
  const a = await store.pods.create({ ...newPod(''), metadata: { generateName: 'web-' } });
  const b = await store.pods.create({ ...newPod(''), metadata: { generateName: 'web-' } });
  assert.match(a.metadata?.name ?? '', /^web-[a-z0-9]{5}$/);
  assert.notEqual(a.metadata?.name, b.metadata?.name);
  await assert.rejects(
    store.pods.create({ ...newPod('x'), metadata: { name: 'x', namespace: 'nope' } }),
    code(404),
  );
  await assert.rejects(
    store.pods.create({ ...newPod('x'), metadata: { name: 'x', labels: { app: 'a b' } } }),
    (e: unknown) =>
      code(422, 'Invalid')(e) && (e as ApiError).message.includes('metadata.labels: Invalid value: "a b"'),
  );
  await assert.rejects(store.pods.create(newPod('Bad_Name')), code(422));
  await assert.rejects(store.pods.create({ ...newPod('x'), spec: { containers: [] } }), code(422));
});

test('resourceVersion moves on every change; a stale one is 409 Conflict; a no-op write changes nothing', async () => {
  const store = new Store();
  const a = await store.pods.create(newPod('a'));
  const rv1 = a.metadata?.resourceVersion ?? '';
  const b = await store.pods.patch({ name: 'a' }, PATCH_TYPES.merge, { metadata: { labels: { x: '1' } } });
  const rv2 = b.metadata?.resourceVersion ?? '';
  assert.ok(Number(rv2) > Number(rv1));
  // The stale copy `a` carries rv1: update and patch holding it fail.
  await assert.rejects(
    store.pods.update({ ...a, metadata: { ...a.metadata, labels: { y: '1' } } }),
    code(409, 'Conflict'),
  );
  await assert.rejects(
    store.pods.patch({ name: 'a' }, PATCH_TYPES.merge, {
      metadata: { resourceVersion: rv1, labels: { y: '1' } },
    }),
    (e: unknown) => code(409)(e) && (e as ApiError).message.includes('the object has been modified'),
  );
  // The fresh one goes through.
  const c = await store.pods.update({ ...b, metadata: { ...b.metadata, labels: { y: '1' } } });
  assert.ok(Number(c.metadata?.resourceVersion) > Number(rv2));
  const same = await store.pods.patch({ name: 'a' }, PATCH_TYPES.merge, { metadata: { labels: { y: '1' } } });
  assert.equal(same.metadata?.resourceVersion, c.metadata?.resourceVersion);
});

test('generation moves only when the spec changes; readinessGates and other spec fields are immutable', async () => {
  const store = new Store();
  await store.pods.create(
    newPod('a', {
      spec: { containers: [{ name: 'c', image: 'i:1' }], readinessGates: [{ conditionType: 'x.io/G' }] },
    }),
  );
  const labelled = await store.pods.patch({ name: 'a' }, PATCH_TYPES.merge, {
    metadata: { labels: { l: 'v' } },
  });
  assert.equal(labelled.metadata?.generation, 1);
  const status = await store.pods.patchStatus({ name: 'a' }, PATCH_TYPES.merge, {
    status: { phase: 'Running' },
  });
  assert.equal(status.metadata?.generation, 1);
  const image = await store.pods.patch({ name: 'a' }, PATCH_TYPES.strategic, {
    spec: { containers: [{ name: 'c', image: 'i:2' }] },
  });
  assert.equal(image.metadata?.generation, 2);
  await assert.rejects(
    store.pods.patch({ name: 'a' }, PATCH_TYPES.json, [
      { op: 'add', path: '/spec/readinessGates/-', value: { conditionType: 'y.io/H' } },
    ]),
    (e: unknown) =>
      code(422)(e) && (e as ApiError).message.includes('spec: Forbidden: pod updates may not change fields'),
  );
  await assert.rejects(
    store.pods.patch({ name: 'a' }, PATCH_TYPES.merge, { spec: { nodeName: 'n1' } }),
    code(422),
  );
});

test('the status subresource writes only .status; writes to the pod keep .status', async () => {
  const store = new Store();
  await store.pods.create(newPod('a'));
  const s = await store.pods.patchStatus({ name: 'a' }, PATCH_TYPES.merge, {
    metadata: { labels: { sneaky: '1' } },
    spec: { containers: [{ name: 'c', image: 'other' }] },
    status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] },
  });
  assert.equal(s.metadata?.labels?.sneaky, undefined);
  assert.equal(s.spec?.containers[0]?.image, 'nginx:1.27');
  assert.equal(s.status?.phase, 'Running');
  const m = await store.pods.patch({ name: 'a' }, PATCH_TYPES.merge, {
    metadata: { labels: { l: '1' } },
    status: { phase: 'Failed' },
  });
  assert.equal(m.status?.phase, 'Running');
  assert.equal(m.metadata?.labels?.l, '1');
  // Conditions: strategic merge by type keeps the others, JSON merge replaces the list.
  await store.pods.patchStatus({ name: 'a' }, PATCH_TYPES.strategic, {
    status: { conditions: [{ type: 'x.io/G', status: 'False' }] },
  });
  assert.deepEqual(
    store.pods.get({ name: 'a' }).status?.conditions?.map((c) => c.type),
    ['Ready', 'x.io/G'],
  );
  await store.pods.patchStatus({ name: 'a' }, PATCH_TYPES.merge, {
    status: { conditions: [{ type: 'x.io/G', status: 'True' }] },
  });
  assert.deepEqual(
    store.pods.get({ name: 'a' }).status?.conditions?.map((c) => c.type),
    ['x.io/G'],
  );
});

test('watch from a list resourceVersion replays what changed since, through the selectors', async () => {
  const store = new Store();
  await store.pods.create(newPod('a'));
  const list = store.pods.list({ labelSelector: 'app=web' });
  assert.equal(list.items.length, 1);
  await store.pods.create(newPod('b'));
  await store.pods.create({ ...newPod('c'), metadata: { name: 'c', labels: { app: 'db' } } });
  await store.pods.patch({ name: 'a' }, PATCH_TYPES.merge, { metadata: { labels: { app: 'gone' } } });
  const seen: WatchEvent[] = [];
  const w = store.pods.watch(
    { resourceVersion: list.metadata.resourceVersion, labelSelector: 'app=web' },
    (e) => seen.push(e),
  );
  await store.pods.delete({ name: 'b' });
  w.stop();
  await store.pods.create(newPod('d'));
  assert.deepEqual(
    seen.map((e) => `${e.type} ${e.object.metadata?.name ?? ''}`),
    // a left the selector: a DELETED as the API server's watch sends it.
    ['ADDED b', 'DELETED a', 'DELETED b'],
  );
  const deleted = seen[2]?.object;
  assert.ok(Number(deleted?.metadata?.resourceVersion) > Number(list.metadata.resourceVersion));
});

test('watch without a resourceVersion starts with the current objects; field selectors are honoured', async () => {
  const store = new Store();
  await store.pods.create(newPod('a', { spec: { containers: [{ name: 'c', image: 'i' }], nodeName: 'n1' } }));
  await store.pods.create(newPod('b'));
  const seen: string[] = [];
  const w = store.pods.watch({ fieldSelector: 'spec.nodeName=n1' }, (e) =>
    seen.push(`${e.type} ${e.object.metadata?.name ?? ''}`),
  );
  await store.pods.patch({ name: 'b' }, PATCH_TYPES.merge, { metadata: { labels: { x: '1' } } });
  await store.pods.patch({ name: 'a' }, PATCH_TYPES.merge, { metadata: { labels: { x: '1' } } });
  await store.bindPod({ name: 'b' }, 'n1');
  w.stop();
  assert.deepEqual(seen, ['ADDED a', 'MODIFIED a', 'ADDED b']);
  assert.equal(store.pods.get({ name: 'b' }).status?.conditions?.[0]?.type, 'PodScheduled');
  await assert.rejects(store.bindPod({ name: 'b' }, 'n2'), code(409));
  assert.throws(() => store.pods.watch({ fieldSelector: 'spec.image=x' }, () => undefined), code(400));
});

test('a watch from a resourceVersion older than the history is 410 Expired', async () => {
  const store = new Store({ historyLimit: 3 });
  const first = await store.pods.create(newPod('a'));
  for (let i = 0; i < 5; i++)
    await store.pods.patch({ name: 'a' }, PATCH_TYPES.merge, { metadata: { labels: { i: String(i) } } });
  assert.throws(
    () => store.pods.watch({ resourceVersion: first.metadata?.resourceVersion ?? '' }, () => undefined),
    (e: unknown) => code(410, 'Expired')(e) && (e as ApiError).message.startsWith('too old resource version'),
  );
  // Still within the history: replayed.
  const seen: string[] = [];
  const w = store.pods.watch({ resourceVersion: String(Number(store.resourceVersion) - 2) }, (e) =>
    seen.push(e.object.metadata?.labels?.i ?? ''),
  );
  w.stop();
  assert.deepEqual(seen, ['3', '4']);
});

test('watches that allow bookmarks get BOOKMARK events carrying the current resourceVersion', async () => {
  const store = new Store({ bookmarkIntervalMs: 20 });
  await store.pods.create(newPod('a'));
  const bookmark = await new Promise<WatchEvent>((resolve, reject) => {
    // The store's bookmark timers do not hold the process open; this guard does.
    const guard = setTimeout(() => reject(new Error('no bookmark within 5 s')), 5000);
    const w = store.pods.watch({ resourceVersion: store.resourceVersion, allowWatchBookmarks: true }, (e) => {
      clearTimeout(guard);
      w.stop();
      resolve(e);
    });
  });
  assert.equal(bookmark.type, 'BOOKMARK');
  assert.equal(bookmark.object.kind, 'Pod');
  assert.equal(bookmark.object.metadata?.resourceVersion, store.resourceVersion);
  const initial: string[] = [];
  const w = store.pods.watch({ sendInitialEvents: true, allowWatchBookmarks: true }, (e) =>
    initial.push(
      `${e.type} ${e.object.metadata?.annotations?.['k8s.io/initial-events-end'] ?? e.object.metadata?.name ?? ''}`,
    ),
  );
  w.stop();
  assert.deepEqual(initial, ['ADDED a', 'BOOKMARK true']);
});

test('the admit hook sees each write before it is stored, may patch it or deny it', async () => {
  const inputs: AdmissionInput[] = [];
  const store = new Store({
    admit: (input) => {
      inputs.push(input);
      if (input.object.metadata?.labels?.deny === 'yes') {
        return Promise.resolve({
          allowed: false,
          code: 403,
          reason: 'Forbidden',
          message: 'admission webhook "w" denied the request: no',
        });
      }
      if (input.operation === 'CREATE' && input.resource.resource === 'pods') {
        return Promise.resolve({
          allowed: true,
          patch: [{ op: 'add', path: '/metadata/labels/admitted', value: 'true' }],
        });
      }
      return Promise.resolve({ allowed: true });
    },
  });
  const created = await store.pods.create({
    ...newPod(''),
    metadata: { generateName: 'g-', labels: { app: 'web' } },
  });
  assert.equal(created.metadata?.labels?.admitted, 'true');
  const createInput = inputs[0];
  assert.equal(createInput?.operation, 'CREATE');
  assert.equal(createInput.name, '', 'names are generated after admission');
  assert.equal(createInput.namespace, 'default');
  assert.equal(createInput.object.metadata?.uid, undefined);
  assert.equal(
    (createInput.object as Pod).spec?.restartPolicy,
    'Always',
    'defaults are applied before admission',
  );
  await assert.rejects(
    store.pods.create({ ...newPod('d'), metadata: { name: 'd', labels: { deny: 'yes' } } }),
    (e: unknown) => code(403, 'Forbidden')(e) && (e as ApiError).message.includes('denied the request'),
  );
  const name = created.metadata.name ?? '';
  await store.pods.patchStatus({ name }, PATCH_TYPES.merge, { status: { phase: 'Running' } });
  const upd = inputs.at(-1);
  assert.equal(upd?.operation, 'UPDATE');
  assert.equal(upd.subResource, 'status');
  assert.equal((upd.oldObject?.status as { phase?: string } | undefined)?.phase, 'Pending');
  // A patch that does not apply is the API server's 500, and nothing is stored.
  const bad = new Store({
    admit: () =>
      Promise.resolve({ allowed: true, patch: [{ op: 'add', path: '/metadata/nope/x', value: 1 }] }),
  });
  await assert.rejects(bad.pods.create(newPod('p')), code(500));
  assert.equal(bad.pods.tryGet({ name: 'p' }), undefined);
  // Webhook configurations are never sent to admission.
  const before = inputs.length;
  await store.create(MUTATING_WEBHOOK_CONFIGURATIONS, {
    metadata: { name: 'w', labels: { deny: 'yes' } },
    webhooks: [],
  });
  assert.equal(inputs.length, before);
});

test('listeners see every change; deleting a namespace deletes what is in it', async () => {
  const store = new Store();
  const changes: StoreChange[] = [];
  const unsubscribe = store.subscribe((c) => changes.push(c));
  await store.namespaces.create({ metadata: { name: 'team' } });
  await store.pods.create({ ...newPod('a'), metadata: { name: 'a', namespace: 'team' } });
  await store.create(DEPLOYMENTS, {
    metadata: { name: 'd', namespace: 'team' },
    spec: { template: { spec: { containers: [] } } },
  });
  await store.namespaces.delete({ name: 'team' });
  unsubscribe();
  await store.pods.create(newPod('z'));
  assert.deepEqual(
    changes.map((c) => `${c.type} ${c.resource.resource} ${c.object.metadata?.name ?? ''}`),
    [
      'ADDED namespaces team',
      'ADDED pods a',
      'ADDED deployments d',
      'DELETED pods a',
      'DELETED deployments d',
      'DELETED namespaces team',
    ],
  );
  assert.equal(store.namespaces.get({ name: 'default' }).status?.phase, 'Active');
  assert.equal(
    store.namespaces.get({ name: 'kube-system' }).metadata?.labels?.['kubernetes.io/metadata.name'],
    'kube-system',
  );
  assert.equal(store.list(PODS, { namespace: 'team' }).items.length, 0);
});

test('delete preconditions: a stale uid or resourceVersion is 409', async () => {
  const store = new Store();
  const a = await store.pods.create(newPod('a'));
  await assert.rejects(store.pods.delete({ name: 'a' }, { preconditions: { uid: 'other' } }), code(409));
  await assert.rejects(
    store.pods.delete({ name: 'a' }, { preconditions: { resourceVersion: '1' } }),
    code(409),
  );
  const gone: KubeObject = await store.pods.delete(
    { name: 'a' },
    { preconditions: { uid: a.metadata?.uid ?? '' } },
  );
  assert.equal(gone.metadata?.name, 'a');
  await assert.rejects(store.pods.delete({ name: 'a' }), code(404, 'NotFound'));
});
