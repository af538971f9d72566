// `pulltrace-node-agent pulls`: the tracker's view of a node's pulls, for debugging on a real
// node (e.g. `kubectl debug node/N` or `kubectl exec` into the agent) and in scripts.
import { formatDuration, IMAGE_STATUS_FIELDS, type ImagePullStatus } from '../common/contract.js';
import { alignColumns, formatBytes, formatBytesPair, formatRate, progressBar } from '../common/format.js';
import type { PullsConfig } from './config.js';
import type { ContainerdSource } from './containerd/source.js';
import { PullTracker } from './tracker/tracker.js';
import type { TrackerSnapshot } from './tracker/types.js';

/** One line of `--json` output: the contract's per-image status. */
export function jsonLine(s: ImagePullStatus): string {
  return JSON.stringify(Object.fromEntries(IMAGE_STATUS_FIELDS.map((f) => [f, s[f]])));
}

/** The table: newest pull first; with `bars`, a progress bar beside the percent. */
export function pullsTable(snap: TrackerSnapshot, bars: boolean): string {
  const header = ['IMAGE', 'PHASE', 'PROGRESS', 'BYTES', 'CACHED', 'LAYERS', 'RATE', 'ETA', 'AGE'];
  const now = snap.at.getTime();
  const statuses = snap.pulls
    .map((p) => p.status)
    .sort((a, b) => (b.startedAt ?? '').localeCompare(a.startedAt ?? ''));
  const cells = statuses.map((s) => [
    s.image,
    s.phase,
    bars ? `${progressBar(s.percent, 20)} ${s.percent}%` : `${s.percent}%`,
    s.bytesTotal > 0 ? formatBytesPair(s.bytesDone, s.bytesTotal) : '-',
    s.bytesCached > 0 ? formatBytes(s.bytesCached) : '-',
    `${s.layersDone}/${s.layersTotal}`,
    s.bytesPerSecond > 0 ? formatRate(s.bytesPerSecond) : '-',
    s.etaSeconds === null ? '-' : formatDuration(s.etaSeconds),
    s.startedAt === null ? '-' : formatDuration((now - Date.parse(s.startedAt)) / 1000),
  ]);
  return alignColumns([header, ...cells]);
}

export interface PullsIo {
  out: (text: string) => void;
  isTTY: boolean;
  /** Resolves when the user interrupts --watch (SIGINT/SIGTERM). */
  interrupted: Promise<void>;
}

/**
 * Runs the command. Without --watch: polls until downloads have a rate (at most 5 s), prints
 * and returns. With --watch: prints whenever a pull changes, until interrupted.
 * Rejects if containerd cannot be read.
 */
export async function runPulls(config: PullsConfig, source: ContainerdSource, io: PullsIo): Promise<void> {
  const tracker = new PullTracker({ ...config.tracker, source, snapshotter: config.containerd.snapshotter });
  const last = new Map<string, string>();
  const print = (snap: TrackerSnapshot) => {
    if (config.output.json) {
      // One line per image whose status changed since the last print.
      for (const p of snap.pulls) {
        const l = jsonLine(p.status);
        if (last.get(p.key) === l) continue;
        last.set(p.key, l);
        io.out(`${l}\n`);
      }
    } else if (config.output.watch && io.isTTY) {
      io.out(`\x1b[H\x1b[2J${pullsTable(snap, true)}\n`);
    } else {
      io.out(`${pullsTable(snap, io.isTTY)}\n`);
    }
  };
  const poll = async () => {
    await tracker.pollOnce();
    if (tracker.lastError !== null) throw new Error(tracker.lastError);
  };
  await poll();
  if (!config.output.watch) {
    // A rate needs two samples of containerd's writes, which come 1 MiB apart per layer (every
    // 4 s for a layer at 256 KiB/s): poll until every download has one, for at most 5 s; a
    // download slower than that is printed without a rate.
    const end = Date.now() + 5000;
    const rateless = () =>
      tracker.snapshot().pulls.some((p) => p.status.phase === 'Downloading' && p.status.bytesPerSecond === 0);
    do {
      await new Promise((r) => setTimeout(r, config.tracker.pollIntervalMs));
      await poll();
    } while (rateless() && Date.now() < end);
    print(tracker.snapshot());
    return;
  }
  print(tracker.snapshot());
  const off = tracker.onChange(print);
  tracker.start();
  try {
    await io.interrupted;
  } finally {
    off();
    tracker.stop();
  }
}
