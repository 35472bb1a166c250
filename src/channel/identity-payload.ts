import {
  checkUnixSeconds,
  forbidden,
  invalid,
  isUnixSeconds,
  unauthorized,
} from '../core/internal.js';
import { MandateError, isMandateError } from '../core/index.js';
import { sha256 } from '../crypto/index.js';
import {
  bytesEqual,
  decodeCbor,
  encodeCbor,
  encodeCborArrayOfEncoded,
  expectArray,
  expectBytes,
  toHex,
} from '../encoding/index.js';
import { newerHistory } from '../identity/internal.js';
import {
  Purpose,
  verifyChangeHistory,
  verifyPurposeKeyAttestation,
  type Identifier,
  type VerifiedIdentity,
  type VerifiedPurposeKey,
} from '../identity/index.js';
import {
  ChainVerifier,
  decodeChain,
  decodeCredential,
  verifyCredential,
  type DenySet,
  type VerifiedChain,
  type VerifiedCredential,
} from '../credentials/index.js';

/**
 * What each side of a secure channel proves about itself inside the Noise handshake: the
 * responder in message 2, the initiator in message 3 (docs/spec/channel.md). Byte-compatible
 * with Ockam's `IdentityAndCredentials` for its three fields; Mandate appends a fourth, optional
 * field with delegation chains (each a byte string), which Ockam's decoder ignores:
 *
 *   IdentityAndCredentials = [ change_history: ChangeHistory,
 *                              purpose_key_attestation: PurposeKeyAttestation,   ; secure-channel key
 *                              credentials: [ CredentialAndPurposeKey … ],
 *                              ? chains: [ bstr(Chain) … ] ]
 */
export interface IdentityPayload {
  readonly changeHistory: Uint8Array;
  readonly secureChannelAttestation: Uint8Array;
  readonly credentials: readonly Uint8Array[];
  readonly chains: readonly Uint8Array[];
}

const MALFORMED = 'ERR_CHANNEL_PAYLOAD_MALFORMED';
/** A Noise message carries at most 65,535 bytes; the payload must fit in one. */
const MAX_PAYLOAD_BYTES = 65_535;
const MAX_CREDENTIALS = 8;
const MAX_CHAINS = 8;

export function encodeIdentityPayload(payload: IdentityPayload): Uint8Array {
  const fields = [
    payload.changeHistory,
    payload.secureChannelAttestation,
    encodeCborArrayOfEncoded(payload.credentials),
  ];
  if (payload.chains.length > 0) fields.push(encodeCbor([...payload.chains]));
  const bytes = encodeCborArrayOfEncoded(fields);
  if (bytes.byteLength > MAX_PAYLOAD_BYTES) {
    throw invalid(
      'ERR_CHANNEL_PAYLOAD_TOO_LARGE',
      `the identity payload is ${bytes.byteLength} bytes, at most ${MAX_PAYLOAD_BYTES} fit in a handshake message`,
    );
  }
  return bytes;
}

/**
 * Strict decoding. Embedded structures are re-encoded from the strict decoder's values, which
 * reproduces their bytes (the decoder accepts only shortest forms); what is signed inside them
 * are byte strings, kept as received.
 */
export function decodeIdentityPayload(bytes: Uint8Array): IdentityPayload {
  const items = expectArray(
    decodeCbor(bytes, {
      errorCode: MALFORMED,
      what: 'identity payload',
      maxBytes: MAX_PAYLOAD_BYTES,
      maxDepth: 10,
    }),
    MALFORMED,
    'identity payload',
    3,
    4,
  );
  const credentials = expectArray(items[2]!, MALFORMED, 'payload credentials', 0, MAX_CREDENTIALS);
  const chains =
    items[3] === undefined ? [] : expectArray(items[3], MALFORMED, 'payload chains', 0, MAX_CHAINS);
  return {
    changeHistory: encodeCbor(items[0]!),
    secureChannelAttestation: encodeCbor(items[1]!),
    credentials: credentials.map((c) => encodeCbor(c)),
    chains: chains.map((c, i) => expectBytes(c, MALFORMED, `payload chain ${i + 1}`)),
  };
}

