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
  revalidatePeer,
  TrustPolicies,
  VerifiedPeerCache,
  verifyPeer,
  type VerifyPeerOptions,
} from './identity-payload.js';
import { verifyCredential } from '../credentials/index.js';
import { freshDenySet, revoke } from '../../test/helpers/deny-set.js';
import { codeOf } from '../../test/helpers/errors.js';

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

describe('revalidating a peer', () => {
  // Issue 8, vulnerability 7: a NaN clock compared false against every expiry and kept them all.
  it.each([
    ['NaN', Number.NaN],
    ['undefined', undefined],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['-Infinity', Number.NEGATIVE_INFINITY],
    ['1.5', 1.5],
  ])('refuses a `nowSeconds` of %s, and so does verifyPeer', async (_, now) => {
    const w = await world();
    const bytes = encodeIdentityPayload({
      changeHistory: w.alice.identity.changeHistory,
      secureChannelAttestation: w.alice.channelAttestation,
      credentials: [w.credential],
      chains: [],
    });
    const options = {
      remoteStaticKey: w.alice.x25519,
      authorities: w.authorities,
      trustPolicy: TrustPolicies.credentialHolder(),
    };
    const peer = verifyPeer(bytes, { ...options, nowSeconds: NOW + 1 });
    expect(
      codeOf(() =>
        revalidatePeer(peer, {
          nowSeconds: now as number,
          trustPolicy: TrustPolicies.credentialHolder(),
        }),
      ),
    ).toBe('ERR_ARGUMENT_INVALID');
    expect(causeCode(() => verifyPeer(bytes, { ...options, nowSeconds: now as number }))).toBe(
      'ERR_ARGUMENT_INVALID',
    );
  });
});

describe('the verified-peer cache', () => {
  async function cached() {
    const w = await world();
    const payload = encodeIdentityPayload({
      changeHistory: w.alice.identity.changeHistory,
      secureChannelAttestation: w.alice.channelAttestation,
      credentials: [w.credential],
      chains: [],
    });
    const cache = new VerifiedPeerCache();
    const options: VerifyPeerOptions = {
      nowSeconds: NOW + 1,
      remoteStaticKey: w.alice.x25519,
      authorities: w.authorities,
      trustPolicy: TrustPolicies.credentialHolder(),
      cache,
    };
    const first = verifyPeer(payload, options);
    return { w, payload, cache, options, first };
  }

  it('answers a payload seen before without verifying it again, still checking key and policy', async () => {
    const { w, payload, cache, options, first } = await cached();
    expect(cache.size).toBe(1);
    expect(cache.hits).toBe(0);
    expect(verifyPeer(payload, { ...options, nowSeconds: NOW + 60 })).toBe(first);
    expect(cache.hits).toBe(1);
    // The binding to the Noise key and the trust policy are never taken from the cache.
    expect(
      causeCode(() => verifyPeer(payload, { ...options, remoteStaticKey: w.bob.x25519 })),
    ).toBe('ERR_CHANNEL_KEY_MISMATCH');
    expect(causeCode(() => verifyPeer(payload, { ...options, trustPolicy: () => false }))).toBe(
      'ERR_CHANNEL_UNTRUSTED',
    );
    expect(cache.hits).toBe(3);
  });

  it('verifies again once time, authorities, known history or the deny-set say otherwise', async () => {
    const { w, payload, cache, options, first } = await cached();
    // Past the credential's expiry: verified afresh, and the credential is gone.
    const late = verifyPeer(payload, {
      ...options,
      nowSeconds: first.credentials[0]!.expiresAt,
      trustPolicy: () => true,
    });
    expect(late.credentials).toEqual([]);
    expect(cache.hits).toBe(0);
    // A clock before the time of verification is not trusted to the cache either.
    expect(verifyPeer(payload, { ...options, nowSeconds: NOW })).not.toBe(first);
    // Another authorities map: maybe another trust; verify.
    const again = verifyPeer(payload, { ...options, authorities: new Map(w.authorities) });
    expect(again).not.toBe(first);
    expect(cache.hits).toBe(0);
    // A deny-set holding the credential.
    const held = verifyCredential(w.credential, {
      nowSeconds: NOW + 1,
      authorities: w.authorities,
    });
    const denySet = freshDenySet(NOW);
    revoke(denySet, held.revocationId, { expiresAt: held.expiresAt, nowSeconds: NOW });
    expect(causeCode(() => verifyPeer(payload, { ...options, denySet }))).toBe(
      'ERR_CHANNEL_UNTRUSTED',
    );
    // A newer history known for the peer.
    verifyPeer(payload, options);
    const hits = cache.hits;
    const rotated = await w.identities.rotate('alice', { revokeAllPurposeKeys: true });
    const knownIdentities = new Map([[rotated.identity.identifier, rotated.identity]]);
    expect(causeCode(() => verifyPeer(payload, { ...options, knownIdentities }))).toBe(
      'ERR_PURPOSE_KEY_REVOKED',
    );
    expect(cache.hits).toBe(hits);
  });

  it('keeps nothing that failed in part, and stays within its bound', async () => {
    const w = await world();
    const cache = new VerifiedPeerCache({ maxEntries: 2 });
    const base = {
      nowSeconds: NOW + 1,
      authorities: w.authorities,
      trustPolicy: () => true,
      cache,
    };
    // Alice's credential presented by Bob: dropped (subject mismatch), so not cached.
    const stolen = encodeIdentityPayload({
      changeHistory: w.bob.identity.changeHistory,
      secureChannelAttestation: w.bob.channelAttestation,
      credentials: [w.credential],
      chains: [],
    });
    expect(verifyPeer(stolen, { ...base, remoteStaticKey: w.bob.x25519 }).rejected).toHaveLength(1);
    expect(cache.size).toBe(0);
    for (const party of [w.alice, w.bob, w.authority]) {
      const bytes = encodeIdentityPayload({
        changeHistory: party.identity.changeHistory,
        secureChannelAttestation: party.channelAttestation,
        credentials: [],
        chains: [],
      });
      verifyPeer(bytes, { ...base, remoteStaticKey: party.x25519 });
    }
    expect(cache.size).toBe(2);
    expect(() => new VerifiedPeerCache({ maxEntries: 0 })).toThrow(
      expect.objectContaining({ code: 'ERR_ARGUMENT_INVALID' }),
    );
  });

  it('gives the verdict the full verification gives, at any time (property)', async () => {
    const { w, payload, options } = await cached();
    const uncached: VerifyPeerOptions = {
      nowSeconds: options.nowSeconds,
      remoteStaticKey: options.remoteStaticKey,
      authorities: options.authorities,
      trustPolicy: options.trustPolicy,
    };
    const verdict = (o: VerifyPeerOptions): string => {
      try {
        const peer = verifyPeer(payload, o);
        return `${peer.identifier}:${peer.credentials.length}`;
      } catch (error) {
        return isMandateError(error) && isMandateError(error.cause) ? error.cause.code : 'other';
      }
    };
    fc.assert(
      fc.property(
        fc.integer({ min: NOW - 100, max: NOW + 2 * 86_400 }),
        fc.boolean(),
        (now, pinned) => {
          const trustPolicy = pinned
            ? TrustPolicies.identifier(w.alice.identity.identifier)
            : TrustPolicies.credentialHolder();
          expect(verdict({ ...options, nowSeconds: now, trustPolicy })).toBe(
            verdict({ ...uncached, nowSeconds: now, trustPolicy }),
          );
        },
      ),
      { numRuns: 200 },
    );
  });
});
