// The node agent publishing to pods, on the sandbox (e2e/sandbox): real containerd, the real
// registry behind the throttle, the real webhook and node agent processes, and a real
// kube-apiserver, controller-manager, scheduler and kubelet (20 pulls at once here).
//   (a) writes per pod per pull: the stored pod changes where the agent's labels/annotations or
//       its condition changed (a watch of the API server sees every stored change),
//       for a 5 s pull, a 30 s pull and a pull stalled mid-way (throttle stopped past
//       --stall-after);
//   (b) freshness: a byte landing in containerd (ingest updatedAt, ListStatuses every 20 ms) →
//       the pod's status annotation covering it, as a watch sees it; the real kubectl's
//       `get -w` sampled alongside to show it sees the same writes at the same time;
//   (c) the agent's CPU and RSS (/proc) with 110 tracked pods and 20 concurrent pulls against
//       the same agent idle with 0 pods; writes/s to the API and whether every pod got its
//       final state.
// The throttle and the change feed run in this process: nothing here blocks the event
// loop while pulls run (images are built first, /proc and kubectl are read asynchronously).
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import {
  ANNOTATION_READINESS_GATE,
  ANNOTATION_STATUS,
  CONDITION_IMAGES_PULLED,
  EVENT_SOURCE,
  LABEL_ETA,
  LABEL_PROGRESS,
  PREFIX,
  type PodPullStatus,
} from '../common/contract.js';
import { KUBECTL } from '../e2e/cluster/kubectl.js';
import type { Change as StoreChange, ChangeObject as KubeObject } from '../e2e/sandbox/changes.js';
import { buildImage } from '../e2e/env/image-builder.js';
import { startSandbox, type Sandbox } from '../e2e/sandbox/sandbox.js';
import { GrpcContainerdSource } from '../node-agent/containerd/grpc-client.js';

const MiB = 1024 * 1024;
/** Throttle rate of the single-pull cases. */
const RATE = 2 * MiB;
/** The single-pull cases: one layer each, two pods waiting for it. */
const CASES = [
  { name: '5 s pull', layer: 10 * MiB, stall: false },
  { name: '30 s pull', layer: 60 * MiB, stall: false },
  { name: 'stalled pull', layer: 20 * MiB, stall: true },
] as const;
const PODS_PER_CASE = 2;
/** The stalled case: throttle stopped at this percent, for longer than --stall-after (30 s). */
const STALL_AT_PERCENT = 30;
const STALL_MS = 36_000;
/** The load case (issue 7): 110 tracked pods on the node, 20 images pulled at once. */
const LOAD_PODS = 110;
const LOAD_IMAGES = 20;
const LOAD_LAYER = 8_000_000;
const LOAD_RATE = 4 * MiB;
const IDLE_MS = 20_000;
/** The agent's write budget (its defaults): --api-qps 5, --api-burst 10. */
const QPS = 5;
const BURST = 10;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const asc = (xs: number[]) => [...xs].sort((a, b) => a - b);
const mean = (xs: number[]) => (xs.length === 0 ? Number.NaN : xs.reduce((a, b) => a + b, 0) / xs.length);

/** Nearest-rank percentile of an ascending array. */
function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? Number.NaN;
}

// ---- what the agent writes, as the store sees it ------------------------------------------

interface Report {
  t: number;
  rv: number;
  phase: string;
  percent: number;
  bytesDone: number;
}

interface PodLog {
  /** Stored changes of the agent's labels/annotations (metadata) and of its condition (status). */
  metadata: { t: number; rv: number }[];
  status: { t: number; rv: number }[];
  events: { t: number; reason: string }[];
  /** The status annotation at each metadata write. */
  reports: Report[];
  phases: Set<string>;
  conditionTrueAt: number | null;
  runningAt: number | null;
}

const AGENT_LABELS = [LABEL_PROGRESS, LABEL_ETA];

