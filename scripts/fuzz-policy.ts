// `npm run fuzz:policy -- --cases N [--seed S] [--no-extensions] [--conforming-only]`: the differential test of the
// compiled Cedar engine against cedar-wasm, for as long as asked. A random seed unless given;
// progress on stderr; on a disagreement, the shrunk counterexample as a ready-to-paste regression
// case for test/policy/regressions.test.ts, then exit 1.
import { randomInt } from 'node:crypto';
import { parseArgs } from 'node:util';
import fc from 'fast-check';
import {
  checkCase,
  emptyStats,
  formatRegression,
  formatStats,
  type DifferentialStats,
} from '../test/policy/differential.js';
import { caseArbitrary, type GeneratedCase } from '../test/policy/generator.js';

const { values } = parseArgs({
  options: {
    cases: { type: 'string', default: '100000' },
    seed: { type: 'string' },
    // Leave out `decimal` and `ip` (for an engine without them).
    'no-extensions': { type: 'boolean', default: false },
    // Leave out schema cases with non-conforming data (to look past a known disagreement).
    'conforming-only': { type: 'boolean', default: false },
  },
});
const target = Number(values.cases);
if (!Number.isSafeInteger(target) || target <= 0) {
  process.stderr.write(`--cases must be a positive integer, got \`${values.cases}\`\n`);
  process.exit(2);
}
const seed = values.seed === undefined ? randomInt(0, 2 ** 31 - 1) : Number(values.seed);
if (!Number.isSafeInteger(seed)) {
  process.stderr.write(`--seed must be an integer, got \`${values.seed}\`\n`);
  process.exit(2);
}

const REQUESTS_PER_SET = { min: 1, max: 40 };
const arbitrary = caseArbitrary({
  minRequests: REQUESTS_PER_SET.min,
  maxRequests: REQUESTS_PER_SET.max,
  extensions: !values['no-extensions'],
  nonconforming: !values['conforming-only'],
});
const stats = emptyStats();
let shrinking = false;
let nextReport = 10_000;
const started = performance.now();

let reportedAt = -1;
function progress(s: DifferentialStats): void {
  if (s.cases === reportedAt) return;
  reportedAt = s.cases;
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  process.stderr.write(`[fuzz:policy seed ${seed}] ${seconds}s ${formatStats(s)}\n`);
}

const property = fc.property(arbitrary, (c: GeneratedCase) => {
  // While shrinking, fast-check re-runs the property on smaller cases: keep the counts clean.
  const outcome = checkCase(c, shrinking ? emptyStats() : stats);
  if (!shrinking && stats.cases >= nextReport) {
    progress(stats);
    nextReport += 10_000;
  }
  const failed = outcome.problem !== undefined || outcome.disagreements.length > 0;
  if (failed) shrinking = true;
  return !failed;
});

// Rounds of fast-check runs, seeds S, S + 1, …, until the requests reach the target: sets hold
// about (min + max) / 2 requests each, so a round rarely falls short by much.
const perSet = (REQUESTS_PER_SET.min + REQUESTS_PER_SET.max) / 2;
let roundSeed = seed;
let result: fc.RunDetails<[GeneratedCase]>;
for (;;) {
  const numRuns = Math.max(1, Math.ceil((target - stats.cases) / perSet));
  result = fc.check(property, { seed: roundSeed, numRuns, endOnFailure: false });
  if (result.failed || stats.cases >= target) break;
  roundSeed++;
}
progress(stats);
for (const example of stats.errorPolicyMismatchExamples)
  process.stderr.write(
    `[fuzz:policy seed ${seed}] erring policies named differently: ${example}\n`,
  );
if (!result.failed) {
  process.stderr.write(`[fuzz:policy seed ${seed}] no disagreement\n`);
  process.exit(0);
}
const counterexample = result.counterexample?.[0];
if (counterexample === undefined) {
  process.stderr.write(
    `[fuzz:policy seed ${seed}] the property failed without a counterexample: ${String(result.errorInstance)}\n`,
  );
  process.exit(1);
}
const outcome = checkCase(counterexample, emptyStats());
process.stdout.write(
  `disagreement found with seed ${roundSeed} (shrunk ${result.numShrinks} times; rerun: --seed ${roundSeed})\n`,
);
if (outcome.problem !== undefined) {
  process.stdout.write(`problem: ${outcome.problem}\n${JSON.stringify(counterexample, null, 2)}\n`);
}
for (const [i, d] of outcome.disagreements.entries()) {
  process.stdout.write(
    `\n${d.reason}\ncedar:   ${JSON.stringify(d.cedar)}\nmandate: ${JSON.stringify(d.mandate)}\n`,
  );
  process.stdout.write(
    `regression case:\n${formatRegression(counterexample, d, `seed ${roundSeed} #${i}: ${d.reason}`)},\n`,
  );
}
process.exit(1);
