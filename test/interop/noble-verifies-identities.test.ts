// An independent implementation checks what Mandate signs: @noble/curves (pure JS, audited)
// verifies every change and attestation signature of identities Mandate created and rotated,
// including the P-256 convention (ECDSA over SHA-256(SHA-256(data)), raw r ‖ s).
import { ed25519 } from '@noble/curves/ed25519.js';
import { p256 } from '@noble/curves/nist.js';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MemoryVault, SigningKeyType } from '../../src/vault/index.js';
import { attestPurposeKey, decodePurposeKeyAttestation } from '../../src/identity/internal.js';
import { createIdentity, rotateIdentity } from '../../src/identity/create-identity.js';
import { Purpose, verifyChangeHistory, type VerifiedIdentity } from '../../src/identity/index.js';
import { decodeChangeHistoryEnvelope, encodeChangeHistory } from '../../src/identity/codec.js';

function nobleVerify(
  keyType: SigningKeyType,
  publicKey: Uint8Array,
  data: Uint8Array,
  signature: Uint8Array,
): boolean {
  const hash = nobleSha256(data);
  return keyType === SigningKeyType.ed25519
    ? ed25519.verify(signature, hash, publicKey)
    : p256.verify(signature, nobleSha256(hash), publicKey, { prehash: false, lowS: true });
}

function checkHistoryWithNoble(identity: VerifiedIdentity): void {
  identity.changes.forEach((change, i) => {
    expect(
      nobleVerify(
        change.primaryPublicKey.keyType,
        change.primaryPublicKey.bytes,
        change.data,
        change.signature,
      ),
    ).toBe(true);
    if (i > 0) {
      const previous = identity.changes[i - 1]!.primaryPublicKey;
      expect(
        nobleVerify(previous.keyType, previous.bytes, change.data, change.previousSignature!),
      ).toBe(true);
    }
  });
}

const keyTypes = fc.constantFrom(SigningKeyType.ed25519, SigningKeyType.p256);

describe('identities checked by @noble/curves', () => {
  it('verifies histories of random key types and rotation counts; the identifier never changes (property)', async () => {
    await fc.assert(
      fc.asyncProperty(keyTypes, fc.array(keyTypes, { maxLength: 4 }), async (first, rotations) => {
        const vault = new MemoryVault();
        const created = await createIdentity(vault, { nowSeconds: 1_800_000_000, keyType: first });
        let current = { identity: created.identity, keyId: created.primaryKey.keyId };
        for (const [i, keyType] of rotations.entries()) {
          const rotated = await rotateIdentity(vault, current.identity, current.keyId, {
            nowSeconds: 1_800_000_001 + i,
            keyType,
          });
          current = { identity: rotated.identity, keyId: rotated.primaryKey.keyId };
        }
        const verified = verifyChangeHistory(current.identity.changeHistory);
        expect(verified.identifier).toBe(created.identity.identifier);
        expect(verified.changes).toHaveLength(rotations.length + 1);
        checkHistoryWithNoble(verified);
        // Decode and re-encode reproduce the bytes exactly.
        expect(
          encodeChangeHistory(
            decodeChangeHistoryEnvelope(current.identity.changeHistory, 1 << 16, 256),
          ),
        ).toEqual(current.identity.changeHistory);
      }),
      { numRuns: 40 },
    );
  });

  it('verifies purpose-key attestations under both primary key types', async () => {
    for (const keyType of [SigningKeyType.ed25519, SigningKeyType.p256]) {
      const vault = new MemoryVault();
      const { identity, primaryKey } = await createIdentity(vault, {
        nowSeconds: 1_800_000_000,
        keyType,
      });
      const channel = await vault.generateX25519Key();
      const attestation = await attestPurposeKey(
        vault,
        identity,
        primaryKey.keyId,
        { purpose: Purpose.secureChannel, x25519: channel.publicKey },
        { nowSeconds: 1_800_000_000 },
      );
      const decoded = decodePurposeKeyAttestation(attestation);
      expect(
        nobleVerify(keyType, primaryKey.publicKey, decoded.dataBytes, decoded.signature.bytes),
      ).toBe(true);
    }
  });
});
