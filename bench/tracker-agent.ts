// The pull tracker alone in its own process, for the tracker benchmark: its CPU and memory are
// then the tracker's, apart from the throttle, the puller and the sampling in the bench.
//   node --import tsx bench/tracker-agent.ts SOCKET POLL_MS
// Commands on stdin, one a line: `expect REF` (a pod waits for REF, as the publisher says),
// `stat`, `quit`. On stdout: `READY` once polling, then one JSON line per `stat`.
import { createInterface } from 'node:readline';
import { GrpcContainerdSource } from '../node-agent/containerd/grpc-client.js';
import { PullTracker } from '../node-agent/tracker/tracker.js';

/** What the child answers to `stat`. */
export interface AgentStat {
  /** process.cpuUsage() user + system, in microseconds since the process started. */
  cpuUs: number;
  rssBytes: number;
  heapUsedBytes: number;
  /** Polls of containerd done so far (one ListStatuses each when nothing is pulled). */
  polls: number;
  /** Pulls the tracker follows, by phase. */
  phases: Record<string, number>;
  lastError: string | null;
}

const [socket, pollArg] = process.argv.slice(2);
const pollIntervalMs = Number(pollArg);
if (socket === undefined || !(pollIntervalMs > 0)) {
  process.stderr.write('usage: tracker-agent.ts SOCKET POLL_MS\n');
  process.exit(2);
}

const source = new GrpcContainerdSource({ address: socket });
const tracker = new PullTracker({ source, pollIntervalMs });
tracker.start();
await tracker.pollOnce();

function stat(): AgentStat {
  const cpu = process.cpuUsage();
  const phases: Record<string, number> = {};
  for (const p of tracker.snapshot().pulls) phases[p.status.phase] = (phases[p.status.phase] ?? 0) + 1;
  return {
    cpuUs: cpu.user + cpu.system,
    rssBytes: process.memoryUsage.rss(),
    heapUsedBytes: process.memoryUsage().heapUsed,
    polls: tracker.polls,
    phases,
    lastError: tracker.lastError,
  };
}

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const [cmd, arg] = line.trim().split(/\s+/);
  if (cmd === 'expect' && arg !== undefined) tracker.expect(arg);
  else if (cmd === 'stat') process.stdout.write(`${JSON.stringify(stat())}\n`);
  else if (cmd === 'quit') lines.close();
});
lines.once('close', () => {
  tracker.stop();
  source.close();
  process.exit(0);
});
process.stdout.write('READY\n');
