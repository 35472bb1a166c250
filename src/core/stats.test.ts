import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { percentile } from './stats.js';

describe('percentile (nearest rank)', () => {
  it('picks the nearest-rank value', () => {
    const values = [15, 20, 35, 40, 50];
    expect(percentile(values, 5)).toBe(15);
    expect(percentile(values, 30)).toBe(20);
    expect(percentile(values, 40)).toBe(20);
    expect(percentile(values, 50)).toBe(35);
    expect(percentile(values, 100)).toBe(50);
    expect(percentile([], 50)).toBeNaN();
  });

  it('is a value of the list with at least p % of the values at or below it (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: -1000, max: 1000 }), { minLength: 1, maxLength: 50 }),
        fc.integer({ min: 1, max: 100 }),
        (values, p) => {
          const v = percentile(values, p);
          expect(values).toContain(v);
          expect(values.filter((x) => x <= v).length).toBeGreaterThanOrEqual(
            Math.ceil((p / 100) * values.length),
          );
          expect(values.filter((x) => x < v).length).toBeLessThan(
            Math.ceil((p / 100) * values.length),
          );
        },
      ),
    );
  });
});
