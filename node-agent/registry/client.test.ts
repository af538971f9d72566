// The registry client against local node:http servers on 127.0.0.1 that misbehave on purpose:
// Bearer challenges (anonymous tokens that work, and ones refused), slow answers, garbage,
// oversized bodies, wrong Content-Types; the cache and its clock; mirrors from a certs.d.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { PulltraceError, type ErrorCode } from '../../common/errors.js';
import { parseImageRef } from '../../common/image-ref.js';
import { freePort } from '../../test-support/net.js';
import type { RegistryLookup } from '../tracker/expectations.js';
import { RegistryClient } from './client.js';
import { MEDIA_TYPES } from './manifest.js';

interface Doc {
  body: Buffer;
  mediaType: string;
  digest: string;
}

interface Logged {
  method: string;
  url: URL;
  authorization: string | undefined;
  accept: string | undefined;
}

interface Fake {
  host: string;
  log: Logged[];
  /** Requests for manifests only (not tokens). */
  manifestRequests(): Logged[];
  close(): Promise<void>;
}

const servers: Fake[] = [];
const tmp = mkdtempSync(join(tmpdir(), 'pt-registry-client-'));
after(async () => {
  for (const s of servers) await s.close();
  rmSync(tmp, { recursive: true, force: true });
});

async function fake(
  handler: (req: IncomingMessage, res: ServerResponse, url: URL, host: string) => void,
): Promise<Fake> {
  const log: Logged[] = [];
  let host = '';
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', `http://${host}`);
    log.push({
      method: req.method ?? '',
      url,
      authorization: req.headers.authorization,
      accept: req.headers.accept,
    });
    handler(req, res, url, host);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const f: Fake = {
    host,
    log,
    manifestRequests: () => log.filter((l) => l.url.pathname.includes('/manifests/')),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
  servers.push(f);
  return f;
}

function doc(value: unknown, mediaType: string): Doc {
  const body = Buffer.from(JSON.stringify(value));
  return { body, mediaType, digest: `sha256:${createHash('sha256').update(body).digest('hex')}` };
}

const blob = (c: string) => `sha256:${c.repeat(64)}`;

function imageManifest(layers: [string, number][], configSize = 321): Doc {
  return doc(
    {
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociManifest,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: blob('c'), size: configSize },
      layers: layers.map(([c, size]) => ({
        mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
        digest: blob(c),
        size,
      })),
    },
    MEDIA_TYPES.ociManifest,
  );
}

/**
 * A registry serving `docs` by digest and `tags` → digest under /v2/<repo>/manifests/, with
 * HEAD answering Docker-Content-Digest and Content-Length unless told not to.
 */
function serve(
  repo: string,
  tags: Record<string, Doc>,
  docs: Doc[] = [],
  opts: { noDigestHeader?: boolean; contentType?: string } = {},
) {
  const byRef = new Map<string, Doc>();
  for (const [tag, d] of Object.entries(tags)) byRef.set(tag, d);
  for (const d of [...Object.values(tags), ...docs]) byRef.set(d.digest, d);
  return (req: IncomingMessage, res: ServerResponse, url: URL): boolean => {
    const prefix = `/v2/${repo}/manifests/`;
    if (!url.pathname.startsWith(prefix)) return false;
    const d = byRef.get(decodeURIComponent(url.pathname.slice(prefix.length)));
    if (d === undefined) {
      res
        .writeHead(404, { 'content-type': 'application/json' })
        .end('{"errors":[{"code":"MANIFEST_UNKNOWN"}]}');
      return true;
    }
    const headers: Record<string, string> = {
      'content-type': opts.contentType ?? d.mediaType,
      'content-length': String(d.body.length),
    };
    if (opts.noDigestHeader !== true) headers['docker-content-digest'] = d.digest;
    res.writeHead(200, headers);
    res.end(req.method === 'HEAD' ? undefined : d.body);
    return true;
  };
}

