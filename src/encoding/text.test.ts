import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { escapeControlCharacters, hasControlCharacters } from './text.js';

const CONTROLS = [
  ...Array.from({ length: 0x20 }, (_, i) => String.fromCharCode(i)),
  ...Array.from({ length: 0x21 }, (_, i) => String.fromCharCode(0x7f + i)),
  '\u061c',
  '\u200e',
  '\u200f',
  '\u2028',
  '\u2029',
  '\u202a',
  '\u202b',
  '\u202c',
  '\u202d',
  '\u202e',
  '\u2066',
  '\u2067',
  '\u2068',
  '\u2069',
];

describe('control characters in text', () => {
  it('finds every C0, DEL, C1, separator and bidi control, and nothing printable', () => {
    for (const c of CONTROLS) {
      expect(hasControlCharacters(`a${c}b`), c.charCodeAt(0).toString(16)).toBe(true);
      expect(escapeControlCharacters(c)).toBe(
        `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
      );
    }
    for (const text of ['', 'resolve complaint #4471', 'naïve — 顧客 🙂', 'a\u200db', '\ufeff'])
      expect(hasControlCharacters(text), text).toBe(false);
  });

  it('escapes to text without them that JSON reads back as the original', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (text) => {
        const escaped = escapeControlCharacters(text);
        expect(hasControlCharacters(escaped)).toBe(false);
        expect(escapeControlCharacters(text) === text).toBe(!hasControlCharacters(text));
        // Inside a JSON string the escapes decode back (JSON.stringify escapes C0 itself).
        const json = escapeControlCharacters(JSON.stringify(text));
        expect(JSON.parse(json)).toBe(text);
      }),
    );
  });

  it('keeps the characters it is told to keep', () => {
    expect(escapeControlCharacters('a\nb\rc\x1b', '\n')).toBe('a\nb\\u000dc\\u001b');
  });
});
