// The registry client against the real CNCF distribution registry (Debian's docker-registry)
// on loopback, with images pushed by skopeo as the integration tests push them: a tag, a
// digest, a multi-platform index, a manifest listing one layer twice, a mirror configured in a
// certs.d. Needs the test environment (e2e/env/install.sh); fails saying why when it is missing.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { PulltraceError } from '../../common/errors.js';
import { buildImage, MEDIA, randomLayer } from '../../e2e/env/image-builder.js';
import { startRegistry, type Registry } from '../../e2e/env/registry.js';
import { RegistryClient } from '../registry/client.js';

let dir: string;
let registry: Registry;

before(async () => {
  dir = mkdtempSync('/tmp/pt-reg-');
  registry = await startRegistry(join(dir, 'reg'));
});

after(async () => {
  await registry.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** What the registry itself serves for a manifest (GET), to check the client against. */
async function served(
  repo: string,
  ref: string,
): Promise<{ digest: string; size: number; type: string; body: unknown }> {
  const res = await fetch(`http://${registry.host}/v2/${repo}/manifests/${ref}`, {
    headers: { accept: `${MEDIA.index}, ${MEDIA.manifest}` },
  });
  assert.equal(res.status, 200, `${repo}:${ref}`);
  const body = Buffer.from(await res.arrayBuffer());
  return {
    digest: res.headers.get('docker-content-digest') ?? '',
    size: body.length,
    type: res.headers.get('content-type') ?? '',
    body: JSON.parse(body.toString('utf8')) as unknown,
  };
}

test('resolves a tag and a digest, and sizes a single-platform image', async () => {
  const built = await buildImage({
    registry: registry.host,
    name: 'team/single:v1',
    layers: [60_000, 90_000],
  });
  const client = new RegistryClient({ platform: 'linux/amd64' });
  const fromRegistry = await served('team/single', 'v1');

  const byTag = await client.resolve(`${registry.host}/team/single:v1`);
  assert.deepEqual(byTag, {
    digest: built.manifestDigest,
    mediaType: MEDIA.manifest,
    size: fromRegistry.size,
  });
  const byDigest = await client.resolve(`${registry.host}/team/single@${built.manifestDigest}`);
  assert.deepEqual(byDigest, byTag);

  const size = await client.imageSize(`${registry.host}/team/single:v1`);
  assert.equal(size.bytes, built.totalSize);
  assert.equal(size.manifestDigest, built.manifestDigest);
  assert.equal(size.configDigest, built.configDigest);
  assert.equal(size.layerCount, 2);
  assert.deepEqual(
    size.layers,
    built.layers.map((l) => ({ digest: l.digest, size: l.size })),
  );
  assert.equal(size.platform, null);
  assert.equal(size.reference, `${registry.host}/team/single:v1`);
});

test('counts a layer listed twice once', async () => {
  const shared = randomLayer(70_000, 'shared.bin');
  const built = await buildImage({
    registry: registry.host,
    name: 'team/dup:v1',
    layers: [40_000],
    baseLayers: [shared, shared],
  });
  const listed = (await served('team/dup', 'v1')).body as { layers: { digest: string }[] };
  assert.equal(listed.layers.length, 3, 'the manifest really lists the shared layer twice');
  assert.equal(listed.layers[0]?.digest, listed.layers[1]?.digest);

  const size = await new RegistryClient().imageSize(`${registry.host}/team/dup:v1`, 'linux/amd64');
  assert.equal(
    size.bytes,
    built.totalSize - shared.size,
    'builder total counts it twice; a pull fetches it once',
  );
  assert.equal(size.layerCount, 2);
  assert.deepEqual(
    size.layers.map((l) => l.digest),
    [shared.digest, built.layers[2]?.digest],
  );
});

test('follows a multi-platform index to each platform, and says when one is missing', async () => {
  const built = await buildImage({
    registry: registry.host,
    name: 'team/multi:v1',
    layers: [50_000],
    platforms: ['linux/amd64', 'linux/arm64'],
  });
  assert.ok(built.indexDigest !== null);
  const index = (await served('team/multi', 'v1')).body as {
    manifests: { digest: string; platform: { architecture: string } }[];
  };
  const arm64Digest = index.manifests.find((m) => m.platform.architecture === 'arm64')?.digest;
  assert.ok(arm64Digest !== undefined && arm64Digest !== built.manifestDigest);

  const client = new RegistryClient({ platform: 'linux/amd64' });
  const ref = `${registry.host}/team/multi:v1`;
  const r = await client.resolve(ref);
  assert.equal(r.digest, built.indexDigest);
  assert.equal(r.mediaType, MEDIA.index);
  assert.deepEqual(await client.resolve(`${registry.host}/team/multi@${built.indexDigest}`), r);

  const amd64 = await client.imageSize(ref);
  assert.equal(amd64.digest, built.indexDigest);
  assert.equal(amd64.manifestDigest, built.manifestDigest);
  assert.equal(amd64.platform, 'linux/amd64');
  assert.equal(amd64.bytes, built.totalSize);

  const arm64 = await client.imageSize(ref, 'linux/arm64/v8');
  assert.equal(arm64.manifestDigest, arm64Digest);
  assert.equal(arm64.platform, 'linux/arm64');
  assert.deepEqual(arm64.layers, amd64.layers, 'the builder shares layers between platforms');
  assert.notEqual(arm64.configDigest, amd64.configDigest);

  await assert.rejects(
    client.imageSize(ref, 'linux/s390x'),
    (err: unknown) =>
      err instanceof PulltraceError &&
      err.code === 'PT_REGISTRY_NO_PLATFORM' &&
      /linux\/s390x .*linux\/amd64, linux\/arm64/.test(err.message),
  );
  // By the platform manifest's own digest: no index to follow.
  const direct = await client.imageSize(`${registry.host}/team/multi@${built.manifestDigest}`, 'linux/s390x');
  assert.equal(direct.bytes, built.totalSize);
  assert.equal(direct.platform, null);
});

test('a missing tag or repository is PT_REGISTRY_NOT_FOUND', async () => {
  const client = new RegistryClient();
  for (const ref of [`${registry.host}/team/single:nope`, `${registry.host}/nobody/here:v1`]) {
    await assert.rejects(
      client.resolve(ref),
      (err: unknown) => err instanceof PulltraceError && err.code === 'PT_REGISTRY_NOT_FOUND',
      ref,
    );
  }
});

test('reaches the registry through a certs.d mirror, as the node containerd is configured in the tests', async () => {
  const built = await buildImage({ registry: registry.host, name: 'team/mirrored:v1', layers: [30_000] });
  const root = join(dir, 'certs.d');
  mkdirSync(join(root, 'registry.test'), { recursive: true });
  // The file e2e/env/containerd.ts writes for containerd.
  writeFileSync(
    join(root, 'registry.test', 'hosts.toml'),
    `server = "http://${registry.host}"\n[host."http://${registry.host}"]\n  capabilities = ["pull", "resolve"]\n  skip_verify = true\n`,
  );
  const client = new RegistryClient({ configPath: [root] });
  const sizes = await Promise.all(
    Array.from({ length: 8 }, () => client.imageSize('registry.test/team/mirrored:v1', 'linux/amd64')),
  );
  for (const s of sizes) {
    assert.equal(s.manifestDigest, built.manifestDigest);
    assert.equal(s.bytes, built.totalSize);
    assert.equal(s.reference, 'registry.test/team/mirrored:v1');
  }
  // The configuration is per namespace: the registry under its own name gets no ns parameter and still answers.
  assert.equal((await client.resolve(`${registry.host}/team/mirrored:v1`)).digest, built.manifestDigest);
});
