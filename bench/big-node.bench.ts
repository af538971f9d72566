// Cost on a big node (issue 10): containerd's content store (namespace k8s.io) holds 300 images
// of 15 layers (~5 100 blobs, 900 image records; bench/big-node-store.ts), and 10 images of
// 2 × 8 MB are pulled at once through the throttle (4 MiB/s shared). Measured:
//   - the node agent as shipped (`node dist/node-agent/main.js`, default settings, 1 s poll,
//     its pod watch on a real kube-apiserver (e2e/cluster) with the 10 waiting pods): CPU (% of one
//     core, from /proc schedstat) and RSS (/proc status), following the 10 pulls against the
//     same process with no pull in flight;
//   - containerd's CPU with the agent polling against containerd with no agent, on the same
//     store, idle and during the same kind of 10 pulls;
//   - the containerd calls the agent makes (containerd's own gRPC counters, per method), and
//     what each kind of call costs containerd on this store (back-to-back calls), to see
//     whether a poll does anything that grows with the store.
// The throttle runs in this process; nothing here blocks the event loop while pulls run (images
// are built first, /proc and metrics are read async). The API server and etcd are real processes
// (no controller manager, no scheduler: the pods are created bound to the node, and no kubelet
// runs them; the agent only reads and patches them).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync, statSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { CONDITION_IMAGES_PULLED, LABEL_TRACKED } from '../common/contract.js';
import { freePort } from '../test-support/net.js';
import { CoreV1Api, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { startCluster, type Cluster } from '../e2e/cluster/index.js';
import { CriPuller } from '../e2e/env/cri-puller.js';
import { buildImage } from '../e2e/env/image-builder.js';
import { GrpcContainerdSource } from '../node-agent/containerd/grpc-client.js';
import { BIG_STORE, startBigNode, type BigNodeEnv } from './big-node-store.js';

const MiB = 1024 * 1024;
const DIST_MAIN = fileURLToPath(new URL('../dist/node-agent/main.js', import.meta.url));
const NODE = 'big-node';
const RATE = 4 * MiB;
const LOAD_PULLS = 10;
const LOAD_LAYERS = [8_000_000, 8_000_000];
/**
 * One more pull with the agent: an image of many layers, more than containerd's CRI fetches at
 * once (max_concurrent_downloads, 3 by default), so layers wait their turn unseen by the
 * tracker; a slower rate makes it last ~15 polls.
 */
const MANY_LAYERS = Array.from({ length: 16 }, () => 1_000_000);
const MANY_RATE = 1 * MiB;
/** Seconds of each idle window (containerd with no agent; the agent settled). */
const WINDOW_S = Number(process.env.BENCH_BIG_NODE_WINDOW ?? '15');
/** The agent idle with no pull in flight: its baseline. */
const AGENT_IDLE_S = Math.round(WINDOW_S * 1.5);
/** Seconds of back-to-back calls per method for the per-call cost on this store. */
const BURST_S = 1.5;
/** Goals of issue 10, at defaults. */
const GOAL_AGENT_CPU_PCT = 5;
const GOAL_AGENT_RSS_MB = 80;
const GOAL_CTD_ADDED_PCT = 0.5;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const mean = (xs: number[]) => (xs.length === 0 ? Number.NaN : xs.reduce((a, b) => a + b, 0) / xs.length);

// ---- /proc --------------------------------------------------------------------------------

/** Every thread's time on a CPU (/proc/PID/task/TID/schedstat, ns resolution), in ms. */
async function cpuMs(pid: number): Promise<number> {
  let ns = 0;
  for (const tid of await readdir(`/proc/${pid}/task`)) {
    const s = await readFile(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').catch(() => '0');
    ns += Number(s.split(' ')[0]);
  }
  return ns / 1e6;
}

/** VmRSS and VmHWM (peak RSS) in MiB. */
async function memOf(pid: number): Promise<{ rss: number; hwm: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

/** The containerd of this env: the process whose command line has its config. */
async function containerdPid(env: BigNodeEnv): Promise<number> {
  const config = join(env.containerd.dir, 'config.toml');
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const argv = (await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '')).split('\0');
    if (argv[0]?.endsWith('containerd') === true && argv.includes(config)) return Number(name);
  }
  throw new Error(`no containerd process with --config ${config}`);
}

// ---- containerd's gRPC counters ------------------------------------------------------------

/** grpc_server_started_total by "Service/Method" (short service name), containerd's own API only. */
async function grpcCalls(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(url)).text();
  const out = new Map<string, number>();
  const re = /^grpc_server_started_total\{grpc_method="([^"]+)",grpc_service="([^"]+)",[^}]*\} (\S+)$/gm;
  for (const m of text.matchAll(re)) {
    const [, method, service, value] = m;
    if (method === undefined || service?.startsWith('containerd.services.') !== true) continue;
    const n = Number(value);
    if (n > 0) out.set(`${service.replace(/^containerd\.services\.(\w+)\.v1\.\w+$/, '$1')}/${method}`, n);
  }
  return out;
}

