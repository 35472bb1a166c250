import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isMandateError } from '../core/index.js';
import { Identities, MemoryIdentityRepository, Purpose } from '../identity/index.js';
import { MemoryVault } from '../vault/index.js';
import {
  chainFromCredential,
  constraintsToAttributes,
  delegate,
  issueCredential,
  parseConstraint,
  verifyChain,
  type CredentialIssuer,
} from '../credentials/index.js';
import {
  decodeIdentityPayload,
  encodeIdentityPayload,
  TrustPolicies,
  verifyPeer,
} from './identity-payload.js';

const NOW = 1_800_000_000;

async function world() {
  const vault = new MemoryVault();
  const identities = new Identities({
    vault,
    repository: new MemoryIdentityRepository(),
    clock: { nowSeconds: () => NOW },
  });
  const party = async (name: string) => {
    const local = await identities.create({ name });
    const credentialKey = await identities.purposeKey(name, Purpose.credentials);
    const channelKey = await identities.purposeKey(name, Purpose.secureChannel);
    const issuer: CredentialIssuer = {
      identity: local.identity,
      credentialKeyId: credentialKey.keyId,
      credentialKeyAttestation: credentialKey.verified.attestation,
    };
    const x25519 = (await vault.getX25519Key(channelKey.keyId)).publicKey;
    return {
      identity: local.identity,
      issuer,
      channelAttestation: channelKey.verified.attestation,
      x25519,
    };
  };
  const authority = await party('authority');
  const alice = await party('alice');
  const bob = await party('bob');
  const authorities = new Map([[authority.identity.identifier, authority.identity]]);
  const credential = await issueCredential(
    vault,
    authority.issuer,
    alice.identity,
    constraintsToAttributes(new Map([parseConstraint('tools=read_orders')])),
    { nowSeconds: NOW },
  );
  return { vault, identities, authority, alice, bob, authorities, credential };
}

function causeCode(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (isMandateError(error, 'ERR_CHANNEL_PEER_REJECTED'))
      return isMandateError(error.cause) ? error.cause.code : 'no cause';
    throw error;
  }
  return 'accepted';
}

