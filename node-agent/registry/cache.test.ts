// The TTL cache: freshness by an injected clock, failures kept apart, concurrent calls joined,
// a bound on entries.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TtlCache } from './cache.js';

function clock() {
  let t = 1_000_000;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

test('reuses a value until its TTL passes on the injected clock', async () => {
  const c = clock();
  const cache = new TtlCache<number>(10, c.now);
  let loads = 0;
  const load = () => Promise.resolve(++loads);
  const ttl = { ok: () => 60_000, error: () => 30_000 };
  assert.equal(await cache.get('k', load, ttl), 1);
  c.advance(59_999);
  assert.equal(await cache.get('k', load, ttl), 1);
  assert.equal(cache.peek('k'), 1);
  c.advance(1);
  assert.equal(cache.peek('k'), undefined);
  assert.equal(await cache.get('k', load, ttl), 2);
  // Infinity keeps it until evicted.
  assert.equal(await cache.get('forever', load, { ok: () => Number.POSITIVE_INFINITY, error: () => 0 }), 3);
  c.advance(10 * 365 * 86_400_000);
  assert.equal(await cache.get('forever', load, ttl), 3);
});

test('keeps a failure for its own TTL and throws it again meanwhile', async () => {
  const c = clock();
  const cache = new TtlCache<string>(10, c.now);
  let calls = 0;
  const failing = () => {
    calls++;
    return Promise.reject(new Error(`refused #${calls}`));
  };
  const ttl = { ok: () => 60_000, error: () => 30_000 };
  await assert.rejects(cache.get('k', failing, ttl), /refused #1/);
  c.advance(29_000);
  await assert.rejects(cache.get('k', failing, ttl), /refused #1/);
  assert.equal(calls, 1);
  assert.equal(cache.peek('k'), undefined, 'peek shows successes only');
  c.advance(1_000);
  await assert.rejects(cache.get('k', failing, ttl), /refused #2/);
  // A zero TTL keeps nothing.
  await assert.rejects(cache.get('z', failing, { ok: () => 1, error: () => 0 }), /refused #3/);
  await assert.rejects(cache.get('z', failing, { ok: () => 1, error: () => 0 }), /refused #4/);
  // A load that throws synchronously, or rejects with a non-Error, still settles as an Error.
  await assert.rejects(
    cache.get(
      's',
      () => {
        throw new Error('sync');
      },
      ttl,
    ),
    /sync/,
  );
  await assert.rejects(
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the non-Error case under test
    cache.get('n', () => Promise.reject('plain string'), ttl),
    (err: unknown) => err instanceof Error && err.message === 'plain string',
  );
  await assert.rejects(
    cache.get('s', () => Promise.resolve('late'), ttl),
    /sync/,
    'the sync failure was cached',
  );
});

test('joins concurrent calls for one key into one load', async () => {
  const c = clock();
  const cache = new TtlCache<number>(10, c.now);
  let loads = 0;
  let release: (v: number) => void = () => undefined;
  const load = () => {
    loads++;
    return new Promise<number>((r) => (release = r));
  };
  const ttl = { ok: () => 1000, error: () => 1000 };
  const all = Promise.all([1, 2, 3, 4, 5].map(() => cache.get('k', load, ttl)));
  const other = cache.get('other', () => Promise.resolve(9), ttl);
  await new Promise((r) => setImmediate(r));
  assert.equal(loads, 1);
  release(42);
  assert.deepEqual(await all, [42, 42, 42, 42, 42]);
  assert.equal(await other, 9);
});

test('holds at most maxEntries, dropping the least recently used', async () => {
  const c = clock();
  const cache = new TtlCache<string>(3, c.now);
  const ttl = { ok: () => 1000, error: () => 1000 };
  for (const k of ['a', 'b', 'c']) await cache.get(k, () => Promise.resolve(k), ttl);
  await cache.get('a', () => Promise.resolve('reloaded'), ttl); // touches a
  await cache.get('d', () => Promise.resolve('d'), ttl); // evicts b
  assert.equal(cache.size, 3);
  assert.equal(cache.peek('a'), 'a');
  assert.equal(cache.peek('b'), undefined);
  assert.equal(cache.peek('c'), 'c');
  cache.delete('c');
  assert.equal(cache.peek('c'), undefined);
  cache.clear();
  assert.equal(cache.size, 0);
  assert.throws(() => new TtlCache(0, c.now), RangeError);
});
