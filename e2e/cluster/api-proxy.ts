// A TLS proxy in front of the real kube-apiserver, for the faults a real API server cannot be
// made to produce on demand: a 429 from API priority and fairness, a 500, a 409 from a
// conflicting writer, each for a few seconds, for chosen requests only; and cut watch streams.
// Everything else passes through unchanged to the API server (which authenticates, authorizes
// and admits as usual), so a client pointed here is still talking to the real thing.
//
//   const proxy = await startApiProxy(cluster);
//   const kubeconfig = proxy.kubeconfigFor('agent', { token });   // bearer tokens only, see below
//   proxy.faults.set({ status: 429, retryAfterSeconds: 1, forMs: 5000,
//                      match: (r) => r.method === 'PATCH' && r.query.get('fieldManager') === 'pulltrace' });
//   proxy.faults.answered();   // what the fault answered, with times
//
// The rules are those of faults.ts (matching, count and time limits, the API server's v1 Status
// bodies, `Retry-After` on 429 and 503). The proxy terminates TLS with a certificate of
// the cluster's CA for 127.0.0.1, so it forwards the Authorization header but cannot forward a
// client certificate: clients authenticate with a token (a ServiceAccount token, as the node
// agent does in a cluster). When the API server cannot be reached the client's connection is
// reset, as a load balancer in front of a dead API server does.
import { readFileSync } from 'node:fs';
import { createServer, request as httpsRequest, Agent, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse, ClientRequest } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { createFaults, parseFaultPath, type FaultInjector, type FaultRequest } from './faults.js';
import type { Cluster } from './cluster.js';
import { writeClusterKubeconfig } from './kubeconfig.js';

/** One request the proxy saw: passed through (`status` the API server's) or answered by a fault. */
export interface ProxiedRequest {
  /** Date.now() when it arrived. */
  at: number;
  method: string;
  path: string;
  query: URLSearchParams;
  /** The answer's status; 0 when the API server could not be reached (connection reset). */
  status: number;
  /** True when the fault rule answered it. */
  faulted: boolean;
}

export interface ApiProxy {
  /** `https://127.0.0.1:PORT`. */
  url: string;
  /** The fault rule in force (faults.ts). */
  faults: FaultInjector;
  /** Every request seen since start (or since clearRequests()), oldest first. */
  requests(): readonly ProxiedRequest[];
  clearRequests(): void;
  /** Ends every watch response in flight (the client sees its watch end, and must watch again). */
  closeWatchStreams(): void;
  /** A kubeconfig for the proxy with `token`, trusting the cluster's CA; returns its path. */
  kubeconfigFor(name: string, credentials: { token: string; namespace?: string }): string;
  stop(): Promise<void>;
}

/** Headers that belong to one connection, not to the request (RFC 9110 §7.6.1). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);
function withoutHopByHop<T extends Record<string, unknown>>(h: T): T {
  return Object.fromEntries(Object.entries(h).filter(([k]) => !HOP_BY_HOP.has(k.toLowerCase()))) as T;
}

/** Starts the proxy on a free 127.0.0.1 port. */
export async function startApiProxy(cluster: Cluster): Promise<ApiProxy> {
  const serving = await cluster.pki.serving('api-proxy');
  const ca = readFileSync(cluster.caPath);
  const upstream = new URL(cluster.url);
  const agent = new Agent({ keepAlive: true, ca });
  const faults = createFaults();
  let log: ProxiedRequest[] = [];
  const watches = new Set<ServerResponse>();
  const sockets = new Set<Socket>();

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'https://proxy');
    const entry: ProxiedRequest = {
      at: Date.now(),
      method: req.method ?? 'GET',
      path: url.pathname,
      query: url.searchParams,
      status: 0,
      faulted: false,
    };
    log.push(entry);
    const fr: FaultRequest = {
      method: entry.method,
      path: url.pathname,
      query: url.searchParams,
      headers: req.headers,
      ...parseFaultPath(url.pathname),
    };
    const fault = faults.check(fr);
    if (fault !== null) {
      entry.status = fault.code;
      entry.faulted = true;
      const retry = fault.status.details?.retryAfterSeconds;
      req.resume();
      res.writeHead(fault.code, {
        'content-type': 'application/json',
        ...(retry === undefined || (fault.code !== 429 && fault.code !== 503)
          ? {}
          : { 'retry-after': String(retry) }),
      });
      res.end(JSON.stringify(fault.status));
      return;
    }
    const isWatch = url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1';
    const headers = withoutHopByHop({ ...req.headers, host: upstream.host });
    const up: ClientRequest = httpsRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers,
        agent,
      },
      (upRes) => {
        entry.status = upRes.statusCode ?? 0;
        res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, withoutHopByHop(upRes.headers));
        if (isWatch) {
          watches.add(res);
          res.once('close', () => watches.delete(res));
        }
        upRes.pipe(res);
        upRes.once('error', () => res.destroy());
        upRes.once('aborted', () => res.destroy());
      },
    );
    up.once('error', () => {
      // The API server is down or went away mid-answer: reset the client's connection.
      req.socket.destroy();
    });
    res.once('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    req.pipe(up);
  };

  const server: Server = createServer(
    { cert: readFileSync(serving.cert), key: readFileSync(serving.key) },
    handle,
  );
  server.on('secureConnection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let stopped = false;
  return {
    url,
    faults,
    requests: () => log,
    clearRequests: () => {
      log = [];
    },
    closeWatchStreams: () => {
      for (const w of watches) w.destroy();
      watches.clear();
    },
    kubeconfigFor: (name, credentials) =>
      writeClusterKubeconfig(join(cluster.dir, 'kubeconfigs', `proxy-${name}`), {
        server: url,
        caPath: cluster.caPath,
        credentials: { token: credentials.token },
        ...(credentials.namespace === undefined ? {} : { namespace: credentials.namespace }),
      }),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      for (const s of sockets) s.destroy();
      agent.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
