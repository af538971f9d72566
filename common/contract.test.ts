import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatDuration, isPhase, isValidLabelValue, PHASES } from './contract.js';

test('formatDuration prints Go-style durations that are valid label values', () => {
  const cases: [number, string][] = [
    [0, '0s'],
    [5, '5s'],
    [65, '1m5s'],
    [3600, '1h0m0s'],
    [3723.4, '1h2m3s'],
    [-4, '0s'],
  ];
  for (const [s, want] of cases) {
    assert.equal(formatDuration(s), want);
    assert.ok(isValidLabelValue(want), want);
  }
});

test('label value validation follows the API server', () => {
  assert.ok(isValidLabelValue(''));
  assert.ok(isValidLabelValue('63'));
  assert.ok(isValidLabelValue('a-b_c.d'));
  assert.ok(!isValidLabelValue('-a'));
  assert.ok(!isValidLabelValue('a b'));
  assert.ok(!isValidLabelValue('x'.repeat(64)));
});

test('isPhase', () => {
  for (const p of PHASES) assert.ok(isPhase(p));
  assert.ok(!isPhase('downloading'));
  assert.ok(!isPhase(3));
});
