// The pull tracker on a real containerd pulling from a real registry through the throttle:
// freshness (a byte written by containerd → the tracker's snapshot showing it), ETA error at a
// steady rate, the tracker's CPU and RSS following 10 concurrent pulls against the same process
// idle, and what polling ListStatuses costs containerd against containerd with no poller.
// The throttle runs in this process: nothing here blocks the event loop while a pull runs
// (images are all built before the first pull; /proc is read asynchronously).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { ImagePullStatus } from '../common/contract.js';
import { CriPuller } from '../e2e/env/cri-puller.js';
import { buildImage, type BuiltImage } from '../e2e/env/image-builder.js';
import { startTestEnv, type TestEnv } from '../e2e/env/test-env.js';
import { GrpcContainerdSource } from '../node-agent/containerd/grpc-client.js';
import { PullTracker } from '../node-agent/tracker/tracker.js';
import type { AgentStat } from './tracker-agent.js';

const AGENT = fileURLToPath(new URL('./tracker-agent.ts', import.meta.url));
const MiB = 1024 * 1024;
/** Seconds of each containerd CPU window. */
const WINDOW_S = Number(process.env.BENCH_TRACKER_WINDOW ?? '15');
const FRESH_RATE = 6 * MiB;
const FRESH_LAYER = 60 * MiB;
const ETA_RATE = 2 * MiB;
const ETA_LAYERS = Array.from({ length: 8 }, () => 5_000_000);
const LOAD_RATE = 4 * MiB;
const LOAD_PULLS = 10;
const LOAD_LAYERS = [4_000_000, 4_000_000];

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Nearest-rank percentile of an ascending array. */
function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? Number.NaN;
}

const asc = (xs: number[]) => [...xs].sort((a, b) => a - b);
const mean = (xs: number[]) => (xs.length === 0 ? Number.NaN : xs.reduce((a, b) => a + b, 0) / xs.length);

interface Pushed {
  built: BuiltImage;
  /** Reference to pull (through the throttle). */
  ref: string;
}

async function push(env: TestEnv, name: string, layers: number[]): Promise<Pushed> {
  const built = await buildImage({ registry: env.pushHost, name, layers });
  return { built, ref: `${env.pullHost}/${name}` };
}

// ---- containerd's CPU, from /proc --------------------------------------------------------

/** The containerd started by this test env: the process whose command line has its config. */
async function containerdPid(env: TestEnv): Promise<number> {
  const config = join(env.containerd.dir, 'config.toml');
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const cmdline = await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '');
    const argv = cmdline.split('\0');
    if (argv[0]?.endsWith('containerd') === true && argv.includes(config)) return Number(name);
  }
  throw new Error(`no containerd process with --config ${config}`);
}

interface CpuReading {
  /** utime + stime from /proc/PID/stat, in ms (clock-tick resolution). */
  statMs: number;
  /** Sum of every thread's time on a CPU from /proc/PID/task/TID/schedstat, in ms (ns resolution). */
  schedMs: number;
}

async function cpuOf(pid: number, ticksPerSecond: number): Promise<CpuReading> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  let ns = 0;
  for (const tid of await readdir(`/proc/${pid}/task`)) {
    const s = await readFile(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').catch(() => '0');
    ns += Number(s.split(' ')[0]);
  }
  return { statMs: (ticks * 1000) / ticksPerSecond, schedMs: ns / 1e6 };
}

async function clockTicks(): Promise<number> {
  const { stdout } = await promisify(execFile)('getconf', ['CLK_TCK']).catch(() => ({ stdout: '100' }));
  const n = Number(stdout.trim());
  return n > 0 ? n : 100;
}

// ---- 1. freshness ------------------------------------------------------------------------

interface Freshness {
  pollMs: number;
  /** ms from containerd's write (ingest updatedAt) to the tracker's snapshot showing it. */
  lagMs: number[];
  writes: number;
}

/**
 * Pulls a one-layer image while an observer reads ListStatuses every 20 ms and records each
 * write of the layer (its offset and containerd's updatedAt), and the tracker's onChange
 * records when its snapshot's bytesDone first covers that offset. Writes are 1 MiB apart, far
 * more than the config's bytes, so bytesDone ≥ offset means the tracker has that write.
 */
