// pulltrace under faults, on the local sandbox (real containerd, registry, webhook and agent
// processes; API server and kubelet stand-ins): it must never make the cluster worse.
//   - webhook down / slow → pods are still created (failurePolicy Ignore, timeoutSeconds
//     honoured), unlabelled; the webhook back → labelling resumes. The added create latency is
//     measured and reported (t.diagnostic), not asserted;
//   - node agent SIGKILLed mid-pull and restarted → final state written, no stale phase;
//   - containerd restarted mid-pull → the agent stays up, /readyz recovers, the pod ends with
//     the true state, never stuck Downloading;
//   - the API answering 429 / 500 / 409 for 5 s → the agent backs off, stays within its write
//     budget (requests that reached the fault hook), and the final state is written;
//   - the registry dropping connections mid-layer → phase and message say so, then Pulled.
// Figures are printed as test diagnostics; docs/benchmarks.md quotes them.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { AdmissionregistrationV1Api, type V1MutatingWebhookConfiguration } from '@kubernetes/client-node';
import {
  ANNOTATION_PHASE,
  ANNOTATION_PROGRESS,
  ANNOTATION_STATUS,
  CONDITION_IMAGES_PULLED,
  LABEL_PROGRESS,
  LABEL_TRACKED,
  type PodPullStatus,
} from '../common/contract.js';
import type { FaultHit, FaultRequest } from './control-plane/faults.js';
import { kubectlFor, type Kubectl } from './control-plane/kubectl.js';
import type { StoreChange } from './control-plane/store.js';
import type { Pod } from './control-plane/types.js';
import { buildImage } from './env/image-builder.js';
import { startSandbox, type Sandbox } from './sandbox/sandbox.js';

const MB = 1_000_000;
const MiB = 1024 * 1024;
const RATE = 4 * MiB;
/** The agent's defaults (node-agent/config.ts), which the budget assertions use. */
const API_QPS = 5;
const API_BURST = 10;
const MAX_WRITES_PER_PULL = 25;

let sb: Sandbox;
let k: Kubectl;
let dir: string;
let ns: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pt-faults-'));
  sb = await startSandbox({
    dir: join(dir, 'sb'),
    rate: RATE,
    agentArgs: ['--poll-interval', '250ms', '--stall-after', '4s'],
  });
  k = kubectlFor(sb.env.KUBECONFIG);
  ns = `pt-faults-${randomBytes(3).toString('hex')}`;
  const r = await k.run(['create', 'namespace', ns]);
  assert.equal(r.code, 0, r.stderr);
});

after(async () => {
  k.cleanup();
  await sb.stop();
  rmSync(dir, { recursive: true, force: true });
});

let imageCount = 0;
/** Builds and pushes a fresh image (random layers: nothing cached); returns the pull reference. */
async function image(layersMb: number[]): Promise<string> {
  imageCount++;
  const name = `faults/img${imageCount}-${randomBytes(2).toString('hex')}:v1`;
  await buildImage({ registry: sb.env.REGISTRY, name, layers: layersMb.map((m) => m * MB) });
  return `${sb.env.PULL_REGISTRY}/${name}`;
}

function podYaml(name: string, ref: string): string {
  return `apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: ${ns}}
spec:
  containers:
  - {name: main, image: ${ref}}
`;
}

/** Creates the pod with the real kubectl; returns how long `kubectl create` took (ms). */
async function create(name: string, ref: string): Promise<number> {
  const t0 = performance.now();
  const r = await k.run(['create', '-f', '-'], { input: podYaml(name, ref) });
  assert.equal(r.code, 0, `kubectl create ${name}: ${r.stderr}`);
  return performance.now() - t0;
}

function get(name: string): Pod | null {
  try {
    return sb.controlPlane.store.pods.get({ namespace: ns, name });
  } catch {
    return null;
  }
}

