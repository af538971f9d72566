// The sandbox as scripts drive it (`npm run sandbox -- up|image|down`) and the README's first
// command (`npm run demo`), run as a user runs them: a real kube-apiserver (its /livez lists
// etcd), the real controllers roll the Deployment out, the real kubelet runs its pods.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { kubectlFor } from './cluster/kubectl.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function npm(args: string[], timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      'npm',
      ['run', '--silent', ...args],
      { cwd: ROOT, timeout: timeoutMs },
      (_e, stdout, stderr) => {
        resolve({ code: child.exitCode, out: stdout + stderr });
      },
    );
  });
}

test('sandbox up → image → a Deployment rolls out through kubectl → down removes everything', async () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'pt-sbcli-')), 'sb');
  try {
    const up = await npm(['sandbox', '--', 'up', '--dir', dir, '--rate', String(8 * 1024 * 1024)], 180_000);
    assert.equal(up.code, 0, up.out);
    const env = Object.fromEntries(
      readFileSync(join(dir, 'env'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    ) as Record<string, string>;
    for (const k of ['KUBECONFIG', 'REGISTRY', 'PULL_REGISTRY', 'CONTAINERD_ADDRESS', 'NODE_NAME']) {
      assert.ok(env[k] !== undefined && env[k] !== '', `${k} in DIR/env`);
    }
    const k = kubectlFor(env.KUBECONFIG!);
    const livez = await k.run(['get', '--raw', '/livez?verbose']);
    assert.equal(livez.code, 0, livez.stderr);
    assert.match(livez.stdout, /^\[\+\]etcd ok$/m, 'a real kube-apiserver, on etcd');
    const version = await k.run(['version', '-o', 'json']);
    assert.match(version.stdout, /"gitVersion": "v1\.34\.\d+"/);
    const base = await npm(['sandbox', '--', 'image', 'team/base:1', '--layers', '4', '--dir', dir], 120_000);
    assert.equal(base.code, 0, base.out);
    const img = await npm(
      ['sandbox', '--', 'image', 'team/web:1', '--layers', '6,2', '--base', 'team/base:1', '--dir', dir],
      120_000,
    );
    assert.equal(img.code, 0, img.out);
    assert.match(img.out, /team\/web:1 \d+ bytes \(3 layers/, 'the base layer comes first, shared');

    try {
      const c = await k.run([
        'create',
        'deployment',
        'web',
        `--image=${env.PULL_REGISTRY}/team/web:1`,
        '--replicas=2',
      ]);
      assert.equal(c.code, 0, c.stderr);
      const r = await k.run(['rollout', 'status', 'deployment/web', '--timeout=120s'], {
        timeoutMs: 150_000,
      });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /successfully rolled out/);
      // The rollout is done when the pods run; the agent's final write may follow a moment later.
      const w = await k.run(
        ['wait', '--for=condition=pulltrace.io/ImagesPulled', 'pod', '-l', 'app=web', '--timeout=60s'],
        { timeoutMs: 90_000 },
      );
      assert.equal(w.code, 0, w.stdout + w.stderr);
      const pods = await k.run([
        'get',
        'pods',
        '-l',
        'app=web',
        '-o',
        'jsonpath={.items[*].metadata.labels.pulltrace\\.io/progress}',
      ]);
      assert.equal(pods.stdout.trim(), '100 100');
    } finally {
      k.cleanup();
    }
  } finally {
    const down = await npm(['sandbox', '--', 'down', '--dir', dir], 60_000);
    assert.equal(down.code, 0, down.out);
    assert.ok(!existsSync(dir), 'down removes the state directory');
    rmSync(join(dir, '..'), { recursive: true, force: true });
  }
});

test('npm run demo -- --exit: a throttled rollout watched through kubectl until kubectl wait returns', async () => {
  const r = await npm(['demo', '--', '--exit'], 300_000);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /kubectl wait --for=condition=pulltrace\.io\/ImagesPulled pod -l app=web {2}→ exit 0/);
  assert.equal((r.out.match(/condition met/g) ?? []).length, 3);
  // READY 1/1 Running, no restarts, a pod IP of the node's pod network, READINESS GATES 1/1.
  assert.match(
    r.out,
    /web-\S+\s+1\/1\s+Running\s+0\s+\S+\s+\d+\.\d+\.\d+\.\d+\s+sandbox-node\s+<none>\s+1\/1\s+100\s+0s/,
  );
});
