// Which URLs to ask for a registry host, read from containerd's registry configuration
// directories (the CRI's `config_path`, e.g. /etc/containerd/certs.d) exactly as containerd
// reads them (core/remotes/docker/config/hosts.go, docs/hosts.md), so the agent asks the
// mirrors and servers the node's pulls go to, in the same order, with the same TLS rules.
//
// `parseHostsToml` and `endpointsFor` are pure; `loadEndpoints` is the file-reading shell.
import { asRecord } from '../../common/json.js';
import { readdir, readFile, stat } from 'node:fs/promises';
import { isIP } from 'node:net';
import { isAbsolute, join, posix } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { PulltraceError } from '../../common/errors.js';

/** What a host may be asked to do (hosts.toml `capabilities`; all three when unset). */
export interface Capabilities {
  pull: boolean;
  resolve: boolean;
  push: boolean;
}

/** One entry of a hosts.toml before defaults: a `[host."URL"]` table, or the root (`server`). */
export interface HostEntry {
  /** "" when the entry names no host (a root with no `server`): the namespace's default then. */
  scheme: string;
  host: string;
  path: string;
  capabilities: Capabilities;
  /** null when unset (which matters: any TLS setting makes an http host try https first). */
  skipVerify: boolean | null;
  /** Absolute paths. */
  caFiles: string[] | null;
  /** [certificate, key] absolute paths; key "" when the certificate file holds it too. */
  clientPairs: [string, string][] | null;
  headers: Record<string, string[]>;
  /** `dial_timeout` was set (we keep our own timeout, but it counts as TLS configuration). */
  dialTimeoutSet: boolean;
}

/** A URL the client will try, with everything needed to talk to it. */
export interface Endpoint {
  scheme: 'http' | 'https';
  /** host[:port] as written in the URL. */
  host: string;
  /** API root, "/v2" unless `override_path`. */
  path: string;
  capabilities: Capabilities;
  skipVerify: boolean;
  /**
   * Try https first and fall back to plain http when the TLS handshake fails: containerd's
   * HTTP fallback for an http host with TLS settings on a port other than 80, and for a
   * loopback registry with a port and no configuration.
   */
  httpFallback: boolean;
  caFiles: string[];
  clientPairs: [string, string][];
  headers: Record<string, string[]>;
}

const ALL: Capabilities = { pull: true, resolve: true, push: true };

function configError(detail: string, cause?: unknown): PulltraceError {
  return new PulltraceError('PT_REGISTRY_CONFIG', detail, cause === undefined ? undefined : { cause });
}

const record = asRecord;

function absPath(p: string, baseDir: string): string {
  return isAbsolute(p) ? p : join(baseDir, p);
}

function stringList(v: unknown, what: string): string[] {
  if (!Array.isArray(v) || !v.every((x): x is string => typeof x === 'string')) {
    throw new Error(`${what} must be a string or a list of strings`);
  }
  return v;
}

/**
 * Scheme, host[:port] as written and API path of a `server` or `[host."URL"]` key, as
 * containerd's parseHostConfig reads it ("https://" assumed); throws plain Errors.
 */
