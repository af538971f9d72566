// A simulation of the node agent's API writes at cluster scale, with no cluster: the real write
// scheduler (node-agent/publisher/budget.ts, one WriteBudget per node) driven by modelled
// pulls on a simulated clock. What it models, per pod:
//   - the kubelet starts the pull a moment after the pod is created (scheduling, sync); on a
//     node that pulls at most `parallelPulls` images at once, later pods wait Queued;
//   - Resolving (manifest) for a short while, then Downloading at the node's throughput (drawn
//     per node, jittered per second), maybe a stall (no bytes; Stalled after --stall-after),
//     maybe a failure mid-layer (Failed, then the kubelet's retry after its back-off, a new pull
//     from zero), then Unpacking, then Pulled;
//   - the tracker as the agent sees it: polled every `pollMs`, rate over a 10 s window, ETA =
//     remaining / rate, percent capped at 99 until the image is in;
//   - the publisher as it runs: every `tickMs`, a pod whose state changed (or whose wait is
//     over) is offered to the node's budget at cost 1 (one pods/status patch carrying labels,
//     annotations and condition, which is what a progress write costs), and events (PullStalled, PullFailed, the
//     ImagesPulled summary) take one token each.
// Every write is assumed to succeed at once (the API's latency is not modelled). Pure apart
// from its own state: the clock is the simulation's, randomness comes from a seeded PRNG.
import { isFinal } from '../common/contract.js';
import { WriteBudget, type BudgetOptions, type BudgetState } from '../node-agent/publisher/budget.js';
import { prng } from '../e2e/env/prng.js';

export interface ScaleOptions {
  pods: number;
  nodes: number;
  /** Pods the controllers create per second (they land on nodes round-robin). */
  createPerSecond: number;
  /** Image size: every pod pulls `imageBytes` (one image per pod, nothing cached). */
  imageBytes: number;
  /** Median per-node throughput (bytes/s) and the spread of its log (lognormal σ). */
  throughputMedian: number;
  throughputSigma: number;
  /** Share of pulls that stall once, and for how long (seconds, uniform). */
  stallShare: number;
  stallSeconds: [number, number];
  /** Share of pulls that fail once mid-layer; the kubelet retries after `retryBackoffSeconds`. */
  failShare: number;
  retryBackoffSeconds: number;
  /** Images a node pulls at once (the kubelet's default: 1, serialised). */
  parallelPulls: number;
  /** Unpacking speed (bytes/s). */
  unpackPerSecond: number;
  budget: BudgetOptions;
  /** --stall-after. */
  stallAfterMs: number;
  pollMs: number;
  tickMs: number;
  seed: number;
}

/** The agent's defaults (node-agent/config.ts) and a 5 000-pod rollout on 5 000 nodes. */
export const ROLLOUT_5000: ScaleOptions = {
  pods: 5000,
  nodes: 5000,
  createPerSecond: 100,
  imageBytes: 500e6,
  throughputMedian: 40e6,
  throughputSigma: 0.6,
  stallShare: 0.1,
  stallSeconds: [20, 90],
  failShare: 0.02,
  retryBackoffSeconds: 10,
  parallelPulls: 1,
  unpackPerSecond: 200e6,
  budget: { minPatchIntervalMs: 2000, apiQps: 5, apiBurst: 10, maxWritesPerPull: 25 },
  stallAfterMs: 30_000,
  pollMs: 1000,
  tickMs: 250,
  seed: 20261125,
};

/** One dense node: 110 pods (the kubelet's default maximum), 20 pulls at once, 100 MB each. */
export const DENSE_NODE: ScaleOptions = {
  ...ROLLOUT_5000,
  pods: 110,
  nodes: 1,
  parallelPulls: 20,
  createPerSecond: 110,
  imageBytes: 100e6,
  throughputMedian: 100e6,
  throughputSigma: 0,
};

