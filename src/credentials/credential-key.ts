import { invalid, isUnixSeconds, unauthorized } from '../core/internal.js';
import type { ErrorCode } from '../core/index.js';
import { bytesEqual, toHex } from '../encoding/index.js';
import { sha256 } from '../crypto/index.js';
import type { SigningVault } from '../vault/index.js';
import {
  decodePurposeKeyAttestation,
  MAX_CLOCK_SKEW_SECONDS,
  type DecodedSignature,
  verifyChangeSignature,
} from '../identity/internal.js';
import {
  Purpose,
  verifyPurposeKeyAttestation,
  type Identifier,
  type VerifiedIdentity,
  type VerifiedPurposeKey,
  type VerifyPurposeKeyOptions,
} from '../identity/index.js';

/**
 * Signing and verifying with an authority's credential purpose key: what a credential and every
 * other artefact an authority signs the same way (a policy bundle) share. The signed bytes are a
 * VersionedData envelope; the signature is over SHA-256 of those bytes as received, and the
 * key's attestation travels with them, so a verifier needs only the issuer's change history.
 */

/**
 * What the credential-key signing functions need of a vault: the key's public half (checked
 * against the attestation) and a signature by it. Any `SigningVault` is one; the layers that sign
 * through these functions but may not depend on the vault layer (gates) name this type.
 */
export type CredentialKeyVault = Pick<SigningVault, 'getSigningKey' | 'sign'>;

/** What an identity needs to issue: itself, its credential key in a vault, and its attestation. */
export interface CredentialIssuer {
  readonly identity: VerifiedIdentity;
  readonly credentialKeyId: string;
  readonly credentialKeyAttestation: Uint8Array;
  /**
   * The attestation already verified (by an issuer that issues many credentials): used instead
   * of verifying it again when it is this very attestation and `now` lies in its window.
   */
  readonly verifiedKey?: VerifiedPurposeKey;
}

/**
 * The issuer's credential key as it may sign at `nowSeconds`: its attestation verified (or the
 * one already verified, when it is this very attestation and `now` lies in its window), of the
 * credential purpose, not under a rotation grace window, and held by the vault under
 * `credentialKeyId` (a vault holding another key fails here rather than at every verifier).
 */
export async function credentialSigningKey(
  vault: CredentialKeyVault,
  issuer: CredentialIssuer,
  nowSeconds: number,
): Promise<VerifiedPurposeKey> {
  const reusable = issuer.verifiedKey;
  const key =
    reusable !== undefined &&
    reusable.attestation === issuer.credentialKeyAttestation &&
    reusable.subject === issuer.identity.identifier &&
    reusable.createdAt <= nowSeconds + 60 &&
    nowSeconds < reusable.expiresAt
      ? reusable
      : verifyPurposeKeyAttestation(issuer.identity, issuer.credentialKeyAttestation, {
          nowSeconds,
          expectedPurpose: Purpose.credentials,
        });
  if (key.key.purpose !== Purpose.credentials)
    throw invalid('ERR_PURPOSE_KEY_WRONG_PURPOSE', 'the issuer key is not a credential key');
  if (key.inRotationGrace) {
    throw unauthorized(
      'ERR_PURPOSE_KEY_STALE',
      `the credential key of \`${issuer.identity.identifier}\` was attested before its latest rotation; attest it again`,
    );
  }
  // Comparing public keys costs a lookup; verifying each signature would cost as much as
  // signing (bulk enrollment issues thousands).
  const vaultKey = await vault.getSigningKey(issuer.credentialKeyId);
  if (
    vaultKey.keyType !== key.key.signingKey.keyType ||
    !bytesEqual(vaultKey.publicKey, key.key.signingKey.bytes)
  ) {
    throw unauthorized(
      'ERR_CREDENTIAL_SIGNATURE_INVALID',
      `vault key \`${issuer.credentialKeyId}\` is not the attested credential key`,
    );
  }
  return key;
}

/** Signs SHA-256(`data`) with a key {@link credentialSigningKey} returned. */
export async function signWithCredentialKey(
  vault: CredentialKeyVault,
  issuer: CredentialIssuer,
  key: VerifiedPurposeKey,
  data: Uint8Array,
): Promise<DecodedSignature> {
  if (key.key.purpose !== Purpose.credentials)
    throw invalid('ERR_PURPOSE_KEY_WRONG_PURPOSE', 'the issuer key is not a credential key');
  return {
    keyType: key.key.signingKey.keyType,
    bytes: await vault.sign(issuer.credentialKeyId, sha256(data)),
  };
}

/** Options of {@link verifyCredentialKeySignature}. */
export interface CredentialKeySignatureOptions {
  readonly nowSeconds: number;
  /** Trusted issuers by identifier, with their verified histories. */
  readonly authorities: ReadonlyMap<Identifier, VerifiedIdentity>;
  /** Passed to verifyPurposeKeyAttestation (default 300). */
  readonly rotationGraceSeconds?: number;
}

/** What {@link verifyCredentialKeySignature} checked. */
export interface CredentialKeySignature {
  readonly issuer: Identifier;
  readonly issuerKey: VerifiedPurposeKey;
  /** SHA-256 of the signed data bytes as received. */
  readonly hash: Uint8Array;
}

