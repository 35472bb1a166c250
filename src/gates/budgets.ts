// Budgets and rate limits at the gate (docs/spec/policy.md §5.4): counters that every process of
// one deployment shares through its store, changed atomically.
import { invalid } from '../core/internal.js';
import type { Constraint, VerifiedChain } from '../credentials/index.js';
import { decodeConstraintValue } from '../credentials/internal.js';

/** The outcome of a conditional increment: whether it happened, and the total after (or as it stays). */
export interface CounterResult {
  readonly ok: boolean;
  readonly total: number;
}

/**
 * Cumulative budgets and per-window call counts. Each method is one atomic step under
 * concurrency, across processes for a shared store: two spends that together exceed a limit
 * never both succeed.
 */
export interface BudgetRepository {
  /** Adds `amount` (a non-negative safe integer) to `key` only if the total stays ≤ `limit`. */
  spend(key: string, amount: number, limit: number): Promise<CounterResult>;
  /** Takes back a spend (never below zero): a call refused by a later lock. */
  refund(key: string, amount: number): Promise<void>;
  /** What `key` has spent so far (0 if nothing). */
  spent(key: string): Promise<number>;
  /**
   * Counts one call in `window` (e.g. the minute number) for `key` only if fewer than `limit`
   * were counted in that window; a newer window starts again from zero.
   */
  countCall(key: string, window: number, limit: number): Promise<CounterResult>;
}

/** In-memory counters (tests, one process). */
export class MemoryBudgetRepository implements BudgetRepository {
  readonly #spent = new Map<string, number>();
  readonly #calls = new Map<string, { window: number; count: number }>();

  spend(key: string, amount: number, limit: number): Promise<CounterResult> {
    checkAmount(amount);
    const total = this.#spent.get(key) ?? 0;
    if (total + amount > limit) return Promise.resolve({ ok: false, total });
    this.#spent.set(key, total + amount);
    return Promise.resolve({ ok: true, total: total + amount });
  }

  refund(key: string, amount: number): Promise<void> {
    checkAmount(amount);
    this.#spent.set(key, Math.max(0, (this.#spent.get(key) ?? 0) - amount));
    return Promise.resolve();
  }

  spent(key: string): Promise<number> {
    return Promise.resolve(this.#spent.get(key) ?? 0);
  }

  countCall(key: string, window: number, limit: number): Promise<CounterResult> {
    const entry = this.#calls.get(key);
    const count = entry === undefined || entry.window < window ? 0 : entry.count;
    if (entry !== undefined && entry.window > window)
      return Promise.resolve({ ok: false, total: entry.count });
    if (count >= limit) return Promise.resolve({ ok: false, total: count });
    this.#calls.set(key, { window, count: count + 1 });
    return Promise.resolve({ ok: true, total: count + 1 });
  }
}

export function checkAmount(amount: number): void {
  if (!Number.isSafeInteger(amount) || amount < 0)
    throw invalid(
      'ERR_BUDGET_AMOUNT_INVALID',
      `\`${String(amount)}\` is not a non-negative safe integer`,
    );
}

/**
 * The attribute-name prefix of a cumulative budget on a root credential:
 * `mandate.budget:TOOL#ARG` with the value `<=N` bounds the sum of argument ARG over every call of
 * TOOL by every agent under that root credential (the human's grant and everything delegated
 * below it) to N. In the reserved namespace, so no link can add or change one (verifyChain
 * refuses reserved names in links) and the per-call constraints never read it.
 */
export const BUDGET_ATTRIBUTE_PREFIX = 'mandate.budget:';

/** One cumulative budget a root credential declares. */
export interface BudgetDeclaration {
  readonly tool: string;
  readonly argument: string;
  readonly limit: number;
  /** The counter's key: the root credential's revocation id, the tool and the argument. */
  readonly key: string;
}

const budgetCache = new WeakMap<VerifiedChain, readonly BudgetDeclaration[]>();

/**
 * The budgets the chain's root credential declares (built once per chain). A declaration that
 * does not parse (`TOOL#ARG` and a `<=N` value with N ≥ 0) is `ERR_BUDGET_DECLARATION_INVALID`,
 * which denies every call under that root: a mistyped bound must not mean "no bound".
 */
export function budgetsOf(chain: VerifiedChain): readonly BudgetDeclaration[] {
  let budgets = budgetCache.get(chain);
  if (budgets === undefined) {
    const out: BudgetDeclaration[] = [];
    for (const [name, bytes] of chain.root.attributes) {
      if (!name.startsWith(BUDGET_ATTRIBUTE_PREFIX)) continue;
      const scoped = name.slice(BUDGET_ATTRIBUTE_PREFIX.length);
      const at = scoped.indexOf('#');
      let constraint: Constraint | undefined;
      try {
        constraint = decodeConstraintValue(bytes);
      } catch {
        constraint = undefined;
      }
      if (at <= 0 || at === scoped.length - 1 || constraint?.kind !== 'max' || constraint.limit < 0)
        throw invalid(
          'ERR_BUDGET_DECLARATION_INVALID',
          `\`${name}\` must be \`${BUDGET_ATTRIBUTE_PREFIX}TOOL#ARG\` with a value \`<=N\`, N ≥ 0`,
        );
      const tool = scoped.slice(0, at);
      const argument = scoped.slice(at + 1);
      out.push({
        tool,
        argument,
        limit: constraint.limit,
        key: `${chain.root.revocationId}:${tool}#${argument}`,
      });
    }
    budgets = Object.freeze(out);
    budgetCache.set(chain, budgets);
  }
  return budgets;
}
