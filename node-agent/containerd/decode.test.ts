import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeEnvelope, encodePayload, KNOWN_TOPICS, type Envelope } from './decode.js';

const at = new Date('2025-06-01T12:00:00.000Z');

/** Each topic containerd publishes, its payload type, the fields sent and the event expected. */
const CASES = [
  {
    topic: '/images/create',
    type: 'ImageCreate',
    fields: { name: 'docker.io/library/nginx:1.27', labels: { a: 'b' } },
    event: { name: 'docker.io/library/nginx:1.27' },
  },
  {
    topic: '/images/update',
    type: 'ImageUpdate',
    fields: { name: '127.0.0.1:5000/team/app:v1' },
    event: { name: '127.0.0.1:5000/team/app:v1' },
  },
  { topic: '/images/delete', type: 'ImageDelete', fields: { name: 'x:1' }, event: { name: 'x:1' } },
] as const;

function envelope(topic: string, event: Envelope['event']): Envelope {
  return { topic, namespace: 'k8s.io', at, event };
}

test('every known topic is covered here', () => {
  assert.deepEqual(CASES.map((c) => c.topic).sort(), [...KNOWN_TOPICS].sort());
});

for (const c of CASES) {
  test(`decodes ${c.topic} (${c.type})`, () => {
    const payload = encodePayload(c.type, c.fields);
    assert.equal(payload.type_url, `containerd.events.${c.type}`);
    const urls = [
      `containerd.events.${c.type}`,
      // containerd 1.x names image payloads after the images service.
      ...(c.topic.startsWith('/images/') ? [`containerd.services.images.v1.${c.type}`] : []),
      // A URL may carry a host prefix.
      `types.containerd.io/containerd.events.${c.type}`,
    ];
    for (const type_url of urls) {
      const d = decodeEnvelope(envelope(c.topic, { type_url, value: payload.value }));
      assert.deepEqual(
        d,
        { ok: true, event: { topic: c.topic, namespace: 'k8s.io', at, ...c.event } },
        type_url,
      );
    }
  });
}

test('an empty payload of the right type decodes to empty fields', () => {
  const d = decodeEnvelope(envelope('/images/create', { type_url: 'containerd.events.ImageCreate' }));
  assert.deepEqual(d, { ok: true, event: { topic: '/images/create', namespace: 'k8s.io', at, name: '' } });
});

test('unknown topics and mismatched or missing types are rejected with a reason', () => {
  const create = encodePayload('ImageCreate', { name: 'x' });
  const rows: { env: Envelope; reason: RegExp }[] = [
    { env: envelope('/tasks/exit', create), reason: /unknown topic \/tasks\/exit/ },
    { env: envelope('', create), reason: /unknown topic/ },
    {
      env: envelope('/images/create', encodePayload('ImageDelete', { name: 'x' })),
      reason:
        /\/images\/create carries containerd\.events\.ImageDelete, expected containerd\.events\.ImageCreate/,
    },
    {
      env: envelope('/images/create', { type_url: 'containerd.events.ImageCreateX', value: create.value }),
      reason: /expected containerd\.events\.ImageCreate/,
    },
    {
      env: envelope('/images/create', { type_url: 'other.v1.ImageCreate', value: create.value }),
      reason: /expected/,
    },
    { env: envelope('/images/create', null), reason: /no payload/ },
    { env: envelope('/images/update', { value: create.value }), reason: /no payload/ },
    // Topics the tracker does not use are refused, not half-decoded.
    { env: envelope('/content/delete', create), reason: /unknown topic \/content\/delete/ },
    { env: envelope('/snapshot/commit', create), reason: /unknown topic/ },
  ];
  for (const r of rows) {
    const d = decodeEnvelope(r.env);
    assert.equal(d.ok, false, r.env.topic);
    assert.match(d.reason, r.reason);
  }
});

test('garbage bytes are rejected, not thrown', () => {
  // Field 1 (name) claims 255 bytes that are not there.
  const d = decodeEnvelope(
    envelope('/images/create', {
      type_url: 'containerd.events.ImageCreate',
      value: Uint8Array.from([0x0a, 0xff]),
    }),
  );
  assert.equal(d.ok, false);
  assert.match(d.reason, /cannot decode containerd\.events\.ImageCreate/);
});

test('never throws, whatever the bytes', () => {
  // A fixed-seed generator: the same inputs on every run.
  let seed = 0x2545f491;
  const next = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
  let rejected = 0;
  for (let i = 0; i < 2000; i++) {
    const c = CASES[Math.floor(next() * CASES.length)]!;
    const value = Uint8Array.from({ length: Math.floor(next() * 40) }, () => Math.floor(next() * 256));
    const d = decodeEnvelope(envelope(c.topic, { type_url: `containerd.events.${c.type}`, value }));
    if (d.ok) assert.equal(d.event.topic, c.topic);
    else {
      assert.ok(d.reason.length > 0);
      rejected++;
    }
  }
  assert.ok(rejected > 0, 'some random inputs are refused');
});
