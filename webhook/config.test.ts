import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isCode } from '../common/errors.js';
import { ConfigError } from '../common/options.js';
import { webhookCommand, webhookConfig, type WebhookConfig } from './config.js';

/** The config of `argv` with `env` set (and every other PULLTRACE_* variable unset), or its ConfigError. */
function read(argv: string[], env: Record<string, string> = {}): WebhookConfig | ConfigError {
  const saved = { ...process.env };
  for (const k of Object.keys(process.env))
    if (k.startsWith('PULLTRACE_')) Reflect.deleteProperty(process.env, k);
  Object.assign(process.env, env);
  try {
    const cmd = webhookCommand().exitOverride();
    cmd.parse(argv, { from: 'user' });
    return webhookConfig(cmd.opts(), (key) => cmd.getOptionValueSource(key));
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in saved)) Reflect.deleteProperty(process.env, k);
    Object.assign(process.env, saved);
  }
}

test('defaults are the documented ones; each slice is what its component takes', () => {
  assert.deepEqual(read(['--tls-cert', '/c', '--tls-key', '/k']), {
    server: { listen: { host: '0.0.0.0', port: 8443 } },
    tls: { certPath: '/c', keyPath: '/k', reloadIntervalMs: 10_000 },
    mutate: { readinessGateNamespaces: new Set() },
    metrics: { listen: { host: '0.0.0.0', port: 9090 } },
    log: { level: 'info' },
  });
});

test('PULLTRACE_* env vars are read, flags win over them', () => {
  const c = read(['--cert-reload-interval', '1m'], {
    PULLTRACE_TLS_CERT: '/tls/tls.crt',
    PULLTRACE_TLS_KEY: '/tls/tls.key',
    PULLTRACE_CERT_RELOAD_INTERVAL: '5s',
    PULLTRACE_READINESS_GATE_NAMESPACES: 'shop, ci,',
    PULLTRACE_LISTEN: ':9443',
    PULLTRACE_LOG_LEVEL: 'warn',
  });
  assert.ok(!(c instanceof ConfigError));
  assert.deepEqual(c.tls, { certPath: '/tls/tls.crt', keyPath: '/tls/tls.key', reloadIntervalMs: 60_000 });
  assert.deepEqual([...c.mutate.readinessGateNamespaces], ['shop', 'ci']);
  assert.deepEqual(c.server.listen, { host: '0.0.0.0', port: 9443 });
  assert.equal(c.log.level, 'warn');
});

test('every bad field is reported at once: one PT_CONFIG_INVALID, each flag named', () => {
  const err = read(['--listen', 'nowhere', '--cert-reload-interval', '1ms'], {
    PULLTRACE_METRICS_LISTEN: 'x',
  });
  assert.ok(err instanceof ConfigError && isCode(err, 'PT_CONFIG_INVALID'));
  assert.deepEqual(err.lines(), [
    '--listen (PULLTRACE_LISTEN): expected HOST:PORT (e.g. 0.0.0.0:8443), got "nowhere"',
    '--tls-cert (PULLTRACE_TLS_CERT): is required',
    '--tls-key (PULLTRACE_TLS_KEY): is required',
    '--cert-reload-interval (PULLTRACE_CERT_RELOAD_INTERVAL): must be at least 100ms, got "1ms"',
    '--metrics-listen (PULLTRACE_METRICS_LISTEN): expected HOST:PORT (e.g. 0.0.0.0:8443), got "x" (from PULLTRACE_METRICS_LISTEN)',
  ]);
});
