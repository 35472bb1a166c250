import { invalid } from '../core/internal.js';
import { bytesEqual, toHex } from '../encoding/index.js';
import { sha256, verifyEd25519, verifyP256 } from '../crypto/index.js';
import { SigningKeyType } from '../vault/index.js';
import {
  decodeChangeData,
  decodeChangeHistoryEnvelope,
  decodeVersionedDataOf,
  type DecodedSignature,
} from './codec.js';
import {
  DataType,
  MAX_CHANGE_HISTORY_BYTES,
  MAX_CHANGES,
  type Change,
  type Identifier,
  type PublicSigningKey,
} from './model.js';
import { issueVerifiedIdentity, type VerifiedIdentity } from './verified-identity.js';

/**
 * Options of {@link verifyChangeHistory}.
 */
export interface VerifyChangeHistoryOptions {
  /** Fails with `ERR_IDENTITY_IDENTIFIER_MISMATCH` unless the history has this identifier. */
  readonly expectedIdentifier?: Identifier;
}

/**
 * The identifier a change history claims (`I` + hex SHA-256 of its first change's data), read
 * without verifying anything: for looking up a stored copy before verification, never as proof.
 */
export function historyIdentifier(bytes: Uint8Array): Identifier {
  const encoded = decodeChangeHistoryEnvelope(bytes, MAX_CHANGE_HISTORY_BYTES, MAX_CHANGES);
  return `I${toHex(sha256(encoded[0]!.data))}`;
}

/**
 * bytes → VerifiedIdentity, following Ockam's `identity_verification.rs`: for each change, the
 * VersionedData is version 1 / data type 1; versions and `attestations_valid_from` never go back;
 * `previous_change` links to the hash of the change before (null on the first); the change is
 * signed by its own key and, after the first, by the previous change's key. Everything signs
 * SHA-256(data) of the bytes as received — nothing is re-encoded.
 *
 * Stricter than Ockam: `attestations_valid_from <= attestations_valid_until`, bounded size and
 * change count, a signature's type must match its key's.
 *
 * @example
 * ```ts
 * const identity = verifyChangeHistory(bytes, { expectedIdentifier: parseIdentifier(claimed) });
 * const { identifier, changes } = identity; // verified: safe to store and compare
 * ```
 */
export function verifyChangeHistory(
  bytes: Uint8Array,
  options: VerifyChangeHistoryOptions = {},
): VerifiedIdentity {
  const encoded = decodeChangeHistoryEnvelope(bytes, MAX_CHANGE_HISTORY_BYTES, MAX_CHANGES);
  const changes: Change[] = [];
  let previous: Change | undefined;
  let previousVersion = 0;
  for (let i = 0; i < encoded.length; i++) {
    const e = encoded[i]!;
    const what = `change ${i}`;
    const versioned = decodeVersionedDataOf(
      e.data,
      DataType.change,
      {
        malformed: 'ERR_IDENTITY_MALFORMED',
        version: 'ERR_IDENTITY_VERSION_UNSUPPORTED',
        dataType: 'ERR_IDENTITY_DATA_TYPE',
      },
      `${what} data`,
    );
    if (versioned.version < previousVersion)
      throw invalid('ERR_IDENTITY_ORDER', `${what} lowers the version`);
    previousVersion = versioned.version;
    const fields = decodeChangeData(versioned.data, `${what} data`);
    if (fields.attestationsValidFrom > fields.attestationsValidUntil) {
      throw invalid(
        'ERR_IDENTITY_ORDER',
        `${what} has attestations_valid_from after attestations_valid_until`,
      );
    }
    const changeHash = sha256(e.data);
    if (previous === undefined) {
      if (fields.previousChange !== null)
        throw invalid(
          'ERR_IDENTITY_CHAIN_BROKEN',
          `${what} is the first change but names a previous change`,
        );
      if (e.previousSignature !== null)
        throw invalid(
          'ERR_IDENTITY_MALFORMED',
          `${what} is the first change but carries a previous signature`,
        );
    } else {
      if (
        fields.previousChange === null ||
        !bytesEqual(fields.previousChange, previous.changeHash)
      ) {
        throw invalid(
          'ERR_IDENTITY_CHAIN_BROKEN',
          `${what} does not link to the hash of change ${i - 1}`,
        );
      }
      if (fields.attestationsValidFrom < previous.attestationsValidFrom) {
        throw invalid('ERR_IDENTITY_ORDER', `${what} moves attestations_valid_from back in time`);
      }
      if (e.previousSignature === null)
        throw invalid(
          'ERR_IDENTITY_SIGNATURE_MISSING',
          `${what} lacks the previous key's signature`,
        );
      if (!verifyChangeSignature(previous.primaryPublicKey, changeHash, e.previousSignature)) {
        throw invalid(
          'ERR_IDENTITY_SIGNATURE_INVALID',
          `${what} has an invalid signature by the previous key`,
        );
      }
    }
    if (!verifyChangeSignature(fields.primaryPublicKey, changeHash, e.signature)) {
      throw invalid(
        'ERR_IDENTITY_SIGNATURE_INVALID',
        `${what} has an invalid signature by its own key`,
      );
    }
    const change: Change = {
      data: e.data,
      changeHash,
      previousChange: fields.previousChange,
      primaryPublicKey: fields.primaryPublicKey,
      revokeAllPurposeKeys: fields.revokeAllPurposeKeys,
      attestationsValidFrom: fields.attestationsValidFrom,
      attestationsValidUntil: fields.attestationsValidUntil,
      signature: e.signature.bytes,
      previousSignature: e.previousSignature?.bytes ?? null,
    };
    changes.push(change);
    previous = change;
  }
  const identifier: Identifier = `I${toHex(changes[0]!.changeHash)}`;
  if (options.expectedIdentifier !== undefined && options.expectedIdentifier !== identifier) {
    throw invalid(
      'ERR_IDENTITY_IDENTIFIER_MISMATCH',
      `change history has identifier \`${identifier}\`, expected \`${options.expectedIdentifier}\``,
    );
  }
  return issueVerifiedIdentity(identifier, bytes, changes);
}

/**
 * Ed25519 signs the 32-byte hash; P-256 signs it with ECDSA-SHA-256, i.e. over
 * SHA-256(SHA-256(data)), as Ockam's p256 signer does.
 */
export function verifyChangeSignature(
  key: PublicSigningKey,
  hash: Uint8Array,
  signature: DecodedSignature,
): boolean {
  if (signature.keyType !== key.keyType) return false;
  return key.keyType === SigningKeyType.ed25519
    ? verifyEd25519(key.bytes, hash, signature.bytes)
    : verifyP256(key.bytes, hash, signature.bytes);
}