function agentKeys(o: KubeObject | undefined): string {
  const m = o?.metadata;
  const ann = Object.entries(m?.annotations ?? {}).filter(
    ([k]) => k.startsWith(PREFIX) && k !== ANNOTATION_READINESS_GATE,
  );
  const labels = Object.entries(m?.labels ?? {}).filter(([k]) => AGENT_LABELS.includes(k));
  return JSON.stringify([ann.sort(), labels.sort()]);
}

interface Condition {
  type: string;
  status: string;
}
function conditionOf(o: KubeObject | undefined): Condition | null {
  const conds = (o?.status as { conditions?: Condition[] } | undefined)?.conditions ?? [];
  return conds.find((c) => c.type === CONDITION_IMAGES_PULLED) ?? null;
}

/** Records, per pod of the bench's namespaces, every write of the agent the store stores. */
class Recorder {
  readonly pods = new Map<string, PodLog>();
  private readonly off: () => void;

  constructor(sb: Sandbox, nsPrefix: string) {
    this.off = sb.changes.subscribe((c) => {
      const meta = c.object.metadata;
      if (meta?.namespace?.startsWith(nsPrefix) !== true) return;
      if (c.resource.resource === 'events' && c.type === 'ADDED') this.event(c);
      else if (c.resource.resource === 'pods' && c.type === 'MODIFIED') this.pod(c);
    });
  }

  stop(): void {
    this.off();
  }

  log(key: string): PodLog {
    let l = this.pods.get(key);
    if (l === undefined) {
      l = {
        metadata: [],
        status: [],
        events: [],
        reports: [],
        phases: new Set(),
        conditionTrueAt: null,
        runningAt: null,
      };
      this.pods.set(key, l);
    }
    return l;
  }

  /** Every agent write (patch or event) in [from, to], time-ordered. */
  writesBetween(keys: string[], from: number, to: number): number[] {
    const ts: number[] = [];
    for (const k of keys) {
      const l = this.pods.get(k);
      if (l === undefined) continue;
      for (const w of [...l.metadata, ...l.status, ...l.events]) if (w.t >= from && w.t <= to) ts.push(w.t);
    }
    return asc(ts);
  }

  private event(c: StoreChange): void {
    const e = c.object as {
      source?: { component?: string };
      reportingComponent?: string;
      reason?: string;
      involvedObject?: { namespace?: string; name?: string };
    };
    if (e.source?.component !== EVENT_SOURCE && e.reportingComponent !== EVENT_SOURCE) return;
    const key = `${e.involvedObject?.namespace ?? ''}/${e.involvedObject?.name ?? ''}`;
    this.log(key).events.push({ t: performance.now(), reason: e.reason ?? '' });
  }

  private pod(c: StoreChange): void {
    const t = performance.now();
    const key = `${c.object.metadata?.namespace ?? ''}/${c.object.metadata?.name ?? ''}`;
    const l = this.log(key);
    if (agentKeys(c.object) !== agentKeys(c.oldObject)) {
      l.metadata.push({ t, rv: c.resourceVersion });
      const raw = c.object.metadata?.annotations?.[ANNOTATION_STATUS];
      if (raw !== undefined) {
        const doc = JSON.parse(raw) as PodPullStatus;
        l.phases.add(doc.phase);
        l.reports.push({
          t,
          rv: c.resourceVersion,
          phase: doc.phase,
          percent: doc.percent,
          bytesDone: doc.images[0]?.bytesDone ?? 0,
        });
      }
    }
    const cond = conditionOf(c.object);
    if (JSON.stringify(cond) !== JSON.stringify(conditionOf(c.oldObject))) {
      l.status.push({ t, rv: c.resourceVersion });
      if (cond?.status === 'True' && l.conditionTrueAt === null) l.conditionTrueAt = t;
    }
    const phase = (c.object.status as { phase?: string } | undefined)?.phase;
    if (phase === 'Running' && l.runningAt === null) l.runningAt = t;
  }
}

// ---- containerd's writes: ingest offsets with containerd's own updatedAt ----------------

