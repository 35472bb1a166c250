// Cedar's JSON value form (entity attributes, request context, EST literals) → CedarValue:
// booleans, integers, strings, arrays (sets), objects (records), and the escapes
// `{"__entity": {"type", "id"}}` and `{"__extn": …}`. An object is an escape only when the
// escape is its single key, as in Cedar; `{"type", "id"}` without `__entity` is a record.
// Bounded in depth and in the number of values, since it reads untrusted input.
import { invalid, unsupported } from '../core/internal.js';
import { parseDecimal, parseIp } from './extensions.js';
import type { CedarValue, EntityUid } from './types.js';

/** Limits on one JSON input (an entity list, a request). */
export interface JsonLimits {
  /** Deepest nesting of sets and records. */
  readonly maxDepth: number;
  /** Most values (every scalar, set, record and entity reference counts one). */
  readonly maxValues: number;
  /** Longest string (UTF-16 code units). */
  readonly maxStringLength: number;
}

export const DEFAULT_JSON_LIMITS: JsonLimits = {
  maxDepth: 32,
  maxValues: 1_000_000,
  maxStringLength: 65_536,
};

/** A running count of values against the limits. */
export class JsonBudget {
  private values = 0;
  constructor(readonly limits: JsonLimits = DEFAULT_JSON_LIMITS) {}
  take(path: string): void {
    if (++this.values > this.limits.maxValues)
      throw invalid(
        'ERR_POLICY_INPUT_INVALID',
        `input holds more than ${this.limits.maxValues} values (at \`${path}\`)`,
      );
  }
}

const TYPE_NAME = /^[A-Za-z_][A-Za-z0-9_]*(::[A-Za-z_][A-Za-z0-9_]*)*$/;
// Cedar's reserved words cannot be identifiers (and so cannot be entity type names).
const RESERVED = new Set([
  'true',
  'false',
  'if',
  'then',
  'else',
  'in',
  'is',
  'like',
  'has',
  '__cedar',
]);

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function fail(path: string, what: string): never {
  throw invalid('ERR_POLICY_INPUT_INVALID', `\`${path}\`: ${what}`);
}

function checkString(value: string, path: string, budget: JsonBudget): string {
  if (value.length > budget.limits.maxStringLength)
    fail(path, `string longer than ${budget.limits.maxStringLength} characters`);
  return value;
}

/** An entity type name as Cedar writes it (`Agent`, `NS::Tool`). */
export function checkEntityType(type: unknown, path: string): string {
  if (typeof type !== 'string' || !TYPE_NAME.test(type) || type.length > 1024)
    fail(path, 'entity type is not a cedar type name');
  for (const part of type.split('::'))
    if (RESERVED.has(part)) fail(path, `entity type \`${part}\` is a reserved word`);
  return type;
}

/** `{"type","id"}` or `{"__entity":{"type","id"}}`: the two forms Cedar accepts for a uid. */
export function parseEntityUid(json: unknown, path: string, budget: JsonBudget): EntityUid {
  if (!isObject(json)) fail(path, 'expected an entity reference `{"type","id"}`');
  const keys = Object.keys(json);
  if (keys.length === 1 && keys[0] === '__entity')
    return parseTypeAndId(json.__entity, path, budget);
  return parseTypeAndId(json, path, budget);
}

function parseTypeAndId(json: unknown, path: string, budget: JsonBudget): EntityUid {
  if (!isObject(json)) fail(path, 'expected an entity reference `{"type","id"}`');
  const type = checkEntityType(json.type, `${path}.type`);
  const id = json.id;
  if (typeof id !== 'string') fail(`${path}.id`, 'entity id is not a string');
  budget.take(path);
  return Object.freeze({ type, id: checkString(id, `${path}.id`, budget) });
}

/**
 * One Cedar JSON value. Integers must be safe JS integers (|n| ≤ 2^53 − 1): Mandate represents
 * Longs as JS numbers and refuses wider ones rather than round them (docs/spec/policy.md §1).
 */
export function parseCedarJsonValue(
  json: unknown,
  path: string,
  budget: JsonBudget,
  depth = 0,
): CedarValue {
  switch (typeof json) {
    case 'boolean':
      budget.take(path);
      return json;
    case 'number':
      budget.take(path);
      if (!Number.isInteger(json)) fail(path, `\`${json}\` is not an integer`);
      if (!Number.isSafeInteger(json))
        fail(path, `integer \`${json}\` is outside the supported range ±(2^53 − 1)`);
      return json;
    case 'string':
      budget.take(path);
      return checkString(json, path, budget);
    case 'object': {
      if (json === null) fail(path, '`null` is not a cedar value');
      if (depth >= budget.limits.maxDepth)
        fail(path, `nested deeper than ${budget.limits.maxDepth}`);
      budget.take(path);
      if (Array.isArray(json))
        return Object.freeze(
          json.map((v, i) => parseCedarJsonValue(v, `${path}[${i}]`, budget, depth + 1)),
        );
      const keys = Object.keys(json);
      if (keys.length === 1 && keys[0] === '__entity')
        return parseTypeAndId((json as { __entity: unknown }).__entity, path, budget);
      if (keys.length === 1 && keys[0] === '__extn')
        return parseExtensionValue((json as { __extn: unknown }).__extn, path, budget);
      const record = new Map<string, CedarValue>();
      for (const key of keys) {
        checkString(key, path, budget);
        record.set(
          key,
          parseCedarJsonValue(
            (json as Record<string, unknown>)[key],
            `${path}.${key}`,
            budget,
            depth + 1,
          ),
        );
      }
      return record;
    }
    default:
      fail(path, `a ${typeof json} is not a cedar value`);
  }
}

/**
 * `{"__extn": {"fn": "decimal" | "ip", "arg": "…"}}` (or `"args": ["…"]`): the value, or
 * `ERR_POLICY_INPUT_INVALID` where Cedar refuses the text; other functions are unsupported.
 */
function parseExtensionValue(json: unknown, path: string, budget: JsonBudget): CedarValue {
  if (!isObject(json) || typeof json.fn !== 'string') fail(path, 'malformed `__extn` escape');
  const args = json.args === undefined ? [json.arg] : json.args;
  if (!Array.isArray(args) || args.length !== 1 || typeof args[0] !== 'string')
    fail(path, `\`${json.fn}\` takes one string`);
  const text = checkString(args[0], path, budget);
  budget.take(path);
  let value;
  switch (json.fn) {
    case 'decimal':
      value = parseDecimal(text);
      break;
    case 'ip':
      value = parseIp(text);
      break;
    default:
      throw unsupported(
        'ERR_POLICY_UNSUPPORTED',
        `\`${path}\`: the extension function \`${json.fn.slice(0, 64)}\` is not supported`,
      );
  }
  if (typeof value === 'string') fail(path, value);
  return value;
}

/** A JSON object as a Cedar record (attributes, context). */
export function parseCedarRecord(
  json: unknown,
  path: string,
  budget: JsonBudget,
): ReadonlyMap<string, CedarValue> {
  if (!isObject(json)) fail(path, 'expected a JSON object');
  const keys = Object.keys(json);
  if (keys.length === 1 && (keys[0] === '__entity' || keys[0] === '__extn'))
    fail(path, 'expected a record, not an escape');
  const value = parseCedarJsonValue(json, path, budget);
  if (!(value instanceof Map)) fail(path, 'expected a record');
  return value;
}
