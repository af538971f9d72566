// The pull tracker's logic on a scripted containerd (FakeContainerdSource) with an injected
// clock: each step changes the fake as containerd would during a pull, then calls pollOnce()
// directly (no timers) and checks what the tracker reports. The same behaviours on a real
// containerd are covered by node-agent/integration/tracker.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_ERROR_LENGTH, type ImagePullStatus } from '../../common/contract.js';
import { createLogger } from '../../common/logging.js';
import { FakeContainerdSource, sha256Digest, type SourceMethod } from '../../test-support/fake-containerd.js';
import { formatImageRef, normalizeImageRef, type ImageRef } from '../../common/image-ref.js';
import { MEDIA_TYPES, type BlobRef } from './manifest.js';
import { PullTracker, type PullTrackerOptions } from './tracker.js';
import type { TrackedPull, TrackerSnapshot } from './types.js';

const MiB = 1024 * 1024;
const T0 = Date.parse('2025-06-01T12:00:00.000Z');
const iso = (ms: number) => new Date(T0 + ms).toISOString();
const HOST = '127.0.0.1:5000';
const SOURCE_LABEL = 'containerd.io/distribution.source.127.0.0.1';

// --- test images ------------------------------------------------------------------------------

interface TestImage {
  repo: string;
  tag: string;
  config: BlobRef;
  layers: BlobRef[];
  manifest: Buffer;
  digest: string;
}

function blob(name: string, size: number): BlobRef {
  return { digest: sha256Digest(name), size };
}

/** An image "team/<name>:v1" with a 1000-byte config; `base` layers come first. */
function image(name: string, sizes: number[], base: BlobRef[] = []): TestImage {
  const config = blob(`${name} config`, 1000);
  const layers = [...base, ...sizes.map((s, i) => blob(`${name} layer ${i}`, s))];
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociManifest,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...l })),
    }),
  );
  return { repo: `team/${name}`, tag: 'v1', config, layers, manifest, digest: sha256Digest(manifest) };
}

const ref = (img: TestImage) => `${HOST}/${img.repo}:${img.tag}`;
const size = (img: TestImage) => [img.config, ...img.layers].reduce((n, b) => n + b.size, 0);

/** The labels containerd puts on a manifest it fetched. */
function manifestLabels(img: TestImage, gc = true): Record<string, string> {
  const labels: Record<string, string> = { [SOURCE_LABEL]: img.repo };
  if (gc) {
    labels['containerd.io/gc.ref.content.config'] = img.config.digest;
    img.layers.forEach((l, i) => (labels[`containerd.io/gc.ref.content.l.${i}`] = l.digest));
  }
  return labels;
}

// --- the scripted node --------------------------------------------------------------------------

class Node {
  t = T0;
  readonly fake = new FakeContainerdSource({ clock: () => this.t });
  readonly tracker: PullTracker;
  readonly logs: Record<string, unknown>[] = [];
  /** Tag → digest, as the registry resolves them. */
  readonly tags = new Map<string, string>();

  constructor(opts: Partial<PullTrackerOptions> = {}) {
    const logger = createLogger('test', 'debug', {
      write: (line: string) => {
        this.logs.push(JSON.parse(line) as Record<string, unknown>);
      },
    });
    this.tracker = new PullTracker({
      source: this.fake,
      clock: () => this.t,
      platform: 'linux/amd64',
      logger,
      // The registry's answer for each image's tag: its manifest's digest (see manifest()).
      registry: {
        digestOf: (r: ImageRef) => this.tags.get(formatImageRef(r)) ?? null,
        sizeOf: () => null,
      },
      ...opts,
    });
  }

  /** Moves the clock to T0 + ms. */
  at(ms: number): this {
    assert.ok(T0 + ms >= this.t, 'the clock only moves forward');
    this.t = T0 + ms;
    return this;
  }

  async poll(): Promise<TrackerSnapshot> {
    await this.tracker.pollOnce();
    return this.tracker.snapshot();
  }

  pull(key: string): TrackedPull | undefined {
    return this.tracker.snapshot().pulls.find((p) => p.key === key);
  }

  status(key: string): ImagePullStatus {
    const p = this.pull(key);
    assert.ok(p !== undefined, `a pull ${key}`);
    return p.status;
  }

  /** The manifest committed with containerd's labels (gc refs unless `gc` is false). */
  manifest(img: TestImage, opts: { gc?: boolean; createdAt?: Date } = {}): void {
    this.tags.set(normalizeImageRef(ref(img)), img.digest);
    this.fake.addBlob(img.manifest, { labels: manifestLabels(img, opts.gc), createdAt: opts.createdAt });
  }

  config(img: TestImage, createdAt?: Date): void {
    this.fake.addContent(img.config.digest, img.config.size, { createdAt });
  }

  /** Layer i of img in flight at `offset`. */
  layer(img: TestImage, i: number, offset: number): void {
    const l = img.layers[i]!;
    this.fake.setIngest(`layer-${l.digest}`, offset, l.size);
  }

  commitLayer(img: TestImage, i: number): void {
    this.fake.commit(`layer-${img.layers[i]!.digest}`);
  }

  /** A layer fetched whole between two polls: it never shows as an ingest. */
  quickLayer(img: TestImage, i: number): void {
    const l = img.layers[i]!;
    this.fake.addContent(l.digest, l.size);
  }

  /** The records containerd creates at the end: tag, repo@digest and the image id. */
  images(img: TestImage, target = img.digest, opts: { createdAt?: Date } = {}): void {
    for (const name of [ref(img), `${HOST}/${img.repo}@${target}`, img.config.digest]) {
      this.fake.createImage(name, { digest: target }, opts);
    }
  }

  /** Everything of img present, as after an earlier pull (the store of a node that has it). */
  present(img: TestImage, at: Date): void {
    this.manifest(img, { createdAt: at });
    this.config(img, at);
    for (const l of img.layers) this.fake.addContent(l.digest, l.size, { createdAt: at });
    this.images(img, img.digest, { createdAt: at });
  }
}

