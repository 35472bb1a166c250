// What a tool's input schema may ask of the validator (docs/spec/policy.md §5.1): tool servers
// write these schemas, so nothing in one may stall or switch off gate 2.
import { createRequire } from 'node:module';
import { invalid } from '../core/internal.js';

interface Re2Pattern {
  test(input: string): boolean;
}
interface Re2Module {
  RE2JS: {
    compile(pattern: string, flags?: number): Re2Pattern;
    translateRegExp(pattern: string): string;
  };
}

let re2: Re2Module | undefined;
function re2js(): Re2Module {
  re2 ??= createRequire(import.meta.url)('re2js') as Re2Module;
  return re2;
}

/**
 * ajv's `code.regExp` engine: every `pattern`, `patternProperties` and `propertyNames` regular
 * expression of an input schema is compiled by re2js (RE2: matching time linear in the input), so
 * no argument string can make the gate backtrack for seconds. A pattern RE2 cannot express
 * (backreferences, lookaround) throws `ERR_GATE_CATALOG_INVALID` when the schema is compiled.
 * The flags ajv passes (`u`) are the default of RE2, which matches by code point.
 */
export const linearRegExp = Object.assign(
  (pattern: string): Re2Pattern => {
    const { RE2JS } = re2js();
    try {
      return RE2JS.compile(RE2JS.translateRegExp(pattern));
    } catch (cause) {
      throw invalid(
        'ERR_GATE_CATALOG_INVALID',
        `pattern \`${pattern.slice(0, 64)}\` is not a linear-time (RE2) regular expression: backreferences and lookaround are refused`,
        cause,
      );
    }
  },
  // For ajv's standalone code only (not used by Mandate).
  { code: 'require("re2js").RE2JS.compile' },
);

/** Keywords whose subschema applies to the same instance (no progress into the data). */
const SAME_INSTANCE_ONE = ['not', 'if', 'then', 'else'];
const SAME_INSTANCE_LIST = ['allOf', 'anyOf', 'oneOf'];
const SAME_INSTANCE_MAP = ['dependentSchemas', 'dependencies'];
/** Keywords whose subschemas apply to a part of the instance. */
const INTO_ONE = [
  'additionalProperties',
  'additionalItems',
  'items',
  'contains',
  'propertyNames',
  'unevaluatedItems',
  'unevaluatedProperties',
];
const INTO_LIST = ['items', 'prefixItems'];
const INTO_MAP = ['properties', 'patternProperties'];
const DEFINITIONS = ['$defs', 'definitions'];
/** Keywords that name or reach schemas outside this one, or switch validation to a Promise. */
const REFUSED = [
  '$async',
  '$id',
  '$anchor',
  '$dynamicRef',
  '$dynamicAnchor',
  '$recursiveRef',
  '$recursiveAnchor',
];

/**
 * Refuses, with `ERR_GATE_CATALOG_INVALID` naming the tool, an input schema the gate could not
 * validate synchronously, in bounded time, on its own: `$async` (ajv would return a Promise),
 * `$id`/anchors/dynamic references and any `$ref` other than a JSON pointer into this very schema
 * (one tool's schema must not reach another's), and a cycle of `$ref` and same-instance keywords
 * (`allOf`, `not`, `if`, …) that never moves into the data — `{"$ref":"#"}` would recurse until
 * the stack overflows on every call.
 */
