/**
 * A small deterministic generator for fault injection in tests (never for anything secret, and
 * never the global PRNG): xorshift32 (Marsaglia 2003) seeded through one round of a 32-bit mix so
 * that nearby seeds diverge at once. Returns numbers in [0, 1).
 */
export function createSeededPrng(seed: number): () => number {
  let x = Math.imul((seed | 0) ^ 0x9e3779b9, 0x85ebca6b) >>> 0;
  x = (x ^ (x >>> 13)) >>> 0;
  if (x === 0) x = 0x6d2b79f5;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x1_0000_0000;
  };
}
