import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatImageRef, normalizeImageRef, parseImageRef, sourceKey } from './image-ref.js';

const D = `sha256:${'a'.repeat(64)}`;

test('normalises references the way the kubelet and containerd name images', () => {
  const cases: [string, string][] = [
    ['nginx', 'docker.io/library/nginx:latest'],
    ['nginx:1.27', 'docker.io/library/nginx:1.27'],
    ['bitnami/redis:7', 'docker.io/bitnami/redis:7'],
    ['index.docker.io/library/busybox', 'docker.io/library/busybox:latest'],
    ['127.0.0.1:5000/team/app:1', '127.0.0.1:5000/team/app:1'],
    ['localhost/app', 'localhost/app:latest'],
    [`registry.k8s.io/pause@${D}`, `registry.k8s.io/pause@${D}`],
    [`ghcr.io/o/r:v1@${D}`, `ghcr.io/o/r:v1@${D}`],
  ];
  for (const [input, want] of cases) assert.equal(normalizeImageRef(input), want, input);
});

test('rejects what is not a reference, and leaves it as it is when asked to normalise', () => {
  for (const bad of [
    '',
    'UPPER/case',
    'a b',
    'app@sha256:xyz',
    'app:',
    'team//app',
    `x:${'t'.repeat(200)}`,
  ]) {
    assert.equal(parseImageRef(bad), null, bad);
  }
  assert.equal(normalizeImageRef('Not A Ref'), 'Not A Ref');
});

test('sourceKey drops the port, as containerd does in distribution.source labels', () => {
  const r = parseImageRef('127.0.0.1:5000/team/app:1');
  assert.ok(r !== null);
  assert.equal(sourceKey(r), '127.0.0.1/team/app');
  assert.equal(formatImageRef(r), '127.0.0.1:5000/team/app:1');
  const hub = parseImageRef('nginx');
  assert.ok(hub !== null);
  assert.equal(sourceKey(hub), 'docker.io/library/nginx');
});
