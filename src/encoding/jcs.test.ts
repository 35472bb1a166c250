import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createRequire } from 'node:module';
import { canonicalizeJson } from './jcs.js';
import { codeOf } from '../../test/helpers/errors.js';

// An independent implementation that sorts keys the same way (default string order) and writes
// numbers and strings with JSON.stringify: for plain JSON data it must agree byte for byte.
const stableStringify = createRequire(import.meta.url)('fast-json-stable-stringify') as (
  v: unknown,
) => string;

describe('canonicalizeJson (RFC 8785)', () => {
  it('sorts members by UTF-16 code units and writes no whitespace (§3.2.3 example order)', () => {
    // RFC 8785 §3.2.3: "\u20ac" (€), "\r", "\ufb33", "1", "\ud83d\ude00", "\u0080", "\u00f6"
    const value = {
      '\u20ac': 'Euro Sign',
      '\r': 'Carriage Return',
      '\ufb33': 'Hebrew Letter Dalet With Dagesh',
      '1': 'One',
      '\ud83d\ude00': 'Emoji: Grinning Face',
      '\u0080': 'Control',
      '\u00f6': 'Latin Small Letter O With Diaeresis',
    };
    // (Object.keys would list "1" first, as an array index: read the order off the text.)
    const text = canonicalizeJson(value);
    const order = ['\r', '1', '\u0080', '\u00f6', '\u20ac', '\ud83d\ude00', '\ufb33'].map((k) =>
      text.indexOf(`${JSON.stringify(k)}:`),
    );
    expect(order.every((at) => at > 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(text.startsWith('{"\\r":"Carriage Return","1":"One",')).toBe(true);
  });

  it('writes numbers as ECMAScript does (§3.2.2.3 samples)', () => {
    // 333333333.33333329 in the RFC is the same double as 333333333.3333333.
    expect(canonicalizeJson([333333333.3333333, 1e30, 4.5, 0.002, 1e-27, -0, 100])).toBe(
      '[333333333.3333333,1e+30,4.5,0.002,1e-27,0,100]',
    );
  });

  it('refuses what is not I-JSON: non-finite numbers, lone surrogates, non-JSON values, deep nesting', () => {
    for (const bad of [Number.NaN, Infinity, '\ud800', { k: undefined }, new Date(0), 1n, () => 1])
      expect(codeOf(() => canonicalizeJson(bad))).toBe('ERR_JCS_INVALID');
    let deep: unknown = 1;
    for (let i = 0; i < 100; i++) deep = [deep];
    expect(codeOf(() => canonicalizeJson(deep))).toBe('ERR_JCS_INVALID');
  });

  it('property: agrees with an independent stable stringify and round-trips', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 5, stringUnit: 'grapheme' }), (value) => {
        const text = canonicalizeJson(value);
        expect(text).toBe(stableStringify(value));
        expect(canonicalizeJson(JSON.parse(text))).toBe(text);
      }),
      { numRuns: 300, seed: 8785 },
    );
  });
  it('property: strings (printable ASCII ones take a shortcut) are written as JSON.stringify writes them', () => {
    const ascii = fc.string({
      unit: fc.integer({ min: 0, max: 0x7f }).map((c) => String.fromCharCode(c)),
    });
    fc.assert(
      fc.property(fc.oneof(ascii, fc.string({ unit: 'grapheme' })), (s) => {
        expect(canonicalizeJson(s)).toBe(JSON.stringify(s));
        expect(canonicalizeJson({ [s]: s })).toBe(`{${JSON.stringify(s)}:${JSON.stringify(s)}}`);
      }),
      { numRuns: 500, seed: 8785 },
    );
    for (const s of ['', 'a"b', 'a\\b', 'tab\there', '\u007f', 'base64url_-09AZaz'])
      expect(canonicalizeJson(s)).toBe(JSON.stringify(s));
  });
});
