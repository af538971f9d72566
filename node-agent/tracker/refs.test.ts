// Ingest refs of every form containerd 1.6–2.x and other clients write, and digests as
// go-digest validates them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseIngestRef } from './refs.js';

const H64 = 'a'.repeat(64);
const H128 = 'b'.repeat(128);

test('ingest refs: every MakeRefKey prefix, name@digest, other algorithms; unknown forms are null', () => {
  const rows: [string, ReturnType<typeof parseIngestRef>][] = [
    [`layer-sha256:${H64}`, { kind: 'layer', digest: `sha256:${H64}` }],
    [`config-sha256:${H64}`, { kind: 'config', digest: `sha256:${H64}` }],
    [`manifest-sha256:${H64}`, { kind: 'manifest', digest: `sha256:${H64}` }],
    [`index-sha256:${H64}`, { kind: 'index', digest: `sha256:${H64}` }],
    [`attestation-sha256:${H64}`, { kind: 'attestation', digest: `sha256:${H64}` }],
    [`unknown-sha256:${H64}`, { kind: 'unknown', digest: `sha256:${H64}` }],
    [`layer-sha512:${H128}`, { kind: 'layer', digest: `sha512:${H128}` }],
    [`docker.io/library/nginx:1.27@sha256:${H64}`, { kind: 'unknown', digest: `sha256:${H64}` }],
    [`registry.test:5000/team/app@sha512:${H128}`, { kind: 'unknown', digest: `sha512:${H128}` }],
    [`manifest-v1.2@sha256:${H64}`, { kind: 'manifest', digest: `sha256:${H64}` }],
    [`index-docker.io/library/x:1@sha256:${H64}`, { kind: 'index', digest: `sha256:${H64}` }],
    [`layer-sha256:${'a'.repeat(63)}`, null], // sha256 is exactly 64 hex
    [`layer-sha512:${H64}`, null], // sha512 is exactly 128 hex
    [`layer-SHA256:${H64}`, null],
    [`layer-sha256:${H64.toUpperCase()}`, null],
    [`blob-sha256:${H64}`, null],
    ['layer-', null],
    ['', null],
    ['@', null],
    [`x`.repeat(5000), null],
    [`weird-${'a'.repeat(10)}:${H64}`, null],
    [`layer-blake3:${H64}`, null], // an algorithm containerd does not accept
  ];
  for (const [ref, want] of rows) assert.deepEqual(parseIngestRef(ref), want, ref.slice(0, 80));
});
