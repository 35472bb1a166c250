// The public API of `mandate/policy`: Cedar policy sets validated with cedar-wasm and compiled to
// one JavaScript function per policy; entity stores; Cedar's JSON entity and request forms. The
// supported Cedar subset and the evaluation semantics are in docs/spec/policy.md §1.
import { validatePolicySet } from './cedar.js';

export { CompiledPolicySet, compilePolicySet } from './compile.js';
export type { PolicyInfo, PolicySetSource } from './compile.js';
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

/**
 * Validates a policy set strictly against a schema (Cedar's human-readable schema format) without
 * compiling it. Throws `ERR_POLICY_SYNTAX`, `ERR_POLICY_SCHEMA_INVALID` or `ERR_POLICY_INVALID`.
 */
export function validatePolicies(policies: string, schema: string): void {
  validatePolicySet(policies, schema);
}
