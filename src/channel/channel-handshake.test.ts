import { describe, expect, it } from 'vitest';
import { isMandateError } from '../core/index.js';
import { generateX25519KeyPair } from '../crypto/index.js';
import {
  attestPurposeKey,
  Identities,
  MemoryIdentityRepository,
  Purpose,
} from '../identity/index.js';
import { MemoryVault } from '../vault/index.js';
import {
  constraintsToAttributes,
  issueCredential,
  parseConstraint,
  type CredentialIssuer,
} from '../credentials/index.js';
import { ChannelHandshake } from './channel-handshake.js';
import { encodeIdentityPayload, TrustPolicies, type TrustPolicy } from './identity-payload.js';
import { staticKeyFromSecret } from './noise.js';

const NOW = 1_800_000_000;

async function world() {
  const vault = new MemoryVault();
  const identities = new Identities({
    vault,
    repository: new MemoryIdentityRepository(),
    clock: { nowSeconds: () => NOW },
  });
  const authorityLocal = await identities.create({ name: 'authority' });
  const authorityKey = await identities.purposeKey('authority', Purpose.credentials);
  const authority: CredentialIssuer = {
    identity: authorityLocal.identity,
    credentialKeyId: authorityKey.keyId,
    credentialKeyAttestation: authorityKey.verified.attestation,
  };
  const authorities = new Map([[authorityLocal.identity.identifier, authorityLocal.identity]]);
  const party = async (name: string, credentialed: boolean, attested = generateX25519KeyPair()) => {
    const local = await identities.create({ name, purposeKeys: false });
    // The Noise static key: attested by the primary key like any secure-channel purpose key.
    const attestation = await attestPurposeKey(
      vault,
      local.identity,
      local.primaryKeyId,
      { purpose: Purpose.secureChannel, x25519: attested.publicKey },
      { nowSeconds: NOW },
    );
    const credentials = credentialed
      ? [
          await issueCredential(
            vault,
            authority,
            local.identity,
            constraintsToAttributes(new Map([parseConstraint('tools=read_orders')])),
            { nowSeconds: NOW },
          ),
        ]
      : [];
    return {
      identity: local.identity,
      payload: encodeIdentityPayload({
        changeHistory: local.identity.changeHistory,
        secureChannelAttestation: attestation,
        credentials,
        chains: [],
      }),
      keyPair: attested,
    };
  };
  return { authorities, party };
}

type Party = Awaited<ReturnType<Awaited<ReturnType<typeof world>>['party']>>;

function handshake(
  authorities:
    | Map<`I${string}`, never>
    | ReadonlyMap<`I${string}`, import('../identity/index.js').VerifiedIdentity>,
  party: Party,
  initiator: boolean,
  trustPolicy: TrustPolicy,
  staticSecret = party.keyPair.secretKey,
) {
  return new ChannelHandshake({
    initiator,
    staticKey: staticKeyFromSecret(staticSecret),
    identityPayload: party.payload,
    generateEphemeral: generateX25519KeyPair,
    verify: { nowSeconds: NOW + 1, authorities, trustPolicy },
  });
}

const causeOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (error) {
    if (isMandateError(error, 'ERR_CHANNEL_PEER_REJECTED'))
      return isMandateError(error.cause) ? error.cause.code : 'no cause';
    if (isMandateError(error)) return error.code;
    throw error;
  }
  return 'accepted';
};

describe('ChannelHandshake', () => {
  it('authenticates both identities and their credentials, then carries messages both ways', async () => {
    const w = await world();
    const alice = await w.party('alice', true);
    const bob = await w.party('bob', true);
    const a = handshake(w.authorities, alice, true, TrustPolicies.credentialHolder());
    const b = handshake(
      w.authorities,
      bob,
      false,
      TrustPolicies.identifier(alice.identity.identifier),
    );
    const m2 = b.receive(a.start()).send!;
    const atA = a.receive(m2);
    const atB = b.receive(atA.send!);
    expect(atA.established!.peer.identifier).toBe(bob.identity.identifier);
    expect(atA.established!.peer.credentials).toHaveLength(1);
    expect(atB.established!.peer.identifier).toBe(alice.identity.identifier);
    expect(atA.established!.handshakeHash).toEqual(atB.established!.handshakeHash);
    const hello = new TextEncoder().encode('hello bob');
    expect(atB.established!.decryptor.decrypt(atA.established!.encryptor.encrypt(hello))).toEqual(
      hello,
    );
    const reply = new TextEncoder().encode('hello alice');
    expect(atA.established!.decryptor.decrypt(atB.established!.encryptor.encrypt(reply))).toEqual(
      reply,
    );
  });

  it('refuses peers the trust policy does not accept, and a static key that is not the attested one', async () => {
    const w = await world();
    const alice = await w.party('alice', false);
    const bob = await w.party('bob', true);
    // Bob requires a credential; Alice has none: refused when message 3 arrives.
    const a = handshake(w.authorities, alice, true, TrustPolicies.credentialHolder());
    const b = handshake(w.authorities, bob, false, TrustPolicies.credentialHolder());
    const m3 = a.receive(b.receive(a.start()).send!).send!;
    expect(causeOf(() => b.receive(m3))).toBe('ERR_CHANNEL_UNTRUSTED');
    // Mallory presents Bob's payload with her own Noise key: refused at message 2.
    const mallory = handshake(
      w.authorities,
      bob,
      false,
      TrustPolicies.credentialHolder(),
      generateX25519KeyPair().secretKey,
    );
    const a2 = handshake(w.authorities, alice, true, TrustPolicies.credentialHolder());
    expect(causeOf(() => a2.receive(mallory.receive(a2.start()).send!))).toBe(
      'ERR_CHANNEL_KEY_MISMATCH',
    );
  });

  it('survives a tampered message: the honest one still completes', async () => {
    const w = await world();
    const alice = await w.party('alice', true);
    const bob = await w.party('bob', true);
    const a = handshake(w.authorities, alice, true, TrustPolicies.credentialHolder());
    const b = handshake(w.authorities, bob, false, TrustPolicies.credentialHolder());
    const m2 = b.receive(a.start()).send!;
    const tampered = m2.slice();
    tampered[tampered.length - 1]! ^= 1;
    expect(causeOf(() => a.receive(tampered))).toBe('ERR_NOISE_DECRYPT_FAILED');
    expect(a.receive(m2).established!.peer.identifier).toBe(bob.identity.identifier);
  });
});
