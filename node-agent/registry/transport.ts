// Manifest requests to a registry's endpoints, as containerd's docker resolver makes them: the
// endpoints tried in configured order, and for each its URL (API root, repository, `ns` for a
// mirror), the Accept header, its TLS settings and headers, the https→http fallback, and the
// anonymous Bearer token flow on a 401 (tokens kept for their stated lifetime). Answers other
// than 2xx become coded errors.
import { readFile } from 'node:fs/promises';
import { posix } from 'node:path';
import { PulltraceError, type ErrorCode } from '../../common/errors.js';
import type { ImageRef } from '../../common/image-ref.js';
import { bearerChallenge, parseTokenResponse, tokenUrl } from './auth.js';
import { TtlCache } from './cache.js';
import { endpointsWith, loadEndpoints, type Endpoint } from './hosts.js';
import { exchange, isTlsHandshakeError, shortUrl, type Reply, type TlsOptions } from './http.js';
import { MANIFEST_ACCEPT } from './manifest.js';

/** What a Transport is built with (RegistryClient passes its own options down). */
export interface TransportOptions {
  /** containerd's registry config_path roots, in order. */
  configPath: readonly string[];
  /** Told about an invalid hosts.toml (which is then ignored, as containerd ignores it). */
  onWarning: (message: string, err: unknown) => void;
  /** Deadline of one HTTP exchange, milliseconds. */
  timeoutMs: number;
  /** Largest body read, bytes. */
  maxBodyBytes: number;
  /** User-Agent header of every request. */
  userAgent: string;
  /** Tokens kept (by endpoint and repository). */
  maxEntries: number;
  /** Clock for token lifetimes, milliseconds. */
  now: () => number;
}

/** How far a failure got, to report the most telling one when every host failed (as containerd does). */
const PRIORITY: Partial<Record<ErrorCode, number>> = {
  PT_REGISTRY_UNAVAILABLE: 1,
  PT_REGISTRY_TIMEOUT: 1,
  PT_REGISTRY_NOT_FOUND: 2,
  PT_REGISTRY_DENIED: 3,
  PT_REGISTRY_BAD_RESPONSE: 4,
};

function fail(code: ErrorCode, detail: string, cause?: unknown): PulltraceError {
  return new PulltraceError(code, detail, cause === undefined ? undefined : { cause });
}

/** Anything that escaped the coded paths, coded (the client's promise: PulltraceError only). */
export function coded(err: unknown, what: string): PulltraceError {
  return err instanceof PulltraceError
    ? err
    : fail('PT_REGISTRY_UNAVAILABLE', `${what}: unexpected failure`, err);
}

