// Table tests of reference normalisation against docker/distribution's rules (the kubelet's and
// containerd's CRI's), the CRI record name, and hostile inputs that must come back null, never throw.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  criImageName,
  criImageNameOf,
  formatImageRef,
  normalizeImageRef,
  parseDigest,
  parseImageRef,
  registryHostname,
  repositoryName,
  sourceKey,
  type ImageRef,
} from './image-ref.js';

const D = `sha256:${'a'.repeat(64)}`;
const D512 = `sha512:${'b'.repeat(128)}`;
const D384 = `sha384:${'c'.repeat(96)}`;

test('normalises references the way the kubelet and containerd name images', () => {
  const cases: [string, string][] = [
    ['nginx', 'docker.io/library/nginx:latest'],
    ['nginx:1.27', 'docker.io/library/nginx:1.27'],
    ['bitnami/redis:7', 'docker.io/bitnami/redis:7'],
    ['docker.io/nginx', 'docker.io/library/nginx:latest'],
    ['docker.io/library/nginx:1', 'docker.io/library/nginx:1'],
    ['index.docker.io/library/busybox', 'docker.io/library/busybox:latest'],
    ['index.docker.io/busybox', 'docker.io/library/busybox:latest'],
    ['127.0.0.1:5000/team/app:1', '127.0.0.1:5000/team/app:1'],
    ['127.0.0.1:5000/app', '127.0.0.1:5000/app:latest'],
    ['localhost/app', 'localhost/app:latest'],
    ['localhost:5000/app:v2', 'localhost:5000/app:v2'],
    ['[::1]:5000/app:1', '[::1]:5000/app:1'],
    ['example:5000/app', 'example:5000/app:latest'],
    ['registry.example.com/a/b/c/d:tag', 'registry.example.com/a/b/c/d:tag'],
    // Upper case is allowed in a tag, and a capitalised first component names a registry.
    ['nginx:Latest-RC_1.2', 'docker.io/library/nginx:Latest-RC_1.2'],
    ['Registry/app', 'Registry/app:latest'],
    ['Reg.Example.COM/team/app:1', 'Reg.Example.COM/team/app:1'],
    // A bare "localhost" with no slash is a Hub repository, as in docker/distribution.
    ['localhost', 'docker.io/library/localhost:latest'],
    ['localhost:5000', 'docker.io/library/localhost:5000'],
    // Separators of the path grammar.
    ['a__b/c-d/e.f_g--h', 'docker.io/a__b/c-d/e.f_g--h:latest'],
    [`registry.k8s.io/pause@${D}`, `registry.k8s.io/pause@${D}`],
    [`ghcr.io/o/r:v1@${D}`, `ghcr.io/o/r:v1@${D}`],
    [`app@${D512}`, `docker.io/library/app@${D512}`],
    [`app@${D384}`, `docker.io/library/app@${D384}`],
  ];
  for (const [input, want] of cases) assert.equal(normalizeImageRef(input), want, input);
});

test('gives the name the CRI image record carries: repo:tag, or repo@digest with the tag dropped', () => {
  const cases: [string, string][] = [
    ['nginx', 'docker.io/library/nginx:latest'],
    ['nginx:1.27', 'docker.io/library/nginx:1.27'],
    [`nginx@${D}`, `docker.io/library/nginx@${D}`],
    [`nginx:1.27@${D}`, `docker.io/library/nginx@${D}`],
    [`127.0.0.1:5000/team/app:v1@${D512}`, `127.0.0.1:5000/team/app@${D512}`],
    ['index.docker.io/team/app:V1', 'docker.io/team/app:V1'],
  ];
  for (const [input, want] of cases) {
    assert.equal(criImageNameOf(input), want, input);
    const r = parseImageRef(input);
    assert.ok(r !== null, input);
    assert.equal(criImageName(r), want, input);
  }
  assert.equal(criImageNameOf('team/App'), null);
});

test('keeps tag and digest apart in the parsed form', () => {
  assert.deepEqual(parseImageRef(`ghcr.io/o/r:v1@${D}`), {
    domain: 'ghcr.io',
    path: 'o/r',
    tag: 'v1',
    digest: D,
  } satisfies ImageRef);
  assert.deepEqual(parseImageRef(`r@${D}`), { domain: 'docker.io', path: 'library/r', tag: null, digest: D });
  assert.deepEqual(parseImageRef('localhost:5000/app'), {
    domain: 'localhost:5000',
    path: 'app',
    tag: 'latest',
    digest: null,
  });
});

