// Discovery as production nodes run it (discard_unpacked_layers: no layer labels, layer blobs
// collected after unpack, shared layers present only as snapshots), on a scripted containerd.
// The same cases on real containerd 1.6/1.7/2.1: node-agent/integration/tracker.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../common/logging.js';
import { FakeContainerdSource, sha256Digest } from '../../test-support/fake-containerd.js';
import { chainIds, MEDIA_TYPES, type BlobRef } from './manifest.js';
import { PullTracker } from './tracker.js';

const MiB = 1024 * 1024;
const SOURCE = 'containerd.io/distribution.source.registry.test';

interface Img {
  config: Buffer;
  configRef: BlobRef;
  layers: BlobRef[];
  diffIds: string[];
  manifest: Buffer;
  digest: string;
}

function layer(name: string, size: number): BlobRef & { diffId: string } {
  return { digest: sha256Digest(`${name} gz`), size, diffId: sha256Digest(`${name} tar`) };
}

function image(layers: (BlobRef & { diffId: string })[]): Img {
  const diffIds = layers.map((l) => l.diffId);
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: diffIds } }),
  );
  const configRef = { digest: sha256Digest(config), size: config.length };
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociManifest,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...configRef },
      layers: layers.map((l) => ({
        mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
        digest: l.digest,
        size: l.size,
      })),
    }),
  );
  return { config, configRef, layers, diffIds, manifest, digest: sha256Digest(manifest) };
}

class Node {
  t = Date.parse('2026-11-30T12:00:00Z');
  readonly fake = new FakeContainerdSource({ clock: () => this.t });
  readonly logs: Record<string, unknown>[] = [];
  readonly tracker = new PullTracker({
    source: this.fake,
    clock: () => this.t,
    platform: 'linux/amd64',
    logger: createLogger('test', 'debug', {
      write: (line: string) => {
        this.logs.push(JSON.parse(line) as Record<string, unknown>);
      },
    }),
  });

  at(ms: number): this {
    this.t += ms;
    return this;
  }

  /** The start of a CRI pull with discard_unpacked_layers: a lease, the manifest (config label only), the config. */
  begin(img: Img, lease: string): void {
    this.fake.createLease(lease);
    this.fake.addBlob(img.manifest, {
      lease,
      labels: { 'containerd.io/gc.ref.content.config': img.configRef.digest, [SOURCE]: 'team/app' },
    });
    this.fake.addBlob(img.config, { lease });
  }

  /** The end: the record, the lease gone, the layer blobs collected, snapshots by chain ID. */
  end(img: Img, lease: string, name: string): void {
    for (const id of chainIds(img.diffIds)) {
      this.fake.setSnapshot('overlayfs', { name: id, parent: '', kind: 'committed', labels: {} });
    }
    this.fake.createImage(name, { digest: img.digest });
    this.fake.deleteLease(lease);
    for (const l of img.layers) this.collect(l.digest);
  }

  private collect(digest: string): void {
    try {
      this.fake.deleteContent(digest);
    } catch {
      // not committed (never fetched by this pull)
    }
  }

  async poll() {
    await this.tracker.pollOnce();
    return this.tracker.snapshot().pulls;
  }
}

test('discard_unpacked_layers: a pull with no layer labels is found through its lease from the first report, and ends Pulled', async () => {
  const n = new Node();
  const a = layer('a', 12 * MiB);
  const b = layer('b', 12 * MiB);
  const img = image([a, b]);
  n.begin(img, 'lease-1');
  n.fake.setIngest(`layer-${a.digest}`, MiB, a.size, { lease: 'lease-1' });
  n.fake.setIngest(`layer-${b.digest}`, 0, b.size, { lease: 'lease-1' });
  const [first] = await n.poll();
  assert.ok(first !== undefined, 'found at the first poll that sees a layer');
  assert.equal(first.manifestDigest, img.digest);
  assert.equal(
    first.status.bytesTotal,
    img.configRef.size + 24 * MiB,
    'the whole size from the first report',
  );
  assert.equal(first.status.bytesCached, 0);
  assert.deepEqual(first.sources, ['registry.test/team/app']);
  assert.equal(n.fake.count('listContent'), 0, 'no label lookup needed');
  let last = first.status.percent;
  for (let off = 2 * MiB; off <= 12 * MiB; off += 2 * MiB) {
    n.at(1000).fake.setIngest(`layer-${a.digest}`, off, a.size, { lease: 'lease-1' });
    n.fake.setIngest(`layer-${b.digest}`, off, b.size, { lease: 'lease-1' });
    const [p] = await n.at(0).poll();
    assert.ok(p !== undefined && p.status.percent >= last, 'percent never goes back');
    last = p.status.percent;
  }
  n.at(500).fake.commit(`layer-${a.digest}`, { lease: 'lease-1' });
  n.fake.commit(`layer-${b.digest}`, { lease: 'lease-1' });
  // Unpack, the record, the lease deleted and the layer blobs collected, all before the next poll.
  n.end(img, 'lease-1', 'registry.test/team/app:1');
  const [done] = await n.at(500).poll();
  assert.equal(done?.status.phase, 'Pulled');
  assert.equal(done.status.percent, 100);
  assert.equal(done.status.bytesDone, done.status.bytesTotal);
  assert.equal(done.status.layersDone, 2);
  assert.deepEqual(done.names, ['registry.test/team/app:1']);
});

