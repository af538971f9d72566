// The pure progress core on hand-made blob states and times: no containerd, no fake source.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { advance, stallThresholdMs, unflushed, WRITE_CHUNK, type ProgressOptions } from './progress.js';
import { RateWindow } from './rate.js';
import type { BlobState, PullState } from './state.js';

const MiB = 1024 * 1024;
const KiB = 1024;
const d = (c: string) => `sha256:${c.repeat(64)}`;
const OPTS: ProgressOptions = {
  stallAfterMs: 30_000,
  slowRateBytesPerSecond: 0,
  failAfterMs: 10_000,
  rateWindowMs: 10_000,
};

function pull(
  layers: { digest: string; size: number }[],
  config = { digest: d('c'), size: 1000 },
): PullState {
  return {
    key: d('m'),
    indexDigest: null,
    manifestDigest: d('m'),
    configDigest: config.digest,
    sources: new Set(),
    names: new Set(),
    blobs: [config, ...layers],
    layerOrder: layers,
    layerDigests: new Set(layers.map((l) => l.digest)),
    cached: new Set(),
    snapshotsChecked: true,
    startedAt: 0,
    finishedAt: null,
    lastProgressAt: 0,
    lastDone: 0,
    rateAtProgress: 0,
    idleSince: null,
    slowSince: null,
    rate: new RateWindow(OPTS.rateWindowMs),
    percentFloor: 0,
    phase: 'Downloading',
    error: null,
    slow: false,
    status: {
      image: '',
      phase: 'Downloading',
      percent: 0,
      bytesDone: 0,
      bytesTotal: 0,
      bytesCached: 0,
      layersDone: 0,
      layersTotal: 0,
      bytesPerSecond: 0,
      etaSeconds: null,
      startedAt: '',
      finishedAt: null,
      error: null,
    },
  };
}

test('stall threshold: stallAfter for a fast pull; past the next write when writes are far apart', () => {
  assert.equal(stallThresholdMs(30_000, 10 * MiB, 3), 30_000);
  assert.equal(stallThresholdMs(30_000, 0, 1), 30_000, 'no rate measured: the plain rule');
  const gap = (WRITE_CHUNK / (24 * KiB)) * 1000; // ~42.7 s between writes
  assert.equal(
    stallThresholdMs(30_000, 24 * KiB, 1),
    gap + 30_000,
    'never later than stallAfter past when due',
  );
  assert.equal(stallThresholdMs(5_000, 24 * KiB, 1), gap + 5_000);
  assert.equal(stallThresholdMs(60_000, 100 * KiB, 1), 60_000);
  const g2 = ((2 * WRITE_CHUNK) / (200 * KiB)) * 1000; // two blobs writing in turn: ~10 s
  assert.equal(stallThresholdMs(5_000, 200 * KiB, 2), Math.max(5_000, Math.min(2 * g2, g2 + 5_000)));
});

test('a 24 KiB/s trickle (one 1 MiB write every ~43 s) stays Downloading with its rate and ETA; a real stop is Stalled in time', () => {
  const layer = { digest: d('a'), size: 3 * MiB };
  const p = pull([layer]);
  p.cached.add(d('c')); // the config is not part of this
  const blobs = new Map<string, BlobState>();
  const rate = 24 * KiB;
  const writeEvery = (WRITE_CHUNK / rate) * 1000;
  const phases = new Set<string>();
  let lastWrite = 0;
  let counted = 0;
  // Polls every second for two writes and most of the gap to the third.
  for (let t = 0; t <= 2 * writeEvery + 40_000; t += 1000) {
    const due = Math.floor(t / writeEvery) * writeEvery;
    if (due > lastWrite || (t === 0 && counted === 0)) {
      lastWrite = due;
      counted = Math.min(layer.size, Math.round((due / 1000) * rate));
    }
    blobs.set(layer.digest, { state: 'fetching', total: layer.size, counted, updatedAt: lastWrite });
    advance(p, blobs, t, OPTS);
    // Before the first write no rate is measured: the plain stallAfter rule applies.
    if (t > writeEvery) phases.add(p.status.phase);
    if (t > writeEvery + 1000) {
      assert.equal(p.status.phase, 'Downloading', `at ${t} ms`);
      assert.ok(
        Math.abs(p.status.bytesPerSecond - rate) / rate < 0.05,
        `rate ${p.status.bytesPerSecond} at ${t}`,
      );
      assert.ok(p.status.etaSeconds !== null && p.status.etaSeconds > 0, `an ETA at ${t}`);
    }
  }
  assert.deepEqual([...phases], ['Downloading']);
  // The transfer stops after the second write: Stalled once the third is overdue by stallAfter.
  const stopAt = 2 * writeEvery;
  let stalledAt = -1;
  for (let t = Math.ceil(stopAt / 1000) * 1000 + 40_000; t <= stopAt + 3 * writeEvery; t += 1000) {
    blobs.set(layer.digest, { state: 'fetching', total: layer.size, counted, updatedAt: stopAt });
    advance(p, blobs, t, OPTS);
    if (p.status.phase === 'Stalled') {
      stalledAt = t;
      break;
    }
  }
  assert.ok(stalledAt > 0, 'a real stop is Stalled');
  const nextDue = stopAt + writeEvery;
  assert.ok(stalledAt > nextDue, 'not before the next write was due');
  assert.ok(
    stalledAt <= nextDue + OPTS.stallAfterMs + 2000,
    `within stallAfter of when due (${stalledAt - nextDue} ms)`,
  );
});

