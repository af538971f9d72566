// Manifest and index parsing with containerd's media-type checks, and image size sums.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PulltraceError, type ErrorCode } from '../../common/errors.js';
import { bareMediaType, MANIFEST_ACCEPT, manifestSize, MEDIA_TYPES, parseManifest } from './manifest.js';

const isCode = (err: unknown, code: ErrorCode) => err instanceof PulltraceError && err.code === code;
const d = (c: string) => `sha256:${c.repeat(64)}`;
const json = (v: unknown) => Buffer.from(JSON.stringify(v));

const manifest = {
  schemaVersion: 2,
  mediaType: MEDIA_TYPES.ociManifest,
  config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: d('c'), size: 100 },
  layers: [
    { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: d('1'), size: 1000 },
    { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: d('2'), size: 2000 },
    { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: d('1'), size: 1000 },
  ],
};

const index = {
  schemaVersion: 2,
  mediaType: MEDIA_TYPES.ociIndex,
  manifests: [
    {
      mediaType: MEDIA_TYPES.ociManifest,
      digest: d('a'),
      size: 500,
      platform: { os: 'linux', architecture: 'amd64' },
    },
    {
      mediaType: MEDIA_TYPES.ociManifest,
      digest: d('b'),
      size: 501,
      platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
    },
    { mediaType: MEDIA_TYPES.ociManifest, digest: d('e'), size: 502 },
  ],
};

test('reads a manifest and sums config + distinct layers', () => {
  const m = parseManifest(json(manifest), MEDIA_TYPES.ociManifest);
  assert.equal(m.kind, 'manifest');
  assert.equal(m.layers.length, 3, 'repeats kept in the parsed form');
  const s = manifestSize(m);
  assert.equal(s.bytes, 100 + 1000 + 2000, 'the repeated layer counts once');
  assert.deepEqual(s.layers, [
    { digest: d('1'), size: 1000 },
    { digest: d('2'), size: 2000 },
  ]);
  assert.equal(s.configDigest, d('c'));
  assert.equal(s.configSize, 100);
});

test('reads an index with normalised platforms, and a Docker list under its own type', () => {
  const i = parseManifest(json(index), `${MEDIA_TYPES.ociIndex}; charset=utf-8`);
  assert.equal(i.kind, 'index');
  assert.deepEqual(
    i.manifests.map((m) => m.platform),
    [
      { os: 'linux', architecture: 'amd64', variant: '' },
      { os: 'linux', architecture: 'arm64', variant: '' },
      null,
    ],
  );
  const docker = parseManifest(json({ ...index, mediaType: MEDIA_TYPES.dockerList }), MEDIA_TYPES.dockerList);
  assert.equal(docker.kind, 'index');
  // A body without its own mediaType is read by the label it came with.
  const { mediaType: _drop, ...bare } = manifest;
  assert.equal(parseManifest(json(bare), MEDIA_TYPES.dockerManifest).kind, 'manifest');
});

test('refuses what containerd refuses, with a coded error naming the problem', () => {
  const cases: [Buffer, string, RegExp][] = [
    [json(manifest), 'text/html', /unknown media type "text\/html"/],
    [json(manifest), '', /unknown media type ""/],
    [json(manifest), 'application/json', /unknown media type/],
    [json(manifest), 'application/vnd.docker.distribution.manifest.v1+prettyjws', /schema 1/],
    [json(manifest), 'text/plain', /schema 1/],
    [json({ schemaVersion: 1, fsLayers: [] }), MEDIA_TYPES.dockerManifest, /schema 1/],
    [Buffer.from('{"schemaVersion": 2, "lay'), MEDIA_TYPES.ociManifest, /not valid JSON/],
    [Buffer.from('<html>502</html>'), MEDIA_TYPES.ociManifest, /not valid JSON/],
    [Buffer.from('[1,2]'), MEDIA_TYPES.ociManifest, /not a JSON object/],
    [Buffer.from('null'), MEDIA_TYPES.ociManifest, /not a JSON object/],
    [json(index), MEDIA_TYPES.ociManifest, /expected a manifest .* but found an index/],
    [json(manifest), MEDIA_TYPES.ociIndex, /expected an index .* but found a manifest/],
    [json({ ...manifest, layers: undefined }), MEDIA_TYPES.ociManifest, /no layers/],
    [json({ ...index, manifests: 'x' }), MEDIA_TYPES.ociIndex, /no manifests/],
    [
      json({ ...manifest, config: { digest: 'sha256:abc', size: 1 } }),
      MEDIA_TYPES.ociManifest,
      /config has no valid digest/,
    ],
    [
      json({ ...manifest, config: { digest: d('c'), size: -1 } }),
      MEDIA_TYPES.ociManifest,
      /config has no valid size/,
    ],
    [
      json({ ...manifest, layers: [{ digest: d('1'), size: 1.5 }] }),
      MEDIA_TYPES.ociManifest,
      /layers\[0\] has no valid size/,
    ],
    [json({ ...manifest, layers: [null] }), MEDIA_TYPES.ociManifest, /layers\[0\] is not a descriptor/],
  ];
  for (const [body, mt, want] of cases) {
    assert.throws(
      () => parseManifest(body, mt),
      (err: unknown) => isCode(err, 'PT_REGISTRY_BAD_RESPONSE') && want.test((err as Error).message),
      `${mt}: ${want.source}`,
    );
  }
});

test('asks for the media types containerd asks for, in its order', () => {
  assert.equal(
    MANIFEST_ACCEPT,
    'application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, ' +
      'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, */*',
  );
  assert.equal(bareMediaType(' Application/JSON ; charset=utf-8'), 'application/json');
  assert.equal(bareMediaType(undefined), '');
});
