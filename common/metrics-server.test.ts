import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Registry } from 'prom-client';
import { silentLogger } from './logging.js';
import { startMetricsServer } from './metrics-server.js';

test('serves /metrics, /healthz and /readyz on loopback', async (t) => {
  const registry = new Registry();
  const c = new Counter({ name: 'pulltrace_test_total', help: 'test', registers: [registry] });
  c.inc(3);
  let why: string | null = 'containerd not reachable';
  const s = await startMetricsServer({
    listen: { host: '127.0.0.1', port: 0 },
    registry,
    notReady: () => why,
    logger: silentLogger(),
  });
  t.after(() => s.close());
  const base = `http://127.0.0.1:${s.port}`;

  const m = await fetch(`${base}/metrics`);
  assert.equal(m.status, 200);
  assert.match(await m.text(), /^pulltrace_test_total 3$/m);

  assert.equal((await fetch(`${base}/healthz`)).status, 200);
  const r1 = await fetch(`${base}/readyz`);
  assert.equal(r1.status, 503);
  assert.equal(await r1.text(), 'containerd not reachable\n');
  why = null;
  assert.equal((await fetch(`${base}/readyz`)).status, 200);

  assert.equal((await fetch(`${base}/nope`)).status, 404);
  assert.equal((await fetch(`${base}/metrics`, { method: 'POST' })).status, 405);
});