/**
 * The same identity and attested secure-channel key presenting other credentials (and, when
 * given, other chains): what a credential refresh sends.
 */
export function withCredentials(
  identityPayload: Uint8Array,
  credentials: readonly Uint8Array[],
  chains?: readonly Uint8Array[],
): Uint8Array {
  const payload = decodeIdentityPayload(identityPayload);
  return encodeIdentityPayload({ ...payload, credentials, chains: chains ?? payload.chains });
}

/**
 * The same identity, credentials and chains presenting another secure-channel key attestation:
 * what a channel end whose static key comes from a `StaticKeySource` presents (the attestation
 * of the key it took). Decodes, does not verify.
 */
export function withAttestation(identityPayload: Uint8Array, attestation: Uint8Array): Uint8Array {
  const payload = decodeIdentityPayload(identityPayload);
  if (bytesEqual(payload.secureChannelAttestation, attestation)) return identityPayload;
  return encodeIdentityPayload({ ...payload, secureChannelAttestation: attestation });
}

/**
 * When the first credential or chain of an encoded payload expires (Infinity when it carries
 * none): the time by which its owner must present fresh ones. Decodes, does not verify — it is
 * for a payload of one's own.
 */
export function payloadExpiresAt(bytes: Uint8Array): number {
  const payload = decodeIdentityPayload(bytes);
  let at = Number.POSITIVE_INFINITY;
  for (const credential of payload.credentials) {
    at = Math.min(at, decodeCredential(credential).expiresAt);
  }
  for (const chainBytes of payload.chains) {
    const chain = decodeChain(chainBytes);
    at = Math.min(at, decodeCredential(chain.root).expiresAt);
    for (const link of chain.links) if (link.expiresAt !== null) at = Math.min(at, link.expiresAt);
  }
  return at;
}

/** A peer whose identity, secure-channel key and credentials were checked during a handshake. */
export interface VerifiedPeer {
  readonly identity: VerifiedIdentity;
  readonly identifier: Identifier;
  readonly channelKey: VerifiedPurposeKey;
  /** The credentials that verified against the trusted authorities; the others are dropped. */
  readonly credentials: readonly VerifiedCredential[];
  /** The delegation chains whose actor is this peer and that verified. */
  readonly chains: readonly VerifiedChain[];
  /** The reasons credentials or chains were dropped (for the local log, never for the peer). */
  readonly rejected: readonly string[];
}

/** Who may complete a handshake; deny by default. */
export type TrustPolicy = (peer: VerifiedPeer) => boolean;

/**
 * Ready-made trust policies: which verified peers a channel end accepts (after the peer's
 * identity, key, credentials and chains were verified).
 */
export const TrustPolicies = {
  /** Only this identifier. */
  identifier:
    (expected: Identifier): TrustPolicy =>
    (peer) =>
      peer.identifier === expected,
  /**
   * Any identity that proves itself, credentials or not: only for listeners whose workers decide
   * per message who may do what (enrollment, where the initiator is not a member yet).
   */
  anyIdentity: (): TrustPolicy => () => true,
  /** Anyone holding a valid credential from a trusted authority (or a valid chain). */
  credentialHolder: (): TrustPolicy => (peer) =>
    peer.credentials.length > 0 || peer.chains.length > 0,
  /** Every one of the policies. */
  all:
    (...policies: TrustPolicy[]): TrustPolicy =>
    (peer) =>
      policies.every((p) => p(peer)),
  /** Any one of the policies. */
  any:
    (...policies: TrustPolicy[]): TrustPolicy =>
    (peer) =>
      policies.some((p) => p(peer)),
} as const;

/**
 * How a channel end verifies its peer: trusted authorities, trust policy, deny-set, caches.
 */
