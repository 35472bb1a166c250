// A policy's scope and conditions (cedar-wasm's JSON EST) → one JavaScript function, generated
// as source and compiled with `new Function`. One function per policy gives V8 a call site (and
// type feedback) of its own for every operation, where shared closures would be megamorphic.
//
// Safety of the generated source: it is assembled only from the fixed templates below, integer
// indices and the names of temporaries. Every value that comes from a policy (strings, attribute
// names, entity types and ids, numbers) is passed in the constants array `k` and referenced as
// `k[i]`; nothing from a policy is ever spliced into the source text.
//
// Semantics are those of compile-expression.ts's runtime helpers, called through `h`; each
// construct errs exactly where Cedar errs (tests: src/policy/*.test.ts against cedar-wasm).
import { unsupported } from '../core/internal.js';
import {
  EvaluationError,
  compileLike,
  constantEntity,
  constantPrimitiveSet,
  constantValue,
  runtime,
  type EvalScope,
} from './compile-expression.js';
import { isObject } from './json-values.js';
import type { EntityUid } from './types.js';
import { entityKey } from './values.js';

function refuse(construct: string): never {
  throw unsupported('ERR_POLICY_UNSUPPORTED', `${construct} is not supported`);
}

function notExpression(): never {
  return refuse('an expression of unknown shape');
}

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

const VARIABLES: Readonly<Record<string, string>> = {
  principal: 's.principal',
  action: 's.action',
  resource: 's.resource',
  context: 's.context',
};

type Binary = { left: unknown; right: unknown };

function binaryArgs(node: unknown): Binary {
  if (!isObject(node) || !('left' in node) || !('right' in node)) return notExpression();
  return node as Binary;
}

/** A scope constraint on `principal` or `resource`, as the generator takes it. */
export type EntityScopeTest =
  | { readonly kind: 'eq'; readonly uid: EntityUid }
  | { readonly kind: 'in'; readonly target: EntityUid }
  | { readonly kind: 'is'; readonly type: string }
  | { readonly kind: 'isIn'; readonly type: string; readonly target: EntityUid };

/** One policy's check: scope tests then conditions, as source with its constants. */
export class PolicyCodegen {
  private readonly constants: unknown[] = [];
  private temps = 0;

  private k(value: unknown): string {
    this.constants.push(value);
    return `k[${this.constants.length - 1}]`;
  }

  private temp(): string {
    return `t${this.temps++}`;
  }

  /** `principal`/`resource` scope test (the variable is always an entity: no type errors). */
  scopeTest(variable: 's.principal' | 's.resource', test: EntityScopeTest): string {
    switch (test.kind) {
      case 'eq':
        return `(${variable}.type === ${this.k(test.uid.type)} && ${variable}.id === ${this.k(test.uid.id)})`;
      case 'in':
        return `h.inE(s, ${variable}, ${this.k(test.target)}, ${this.k(entityKey(test.target))})`;
      case 'is':
        return `(${variable}.type === ${this.k(test.type)})`;
      case 'isIn':
        return `(${variable}.type === ${this.k(test.type)} && h.inE(s, ${variable}, ${this.k(test.target)}, ${this.k(entityKey(test.target))}))`;
    }
  }