function serverParts(server: string, overridePath: boolean): Pick<HostEntry, 'scheme' | 'host' | 'path'> {
  const withScheme = server.startsWith('http') ? server : `https://${server}`;
  let u: URL;
  try {
    u = new URL(withScheme);
  } catch (err) {
    throw new Error(`unable to parse server ${server}`, { cause: err });
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`unsupported scheme in ${server}`);
  const scheme = u.protocol.slice(0, -1);
  // As written: WHATWG URL drops a default port (":80", ":443") that Go keeps and containerd looks at.
  const written = /^[a-z]+:\/\/(?:[^@/?#]*@)?([^/?#]*)/i.exec(withScheme)?.[1] ?? '';
  const defaultPort = /:(?:80|443)$/.exec(written)?.[0];
  const host = u.port === '' && defaultPort !== undefined ? `${u.host}${defaultPort}` : u.host;
  // Go's url.Parse leaves the path empty for "https://host"; WHATWG URL says "/". Tell them apart.
  const rawPath = withScheme.replace(/^[a-z]+:\/\/[^/?#]*/i, '').replace(/[?#].*$/, '');
  if (rawPath === '') return { scheme, host, path: overridePath ? '' : '/v2' };
  // path.Clean, then "/v2" appended unless it is there already or override_path says not to.
  let p = posix.normalize(u.pathname).replace(/(.)\/+$/, '$1');
  if (!p.endsWith('/v2') && !overridePath) p = `${p === '/' ? '' : p}/v2`;
  return { scheme, host, path: p };
}

/** The `capabilities` list; all three when it is empty. Throws for an unknown capability. */
function capabilitiesOf(v: unknown): Capabilities {
  const caps = stringList(v, 'capabilities');
  if (caps.length === 0) return { ...ALL };
  const out: Capabilities = { pull: false, resolve: false, push: false };
  for (const c of caps) {
    const k = c.toLowerCase();
    if (k !== 'pull' && k !== 'resolve' && k !== 'push') throw new Error(`unknown capability ${c}`);
    out[k] = true;
  }
  return out;
}

/** The `client` value (a path, a list of paths, or a list of [certificate, key] pairs) as absolute pairs. */
function clientPairsOf(v: unknown, baseDir: string): [string, string][] {
  const items = typeof v === 'string' ? [v] : Array.isArray(v) ? (v as unknown[]) : null;
  if (items === null) throw new Error('client must be a path, a list of paths or a list of pairs');
  return items.map((item): [string, string] => {
    if (typeof item === 'string') return [absPath(item, baseDir), ''];
    const pair = stringList(item, 'client pair');
    if (pair.length !== 2) throw new Error('a client pair must have two paths');
    return [absPath(pair[0] ?? '', baseDir), absPath(pair[1] ?? '', baseDir)];
  });
}

/** The `header` table (absent → none), each value a string or a list of strings. */
function headersOf(v: unknown): Record<string, string[]> {
  const header = record(v);
  if (v !== undefined && header === null) throw new Error('header must be a table');
  const headers: Record<string, string[]> = {};
  for (const [k, value] of Object.entries(header ?? {})) {
    headers[k] = typeof value === 'string' ? [value] : stringList(value, `header ${k}`);
  }
  return headers;
}

/** True when `dial_timeout` is set; throws unless it is a Go duration. */
function dialTimeoutSet(v: unknown): boolean {
  if (v === undefined) return false;
  if (typeof v !== 'string' || !/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(v)) {
    throw new Error('dial_timeout must be a Go duration such as "1s"');
  }
  return true;
}

/** One host table (or the root table, for `server`) as containerd's parseHostConfig reads it; throws plain Errors. */
function hostEntry(server: string, baseDir: string, t: Record<string, unknown>): HostEntry {
  // Checked in this order (server, skip_verify, capabilities, ca, client, header, dial_timeout):
  // the first bad value is the one reported.
  const address =
    server === '' ? { scheme: '', host: '', path: '' } : serverParts(server, t.override_path === true);
  let skipVerify: boolean | null = null;
  if (t.skip_verify !== undefined) {
    if (typeof t.skip_verify !== 'boolean') throw new Error('skip_verify must be true or false');
    skipVerify = t.skip_verify;
  }
  const capabilities = t.capabilities === undefined ? { ...ALL } : capabilitiesOf(t.capabilities);
  const caFiles =
    t.ca === undefined
      ? null
      : (typeof t.ca === 'string' ? [t.ca] : stringList(t.ca, 'ca')).map((p) => absPath(p, baseDir));
  const clientPairs = t.client === undefined ? null : clientPairsOf(t.client, baseDir);
  const headers = headersOf(t.header);
  return {
    ...address,
    capabilities,
    skipVerify,
    caFiles,
    clientPairs,
    headers,
    dialTimeoutSet: dialTimeoutSet(t.dial_timeout),
  };
}

/**
 * Parses one hosts.toml: its `[host."URL"]` tables in file order, then the root entry
 * (`server`, or no host when unset) last. Relative paths are taken from `baseDir`.
 * Throws an Error (not coded: the caller falls back as containerd does) for bad TOML, an
 * unknown capability, or a value of the wrong type.
 */
export function parseHostsToml(text: string, baseDir: string): HostEntry[] {
  const doc = parseToml(text) as Record<string, unknown>;
  const out: HostEntry[] = [];
  const hosts = record(doc.host);
  if (doc.host !== undefined && hosts === null) throw new Error('host must be a table');
  for (const [url, t] of Object.entries(hosts ?? {})) {
    const table = record(t);
    if (table === null) throw new Error(`host ${url} must be a table`);
    out.push(hostEntry(url, baseDir, table));
  }
  if (doc.server !== undefined && typeof doc.server !== 'string') throw new Error('server must be a string');
  out.push(hostEntry(typeof doc.server === 'string' ? doc.server : '', baseDir, doc));
  return out;
}

/** Splits "host:port" or "[v6]:port" as Go's net.SplitHostPort; no port → the input and "". */
function splitHostPort(hostPort: string): { host: string; port: string } {
  const v6 = /^\[([^\]]*)\]:(\d*)$/.exec(hostPort);
  if (v6 !== null) return { host: v6[1] ?? '', port: v6[2] ?? '' };
  const m = /^([^:[\]]*):(\d*)$/.exec(hostPort);
  if (m !== null) return { host: m[1] ?? '', port: m[2] ?? '' };
  return { host: hostPort, port: '' };
}

/** containerd's docker.IsLocalhost: "localhost" or a loopback IP (127.0.0.0/8, ::1), port or not. */
export function isLocalhost(hostPort: string): boolean {
  const { host } = splitHostPort(hostPort);
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.split('.')[0] === '127';
  if (isIP(host) === 6) {
    const canonical = new URL(`http://[${host}]/`).hostname;
    return canonical === '[::1]' || /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(canonical);
  }
  return false;
}

/**
 * The endpoints containerd would use for registry host `namespace` (host[:port] of the
 * reference) given the entries of its hosts.toml (null when no configuration applies):
 * configured hosts in order, then the server; a missing server is the namespace itself —
 * https://registry-1.docker.io for docker.io; for a loopback host, https with verification
 * off when it has no port or port 443, plain http on port 80, and otherwise http tried as https
 * first; https for everything else.
 */
export function endpointsFor(namespace: string, entries: HostEntry[] | null): Endpoint[] {
  const list: HostEntry[] = entries === null ? [hostEntry('', '/', {})] : entries.map((e) => ({ ...e }));
  const last = list[list.length - 1];
  if (last !== undefined && last.host === '') {
    if (namespace === 'docker.io') {
      last.scheme = 'https';
      last.host = 'registry-1.docker.io';
    } else if (isLocalhost(namespace)) {
      last.host = namespace;
      const port = splitHostPort(namespace).port;
      last.scheme = port === '' || port === '443' ? 'https' : 'http';
      if (port !== '80') last.skipVerify = true;
    } else {
      last.host = namespace;
      last.scheme = 'https';
    }
    last.path = '/v2';
    last.capabilities = { ...ALL };
  }
  return list.map((e) => {
    const explicitTls =
      e.caFiles !== null || e.clientPairs !== null || e.skipVerify !== null || e.dialTimeoutSet;
    const fallback = e.scheme === 'http' && explicitTls && splitHostPort(e.host).port !== '80';
    return {
      scheme: fallback || e.scheme === 'https' ? 'https' : 'http',
      host: e.host,
      path: e.path,
      capabilities: e.capabilities,
      skipVerify: e.skipVerify === true,
      httpFallback: fallback,
      caFiles: e.caFiles ?? [],
      clientPairs: e.clientPairs ?? [],
      headers: e.headers,
    };
  });
}

/**
 * The directories containerd looks in, in order, for `namespace` under one root: "host_port_"
 * (for a host with a port), "host:port" or "host", then "_default".
 */
export function hostDirCandidates(root: string, namespace: string): string[] {
  const out: string[] = [];
  const idx = namespace.lastIndexOf(':');
  if (idx > 0) out.push(join(root, `${namespace.slice(0, idx)}_${namespace.slice(idx + 1)}_`));
  out.push(join(root, namespace), join(root, '_default'));
  return out;
}

function errno(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

/** Docker's certificate layout, which containerd reads when a host directory has no hosts.toml. */
async function certFileEntry(dir: string): Promise<HostEntry[]> {
  const entry = hostEntry('', dir, {});
  let names: string[];
  try {
    names = (await readdir(dir, { withFileTypes: true })).filter((d) => !d.isDirectory()).map((d) => d.name);
  } catch (err) {
    if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') return [entry];
    throw configError(`cannot list ${dir}`, err);
  }
  for (const name of names.sort()) {
    if (name.endsWith('.crt')) (entry.caFiles ??= []).push(join(dir, name));
    if (name.endsWith('.cert')) {
      const key = `${name.slice(0, -'.cert'.length)}.key`;
      (entry.clientPairs ??= []).push([join(dir, name), names.includes(key) ? join(dir, key) : '']);
    }
  }
  return [entry];
}

/**
 * Reads the configuration for `namespace` from containerd's config_path roots (tried in order;
 * the first directory found wins, `_default` included) and returns its endpoints.
 *
 * A hosts.toml that does not parse is reported through `onWarning` and, as containerd does,
 * replaced by the directory's certificate files. Throws PT_REGISTRY_CONFIG only when a path
 * exists but cannot be read (permissions), where containerd fails the pull too.
 */
export async function loadEndpoints(
  roots: readonly string[],
  namespace: string,
  onWarning: (message: string, err: unknown) => void = () => undefined,
): Promise<Endpoint[]> {
  for (const root of roots) {
    if (root === '') continue;
    for (const dir of hostDirCandidates(root, namespace)) {
      try {
        await stat(dir);
      } catch (err) {
        if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') continue;
        throw configError(`cannot read ${dir}`, err);
      }
      const file = join(dir, 'hosts.toml');
      let text = '';
      try {
        text = await readFile(file, 'utf8');
      } catch (err) {
        if (errno(err) !== 'ENOENT' && errno(err) !== 'ENOTDIR')
          throw configError(`cannot read ${file}`, err);
      }
      if (text === '') return endpointsFor(namespace, await certFileEntry(dir));
      try {
        return endpointsFor(namespace, parseHostsToml(text, dir));
      } catch (err) {
        onWarning(`${file} is not valid; using the directory's certificate files as containerd does`, err);
        return endpointsFor(namespace, await certFileEntry(dir));
      }
    }
  }
  return endpointsFor(namespace, null);
}

/**
 * The endpoints for a request: those with the capability it needs (a tag needs `pull` and
 * `resolve`; a digest only `pull`), in order, as containerd's resolver filters them.
 */
export function endpointsWith(endpoints: readonly Endpoint[], needResolve: boolean): Endpoint[] {
  return endpoints.filter((e) => e.capabilities.pull && (!needResolve || e.capabilities.resolve));
}
