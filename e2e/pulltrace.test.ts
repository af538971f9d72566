// pulltrace end to end, through the real kubectl: a pod is created → mutated by the webhook →
// its image pulled (real containerd, throttled real registry) → progress visible with -L,
// jsonpath and describe → `kubectl wait --for=condition=pulltrace.io/ImagesPulled` returns.
//
// By default it runs on the local sandbox (e2e/sandbox: a real one-node cluster on loopback, the
// chart's objects applied, the webhook and agent as processes). With PULLTRACE_E2E_KUBECONFIG it runs
// against a real cluster where pulltrace is installed (docs/e2e-real-cluster.md): images are
// pushed to PULLTRACE_E2E_REGISTRY (plain HTTP, from here) and pulled by the cluster as
// PULLTRACE_E2E_PULL_REGISTRY; the cases that need the local containerd or the throttle
// (agent restart, write counting) are skipped there, and only there.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ANNOTATION_PHASE, ANNOTATION_STATUS, type PodPullStatus } from '../common/contract.js';
import { kubectlFor, type Kubectl } from './cluster/kubectl.js';
import { buildImage, type BuiltImage } from './env/image-builder.js';
import type { Change } from './sandbox/changes.js';
import { startSandbox, type Sandbox } from './sandbox/sandbox.js';

const REAL = process.env.PULLTRACE_E2E_KUBECONFIG;
const MB = 1_000_000;
const localOnly = {
  skip: REAL === undefined ? false : 'needs the local sandbox (containerd, agent process)',
};

let sandbox: Sandbox | null = null;
let k: Kubectl;
let pushRegistry: string;
let pullRegistry: string;
let ns: string;
let dir: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pt-e2e-'));
  if (REAL === undefined) {
    sandbox = await startSandbox({ dir: join(dir, 'sb'), rate: 4 * 1024 * 1024 });
    k = kubectlFor(sandbox.env.KUBECONFIG);
    pushRegistry = sandbox.env.REGISTRY;
    pullRegistry = sandbox.env.PULL_REGISTRY;
  } else {
    const push = process.env.PULLTRACE_E2E_REGISTRY;
    if (push === undefined) throw new Error('PULLTRACE_E2E_KUBECONFIG needs PULLTRACE_E2E_REGISTRY too');
    k = kubectlFor(REAL);
    pushRegistry = push;
    pullRegistry = process.env.PULLTRACE_E2E_PULL_REGISTRY ?? push;
  }
  ns = `pt-e2e-${randomBytes(3).toString('hex')}`;
  if (sandbox !== null) await sandbox.createNamespace(ns);
  else {
    const r = await k.run(['create', 'namespace', ns]);
    assert.equal(r.code, 0, r.stderr);
  }
});

after(async () => {
  // before() may have failed half-way.
  await (k as Kubectl | undefined)?.run(['delete', 'namespace', ns, '--wait=false']).catch(() => undefined);
  (k as Kubectl | undefined)?.cleanup();
  await sandbox?.stop();
  rmSync(dir, { recursive: true, force: true });
});

let n = 0;
/**
 * Builds and pushes an image of fresh random layers. Its command stays up (`/sleep`), so the
 * kubelet runs the pod and it can become Ready; `cmd: '/true'` for an init container.
 */
async function image(
  layersMb: number[],
  opts: { base?: BuiltImage; cmd?: '/sleep' | '/true' } = {},
): Promise<{ built: BuiltImage; ref: string }> {
  n++;
  const name = `e2e/img${n}-${randomBytes(2).toString('hex')}:v1`;
  const built = await buildImage({
    registry: pushRegistry,
    name,
    layers: layersMb.map((m) => m * MB),
    cmd: [opts.cmd ?? '/sleep'],
    ...(opts.base === undefined ? {} : { baseLayers: opts.base.layers }),
  });
  return { built, ref: `${pullRegistry}/${name}` };
}

