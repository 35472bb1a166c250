import { describe, expect, it } from 'vitest';
import {
  Identities,
  MemoryIdentityRepository,
  Purpose,
  verifyPurposeKeyAttestation,
} from '../identity/index.js';
import { MemoryVault } from '../vault/index.js';
import { DEFAULT_CHANNEL_KEY_TTL_SECONDS, prepareChannelIdentity } from './channel-identity.js';
import { decodeIdentityPayload } from './identity-payload.js';

const NOW = 1_800_000_000;

describe('prepareChannelIdentity', () => {
  it('attests a fresh in-memory key for a day and presents it with the credentials given', async () => {
    const vault = new MemoryVault();
    const identities = new Identities({
      vault,
      repository: new MemoryIdentityRepository(),
      clock: { nowSeconds: () => NOW },
    });
    const local = await identities.create({ name: 'agent', purposeKeys: false });
    const credential = new Uint8Array([0x82, 0x80, 0x80]);
    const first = await prepareChannelIdentity(vault, {
      identity: local.identity,
      primaryKeyId: local.primaryKeyId,
      credentials: [credential],
      nowSeconds: NOW,
    });
    const second = await prepareChannelIdentity(vault, {
      identity: local.identity,
      primaryKeyId: local.primaryKeyId,
      nowSeconds: NOW,
    });
    const payload = decodeIdentityPayload(first.identityPayload);
    expect(payload.credentials).toEqual([credential]);
    const key = verifyPurposeKeyAttestation(local.identity, payload.secureChannelAttestation, {
      nowSeconds: NOW,
      expectedPurpose: Purpose.secureChannel,
    });
    expect(key.key.purpose === Purpose.secureChannel ? key.key.x25519 : undefined).toEqual(
      first.staticKey.publicKey,
    );
    expect(key.expiresAt - key.createdAt).toBe(DEFAULT_CHANNEL_KEY_TTL_SECONDS);
    // Every call makes a new key.
    expect(second.staticKey.publicKey).not.toEqual(first.staticKey.publicKey);
  });
});
