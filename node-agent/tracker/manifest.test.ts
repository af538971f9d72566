import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MEDIA_TYPES, parseManifest, pickPlatform, type Index } from './manifest.js';
import { RateWindow, eta } from './rate.js';

const d = (c: string) => `sha256:${c.repeat(64)}`;

test('parses OCI and Docker manifests', () => {
  for (const mediaType of [MEDIA_TYPES.ociManifest, MEDIA_TYPES.dockerManifest, undefined]) {
    const m = parseManifest(
      JSON.stringify({
        schemaVersion: 2,
        mediaType,
        config: { digest: d('c'), size: 100 },
        layers: [
          { digest: d('1'), size: 10 },
          { digest: d('2'), size: 20 },
        ],
      }),
    );
    assert.deepEqual(m, {
      kind: 'manifest',
      config: { digest: d('c'), size: 100 },
      layers: [
        { digest: d('1'), size: 10 },
        { digest: d('2'), size: 20 },
      ],
    });
  }
});

test('parses indexes and picks the platform', () => {
  const idx = parseManifest(
    JSON.stringify({
      mediaType: MEDIA_TYPES.dockerList,
      manifests: [
        { digest: d('a'), size: 1, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
        { digest: d('b'), size: 2, platform: { os: 'linux', architecture: 'amd64' } },
        { digest: d('e'), size: 3 },
      ],
    }),
  ) as Index;
  assert.equal(idx.kind, 'index');
  assert.equal(pickPlatform(idx, 'linux/amd64')?.digest, d('b'));
  assert.equal(pickPlatform(idx, 'linux/arm64')?.digest, d('a'));
  assert.equal(pickPlatform(idx, 'linux/arm64/v8')?.digest, d('a'));
  assert.equal(pickPlatform(idx, 'windows/amd64'), null);
});

test('bad manifests are refused with a reason', () => {
  assert.throws(() => parseManifest('{nope'), /not valid JSON/);
  assert.throws(() => parseManifest('[]'), /no layers/);
  assert.throws(() => parseManifest('"x"'), /not a JSON object/);
  assert.throws(
    () => parseManifest(JSON.stringify({ config: { digest: 'md5:x', size: 1 }, layers: [] })),
    /digest/,
  );
  assert.throws(
    () => parseManifest(JSON.stringify({ config: { digest: d('c'), size: -1 }, layers: [] })),
    /size/,
  );
  assert.throws(() => parseManifest(JSON.stringify({ manifests: [{ digest: d('c') }] })), /size/);
});

test('rate over a sliding window and ETA', () => {
  const w = new RateWindow(10_000);
  assert.equal(w.rate(), 0);
  for (let t = 0; t <= 20_000; t += 1000) w.add(t, t * 1000); // 1 MB/s
  assert.equal(w.rate(), 1_000_000);
  assert.ok(w.span() >= 10_000 && w.span() <= 11_000, String(w.span()));
  // The rate halves: after a full window only the new rate counts.
  for (let t = 21_000; t <= 32_000; t += 1000) w.add(t, 20_000_000 + (t - 20_000) * 500);
  assert.equal(w.rate(), 500_000);
  assert.equal(eta(1_000_000, 500_000), 2);
  assert.equal(eta(1, 3), 1);
  assert.equal(eta(0, 0), 0);
  assert.equal(eta(5, 0), null);
});
