import { describe, expect, it } from 'vitest';
import { isMandateError } from '../core/index.js';
import { generateX25519KeyPair } from '../crypto/index.js';
import type { Identifier, VerifiedIdentity } from '../identity/index.js';
import { channelWorld, CHANNEL_NOW, type ChannelParty } from '../../test/helpers/channel-world.js';
import { ChannelHandshake } from './channel-handshake.js';
import { TrustPolicies, type TrustPolicy } from './identity-payload.js';
import { staticKeyFromSecret } from './noise.js';

const NOW = CHANNEL_NOW;

function handshake(
  authorities: ReadonlyMap<Identifier, VerifiedIdentity>,
  party: ChannelParty,
  initiator: boolean,
  trustPolicy: TrustPolicy,
  staticKey = party.staticKey,
) {
  return new ChannelHandshake({
    initiator,
    staticKey,
    identityPayload: party.identityPayload,
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
    const w = await channelWorld();
    const alice = await w.party('alice', ['tools=read_orders']);
    const bob = await w.party('bob', ['tools=read_orders']);
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
    const w = await channelWorld();
    const alice = await w.party('alice', null);
    const bob = await w.party('bob', ['tools=read_orders']);
    // Bob requires a credential; Alice has none: refused when message 3 arrives.
    const a = handshake(w.authorities, alice, true, TrustPolicies.credentialHolder());
    const b = handshake(w.authorities, bob, false, TrustPolicies.credentialHolder());
    const atA = a.receive(b.receive(a.start()).send!);
    expect(causeOf(() => b.receive(atA.send!))).toBe('ERR_CHANNEL_UNTRUSTED');
    // Bob's rejection, once: an empty frame only Alice's keys of this handshake open.
    const rejection = b.takeRejection()!;
    expect(b.takeRejection()).toBeUndefined();
    expect(atA.established!.decryptor.decrypt(rejection)).toEqual(new Uint8Array(0));
    // Mallory presents Bob's payload with her own Noise key: refused at message 2.
    const mallory = handshake(
      w.authorities,
      bob,
      false,
      TrustPolicies.credentialHolder(),
      staticKeyFromSecret(generateX25519KeyPair().secretKey),
    );
    const a2 = handshake(w.authorities, alice, true, TrustPolicies.credentialHolder());
    expect(causeOf(() => a2.receive(mallory.receive(a2.start()).send!))).toBe(
      'ERR_CHANNEL_KEY_MISMATCH',
    );
    // An initiator refusing at message 2 has no transport key yet: no rejection to send.
    expect(a2.takeRejection()).toBeUndefined();
  });

  it('survives a tampered message: the honest one still completes', async () => {
    const w = await channelWorld();
    const alice = await w.party('alice', ['tools=read_orders']);
    const bob = await w.party('bob', ['tools=read_orders']);
    const a = handshake(w.authorities, alice, true, TrustPolicies.credentialHolder());
    const b = handshake(w.authorities, bob, false, TrustPolicies.credentialHolder());
    const m2 = b.receive(a.start()).send!;
    const tampered = m2.slice();
    tampered[tampered.length - 1]! ^= 1;
    expect(causeOf(() => a.receive(tampered))).toBe('ERR_NOISE_DECRYPT_FAILED');
    expect(a.receive(m2).established!.peer.identifier).toBe(bob.identity.identifier);
  });
});
