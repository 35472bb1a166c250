import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isMandateError } from '../core/index.js';
import { bytesEqual, concatBytes, fromHex, toHex } from './hex.js';

function hexError(text: string, what?: string): unknown {
  try {
    fromHex(text, what);
  } catch (error) {
    return error;
  }
  return undefined;
}

describe('hex', () => {
  it('round-trips any bytes, including views into a larger buffer', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.nat(8), (bytes, offset) => {
        const backing = new Uint8Array(offset + bytes.byteLength + 3);
        backing.set(bytes, offset);
        const view = backing.subarray(offset, offset + bytes.byteLength);
        expect(toHex(view)).toBe(Buffer.from(bytes).toString('hex'));
        expect(fromHex(toHex(view))).toStrictEqual(bytes);
      }),
    );
  });

  it('accepts either case and surrounding whitespace', () => {
    expect(fromHex(' 0aFf\n')).toStrictEqual(new Uint8Array([0x0a, 0xff]));
    expect(fromHex('')).toStrictEqual(new Uint8Array(0));
  });

  it.each([
    ['odd length', 'abc'],
    ['a single digit', 'a'],
    ['a non-hex letter', '0g'],
    ['a 0x prefix', '0x00'],
    ['inner whitespace', '00 11'],
    ['a sign', '-1'],
    ['non-ASCII digits', '٠١'],
  ])('rejects %s with ERR_HEX_INVALID', (_why, text) => {
    expect(isMandateError(hexError(text), 'ERR_HEX_INVALID')).toBe(true);
  });

  it('names what it was decoding, never the input itself', () => {
    const error = hexError('zz-secret-zz', 'seed');
    expect(isMandateError(error, 'ERR_HEX_INVALID')).toBe(true);
    expect(String(error)).toContain('seed');
    expect(String(error)).not.toContain('secret');
  });

  it('bytesEqual compares length and content', () => {
    expect(bytesEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2]))).toBe(true);
    expect(bytesEqual(new Uint8Array([1, 2]), new Uint8Array([1, 3]))).toBe(false);
    expect(bytesEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2, 0]))).toBe(false);
    expect(bytesEqual(new Uint8Array(0), new Uint8Array(0))).toBe(true);
  });

  it('concatBytes joins in order', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 16 }), { maxLength: 5 }), (parts) => {
        expect(concatBytes(...parts)).toStrictEqual(new Uint8Array(Buffer.concat(parts)));
      }),
    );
  });
});