/** Writes the kubelet makes for one pod that starts: status patches (ContainerCreating,
 * Running, Ready) and events (Pulling, Pulled, Created, Started). */
export const KUBELET_WRITES_PER_POD = 7;
/** ... and for each failed pull: ErrImagePull + ImagePullBackOff status, Failed + BackOff events. */
export const KUBELET_WRITES_PER_FAILURE = 4;

export interface Distribution {
  mean: number;
  p50: number;
  p99: number;
  max: number;
}

export interface ScaleResult {
  options: ScaleOptions;
  /** Simulated seconds from the first pod's creation to the last final write. */
  seconds: number;
  /** Seconds from pod creation to its final state written (image in and shown), per pod. */
  pullSeconds: Distribution;
  /** Budgeted writes per pod (each one: one pods/status patch). */
  writesPerPod: Distribution;
  /** Most writes to one pod for one pull. */
  maxWritesPerPull: number;
  /** API requests per pod: 1 per write, plus its events. */
  requestsPerPod: Distribution;
  events: number;
  totalRequests: number;
  /** Requests in the busiest second, cluster-wide, and the mean over the busy span. */
  clusterPeakPerSecond: number;
  clusterMeanPerSecond: number;
  /** Requests in the busiest second of the busiest node. */
  nodePeakPerSecond: number;
  /** Most requests of one node in any 10 s window, divided by 10. */
  nodePeakPer10s: number;
  /** Pods whose final state (Pulled) was written: must be all of them. */
  finalWritten: number;
  /** Pulls that failed once (and were retried), and stalls. */
  failures: number;
  stalls: number;
  /** What the kubelet writes for the same pods (KUBELET_WRITES_PER_*). */
  kubeletRequests: number;
}

