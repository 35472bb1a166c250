// The differential check of Mandate's compiled Cedar engine against cedar-wasm, shared by the
// fixed-seed suite (differential.test.ts), the regression cases (regressions.test.ts) and the
// on-demand fuzzer (scripts/fuzz-policy.ts).
//
// The rule, per request (docs/spec/policy.md §1):
// - Cedar reports an error (a policy that errs, or a request, entity list or context it refuses)
//   → Mandate denies (a decision `deny`, or the input refused with a typed error).
// - Otherwise the decisions are equal and the determining policy ids (Cedar's
//   `diagnostics.reason`) are equal, with one documented divergence, accepted narrowly: Mandate
//   holds Longs as safe JS integers, so a Long outside ±(2^53 − 1) that Cedar computes or reads
//   without error is an evaluation error (or a refused input) in Mandate. It is accepted only
//   when Mandate denies, every error it reports is that range error, and the numbers the error
//   names really do put the value outside the safe range (and inside Cedar's i64).
// - A policy set Mandate refuses to compile with ERR_POLICY_UNSUPPORTED is not a disagreement;
//   such cases are counted (the suite bounds their share).
// - Through a plain `EntityLookup` (not an `EntityStore`) the engine checks, against a schema,
//   only the entities it looks up: Cedar's refusal of the whole entity list is accepted there only
//   where the same request through the `EntityStore` denies.
//
// Each case runs its requests in turn against the case's `EntityStore`, against a second store
// (other entities, same compiled set), and through a plain lookup over the first store.
// `statefulIsAuthorized` stands in for `isAuthorized`; one request in 101 checks that they agree.

import { MandateError } from '../../src/core/errors.js';
import {
  compilePolicySet,
  parseCedarEntities,
  parseCedarRequest,
  type CompiledPolicySet,
  type EntityLookup,
  type EntityStore,
  type PolicyDecision,
} from '../../src/policy/index.js';
import {
  CedarSession,
  cedarDecideOnce,
  cedarParseErrors,
  cedarValidationErrors,
  type CedarAnswer,
} from './cedar-oracle.js';
import {
  policySetText,
  type EntityJson,
  type GeneratedCase,
  type RequestJson,
} from './generator.js';

/** What Mandate answered for one request. */
export type MandateAnswer =
  | ({ readonly kind: 'decision' } & PolicyDecision)
  | {
      /** Mandate refused the entities or the request with a typed error. */
      readonly kind: 'refused';
      readonly code: string;
      readonly message: string;
    };

/** Counts over the requests checked (one request against one policy set is one case). */
export interface DifferentialStats {
  cases: number;
  /** Cedar: allow without errors. */
  allow: number;
  /** Cedar: deny without errors. */
  deny: number;
  /** Cedar: a decision with at least one policy error. */
  cedarErrors: number;
  /** Cedar refused the request, entities or context as a whole. */
  cedarFailures: number;
  /** Requests whose policy set Mandate refused at compile time (ERR_POLICY_UNSUPPORTED). */
  refused: number;
  /** Requests where the documented safe-integer divergence applied. */
  rangeDivergences: number;
  /**
   * Requests through a plain `EntityLookup` that Cedar refuses for an entity the engine never
   * looks up (the engine checks such lookups entity by entity, docs/spec/policy.md §1), where
   * the same request through the `EntityStore` denies.
   */
  lazyLookupDivergences: number;
  /**
   * Of the requests where Cedar reports policy errors, those where the engine's errors (other
   * than safe-integer ones) name other policies (informational: the rule only asks for a deny).
   */
  errorPolicyMismatches: number;
  /** The first few of those, for a look. */
  errorPolicyMismatchExamples: string[];
  /** Policy sets checked, and how many were validated against their schema. */
  policySets: number;
  validatedSets: number;
  schemaSets: number;
  disagreements: number;
}

export function emptyStats(): DifferentialStats {
  return {
    cases: 0,
    allow: 0,
    deny: 0,
    cedarErrors: 0,
    cedarFailures: 0,
    refused: 0,
    rangeDivergences: 0,
    lazyLookupDivergences: 0,
    errorPolicyMismatches: 0,
    errorPolicyMismatchExamples: [],
    policySets: 0,
    validatedSets: 0,
    schemaSets: 0,
    disagreements: 0,
  };
}

export function formatStats(s: DifferentialStats): string {
  return (
    `${s.cases} cases over ${s.policySets} policy sets (${s.validatedSets}/${s.schemaSets} with a schema validated): ` +
    `allow ${s.allow}, deny ${s.deny}, cedar errors ${s.cedarErrors}, cedar failures ${s.cedarFailures}, ` +
    `safe-integer divergences ${s.rangeDivergences}, plain-lookup divergences ${s.lazyLookupDivergences}, erring policies named differently ${s.errorPolicyMismatches}, ` +
    `refused ${s.refused}, disagreements ${s.disagreements}`
  );
}

