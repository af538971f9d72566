// The write scheduler's guarantees, checked on the scale simulation (bench/scale-sim.ts) with
// scenarios small enough for the unit suite: every final state written, no pull over
// --max-writes-per-pull, no node over its token bucket; and the simulation is deterministic.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DENSE_NODE, ROLLOUT_5000, simulate, type ScaleOptions } from './scale-sim.js';

const SMALL: ScaleOptions = { ...ROLLOUT_5000, pods: 300, nodes: 300, stallShare: 0.3, failShare: 0.1 };
const DENSE = DENSE_NODE;

test('every final state is written and no pull goes over --max-writes-per-pull', () => {
  for (const o of [SMALL, DENSE, { ...SMALL, imageBytes: 3000e6, throughputMedian: 10e6 }]) {
    const r = simulate(o);
    assert.equal(r.finalWritten, o.pods, 'every pod ends Pulled');
    assert.ok(r.maxWritesPerPull <= o.budget.maxWritesPerPull, `max per pull ${r.maxWritesPerPull}`);
    assert.ok(r.maxWritesPerPull >= 3, 'progress was shown between first and final');
    assert.ok(r.failures > 0 && r.stalls > 0, 'failures and stalls were simulated');
  }
});

test('a node never sends more than its token bucket allows (burst + qps × t)', () => {
  const r = simulate(DENSE);
  const { apiBurst, apiQps } = DENSE.budget;
  assert.ok(r.nodePeakPerSecond <= apiBurst + apiQps, `1 s: ${r.nodePeakPerSecond}`);
  assert.ok(r.nodePeakPer10s * 10 <= apiBurst + 10 * apiQps, `10 s: ${r.nodePeakPer10s * 10}`);
  // The dense node does use its bucket: the limit is what holds it back.
  assert.ok(r.nodePeakPer10s * 10 >= apiBurst + 5 * apiQps, `10 s: ${r.nodePeakPer10s * 10}`);
});

test('longer pulls write more, up to the cap; the same seed gives the same figures', () => {
  const small = simulate({ ...SMALL, imageBytes: 50e6 });
  const big = simulate({ ...SMALL, imageBytes: 2000e6 });
  assert.ok(big.writesPerPod.mean > small.writesPerPod.mean);
  assert.deepEqual(simulate(SMALL), simulate(SMALL));
  assert.notDeepEqual(simulate(SMALL).writesPerPod, simulate({ ...SMALL, seed: 7 }).writesPerPod);
});
