import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ImagePullStatus, Phase } from '../../common/contract.js';
import { WriteBudget, percentStepFor, type BudgetOptions, type BudgetState, type Offer } from './budget.js';
import { podProgress } from './pod-progress.js';
import { MB, imageStatus, pulled, resolving } from '../../test-support/publisher.js';

const DEFAULTS: BudgetOptions = { minPatchIntervalMs: 2000, apiQps: 5, apiBurst: 10, maxWritesPerPull: 25 };

const st = (phase: Phase, percent: number, etaSeconds: number | null = null): BudgetState => ({
  phase,
  percent,
  etaSeconds,
});

/** Offers, and records the write when told to write. */
function step(b: WriteBudget, key: string, s: BudgetState, now: number, cost = 1): Offer {
  const o = b.offer(key, s, now, cost);
  if (o.decision === 'write') b.written(key, s, now);
  return o;
}

test('percentStepFor keeps percent writes inside the budget', () => {
  const cases: [number, number][] = [
    [25, 5],
    [50, 3],
    [10, 20],
    [6, 100],
    [2, 100],
    [105, 1],
  ];
  for (const [max, want] of cases) assert.equal(percentStepFor(max), want, `max ${max}`);
});

test('only meaningful changes are written (table)', () => {
  // Each row: the state offered at t (ms), and the decision wanted; writes are recorded.
  const rows: [number, BudgetState, string][] = [
    [0, st('Resolving', 0), 'write first'],
    [3000, st('Resolving', 0), 'skip unchanged'],
    [6000, st('Downloading', 1, 600), 'write phase'],
    [9000, st('Downloading', 5, 597), 'skip unchanged'], // 4 points < 5; ETA counts down as expected
    [12000, st('Downloading', 6, 594), 'write percent'],
    [13000, st('Downloading', 12, 590), 'later percent 14000'], // within the 2 s interval
    [14000, st('Downloading', 12, 590), 'write percent'],
    [17000, st('Downloading', 13, 900), 'skip budget'], // ETA jump, but no room left for ETA-only writes
    [20000, st('Stalled', 13, null), 'write phase'],
    // The final state does not wait out the 2 s interval: kubectl wait returns on it.
    [21000, st('Pulled', 100, 0), 'write final'],
    [22000, st('Pulled', 100, 0), 'skip unchanged'],
    [30000, st('Pulled', 100, 0), 'skip unchanged'],
  ];
  const b = new WriteBudget(DEFAULTS);
  for (const [t, s, want] of rows) {
    const o = step(b, 'ns/p', s, t);
    const got =
      o.decision === 'skip'
        ? `skip ${o.why}`
        : o.decision === 'later'
          ? `later ${o.reason} ${o.at}`
          : `write ${o.reason}`;
    assert.equal(got, want, `t=${t}`);
  }
  assert.equal(b.writes('ns/p'), 6);
});

test('an ETA off from its countdown is written while the budget has room; a steady one is not', () => {
  const b = new WriteBudget({ ...DEFAULTS, maxWritesPerPull: 60 });
  step(b, 'p', st('Downloading', 0, 100), 0);
  assert.equal(b.offer('p', st('Downloading', 0, 90), 10_000).decision, 'skip', 'on schedule');
  assert.deepEqual(b.offer('p', st('Downloading', 0, 150), 10_000), { decision: 'write', reason: 'eta' });
  b.written('p', st('Downloading', 0, 150), 10_000);
  assert.deepEqual(b.offer('p', st('Downloading', 0, null), 20_000), { decision: 'write', reason: 'eta' });
});