export interface VerifyPeerOptions {
  readonly nowSeconds: number;
  /** The peer's static key as Noise authenticated it (`rs`). */
  readonly remoteStaticKey: Uint8Array;
  readonly authorities: ReadonlyMap<Identifier, VerifiedIdentity>;
  readonly trustPolicy: TrustPolicy;
  /** Newer histories the verifier knows win over the one presented (rotations propagate). */
  readonly knownIdentities?: ReadonlyMap<Identifier, VerifiedIdentity>;
  readonly chainVerifier?: ChainVerifier;
  /**
   * Revocations: a revoked identity is rejected; a credential whose revocation id, issuer or
   * subject is revoked, and a chain with any revoked link or identity, are dropped. A stale set
   * fails closed (every credential and chain is dropped: ERR_DENY_SET_STALE).
   */
  readonly denySet?: DenySet;
  /**
   * Peers verified before: a payload seen again (same bytes) skips the signature checks while
   * what was verified still holds (see VerifiedPeerCache). The key binding, deny-set and trust
   * policy are checked every time.
   */
  readonly cache?: VerifiedPeerCache;
  /**
   * A credential refresh only: the peer as the channel's handshake verified it. A payload that
   * presents the very attestation bytes the channel was opened under, for the same history, keeps
   * the key as the handshake judged it — its `expires_at` is not held against the channel (the
   * static key is not used after the handshake); any other attestation, or a newer history, is
   * verified in full. The cache is not used.
   */
  readonly established?: Pick<VerifiedPeer, 'identity' | 'channelKey'>;
}

interface CachedPeer {
  readonly peer: VerifiedPeer;
  readonly authorities: ReadonlyMap<Identifier, VerifiedIdentity>;
  readonly verifiedAt: number;
  /** The first expiry of the attested key, the credentials and the chains. */
  readonly validUntil: number;
  readonly revocationIds: readonly string[];
}

export const DEFAULT_PEER_CACHE_ENTRIES = 10_000;

/**
 * Verified identity payloads by the SHA-256 of their bytes, so that a peer who comes back (a
 * reconnect, a second channel) costs no signature verification. A hit is used only while it
 * still stands: the same `authorities` map (pass a new map when the authorities change; a map
 * mutated in place is not noticed), the clock inside the window verified (not before the time of
 * verification, before the first expiry of the key and credentials), no newer history known for
 * the peer, nothing of it in the deny-set. Payloads with a credential or chain that failed, or
 * with a key under a rotation grace window, are not kept. Bounded: the oldest entry goes first.
 */
export class VerifiedPeerCache {
  readonly #entries = new Map<string, CachedPeer>();
  readonly #maxEntries: number;
  #hits = 0;

  constructor(options: { readonly maxEntries?: number } = {}) {
    const max = options.maxEntries ?? DEFAULT_PEER_CACHE_ENTRIES;
    if (!Number.isSafeInteger(max) || max < 1)
      throw invalid('ERR_ARGUMENT_INVALID', '`maxEntries` must be a positive integer');
    this.#maxEntries = max;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Lookups answered from the cache so far. */
  get hits(): number {
    return this.#hits;
  }

  /** @internal verifyPeer's lookup: the cached peer if it still stands, else undefined. */
  lookup(key: string, options: VerifyPeerOptions): VerifiedPeer | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    const now = options.nowSeconds;
    const peer = entry.peer;
    const known = options.knownIdentities?.get(peer.identifier);
    const stands =
      isUnixSeconds(now) &&
      entry.authorities === options.authorities &&
      now >= entry.verifiedAt &&
      now < entry.validUntil &&
      (known === undefined || bytesEqual(known.latestChangeHash, peer.identity.latestChangeHash));
    if (!stands) {
      this.#entries.delete(key);
      return undefined;
    }
    if (options.denySet !== undefined) {
      try {
        options.denySet.assertNoneRevoked(entry.revocationIds, now);
      } catch {
        // The full verification says precisely what is revoked or stale.
        return undefined;
      }
    }
    this.#hits++;
    return peer;
  }