export function checkInputSchema(tool: string, schema: unknown): void {
  const nodes = new Map<string, unknown>();
  const edges = new Map<string, string[]>();
  const refs: [string, string][] = [];
  const refuse = (reason: string): never => {
    throw invalid('ERR_GATE_CATALOG_INVALID', `tool \`${tool}\`: its input schema ${reason}`);
  };
  const walk = (node: unknown, at: string): void => {
    if (typeof node !== 'object' || node === null || Array.isArray(node)) return;
    nodes.set(at, node);
    const s = node as Record<string, unknown>;
    const out: string[] = [];
    edges.set(at, out);
    for (const keyword of REFUSED)
      if (Object.hasOwn(s, keyword)) refuse(`uses \`${keyword}\`, which the gate refuses`);
    // Every regular expression, used or not, must be one RE2 runs (ajv compiles some lazily).
    if (typeof s['pattern'] === 'string') compilePattern(tool, s['pattern']);
    const patterns = s['patternProperties'];
    if (typeof patterns === 'object' && patterns !== null)
      for (const key of Object.keys(patterns)) compilePattern(tool, key);
    const ref = s['$ref'];
    if (ref !== undefined) {
      if (typeof ref !== 'string' || !ref.startsWith('#'))
        refuse('has a `$ref` that is not a JSON pointer into the same schema (`#/…`)');
      refs.push([at, pointerOf(ref as string, refuse)]);
    }
    const child = (keyword: string, key: string | number, value: unknown, same: boolean): void => {
      const path = `${at}/${escape(keyword)}/${escape(String(key))}`;
      if (same) out.push(path);
      walk(value, path);
    };
    for (const keyword of SAME_INSTANCE_ONE)
      if (Object.hasOwn(s, keyword)) {
        const path = `${at}/${keyword}`;
        out.push(path);
        walk(s[keyword], path);
      }
    for (const keyword of SAME_INSTANCE_LIST)
      if (Array.isArray(s[keyword]))
        (s[keyword] as unknown[]).forEach((v, i) => {
          child(keyword, i, v, true);
        });
    for (const keyword of [...SAME_INSTANCE_MAP, ...INTO_MAP, ...DEFINITIONS]) {
      const map = s[keyword];
      if (typeof map === 'object' && map !== null && !Array.isArray(map))
        for (const [key, value] of Object.entries(map))
          child(keyword, key, value, SAME_INSTANCE_MAP.includes(keyword));
    }
    for (const keyword of INTO_ONE)
      if (Object.hasOwn(s, keyword) && !Array.isArray(s[keyword]))
        walk(s[keyword], `${at}/${keyword}`);
    for (const keyword of INTO_LIST)
      if (Array.isArray(s[keyword]))
        (s[keyword] as unknown[]).forEach((v, i) => {
          child(keyword, i, v, false);
        });
  };
  walk(schema, '');
  for (const [from, to] of refs) {
    if (!nodes.has(to))
      refuse(`has a \`$ref\` to \`#${to.slice(0, 64)}\`, which is not a schema in it`);
    edges.get(from)!.push(to);
  }
  // A cycle among same-instance edges: iterative depth-first search, colours white/grey/black.
  const state = new Map<string, 1 | 2>();
  for (const start of nodes.keys()) {
    if (state.has(start)) continue;
    const stack: [string, number][] = [[start, 0]];
    state.set(start, 1);
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const next = edges.get(top[0])?.[top[1]++];
      if (next === undefined) {
        state.set(top[0], 2);
        stack.pop();
      } else if (state.get(next) === 1) {
        refuse('refers to itself without moving into the arguments (a `$ref` cycle)');
      } else if (!state.has(next) && nodes.has(next)) {
        state.set(next, 1);
        stack.push([next, 0]);
      }
    }
  }
}

function compilePattern(tool: string, pattern: string): void {
  try {
    linearRegExp(pattern);
  } catch (cause) {
    throw invalid(
      'ERR_GATE_CATALOG_INVALID',
      `tool \`${tool}\`: ${(cause as Error).message}`,
      cause,
    );
  }
}

function escape(segment: string): string {
  return segment.replaceAll('~', '~0').replaceAll('/', '~1');
}

/** `#/a/b` → `/a/b` (the walk's keys); percent-decoded, `~1`/`~0` kept escaped as in the keys. */
function pointerOf(ref: string, refuse: (reason: string) => never): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(ref.slice(1));
  } catch {
    return refuse('has a `$ref` that is not a valid URI fragment');
  }
  if (decoded !== '' && !decoded.startsWith('/'))
    refuse('has a `$ref` that is not a JSON pointer into the same schema (`#/…`)');
  return decoded;
}
