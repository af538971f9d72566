// Every change of pods and events on the API server, as a list + watch sees it: what tests count
// the node agent's writes with (each write that changes a pod is one MODIFIED event, as the API
// server stores it), follow a pod's states with, and read pods from without a round trip.
//
//   const feed = await startChangeFeed({ url, tls });
//   const off = feed.subscribe((c) => { if (c.resource.resource === 'pods') ... c.object, c.oldObject });
//   feed.pod('ns', 'web');    // the latest state seen, or null
//
// Plain JSON over HTTPS (no client library: objects stay as the API server sent them, timestamps
// as strings). A watch that ends or fails (API server restarted, 410 Gone) is followed by a new
// list, whose differences from what was seen are delivered as changes, then a new watch.
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import type { IncomingMessage } from 'node:http';

/** Object metadata as the API server sends it (the fields tests read). */
export interface ChangeMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  [key: string]: unknown;
}

/** Any object: a pod or an event, as JSON. */
export interface ChangeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ChangeMeta;
  [key: string]: unknown;
}

/** One change, as the watch delivered it. */
export interface Change {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  resource: { resource: 'pods' | 'events' };
  object: ChangeObject;
  /** The object as last seen before a MODIFIED or DELETED (pods only). */
  oldObject?: ChangeObject;
  /** The object's metadata.resourceVersion, as a number. */
  resourceVersion: number;
  /** Date.now() when it arrived. */
  at: number;
}

export interface ChangeFeedOptions {
  /** `https://127.0.0.1:PORT` of the API server. */
  url: string;
  /** PEM paths: the CA, and a client certificate allowed to list and watch pods and events everywhere. */
  tls: { ca: string; cert: string; key: string };
}

export interface ChangeFeed {
  subscribe(fn: (c: Change) => void): () => void;
  /** The pod as last seen, or null. */
  pod(namespace: string, name: string): ChangeObject | null;
  stop(): void;
}

const RESOURCES = [
  { resource: 'pods' as const, path: '/api/v1/pods', keep: true },
  { resource: 'events' as const, path: '/api/v1/events', keep: false },
];

const keyOf = (o: ChangeObject) => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;

