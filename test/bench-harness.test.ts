import { describe, expect, it } from 'vitest';
import {
  defaultRunOptions,
  formatTable,
  group,
  markdownTable,
  median,
  row,
} from '../bench/harness.js';

// Timing on shared machines is noisy: these tests check structure and sanity, never speed.
describe('bench harness', () => {
  it('MANDATE_BENCH_QUICK=1 selects the smoke settings', () => {
    expect(defaultRunOptions({ MANDATE_BENCH_QUICK: '1' })).toMatchObject({
      rounds: 2,
      roundMs: 50,
    });
    expect(defaultRunOptions({})).toMatchObject({ rounds: 7 });
  });

  it('median of odd and even counts', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(() => median([])).toThrow();
  });

  it('runs sync and async functions in quick mode and reports per-round medians and ratios', async () => {
    const work = (): number => {
      let x = 0;
      for (let i = 0; i < 200; i++) x = (x * 31 + i) | 0;
      return x;
    };
    let asyncCalls = 0;
    const results = await group('smoke')
      .add('a', work, { label: 'work A', bytesPerOp: 1000 })
      .add('b', work)
      .add('async', async () => {
        asyncCalls++;
        await Promise.resolve();
      })
      .run(defaultRunOptions({ MANDATE_BENCH_QUICK: '1' }));

    expect(results.name).toBe('smoke');
    expect(results.results.map((r) => r.id)).toStrictEqual(['a', 'b', 'async']);
    for (const r of results.results) {
      expect(r.roundsUsPerOp).toHaveLength(2);
      expect(r.usPerOp).toBeGreaterThan(0);
      expect(r.opsPerSecond).toBeCloseTo(1e6 / r.usPerOp);
      expect(r.batchSize).toBeGreaterThanOrEqual(1);
    }
    expect(asyncCalls).toBeGreaterThan(0);
    expect(results.get('a').label).toBe('work A');
    expect(results.get('a').mbPerSecond).toBeCloseTo(1000 / results.get('a').usPerOp);
    expect(results.get('b').label).toBe('b');
    expect(results.get('b').mbPerSecond).toBeUndefined();
    expect(() => results.get('missing')).toThrow();

    // The same function against itself: the ratio is 1 up to noise (wide bounds on purpose).
    const ratio = results.ratio('a', 'b');
    expect(ratio).toBeGreaterThan(0.2);
    expect(ratio).toBeLessThan(5);
    expect(results.ratio('a', 'a')).toBe(1);

    const rows = [row(results, 'a', { baseline: 'b', target: '≈ 1×' }), row(results, 'async')];
    expect(rows[0]).toMatchObject({ baseline: 'b', ratio, target: '≈ 1×' });
    expect(rows[0]!.what).toMatch(/^work A \(.* MB\/s\)$/);
    expect(rows[1]).not.toHaveProperty('baseline');

    const lines = formatTable(rows).split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(
      /^what\s+\| µs\/op \| baseline\s+\| baseline µs\/op \| ratio\s+\| target$/,
    );
    // Columns line up: every row puts its separators where the header does.
    const bars = (line: string): number[] => [...line.matchAll(/\|/g)].map((m) => m.index);
    expect(bars(lines[2]!)).toStrictEqual(bars(lines[0]!));

    const markdown = markdownTable(rows).split('\n');
    expect(markdown[0]).toBe('| what | µs/op | baseline | baseline µs/op | ratio | target |');
    expect(markdown[1]).toBe('|---|---:|---|---:|---:|---|');
    expect(markdown[2]).toContain(`| ${ratio.toFixed(2)}× | ≈ 1× |`);
  });

  it('refuses duplicate ids', () => {
    const g = group('dup').add('x', () => 1);
    expect(() => g.add('x', () => 2)).toThrow();
  });
});