  /** Compiles an EST expression to a JS expression; refuses what it does not support. */
  expression(node: unknown, depth = 0): string {
    if (depth > 200) refuse('an expression nested deeper than 200');
    if (!isObject(node)) return notExpression();
    const keys = Object.keys(node);
    if (keys.length !== 1) return notExpression();
    const op = keys[0]!;
    const body = node[op];
    const sub = (n: unknown): string => this.expression(n, depth + 1);
    if (!BUILTINS.has(op)) return this.extensionCall(op, body, sub);
    switch (op) {
      case 'Value':
        return this.literal(body);
      case 'Var': {
        const variable = typeof body === 'string' ? VARIABLES[body] : undefined;
        return variable ?? notExpression();
      }
      case 'Slot':
        return refuse('a template slot');
      case 'Unknown':
        return refuse('an unknown (partial evaluation)');
      case '!':
        return `(!h.bool(${sub(isObject(body) ? body.arg : undefined)}))`;
      case 'neg':
        return `h.neg(${sub(isObject(body) ? body.arg : undefined)})`;
      case '==':
      case '!=': {
        const { left, right } = binaryArgs(body);
        const not = op === '!=' ? '!' : '';
        // A constant side (the common `principal.region == "eu"`) is compared inline.
        const rightConstant = constantValue(right);
        const k = rightConstant ?? constantValue(left);
        if (k !== undefined && typeof k !== 'object') {
          const other = rightConstant !== undefined ? sub(left) : sub(right);
          return `(${other} ${op === '==' ? '===' : '!=='} ${this.k(k)})`;
        }
        return `(${not}h.eq(${sub(left)}, ${sub(right)}))`;
      }
      case 'in': {
        const { left, right } = binaryArgs(body);
        const target = constantEntity(right);
        if (target !== undefined)
          return `h.inE(s, h.ent(${sub(left)}), ${this.k(target)}, ${this.k(entityKey(target))})`;
        return `h.inAny(s, ${sub(left)}, ${sub(right)})`;
      }
      case '<':
      case '<=':
      case '>':
      case '>=': {
        const { left, right } = binaryArgs(body);
        const k = constantValue(right);
        if (typeof k === 'number') return `(h.long(${sub(left)}) ${op} ${this.k(k)})`;
        const a = this.temp();
        // Both operands are evaluated before either is checked, as in Cedar.
        return `((${a} = ${sub(left)}), h.long(${a}) ${op} h.long(${sub(right)}))`;
      }
      case '+':
      case '-':
      case '*': {
        const { left, right } = binaryArgs(body);
        const fn = op === '+' ? 'add' : op === '-' ? 'sub' : 'mul';
        return `h.${fn}(${sub(left)}, ${sub(right)})`;
      }
      case '&&':
      case '||': {
        const { left, right } = binaryArgs(body);
        return `(h.bool(${sub(left)}) ${op} h.bool(${sub(right)}))`;
      }
      case 'contains': {
        const { left, right } = binaryArgs(body);
        const primitives = constantPrimitiveSet(left);
        // A literal set of booleans, numbers and strings: JS Set membership is Cedar equality.
        if (primitives !== undefined) return `h.hasPrimitive(${this.k(primitives)}, ${sub(right)})`;
        return `h.contains(${sub(left)}, ${sub(right)})`;
      }
      case 'containsAll':
      case 'containsAny': {
        const { left, right } = binaryArgs(body);
        return `h.${op}(${sub(left)}, ${sub(right)})`;
      }
      case 'isEmpty':
        return `h.isEmpty(${sub(isObject(body) ? body.arg : undefined)})`;
      case 'hasTag':
      case 'getTag': {
        const { left, right } = binaryArgs(body);
        return `h.${op}(s, ${sub(left)}, ${sub(right)})`;
      }
      case '.': {
        if (!isObject(body) || typeof body.attr !== 'string') return notExpression();
        const left = body.left;
        if (isObject(left) && Object.keys(left).length === 1 && left.Var === 'context')
          return `h.contextAttr(s, ${this.k(body.attr)})`;
        return `h.attr(s, ${sub(left)}, ${this.k(body.attr)})`;
      }
      case 'has': {
        if (!isObject(body)) return notExpression();
        const attrs = typeof body.attr === 'string' ? [body.attr] : body.attr;
        if (
          !Array.isArray(attrs) ||
          attrs.length === 0 ||
          !attrs.every((a) => typeof a === 'string')
        )
          return notExpression();
        const path = attrs;
        if (path.length === 1) return `h.has(s, ${sub(body.left)}, ${this.k(path[0])})`;
        // `e has a.b.c` is `e has a && e.a has b && e.a.b has c`.
        return `h.hasPath(s, ${sub(body.left)}, ${this.k(Object.freeze(path))})`;
      }
      case 'like': {
        if (!isObject(body)) return notExpression();
        return `${this.k(compileLike(body.pattern))}(h.str(${sub(body.left)}))`;
      }
      case 'is': {
        if (!isObject(body) || typeof body.entity_type !== 'string') return notExpression();
        const type = this.k(body.entity_type);
        const left = sub(body.left);
        if (body.in === undefined) return `(h.ent(${left}).type === ${type})`;
        const u = this.temp();
        const target = constantEntity(body.in);
        // `is T in E` is `is T && in E`: E is not evaluated when the type differs.
        if (target !== undefined)
          return `((${u} = h.ent(${left})).type === ${type} && h.inE(s, ${u}, ${this.k(target)}, ${this.k(entityKey(target))}))`;
        return `((${u} = h.ent(${left})).type === ${type} && h.inAny(s, ${u}, ${sub(body.in)}))`;
      }
      case 'if-then-else': {
        if (!isObject(body)) return notExpression();
        return `(h.bool(${sub(body.if)}) ? ${sub(body.then)} : ${sub(body.else)})`;
      }
      case 'Set': {
        if (!Array.isArray(body)) return notExpression();
        const elements = (body as unknown[]).map(sub);
        const constant = constantValue(node);
        if (constant !== undefined) return this.k(constant);
        return `[${elements.join(', ')}]`;
      }
      case 'Record': {
        if (!isObject(body)) return notExpression();
        const names = Object.keys(body);
        const values = names.map((name) => sub(body[name]));
        const constant = constantValue(node);
        if (constant !== undefined) return this.k(constant);
        return `h.record(${this.k(Object.freeze(names))}, [${values.join(', ')}])`;
      }
      default:
        return refuse(`the operator \`${op}\``);
    }
  }

