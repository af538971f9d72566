// `npm run demo`: pulltrace's main job on a fresh machine. Starts the sandbox (a one-node
// Kubernetes cluster on loopback: etcd, kube-apiserver, controller-manager, scheduler and a
// kubelet on containerd, with a registry behind a throttle; pulltrace's webhook and node agent
// under the chart's configuration and RBAC), pushes a large image, creates a Deployment of
// it, and shows the rollout through the real kubectl: live progress with
// `kubectl get pods -o wide -L pulltrace.io/progress,pulltrace.io/eta -w`, then
// `kubectl wait --for=condition=pulltrace.io/ImagesPulled` returning when the images are in.
// Then it keeps running for you to poke at with kubectl until Ctrl-C (or exits with --exit).
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildImage } from './env/image-builder.js';
import { startSandbox } from './sandbox/sandbox.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const exitAtEnd = process.argv.includes('--exit');
const MB = 1_000_000;

function kubectl(
  kubeconfig: string,
  cacheDir: string,
  args: string[],
  stdio: 'inherit' | 'pipe' = 'inherit',
) {
  return spawn('kubectl', ['--kubeconfig', kubeconfig, '--cache-dir', cacheDir, ...args], {
    stdio: ['ignore', stdio, stdio],
  });
}

function finished(child: ReturnType<typeof spawn>): Promise<number> {
  return new Promise((resolve) => child.once('exit', (code) => resolve(code ?? 1)));
}

const say = (s: string) => process.stdout.write(`\n### ${s}\n`);

say('installing what the sandbox needs, if missing (e2e/env/install.sh)');
execFileSync('bash', [join(ROOT, 'e2e/env/install.sh')], { stdio: 'inherit' });

const dir = mkdtempSync(join(tmpdir(), 'pulltrace-demo-'));
const cache = join(dir, 'kube-cache');
say(
  'starting the sandbox: containerd, registry + throttle (8 MB/s), etcd, kube-apiserver, ' +
    'controller-manager, scheduler, kubelet, webhook, node agent',
);
const sb = await startSandbox({ dir, rate: 8 * MB });
let exitCode = 0;
const watchers: ReturnType<typeof spawn>[] = [];
try {
  const { KUBECONFIG, REGISTRY, PULL_REGISTRY } = sb.env;
  say(`kubeconfig: ${KUBECONFIG}   (try: kubectl --kubeconfig ${KUBECONFIG} get pods)`);
  say('pushing demo/web:1 (3 layers, 96 MB of incompressible data)');
  // Its command (/sleep) runs until the kubelet stops it.
  await buildImage({
    registry: REGISTRY,
    name: 'demo/web:1',
    layers: [40 * MB, 32 * MB, 24 * MB],
    cmd: ['/sleep'],
  });

  const manifest = join(dir, 'web.yaml');
  writeFileSync(
    manifest,
    `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
      annotations: {pulltrace.io/readiness-gate: "true"}
    spec:
      containers:
      - name: web
        image: ${PULL_REGISTRY}/demo/web:1
`,
  );
  say('kubectl apply -f web.yaml   (a Deployment of 3 pods; the readiness gate is asked for)');
  if ((await finished(kubectl(KUBECONFIG, cache, ['apply', '-f', manifest]))) !== 0)
    throw new Error('apply failed');

  say('kubectl get pods -o wide -L pulltrace.io/progress,pulltrace.io/eta -w');
  const watch = kubectl(KUBECONFIG, cache, [
    'get',
    'pods',
    '-o',
    'wide',
    '-L',
    'pulltrace.io/progress,pulltrace.io/eta',
    '-w',
  ]);
  watchers.push(watch);
  // The pods exist once the Deployment controller made them; wait for them, then for the condition.
  for (let i = 0; i < 50; i++) {
    const got = kubectl(KUBECONFIG, cache, ['get', 'pods', '-l', 'app=web', '-o', 'name'], 'pipe');
    let out = '';
    got.stdout?.on('data', (c: Buffer) => (out += c.toString()));
    await finished(got);
    if (out.trim().split('\n').filter(Boolean).length >= 3) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const wait = kubectl(
    KUBECONFIG,
    cache,
    ['wait', '--for=condition=pulltrace.io/ImagesPulled', 'pod', '-l', 'app=web', '--timeout=300s'],
    'pipe',
  );
  let waited = '';
  wait.stdout?.on('data', (c: Buffer) => (waited += c.toString()));
  const code = await finished(wait);
  // The pods become Ready once their containers run and the readiness gate's condition is True:
  // the Deployment controller then counts them available.
  const rollout = kubectl(
    KUBECONFIG,
    cache,
    ['rollout', 'status', 'deployment/web', '--timeout=120s'],
    'pipe',
  );
  let rolled = '';
  rollout.stdout?.on('data', (c: Buffer) => (rolled += c.toString()));
  const rolloutCode = await finished(rollout);
  watch.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 300));
  say(`kubectl wait --for=condition=pulltrace.io/ImagesPulled pod -l app=web  → exit ${code}`);
  process.stdout.write(waited);
  if (code !== 0) throw new Error('kubectl wait did not succeed');
  say(`kubectl rollout status deployment/web  → exit ${rolloutCode}`);
  process.stdout.write(`${rolled.trim().split('\n').at(-1) ?? ''}\n`);
  if (rolloutCode !== 0) throw new Error('kubectl rollout status did not succeed');
  say('kubectl get pods -o wide -L pulltrace.io/progress,pulltrace.io/eta');
  await finished(
    kubectl(KUBECONFIG, cache, ['get', 'pods', '-o', 'wide', '-L', 'pulltrace.io/progress,pulltrace.io/eta']),
  );
  say("kubectl get pod -l app=web -o jsonpath='{.items[0].metadata.annotations.pulltrace\\.io/status}'");
  await finished(
    kubectl(KUBECONFIG, cache, [
      'get',
      'pod',
      '-l',
      'app=web',
      '-o',
      'jsonpath={.items[0].metadata.annotations.pulltrace\\.io/status}',
    ]),
  );
  process.stdout.write('\n');
  if (!exitAtEnd) {
    say(`all images in. The sandbox keeps running: KUBECONFIG=${KUBECONFIG}. Ctrl-C to tear it down.`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
  }
} catch (err) {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.stderr.write(`logs are in ${dir} (node-agent.log, webhook.log, cluster/logs/)\n`);
  exitCode = 1;
} finally {
  for (const w of watchers) w.kill('SIGTERM');
  say('tearing down');
  await sb.stop();
  if (exitCode === 0) rmSync(dir, { recursive: true, force: true });
}
process.exit(exitCode);