async function freshness(env: TestEnv, puller: CriPuller, img: Pushed, pollMs: number): Promise<Freshness> {
  const observerSource = new GrpcContainerdSource({ address: env.containerd.socketPath });
  const trackerSource = new GrpcContainerdSource({ address: env.containerd.socketPath });
  const layerRef = `layer-${img.built.layers[0]!.digest}`;
  const writes = new Map<number, number>();
  const state = { observing: true };
  const observer = (async () => {
    while (state.observing) {
      for (const i of await observerSource.listIngests())
        if (i.ref === layerRef && i.updatedAt !== null && i.offset > 0 && !writes.has(i.offset))
          writes.set(i.offset, i.updatedAt.getTime());
      await sleep(20);
    }
  })();
  const reports: { t: number; done: number }[] = [];
  const tracker = new PullTracker({ source: trackerSource, pollIntervalMs: pollMs });
  tracker.onChange((snap) => {
    const p = snap.pulls.find((x) => x.manifestDigest === img.built.manifestDigest);
    if (p !== undefined) reports.push({ t: Date.now(), done: p.status.bytesDone });
  });
  try {
    tracker.start();
    env.throttle.setRate(FRESH_RATE);
    await puller.pullImage(img.ref);
    await sleep(pollMs + 200); // the last write's report
  } finally {
    state.observing = false;
    await observer.catch(() => undefined);
    tracker.stop();
    observerSource.close();
    trackerSource.close();
  }
  const lagMs: number[] = [];
  for (const [offset, writtenAt] of writes) {
    const r = reports.find((x) => x.done >= offset);
    if (r === undefined) throw new Error(`the tracker never showed ${offset} bytes of ${img.ref}`);
    lagMs.push(r.t - writtenAt);
  }
  if (lagMs.length < 10) throw new Error(`only ${lagMs.length} writes of ${img.ref} were seen`);
  return { pollMs, lagMs, writes: writes.size };
}

// ---- 2. ETA error ------------------------------------------------------------------------

interface EtaErrors {
  /** (eta − real) / real for every sample from 25 % done until the end. */
  all: number[];
  /** Same, only samples with at least 6 s really remaining. */
  far: number[];
  /** eta − real in seconds, for `all` and `far`. */
  absS: number[];
  farAbsS: number[];
  missing: number;
  durationS: number;
}

async function etaErrors(env: TestEnv, puller: CriPuller, img: Pushed): Promise<EtaErrors> {
  const source = new GrpcContainerdSource({ address: env.containerd.socketPath });
  const tracker = new PullTracker({ source }); // default poll interval: 1 s
  const samples: { t: number; s: ImagePullStatus }[] = [];
  const iv = setInterval(() => {
    const s = tracker.statusOf(img.ref);
    if (s !== null) samples.push({ t: Date.now(), s });
  }, 100);
  const start = Date.now();
  let end = 0;
  try {
    tracker.start();
    tracker.expect(img.ref);
    env.throttle.setRate(ETA_RATE);
    await puller.pullImage(img.ref);
    end = Date.now();
  } finally {
    clearInterval(iv);
    tracker.stop();
    source.close();
  }
  const from25 = samples.filter((x) => x.s.percent >= 25 && x.s.phase !== 'Pulled' && x.t < end);
  const all: number[] = [];
  const far: number[] = [];
  const absS: number[] = [];
  const farAbsS: number[] = [];
  let missing = 0;
  for (const x of from25) {
    const real = (end - x.t) / 1000;
    if (x.s.etaSeconds === null) {
      missing++;
      continue;
    }
    const e = (x.s.etaSeconds - real) / real;
    all.push(e);
    absS.push(x.s.etaSeconds - real);
    if (real >= 6) {
      far.push(e);
      farAbsS.push(x.s.etaSeconds - real);
    }
  }
  if (far.length < 20) throw new Error(`only ${far.length} ETA samples with ≥ 6 s remaining`);
  return { all, far, absS, farAbsS, missing, durationS: (end - start) / 1000 };
}

// ---- 3 and 4: the tracker in a child process, containerd's CPU ---------------------------

interface Agent {
  child: ChildProcess;
  stat(): Promise<AgentStat>;
  expect(ref: string): void;
  stop(): Promise<void>;
}

