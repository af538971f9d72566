#!/usr/bin/env node
// pulltrace-webhook: serves the mutating admission webhook over HTTPS.
// Exit codes: 0 stopped by SIGTERM/SIGINT once in-flight requests are answered; 1 cannot start
// (certificate unreadable, port taken) or stop; 2 bad option (PT_CONFIG_INVALID).
import type { Server } from 'node:https';
import type { Command } from 'commander';
import { createLogger } from '../common/logging.js';
import { startMetricsServer } from '../common/metrics-server.js';
import { readCommand } from '../common/options.js';
import { runMain, untilStopped } from '../common/run-main.js';
import { buildApp } from './app.js';
import { WEBHOOK_FIELDS, webhookCommand, type WebhookConfig } from './config.js';
import { createWebhookMetrics } from './metrics.js';
import { CertWatcher, readKeyPair } from './tls.js';

const NAME = 'pulltrace-webhook';

/** Serves until `stop`, then answers the requests in flight and returns 0. */
async function serve(config: WebhookConfig, stop: AbortSignal): Promise<number> {
  const logger = createLogger(NAME, config.log.level);
  const metrics = createWebhookMetrics({ processMetrics: true });
  const pair = await readKeyPair(config.tls.certPath, config.tls.keyPath);
  const app = buildApp({ logger, metrics, tls: pair, mutate: config.mutate });
  const watcher = new CertWatcher(pair, {
    ...config.tls,
    logger,
    onChange: (next) => {
      (app.server as Server).setSecureContext({ cert: next.cert, key: next.key, minVersion: 'TLSv1.2' });
    },
  });
  await app.listen(config.server.listen);
  watcher.start();
  let closing = false;
  const side = await startMetricsServer({
    ...config.metrics,
    registry: metrics.registry,
    notReady: () => (closing ? 'shutting down' : null),
    logger,
  });
  logger.info({ listen: config.server.listen, metricsListen: config.metrics.listen }, 'webhook serving');
  await untilStopped(stop);
  closing = true;
  logger.info({ signal: stop.reason as unknown }, 'shutting down: finishing in-flight requests');
  watcher.stop();
  await Promise.all([app.close(), side.close()]);
  return 0;
}

runMain({
  prefix: NAME,
  failureExitCode: 1,
  program: (select) =>
    webhookCommand().action((_options: unknown, cmd: Command) => {
      const config = readCommand<WebhookConfig>(cmd, WEBHOOK_FIELDS);
      select((stop) => serve(config, stop));
    }),
});
