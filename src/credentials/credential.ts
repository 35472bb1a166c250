import { checkUnixSeconds, invalid, forbidden, unauthorized } from '../core/internal.js';
import { bytesEqual, toHex } from '../encoding/index.js';
import { sha256 } from '../crypto/index.js';
import type { SigningVault } from '../vault/index.js';
import { decodePurposeKeyAttestation } from '../identity/internal.js';
import type { Identifier, VerifiedIdentity, VerifiedPurposeKey } from '../identity/index.js';
import {
  decodeCredential,
  encodeCredentialAndPurposeKey,
  encodeCredentialData,
  MAX_CREDENTIAL_BYTES,
  type CredentialAttributes,
  type DecodedCredential,
} from './credential-codec.js';
import { revocationIdOf, type RevocationId } from './revocation-id.js';
import {
  credentialSigningKey,
  signWithCredentialKey,
  verifyCredentialKeySignature,
  type CredentialIssuer,
  type VerifiedAttestations,
} from './credential-key.js';

export type { CredentialIssuer } from './credential-key.js';

export {
  decodeCredential,
  MAX_CREDENTIAL_BYTES,
  MAX_ATTRIBUTE_NAME_BYTES,
} from './credential-codec.js';
export type { CredentialAttributes, DecodedCredential } from './credential-codec.js';

/**
 * Credentials (Ockam `data_type 3`): an issuer's credential purpose key signs a subject's
 * attributes for a time window, and the key's attestation travels with the credential, so a
 * verifier needs only the issuer's change history. Byte-compatible with Ockam in both directions;
 * see credential-codec.ts for the layout.
 *
 * Deliberate differences from Ockam: credentials are short-lived by default (1 h, where an Ockam
 * authority issues 30 days) and at most 30 days; `subject_latest_change_hash` is checked against
 * the subject's history when the verifier knows it (a TODO in Ockam); the issuer's attestation
 * may be under the change before a rotation for the identity layer's grace window.
 */

/** Short by default: revocation is a deny list, and a short expiry bounds how long it must hold. */
export const DEFAULT_CREDENTIAL_TTL_SECONDS = 3600;
export const MAX_CREDENTIAL_TTL_SECONDS = 30 * 24 * 3600;
/** Ockam's `PROJECT_MEMBER_SCHEMA`, so an Ockam node reads the attributes as its own. */
const DEFAULT_SCHEMA = 1;
const DEFAULT_MAX_CLOCK_SKEW_SECONDS = 60;

/**
 * Options of {@link issueCredential}: the time, the lifetime (default 3600 s, at most 30 days) and the schema.
 */
export interface IssueCredentialOptions {
  readonly nowSeconds: number;
  /** Default 3600; more than 30 days is refused. Clipped to the attestation's expiry. */
  readonly ttlSeconds?: number;
  /** Default 1 (Ockam's project-member schema). */
  readonly schema?: number;
}

/**
 * Signs a credential for `subject` with the issuer's credential key and returns the
 * CredentialAndPurposeKey bytes. The issuer's attestation is checked first (now, credential
 * purpose, not under a rotation grace window), so an issuer never hands out a credential its own
 * attestation would void; the window is `[max(now, attestation created_at),
 * min(that + ttl, attestation expires_at)]`. The vault's signature is verified under the attested
 * key before anything is returned: a vault holding another key, or signing wrongly, fails here
 * rather than at every verifier.
 *
 * @example
 * ```ts
 * const { keyId, verified } = await identities.purposeKey('authority', Purpose.credentials);
 * const issuer = { identity: authority.identity, credentialKeyId: keyId, credentialKeyAttestation: verified.attestation };
 * const credential = await issueCredential(
 *   vault,
 *   issuer,
 *   agent.identity,
 *   constraintsToAttributes(new Map([parseConstraint('tools=orders.refund')])),
 *   { nowSeconds: Math.floor(Date.now() / 1000), ttlSeconds: 3600 },
 * );
 * ```
 */