/** A response header's first value. */
export function header(reply: Reply, name: string): string | undefined {
  const v = reply.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Sends manifest requests to endpoints; keeps tokens and which endpoints fell back to http. */
export class Transport {
  /** Anonymous pull tokens by endpoint and repository, kept for their stated lifetime less 10 s. */
  private readonly tokens: TtlCache<{ token: string; expiresInSeconds: number }>;
  /** Endpoints (host[:port]) that answered plain http after a failed TLS handshake. */
  private readonly fellBack = new Set<string>();

  constructor(private readonly opts: TransportOptions) {
    this.tokens = new TtlCache(opts.maxEntries, opts.now);
  }

  /**
   * Runs `attempt` on each endpoint of `ref`'s registry that may serve the request (a tag
   * needs `pull` and `resolve`, a digest `pull`), in configured order, until one succeeds; when
   * all fail, rethrows the most telling failure (a bad answer over a refusal over a 404 over a
   * network error), as containerd's resolver reports. PT_REGISTRY_CONFIG when no endpoint may
   * serve it or the configuration cannot be read; other codes stop the loop at once.
   */
  async acrossHosts<T>(
    ref: ImageRef,
    needResolve: boolean,
    attempt: (e: Endpoint) => Promise<T>,
  ): Promise<T> {
    const all = await loadEndpoints(this.opts.configPath, ref.domain, this.opts.onWarning);
    const endpoints = endpointsWith(all, needResolve);
    if (endpoints.length === 0) {
      throw fail(
        'PT_REGISTRY_CONFIG',
        `no host configured for ${ref.domain} may ${needResolve ? 'resolve tags' : 'serve pulls'}`,
      );
    }
    let best: PulltraceError | null = null;
    for (const e of endpoints) {
      try {
        return await attempt(e);
      } catch (err) {
        const c = coded(err, `${e.scheme}://${e.host}`);
        if (PRIORITY[c.code] === undefined) throw c;
        if (best === null || (PRIORITY[c.code] ?? 0) > (PRIORITY[best.code] ?? 0)) best = c;
      }
    }
    throw best ?? fail('PT_REGISTRY_UNAVAILABLE', ref.domain);
  }

  /**
   * `method /v2/<path>/manifests/<object>` on endpoint `e` for `ref`. Resolves with a 2xx
   * answer only. Rejects with PulltraceError: PT_REGISTRY_NOT_FOUND (404), PT_REGISTRY_DENIED
   * (401 with no Bearer challenge or after an anonymous token, 403, a refused token request),
   * PT_REGISTRY_UNAVAILABLE (other 4xx/5xx, connection and TLS failures), PT_REGISTRY_TIMEOUT,
   * PT_REGISTRY_BAD_RESPONSE (body over the cap, a 3xx with nowhere to go, a token answer with
   * no token), PT_REGISTRY_CONFIG (a configured CA or client file that cannot be read).
   */
  async manifest(e: Endpoint, ref: ImageRef, method: 'GET' | 'HEAD', object: string): Promise<Reply> {
    const tls = await this.tlsFor(e);
    const viaHttp = e.httpFallback && this.fellBack.has(e.host);
    const url = new URL(`${viaHttp ? 'http' : e.scheme}://${e.host}`);
    url.pathname = posix.join('/', e.path, ref.path, 'manifests', object);
    // A mirror is told which registry the name belongs to (containerd's `ns` parameter).
    if (e.host !== ref.domain && !(ref.domain === 'docker.io' && e.host === 'registry-1.docker.io')) {
      url.searchParams.set('ns', ref.domain);
    }
    const tokenKey = `${e.scheme}://${e.host} ${ref.path}`;
    const send = async (token: string | undefined): Promise<Reply> => {
      const headers: Record<string, string | string[]> = {
        ...e.headers,
        accept: MANIFEST_ACCEPT,
        'user-agent': this.opts.userAgent,
      };
      if (token !== undefined) headers.authorization = `Bearer ${token}`;
      const ex = { method, headers, timeoutMs: this.opts.timeoutMs, maxBodyBytes: this.opts.maxBodyBytes };
      if (url.protocol === 'http:') return exchange({ ...ex, url });
      try {
        return await exchange({ ...ex, url, tls });
      } catch (err) {
        if (!e.httpFallback || !isTlsHandshakeError(err)) throw err;
        this.fellBack.add(e.host);
        url.protocol = 'http:';
        return exchange({ ...ex, url });
      }
    };
    const where = `${method} ${shortUrl(url)}`;
    let reply = await send(this.tokens.peek(tokenKey)?.token);
    if (reply.status === 401) {
      const challenge = bearerChallenge(header(reply, 'www-authenticate'));
      if (challenge === null) throw fail('PT_REGISTRY_DENIED', `${where}: HTTP 401 with no Bearer challenge`);
      this.tokens.delete(tokenKey);
      const token = await this.tokens.get(tokenKey, () => this.fetchToken(challenge, ref.path, e, tls), {
        ok: (t) => t.expiresInSeconds * 1000 - 10_000,
        error: () => 0,
      });
      reply = await send(token.token);
      if (reply.status === 401)
        throw fail('PT_REGISTRY_DENIED', `${where}: HTTP 401 with an anonymous token`);
    }
    const s = reply.status;
    if (s >= 200 && s <= 299) return reply;
    if (s === 404) throw fail('PT_REGISTRY_NOT_FOUND', `${where}: HTTP 404`);
    if (s === 401 || s === 403) throw fail('PT_REGISTRY_DENIED', `${where}: HTTP ${s}`);
    if (s >= 400) throw fail('PT_REGISTRY_UNAVAILABLE', `${where}: HTTP ${s}`);
    throw fail('PT_REGISTRY_BAD_RESPONSE', `${where}: unexpected HTTP ${s}`);
  }

  /** GETs an anonymous pull token from the challenge's realm (no credentials). */
  private async fetchToken(
    challenge: { realm: URL; service: string; scope: string },
    repoPath: string,
    e: Endpoint,
    tls: TlsOptions,
  ): Promise<{ token: string; expiresInSeconds: number }> {
    const url = tokenUrl(challenge, repoPath);
    const reply = await exchange({
      method: 'GET',
      url,
      headers: { 'user-agent': this.opts.userAgent, accept: 'application/json' },
      timeoutMs: this.opts.timeoutMs,
      maxBodyBytes: this.opts.maxBodyBytes,
      // The endpoint's TLS settings apply to its own host only.
      ...(url.host === e.host ? { tls } : {}),
    });
    if (reply.status !== 200) {
      throw fail('PT_REGISTRY_DENIED', `token request to ${shortUrl(url)} answered HTTP ${reply.status}`);
    }
    const t = parseTokenResponse(reply.body);
    if (t === null)
      throw fail('PT_REGISTRY_BAD_RESPONSE', `token answer from ${shortUrl(url)} holds no token`);
    return t;
  }

  /** The TLS options of an endpoint, its CA and client files read now (containerd reads them per pull). */
  private async tlsFor(e: Endpoint): Promise<TlsOptions> {
    const read = async (path: string): Promise<Buffer> => {
      try {
        return await readFile(path);
      } catch (err) {
        throw fail('PT_REGISTRY_CONFIG', `cannot read ${path} (configured for ${e.host})`, err);
      }
    };
    const tls: TlsOptions = { rejectUnauthorized: !e.skipVerify };
    if (e.caFiles.length > 0) tls.ca = await Promise.all(e.caFiles.map(read));
    // Node takes one client certificate per connection: the first pair configured.
    const pair = e.clientPairs[0];
    if (pair !== undefined) {
      tls.cert = await read(pair[0]);
      tls.key = pair[1] === '' ? tls.cert : await read(pair[1]);
    }
    return tls;
  }
}
