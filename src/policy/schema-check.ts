// A generated fast check that a value conforms to a schema type exactly as it is (no Cedar
// schema-directed form to convert, no error). It only ever answers "yes, unchanged" or "ask the
// general check": when it says false, schema.ts's conform() decides, converts and explains. Like
// codegen.ts, the source is built from fixed templates only; every name and type from the schema
// is passed in the constants array `k` and referenced by index.
import { DecimalValue, IpValue } from './extensions.js';
import type { CedarValue } from './types.js';
import { isEntity } from './values.js';

/** A type of a Cedar schema, resolved (common types inlined, names fully qualified). */
export type SchemaType =
  | { readonly kind: 'long' }
  | { readonly kind: 'string' }
  | { readonly kind: 'bool' }
  | { readonly kind: 'set'; readonly element: SchemaType }
  | {
      readonly kind: 'record';
      readonly attributes: ReadonlyMap<string, Attribute>;
      /** The attributes as arrays, for the hot path (no iterator allocation). */
      readonly names: readonly string[];
      readonly types: readonly Attribute[];
      readonly additional: boolean;
    }
  | { readonly kind: 'entity'; readonly name: string }
  | { readonly kind: 'extension'; readonly name: string };

export interface Attribute {
  readonly type: SchemaType;
  readonly required: boolean;
}

type Check = (value: CedarValue) => boolean;

const helpers = { isEntity, Decimal: DecimalValue, Ip: IpValue };

class CheckCodegen {
  private readonly constants: unknown[] = [];
  private readonly functions: string[] = [];

  constructor(private readonly enumIds: (type: string) => ReadonlySet<string> | undefined) {}

  private k(value: unknown): string {
    this.constants.push(value);
    return `k[${this.constants.length - 1}]`;
  }

  /** An expression that is true when `v` (a variable name) conforms unchanged to `type`. */
  private test(type: SchemaType, v: string): string {
    switch (type.kind) {
      case 'long':
        return `typeof ${v} === 'number'`;
      case 'string':
        return `typeof ${v} === 'string'`;
      case 'bool':
        return `typeof ${v} === 'boolean'`;
      case 'entity': {
        const ids = this.enumIds(type.name);
        const base = `h.isEntity(${v}) && ${v}.type === ${this.k(type.name)}`;
        return ids === undefined ? `(${base})` : `(${base} && ${this.k(ids)}.has(${v}.id))`;
      }
      case 'extension':
        if (type.name === 'decimal') return `${v} instanceof h.Decimal`;
        if (type.name === 'ipaddr') return `${v} instanceof h.Ip`;
        return 'false';
      case 'set':
      case 'record':
        return `${this.function(type)}(${v})`;
    }
  }

  /** A named function for a set or record type; returns its name. */
  private function(type: SchemaType & { kind: 'set' | 'record' }): string {
    const name = `f${this.functions.length}`;
    this.functions.push(''); // reserve the slot: nested types are numbered after this one
    let body: string;
    if (type.kind === 'set') {
      body = [
        `if (!Array.isArray(v)) return false;`,
        `for (let i = 0; i < v.length; i++) { const x = v[i]; if (!(${this.test(type.element, 'x')})) return false; }`,
        `return true;`,
      ].join('\n');
    } else {
      const lines = [`if (!(v instanceof Map)) return false;`, `let n = 0, x;`];
      for (let i = 0; i < type.names.length; i++) {
        const attr = type.types[i]!;
        lines.push(`x = v.get(${this.k(type.names[i])});`);
        lines.push(
          attr.required
            ? `if (x === undefined || !(${this.test(attr.type, 'x')})) return false; n++;`
            : `if (x !== undefined) { if (!(${this.test(attr.type, 'x')})) return false; n++; }`,
        );
      }
      lines.push(type.additional ? 'return true;' : 'return n === v.size;');
      body = lines.join('\n');
    }
    this.functions[Number(name.slice(1))] = `function ${name}(v) {\n${body}\n}`;
    return name;
  }

  build(type: SchemaType): Check {
    const top = this.test(type, 'v');
    const source = `'use strict';\n${this.functions.join('\n')}\nreturn function check(v) { return ${top}; };`;
    // The source holds no schema text (see the header); code generation may be disallowed, in
    // which case the general check does all the work.
    try {
      // eslint-disable-next-line @typescript-eslint/no-implied-eval
      const factory = new Function('k', 'h', source) as (
        k: readonly unknown[],
        h: typeof helpers,
      ) => Check;
      return factory(this.constants, helpers);
    } catch (error) {
      if (error instanceof EvalError) return () => false;
      throw error;
    }
  }
}

/** A fast exact-conformance check for `type` (false means: use the general check). */
export function compileSchemaCheck(
  type: SchemaType,
  enumIds: (type: string) => ReadonlySet<string> | undefined,
): Check {
  return new CheckCodegen(enumIds).build(type);
}
