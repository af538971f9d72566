// The HTTP face of the control-plane stand-in (node:http): routes the Kubernetes REST paths to
// the store, negotiates the Table and PartialObjectMetadata forms kubectl asks for, streams
// watches as chunked JSON lines, and answers every error with a v1 Status.
//   /version /healthz /readyz /livez /api /api/v1 /apis /apis/G /apis/G/V /openapi/v3[/...]
//   /api/v1[/watch]/[namespaces/NS/]RESOURCE[/NAME[/status|/binding]]   (and /apis/G/V/...)
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../../common/logging.js';
import {
  ApiError,
  badRequest,
  invalid,
  methodNotAllowed,
  notFoundPath,
  unsupportedMediaType,
} from './api-error.js';
import {
  coreVersions,
  groupDoc,
  groupList,
  openApiDocs,
  openApiIndex,
  resourceList,
  versionInfo,
} from './discovery.js';
import { applyPatchOfType, isObject, isPatchType, PATCH_TYPES } from './patch.js';
import { decodeKubeProtobuf, PROTOBUF_CONTENT_TYPE } from './protobuf.js';
import type { ResourceType } from './resources.js';
import type { Store, WatchOptions } from './store.js';
import type { FaultInjector } from './faults.js';
import { parseFaultPath } from './faults.js';
import { defaultTable } from './table.js';
import type { JsonObject, KubeObject, WatchEvent } from './types.js';
import { unknownFields } from './validation.js';

const MAX_BODY = 3 * 1024 * 1024;

export interface ApiHandlerOptions {
  store: Store;
  /** host:port clients reach the server at (for /api's serverAddressByClientCIDRs). */
  serverAddress: () => string;
  logger: Logger;
  now?: () => Date;
  /** Fault injection (faults.ts): a matching request is answered with its error, unrouted. */
  faults?: FaultInjector;
}

/** The request handler plus a way to end every open watch stream (on shutdown). */
export interface ApiHandler {
  handle(req: IncomingMessage, res: ServerResponse): void;
  closeWatches(): void;
}

interface ResourcePath {
  type: ResourceType;
  namespace?: string;
  name?: string;
  subresource?: string;
  watch: boolean;
}

/** What the client accepts: plain JSON, a Table, or PartialObjectMetadata(List). */
type Form =
  { kind: 'json' } | { kind: 'table'; apiVersion: string } | { kind: 'metadata'; apiVersion: string };

function negotiate(accept: string | undefined): Form {
  for (const part of (accept ?? '').split(',')) {
    const [media = '', ...params] = part.split(';').map((s) => s.trim());
    const p = new Map(params.map((kv) => [kv.split('=')[0] ?? '', kv.split('=')[1] ?? '']));
    const as = p.get('as');
    if (as === undefined) {
      if (media === 'application/json' || media === '*/*' || media === 'application/*')
        return { kind: 'json' };
      continue;
    }
    if (p.get('g') !== 'meta.k8s.io' || !['v1', 'v1beta1'].includes(p.get('v') ?? '')) continue;
    const apiVersion = `meta.k8s.io/${p.get('v') ?? 'v1'}`;
    if (as === 'Table') return { kind: 'table', apiVersion };
    if (as === 'PartialObjectMetadata' || as === 'PartialObjectMetadataList')
      return { kind: 'metadata', apiVersion };
  }
  return { kind: 'json' };
}

function partial(o: KubeObject, apiVersion: string): KubeObject {
  return { kind: 'PartialObjectMetadata', apiVersion, metadata: o.metadata ?? {} };
}

