import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PulltraceError } from '../common/errors.js';
import { FakeContainerdSource, parseFilter, sha256Digest } from './fake-containerd.js';
import type { ContainerdEvent } from '../node-agent/containerd/source.js';

const d = (c: string) => `sha256:${c.repeat(64)}`;
const digests = (xs: { digest: string }[]) => xs.map((x) => x.digest).sort();

function coded(code: string, message?: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof PulltraceError, `a PulltraceError, got ${String(e)}`);
    assert.equal(e.code, code);
    if (message !== undefined) assert.match(e.message, message);
    return true;
  };
}

function store(): FakeContainerdSource {
  const f = new FakeContainerdSource({ clock: () => 1_000_000 });
  f.addContent(d('a'), 10, { labels: { 'containerd.io/gc.ref.content.l.0': d('1'), 'a.b': 'x' } });
  f.addContent(d('b'), 20, {
    labels: { 'containerd.io/gc.ref.content.config': d('2'), 'containerd.io/gc.ref.content.l.0': d('3') },
  });
  f.addContent(d('c'), 30);
  return f;
}

test('label filters as the tracker writes them, OR-ed across the list', async () => {
  const f = store();
  const l0 = (x: string) => `labels."containerd.io/gc.ref.content.l.0"==${x}`;
  assert.deepEqual(digests(await f.listContent([l0(d('1'))])), [d('a')]);
  assert.deepEqual(digests(await f.listContent([l0(d('3'))])), [d('b')]);
  assert.deepEqual(digests(await f.listContent([l0(d('1')), l0(d('3'))])), [d('a'), d('b')]);
  assert.deepEqual(
    digests(await f.listContent([`labels."containerd.io/gc.ref.content.config"==${d('2')}`, l0(d('9'))])),
    [d('b')],
  );
  assert.deepEqual(await f.listContent([l0(d('9'))]), []);
  // A label's value is not another label's: l.0 == the config digest matches nothing.
  assert.deepEqual(await f.listContent([l0(d('2'))]), []);
  assert.deepEqual(digests(await f.listContent()), [d('a'), d('b'), d('c')], 'no filter: everything');
  assert.deepEqual(digests(await f.listContent([])), [d('a'), d('b'), d('c')]);
});

test('field paths, quoting and operators follow containerd', async () => {
  const f = store();
  // Unquoted dotted path: the label key is the rest of the path joined by dots.
  assert.deepEqual(digests(await f.listContent(['labels.a.b==x'])), [d('a')]);
  assert.deepEqual(digests(await f.listContent(['labels."a.b"=="x"'])), [d('a')]);
  assert.deepEqual(digests(await f.listContent(['labels.a.b'])), [d('a')], 'presence');
  assert.deepEqual(digests(await f.listContent([`digest==${d('c')}`])), [d('c')]);
  // Within one filter, commas AND.
  assert.deepEqual(digests(await f.listContent([`labels.a.b==x,digest==${d('a')}`])), [d('a')]);
  assert.deepEqual(await f.listContent([`labels.a.b==x,digest==${d('b')}`]), []);
  // != also matches objects without the field, as in containerd.
  assert.deepEqual(digests(await f.listContent(['labels.a.b!=x'])), [d('b'), d('c')]);
  assert.deepEqual(digests(await f.listContent(['digest~=^sha256:c'])), [d('c')]);
  // size is not a filterable field in containerd's content store.
  assert.deepEqual(await f.listContent(['size==30']), []);
  assert.deepEqual(await f.listContent(['nosuchfield']), []);
});

test('image filters: name (quoted as JSON), target.digest, labels', async () => {
  const f = new FakeContainerdSource();
  f.createImage('127.0.0.1:5000/team/app:v1', { digest: d('m') }, { labels: { k: 'v' } });
  f.createImage('127.0.0.1:5000/team/app@' + d('m'), { digest: d('m') });
  f.createImage('127.0.0.1:5000/team/other:v1', { digest: d('o') });
  const names = async (filters?: string[]) => (await f.listImages(filters)).map((i) => i.name).sort();
  assert.deepEqual(await names([`name==${JSON.stringify('127.0.0.1:5000/team/app:v1')}`]), [
    '127.0.0.1:5000/team/app:v1',
  ]);
  assert.deepEqual(
    await names([
      `name==${JSON.stringify('127.0.0.1:5000/team/other:v1')}`,
      `name==${JSON.stringify('nope')}`,
    ]),
    ['127.0.0.1:5000/team/other:v1'],
  );
  assert.deepEqual(await names([`target.digest==${d('m')}`]), [
    '127.0.0.1:5000/team/app:v1',
    `127.0.0.1:5000/team/app@${d('m')}`,
  ]);
  assert.deepEqual(await names(['labels.k==v']), ['127.0.0.1:5000/team/app:v1']);
  assert.deepEqual(await names(['target.mediatype~=manifest']), await names());
  assert.equal((await names()).length, 3);
});