/** One disagreement: the request, both answers and why they disagree. */
export interface Disagreement {
  readonly request: RequestJson;
  /** The entities the request was decided against, and how the engine reached them. */
  readonly entities: readonly EntityJson[];
  readonly variant: EntityVariant;
  readonly cedar: CedarAnswer;
  readonly mandate: MandateAnswer;
  readonly reason: string;
  /** Whether the case was evaluated with its schema (validated). */
  readonly withSchema: boolean;
}

const SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const I64_MAX = 2n ** 63n - 1n;
const I64_MIN = -(2n ** 63n);

function outsideSafeInsideI64(v: bigint): boolean {
  return (v > SAFE || v < -SAFE) && v <= I64_MAX && v >= I64_MIN;
}

function bigints(text: string): bigint[] {
  return [...text.matchAll(/`(-?\d+)`/g)].map((m) => BigInt(m[1]!));
}

/**
 * Whether a Mandate error message is the safe-integer rule, and what it names is really outside
 * ±(2^53 − 1) (and an i64, which Cedar would otherwise have refused itself).
 */
export function isSafeIntegerRangeError(message: string): boolean {
  if (!message.includes('outside the supported')) return false;
  const op = /the result of (negate|add|subtract|multiply) /.exec(message);
  const numbers = bigints(message);
  if (op !== null) {
    const [a, b] = numbers;
    if (a === undefined) return false;
    switch (op[1]) {
      case 'negate':
        return numbers.length === 1 && outsideSafeInsideI64(-a);
      case 'add':
        return b !== undefined && outsideSafeInsideI64(a + b);
      case 'subtract':
        return b !== undefined && outsideSafeInsideI64(a - b);
      default:
        return b !== undefined && outsideSafeInsideI64(a * b);
    }
  }
  // A literal or an input value: `…literal `v` is outside…` / `integer `v` is outside…`. A
  // literal past 2^53 reaches the engine rounded, so only its magnitude is checked.
  return numbers.length === 1 && (numbers[0]! > SAFE || numbers[0]! < -SAFE);
}

/** `undefined` when the answers agree under the rule above, else why they do not. */
export function judge(cedar: CedarAnswer, mandate: MandateAnswer): string | undefined {
  const mandateDenies = mandate.kind === 'refused' || mandate.decision === 'deny';
  if (cedar.kind === 'failure') {
    return mandateDenies ? undefined : 'cedar refused the input but mandate allowed';
  }
  if (cedar.errors.length > 0) {
    return mandateDenies ? undefined : 'a policy errs in cedar but mandate allowed';
  }
  if (mandate.kind === 'refused') {
    return isSafeIntegerRangeError(mandate.message)
      ? undefined
      : `mandate refused an input cedar accepts: ${mandate.code}: ${mandate.message}`;
  }
  if (mandate.errors.length > 0) {
    if (mandate.decision !== 'deny') return 'mandate reports errors but allowed';
    const other = mandate.errors.find((e) => !isSafeIntegerRangeError(e.message));
    return other === undefined
      ? undefined
      : `mandate errs where cedar does not: ${other.policy}: ${other.message}`;
  }
  if (mandate.decision !== cedar.decision) {
    return `cedar ${cedar.decision}s, mandate ${mandate.decision}s`;
  }
  const a = [...cedar.policies].sort().join(',');
  const b = [...mandate.policies].sort().join(',');
  return a === b ? undefined : `determining policies differ: cedar [${a}], mandate [${b}]`;
}

function sameErringPolicies(a: CedarAnswer & { kind: 'decision' }, b: MandateAnswer): boolean {
  // A refused input names no policy (judge has checked the refusal).
  if (b.kind !== 'decision') return true;
  const ids = (xs: readonly { policy: string }[]): string =>
    [...new Set(xs.map((x) => x.policy))].sort().join(',');
  // The engine's safe-integer errors on policies Cedar evaluates without error are the
  // documented divergence.
  const cedarIds = new Set(a.errors.map((e) => e.policy));
  const extra = b.errors.filter(
    (e) => !cedarIds.has(e.policy) && isSafeIntegerRangeError(e.message),
  );
  return ids(a.errors) === ids(b.errors.filter((e) => !extra.includes(e)));
}

/** Whether the accepted divergence (not a plain agreement) decided a judged pair. */
function isRangeDivergence(cedar: CedarAnswer, mandate: MandateAnswer): boolean {
  if (cedar.kind !== 'decision' || cedar.errors.length > 0) return false;
  return mandate.kind === 'refused' || mandate.errors.length > 0;
}

