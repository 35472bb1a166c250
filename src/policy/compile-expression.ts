// The runtime of compiled policies: the operations generated code calls (codegen.ts), each
// erring exactly where Cedar's evaluator errs (checked construct by construct against
// cedar-wasm's isAuthorized in src/policy/*.test.ts and by the differential suite in
// test/policy/), and the compile-time helpers for constants and `like` patterns. An error is
// thrown as an EvaluationError and the policy set denies.
import { unsupported } from '../core/internal.js';
import { DEFAULT_JSON_LIMITS, JsonBudget, isObject, parseCedarJsonValue } from './json-values.js';
import {
  DecimalValue,
  IpValue,
  ipInRange,
  ipIsLoopback,
  ipIsMulticast,
  parseDecimal,
  parseIp,
} from './extensions.js';
import type { CedarValue, EntityUid, ResolvedEntity } from './types.js';
import {
  cedarEquals,
  entityKey,
  isEntity,
  kindOf,
  setContains,
  setContainsAll,
  setContainsAny,
} from './values.js';

/** What a compiled expression reads: the request and the entities. */
export interface EvalScope {
  readonly principal: EntityUid;
  readonly action: EntityUid;
  readonly resource: EntityUid;
  readonly context: ReadonlyMap<string, CedarValue>;
  lookup(uid: EntityUid): ResolvedEntity | undefined;
}

/** An evaluation error: the policy that raised it makes the decision deny. */
export class EvaluationError extends Error {
  override readonly name = 'EvaluationError';
}

const I64_MAX = 9223372036854775807n;
const I64_MIN = -9223372036854775808n;

function typeError(expected: string, value: CedarValue): EvaluationError {
  return new EvaluationError(`type error: expected ${expected}, got ${kindOf(value)}`);
}

/** A Long result outside the safe-integer range: Cedar's overflow error past i64, ours before. */
function rangeError(op: string, a: number, b?: number): EvaluationError {
  const exact =
    op === 'negate'
      ? -BigInt(a)
      : op === 'add'
        ? BigInt(a) + BigInt(b!)
        : op === 'subtract'
          ? BigInt(a) - BigInt(b!)
          : BigInt(a) * BigInt(b!);
  const operands = b === undefined ? `\`${a}\`` : `\`${a}\` and \`${b}\``;
  return exact > I64_MAX || exact < I64_MIN
    ? new EvaluationError(`integer overflow while attempting to ${op} ${operands}`)
    : new EvaluationError(
        `the result of ${op} ${operands} is outside the supported long range ±(2^53 − 1)`,
      );
}

function expectBool(value: CedarValue): boolean {
  if (typeof value !== 'boolean') throw typeError('bool', value);
  return value;
}

function expectLong(value: CedarValue): number {
  if (typeof value !== 'number') throw typeError('long', value);
  return value;
}

function expectSet(value: CedarValue): readonly CedarValue[] {
  if (!Array.isArray(value)) throw typeError('set', value);
  return value as readonly CedarValue[];
}

function expectEntity(value: CedarValue): EntityUid {
  if (!isEntity(value)) throw typeError('entity', value);
  return value;
}

function expectString(value: CedarValue): string {
  if (typeof value !== 'string') throw typeError('string', value);
  return value;
}

function notExpression(): never {
  throw unsupported('ERR_POLICY_UNSUPPORTED', 'an expression of unknown shape is not supported');
}

/** `entity in target`: equality, or target among the entity's transitive ancestors. */
function entityIn(
  scope: EvalScope,
  entity: EntityUid,
  target: EntityUid,
  targetKey?: string,
): boolean {
  if (entity.type === target.type && entity.id === target.id) return true;
  const resolved = scope.lookup(entity);
  if (resolved === undefined || resolved.ancestors.size === 0) return false;
  return resolved.ancestors.has(targetKey ?? entityKey(target));
}

/** Cedar's `in`: the right side is an entity or a set of entities (all checked). */
function evalIn(scope: EvalScope, left: CedarValue, right: CedarValue): boolean {
  const entity = expectEntity(left);
  if (Array.isArray(right)) {
    const targets = right as readonly CedarValue[];
    for (let i = 0; i < targets.length; i++) expectEntity(targets[i]!);
    for (let i = 0; i < targets.length; i++)
      if (entityIn(scope, entity, targets[i] as EntityUid)) return true;
    return false;
  }
  if (!isEntity(right)) throw typeError('set or entity', right);
  return entityIn(scope, entity, right);
}

