// JSON text whose every object has distinct keys (RFC 8259 §4 leaves duplicates to the reader;
// JavaScript keeps the last). Where a checker and a consumer could read two different values for
// one key — a gate and the tool behind it — a duplicate is refused rather than resolved.
import { invalid } from '../core/internal.js';
import type { ErrorCode } from '../core/index.js';

/**
 * `JSON.parse(text)`, refusing (with `code`) text that is not JSON or in which some object, at
 * any depth, names a key twice — also when spelled differently (`"a"` and `"\u0061"`).
 * Objects nested deeper than `maxDepth` are refused too (the scan keeps one key set per level).
 */
export function parseJsonNoDuplicateKeys(
  text: string,
  code: ErrorCode,
  what: string,
  maxDepth = 64,
): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw invalid(code, `${what} is not JSON`, cause);
  }
  // The text is valid JSON: a scan of its strings and brackets finds every key.
  const levels: (Set<string> | null)[] = []; // null: an array
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      levels.push(c === 0x7b ? new Set<string>() : null);
      if (levels.length > maxDepth) throw invalid(code, `${what} nests deeper than ${maxDepth}`);
      i++;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      levels.pop();
      i++;
    } else if (c === 0x22 /* " */) {
      let j = i + 1;
      let escaped = false;
      while (j < n) {
        const d = text.charCodeAt(j);
        if (d === 0x5c /* \ */) {
          escaped = true;
          j += 2;
        } else if (d === 0x22) break;
        else j++;
      }
      const token = text.slice(i, j + 1);
      i = j + 1;
      const keys = levels.at(-1);
      if (keys === undefined || keys === null) continue;
      // A string in an object is a key when a `:` follows it.
      let k = i;
      while (k < n && (text[k] === ' ' || text[k] === '\t' || text[k] === '\n' || text[k] === '\r'))
        k++;
      if (text[k] !== ':') continue;
      const key = escaped ? (JSON.parse(token) as string) : token.slice(1, -1);
      if (keys.has(key))
        throw invalid(
          code,
          `${what} names key \`${JSON.stringify(key).slice(1, -1).slice(0, 64)}\` twice in one object`,
        );
      keys.add(key);
    } else i++;
  }
  return value;
}