test('discard_unpacked_layers: layers present only as snapshots count as cached; the pull ends Pulled, not Failed', async () => {
  const n = new Node();
  const a = layer('a', 12 * MiB);
  const b = layer('b', 12 * MiB);
  const c = layer('c', 10 * MiB);
  const base = image([a, b]);
  const derived = image([a, b, c]);
  // The base image was pulled earlier: its layers are snapshots, its blobs gone.
  for (const id of chainIds(base.diffIds))
    n.fake.setSnapshot('overlayfs', { name: id, parent: '', kind: 'committed', labels: {} });
  n.begin(derived, 'lease-2');
  n.fake.setIngest(`layer-${c.digest}`, MiB, c.size, { lease: 'lease-2' });
  const [p] = await n.poll();
  assert.equal(
    p?.status.bytesTotal,
    derived.configRef.size + 10 * MiB,
    'only the new layer and the config to fetch',
  );
  assert.equal(p.status.bytesCached, 24 * MiB);
  assert.equal(p.status.layersDone, 2);
  assert.equal(p.status.layersTotal, 3);
  n.at(1000).fake.commit(`layer-${c.digest}`, { lease: 'lease-2' });
  n.end(derived, 'lease-2', 'registry.test/team/app:2');
  for (let i = 0; i < 15; i++) await n.at(1000).poll();
  const [end] = n.tracker.snapshot().pulls;
  assert.equal(end?.status.phase, 'Pulled');
  assert.equal(end.status.bytesCached, 24 * MiB);
});

test('a layer listed twice in the manifest is fetched and counted once', async () => {
  const n = new Node();
  const a = layer('a', 10 * MiB);
  const b = layer('b', 5 * MiB);
  const img = image([a, b, a]);
  n.begin(img, 'l');
  n.fake.setIngest(`layer-${a.digest}`, 5 * MiB, a.size, { lease: 'l' });
  const [p] = await n.poll();
  assert.equal(p?.status.bytesTotal, img.configRef.size + 15 * MiB);
  assert.equal(p.status.layersTotal, 2);
  n.at(1000).fake.commit(`layer-${a.digest}`, { lease: 'l' });
  n.fake.setIngest(`layer-${b.digest}`, 4 * MiB, b.size, { lease: 'l' });
  const [q] = await n.poll();
  assert.equal(q?.status.layersDone, 1);
  assert.equal(
    q.status.percent,
    Math.floor((100 * (img.configRef.size + 14 * MiB)) / (img.configRef.size + 15 * MiB)),
  );
  n.at(1000).fake.commit(`layer-${b.digest}`, { lease: 'l' });
  n.end(img, 'l', 'registry.test/team/app:dup');
  const [r] = await n.poll();
  assert.equal(r?.status.layersDone, 2);
  assert.ok(r.status.layersDone <= r.status.layersTotal);
});

test('a lease whose manifest is not JSON is skipped, others unaffected; a lease that vanishes breaks nothing', async () => {
  const n = new Node();
  n.fake.createLease('bad');
  n.fake.addBlob('{not json', {
    lease: 'bad',
    labels: { 'containerd.io/gc.ref.content.config': sha256Digest('x') },
  });
  const orphan = layer('orphan', 4 * MiB);
  n.fake.setIngest(`layer-${orphan.digest}`, MiB, orphan.size, { lease: 'bad' });
  const a = layer('a', 8 * MiB);
  const img = image([a]);
  n.begin(img, 'good');
  n.fake.setIngest(`layer-${a.digest}`, MiB, a.size, { lease: 'good' });
  const pulls = await n.poll();
  assert.deepEqual(
    pulls.map((p) => p.manifestDigest),
    [img.digest],
  );
  assert.equal(n.tracker.lastError, null);
  // The lease vanishes mid-pull: nothing breaks, the known pull goes on.
  n.fake.deleteLease('bad');
  n.at(1000).fake.setIngest(`layer-${a.digest}`, 2 * MiB, a.size, { lease: 'good' });
  const again = await n.poll();
  assert.equal(again.length, 1);
  assert.equal(n.tracker.lastError, null);
});