/** Reads ListStatuses every 20 ms and keeps, per layer digest, when each offset was written. */
class IngestObserver {
  /** digest → offset → updatedAt, on this process's performance.now() clock. */
  readonly writes = new Map<string, Map<number, number>>();
  private readonly source: GrpcContainerdSource;
  private on = true;
  private readonly loop: Promise<void>;

  constructor(sb: Sandbox) {
    const source = new GrpcContainerdSource({ address: sb.test.containerd.socketPath });
    this.source = source;
    // updatedAt is wall-clock time; convert it to the performance clock the recorder uses.
    const wallToPerf = (ms: number) => ms - (Date.now() - performance.now());
    this.loop = (async () => {
      while (this.on) {
        const list = await source.listIngests().catch(() => []);
        for (const i of list) {
          if (!i.ref.startsWith('layer-') || i.updatedAt === null || i.offset <= 0) continue;
          const digest = i.ref.slice('layer-'.length);
          let m = this.writes.get(digest);
          if (m === undefined) {
            m = new Map<number, number>();
            this.writes.set(digest, m);
          }
          if (!m.has(i.offset)) m.set(i.offset, wallToPerf(i.updatedAt.getTime()));
        }
        await sleep(20);
      }
    })();
  }

  async stop(): Promise<void> {
    this.on = false;
    await this.loop;
    this.source.close();
  }
}

/** For each write of the layer: ms until the pod's status annotation first showed those bytes. */
function freshness(
  writes: Map<number, number> | undefined,
  reports: Report[],
): { lags: number[]; missed: number } {
  const lags: number[] = [];
  let missed = 0;
  for (const [offset, writtenAt] of writes ?? []) {
    const r = reports.find((x) => x.bytesDone >= offset);
    if (r === undefined) missed++;
    else lags.push(r.t - writtenAt);
  }
  return { lags, missed };
}

// ---- the agent's CPU and memory, from /proc ---------------------------------------------

async function clockTicks(): Promise<number> {
  const { stdout } = await promisify(execFile)('getconf', ['CLK_TCK']).catch(() => ({ stdout: '100' }));
  const n = Number(stdout.trim());
  return n > 0 ? n : 100;
}

interface ProcReading {
  cpuMs: number;
  rssKb: number;
  hwmKb: number;
}

async function readProc(pid: number, ticks: number): Promise<ProcReading> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // After the command name (which may hold spaces): utime is field 14, stime 15.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuMs = ((Number(f[11]) + Number(f[12])) * 1000) / ticks;
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { cpuMs, rssKb: kb('VmRSS'), hwmKb: kb('VmHWM') };
}

interface Usage {
  seconds: number;
  cpuPct: number;
  rssMeanMB: number;
  rssMaxMB: number;
}

/** The agent's CPU over the window and its RSS sampled every second, until `done` settles. */
async function usage(pid: number, ticks: number, done: Promise<unknown>): Promise<Usage> {
  const state = { finished: false };
  const finish = () => {
    state.finished = true;
  };
  done.then(finish, finish);
  const r0 = await readProc(pid, ticks);
  const t0 = performance.now();
  const rss: number[] = [r0.rssKb];
  while (!state.finished) {
    await Promise.race([sleep(1000), done.catch(() => undefined)]);
    rss.push((await readProc(pid, ticks)).rssKb);
  }
  const r1 = await readProc(pid, ticks);
  const seconds = (performance.now() - t0) / 1000;
  return {
    seconds,
    cpuPct: ((r1.cpuMs - r0.cpuMs) / (seconds * 1000)) * 100,
    rssMeanMB: mean(rss) / 1024,
    rssMaxMB: Math.max(...rss) / 1024,
  };
}

// ---- kubectl get -w, alongside ------------------------------------------------------------

interface KubectlWatch {
  /** resourceVersion → when the line reached this process (performance clock). */
  seen: Map<number, number>;
  stop(): void;
}

