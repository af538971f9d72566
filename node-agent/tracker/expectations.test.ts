// Which pull an image a pod waits for is tied to: by record name or digest, never by
// repository alone; pull policy Always; tag@digest references. A scripted containerd, and the
// registry's answers as a plain map (the registry client has its own tests on a real registry).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeContainerdSource, sha256Digest } from '../../test-support/fake-containerd.js';
import { formatImageRef, type ImageRef } from '../../common/image-ref.js';
import { MEDIA_TYPES } from './manifest.js';
import { PullTracker } from './tracker.js';

const MiB = 1024 * 1024;
const T0 = Date.parse('2026-11-30T12:00:00Z');

function manifest(name: string, layerSize: number) {
  const config = { digest: sha256Digest(`${name} config`), size: 500 };
  const layer = { digest: sha256Digest(`${name} layer`), size: layerSize };
  const body = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociManifest,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layer }],
    }),
  );
  return { config, layer, body, digest: sha256Digest(body) };
}

class Node {
  t = T0;
  readonly fake = new FakeContainerdSource({ clock: () => this.t });
  readonly registry = new Map<string, string>();
  readonly tracker = new PullTracker({
    source: this.fake,
    clock: () => this.t,
    platform: 'linux/amd64',
    registry: {
      digestOf: (r: ImageRef) => this.registry.get(formatImageRef(r)) ?? null,
      sizeOf: () => null,
    },
  });

  at(ms: number): this {
    this.t = T0 + ms;
    return this;
  }

  /** A pull under a lease, as CRI makes it: manifest (labelled with its repository), config, the layer in flight. */
  start(m: ReturnType<typeof manifest>, lease: string, offset: number): void {
    this.fake.createLease(lease);
    this.fake.addBlob(m.body, {
      lease,
      labels: { 'containerd.io/distribution.source.registry.test': 'team/app' },
    });
    this.fake.addContent(m.config.digest, m.config.size, { lease });
    this.fake.setIngest(`layer-${m.layer.digest}`, offset, m.layer.size, { lease });
  }

  async poll(): Promise<void> {
    await this.tracker.pollOnce();
  }
}

test('two tags of one repository never share a pull: app:v2 waits while app:migrate downloads', async () => {
  const n = new Node();
  const migrate = manifest('migrate', 16 * MiB);
  n.registry.set('registry.test/team/app:migrate', migrate.digest);
  n.tracker.expect('registry.test/team/app:migrate');
  n.tracker.expect('registry.test/team/app:v2');
  n.start(migrate, 'l1', 8 * MiB);
  await n.poll();
  assert.equal(n.tracker.statusOf('registry.test/team/app:migrate', T0)?.phase, 'Downloading');
  const v2 = n.tracker.statusOf('registry.test/team/app:v2', T0);
  assert.equal(v2?.phase, 'Resolving', 'not the other tag’s pull');
  assert.equal(v2.bytesDone, 0);
  // migrate ends: its record; v2 still has nothing.
  n.fake.commit(`layer-${migrate.layer.digest}`, { lease: 'l1' });
  n.fake.createImage('registry.test/team/app:migrate', { digest: migrate.digest });
  n.fake.deleteLease('l1');
  await n.at(1000).poll();
  assert.equal(n.tracker.statusOf('registry.test/team/app:migrate', T0)?.phase, 'Pulled');
  assert.equal(n.tracker.statusOf('registry.test/team/app:v2', T0)?.phase, 'Resolving');
  // v2's pull: tied through the digest its tag resolves to.
  const v2m = manifest('v2', 24 * MiB);
  n.registry.set('registry.test/team/app:v2', v2m.digest);
  n.start(v2m, 'l2', 4 * MiB);
  await n.at(2000).poll();
  const s = n.tracker.statusOf('registry.test/team/app:v2', T0);
  assert.equal(s?.phase, 'Downloading');
  assert.equal(s.bytesTotal, 24 * MiB + 500);
});

test('with no registry answer a tag is not tied to a pull of its repository; its record still ends the wait', async () => {
  const n = new Node();
  const m = manifest('v3', 4 * MiB);
  n.tracker.expect('registry.test/team/app:v3');
  n.start(m, 'l', MiB);
  await n.poll();
  assert.equal(n.tracker.statusOf('registry.test/team/app:v3', T0)?.phase, 'Resolving');
  n.fake.commit(`layer-${m.layer.digest}`, { lease: 'l' });
  n.fake.createImage('registry.test/team/app:v3', { digest: m.digest });
  await n.at(1000).poll();
  assert.equal(n.tracker.statusOf('registry.test/team/app:v3', T0)?.phase, 'Pulled');
});

test('repo:tag@digest: CRI records repo@digest, so an image already there is Cached at once', async () => {
  const n = new Node();
  const m = manifest('pinned', MiB);
  n.fake.addBlob(m.body, { createdAt: new Date(T0 - 3_600_000) });
  n.fake.createImage(
    `registry.test/team/app@${m.digest}`,
    { digest: m.digest },
    { createdAt: new Date(T0 - 3_600_000) },
  );
  const name = n.tracker.expect(`registry.test/team/app:1.2@${m.digest}`);
  await n.poll();
  const s = n.tracker.statusOf(name, T0);
  assert.equal(s?.phase, 'Cached');
  assert.equal(s.percent, 100);
});

test('pull policy Always: an older record does not make the image present; a newer one, or its pull, does', async () => {
  const n = new Node();
  const old = manifest('latest-old', 2 * MiB);
  n.fake.addBlob(old.body, { createdAt: new Date(T0 - 60_000) });
  n.fake.createImage(
    'registry.test/team/app:latest',
    { digest: old.digest },
    { createdAt: new Date(T0 - 60_000) },
  );
  n.tracker.expect('registry.test/team/app:latest', 'Always');
  await n.poll();
  assert.equal(n.tracker.statusOf('registry.test/team/app:latest', T0, 'Always')?.phase, 'Resolving');
  assert.equal(n.tracker.statusOf('registry.test/team/app:latest', T0, 'IfNotPresent')?.phase, 'Cached');
  // The tag was pushed again with a new layer: its pull is followed.
  const fresh = manifest('latest-new', 6 * MiB);
  n.registry.set('registry.test/team/app:latest', fresh.digest);
  n.start(fresh, 'l', 3 * MiB);
  await n.at(1000).poll();
  const s = n.tracker.statusOf('registry.test/team/app:latest', T0, 'Always');
  assert.equal(s?.phase, 'Downloading');
  assert.ok(s.percent > 0 && s.percent < 100);
  n.fake.commit(`layer-${fresh.layer.digest}`, { lease: 'l' });
  n.fake.createImage('registry.test/team/app:latest', { digest: fresh.digest });
  await n.at(2000).poll();
  assert.equal(n.tracker.statusOf('registry.test/team/app:latest', T0, 'Always')?.phase, 'Pulled');
});