test('unknown ingest ref forms are ignored; attestation and sha512 refs do not break a poll', async () => {
  const n = new Node();
  n.fake.setIngest('something-odd', 1, 10);
  n.fake.setIngest(`attestation-sha256:${'e'.repeat(64)}`, 1, 10);
  n.fake.setIngest(`layer-sha512:${'f'.repeat(128)}`, 1, 10);
  n.fake.setIngest(`docker.io/library/x:1@sha256:${'9'.repeat(64)}`, 1, 10);
  assert.deepEqual(await n.poll(), []);
  assert.equal(n.tracker.lastError, null);
});

test('a pull waiting on a layer another pull fetches has no ingest of its own: found through its lease at once', async () => {
  const n = new Node();
  const shared = layer('shared', 10 * MiB);
  const own1 = layer('own1', 2 * MiB);
  const own2 = layer('own2', 2 * MiB);
  const first = image([shared, own1]);
  const second = image([shared, own2]);
  n.begin(first, 'p1');
  n.fake.setIngest(`layer-${shared.digest}`, 3 * MiB, shared.size, { lease: 'p1' });
  n.begin(second, 'p2'); // containerd holds its fetch of the shared layer: no ingest in p2
  const pulls = await n.poll();
  assert.deepEqual(pulls.map((p) => p.manifestDigest).sort(), [first.digest, second.digest].sort());
  const p2 = pulls.find((p) => p.manifestDigest === second.digest);
  assert.equal(p2?.status.bytesTotal, second.configRef.size + 12 * MiB);
  assert.equal(p2.status.bytesDone, second.configRef.size + 3 * MiB, 'the shared layer’s bytes count for it');
  assert.equal(p2.status.phase, 'Downloading');
});

test('an OCI artifact with no layers is a pull of its config alone; an unknown manifest media type is skipped with a reason', async () => {
  const n = new Node();
  const config = Buffer.from('{"artifact":true}');
  const artifact = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociManifest,
      artifactType: 'application/vnd.example.sbom',
      config: {
        mediaType: 'application/vnd.oci.empty.v1+json',
        digest: sha256Digest(config),
        size: config.length,
      },
      layers: [],
    }),
  );
  n.fake.createLease('art');
  n.fake.addBlob(artifact, {
    lease: 'art',
    labels: { 'containerd.io/gc.ref.content.config': sha256Digest(config) },
  });
  n.fake.setIngest(`config-${sha256Digest(config)}`, 0, config.length, { lease: 'art' });
  const weird = Buffer.from(
    JSON.stringify({ mediaType: 'application/vnd.oci.artifact.manifest.v1+json', blobs: [] }),
  );
  n.fake.createLease('weird');
  n.fake.addBlob(weird, {
    lease: 'weird',
    labels: { 'containerd.io/gc.ref.content.config': sha256Digest('c') },
  });
  const odd = layer('odd', MiB);
  n.fake.setIngest(`layer-${odd.digest}`, 0, odd.size, { lease: 'weird' });
  const pulls = await n.poll();
  assert.deepEqual(
    pulls.map((p) => [p.manifestDigest, p.status.layersTotal]),
    [[sha256Digest(artifact), 0]],
  );
  assert.equal(n.tracker.lastError, null);
  const skipped = n.logs.find((l) => l.msg === 'cannot read manifest; its pull is not tracked');
  assert.equal(skipped?.digest, sha256Digest(weird));
  assert.match(JSON.stringify(skipped.err), /manifest has no layers/);
});

test('a big image pulling with the event stream live: no call walks the whole store, the record is read by name', async () => {
  const n = new Node();
  const layers = Array.from({ length: 16 }, (_, i) => layer(`big-${i}`, 2 * MiB));
  const img = image(layers);
  const tracker = new PullTracker({
    source: n.fake,
    clock: () => n.t,
    platform: 'linux/amd64',
    pollIntervalMs: 3_600_000, // the test polls by hand; start() only subscribes (and polls once)
  });
  tracker.start();
  try {
    n.begin(img, 'big');
    // containerd fetches 3 layers at a time: most layers wait their turn, unseen.
    for (let i = 0; i < 16; i++) {
      const l = layers[i]!;
      n.fake.setIngest(`layer-${l.digest}`, MiB, l.size, { lease: 'big' });
      n.at(500);
      await tracker.pollOnce();
      n.fake.commit(`layer-${l.digest}`, { lease: 'big' });
      n.at(500);
      await tracker.pollOnce();
    }
    assert.equal(n.fake.count('listContent'), 0, 'no Content/List (it walks every blob)');
    const listsBefore = n.fake.count('listImages');
    assert.ok(listsBefore <= 2, `Images/List (walks every record) ${listsBefore} times`);
    n.fake.createImage('registry.test/team/app:big', { digest: img.digest }); // the event
    await tracker.pollOnce();
    assert.ok(n.fake.count('getImage') >= 1, 'the record named by the event is read by name');
    assert.equal(tracker.snapshot().pulls[0]?.status.phase, 'Pulled');
  } finally {
    tracker.stop();
  }
});