/** What the agent has written on the pod, read from the store. */
function ours(p: Pod | null) {
  const a = p?.metadata?.annotations ?? {};
  const cond = (p?.status?.conditions ?? []).find((c) => c.type === CONDITION_IMAGES_PULLED);
  const raw = a[ANNOTATION_STATUS];
  return {
    phase: a[ANNOTATION_PHASE] ?? null,
    progress: a[ANNOTATION_PROGRESS] ?? null,
    label: p?.metadata?.labels?.[LABEL_PROGRESS] ?? null,
    status: raw === undefined ? null : (JSON.parse(raw) as PodPullStatus),
    condition:
      cond === undefined
        ? null
        : { status: cond.status, reason: cond.reason ?? '', message: cond.message ?? '' },
  };
}

async function until<T>(
  what: string,
  fn: () => T | null | undefined | false,
  timeoutMs = 90_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== null && v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const percentOf = (name: string): number => Number(ours(get(name)).progress ?? 0);

/** The pod's final state is Pulled everywhere the agent writes it, and nothing is stale. */
function assertPulled(name: string): void {
  const o = ours(get(name));
  assert.equal(o.phase, 'Pulled', `${name}: phase annotation`);
  assert.equal(o.progress, '100', `${name}: progress annotation`);
  assert.equal(o.label, '100', `${name}: progress label`);
  assert.equal(o.status?.phase, 'Pulled', `${name}: status document`);
  assert.equal(o.status.percent, 100);
  assert.deepEqual(
    o.status.images.map((i) => i.phase),
    ['Pulled'],
  );
  assert.deepEqual(
    o.condition && [o.condition.status, o.condition.reason],
    ['True', 'Pulled'],
    `${name}: condition`,
  );
}

/** A state the agent showed on a pod: its ImagesPulled condition's reason and message. */
interface Shown {
  at: number;
  reason: string;
  message: string;
  /** What the registry had sent by then (throttle.bytesSent()). */
  bytes: number;
}

/**
 * Every distinct condition the agent wrote on a pod, in order. (The labels and annotations are
 * another request of the same write, so the condition alone is read, not mixed with them.)
 */
function recordStates(name: string): { states: Shown[]; stop(): void } {
  const states: Shown[] = [];
  const stop = sb.controlPlane.store.subscribe((c: StoreChange) => {
    if (c.resource.resource !== 'pods') return;
    const m = c.object.metadata;
    if (m?.namespace !== ns || m.name !== name) return;
    const cond = ours(c.object).condition;
    if (cond === null) return;
    const last = states.at(-1);
    if (last?.reason !== cond.reason || last.message !== cond.message)
      states.push({
        at: Date.now(),
        reason: cond.reason,
        message: cond.message,
        bytes: sb.test.throttle.bytesSent(),
      });
  });
  return { states, stop };
}

/**
 * The states in order, each with when it was written (ms after the first) and, for a state
 * other than Downloading, how long it stayed and how many bytes the registry sent meanwhile.
 */
function describeStates(states: readonly Shown[]): string {
  const t0 = states[0]?.at ?? 0;
  return states
    .map((s, i) => {
      const next = states[i + 1];
      if (s.reason === 'Downloading') return `Downloading@${s.at - t0}`;
      const held =
        next === undefined
          ? ''
          : ` [${next.at - s.at} ms, ${((next.bytes - s.bytes) / MB).toFixed(1)} MB sent meanwhile]`;
      return `${s.reason}@${s.at - t0} "${s.message.slice(0, 140)}"${held}`;
    })
    .join(' → ');
}

function stats(ms: number[]): { median: number; p90: number; max: number } {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
  return { median: at(0.5), p90: at(0.9), max: s.at(-1) ?? NaN };
}

const fmt = (ms: number) => `${ms.toFixed(1)} ms`;

/** Times `n` pod creations through the HTTP API (dryRun=All: admission runs, nothing is stored). */
async function createLatency(n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const body = JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: `latency-${i}`, namespace: ns },
      spec: { containers: [{ name: 'main', image: 'registry.test/none:1' }] },
    });
    const t0 = performance.now();
    const res = await fetch(`${sb.controlPlane.url}/api/v1/namespaces/${ns}/pods?dryRun=All`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    const pod = (await res.json()) as Pod;
    out.push(performance.now() - t0);
    assert.equal(res.status, 201, JSON.stringify(pod));
  }
  return out;
}