export async function issueCredential(
  vault: SigningVault,
  issuer: CredentialIssuer,
  subject: VerifiedIdentity,
  attributes: CredentialAttributes,
  options: IssueCredentialOptions,
): Promise<Uint8Array> {
  const now = checkUnixSeconds(options.nowSeconds);
  const ttl = options.ttlSeconds ?? DEFAULT_CREDENTIAL_TTL_SECONDS;
  if (!Number.isSafeInteger(ttl) || ttl <= 0 || ttl > MAX_CREDENTIAL_TTL_SECONDS) {
    throw invalid(
      'ERR_CREDENTIAL_TTL_INVALID',
      `\`ttlSeconds\` must be an integer from 1 to ${MAX_CREDENTIAL_TTL_SECONDS}`,
    );
  }
  const schema = options.schema ?? DEFAULT_SCHEMA;
  if (!Number.isSafeInteger(schema) || schema < 0)
    throw invalid('ERR_ARGUMENT_INVALID', '`schema` must be a non-negative integer');

  const key = await credentialSigningKey(vault, issuer, now);
  const createdAt = Math.max(now, key.createdAt);
  const expiresAt = Math.min(createdAt + ttl, key.expiresAt);
  if (expiresAt <= createdAt) {
    throw invalid(
      'ERR_CREDENTIAL_WINDOW',
      'the credential key attestation expires before the credential would start; attest it again',
    );
  }
  const data = encodeCredentialData({
    subject: subject.changes[0]!.changeHash,
    subjectLatestChangeHash: subject.latestChangeHash,
    schema,
    attributes,
    createdAt,
    expiresAt,
  });
  const signature = await signWithCredentialKey(vault, issuer, key, data);
  const bytes = encodeCredentialAndPurposeKey(data, signature, issuer.credentialKeyAttestation);
  if (bytes.length > MAX_CREDENTIAL_BYTES) {
    throw invalid(
      'ERR_CREDENTIAL_ATTRIBUTES_INVALID',
      `the credential would be ${bytes.length} bytes, at most ${MAX_CREDENTIAL_BYTES} allowed`,
    );
  }
  return bytes;
}

/**
 * Options of {@link verifyCredential}: the time, the trusted issuers, and optionally the expected subject and deny-set.
 */
export interface VerifyCredentialOptions {
  readonly nowSeconds: number;
  /** Trusted issuers by identifier, with their verified histories. An issuer not in here → ERR_CREDENTIAL_UNTRUSTED_ISSUER. */
  readonly authorities: ReadonlyMap<Identifier, VerifiedIdentity>;
  /** When given, the credential's subject must be this identity (ERR_CREDENTIAL_SUBJECT_MISMATCH) and subject_latest_change_hash must be a change of its history (ERR_CREDENTIAL_SUBJECT_CHANGE_UNKNOWN). */
  readonly subject?: VerifiedIdentity;
  /** How far a credential's created_at may be ahead of `nowSeconds` (default 60, as Ockam). */
  readonly maxClockSkewSeconds?: number;
  /** Passed to verifyPurposeKeyAttestation (default 300). */
  readonly rotationGraceSeconds?: number;
}

/**
 * The revocation id of a credential decoded but not verified (what `mandate credential show`
 * prints): the issuer is read from the attestation, as verifyCredential does before trusting it.
 */
export function credentialRevocationId(credential: DecodedCredential): RevocationId {
  const issuer: Identifier = `I${toHex(decodePurposeKeyAttestation(credential.attestation).subject)}`;
  return revocationIdOf(issuer, sha256(credential.data));
}

const issued = Symbol('VerifiedCredential');

/** A credential whose issuer, attestation, signature, subject and time window were checked. */
export class VerifiedCredential {
  /** @internal use verifyCredential */
  constructor(
    token: typeof issued,
    readonly issuer: Identifier,
    readonly subject: Identifier,
    readonly attributes: CredentialAttributes,
    readonly schema: number,
    readonly createdAt: number,
    readonly expiresAt: number,
    readonly revocationId: RevocationId,
    /** SHA-256 of the credential's signed data bytes: what a delegation link names as its parent. */
    readonly hash: Uint8Array,
    readonly issuerKey: VerifiedPurposeKey,
    /** The CredentialAndPurposeKey bytes as received. */
    readonly bytes: Uint8Array,
  ) {
    if (token !== issued)
      throw new TypeError('VerifiedCredential is created by verifyCredential only');
  }
}

