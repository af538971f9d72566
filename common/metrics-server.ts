// The plain-HTTP side port both binaries serve: /metrics (Prometheus text), /healthz (the
// process runs), /readyz (it can do its job). Kept apart from any TLS port, like cert-manager's
// health port, so probes and scrapes need no certificate.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from './logging.js';
import type { HostPort } from './options.js';

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

/** The `metrics` slice of a program's config. */
export interface MetricsConfig {
  /** Plain-HTTP listener for /metrics, /healthz and /readyz (--metrics-listen). */
  listen: HostPort;
}

export interface MetricsServerOptions extends MetricsConfig {
  registry: Registry;
  /** Why the process is not ready, or null when it is. */
  notReady: () => string | null;
  logger: Logger;
}

export async function startMetricsServer(opts: MetricsServerOptions): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else if (path === '/readyz') {
      const why = opts.notReady();
      res
        .writeHead(why === null ? 200 : 503, { 'content-type': 'text/plain' })
        .end(why === null ? 'ok\n' : `${why}\n`);
    } else if (path === '/metrics') {
      opts.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': opts.registry.contentType }).end(text),
        (err: unknown) => {
          opts.logger.error({ err }, 'collecting metrics failed');
          res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics collection failed\n');
        },
      );
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.listen.port, opts.listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}
