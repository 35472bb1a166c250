/**
 * The identities the channel benchmarks use, built once in the main process and handed to the
 * party processes (bench/channel-party.ts) as bytes: the authority's change history and, per
 * party, its secure-channel static secret and identity payload. Each process verifies the
 * authority's history itself, so every handshake it runs is the full one.
 */
import { generateX25519KeyPair } from '../src/crypto/index.js';
import { encodeIdentityPayload } from '../src/channel/identity-payload.js';
import { staticKeyFromSecret } from '../src/channel/noise.js';
import { TrustPolicies, type SecureChannelOptions } from '../src/channel/index.js';
import {
  constraintsToAttributes,
  issueCredential,
  parseConstraint,
  type CredentialIssuer,
} from '../src/credentials/index.js';
import { attestPurposeKey } from '../src/identity/internal.js';
import {
  Identities,
  MemoryIdentityRepository,
  Purpose,
  verifyChangeHistory,
  type Identifier,
  type VerifiedIdentity,
} from '../src/identity/index.js';
import { MemoryVault } from '../src/vault/index.js';

export const BENCH_NOW = 1_800_000_000;

export interface BenchParty {
  readonly identity: VerifiedIdentity;
  readonly staticSecret: Uint8Array;
  /** The identity payload: change history, secure-channel attestation, one credential. */
  readonly payload: Uint8Array;
}

export interface BenchWorld {
  readonly authorities: ReadonlyMap<Identifier, VerifiedIdentity>;
  /** The initiator (sender) in every benchmark. */
  readonly alice: BenchParty;
  /** The responder; its credential also allows it to register the relay name `bob`. */
  readonly bob: BenchParty;
  /** The relay node's own identity (its listener takes bob's registration). */
  readonly relay: BenchParty;
}

/** What crosses to a party process: bytes only. */
export interface PartyKeys {
  readonly staticSecret: Uint8Array;
  readonly payload: Uint8Array;
}

export interface WorldKeys {
  readonly authorityHistory: Uint8Array;
  readonly self: PartyKeys;
}

/** Three identities with a one-change history, an attested X25519 key and one credential each. */
export async function benchWorld(): Promise<BenchWorld> {
  const vault = new MemoryVault();
  const identities = new Identities({
    vault,
    repository: new MemoryIdentityRepository(),
    clock: { nowSeconds: () => BENCH_NOW },
  });
  const authorityLocal = await identities.create({ name: 'authority' });
  const authorityKey = await identities.purposeKey('authority', Purpose.credentials);
  const authority: CredentialIssuer = {
    identity: authorityLocal.identity,
    credentialKeyId: authorityKey.keyId,
    credentialKeyAttestation: authorityKey.verified.attestation,
  };
  const party = async (name: string, constraints: readonly string[]): Promise<BenchParty> => {
    const keyPair = generateX25519KeyPair();
    const local = await identities.create({ name, purposeKeys: false });
    const attestation = await attestPurposeKey(
      vault,
      local.identity,
      local.primaryKeyId,
      { purpose: Purpose.secureChannel, x25519: keyPair.publicKey },
      { nowSeconds: BENCH_NOW },
    );
    const credential = await issueCredential(
      vault,
      authority,
      local.identity,
      constraintsToAttributes(new Map(constraints.map((c) => parseConstraint(c)))),
      { nowSeconds: BENCH_NOW },
    );
    return {
      identity: local.identity,
      staticSecret: keyPair.secretKey,
      payload: encodeIdentityPayload({
        changeHistory: local.identity.changeHistory,
        secureChannelAttestation: attestation,
        credentials: [credential],
        chains: [],
      }),
    };
  };
  return {
    authorities: new Map([[authorityLocal.identity.identifier, authorityLocal.identity]]),
    alice: await party('alice', ['tools=read_orders']),
    bob: await party('bob', ['tools=read_orders', 'relay=bob']),
    relay: await party('relay', ['tools=relay']),
  };
}

export function worldKeys(world: BenchWorld, self: BenchParty): WorldKeys {
  const [authority] = world.authorities.values();
  if (authority === undefined) throw new Error('the bench world has no authority');
  return {
    authorityHistory: authority.changeHistory,
    self: { staticSecret: self.staticSecret, payload: self.payload },
  };
}

/**
 * Channel options for `self`: the full verification of the peer (its history, its channel-key
 * attestation and a credential from the authority), and `peer`'s identifier when it is known.
 */
export function benchChannelOptions(
  authorities: ReadonlyMap<Identifier, VerifiedIdentity>,
  self: PartyKeys,
  deliverTo: readonly string[],
  peer?: Identifier,
): SecureChannelOptions {
  return {
    staticKey: staticKeyFromSecret(self.staticSecret),
    identityPayload: self.payload,
    verify: {
      authorities,
      trustPolicy:
        peer === undefined
          ? TrustPolicies.credentialHolder()
          : TrustPolicies.all(TrustPolicies.identifier(peer), TrustPolicies.credentialHolder()),
    },
    clock: { nowSeconds: () => BENCH_NOW + 1 },
    deliverTo,
  };
}

/** The authorities map, rebuilt in a party process from the authority's history. */
export function authoritiesFrom(keys: WorldKeys): ReadonlyMap<Identifier, VerifiedIdentity> {
  const authority = verifyChangeHistory(keys.authorityHistory);
  return new Map([[authority.identifier, authority]]);
}