/** Checks the listed fields only. */
function like(actual: ImagePullStatus | null | undefined, want: Partial<ImagePullStatus>, msg?: string) {
  assert.ok(actual !== null && actual !== undefined, msg ?? 'a status');
  const picked = Object.fromEntries(Object.keys(want).map((k) => [k, actual[k as keyof ImagePullStatus]]));
  assert.deepEqual(picked, want, msg);
}

// --- progress -----------------------------------------------------------------------------------

test('the total comes from the manifest before the layers finish; percent capped at 99 until the image record, then 100', async () => {
  const n = new Node();
  const img = image('app', [4 * MiB, 4 * MiB]);
  const C = img.config.size;
  const total = size(img);
  n.manifest(img);
  n.config(img);
  // Each row: the clock, what containerd does, then what the tracker must say.
  const rows: { at: number; act: () => void; want: Partial<ImagePullStatus> }[] = [
    {
      at: 0,
      act: () => n.layer(img, 0, 1 * MiB),
      want: { phase: 'Downloading', bytesDone: C + 1 * MiB, layersDone: 0 },
    },
    {
      at: 1000,
      act: () => {
        n.layer(img, 0, 2 * MiB);
        n.layer(img, 1, 1 * MiB);
      },
      want: { phase: 'Downloading', bytesDone: C + 3 * MiB, layersDone: 0 },
    },
    {
      at: 2000,
      act: () => {
        n.commitLayer(img, 0);
        n.layer(img, 1, 3 * MiB);
      },
      want: { phase: 'Downloading', bytesDone: C + 7 * MiB, layersDone: 1 },
    },
    {
      at: 3000,
      act: () => n.commitLayer(img, 1),
      want: { phase: 'Unpacking', bytesDone: total, layersDone: 2, percent: 99, finishedAt: null },
    },
    // No image record yet, however long it takes: still 99 %, never Failed.
    { at: 60_000, act: () => undefined, want: { phase: 'Unpacking', percent: 99 } },
    {
      at: 61_000,
      act: () => n.images(img),
      want: { phase: 'Pulled', bytesDone: total, percent: 100, etaSeconds: 0, finishedAt: iso(61_000) },
    },
  ];
  let last = 0;
  for (const r of rows) {
    n.at(r.at);
    r.act();
    await n.poll();
    const s = n.status(img.digest);
    like(s, { ...r.want, bytesTotal: total, bytesCached: 0, layersTotal: 2 }, `at ${r.at} ms`);
    assert.ok(s.percent >= last, `percent went back from ${last} to ${s.percent}`);
    if (s.phase !== 'Pulled') assert.ok(s.percent <= 99, `${s.percent} % while ${s.phase}`);
    assert.equal(
      s.percent,
      s.phase === 'Pulled' ? 100 : Math.min(99, Math.floor((100 * s.bytesDone) / total)),
    );
    last = s.percent;
  }
  const p = n.pull(img.digest)!;
  assert.deepEqual(
    { ...p, status: undefined },
    {
      key: img.digest,
      indexDigest: null,
      manifestDigest: img.digest,
      configDigest: img.config.digest,
      sources: ['127.0.0.1/team/app'],
      names: [ref(img), `${HOST}/team/app@${img.digest}`, img.config.digest],
      slow: false,
      status: undefined,
    },
  );
  like(p.status, { image: ref(img), startedAt: iso(0), error: null });
});

test('before the image record the pull is named from the distribution-source label', async () => {
  const n = new Node();
  const img = image('app', [4 * MiB]);
  n.manifest(img);
  n.layer(img, 0, MiB);
  await n.poll();
  assert.equal(n.status(img.digest).image, `127.0.0.1/team/app@${img.digest}`);
});

test('an ingest that restarts lower does not move bytesDone or percent back', async () => {
  const n = new Node();
  const img = image('app', [4 * MiB]);
  n.manifest(img);
  n.config(img);
  const C = img.config.size;
  const rows = [
    { at: 0, offset: 3 * MiB, done: C + 3 * MiB },
    { at: 1000, offset: 0, done: C + 3 * MiB }, // restarted from scratch
    { at: 2000, offset: 2 * MiB, done: C + 3 * MiB },
    { at: 3000, offset: 3.5 * MiB, done: C + 3.5 * MiB },
  ];
  let last = -1;
  for (const r of rows) {
    n.at(r.at).layer(img, 0, r.offset);
    await n.poll();
    const s = n.status(img.digest);
    assert.equal(s.bytesDone, r.done, `at ${r.at} ms`);
    assert.ok(s.percent >= last, `percent went back from ${last} to ${s.percent} at ${r.at} ms`);
    last = s.percent;
  }
  assert.equal(last, Math.floor((100 * (C + 3.5 * MiB)) / size(img)));
});

test('blobs on the node before the manifest are cached, not downloaded; those committed after it count as done', async () => {
  const n = new Node();
  const base = blob('base layer', 3 * MiB);
  const img = image('app', [2 * MiB, 2 * MiB], [base]);
  n.fake.addContent(base.digest, base.size, { createdAt: new Date(T0 - 3_600_000) });
  n.manifest(img);
  n.config(img);
  n.at(200).quickLayer(img, 1); // committed after the manifest, before the tracker saw the pull
  n.at(500).layer(img, 2, MiB);
  await n.poll();
  const C = img.config.size;
  like(n.status(img.digest), {
    phase: 'Downloading',
    bytesCached: 3 * MiB,
    bytesTotal: C + 4 * MiB,
    bytesDone: C + 3 * MiB,
    layersDone: 2,
    layersTotal: 3,
  });
  n.at(1000).commitLayer(img, 2);
  await n.poll();
  n.at(2000).images(img);
  await n.poll();
  like(n.status(img.digest), {
    phase: 'Pulled',
    percent: 100,
    bytesCached: 3 * MiB,
    bytesTotal: C + 4 * MiB,
    bytesDone: C + 4 * MiB,
    layersDone: 3,
  });
});