test('a malformed filter fails the whole call with PT_CONTAINERD_CALL_FAILED', async () => {
  const f = store();
  for (const bad of ['labels."open', 'name=', 'name==a b', '.x==1', 'name=>1', 'a,']) {
    assert.throws(() => parseFilter(bad), coded('PT_CONTAINERD_CALL_FAILED', /invalid filter/), bad);
    await assert.rejects(f.listContent([`digest==${d('a')}`, bad]), coded('PT_CONTAINERD_CALL_FAILED'), bad);
    await assert.rejects(f.listImages([bad]), coded('PT_CONTAINERD_CALL_FAILED'), bad);
  }
  assert.deepEqual(parseFilter(' name == "a,b" , labels."x.y" '), [
    { path: ['name'], op: '==', value: 'a,b' },
    { path: ['labels', 'x.y'], op: 'present', value: '' },
  ]);
});

test('readBlob returns the bytes and refuses blobs larger than maxBytes, like the adapter', async () => {
  const f = new FakeContainerdSource();
  const doc = JSON.stringify({ schemaVersion: 2, layers: [] });
  const info = f.addBlob(doc);
  assert.equal(info.digest, sha256Digest(doc));
  assert.equal(info.size, Buffer.byteLength(doc));
  assert.equal((await f.readBlob(info.digest, info.size)).toString(), doc, 'exactly maxBytes is allowed');
  await assert.rejects(
    f.readBlob(info.digest, info.size - 1),
    coded('PT_CONTAINERD_BAD_DATA', new RegExp(`larger than ${info.size - 1} bytes`)),
  );
  f.addContent(d('e'), 5 * 1024 * 1024);
  await assert.rejects(f.readBlob(d('e'), 4 * 1024 * 1024), coded('PT_CONTAINERD_BAD_DATA', /larger than/));
  assert.deepEqual(await f.readBlob(d('e'), 8 * 1024 * 1024), Buffer.alloc(5 * 1024 * 1024));
  await assert.rejects(f.readBlob(d('f'), 100), coded('PT_CONTAINERD_BAD_DATA', /not found/));
  assert.equal(await f.contentInfo(d('f')), null);
});

test('ingests move, commit into content stamped with the clock, or are abandoned', async () => {
  let now = 1_000_000;
  const f = new FakeContainerdSource({ clock: () => now });
  const ref = `layer-${d('1')}`;
  f.setIngest(ref, 0, 300);
  now += 500;
  f.setIngest(ref, 100, 300);
  const [ing] = await f.listIngests();
  assert.deepEqual(ing, {
    ref,
    offset: 100,
    total: 300,
    expected: '',
    startedAt: new Date(1_000_000),
    updatedAt: new Date(1_000_500),
  });
  assert.throws(() => f.setIngest(ref, 301, 300), /bad ingest offset/);
  now += 500;
  const info = f.commit(ref, { labels: { x: 'y' } });
  assert.deepEqual(await f.listIngests(), []);
  assert.deepEqual(await f.contentInfo(d('1')), info);
  assert.equal(info.size, 300);
  assert.deepEqual(info.createdAt, new Date(1_001_000));
  f.setIngest(`layer-${d('2')}`, 10, 300);
  f.removeIngest(`layer-${d('2')}`);
  assert.deepEqual(await f.listIngests(), []);
  assert.equal(await f.contentInfo(d('2')), null, 'an abandoned ingest stores nothing');
});

test('returned objects are copies: callers cannot change the store', async () => {
  const f = store();
  const [a] = await f.listContent([`digest==${d('a')}`]);
  a!.labels['a.b'] = 'changed';
  assert.deepEqual(digests(await f.listContent(['labels.a.b==x'])), [d('a')]);
});