/** Lists and watches pods and events; resolves once both watches run. */
export async function startChangeFeed(opts: ChangeFeedOptions): Promise<ChangeFeed> {
  const agent = new Agent({
    keepAlive: true,
    ca: readFileSync(opts.tls.ca),
    cert: readFileSync(opts.tls.cert),
    key: readFileSync(opts.tls.key),
  });
  const subscribers = new Set<(c: Change) => void>();
  const pods = new Map<string, ChangeObject>();
  /** Events seen (uid → resourceVersion), so a new list does not deliver them again. */
  const events = new Map<string, string>();
  const open = new Set<IncomingMessage>();
  let stopped = false;

  const emit = (c: Change) => {
    for (const fn of subscribers) fn(c);
  };
  const rvOf = (o: ChangeObject) => Number(o.metadata?.resourceVersion ?? 0);

  const apply = (r: (typeof RESOURCES)[number], type: Change['type'], object: ChangeObject) => {
    const at = Date.now();
    if (r.keep) {
      const key = keyOf(object);
      const old = pods.get(key);
      if (type === 'DELETED') pods.delete(key);
      else pods.set(key, object);
      // A re-list can deliver as ADDED a pod already known: it is a MODIFIED (or nothing).
      if (type !== 'DELETED' && old !== undefined) {
        if (old.metadata?.resourceVersion === object.metadata?.resourceVersion) return;
        type = 'MODIFIED';
      }
      emit({
        type,
        resource: { resource: r.resource },
        object,
        ...(old === undefined ? {} : { oldObject: old }),
        resourceVersion: rvOf(object),
        at,
      });
      return;
    }
    const uid = object.metadata?.uid ?? keyOf(object);
    if (type === 'DELETED') {
      events.delete(uid);
    } else {
      if (events.get(uid) === object.metadata?.resourceVersion) return;
      if (type === 'ADDED' && events.has(uid)) type = 'MODIFIED';
      events.set(uid, object.metadata?.resourceVersion ?? '');
    }
    emit({ type, resource: { resource: r.resource }, object, resourceVersion: rvOf(object), at });
  };

  const get = (path: string): Promise<{ status: number; body: string }> =>
    new Promise((resolve, reject) => {
      const u = new URL(path, opts.url);
      const req = request(
        { host: u.hostname, port: u.port, path: `${u.pathname}${u.search}`, agent, timeout: 10_000 },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`GET ${path}: no answer in 10 s`)));
      req.on('error', reject);
      req.end();
    });

  /** Lists `r`, delivers the differences from what was seen, returns the list's resourceVersion. */
  const list = async (r: (typeof RESOURCES)[number]): Promise<string> => {
    const res = await get(r.path);
    if (res.status !== 200) throw new Error(`GET ${r.path} → ${res.status}: ${res.body.slice(0, 200)}`);
    const l = JSON.parse(res.body) as { metadata?: { resourceVersion?: string }; items?: ChangeObject[] };
    const kind = r.resource === 'pods' ? 'Pod' : 'Event';
    const items = (l.items ?? []).map((o) => ({ apiVersion: 'v1', kind, ...o }));
    if (r.keep) {
      const now = new Set(items.map(keyOf));
      for (const [key, old] of [...pods]) if (!now.has(key)) apply(r, 'DELETED', old);
    }
    for (const o of items) apply(r, 'ADDED', o);
    return l.metadata?.resourceVersion ?? '';
  };

  /** Watches `r` from `rv` until the stream ends; resolves then (or rejects when it cannot start). */
  const watchOnce = (r: (typeof RESOURCES)[number], rv: string, started: () => void): Promise<void> =>
    new Promise((resolve, reject) => {
      const u = new URL(
        `${r.path}?watch=1&allowWatchBookmarks=true&resourceVersion=${encodeURIComponent(rv)}`,
        opts.url,
      );
      const req = request(
        { host: u.hostname, port: u.port, path: `${u.pathname}${u.search}`, agent },
        (res) => {
          if (res.statusCode !== 200) {
            res.resume();
            reject(new Error(`watch ${r.path} → ${res.statusCode ?? 0}`));
            return;
          }
          open.add(res);
          started();
          let buf = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => {
            buf += d;
            let nl: number;
            while ((nl = buf.indexOf('\n')) >= 0) {
              const line = buf.slice(0, nl).trim();
              buf = buf.slice(nl + 1);
              if (line === '') continue;
              const ev = JSON.parse(line) as { type: string; object: ChangeObject };
              if (ev.type === 'ADDED' || ev.type === 'MODIFIED' || ev.type === 'DELETED') {
                apply(r, ev.type, ev.object);
              } else if (ev.type === 'ERROR') {
                // 410 Gone (too old a resourceVersion) and the like: list again.
                res.destroy();
              }
            }
          });
          const done = () => {
            open.delete(res);
            resolve();
          };
          res.on('end', done);
          res.on('close', done);
          res.on('error', done);
        },
      );
      req.on('error', (err) => reject(err));
      req.end();
    });

  /** List, watch, and again after every end, until stop(). Resolves `ready` at the first watch. */
  const follow = (r: (typeof RESOURCES)[number], ready: () => void, failed: (e: unknown) => void) => {
    let first = true;
    void (async () => {
      while (!stopped) {
        try {
          const rv = await list(r);
          await watchOnce(r, rv, ready);
          first = false;
        } catch (err) {
          if (first) {
            failed(err);
            return;
          }
          // The API server is down or restarting: try again shortly.
          await new Promise((res) => setTimeout(res, 500));
        }
      }
    })();
  };

  await Promise.all(
    RESOURCES.map(
      (r) =>
        new Promise<void>((resolve, reject) => {
          follow(r, resolve, reject);
        }),
    ),
  );

  return {
    subscribe: (fn) => {
      subscribers.add(fn);
      return () => subscribers.delete(fn);
    },
    pod: (namespace, name) => pods.get(`${namespace}/${name}`) ?? null,
    stop: () => {
      stopped = true;
      for (const res of open) res.destroy();
      agent.destroy();
    },
  };
}