function send(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res
    .writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
    .end(text);
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new ApiError(413, 'RequestEntityTooLarge', 'Request entity too large: limit is 3145728'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      resolve(Buffer.concat(chunks));
    });
    req.on('error', reject);
  });
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const text = (await readBody(req)).toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw badRequest(
      `couldn't get version/kind; json parse error: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
}

const TOP_LEVEL = ['apiVersion', 'kind', 'metadata', 'spec', 'status'];

function selectorString(sel: unknown): string {
  if (!isObject(sel)) return '';
  const parts = Object.entries(isObject(sel.matchLabels) ? sel.matchLabels : {}).map(
    ([k, v]) => `${k}=${String(v)}`,
  );
  for (const e of Array.isArray(sel.matchExpressions) ? (sel.matchExpressions as JsonObject[]) : []) {
    const values = Array.isArray(e.values) ? (e.values as string[]).join(',') : '';
    const key = String(e.key);
    const op = String(e.operator);
    parts.push(
      op === 'Exists' ? key : op === 'DoesNotExist' ? `!${key}` : `${key} ${op.toLowerCase()} (${values})`,
    );
  }
  return parts.join(',');
}

/** The autoscaling/v1 Scale of an object with spec.replicas and spec.selector. */
function toScale(o: KubeObject): KubeObject {
  const spec = isObject(o.spec) ? o.spec : {};
  const status = isObject(o.status) ? o.status : {};
  const m = o.metadata ?? {};
  return {
    kind: 'Scale',
    apiVersion: 'autoscaling/v1',
    metadata: {
      name: m.name,
      namespace: m.namespace,
      uid: m.uid,
      resourceVersion: m.resourceVersion,
      creationTimestamp: m.creationTimestamp,
    },
    spec: { replicas: typeof spec.replicas === 'number' ? spec.replicas : 0 },
    status: {
      replicas: typeof status.replicas === 'number' ? status.replicas : 0,
      selector: selectorString(spec.selector),
    },
  };
}

/** Answers `req` with the fault in force if it matches (true), the body drained unread. */
function answerFault(faults: FaultInjector, req: IncomingMessage, res: ServerResponse): boolean {
  const url = new URL(req.url ?? '/', 'http://stand-in');
  const err = faults.check({
    method: req.method ?? 'GET',
    path: url.pathname,
    query: url.searchParams,
    headers: req.headers,
    ...parseFaultPath(url.pathname),
  });
  if (err === null) return false;
  req.resume();
  const retry = err.status.details?.retryAfterSeconds;
  if (retry !== undefined) res.setHeader('retry-after', String(retry));
  send(res, err.code, err.status);
  return true;
}

export function createApiHandler(opts: ApiHandlerOptions): ApiHandler {
  const { store, logger } = opts;
  const now = opts.now ?? (() => new Date());
  const openWatches = new Set<() => void>();

  function parseResourcePath(group: string, version: string, segs: string[]): ResourcePath {
    let watch = false;
    let s = segs;
    if (s[0] === 'watch') {
      watch = true;
      s = s.slice(1);
    }
    const find = (resource: string | undefined): ResourceType | undefined =>
      resource === undefined
        ? undefined
        : store
            .resourceTypes()
            .find((t) => t.group === group && t.version === version && t.resource === resource);
    const nsType = s[0] === 'namespaces' && s.length >= 3 ? find(s[2]) : undefined;
    if (nsType?.namespaced === true) {
      if (s.length > 5) throw notFoundPath();
      return { type: nsType, namespace: s[1], name: s[3], subresource: s[4], watch };
    }
    const type = find(s[0]);
    if (type === undefined || s.length > 3 || (type.namespaced && s.length > 1)) throw notFoundPath();
    return { type, name: s[1], subresource: s[2], watch };
  }

  function toTable(
    type: ResourceType,
    objects: KubeObject[],
    form: { apiVersion: string },
    rv: string,
    include: string,
  ): JsonObject {
    const { columns, rows } = (type.table ?? defaultTable)(objects, now());
    return {
      kind: 'Table',
      apiVersion: form.apiVersion,
      metadata: { resourceVersion: rv },
      columnDefinitions: columns,
      rows: rows.map((cells, i) => {
        const o = objects[i] ?? {};
        return {
          cells,
          ...(include === 'None' ? {} : { object: include === 'Object' ? o : partial(o, form.apiVersion) }),
        };
      }),
    };
  }

  function render(type: ResourceType, obj: KubeObject, form: Form, include: string): unknown {
    if (form.kind === 'table')
      return toTable(type, [obj], form, obj.metadata?.resourceVersion ?? '', include);
    if (form.kind === 'metadata') return partial(obj, form.apiVersion);
    return obj;
  }

  function serveWatch(
    req: IncomingMessage,
    res: ServerResponse,
    p: ResourcePath,
    q: URLSearchParams,
    form: Form,
  ): void {
    const fieldSelector = [
      q.get('fieldSelector') ?? '',
      p.name === undefined ? '' : `metadata.name=${p.name}`,
    ]
      .filter((s) => s !== '')
      .join(',');
    const wopts: WatchOptions = {
      ...(p.namespace === undefined ? {} : { namespace: p.namespace }),
      labelSelector: q.get('labelSelector') ?? '',
      fieldSelector,
      resourceVersion: q.get('resourceVersion') ?? '',
      allowWatchBookmarks: q.get('allowWatchBookmarks') === 'true',
      sendInitialEvents: q.get('sendInitialEvents') === 'true',
    };
    const include = q.get('includeObject') ?? 'Metadata';
    const buffered: WatchEvent[] = [];
    let started = false;
    const write = (e: WatchEvent) => {
      if (!started) {
        buffered.push(e);
        return;
      }
      const object =
        form.kind === 'json' || e.type === 'BOOKMARK' || e.type === 'ERROR'
          ? e.object
          : render(p.type, e.object, form, include);
      res.write(`${JSON.stringify({ type: e.type, object })}\n`);
    };
    let watcher: { stop(): void };
    try {
      watcher = store.watch(p.type, wopts, write);
    } catch (err) {
      if (err instanceof ApiError && err.code === 410) {
        // As the API server: the watch starts, then says why it cannot go on.
        res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
        res.end(`${JSON.stringify({ type: 'ERROR', object: err.status })}\n`);
        return;
      }
      throw err;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    started = true;
    for (const e of buffered.splice(0)) write(e);
    let timer: NodeJS.Timeout | undefined;
    const close = () => {
      watcher.stop();
      if (timer !== undefined) clearTimeout(timer);
      openWatches.delete(close);
      if (!res.writableEnded) res.end();
    };
    openWatches.add(close);
    const timeout = Number(q.get('timeoutSeconds') ?? '');
    if (Number.isFinite(timeout) && timeout > 0) timer = setTimeout(close, timeout * 1000);
    req.on('close', close);
    res.on('close', close);
  }

  async function serveResource(
    req: IncomingMessage,
    res: ServerResponse,
    p: ResourcePath,
    q: URLSearchParams,
  ): Promise<void> {
    const method = req.method ?? 'GET';
    const form = negotiate(req.headers.accept);
    const include = q.get('includeObject') ?? 'Metadata';
    const dryRun = q.getAll('dryRun').includes('All');
    const key = { ...(p.namespace === undefined ? {} : { namespace: p.namespace }), name: p.name ?? '' };
    const sub = p.subresource;
    if (sub !== undefined && !(p.type.subresources as readonly string[]).includes(sub)) throw notFoundPath();

    if (p.name === undefined) {
      if (method === 'GET' && (p.watch || q.get('watch') === 'true' || q.get('watch') === '1')) {
        serveWatch(req, res, p, q, form);
        return;
      }
      if (method === 'GET') {
        const list = store.list(p.type, {
          ...(p.namespace === undefined ? {} : { namespace: p.namespace }),
          labelSelector: q.get('labelSelector') ?? '',
          fieldSelector: q.get('fieldSelector') ?? '',
        });
        if (form.kind === 'table')
          send(res, 200, toTable(p.type, list.items, form, list.metadata.resourceVersion, include));
        else if (form.kind === 'metadata') {
          send(res, 200, {
            kind: 'PartialObjectMetadataList',
            apiVersion: form.apiVersion,
            metadata: list.metadata,
            items: list.items.map((o) => partial(o, form.apiVersion)),
          });
        } else send(res, 200, list);
        return;
      }
      if (method === 'POST') {
        if (p.namespace === undefined && p.type.namespaced) throw methodNotAllowed();
        const body = await readJsonObject(req, 'application/json');
        strictCheck(p.type, body, q);
        const created = await store.create(p.type, body, {
          ...(p.namespace === undefined ? {} : { namespace: p.namespace }),
          dryRun,
        });
        send(res, 201, created);
        return;
      }
      throw methodNotAllowed();
    }

    if (p.watch) {
      if (method !== 'GET') throw methodNotAllowed();
      serveWatch(req, res, p, q, form);
      return;
    }
    if (sub === 'scale') {
      await serveScale(req, res, p.type, key, dryRun);
      return;
    }
    if (sub === 'binding') {
      if (method !== 'POST') throw methodNotAllowed();
      const body = await readJsonObject(req, 'application/json');
      const target = body.target;
      const node = isObject(target) && typeof target.name === 'string' ? target.name : '';
      if (node === '') throw badRequest('binding target.name is required');
      await store.bindPod(key, node);
      send(res, 201, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 });
      return;
    }
    const subOpt = sub === 'status' ? { subresource: 'status' as const } : {};
    switch (method) {
      case 'GET':
        send(res, 200, render(p.type, store.get(p.type, key), form, include));
        return;
      case 'PUT': {
        const body = await readJsonObject(req, 'application/json');
        strictCheck(p.type, body, q);
        send(res, 200, await store.update(p.type, body, { key, dryRun, ...subOpt }));
        return;
      }
      case 'PATCH': {
        const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim() ?? '';
        if (!isPatchType(type)) throw unsupportedMediaType(type, Object.values(PATCH_TYPES).join(', '));
        const patch = await readJson(req);
        send(res, 200, await store.patch(p.type, key, type, patch, { dryRun, ...subOpt }));
        return;
      }
      case 'DELETE': {
        if (sub !== undefined) throw methodNotAllowed();
        const body = await readJson(req);
        const pre = isObject(body) && isObject(body.preconditions) ? body.preconditions : {};
        const preconditions = {
          ...(typeof pre.uid === 'string' ? { uid: pre.uid } : {}),
          ...(typeof pre.resourceVersion === 'string' ? { resourceVersion: pre.resourceVersion } : {}),
        };
        send(res, 200, await store.delete(p.type, key, { dryRun, preconditions }));
        return;
      }
      default:
        throw methodNotAllowed();
    }
  }

  /**
   * The scale subresource: an autoscaling/v1 Scale read from, and written to, spec.replicas
   * (`kubectl scale` PATCHes it). The write is a merge patch of the object, so a
   * resourceVersion in the Scale is a precondition as usual.
   */
  async function serveScale(
    req: IncomingMessage,
    res: ServerResponse,
    type: ResourceType,
    key: { namespace?: string; name: string },
    dryRun: boolean,
  ): Promise<void> {
    const method = req.method ?? 'GET';
    const current = toScale(store.get(type, key));
    if (method === 'GET') return send(res, 200, current);
    let next: KubeObject;
    if (method === 'PUT') next = await readJsonObject(req, 'application/json');
    else if (method === 'PATCH') {
      const ct = (req.headers['content-type'] ?? '').split(';')[0]?.trim() ?? '';
      if (!isPatchType(ct)) throw unsupportedMediaType(ct, Object.values(PATCH_TYPES).join(', '));
      next = applyPatchOfType(current, ct, await readJson(req));
    } else throw methodNotAllowed();
    const replicas = isObject(next.spec) ? next.spec.replicas : undefined;
    if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0) {
      throw invalid('autoscaling', 'Scale', key.name, [
        {
          type: 'Invalid',
          field: 'spec.replicas',
          value: replicas,
          detail: 'must be greater than or equal to 0',
        },
      ]);
    }
    const rv = next.metadata?.resourceVersion;
    const updated = await store.patch(
      type,
      key,
      PATCH_TYPES.merge,
      { metadata: rv === undefined || rv === '' ? {} : { resourceVersion: rv }, spec: { replicas } },
      { dryRun },
    );
    send(res, 200, toScale(updated));
  }

  /** A JSON body, or a protobuf one of the kinds protobuf.ts decodes. */
  async function readJsonObject(req: IncomingMessage, contentType: string): Promise<KubeObject> {
    const ct = (req.headers['content-type'] ?? contentType).split(';')[0]?.trim() ?? '';
    if (ct === PROTOBUF_CONTENT_TYPE) return decodeKubeProtobuf(await readBody(req));
    if (ct !== 'application/json' && ct !== '*/*') throw unsupportedMediaType(ct);
    const body = await readJson(req);
    if (!isObject(body)) throw badRequest('the body of the request must be a JSON object');
    return body;
  }

  /** fieldValidation=Strict: unknown top-level and metadata fields are a 400, as on the API server. */
  function strictCheck(type: ResourceType, body: KubeObject, q: URLSearchParams): void {
    if (q.get('fieldValidation') !== 'Strict') return;
    if (!['Pod', 'Namespace', 'Node', 'Deployment', 'ReplicaSet'].includes(type.kind)) return;
    const unknown = unknownFields(body, TOP_LEVEL);
    if (unknown.length > 0) {
      throw badRequest(
        `${type.kind} in version "${type.version}" cannot be handled as a ${type.kind}: strict decoding error: ${unknown
          .map((f) => `unknown field "${f}"`)
          .join(', ')}`,
      );
    }
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://stand-in');
    const segs = url.pathname.split('/').filter((s) => s !== '');
    const q = url.searchParams;
    const method = req.method ?? 'GET';
    const types = store.resourceTypes();
    const [first, second, third] = segs;

    if (segs.length === 1 && (first === 'healthz' || first === 'readyz' || first === 'livez')) {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      return;
    }
    if (segs.length === 1 && first === 'version') return send(res, 200, versionInfo());
    if (first === 'openapi' && second === 'v3') {
      const docs = openApiDocs(types);
      if (segs.length === 2) return send(res, 200, openApiIndex(docs));
      const doc = docs.get(segs.slice(2).join('/'));
      if (doc === undefined) throw notFoundPath();
      return send(res, 200, doc);
    }
    if (first === 'api') {
      if (segs.length === 1) return send(res, 200, coreVersions(opts.serverAddress()));
      if (second !== 'v1') throw notFoundPath();
      if (segs.length === 2) {
        if (method !== 'GET') throw methodNotAllowed();
        return send(res, 200, resourceList(types, '', 'v1'));
      }
      return serveResource(req, res, parseResourcePath('', 'v1', segs.slice(2)), q);
    }
    if (first === 'apis') {
      if (segs.length === 1) return send(res, 200, groupList(types));
      const group = second ?? '';
      if (segs.length === 2) {
        const doc = groupDoc(types, group);
        if (doc === null) throw notFoundPath();
        return send(res, 200, doc);
      }
      const version = third ?? '';
      if (segs.length === 3) {
        const list = resourceList(types, group, version);
        if (list === null) throw notFoundPath();
        return send(res, 200, list);
      }
      return serveResource(req, res, parseResourcePath(group, version, segs.slice(3)), q);
    }
    throw notFoundPath();
  }

  return {
    handle(req, res) {
      const started = Date.now();
      if (opts.faults?.active() === true && answerFault(opts.faults, req, res)) return;
      route(req, res).then(
        () => {
          logger.debug(
            { method: req.method, url: req.url, code: res.statusCode, ms: Date.now() - started },
            'request',
          );
        },
        (err: unknown) => {
          const apiErr =
            err instanceof ApiError
              ? err
              : new ApiError(
                  500,
                  'InternalError',
                  `Internal error occurred: ${err instanceof Error ? err.message : String(err)}`,
                );
          if (!(err instanceof ApiError))
            logger.error({ err, method: req.method, url: req.url }, 'request failed');
          else
            logger.debug(
              { method: req.method, url: req.url, code: apiErr.code, msg: apiErr.message },
              'request refused',
            );
          if (res.headersSent) res.end();
          else send(res, apiErr.code, apiErr.status);
        },
      );
    },
    closeWatches() {
      for (const close of [...openWatches]) close();
    },
  };
}