function clock() {
  let t = 5_000_000;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

async function rejectsWith(p: Promise<unknown>, code: ErrorCode, message?: RegExp): Promise<PulltraceError> {
  let caught: unknown = null;
  try {
    await p;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof PulltraceError, `expected a PulltraceError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  if (message !== undefined) assert.match(caught.message, message);
  return caught;
}

test('resolves a tag with HEAD, sizes the image, and caches by tag for a minute and by digest for good', async () => {
  const m = imageManifest([
    ['1', 1000],
    ['2', 2500],
    ['1', 1000],
  ]);
  let handle = serve('team/app', { v1: m });
  const f = await fake((req, res, url) => {
    if (!handle(req, res, url)) res.writeHead(404).end();
  });
  const c = clock();
  const client = new RegistryClient({ now: c.now, platform: 'linux/amd64' });
  const ref = `${f.host}/team/app:v1`;

  const r = await client.resolve(ref);
  assert.deepEqual(r, { digest: m.digest, mediaType: MEDIA_TYPES.ociManifest, size: m.body.length });
  const heads = f.manifestRequests();
  assert.equal(heads.length, 1);
  const head = heads[0]!;
  assert.equal(head.method, 'HEAD');
  assert.equal(head.url.pathname, '/v2/team/app/manifests/v1');
  assert.equal(head.url.search, '', 'no ns parameter when asking the registry itself');
  assert.match(head.accept ?? '', /^application\/vnd\.docker\.distribution\.manifest\.v2\+json, .*\*\/\*$/);

  const size = await client.imageSize(ref);
  assert.deepEqual(size, {
    reference: `${f.host}/team/app:v1`,
    digest: m.digest,
    mediaType: MEDIA_TYPES.ociManifest,
    manifestDigest: m.digest,
    platform: null,
    configDigest: blob('c'),
    configSize: 321,
    bytes: 321 + 1000 + 2500,
    layerCount: 2,
    layers: [
      { digest: blob('1'), size: 1000 },
      { digest: blob('2'), size: 2500 },
    ],
  });
  assert.deepEqual(
    f.manifestRequests().map((l) => `${l.method} ${l.url.pathname}`),
    ['HEAD /v2/team/app/manifests/v1', `GET /v2/team/app/manifests/${m.digest}`],
  );

  // Within a minute: nothing asked again. The tag moves on the registry meanwhile.
  const m2 = imageManifest([['3', 10]]);
  handle = serve('team/app', { v1: m2 });
  c.advance(59_000);
  assert.equal((await client.resolve(ref)).digest, m.digest, 'the cached digest');
  assert.equal((await client.imageSize(ref)).bytes, 3821);
  assert.equal(f.manifestRequests().length, 2);
  c.advance(1_000);
  assert.equal((await client.resolve(ref)).digest, m2.digest, 'asked again after the TTL');
  assert.equal(f.manifestRequests().length, 3);

  // By digest: asked once, then never again.
  const byDigest = `${f.host}/team/app@${m2.digest}`;
  assert.equal((await client.resolve(byDigest)).digest, m2.digest);
  const n = f.manifestRequests().length;
  c.advance(7 * 86_400_000);
  assert.equal((await client.resolve(byDigest)).size, m2.body.length);
  assert.equal(f.manifestRequests().length, n);
  // A tag and a digest together resolve by the digest, as the CRI pulls them.
  assert.equal((await client.resolve(`${f.host}/team/app:gone@${m2.digest}`)).digest, m2.digest);
  assert.equal(f.manifestRequests().length, n);
});

test('joins concurrent look-ups, and keeps a failure for 30 s so a failing registry is not hammered', async () => {
  const m = imageManifest([['1', 1]]);
  const handle = serve('team/app', { v1: m });
  let down = true;
  const f = await fake((req, res, url) => {
    if (down) res.writeHead(503).end('down');
    else if (!handle(req, res, url)) res.writeHead(404).end();
  });
  const c = clock();
  const client = new RegistryClient({ now: c.now });
  const ref = `${f.host}/team/app:v1`;
  // Five callers before any answer: the first starts the look-up, the others join it.
  const results = await Promise.allSettled([1, 2, 3, 4, 5].map(() => client.resolve(ref)));
  assert.ok(results.every((r) => r.status === 'rejected'));
  assert.equal(f.manifestRequests().length, 1, 'five callers, one request');
  await rejectsWith(client.resolve(ref), 'PT_REGISTRY_UNAVAILABLE', /HTTP 503/);
  down = false;
  c.advance(29_999);
  await rejectsWith(client.resolve(ref), 'PT_REGISTRY_UNAVAILABLE', /HTTP 503/);
  assert.equal(f.manifestRequests().length, 1, 'the failure was reused');
  c.advance(1);
  assert.equal((await client.resolve(ref)).digest, m.digest);
  assert.equal(f.manifestRequests().length, 2);
});

test('falls back to GET and hashes the body when HEAD gives no Docker-Content-Digest', async () => {
  const m = imageManifest([['1', 7]]);
  const handle = serve('a/b', { t: m }, [], { noDigestHeader: true });
  const f = await fake((req, res, url) => {
    if (!handle(req, res, url)) res.writeHead(404).end();
  });
  const client = new RegistryClient();
  const r = await client.resolve(`${f.host}/a/b:t`);
  assert.equal(r.digest, m.digest);
  assert.equal(r.size, m.body.length);
  assert.deepEqual(
    f.manifestRequests().map((l) => l.method),
    ['HEAD', 'GET'],
  );
});

test('gets an anonymous Bearer token on a 401 and reuses it', async () => {
  const m = imageManifest([['1', 1]]);
  const handle = serve('team/private', { v1: m, v2: m });
  const tokenQueries: URLSearchParams[] = [];
  const f = await fake((req, res, url, host) => {
    if (url.pathname === '/token') {
      tokenQueries.push(url.searchParams);
      if (req.headers.authorization !== undefined) {
        res.writeHead(400).end('credentials sent to an anonymous flow');
        return;
      }
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ token: 'tok-1', expires_in: 300 }));
      return;
    }
    if (req.headers.authorization !== 'Bearer tok-1') {
      res
        .writeHead(401, {
          'www-authenticate': `Bearer realm="http://${host}/token",service="fake-registry",scope="repository:team/private:pull"`,
        })
        .end();
      return;
    }
    if (!handle(req, res, url)) res.writeHead(404).end();
  });
  const client = new RegistryClient();
  assert.equal((await client.resolve(`${f.host}/team/private:v1`)).digest, m.digest);
  assert.equal(tokenQueries.length, 1);
  const query = tokenQueries[0]!;
  assert.equal(query.get('service'), 'fake-registry');
  assert.deepEqual(query.getAll('scope'), ['repository:team/private:pull']);
  // The next look-up sends the token at once.
  assert.equal((await client.imageSize(`${f.host}/team/private:v2`)).bytes, 322);
  assert.equal(tokenQueries.length, 1);
  const last = f.manifestRequests().slice(-2);
  assert.deepEqual(
    last.map((l) => l.authorization),
    ['Bearer tok-1', 'Bearer tok-1'],
  );
});

test('reports a refusal as PT_REGISTRY_DENIED: Basic challenge, token refused, 403, token not accepted', async () => {
  const f = await fake((req, res, url, host) => {
    const repo = url.pathname.split('/')[2] ?? '';
    if (url.pathname === '/token') {
      const scope = url.searchParams.get('scope') ?? '';
      if (scope.includes('refused')) res.writeHead(403).end();
      else res.writeHead(200).end(JSON.stringify({ token: 'useless' }));
      return;
    }
    if (repo === 'basic') res.writeHead(401, { 'www-authenticate': 'Basic realm="Registry"' }).end();
    else if (repo === 'forbidden') res.writeHead(403).end();
    else res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${host}/token",service="s"` }).end();
  });
  const client = new RegistryClient();
  await rejectsWith(
    client.resolve(`${f.host}/basic/app:1`),
    'PT_REGISTRY_DENIED',
    /401 with no Bearer challenge/,
  );
  await rejectsWith(
    client.resolve(`${f.host}/refused/app:1`),
    'PT_REGISTRY_DENIED',
    /token request .* HTTP 403/,
  );
  await rejectsWith(client.resolve(`${f.host}/forbidden/app:1`), 'PT_REGISTRY_DENIED', /HTTP 403/);
  await rejectsWith(
    client.resolve(`${f.host}/other/app:1`),
    'PT_REGISTRY_DENIED',
    /401 with an anonymous token/,
  );
});

