import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatBytes, formatBytesPair, formatRate, keepEnds, progressBar } from './format.js';

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

test('keepEnds: at most max characters, start and cause kept, cut between words where one is near', () => {
  const msg =
    'failed to pull and unpack image "127.0.0.1:39337/team/nope:1": failed to resolve reference ' +
    '"127.0.0.1:39337/team/nope:1": 127.0.0.1:39337/team/nope:1: not found';
  assert.ok(msg.length > 150 && msg.length <= 192, `the sample is ${msg.length} long`);
  assert.equal(keepEnds(msg, 192), msg, 'short enough: as it is');
  for (const max of [60, 100, 150]) {
    const out = keepEnds(msg, max);
    assert.ok(out.length <= max, `${out.length} > ${max}: ${out}`);
    assert.ok(out.startsWith('failed to pull'), out);
    assert.ok(out.endsWith(': not found'), out);
    const [head = '', tail = ''] = out.split(' … ');
    assert.ok(msg.startsWith(head), `head is the message's start: ${head}`);
    assert.ok(msg.endsWith(tail), `tail is the message's end: ${tail}`);
    // Whole words: the tail starts where a word of the message starts.
    const at = msg.length - tail.length;
    assert.ok(at === 0 || msg[at - 1] === ' ', `tail starts mid-word at max ${max}: ${tail}`);
  }
  // No space anywhere near: cut where the length says.
  const solid = 'x'.repeat(300);
  assert.equal(keepEnds(solid, 100).length, 100);
  assert.equal(keepEnds('short', 100), 'short');
});