/** `config` to write back over the stored one (PUT needs the current resourceVersion). */
function withResourceVersion(
  config: V1MutatingWebhookConfiguration,
  rv: string | undefined,
): V1MutatingWebhookConfiguration {
  const out = structuredClone(config);
  out.metadata ??= {};
  out.metadata.resourceVersion = rv;
  return out;
}

const tracked = (name: string): string | undefined => get(name)?.metadata?.labels?.[LABEL_TRACKED];

test('webhook down: pods are created unlabelled; the webhook back: labelling resumes', async (t) => {
  const ref = await image([1]);
  const up = stats(await createLatency(20));

  await sb.stopWebhook();
  const down = stats(await createLatency(20));
  const took = await create('nowebhook', ref);
  assert.equal(tracked('nowebhook'), undefined, 'created without the label (failurePolicy Ignore)');

  await sb.startWebhook();
  await create('webhook-back', ref);
  assert.equal(tracked('webhook-back'), 'true', 'labelled again');
  t.diagnostic(
    `pod create (dryRun, HTTP) webhook up: median ${fmt(up.median)} p90 ${fmt(up.p90)}; ` +
      `webhook down (connection refused): median ${fmt(down.median)} p90 ${fmt(down.p90)}; ` +
      `kubectl create with the webhook down: ${fmt(took)}`,
  );
});

test('webhook slow (never answers, timeoutSeconds 2): pods are created after the timeout, unlabelled', async (t) => {
  const ref = await image([1]);
  const certs = join(dir, 'sb', 'certs');
  const sockets = new Set<Socket>();
  let calls = 0;
  // A TLS server with the webhook's certificate that accepts every request and never answers.
  const hole = createHttpsServer(
    { cert: readFileSync(join(certs, 'tls.crt')), key: readFileSync(join(certs, 'tls.key')) },
    () => {
      calls++;
    },
  );
  hole.on('secureConnection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => hole.listen(0, '127.0.0.1', r));
  const port = (hole.address() as AddressInfo).port;
  const api = sb.kubeconfig.makeApiClient(AdmissionregistrationV1Api);
  const original = await api.readMutatingWebhookConfiguration({ name: 'pulltrace' });
  const slow: V1MutatingWebhookConfiguration = structuredClone(original);
  const hook = slow.webhooks?.[0];
  assert.ok(hook !== undefined);
  hook.timeoutSeconds = 2;
  hook.clientConfig.url = `https://127.0.0.1:${port}/mutate`;
  await api.replaceMutatingWebhookConfiguration({ name: 'pulltrace', body: slow });
  try {
    const lat = stats(await createLatency(3));
    const took = await create('slowhook', ref);
    assert.equal(tracked('slowhook'), undefined, 'created without the label');
    assert.equal(calls, 4, 'each creation called the webhook and gave up on it');
    t.diagnostic(
      `pod create with a webhook that never answers (timeoutSeconds 2): median ${fmt(lat.median)} ` +
        `max ${fmt(lat.max)} (dryRun, HTTP); kubectl create ${fmt(took)}`,
    );
  } finally {
    const current = await api.readMutatingWebhookConfiguration({ name: 'pulltrace' });
    await api.replaceMutatingWebhookConfiguration({
      name: 'pulltrace',
      body: withResourceVersion(original, current.metadata?.resourceVersion),
    });
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => hole.close(() => r()));
  }
  await create('slowhook-back', ref);
  assert.equal(tracked('slowhook-back'), 'true', 'labelled again once the webhook answers');
});

