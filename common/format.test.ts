import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatBytes, formatBytesPair, formatRate, progressBar } from './format.js';

test('formatBytes uses decimal units', () => {
  assert.equal(formatBytes(0), '0 B');
  assert.equal(formatBytes(999), '999 B');
  assert.equal(formatBytes(42_100_000), '42.1 MB');
  assert.equal(formatBytes(1_500_000_000), '1.5 GB');
  assert.equal(formatBytes(-5), '0 B');
});

test('formatBytesPair shares the larger unit', () => {
  assert.equal(formatBytesPair(42_100_000, 67_000_000), '42.1/67.0 MB');
  assert.equal(formatBytesPair(500_000, 2_000_000), '0.5/2.0 MB');
  assert.equal(formatBytesPair(10, 20), '10/20 B');
});

test('formatRate', () => assert.equal(formatRate(5_100_000), '5.1 MB/s'));

test('progressBar is bounded', () => {
  assert.equal(progressBar(0, 10), '[..........]');
  assert.equal(progressBar(50, 10), '[#####.....]');
  assert.equal(progressBar(100, 10), '[##########]');
  assert.equal(progressBar(250, 4), '[####]');
  assert.equal(progressBar(-3, 4), '[....]');
});
