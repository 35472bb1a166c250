// Bounds on Cedar text before it reaches cedar-wasm (outside-attack hole F7): the parser and its
// JSON conversion recurse once per nesting level and per operator of a left-leaning chain, and
// cedar-wasm dies (a stack overflow, or `RuntimeError: memory access out of bounds`, which leaves
// the WebAssembly instance unusable) somewhere above 120 nested brackets or 1,000 chained `if`s.
// The bounds here are far above real policies and far below those limits.
import { invalid } from '../core/internal.js';

/** Deepest nesting of `(`, `[` and `{` in a policy set (of `(`, `[`, `{`, `<` in a schema). */
export const MAX_CEDAR_NESTING = 32;
/** Most operators in one policy (`&&`, `||`, comparisons, arithmetic, `.`, `!`, `in`, `if`, …). */
export const MAX_POLICY_OPERATORS = 1024;

const WORD_OPERATORS = new Set(['in', 'has', 'like', 'is', 'if', 'then', 'else']);

/**
 * `ERR_POLICY_TOO_COMPLEX` when a policy set nests brackets deeper than
 * {@link MAX_CEDAR_NESTING} or one of its policies (text between top-level `;`) has more than
 * {@link MAX_POLICY_OPERATORS} operators. String literals and `//` comments are skipped.
 */
export function checkPolicyTextBounds(text: string): void {
  scan(text, 'policy set', false);
}

/** `ERR_POLICY_TOO_COMPLEX` when a schema nests `(`, `[`, `{` or `<` deeper than {@link MAX_CEDAR_NESTING}. */
export function checkSchemaTextBounds(text: string): void {
  scan(text, 'schema', true);
}

function tooComplex(why: string): never {
  throw invalid('ERR_POLICY_TOO_COMPLEX', why);
}

function isWordChar(c: number): boolean {
  return (
    (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f
  );
}

function scan(text: string, what: string, schema: boolean): void {
  let depth = 0;
  let operators = 0;
  let policy = 0;
  const n = text.length;
  let i = 0;
  const operator = (): void => {
    if (++operators > MAX_POLICY_OPERATORS)
      tooComplex(`policy ${policy} of the ${what} has more than ${MAX_POLICY_OPERATORS} operators`);
  };
  while (i < n) {
    const c = text[i]!;
    const next = text[i + 1];
    if (c === '"') {
      // A string literal: to the closing quote, `\` escaping the next character.
      i++;
      while (i < n && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
      i++;
    } else if (c === '/' && next === '/') {
      while (i < n && text[i] !== '\n') i++;
    } else if (c === '(' || c === '[' || c === '{' || (schema && c === '<')) {
      if (++depth > MAX_CEDAR_NESTING)
        tooComplex(`the ${what} nests brackets deeper than ${MAX_CEDAR_NESTING}`);
      i++;
    } else if (c === ')' || c === ']' || c === '}' || (schema && c === '>')) {
      if (depth > 0) depth--;
      i++;
    } else if (schema) {
      i++;
    } else if (c === ';' && depth === 0) {
      operators = 0;
      policy++;
      i++;
    } else if (
      (c === '&' && next === '&') ||
      (c === '|' && next === '|') ||
      ((c === '=' || c === '!' || c === '<' || c === '>') && next === '=')
    ) {
      operator();
      i += 2;
    } else if ('<>+-*!.'.includes(c)) {
      operator();
      i++;
    } else if (isWordChar(c.charCodeAt(0))) {
      const start = i;
      while (i < n && isWordChar(text.charCodeAt(i))) i++;
      if (WORD_OPERATORS.has(text.slice(start, i))) operator();
    } else i++;
  }
}