test('a layer fetched whole between two polls still counts, and the pull completes', async () => {
  const n = new Node();
  const img = image('app', [4 * MiB, 100_000, 4 * MiB]);
  n.manifest(img);
  n.config(img);
  n.layer(img, 0, MiB);
  await n.poll();
  n.at(1000).quickLayer(img, 1); // started and committed between polls
  n.layer(img, 0, 2 * MiB);
  await n.poll();
  like(n.status(img.digest), { bytesDone: img.config.size + 2 * MiB + 100_000, layersDone: 1 });
  n.at(2000).commitLayer(img, 0);
  n.quickLayer(img, 2);
  await n.poll();
  like(n.status(img.digest), { phase: 'Unpacking', bytesDone: size(img), layersDone: 3, percent: 99 });
  n.at(3000).images(img);
  await n.poll();
  like(n.status(img.digest), { phase: 'Pulled', percent: 100 });
});

test('rate over the whole image and ETA; a rate of zero gives no ETA', async () => {
  const n = new Node({ rateWindowMs: 2000 });
  const img = image('app', [4 * MiB, 4 * MiB]);
  n.manifest(img);
  n.config(img);
  const rows = [
    // One sample: no rate yet, so no ETA.
    { at: 0, l0: 1 * MiB, l1: 0, rate: 0, eta: null },
    // Both layers together: 2 MiB in 1 s; 5 MiB left.
    { at: 1000, l0: 2 * MiB, l1: 1 * MiB, rate: 2 * MiB, eta: 3 },
    { at: 2000, l0: 3 * MiB, l1: 2 * MiB, rate: 2 * MiB, eta: 2 },
  ];
  for (const r of rows) {
    n.at(r.at);
    n.layer(img, 0, r.l0);
    n.layer(img, 1, r.l1);
    await n.poll();
    like(
      n.status(img.digest),
      { phase: 'Downloading', bytesPerSecond: r.rate, etaSeconds: r.eta },
      `at ${r.at}`,
    );
  }
  // Nothing more arrives: once the window holds no progress the rate is 0 and the ETA unknown,
  // while the pull is not yet Stalled (30 s by default).
  for (let at = 3000; at <= 6000; at += 1000) {
    n.at(at);
    await n.poll();
    const s = n.status(img.digest);
    if (s.bytesPerSecond === 0) assert.equal(s.etaSeconds, null, `at ${at}`);
    else assert.ok(s.etaSeconds !== null && s.etaSeconds > 0, `at ${at}`);
  }
  like(n.status(img.digest), { phase: 'Downloading', bytesPerSecond: 0, etaSeconds: null });
});

test('Stalled after stallAfterMs without new bytes, Downloading again when bytes come', async () => {
  const n = new Node({ stallAfterMs: 5000 });
  const img = image('app', [4 * MiB]);
  n.manifest(img);
  n.config(img);
  const rows: { at: number; offset: number; phase: string }[] = [
    { at: 0, offset: 1 * MiB, phase: 'Downloading' },
    { at: 1000, offset: 2 * MiB, phase: 'Downloading' }, // last new bytes
    { at: 5999, offset: 2 * MiB, phase: 'Downloading' },
    { at: 6000, offset: 2 * MiB, phase: 'Stalled' },
    { at: 20_000, offset: 2 * MiB, phase: 'Stalled' },
    { at: 21_000, offset: 3 * MiB, phase: 'Downloading' },
  ];
  for (const r of rows) {
    n.at(r.at).layer(img, 0, r.offset);
    await n.poll();
    const s = n.status(img.digest);
    assert.equal(s.phase, r.phase, `at ${r.at}`);
    if (s.phase === 'Stalled') like(s, { bytesPerSecond: 0, etaSeconds: null, error: null });
  }
});

test('a trickle under slowRateBytesPerSecond is flagged slow after stallAfterMs; no flag without a floor', async () => {
  const opts = { stallAfterMs: 5000, rateWindowMs: 4000 };
  const n = new Node({ ...opts, slowRateBytesPerSecond: 100_000 });
  const plain = new PullTracker({ source: n.fake, clock: () => n.t, platform: 'linux/amd64', ...opts });
  const img = image('app', [4 * MiB]);
  n.manifest(img);
  n.config(img);
  let offset = 0;
  let firstSlow: number | null = null;
  for (let at = 0; at <= 15_000; at += 1000) {
    offset += 10_000; // 10 kB/s: bytes keep coming, so never Stalled
    n.at(at).layer(img, 0, offset);
    await n.poll();
    await plain.pollOnce();
    const p = n.pull(img.digest)!;
    assert.equal(p.status.phase, 'Downloading', `at ${at}`);
    if (p.slow) firstSlow ??= at;
    assert.equal(plain.snapshot().pulls[0]?.slow, false, 'slowRateBytesPerSecond 0: never slow');
  }
  assert.ok(firstSlow !== null, 'flagged slow');
  assert.ok(firstSlow >= 5000 && firstSlow <= 5000 + 4000, `flagged at ${firstSlow} ms`);
  assert.ok(n.pull(img.digest)!.slow);
  // Back to a good rate: the flag clears.
  for (let at = 16_000; at <= 20_000; at += 1000) {
    offset += 500_000;
    n.at(at).layer(img, 0, offset);
    await n.poll();
  }
  assert.equal(n.pull(img.digest)!.slow, false);
});

