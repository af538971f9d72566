#!/usr/bin/env node
// pulltrace-webhook: serves the mutating admission webhook over HTTPS.
import type { Server } from 'node:https';
import { CommanderError } from 'commander';
import { errorMessage } from '../common/errors.js';
import { createLogger } from '../common/logging.js';
import { startMetricsServer } from '../common/metrics-server.js';
import { buildApp } from './app.js';
import { webhookCommand, webhookConfig, type WebhookConfig } from './config.js';
import { createWebhookMetrics } from './metrics.js';
import { CertWatcher, readKeyPair } from './tls.js';

function parseConfig(argv: string[]): WebhookConfig {
  const cmd = webhookCommand().exitOverride();
  try {
    cmd.parse(argv);
    return webhookConfig(cmd.opts());
  } catch (err) {
    if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2);
    process.stderr.write(`pulltrace-webhook: ${errorMessage(err)}\n`);
    process.exit(2);
  }
}

async function main(): Promise<void> {
  const config = parseConfig(process.argv);
  const logger = createLogger('pulltrace-webhook', config.logLevel);
  const metrics = createWebhookMetrics({ processMetrics: true });
  const pair = await readKeyPair(config.tlsCert, config.tlsKey);
  const app = buildApp({
    logger,
    metrics,
    tls: pair,
    mutate: { readinessGateNamespaces: new Set(config.readinessGateNamespaces) },
  });
  const watcher = new CertWatcher(pair, {
    certPath: config.tlsCert,
    keyPath: config.tlsKey,
    intervalMs: config.certReloadIntervalMs,
    logger,
    onChange: (next) => {
      (app.server as Server).setSecureContext({ cert: next.cert, key: next.key, minVersion: 'TLSv1.2' });
    },
  });
  await app.listen({ host: config.listen.host, port: config.listen.port });
  watcher.start();
  let closing = false;
  const side = await startMetricsServer({
    listen: config.metricsListen,
    registry: metrics.registry,
    notReady: () => (closing ? 'shutting down' : null),
    logger,
  });
  logger.info({ listen: config.listen, metricsListen: config.metricsListen }, 'webhook serving');

  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    logger.info({ signal }, 'shutting down: finishing in-flight requests');
    watcher.stop();
    Promise.all([app.close(), side.close()]).then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => {
    shutdown('SIGTERM');
  });
  process.on('SIGINT', () => {
    shutdown('SIGINT');
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`pulltrace-webhook: ${errorMessage(err)}\n`);
  process.exit(1);
});