test('bytes are counted once per distinct blob; layers done never exceed layers total', () => {
  const a = { digest: d('a'), size: 10 * MiB };
  const b = { digest: d('b'), size: 5 * MiB };
  // The manifest lists [A, B, A]: discovery keeps distinct blobs, layerOrder keeps the list.
  const p = pull([a, b]);
  p.layerOrder = [a, b, a];
  const blobs = new Map<string, BlobState>([
    [d('c'), { state: 'fetched', total: 1000 }],
    [a.digest, { state: 'fetched', total: a.size }],
    [b.digest, { state: 'fetching', total: b.size, counted: 2 * MiB, updatedAt: 0 }],
  ]);
  advance(p, blobs, 1000, OPTS);
  assert.equal(p.status.bytesTotal, 1000 + 15 * MiB);
  assert.equal(p.status.bytesDone, 1000 + 12 * MiB);
  assert.equal(p.status.layersTotal, 2);
  assert.equal(p.status.layersDone, 1);
  assert.equal(p.status.percent, Math.floor((100 * (1000 + 12 * MiB)) / (1000 + 15 * MiB)));
  blobs.set(b.digest, { state: 'fetched', total: b.size });
  advance(p, blobs, 2000, OPTS);
  assert.equal(p.status.phase, 'Unpacking');
  assert.equal(p.status.layersDone, 2);
  assert.equal(p.status.percent, 99, 'capped until the image record exists');
});

test('a finished pull counts every blob done, even ones collected after unpack (discard_unpacked_layers)', () => {
  const a = { digest: d('a'), size: 4 * MiB };
  const p = pull([a]);
  const blobs = new Map<string, BlobState>([[a.digest, { state: 'lost', total: a.size, counted: 3 * MiB }]]);
  advance(p, blobs, 1000, OPTS);
  assert.equal(p.status.percent, 74);
  p.finishedAt = 2000;
  p.phase = 'Pulled';
  advance(p, blobs, 2000, OPTS);
  assert.equal(p.status.percent, 100);
  assert.equal(p.status.bytesDone, p.status.bytesTotal);
  assert.equal(p.status.etaSeconds, 0);
});

test('bytes written but not yet flushed: each moving blob its share of the rate since its last write, at most 1 MiB', () => {
  const now = 100_000;
  const fetching = (counted: number, total: number, updatedAt: number | null) =>
    ({ state: 'fetching', total, counted, updatedAt }) as const;
  // 2 MiB/s over two blobs: 1 MiB/s each; 0.5 s since each wrote.
  assert.equal(
    unflushed([fetching(0, 10 * MiB, now - 500), fetching(0, 10 * MiB, now - 500)], 2 * MiB, now),
    MiB,
  );
  // Never more than one write chunk per blob, nor more than the blob has left.
  assert.equal(unflushed([fetching(0, 10 * MiB, now - 60_000)], 2 * MiB, now), MiB);
  assert.equal(unflushed([fetching(10 * MiB - 1000, 10 * MiB, now - 60_000)], 2 * MiB, now), 1000);
  // Unknown write time: half a chunk; no rate: nothing.
  assert.equal(unflushed([fetching(0, 10 * MiB, null)], 2 * MiB, now), MiB / 2);
  assert.equal(unflushed([fetching(0, 10 * MiB, now - 500)], 0, now), 0);
});

