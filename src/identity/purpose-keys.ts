import { checkUnixSeconds, invalid, unauthorized } from '../core/internal.js';
import {
  bytesEqual,
  decodeCbor,
  encodeCbor,
  expectArray,
  expectBytes,
  expectUint,
  expectVariant,
  toHex,
  type CborValue,
} from '../encoding/index.js';
import { sha256, X25519_KEY_BYTES } from '../crypto/index.js';
import type { SigningVault } from '../vault/index.js';
import {
  decodePublicSigningKey,
  decodeSignature,
  type DecodedSignature,
  decodeVersionedDataOf,
  encodePublicSigningKey,
  encodeSignature,
  encodeVersionedData,
} from './codec.js';
import { DataType, Purpose, type Identifier, type PublicSigningKey } from './model.js';
import type { VerifiedIdentity } from './verified-identity.js';
import { verifyChangeSignature } from './verify-change-history.js';

/**
 * Purpose keys (Ockam `data_type 2`): a credential-signing key and a secure-channel X25519 key,
 * each attested by the identity's primary key, so the primary key can stay in a vault or HSM and
 * sign only rotations and attestations.
 *
 * Rotation rule (docs/spec/identity.md §purpose keys): Ockam accepts only attestations made
 * under the latest change, so every rotation instantly voids every purpose key and the
 * credentials signed with them. Mandate keeps an attestation made under the change just before a
 * rotation valid for a short grace window (default 300 s after the rotating change's
 * `attestations_valid_from`), long enough for the holder to re-attest and peers to refetch — and
 * a rotation with `revoke_all_purpose_keys = true` (the compromise case) voids them at once,
 * which finally gives Ockam's unused flag its meaning.
 */

export const DEFAULT_PURPOSE_KEY_TTL_SECONDS = 365 * 24 * 3600;
export const DEFAULT_ROTATION_GRACE_SECONDS = 300;
/** Ockam's allowance for a peer's clock running ahead. */
export const MAX_CLOCK_SKEW_SECONDS = 60;
const MAX_ATTESTATION_BYTES = 4096;

const MALFORMED = 'ERR_PURPOSE_KEY_MALFORMED';

/**
 * The public key a purpose-key attestation binds: an X25519 key for secure channels, a signing key for credentials.
 */
export type PurposePublicKey =
  | { readonly purpose: typeof Purpose.secureChannel; readonly x25519: Uint8Array }
  | { readonly purpose: typeof Purpose.credentials; readonly signingKey: PublicSigningKey };

const issued = Symbol('VerifiedPurposeKey');

/** A purpose key whose attestation was checked against a verified identity at a given time. */
export class VerifiedPurposeKey {
  /** @internal use verifyPurposeKeyAttestation */
  constructor(
    token: typeof issued,
    readonly subject: Identifier,
    readonly key: PurposePublicKey,
    readonly createdAt: number,
    readonly expiresAt: number,
    /** The attestation bytes exactly as received: what travels with credentials and handshakes. */
    readonly attestation: Uint8Array,
    /** True when accepted under the rotation grace window rather than the latest change. */
    readonly inRotationGrace: boolean,
  ) {
    if (token !== issued)
      throw new TypeError('VerifiedPurposeKey is created by verifyPurposeKeyAttestation only');
  }
}

function encodePurposePublicKey(key: PurposePublicKey): CborValue {
  return key.purpose === Purpose.secureChannel
    ? [0, [key.x25519]]
    : [1, [encodePublicSigningKey(key.signingKey)]];
}

function decodePurposePublicKey(v: CborValue | undefined): PurposePublicKey {
  const { variant, fields } = expectVariant(v, MALFORMED, 'purpose public key');
  if (fields.length !== 1) throw invalid(MALFORMED, 'purpose public key must hold exactly one key');
  if (variant === 0)
    return {
      purpose: Purpose.secureChannel,
      x25519: expectBytes(fields[0], MALFORMED, 'secure-channel key', X25519_KEY_BYTES),
    };
  if (variant === 1)
    return {
      purpose: Purpose.credentials,
      signingKey: decodePublicSigningKey(fields[0], MALFORMED, 'credential key'),
    };
  throw invalid(MALFORMED, `unknown purpose key variant ${variant}`);
}