function kubectlWatch(kubeconfig: string, ns: string, pod: string): KubectlWatch {
  const seen = new Map<number, number>();
  const child = spawn(
    KUBECTL,
    [
      '--kubeconfig',
      kubeconfig,
      'get',
      'pod',
      pod,
      '-n',
      ns,
      '-w',
      '-o',
      'jsonpath={.metadata.resourceVersion} {.metadata.annotations.pulltrace\\.io/progress}{"\\n"}',
    ],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  let buf = '';
  child.stdout.on('data', (d: Buffer) => {
    const t = performance.now();
    buf += d.toString();
    const lines = buf.split('\n');
    buf = lines.pop() ?? '';
    for (const l of lines) {
      const rv = Number(l.split(' ')[0]);
      if (Number.isFinite(rv) && !seen.has(rv)) seen.set(rv, t);
    }
  });
  return {
    seen,
    stop: () => {
      child.kill('SIGTERM');
    },
  };
}

// ---- the pods ------------------------------------------------------------------------------

function podBody(ns: string, name: string, image: string): V1Pod {
  return {
    metadata: { name, namespace: ns, labels: { app: 'bench' } },
    spec: { containers: [{ name: 'main', image }] },
  };
}

async function waitFor(what: string, ms: number, ok: () => boolean): Promise<void> {
  const deadline = performance.now() + ms;
  while (!ok()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`);
    await sleep(100);
  }
}

/** Final state written: condition True and the status document Pulled/Cached at 100 %. */
function finalWritten(l: PodLog | undefined): boolean {
  const last = l?.reports.at(-1);
  return (
    l !== undefined &&
    l.conditionTrueAt !== null &&
    last !== undefined &&
    (last.phase === 'Pulled' || last.phase === 'Cached') &&
    last.percent === 100
  );
}

/** Largest number of writes in any window beyond what QPS allows over it (the bucket's burst). */
function maxBurst(ts: number[]): number {
  let worst = 0;
  for (let i = 0; i < ts.length; i++) {
    for (let j = i; j < ts.length; j++) {
      const excess = j - i + 1 - (QPS * ((ts[j] ?? 0) - (ts[i] ?? 0))) / 1000;
      if (excess > worst) worst = excess;
    }
  }
  return worst;
}

// ---- output --------------------------------------------------------------------------------

const f0 = (n: number) => (Number.isFinite(n) ? n.toFixed(0) : '-');
const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : '-');
const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : '-');
function row(cells: string[], widths: number[]): string {
  return cells.map((c, i) => (i === 0 ? c.padEnd(widths[0] ?? 0) : c.padStart(widths[i] ?? 0))).join(' ');
}
function lagRow(name: string, lags: number[], w: number[], extra: string[] = []): string {
  const s = asc(lags);
  return row([name, String(s.length), f0(pct(s, 0.5)), f0(pct(s, 0.95)), f0(pct(s, 1)), ...extra], w);
}

export async function run(): Promise<void> {
  const began = performance.now();
  const dir = mkdtempSync(join(tmpdir(), 'pt-bench-agent-'));
  const sb = await startSandbox({ dir: join(dir, 'sb'), rate: RATE, parallelPulls: LOAD_IMAGES });
  const nsPrefix = `bench-agent-${randomBytes(2).toString('hex')}`;
  const recorder = new Recorder(sb, nsPrefix);
  const observer = new IngestObserver(sb);
  const core = sb.kubeconfig.makeApiClient(CoreV1Api);
  const watches: KubectlWatch[] = [];
  try {
    const ticks = await clockTicks();
    const pid = sb.agentPid();
    if (pid === null) throw new Error('the sandbox has no node agent running');

    // Every image is built and pushed before the first pull (CPU work that would stall the
    // throttle running in this process).
    const push = async (name: string, layer: number) => {
      const built = await buildImage({ registry: sb.env.REGISTRY, name: `bench/${name}:1`, layers: [layer] });
      return { ref: `${sb.env.PULL_REGISTRY}/bench/${name}:1`, layer: built.layers[0]?.digest ?? '' };
    };
    const single = [];
    for (const [i, c] of CASES.entries()) single.push(await push(`case${i}`, c.layer));
    const load = [];
    for (let i = 0; i < LOAD_IMAGES; i++) load.push(await push(`load${i}`, LOAD_LAYER));
    const nsSingle = `${nsPrefix}-a`;
    const nsLoad = `${nsPrefix}-c`;
    for (const name of [nsSingle, nsLoad]) await core.createNamespace({ body: { metadata: { name } } });
    console.log(
      `sandbox up, ${single.length + load.length} images pushed in ${f1((performance.now() - began) / 1000)} s; agent pid ${pid}`,
    );

    // (c) baseline: the agent idle, no pod on the node (again at the end, once every pod is
    // deleted: the two windows bracket the rest). It has run a while (sandbox start, image
    // pushes); give it 10 s more to settle.
    await sleep(10_000);
    const idleBefore = await usage(pid, ticks, sleep(IDLE_MS));

    // (a) and (b): one case at a time, two pods waiting for the same image.
    const caseResults: {
      name: string;
      seconds: number;
      keys: string[];
      layer: string;
      stalledSeen: boolean;
      stallEvents: number;
    }[] = [];
    let kubectlLags: number[] = [];
    for (const [i, c] of CASES.entries()) {
      const img = single[i];
      if (img === undefined) continue;
      sb.test.throttle.setRate(RATE);
      const names = Array.from({ length: PODS_PER_CASE }, (_, p) => `case${i}-${p}`);
      const keys = names.map((n) => `${nsSingle}/${n}`);
      const t0 = performance.now();
      for (const n of names)
        await core.createNamespacedPod({ namespace: nsSingle, body: podBody(nsSingle, n, img.ref) });
      const watch = c.name === '30 s pull' ? kubectlWatch(sb.env.KUBECONFIG, nsSingle, names[0] ?? '') : null;
      if (watch !== null) watches.push(watch);
      if (c.stall) {
        await waitFor(`${STALL_AT_PERCENT} % of the stalled case`, 120_000, () =>
          keys.every((k) => (recorder.pods.get(k)?.reports.at(-1)?.percent ?? 0) >= STALL_AT_PERCENT),
        );
        sb.test.throttle.setRate(0);
        await sleep(STALL_MS);
        sb.test.throttle.setRate(RATE);
      }
      await waitFor(`the final state of ${c.name}`, 240_000, () =>
        keys.every((k) => finalWritten(recorder.pods.get(k))),
      );
      const seconds = (performance.now() - t0) / 1000;
      await sleep(2500); // anything the agent writes after the final state would show here
      if (watch !== null) {
        watch.stop();
        const log = recorder.pods.get(keys[0] ?? '');
        kubectlLags = [...(log?.metadata ?? []), ...(log?.status ?? [])]
          .filter((w) => watch.seen.has(w.rv))
          .map((w) => (watch.seen.get(w.rv) ?? 0) - w.t);
      }
      caseResults.push({
        name: c.name,
        seconds,
        keys,
        layer: img.layer,
        stalledSeen: keys.every((k) => recorder.pods.get(k)?.phases.has('Stalled') === true),
        stallEvents: keys.reduce(
          (n, k) => n + (recorder.pods.get(k)?.events.filter((e) => e.reason === 'PullStalled').length ?? 0),
          0,
        ),
      });
    }

    // (c) load: 110 pods over 20 images; the kubelet pulls 20 pods' images at once.
    sb.test.throttle.setRate(LOAD_RATE);
    const loadKeys: string[] = [];
    const loadStart = performance.now();
    let loadEnd = 0;
    const loadDone = (async () => {
      for (let i = 0; i < LOAD_PODS; i++) {
        const name = `load-${i}`;
        const img = load[i % LOAD_IMAGES];
        if (img === undefined) continue;
        await core.createNamespacedPod({ namespace: nsLoad, body: podBody(nsLoad, name, img.ref) });
        loadKeys.push(`${nsLoad}/${name}`);
      }
      await waitFor('every load pod running', 300_000, () =>
        loadKeys.every((k) => recorder.pods.get(k)?.runningAt != null),
      );
      const pullsEnd = performance.now();
      // The final state may wait for tokens after the pulls end: wait for it, within reason.
      await waitFor('the final state of every load pod', 150_000, () =>
        loadKeys.every((k) => finalWritten(recorder.pods.get(k))),
      ).catch(() => undefined);
      loadEnd = performance.now();
      return pullsEnd;
    })();
    const busy = await usage(pid, ticks, loadDone);
    const pullsEnd = await loadDone;
    // Then the same 110 pods, tracked, nothing left to pull.
    await sleep(3000);
    const settled = await usage(pid, ticks, sleep(IDLE_MS));
    // Every pod gone (a namespace takes its pods with it): the agent idle with 0 pods again.
    for (const name of [nsSingle, nsLoad]) await core.deleteNamespace({ name });
    await sleep(5000);
    const idleAfter = await usage(pid, ticks, sleep(IDLE_MS));
    const idle: Usage = {
      seconds: idleBefore.seconds + idleAfter.seconds,
      cpuPct: (idleBefore.cpuPct + idleAfter.cpuPct) / 2,
      rssMeanMB: (idleBefore.rssMeanMB + idleAfter.rssMeanMB) / 2,
      rssMaxMB: Math.max(idleBefore.rssMaxMB, idleAfter.rssMaxMB),
    };

    // ---- report ----
    console.log(
      `\n(a) agent writes per pod for one pull (stored changes: labels/annotations = metadata, condition = status; events apart); ` +
        `${PODS_PER_CASE} pods per image, throttle ${RATE / MiB} MiB/s, defaults (--min-patch-interval 2s, --max-writes-per-pull 25)`,
    );
    let w = [16, 8, 9, 9, 9, 11, 8, 8, 38];
    console.log(
      row(['case', 'pull s', 'updates', 'metadata', 'status', 'API writes', 'max', 'events', 'phases'], w),
    );
    for (const c of caseResults) {
      const logs = c.keys.map((k) => recorder.pods.get(k));
      const per = logs.map((l) => (l?.metadata.length ?? 0) + (l?.status.length ?? 0));
      console.log(
        row(
          [
            c.name,
            f1(c.seconds),
            f1(mean(logs.map((l) => Math.max(l?.metadata.length ?? 0, l?.status.length ?? 0)))),
            f1(mean(logs.map((l) => l?.metadata.length ?? 0))),
            f1(mean(logs.map((l) => l?.status.length ?? 0))),
            f1(mean(per)),
            String(Math.max(...per)),
            f1(mean(logs.map((l) => l?.events.length ?? 0))),
            [...(logs[0]?.phases ?? [])].join(','),
          ],
          w,
        ),
      );
    }
    const stall = caseResults.find((c) => c.name === 'stalled pull');
    if (stall !== undefined) {
      console.log(
        `stalled pull: throttle stopped ${STALL_MS / 1000} s at ${STALL_AT_PERCENT} %; Stalled shown on every pod: ${stall.stalledSeen ? 'yes' : 'NO'}; PullStalled events: ${stall.stallEvents}`,
      );
    }

    console.log(
      `\n(b) freshness, ms: containerd writes a chunk (ingest updatedAt) → the pod's status annotation shows those bytes (store watch)`,
    );
    w = [34, 7, 8, 8, 8, 8];
    console.log(row(['case', 'n', 'p50', 'p95', 'max', 'missed'], w));
    const loadLags: number[] = [];
    let loadMissed = 0;
    for (const c of caseResults) {
      const lags: number[] = [];
      let missed = 0;
      for (const k of c.keys) {
        const f = freshness(observer.writes.get(c.layer), recorder.pods.get(k)?.reports ?? []);
        lags.push(...f.lags);
        missed += f.missed;
      }
      console.log(lagRow(c.name, lags, w, [String(missed)]));
    }
    for (const [i, k] of loadKeys.entries()) {
      const f = freshness(
        observer.writes.get(load[i % LOAD_IMAGES]?.layer ?? ''),
        recorder.pods.get(k)?.reports ?? [],
      );
      loadLags.push(...f.lags);
      loadMissed += f.missed;
    }
    console.log(lagRow(`load: ${LOAD_PODS} pods, ${LOAD_IMAGES} pulls`, loadLags, w, [String(loadMissed)]));
    console.log(lagRow('kubectl get -w after the store', kubectlLags, w, ['']));

    const loadWrites = recorder.writesBetween(loadKeys, loadStart, loadEnd);
    const loadSeconds = (loadEnd - loadStart) / 1000;
    const finals = loadKeys.filter((k) => finalWritten(recorder.pods.get(k))).length;
    const finalLag = asc(
      loadKeys
        .map((k) => recorder.pods.get(k))
        .filter((l) => l?.conditionTrueAt != null && l.runningAt != null)
        .map((l) => ((l?.conditionTrueAt ?? 0) - (l?.runningAt ?? 0)) / 1000),
    );
    const updates = loadKeys.map((k) => recorder.pods.get(k)?.metadata.length ?? 0);
    const perPod = loadKeys.map((k) => {
      const l = recorder.pods.get(k);
      return (l?.metadata.length ?? 0) + (l?.status.length ?? 0);
    });
    console.log(
      `\n(c) node agent process with ${LOAD_PODS} tracked pods, ${LOAD_IMAGES} × ${LOAD_LAYER / 1e6} MB pulled at once (throttle ${LOAD_RATE / MiB} MiB/s shared), against the same process idle`,
    );
    w = [34, 7, 8, 13, 12];
    console.log(row(['case', 's', 'CPU %', 'RSS mean MB', 'RSS max MB'], w));
    const uRow = (name: string, u: Usage) =>
      console.log(row([name, f1(u.seconds), f2(u.cpuPct), f1(u.rssMeanMB), f1(u.rssMaxMB)], w));
    uRow('idle, 0 pods, before', idleBefore);
    uRow(`${LOAD_PODS} pods, ${LOAD_IMAGES} concurrent pulls`, busy);
    uRow(`${LOAD_PODS} pods tracked, pulls done`, settled);
    uRow('idle, 0 pods, after', idleAfter);
    const signed = (n: number) => `${n >= 0 ? '+' : ''}${f1(n)}`;
    console.log(
      `against the idle baseline (mean of both idle windows): load CPU ${f1(busy.cpuPct / idle.cpuPct)}×, ` +
        `RSS mean ${signed(busy.rssMeanMB - idle.rssMeanMB)} MB, RSS max ${signed(busy.rssMaxMB - idle.rssMaxMB)} MB; ` +
        `${LOAD_PODS} pods settled CPU ${f1(settled.cpuPct / idle.cpuPct)}×, RSS mean ${signed(settled.rssMeanMB - idle.rssMeanMB)} MB`,
    );
    console.log(
      `pulls took ${f1((pullsEnd - loadStart) / 1000)} s; last final state written ${f1((loadEnd - pullsEnd) / 1000)} s after the last pod ran`,
    );
    console.log(
      `API writes (patches + events) during load: ${loadWrites.length} in ${f1(loadSeconds)} s = ${f2(loadWrites.length / loadSeconds)}/s ` +
        `(budget ${QPS}/s, burst ${BURST}); largest burst above ${QPS}/s: ${f1(maxBurst(loadWrites))}`,
    );
    console.log(
      `per pod: updates mean ${f1(mean(updates))}, API writes mean ${f1(mean(perPod))}, max ${Math.max(...perPod)}; final state written on ${finals}/${LOAD_PODS} pods` +
        `${finals === LOAD_PODS ? ' (no missed final)' : ' (MISSED FINALS)'}; condition True after kubelet Running: ` +
        `p50 ${f1(pct(finalLag, 0.5))} s, p95 ${f1(pct(finalLag, 0.95))} s, max ${f1(pct(finalLag, 1))} s`,
    );
    console.log(`\nbench took ${f0((performance.now() - began) / 1000)} s`);
  } finally {
    for (const w of watches) w.stop();
    recorder.stop();
    await observer.stop();
    await sb.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
