import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ManualClock } from '../core/index.js';
import { encodeCbor, toHex } from '../encoding/index.js';
import { sha256 } from '../crypto/index.js';
import { MemoryVault, SigningKeyType, type SigningVault } from '../vault/index.js';
import {
  encodeChangeData,
  encodeChangeHistory,
  encodeVersionedData,
  decodeChangeHistoryEnvelope,
} from './codec.js';
import { createIdentity, rotateIdentity } from './create-identity.js';
import { verifyChangeHistory } from './verify-change-history.js';
import type { VerifiedIdentity } from './verified-identity.js';
import { codeOf } from '../../test/helpers/errors.js';

const NOW = 1_800_000_000;

async function rotatedTwice(
  vault: SigningVault,
  keyType: SigningKeyType = SigningKeyType.ed25519,
): Promise<VerifiedIdentity> {
  const { identity, primaryKey } = await createIdentity(vault, { nowSeconds: NOW, keyType });
  const r1 = await rotateIdentity(vault, identity, primaryKey.keyId, { nowSeconds: NOW + 10 });
  const r2 = await rotateIdentity(vault, r1.identity, r1.primaryKey.keyId, {
    nowSeconds: NOW + 20,
    keyType: SigningKeyType.p256,
  });
  return r2.identity;
}

describe('createIdentity / verifyChangeHistory', () => {
  it.each([SigningKeyType.ed25519, SigningKeyType.p256])(
    'creates a %s identity that verifies from bytes',
    async (keyType) => {
      const vault = new MemoryVault();
      const { identity, primaryKey } = await createIdentity(vault, { nowSeconds: NOW, keyType });
      expect(identity.identifier).toBe(`I${toHex(sha256(identity.changes[0]!.data))}`);
      const verified = verifyChangeHistory(identity.changeHistory);
      expect(verified.identifier).toBe(identity.identifier);
      expect(verified.keyType).toBe(keyType);
      expect(toHex(verified.primaryPublicKey.bytes)).toBe(toHex(primaryKey.publicKey));
      expect(verified.changes[0]!.attestationsValidFrom).toBe(NOW);
      expect(
        verifyChangeHistory(identity.changeHistory, { expectedIdentifier: identity.identifier })
          .identifier,
      ).toBe(identity.identifier);
    },
  );

  it('rotation keeps the identifier and both signatures verify', async () => {
    const vault = new MemoryVault();
    const rotated = await rotatedTwice(vault);
    const verified = verifyChangeHistory(rotated.changeHistory);
    expect(verified.changes).toHaveLength(3);
    expect(verified.identifier).toBe(`I${toHex(verified.changes[0]!.changeHash)}`);
    expect(verified.keyType).toBe(SigningKeyType.p256);
    expect(toHex(verified.changes[2]!.previousChange!)).toBe(
      toHex(verified.changes[1]!.changeHash),
    );
  });

  it('rejects an unexpected identifier', async () => {
    const vault = new MemoryVault();
    const a = await createIdentity(vault, { nowSeconds: NOW });
    const b = await createIdentity(vault, { nowSeconds: NOW });
    expect(
      codeOf(() =>
        verifyChangeHistory(a.identity.changeHistory, {
          expectedIdentifier: b.identity.identifier,
        }),
      ),
    ).toBe('ERR_IDENTITY_IDENTIFIER_MISMATCH');
  });

  it('refuses to rotate with a key that is not the current primary key', async () => {
    const vault = new MemoryVault();
    const a = await createIdentity(vault, { nowSeconds: NOW });
    const b = await createIdentity(vault, { nowSeconds: NOW });
    await expect(
      rotateIdentity(vault, a.identity, b.primaryKey.keyId, { nowSeconds: NOW + 1 }),
    ).rejects.toMatchObject({ code: 'ERR_IDENTITY_KEY_MISMATCH' });
    await expect(
      rotateIdentity(vault, a.identity, a.primaryKey.keyId, { nowSeconds: NOW - 1 }),
    ).rejects.toMatchObject({ code: 'ERR_IDENTITY_ORDER' });
  });

  it('refuses a rotation signed wrongly by a faulty vault', async () => {
    const vault = new MemoryVault();
    const forging: SigningVault = {
      generateSigningKey: (t) => vault.generateSigningKey(t),
      getSigningKey: (id) => vault.getSigningKey(id),
      deleteSigningKey: (id) => vault.deleteSigningKey(id),
      sign: async (id, message) => {
        const sig = await vault.sign(id, message);
        sig[0]! ^= 1;
        return sig;
      },
    };
    const a = await createIdentity(vault, { nowSeconds: NOW });
    await expect(
      rotateIdentity(forging, a.identity, a.primaryKey.keyId, { nowSeconds: NOW + 1 }),
    ).rejects.toMatchObject({ code: 'ERR_IDENTITY_SIGNATURE_INVALID' });
  });
});