test('rejects what is not a reference, and never throws', () => {
  const bad: [string, string][] = [
    ['', 'empty'],
    ['team/UPPER', 'upper case in the repository'],
    ['Registry/App', 'upper case in the repository after a registry'],
    ['NGINX', 'upper case in a Hub name'],
    ['a b', 'white space'],
    [' nginx', 'leading space'],
    ['nginx\n', 'trailing newline'],
    ['app@sha256:xyz', 'not hex'],
    [`app@sha256:${'a'.repeat(63)}`, 'sha256 one hex short'],
    [`app@sha256:${'a'.repeat(65)}`, 'sha256 one hex long'],
    [`app@sha256:${'A'.repeat(64)}`, 'upper-case hex'],
    [`app@sha512:${'a'.repeat(64)}`, 'sha512 with a sha256 length'],
    [`app@md5:${'a'.repeat(32)}`, 'unknown algorithm'],
    [`app@${D}@${D}`, 'two digests'],
    [`app@`, 'empty digest'],
    ['app:', 'empty tag'],
    ['app:.x', 'tag starting with a dot'],
    ['app:-x', 'tag starting with a dash'],
    ['app:1.0:2', 'two tags'],
    [`x:${'t'.repeat(129)}`, 'tag of 129 characters'],
    ['team//app', 'empty component'],
    ['/app', 'leading slash'],
    ['app/', 'trailing slash'],
    ['team/app/', 'trailing slash after a path'],
    ['-app', 'leading separator'],
    ['app-', 'trailing separator'],
    ['a..b', 'double dot'],
    ['a___b', 'triple underscore'],
    ['exa_mple.com/app', 'underscore in a host'],
    ['-bad.com/app', 'host label starting with a dash'],
    ['host.com:port/app', 'port not a number'],
    ['[zz::1]:5000/app', 'IPv6 host not hex'],
    ['a'.repeat(64), 'a bare image ID'],
    [`registry.example.com/${'a'.repeat(250)}`, 'name over 255 characters'],
    ['x'.repeat(5000), 'input over the length guard'],
    ['nginx\u0000', 'NUL byte'],
    ['ngi\u00f1x', 'non-ASCII'],
    ['http://registry.example.com/app', 'a URL'],
    ['../../etc/passwd', 'a path'],
  ];
  for (const [input, why] of bad) {
    assert.equal(parseImageRef(input), null, why);
    assert.equal(criImageNameOf(input), null, why);
  }
  assert.equal(normalizeImageRef('Not A Ref'), 'Not A Ref');
  // Not strings at all (from untyped JSON): null, no throw.
  const notStrings: unknown[] = [undefined, null, 42, {}, []];
  for (const v of notStrings) assert.equal(parseImageRef(v as string), null);
});

test('sourceKey drops the port, as containerd does in distribution.source labels', () => {
  const cases: [string, string, string][] = [
    ['127.0.0.1:5000/team/app:1', '127.0.0.1/team/app', '127.0.0.1'],
    ['nginx', 'docker.io/library/nginx', 'docker.io'],
    ['[::1]:5000/app', '::1/app', '::1'],
    ['localhost:5000/a/b', 'localhost/a/b', 'localhost'],
  ];
  for (const [input, key, host] of cases) {
    const r = parseImageRef(input);
    assert.ok(r !== null, input);
    assert.equal(sourceKey(r), key, input);
    assert.equal(registryHostname(r), host, input);
  }
  const r = parseImageRef('127.0.0.1:5000/team/app:1');
  assert.ok(r !== null);
  assert.equal(formatImageRef(r), '127.0.0.1:5000/team/app:1');
  assert.equal(repositoryName(r), '127.0.0.1:5000/team/app');
});

test('parseDigest accepts exactly the algorithms and lengths go-digest does', () => {
  assert.deepEqual(parseDigest(D), { algorithm: 'sha256', hex: 'a'.repeat(64) });
  assert.deepEqual(parseDigest(D512), { algorithm: 'sha512', hex: 'b'.repeat(128) });
  for (const bad of [
    '',
    ':',
    'sha256:',
    `:${'a'.repeat(64)}`,
    `SHA256:${'a'.repeat(64)}`,
    `sha256:${'g'.repeat(64)}`,
  ]) {
    assert.equal(parseDigest(bad), null, bad);
  }
});