function refusal(error: unknown): { code: string; message: string } {
  if (error instanceof MandateError) return { code: error.code, message: error.message };
  // Anything else is a crash, which is never an acceptable answer to bad input.
  throw error;
}

type Refusal = { readonly code: string; readonly message: string };

function parseEntities(entities: readonly EntityJson[]): EntityStore | Refusal {
  try {
    return parseCedarEntities(entities);
  } catch (error) {
    return refusal(error);
  }
}

/**
 * How a request reaches the engine's entities: the case's store; a second store (the entities
 * without the action entities and without one other entity) evaluated by the same compiled set,
 * as a gate evaluates one set against many stores; or the case's store behind a plain
 * `EntityLookup` that is not an `EntityStore` (the engine checks such lookups entity by entity).
 */
export type EntityVariant = 'store' | 'other store' | 'plain lookup';

/** The entities of the `other store` variant. */
export function otherEntities(entities: readonly EntityJson[]): EntityJson[] {
  const rest = entities.filter((e) => e.uid.type !== 'Action');
  return rest.slice(1);
}

/** Mandate's side of a case: the compiled set (or the refusal) and the entity stores (or their refusal). */
export class MandateSession {
  readonly compiled: CompiledPolicySet | Refusal;
  readonly #store: EntityStore | Refusal;
  readonly #otherEntities: readonly EntityJson[];
  #otherStore: EntityStore | Refusal | undefined;

  constructor(c: GeneratedCase, withSchema: boolean) {
    const text = policySetText(c.policies);
    try {
      this.compiled =
        withSchema && c.schema !== undefined
          ? compilePolicySet({ policies: text, schema: c.schema })
          : compilePolicySet({ policies: text });
    } catch (error) {
      this.compiled = refusal(error);
    }
    this.#store = parseEntities(c.entities);
    this.#otherEntities = otherEntities(c.entities);
  }

  /** The compile-time refusal, if any. */
  get compileError(): Refusal | undefined {
    return 'evaluate' in this.compiled ? undefined : this.compiled;
  }

  /** The entity list a variant evaluates against (what Cedar must be given). */
  entitiesOf(variant: EntityVariant, c: GeneratedCase): readonly EntityJson[] {
    return variant === 'other store' ? this.#otherEntities : c.entities;
  }

  decide(r: RequestJson, variant: EntityVariant = 'store'): MandateAnswer {
    const compiled = this.compiled;
    if (!('evaluate' in compiled)) throw new Error('the policy set did not compile');
    let store = this.#store;
    if (variant === 'other store') store = this.#otherStore ??= parseEntities(this.#otherEntities);
    if (!('get' in store)) return { kind: 'refused', ...store };
    const lookup: EntityLookup =
      variant === 'plain lookup' ? { get: (uid) => store.get(uid) } : store;
    let request;
    try {
      request = parseCedarRequest(r);
    } catch (error) {
      return { kind: 'refused', ...refusal(error) };
    }
    return { kind: 'decision', ...compiled.evaluate(request, lookup) };
  }
}

/** The outcome of checking one generated case. */
export interface CaseOutcome {
  readonly disagreements: readonly Disagreement[];
  /** Set when the case could not be compared at all (a generator or compile problem). */
  readonly problem?: string;
}

const CROSS_CHECK_EVERY = 101;

/** An answer without Cedar's messages (a cycle's message names whichever vertex it met first). */
function comparable(a: CedarAnswer): unknown {
  return a.kind === 'failure' ? 'failure' : [a.decision, a.policies, a.errors.map((e) => e.policy)];
}

/**
 * Checks every request of a case; updates `stats`. A policy set Cedar does not parse is a
 * generator bug (a problem). A set Mandate refuses with ERR_POLICY_UNSUPPORTED is counted; any
 * other compile error on a set Cedar accepts is a problem.
 */