test('ingests that vanish with blobs missing: Failed after failAfterMs, with no rate and no ETA; a retry clears it', async () => {
  const n = new Node({ failAfterMs: 3000 });
  const img = image('app', [4 * MiB, 4 * MiB]);
  n.manifest(img);
  n.config(img);
  n.layer(img, 0, MiB);
  n.layer(img, 1, MiB);
  await n.poll();
  n.at(1000).layer(img, 0, 2 * MiB);
  n.layer(img, 1, 2 * MiB);
  await n.poll();
  const before = n.status(img.digest).percent;
  n.at(2000);
  n.fake.removeIngest(`layer-${img.layers[0]!.digest}`);
  n.fake.removeIngest(`layer-${img.layers[1]!.digest}`);
  // The first poll without them could be a commit in progress: they still count as in flight.
  await n.at(2000).poll();
  like(n.status(img.digest), { phase: 'Downloading' });
  // Not in the store at the next poll either: gone. Idle from then on.
  for (const at of [3000, 5999]) {
    await n.at(at).poll();
    assert.notEqual(n.status(img.digest).phase, 'Failed', `at ${at}`);
    assert.equal(n.status(img.digest).bytesPerSecond, 0, `no rate once nothing moves, at ${at}`);
  }
  await n.at(6000).poll();
  const s = n.status(img.digest);
  like(s, { phase: 'Failed', bytesPerSecond: 0, etaSeconds: null, finishedAt: null, percent: before });
  assert.match(s.error ?? '', /stopped before all layers arrived/);
  // containerd retries: the ingests come back.
  n.at(7000).layer(img, 0, 0);
  await n.poll();
  like(n.status(img.digest), { phase: 'Downloading', error: null, percent: before });
});

test('a layer whose ingest is gone a poll before its blob is recorded (a commit in progress): still Downloading, rate kept', async () => {
  // containerd's metadata store drops the ingest a moment before its transaction records the
  // blob: a poll in between finds neither. A trickle made this a one-poll "no rate" in CI.
  const n = new Node({ failAfterMs: 1000 });
  const img = image('app', [4 * MiB, 4 * MiB]);
  n.manifest(img);
  n.config(img);
  n.layer(img, 0, MiB);
  n.layer(img, 1, MiB);
  await n.poll();
  n.at(1000).layer(img, 0, 4 * MiB - 1);
  n.layer(img, 1, 2 * MiB);
  await n.poll();
  const rate = n.status(img.digest).bytesPerSecond;
  assert.ok(rate > 0, 'a rate was measured');
  n.at(2000).fake.removeIngest(`layer-${img.layers[0]!.digest}`);
  n.fake.removeIngest(`layer-${img.layers[1]!.digest}`);
  await n.poll();
  const between = n.status(img.digest);
  assert.equal(between.phase, 'Downloading');
  assert.ok(between.bytesPerSecond > 0, `rate ${between.bytesPerSecond}`);
  assert.ok(between.etaSeconds !== null, 'an ETA');
  // Recorded by the next poll: fetched, not lost; nothing went idle on the way.
  n.quickLayer(img, 0);
  n.layer(img, 1, 3 * MiB);
  await n.at(3000).poll();
  like(n.status(img.digest), { phase: 'Downloading', error: null });
  assert.ok(n.status(img.digest).bytesDone >= 1000 + 7 * MiB);
});

test('two images sharing a layer in flight: both found through it, each counts it', async () => {
  const n = new Node();
  const shared = blob('shared', 3 * MiB);
  const a = image('a', [MiB], [shared]);
  const b = image('b', [MiB], [shared]);
  for (const img of [a, b]) {
    n.manifest(img);
    n.config(img);
  }
  n.fake.setIngest(`layer-${shared.digest}`, 2 * MiB, shared.size);
  await n.poll();
  for (const img of [a, b]) like(n.status(img.digest), { bytesDone: 1000 + 2 * MiB, bytesTotal: size(img) });
  n.at(1000).fake.commit(`layer-${shared.digest}`);
  for (const img of [a, b]) n.quickLayer(img, 1);
  await n.poll();
  n.at(2000);
  n.images(a);
  n.images(b);
  await n.poll();
  for (const img of [a, b]) {
    like(n.status(img.digest), { phase: 'Pulled', bytesDone: size(img), bytesCached: 0, layersDone: 2 });
  }
});

test('ingests with refs that are not blobs are ignored', async () => {
  const n = new Node();
  n.fake.setIngest('something-else', 10, 100);
  n.fake.setIngest(`manifest-sha256:${'0'.repeat(64)}`, 10, 100); // never committed
  const snap = await n.poll();
  assert.deepEqual(snap.pulls, []);
  assert.equal(n.tracker.lastError, null);
});

// --- finding the manifest -----------------------------------------------------------------------

test('a manifest without gc labels is found through its manifest- ingest', async () => {
  const n = new Node();
  const img = image('app', [4 * MiB, 4 * MiB]);
  n.fake.setIngest(`manifest-${img.digest}`, 0, img.manifest.length);
  assert.deepEqual((await n.poll()).pulls, []);
  n.at(100).fake.commit(`manifest-${img.digest}`, { data: img.manifest, labels: manifestLabels(img, false) });
  n.config(img);
  n.layer(img, 0, MiB);
  await n.poll();
  like(n.status(img.digest), {
    phase: 'Downloading',
    bytesTotal: size(img),
    bytesDone: img.config.size + MiB,
    layersTotal: 2,
    image: `127.0.0.1/team/app@${img.digest}`,
  });
});

function index(img: TestImage, otherDigest: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociIndex,
      manifests: [
        {
          mediaType: MEDIA_TYPES.ociManifest,
          digest: otherDigest,
          size: 500,
          platform: { os: 'linux', architecture: 'arm64' },
        },
        {
          mediaType: MEDIA_TYPES.ociManifest,
          digest: img.digest,
          size: img.manifest.length,
          platform: { os: 'linux', architecture: 'amd64' },
        },
      ],
    }),
  );
}

