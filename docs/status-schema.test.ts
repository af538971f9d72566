import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import {
  MAX_ERROR_LENGTH,
  MAX_IMAGE_REF_LENGTH,
  MAX_STATUS_ANNOTATION_BYTES,
  PHASES,
  type ImagePullStatus,
} from '../common/contract.js';
import { parseStatusAnnotation } from '../cli/pod-view.js';
import { podProgress, statusDocument } from '../node-agent/publisher/pod-progress.js';
import { MB, cached, imageStatus, pulled, resolving } from '../test-support/publisher.js';

const addFormats = addFormatsModule.default;
const schema = JSON.parse(readFileSync(new URL('./status.schema.json', import.meta.url), 'utf8')) as {
  $defs: {
    phase: { enum: string[] };
    image: { required: string[]; properties: Record<string, { maxLength?: number }> };
  };
};
const ajv = new Ajv2020({ allErrors: true, strict: true });
addFormats(ajv);
const validate = ajv.compile(schema);
const NOW = new Date('2026-11-25T10:00:12.000Z');

function check(text: string, name: string): void {
  assert.ok(Buffer.byteLength(text) <= MAX_STATUS_ANNOTATION_BYTES, `${name}: size`);
  const ok = validate(JSON.parse(text));
  assert.ok(ok, `${name}: ${ajv.errorsText(validate.errors)}`);
  assert.ok(parseStatusAnnotation(text) !== null, `${name}: the CLI reads it`);
}

const NGINX = 'docker.io/library/nginx:1.27';
const BUSYBOX = 'docker.io/library/busybox:1.36';

test('documents the publisher produces are valid against docs/status.schema.json', () => {
  const many = (n: number) =>
    Array.from({ length: n }, (_, i) =>
      i % 3 === 0
        ? pulled(`registry.test:5000/team/app-${i}:${'t'.repeat(100)}`, MB)
        : imageStatus({
            image: `registry.test:5000/team/app-${i}:1`,
            phase: 'Failed',
            error: '错'.repeat(4000),
          }),
    );
  const cases: [string, ImagePullStatus[], boolean?][] = [
    ['downloading', [imageStatus()]],
    ['init then main (queued)', [imageStatus({ image: BUSYBOX }), resolving(NGINX)]],
    ['another pull first (queued)', [resolving(NGINX)], true],
    ['cached', [cached(NGINX, 67 * MB)]],
    ['pulled', [cached(BUSYBOX, MB), pulled(NGINX, 67 * MB)]],
    ['stalled', [imageStatus({ phase: 'Stalled', bytesPerSecond: 0, etaSeconds: null })]],
    ['failed', [imageStatus({ phase: 'Failed', error: 'manifest unknown', etaSeconds: null })]],
    ['no images', []],
    ['oversized errors, many images', many(120)],
    ['long references', [imageStatus({ image: `registry.test/${'x'.repeat(3 * MAX_IMAGE_REF_LENGTH)}` })]],
  ];
  for (const [name, images, nodeBusy] of cases) {
    const doc = statusDocument(podProgress(images, { nodeBusy: nodeBusy === true }), NOW);
    check(JSON.stringify(doc), name);
  }
  // Every step of a pull, as the caller drives it (floor kept between calls).
  let floor = 0;
  for (let done = 0; done <= 100; done += 7) {
    const p = podProgress(
      [pulled(BUSYBOX, 2 * MB), imageStatus({ bytesDone: done * MB, bytesTotal: 100 * MB, percent: done })],
      { floor },
    );
    floor = p.percent;
    check(JSON.stringify(statusDocument(p, NOW)), `step ${done}`);
  }
});

test('the schema refuses what the contract forbids', () => {
  const good = statusDocument(podProgress([imageStatus()]), NOW);
  assert.ok(validate(good));
  const image = good.images[0]!;
  const bad: [string, unknown][] = [
    ['unknown version', { ...good, version: 'pulltrace.io/v0' }],
    ['unknown phase', { ...good, phase: 'downloading' }],
    ['percent over 100', { ...good, percent: 101 }],
    ['fractional percent', { ...good, percent: 1.5 }],
    ['missing images', { ...good, images: undefined }],
    ['extra field', { ...good, extra: 1 }],
    ['bad time', { ...good, updatedAt: 'yesterday' }],
    ['negative bytes', { ...good, images: [{ ...image, bytesDone: -1 }] }],
    ['image field missing', { ...good, images: [{ ...image, error: undefined }] }],
    ['error too long', { ...good, images: [{ ...image, error: 'e'.repeat(MAX_ERROR_LENGTH + 1) }] }],
    ['zero omitted', { ...good, imagesOmitted: 0 }],
  ];
  for (const [name, doc] of bad) {
    assert.equal(validate(JSON.parse(JSON.stringify(doc))), false, name);
  }
});

test('the schema matches the contract module', () => {
  assert.deepEqual(schema.$defs.phase.enum, [...PHASES]);
  const produced = statusDocument(podProgress([imageStatus()]), NOW).images[0]!;
  assert.deepEqual([...schema.$defs.image.required].sort(), Object.keys(produced).sort());
  assert.equal(schema.$defs.image.properties.image?.maxLength, MAX_IMAGE_REF_LENGTH);
  assert.equal(schema.$defs.image.properties.error?.maxLength, MAX_ERROR_LENGTH);
});

test('the JSON examples in docs/contract.md are valid documents', () => {
  const md = readFileSync(new URL('./contract.md', import.meta.url), 'utf8');
  const blocks = [...md.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');
  const docs = blocks.filter((b) => b.includes('"version"'));
  assert.ok(docs.length >= 2, `${docs.length} examples found`);
  for (const b of docs) check(JSON.stringify(JSON.parse(b)), b.slice(0, 60));
});