test('the ETA allows for the unflushed bytes: 4 blobs at 4 MiB/s, each last written 1 s ago', () => {
  const layers = ['a', 'b', 'e', 'f'].map((c) => ({ digest: d(c), size: 8 * MiB }));
  const p = pull(layers);
  p.cached.add(d('c'));
  const blobs = new Map<string, BlobState>();
  // Steady writes: each blob 1 MiB per second, all flushed at whole seconds.
  for (let t = 0; t <= 4000; t += 1000) {
    for (const l of layers)
      blobs.set(l.digest, { state: 'fetching', total: l.size, counted: (t / 1000) * MiB, updatedAt: t });
    advance(p, blobs, t, OPTS);
  }
  // A poll 0.9 s after the last writes: 16 MiB seen of 32; ~3.6 MiB more are in memory.
  advance(p, blobs, 4900, OPTS);
  const rate = p.status.bytesPerSecond;
  assert.ok(Math.abs(rate - 4 * MiB) / (4 * MiB) < 0.05, `rate ${rate}`);
  const seen = 32 * MiB - p.status.bytesDone;
  assert.equal(p.status.etaSeconds, Math.round((seen - 4 * Math.min(MiB, 0.9 * MiB)) / rate));
  assert.ok(p.status.etaSeconds < Math.round(seen / rate), 'shorter than the flushed bytes alone say');
});

test('a transfer that stops has no rate or ETA at once; its retry is Downloading from the start, not Stalled', () => {
  const layer = { digest: d('a'), size: 20 * MiB };
  const p = pull([layer]);
  p.cached.add(d('c'));
  const blobs = new Map<string, BlobState>();
  const fetching = (counted: number, at: number) =>
    blobs.set(layer.digest, { state: 'fetching', total: layer.size, counted, updatedAt: at });
  for (let t = 0; t <= 4000; t += 1000) {
    fetching((t / 1000 + 1) * 2 * MiB, t);
    advance(p, blobs, t, OPTS);
  }
  assert.ok(p.status.bytesPerSecond > 0);
  // Cancelled: the ingest leaves without a commit.
  blobs.set(layer.digest, { state: 'lost', total: layer.size, counted: 10 * MiB });
  advance(p, blobs, 5000, OPTS);
  assert.equal(p.status.phase, 'Downloading', 'not Failed before failAfter');
  assert.deepEqual([p.status.bytesPerSecond, p.status.etaSeconds], [0, null], 'no made-up rate');
  advance(p, blobs, 60_000, OPTS);
  assert.equal(p.status.phase, 'Failed');
  // The kubelet retries a minute later: a new ingest from 0.
  fetching(0, 61_000);
  advance(p, blobs, 61_000, OPTS);
  assert.equal(p.status.phase, 'Downloading', 'a retry is not Stalled');
  fetching(4 * MiB, 62_000);
  advance(p, blobs, 62_000, OPTS);
  fetching(8 * MiB, 63_000);
  advance(p, blobs, 63_000, OPTS);
  assert.equal(p.status.phase, 'Downloading');
});

test('bytes moving again after a stall: the rate is near the new one, not averaged over the stall', () => {
  const layer = { digest: d('a'), size: 64 * MiB };
  const p = pull([layer]);
  p.cached.add(d('c'));
  const blobs = new Map<string, BlobState>();
  const fetching = (counted: number, at: number) =>
    blobs.set(layer.digest, { state: 'fetching', total: layer.size, counted, updatedAt: at });
  for (let t = 0; t <= 5000; t += 1000) {
    fetching((t / 1000 + 1) * 2 * MiB, t);
    advance(p, blobs, t, OPTS);
  }
  for (let t = 6000; t <= 40_000; t += 1000) advance(p, blobs, t, OPTS);
  assert.equal(p.status.phase, 'Stalled');
  fetching(14 * MiB, 41_000);
  advance(p, blobs, 41_000, OPTS);
  assert.equal(p.status.phase, 'Downloading');
  const rate = p.status.bytesPerSecond;
  assert.ok(rate > 1.5 * MiB && rate < 3 * MiB, `rate ${rate} after the stall, 2 MiB/s before it`);
});
