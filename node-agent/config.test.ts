import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Command } from 'commander';
import { addAgentOptions, agentConfig } from './config.js';

function parse(argv: string[], env: Record<string, string> = {}) {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    const cmd = addAgentOptions(new Command('agent'))
      .exitOverride()
      .configureOutput({ writeErr: () => {} });
    cmd.parse(argv, { from: 'user' });
    return agentConfig(cmd.opts());
  } finally {
    for (const k of Object.keys(env)) {
      if (saved[k] === undefined) Reflect.deleteProperty(process.env, k);
      else process.env[k] = saved[k];
    }
  }
}

test('defaults are the documented ones', () => {
  const c = parse(['--node-name', 'n1']);
  assert.equal(c.containerdAddress, '/run/containerd/containerd.sock');
  assert.equal(c.namespace, 'k8s.io');
  assert.equal(c.pollIntervalMs, 1000);
  assert.equal(c.stallAfterMs, 30_000);
  assert.equal(c.slowRate, 0);
  assert.equal(c.minPatchIntervalMs, 2000);
  assert.equal(c.apiQps, 5);
  assert.equal(c.apiBurst, 10);
  assert.equal(c.maxWritesPerPull, 25);
  assert.deepEqual(c.metricsListen, { host: '0.0.0.0', port: 9091 });
  assert.equal(c.logLevel, 'info');
});

test('env vars fill options and flags win over them', () => {
  const c = parse(['--api-qps', '7'], {
    PULLTRACE_NODE_NAME: 'node-a',
    PULLTRACE_STALL_AFTER: '1m',
    PULLTRACE_API_QPS: '3',
  });
  assert.equal(c.nodeName, 'node-a');
  assert.equal(c.stallAfterMs, 60_000);
  assert.equal(c.apiQps, 7);
});

test('bad values are refused with a clear message', () => {
  assert.throws(() => parse([]), /--node-name/);
  assert.throws(() => parse(['--node-name', 'n', '--stall-after', 'soon']), /duration/);
  assert.throws(() => parse(['--node-name', 'n', '--api-qps', '0']), /whole number/);
  assert.throws(() => parse(['--node-name', 'n', '--poll-interval', '10ms']), /at least 100ms/);
  assert.throws(() => parse(['--node-name', 'n', '--max-writes-per-pull', '1']), /2 to/);
});
