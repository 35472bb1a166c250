// Mandate's compiled Cedar engine against cedar-wasm on ≥ 100,000 generated cases (one request
// against one policy set is one case), with a fixed seed. The rule is in differential.ts; longer
// runs with other seeds: `npm run fuzz:policy -- --cases N [--seed S]`.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cedarVersion } from './cedar-oracle.js';
import {
  checkCase,
  emptyStats,
  formatRegression,
  formatStats,
  type CaseOutcome,
} from './differential.js';
import { caseArbitrary, type GeneratedCase } from './generator.js';

const SEED = 20_261_202;
const MIN_CASES = 100_000;
/**
 * Policy sets; each serves 60 to 140 requests (uniform), about 100 on average. Each set costs
 * both engines milliseconds to parse, validate and compile; each request costs cedar-wasm a few
 * hundred microseconds (mostly converting the entities), the compiled engine about one.
 */
const POLICY_SETS = 1_030;
const REQUESTS_PER_SET = 100;
const arbitrary = caseArbitrary({ minRequests: 60, maxRequests: 140 });
/** At most this share of cases may have a policy set the engine refuses to compile. */
const MAX_REFUSED_SHARE = 0.02;

describe('the compiled engine agrees with cedar-wasm', () => {
  it(`on at least ${MIN_CASES} generated cases (seed ${SEED})`, () => {
    const stats = emptyStats();
    let failure: { c: GeneratedCase; outcome: CaseOutcome } | undefined;
    const started = performance.now();
    const property = fc.property(arbitrary, (c) => {
      const outcome = checkCase(c, failure === undefined ? stats : emptyStats());
      const ok = outcome.problem === undefined && outcome.disagreements.length === 0;
      // fast-check shrinks from the first failure on: keep the smallest failing case.
      if (!ok) failure = { c, outcome };
      return ok;
    });
    // Rounds (seeds SEED, SEED + 1, …) until the cases reach MIN_CASES; the first round nearly
    // always does.
    let seed = SEED;
    let result = fc.check(property, { seed, numRuns: POLICY_SETS });
    while (!result.failed && stats.cases < MIN_CASES) {
      seed++;
      const numRuns = Math.ceil((MIN_CASES - stats.cases) / REQUESTS_PER_SET) + 1;
      result = fc.check(property, { seed, numRuns });
    }
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    process.stdout.write(
      `policy differential (cedar-wasm ${cedarVersion}, seeds ${SEED}..${seed}, ${seconds}s): ${formatStats(stats)}\n`,
    );
    if (result.failed && failure !== undefined) {
      const first = failure.outcome.disagreements[0];
      const detail =
        first === undefined
          ? `${failure.outcome.problem}\n${JSON.stringify(failure.c, null, 2)}`
          : `${first.reason}\ncedar:   ${JSON.stringify(first.cedar)}\nmandate: ${JSON.stringify(first.mandate)}\n` +
            formatRegression(failure.c, first, `seed ${seed}: ${first.reason}`);
      expect.fail(`disagreement (shrunk ${result.numShrinks} times):\n${detail}`);
    }
    expect(result.failed).toBe(false);
    expect(stats.cases).toBeGreaterThanOrEqual(MIN_CASES);
    expect(stats.refused / stats.cases).toBeLessThanOrEqual(MAX_REFUSED_SHARE);
    // The generator must reach every outcome, not just deny-by-default.
    for (const n of [stats.allow, stats.deny, stats.cedarErrors])
      expect(n).toBeGreaterThan(stats.cases / 20);
    for (const n of [stats.cedarFailures, stats.rangeDivergences])
      expect(n).toBeGreaterThan(stats.cases / 500);
    expect(stats.validatedSets).toBeGreaterThan(stats.schemaSets / 2);
    // Beyond the rule: where Cedar names erring policies, the engine's errors name the same
    // ones (the decision names its errors), safe-integer errors aside.
    expect(stats.errorPolicyMismatchExamples).toEqual([]);
  }, 600_000);
});