  /** @internal verifyPeer's store, for a fully verified peer. */
  store(key: string, peer: VerifiedPeer, options: VerifyPeerOptions): void {
    const cacheable =
      peer.rejected.length === 0 &&
      !peer.channelKey.inRotationGrace &&
      peer.credentials.every((c) => !c.issuerKey.inRotationGrace);
    if (!cacheable) return;
    if (this.#entries.size >= this.#maxEntries) {
      const oldest = this.#entries.keys().next();
      if (oldest.done !== true) this.#entries.delete(oldest.value);
    }
    const revocationIds: string[] = [peer.identifier];
    for (const c of peer.credentials) revocationIds.push(...credentialRevocationIds(c));
    for (const c of peer.chains) revocationIds.push(...c.revocationSubjects);
    this.#entries.set(key, {
      peer,
      authorities: options.authorities,
      verifiedAt: options.nowSeconds,
      validUntil: Math.min(peer.channelKey.expiresAt, peerExpiresAt(peer)),
      revocationIds,
    });
  }
}

/**
 * Turns Noise static-key authentication into identity authentication, as Ockam does: the history
 * verifies (a newer one known locally wins, a diverging one is a fork), its secure-channel
 * attestation verifies, and the attested X25519 key equals the key Noise authenticated. Then the
 * credentials and chains are verified — invalid ones are dropped, not fatal, so the trust policy
 * decides — and the trust policy must accept. Every failure is `ERR_CHANNEL_PEER_REJECTED` with
 * the reason as its cause: the peer learns nothing about why.
 */
export function verifyPeer(payloadBytes: Uint8Array, options: VerifyPeerOptions): VerifiedPeer {
  try {
    checkUnixSeconds(options.nowSeconds);
    const cache = options.established === undefined ? options.cache : undefined;
    const key = cache === undefined ? '' : toHex(sha256(payloadBytes));
    let peer = cache?.lookup(key, options);
    if (peer === undefined) {
      peer = verifyPresented(payloadBytes, options);
      cache?.store(key, peer, options);
    } else if (
      peer.channelKey.key.purpose !== Purpose.secureChannel ||
      !bytesEqual(peer.channelKey.key.x25519, options.remoteStaticKey)
    ) {
      throw keyMismatch();
    }
    if (!options.trustPolicy(peer)) {
      throw forbidden('ERR_CHANNEL_UNTRUSTED', `the trust policy refuses \`${peer.identifier}\``);
    }
    return peer;
  } catch (cause) {
    throw unauthorized('ERR_CHANNEL_PEER_REJECTED', 'the peer failed authentication', cause);
  }
}

/**
 * The code a failure is reported by: for a peer that failed verification, the reason it was
 * rejected (the cause verifyPeer keeps); for another error its code, else `error`.
 */
export const reasonOf = (error: unknown): string => {
  if (isMandateError(error, 'ERR_CHANNEL_PEER_REJECTED') && isMandateError(error.cause)) {
    return error.cause.code;
  }
  return isMandateError(error) ? error.code : 'error';
};

const keyMismatch = (): MandateError =>
  invalid(
    'ERR_CHANNEL_KEY_MISMATCH',
    'the Noise static key is not the attested secure-channel key',
  );

/** Everything of verifyPeer but the trust policy; throws the cause itself. */
function verifyPresented(payloadBytes: Uint8Array, options: VerifyPeerOptions): VerifiedPeer {
  const payload = decodeIdentityPayload(payloadBytes);
  const presented = verifyChangeHistory(payload.changeHistory);
  const known = options.knownIdentities?.get(presented.identifier);
  const identity = newerHistory(known, presented);
  if (options.denySet?.isRevoked(identity.identifier) === true) {
    throw forbidden('ERR_REVOKED', `identity \`${identity.identifier}\` is revoked`);
  }
  const established = options.established;
  const channelKey =
    established !== undefined &&
    bytesEqual(payload.secureChannelAttestation, established.channelKey.attestation) &&
    bytesEqual(identity.latestChangeHash, established.identity.latestChangeHash)
      ? established.channelKey
      : verifyPurposeKeyAttestation(identity, payload.secureChannelAttestation, {
          nowSeconds: options.nowSeconds,
          expectedPurpose: Purpose.secureChannel,
        });
  if (
    channelKey.key.purpose !== Purpose.secureChannel ||
    !bytesEqual(channelKey.key.x25519, options.remoteStaticKey)
  ) {
    throw keyMismatch();
  }
  const rejected: string[] = [];
  const credentials: VerifiedCredential[] = [];
  for (const bytes of payload.credentials) {
    try {
      const credential = verifyCredential(bytes, {
        nowSeconds: options.nowSeconds,
        authorities: options.authorities,
        subject: identity,
      });
      options.denySet?.assertNoneRevoked(credentialRevocationIds(credential), options.nowSeconds);
      credentials.push(credential);
    } catch (error) {
      rejected.push(reason(error));
    }
  }
  const chains: VerifiedChain[] = [];
  const verifier =
    options.chainVerifier ??
    new ChainVerifier({
      authorities: options.authorities,
      ...(options.denySet === undefined ? {} : { denySet: options.denySet }),
    });
  for (const bytes of payload.chains) {
    try {
      chains.push(
        verifier.verify(bytes, {
          nowSeconds: options.nowSeconds,
          presenter: identity.identifier,
        }),
      );
    } catch (error) {
      rejected.push(reason(error));
    }
  }
  return {
    identity,
    identifier: identity.identifier,
    channelKey,
    credentials,
    chains,
    rejected,
  };
}

