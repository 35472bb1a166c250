import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { expectCode } from '../../test/helpers/errors.js';
import { AEAD_TAG_BYTES, AeadAlgorithm, aeadDecrypt, aeadEncrypt } from './index.js';

// Known-answer vectors and agreement with node:crypto for whole plaintexts are in crypto.test.ts;
// here the pieces and the headroom are checked against that whole-plaintext form.

const algorithms = [AeadAlgorithm.aes256gcm, AeadAlgorithm.chacha20poly1305];
const bytesOf = (length: number): fc.Arbitrary<Uint8Array> =>
  fc.uint8Array({ minLength: length, maxLength: length });

const join = (pieces: readonly Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(pieces.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const piece of pieces) {
    out.set(piece, at);
    at += piece.byteLength;
  }
  return out;
};

describe('aeadEncrypt in pieces, after headroom', () => {
  it.each(algorithms)(
    '%s: seals the pieces as their concatenation, after zeroed headroom',
    (algorithm) => {
      fc.assert(
        fc.property(
          bytesOf(32),
          bytesOf(12),
          fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 5 }),
          fc.uint8Array({ maxLength: 32 }),
          fc.nat(24),
          (key, nonce, pieces, aad, headroom) => {
            const plaintext = join(pieces);
            const whole = aeadEncrypt(algorithm, key, nonce, plaintext, aad);
            const framed = aeadEncrypt(algorithm, key, nonce, pieces, aad, headroom);
            expect(framed.byteLength).toBe(headroom + plaintext.byteLength + AEAD_TAG_BYTES);
            expect(framed.subarray(0, headroom)).toStrictEqual(new Uint8Array(headroom));
            expect(framed.subarray(headroom)).toStrictEqual(whole);
            expect(
              aeadDecrypt(algorithm, key, nonce, framed.subarray(headroom), aad),
            ).toStrictEqual(plaintext);
          },
        ),
        { numRuns: 200 },
      );
    },
  );

  it.each(algorithms)('%s: the output has an ArrayBuffer of its own', (algorithm) => {
    const key = new Uint8Array(32).fill(7);
    const nonce = new Uint8Array(12);
    for (const [pieces, headroom] of [
      [[new Uint8Array(20), new Uint8Array(16 * 1024)], 9],
      [[new Uint8Array(3)], 1],
      [[], 0],
    ] as const) {
      const framed = aeadEncrypt(algorithm, key, nonce, pieces, undefined, headroom);
      expect(framed.byteOffset).toBe(0);
      expect(framed.buffer.byteLength).toBe(framed.byteLength);
    }
  });

  it('refuses a headroom that is not a non-negative integer', () => {
    for (const algorithm of algorithms) {
      for (const headroom of [-1, 0.5, Number.NaN, Number.POSITIVE_INFINITY]) {
        expectCode(
          () =>
            aeadEncrypt(
              algorithm,
              new Uint8Array(32),
              new Uint8Array(12),
              new Uint8Array(1),
              undefined,
              headroom,
            ),
          'ERR_ARGUMENT_INVALID',
        );
      }
    }
  });
});