function getAttribute(scope: EvalScope, value: CedarValue, attr: string): CedarValue {
  if (value instanceof Map) {
    const found = (value as ReadonlyMap<string, CedarValue>).get(attr);
    if (found === undefined)
      throw new EvaluationError(`record does not have the attribute \`${attr}\``);
    return found;
  }
  if (!isEntity(value)) throw typeError('record or entity', value);
  const entity = scope.lookup(value);
  if (entity === undefined)
    throw new EvaluationError(`entity \`${entityKey(value)}\` does not exist`);
  const found = entity.attrs.get(attr);
  if (found === undefined)
    throw new EvaluationError(`\`${entityKey(value)}\` does not have the attribute \`${attr}\``);
  return found;
}

function hasAttribute(scope: EvalScope, value: CedarValue, attr: string): boolean {
  if (value instanceof Map) return (value as ReadonlyMap<string, CedarValue>).has(attr);
  if (!isEntity(value)) throw typeError('record or entity', value);
  const entity = scope.lookup(value);
  return entity !== undefined && entity.attrs.has(attr);
}

/** A `like` pattern: literal pieces between `*` wildcards. Linear, no regular expression. */
export function compileLike(pattern: unknown): (text: string) => boolean {
  if (!Array.isArray(pattern)) return notExpression();
  const pieces: string[] = [''];
  for (const element of pattern as unknown[]) {
    if (element === 'Wildcard') pieces.push('');
    else if (isObject(element) && typeof element.Literal === 'string')
      pieces[pieces.length - 1] = `${pieces[pieces.length - 1]!}${element.Literal}`;
    else notExpression();
  }
  if (pieces.length === 1) {
    const only = pieces[0]!;
    return (text) => text === only;
  }
  const first = pieces[0]!;
  const last = pieces[pieces.length - 1]!;
  const middle = pieces.slice(1, -1).filter((p) => p.length > 0);
  const fixed = first.length + last.length;
  return (text) => {
    if (text.length < fixed || !text.startsWith(first) || !text.endsWith(last)) return false;
    let at = first.length;
    const end = text.length - last.length;
    for (let i = 0; i < middle.length; i++) {
      const piece = middle[i]!;
      const found = text.indexOf(piece, at);
      if (found < 0 || found + piece.length > end) return false;
      at = found + piece.length;
    }
    return true;
  };
}

function expectDecimal(value: CedarValue): DecimalValue {
  if (!(value instanceof DecimalValue)) throw typeError('decimal', value);
  return value;
}

function expectIp(value: CedarValue): IpValue {
  if (!(value instanceof IpValue)) throw typeError('ipaddr', value);
  return value;
}

/** The value of an expression built only of literals, sets and records; else undefined. */
export function constantValue(node: unknown, depth = 0): CedarValue | undefined {
  if (depth > 64 || !isObject(node)) return undefined;
  if ('Value' in node) {
    try {
      return parseCedarJsonValue(node.Value, 'literal', new JsonBudget(DEFAULT_JSON_LIMITS));
    } catch {
      return undefined;
    }
  }
  if (Array.isArray(node.Set)) {
    const values: CedarValue[] = [];
    for (const element of node.Set as unknown[]) {
      const v = constantValue(element, depth + 1);
      if (v === undefined) return undefined;
      values.push(v);
    }
    return Object.freeze(values);
  }
  if (isObject(node.Record) && Object.keys(node).length === 1) {
    const record = new Map<string, CedarValue>();
    for (const [k, element] of Object.entries(node.Record)) {
      const v = constantValue(element, depth + 1);
      if (v === undefined) return undefined;
      record.set(k, v);
    }
    return record;
  }
  return undefined;
}

export function constantEntity(node: unknown): EntityUid | undefined {
  const value = constantValue(node);
  return value !== undefined && isEntity(value) ? value : undefined;
}

export function constantPrimitiveSet(node: unknown): Set<CedarValue> | undefined {
  const value = constantValue(node);
  if (value === undefined || !Array.isArray(value)) return undefined;
  const elements = value as readonly CedarValue[];
  if (!elements.every((e) => typeof e !== 'object')) return undefined;
  return new Set(elements);
}

function checkedResult(name: string, a: number, b: number, result: number): number {
  // Safe operands give an exact sum or difference while it is safe; a product past 2^53 rounds
  // to a value that is not safe either, so this check never accepts a rounded result.
  if (!Number.isSafeInteger(result)) throw rangeError(name, a, b);
  return result === 0 ? 0 : result;
}

function construct(name: 'decimal' | 'ip', text: string): CedarValue {
  const value = name === 'decimal' ? parseDecimal(text) : parseIp(text);
  if (typeof value === 'string')
    throw new EvaluationError(
      `error while evaluating \`${name === 'decimal' ? 'decimal' : 'ipaddr'}\` extension function: ${value}`,
    );
  return value;
}

