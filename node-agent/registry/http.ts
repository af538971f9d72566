// One HTTP exchange with a registry over node:http / node:https: a deadline for the whole
// exchange, a cap on the body, redirects followed as Go's client follows them, and every
// failure turned into a coded PulltraceError.
import {
  request as httpRequest,
  type ClientRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
} from 'node:http';
import { request as httpsRequest } from 'node:https';
import { rootCertificates } from 'node:tls';
import { PulltraceError } from '../../common/errors.js';

/** TLS settings of an https endpoint (hosts.toml `skip_verify`, `ca`, `client`). */
export interface TlsOptions {
  /** false only with `skip_verify = true`. */
  rejectUnauthorized: boolean;
  /** Extra CA certificates (PEM), added to Node's default roots. */
  ca?: Buffer[];
  cert?: Buffer;
  key?: Buffer;
}

/** One request to make (see exchange()). */
export interface Exchange {
  method: 'GET' | 'HEAD';
  url: URL;
  headers: Record<string, string | string[]>;
  /** Deadline for the whole exchange, redirects included, in milliseconds. */
  timeoutMs: number;
  /** A longer body (declared or received) fails with PT_REGISTRY_BAD_RESPONSE, in bytes. */
  maxBodyBytes: number;
  tls?: TlsOptions;
  /** Redirects to follow (default 5). */
  maxRedirects?: number;
}

/** The final answer of an exchange, whatever its status. */
export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  /** Empty for HEAD. */
  body: Buffer;
  /** The URL that answered (after redirects). */
  url: URL;
}

/** The URL without its query, for messages (a token request's query is not secret, but it is long). */
export function shortUrl(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

function errnoCode(err: unknown): string {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : '';
}

/**
 * True when `err` (or its cause) is a failed TLS handshake, such as a TLS client meeting a
 * plain-HTTP server ("wrong version number"): the case where containerd falls back to http.
 */
export function isTlsHandshakeError(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e instanceof Error; depth++) {
    const code = errnoCode(e);
    if (
      code === 'EPROTO' ||
      code.startsWith('ERR_SSL_') ||
      /SSL routines|wrong version number/i.test(e.message)
    ) {
      return true;
    }
    e = e.cause;
  }
  return false;
}

/** How once() settles its promise: the first call wins and clears the deadline; later ones do nothing. */
interface Settle {
  resolve(reply: Reply): void;
  reject(err: PulltraceError): void;
}

/** Sends the request for `url` over http or https (with the exchange's TLS settings); not yet ended. */
function sendRequest(ex: Exchange, url: URL, onResponse: (res: IncomingMessage) => void): ClientRequest {
  const isHttps = url.protocol === 'https:';
  const options = {
    method: ex.method,
    headers: ex.headers,
    ...(isHttps && ex.tls !== undefined
      ? {
          rejectUnauthorized: ex.tls.rejectUnauthorized,
          ...(ex.tls.cert === undefined ? {} : { cert: ex.tls.cert }),
          ...(ex.tls.key === undefined ? {} : { key: ex.tls.key }),
        }
      : {}),
  };
  return isHttps
    ? httpsRequest(
        url,
        ex.tls?.ca === undefined ? options : { ...options, ca: withDefaultRoots(ex.tls.ca) },
        onResponse,
      )
    : httpRequest(url, options, onResponse);
}

/**
 * Reads the response to `req` into a Reply; a body over `ex.maxBodyBytes` (declared or
 * received) destroys the exchange and fails with PT_REGISTRY_BAD_RESPONSE.
 */