async function startAgent(env: TestEnv, pollMs: number): Promise<Agent> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', AGENT, env.containerd.socketPath, String(pollMs)],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  // A child that died leaves writes to its stdin failing with EPIPE: the exit is what matters.
  child.stdin.on('error', () => undefined);
  const waiting: ((line: string) => void)[] = [];
  const lines = createInterface({ input: child.stdout });
  lines.on('line', (l) => waiting.shift()?.(l));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const next = () =>
    new Promise<string>((resolve, reject) => {
      waiting.push(resolve);
      void exited.then(() => reject(new Error('tracker-agent exited')));
    });
  const ready = await next();
  if (ready !== 'READY') {
    child.kill('SIGKILL');
    throw new Error(`tracker-agent said ${ready}`);
  }
  return {
    child,
    async stat() {
      const line = next();
      child.stdin.write('stat\n');
      return JSON.parse(await line) as AgentStat;
    },
    expect(ref) {
      child.stdin.write(`expect ${ref}\n`);
    },
    async stop() {
      child.stdin.write('quit\n');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

interface Window {
  seconds: number;
  /** containerd CPU over the window (ms). */
  ctd: CpuReading;
  agent: { cpuPct: number; rssMeanMB: number; rssMaxMB: number; polls: number; last: AgentStat } | null;
}

/**
 * Measures containerd's CPU (and the agent's CPU, RSS and polls, if there is one) over
 * `ms`, or until `done` settles when given. The agent's RSS is sampled every second.
 */
async function measure(
  pid: number,
  ticks: number,
  agent: Agent | null,
  ms: number,
  done?: Promise<unknown>,
): Promise<Window> {
  let finished = false;
  const finish = () => {
    finished = true;
  };
  const isFinished = () => finished;
  done?.then(finish, finish);
  const a0 = agent === null ? null : await agent.stat();
  const c0 = await cpuOf(pid, ticks);
  const t0 = performance.now();
  const rss: number[] = [];
  for (;;) {
    const left = done === undefined ? t0 + ms - performance.now() : 1000;
    if (left <= 0 || isFinished()) break;
    const tick = sleep(Math.min(1000, left));
    await (done === undefined ? tick : Promise.race([tick, done]));
    if (agent !== null && !isFinished()) rss.push((await agent.stat()).rssBytes);
  }
  const c1 = await cpuOf(pid, ticks);
  const a1 = agent === null ? null : await agent.stat();
  const seconds = (performance.now() - t0) / 1000;
  const ctd = { statMs: c1.statMs - c0.statMs, schedMs: c1.schedMs - c0.schedMs };
  if (a0 === null || a1 === null) return { seconds, ctd, agent: null };
  rss.push(a1.rssBytes);
  return {
    seconds,
    ctd,
    agent: {
      cpuPct: ((a1.cpuUs - a0.cpuUs) / 1000 / (seconds * 1000)) * 100,
      rssMeanMB: mean(rss) / MiB,
      rssMaxMB: Math.max(...rss) / MiB,
      polls: a1.polls - a0.polls,
      last: a1,
    },
  };
}

/** An agent polling at `pollMs`, started and given 3 s to settle (tsx compile, first polls). */
async function withAgent<T>(env: TestEnv, pollMs: number, fn: (a: Agent) => Promise<T>): Promise<T> {
  const agent = await startAgent(env, pollMs);
  try {
    await sleep(3000);
    return await fn(agent);
  } finally {
    await agent.stop();
  }
}

/** containerd's CPU during `ms` of back-to-back ListStatuses calls (sequential, one at a time). */
async function burst(env: TestEnv, pid: number, ticks: number, ms: number) {
  const source = new GrpcContainerdSource({ address: env.containerd.socketPath });
  try {
    await source.listIngests();
    const c0 = await cpuOf(pid, ticks);
    const t0 = performance.now();
    let calls = 0;
    while (performance.now() - t0 < ms) {
      await source.listIngests();
      calls++;
    }
    const c1 = await cpuOf(pid, ticks);
    return {
      calls,
      seconds: (performance.now() - t0) / 1000,
      schedMs: c1.schedMs - c0.schedMs,
      statMs: c1.statMs - c0.statMs,
    };
  } finally {
    source.close();
  }
}

// ---- output ------------------------------------------------------------------------------

const f0 = (n: number) => (Number.isFinite(n) ? n.toFixed(0) : '-');
const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : '-');
const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : '-');
const pc = (n: number) => (Number.isFinite(n) ? `${(n * 100).toFixed(1)} %` : '-');
function row(cells: string[], widths: number[]): string {
  return cells.map((c, i) => (i === 0 ? c.padEnd(widths[0] ?? 0) : c.padStart(widths[i] ?? 0))).join(' ');
}

