// WWW-Authenticate parsing, the anonymous token request and the token answer.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bearerChallenge, parseChallenges, parseTokenResponse, tokenUrl } from './auth.js';

test('parses challenges as registries send them', () => {
  assert.deepEqual(
    parseChallenges(
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull"',
    ),
    [
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.docker.io/token',
          service: 'registry.docker.io',
          scope: 'repository:library/nginx:pull',
        },
      },
    ],
  );
  assert.deepEqual(parseChallenges('Basic realm="Registry Realm"'), [
    { scheme: 'basic', params: { realm: 'Registry Realm' } },
  ]);
  assert.deepEqual(parseChallenges('Basic realm="a", Bearer realm="https://t/x", service=reg'), [
    { scheme: 'basic', params: { realm: 'a' } },
    { scheme: 'bearer', params: { realm: 'https://t/x', service: 'reg' } },
  ]);
  assert.deepEqual(parseChallenges('Negotiate abc123==, Bearer realm = "https://t/\\"q\\""'), [
    { scheme: 'negotiate', params: {} },
    { scheme: 'bearer', params: { realm: 'https://t/"q"' } },
  ]);
});

test('survives hostile headers', () => {
  for (const h of [
    undefined,
    '',
    ',,,',
    '=',
    'Bearer realm="unterminated',
    'Bearer ===',
    '"x"',
    'x'.repeat(20_000),
  ]) {
    assert.doesNotThrow(() => parseChallenges(h));
  }
  assert.equal(bearerChallenge('Bearer realm="unterminated'), null);
  assert.equal(bearerChallenge('Bearer service="x"'), null, 'no realm');
  assert.equal(bearerChallenge('Bearer realm="file:///etc/passwd"'), null, 'not http(s)');
  assert.equal(bearerChallenge('Bearer realm="not a url"'), null);
  assert.equal(bearerChallenge('Basic realm="https://x/"'), null);
});

test('builds the anonymous token request: service and the pull scope of the repository', () => {
  const ch = bearerChallenge(
    'Bearer realm="https://auth.example/token?x=1",service="reg.example",scope="repository:a/b:pull"',
  );
  assert.ok(ch !== null);
  const url = tokenUrl(ch, 'a/b');
  assert.equal(url.origin + url.pathname, 'https://auth.example/token');
  assert.equal(url.searchParams.get('x'), '1');
  assert.equal(url.searchParams.get('service'), 'reg.example');
  assert.deepEqual(url.searchParams.getAll('scope'), ['repository:a/b:pull']);
  assert.equal(url.username + url.password, '', 'no credentials');
  const other = tokenUrl({ ...ch, scope: 'repository:a/b:pull,push', service: '' }, 'a/b');
  assert.deepEqual(other.searchParams.getAll('scope'), ['repository:a/b:pull', 'repository:a/b:pull,push']);
  assert.equal(other.searchParams.get('service'), null);
});

test('reads token answers', () => {
  const b = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v));
  assert.deepEqual(parseTokenResponse(b({ token: 'abc', expires_in: 300 })), {
    token: 'abc',
    expiresInSeconds: 300,
  });
  assert.deepEqual(parseTokenResponse(b({ access_token: 'xyz' })), { token: 'xyz', expiresInSeconds: 60 });
  assert.deepEqual(parseTokenResponse(b({ token: 'abc', expires_in: -5 })), {
    token: 'abc',
    expiresInSeconds: 60,
  });
  for (const bad of [
    '',
    'null',
    '[]',
    '{}',
    '{"token": ""}',
    '{"token": 5}',
    '{"token": "a\\nb"}',
    'not json',
  ]) {
    assert.equal(parseTokenResponse(b(bad)), null, bad);
  }
});
