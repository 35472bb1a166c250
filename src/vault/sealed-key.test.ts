import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeCbor, toHex } from '../encoding/index.js';
import { sealedKeyAad, type SealedKeyFields } from './sealed-key.js';

const reference = (f: SealedKeyFields): Uint8Array =>
  encodeCbor(['mandate/vault/sealed-key', 1, f.keyId, f.purpose, f.keyType, f.publicKey]);

describe('sealedKeyAad', () => {
  it('writes exactly the documented CBOR array, on the fast path and off it', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 300 }),
          fc.stringMatching(/^[0-9a-f]{32}$/),
          fc.string({ unit: 'grapheme', maxLength: 40 }),
        ),
        fc.constantFrom<SealedKeyFields['purpose']>('signing', 'x25519'),
        fc.constantFrom<SealedKeyFields['keyType']>('ed25519', 'p256', 'x25519'),
        fc.uint8Array({ maxLength: 300 }),
        (keyId, purpose, keyType, publicKey) => {
          const fields = { keyId, purpose, keyType, publicKey };
          expect(toHex(sealedKeyAad(fields))).toBe(toHex(reference(fields)));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('pins one vector, so a change of format is a visible change', () => {
    const aad = sealedKeyAad({
      keyId: 'k',
      purpose: 'signing',
      keyType: 'ed25519',
      publicKey: Uint8Array.of(0xaa),
    });
    expect(toHex(aad)).toBe(
      '86' +
        '78186d616e646174652f7661756c742f7365616c65642d6b6579' +
        '01' +
        '616b' +
        '677369676e696e67' +
        '6765643235353139' +
        '41aa',
    );
  });
});