export interface AttestPurposeKeyOptions {
  readonly nowSeconds: number;
  readonly ttlSeconds?: number;
}

/** Signs an attestation of `key` with the identity's current primary key (held in `vault`). */
export async function attestPurposeKey(
  vault: SigningVault,
  identity: VerifiedIdentity,
  primaryKeyId: string,
  key: PurposePublicKey,
  options: AttestPurposeKeyOptions,
): Promise<Uint8Array> {
  const now = checkUnixSeconds(options.nowSeconds);
  const latest = identity.latestChange;
  const createdAt = Math.max(now, latest.attestationsValidFrom);
  const expiresAt = Math.min(
    createdAt + (options.ttlSeconds ?? DEFAULT_PURPOSE_KEY_TTL_SECONDS),
    latest.attestationsValidUntil,
  );
  if (expiresAt <= createdAt)
    throw invalid(
      'ERR_PURPOSE_KEY_EXPIRED',
      `identity \`${identity.identifier}\` may no longer attest keys; rotate it first`,
    );
  // The subject is the identifier's bytes: the hash of the first change.
  const subject = identity.changes[0]!.changeHash;
  const data = encodeVersionedData(
    DataType.purposeKeyAttestation,
    encodeCbor([subject, latest.changeHash, encodePurposePublicKey(key), createdAt, expiresAt]),
  );
  const signature = await vault.sign(primaryKeyId, sha256(data));
  return encodeCbor([data, encodeSignature(latest.primaryPublicKey.keyType, signature)]);
}

/**
 * Options of {@link verifyPurposeKeyAttestation}: the time to check against, the purpose the key
 * must have (else `ERR_PURPOSE_KEY_WRONG_PURPOSE`) and the grace after a rotation.
 */
export interface VerifyPurposeKeyOptions {
  readonly nowSeconds: number;
  readonly expectedPurpose?: Purpose;
  /** Seconds an attestation under the previous change stays valid after a rotation (default 300). */
  readonly rotationGraceSeconds?: number;
}

export interface DecodedPurposeKeyAttestation {
  readonly subject: Uint8Array;
  readonly changeHash: Uint8Array;
  readonly key: PurposePublicKey;
  readonly createdAt: number;
  readonly expiresAt: number;
  /** The signed VersionedData bytes as received. */
  readonly dataBytes: Uint8Array;
  readonly signature: DecodedSignature;
}

/** Strict decoding only: nothing here is trusted until verifyPurposeKeyAttestation accepts it. */
export function decodePurposeKeyAttestation(attestation: Uint8Array): DecodedPurposeKeyAttestation {
  const outer = expectArray(
    decodeCbor(attestation, {
      errorCode: MALFORMED,
      what: 'purpose key attestation',
      maxBytes: MAX_ATTESTATION_BYTES,
      maxDepth: 6,
    }),
    MALFORMED,
    'purpose key attestation',
    2,
    2,
  );
  const dataBytes = expectBytes(outer[0], MALFORMED, 'attestation data');
  const signature = decodeSignature(outer[1], MALFORMED, 'attestation signature');
  const versioned = decodeVersionedDataOf(
    dataBytes,
    DataType.purposeKeyAttestation,
    { malformed: MALFORMED },
    'attestation data',
  );
  const fields = expectArray(
    decodeCbor(versioned.data, { errorCode: MALFORMED, what: 'attestation data', maxDepth: 6 }),
    MALFORMED,
    'attestation data',
    5,
    5,
  );
  return {
    subject: expectBytes(fields[0], MALFORMED, 'attestation subject', 32),
    changeHash: expectBytes(fields[1], MALFORMED, 'attestation subject_latest_change_hash', 32),
    key: decodePurposePublicKey(fields[2]),
    createdAt: expectUint(fields[3], MALFORMED, 'attestation created_at'),
    expiresAt: expectUint(fields[4], MALFORMED, 'attestation expires_at'),
    dataBytes,
    signature,
  };
}