/**
 * Waits into the next second. A pod's creationTimestamp has one-second resolution on the API
 * server, so an image whose record was made in the same second as the pod looks pulled after
 * the pod began to wait (the agent cannot tell): a test of "already on the node" creates its
 * pod in a later second than the pull it relies on.
 */
async function nextSecond(): Promise<void> {
  await new Promise((r) => setTimeout(r, 1050 - (Date.now() % 1000)));
}

function podYaml(name: string, images: { main: string; init?: string }, gate = false): string {
  return `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  namespace: ${ns}
  labels: {app: e2e}
${gate ? '  annotations: {pulltrace.io/readiness-gate: "true"}\n' : ''}spec:
${images.init === undefined ? '' : `  initContainers:\n  - name: init\n    image: ${images.init}\n`}  containers:
  - name: main
    image: ${images.main}
`;
}

async function create(name: string, images: { main: string; init?: string }, gate = false): Promise<void> {
  const r = await k.run(['create', '-f', '-'], { input: podYaml(name, images, gate) });
  assert.equal(r.code, 0, r.stderr);
}

async function jsonpath(pod: string, path: string): Promise<string> {
  const r = await k.run(['get', 'pod', pod, '-n', ns, '-o', `jsonpath=${path}`]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

async function status(pod: string): Promise<PodPullStatus | null> {
  const raw = await jsonpath(pod, `{.metadata.annotations.pulltrace\\.io/status}`);
  return raw === '' ? null : (JSON.parse(raw) as PodPullStatus);
}

/** Samples `kubectl get pod -L progress,eta` until stopped. */
function sampleLabels(pod: string): { values: string[][]; stop(): Promise<void> } {
  const values: string[][] = [];
  const state = { on: true };
  const loop = (async () => {
    while (state.on) {
      const r = await k.run([
        'get',
        'pod',
        pod,
        '-n',
        ns,
        '--no-headers',
        '-L',
        'pulltrace.io/progress,pulltrace.io/eta',
      ]);
      const cols = r.stdout.trim().split(/\s+/);
      if (r.code === 0 && cols.length >= 2) values.push(cols.slice(-2));
      await new Promise((res) => setTimeout(res, 250));
    }
  })();
  return {
    values,
    stop: async () => {
      state.on = false;
      await loop;
    },
  };
}

async function waitPulled(pod: string, timeout = '120s'): Promise<void> {
  const r = await k.run(
    ['wait', '-n', ns, '--for=condition=pulltrace.io/ImagesPulled', `pod/${pod}`, `--timeout=${timeout}`],
    {
      timeoutMs: 180_000,
    },
  );
  assert.equal(r.code, 0, `kubectl wait: ${r.stdout}${r.stderr}`);
}

test('a throttled multi-layer image: mutated, progress in -L / jsonpath / describe, kubectl wait returns', async () => {
  const img = await image([8, 8, 4]);
  await create('web', { main: img.ref }, true);
  assert.equal(await jsonpath('web', '{.metadata.labels.pulltrace\\.io/tracked}'), 'true');
  assert.equal(await jsonpath('web', '{.spec.readinessGates[0].conditionType}'), 'pulltrace.io/ImagesPulled');
  const labels = sampleLabels('web');
  await waitPulled('web');
  await labels.stop();

  const progress = labels.values.map((v) => Number(v[0])).filter((x) => Number.isFinite(x));
  assert.ok(
    progress.some((p) => p > 0 && p < 100),
    `saw progress ${progress.join(',')}`,
  );
  for (let i = 1; i < progress.length; i++) {
    assert.ok(progress[i]! >= progress[i - 1]!, `progress went back: ${progress.join(',')}`);
  }
  assert.ok(
    labels.values.some((v) => /^\d+s$|^\d+m\d+s$/.test(v[1] ?? '')),
    'an ETA label was shown',
  );
  const s = await status('web');
  assert.ok(s !== null);
  assert.equal(s.phase, 'Pulled');
  assert.equal(s.percent, 100);
  assert.equal(s.images[0]?.bytesTotal, img.built.totalSize);
  assert.equal(await jsonpath('web', `{.metadata.annotations.pulltrace\\.io/progress}`), '100');
  assert.equal(await jsonpath('web', `{.metadata.labels.pulltrace\\.io/progress}`), '100');

  const d = await k.run(['describe', 'pod', 'web', '-n', ns]);
  assert.equal(d.code, 0, d.stderr);
  assert.match(d.stdout, /pulltrace\.io\/ImagesPulled\s+True/);
  assert.match(d.stdout, /ImagesPulled\s+\S+\s+pulltrace-node-agent\s+.*fetched/);
  const ready = await k.run(['wait', '-n', ns, '--for=condition=Ready', 'pod/web', '--timeout=30s']);
  assert.equal(ready.code, 0, `the readiness gate lets the pod become Ready: ${ready.stderr}`);
});

test('two pods waiting for the same image both show progress and both complete', async () => {
  const img = await image([10, 10]);
  await create('twin-a', { main: img.ref });
  await create('twin-b', { main: img.ref });
  const a = sampleLabels('twin-a');
  const b = sampleLabels('twin-b');
  await waitPulled('twin-a');
  await waitPulled('twin-b');
  await a.stop();
  await b.stop();
  for (const [name, s] of [
    ['twin-a', a],
    ['twin-b', b],
  ] as const) {
    const seen = s.values.map((v) => Number(v[0])).filter((x) => x > 0 && x < 100);
    assert.ok(seen.length > 0, `${name} showed progress between 0 and 100`);
    assert.equal((await status(name))?.phase, 'Pulled');
  }
});

test('an init container image is pulled first; the main image waits Queued', async () => {
  const init = await image([6, 6], { cmd: '/true' });
  const main = await image([4]);
  await create('initpod', { init: init.ref, main: main.ref });
  const phases = new Set<string>();
  const deadline = Date.now() + 120_000;
  for (;;) {
    const s = await status('initpod');
    for (const i of s?.images ?? []) phases.add(`${i.image === main.ref ? 'main' : 'init'}:${i.phase}`);
    if (s?.phase === 'Pulled' || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.ok(phases.has('init:Downloading'), [...phases].join(' '));
  assert.ok(phases.has('main:Queued'), `main image waits its turn: ${[...phases].join(' ')}`);
  await waitPulled('initpod');
  const s = await status('initpod');
  assert.deepEqual(
    s?.images.map((i) => i.phase),
    ['Pulled', 'Pulled'],
  );
});

test('an image already on the node: Cached, condition True at once', async () => {
  const img = await image([2]);
  await create('warm', { main: img.ref });
  await waitPulled('warm');
  await nextSecond();
  await create('cached', { main: img.ref });
  await waitPulled('cached', '20s');
  assert.equal(await jsonpath('cached', `{.metadata.annotations.pulltrace\\.io/phase}`), 'Cached');
  const s = await status('cached');
  assert.equal(s?.images[0]?.bytesCached, img.built.totalSize);
});

test('a missing tag ends Failed with the reason, and a PullFailed event', async () => {
  const img = await image([1]);
  await create('broken', { main: img.ref.replace(/:v1$/, ':does-not-exist') });
  const deadline = Date.now() + 60_000;
  let phase = '';
  while (Date.now() < deadline) {
    phase = await jsonpath('broken', `{.metadata.annotations.pulltrace\\.io/phase}`);
    if (phase === 'Failed') break;
    await new Promise((r) => setTimeout(r, 300));
  }
  assert.equal(phase, 'Failed');
  const reason = await jsonpath(
    'broken',
    `{.status.conditions[?(@.type=="pulltrace.io/ImagesPulled")].reason}`,
  );
  assert.equal(reason, 'Failed');
  const d = await k.run(['describe', 'pod', 'broken', '-n', ns]);
  assert.match(d.stdout, /Warning\s+PullFailed\s+\S+\s+pulltrace-node-agent\s+.*ErrImagePull: .*not found/);
});

test('the agent restarted mid-pull finishes the pod; percent never goes back', localOnly, async () => {
  const sb = sandbox!;
  sb.test.throttle.setRate(2 * 1024 * 1024);
  try {
    const img = await image([8, 8]);
    await create('restart', { main: img.ref });
    const labels = sampleLabels('restart');
    const deadline = Date.now() + 60_000;
    while (Number((await jsonpath('restart', `{.metadata.labels.pulltrace\\.io/progress}`)) || 0) < 15) {
      assert.ok(Date.now() < deadline, 'progress reached 15 %');
      await new Promise((r) => setTimeout(r, 200));
    }
    await sb.stopAgent();
    // Not a readiness wait: the agent stays down while the pull moves on without it.
    await new Promise((r) => setTimeout(r, 1500));
    await sb.startAgent();
    await waitPulled('restart');
    await labels.stop();
    const progress = labels.values.map((v) => Number(v[0])).filter((x) => Number.isFinite(x));
    for (let i = 1; i < progress.length; i++) {
      assert.ok(progress[i]! >= progress[i - 1]!, `progress went back: ${progress.join(',')}`);
    }
    assert.equal(
      await jsonpath('restart', `{.metadata.annotations.${ANNOTATION_PHASE.replace(/\./g, '\\.')}}`),
      'Pulled',
    );
  } finally {
    sb.test.throttle.setRate(4 * 1024 * 1024);
  }
});

test(
  'updates per pod for a whole pull stay within --max-writes-per-pull (25), requests within twice that',
  localOnly,
  async (t) => {
    const sb = sandbox!;
    const writes = new Map<string, number>();
    const updates = new Map<string, number>();
    const ours = (o: Change['object']) => {
      const a = (o.metadata as { annotations?: Record<string, string> } | undefined)?.annotations ?? {};
      return a[ANNOTATION_STATUS] ?? '';
    };
    const cond = (o: Change['object']) =>
      JSON.stringify(
        ((o as { status?: { conditions?: { type: string }[] } }).status?.conditions ?? []).find(
          (c) => c.type === 'pulltrace.io/ImagesPulled',
        ) ?? null,
      );
    // Every write that changes a pod is one MODIFIED event of a watch on the API server.
    const off = sb.changes.subscribe((c) => {
      if (c.type !== 'MODIFIED' || c.resource.resource !== 'pods' || c.oldObject === undefined) return;
      const name = (c.object.metadata as { name?: string } | undefined)?.name ?? '';
      if (!name.startsWith('budget-')) return;
      // An update is one patch of pods/status: the status annotation and the condition together.
      if (ours(c.object) !== ours(c.oldObject)) updates.set(name, (updates.get(name) ?? 0) + 1);
      if (ours(c.object) !== ours(c.oldObject) || cond(c.object) !== cond(c.oldObject)) {
        writes.set(name, (writes.get(name) ?? 0) + 1);
      }
    });
    sb.test.throttle.setRate(2 * 1024 * 1024);
    try {
      const img = await image([10, 10, 10]);
      await create('budget-a', { main: img.ref });
      await create('budget-b', { main: img.ref });
      await waitPulled('budget-a');
      await waitPulled('budget-b');
    } finally {
      off();
      sb.test.throttle.setRate(4 * 1024 * 1024);
    }
    for (const name of ['budget-a', 'budget-b']) {
      const w = writes.get(name) ?? 0;
      const u = updates.get(name) ?? 0;
      t.diagnostic(
        `${name}: ${u} updates, ${w} writes stored by the API server for one pull of 30 MB at 2 MiB/s ` +
          `(${(w / Math.max(1, u)).toFixed(2)} writes per update)`,
      );
      assert.ok(u >= 3, `${name}: ${u} updates (progress was shown)`);
      assert.ok(u <= 25, `${name}: ${u} updates for one pull`);
      // One request per update, so the requests for one pull stay within --max-writes-per-pull.
      assert.ok(w <= 25, `${name}: ${w} API writes for one pull`);
    }
  },
);
