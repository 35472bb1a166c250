// The contract between the policy engine (src/policy) and its users (src/gates, the CLI, the
// differential tests). Types only; the engine implements them.

/** A Cedar entity reference: `Type::"id"`. */
export interface EntityUid {
  readonly type: string;
  readonly id: string;
}

/**
 * A Cedar value as the compiled engine sees it: Bool, Long (a safe JS integer; see
 * docs/spec/policy.md for the range rule), String, entity reference, Set (a ReadonlyArray), Record
 * (a ReadonlyMap from attribute name to value) and, where supported, extension values.
 */
export type CedarValue =
  | boolean
  | number
  | string
  | EntityUid
  | readonly CedarValue[]
  | ReadonlyMap<string, CedarValue>
  | CedarExtensionValue;

/** An extension value (`decimal`, `ip`, …) once constructed; opaque to callers. */
export interface CedarExtensionValue {
  readonly extension: string;
  readonly text: string;
}

/** One entity: its reference, attributes, direct parents and (optionally) tags. */
export interface EntityInput {
  readonly uid: EntityUid;
  readonly attrs: ReadonlyMap<string, CedarValue>;
  readonly parents: readonly EntityUid[];
  /** Cedar entity tags (`hasTag`/`getTag`); absent means none. */
  readonly tags?: ReadonlyMap<string, CedarValue>;
}

/** A request to decide. `context` is a record. */
export interface PolicyRequest {
  readonly principal: EntityUid;
  readonly action: EntityUid;
  readonly resource: EntityUid;
  readonly context: ReadonlyMap<string, CedarValue>;
}

/** An evaluation error of one policy: it makes the decision deny (unlike Cedar, which skips it). */
export interface PolicyEvaluationError {
  /**
   * The policy id; `''` when the request or the entities do not conform to the schema the set
   * was compiled with (Cedar refuses such a request as a whole).
   */
  readonly policy: string;
  readonly message: string;
}

/**
 * What the engine decided. `policies` are the determining policy ids: the satisfied forbids when
 * a forbid decided, else the satisfied permits; empty when nothing matched (deny by default).
 * `errors` non-empty always means `deny`.
 */
export interface PolicyDecision {
  readonly decision: 'allow' | 'deny';
  readonly policies: readonly string[];
  readonly errors: readonly PolicyEvaluationError[];
}

/** An entity with its transitive ancestors resolved (keys as {@link entityKey} writes them). */
export interface ResolvedEntity {
  readonly uid: EntityUid;
  readonly attrs: ReadonlyMap<string, CedarValue>;
  readonly ancestors: ReadonlySet<string>;
  /** Cedar entity tags (`hasTag`/`getTag`); absent means none. */
  readonly tags?: ReadonlyMap<string, CedarValue>;
}

/** Entities by reference. The engine's entity store implements it; gates may layer their own. */
export interface EntityLookup {
  get(uid: EntityUid): ResolvedEntity | undefined;
}

/** A compiled policy set: what the gates evaluate on every call. */
export interface EvaluablePolicySet {
  evaluate(request: PolicyRequest, entities: EntityLookup): PolicyDecision;
  /** A policy's annotations (`@id`, `@approval`, …) by policy id; `undefined` for an unknown id. */
  annotations(policyId: string): ReadonlyMap<string, string> | undefined;
}
