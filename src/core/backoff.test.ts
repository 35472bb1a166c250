import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { withJitter } from './backoff.js';

describe('withJitter', () => {
  it('spreads a delay over its upper half', () => {
    expect(withJitter(1000, () => 0)).toBe(500);
    expect(withJitter(1000, () => 0.5)).toBe(750);
    expect(withJitter(1000, () => 0.999_999)).toBe(1000);
  });

  it('stays within [delay/2, delay] whatever the source returns (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 3_600_000 }), fc.double(), (delayMs, r) => {
        const jittered = withJitter(delayMs, () => r);
        expect(jittered).toBeGreaterThanOrEqual(Math.floor(delayMs / 2));
        expect(jittered).toBeLessThanOrEqual(delayMs);
      }),
    );
  });
});
