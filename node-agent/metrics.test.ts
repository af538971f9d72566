import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeContainerdSource } from '../test-support/fake-containerd.js';
import { createAgentMetrics, type PublisherStats } from './metrics.js';
import { PullTracker } from './tracker/tracker.js';

test("the publisher's running totals become counters that only go up, read at scrape time", async () => {
  const counts = { status: 0, events: 0, retries: 0, gone: 0, errors: 0 };
  let active = 2;
  const stats: PublisherStats = { counts, active: () => active };
  const registry = createAgentMetrics(new PullTracker({ source: new FakeContainerdSource() }), {
    processMetrics: false,
    publisher: stats,
  });
  const value = async (line: RegExp) => {
    const m = line.exec(await registry.metrics());
    assert.ok(m?.[1] !== undefined, `no ${String(line)} in the scrape`);
    return Number(m[1]);
  };
  assert.equal(await value(/^pulltrace_api_writes_total\{kind="status"\} (\d+)$/m), 0);
  counts.status = 3;
  counts.events = 2;
  counts.retries = 1;
  assert.equal(await value(/^pulltrace_api_writes_total\{kind="status"\} (\d+)$/m), 3);
  counts.status = 5;
  active = 1;
  assert.equal(await value(/^pulltrace_api_writes_total\{kind="status"\} (\d+)$/m), 5, 'not 3 + 5');
  assert.equal(await value(/^pulltrace_api_writes_total\{kind="event"\} (\d+)$/m), 2);
  assert.doesNotMatch(await registry.metrics(), /kind="metadata"/, 'one patch per update: no metadata kind');
  assert.equal(await value(/^pulltrace_api_write_failures_total\{kind="retry"\} (\d+)$/m), 1);
  assert.equal(await value(/^pulltrace_api_write_failures_total\{kind="gone"\} (\d+)$/m), 0);
  assert.equal(await value(/^pulltrace_pods_followed (\d+)$/m), 1);
});
