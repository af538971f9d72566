// The kubectl plugin end to end: `kubectl pulltrace ...` run by the real kubectl, which finds
// `kubectl-pulltrace` on PATH (a shell wrapper around cli/kubectl-pulltrace.ts, as the npm `bin`
// entry is in an install), against the sandbox: Deployments rolled out by the real
// kube-controller-manager, scheduled by kube-scheduler, pulled and run by a real kubelet on
// containerd from the throttled registry, and progress written by the real node agent. Checks exit codes (0 images in, 1 pull failed,
// 2 usage/API error, 3 timed out), the plain lines when stdout is not a terminal, the live
// table on a terminal, and the one-shot `pods` table.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { KUBECTL, kubectlFor, type Kubectl, type KubectlResult } from './cluster/kubectl.js';
import { buildImage } from './env/image-builder.js';
import { startSandbox, type Sandbox } from './sandbox/sandbox.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MB = 1_000_000;
const MiB = 1024 * 1024;
const RATE = 2 * MiB;

let sb: Sandbox;
let k: Kubectl;
let dir: string;
let binDir: string;
let ns: string;
/** Pull references of the images, all pushed before the first pull. */
const img = { web: '', next: '', tty: '', slow: '', missing: '' };
const sizes = { web: 0 };

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pt-plugin-'));
  sb = await startSandbox({ dir: join(dir, 'sb'), rate: RATE });
  k = kubectlFor(sb.env.KUBECONFIG);
  // Images are built before any pull: building is CPU work that would stall the throttle,
  // which runs in this process.
  const tag = randomBytes(2).toString('hex');
  const push = async (name: string, layers: number[]) => {
    const built = await buildImage({
      registry: sb.env.REGISTRY,
      name: `plugin/${name}-${tag}:v1`,
      layers: layers.map((m) => m * MB),
      // Deployment pods run until stopped: a rollout needs them available (Ready).
      cmd: ['/sleep'],
    });
    return { ref: `${sb.env.PULL_REGISTRY}/plugin/${name}-${tag}:v1`, size: built.totalSize };
  };
  const web = await push('web', [6, 6]);
  img.web = web.ref;
  sizes.web = web.size;
  img.next = (await push('next', [10])).ref;
  img.tty = (await push('tty', [8])).ref;
  img.slow = (await push('slow', [16])).ref;
  img.missing = web.ref.replace(/:v1$/, ':does-not-exist');

  // The plugin as kubectl finds it: an executable named kubectl-pulltrace on PATH. tsx is
  // imported by URL so the wrapper works from any working directory.
  binDir = join(dir, 'bin');
  mkdirSync(binDir);
  const wrapper = join(binDir, 'kubectl-pulltrace');
  writeFileSync(
    wrapper,
    `#!/bin/sh\nexec '${process.execPath}' --import '${import.meta.resolve('tsx')}' '${join(ROOT, 'cli/kubectl-pulltrace.ts')}' "$@"\n`,
  );
  chmodSync(wrapper, 0o755);

  ns = `pt-plugin-${randomBytes(3).toString('hex')}`;
  await sb.createNamespace(ns);
});

after(async () => {
  // before() may have failed half-way.
  (k as Kubectl | undefined)?.cleanup();
  await (sb as Sandbox | undefined)?.stop();
  // PULLTRACE_E2E_KEEP=1 keeps the sandbox's logs (node-agent.log, webhook.log, cluster/logs).
  if (process.env.PULLTRACE_E2E_KEEP === undefined) rmSync(dir, { recursive: true, force: true });
  else process.stderr.write(`kept ${dir}\n`);
});

