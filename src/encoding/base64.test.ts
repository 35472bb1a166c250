import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decodeBase64Strict, toBase64, toBase64Url, type Base64Variant } from './base64.js';

const encoders: Record<Base64Variant, (bytes: Uint8Array) => string> = {
  base64: toBase64,
  base64url: toBase64Url,
};
const VARIANTS: readonly Base64Variant[] = ['base64', 'base64url'];
const STANDARD = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const URL_SAFE = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

describe('decodeBase64Strict', () => {
  it('round-trips every byte string in both variants', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.constantFrom(...VARIANTS), (bytes, v) => {
        expect(decodeBase64Strict(encoders[v](bytes), v)).toEqual(bytes);
      }),
    );
  });

  it('accepts only the canonical encoding: any other text decodes to undefined or re-encodes to itself', () => {
    const chars = fc.constantFrom(...`${STANDARD}-_=. \n`.split(''));
    fc.assert(
      fc.property(fc.array(chars, { maxLength: 40 }), fc.constantFrom(...VARIANTS), (list, v) => {
        const text = list.join('');
        const bytes = decodeBase64Strict(text, v);
        if (bytes !== undefined) expect(encoders[v](bytes)).toBe(text);
      }),
    );
  });

  it('refuses non-zero spare bits in the last character', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 64 }).filter((b) => b.length % 3 !== 0),
        fc.constantFrom(...VARIANTS),
        fc.integer({ min: 1, max: 15 }),
        (bytes, v, flip) => {
          const text = encoders[v](bytes);
          const alphabet = v === 'base64' ? STANDARD : URL_SAFE;
          const last = text.replace(/=+$/, '').length - 1;
          // The last character carries 4 (one byte over) or 2 (two bytes over) spare bits.
          const spare = bytes.length % 3 === 1 ? 0b1111 : 0b11;
          const value = alphabet.indexOf(text[last]!) ^ (flip & spare);
          if ((flip & spare) === 0) return;
          const changed = text.slice(0, last) + alphabet[value]! + text.slice(last + 1);
          expect(decodeBase64Strict(changed, v)).toBeUndefined();
        },
      ),
    );
  });

  it('refuses padding errors and the other alphabet', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), (bytes) => {
        const padded = toBase64(bytes);
        const unpadded = padded.replace(/=+$/, '');
        if (unpadded !== padded) {
          expect(decodeBase64Strict(unpadded, 'base64')).toBeUndefined(); // padding missing
          expect(decodeBase64Strict(toBase64Url(bytes) + '=', 'base64url')).toBeUndefined();
        }
        // The other alphabet: `+` and `/` are not base64url, `-` and `_` not base64.
        if (/[+/]/.test(unpadded))
          expect(decodeBase64Strict(unpadded, 'base64url')).toBeUndefined();
        const url = toBase64Url(bytes);
        if (/[-_]/.test(url))
          expect(
            decodeBase64Strict(padded.replace(/\+/g, '-').replace(/\//g, '_'), 'base64'),
          ).toBeUndefined();
        expect(decodeBase64Strict(padded + '====', 'base64')).toBeUndefined(); // extra padding
        expect(decodeBase64Strict(`=${padded.slice(1)}`, 'base64')).toBeUndefined(); // misplaced
      }),
    );
    expect(decodeBase64Strict('+/8=', 'base64')).toEqual(new Uint8Array([0xfb, 0xff]));
    expect(decodeBase64Strict('+/8', 'base64url')).toBeUndefined();
    expect(decodeBase64Strict('-_8', 'base64url')).toEqual(new Uint8Array([0xfb, 0xff]));
    expect(decodeBase64Strict('-_8=', 'base64')).toBeUndefined();
    expect(decodeBase64Strict('A', 'base64url')).toBeUndefined();
    expect(decodeBase64Strict('QQ==\n', 'base64')).toBeUndefined();
    expect(decodeBase64Strict('', 'base64')).toEqual(new Uint8Array());
  });
});
