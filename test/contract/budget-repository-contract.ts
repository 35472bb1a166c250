import { describe, expect, it } from 'vitest';
import type { BudgetRepository } from '../../src/gates/index.js';

export interface BudgetRepositoryFixture {
  readonly repository: BudgetRepository;
  /** A second repository over the same storage (another connection), when the store has one. */
  readonly sibling?: () => BudgetRepository;
  close?(): void;
}

/** The contract every BudgetRepository meets (memory, SQLite). */
export function runBudgetRepositoryContract(
  name: string,
  open: () => BudgetRepositoryFixture,
): void {
  describe(`BudgetRepository contract: ${name}`, () => {
    const withRepo = async (fn: (f: BudgetRepositoryFixture) => Promise<void>) => {
      const fixture = open();
      try {
        await fn(fixture);
      } finally {
        fixture.close?.();
      }
    };

    it('spends up to the limit and no further', () =>
      withRepo(async ({ repository: r }) => {
        expect(await r.spend('k', 60, 100)).toEqual({ ok: true, total: 60 });
        expect(await r.spend('k', 41, 100)).toEqual({ ok: false, total: 60 });
        expect(await r.spend('k', 40, 100)).toEqual({ ok: true, total: 100 });
        expect(await r.spend('k', 0, 100)).toEqual({ ok: true, total: 100 });
        expect(await r.spend('other', 101, 100)).toEqual({ ok: false, total: 0 });
        expect(await r.spent('k')).toBe(100);
        expect(await r.spent('never')).toBe(0);
      }));

    it('refunds, never below zero', () =>
      withRepo(async ({ repository: r }) => {
        await r.spend('k', 30, 100);
        await r.refund('k', 10);
        expect(await r.spent('k')).toBe(20);
        await r.refund('k', 50);
        expect(await r.spent('k')).toBe(0);
      }));

    it('refuses amounts that are not non-negative safe integers', () =>
      withRepo(async ({ repository: r }) => {
        for (const bad of [-1, 1.5, Number.NaN, 2 ** 53])
          await expect(Promise.resolve().then(() => r.spend('k', bad, 100))).rejects.toMatchObject({
            code: 'ERR_BUDGET_AMOUNT_INVALID',
          });
        expect(await r.spent('k')).toBe(0);
      }));

    it('is atomic under concurrency: concurrent spends never overshoot', () =>
      withRepo(async ({ repository: r, sibling }) => {
        const other = sibling?.() ?? r;
        const results = await Promise.all(
          Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? r : other).spend('shared', 7, 100)),
        );
        expect(results.filter((x) => x.ok)).toHaveLength(14);
        expect(await r.spent('shared')).toBe(98);
      }));

    it('counts calls per window and starts a newer window from zero', () =>
      withRepo(async ({ repository: r }) => {
        expect(await r.countCall('a', 10, 2)).toEqual({ ok: true, total: 1 });
        expect(await r.countCall('a', 10, 2)).toEqual({ ok: true, total: 2 });
        expect(await r.countCall('a', 10, 2)).toEqual({ ok: false, total: 2 });
        expect(await r.countCall('b', 10, 2)).toEqual({ ok: true, total: 1 });
        expect(await r.countCall('a', 11, 2)).toEqual({ ok: true, total: 1 });
        // an older window after a newer one never counts (clocks that step back do not reopen it)
        expect((await r.countCall('a', 10, 2)).ok).toBe(false);
      }));
  });
}
