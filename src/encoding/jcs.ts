import { invalid } from '../core/internal.js';

/**
 * The JSON Canonicalization Scheme (RFC 8785) of plain JSON data: object members sorted by the
 * UTF-16 code units of their names (§3.2.3), no whitespace, numbers as ECMAScript's
 * Number.prototype.toString writes them (§3.2.2.3; JSON.stringify does exactly this for finite
 * numbers) and strings as JSON.stringify escapes them (§3.2.2.2). Input outside I-JSON (RFC 7493)
 * is `ERR_JCS_INVALID`: a non-finite number, a lone surrogate, a value that is not JSON data
 * (undefined, a function, a bigint, a Date or any object with another prototype). Depth is
 * bounded (default 64) so a hostile value cannot exhaust the stack.
 *
 * @example
 * ```ts
 * canonicalizeJson({ b: 1, a: [true, null, 'x'] }); // '{"a":[true,null,"x"],"b":1}'
 * ```
 */
export function canonicalizeJson(value: unknown, maxDepth = 64): string {
  return write(value, 0, maxDepth);
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function fail(why: string): never {
  throw invalid('ERR_JCS_INVALID', why);
}

// Printable ASCII without `"` and `\`: JSON.stringify writes such a string as it is, quoted, and
// it holds no surrogate (the common case: names, hex, base64url).
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

function writeString(text: string): string {
  if (PLAIN.test(text)) return `"${text}"`;
  if (LONE_SURROGATE.test(text)) fail('a string holds a lone surrogate');
  return JSON.stringify(text);
}

// Built by concatenation (V8 joins the pieces once, when the text is used): no parts array.
function write(value: unknown, depth: number, maxDepth: number): string {
  switch (typeof value) {
    case 'string':
      return writeString(value);
    case 'number':
      if (!Number.isFinite(value)) fail('a number is not finite');
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (value === null) return 'null';
      if (depth >= maxDepth) fail(`the value nests deeper than ${maxDepth}`);
      if (Array.isArray(value)) {
        let text = '[';
        for (let i = 0; i < value.length; i++) {
          if (i > 0) text += ',';
          text += write(value[i], depth + 1, maxDepth);
        }
        return `${text}]`;
      }
      const prototype: unknown = Object.getPrototypeOf(value);
      if (prototype !== Object.prototype && prototype !== null) fail('a value is not JSON data');
      const record = value as Record<string, unknown>;
      // Default sort compares UTF-16 code units, which is what §3.2.3 asks for.
      const keys = Object.keys(record).sort();
      let text = '{';
      for (let i = 0; i < keys.length; i++) {
        if (i > 0) text += ',';
        text += `${writeString(keys[i]!)}:${write(record[keys[i]!], depth + 1, maxDepth)}`;
      }
      return `${text}}`;
    }
    default:
      fail(`a ${typeof value} is not JSON data`);
  }
}