test('down(), failNext() and close() reject with PT_CONTAINERD_UNAVAILABLE; streams end with an error', async () => {
  const f = store();
  const seen: ContainerdEvent[] = [];
  const errors: Error[] = [];
  const sub = f.subscribe({ onEvent: (e) => seen.push(e), onError: (e) => errors.push(e) });
  f.createImage('x:1', { digest: d('a') });
  f.createImage('x:1', { digest: d('a') });
  f.deleteImage('x:1');
  f.deleteContent(d('c'));
  assert.deepEqual(
    seen.map((e) => e.topic),
    ['/images/create', '/images/update', '/images/delete'],
  );
  assert.equal(f.subscribers(), 1);

  f.failNext('contentInfo');
  await assert.rejects(f.contentInfo(d('a')), coded('PT_CONTAINERD_UNAVAILABLE'));
  assert.equal((await f.contentInfo(d('a')))?.digest, d('a'), 'only the next call fails');
  f.failNext('readBlob', { code: 'PT_CONTAINERD_CALL_FAILED' });
  assert.equal((await f.listIngests()).length, 0, 'other methods are not affected');
  await assert.rejects(f.readBlob(d('a'), 100), coded('PT_CONTAINERD_CALL_FAILED'));
  f.failNext(null, { times: 2 });
  await assert.rejects(f.listImages(), coded('PT_CONTAINERD_UNAVAILABLE'));
  await assert.rejects(f.statSnapshot('overlayfs', 'sha256:x'), coded('PT_CONTAINERD_UNAVAILABLE'));
  assert.equal(await f.statSnapshot('overlayfs', 'sha256:x'), null);
  f.failNext('contentInfo', { after: 2 });
  assert.ok((await f.contentInfo(d('a'))) !== null);
  assert.ok((await f.contentInfo(d('a'))) !== null);
  await assert.rejects(f.contentInfo(d('a')), coded('PT_CONTAINERD_UNAVAILABLE'), 'the third call fails');
  assert.ok((await f.contentInfo(d('a'))) !== null);
  f.failNext('listImages');
  assert.equal(f.clearFailures(), 1);
  assert.equal((await f.listImages()).length, 0);

  f.down();
  assert.equal(errors.length, 1);
  assert.ok(errors[0] instanceof PulltraceError && errors[0].code === 'PT_CONTAINERD_UNAVAILABLE');
  assert.equal(f.subscribers(), 0);
  await assert.rejects(f.listIngests(), coded('PT_CONTAINERD_UNAVAILABLE'));
  await assert.rejects(f.listContent(), coded('PT_CONTAINERD_UNAVAILABLE'));
  const late: Error[] = [];
  f.subscribe({ onEvent: () => undefined, onError: (e) => late.push(e) });
  assert.equal(late.length, 0, 'a stream fails asynchronously, not in subscribe()');
  await Promise.resolve();
  assert.equal(late.length, 1);
  f.up();
  assert.equal((await f.listContent()).length, 2);

  sub.close();
  const again: ContainerdEvent[] = [];
  f.subscribe({ onEvent: (e) => again.push(e), onError: () => undefined }).close();
  f.createImage('y:1', { digest: d('a') });
  assert.equal(again.length, 0, 'a closed subscription gets nothing');
  assert.ok(f.count('listIngests') >= 2);

  f.close();
  await assert.rejects(f.listIngests(), coded('PT_CONTAINERD_UNAVAILABLE', /closed/));
});

