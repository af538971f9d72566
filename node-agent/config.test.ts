import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Command } from 'commander';
import { isCode } from '../common/errors.js';
import { ConfigError, readCommand } from '../common/options.js';
import {
  AGENT_FIELDS,
  PULLS_FIELDS,
  addAgentOptions,
  addPullsOptions,
  type AgentConfig,
  type PullsConfig,
} from './config.js';

/** Runs `read` with `env` set (and every other PULLTRACE_* variable unset). */
function withEnv<T>(env: Record<string, string>, read: () => T): T {
  const saved = { ...process.env };
  for (const k of Object.keys(process.env))
    if (k.startsWith('PULLTRACE_')) Reflect.deleteProperty(process.env, k);
  Object.assign(process.env, env);
  try {
    return read();
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in saved)) Reflect.deleteProperty(process.env, k);
    Object.assign(process.env, saved);
  }
}

function agent(argv: string[], env: Record<string, string> = {}): AgentConfig {
  return withEnv(env, () => {
    const cmd = addAgentOptions(new Command('agent')).exitOverride();
    cmd.parse(argv, { from: 'user' });
    return readCommand<AgentConfig>(cmd, AGENT_FIELDS);
  });
}

function pulls(argv: string[], env: Record<string, string> = {}): PullsConfig {
  return withEnv(env, () => {
    const cmd = addPullsOptions(new Command('pulls')).exitOverride();
    cmd.parse(argv, { from: 'user' });
    return readCommand<PullsConfig>(cmd, PULLS_FIELDS);
  });
}

/** The ConfigError `fn` throws. */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  assert.fail('no ConfigError');
}

test('defaults are the documented ones, nested like the chart values', () => {
  assert.deepEqual(agent(['--node-name', 'n1']), {
    containerd: { address: '/run/containerd/containerd.sock', namespace: 'k8s.io', snapshotter: 'overlayfs' },
    tracker: { pollIntervalMs: 1000, stallAfterMs: 30_000, slowRateBytesPerSecond: 0 },
    registry: { lookups: true, configPath: ['/etc/containerd/certs.d'], timeoutMs: 2000 },
    budget: { minPatchIntervalMs: 2000, apiQps: 5, apiBurst: 10, maxWritesPerPull: 25 },
    kube: { nodeName: 'n1', kubeconfig: '' },
    metrics: { listen: { host: '0.0.0.0', port: 9091 } },
    log: { level: 'info' },
  });
  assert.deepEqual(pulls([]), {
    containerd: { address: '/run/containerd/containerd.sock', namespace: 'k8s.io', snapshotter: 'overlayfs' },
    tracker: { pollIntervalMs: 1000 },
    output: { watch: false, json: false },
  });
});

test('PULLTRACE_* env vars fill every slice, and flags win over them', () => {
  const c = agent(['--api-qps', '7'], {
    PULLTRACE_NODE_NAME: 'node-a',
    PULLTRACE_CONTAINERD_ADDRESS: '/run/k3s/containerd/containerd.sock',
    PULLTRACE_STALL_AFTER: '1m',
    PULLTRACE_SLOW_RATE: '2000000',
    PULLTRACE_REGISTRY_LOOKUPS: 'false',
    PULLTRACE_REGISTRY_CONFIG_PATH: '/a:/b',
    PULLTRACE_API_QPS: '3',
    PULLTRACE_METRICS_LISTEN: '127.0.0.1:1234',
    PULLTRACE_LOG_LEVEL: 'debug',
  });
  assert.equal(c.kube.nodeName, 'node-a');
  assert.equal(c.containerd.address, '/run/k3s/containerd/containerd.sock');
  assert.equal(c.tracker.stallAfterMs, 60_000);
  assert.equal(c.tracker.slowRateBytesPerSecond, 2_000_000);
  assert.equal(c.registry.lookups, false);
  assert.deepEqual(c.registry.configPath, ['/a', '/b']);
  assert.equal(c.budget.apiQps, 7);
  assert.deepEqual(c.metrics.listen, { host: '127.0.0.1', port: 1234 });
  assert.equal(c.log.level, 'debug');
  const p = pulls(['--json'], {
    PULLTRACE_WATCH: 'false',
    PULLTRACE_POLL_INTERVAL: '300ms',
    PULLTRACE_NAMESPACE: 'default',
  });
  assert.deepEqual(p.output, { watch: false, json: true });
  assert.equal(p.tracker.pollIntervalMs, 300);
  assert.equal(p.containerd.namespace, 'default');
});

test('every bad field is reported at once: one PT_CONFIG_INVALID, each flag named', () => {
  const err = configError(() =>
    agent(
      ['--stall-after', 'soon', '--api-qps', '0', '--poll-interval', '10ms', '--max-writes-per-pull', '1'],
      {
        PULLTRACE_LOG_LEVEL: 'loud',
      },
    ),
  );
  assert.ok(isCode(err, 'PT_CONFIG_INVALID'));
  const lines = err.lines();
  assert.equal(lines.length, 6, lines.join('\n'));
  for (const [flag, why] of [
    ['--poll-interval', /at least 100ms/],
    ['--stall-after', /duration/],
    ['--api-qps', /whole number from 1/],
    ['--max-writes-per-pull', /from 2 to/],
    ['--node-name', /is required/],
    ['--log-level', /expected one of .*"loud" \(from PULLTRACE_LOG_LEVEL\)/],
  ] as const) {
    const line = lines.find((l) => l.startsWith(`${flag} (`));
    assert.ok(line !== undefined, `a line for ${flag}`);
    assert.match(line, why);
  }
  assert.deepEqual(
    configError(() => pulls(['--poll-interval', '1ms'], { PULLTRACE_JSON: 'maybe' })).lines(),
    [
      '--poll-interval (PULLTRACE_POLL_INTERVAL): must be at least 100ms, got "1ms"',
      '--json (PULLTRACE_JSON): must be true or false, got "maybe" (from PULLTRACE_JSON)',
    ],
  );
});