const credentialRevocationIds = (credential: VerifiedCredential): readonly string[] => [
  credential.revocationId,
  credential.issuer,
  credential.subject,
];

/** When the first of the peer's credentials and chains expires; Infinity when it holds none. */
export function peerExpiresAt(peer: VerifiedPeer): number {
  let at = Number.POSITIVE_INFINITY;
  for (const credential of peer.credentials) at = Math.min(at, credential.expiresAt);
  for (const chain of peer.chains) at = Math.min(at, chain.expiresAt);
  return at;
}

/**
 * The peer as it stands at `nowSeconds`, for a channel that keeps checking it after the
 * handshake: credentials and chains that have expired, or whose ids the deny-set now holds, are
 * dropped (a stale deny-set drops them all: fail closed), and the trust policy must still accept
 * what is left. Returns the peer itself when nothing changed. Throws `ERR_REVOKED` when the
 * peer's identity is revoked, `ERR_CHANNEL_PEER_EXPIRED` when the policy refuses what is left,
 * `ERR_ARGUMENT_INVALID` when `nowSeconds` is not unix seconds. Pure and synchronous.
 */
export function revalidatePeer(
  peer: VerifiedPeer,
  options: {
    readonly nowSeconds: number;
    readonly trustPolicy: TrustPolicy;
    readonly denySet?: DenySet | undefined;
  },
): VerifiedPeer {
  // A time that is not unix seconds would keep every credential (`NaN >= expiresAt` is false).
  const now = checkUnixSeconds(options.nowSeconds);
  const denySet = options.denySet;
  if (denySet?.isRevoked(peer.identifier) === true) {
    throw forbidden('ERR_REVOKED', `identity \`${peer.identifier}\` is revoked`);
  }
  const rejected = [...peer.rejected];
  const keep = (expiresAt: number, ids: readonly string[]): boolean => {
    if (now >= expiresAt) {
      rejected.push(`ERR_CREDENTIAL_EXPIRED: expired at \`${expiresAt}\``);
      return false;
    }
    try {
      denySet?.assertNoneRevoked(ids, now);
      return true;
    } catch (error) {
      rejected.push(reason(error));
      return false;
    }
  };
  const credentials = peer.credentials.filter((c) => keep(c.expiresAt, credentialRevocationIds(c)));
  const chains = peer.chains.filter((c) => keep(c.expiresAt, c.revocationSubjects));
  if (credentials.length === peer.credentials.length && chains.length === peer.chains.length) {
    return peer;
  }
  const next: VerifiedPeer = { ...peer, credentials, chains, rejected };
  if (!options.trustPolicy(next)) {
    throw unauthorized(
      'ERR_CHANNEL_PEER_EXPIRED',
      `the credentials \`${peer.identifier}\` was trusted for have expired or were revoked`,
    );
  }
  return next;
}

function reason(error: unknown): string {
  return error instanceof MandateError ? `${error.code}: ${error.message}` : 'unexpected error';
}