test('an index leads to its platform manifest: keyed by the index, sized from the manifest (labels)', async () => {
  const n = new Node();
  const img = image('app', [2 * MiB, 2 * MiB]);
  const arm = sha256Digest('arm64 manifest');
  const idx = index(img, arm);
  const indexDigest = sha256Digest(idx);
  n.fake.addBlob(idx, {
    labels: {
      [SOURCE_LABEL]: img.repo,
      'containerd.io/gc.ref.content.m.0': arm,
      'containerd.io/gc.ref.content.m.1': img.digest,
    },
  });
  n.manifest(img);
  n.config(img);
  n.layer(img, 0, MiB);
  await n.poll();
  const p = n.pull(indexDigest);
  assert.ok(p !== undefined, 'keyed by the index digest');
  assert.equal(p.indexDigest, indexDigest);
  assert.equal(p.manifestDigest, img.digest);
  like(p.status, { bytesTotal: size(img), layersTotal: 2 });
  assert.equal(n.tracker.snapshot().pulls.length, 1, 'one pull, not one per manifest');
  n.at(1000).commitLayer(img, 0);
  n.quickLayer(img, 1);
  await n.poll();
  n.at(2000).images(img, indexDigest);
  await n.poll();
  like(n.status(indexDigest), { phase: 'Pulled', percent: 100, image: ref(img) });
});

test('an index without labels, seen as an index- ingest, leads to its platform manifest once committed', async () => {
  const n = new Node();
  const img = image('app', [2 * MiB]);
  const idx = index(img, sha256Digest('arm64 manifest'));
  const indexDigest = sha256Digest(idx);
  n.fake.setIngest(`index-${indexDigest}`, 0, idx.length);
  await n.poll();
  n.at(100).fake.commit(`index-${indexDigest}`, { data: idx });
  await n.poll();
  assert.deepEqual(n.tracker.snapshot().pulls, [], 'the platform manifest is not there yet');
  n.at(200).fake.addBlob(img.manifest);
  n.config(img);
  n.layer(img, 0, MiB);
  await n.poll();
  const p = n.pull(indexDigest);
  assert.ok(p !== undefined, 'keyed by the index digest');
  assert.equal(p.manifestDigest, img.digest);
  like(p.status, { bytesTotal: size(img), bytesDone: img.config.size + MiB });
});

test('an index with no manifest for this platform is not tracked', async () => {
  const n = new Node({ platform: 'linux/s390x' });
  const img = image('app', [2 * MiB]);
  const idx = index(img, sha256Digest('arm64 manifest'));
  n.fake.setIngest(`index-${sha256Digest(idx)}`, 0, idx.length);
  await n.poll();
  n.at(100).fake.commit(`index-${sha256Digest(idx)}`, { data: idx });
  await n.poll();
  assert.deepEqual(n.tracker.snapshot().pulls, []);
  assert.equal(n.tracker.lastError, null);
});

test('a manifest blob that is not valid JSON, or too large, is logged and its pull not tracked', async () => {
  const n = new Node();
  const layer = blob('orphan layer', 4 * MiB);
  const bad = n.fake.addBlob('{nope', { labels: { 'containerd.io/gc.ref.content.l.0': layer.digest } });
  const huge = blob('huge manifest', 5 * MiB);
  n.fake.addContent(huge.digest, huge.size, { labels: { 'containerd.io/gc.ref.content.l.1': layer.digest } });
  n.fake.setIngest(`layer-${layer.digest}`, MiB, layer.size);
  const snap = await n.poll();
  assert.deepEqual(snap.pulls, []);
  assert.equal(n.tracker.lastError, null, 'a bad manifest is not a containerd failure');
  const warned = n.logs.filter((l) => l.msg === 'cannot read manifest; its pull is not tracked');
  assert.deepEqual(warned.map((l) => l.digest).sort(), [bad.digest, huge.digest].sort());
  const errs = warned.map((l) => (l.err as { message: string }).message).join('\n');
  assert.match(errs, /not valid JSON/);
  assert.match(errs, /larger than/);
  // Not read again on later polls.
  const reads = n.fake.count('readBlob');
  n.at(1000).fake.setIngest(`layer-${layer.digest}`, 2 * MiB, layer.size);
  await n.poll();
  assert.equal(n.fake.count('readBlob'), reads);
  assert.deepEqual(n.tracker.snapshot().pulls, []);
});

// --- containerd failing -------------------------------------------------------------------------

test('containerd unavailable: pollOnce resolves, lastError set, state kept, nothing Failed; recovers when back', async () => {
  const n = new Node({ failAfterMs: 3000, stallAfterMs: 5000 });
  const img = image('app', [4 * MiB]);
  n.manifest(img);
  n.config(img);
  n.layer(img, 0, MiB);
  n.tracker.expect(ref(img));
  await n.poll();
  n.at(1000).layer(img, 0, 2 * MiB);
  await n.poll();
  const before = n.tracker.snapshot().pulls;
  const expected = n.tracker.statusOf(ref(img));
  n.fake.down();
  for (const at of [2000, 10_000, 60_000]) {
    await n.at(at).poll(); // resolves: no rejection here
    assert.match(n.tracker.lastError ?? '', /containerd is not reachable/);
    assert.deepEqual(n.tracker.snapshot().pulls, before, `state kept at ${at} ms`);
    assert.deepEqual(n.tracker.statusOf(ref(img)), expected);
  }
  n.fake.up();
  n.at(61_000).layer(img, 0, 3 * MiB);
  await n.poll();
  assert.equal(n.tracker.lastError, null);
  like(n.status(img.digest), { phase: 'Downloading', bytesDone: img.config.size + 3 * MiB });
});

/** One step of a pull script: the clock, then what containerd does before the poll. */
type Script = { at: number; act: (n: Node) => void }[];

/** Labelled manifest, a cached base layer, a layer fetched between polls, an expected image. */
function labelledScript(): Script {
  const base = blob('base', 3 * MiB);
  const img = image('app', [2 * MiB, 2 * MiB, 100_000], [base]);
  return [
    {
      at: 0,
      act: (n) => {
        n.fake.addContent(base.digest, base.size, { createdAt: new Date(T0 - 3_600_000) });
        n.tracker.expect(ref(img));
      },
    },
    {
      at: 1000,
      act: (n) => {
        n.manifest(img);
        n.config(img);
        n.layer(img, 1, MiB);
      },
    },
    {
      at: 2000,
      act: (n) => {
        n.layer(img, 1, 2 * MiB);
        n.layer(img, 2, MiB);
      },
    },
    {
      at: 3000,
      act: (n) => {
        n.commitLayer(img, 1);
        n.quickLayer(img, 3);
        n.layer(img, 2, 1.5 * MiB);
      },
    },
    { at: 4000, act: (n) => n.commitLayer(img, 2) },
    { at: 5000, act: (n) => n.images(img) },
    { at: 6000, act: () => undefined },
  ];
}

