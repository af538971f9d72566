// What a pod waits behind on the node: other pods' pulls in flight and earlier pods' images.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bytesAhead } from './node-queue.js';
import { imageStatus, MB, pulled, resolving } from '../../test-support/publisher.js';

const downloading = (image: string, done: number, total: number, rate: number) =>
  imageStatus({ image, phase: 'Downloading', bytesDone: done, bytesTotal: total, bytesPerSecond: rate });

test('bytes ahead: in-flight remainder not its own, then earlier pods’ images not started (each once)', () => {
  const sizes = new Map([
    ['b:1', 20 * MB],
    ['c:1', 5 * MB],
  ]);
  const got = bytesAhead(
    [
      { key: 'late', since: 300, statuses: [resolving('c:1'), resolving('d:1')] },
      { key: 'first', since: 100, statuses: [downloading('a:1', 4 * MB, 10 * MB, MB), resolving('b:1')] },
      { key: 'second', since: 200, statuses: [resolving('b:1'), resolving('c:1')] },
      { key: 'done', since: 50, statuses: [pulled('z:1', MB)] },
    ],
    6 * MB,
    (i) => sizes.get(i) ?? null,
  );
  assert.deepEqual(got.get('done'), { bytes: 6 * MB, unknown: false });
  // Its own pull is the one in flight: nothing ahead of it.
  assert.deepEqual(got.get('first'), { bytes: 0, unknown: false });
  // a:1's 6 MB to go; b:1 is its own (not counted twice).
  assert.deepEqual(got.get('second'), { bytes: 6 * MB, unknown: false });
  // a:1's 6 MB, b:1 once (20 MB); c:1 is its own; d:1 is its own too.
  assert.deepEqual(got.get('late'), { bytes: 26 * MB, unknown: false });
  const unknown = bytesAhead(
    [
      { key: 'x', since: 1, statuses: [resolving('q:1')] },
      { key: 'y', since: 2, statuses: [resolving('r:1')] },
    ],
    0,
    () => null,
  );
  assert.deepEqual(unknown.get('y'), { bytes: 0, unknown: true });
  assert.deepEqual(unknown.get('x'), { bytes: 0, unknown: false });
});