function readResponse(
  ex: Exchange,
  url: URL,
  req: ClientRequest,
  res: IncomingMessage,
  settle: Settle,
): void {
  const where = `${ex.method} ${shortUrl(url)}`;
  const tooLarge = (detail: string) => {
    res.destroy();
    req.destroy();
    settle.reject(new PulltraceError('PT_REGISTRY_BAD_RESPONSE', `${where}: ${detail}`));
  };
  const declared = Number(res.headers['content-length']);
  if (ex.method !== 'HEAD' && Number.isFinite(declared) && declared > ex.maxBodyBytes) {
    tooLarge(`body of ${declared} bytes is over the ${ex.maxBodyBytes}-byte limit`);
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  res.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > ex.maxBodyBytes) {
      tooLarge(`body is over the ${ex.maxBodyBytes}-byte limit`);
      return;
    }
    chunks.push(chunk);
  });
  res.on('end', () => {
    settle.resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), url });
  });
  res.on('error', (err) => {
    settle.reject(new PulltraceError('PT_REGISTRY_UNAVAILABLE', `${where}: ${err.message}`, { cause: err }));
  });
}

/** One request and its answer, no redirects followed, failing with PT_REGISTRY_TIMEOUT at `deadline`. */
function once(ex: Exchange, url: URL, deadline: number): Promise<Reply> {
  const remaining = Math.max(1, deadline - Date.now());
  return new Promise<Reply>((resolve, reject) => {
    let settled = false;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
    };
    const settle: Settle = {
      resolve: (reply) => {
        finish(() => {
          resolve(reply);
        });
      },
      reject: (err) => {
        finish(() => {
          reject(err);
        });
      },
    };
    const where = `${ex.method} ${shortUrl(url)}`;
    const req = sendRequest(ex, url, (res) => {
      readResponse(ex, url, req, res, settle);
    });
    const timer = setTimeout(() => {
      settle.reject(
        new PulltraceError('PT_REGISTRY_TIMEOUT', `${where}: no answer within ${ex.timeoutMs} ms`),
      );
      req.destroy();
    }, remaining);
    req.on('error', (err) => {
      const code = errnoCode(err);
      settle.reject(
        new PulltraceError('PT_REGISTRY_UNAVAILABLE', `${where}: ${code === '' ? err.message : code}`, {
          cause: err,
        }),
      );
    });
    req.end();
  });
}

/** Extra CAs in addition to Node's bundled roots (a `ca` option alone would replace them). */
function withDefaultRoots(extra: Buffer[]): (string | Buffer)[] {
  return [...rootCertificates, ...extra];
}

/**
 * Performs the exchange, following up to `maxRedirects` redirects (301, 302, 303, 307, 308;
 * the Authorization header is dropped when the host changes, as Go's client does).
 *
 * Rejects with PulltraceError: PT_REGISTRY_TIMEOUT when the deadline passes,
 * PT_REGISTRY_UNAVAILABLE for a connection or TLS failure or too many redirects,
 * PT_REGISTRY_BAD_RESPONSE for a body over the cap. Any HTTP status resolves.
 */
export async function exchange(ex: Exchange): Promise<Reply> {
  const deadline = Date.now() + ex.timeoutMs;
  let url = ex.url;
  let headers = ex.headers;
  for (let hops = 0; ; hops++) {
    const reply = await once({ ...ex, headers }, url, deadline);
    const location = reply.headers.location;
    if (![301, 302, 303, 307, 308].includes(reply.status) || typeof location !== 'string') return reply;
    if (hops >= (ex.maxRedirects ?? 5)) {
      throw new PulltraceError(
        'PT_REGISTRY_UNAVAILABLE',
        `${ex.method} ${shortUrl(ex.url)}: too many redirects`,
      );
    }
    let next: URL;
    try {
      next = new URL(location, url);
    } catch (err) {
      throw new PulltraceError('PT_REGISTRY_BAD_RESPONSE', `redirect to an invalid location`, { cause: err });
    }
    if (next.protocol !== 'http:' && next.protocol !== 'https:') {
      throw new PulltraceError('PT_REGISTRY_BAD_RESPONSE', `redirect to a ${next.protocol} URL`);
    }
    if (next.host !== url.host) {
      headers = Object.fromEntries(
        Object.entries(headers).filter(([k]) => k.toLowerCase() !== 'authorization'),
      );
    }
    url = next;
  }
}
