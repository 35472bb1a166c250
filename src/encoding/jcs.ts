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
  const parts: string[] = [];
  write(value, 0, maxDepth, parts);
  return parts.join('');
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function fail(why: string): never {
  throw invalid('ERR_JCS_INVALID', why);
}

// Printable ASCII without `"` and `\`: JSON.stringify writes such a string as it is, quoted, and
// it holds no surrogate (the common case: names, hex, base64url).
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

function writeString(text: string, parts: string[]): void {
  if (PLAIN.test(text)) {
    parts.push(`"${text}"`);
    return;
  }
  if (LONE_SURROGATE.test(text)) fail('a string holds a lone surrogate');
  parts.push(JSON.stringify(text));
}

function write(value: unknown, depth: number, maxDepth: number, parts: string[]): void {
  switch (typeof value) {
    case 'string':
      writeString(value, parts);
      return;
    case 'number':
      if (!Number.isFinite(value)) fail('a number is not finite');
      parts.push(JSON.stringify(value));
      return;
    case 'boolean':
      parts.push(value ? 'true' : 'false');
      return;
    case 'object': {
      if (value === null) {
        parts.push('null');
        return;
      }
      if (depth >= maxDepth) fail(`the value nests deeper than ${maxDepth}`);
      if (Array.isArray(value)) {
        parts.push('[');
        for (let i = 0; i < value.length; i++) {
          if (i > 0) parts.push(',');
          write(value[i], depth + 1, maxDepth, parts);
        }
        parts.push(']');
        return;
      }
      const prototype: unknown = Object.getPrototypeOf(value);
      if (prototype !== Object.prototype && prototype !== null) fail('a value is not JSON data');
      const record = value as Record<string, unknown>;
      // Default sort compares UTF-16 code units, which is what §3.2.3 asks for.
      const keys = Object.keys(record).sort();
      parts.push('{');
      for (let i = 0; i < keys.length; i++) {
        if (i > 0) parts.push(',');
        writeString(keys[i]!, parts);
        parts.push(':');
        write(record[keys[i]!], depth + 1, maxDepth, parts);
      }
      parts.push('}');
      return;
    }
    default:
      fail(`a ${typeof value} is not JSON data`);
  }
}
