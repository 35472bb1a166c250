import { generateX25519KeyPair, wipe } from '../crypto/index.js';
import { attestPurposeKey } from '../identity/internal.js';
import { Purpose, type VerifiedIdentity } from '../identity/index.js';
import type { SigningVault } from '../vault/index.js';
import { encodeIdentityPayload } from './identity-payload.js';
import { staticKeyFromSecret, type NoiseStaticKey } from './noise.js';

/** How long the attestation of a channel key made for one process run is valid by default. */
export const DEFAULT_CHANNEL_KEY_TTL_SECONDS = 24 * 3600;

/**
 * Options of {@link prepareChannelIdentity}: the local identity, the vault key id of its primary key, and what it presents.
 */
export interface ChannelIdentityOptions {
  readonly identity: VerifiedIdentity;
  /** The vault key id of the identity's current primary key, which attests the channel key. */
  readonly primaryKeyId: string;
  /** Credentials to present (CredentialAndPurposeKey bytes). */
  readonly credentials?: readonly Uint8Array[];
  /** Delegation chains to present (chain bytes). */
  readonly chains?: readonly Uint8Array[];
  readonly nowSeconds: number;
  readonly ttlSeconds?: number;
}

/**
 * This side of a channel, as `SecureChannelOptions` takes it: the static key (in process memory)
 * and the identity payload that presents it.
 */
export interface ChannelIdentity {
  readonly staticKey: NoiseStaticKey;
  readonly identityPayload: Uint8Array;
}

/**
 * This side of secure channels for a local identity: a fresh X25519 key attested by the
 * identity's primary key, and the identity payload presenting it with the given credentials and
 * chains. The key lives only in this process's memory — Noise needs a synchronous DH, and the
 * vault's secure-channel operations are asynchronous handles — so its attestation is short-lived
 * (a day by default) and every run attests a new one. A process that runs longer takes its keys
 * from a `StaticKeyManager`, which rotates and re-attests them while it runs.
 */
export async function prepareChannelIdentity(
  vault: SigningVault,
  options: ChannelIdentityOptions,
): Promise<ChannelIdentity> {
  const keyPair = generateX25519KeyPair();
  try {
    const attestation = await attestPurposeKey(
      vault,
      options.identity,
      options.primaryKeyId,
      { purpose: Purpose.secureChannel, x25519: keyPair.publicKey },
      {
        nowSeconds: options.nowSeconds,
        ttlSeconds: options.ttlSeconds ?? DEFAULT_CHANNEL_KEY_TTL_SECONDS,
      },
    );
    return {
      staticKey: staticKeyFromSecret(keyPair.secretKey),
      identityPayload: encodeIdentityPayload({
        changeHistory: options.identity.changeHistory,
        secureChannelAttestation: attestation,
        credentials: options.credentials ?? [],
        chains: options.chains ?? [],
      }),
    };
  } finally {
    // staticKeyFromSecret keeps its own copy.
    wipe(keyPair.secretKey);
  }
}
