import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MemoryVault, SigningKeyType } from '../vault/index.js';
import { createIdentity, rotateIdentity } from './create-identity.js';
import { Purpose } from './model.js';
import {
  attestPurposeKey,
  DEFAULT_ROTATION_GRACE_SECONDS,
  verifyPurposeKeyAttestation,
  type PurposePublicKey,
} from './purpose-keys.js';
import { codeOf } from '../../test/helpers/errors.js';

const NOW = 1_800_000_000;

async function setup(keyType: SigningKeyType = SigningKeyType.ed25519) {
  const vault = new MemoryVault();
  const created = await createIdentity(vault, { nowSeconds: NOW, keyType });
  const credentialKey = await vault.generateSigningKey(SigningKeyType.ed25519);
  const channelKey = await vault.generateX25519Key();
  const credential: PurposePublicKey = {
    purpose: Purpose.credentials,
    signingKey: { keyType: credentialKey.keyType, bytes: credentialKey.publicKey },
  };
  const channel: PurposePublicKey = {
    purpose: Purpose.secureChannel,
    x25519: channelKey.publicKey,
  };
  return { vault, ...created, credential, channel };
}

describe('purpose key attestations', () => {
  it.each([SigningKeyType.ed25519, SigningKeyType.p256])(
    'attests and verifies both purposes under a %s primary key',
    async (keyType) => {
      const { vault, identity, primaryKey, credential, channel } = await setup(keyType);
      for (const key of [credential, channel]) {
        const attestation = await attestPurposeKey(vault, identity, primaryKey.keyId, key, {
          nowSeconds: NOW,
          ttlSeconds: 3600,
        });
        const verified = verifyPurposeKeyAttestation(identity, attestation, {
          nowSeconds: NOW + 10,
          expectedPurpose: key.purpose,
        });
        expect(verified.subject).toBe(identity.identifier);
        expect(verified.key).toEqual(key);
        expect(verified.createdAt).toBe(NOW);
        expect(verified.expiresAt).toBe(NOW + 3600);
        expect(verified.inRotationGrace).toBe(false);
      }
    },
  );

  it('rejects the wrong purpose, another subject, expiry, future creation and forged signatures', async () => {
    const { vault, identity, primaryKey, credential } = await setup();
    const other = await createIdentity(vault, { nowSeconds: NOW });
    const attestation = await attestPurposeKey(vault, identity, primaryKey.keyId, credential, {
      nowSeconds: NOW,
      ttlSeconds: 3600,
    });
    expect(
      codeOf(() =>
        verifyPurposeKeyAttestation(identity, attestation, {
          nowSeconds: NOW,
          expectedPurpose: Purpose.secureChannel,
        }),
      ),
    ).toBe('ERR_PURPOSE_KEY_WRONG_PURPOSE');
    expect(
      codeOf(() => verifyPurposeKeyAttestation(other.identity, attestation, { nowSeconds: NOW })),
    ).toBe('ERR_PURPOSE_KEY_SUBJECT_MISMATCH');
    expect(
      codeOf(() => verifyPurposeKeyAttestation(identity, attestation, { nowSeconds: NOW + 3601 })),
    ).toBe('ERR_PURPOSE_KEY_EXPIRED');
    expect(
      codeOf(() => verifyPurposeKeyAttestation(identity, attestation, { nowSeconds: NOW - 61 })),
    ).toBe('ERR_PURPOSE_KEY_NOT_YET_VALID');
    // Signed by another identity's primary key but naming this identity.
    const forged = await attestPurposeKey(vault, identity, other.primaryKey.keyId, credential, {
      nowSeconds: NOW,
    });
    expect(codeOf(() => verifyPurposeKeyAttestation(identity, forged, { nowSeconds: NOW }))).toBe(
      'ERR_PURPOSE_KEY_SIGNATURE_INVALID',
    );
  });

  it('rejects any one-bit change (property)', async () => {
    const { vault, identity, primaryKey, channel } = await setup();
    const attestation = await attestPurposeKey(vault, identity, primaryKey.keyId, channel, {
      nowSeconds: NOW,
    });
    fc.assert(
      fc.property(fc.integer({ min: 0, max: attestation.length * 8 - 1 }), (bit) => {
        const mutated = attestation.slice();
        mutated[bit >> 3]! ^= 1 << (bit & 7);
        expect(
          codeOf(() => verifyPurposeKeyAttestation(identity, mutated, { nowSeconds: NOW + 1 })),
        ).toMatch(/^ERR_(PURPOSE_KEY_|KEY_TYPE_UNSUPPORTED)/);
      }),
      { numRuns: 1000 },
    );
  });

  it('clips the attestation window to the change window', async () => {
    const vault = new MemoryVault();
    const { identity, primaryKey } = await createIdentity(vault, {
      nowSeconds: NOW,
      ttlSeconds: 100,
    });
    const channelKey = await vault.generateX25519Key();
    const attestation = await attestPurposeKey(
      vault,
      identity,
      primaryKey.keyId,
      { purpose: Purpose.secureChannel, x25519: channelKey.publicKey },
      { nowSeconds: NOW },
    );
    expect(verifyPurposeKeyAttestation(identity, attestation, { nowSeconds: NOW }).expiresAt).toBe(
      NOW + 100,
    );
    await expect(
      attestPurposeKey(
        vault,
        identity,
        primaryKey.keyId,
        { purpose: Purpose.secureChannel, x25519: channelKey.publicKey },
        { nowSeconds: NOW + 100 },
      ),
    ).rejects.toMatchObject({
      code: 'ERR_PURPOSE_KEY_EXPIRED',
    });
  });
});

