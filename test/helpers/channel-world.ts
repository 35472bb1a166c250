import {
  Identities,
  MemoryIdentityRepository,
  Purpose,
  type Identifier,
  type VerifiedIdentity,
} from '../../src/identity/index.js';
import { MemoryVault } from '../../src/vault/index.js';
import {
  constraintsToAttributes,
  issueCredential,
  parseConstraint,
  type CredentialIssuer,
} from '../../src/credentials/index.js';
import { prepareChannelIdentity, type NoiseStaticKey } from '../../src/channel/index.js';

export const CHANNEL_NOW = 1_800_000_000;

export interface ChannelParty {
  readonly identity: VerifiedIdentity;
  /** Its attested secure-channel key. */
  readonly staticKey: NoiseStaticKey;
  readonly identityPayload: Uint8Array;
}

/**
 * An authority and parties for secure-channel tests: each party has an identity, a secure-channel
 * key attested by its primary key, and — unless `grant` is null — one credential from the
 * authority with the given constraints (e.g. `tools=read_orders`, `relay=bob`).
 */
export async function channelWorld(now = CHANNEL_NOW) {
  const vault = new MemoryVault();
  const identities = new Identities({
    vault,
    repository: new MemoryIdentityRepository(),
    clock: { nowSeconds: () => now },
  });
  const authorityLocal = await identities.create({ name: 'authority' });
  const authorityKey = await identities.purposeKey('authority', Purpose.credentials);
  const authority: CredentialIssuer = {
    identity: authorityLocal.identity,
    credentialKeyId: authorityKey.keyId,
    credentialKeyAttestation: authorityKey.verified.attestation,
  };
  const authorities: ReadonlyMap<Identifier, VerifiedIdentity> = new Map([
    [authorityLocal.identity.identifier, authorityLocal.identity],
  ]);
  const party = async (name: string, grant: readonly string[] | null): Promise<ChannelParty> => {
    const local = await identities.create({ name, purposeKeys: false });
    const credentials =
      grant === null
        ? []
        : [
            await issueCredential(
              vault,
              authority,
              local.identity,
              constraintsToAttributes(new Map(grant.map((g) => parseConstraint(g)))),
              { nowSeconds: now },
            ),
          ];
    return {
      identity: local.identity,
      ...(await prepareChannelIdentity(vault, {
        identity: local.identity,
        primaryKeyId: local.primaryKeyId,
        credentials,
        nowSeconds: now,
      })),
    };
  };
  return { vault, identities, authority, authorities, party };
}