export function checkCase(c: GeneratedCase, stats: DifferentialStats): CaseOutcome {
  // Cedar's validation decides whether the case runs with its schema (in both engines); the
  // policy set's parse is checked by Cedar only when Mandate reports a syntax error (each check
  // costs milliseconds, and a policy set serves dozens of requests).
  let withSchema = false;
  if (c.schema !== undefined) {
    withSchema = cedarValidationErrors(c).length === 0;
  }
  const mandate = new MandateSession(c, withSchema);
  const compileError = mandate.compileError;
  if (compileError?.code === 'ERR_POLICY_SYNTAX') {
    const parseErrors = cedarParseErrors(c.policies);
    if (parseErrors.length > 0)
      return { disagreements: [], problem: `cedar does not parse: ${parseErrors.join('; ')}` };
  }
  stats.policySets++;
  if (c.schema !== undefined) stats.schemaSets++;
  if (withSchema) stats.validatedSets++;
  if (compileError !== undefined) {
    if (compileError.code === 'ERR_POLICY_UNSUPPORTED') {
      stats.refused += c.requests.length;
      stats.cases += c.requests.length;
      return { disagreements: [] };
    }
    stats.disagreements++;
    return {
      disagreements: [],
      problem: `mandate does not compile a policy set cedar ${withSchema ? 'validates' : 'parses'}: ${compileError.code}: ${compileError.message}`,
    };
  }
  const cedar = new CedarSession(c, withSchema);
  const disagreements: Disagreement[] = [];
  const variants: readonly EntityVariant[] = ['store', 'other store', 'plain lookup'];
  for (const [i, request] of c.requests.entries()) {
    stats.cases++;
    const variant = variants[i % variants.length]!;
    const entities = mandate.entitiesOf(variant, c);
    const a = cedar.decide(request, entities);
    // The pre-parsed path stands in for `isAuthorized`: check it against the plain call on a
    // sample of the cases.
    if (stats.cases % CROSS_CHECK_EVERY === 0) {
      const plain = cedarDecideOnce(c, request, withSchema, entities);
      if (JSON.stringify(comparable(plain)) !== JSON.stringify(comparable(a)))
        return {
          disagreements,
          problem: `statefulIsAuthorized answered ${JSON.stringify(a)}, isAuthorized ${JSON.stringify(plain)}`,
        };
    }
    if (a.kind === 'failure') stats.cedarFailures++;
    else if (a.errors.length > 0) stats.cedarErrors++;
    else if (a.decision === 'allow') stats.allow++;
    else stats.deny++;
    const b = mandate.decide(request, variant);
    const reason = judge(a, b);
    if (reason !== undefined && variant === 'plain lookup' && a.kind === 'failure') {
      // A plain lookup shows the engine only the entities it asks for: Cedar's refusal of an
      // entity never asked for cannot reach it. Accepted only where the store path denies.
      const viaStore = mandate.decide(request, 'store');
      if (viaStore.kind === 'refused' || viaStore.errors.some((e) => e.policy === '')) {
        stats.lazyLookupDivergences++;
        continue;
      }
    }
    if (reason !== undefined) {
      stats.disagreements++;
      disagreements.push({ request, entities, variant, cedar: a, mandate: b, reason, withSchema });
    } else if (isRangeDivergence(a, b)) stats.rangeDivergences++;
    else if (a.kind === 'decision' && a.errors.length > 0 && !sameErringPolicies(a, b)) {
      stats.errorPolicyMismatches++;
      if (stats.errorPolicyMismatchExamples.length < 5)
        stats.errorPolicyMismatchExamples.push(
          JSON.stringify({ policies: c.policies, variant, request, cedar: a, mandate: b }),
        );
    }
  }
  return { disagreements };
}

/** A fixed regression case: one request, and the decision Cedar gave when it was found. */
export interface RegressionCase {
  readonly name: string;
  readonly schema?: string;
  readonly policies: readonly string[];
  readonly entities: readonly EntityJson[];
  readonly request: RequestJson;
  /** Cedar's answer when the case was recorded: its decision, or `failure` for a refused input. */
  readonly cedar: 'allow' | 'deny' | 'failure';
  /** What Mandate must answer. */
  readonly expected: 'allow' | 'deny';
  /** `plain lookup`: the entities reach the engine through a plain `EntityLookup`. */
  readonly lookup?: 'plain lookup';
}

/**
 * A disagreement as a ready-to-paste {@link RegressionCase} (TypeScript object literal). The
 * expected decision is Cedar's, or deny wherever Cedar reports an error.
 */
export function formatRegression(c: GeneratedCase, d: Disagreement, name: string): string {
  const cedar = d.cedar.kind === 'failure' ? 'failure' : d.cedar.decision;
  const expected =
    d.cedar.kind === 'decision' && d.cedar.errors.length === 0 ? d.cedar.decision : 'deny';
  const regression: RegressionCase = {
    name,
    ...(d.withSchema && c.schema !== undefined ? { schema: c.schema } : {}),
    policies: c.policies,
    // (A disagreement on the `other store` variant may need the first store evaluated before:
    // replay it with checkCase if this case alone does not reproduce it.)
    entities: d.entities,
    request: d.request,
    cedar,
    expected,
    ...(d.variant === 'plain lookup' ? { lookup: 'plain lookup' as const } : {}),
  };
  return JSON.stringify(regression, null, 2);
}

/** The case of a regression (one request). */
export function regressionCase(r: RegressionCase): GeneratedCase {
  return { schema: r.schema, policies: r.policies, entities: r.entities, requests: [r.request] };
}