describe('the rotation grace rule', () => {
  it('keeps an attestation under the previous change valid for the grace window, then refuses it', async () => {
    const { vault, identity, primaryKey, credential } = await setup();
    const attestation = await attestPurposeKey(vault, identity, primaryKey.keyId, credential, {
      nowSeconds: NOW,
    });
    const rotatedAt = NOW + 1000;
    const rotated = await rotateIdentity(vault, identity, primaryKey.keyId, {
      nowSeconds: rotatedAt,
    });
    const inGrace = verifyPurposeKeyAttestation(rotated.identity, attestation, {
      nowSeconds: rotatedAt + DEFAULT_ROTATION_GRACE_SECONDS - 1,
    });
    expect(inGrace.inRotationGrace).toBe(true);
    expect(
      codeOf(() =>
        verifyPurposeKeyAttestation(rotated.identity, attestation, {
          nowSeconds: rotatedAt + DEFAULT_ROTATION_GRACE_SECONDS,
        }),
      ),
    ).toBe('ERR_PURPOSE_KEY_STALE');
    expect(
      codeOf(() =>
        verifyPurposeKeyAttestation(rotated.identity, attestation, {
          nowSeconds: rotatedAt + 10,
          rotationGraceSeconds: 0,
        }),
      ),
    ).toBe('ERR_PURPOSE_KEY_STALE');
    // Re-attested under the new change, the same key is valid again and not in grace.
    const fresh = await attestPurposeKey(
      vault,
      rotated.identity,
      rotated.primaryKey.keyId,
      credential,
      { nowSeconds: rotatedAt },
    );
    expect(
      verifyPurposeKeyAttestation(rotated.identity, fresh, { nowSeconds: rotatedAt + 10_000 })
        .inRotationGrace,
    ).toBe(false);
  });

  it('voids attestations at once when the rotation revokes all purpose keys', async () => {
    const { vault, identity, primaryKey, credential } = await setup();
    const attestation = await attestPurposeKey(vault, identity, primaryKey.keyId, credential, {
      nowSeconds: NOW,
    });
    const rotated = await rotateIdentity(vault, identity, primaryKey.keyId, {
      nowSeconds: NOW + 5,
      revokeAllPurposeKeys: true,
    });
    expect(
      codeOf(() =>
        verifyPurposeKeyAttestation(rotated.identity, attestation, { nowSeconds: NOW + 5 }),
      ),
    ).toBe('ERR_PURPOSE_KEY_REVOKED');
  });

  it('gives grace across one rotation only', async () => {
    const { vault, identity, primaryKey, credential } = await setup();
    const attestation = await attestPurposeKey(vault, identity, primaryKey.keyId, credential, {
      nowSeconds: NOW,
    });
    const r1 = await rotateIdentity(vault, identity, primaryKey.keyId, { nowSeconds: NOW + 1 });
    const r2 = await rotateIdentity(vault, r1.identity, r1.primaryKey.keyId, {
      nowSeconds: NOW + 2,
    });
    expect(
      codeOf(() => verifyPurposeKeyAttestation(r2.identity, attestation, { nowSeconds: NOW + 3 })),
    ).toBe('ERR_PURPOSE_KEY_STALE');
  });

  it('reports an attestation under a change the verifier does not know yet', async () => {
    const { vault, identity, primaryKey, credential } = await setup();
    const rotated = await rotateIdentity(vault, identity, primaryKey.keyId, {
      nowSeconds: NOW + 1,
    });
    const attestation = await attestPurposeKey(
      vault,
      rotated.identity,
      rotated.primaryKey.keyId,
      credential,
      { nowSeconds: NOW + 1 },
    );
    expect(
      codeOf(() => verifyPurposeKeyAttestation(identity, attestation, { nowSeconds: NOW + 2 })),
    ).toBe('ERR_PURPOSE_KEY_UNKNOWN_CHANGE');
  });

  // Issue 8, vulnerability 7: a non-finite or fractional clock compared false and let an
  // attestation through.
  it.each([
    ['NaN', Number.NaN],
    ['undefined', undefined],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['-Infinity', Number.NEGATIVE_INFINITY],
    ['1.5', 1.5],
    ['-1', -1],
  ])('refuses a `nowSeconds` of %s when verifying or attesting', async (_, now) => {
    const { vault, identity, primaryKey, credential } = await setup();
    const attestation = await attestPurposeKey(vault, identity, primaryKey.keyId, credential, {
      nowSeconds: NOW,
      ttlSeconds: 3600,
    });
    expect(
      codeOf(() =>
        verifyPurposeKeyAttestation(identity, attestation, { nowSeconds: now as number }),
      ),
    ).toBe('ERR_ARGUMENT_INVALID');
    await expect(
      attestPurposeKey(vault, identity, primaryKey.keyId, credential, {
        nowSeconds: now as number,
      }),
    ).rejects.toMatchObject({ code: 'ERR_ARGUMENT_INVALID' });
  });
});