test('node agent SIGKILLed mid-pull: restarted at once, and restarted after the pull ended', async (t) => {
  sb.test.throttle.setRate(2 * MiB);
  try {
    const [a, b] = [await image([8, 8]), await image([8, 8])];
    // A: killed at ≥ 15 %, restarted while the pull goes on.
    await create('kill-a', a);
    await until('kill-a ≥ 15 %', () => percentOf('kill-a') >= 15);
    const atKill = percentOf('kill-a');
    await sb.killAgent();
    await new Promise((r) => setTimeout(r, 1000));
    await sb.startAgent();
    const rec = recordStates('kill-a');
    await until('kill-a Pulled', () => ours(get('kill-a')).condition?.status === 'True');
    rec.stop();
    assertPulled('kill-a');
    const after = rec.states.map((s) => Number(/(\d+)%/.exec(s.message)?.[1] ?? 100));
    assert.ok(
      after.every((p) => p >= atKill),
      `percent never went below the ${atKill} % written before the kill: ${after.join(',')}`,
    );

    // B: killed at ≥ 15 %; the kubelet finishes the pull while no agent runs; then restarted.
    await create('kill-b', b);
    await until('kill-b ≥ 15 %', () => percentOf('kill-b') >= 15);
    await sb.killAgent();
    await until('the kubelet finished kill-b', () => get('kill-b')?.status?.phase === 'Running');
    const stale = ours(get('kill-b'));
    assert.notEqual(stale.phase, 'Pulled', 'the dead agent wrote nothing more');
    const restartedAt = Date.now();
    await sb.startAgent();
    await until(
      'kill-b Pulled after the restart',
      () => ours(get('kill-b')).condition?.status === 'True',
      30_000,
    );
    assertPulled('kill-b');
    t.diagnostic(
      `SIGKILL at ${atKill} % then restart: Pulled; killed while the kubelet finished: ` +
        `left showing ${stale.phase} ${stale.progress} %, final state written ${Date.now() - restartedAt} ms after the restart`,
    );
  } finally {
    sb.test.throttle.setRate(RATE);
  }
});

async function readyz(): Promise<number> {
  const url = sb.agentMetricsUrl();
  if (url === null) return 0;
  try {
    const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(1000) });
    await res.text();
    return res.status;
  } catch {
    return 0;
  }
}

