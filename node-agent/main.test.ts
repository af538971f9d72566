// The agent's entry point as a process: exit codes and messages of a bad configuration, of a
// kubeconfig that cannot be read, and of `pulls` with no containerd (no containerd needed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PULLTRACE_')));
const agent = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    encoding: 'utf8',
    env: { ...clean, ...env },
    timeout: 30_000,
  });

test('--help lists the flags with env vars and defaults; usage errors exit 2', () => {
  const help = agent(['--help']);
  assert.equal(help.status, 0);
  assert.match(
    help.stdout.replace(/\s+/g, ' '),
    /--slow-rate <bytes-per-second>.*default: 0, env: PULLTRACE_SLOW_RATE/,
  );
  const unknown = agent(['pulls', '--bogus']);
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /unknown option '--bogus'/);
});

test('several bad options: one PT_CONFIG_INVALID naming each, one line each, exit 2', () => {
  const r = agent(['--poll-interval', '10ms', '--api-burst', '0'], { PULLTRACE_SLOW_RATE: 'fast' });
  assert.equal(r.status, 2, r.stderr);
  assert.deepEqual(r.stderr.trimEnd().split('\n'), [
    'pulltrace-node-agent: PT_CONFIG_INVALID invalid configuration, 4 bad fields:',
    '  --poll-interval (PULLTRACE_POLL_INTERVAL): must be at least 100ms, got "10ms"',
    `  --slow-rate (PULLTRACE_SLOW_RATE): expected a whole number from 0 to ${Number.MAX_SAFE_INTEGER}, got "fast" (from PULLTRACE_SLOW_RATE)`,
    `  --api-burst (PULLTRACE_API_BURST): expected a whole number from 1 to ${Number.MAX_SAFE_INTEGER}, got "0"`,
    '  --node-name (PULLTRACE_NODE_NAME): is required',
  ]);
  const pulls = agent(['pulls', '--poll-interval', '1ms'], { PULLTRACE_WATCH: 'maybe' });
  assert.equal(pulls.status, 2);
  assert.match(pulls.stderr, /--poll-interval .*\n {2}--watch \(PULLTRACE_WATCH\): must be true or false/);
});

test('a kubeconfig that cannot be read is a bad --kubeconfig (exit 2); pulls without containerd exits 1', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pulltrace-agent-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const socket = join(dir, 'containerd.sock');
  const kube = agent(['--kubeconfig', join(dir, 'nope'), '--containerd-address', socket], {
    PULLTRACE_NODE_NAME: 'n1',
    PULLTRACE_METRICS_LISTEN: '127.0.0.1:0',
  });
  assert.equal(kube.status, 2, kube.stderr);
  assert.match(
    kube.stderr,
    /PT_CONFIG_INVALID.*\n {2}--kubeconfig \(PULLTRACE_KUBECONFIG\): cannot load the kubeconfig /,
  );
  const pulls = agent(['pulls', '--containerd-address', socket]);
  assert.equal(pulls.status, 1, pulls.stderr);
  assert.match(pulls.stderr, new RegExp(`^pulltrace-node-agent: cannot read containerd at ${socket}: `));
});
