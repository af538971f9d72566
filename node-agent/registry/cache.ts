// A bounded cache of settled look-ups with a time to live per outcome, that also joins
// concurrent calls for the same key into one: the registry is asked once per key however many
// pods wait for the image, a refused registry is not asked again for a while, and memory stays
// bounded however many references the node sees.
//
// Time comes from an injected clock (milliseconds); nothing here sleeps or sets timers.

/** How long an outcome stays, in milliseconds (Infinity: until evicted for room). */
export interface Ttl<V> {
  ok: (value: V) => number;
  error: (err: unknown) => number;
}

interface Entry<V> {
  outcome: { ok: true; value: V } | { ok: false; error: Error };
  expiresAt: number;
  /** When it was settled (ms). */
  storedAt: number;
}

/** A least-recently-used map of settled outcomes plus the promises still in flight. */
export class TtlCache<V> {
  private readonly entries = new Map<string, Entry<V>>();
  private readonly inFlight = new Map<string, Promise<V>>();

  /**
   * @param maxEntries settled outcomes kept (≥ 1); the least recently used goes first.
   * @param now the clock, in milliseconds.
   */
  constructor(
    private readonly maxEntries: number,
    private readonly now: () => number,
  ) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1)
      throw new RangeError('maxEntries must be a positive integer');
  }

  /**
   * The cached outcome of `key` if still fresh (a cached failure is thrown again), else the
   * outcome of `load()`, shared with every caller that asks for `key` before it settles, then
   * kept for `ttl.ok(value)` or `ttl.error(err)` milliseconds. Rejects only with what `load`
   * rejected with (a non-Error wrapped in an Error).
   */
  get(key: string, load: () => Promise<V>, ttl: Ttl<V>): Promise<V> {
    const hit = this.entries.get(key);
    if (hit !== undefined) {
      if (hit.expiresAt > this.now()) {
        // Refresh its place in the LRU order.
        this.entries.delete(key);
        this.entries.set(key, hit);
        return hit.outcome.ok ? Promise.resolve(hit.outcome.value) : Promise.reject(hit.outcome.error);
      }
      this.entries.delete(key);
    }
    const pending = this.inFlight.get(key);
    if (pending !== undefined) return pending;
    // Started on a later microtask, so the in-flight entry exists before `load` can settle.
    const p = Promise.resolve().then(async () => {
      try {
        const value = await load();
        this.store(key, { ok: true, value }, ttl.ok(value));
        return value;
      } catch (err) {
        const error = err instanceof Error ? err : new Error(String(err));
        this.store(key, { ok: false, error }, ttl.error(error));
        throw error;
      } finally {
        this.inFlight.delete(key);
      }
    });
    this.inFlight.set(key, p);
    return p;
  }

  /**
   * The fresh successful value of `key`, if any, settled at or after `notBefore` (ms; default
   * any time); never loads. An older one is dropped, so the next get() asks again.
   */
  peek(key: string, notBefore = -Infinity): V | undefined {
    const hit = this.entries.get(key);
    if (hit === undefined || hit.expiresAt <= this.now() || !hit.outcome.ok) return undefined;
    if (hit.storedAt < notBefore) {
      this.entries.delete(key);
      return undefined;
    }
    return hit.outcome.value;
  }

  /** Forgets the settled outcome of `key` (a call in flight still settles for its callers). */
  delete(key: string): void {
    this.entries.delete(key);
  }

  /** Number of settled outcomes held (fresh or not yet swept). */
  get size(): number {
    return this.entries.size;
  }

  /** Forgets every settled outcome (calls in flight still settle for their callers). */
  clear(): void {
    this.entries.clear();
  }

  private store(key: string, outcome: Entry<V>['outcome'], ttlMs: number): void {
    if (!(ttlMs > 0)) return;
    this.entries.delete(key);
    const now = this.now();
    this.entries.set(key, { outcome, expiresAt: now + ttlMs, storedAt: now });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done === true) break;
      this.entries.delete(oldest.value);
    }
  }
}
