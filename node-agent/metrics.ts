// The node agent's Prometheus metrics, read from the tracker at scrape time (no second copy of
// the state to keep in step).
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { PHASES } from '../common/contract.js';
import type { PullTracker } from './tracker/tracker.js';

/** What the publisher counts (Publisher has these). */
export interface PublisherStats {
  readonly counts: Readonly<Record<'status' | 'events' | 'retries' | 'gone' | 'errors', number>>;
  active(): number;
}

/** A counter that follows a running total kept elsewhere, read at scrape time. */
function followTotals(c: Counter<'kind'>, totals: () => Record<string, number>): () => void {
  const seen = new Map<string, number>();
  return () => {
    for (const [kind, total] of Object.entries(totals())) {
      // inc by 0 too, so every kind's series exists from the first scrape.
      c.inc({ kind }, Math.max(0, total - (seen.get(kind) ?? 0)));
      seen.set(kind, total);
    }
  };
}

/** The gauges read from the tracker: pulls by phase, download rate, bytes left, containerd up. */
function registerPullGauges(registry: Registry, tracker: PullTracker): void {
  new Gauge({
    name: 'pulltrace_pulls',
    help: 'Image pulls the agent follows on this node (in flight or finished within retention), by phase.',
    labelNames: ['phase'],
    registers: [registry],
    collect() {
      const counts = new Map<string, number>(PHASES.map((p) => [p, 0]));
      for (const p of tracker.snapshot().pulls)
        counts.set(p.status.phase, (counts.get(p.status.phase) ?? 0) + 1);
      for (const [phase, n] of counts) this.set({ phase }, n);
    },
  });
  new Gauge({
    name: 'pulltrace_pull_bytes_per_second',
    help: 'Download rate of all pulls on this node together.',
    registers: [registry],
    collect() {
      this.set(tracker.snapshot().pulls.reduce((n, p) => n + p.status.bytesPerSecond, 0));
    },
  });
  new Gauge({
    name: 'pulltrace_pull_bytes_remaining',
    help: 'Bytes still to download for pulls in flight on this node.',
    registers: [registry],
    collect() {
      const live = tracker
        .snapshot()
        .pulls.filter((p) => p.status.finishedAt === null && p.status.phase !== 'Failed');
      this.set(live.reduce((n, p) => n + p.status.bytesTotal - p.status.bytesDone, 0));
    },
  });
  new Gauge({
    name: 'pulltrace_containerd_up',
    help: '1 when the last read of containerd worked, else 0.',
    registers: [registry],
    collect() {
      this.set(tracker.lastError === null ? 1 : 0);
    },
  });
}

/** The publisher's metrics: API writes and failed writes by kind, and the pods still followed. */
function registerPublisherMetrics(registry: Registry, pub: PublisherStats): void {
  const requests: Counter<'kind'> = new Counter({
    name: 'pulltrace_api_writes_total',
    help: 'API writes made to pods, by kind: status (the pods/status patch of labels, annotations and condition), event.',
    labelNames: ['kind'],
    registers: [registry],
    collect: () => {
      update();
    },
  });
  const update = followTotals(requests, () => ({
    status: pub.counts.status,
    event: pub.counts.events,
  }));
  const failures: Counter<'kind'> = new Counter({
    name: 'pulltrace_api_write_failures_total',
    help: 'Failed API writes, by what was done: retry (409, 429, 5xx, network), gone (404: pod deleted), rejected (other 4xx).',
    labelNames: ['kind'],
    registers: [registry],
    collect: () => {
      updateFailures();
    },
  });
  const updateFailures = followTotals(failures, () => ({
    retry: pub.counts.retries,
    gone: pub.counts.gone,
    rejected: pub.counts.errors,
  }));
  new Gauge({
    name: 'pulltrace_pods_followed',
    help: 'Tracked pods on this node whose images are not all in yet (the agent still writes to them).',
    registers: [registry],
    collect() {
      this.set(pub.active());
    },
  });
}

/**
 * The agent's registry: process metrics (when `processMetrics`), the tracker's gauges, and the
 * publisher's metrics when a publisher is given.
 */
export function createAgentMetrics(
  tracker: PullTracker,
  opts: { processMetrics: boolean; publisher?: PublisherStats },
): Registry {
  const registry = new Registry();
  if (opts.processMetrics) collectDefaultMetrics({ register: registry, prefix: 'pulltrace_node_agent_' });
  registerPullGauges(registry, tracker);
  if (opts.publisher !== undefined) registerPublisherMetrics(registry, opts.publisher);
  return registry;
}
