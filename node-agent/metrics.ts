// The node agent's Prometheus metrics, read from the tracker at scrape time (no second copy of
// the state to keep in step).
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { PHASES } from '../common/contract.js';
import type { PullTracker } from './tracker/tracker.js';

export function createAgentMetrics(tracker: PullTracker, opts: { processMetrics: boolean }): Registry {
  const registry = new Registry();
  if (opts.processMetrics) collectDefaultMetrics({ register: registry, prefix: 'pulltrace_node_agent_' });
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
  return registry;
}
