// A STAND-IN for the Kubernetes API server, for pulltrace's tests and local sandbox only: an
// in-memory store behind a plain-HTTP server on loopback, enough for the real kubectl and
// @kubernetes/client-node to drive pods, events, namespaces and a few generic types. No
// authentication, no persistence, no TLS. See README.md for what it implements and what not.
//
//   const cp = await startControlPlane();
//   // kubectl --kubeconfig cp.kubeconfigPath get pods;  cp.store.pods.create({...})
//   await cp.stop();
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger, type Logger } from '../../common/logging.js';
import { createFaults, type Faults } from './faults.js';
import { writeKubeconfig } from './kubeconfig.js';
import { createApiHandler } from './server.js';
import { Store, type StoreOptions } from './store.js';

export interface ControlPlaneOptions extends StoreOptions {
  /** Listen address (default 127.0.0.1; keep it on loopback: there is no authentication). */
  host?: string;
  /** Port (default 0: any free port). */
  port?: number;
  /** Where to write the kubeconfig (default: a new temporary directory, removed by stop()). */
  kubeconfigPath?: string;
  logger?: Logger;
}

export interface ControlPlane {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** A kubeconfig pointing at `url`, current context namespace `default`. */
  kubeconfigPath: string;
  /** The objects, for in-process use (controllers, assertions). */
  store: Store;
  /**
   * Ends every open HTTP watch stream now, as an API server does at a watch timeout or
   * restart: clients reconnect from their last resourceVersion (tests of reconnection).
   */
  closeWatchStreams(): void;
  /**
   * Fault injection (faults.ts): answer chosen requests with a 429/409/500/503/504 v1 Status for
   * a while, e.g. `cp.faults.set({ match, status: 429, retryAfterSeconds: 1, forMs: 5000 })`.
   */
  faults: Faults;
  /** Ends watches, closes the server and removes the files it made. Idempotent. */
  stop(): Promise<void>;
}

/** Starts the stand-in and writes its kubeconfig; resolves once it accepts connections. */
export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const logger = (opts.logger ?? silentLogger()).child({ component: 'control-plane' });
  const store = new Store(opts);
  const host = opts.host ?? '127.0.0.1';
  let address = '';
  const faults = createFaults();
  const handler = createApiHandler({
    store,
    logger,
    faults,
    serverAddress: () => address,
    ...(opts.now === undefined ? {} : { now: opts.now }),
  });
  const server: Server = createServer((req, res) => {
    handler.handle(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  address = `${host}:${port}`;
  const url = `http://${address}`;
  const tmp = opts.kubeconfigPath === undefined ? mkdtempSync(join(tmpdir(), 'pt-cp-')) : undefined;
  const kubeconfigPath = writeKubeconfig(opts.kubeconfigPath ?? join(tmp ?? '', 'kubeconfig'), url);
  logger.info({ url, kubeconfigPath }, 'control plane stand-in listening');

  let stopped: Promise<void> | undefined;
  return {
    url,
    kubeconfigPath,
    store,
    faults,
    closeWatchStreams: () => {
      handler.closeWatches();
    },
    stop: () =>
      (stopped ??= new Promise<void>((resolve) => {
        handler.closeWatches();
        store.stopWatches();
        server.close(() => {
          if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
          resolve();
        });
        server.closeAllConnections();
      })),
  };
}
