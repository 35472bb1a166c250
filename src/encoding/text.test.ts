import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { copyBytes, escapeControlCharacters, hasControlCharacters, utf8Bytes } from './text.js';

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

describe('utf8Bytes and copyBytes', () => {
  const encoder = new TextEncoder();

  it('write what TextEncoder writes, short and long, lone surrogates as U+FFFD', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 3000 }), (text) => {
        expect(utf8Bytes(text)).toEqual(encoder.encode(text));
      }),
    );
    for (const text of ['', 'x'.repeat(5000), '顧'.repeat(1400), '\ud800', 'a\udc00b'])
      expect(utf8Bytes(text)).toEqual(encoder.encode(text));
  });

  it('give results that stay as written while thousands more are cut after them', () => {
    const kept = Array.from({ length: 200 }, (_, i) => {
      const text = `${i}:${'é'.repeat(i * 7)}`;
      const bytes = utf8Bytes(text);
      const copy = copyBytes(bytes);
      return { text, bytes, copy };
    });
    for (let i = 0; i < 2000; i++) copyBytes(utf8Bytes('z'.repeat(i % 900)));
    for (const { text, bytes, copy } of kept) {
      expect(bytes).toEqual(encoder.encode(text));
      expect(copy).toEqual(bytes);
    }
  });

  it('copy: a change to the source (or the copy) does not reach the other', () => {
    for (const length of [0, 1, 100, 4096, 4097, 20_000]) {
      const source = Buffer.alloc(length, 7);
      const copy = copyBytes(source);
      expect(copy).toBeInstanceOf(Uint8Array);
      expect(copy).toEqual(new Uint8Array(source));
      if (length === 0) continue;
      source[0] = 9;
      expect(copy[0]).toBe(7);
      copy[length - 1] = 5;
      expect(source[length - 1]).toBe(length === 1 ? 9 : 7);
    }
  });
});
