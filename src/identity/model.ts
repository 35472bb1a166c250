import { invalid } from '../core/internal.js';
import type { SigningKeyType } from '../vault/index.js';

/** `I` + 64 lowercase hex digits: SHA-256 of the first change's data bytes. */
export type Identifier = `I${string}`;

const IDENTIFIER_RE = /^I[0-9a-f]{64}$/;

/**
 * Whether `text` is an identifier: `I` followed by 64 lowercase hex digits.
 */
export function isIdentifier(text: string): text is Identifier {
  return IDENTIFIER_RE.test(text);
}

/**
 * `text` (surrounding white space trimmed) as an {@link Identifier}; throws
 * `ERR_IDENTIFIER_INVALID` unless it is `I` followed by 64 lowercase hex digits.
 *
 * @example
 * ```ts
 * const id = parseIdentifier(process.argv[2] ?? '');
 * ```
 */
export function parseIdentifier(text: string): Identifier {
  const trimmed = text.trim();
  if (!isIdentifier(trimmed)) {
    throw invalid(
      'ERR_IDENTIFIER_INVALID',
      'an identifier is `I` followed by 64 lowercase hex digits',
    );
  }
  return trimmed;
}

/** A primary or credential-verifying public key as Ockam encodes it (`[variant, [bytes]]`). */
export interface PublicSigningKey {
  readonly keyType: SigningKeyType;
  readonly bytes: Uint8Array;
}

/** One decoded change: its original data bytes (what is hashed and signed) and their meaning. */
export interface Change {
  /** The CBOR-encoded VersionedData exactly as received. */
  readonly data: Uint8Array;
  /** SHA-256 of `data`. */
  readonly changeHash: Uint8Array;
  readonly previousChange: Uint8Array | null;
  readonly primaryPublicKey: PublicSigningKey;
  readonly revokeAllPurposeKeys: boolean;
  readonly attestationsValidFrom: number;
  readonly attestationsValidUntil: number;
  readonly signature: Uint8Array;
  readonly previousSignature: Uint8Array | null;
}

/** Ockam's `VersionedData.data_type` values. */
export const DataType = { change: 1, purposeKeyAttestation: 2, credential: 3 } as const;

/**
 * The purposes a purpose key can serve: `credentials` (an Ed25519 or P-256 key that signs
 * credentials and delegation links) and `secure-channel` (the X25519 static key of Noise).
 */
export const Purpose = { credentials: 'credentials', secureChannel: 'secure-channel' } as const;
export type Purpose = (typeof Purpose)[keyof typeof Purpose];

/** Bounds on what a verifier accepts, so one input can only cost so much. */
export const MAX_CHANGE_HISTORY_BYTES = 64 * 1024;
export const MAX_CHANGES = 256;