test('gives up on a slow registry after the timeout', async () => {
  const f = await fake(() => {
    // Never answers.
  });
  const client = new RegistryClient({ timeoutMs: 300 });
  const started = Date.now();
  await rejectsWith(client.resolve(`${f.host}/team/app:1`), 'PT_REGISTRY_TIMEOUT', /no answer within 300 ms/);
  const took = Date.now() - started;
  assert.ok(took >= 250 && took < 2000, `took ${took} ms`);
});

test('refuses garbage JSON, an oversized body and a wrong Content-Type with PT_REGISTRY_BAD_RESPONSE', async () => {
  const garbage = Buffer.from('{"schemaVersion": 2, "layers": [ {"dig');
  const garbageDoc: Doc = {
    body: garbage,
    mediaType: MEDIA_TYPES.ociManifest,
    digest: `sha256:${createHash('sha256').update(garbage).digest('hex')}`,
  };
  const good = imageManifest([['1', 1]]);
  const handleGarbage = serve('garbage', { v: garbageDoc });
  const handleHtml = serve('html', { v: good }, [], { contentType: 'text/html; charset=utf-8' });
  const big = 4 * 1024 * 1024 + 10;
  const f = await fake((req, res, url) => {
    if (handleGarbage(req, res, url) || handleHtml(req, res, url)) return;
    if (url.pathname.startsWith('/v2/big-declared/')) {
      // HEAD declares a manifest over the cap.
      res.writeHead(200, {
        'content-type': MEDIA_TYPES.ociManifest,
        'docker-content-digest': blob('9'),
        'content-length': big,
      });
      res.end();
      return;
    }
    if (url.pathname.startsWith('/v2/big-streamed/')) {
      // No digest, no length: the GET streams past the cap.
      res.writeHead(200, { 'content-type': MEDIA_TYPES.ociManifest, 'transfer-encoding': 'chunked' });
      if (req.method === 'HEAD') {
        res.end();
        return;
      }
      const piece = Buffer.alloc(256 * 1024, 0x20);
      let sent = 0;
      const pump = () => {
        while (sent < big + piece.length && !res.destroyed) {
          sent += piece.length;
          if (!res.write(piece)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
      return;
    }
    res.writeHead(404).end();
  });
  const client = new RegistryClient();
  assert.equal(
    (await client.resolve(`${f.host}/garbage:v`)).digest,
    garbageDoc.digest,
    'HEAD alone does not read the body',
  );
  await rejectsWith(client.imageSize(`${f.host}/garbage:v`), 'PT_REGISTRY_BAD_RESPONSE', /not valid JSON/);
  await rejectsWith(
    client.resolve(`${f.host}/html:v`),
    'PT_REGISTRY_BAD_RESPONSE',
    /unknown media type "text\/html"/,
  );
  await rejectsWith(
    client.resolve(`${f.host}/big-declared:v`),
    'PT_REGISTRY_BAD_RESPONSE',
    /4194314 bytes is over the 4194304-byte limit/,
  );
  await rejectsWith(
    client.resolve(`${f.host}/big-streamed:v`),
    'PT_REGISTRY_BAD_RESPONSE',
    /over the 4194304-byte limit/,
  );
});

test('follows an index to the platform containerd would pull, and says when there is none', async () => {
  const amd64 = imageManifest([['a', 100]]);
  const arm7 = imageManifest([['b', 200]], 111);
  const arm6 = imageManifest([['d', 300]], 112);
  const entry = (d: Doc, platform: Record<string, string>) => ({
    mediaType: d.mediaType,
    digest: d.digest,
    size: d.body.length,
    platform,
  });
  const index = doc(
    {
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociIndex,
      manifests: [
        entry(arm6, { os: 'linux', architecture: 'arm', variant: 'v6' }),
        entry(amd64, { os: 'linux', architecture: 'amd64' }),
        entry(arm7, { os: 'linux', architecture: 'arm', variant: 'v7' }),
      ],
    },
    MEDIA_TYPES.ociIndex,
  );
  // An index whose entry does not match the bytes served for it.
  const liar = doc(
    {
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociIndex,
      manifests: [{ ...entry(amd64, { os: 'linux', architecture: 'amd64' }), digest: blob('f') }],
    },
    MEDIA_TYPES.ociIndex,
  );
  const handle = serve('multi', { v: index, liar }, [amd64, arm7, arm6, { ...amd64, digest: blob('f') }]);
  const f = await fake((req, res, url) => {
    if (!handle(req, res, url)) res.writeHead(404).end();
  });
  const client = new RegistryClient({ platform: 'linux/amd64' });
  const ref = `${f.host}/multi:v`;
  const r = await client.resolve(ref);
  assert.equal(r.digest, index.digest);
  assert.equal(r.mediaType, MEDIA_TYPES.ociIndex);

  const a = await client.imageSize(ref);
  assert.equal(a.manifestDigest, amd64.digest);
  assert.equal(a.platform, 'linux/amd64');
  assert.equal(a.bytes, 321 + 100);
  const v7 = await client.imageSize(ref, 'linux/arm/v7');
  assert.equal(v7.manifestDigest, arm7.digest, 'the best variant, not the first compatible');
  assert.equal(v7.bytes, 111 + 200);
  assert.equal((await client.imageSize(ref, 'linux/arm64')).manifestDigest, arm7.digest, 'arm64 runs arm/v7');
  assert.equal((await client.imageSize(ref, 'linux/arm/v6')).manifestDigest, arm6.digest);
  await rejectsWith(
    client.imageSize(ref, 'linux/s390x'),
    'PT_REGISTRY_NO_PLATFORM',
    /has no manifest for linux\/s390x \(index offers linux\/arm\/v6, linux\/amd64, linux\/arm\/v7\)/,
  );
  await rejectsWith(
    client.imageSize(`${f.host}/multi:liar`),
    'PT_REGISTRY_BAD_RESPONSE',
    /arrived with digest/,
  );
});

test('refuses bad input with coded errors, and a missing tag is PT_REGISTRY_NOT_FOUND', async () => {
  const f = await fake((_req, res) => res.writeHead(404).end());
  const client = new RegistryClient();
  await rejectsWith(client.resolve('Not A Reference'), 'PT_REGISTRY_BAD_REFERENCE');
  await rejectsWith(client.resolve(42 as unknown as string), 'PT_REGISTRY_BAD_REFERENCE', /number/);
  await rejectsWith(client.imageSize(`${f.host}/a:1`, 'amd64'), 'PT_CONFIG_INVALID', /platform "amd64"/);
  await rejectsWith(client.resolve(`${f.host}/a:1`), 'PT_REGISTRY_NOT_FOUND', /manifests\/1: HTTP 404/);
  assert.throws(
    () => new RegistryClient({ platform: 'nonsense' }),
    (err: unknown) => err instanceof PulltraceError && err.code === 'PT_CONFIG_INVALID',
  );
  assert.throws(() => new RegistryClient({ timeoutMs: 0 }), PulltraceError);
  const port = await freePort();
  await rejectsWith(
    new RegistryClient().resolve(`127.0.0.1:${port}/a:1`),
    'PT_REGISTRY_UNAVAILABLE',
    /ECONNREFUSED/,
  );
});

test('asks the hosts of a certs.d configuration in order, by capability, with the ns parameter', async () => {
  const m = imageManifest([['1', 5]]);
  const handle = serve('team/app', { v1: m });
  const mirror = await fake((req, res, url) => {
    if (!handle(req, res, url)) res.writeHead(404).end();
  });
  const pullOnly = await fake((req, res, url) => {
    if (!handle(req, res, url)) res.writeHead(404).end();
  });
  const dead = await freePort();
  const root = join(tmp, 'certs.d');
  mkdirSync(join(root, 'registry.test'), { recursive: true });
  writeFileSync(
    join(root, 'registry.test', 'hosts.toml'),
    [
      'server = "https://registry.test.invalid"',
      `[host."http://${pullOnly.host}"]`,
      '  capabilities = ["pull"]',
      `[host."http://127.0.0.1:${dead}"]`,
      '  capabilities = ["pull", "resolve"]',
      `[host."http://${mirror.host}"]`,
      '  capabilities = ["pull", "resolve"]',
      '',
    ].join('\n'),
  );
  const client = new RegistryClient({ configPath: [root] });
  const size = await client.imageSize('registry.test/team/app:v1');
  assert.equal(size.bytes, 326);
  assert.equal(size.reference, 'registry.test/team/app:v1');
  // The tag was resolved by the first host trusted to resolve that answered (the dead one was tried).
  assert.deepEqual(
    mirror.manifestRequests().map((l) => `${l.method} ${l.url.pathname}${l.url.search}`),
    ['HEAD /v2/team/app/manifests/v1?ns=registry.test'],
  );
  // The manifest, by digest, came from the first pull host.
  assert.deepEqual(
    pullOnly.manifestRequests().map((l) => `${l.method} ${l.url.pathname}${l.url.search}`),
    [`GET /v2/team/app/manifests/${m.digest}?ns=registry.test`],
  );
  // No host can resolve a tag for a namespace whose hosts are all pull-only.
  mkdirSync(join(root, 'pull-only.test'), { recursive: true });
  writeFileSync(
    join(root, 'pull-only.test', 'hosts.toml'),
    `server = "http://${pullOnly.host}"\ncapabilities = ["pull"]\n`,
  );
  await rejectsWith(client.resolve('pull-only.test/team/app:v1'), 'PT_REGISTRY_CONFIG', /may resolve tags/);
  assert.equal(
    (await client.resolve(`pull-only.test/team/app@${m.digest}`)).digest,
    m.digest,
    'a digest needs pull only',
  );
});

test('answers the tracker synchronously from the cache, looking up in the background', async () => {
  const m = imageManifest([['1', 9]]);
  const handle = serve('team/app', { v1: m });
  const f = await fake((req, res, url) => {
    if (!handle(req, res, url)) res.writeHead(404).end();
  });
  const c = clock();
  const client = new RegistryClient({ now: c.now, platform: 'linux/amd64' });
  const lookup: RegistryLookup = client;
  const ref = parseImageRef(`${f.host}/team/app:v1`)!;
  const missing = parseImageRef(`${f.host}/team/app:nope`)!;

  assert.equal(lookup.digestOf(ref), null, 'not known yet');
  assert.equal(lookup.sizeOf(ref), null);
  assert.equal(
    lookup.digestOf(parseImageRef(`${f.host}/team/app:x@${m.digest}`)!),
    m.digest,
    'its own digest',
  );
  // The look-ups digestOf and sizeOf started are joined, not repeated, by these calls.
  await client.imageSize(`${f.host}/team/app:v1`);
  assert.equal(f.manifestRequests().length, 2, 'one HEAD, one GET');
  assert.equal(lookup.digestOf(ref), m.digest);
  assert.equal(lookup.sizeOf(ref), 330);
  assert.deepEqual(client.cachedSize(ref)?.layers, [{ digest: blob('1'), size: 9 }]);

  // A failing look-up: null every poll, and the registry asked once per failure TTL.
  for (let i = 0; i < 20; i++) assert.equal(lookup.digestOf(missing), null);
  await assert.rejects(client.resolve(`${f.host}/team/app:nope`), PulltraceError);
  for (let i = 0; i < 20; i++) assert.equal(lookup.digestOf(missing), null);
  const asked = () => f.manifestRequests().filter((l) => l.url.pathname.endsWith('/nope')).length;
  assert.equal(asked(), 1);
  c.advance(30_000);
  assert.equal(lookup.digestOf(missing), null);
  await assert.rejects(client.resolve(`${f.host}/team/app:nope`), PulltraceError);
  assert.equal(asked(), 2);
});

test('a tag resolved before the pod began to wait is asked again: a tag pushed anew resolves to its new digest', async () => {
  const v1 = imageManifest([['1', 9]]);
  const v2 = imageManifest([['2', 19]]);
  let handle = serve('team/app', { latest: v1 });
  const f = await fake((req, res, url) => {
    if (!handle(req, res, url)) res.writeHead(404).end();
  });
  const c = clock();
  const client = new RegistryClient({ now: c.now, platform: 'linux/amd64' });
  const ref = parseImageRef(`${f.host}/team/app:latest`)!;
  await client.resolve(`${f.host}/team/app:latest`);
  assert.equal(client.digestOf(ref), v1.digest);
  // 10 s later the tag is pushed again and a pod created: its notBefore is after the resolution.
  c.advance(10_000);
  handle = serve('team/app', { latest: v2 });
  const podCreated = c.now();
  assert.equal(client.digestOf(ref, podCreated), null, 'stale for this pod: asked again');
  await client.resolve(`${f.host}/team/app:latest`);
  assert.equal(client.digestOf(ref, podCreated), v2.digest);
  assert.equal(client.digestOf(ref), v2.digest);
  // A pod whose clock is ahead of ours (API server skew) does not make every poll ask again.
  const asked = f.manifestRequests().length;
  c.advance(3000);
  for (let i = 0; i < 5; i++) client.digestOf(ref, c.now() + 60_000);
  await client.resolve(`${f.host}/team/app:latest`);
  assert.ok(f.manifestRequests().length <= asked + 1, 'at most one more request');
});