/** Checks an attestation against a verified identity, following the rotation rule above. */
export function verifyPurposeKeyAttestation(
  identity: VerifiedIdentity,
  attestation: Uint8Array,
  options: VerifyPurposeKeyOptions,
): VerifiedPurposeKey {
  // First: a time that is not unix seconds would pass every comparison below.
  const now = checkUnixSeconds(options.nowSeconds);
  const { subject, changeHash, key, createdAt, expiresAt, dataBytes, signature } =
    decodePurposeKeyAttestation(attestation);
  if (`I${toHex(subject)}` !== identity.identifier) {
    throw invalid(
      'ERR_PURPOSE_KEY_SUBJECT_MISMATCH',
      `attestation is for \`I${toHex(subject)}\`, not \`${identity.identifier}\``,
    );
  }
  if (options.expectedPurpose !== undefined && key.purpose !== options.expectedPurpose) {
    throw invalid(
      'ERR_PURPOSE_KEY_WRONG_PURPOSE',
      `attestation is for a ${key.purpose} key, expected ${options.expectedPurpose}`,
    );
  }
  const index = identity.changes.findIndex((c) => bytesEqual(c.changeHash, changeHash));
  if (index < 0) {
    throw invalid(
      'ERR_PURPOSE_KEY_UNKNOWN_CHANGE',
      `attestation names a change of \`${identity.identifier}\` that is not in its known history`,
    );
  }
  const change = identity.changes[index]!;
  const latestIndex = identity.changes.length - 1;
  if (index < latestIndex) {
    const laterChanges = identity.changes.slice(index + 1);
    if (laterChanges.some((c) => c.revokeAllPurposeKeys)) {
      throw unauthorized('ERR_PURPOSE_KEY_REVOKED', 'a later rotation revoked all purpose keys');
    }
    const graceEnds =
      identity.changes[index + 1]!.attestationsValidFrom +
      (options.rotationGraceSeconds ?? DEFAULT_ROTATION_GRACE_SECONDS);
    if (now >= graceEnds || index < latestIndex - 1) {
      throw unauthorized(
        'ERR_PURPOSE_KEY_STALE',
        'attestation was made before a rotation and its grace window has passed',
      );
    }
  }
  if (
    createdAt > expiresAt ||
    createdAt < change.attestationsValidFrom ||
    expiresAt > change.attestationsValidUntil
  ) {
    throw invalid(
      'ERR_PURPOSE_KEY_WINDOW',
      'attestation validity lies outside the window its change allows',
    );
  }
  if (createdAt > now + MAX_CLOCK_SKEW_SECONDS)
    throw invalid('ERR_PURPOSE_KEY_NOT_YET_VALID', 'attestation is created in the future');
  if (expiresAt < now) throw unauthorized('ERR_PURPOSE_KEY_EXPIRED', 'attestation has expired');
  if (!verifyChangeSignature(change.primaryPublicKey, sha256(dataBytes), signature)) {
    throw invalid(
      'ERR_PURPOSE_KEY_SIGNATURE_INVALID',
      'attestation signature does not verify under the primary key',
    );
  }
  return new VerifiedPurposeKey(
    issued,
    identity.identifier,
    key,
    createdAt,
    expiresAt,
    attestation,
    index < latestIndex,
  );
}

/** Encodes a purpose public key for comparison and display. */
export function describePurposeKey(key: PurposePublicKey): {
  purpose: Purpose;
  keyType: string;
  publicKey: string;
} {
  return key.purpose === Purpose.secureChannel
    ? { purpose: key.purpose, keyType: 'x25519', publicKey: toHex(key.x25519) }
    : {
        purpose: key.purpose,
        keyType: key.signingKey.keyType,
        publicKey: toHex(key.signingKey.bytes),
      };
}