test('the node token bucket spreads writes of many pods', () => {
  const b = new WriteBudget({ ...DEFAULTS, apiQps: 2, apiBurst: 3 });
  const got = ['a', 'b', 'c', 'd', 'e'].map((k) => b.offer(k, st('Resolving', 0), 0));
  assert.deepEqual(
    got.map((o) => o.decision),
    ['write', 'write', 'write', 'later', 'later'],
  );
  assert.deepEqual(got[3], { decision: 'later', reason: 'first', at: 500 });
  assert.equal(b.offer('d', st('Resolving', 0), 500).decision, 'write');
  assert.deepEqual(b.offer('e', st('Resolving', 0), 500), { decision: 'later', reason: 'first', at: 1000 });
  assert.throws(() => b.offer('f', st('Resolving', 0), 500, 4), /costs 1 to 3 tokens/);
});

test('pods waiting for tokens are served in turn', () => {
  const b = new WriteBudget({ ...DEFAULTS, minPatchIntervalMs: 0, apiQps: 1, apiBurst: 1 });
  const order: string[] = [];
  let percent = 0;
  for (let t = 0; t < 9000; t += 100) {
    percent += 1;
    // 'a' always asks first; without turns it would take every token.
    for (const k of ['a', 'b', 'c']) {
      if (step(b, k, st('Downloading', percent), t).decision === 'write') order.push(k);
    }
  }
  assert.deepEqual(order, ['a', 'b', 'c', 'a', 'b', 'c', 'a', 'b', 'c']);
});

test('the final write goes through with an empty bucket, after waiting, ahead of other pods', () => {
  const b = new WriteBudget({ ...DEFAULTS, apiQps: 1, apiBurst: 2 });
  assert.equal(step(b, 'done', st('Downloading', 90, 3), 0).decision, 'write');
  assert.equal(step(b, 'busy', st('Downloading', 10, 60), 0).decision, 'write');
  assert.equal(step(b, 'third', st('Downloading', 10, 60), 1000).decision, 'write');
  // One token left, the final write needs two: it must wait, but is never dropped.
  const fin = b.offer('done', st('Pulled', 100, 0), 2000, 2);
  assert.deepEqual(fin, { decision: 'later', reason: 'final', at: 3000 });
  // Another pod's progress does not take the tokens the final write waits for.
  const other = b.offer('busy', st('Downloading', 30, 40), 3000);
  assert.equal(other.decision, 'later');
  assert.ok(other.at > 3000);
  assert.equal(b.acquire('event:busy', 3000).ok, false, 'events wait behind it too');
  assert.deepEqual(step(b, 'done', st('Pulled', 100, 0), 3000, 2), { decision: 'write', reason: 'final' });
  assert.equal(b.offer('done', st('Pulled', 100, 0), 10_000).decision, 'skip', 'written once');
  assert.equal(step(b, 'busy', st('Downloading', 30, 40), 4000).decision, 'write', 'then the others');
});

test('flapping phases use up the pull budget but never the final write', () => {
  const max = 8;
  const b = new WriteBudget({ ...DEFAULTS, maxWritesPerPull: max });
  let writes = 0;
  for (let t = 0; t < 600_000; t += 1000) {
    const phase: Phase = Math.floor(t / 3000) % 2 === 0 ? 'Downloading' : 'Stalled';
    if (step(b, 'p', st(phase, 10), t).decision === 'write') writes++;
  }
  assert.equal(writes, max - 1, 'all but one write, then skipped');
  assert.equal(b.offer('p', st('Stalled', 10), 700_000).decision, 'skip');
  assert.equal(step(b, 'p', st('Failed', 10), 700_000).decision, 'write');
  assert.equal(b.writes('p'), max);
  // The kubelet retries: a new pull with its own budget.
  assert.deepEqual(step(b, 'p', st('Downloading', 10), 800_000), { decision: 'write', reason: 'first' });
  assert.equal(b.writes('p'), 1);
  b.forget('p');
  assert.equal(b.writes('p'), 0);
  assert.deepEqual(b.offer('p', st('Downloading', 10), 800_500), { decision: 'write', reason: 'first' });
});

test('options are checked', () => {
  assert.throws(() => new WriteBudget({ ...DEFAULTS, apiQps: 0 }), /apiQps/);
  assert.throws(() => new WriteBudget({ ...DEFAULTS, maxWritesPerPull: 1 }), /maxWritesPerPull/);
  assert.throws(() => new WriteBudget({ ...DEFAULTS, minPatchIntervalMs: Number.NaN }), /minPatchIntervalMs/);
});