function diff(a: Map<string, number>, b: Map<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, v] of b) if (v - (a.get(k) ?? 0) > 0) out.set(k, v - (a.get(k) ?? 0));
  return out;
}

// ---- the agent, as shipped -----------------------------------------------------------------

/** The bench's pods on the real API server, through the admin kubeconfig. */
interface BenchPods {
  /** Creates a tracked pod bound to NODE (as the webhook labels it and the scheduler binds it). */
  create(name: string, image: string): Promise<void>;
  /** Pods in `default` whose pulltrace.io/ImagesPulled condition is True. */
  countPulled(): Promise<number>;
}

async function podsApi(cluster: Cluster): Promise<BenchPods> {
  const kc = new KubeConfig();
  kc.loadFromFile(cluster.kubeconfigPath);
  const core = kc.makeApiClient(CoreV1Api);
  // No controller manager runs to make the namespace's default ServiceAccount, which the API
  // server's ServiceAccount admission wants before it takes a pod.
  await core.createNamespacedServiceAccount({
    namespace: 'default',
    body: { metadata: { name: 'default' } },
  });
  const pulled = (p: V1Pod) =>
    (p.status?.conditions ?? []).some((c) => c.type === CONDITION_IMAGES_PULLED && c.status === 'True');
  return {
    async create(name, image) {
      await core.createNamespacedPod({
        namespace: 'default',
        body: {
          metadata: { name, labels: { [LABEL_TRACKED]: 'true' } },
          spec: { nodeName: NODE, containers: [{ name: 'main', image }] },
        },
      });
    },
    async countPulled() {
      return (await core.listNamespacedPod({ namespace: 'default' })).items.filter(pulled).length;
    },
  };
}

interface Agent {
  child: ChildProcess;
  pid: number;
  /** Its /metrics (prom-client's default process and Node.js metrics among them). */
  metricsUrl: string;
  stop(): Promise<void>;
}

/** `node dist/node-agent/main.js` at its defaults; resolves once /readyz says ready. */
async function startAgent(env: BigNodeEnv, cluster: Cluster): Promise<Agent> {
  const port = await freePort();
  // The agent reads PULLTRACE_* variables: none from this shell may change its defaults.
  const childEnv = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('PULLTRACE_')),
  );
  const log = openSync(join(env.dir, 'agent.log'), 'a');
  const child = spawn(
    process.execPath,
    [
      DIST_MAIN,
      '--node-name',
      NODE,
      '--kubeconfig',
      cluster.kubeconfigPath,
      '--containerd-address',
      env.containerd.socketPath,
      '--metrics-listen',
      `127.0.0.1:${port}`,
    ],
    { stdio: ['ignore', log, log], env: childEnv },
  );
  closeSync(log);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  const deadline = performance.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`the agent exited (${child.exitCode}); see ${env.dir}/agent.log`);
    const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok && child.pid !== undefined)
      return { child, pid: child.pid, metricsUrl: `http://127.0.0.1:${port}/metrics`, stop };
    if (performance.now() > deadline) {
      await stop();
      throw new Error(`the agent was not ready within 20 s; see ${env.dir}/agent.log`);
    }
    await sleep(100);
  }
}

