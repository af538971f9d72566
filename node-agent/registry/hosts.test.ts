// containerd's registry host configuration: hosts.toml parsing, the defaults per host, the
// directory look-up order, and the fall-backs containerd makes for a broken file.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import {
  endpointsFor,
  endpointsWith,
  hostDirCandidates,
  isLocalhost,
  loadEndpoints,
  parseHostsToml,
  type Endpoint,
} from './hosts.js';

const tmp = mkdtempSync(join(tmpdir(), 'pt-hosts-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** scheme://host/path [caps] +flags, one line per endpoint, for readable assertions. */
function show(es: Endpoint[]): string[] {
  return es.map((e) => {
    const caps = (['pull', 'resolve', 'push'] as const).filter((c) => e.capabilities[c]).join(',');
    const flags = [e.skipVerify ? 'insecure' : '', e.httpFallback ? 'fallback' : ''].filter((f) => f !== '');
    return `${e.scheme}://${e.host}${e.path} [${caps}]${flags.length > 0 ? ` +${flags.join('+')}` : ''}`;
  });
}

test('defaults with no configuration, as containerd ConfigureHosts', () => {
  const cases: [string, string][] = [
    ['docker.io', 'https://registry-1.docker.io/v2 [pull,resolve,push]'],
    ['ghcr.io', 'https://ghcr.io/v2 [pull,resolve,push]'],
    ['registry.example.com:5000', 'https://registry.example.com:5000/v2 [pull,resolve,push]'],
    // Loopback: https without verification on the default ports, http on 80, https-then-http otherwise.
    ['localhost', 'https://localhost/v2 [pull,resolve,push] +insecure'],
    ['localhost:443', 'https://localhost:443/v2 [pull,resolve,push] +insecure'],
    ['localhost:80', 'http://localhost:80/v2 [pull,resolve,push]'],
    ['127.0.0.1:5000', 'https://127.0.0.1:5000/v2 [pull,resolve,push] +insecure+fallback'],
    ['127.9.9.9:5000', 'https://127.9.9.9:5000/v2 [pull,resolve,push] +insecure+fallback'],
    ['[::1]:5000', 'https://[::1]:5000/v2 [pull,resolve,push] +insecure+fallback'],
    // Not loopback: https, verified, whatever the port.
    ['10.0.0.1:5000', 'https://10.0.0.1:5000/v2 [pull,resolve,push]'],
    ['128.0.0.1:5000', 'https://128.0.0.1:5000/v2 [pull,resolve,push]'],
  ];
  for (const [ns, want] of cases) assert.deepEqual(show(endpointsFor(ns, null)), [want], ns);
  assert.equal(isLocalhost('::1'), true);
  assert.equal(isLocalhost('[::ffff:127.0.0.1]:5000'), true);
  assert.equal(isLocalhost('localhost.example.com'), false);
  assert.equal(isLocalhost('[::1]'), false, 'Go cannot split a bracketed host without a port either');
});

test('reads hosts.toml: hosts in file order, then the server; /v2 added; capabilities', () => {
  const entries = parseHostsToml(
    `server = "https://registry-1.docker.io"

[host."https://mirror-b.example"]
  capabilities = ["pull"]
[host."http://mirror-a.example:5000/sub/"]
  capabilities = ["pull", "Resolve"]
  skip_verify = true
  [host."http://mirror-a.example:5000/sub/".header]
    x-one = "1"
    x-two = ["a", "b"]
[host."https://plain.example/v2"]
[host."https://nonstd.example/api/upstream"]
  override_path = true
[host."mirror-c.example"]
  capabilities = []
`,
    '/etc/containerd/certs.d/docker.io',
  );
  const es = endpointsFor('docker.io', entries);
  assert.deepEqual(show(es), [
    'https://mirror-b.example/v2 [pull]',
    'https://mirror-a.example:5000/sub/v2 [pull,resolve] +insecure+fallback',
    'https://plain.example/v2 [pull,resolve,push]',
    'https://nonstd.example/api/upstream [pull,resolve,push]',
    'https://mirror-c.example/v2 [pull,resolve,push]',
    'https://registry-1.docker.io/v2 [pull,resolve,push]',
  ]);
  assert.deepEqual(es[1]!.headers, { 'x-one': ['1'], 'x-two': ['a', 'b'] });
  // Tags resolve only on hosts trusted to resolve; digests may come from any pull host.
  assert.deepEqual(
    endpointsWith(es, true).map((e) => e.host),
    ['mirror-a.example:5000', 'plain.example', 'nonstd.example', 'mirror-c.example', 'registry-1.docker.io'],
  );
  assert.equal(endpointsWith(es, false).length, 6);
});

test('the server entry: absent, with a path, plain http, a TLS setting on http', () => {
  const one = (toml: string, ns = 'reg.example:5000') => show(endpointsFor(ns, parseHostsToml(toml, '/d')));
  assert.deepEqual(one(''), ['https://reg.example:5000/v2 [pull,resolve,push]'], 'empty file: the namespace');
  assert.deepEqual(one('[host."http://m.example"]\n'), [
    'http://m.example/v2 [pull,resolve,push]',
    'https://reg.example:5000/v2 [pull,resolve,push]',
  ]);
  assert.deepEqual(one('server = "http://127.0.0.1:5000"'), ['http://127.0.0.1:5000/v2 [pull,resolve,push]']);
  assert.deepEqual(one('server = "r.example/prefix/"'), ['https://r.example/prefix/v2 [pull,resolve,push]']);
  assert.deepEqual(one('server = "https://r.example/"'), ['https://r.example/v2 [pull,resolve,push]']);
  assert.deepEqual(one('server = "http://r.example:8080"\nskip_verify = false'), [
    'https://r.example:8080/v2 [pull,resolve,push] +fallback',
  ]);
  assert.deepEqual(one('server = "http://r.example:80"\nskip_verify = true'), [
    'http://r.example:80/v2 [pull,resolve,push] +insecure',
  ]);
  assert.deepEqual(one('server = "http://r.example:8080"\ndial_timeout = "1s"'), [
    'https://r.example:8080/v2 [pull,resolve,push] +fallback',
  ]);
  assert.deepEqual(
    one('capabilities = ["pull"]'),
    ['https://reg.example:5000/v2 [pull,resolve,push]'],
    'a default server gets all',
  );
  assert.deepEqual(one('server = "https://r.example"\ncapabilities = ["pull"]'), [
    'https://r.example/v2 [pull]',
  ]);
  // The test environment's file (e2e/env/containerd.ts): the skip_verify host is tried as https first.
  assert.deepEqual(
    one(
      'server = "http://127.0.0.1:5000"\n[host."http://127.0.0.1:5000"]\n  capabilities = ["pull", "resolve"]\n  skip_verify = true\n',
    ),
    [
      'https://127.0.0.1:5000/v2 [pull,resolve] +insecure+fallback',
      'http://127.0.0.1:5000/v2 [pull,resolve,push]',
    ],
  );
  const ca = endpointsFor(
    'r',
    parseHostsToml(
      'server = "https://r"\nca = ["a.pem", "/abs/b.pem"]\nclient = [["c.cert", "c.key"], "d.pem"]',
      '/etc/certs.d/r',
    ),
  );
  assert.deepEqual(ca[0]!.caFiles, ['/etc/certs.d/r/a.pem', '/abs/b.pem']);
  assert.deepEqual(ca[0]!.clientPairs, [
    ['/etc/certs.d/r/c.cert', '/etc/certs.d/r/c.key'],
    ['/etc/certs.d/r/d.pem', ''],
  ]);
});

test('a file containerd would refuse makes parseHostsToml throw', () => {
  for (const bad of [
    'server = ',
    'capabilities = ["pull", "fly"]',
    'skip_verify = "yes"',
    'ca = 5',
    'client = [["only-one"]]',
    'server = 5',
    'host = "x"',
    '[host."https://a"]\nheader = 5',
    'dial_timeout = "soon"',
  ]) {
    assert.throws(() => parseHostsToml(bad, '/d'), Error, bad);
  }
});

test('finds the directory as containerd does: host_port_, host:port, _default; first root wins', async () => {
  assert.deepEqual(hostDirCandidates('/c', 'r.example:5000'), [
    '/c/r.example_5000_',
    '/c/r.example:5000',
    '/c/_default',
  ]);
  assert.deepEqual(hostDirCandidates('/c', 'r.example'), ['/c/r.example', '/c/_default']);

  const a = join(tmp, 'a');
  const b = join(tmp, 'b');
  const put = (dir: string, toml: string) => {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'hosts.toml'), toml);
  };
  put(join(a, 'r.example_5000_'), 'server = "https://underscore.example"');
  put(join(a, 'r.example:5000'), 'server = "https://colon.example"');
  put(join(b, 'only-b.example'), 'server = "https://from-b.example"');
  put(join(b, '_default'), 'server = "https://default-b.example"');

  const hostOf = async (roots: string[], ns: string) => (await loadEndpoints(roots, ns)).map((e) => e.host);
  assert.deepEqual(await hostOf([a, b], 'r.example:5000'), ['underscore.example']);
  assert.deepEqual(
    await hostOf([b, a], 'r.example:5000'),
    ['default-b.example'],
    "b's _default comes before a",
  );
  assert.deepEqual(await hostOf([a, b], 'only-b.example'), ['from-b.example']);
  assert.deepEqual(await hostOf([a, b], 'elsewhere.example'), ['default-b.example']);
  assert.deepEqual(await hostOf([a], 'elsewhere.example'), ['elsewhere.example']);
  assert.deepEqual(await hostOf([], 'docker.io'), ['registry-1.docker.io']);
  assert.deepEqual(await hostOf([join(tmp, 'missing')], 'x.example'), ['x.example']);
});

