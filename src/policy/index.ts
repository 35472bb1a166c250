// The public API of `mandate/policy`: Cedar policy sets validated with cedar-wasm and compiled to
// JavaScript closures; entity stores; Cedar's JSON entity and request forms. The supported Cedar
// subset and the evaluation semantics are in docs/spec/policy.md §1.
import { parsePolicySet, parseSchema, validatePolicySet } from './cedar.js';
import { CompiledPolicySet, schemaActionEntities } from './compile.js';

export { CompiledPolicySet } from './compile.js';
export type { PolicyInfo } from './compile.js';
export {
  EntityStore,
  parseCedarEntities,
  parseCedarRequest,
  DEFAULT_CEDAR_INPUT_LIMITS,
} from './entities.js';
export type { CedarInputLimits } from './entities.js';
export { entityKey } from './values.js';
export type {
  EntityUid,
  CedarValue,
  CedarExtensionValue,
  EntityInput,
  PolicyRequest,
  PolicyEvaluationError,
  PolicyDecision,
  ResolvedEntity,
  EntityLookup,
  EvaluablePolicySet,
} from './types.js';

/** What {@link compilePolicySet} compiles. */
export interface PolicySetSource {
  /** The policy set in Cedar's policy language. */
  readonly policies: string;
  /**
   * A schema in Cedar's human-readable schema format. When given, the policies must validate
   * against it in strict mode, and evaluation takes action entities (the action hierarchy) from
   * it, as Cedar's authorizer does when given a schema.
   */
  readonly schema?: string;
}

/**
 * Parses, (with a schema) validates, and compiles a Cedar policy set.
 *
 * Throws `ERR_POLICY_SYNTAX` when the text does not parse, `ERR_POLICY_SCHEMA_INVALID` when the
 * schema does not, `ERR_POLICY_INVALID` when a policy fails strict validation against the
 * schema, and `ERR_POLICY_UNSUPPORTED` naming a construct the compiler does not support
 * (templates, extension functions such as `decimal`, `ip`, `datetime`).
 *
 * @example
 * ```ts
 * const set = compilePolicySet({
 *   policies: 'permit(principal, action == Action::"callTool", resource is Tool) when { principal.level > 2 };',
 * });
 * const entities = parseCedarEntities([{ uid: { type: 'Agent', id: 'a' }, attrs: { level: 3 }, parents: [] }]);
 * const decision = set.evaluate(
 *   parseCedarRequest({
 *     principal: { type: 'Agent', id: 'a' },
 *     action: { type: 'Action', id: 'callTool' },
 *     resource: { type: 'Tool', id: 'refund' },
 *     context: {},
 *   }),
 *   entities,
 * );
 * decision.decision; // 'allow', decision.policies: ['policy0']
 * ```
 */
export function compilePolicySet(source: PolicySetSource): CompiledPolicySet {
  const parsed = parsePolicySet(source.policies);
  if (source.schema === undefined) return new CompiledPolicySet(parsed, undefined);
  const schemaJson = parseSchema(source.schema);
  validatePolicySet(source.policies, source.schema);
  return new CompiledPolicySet(parsed, schemaActionEntities(schemaJson));
}

/**
 * Validates a policy set strictly against a schema (Cedar's human-readable schema format) without
 * compiling it. Throws `ERR_POLICY_SYNTAX`, `ERR_POLICY_SCHEMA_INVALID` or `ERR_POLICY_INVALID`.
 */
export function validatePolicies(policies: string, schema: string): void {
  validatePolicySet(policies, schema);
}