/** Nothing labelled: an index and its manifest found through their ingests. */
function unlabelledScript(): Script {
  const img = image('app', [2 * MiB, 50_000]);
  const idx = index(img, sha256Digest('arm64 manifest'));
  const indexDigest = sha256Digest(idx);
  return [
    {
      at: 0,
      act: (n) => {
        n.tracker.expect(ref(img));
        n.fake.setIngest(`index-${indexDigest}`, 0, idx.length);
      },
    },
    {
      at: 1000,
      act: (n) => {
        n.fake.commit(`index-${indexDigest}`, { data: idx });
        n.fake.setIngest(`manifest-${img.digest}`, 0, img.manifest.length);
      },
    },
    {
      at: 2000,
      act: (n) => {
        n.fake.commit(`manifest-${img.digest}`, { data: img.manifest, labels: manifestLabels(img, false) });
        n.config(img);
        n.layer(img, 0, MiB);
      },
    },
    {
      at: 3000,
      act: (n) => {
        n.commitLayer(img, 0);
        n.quickLayer(img, 1);
      },
    },
    { at: 4000, act: (n) => n.images(img, indexDigest) },
    { at: 5000, act: () => undefined },
  ];
}

/** What a poll leaves behind: every pull and the expected images' statuses. */
function view(n: Node) {
  return {
    pulls: n.tracker.snapshot().pulls,
    expected: n.tracker.statusOf(`${HOST}/team/app:v1`),
  };
}

const METHODS: SourceMethod[] = [
  'listIngests',
  'contentInfo',
  'listContent',
  'readBlob',
  'listImages',
  'getImage',
  'listLeases',
];

for (const [name, script] of [
  ['labelled manifest', labelledScript],
  ['index and manifest without labels', unlabelledScript],
] as const) {
  test(`any containerd call failing mid-poll changes nothing the next poll would not (${name})`, async () => {
    // The clean run: what each step should show, and how many calls of each method it makes.
    const clean = new Node({ failAfterMs: 3000 });
    const views: ReturnType<typeof view>[] = [];
    const calls: Record<string, number>[] = [];
    for (const step of script()) {
      clean.at(step.at);
      step.act(clean);
      const from = clean.fake.calls.length;
      await clean.poll();
      assert.equal(clean.tracker.lastError, null);
      views.push(view(clean));
      const c: Record<string, number> = {};
      for (const m of clean.fake.calls.slice(from)) c[m] = (c[m] ?? 0) + 1;
      calls.push(c);
    }
    assert.equal(views.at(-1)?.expected?.phase, 'Pulled', 'the clean run ends Pulled');

    // Fail each call of each step in turn; one poll later everything must be as in the clean run.
    let runs = 0;
    const steps = script();
    for (let k = 0; k < steps.length; k++) {
      for (const method of METHODS) {
        for (let j = 0; j < (calls[k]?.[method] ?? 0); j++) {
          runs++;
          const n = new Node({ failAfterMs: 3000 });
          const s = script();
          for (let i = 0; i < s.length; i++) {
            n.at(s[i]!.at);
            s[i]!.act(n);
            if (i === k) {
              n.fake.failNext(method, { after: j });
              await n.poll();
              const what = `${method} call ${j} at step ${k}`;
              assert.match(n.tracker.lastError ?? '', /not reachable/, what);
              assert.notEqual(n.tracker.statusOf(`${HOST}/team/app:v1`)?.phase, 'Failed', what);
              await n.poll();
              assert.equal(n.tracker.lastError, null, what);
              assert.deepEqual(view(n), views[i], `${what}, then one good poll`);
            } else {
              await n.poll();
              assert.deepEqual(view(n), views[i], `step ${i} after a failure at step ${k} (${method} ${j})`);
            }
          }
        }
      }
    }
    assert.ok(runs >= 10, `${runs} failure points tried`);
  });
}

// --- images pods wait for -----------------------------------------------------------------------

test('expect()/statusOf(): Resolving until a pull shows up, then the pull under the pod name', async () => {
  const n = new Node();
  const img = image('app', [4 * MiB]);
  assert.equal(n.tracker.expect(ref(img)), ref(img));
  assert.equal(n.tracker.expect('nginx'), 'docker.io/library/nginx:latest', 'normalised');
  assert.deepEqual(n.tracker.statusOf('docker.io/library/nginx'), n.tracker.statusOf('nginx'));
  assert.equal(n.tracker.statusOf(`${HOST}/team/other:v1`), null, 'not expected');
  const resolving = {
    image: ref(img),
    phase: 'Resolving',
    percent: 0,
    bytesDone: 0,
    bytesTotal: 0,
    bytesCached: 0,
    layersDone: 0,
    layersTotal: 0,
    bytesPerSecond: 0,
    etaSeconds: null,
    startedAt: iso(0),
    finishedAt: null,
    error: null,
  } as const;
  assert.deepEqual(n.tracker.statusOf(ref(img)), resolving);
  await n.at(1000).poll();
  assert.deepEqual(n.tracker.statusOf(ref(img)), resolving, 'no pull, no record: still Resolving');
  n.at(2000).manifest(img);
  n.config(img);
  n.layer(img, 0, MiB);
  await n.poll();
  const s = n.tracker.statusOf(ref(img));
  assert.deepEqual(s, { ...n.status(img.digest), image: ref(img) }, 'matched by the source label');
  like(s, { phase: 'Downloading', bytesTotal: size(img) });
  // By digest too.
  const byDigest = `${HOST}/${img.repo}@${img.digest}`;
  n.tracker.expect(byDigest);
  like(n.tracker.statusOf(byDigest), { phase: 'Downloading', image: byDigest });
});