/**
 * bytes → VerifiedCredential, checking in this order (the first failure is reported):
 *
 * 1. strict decoding, at most 16 KiB (`ERR_CREDENTIAL_MALFORMED`);
 * 2. the issuer is the attestation's subject and must be in `authorities`
 *    (`ERR_CREDENTIAL_UNTRUSTED_ISSUER`); the attestation is verified against that verified
 *    history as a credential key (`ERR_PURPOSE_KEY_*`, unchanged — including the rotation rule);
 * 3. the signature over SHA-256(data bytes as received) under the attested key, with the
 *    identity layer's Ed25519 / P-256 convention (`ERR_CREDENTIAL_SIGNATURE_INVALID`);
 * 4. with `subject`: the subject is that identity (`ERR_CREDENTIAL_SUBJECT_MISMATCH`) and
 *    `subject_latest_change_hash` names a change of its history
 *    (`ERR_CREDENTIAL_SUBJECT_CHANGE_UNKNOWN`);
 * 5. time: `created_at <= now + skew` (`ERR_CREDENTIAL_NOT_YET_VALID`), `now < expires_at`
 *    (`ERR_CREDENTIAL_EXPIRED`), `created_at <= expires_at` and the window inside the
 *    attestation's window (`ERR_CREDENTIAL_WINDOW`).
 *
 * Signatures come before anything the issuer asserts, so an unauthenticated credential never
 * gets a more specific answer than "malformed", "untrusted" or "signature invalid". The issuer's
 * history is not re-verified: a VerifiedIdentity already was. Pure and synchronous.
 */
export function verifyCredential(
  bytes: Uint8Array,
  options: VerifyCredentialOptions,
): VerifiedCredential {
  return verifyCredentialWith(bytes, options, undefined);
}

/**
 * {@link verifyCredential}, the issuer's attestation through `attestations` (a ChainVerifier's):
 * one verified before for the same authority is not verified again while it holds.
 */
export function verifyCredentialWith(
  bytes: Uint8Array,
  options: VerifyCredentialOptions,
  attestations: VerifiedAttestations | undefined,
): VerifiedCredential {
  const now = checkUnixSeconds(options.nowSeconds);
  const skew = options.maxClockSkewSeconds ?? DEFAULT_MAX_CLOCK_SKEW_SECONDS;
  if (!Number.isSafeInteger(skew) || skew < 0)
    throw invalid('ERR_ARGUMENT_INVALID', '`maxClockSkewSeconds` must be a non-negative integer');

  // 1. Strict decoding.
  const credential = decodeCredential(bytes);

  // 2. The issuer and its attestation; 3. the signature, over the data bytes as received.
  const { issuer, issuerKey, hash } = verifyCredentialKeySignature(
    credential.data,
    credential.signature,
    credential.attestation,
    options,
    { untrusted: 'ERR_CREDENTIAL_UNTRUSTED_ISSUER', signature: 'ERR_CREDENTIAL_SIGNATURE_INVALID' },
    'credential',
    attestations,
  );

  // 4. The subject, when the verifier knows who it should be.
  const expected = options.subject;
  if (expected !== undefined) {
    if (credential.subject !== expected.identifier) {
      throw forbidden(
        'ERR_CREDENTIAL_SUBJECT_MISMATCH',
        `credential is for \`${credential.subject}\`, not \`${expected.identifier}\``,
      );
    }
    const changeHash = credential.subjectLatestChangeHash;
    if (!expected.changes.some((c) => bytesEqual(c.changeHash, changeHash))) {
      throw invalid(
        'ERR_CREDENTIAL_SUBJECT_CHANGE_UNKNOWN',
        `credential names a change of \`${expected.identifier}\` that is not in its known history`,
      );
    }
  }

  // 5. Time.
  const { createdAt, expiresAt } = credential;
  if (createdAt > now + skew)
    throw invalid('ERR_CREDENTIAL_NOT_YET_VALID', 'credential is created in the future');
  if (now >= expiresAt) throw unauthorized('ERR_CREDENTIAL_EXPIRED', 'credential has expired');
  if (createdAt > expiresAt) {
    throw invalid('ERR_CREDENTIAL_WINDOW', 'credential expires before it is created');
  }
  if (createdAt < issuerKey.createdAt || expiresAt > issuerKey.expiresAt) {
    throw invalid(
      'ERR_CREDENTIAL_WINDOW',
      'credential validity lies outside the window of its issuer key attestation',
    );
  }

  return new VerifiedCredential(
    issued,
    issuer,
    credential.subject,
    credential.attributes,
    credential.schema,
    createdAt,
    expiresAt,
    revocationIdOf(issuer, hash),
    hash,
    issuerKey,
    bytes,
  );
}