/** Runs `kubectl pulltrace ARGS` (asynchronously: the throttle runs in this process). */
function plugin(args: string[], opts: { tty?: boolean; timeoutMs?: number } = {}): Promise<KubectlResult> {
  const env = { ...process.env, KUBECONFIG: sb.env.KUBECONFIG, PATH: `${binDir}:${process.env.PATH ?? ''}` };
  const quoted = [KUBECTL, 'pulltrace', ...args].map((a) => `'${a}'`).join(' ');
  // On a terminal: script(1) gives the command a pseudo-terminal (wide enough for the table's
  // lines not to be cut) and returns its exit code.
  const child = opts.tty
    ? spawn('script', ['-qefc', `stty cols 250 rows 50; exec ${quoted}`, '/dev/null'], {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      })
    : spawn(KUBECTL, ['pulltrace', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 180_000);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

async function kubectlOk(args: string[], input?: string): Promise<string> {
  const r = await k.run(args, input === undefined ? {} : { input });
  assert.equal(r.code, 0, `kubectl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function deployment(name: string, image: string, replicas: number): Promise<void> {
  await kubectlOk(
    ['apply', '-f', '-'],
    `apiVersion: apps/v1
kind: Deployment
metadata: {name: ${name}, namespace: ${ns}}
spec:
  replicas: ${replicas}
  selector: {matchLabels: {app: ${name}}}
  template:
    metadata: {labels: {app: ${name}}}
    spec:
      containers:
      - {name: main, image: "${image}"}
`,
  );
}

/**
 * Each pod of app=APP as kubectl sees it: "pod image condition phase", where condition is the
 * ImagesPulled status the agent wrote and phase the kubelet's (Running once the images are in).
 */
async function podStates(app: string): Promise<string[]> {
  const out = await kubectlOk([
    'get',
    'pods',
    '-n',
    ns,
    '-l',
    `app=${app}`,
    '-o',
    'jsonpath={range .items[*]}{.metadata.name} {.spec.containers[0].image} {.status.conditions[?(@.type=="pulltrace.io/ImagesPulled")].status} {.status.phase}{"\\n"}{end}',
  ]);
  return out.trim().split('\n').filter(Boolean);
}

/** The plugin's exit 0 is honest: the kubelet runs every pod, and the agent's condition turns True. */
async function assertImagesIn(app: string, image: string, replicas: number): Promise<void> {
  const states = (await podStates(app)).filter((p) => p.split(' ')[1] === image);
  assert.equal(states.length, replicas, states.join('\n'));
  for (const st of states) assert.match(st, / (True \S+|\S* Running)$/);
  // The pods named, not the label: the real Deployment controller may still be deleting the old
  // ReplicaSet's pods, and a pod gone mid-wait makes `kubectl wait -l` fail with NotFound.
  const names = states.map((st) => `pod/${st.split(' ')[0] ?? ''}`);
  const w = await k.run(
    ['wait', '-n', ns, '--for=condition=pulltrace.io/ImagesPulled', ...names, '--timeout=30s'],
    { timeoutMs: 60_000 },
  );
  assert.equal(w.code, 0, w.stderr);
}

/** Plain output lines of one pod: `NS/POD IMAGE PHASE PCT% BYTES RATE eta=ETA`. */
function podLines(stdout: string, image: string): { pod: string; phase: string; percent: number }[] {
  const out: { pod: string; phase: string; percent: number }[] = [];
  for (const l of stdout.split('\n')) {
    const m = /^(\S+) (\S+) (\S+) (\d+)% /.exec(l);
    if (m?.[2] === image) out.push({ pod: m[1] ?? '', phase: m[3] ?? '', percent: Number(m[4]) });
  }
  return out;
}

test('rollout of a throttled image: plain progress lines, exit 0 once every pod has its images', async () => {
  await deployment('web', img.web, 2);
  const r = await plugin(['rollout', 'deployment/web', '-n', ns, '--timeout', '2m']);
  assert.equal(r.code, 0, `exit ${r.code}\n${r.stdout}${r.stderr}`);
  assert.ok(!r.stdout.includes('\x1b'), 'no terminal escapes when stdout is not a terminal');
  const lines = podLines(r.stdout, img.web);
  const pods = new Set(lines.map((l) => l.pod));
  assert.equal(pods.size, 2, r.stdout);
  for (const pod of pods) {
    assert.match(pod, new RegExp(`^${ns}/web-`));
    const mine = lines.filter((l) => l.pod === pod);
    assert.ok(
      mine.some((l) => l.phase === 'Downloading' && l.percent > 0 && l.percent < 100),
      `${pod} showed progress on the way:\n${r.stdout}`,
    );
    for (let i = 1; i < mine.length; i++) {
      assert.ok(mine[i]!.percent >= mine[i - 1]!.percent, `${pod}: percent went back:\n${r.stdout}`);
    }
    assert.deepEqual(
      { phase: mine.at(-1)?.phase, percent: mine.at(-1)?.percent },
      { phase: 'Pulled', percent: 100 },
    );
  }
  assert.match(r.stdout, /(^|\n)deployment\/web: all images pulled\n$/);
  await assertImagesIn('web', img.web, 2);
});

test('a missing tag: exit 1, with the pod and the reason', async () => {
  await deployment('broken', img.missing, 1);
  const r = await plugin(['rollout', 'deployment/broken', '-n', ns, '--timeout', '2m']);
  try {
    assert.equal(r.code, 1, `exit ${r.code}\n${r.stdout}${r.stderr}`);
    assert.match(
      r.stderr,
      new RegExp(`^error: image pull failed: ${ns}/broken-\\S+: \\S+:does-not-exist: .*not found`, 'm'),
    );
    assert.match(r.stdout, / Failed /);
  } finally {
    // Stop the kubelet's retries (the garbage collector removes the ReplicaSet and its pods).
    await kubectlOk(['delete', 'deployment', 'broken', '-n', ns, '--cascade=foreground']);
  }
});

test('--timeout 3s on a slow pull: exit 3, while the pod is still pulling', async () => {
  sb.test.throttle.setRate(256 * 1024);
  try {
    await deployment('slow', img.slow, 1);
    const r = await plugin(['rollout', 'deployment/slow', '-n', ns, '--timeout', '3s']);
    assert.equal(r.code, 3, `exit ${r.code}\n${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /^error: timed out after 3s waiting for the images of deployment\/slow$/m);
    assert.ok(!r.stdout.includes('all images pulled'), r.stdout);
  } finally {
    sb.test.throttle.setRate(RATE);
  }
  // Let it finish, so later pulls do not queue behind it.
  const r = await plugin(['rollout', 'deployment/slow', '-n', ns, '--timeout', '2m']);
  assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
});

test('after kubectl set image, rollout follows only the new ReplicaSet', async () => {
  await kubectlOk(['set', 'image', '-n', ns, 'deployment/web', `main=${img.next}`]);
  const r = await plugin(['rollout', 'deployment/web', '-n', ns, '--timeout', '2m']);
  assert.equal(r.code, 0, `exit ${r.code}\n${r.stdout}${r.stderr}`);
  assert.equal(podLines(r.stdout, img.web).length, 0, `no line about the old pods:\n${r.stdout}`);
  const lines = podLines(r.stdout, img.next);
  assert.equal(new Set(lines.map((l) => l.pod)).size, 2, r.stdout);
  assert.ok(
    lines.some((l) => l.percent > 0 && l.percent < 100),
    `the new pull was followed from the start:\n${r.stdout}`,
  );
  await assertImagesIn('web', img.next, 2);
});

test('on a terminal: one table with progress bars, redrawn in place', async () => {
  await deployment('tty', img.tty, 1);
  const r = await plugin(['rollout', 'deployment/tty', '-n', ns, '--timeout', '2m', '--interval', '500ms'], {
    tty: true,
  });
  assert.equal(r.code, 0, `exit ${r.code}\n${r.stdout}${r.stderr}`);
  const out = r.stdout.replace(/\r/g, '');
  assert.match(out, /POD\s+IMAGE\s+PHASE\s+PROGRESS\s+BYTES\s+RATE\s+ETA/);
  // Three lines drawn (header, table header, one pod), then moved up over and cleared.
  const esc = String.fromCharCode(27);
  assert.ok(out.includes(`${esc}[3A${esc}[J`), 'the table is redrawn over itself');
  assert.match(out, /Downloading\s+\[#*\.+\] ([1-9]|[1-9]\d)%/, 'a partial progress bar was shown');
  assert.match(out, /Pulled\s+\[#{20}\] 100%/);
});

test('pods: one table of the namespace, or of a selector', async () => {
  const r = await plugin(['pods', '-n', ns]);
  assert.equal(r.code, 0, r.stderr);
  const rowsOut = r.stdout.trimEnd().split('\n');
  assert.deepEqual(rowsOut[0]?.trim().split(/\s+/), [
    'POD',
    'IMAGE',
    'PHASE',
    'PROGRESS',
    'BYTES',
    'RATE',
    'ETA',
  ]);
  const names = (await kubectlOk(['get', 'pods', '-n', ns, '-o', 'name']))
    .trim()
    .split('\n')
    .map((n) => `${ns}/${n.replace(/^pod\//, '')}`)
    .sort();
  const shown = rowsOut.slice(1).map((l) => l.split(/\s+/));
  assert.deepEqual(shown.map((c) => c[0]).sort(), names);
  const webSize = `${(sizes.web / MB).toFixed(1)}/${(sizes.web / MB).toFixed(1)} MB`;
  for (const c of shown) {
    assert.match(c[2] ?? '', /^(Pulled|Cached)$/, c.join(' '));
    assert.equal(c[3], '100%', c.join(' '));
  }
  // -l picks the pods as kubectl would; the old web pods are gone, the new ones are listed.
  const sel = await plugin(['pods', '-n', ns, '-l', 'app=tty']);
  assert.equal(sel.code, 0, sel.stderr);
  const selRows = sel.stdout.trimEnd().split('\n').slice(1);
  assert.equal(selRows.length, 1, sel.stdout);
  assert.match(
    selRows[0] ?? '',
    new RegExp(`^${ns}/tty-\\S+\\s+${img.tty.replace(/[.]/g, '\\.')}\\s+Pulled\\s+100%`),
  );
  assert.ok(!r.stdout.includes(webSize), 'the old image is not listed');
  const none = await plugin(['pods', '-n', ns, '-l', 'app=nothing']);
  assert.equal(none.code, 0);
  assert.equal(none.stdout, '');
  assert.match(none.stderr, /No pods found/);
});

test('usage and API errors: exit 2 with a one-line reason', async () => {
  const bad = await plugin(['rollout', 'pod/x', '-n', ns]);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /expected deployment\/NAME, statefulset\/NAME or daemonset\/NAME/);
  const dur = await plugin(['rollout', 'deployment/web', '-n', ns, '--timeout', 'soon']);
  assert.equal(dur.code, 2, dur.stderr);
  const missing = await plugin(['rollout', 'deployment/nothere', '-n', ns]);
  assert.equal(missing.code, 2, missing.stderr);
  assert.equal(missing.stderr, 'error: API answered 404: deployments.apps "nothere" not found\n');
});