test('an image whose record is older than the expectation is Cached with its size; a newer one Pulled', async () => {
  const n = new Node();
  const old = image('old', [2 * MiB, MiB]);
  const quick = image('quick', [MiB]);
  n.present(old, new Date(T0 - 3_600_000));
  n.at(1000);
  n.tracker.expect(ref(old));
  n.tracker.expect(ref(quick));
  await n.poll();
  like(n.tracker.statusOf(ref(old)), {
    phase: 'Cached',
    percent: 100,
    bytesCached: size(old),
    bytesTotal: 0,
    bytesDone: 0,
    etaSeconds: 0,
    startedAt: iso(1000),
    finishedAt: iso(-3_600_000), // when containerd made the record
  });
  // Pulled so fast no poll saw it: the record is newer than the expectation.
  n.at(1500).present(quick, new Date(T0 + 1500));
  await n.at(2000).poll();
  like(n.tracker.statusOf(ref(quick)), {
    phase: 'Pulled',
    percent: 100,
    bytesDone: size(quick),
    bytesTotal: size(quick),
    bytesCached: 0,
    finishedAt: iso(1500),
  });
  // The same image for a pod created before that record: Pulled for it; after: Cached.
  like(n.tracker.statusOf(ref(quick), T0 + 1400), { phase: 'Pulled' });
  like(n.tracker.statusOf(ref(quick), T0 + 1600), { phase: 'Cached', bytesCached: size(quick) });
});

test('a reported failure clears when the pull moves again (containerd resumes the old attempt)', async () => {
  const n = new Node();
  const img = image('retry', [4 * MiB]);
  n.tracker.expect(ref(img));
  n.manifest(img);
  n.config(img);
  n.layer(img, 0, MiB);
  await n.at(0).poll();
  n.tracker.fail(ref(img), 'ErrImagePull: connection reset');
  like(n.tracker.statusOf(ref(img)), { phase: 'Failed' });
  // The kubelet retries: the same ingest moves on; no new pull appears.
  await n.at(1000).poll();
  like(n.tracker.statusOf(ref(img)), { phase: 'Failed' }, 'no bytes yet: still Failed');
  n.layer(img, 0, 2 * MiB);
  await n.at(2000).poll();
  like(n.tracker.statusOf(ref(img)), { phase: 'Downloading', error: null });
});

test('a reference that does not parse (upper case in the path): Resolving until the kubelet says InvalidImageName, then Failed', async () => {
  const n = new Node();
  const bad = `${HOST}/Team/Web:1`;
  assert.equal(n.tracker.expect(bad), bad, 'kept as written');
  await n.poll();
  like(n.tracker.statusOf(bad), { phase: 'Resolving', error: null });
  const message = `InvalidImageName: Failed to apply default image tag "${bad}": couldn't parse image name "${bad}": invalid reference format: repository name must be lowercase`;
  n.tracker.fail(bad, message);
  like(n.tracker.statusOf(bad), { phase: 'Failed', etaSeconds: null, bytesPerSecond: 0, percent: 0 });
  assert.match(n.tracker.statusOf(bad)?.error ?? '', /^InvalidImageName: .*must be lowercase$/);
  n.tracker.unexpect(bad);
  assert.equal(n.tracker.statusOf(bad), null, 'forgotten when no pod waits for it');
});

test('fail() marks an expected image Failed with the message; a present image stays as it is', async () => {
  const n = new Node();
  const old = image('old', [MiB]);
  n.present(old, new Date(T0 - 1000));
  const missing = `${HOST}/team/app:nope`;
  n.tracker.expect(missing);
  n.tracker.expect(ref(old));
  await n.poll();
  n.tracker.fail(missing, 'rpc error: code = NotFound desc = failed to resolve reference: not found');
  like(n.tracker.statusOf(missing), {
    phase: 'Failed',
    error: 'rpc error: code = NotFound desc = failed to resolve reference: not found',
    etaSeconds: null,
    bytesPerSecond: 0,
  });
  n.tracker.fail(missing, 'x'.repeat(1000));
  const bounded = n.tracker.statusOf(missing)?.error ?? '';
  assert.ok(bounded.length <= MAX_ERROR_LENGTH, 'bounded');
  n.tracker.fail(missing, `failed to resolve "x": ${'y'.repeat(500)}: not found`);
  assert.match(
    n.tracker.statusOf(missing)?.error ?? '',
    /^failed to resolve .* … y+: not found$/,
    'start and cause kept',
  );
  n.tracker.fail(ref(old), 'a stale ErrImagePull');
  like(n.tracker.statusOf(ref(old)), { phase: 'Cached', error: null });
  // fail() for an image nobody expected yet starts following it.
  n.tracker.fail(`${HOST}/team/new:v1`, 'denied');
  like(n.tracker.statusOf(`${HOST}/team/new:v1`), { phase: 'Failed', error: 'denied' });
});

test('unexpect() forgets an image under any spelling', async () => {
  const n = new Node();
  n.tracker.expect('nginx');
  assert.equal(n.tracker.statusOf('nginx')?.phase, 'Resolving');
  n.tracker.unexpect('docker.io/library/nginx:latest');
  assert.equal(n.tracker.statusOf('nginx'), null);
  await n.poll();
  assert.equal(n.fake.count('listImages'), 0, 'nothing expected: no image lookups');
});

test('a finished pull of the same repository before the expectation is not taken for it', async () => {
  const n = new Node();
  const v1 = image('app', [MiB]);
  n.manifest(v1);
  n.config(v1);
  n.layer(v1, 0, MiB / 2);
  await n.poll();
  n.at(1000).commitLayer(v1, 0);
  await n.poll();
  n.at(2000).images(v1);
  await n.poll();
  assert.equal(n.status(v1.digest).phase, 'Pulled');
  n.at(3000);
  const v2 = `${HOST}/team/app:v2`;
  n.tracker.expect(v2);
  await n.poll();
  like(n.tracker.statusOf(v2), { phase: 'Resolving', percent: 0 });
});