function alive(pid: number | null): boolean {
  if (pid === null) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('containerd restarted mid-pull: the agent stays up, /readyz recovers, the pod ends with the true state', async (t) => {
  sb.test.throttle.setRate(2 * MiB);
  try {
    const ref = await image([10, 10]);
    const pid = sb.agentPid();
    assert.equal(await readyz(), 200, 'ready before');
    await create('ctd-restart', ref);
    const rec = recordStates('ctd-restart');
    await until('≥ 15 %', () => percentOf('ctd-restart') >= 15);
    const probes: { at: number; code: number }[] = [];
    const probing = { on: true };
    const probeLoop = (async () => {
      while (probing.on) {
        probes.push({ at: Date.now(), code: await readyz() });
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const restartAt = Date.now();
    await sb.test.containerd.restart();
    const restarted = Date.now();
    // The true state: the kubelet's retry completes the pull (its back-off is 2-10 s).
    await until('ctd-restart Pulled', () => ours(get('ctd-restart')).condition?.status === 'True', 120_000);
    await until('/readyz 200 again', () => probes.some((p) => p.at > restarted && p.code === 200), 30_000);
    probing.on = false;
    await probeLoop;
    rec.stop();
    assert.equal(sb.agentPid(), pid, 'the same agent process');
    assert.ok(alive(pid), 'the agent process is alive');
    assertPulled('ctd-restart');
    assert.equal(get('ctd-restart')?.status?.phase, 'Running', 'the kubelet agrees: the image is in');
    // Whatever it showed meanwhile was a real state with a reason, and Downloading did not stay.
    for (const s of rec.states) {
      if (s.reason === 'Failed') assert.match(s.message, /failed: \S/, 'a failure says why');
    }
    const notReady = probes.filter((p) => p.code !== 200);
    const firstOk = probes.find((p) => p.at > restarted && p.code === 200);
    t.diagnostic(
      `containerd restart took ${restarted - restartAt} ms; agent /readyz not 200 for ${notReady.length} of ` +
        `${probes.length} probes, 200 again ${firstOk === undefined ? '?' : firstOk.at - restarted} ms after; ` +
        `states: ${describeStates(rec.states)}`,
    );
  } finally {
    sb.test.throttle.setRate(RATE);
  }
});

const agentPatch = (r: FaultRequest): boolean =>
  r.method === 'PATCH' && r.query.get('fieldManager') === 'pulltrace';

/** Gaps between consecutive fault answers for one pod's path, in ms. */
function gaps(hits: readonly FaultHit[], path: string): number[] {
  const at = hits.filter((h) => h.path.startsWith(path)).map((h) => h.at);
  return at.slice(1).map((t, i) => t - (at[i] ?? t));
}

for (const fault of [
  // Retry-After is kept as given; without one the agent doubles its wait (1 s for 5xx, 200 ms
  // for a conflict). Each gap must be at least 90 % of what it should be.
  { status: 429 as const, retryAfterSeconds: 1, gapMs: (_i: number) => 1000 },
  { status: 500 as const, gapMs: (i: number) => 1000 * 2 ** i },
  { status: 409 as const, gapMs: (i: number) => 200 * 2 ** i },
]) {
  test(`the API answers ${fault.status} for 5 s mid-pull: the agent backs off within budget; the final state lands`, async (t) => {
    const name = `api-${fault.status}`;
    // ~12 MB at 4 MiB/s: the pull ends inside the 5 s window, so its final state must wait.
    const ref = await image([6, 6]);
    await create(name, ref);
    await until(`${name} first write`, () => ours(get(name)).phase !== null && percentOf(name) < 50);
    const windowMs = 5000;
    sb.controlPlane.faults.set({
      status: fault.status,
      ...(fault.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: fault.retryAfterSeconds }),
      match: agentPatch,
      forMs: windowMs,
    });
    const start = Date.now();
    const seen: { kubeletDoneAt: number | null } = { kubeletDoneAt: null };
    let writes = 0;
    const off = sb.controlPlane.store.subscribe((c) => {
      if (c.resource.resource !== 'pods' || c.object.metadata?.name !== name) return;
      if (seen.kubeletDoneAt === null && (c.object as Pod).status?.phase === 'Running')
        seen.kubeletDoneAt = Date.now();
      if (c.oldObject !== undefined && JSON.stringify(ours(c.object)) !== JSON.stringify(ours(c.oldObject)))
        writes++;
    });
    await until(`${name} Pulled`, () => ours(get(name)).condition?.status === 'True', 60_000);
    off();
    sb.controlPlane.faults.clear();
    const landed = Date.now();
    assertPulled(name);
    assert.ok(writes <= MAX_WRITES_PER_PULL, `${writes} writes landed after the fault began`);
    const hits = sb.controlPlane.faults.answered();
    assert.ok(hits.length >= 1, 'the agent met the fault');
    // Every request the agent made in the window reached the hook and was answered by it.
    const budget = API_BURST + API_QPS * (windowMs / 1000);
    assert.ok(hits.length <= budget, `${hits.length} requests in ${windowMs} ms, budget ${budget}`);
    const podGaps = gaps(hits, `/api/v1/namespaces/${ns}/pods/${name}`);
    assert.ok(
      podGaps.every((g, i) => g >= 0.9 * fault.gapMs(i)),
      `retries spaced by ${podGaps.map((_, i) => fault.gapMs(i)).join(',')} ms at least: ${podGaps.join(',')}`,
    );
    t.diagnostic(
      `${fault.status}${fault.retryAfterSeconds === undefined ? '' : ` (Retry-After ${fault.retryAfterSeconds})`}: ` +
        `${hits.length} agent requests answered by the fault in ${windowMs} ms (budget ${budget}); gaps ${podGaps.join(',')} ms; ` +
        `kubelet had the image ${seen.kubeletDoneAt === null ? '?' : `${seen.kubeletDoneAt - start} ms`} into the window; ` +
        `final state written ${landed - start} ms after the fault began`,
    );
  });
}

test('registry cutting connections mid-layer, then sending nothing: Stalled, then Pulled', async (t) => {
  sb.test.throttle.setRate(2 * MiB);
  try {
    const ref = await image([10, 10]);
    await create('drop-stall', ref);
    const rec = recordStates('drop-stall');
    await until('drop-stall ≥ 20 %', () => percentOf('drop-stall') >= 20);
    // One cut alone: containerd resumes the layer by itself, so Downloading is the truth.
    sb.test.throttle.dropConnections();
    await new Promise((r) => setTimeout(r, 2000));
    const afterOne = describeStates(rec.states);
    // Cut again, and the registry sends no more bytes on the new connections.
    sb.test.throttle.setRate(0);
    sb.test.throttle.dropConnections();
    const cutAt = Date.now();
    const isStalled = (s: Shown) => s.reason === 'Stalled';
    await until('Stalled shown', () => rec.states.some(isStalled), 30_000);
    const shownAfter = (rec.states.find(isStalled)?.at ?? NaN) - cutAt;
    sb.test.throttle.setRate(2 * MiB);
    await until('drop-stall Pulled', () => ours(get('drop-stall')).condition?.status === 'True', 120_000);
    rec.stop();
    assertPulled('drop-stall');
    const stalled = rec.states.find(isStalled);
    assert.match(stalled?.message ?? '', /\d+% \([\d.]+\/20\.0 MB\) stalled: no bytes arriving/);
    assert.ok((rec.states.at(-1)?.at ?? 0) > (stalled?.at ?? Infinity), 'Pulled came after it');
    const d = await k.run(['describe', 'pod', 'drop-stall', '-n', ns]);
    assert.match(d.stdout, /Warning\s+PullStalled\s+\S+\s+pulltrace-node-agent\s+no bytes for 4s/);
    t.diagnostic(`after one cut: ${afterOne}`);
    t.diagnostic(`cut + no bytes: Stalled shown ${shownAfter} ms after; ${describeStates(rec.states)}`);
  } finally {
    sb.test.throttle.setRate(RATE);
  }
});

test('registry cutting connections mid-layer, then refusing (503): Failed with the reason, then Pulled after the retry', async (t) => {
  sb.test.throttle.setRate(2 * MiB);
  try {
    const ref = await image([10, 10]);
    await create('drop-fail', ref);
    const rec = recordStates('drop-fail');
    await until('drop-fail ≥ 20 %', () => percentOf('drop-fail') >= 20);
    sb.test.throttle.setDown(true);
    sb.test.throttle.dropConnections();
    const cutAt = Date.now();
    const isFailed = (s: Shown) => s.reason === 'Failed';
    try {
      await until('Failed shown', () => rec.states.some(isFailed), 60_000);
    } finally {
      sb.test.throttle.setDown(false);
    }
    const shownAfter = (rec.states.find(isFailed)?.at ?? NaN) - cutAt;
    await until('drop-fail Pulled', () => ours(get('drop-fail')).condition?.status === 'True', 120_000);
    rec.stop();
    assertPulled('drop-fail');
    const failed = rec.states.find(isFailed);
    assert.match(failed?.message ?? '', / failed: ErrImagePull: \S/);
    assert.ok((rec.states.at(-1)?.at ?? 0) > (failed?.at ?? Infinity), 'Pulled came after it');
    const d = await k.run(['describe', 'pod', 'drop-fail', '-n', ns]);
    assert.match(d.stdout, /Warning\s+PullFailed\s+\S+\s+pulltrace-node-agent\s+.*ErrImagePull/);
    t.diagnostic(`cut + 503: Failed shown ${shownAfter} ms after; ${describeStates(rec.states)}`);
  } finally {
    sb.test.throttle.setDown(false);
    sb.test.throttle.setRate(RATE);
  }
});