describe('bad change histories', () => {
  it('rejects any one-bit change anywhere in a rotated history (property)', async () => {
    const rotated = await rotatedTwice(new MemoryVault());
    const bytes = rotated.changeHistory;
    fc.assert(
      fc.property(fc.integer({ min: 0, max: bytes.length * 8 - 1 }), (bit) => {
        const mutated = bytes.slice();
        mutated[bit >> 3]! ^= 1 << (bit & 7);
        expect(codeOf(() => verifyChangeHistory(mutated))).toMatch(
          /^ERR_(IDENTITY_|KEY_TYPE_UNSUPPORTED)/,
        );
      }),
      { numRuns: 2000 },
    );
  });

  it('rejects every truncation', async () => {
    const rotated = await rotatedTwice(new MemoryVault());
    for (let n = 0; n < rotated.changeHistory.length; n++) {
      expect(codeOf(() => verifyChangeHistory(rotated.changeHistory.subarray(0, n)))).toBe(
        'ERR_IDENTITY_MALFORMED',
      );
    }
  });

  it('rejects random bytes and mutated histories with a typed error only', async () => {
    const rotated = await rotatedTwice(new MemoryVault());
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
        expect(codeOf(() => verifyChangeHistory(bytes))).not.toBe('accepted');
      }),
    );
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 8,
        }),
        (edits) => {
          const mutated = rotated.changeHistory.slice();
          for (const [pos, value] of edits) mutated[pos % mutated.length] = value;
          const code = codeOf(() => verifyChangeHistory(mutated));
          if (code === 'accepted') expect(toHex(mutated)).toBe(toHex(rotated.changeHistory));
        },
      ),
    );
  });

  it('rejects a history spliced from two identities', async () => {
    const vault = new MemoryVault();
    const a = await rotatedTwice(vault);
    const b = await rotatedTwice(vault);
    const ea = decodeChangeHistoryEnvelope(a.changeHistory, 1 << 16, 16);
    const eb = decodeChangeHistoryEnvelope(b.changeHistory, 1 << 16, 16);
    expect(codeOf(() => verifyChangeHistory(encodeChangeHistory([ea[0]!, eb[1]!])))).toBe(
      'ERR_IDENTITY_CHAIN_BROKEN',
    );
    expect(codeOf(() => verifyChangeHistory(encodeChangeHistory([ea[0]!, ea[2]!])))).toBe(
      'ERR_IDENTITY_CHAIN_BROKEN',
    );
    expect(codeOf(() => verifyChangeHistory(encodeChangeHistory([ea[1]!, ea[2]!])))).toBe(
      'ERR_IDENTITY_CHAIN_BROKEN',
    );
    // A later change without the previous key's signature.
    expect(
      codeOf(() =>
        verifyChangeHistory(encodeChangeHistory([ea[0]!, { ...ea[1]!, previousSignature: null }])),
      ),
    ).toBe('ERR_IDENTITY_SIGNATURE_MISSING');
    // The previous key's signature taken from the other identity.
    expect(
      codeOf(() =>
        verifyChangeHistory(
          encodeChangeHistory([ea[0]!, { ...ea[1]!, previousSignature: eb[1]!.previousSignature }]),
        ),
      ),
    ).toBe('ERR_IDENTITY_SIGNATURE_INVALID');
  });

  /** Builds a one-change history over arbitrary VersionedData fields, correctly signed. */
  async function signedHistory(
    build: (publicKey: Uint8Array) => Uint8Array,
    keyType: SigningKeyType = SigningKeyType.ed25519,
  ): Promise<Uint8Array> {
    const vault = new MemoryVault();
    const key = await vault.generateSigningKey(keyType);
    const data = build(key.publicKey);
    const signature = await vault.sign(key.keyId, sha256(data));
    return encodeChangeHistory([
      { data, signature: { keyType, bytes: signature }, previousSignature: null },
    ]);
  }

  const changeData = (
    publicKey: Uint8Array,
    over: Partial<{ from: number; until: number; previous: Uint8Array | null }> = {},
  ): Uint8Array =>
    encodeChangeData({
      previousChange: over.previous ?? null,
      primaryPublicKey: { keyType: SigningKeyType.ed25519, bytes: publicKey },
      revokeAllPurposeKeys: false,
      attestationsValidFrom: over.from ?? NOW,
      attestationsValidUntil: over.until ?? NOW + 100,
    });

  it('rejects wrong versions, data types, windows and key types, each with its code', async () => {
    const cases: [string, Uint8Array][] = [
      [
        'ERR_IDENTITY_VERSION_UNSUPPORTED',
        await signedHistory((pk) => encodeCbor([2, 1, changeData(pk)])),
      ],
      ['ERR_IDENTITY_DATA_TYPE', await signedHistory((pk) => encodeCbor([1, 3, changeData(pk)]))],
      [
        'ERR_IDENTITY_ORDER',
        await signedHistory((pk) =>
          encodeVersionedData(1, changeData(pk, { from: NOW + 1, until: NOW })),
        ),
      ],
      [
        'ERR_IDENTITY_CHAIN_BROKEN',
        await signedHistory((pk) =>
          encodeVersionedData(1, changeData(pk, { previous: new Uint8Array(32) })),
        ),
      ],
      [
        'ERR_IDENTITY_MALFORMED',
        await signedHistory((pk) =>
          encodeVersionedData(1, encodeCbor([null, [0, [pk]], false, NOW])),
        ),
      ],
      [
        'ERR_IDENTITY_MALFORMED',
        await signedHistory((pk) =>
          encodeVersionedData(1, encodeCbor([null, [0, [pk.subarray(1)]], false, NOW, NOW + 1])),
        ),
      ],
      [
        'ERR_KEY_TYPE_UNSUPPORTED',
        await signedHistory((pk) =>
          encodeVersionedData(1, encodeCbor([null, [7, [pk]], false, NOW, NOW + 1])),
        ),
      ],
      [
        'ERR_IDENTITY_MALFORMED',
        await signedHistory((pk) =>
          encodeVersionedData(1, encodeCbor([null, [0, [pk]], 0, NOW, NOW + 1])),
        ),
      ],
      [
        'ERR_IDENTITY_MALFORMED',
        await signedHistory((pk) => encodeCbor([1, 1, changeData(pk), 'extra'])),
      ],
    ];
    for (const [code, history] of cases)
      expect(
        codeOf(() => verifyChangeHistory(history)),
        code,
      ).toBe(code);
  });

  it('rejects a signature whose type differs from its key', async () => {
    const history = await signedHistory((pk) => encodeVersionedData(1, changeData(pk)));
    const e = decodeChangeHistoryEnvelope(history, 1 << 16, 16)[0]!;
    const swapped = encodeChangeHistory([
      { ...e, signature: { keyType: SigningKeyType.p256, bytes: e.signature.bytes } },
    ]);
    expect(codeOf(() => verifyChangeHistory(swapped))).toBe('ERR_IDENTITY_SIGNATURE_INVALID');
  });

  it('rejects oversized input, empty histories and too many changes', () => {
    expect(codeOf(() => verifyChangeHistory(new Uint8Array(70 * 1024)))).toBe(
      'ERR_IDENTITY_MALFORMED',
    );
    expect(codeOf(() => verifyChangeHistory(encodeCbor([])))).toBe('ERR_IDENTITY_MALFORMED');
    expect(codeOf(() => verifyChangeHistory(encodeCbor(new Array(300).fill(0))))).toBe(
      'ERR_IDENTITY_MALFORMED',
    );
  });
});

describe('deterministic clocks', () => {
  it('uses the time it is given', async () => {
    const clock = new ManualClock(NOW);
    const { identity } = await createIdentity(new MemoryVault(), {
      nowSeconds: clock.nowSeconds(),
      ttlSeconds: 60,
    });
    expect(identity.changes[0]!.attestationsValidUntil).toBe(NOW + 60);
  });
});