/**
 * Checks, in this order, that the attestation's subject is a trusted authority (`untrusted`),
 * that the attestation holds for it as a credential key (`ERR_PURPOSE_KEY_*`, including the
 * rotation rule), and that `signature` verifies over SHA-256(`data` as received) under that key
 * (`signature`). `what` names the artefact in messages (`credential`, `bundle`). With
 * `attestations`, an attestation verified before for the same identity is not verified again
 * while it holds ({@link VerifiedAttestations}). Pure.
 */
export function verifyCredentialKeySignature(
  data: Uint8Array,
  signature: DecodedSignature,
  attestation: Uint8Array,
  options: CredentialKeySignatureOptions,
  codes: { readonly untrusted: ErrorCode; readonly signature: ErrorCode },
  what: string,
  attestations?: VerifiedAttestations,
): CredentialKeySignature {
  const issuer: Identifier = `I${toHex(decodePurposeKeyAttestation(attestation).subject)}`;
  const issuerIdentity = options.authorities.get(issuer);
  if (issuerIdentity === undefined) {
    throw unauthorized(codes.untrusted, `${what} issuer \`${issuer}\` is not a trusted authority`);
  }
  let issuerKey = attestations?.get(issuerIdentity, attestation, options.nowSeconds);
  if (issuerKey === undefined) {
    const attestationOptions: VerifyPurposeKeyOptions =
      options.rotationGraceSeconds === undefined
        ? { nowSeconds: options.nowSeconds, expectedPurpose: Purpose.credentials }
        : {
            nowSeconds: options.nowSeconds,
            expectedPurpose: Purpose.credentials,
            rotationGraceSeconds: options.rotationGraceSeconds,
          };
    issuerKey = verifyPurposeKeyAttestation(issuerIdentity, attestation, attestationOptions);
    attestations?.add(issuerIdentity, attestation, issuerKey);
  }
  if (issuerKey.key.purpose !== Purpose.credentials)
    throw invalid('ERR_PURPOSE_KEY_WRONG_PURPOSE', 'the issuer key is not a credential key');
  const hash = sha256(data);
  if (!verifyChangeSignature(issuerKey.key.signingKey, hash, signature)) {
    throw unauthorized(
      codes.signature,
      `${what} signature does not verify under the credential key of \`${issuer}\``,
    );
  }
  return { issuer, issuerKey, hash };
}

/**
 * Whether a credential key that verifyPurposeKeyAttestation accepted holds at `nowSeconds` as
 * it did then: a credential key under its identity's latest change (not a rotation grace
 * window, which depends on the time and the grace allowed), with `nowSeconds` in the
 * attestation's window as verifyPurposeKeyAttestation bounds it (created at most
 * MAX_CLOCK_SKEW_SECONDS ahead, not expired). Everything else it checks is a function of the
 * identity and the attestation's bytes. When false, verify the attestation again: that reports
 * what fails, as it would have.
 */
export function credentialKeyHoldsAt(key: VerifiedPurposeKey, nowSeconds: number): boolean {
  return (
    key.key.purpose === Purpose.credentials &&
    key.createdAt <= nowSeconds + MAX_CLOCK_SKEW_SECONDS &&
    nowSeconds <= credentialKeyHeldUntil(key)
  );
}

/**
 * The last time at which an accepted key holds as it did, from then on (the later half of
 * {@link credentialKeyHoldsAt}): before its attestation expires — never, for a key accepted under
 * a rotation grace window, whose end the result does not say.
 */
export function credentialKeyHeldUntil(key: VerifiedPurposeKey): number {
  return key.inRotationGrace ? -Infinity : key.expiresAt - 1;
}

/** Attestations kept per identity (the oldest goes first). */
const ATTESTATIONS_PER_IDENTITY = 8;

/**
 * Credential key attestations already verified, for a verifier that checks many credentials of
 * the same issuers (a ChainVerifier: each chain's root credential carries its authority's
 * attestation). Kept per identity object (a verified history; the trusted authorities' own
 * copies) and by the attestation's exact bytes, only once verified: a verification that failed
 * is never kept, and a kept one is reused only while it holds ({@link credentialKeyHoldsAt}).
 */
export class VerifiedAttestations {
  readonly #byIdentity = new WeakMap<
    VerifiedIdentity,
    { readonly bytes: Uint8Array; readonly key: VerifiedPurposeKey }[]
  >();

  /** The key verified before from these very bytes for this identity, if it holds at `nowSeconds`. */
  get(
    identity: VerifiedIdentity,
    attestation: Uint8Array,
    nowSeconds: number,
  ): VerifiedPurposeKey | undefined {
    const kept = this.#byIdentity.get(identity);
    // (A time that is not Unix seconds is refused by verifyPurposeKeyAttestation.)
    if (kept === undefined || !isUnixSeconds(nowSeconds)) return undefined;
    for (const { bytes, key } of kept)
      if (bytesEqual(bytes, attestation))
        return credentialKeyHoldsAt(key, nowSeconds) ? key : undefined;
    return undefined;
  }

  /** Keeps `key`, verified from `attestation` for `identity` (a copy of the bytes). */
  add(identity: VerifiedIdentity, attestation: Uint8Array, key: VerifiedPurposeKey): void {
    let kept = this.#byIdentity.get(identity);
    if (kept === undefined) this.#byIdentity.set(identity, (kept = []));
    if (kept.length >= ATTESTATIONS_PER_IDENTITY) kept.shift();
    kept.push({ bytes: attestation.slice(), key });
  }
}
