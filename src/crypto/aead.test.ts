import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { expectCode } from '../../test/helpers/errors.js';
import { JOIN_PIECES_MAX_BYTES } from './aead.js';
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

describe('aeadEncrypt paths: joined in the frame, one update() per piece, sealed in place', () => {
  const key = Uint8Array.from({ length: 32 }, (_, i) => i * 7);
  const nonce = Uint8Array.from({ length: 12 }, (_, i) => 200 - i);
  const aad = Uint8Array.of(1, 2, 3);
  // Totals on both sides of the limit under which AES-GCM joins the pieces in the frame.
  const totals = [
    0,
    1,
    JOIN_PIECES_MAX_BYTES - 1,
    JOIN_PIECES_MAX_BYTES,
    JOIN_PIECES_MAX_BYTES + 1,
    16 * 1024 + 24,
  ];
  const piecesOf = (total: number): Uint8Array[] => {
    const whole = Uint8Array.from({ length: total }, (_, i) => (i * 31 + 5) & 0xff);
    const head = Math.min(24, total);
    return [whole.subarray(0, head), whole.subarray(head, total - 1), whole.subarray(total - 1)];
  };

  it.each(algorithms)('%s: every total seals the pieces as their concatenation', (algorithm) => {
    for (const total of totals) {
      const pieces = piecesOf(total);
      const whole = join(pieces);
      const framed = aeadEncrypt(algorithm, key, nonce, pieces, aad, 9);
      expect(framed.subarray(0, 9)).toStrictEqual(new Uint8Array(9));
      expect(framed.subarray(9)).toStrictEqual(aeadEncrypt(algorithm, key, nonce, whole, aad));
      expect(aeadDecrypt(algorithm, key, nonce, framed.subarray(9), aad)).toStrictEqual(whole);
    }
  });

  it.each(algorithms)('%s: the pieces are left as they were', (algorithm) => {
    for (const total of totals) {
      const pieces = piecesOf(total);
      const copies = pieces.map((piece) => piece.slice());
      aeadEncrypt(algorithm, key, nonce, pieces, aad, 3);
      expect(pieces).toStrictEqual(copies);
    }
  });

  it.each(algorithms)(
    '%s: a frame sealed from pieces refuses any changed bit with ERR_CRYPTO_DECRYPT_FAILED',
    (algorithm) => {
      fc.assert(
        fc.property(fc.constantFrom(...totals.filter((t) => t > 0)), fc.nat(), (total, at) => {
          const framed = aeadEncrypt(algorithm, key, nonce, piecesOf(total), aad, 5);
          const sealed = framed.slice(5);
          const bit = at % (sealed.byteLength * 8);
          sealed[bit >> 3]! ^= 1 << (bit & 7);
          expectCode(
            () => aeadDecrypt(algorithm, key, nonce, sealed, aad),
            'ERR_CRYPTO_DECRYPT_FAILED',
          );
        }),
        { numRuns: 100 },
      );
    },
  );

  it.each(algorithms)('%s: the opened plaintext never aliases the ciphertext', (algorithm) => {
    for (const total of totals) {
      const sealed = aeadEncrypt(algorithm, key, nonce, join(piecesOf(total)), aad);
      const before = sealed.slice();
      const opened = aeadDecrypt(algorithm, key, nonce, sealed, aad);
      expect(opened).toBeInstanceOf(Uint8Array);
      expect(Buffer.isBuffer(opened)).toBe(false);
      opened.fill(0xee);
      expect(sealed).toStrictEqual(before);
    }
  });
});
