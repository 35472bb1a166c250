// The public API of `mandate/policy`: Cedar policy sets validated with cedar-wasm and compiled to
// one JavaScript function per policy; entity stores; Cedar's JSON entity and request forms. The
// supported Cedar subset and the evaluation semantics are in docs/spec/policy.md §1.
import { invalid } from '../core/internal.js';
import { validatePolicySet } from './cedar.js';
import { parseDecimal, parseIp } from './extensions.js';
import type { CedarExtensionValue } from './types.js';

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

const DECIMAL_NUMBER = /^-?[0-9]+(\.[0-9]+)?$/;

/**
 * A Cedar `decimal` value, as `decimal("…")` builds it: from its text (`"12.5"`: digits, a point,
 * 1 to 4 digits) or from a JS number that a decimal holds exactly (`12.5`, `4` → `4.0`). Throws
 * `ERR_POLICY_INPUT_INVALID` where Cedar would refuse the text, or for a number with more than 4
 * fraction digits, outside the decimal range, or not finite — never rounded. Extension values
 * must come from here or {@link cedarIp}: the engine does not accept look-alike objects.
 *
 * @example
 * ```ts
 * cedarDecimal(12.5).text; // '12.5000'
 * ```
 */
export function cedarDecimal(value: string | number): CedarExtensionValue {
  let text: string;
  if (typeof value === 'number') {
    // String() gives the shortest text that round-trips: exact whenever a decimal can be exact.
    const shortest = Number.isInteger(value) ? `${value}.0` : String(value);
    if (!Number.isFinite(value) || !DECIMAL_NUMBER.test(shortest))
      throw invalid('ERR_POLICY_INPUT_INVALID', `\`${String(value)}\` is not a cedar decimal`);
    text = shortest.includes('.') ? shortest : `${shortest}.0`;
  } else text = value;
  const decimal = parseDecimal(text);
  if (typeof decimal === 'string') throw invalid('ERR_POLICY_INPUT_INVALID', decimal);
  return decimal;
}

/**
 * A Cedar `ipaddr` value, as `ip("…")` builds it (`"10.0.0.1"`, `"10.0.0.0/8"`, `"::1"`);
 * throws `ERR_POLICY_INPUT_INVALID` where Cedar would refuse the text.
 */
export function cedarIp(text: string): CedarExtensionValue {
  const ip = parseIp(text);
  if (typeof ip === 'string') throw invalid('ERR_POLICY_INPUT_INVALID', ip);
  return ip;
}
