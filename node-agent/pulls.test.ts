import { test } from 'node:test';
import assert from 'node:assert/strict';
import { blankStatus, type ImagePullStatus } from '../common/contract.js';
import { jsonLine, pullsTable } from './pulls.js';
import type { TrackedPull, TrackerSnapshot } from './tracker/types.js';

const NOW = Date.parse('2025-06-01T12:00:00.000Z');
const ago = (s: number) => new Date(NOW - s * 1000).toISOString();

function status(over: Partial<ImagePullStatus>): ImagePullStatus {
  return {
    image: 'docker.io/library/nginx:1.27',
    phase: 'Downloading',
    percent: 63,
    bytesDone: 42_300_000,
    bytesTotal: 67_000_000,
    bytesCached: 3_000_000,
    layersDone: 2,
    layersTotal: 5,
    bytesPerSecond: 5_100_000,
    etaSeconds: 65,
    startedAt: ago(10),
    finishedAt: null,
    error: null,
    ...over,
  };
}

function snap(statuses: ImagePullStatus[]): TrackerSnapshot {
  const pulls = statuses.map((s, i): TrackedPull => ({
    key: `sha256:${String(i).repeat(64)}`,
    indexDigest: null,
    manifestDigest: null,
    configDigest: null,
    sources: [],
    names: [],
    slow: false,
    status: s,
  }));
  return { at: new Date(NOW), pulls };
}

/** The table's cells: columns are two or more spaces apart, cells hold at most single spaces. */
const cells = (table: string) => table.split('\n').map((l) => l.split(/ {2,}/));

test('jsonLine: exactly the contract fields of ImagePullStatus, in order, nothing else', () => {
  const s = status({ etaSeconds: null, error: 'boom' });
  const extra = { ...s, secret: 'x', slow: true } as ImagePullStatus;
  const line = jsonLine(extra);
  assert.ok(!line.includes('\n'), 'one line');
  const o = JSON.parse(line) as Record<string, unknown>;
  assert.deepEqual(Object.keys(o), [
    'image',
    'phase',
    'percent',
    'bytesDone',
    'bytesTotal',
    'bytesCached',
    'layersDone',
    'layersTotal',
    'bytesPerSecond',
    'etaSeconds',
    'startedAt',
    'finishedAt',
    'error',
  ]);
  assert.deepEqual(o, { ...s });
  assert.equal(o.etaSeconds, null, 'an unknown ETA is null, not absent');
  assert.equal(o.finishedAt, null);
});

test('pullsTable: header, one row per pull with human figures, newest first', () => {
  const table = pullsTable(
    snap([
      status({ image: 'old:1', startedAt: ago(125), phase: 'Pulled', percent: 100, etaSeconds: 0 }),
      status({ image: 'new:1', startedAt: ago(5) }),
      blankStatus('resolving:1'),
      status({ image: 'mid:1', startedAt: ago(30), phase: 'Stalled', bytesPerSecond: 0, etaSeconds: null }),
    ]),
    false,
  );
  assert.deepEqual(cells(table), [
    ['IMAGE', 'PHASE', 'PROGRESS', 'BYTES', 'CACHED', 'LAYERS', 'RATE', 'ETA', 'AGE'],
    ['new:1', 'Downloading', '63%', '42.3/67.0 MB', '3.0 MB', '2/5', '5.1 MB/s', '1m5s', '5s'],
    ['mid:1', 'Stalled', '63%', '42.3/67.0 MB', '3.0 MB', '2/5', '-', '-', '30s'],
    ['old:1', 'Pulled', '100%', '42.3/67.0 MB', '3.0 MB', '2/5', '5.1 MB/s', '0s', '2m5s'],
    ['resolving:1', 'Resolving', '0%', '-', '-', '0/0', '-', '-', '-'],
  ]);
  // Columns line up: every cell of a column starts at the same offset.
  const lines = table.split('\n');
  const rateAt = lines[0]!.indexOf('RATE');
  for (const l of lines.slice(1)) assert.match(l.slice(rateAt), /^(\d|-)/, l);
});

test('pullsTable with bars: a progress bar beside the percent; no pulls: the header alone', () => {
  const [, row] = cells(pullsTable(snap([status({ percent: 63 })]), true));
  assert.equal(row?.[2], '[#############.......] 63%');
  const [, done] = cells(pullsTable(snap([status({ percent: 100, phase: 'Pulled' })]), true));
  assert.equal(done?.[2], `[${'#'.repeat(20)}] 100%`);
  assert.equal(pullsTable(snap([]), true), 'IMAGE  PHASE  PROGRESS  BYTES  CACHED  LAYERS  RATE  ETA  AGE');
});