// --- notifications and bounds -------------------------------------------------------------------

test('onChange fires only when something changed', async () => {
  const n = new Node({ failAfterMs: 60_000 });
  const img = image('app', [4 * MiB]);
  const seen: TrackerSnapshot[] = [];
  const off = n.tracker.onChange((s) => seen.push(s));
  await n.poll();
  assert.equal(seen.length, 0, 'nothing to report');
  n.manifest(img);
  n.config(img);
  n.layer(img, 0, MiB);
  await n.poll();
  assert.equal(seen.length, 1);
  assert.equal(seen[0]?.pulls[0]?.key, img.digest);
  await n.poll();
  assert.equal(seen.length, 1, 'same state, same clock: no call');
  n.at(1000).layer(img, 0, 2 * MiB);
  await n.poll();
  assert.equal(seen.length, 2);
  assert.equal(seen[1]?.pulls[0]?.status.bytesDone, img.config.size + 2 * MiB);
  n.fake.down();
  await n.at(2000).poll();
  assert.equal(seen.length, 2, 'a failed poll reports nothing');
  n.fake.up();
  off();
  n.at(3000).layer(img, 0, 3 * MiB);
  await n.poll();
  assert.equal(seen.length, 2, 'unsubscribed');
});

test('finished pulls are forgotten after retentionMs; an expected image then stays Pulled', async () => {
  const n = new Node({ retentionMs: 60_000, failAfterMs: 1000 });
  const ok = image('app', [MiB]);
  const bad = image('bad', [MiB]);
  n.tracker.expect(ref(ok));
  for (const img of [ok, bad]) {
    n.manifest(img);
    n.config(img);
    n.layer(img, 0, MiB / 2);
  }
  await n.poll();
  n.at(1000).commitLayer(ok, 0);
  n.fake.removeIngest(`layer-${bad.layers[0]!.digest}`);
  await n.poll(); // ok: Unpacking; bad: its ingest left (maybe being committed)
  await n.at(2000).poll(); // bad: not in the store either: idle from 2000
  n.at(3000).images(ok);
  await n.poll();
  assert.equal(n.status(ok.digest).phase, 'Pulled'); // finished at 3000
  assert.equal(n.status(bad.digest).phase, 'Failed'); // ended at 2000
  const rows = [
    { at: 62_000, ok: true, bad: true },
    { at: 62_001, ok: true, bad: false },
    { at: 63_000, ok: true, bad: false },
    { at: 63_001, ok: false, bad: false },
  ];
  for (const r of rows) {
    await n.at(r.at).poll();
    assert.equal(n.pull(ok.digest) !== undefined, r.ok, `ok at ${r.at}`);
    assert.equal(n.pull(bad.digest) !== undefined, r.bad, `bad at ${r.at}`);
  }
  like(n.tracker.statusOf(ref(ok)), { phase: 'Pulled', percent: 100, bytesDone: size(ok) });
});

test('no more than maxPulls pulls are kept: the oldest go first', async () => {
  const n = new Node({ maxPulls: 2 });
  const imgs = ['a', 'b', 'c', 'd'].map((x) => image(x, [4 * MiB]));
  for (const [i, img] of imgs.entries()) {
    n.at(i * 1000);
    n.manifest(img);
    n.config(img);
    n.layer(img, 0, MiB);
    await n.poll();
    const keys = n.tracker.snapshot().pulls.map((p) => p.key);
    assert.ok(keys.length <= 2, `${keys.length} pulls kept`);
    assert.ok(keys.includes(img.digest), 'the newest is kept');
  }
  await n.at(10_000).poll();
  assert.deepEqual(
    n.tracker
      .snapshot()
      .pulls.map((p) => p.key)
      .sort(),
    [imgs[2]!.digest, imgs[3]!.digest].sort(),
  );
});

test('containerd unreachable for many polls: said once at warn, with what to check; once more when it works again', async () => {
  const n = new Node();
  n.fake.down();
  for (let at = 0; at < 10_000; at += 1000) await n.at(at).poll();
  const warned = n.logs.filter((l) => l.level === 'warn');
  assert.equal(warned.length, 1, 'one warning for ten failed polls');
  assert.match(String(warned[0]?.msg), /reading containerd failed/);
  assert.match(String(warned[0]?.hint), /--containerd-address/);
  n.fake.up();
  await n.at(11_000).poll();
  assert.equal(n.tracker.lastError, null);
  assert.equal(n.logs.filter((l) => l.msg === 'reading containerd works again').length, 1);
});

test('an event stream that reports its end twice (gRPC error and end) is resubscribed once; each outage adds no stream', async () => {
  const fake = new FakeContainerdSource();
  const openedAt: number[] = [];
  let live = 0;
  // containerd's gRPC stream can emit both 'error' and 'end' for one loss: report both.
  const source = Object.assign(Object.create(fake) as FakeContainerdSource, {
    subscribe: (h: Parameters<FakeContainerdSource['subscribe']>[0]) => {
      openedAt.push(Date.now());
      live++;
      let open = true;
      setTimeout(() => {
        h.onError(new Error('stream error'));
        h.onError(new Error('stream ended'));
      }, 20);
      return {
        close: () => {
          if (open) live--;
          open = false;
        },
      };
    },
  });
  const tracker = new PullTracker({ source, pollIntervalMs: 60_000 });
  tracker.start();
  try {
    // Each loss is followed by one new subscription after a back-off (500 ms, then 1 s), never
    // by two at once: with one per report, the second round would open two at the same time.
    const deadline = Date.now() + 10_000;
    while (openedAt.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.ok(openedAt.length >= 3, `subscriptions opened: ${openedAt.length}`);
    const gaps = openedAt.slice(1).map((t, i) => t - (openedAt[i] ?? t));
    assert.ok(
      gaps.every((g) => g >= 400),
      `one at a time, after a back-off: gaps ${gaps.join(', ')} ms`,
    );
    assert.ok(live <= 1, `streams left open: ${live}`);
  } finally {
    tracker.stop();
  }
});
