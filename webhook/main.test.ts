// The real entry point as a process: flags, env vars, exit codes, serving, graceful stop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { request } from 'node:https';
import { fileURLToPath } from 'node:url';
import { freePort, waitFor } from '../test-support/net.js';
import { makeCerts, podReview } from '../test-support/webhook.js';

const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
const node = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 30_000,
  });

test('--help documents every option with its env var and default', () => {
  const r = node(['--help']);
  assert.equal(r.status, 0);
  const help = r.stdout.replace(/\s+/g, ' ');
  for (const flag of [
    '--listen',
    '--tls-cert',
    '--tls-key',
    '--metrics-listen',
    '--readiness-gate-namespaces',
    '--cert-reload-interval',
    '--log-level',
  ]) {
    assert.ok(help.includes(flag), flag);
  }
  assert.match(help, /default: 0\.0\.0\.0:8443/);
  assert.match(help, /env: PULLTRACE_TLS_CERT/);
  assert.match(help, /default: 10s, env: PULLTRACE_CERT_RELOAD_INTERVAL/);
});

test('bad options exit 2 with a clear message', () => {
  const unknown = node(['--bogus']);
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /unknown option '--bogus'/);
  const missing = node(['--tls-key', '/x']);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /--tls-cert \(PULLTRACE_TLS_CERT\): is required/);
  const badListen = node(['--tls-cert', '/x', '--tls-key', '/y', '--listen', 'nowhere']);
  assert.equal(badListen.status, 2);
  assert.match(badListen.stderr, /HOST:PORT/);
  const noFile = node([
    '--tls-cert',
    '/nonexistent.crt',
    '--tls-key',
    '/nonexistent.key',
    '--listen',
    '127.0.0.1:0',
  ]);
  assert.equal(noFile.status, 1);
  assert.match(noFile.stderr, /cannot load TLS certificate or key.*ENOENT/);
});

test('several bad options: one PT_CONFIG_INVALID naming each, one line each, exit 2', () => {
  const r = node(['--listen', 'nowhere', '--cert-reload-interval', 'soon'], {
    PULLTRACE_TLS_CERT: '',
    PULLTRACE_LOG_LEVEL: 'loud',
  });
  assert.equal(r.status, 2);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines[0], 'pulltrace-webhook: PT_CONFIG_INVALID invalid configuration, 5 bad fields:');
  assert.deepEqual(
    lines.slice(1).map((l) => /^ {2}(--[a-z-]+) \(PULLTRACE_[A-Z_]+\): /.exec(l)?.[1]),
    ['--listen', '--tls-cert', '--tls-key', '--cert-reload-interval', '--log-level'],
  );
});

test('serves over TLS with options from env vars and stops cleanly on SIGTERM', async (t) => {
  const certs = makeCerts();
  t.after(() => certs.cleanup());
  const [port, metricsPort] = [await freePort(), await freePort()];
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, '--listen', `127.0.0.1:${port}`], {
    env: {
      ...process.env,
      PULLTRACE_TLS_CERT: certs.cert,
      PULLTRACE_TLS_KEY: certs.key,
      PULLTRACE_METRICS_LISTEN: `127.0.0.1:${metricsPort}`,
      PULLTRACE_READINESS_GATE_NAMESPACES: 'shop',
      PULLTRACE_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  t.after(() => child.kill('SIGKILL'));
  await waitFor(
    'the webhook to be ready',
    async () => (await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).ok,
    20_000,
  );

  const body = JSON.stringify(podReview());
  const answer = await new Promise<string>((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/mutate',
        ca: certs.ca,
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve(text));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
  const review = JSON.parse(answer) as { response: { patch: string } };
  const ops = JSON.parse(Buffer.from(review.response.patch, 'base64').toString()) as { path: string }[];
  assert.deepEqual(
    ops.map((o) => o.path).sort(),
    ['/metadata/labels/pulltrace.io~1tracked', '/spec/readinessGates'],
    'namespace "shop" from PULLTRACE_READINESS_GATE_NAMESPACES gets the gate',
  );
  const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  assert.match(metrics, /pulltrace_webhook_patches_total 1/);
  assert.match(metrics, /pulltrace_webhook_process_cpu_seconds_total/);

  child.kill('SIGTERM');
  assert.equal(await exited, 0, stderr);
});