describe('the identity payload of a handshake', () => {
  it('round-trips and verifies: history, attested key bound to the Noise key, credentials, chains', async () => {
    const w = await world();
    const chain = await delegate(
      w.vault,
      w.alice.issuer,
      verifyChain(chainFromCredential(w.credential, w.alice.identity), {
        nowSeconds: NOW,
        authorities: w.authorities,
      }),
      { nowSeconds: NOW, subject: w.bob.identity, constraints: new Map() },
    );
    const payload = {
      changeHistory: w.bob.identity.changeHistory,
      secureChannelAttestation: w.bob.channelAttestation,
      credentials: [],
      chains: [chain],
    };
    const bytes = encodeIdentityPayload(payload);
    expect(encodeIdentityPayload(decodeIdentityPayload(bytes))).toEqual(bytes);
    const peer = verifyPeer(bytes, {
      nowSeconds: NOW + 1,
      remoteStaticKey: w.bob.x25519,
      authorities: w.authorities,
      trustPolicy: TrustPolicies.credentialHolder(),
    });
    expect(peer.identifier).toBe(w.bob.identity.identifier);
    expect(peer.chains).toHaveLength(1);
    expect(peer.chains[0]!.actor).toBe(w.bob.identity.identifier);

    const withCredential = encodeIdentityPayload({
      changeHistory: w.alice.identity.changeHistory,
      secureChannelAttestation: w.alice.channelAttestation,
      credentials: [w.credential],
      chains: [],
    });
    expect(
      verifyPeer(withCredential, {
        nowSeconds: NOW + 1,
        remoteStaticKey: w.alice.x25519,
        authorities: w.authorities,
        trustPolicy: TrustPolicies.credentialHolder(),
      }).credentials,
    ).toHaveLength(1);
  });

  it('rejects a Noise key that is not the attested one, untrusted peers, and dropped credentials', async () => {
    const w = await world();
    const alicePayload = encodeIdentityPayload({
      changeHistory: w.alice.identity.changeHistory,
      secureChannelAttestation: w.alice.channelAttestation,
      credentials: [w.credential],
      chains: [],
    });
    const options = {
      nowSeconds: NOW + 1,
      authorities: w.authorities,
      trustPolicy: TrustPolicies.credentialHolder(),
    };
    expect(
      causeCode(() => verifyPeer(alicePayload, { ...options, remoteStaticKey: w.bob.x25519 })),
    ).toBe('ERR_CHANNEL_KEY_MISMATCH');
    // Another authority's credential is dropped, and then the policy refuses.
    expect(
      causeCode(() =>
        verifyPeer(alicePayload, {
          ...options,
          remoteStaticKey: w.alice.x25519,
          authorities: new Map(),
        }),
      ),
    ).toBe('ERR_CHANNEL_UNTRUSTED');
    // A pinned identifier.
    expect(
      causeCode(() =>
        verifyPeer(alicePayload, {
          ...options,
          remoteStaticKey: w.alice.x25519,
          trustPolicy: TrustPolicies.identifier(w.bob.identity.identifier),
        }),
      ),
    ).toBe('ERR_CHANNEL_UNTRUSTED');
    expect(
      verifyPeer(alicePayload, {
        ...options,
        remoteStaticKey: w.alice.x25519,
        trustPolicy: TrustPolicies.all(
          TrustPolicies.identifier(w.alice.identity.identifier),
          TrustPolicies.credentialHolder(),
        ),
      }).identifier,
    ).toBe(w.alice.identity.identifier);
    // Bob presenting Alice's credential: the subject differs, the credential is dropped.
    const bobWithAlices = encodeIdentityPayload({
      changeHistory: w.bob.identity.changeHistory,
      secureChannelAttestation: w.bob.channelAttestation,
      credentials: [w.credential],
      chains: [],
    });
    expect(
      causeCode(() => verifyPeer(bobWithAlices, { ...options, remoteStaticKey: w.bob.x25519 })),
    ).toBe('ERR_CHANNEL_UNTRUSTED');
  });

  it('uses the newer history it knows: a rotation that revokes purpose keys voids the old channel key', async () => {
    const w = await world();
    const old = encodeIdentityPayload({
      changeHistory: w.alice.identity.changeHistory,
      secureChannelAttestation: w.alice.channelAttestation,
      credentials: [w.credential],
      chains: [],
    });
    const rotated = await w.identities.rotate('alice', { revokeAllPurposeKeys: true });
    const knownIdentities = new Map([[rotated.identity.identifier, rotated.identity]]);
    expect(
      causeCode(() =>
        verifyPeer(old, {
          nowSeconds: NOW + 1,
          remoteStaticKey: w.alice.x25519,
          authorities: w.authorities,
          trustPolicy: TrustPolicies.credentialHolder(),
          knownIdentities,
        }),
      ),
    ).toBe('ERR_PURPOSE_KEY_REVOKED');
  });

  it('never accepts a mutated payload, and decodes random bytes only to typed errors (property)', async () => {
    const w = await world();
    const bytes = encodeIdentityPayload({
      changeHistory: w.alice.identity.changeHistory,
      secureChannelAttestation: w.alice.channelAttestation,
      credentials: [],
      chains: [],
    });
    const options = {
      nowSeconds: NOW + 1,
      remoteStaticKey: w.alice.x25519,
      authorities: w.authorities,
      trustPolicy: () => true,
    };
    fc.assert(
      fc.property(fc.integer({ min: 0, max: bytes.length * 8 - 1 }), (bit) => {
        const mutated = bytes.slice();
        mutated[bit >> 3]! ^= 1 << (bit & 7);
        expect(causeCode(() => verifyPeer(mutated, options))).not.toBe('accepted');
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (random) => {
        try {
          decodeIdentityPayload(random);
        } catch (error) {
          expect(isMandateError(error)).toBe(true);
        }
      }),
    );
  });
});