// ---- one measured window -----------------------------------------------------------------

interface Window {
  seconds: number;
  /** containerd CPU over the window, ms. */
  ctdMs: number;
  /** containerd's gRPC calls started in the window (its own API), by Service/Method. */
  calls: Map<string, number>;
  agent: { cpuMs: number; rssMeanMB: number; rssMaxMB: number; hwmMB: number; heap: Heap } | null;
}

/** The V8 heap at the end of a window, MiB, from the agent's own metrics. */
interface Heap {
  used: number;
  total: number;
}

async function heapOf(agent: Agent): Promise<Heap> {
  const text = await (await fetch(agent.metricsUrl)).text();
  const get = (name: string) =>
    Number(new RegExp(`^pulltrace_node_agent_${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN) / MiB;
  return { used: get('nodejs_heap_size_used_bytes'), total: get('nodejs_heap_size_total_bytes') };
}

/** Measures for `ms`, or until `done` settles. The agent's RSS is sampled every second. */
async function measure(
  env: BigNodeEnv,
  ctdPid: number,
  agent: Agent | null,
  until: number | Promise<unknown>,
): Promise<Window> {
  const state = { finished: false };
  if (typeof until !== 'number') {
    const finish = () => {
      state.finished = true;
    };
    until.then(finish, finish);
  }
  const g0 = await grpcCalls(env.metricsUrl);
  const c0 = await cpuMs(ctdPid);
  const a0 = agent === null ? 0 : await cpuMs(agent.pid);
  const t0 = performance.now();
  const rss: number[] = [];
  for (;;) {
    const left = typeof until === 'number' ? t0 + until - performance.now() : 1000;
    if (left <= 0 || state.finished) break;
    const tick = sleep(Math.min(1000, left));
    await (typeof until === 'number' ? tick : Promise.race([tick, until.catch(() => undefined)]));
    if (agent !== null) rss.push((await memOf(agent.pid)).rss);
  }
  const c1 = await cpuMs(ctdPid);
  const a1 = agent === null ? 0 : await cpuMs(agent.pid);
  const seconds = (performance.now() - t0) / 1000;
  const calls = diff(g0, await grpcCalls(env.metricsUrl));
  if (agent === null) return { seconds, ctdMs: c1 - c0, calls, agent: null };
  const m = await memOf(agent.pid);
  rss.push(m.rss);
  return {
    seconds,
    ctdMs: c1 - c0,
    calls,
    agent: {
      cpuMs: a1 - a0,
      rssMeanMB: mean(rss),
      rssMaxMB: Math.max(...rss),
      hwmMB: m.hwm,
      heap: await heapOf(agent),
    },
  };
}

/** Two windows as one: times, CPU and calls added; the agent's RSS figures the larger. */
function merge(a: Window, b: Window): Window {
  const calls = new Map(a.calls);
  for (const [k, n] of b.calls) calls.set(k, (calls.get(k) ?? 0) + n);
  const agent =
    a.agent === null || b.agent === null
      ? null
      : {
          cpuMs: a.agent.cpuMs + b.agent.cpuMs,
          rssMeanMB:
            (a.agent.rssMeanMB * a.seconds + b.agent.rssMeanMB * b.seconds) / (a.seconds + b.seconds),
          rssMaxMB: Math.max(a.agent.rssMaxMB, b.agent.rssMaxMB),
          hwmMB: Math.max(a.agent.hwmMB, b.agent.hwmMB),
          heap: b.agent.heap,
        };
  return { seconds: a.seconds + b.seconds, ctdMs: a.ctdMs + b.ctdMs, calls, agent };
}

// ---- what one call costs containerd on this store ------------------------------------------

interface CallCost {
  name: string;
  /** The Service/Method containerd counts it as. */
  method: string;
  calls: number;
  /** containerd's CPU per call above its idle rate, µs. */
  usPerCall: number;
  /** The client's wall time per call, ms. */
  wallMs: number;
}

async function callCost(
  ctdPid: number,
  idleMsPerS: number,
  name: string,
  method: string,
  call: () => Promise<unknown>,
): Promise<CallCost> {
  await call();
  const c0 = await cpuMs(ctdPid);
  const t0 = performance.now();
  let calls = 0;
  while (performance.now() - t0 < BURST_S * 1000 || calls < 3) {
    await call();
    calls++;
  }
  const seconds = (performance.now() - t0) / 1000;
  const ms = (await cpuMs(ctdPid)) - c0 - idleMsPerS * seconds;
  return { name, method, calls, usPerCall: (ms / calls) * 1000, wallMs: (seconds * 1000) / calls };
}

// ---- where the agent's memory goes ---------------------------------------------------------

interface Footprint {
  name: string;
  cpuPct: number;
  rssMB: number;
  hwmMB: number;
}

/** A node process started with `args`, given 4 s, then measured for 5 s (CPU) and its RSS read. */
async function footprint(name: string, args: string[]): Promise<Footprint> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    const pid = child.pid;
    if (pid === undefined) throw new Error(`${name}: not started`);
    await sleep(4000);
    if (child.exitCode !== null) throw new Error(`${name}: exited with ${child.exitCode}`);
    const c0 = await cpuMs(pid);
    const t0 = performance.now();
    await sleep(5000);
    const c1 = await cpuMs(pid);
    const m = await memOf(pid);
    return { name, cpuPct: ((c1 - c0) / (performance.now() - t0)) * 100, rssMB: m.rss, hwmMB: m.hwm };
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

/** The tracker alone from dist/ (no Kubernetes client, no publisher, no metrics server), 1 s poll. */
function trackerOnlyArgs(socket: string): string[] {
  const url = (p: string) => new URL(`../dist/node-agent/${p}`, import.meta.url).href;
  return [
    '--input-type=module',
    '-e',
    [
      `const { GrpcContainerdSource } = await import(${JSON.stringify(url('containerd/grpc-client.js'))});`,
      `const { PullTracker } = await import(${JSON.stringify(url('tracker/tracker.js'))});`,
      `const source = new GrpcContainerdSource({ address: ${JSON.stringify(socket)} });`,
      'new PullTracker({ source }).start();',
    ].join('\n'),
  ];
}

// ---- output --------------------------------------------------------------------------------

const f0 = (n: number) => (Number.isFinite(n) ? n.toFixed(0) : '-');
const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : '-');
const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : '-');
function row(cells: string[], widths: number[]): string {
  return cells.map((c, i) => (i === 0 ? c.padEnd(widths[0] ?? 0) : c.padStart(widths[i] ?? 0))).join(' ');
}
const pctOf = (w: Window) => (w.ctdMs / w.seconds / 1000) * 100;
const agentPct = (w: Window) => ((w.agent?.cpuMs ?? Number.NaN) / w.seconds / 1000) * 100;

function callsPerS(w: Window): string {
  return [...w.calls]
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k} ${f2(n / w.seconds)}`)
    .join(', ');
}

export async function run(): Promise<void> {
  const began = performance.now();
  if (!existsSync(DIST_MAIN)) throw new Error(`${DIST_MAIN} is missing: run \`npm run build\` first`);
  const builtAt = statSync(DIST_MAIN).mtime;
  const loads: number[] = [loadavg()[0] ?? Number.NaN];
  const log = (s: string) => console.log(s);
  // Whatever started is stopped, last first, however the run ends.
  const cleanup: (() => unknown)[] = [];
  try {
    const env = await startBigNode(RATE, log);
    cleanup.push(() => env.stop());
    const cluster = await startCluster({ controllerManager: false, scheduler: false });
    cleanup.push(() => cluster.stop());
    const pods = await podsApi(cluster);
    const puller = new CriPuller(env.containerd.address);
    cleanup.push(() => {
      puller.close();
    });
    const ctdPid = await containerdPid(env);
    const probe = new GrpcContainerdSource({ address: env.containerd.socketPath });
    cleanup.push(() => {
      probe.close();
    });
    const blobs = (await probe.listContent()).length;
    const records = (await probe.listImages()).length;
    // Images of the four pull rounds (no agent, agent, agent, no agent: the order cancels a
    // drift), all built before any pull: building is CPU work that would stall the throttle
    // running in this process.
    const roundRefs: string[][] = [];
    for (let r = 0; r < 4; r++) {
      const refs: string[] = [];
      for (let i = 0; i < LOAD_PULLS; i++) {
        await buildImage({ registry: env.pushHost, name: `bench/r${r}-${i}:1`, layers: LOAD_LAYERS });
        refs.push(`${env.pullHost}/bench/r${r}-${i}:1`);
      }
      roundRefs.push(refs);
    }
    const refsOf = (r: number) => roundRefs[r] ?? [];
    const manyRef = `${env.pullHost}/bench/many:1`;
    await buildImage({ registry: env.pushHost, name: 'bench/many:1', layers: MANY_LAYERS });
    log(
      `big node up in ${f1((performance.now() - began) / 1000)} s (store ${env.cached ? 'from the cache' : `filled in ${f0(env.populateSeconds)} s`}): ` +
        `${blobs} blobs, ${records} image records in k8s.io; containerd ${env.containerd.release} pid ${ctdPid}; ` +
        `agent ${DIST_MAIN} built ${builtAt.toISOString()}`,
    );
    await sleep(3000); // containerd's start (CRI loading 900 records) and the pushes settle

    // 1. containerd idle, no agent.
    const noneBefore = await measure(env, ctdPid, null, WINDOW_S * 1000);
    loads.push(loadavg()[0] ?? Number.NaN);

    // 2. 10 pulls, no agent.
    const pullAll = (refs: string[]) => Promise.all(refs.map((r) => puller.pullImage(r)));
    const noAgentPulls1 = await measure(env, ctdPid, null, pullAll(refsOf(0)));
    loads.push(loadavg()[0] ?? Number.NaN);
    await sleep(3000);

    // 3. The agent, idle big node (no pod, no pull in flight).
    const agent = await startAgent(env, cluster);
    cleanup.push(() => agent.stop());
    await sleep(5000); // first polls, JIT warm-up
    const agentIdle = await measure(env, ctdPid, agent, AGENT_IDLE_S * 1000);
    loads.push(loadavg()[0] ?? Number.NaN);

    // 4. The agent following 10 pulls: 10 tracked pods on the node wait for the 10 images.
    const podsFor = async (refs: string[], prefix: string) => {
      for (const [i, image] of refs.entries()) await pods.create(`${prefix}-${i}`, image);
    };
    await podsFor(refsOf(1), 'r1');
    const agentPulls1 = await measure(env, ctdPid, agent, pullAll(refsOf(1)));
    loads.push(loadavg()[0] ?? Number.NaN);
    // The final state (condition True) on every pod, as the agent writes it.
    const finalDeadline = performance.now() + 15_000;
    const finals = () => pods.countPulled();
    while ((await finals()) < LOAD_PULLS && performance.now() < finalDeadline) await sleep(250);
    const finalsWritten = await finals();

    // 5. The agent settled: 10 pods done, their pulls kept for retention, nothing in flight.
    await sleep(2000);
    const agentSettled = await measure(env, ctdPid, agent, WINDOW_S * 1000);
    loads.push(loadavg()[0] ?? Number.NaN);

    // 5b. One pull of an image with more layers than containerd fetches at once.
    await pods.create('many', manyRef);
    env.throttle.setRate(MANY_RATE);
    const agentMany = await measure(env, ctdPid, agent, puller.pullImage(manyRef));
    env.throttle.setRate(RATE);

    // 5c. The second round of 10 pulls with the agent.
    await sleep(2000);
    await podsFor(refsOf(2), 'r2');
    const agentPulls2 = await measure(env, ctdPid, agent, pullAll(refsOf(2)));
    loads.push(loadavg()[0] ?? Number.NaN);
    const allPods = 2 * LOAD_PULLS + 1;
    const finalDeadline2 = performance.now() + 15_000;
    while ((await finals()) < allPods && performance.now() < finalDeadline2) await sleep(250);
    const finalsAll = await finals();
    await agent.stop();
    await sleep(2000);

    // 6. containerd idle, no agent, again (the two no-agent windows bracket the agent's), and
    // the second round of pulls with no agent.
    const noneAfter = await measure(env, ctdPid, null, WINDOW_S * 1000);
    loads.push(loadavg()[0] ?? Number.NaN);
    const noAgentPulls2 = await measure(env, ctdPid, null, pullAll(refsOf(3)));
    loads.push(loadavg()[0] ?? Number.NaN);
    const noAgentPulls = merge(noAgentPulls1, noAgentPulls2);
    const agentPulls = merge(agentPulls1, agentPulls2);

    // 7. What each kind of call the tracker can make costs containerd on this store.
    const idleRate = (noneBefore.ctdMs + noneAfter.ctdMs) / (noneBefore.seconds + noneAfter.seconds);
    const someBlob =
      (await probe.listContent([`labels."containerd.io/gc.ref.content.config"`]))[0]?.digest ?? '';
    const labelFilters = [
      `labels."containerd.io/gc.ref.content.config"==sha256:${'0'.repeat(64)}`,
      ...Array.from(
        { length: 64 },
        (_, i) => `labels."containerd.io/gc.ref.content.l.${i}"==sha256:${'0'.repeat(64)}`,
      ),
    ];
    const indexFilters = Array.from(
      { length: 16 },
      (_, i) => `labels."containerd.io/gc.ref.content.m.${i}"==sha256:${'0'.repeat(64)}`,
    );
    const costs: CallCost[] = [];
    /** The agent's List calls priced as their dearest form it makes (checkImages lists every record). */
    const PRICE_AS: Record<string, string> = {
      'images/List': `Images List, all ${records}`,
      'content/List': 'Content List, 65 label filters',
    };
    const cost = async (name: string, method: string, call: () => Promise<unknown>) =>
      costs.push(await callCost(ctdPid, idleRate, name, method, call));
    await cost('ListStatuses (every poll)', 'content/ListStatuses', () => probe.listIngests());
    await cost('Content Info, one blob', 'content/Info', () => probe.contentInfo(someBlob));
    await cost('Leases List', 'leases/List', () => probe.listLeases());
    await cost('Content Read, a manifest', 'content/Read', () => probe.readBlob(someBlob, 4 * MiB));
    await cost('Images List, name== filter', 'images/List', () =>
      probe.listImages([`name=="${env.pullHost}/bench/r1-0:1"`]),
    );
    await cost(`Images List, all ${records}`, 'images/List', () => probe.listImages());
    await cost('Content List, 1 digest== filter', 'content/List', () =>
      probe.listContent([`digest==sha256:${'0'.repeat(64)}`]),
    );
    await cost('Content List, 16 index labels', 'content/List', () => probe.listContent(indexFilters));
    await cost('Content List, 65 label filters', 'content/List', () => probe.listContent(labelFilters));
    await cost('Content List, 8 × 65 label filters', 'content/List', () =>
      probe.listContent(Array.from({ length: 8 }, () => labelFilters).flat()),
    );
    await cost(`Content List, all ${blobs}`, 'content/List', () => probe.listContent());
    probe.close();

    // 8. Where the agent's RSS goes: Node alone, Node with the Kubernetes client loaded (the
    // agent imports it at start), the tracker alone from dist/ polling this store.
    const footprints = [
      await footprint('node, nothing loaded', ['-e', 'setInterval(() => {}, 1000)']),
      await footprint('node + @kubernetes/client-node', [
        '--input-type=module',
        '-e',
        "await import('@kubernetes/client-node'); setInterval(() => {}, 1000);",
      ]),
      await footprint('tracker alone (dist), 1 s poll', trackerOnlyArgs(env.containerd.socketPath)),
    ];

    // ---- report ----
    console.log(
      `\nagent: node dist/node-agent/main.js at its defaults (poll 1 s), its pod watch on a real kube-apiserver; ` +
        `store: ${BIG_STORE.images} images × ${BIG_STORE.layersPerImage} layers (${blobs} blobs, ${records} records); ` +
        `pulls: ${LOAD_PULLS} × ${LOAD_LAYERS.length} × ${(LOAD_LAYERS[0] ?? 0) / 1e6} MB at ${RATE / MiB} MiB/s shared`,
    );
    let w = [34, 7, 8, 13, 12, 12, 16];
    console.log(
      row(['agent process', 's', 'CPU %', 'RSS mean MB', 'RSS max MB', 'peak (HWM)', 'heap used/total'], w),
    );
    const aRow = (name: string, x: Window) =>
      console.log(
        row(
          [
            name,
            f1(x.seconds),
            f2(agentPct(x)),
            f1(x.agent?.rssMeanMB ?? Number.NaN),
            f1(x.agent?.rssMaxMB ?? Number.NaN),
            f1(x.agent?.hwmMB ?? Number.NaN),
            `${f1(x.agent?.heap.used ?? Number.NaN)}/${f1(x.agent?.heap.total ?? Number.NaN)}`,
          ],
          w,
        ),
      );
    aRow('idle big node (no pod, no pull)', agentIdle);
    aRow(`${LOAD_PULLS} pods, ${LOAD_PULLS} pulls, round 1`, agentPulls1);
    aRow(`${LOAD_PULLS} more pods, pulls, round 2`, agentPulls2);
    aRow(`${LOAD_PULLS} pods done, nothing in flight`, agentSettled);
    const peakRss = Math.max(
      agentIdle.agent?.hwmMB ?? 0,
      agentPulls.agent?.hwmMB ?? 0,
      agentSettled.agent?.hwmMB ?? 0,
    );
    console.log(
      `pulls / idle: CPU ${f1(agentPct(agentPulls) / agentPct(agentIdle))}×, RSS max ${f2((agentPulls.agent?.rssMaxMB ?? 0) / (agentIdle.agent?.rssMaxMB ?? 1))}×; ` +
        `final state written on ${finalsWritten}/${LOAD_PULLS} pods after round 1, ${finalsAll}/${allPods} at the end. Goals: CPU ≤ ${GOAL_AGENT_CPU_PCT} % ` +
        `(${agentPct(agentPulls) <= GOAL_AGENT_CPU_PCT ? 'met' : 'NOT met'} with pulls), RSS ≤ ${GOAL_AGENT_RSS_MB} MB ` +
        `(peak ${f1(peakRss)} MB: ${peakRss <= GOAL_AGENT_RSS_MB ? 'met' : 'NOT met'})`,
    );

    console.log(`\ncontainerd CPU (% of one core), same store; calls are containerd's own gRPC counters`);
    w = [34, 7, 8, 10, 8];
    console.log(row(['window', 's', 'CPU %', 'calls/s', 'polls'], w) + '  calls/s by method');
    const cRow = (name: string, x: Window) => {
      const total = [...x.calls.values()].reduce((a, b) => a + b, 0);
      console.log(
        `${row([name, f1(x.seconds), f2(pctOf(x)), f2(total / x.seconds), String(x.calls.get('content/ListStatuses') ?? 0)], w)}  ${callsPerS(x)}`,
      );
    };
    cRow('idle, no agent, before', noneBefore);
    cRow('idle, agent polling', agentIdle);
    cRow('idle, agent, 10 pods done', agentSettled);
    cRow('idle, no agent, after', noneAfter);
    cRow(`${LOAD_PULLS} pulls, no agent, 1st`, noAgentPulls1);
    cRow(`${LOAD_PULLS} pulls, agent, 2nd`, agentPulls1);
    cRow(`${LOAD_PULLS} pulls, agent, 3rd`, agentPulls2);
    cRow(`${LOAD_PULLS} pulls, no agent, 4th`, noAgentPulls2);
    cRow(`1 pull of ${MANY_LAYERS.length} layers, agent`, agentMany);
    const basePct = (idleRate / 1000) * 100;
    const addedIdle = pctOf(agentIdle) - basePct;
    const addedPulls = pctOf(agentPulls) - pctOf(noAgentPulls);
    const byCost = (x: Window) => {
      // The poller's cost from the calls it made and what each costs on this store.
      let us = 0;
      for (const [m, n] of x.calls) {
        const c = costs.find((k) => k.name === PRICE_AS[m]) ?? costs.find((k) => k.method === m);
        us += n * Math.max(0, c?.usPerCall ?? 0);
      }
      return (us / 1000 / x.seconds / 1000) * 100;
    };
    console.log(
      `added by the agent, idle: ${f2(addedIdle)} % of a core (${f2(pctOf(agentIdle) / basePct)}× containerd's idle ${f2(basePct)} %); ` +
        `during pulls: ${f2(addedPulls)} % (${f2(pctOf(agentPulls) / pctOf(noAgentPulls))}×; rounds 2+3 against 1+4; pairwise ${f2(pctOf(agentPulls1) - pctOf(noAgentPulls1))} and ${f2(pctOf(agentPulls2) - pctOf(noAgentPulls2))}). ` +
        `From call counts × per-call cost on this store (Images List priced as listing every record, Content List as a 65-filter scan): idle ${f2(byCost(agentIdle))} %, pulls ${f2(byCost(agentPulls))} %. ` +
        `Goal ≤ ${GOAL_CTD_ADDED_PCT} %.`,
    );
    const polls = agentIdle.calls.get('content/ListStatuses') ?? 0;
    if (polls > 0)
      console.log(
        `per idle poll: containerd +${f0(((agentIdle.ctdMs / agentIdle.seconds - idleRate) * agentIdle.seconds * 1000) / polls)} µs of CPU; ` +
          `calls per poll: ${[...agentIdle.calls].map(([k, n]) => `${k} ${f2(n / polls)}`).join(', ')}`,
      );
    const perPoll = (name: string, x: Window) => {
      const n = x.calls.get('content/ListStatuses') ?? 0;
      if (n === 0) return;
      console.log(
        `per poll, ${name}: ${[...x.calls]
          .sort((a, b) => b[1] - a[1])
          .map(([k, c]) => `${k} ${f2(c / n)}`)
          .join(', ')}; containerd CPU for them (calls × cost) ${f2(byCost(x))} % of a core`,
      );
    };
    perPoll(`${LOAD_PULLS} pulls (both rounds)`, agentPulls);
    perPoll(`1 pull of ${MANY_LAYERS.length} layers at ${MANY_RATE / MiB} MiB/s`, agentMany);
    console.log(
      `agent CPU during the ${MANY_LAYERS.length}-layer pull: ${f2(agentPct(agentMany))} % over ${f1(agentMany.seconds)} s`,
    );

    console.log(
      `\nwhat one call costs containerd on this store (${BURST_S} s back-to-back each, over its idle rate)`,
    );
    w = [34, 7, 12, 12];
    console.log(row(['call', 'calls', 'µs CPU/call', 'ms wall/call'], w));
    for (const c of costs) console.log(row([c.name, String(c.calls), f0(c.usPerCall), f2(c.wallMs)], w));
    console.log(`\nwhere the agent's RSS goes (each process alone, 4 s to settle, 5 s measured)`);
    w = [34, 8, 10, 12];
    console.log(row(['process', 'CPU %', 'RSS MB', 'peak (HWM)'], w));
    for (const x of footprints) console.log(row([x.name, f2(x.cpuPct), f1(x.rssMB), f1(x.hwmMB)], w));
    console.log(
      `\nload average (1 min) at each window: ${loads.map(f1).join(', ')} on ${(await readFile('/proc/cpuinfo', 'utf8')).match(/^processor/gm)?.length ?? '?'} CPUs`,
    );
    console.log(`bench took ${f0((performance.now() - began) / 1000)} s`);
  } finally {
    for (const stop of cleanup.reverse()) await Promise.resolve(stop()).catch(() => undefined);
  }
}
