// The CNCF distribution registry (Debian's docker-registry) on loopback, and a throttling
// reverse proxy in front of it so that pulls last long enough to watch.
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { freePort } from '../../test-support/net.js';
import { startService, waitReady } from './process.js';

export interface Registry {
  /** 127.0.0.1:PORT */
  host: string;
  stop(): Promise<void>;
}

export async function startRegistry(dir: string): Promise<Registry> {
  mkdirSync(join(dir, 'data'), { recursive: true });
  const port = await freePort();
  const cfg = join(dir, 'registry.yml');
  writeFileSync(
    cfg,
    [
      'version: 0.1',
      'log:',
      '  level: warn',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${join(dir, 'data')}`,
      'http:',
      `  addr: 127.0.0.1:${port}`,
      '',
    ].join('\n'),
  );
  const svc = startService('docker-registry', ['serve', cfg], join(dir, 'registry.log'));
  const host = `127.0.0.1:${port}`;
  await waitReady('docker-registry', svc, async () => (await fetch(`http://${host}/v2/`)).ok);
  return { host, stop: () => svc.stop() };
}

export interface Throttle {
  /** 127.0.0.1:PORT */
  host: string;
  /** Bytes per second through the one shared bucket; 0 holds every body (a stalled registry). */
  setRate(bytesPerSecond: number): void;
  /** Cuts every open connection, as a registry or network that drops mid-layer. */
  dropConnections(): void;
  /** Answers every request with 503 (a registry that is down), or serves again. */
  setDown(down: boolean): void;
  bytesSent(): number;
  stop(): Promise<void>;
}

const PIECE = 64 * 1024;

/**
 * Paces response bodies in 64 KiB pieces through one token bucket shared by all connections,
 * so concurrent layer downloads share the rate like they share a real link.
 */
export async function startThrottle(upstream: string, bytesPerSecond: number): Promise<Throttle> {
  let rate = bytesPerSecond;
  let tokens = PIECE;
  let last = Date.now();
  let sent = 0;
  let down = false;
  const sockets = new Set<Socket>();

  // A bucket of two pieces: a steady rate with no burst to skew a measured rate or ETA.
  const refill = () => {
    const now = Date.now();
    tokens = Math.min(2 * PIECE, tokens + ((now - last) / 1000) * rate);
    last = now;
  };
  const take = async (n: number): Promise<void> => {
    for (;;) {
      refill();
      if (rate > 0 && tokens >= n) {
        tokens -= n;
        return;
      }
      const wait = rate > 0 ? Math.max(5, ((n - tokens) / rate) * 1000) : 100;
      await new Promise((r) => setTimeout(r, wait));
    }
  };

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    if (down) {
      res.writeHead(503, { 'content-type': 'text/plain' }).end('registry down (throttle)\n');
      return;
    }
    const up = request(
      {
        host: upstream.split(':')[0],
        port: Number(upstream.split(':')[1]),
        path: req.url,
        method: req.method,
        headers: req.headers,
      },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pause();
        const pump = async () => {
          for await (const chunk of upRes as AsyncIterable<Buffer>) {
            for (let off = 0; off < chunk.length; off += PIECE) {
              const piece = chunk.subarray(off, off + PIECE);
              await take(piece.length);
              if (res.destroyed) return;
              sent += piece.length;
              if (!res.write(piece)) await new Promise((r) => res.once('drain', r));
            }
          }
          res.end();
        };
        pump().catch(() => res.destroy());
      },
    );
    up.on('error', () => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
    req.pipe(up);
  };
  const server: Server = createServer(handler);
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    host,
    setRate(n) {
      refill();
      rate = n;
    },
    dropConnections() {
      for (const s of sockets) s.destroy();
    },
    setDown(d) {
      down = d;
    },
    bytesSent: () => sent,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
