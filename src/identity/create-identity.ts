import { invalid } from '../core/internal.js';
import { toHex } from '../encoding/index.js';
import { sha256 } from '../crypto/index.js';
import { SigningKeyType, type SigningKeyHandle, type SigningVault } from '../vault/index.js';
import {
  encodeChangeData,
  encodeChangeHistory,
  encodeVersionedData,
  type EncodedChange,
} from './codec.js';
import { DataType, type Change, type Identifier } from './model.js';
import {
  encodedChanges,
  issueVerifiedIdentity,
  type VerifiedIdentity,
} from './verified-identity.js';
import { verifyChangeHistory, verifyChangeSignature } from './verify-change-history.js';

/** Ockam's default: attestations may be made for ten years after a change. */
export const DEFAULT_IDENTITY_TTL_SECONDS = 10 * 365 * 24 * 3600;

export interface CreateIdentityOptions {
  readonly keyType?: SigningKeyType;
  /** Unix seconds: the change's `attestations_valid_from`. */
  readonly nowSeconds: number;
  readonly ttlSeconds?: number;
}

export interface CreatedIdentity {
  readonly identity: VerifiedIdentity;
  readonly primaryKey: SigningKeyHandle;
}

/**
 * A new identity: a primary key in the vault and a one-change history signed by it. The result
 * is built from the signature just made, without a verification round trip: creation is the hot
 * path of provisioning, and `verifyChangeHistory` accepts everything this produces (tested).
 */
export async function createIdentity(
  vault: SigningVault,
  options: CreateIdentityOptions,
): Promise<CreatedIdentity> {
  const keyType = options.keyType ?? SigningKeyType.ed25519;
  const ttl = options.ttlSeconds ?? DEFAULT_IDENTITY_TTL_SECONDS;
  checkTimes(options.nowSeconds, ttl);
  const primaryKey = await vault.generateSigningKey(keyType);
  const data = encodeVersionedData(
    DataType.change,
    encodeChangeData({
      previousChange: null,
      primaryPublicKey: { keyType, bytes: primaryKey.publicKey },
      revokeAllPurposeKeys: false,
      attestationsValidFrom: options.nowSeconds,
      attestationsValidUntil: options.nowSeconds + ttl,
    }),
  );
  const changeHash = sha256(data);
  const signature = await vault.sign(primaryKey.keyId, changeHash);
  const encoded: EncodedChange = {
    data,
    signature: { keyType, bytes: signature },
    previousSignature: null,
  };
  const change: Change = {
    data,
    changeHash,
    previousChange: null,
    primaryPublicKey: { keyType, bytes: primaryKey.publicKey },
    revokeAllPurposeKeys: false,
    attestationsValidFrom: options.nowSeconds,
    attestationsValidUntil: options.nowSeconds + ttl,
    signature,
    previousSignature: null,
  };
  const identifier: Identifier = `I${toHex(changeHash)}`;
  return {
    identity: issueVerifiedIdentity(identifier, encodeChangeHistory([encoded]), [change]),
    primaryKey,
  };
}

export interface RotateIdentityOptions {
  readonly nowSeconds: number;
  readonly keyType?: SigningKeyType;
  readonly ttlSeconds?: number;
  /** Voids every purpose-key attestation at once: use it when a key may be compromised. */
  readonly revokeAllPurposeKeys?: boolean;
}

export interface RotatedIdentity {
  readonly identity: VerifiedIdentity;
  readonly primaryKey: SigningKeyHandle;
}

/**
 * Appends a change with a new primary key, signed by the new key and the current one. The
 * identifier stays the same. The caller destroys the old key (`vault.deleteSigningKey`) once the
 * new history is stored, so a crash in between never leaves an identity without its key.
 * The new history is verified in full before it is returned: rotation is rare, and a vault that
 * signs wrongly must not get a broken history stored.
 */
export async function rotateIdentity(
  vault: SigningVault,
  current: VerifiedIdentity,
  currentKeyId: string,
  options: RotateIdentityOptions,
): Promise<RotatedIdentity> {
  const latest = current.latestChange;
  const keyType = options.keyType ?? latest.primaryPublicKey.keyType;
  const ttl = options.ttlSeconds ?? DEFAULT_IDENTITY_TTL_SECONDS;
  checkTimes(options.nowSeconds, ttl);
  // attestations_valid_from may never go back; a clock behind the last change is refused.
  if (options.nowSeconds < latest.attestationsValidFrom) {
    throw invalid(
      'ERR_IDENTITY_ORDER',
      'the clock is behind the latest change; refusing to rotate back in time',
    );
  }
  const currentKey = await vault.getSigningKey(currentKeyId);
  if (
    currentKey.keyType !== latest.primaryPublicKey.keyType ||
    toHex(currentKey.publicKey) !== toHex(latest.primaryPublicKey.bytes)
  ) {
    throw invalid(
      'ERR_IDENTITY_KEY_MISMATCH',
      `vault key \`${currentKeyId}\` is not the current primary key of \`${current.identifier}\``,
    );
  }
  const newKey = await vault.generateSigningKey(keyType);
  try {
    const data = encodeVersionedData(
      DataType.change,
      encodeChangeData({
        previousChange: latest.changeHash,
        primaryPublicKey: { keyType, bytes: newKey.publicKey },
        revokeAllPurposeKeys: options.revokeAllPurposeKeys ?? false,
        attestationsValidFrom: options.nowSeconds,
        attestationsValidUntil: options.nowSeconds + ttl,
      }),
    );
    const changeHash = sha256(data);
    const signature = await vault.sign(newKey.keyId, changeHash);
    const previousSignature = await vault.sign(currentKeyId, changeHash);
    const sig = { keyType, bytes: signature };
    const prevSig = { keyType: latest.primaryPublicKey.keyType, bytes: previousSignature };
    if (
      !verifyChangeSignature({ keyType, bytes: newKey.publicKey }, changeHash, sig) ||
      !verifyChangeSignature(latest.primaryPublicKey, changeHash, prevSig)
    ) {
      throw invalid(
        'ERR_IDENTITY_SIGNATURE_INVALID',
        'the vault produced an invalid signature during rotation',
      );
    }
    const existing = encodedChanges(current.changes);
    existing.push({ data, signature: sig, previousSignature: prevSig });
    const history = encodeChangeHistory(existing);
    const identity = verifyChangeHistory(history, { expectedIdentifier: current.identifier });
    return { identity, primaryKey: newKey };
  } catch (error) {
    await vault.deleteSigningKey(newKey.keyId);
    throw error;
  }
}

function checkTimes(nowSeconds: number, ttlSeconds: number): void {
  if (!Number.isSafeInteger(nowSeconds) || nowSeconds < 0)
    throw invalid('ERR_IDENTITY_TIME_INVALID', '`nowSeconds` must be a non-negative integer');
  if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds <= 0)
    throw invalid('ERR_IDENTITY_TIME_INVALID', '`ttlSeconds` must be a positive integer');
}
