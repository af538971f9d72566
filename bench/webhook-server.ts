// A server for the webhook benchmark, run in its own process so it does not share an event
// loop with the load generator: `webhook` (the real app) or `ceiling` (bare node:https
// answering a canned AdmissionResponse). Prints the port on stdout when listening.
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createLogger } from '../common/logging.js';
import { buildApp } from '../webhook/app.js';
import { createWebhookMetrics } from '../webhook/metrics.js';
import { readKeyPair } from '../webhook/tls.js';

const [kind, cert, key] = process.argv.slice(2);
if ((kind !== 'webhook' && kind !== 'ceiling') || cert === undefined || key === undefined) {
  process.stderr.write('usage: webhook-server.ts webhook|ceiling CERT KEY\n');
  process.exit(2);
}
const pair = await readKeyPair(cert, key);

if (kind === 'webhook') {
  // As in production: info level, no per-request lines.
  const logger = createLogger('bench', 'info');
  const app = buildApp({
    logger,
    metrics: createWebhookMetrics({ processMetrics: true }),
    mutate: { readinessGateNamespaces: new Set() },
    tls: pair,
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  process.stdout.write(`PORT=${(app.server.address() as AddressInfo).port}\n`);
} else {
  const canned = JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: { uid: '705ab4f5-6393-11e8-b7cc-42010a800002', allowed: true },
  });
  const server = createServer({ cert: pair.cert, key: pair.key, minVersion: 'TLSv1.2' }, (req, res) => {
    // Reads the body like any server must, then answers without looking at it.
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(canned);
    });
  });
  server.keepAliveTimeout = 30_000;
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`PORT=${(server.address() as AddressInfo).port}\n`);
  });
}

// Exit through process.exit on a signal so `node --cpu-prof` (used to profile this server
// under load) writes its profile; the default signal action would skip it.
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => process.exit(0));
}
