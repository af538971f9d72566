// A small seeded generator (xorshift32) for tests and simulations that must send the same
// cases on every run.

/** Returns numbers in [0, 1), the same sequence for the same seed. */
export function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}
