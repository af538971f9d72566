import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffMs } from './backoff.js';

test('back-off doubles from the base and stops at the cap', () => {
  const b = { baseMs: 500, maxMs: 30_000 };
  assert.deepEqual(
    [-1, 0, 1, 2, 5, 6, 7, 100].map((a) => backoffMs(a, b)),
    [500, 500, 1000, 2000, 16_000, 30_000, 30_000, 30_000],
  );
});