export async function run(): Promise<void> {
  const began = performance.now();
  const env = await startTestEnv({ rate: LOAD_RATE });
  const puller = new CriPuller(env.containerd.address);
  try {
    const ticks = await clockTicks();
    const pid = await containerdPid(env);
    // Every image is built before the first pull: building is synchronous CPU work (random
    // bytes, gzip) that would stall the throttle running in this process.
    const fresh = [
      await push(env, 'bench/fresh1:1', [FRESH_LAYER]),
      await push(env, 'bench/fresh2:1', [FRESH_LAYER]),
    ];
    const etaImgs = [
      await push(env, 'bench/eta1:1', ETA_LAYERS),
      await push(env, 'bench/eta2:1', ETA_LAYERS),
    ];
    const load: Pushed[] = [];
    for (let i = 0; i < LOAD_PULLS; i++) load.push(await push(env, `bench/load${i}:1`, LOAD_LAYERS));
    console.log(
      `test env up and ${4 + LOAD_PULLS} images pushed in ${f1((performance.now() - began) / 1000)} s; containerd pid ${pid}`,
    );

    // 1. Freshness.
    const fr = [await freshness(env, puller, fresh[0]!, 1000), await freshness(env, puller, fresh[1]!, 250)];

    // 2. ETA error: two pulls, samples pooled (the rate window makes early samples vary).
    const etaRuns = [await etaErrors(env, puller, etaImgs[0]!), await etaErrors(env, puller, etaImgs[1]!)];
    const eta = {
      all: etaRuns.flatMap((r) => r.all),
      far: etaRuns.flatMap((r) => r.far),
      absS: etaRuns.flatMap((r) => r.absS),
      farAbsS: etaRuns.flatMap((r) => r.farAbsS),
      missing: etaRuns.reduce((n, r) => n + r.missing, 0),
    };

    // 3. The tracker in a child, following 10 concurrent pulls, then the same child idle.
    env.throttle.setRate(LOAD_RATE);
    const busy = await withAgent(env, 1000, async (agent) => {
      for (const img of load) agent.expect(img.ref);
      const pulls = Promise.all(load.map((img) => puller.pullImage(img.ref)));
      const w = await measure(pid, ticks, agent, 0, pulls);
      await pulls;
      // Completion comes from containerd's /images/create events: give them a moment.
      let last = w.agent!.last;
      for (let i = 0; i < 20 && (last.phases.Pulled ?? 0) < LOAD_PULLS; i++) {
        await sleep(250);
        last = await agent.stat();
      }
      return { w, pulled: last.phases.Pulled ?? 0 };
    });
    await sleep(3000);

    // 4. containerd's CPU, idle (no pulls): no poller, then the tracker at 1 s (this is also
    // the idle baseline of 3, for as long as the pulls lasted), 250 ms and 100 ms, then no
    // poller again: the baseline brackets the polled windows.
    const noneBefore = await measure(pid, ticks, null, WINDOW_S * 1000);
    const idleMs = Math.max(WINDOW_S, Math.round(busy.w.seconds)) * 1000;
    const at1000 = await withAgent(env, 1000, (a) => measure(pid, ticks, a, idleMs));
    const at250 = await withAgent(env, 250, (a) => measure(pid, ticks, a, WINDOW_S * 1000));
    const at100 = await withAgent(env, 100, (a) => measure(pid, ticks, a, WINDOW_S * 1000));
    await sleep(1000);
    const noneAfter = await measure(pid, ticks, null, WINDOW_S * 1000);
    const b = await burst(env, pid, ticks, 5000);

    // ---- report ----
    console.log(
      `\nfreshness: containerd writes a chunk (ingest updatedAt) → tracker snapshot shows it; ` +
        `one ${FRESH_LAYER / MiB} MiB layer at ${FRESH_RATE / MiB} MiB/s per interval`,
    );
    let w = [26, 7, 8, 8, 8, 13];
    console.log(row(['poll interval', 'writes', 'p50 ms', 'p95 ms', 'max ms', 'p50/interval'], w));
    for (const x of fr) {
      const s = asc(x.lagMs);
      console.log(
        row(
          [
            `${x.pollMs} ms`,
            String(x.writes),
            f0(pct(s, 0.5)),
            f0(pct(s, 0.95)),
            f0(pct(s, 1)),
            f2(pct(s, 0.5) / x.pollMs),
          ],
          w,
        ),
      );
    }

    console.log(
      `\nETA error: ${ETA_LAYERS.length} × ${ETA_LAYERS[0]! / 1e6} MB at ${ETA_RATE / MiB} MiB/s, poll 1 s, sampled every 100 ms; ` +
        `two pulls of ${etaRuns.map((r) => f1(r.durationS)).join(' and ')} s; real remaining = until PullImage returned`,
    );
    w = [26, 7, 12, 10, 10, 14];
    console.log(row(['samples', 'n', 'mean |err|', 'p95 |err|', 'worst', 'worst |abs| s'], w));
    const errRow = (name: string, errs: number[], absS: number[]) => {
      const abs = asc(errs.map(Math.abs));
      const worst = errs.reduce((a, e) => (Math.abs(e) > Math.abs(a) ? e : a), 0);
      const worstAbs = Math.max(...absS.map(Math.abs));
      console.log(
        row([name, String(errs.length), pc(mean(abs)), pc(pct(abs, 0.95)), pc(worst), f1(worstAbs)], w),
      );
    };
    errRow('25 % done → end', eta.all, eta.absS);
    errRow('≥ 6 s remaining', eta.far, eta.farAbsS);
    if (eta.missing > 0) console.log(`(${eta.missing} samples past 25 % had no ETA)`);

    console.log(`\ntracker process (child, poll 1 s): CPU % of one core and RSS`);
    w = [26, 7, 8, 13, 12, 7];
    console.log(row(['case', 's', 'CPU %', 'RSS mean MB', 'RSS max MB', 'polls'], w));
    const agentRow = (name: string, x: Window) =>
      console.log(
        row(
          [
            name,
            f1(x.seconds),
            f2(x.agent!.cpuPct),
            f1(x.agent!.rssMeanMB),
            f1(x.agent!.rssMaxMB),
            String(x.agent!.polls),
          ],
          w,
        ),
      );
    agentRow('idle', at1000);
    agentRow(`${LOAD_PULLS} concurrent pulls`, busy.w);
    console.log(
      `pulls / idle: CPU ${f1(busy.w.agent!.cpuPct / at1000.agent!.cpuPct)}×, RSS max ${f2(busy.w.agent!.rssMaxMB / at1000.agent!.rssMaxMB)}×; ` +
        `tracker saw ${busy.pulled}/${LOAD_PULLS} Pulled`,
    );

    console.log(
      '\ncontainerd CPU, idle containerd (no pulls); ratio and per-call extra against the mean of both no-poller windows',
    );
    w = [26, 7, 8, 12, 12, 8, 12];
    console.log(row(['poller', 's', 'calls/s', 'ms/s sched', 'ms/s stat', 'ratio', 'µs/call'], w));
    const base = (noneBefore.ctd.schedMs + noneAfter.ctd.schedMs) / (noneBefore.seconds + noneAfter.seconds);
    const ctdRow = (name: string, x: Window) => {
      const calls = x.agent === null ? 0 : x.agent.polls / x.seconds;
      const r = x.ctd.schedMs / x.seconds;
      console.log(
        row(
          [
            name,
            f1(x.seconds),
            f1(calls),
            f2(r),
            f2(x.ctd.statMs / x.seconds),
            f2(r / base),
            calls === 0 ? '' : f0(((r - base) / calls) * 1000),
          ],
          w,
        ),
      );
    };
    ctdRow('none, before', noneBefore);
    ctdRow('tracker, poll 1 s', at1000);
    ctdRow('tracker, poll 250 ms', at250);
    ctdRow('tracker, poll 100 ms', at100);
    ctdRow('none, after', noneAfter);
    const bRate = b.schedMs / b.seconds;
    console.log(
      row(
        [
          'back-to-back ListStatuses',
          f1(b.seconds),
          f0(b.calls / b.seconds),
          f2(bRate),
          f2(b.statMs / b.seconds),
          f1(bRate / base),
          f0(((bRate - base) / (b.calls / b.seconds)) * 1000),
        ],
        w,
      ),
    );
    console.log(
      `tracker child CPU while idle: ${f2(at1000.agent!.cpuPct)} % (1 s), ${f2(at250.agent!.cpuPct)} % (250 ms), ${f2(at100.agent!.cpuPct)} % (100 ms)`,
    );
    console.log(`\nbench took ${f0((performance.now() - began) / 1000)} s`);
  } finally {
    puller.close();
    await env.stop();
  }
}