/** A small deterministic random source (LCG), so the simulation is the same every run. */
function random(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1664525 + 1013904223) % 2 ** 32;
    return x / 2 ** 32;
  };
}

/**
 * The tracker's view of a pull of `size` bytes taking about `seconds`: a few seconds resolving,
 * a jittery rate (±60 %), two stalls, then unpacking and done.
 */
function simulatedPull(image: string, size: number, seconds: number, seed: number): ImagePullStatus[] {
  const rnd = random(seed);
  const out: ImagePullStatus[] = [];
  const mean = size / seconds;
  let done = 0;
  for (let t = 0; t < 3; t++) out.push(resolving(image));
  let t = 0;
  while (done < size) {
    const stalled = (t > 300 && t < 340) || (t > 900 && t < 960);
    const rate = stalled ? 0 : mean * (0.4 + 1.2 * rnd()) * 1.06;
    done = Math.min(size, done + rate);
    const left = size - done;
    out.push(
      imageStatus({
        image,
        phase: stalled ? 'Stalled' : 'Downloading',
        bytesDone: Math.floor(done),
        bytesTotal: size,
        percent: Math.min(99, Math.floor((100 * done) / size)),
        bytesPerSecond: Math.round(rate),
        etaSeconds: rate > 0 ? Math.max(1, Math.round(left / rate)) : null,
      }),
    );
    t++;
  }
  for (let u = 0; u < 2; u++)
    out.push(
      imageStatus({
        image,
        phase: 'Unpacking',
        bytesDone: size,
        bytesTotal: size,
        percent: 99,
        etaSeconds: 0,
      }),
    );
  out.push(pulled(image, size));
  return out;
}

interface PodSim {
  key: string;
  timeline: ImagePullStatus[][];
  floor: number;
  writes: { t: number; phase: Phase }[];
}

function simulate(pods: PodSim[], opts: BudgetOptions, stepMs: number, cost: number) {
  const b = new WriteBudget(opts);
  const tokenTimes: number[] = [];
  const end = Math.max(...pods.map((p) => p.timeline.length)) + 60;
  for (let i = 0; i < end; i++) {
    const now = i * stepMs;
    for (const p of pods) {
      const images = p.timeline[Math.min(i, p.timeline.length - 1)];
      assert.ok(images !== undefined);
      const prog = podProgress(images, { floor: p.floor });
      assert.ok(prog.percent >= p.floor, 'percent never goes backwards');
      p.floor = prog.percent;
      const o = b.offer(p.key, prog, now, cost);
      if (o.decision === 'write') {
        b.written(p.key, prog, now);
        p.writes.push({ t: now, phase: prog.phase });
        for (let c = 0; c < cost; c++) tokenTimes.push(now);
      }
    }
  }
  return { budget: b, tokenTimes, end: end * stepMs };
}

test('a 25-minute pull at 1 s steps costs at most 25 writes per pod, final included', () => {
  const size = 1500 * MB;
  const shared = simulatedPull('docker.io/library/big:1', size, 1500, 7);
  const init = simulatedPull('docker.io/library/busybox:1.36', 30 * MB, 20, 11);
  // Three pods wait for the same image; one waits for an init image first, then for it.
  const initThenMain = [
    ...init.map((s) => [s, resolving('docker.io/library/big:1')]),
    ...shared.map((s) => [init[init.length - 1]!, s]),
  ];
  const pods: PodSim[] = [
    ...['a', 'b', 'c'].map((k) => ({
      key: `ns/${k}`,
      timeline: shared.map((s) => [s]),
      floor: 0,
      writes: [],
    })),
    { key: 'ns/init', timeline: initThenMain, floor: 0, writes: [] },
  ];
  assert.ok(shared.length >= 1500, `the pull lasts ${shared.length} s`);
  const { budget } = simulate(pods, DEFAULTS, 1000, 2);
  for (const p of pods) {
    assert.ok(p.writes.length <= 25, `${p.key}: ${p.writes.length} writes`);
    assert.ok(p.writes.length >= 15, `${p.key}: progress is shown along the way (${p.writes.length})`);
    assert.equal(p.writes[p.writes.length - 1]?.phase, 'Pulled', `${p.key}: final state written`);
    assert.ok(
      p.writes.some((w) => w.phase === 'Stalled'),
      `${p.key}: the stall is shown`,
    );
    for (let i = 1; i < p.writes.length; i++) {
      assert.ok(p.writes[i]!.t - p.writes[i - 1]!.t >= 2000, `${p.key}: min interval`);
    }
    assert.equal(budget.writes(p.key), p.writes.length);
  }
  const init0 = pods[3]!.writes;
  assert.deepEqual(
    init0.slice(0, 2).map((w) => w.phase),
    ['Resolving', 'Downloading'],
  );
});

