import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  EVENT_IMAGES_PULLED,
  EVENT_PULL_FAILED,
  EVENT_PULL_SLOW,
  EVENT_PULL_STALLED,
  EVENT_SOURCE,
  MAX_MESSAGE_LENGTH,
  type ImagePullStatus,
} from '../../common/contract.js';
import { emptyEventMemory, eventBody, eventTransitions, summaryMessage, type EventMemory } from './events.js';
import { podProgress } from './pod-progress.js';
import { MB, cached, imageStatus, pulled, resolving } from '../../test-support/publisher.js';

const NGINX = 'docker.io/library/nginx:1.27';
const BUSYBOX = 'docker.io/library/busybox:1.36';
const OPTS = { stallAfterMs: 30_000, slowRateBytesPerSecond: 100_000 };

test('each transition is reported once (table over a pod timeline)', () => {
  const stalled = imageStatus({ phase: 'Stalled', bytesPerSecond: 0, etaSeconds: null });
  const timeline: { images: ImagePullStatus[]; slow?: string[]; want: string[] }[] = [
    { images: [resolving(NGINX)], want: [] },
    { images: [imageStatus()], want: [] },
    { images: [stalled], want: [EVENT_PULL_STALLED] },
    { images: [stalled], want: [] },
    { images: [imageStatus()], want: [] },
    { images: [stalled], want: [EVENT_PULL_STALLED] },
    { images: [imageStatus({ bytesPerSecond: 20_000 })], slow: [NGINX], want: [EVENT_PULL_SLOW] },
    { images: [imageStatus({ bytesPerSecond: 20_000 })], slow: [NGINX], want: [] },
    {
      images: [imageStatus({ phase: 'Failed', error: 'connection reset' })],
      slow: [NGINX],
      want: [EVENT_PULL_FAILED],
    },
    { images: [imageStatus({ phase: 'Failed', error: 'connection reset' })], want: [] },
    { images: [imageStatus()], want: [] },
    { images: [pulled(NGINX, 67 * MB)], want: [EVENT_IMAGES_PULLED] },
    { images: [pulled(NGINX, 67 * MB)], want: [] },
  ];
  let memory: EventMemory = emptyEventMemory();
  timeline.forEach((row, i) => {
    const r = eventTransitions(memory, podProgress(row.images), {
      ...OPTS,
      slowImages: new Set(row.slow ?? []),
    });
    memory = r.memory;
    assert.deepEqual(
      r.events.map((e) => e.reason),
      row.want,
      `step ${i}`,
    );
    for (const e of r.events) {
      assert.equal(e.type, e.reason === EVENT_IMAGES_PULLED ? 'Normal' : 'Warning');
      assert.ok(e.message.length <= MAX_MESSAGE_LENGTH);
    }
  });
});

test('event messages', () => {
  const run = (images: ImagePullStatus[], slow: string[] = []) =>
    eventTransitions(emptyEventMemory(), podProgress(images), {
      ...OPTS,
      slowImages: new Set(slow),
    }).events.map((e) => e.message);
  assert.deepEqual(run([imageStatus({ phase: 'Stalled', bytesPerSecond: 0 })]), [
    'no bytes for 30s pulling nginx:1.27 (63%, 42.3/67.0 MB)',
  ]);
  assert.deepEqual(run([imageStatus({ bytesPerSecond: 20_000 })], [NGINX]), [
    'pulling nginx:1.27 at 20.0 kB/s, below 100.0 kB/s for 30s (63%, 42.3/67.0 MB)',
  ]);
  assert.deepEqual(run([imageStatus({ phase: 'Failed', error: 'manifest unknown' })]), [
    'nginx:1.27: manifest unknown',
  ]);
  assert.deepEqual(
    run([imageStatus({ phase: 'Failed', error: 'x'.repeat(5000) })]).map((m) => m.length),
    [MAX_MESSAGE_LENGTH],
  );
});

test('ImagesPulled summary: size, time, mean rate, cached share', () => {
  const start = '2026-11-25T10:00:00.000Z';
  const p = podProgress([
    { ...cached(BUSYBOX, 10 * MB), startedAt: start },
    { ...pulled(NGINX, 40 * MB, '2026-11-25T10:00:20.000Z'), startedAt: start },
  ]);
  assert.equal(p.phase, 'Pulled');
  assert.equal(
    summaryMessage(p),
    '2 images (50.0 MB): 40.0 MB fetched in 20s (2.0 MB/s mean), 20% already present',
  );
  assert.equal(
    summaryMessage(podProgress([cached(NGINX, 67 * MB)])),
    'nginx:1.27 already present on the node (67.0 MB)',
  );
  assert.equal(
    summaryMessage(podProgress([cached(NGINX, 0)])),
    'nginx:1.27 already present on the node',
    'a size nobody knows is left out, not shown as 0 B',
  );
  const noTimes = podProgress([{ ...pulled(NGINX, 5 * MB), startedAt: null }]);
  assert.equal(summaryMessage(noTimes), 'nginx:1.27 (5.0 MB): 5.0 MB fetched, 0% already present');
  const r = eventTransitions(emptyEventMemory(), podProgress([cached(NGINX, MB)]), OPTS);
  assert.deepEqual(
    r.events.map((e) => [e.type, e.reason]),
    [['Normal', EVENT_IMAGES_PULLED]],
    'a cached pod gets its summary too',
  );
});

test('eventBody: a core/v1 Event about the pod', () => {
  const now = new Date('2026-11-25T10:00:30.123Z');
  const e = eventBody(
    { type: 'Warning', reason: EVENT_PULL_STALLED, message: 'm', image: NGINX },
    { namespace: 'shop', name: 'web-0', uid: 'c0ffee' },
    { node: 'node-a', now, seq: 2 },
  );
  assert.deepEqual(e.involvedObject, {
    apiVersion: 'v1',
    kind: 'Pod',
    namespace: 'shop',
    name: 'web-0',
    uid: 'c0ffee',
  });
  assert.equal(e.metadata.namespace, 'shop');
  assert.equal(e.metadata.name, `web-0.${(BigInt(now.getTime()) * 1_000_000n + 2n).toString(16)}`);
  assert.deepEqual(e.source, { component: EVENT_SOURCE, host: 'node-a' });
  assert.equal(e.reportingComponent, EVENT_SOURCE);
  assert.equal(e.reportingInstance, 'node-a');
  assert.equal(e.type, 'Warning');
  assert.equal(e.reason, EVENT_PULL_STALLED);
  assert.equal(e.count, 1);
  assert.equal(e.firstTimestamp, now);
  assert.equal(e.lastTimestamp, now);

  const first = new Date('2026-11-25T09:00:00Z');
  const again = eventBody(
    { type: 'Warning', reason: EVENT_PULL_STALLED, message: 'm', image: NGINX },
    { namespace: 'shop', name: `${'a'.repeat(235)}-${'b'.repeat(17)}`, uid: 'u' },
    { node: 'n'.repeat(300), now, count: 3, firstTimestamp: first },
  );
  assert.equal(again.count, 3);
  assert.equal(again.firstTimestamp, first);
  assert.ok(again.metadata.name!.length <= 253);
  assert.match(again.metadata.name!, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/);
  assert.equal(again.reportingInstance?.length, 128);
});