test('leases hold the ingests and blobs written under them; a deleted lease lists nothing', async () => {
  const f = new FakeContainerdSource({ clock: () => 1_000 });
  const layer = `sha256:${'c'.repeat(64)}`;
  f.createLease('pull-1', { 'containerd.io/gc.expire': '2026-12-01T00:00:00Z' });
  const m = f.addBlob('{"layers":[]}', { lease: 'pull-1' });
  f.setIngest(`layer-${layer}`, 0, 10, { lease: 'pull-1' });
  f.setIngest(`layer-${layer}`, 5, 10, { lease: 'pull-1' });
  assert.deepEqual(
    (await f.listLeases()).map((l) => l.id),
    ['pull-1'],
  );
  assert.deepEqual(await f.listLeaseResources('pull-1'), [
    { id: m.digest, type: 'content' },
    { id: `layer-${layer}`, type: 'ingests' },
  ]);
  assert.throws(() => {
    f.setIngest('layer-x', 0, 1, { lease: 'nope' });
  }, /no lease nope/);
  f.deleteLease('pull-1');
  assert.deepEqual(await f.listLeaseResources('pull-1'), []);
  f.setSnapshot('overlayfs', { name: 'sha256:chain', parent: '', kind: 'committed', labels: {} });
  assert.equal((await f.statSnapshot('overlayfs', 'sha256:chain'))?.kind, 'committed');
  assert.equal(await f.statSnapshot('native', 'sha256:chain'), null);
});

// What the conformance suite (containerd-conformance.ts) found the fake doing unlike containerd.
test('like containerd: lists in key order, a commit or abort releases the ingest from its lease', async () => {
  const f = new FakeContainerdSource({ clock: () => 1_000 });
  f.createLease('b-pull');
  f.createLease('a-pull');
  f.setIngest(`layer-${d('2')}`, 0, 10, { lease: 'b-pull' });
  f.setIngest(`layer-${d('1')}`, 0, 10, { lease: 'b-pull' });
  f.setIngest(`layer-${d('3')}`, 0, 10, { lease: 'b-pull' });
  f.addContent(d('f'), 1, { lease: 'b-pull' });
  f.addContent(d('e'), 1, { lease: 'b-pull' });
  f.setSnapshot(
    'overlayfs',
    { name: `extract-1 ${d('9')}`, parent: '', kind: 'active', labels: {} },
    { lease: 'b-pull' },
  );
  f.createImage('z:1', { digest: d('e') });
  f.createImage('a:1', { digest: d('e') });
  assert.deepEqual(digests(await f.listContent()), [d('e'), d('f')]);
  assert.deepEqual(
    (await f.listImages()).map((i) => i.name),
    ['a:1', 'z:1'],
  );
  assert.deepEqual(
    (await f.listLeases()).map((l) => l.id),
    ['a-pull', 'b-pull'],
  );
  const held = async () => (await f.listLeaseResources('b-pull')).map((r) => `${r.type} ${r.id}`);
  assert.deepEqual(await held(), [
    `content ${d('e')}`,
    `content ${d('f')}`,
    `ingests layer-${d('1')}`,
    `ingests layer-${d('2')}`,
    `ingests layer-${d('3')}`,
    `snapshots/overlayfs extract-1 ${d('9')}`,
  ]);
  f.commit(`layer-${d('2')}`, { lease: 'b-pull' });
  f.removeIngest(`layer-${d('3')}`);
  f.removeSnapshot('overlayfs', `extract-1 ${d('9')}`);
  assert.deepEqual(await held(), [
    `content ${d('2')}`,
    `content ${d('e')}`,
    `content ${d('f')}`,
    `ingests layer-${d('1')}`,
  ]);
});

test('like containerd: a malformed digest or a snapshotter that is not loaded rejects', async () => {
  const f = new FakeContainerdSource();
  await assert.rejects(f.contentInfo('sha256:abc'), coded('PT_CONTAINERD_CALL_FAILED', /invalid digest/));
  await assert.rejects(f.contentInfo('nope'), coded('PT_CONTAINERD_CALL_FAILED'));
  assert.equal(await f.contentInfo(`sha512:${'a'.repeat(128)}`), null);
  assert.equal(await f.statSnapshot('overlayfs', d('1')), null);
  assert.equal(await f.statSnapshot('native', d('1')), null);
  await assert.rejects(
    f.statSnapshot('btrfs', d('1')),
    coded('PT_CONTAINERD_CALL_FAILED', /not loaded: btrfs/),
  );
  f.setSnapshot('stargz', { name: d('1'), parent: '', kind: 'committed', labels: {} });
  assert.equal(
    (await f.statSnapshot('stargz', d('1')))?.kind,
    'committed',
    'setSnapshot loads its snapshotter',
  );
  const only = new FakeContainerdSource({ snapshotters: ['native'] });
  await assert.rejects(only.statSnapshot('overlayfs', d('1')), coded('PT_CONTAINERD_CALL_FAILED'));
});