test('110 pods on one node: the token bucket holds, every final state is written', () => {
  const opts = DEFAULTS;
  const pods: PodSim[] = Array.from({ length: 110 }, (_, i) => ({
    key: `ns/p${i}`,
    timeline: simulatedPull(`registry.test/app${i % 7}:1`, 200 * MB, 200 + (i % 13) * 20, i + 1).map((s) => [
      s,
    ]),
    floor: 0,
    writes: [],
  }));
  const { tokenTimes } = simulate(pods, opts, 1000, 2);
  for (const p of pods) {
    assert.ok(p.writes.length <= opts.maxWritesPerPull, `${p.key}: ${p.writes.length}`);
    assert.ok(p.writes.length >= 4, `${p.key}: waits its turn but is not starved (${p.writes.length})`);
    assert.equal(p.writes[p.writes.length - 1]?.phase, 'Pulled', `${p.key}: final written`);
    const finalDelay = p.writes[p.writes.length - 1]!.t - (p.timeline.length - 1) * 1000;
    assert.ok(finalDelay <= opts.minPatchIntervalMs + 2000, `${p.key}: final ${finalDelay} ms late`);
  }
  // Over any window, tokens used ≤ burst + qps · window.
  for (let i = 0; i < tokenTimes.length; i++) {
    for (const w of [1000, 10_000, 60_000]) {
      let n = 0;
      for (let j = i; j < tokenTimes.length && tokenTimes[j]! < tokenTimes[i]! + w; j++) n++;
      assert.ok(n <= opts.apiBurst + (opts.apiQps * w) / 1000, `${n} tokens in ${w} ms`);
    }
  }
});

test('a short ETA is rewritten only when off its countdown by the 10 s floor or more', () => {
  const b = new WriteBudget({ ...DEFAULTS, maxWritesPerPull: 60 });
  step(b, 'p', st('Downloading', 0, 20), 0);
  // 5 s later the countdown says 15 s; a quarter of that (3.75 s) is below the 10 s floor.
  assert.equal(b.offer('p', st('Downloading', 0, 24), 5000).decision, 'skip', 'off by 9 s: kept');
  assert.deepEqual(b.offer('p', st('Downloading', 0, 26), 5000), { decision: 'write', reason: 'eta' });
  assert.deepEqual(b.offer('p', st('Downloading', 0, 4), 5000), { decision: 'write', reason: 'eta' });
});

test('a final state for other images (kubectl set image) is written, even right after the last final one', () => {
  const b = new WriteBudget(DEFAULTS);
  const pulledOf = (image: string): BudgetState => ({ ...st('Pulled', 100, 0), images: [{ image }] });
  assert.equal(step(b, 'p', pulledOf('app:v1'), 0).decision, 'write');
  assert.deepEqual(b.offer('p', pulledOf('app:v1'), 500), { decision: 'skip', why: 'unchanged' });
  assert.deepEqual(b.offer('p', pulledOf('app:v2'), 500), { decision: 'write', reason: 'final' });
});
