// Cedar expressions (the JSON EST of cedar-wasm's policyToJson) → JavaScript closures.
// Each construct errors exactly where Cedar's evaluator errors (checked construct by construct
// against cedar-wasm's isAuthorized in compile-expression.test.ts and by the differential suite
// in test/policy/); an error is thrown as an EvaluationError and the policy set denies.
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
  type ValueKind,
} from './values.js';

/** What a compiled expression reads: the request and the entities. */
export interface EvalScope {
  readonly principal: EntityUid;
  readonly action: EntityUid;
  readonly resource: EntityUid;
  readonly context: ReadonlyMap<string, CedarValue>;
  lookup(uid: EntityUid): ResolvedEntity | undefined;
}

export type CompiledExpression = (scope: EvalScope) => CedarValue;

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

function refuse(construct: string): never {
  throw unsupported('ERR_POLICY_UNSUPPORTED', `${construct} is not supported`);
}

function notExpression(): never {
  return refuse('an expression of unknown shape');
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
function compileLike(pattern: unknown): (text: string) => boolean {
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

/** A literal: its value, or (a Long outside the safe range) a closure that errors when evaluated. */
function compileLiteral(json: unknown): CompiledExpression {
  let value: CedarValue;
  try {
    value = parseCedarJsonValue(json, 'literal', new JsonBudget(DEFAULT_JSON_LIMITS));
  } catch (error) {
    if (typeof json === 'number' && Number.isInteger(json)) {
      // cedar-wasm hands i64 literals over as JS numbers: past 2^53 the value is already rounded.
      const message = `long literal \`${json}\` is outside the supported range ±(2^53 − 1)`;
      return () => {
        throw new EvaluationError(message);
      };
    }
    if ((error as { code?: string }).code === 'ERR_POLICY_UNSUPPORTED') throw error;
    return refuse(`the literal \`${JSON.stringify(json)?.slice(0, 80)}\``);
  }
  return () => value;
}

type Binary = { left: unknown; right: unknown };

function binaryArgs(node: unknown): Binary {
  if (!isObject(node) || !('left' in node) || !('right' in node)) return notExpression();
  return node as Binary;
}

const VARIABLES: Readonly<Record<string, CompiledExpression>> = {
  principal: (s) => s.principal,
  action: (s) => s.action,
  resource: (s) => s.resource,
  context: (s) => s.context,
};

/** Operators cedar-wasm's EST names that are not extension function calls. */
const BUILTINS = new Set([
  'Value',
  'Var',
  'Slot',
  'Unknown',
  '!',
  'neg',
  '==',
  '!=',
  'in',
  '<',
  '<=',
  '>',
  '>=',
  '&&',
  '||',
  '+',
  '-',
  '*',
  'contains',
  'containsAll',
  'containsAny',
  'isEmpty',
  'getTag',
  'hasTag',
  '.',
  'has',
  'like',
  'is',
  'if-then-else',
  'Set',
  'Record',
]);

/** Compiles one EST expression; refuses what it does not support with ERR_POLICY_UNSUPPORTED. */
export function compileExpression(node: unknown, depth = 0): CompiledExpression {
  if (depth > 200) refuse('an expression nested deeper than 200');
  if (!isObject(node)) return notExpression();
  const keys = Object.keys(node);
  if (keys.length !== 1) return notExpression();
  const op = keys[0]!;
  const body = node[op];
  const sub = (n: unknown): CompiledExpression => compileExpression(n, depth + 1);
  if (!BUILTINS.has(op)) return compileExtensionCall(op, body, sub);
  switch (op) {
    case 'Value':
      return compileLiteral(body);
    case 'Var': {
      const variable = typeof body === 'string' ? VARIABLES[body] : undefined;
      return variable ?? notExpression();
    }
    case 'Slot':
      return refuse('a template slot');
    case 'Unknown':
      return refuse('an unknown (partial evaluation)');
    case '!': {
      const arg = sub(isObject(body) ? body.arg : undefined);
      return (s) => !expectBool(arg(s));
    }
    case 'neg': {
      const arg = sub(isObject(body) ? body.arg : undefined);
      return (s) => {
        const a = expectLong(arg(s));
        const r = -a;
        if (!Number.isSafeInteger(r)) throw rangeError('negate', a);
        return r === 0 ? 0 : r;
      };
    }
    case '==':
    case '!=': {
      const { left, right } = binaryArgs(body);
      const l = sub(left);
      const r = sub(right);
      // A constant side (the common `principal.region == "eu"`) is compared without a call.
      const rightConstant = constantValue(right);
      const k = rightConstant ?? constantValue(left);
      if (k !== undefined) {
        const other = rightConstant !== undefined ? l : r;
        if (typeof k !== 'object')
          return op === '==' ? (s) => other(s) === k : (s) => other(s) !== k;
        return op === '==' ? (s) => cedarEquals(other(s), k) : (s) => !cedarEquals(other(s), k);
      }
      return op === '==' ? (s) => cedarEquals(l(s), r(s)) : (s) => !cedarEquals(l(s), r(s));
    }
    case 'in': {
      const { left, right } = binaryArgs(body);
      const l = sub(left);
      const target = constantEntity(right);
      if (target !== undefined) {
        const key = entityKey(target);
        return (s) => entityIn(s, expectEntity(l(s)), target, key);
      }
      const r = sub(right);
      return (s) => evalIn(s, l(s), r(s));
    }
    case '<':
    case '<=':
    case '>':
    case '>=':
      return compileComparison(op, binaryArgs(body), sub);
    case '+':
    case '-':
    case '*':
      return compileArithmetic(op, binaryArgs(body), sub);
    case '&&': {
      const { left, right } = binaryArgs(body);
      const l = sub(left);
      const r = sub(right);
      return (s) => expectBool(l(s)) && expectBool(r(s));
    }
    case '||': {
      const { left, right } = binaryArgs(body);
      const l = sub(left);
      const r = sub(right);
      return (s) => expectBool(l(s)) || expectBool(r(s));
    }
    case 'contains': {
      const { left, right } = binaryArgs(body);
      const l = sub(left);
      const r = sub(right);
      const primitives = constantPrimitiveSet(left);
      if (primitives !== undefined) {
        // A literal set of booleans, numbers and strings: JS Set membership is Cedar equality.
        return (s) => {
          const v = r(s);
          return typeof v !== 'object' && primitives.has(v);
        };
      }
      return (s) => {
        const set = expectSet(l(s));
        return setContains(set, r(s));
      };
    }
    case 'containsAll':
    case 'containsAny': {
      const { left, right } = binaryArgs(body);
      const l = sub(left);
      const r = sub(right);
      const test = op === 'containsAll' ? setContainsAll : setContainsAny;
      return (s) => {
        const set = expectSet(l(s));
        return test(set, expectSet(r(s)));
      };
    }
    case 'isEmpty': {
      const arg = sub(isObject(body) ? body.arg : undefined);
      return (s) => expectSet(arg(s)).length === 0;
    }
    case 'hasTag':
    case 'getTag': {
      const { left, right } = binaryArgs(body);
      const l = sub(left);
      const r = sub(right);
      if (op === 'hasTag')
        return (s) => {
          const uid = expectEntity(l(s));
          const tag = expectString(r(s));
          const entity = s.lookup(uid);
          return entity?.tags?.has(tag) === true;
        };
      return (s) => {
        const uid = expectEntity(l(s));
        const tag = expectString(r(s));
        const entity = s.lookup(uid);
        if (entity === undefined)
          throw new EvaluationError(`entity \`${entityKey(uid)}\` does not exist`);
        const found = entity.tags?.get(tag);
        if (found === undefined)
          throw new EvaluationError(`\`${entityKey(uid)}\` does not have the tag \`${tag}\``);
        return found;
      };
    }
    case '.': {
      if (!isObject(body) || typeof body.attr !== 'string') return notExpression();
      const attr = body.attr;
      const left = body.left;
      if (isObject(left) && Object.keys(left).length === 1) {
        // Attributes of the request's variables, without the call that reads the variable.
        switch (left.Var) {
          case 'context':
            return (s) => {
              const found = s.context.get(attr);
              if (found === undefined)
                throw new EvaluationError(`record does not have the attribute \`${attr}\``);
              return found;
            };
          case 'principal':
            return (s) => getAttribute(s, s.principal, attr);
          case 'resource':
            return (s) => getAttribute(s, s.resource, attr);
          case 'action':
            return (s) => getAttribute(s, s.action, attr);
        }
      }
      const l = sub(left);
      return (s) => getAttribute(s, l(s), attr);
    }
    case 'has': {
      if (!isObject(body)) return notExpression();
      const l = sub(body.left);
      const attrs = typeof body.attr === 'string' ? [body.attr] : body.attr;
      if (!Array.isArray(attrs) || attrs.length === 0 || !attrs.every((a) => typeof a === 'string'))
        return notExpression();
      const path = attrs;
      if (path.length === 1) {
        const attr = path[0]!;
        return (s) => hasAttribute(s, l(s), attr);
      }
      // `e has a.b.c` is `e has a && e.a has b && e.a.b has c`.
      return (s) => {
        let value = l(s);
        for (let i = 0; i < path.length; i++) {
          if (!hasAttribute(s, value, path[i]!)) return false;
          if (i < path.length - 1) value = getAttribute(s, value, path[i]!);
        }
        return true;
      };
    }
    case 'like': {
      if (!isObject(body)) return notExpression();
      const l = sub(body.left);
      const matches = compileLike(body.pattern);
      return (s) => matches(expectString(l(s)));
    }
    case 'is': {
      if (!isObject(body) || typeof body.entity_type !== 'string') return notExpression();
      const type = body.entity_type;
      const l = sub(body.left);
      if (body.in === undefined) return (s) => expectEntity(l(s)).type === type;
      const target = constantEntity(body.in);
      if (target !== undefined) {
        const key = entityKey(target);
        return (s) => {
          const uid = expectEntity(l(s));
          return uid.type === type && entityIn(s, uid, target, key);
        };
      }
      const r = sub(body.in);
      return (s) => {
        const uid = expectEntity(l(s));
        return uid.type === type && evalIn(s, uid, r(s));
      };
    }
    case 'if-then-else': {
      if (!isObject(body)) return notExpression();
      const c = sub(body.if);
      const t = sub(body.then);
      const e = sub(body.else);
      return (s) => (expectBool(c(s)) ? t(s) : e(s));
    }
    case 'Set': {
      if (!Array.isArray(body)) return notExpression();
      const elements = (body as unknown[]).map(sub);
      const constant = constantValue(node);
      if (constant !== undefined) return () => constant;
      return (s) => elements.map((e) => e(s));
    }
    case 'Record': {
      if (!isObject(body)) return notExpression();
      const fields = Object.keys(body).map((k) => [k, sub(body[k])] as const);
      const constant = constantValue(node);
      if (constant !== undefined) return () => constant;
      return (s) => {
        const record = new Map<string, CedarValue>();
        for (const [k, f] of fields) record.set(k, f(s));
        return record;
      };
    }
    default:
      return refuse(`the operator \`${op}\``);
  }
}

function expectDecimal(value: CedarValue): DecimalValue {
  if (!(value instanceof DecimalValue)) throw typeError('decimal', value);
  return value;
}

function expectIp(value: CedarValue): IpValue {
  if (!(value instanceof IpValue)) throw typeError('ipaddr', value);
  return value;
}

/** The extension functions supported, with their arity (receiver included for methods). */
const EXTENSION_ARITY: Readonly<Record<string, number>> = {
  decimal: 1,
  ip: 1,
  lessThan: 2,
  lessThanOrEqual: 2,
  greaterThan: 2,
  greaterThanOrEqual: 2,
  isIpv4: 1,
  isIpv6: 1,
  isLoopback: 1,
  isMulticast: 1,
  isInRange: 2,
};

/** `decimal`/`ip` constructors and their methods; any other extension function is refused. */
function compileExtensionCall(
  name: string,
  body: unknown,
  sub: (n: unknown) => CompiledExpression,
): CompiledExpression {
  const arity = EXTENSION_ARITY[name];
  if (arity === undefined) return refuse(`the extension function \`${name.slice(0, 64)}\``);
  if (!Array.isArray(body)) return notExpression();
  const args = (body as unknown[]).map(sub);
  if (args.length !== arity) {
    // Cedar parses a call with the wrong number of arguments and fails when evaluating it.
    const message = `wrong number of arguments provided to extension function \`${name}\`: expected ${arity}, got ${args.length}`;
    return () => {
      throw new EvaluationError(message);
    };
  }
  const a = args[0]!;
  const b = args[1]!;
  switch (name) {
    case 'decimal':
    case 'ip': {
      const parse = name === 'decimal' ? parseDecimal : parseIp;
      const what = name === 'decimal' ? 'decimal' : 'ipaddr';
      const construct = (text: string): CedarValue => {
        const value = parse(text);
        if (typeof value === 'string')
          throw new EvaluationError(
            `error while evaluating \`${what}\` extension function: ${value}`,
          );
        return value;
      };
      const constant = constantValue((body as unknown[])[0]);
      if (typeof constant === 'string') {
        // A literal argument is parsed once; a bad one still errs only when evaluated, as in Cedar.
        let value: CedarValue;
        try {
          value = construct(constant);
        } catch (error) {
          return () => {
            throw error;
          };
        }
        return () => value;
      }
      return (s) => construct(expectString(a(s)));
    }
    case 'lessThan':
      return (s) => {
        const x = expectDecimal(a(s));
        return x.scaled < expectDecimal(b(s)).scaled;
      };
    case 'lessThanOrEqual':
      return (s) => {
        const x = expectDecimal(a(s));
        return x.scaled <= expectDecimal(b(s)).scaled;
      };
    case 'greaterThan':
      return (s) => {
        const x = expectDecimal(a(s));
        return x.scaled > expectDecimal(b(s)).scaled;
      };
    case 'greaterThanOrEqual':
      return (s) => {
        const x = expectDecimal(a(s));
        return x.scaled >= expectDecimal(b(s)).scaled;
      };
    case 'isIpv4':
      return (s) => !expectIp(a(s)).v6;
    case 'isIpv6':
      return (s) => expectIp(a(s)).v6;
    case 'isLoopback':
      return (s) => ipIsLoopback(expectIp(a(s)));
    case 'isMulticast':
      return (s) => ipIsMulticast(expectIp(a(s)));
    default:
      return (s) => {
        const x = expectIp(a(s));
        return ipInRange(x, expectIp(b(s)));
      };
  }
}

function compileComparison(
  op: '<' | '<=' | '>' | '>=',
  { left, right }: Binary,
  sub: (n: unknown) => CompiledExpression,
): CompiledExpression {
  const l = sub(left);
  const r = sub(right);
  const k = constantValue(right);
  if (typeof k === 'number') {
    // `principal.level >= 2`: the constant needs no call and no type check.
    switch (op) {
      case '<':
        return (s) => expectLong(l(s)) < k;
      case '<=':
        return (s) => expectLong(l(s)) <= k;
      case '>':
        return (s) => expectLong(l(s)) > k;
      case '>=':
        return (s) => expectLong(l(s)) >= k;
    }
  }
  switch (op) {
    case '<':
      return (s) => {
        const a = expectLong(l(s));
        return a < expectLong(r(s));
      };
    case '<=':
      return (s) => {
        const a = expectLong(l(s));
        return a <= expectLong(r(s));
      };
    case '>':
      return (s) => {
        const a = expectLong(l(s));
        return a > expectLong(r(s));
      };
    case '>=':
      return (s) => {
        const a = expectLong(l(s));
        return a >= expectLong(r(s));
      };
  }
}

function compileArithmetic(
  op: '+' | '-' | '*',
  { left, right }: Binary,
  sub: (n: unknown) => CompiledExpression,
): CompiledExpression {
  const l = sub(left);
  const r = sub(right);
  const check = (name: string, a: number, b: number, result: number): number => {
    // Safe operands give an exact sum or difference while it is safe; a product past 2^53 rounds
    // to a value that is not safe either, so the check below never accepts a rounded result.
    if (!Number.isSafeInteger(result)) throw rangeError(name, a, b);
    return result === 0 ? 0 : result;
  };
  switch (op) {
    case '+':
      return (s) => {
        const a = expectLong(l(s));
        const b = expectLong(r(s));
        return check('add', a, b, a + b);
      };
    case '-':
      return (s) => {
        const a = expectLong(l(s));
        const b = expectLong(r(s));
        return check('subtract', a, b, a - b);
      };
    case '*':
      return (s) => {
        const a = expectLong(l(s));
        const b = expectLong(r(s));
        return check('multiply', a, b, a * b);
      };
  }
}

/** The value of an expression built only of literals, sets and records; else undefined. */
function constantValue(node: unknown, depth = 0): CedarValue | undefined {
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

function constantEntity(node: unknown): EntityUid | undefined {
  const value = constantValue(node);
  return value !== undefined && isEntity(value) ? value : undefined;
}

function constantPrimitiveSet(node: unknown): Set<CedarValue> | undefined {
  const value = constantValue(node);
  if (value === undefined || !Array.isArray(value)) return undefined;
  const elements = value as readonly CedarValue[];
  if (!elements.every((e) => typeof e !== 'object')) return undefined;
  return new Set(elements);
}

export type { ValueKind };