/** The operations generated policy code calls (codegen.ts): Cedar's semantics, Cedar's errors. */
export const runtime = {
  bool: expectBool,
  long: expectLong,
  str: expectString,
  ent: expectEntity,
  notBool: (value: CedarValue): EvaluationError => typeError('bool', value),
  fail: (message: string): never => {
    throw new EvaluationError(message);
  },
  eq: cedarEquals,
  inE: (scope: EvalScope, entity: EntityUid, target: EntityUid, key: string): boolean =>
    entityIn(scope, entity, target, key),
  inAny: evalIn,
  attr: getAttribute,
  contextAttr: (scope: EvalScope, attr: string): CedarValue => {
    const found = scope.context.get(attr);
    if (found === undefined)
      throw new EvaluationError(`record does not have the attribute \`${attr}\``);
    return found;
  },
  has: hasAttribute,
  hasPath: (scope: EvalScope, value: CedarValue, path: readonly string[]): boolean => {
    let v = value;
    for (let i = 0; i < path.length; i++) {
      if (!hasAttribute(scope, v, path[i]!)) return false;
      if (i < path.length - 1) v = getAttribute(scope, v, path[i]!);
    }
    return true;
  },
  neg: (value: CedarValue): number => {
    const a = expectLong(value);
    const r = -a;
    if (!Number.isSafeInteger(r)) throw rangeError('negate', a);
    return r === 0 ? 0 : r;
  },
  add: (x: CedarValue, y: CedarValue): number => {
    const a = expectLong(x);
    const b = expectLong(y);
    return checkedResult('add', a, b, a + b);
  },
  sub: (x: CedarValue, y: CedarValue): number => {
    const a = expectLong(x);
    const b = expectLong(y);
    return checkedResult('subtract', a, b, a - b);
  },
  mul: (x: CedarValue, y: CedarValue): number => {
    const a = expectLong(x);
    const b = expectLong(y);
    return checkedResult('multiply', a, b, a * b);
  },
  hasPrimitive: (set: ReadonlySet<CedarValue>, value: CedarValue): boolean =>
    typeof value !== 'object' && set.has(value),
  contains: (set: CedarValue, value: CedarValue): boolean => setContains(expectSet(set), value),
  containsAll: (set: CedarValue, other: CedarValue): boolean => {
    const s = expectSet(set);
    return setContainsAll(s, expectSet(other));
  },
  containsAny: (set: CedarValue, other: CedarValue): boolean => {
    const s = expectSet(set);
    return setContainsAny(s, expectSet(other));
  },
  isEmpty: (set: CedarValue): boolean => expectSet(set).length === 0,
  hasTag: (scope: EvalScope, value: CedarValue, tagValue: CedarValue): boolean => {
    const uid = expectEntity(value);
    const tag = expectString(tagValue);
    return scope.lookup(uid)?.tags?.has(tag) === true;
  },
  getTag: (scope: EvalScope, value: CedarValue, tagValue: CedarValue): CedarValue => {
    const uid = expectEntity(value);
    const tag = expectString(tagValue);
    const entity = scope.lookup(uid);
    if (entity === undefined)
      throw new EvaluationError(`entity \`${entityKey(uid)}\` does not exist`);
    const found = entity.tags?.get(tag);
    if (found === undefined)
      throw new EvaluationError(`\`${entityKey(uid)}\` does not have the tag \`${tag}\``);
    return found;
  },
  record: (names: readonly string[], values: readonly CedarValue[]): CedarValue => {
    const record = new Map<string, CedarValue>();
    for (let i = 0; i < names.length; i++) record.set(names[i]!, values[i]!);
    return record;
  },
  decimal: (text: CedarValue): CedarValue => construct('decimal', expectString(text)),
  ip: (text: CedarValue): CedarValue => construct('ip', expectString(text)),
  lessThan: (a: CedarValue, b: CedarValue): boolean => {
    const x = expectDecimal(a);
    return x.scaled < expectDecimal(b).scaled;
  },
  lessThanOrEqual: (a: CedarValue, b: CedarValue): boolean => {
    const x = expectDecimal(a);
    return x.scaled <= expectDecimal(b).scaled;
  },
  greaterThan: (a: CedarValue, b: CedarValue): boolean => {
    const x = expectDecimal(a);
    return x.scaled > expectDecimal(b).scaled;
  },
  greaterThanOrEqual: (a: CedarValue, b: CedarValue): boolean => {
    const x = expectDecimal(a);
    return x.scaled >= expectDecimal(b).scaled;
  },
  isIpv4: (a: CedarValue): boolean => !expectIp(a).v6,
  isIpv6: (a: CedarValue): boolean => expectIp(a).v6,
  isLoopback: (a: CedarValue): boolean => ipIsLoopback(expectIp(a)),
  isMulticast: (a: CedarValue): boolean => ipIsMulticast(expectIp(a)),
  isInRange: (a: CedarValue, b: CedarValue): boolean => {
    const x = expectIp(a);
    return ipInRange(x, expectIp(b));
  },
};