test('a broken hosts.toml is reported and replaced by the directory certificate files', async () => {
  const dir = join(tmp, 'broken', 'r.example');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'hosts.toml'), 'server = "https://mirror.example"\ncapabilities = ["teleport"]\n');
  writeFileSync(join(dir, 'ca.crt'), 'x');
  writeFileSync(join(dir, 'client.cert'), 'x');
  writeFileSync(join(dir, 'client.key'), 'x');
  writeFileSync(join(dir, 'other.cert'), 'x');
  const warnings: string[] = [];
  const es = await loadEndpoints([join(tmp, 'broken')], 'r.example', (m) => warnings.push(m));
  assert.equal(warnings.length, 1);
  assert.match(warnings[0] ?? '', /hosts\.toml is not valid/);
  assert.equal(es.length, 1);
  assert.equal(es[0]!.host, 'r.example', 'the mirror of the broken file is not used');
  assert.deepEqual(es[0]!.caFiles, [join(dir, 'ca.crt')]);
  assert.deepEqual(es[0]!.clientPairs, [
    [join(dir, 'client.cert'), join(dir, 'client.key')],
    [join(dir, 'other.cert'), ''],
  ]);

  // A directory with no hosts.toml: the certificate files alone.
  const certsOnly = join(tmp, 'certs-only', '127.0.0.1:5000');
  mkdirSync(certsOnly, { recursive: true });
  writeFileSync(join(certsOnly, 'ca.crt'), 'x');
  const local = await loadEndpoints([join(tmp, 'certs-only')], '127.0.0.1:5000');
  assert.deepEqual(show(local), ['https://127.0.0.1:5000/v2 [pull,resolve,push] +insecure+fallback']);
  assert.deepEqual(local[0]?.caFiles, [join(certsOnly, 'ca.crt')]);
});