function normal(rand: () => number): number {
  // Box–Muller.
  const u = Math.max(rand(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

function distribution(values: number[]): Distribution {
  const s = [...values].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] ?? 0;
  return {
    mean: s.reduce((a, b) => a + b, 0) / Math.max(1, s.length),
    p50: at(0.5),
    p99: at(0.99),
    max: s.at(-1) ?? 0,
  };
}

/** One pull attempt's download: cumulative bytes at each whole second from its start. */
interface Attempt {
  /** When the kubelet started it (ms). */
  startAt: number;
  resolveMs: number;
  /** cumulative[i]: bytes in after i seconds of downloading. */
  cumulative: number[];
  /** The attempt fails once this many seconds of downloading have passed (null: it succeeds). */
  failAfterS: number | null;
}

interface SimPod {
  key: string;
  node: number;
  createdAt: number;
  attempts: Attempt[];
  /** Index of the attempt in progress. */
  current: number;
  /** When the pod's image is in (ms), once known. */
  doneAt: number | null;
  /** Last state seen by the tracker (at a poll) and whether it changed since the last offer. */
  state: BudgetState;
  changed: boolean;
  /** Publisher: do not offer before this time. */
  notBefore: number;
  /** The percent floor (the last one written). */
  floor: number;
  writes: number;
  writesThisPull: number;
  maxWritesPerPull: number;
  requests: number;
  lastWritten: BudgetState | null;
  pendingEvents: number;
  finalWritten: boolean;
  failed: boolean;
  stalled: boolean;
  /** Waits behind the node's other pulls. */
  queuedUntil: number | null;
}

interface SimNode {
  budget: WriteBudget;
  throughput: number;
  /** Pods in creation order, and how many pulls are running. */
  pods: SimPod[];
  running: number;
  /** Requests per second (by whole second) for this node. */
  perSecond: Map<number, number>;
}

function makeAttempt(
  o: ScaleOptions,
  rand: () => number,
  throughput: number,
  startAt: number,
  fails: boolean,
  stalls: boolean,
): Attempt {
  const resolveMs = 300 + rand() * 1700;
  const cumulative = [0];
  let bytes = 0;
  let second = 0;
  const stallAt = stalls ? o.imageBytes * (0.1 + 0.8 * rand()) : Infinity;
  const stallFor = Math.round(o.stallSeconds[0] + rand() * (o.stallSeconds[1] - o.stallSeconds[0]));
  let stalledFor = 0;
  while (bytes < o.imageBytes) {
    second++;
    if (bytes >= stallAt && stalledFor < stallFor) {
      stalledFor++;
    } else {
      bytes = Math.min(o.imageBytes, bytes + throughput * (0.7 + 0.6 * rand()));
    }
    cumulative.push(bytes);
  }
  const failAfterS = fails ? Math.max(1, Math.floor(second * (0.2 + 0.6 * rand()))) : null;
  return { startAt, resolveMs, cumulative, failAfterS };
}

/** Bytes in `ms` milliseconds into the download. */
function bytesAt(a: Attempt, ms: number): number {
  if (ms <= 0) return 0;
  const s = ms / 1000;
  const i = Math.floor(s);
  const lo = a.cumulative[Math.min(i, a.cumulative.length - 1)] ?? 0;
  const hi = a.cumulative[Math.min(i + 1, a.cumulative.length - 1)] ?? lo;
  return lo + (hi - lo) * (s - i);
}

/** Runs the simulation. */
export function simulate(o: ScaleOptions): ScaleResult {
  const rand = prng(o.seed);
  const nodes: SimNode[] = Array.from({ length: o.nodes }, () => ({
    budget: new WriteBudget(o.budget),
    throughput: Math.max(1e6, o.throughputMedian * Math.exp(o.throughputSigma * normal(rand))),
    pods: [],
    running: 0,
    perSecond: new Map(),
  }));
  const pods: SimPod[] = [];
  for (let i = 0; i < o.pods; i++) {
    const node = i % o.nodes;
    const createdAt = Math.floor((i / o.createPerSecond) * 1000);
    const p: SimPod = {
      key: `ns/pod-${i}`,
      node,
      createdAt,
      attempts: [],
      current: 0,
      doneAt: null,
      state: { phase: 'Resolving', percent: 0, etaSeconds: null },
      changed: true,
      notBefore: 0,
      floor: 0,
      writes: 0,
      writesThisPull: 0,
      maxWritesPerPull: 0,
      requests: 0,
      lastWritten: null,
      pendingEvents: 0,
      finalWritten: false,
      failed: rand() < o.failShare,
      stalled: rand() < o.stallShare,
      queuedUntil: null,
    };
    pods.push(p);
    nodes[node]?.pods.push(p);
  }
  const cluster = new Map<number, number>();
  const count = (p: SimPod, n: number, now: number) => {
    const sec = Math.floor(now / 1000);
    cluster.set(sec, (cluster.get(sec) ?? 0) + n);
    const node = nodes[p.node];
    node?.perSecond.set(sec, (node.perSecond.get(sec) ?? 0) + n);
    p.requests += n;
  };

  let failures = 0;
  let stalls = 0;
  let events = 0;
  let now = 0;
  let last = 0;
  const active = new Set<SimPod>();
  let nextCreate = 0;
  const pollOffset = (p: SimPod) => (p.node * 137) % o.pollMs;

  /** The tracker's view of the pod at a poll at `t`. */
  const observe = (p: SimPod, t: number): BudgetState => {
    const node = nodes[p.node];
    const a = p.attempts[p.current];
    // No pull yet: Queued behind the node's other pulls, or Resolving (the kubelet is about to).
    if (a === undefined || node === undefined)
      return { phase: p.queuedUntil === null ? 'Resolving' : 'Queued', percent: 0, etaSeconds: null };
    if (p.queuedUntil !== null && t < p.queuedUntil)
      return { phase: 'Queued', percent: p.floor, etaSeconds: null };
    const since = t - a.startAt;
    // Before a retry starts, the kubelet still reports the failure (ImagePullBackOff).
    if (since < 0 && p.current > 0) return { phase: 'Failed', percent: p.floor, etaSeconds: null };
    if (since < 0)
      return { phase: p.queuedUntil === null ? 'Resolving' : 'Queued', percent: p.floor, etaSeconds: null };
    if (since < a.resolveMs) return { phase: 'Resolving', percent: p.floor, etaSeconds: null };
    const dl = since - a.resolveMs;
    const downloadMs = (a.cumulative.length - 1) * 1000;
    if (a.failAfterS !== null && dl >= a.failAfterS * 1000)
      return { phase: 'Failed', percent: p.floor, etaSeconds: null };
    const unpackMs = (o.imageBytes / o.unpackPerSecond) * 1000;
    if (dl >= downloadMs + unpackMs) return { phase: 'Pulled', percent: 100, etaSeconds: 0 };
    if (dl >= downloadMs) return { phase: 'Unpacking', percent: 99, etaSeconds: 0 };
    const done = bytesAt(a, dl);
    const windowMs = Math.min(10_000, dl);
    const rate = windowMs > 0 ? ((done - bytesAt(a, dl - windowMs)) / windowMs) * 1000 : 0;
    // Stalled: no bytes for --stall-after.
    const idleFrom = (() => {
      let s = Math.floor(dl / 1000);
      while (s > 0 && (a.cumulative[s] ?? 0) === (a.cumulative[s - 1] ?? 0)) s--;
      return s * 1000;
    })();
    const stalledNow = dl - idleFrom >= o.stallAfterMs && done < o.imageBytes;
    const percent = Math.max(p.floor, Math.min(99, Math.floor((100 * done) / o.imageBytes)));
    const eta = rate > 0 ? Math.max(1, Math.round((o.imageBytes - done) / rate)) : null;
    return { phase: stalledNow ? 'Stalled' : 'Downloading', percent, etaSeconds: stalledNow ? null : eta };
  };

  const startPull = (p: SimPod, at: number) => {
    const node = nodes[p.node];
    if (node === undefined) return;
    const isRetry = p.attempts.length > 0;
    // Pulls running together on a node share its link.
    const share = node.throughput / Math.max(1, Math.min(o.parallelPulls, node.pods.length));
    p.attempts.push(makeAttempt(o, rand, share, at, p.failed && !isRetry, p.stalled && !isRetry));
    p.current = p.attempts.length - 1;
    node.running++;
  };

  const offerEvents = (p: SimPod, t: number) => {
    const node = nodes[p.node];
    while (p.pendingEvents > 0 && node !== undefined) {
      const got = node.budget.acquire(`${p.key}#event`, t);
      if (!got.ok) {
        p.notBefore = Math.max(p.notBefore, got.at);
        return;
      }
      p.pendingEvents--;
      events++;
      count(p, 1, t);
    }
  };

  const endAt = 6 * 3600 * 1000;
  while (now < endAt) {
    // Pods created by now: the kubelet starts each pull a second later, if the node has room.
    while (nextCreate < pods.length && (pods[nextCreate]?.createdAt ?? Infinity) <= now) {
      const p = pods[nextCreate];
      nextCreate++;
      if (p === undefined) continue;
      active.add(p);
      const node = nodes[p.node];
      if (node === undefined) continue;
      if (node.running < o.parallelPulls) startPull(p, p.createdAt + 1000);
      else p.queuedUntil = Infinity;
    }
    for (const p of active) {
      const node = nodes[p.node];
      if (node === undefined) continue;
      // A poll of the tracker: the state may change.
      if (
        Math.floor((now - pollOffset(p)) / o.pollMs) !==
        Math.floor((now - o.tickMs - pollOffset(p)) / o.pollMs)
      ) {
        const s = observe(p, now);
        if (
          s.phase !== p.state.phase ||
          s.percent !== p.state.percent ||
          s.etaSeconds !== p.state.etaSeconds
        ) {
          if (s.phase === 'Stalled' && p.state.phase !== 'Stalled') stalls++;
          p.state = s;
          p.changed = true;
        }
      }
      if (now < p.notBefore || (!p.changed && p.pendingEvents === 0)) continue;
      offerEvents(p, now);
      if (p.finalWritten && p.state.phase === 'Pulled') continue;
      if (!p.changed) continue;
      p.changed = false;
      const offer = node.budget.offer(p.key, p.state, now);
      if (offer.decision === 'later') {
        p.notBefore = offer.at;
        p.changed = true;
        continue;
      }
      if (offer.decision === 'skip') continue;
      const newPull = p.lastWritten !== null && isFinal(p.lastWritten.phase) && !isFinal(p.state.phase);
      node.budget.written(p.key, p.state, now);
      p.writes++;
      p.writesThisPull = newPull ? 1 : p.writesThisPull + 1;
      p.maxWritesPerPull = Math.max(p.maxWritesPerPull, p.writesThisPull);
      p.lastWritten = { ...p.state };
      p.floor = p.state.phase === 'Failed' ? p.floor : p.state.percent;
      count(p, 1, now);
      last = now;
      if (p.state.phase === 'Stalled' || p.state.phase === 'Failed' || p.state.phase === 'Pulled') {
        p.pendingEvents++;
        offerEvents(p, now);
      }
      if (p.state.phase === 'Failed') {
        // The kubelet reports the failure and retries after its back-off: a new pull.
        failures++;
        node.running--;
        const retryAt = now + o.retryBackoffSeconds * 1000;
        p.failed = false;
        startPull(p, retryAt);
      }
      if (p.state.phase === 'Pulled') {
        p.finalWritten = true;
        p.doneAt ??= now;
        node.running--;
        // The next pod waiting on this node starts its pull.
        const next = node.pods.find((q) => q.queuedUntil === Infinity);
        if (next !== undefined) {
          next.queuedUntil = now + 1000;
          startPull(next, now + 1000);
        }
      }
    }
    for (const p of active) if (p.finalWritten && p.pendingEvents === 0) active.delete(p);
    if (nextCreate >= pods.length && active.size === 0) break;
    now += o.tickMs;
  }

  const busy = [...cluster.keys()];
  const span = busy.length === 0 ? 1 : Math.max(...busy) - Math.min(...busy) + 1;
  let nodePeak = 0;
  let nodePeak10 = 0;
  for (const n of nodes) {
    const secs = [...n.perSecond.entries()].sort((a, b) => a[0] - b[0]);
    for (const [, c] of secs) nodePeak = Math.max(nodePeak, c);
    for (let i = 0; i < secs.length; i++) {
      let sum = 0;
      const start = secs[i]?.[0] ?? 0;
      for (let j = i; j < secs.length && (secs[j]?.[0] ?? Infinity) < start + 10; j++)
        sum += secs[j]?.[1] ?? 0;
      nodePeak10 = Math.max(nodePeak10, sum / 10);
    }
  }
  const totalRequests = pods.reduce((n, p) => n + p.requests, 0);
  return {
    options: o,
    seconds: last / 1000,
    pullSeconds: distribution(pods.map((p) => ((p.doneAt ?? NaN) - p.createdAt) / 1000)),
    writesPerPod: distribution(pods.map((p) => p.writes)),
    maxWritesPerPull: Math.max(...pods.map((p) => p.maxWritesPerPull)),
    requestsPerPod: distribution(pods.map((p) => p.requests)),
    events,
    totalRequests,
    clusterPeakPerSecond: Math.max(0, ...cluster.values()),
    clusterMeanPerSecond: totalRequests / span,
    nodePeakPerSecond: nodePeak,
    nodePeakPer10s: nodePeak10,
    finalWritten: pods.filter((p) => p.finalWritten).length,
    failures,
    stalls,
    kubeletRequests: o.pods * KUBELET_WRITES_PER_POD + failures * KUBELET_WRITES_PER_FAILURE,
  };
}