  /** A literal: its value, or (a Long outside the safe range) an error when evaluated. */
  private literal(json: unknown): string {
    const value = constantValue({ Value: json });
    if (value !== undefined) return this.k(value);
    if (typeof json === 'number' && Number.isInteger(json)) {
      // cedar-wasm hands i64 literals over as JS numbers: past 2^53 the value is already rounded.
      return `h.fail(${this.k(`long literal \`${json}\` is outside the supported range ±(2^53 − 1)`)})`;
    }
    return refuse(`the literal \`${JSON.stringify(json)?.slice(0, 80)}\``);
  }

  private extensionCall(name: string, body: unknown, sub: (n: unknown) => string): string {
    const arity = EXTENSION_ARITY[name];
    if (arity === undefined) return refuse(`the extension function \`${name.slice(0, 64)}\``);
    if (!Array.isArray(body)) return notExpression();
    const args = (body as unknown[]).map(sub);
    if (args.length !== arity) {
      // Cedar parses a call with the wrong number of arguments and fails when evaluating it.
      return `h.fail(${this.k(`wrong number of arguments provided to extension function \`${name}\`: expected ${arity}, got ${args.length}`)})`;
    }
    if (name === 'decimal' || name === 'ip') {
      const constant = constantValue((body as unknown[])[0]);
      if (typeof constant === 'string') {
        // A literal argument is parsed once; a bad one still errs only when evaluated, as in Cedar.
        try {
          return this.k(runtime[name](constant));
        } catch (error) {
          if (!(error instanceof EvaluationError)) throw error;
          return `h.fail(${this.k(error.message)})`;
        }
      }
      return `h.${name}(${args[0]!})`;
    }
    return `h.${name}(${args.join(', ')})`;
  }

  /**
   * The policy's check: scope tests, then the conditions in order (`when` must be true, `unless`
   * false; a non-boolean condition is a type error). Cedar evaluates `scope && when && !unless …`
   * left to right, so nothing after a false test is evaluated.
   */
  build(
    scopeTests: readonly string[],
    conditions: readonly { readonly kind: 'when' | 'unless'; readonly body: string }[],
  ): (scope: EvalScope) => boolean {
    const lines: string[] = [];
    for (const test of scopeTests) lines.push(`if (!${test}) return false;`);
    if (conditions.length > 0) lines.push('let v;');
    for (const c of conditions) {
      lines.push(`v = ${c.body};`);
      lines.push(`if (typeof v !== 'boolean') throw h.notBool(v);`);
      lines.push(c.kind === 'when' ? 'if (!v) return false;' : 'if (v) return false;');
    }
    lines.push('return true;');
    const temps =
      this.temps === 0
        ? ''
        : `let ${Array.from({ length: this.temps }, (_, i) => `t${i}`).join(', ')};\n`;
    const source = `'use strict';\nreturn function check(s) {\n${temps}${lines.join('\n')}\n};`;
    let factory: (k: readonly unknown[], h: typeof runtime) => (scope: EvalScope) => boolean;
    try {
      // The source holds no policy text (see the header): `new Function` compiles our own code.
      // eslint-disable-next-line @typescript-eslint/no-implied-eval
      factory = new Function('k', 'h', source) as typeof factory;
    } catch (error) {
      // Node started with --disallow-code-generation-from-strings (an EvalError).
      if (error instanceof EvalError)
        throw unsupported(
          'ERR_POLICY_UNSUPPORTED',
          'compiling policies needs code generation from strings, which this process disallows',
        );
      throw error;
    }
    return factory(this.constants, runtime);
  }
}
