/**
 * Revocation records (`mandate/revocation/v1`): the deny-set's history inside the audit log, so
 * an offline verifier knows which revocations were known when each record was made. An entry of
 * the authority's deny-set is logged as a record signed by the authority's credential key (on
 * the authority's home), or, by an enforcement point that learned it over the bus, as a record
 * signed by that point's credential key naming the authority and when the point applied it; the
 * checkpoint covers it like any record, so it can be neither dropped nor back-dated unnoticed.
 * A verifier checks a chain at a record's time against the revocation records earlier in the log
 * whose `revokedAt` is not after that time.
 */
import type { SigningVault } from '../vault/index.js';
import { invalid, unauthorized } from '../core/internal.js';
import { canonicalizeJson } from '../encoding/index.js';
import type { CredentialIssuer, DenyEntry } from '../credentials/index.js';
import {
  credentialSigningKey,
  parseDenyEntry,
  signWithCredentialKey,
  verifyCredentialKeySignature,
} from '../credentials/internal.js';
import { isIdentifier, type Identifier, type VerifiedIdentity } from '../identity/index.js';
import { fromBase64Url, recordSigningBytes, toBase64Url } from './record-codec.js';
import { MAX_AUDIT_RECORD_BYTES } from './repository.js';

/** The `type` of a revocation record. */
export const REVOCATION_RECORD_TYPE = 'mandate/revocation/v1';

/** A deny-set entry as logged, signed by the authority that revoked. */
export interface RevocationRecord {
  readonly type: typeof REVOCATION_RECORD_TYPE;
  /** `revocation-id` or `identity`. */
  readonly kind: DenyEntry['kind'];
  /** The revoked revocation id or identifier. */
  readonly id: string;
  readonly revokedAt: number;
  readonly expiresAt: number;
  /** The deny-set sequence number of the entry at the authority. */
  readonly sequence: number;
  /** The authority's identifier. */
  readonly authority: Identifier;
  /** The authority's credential-key attestation, base64url. */
  readonly attestation: string;
  readonly signature: { readonly keyType: 'ed25519' | 'p256'; readonly value: string };
  readonly reason?: string;
  /**
   * Present when an enforcement point logged the entry as it learned it from `authority` (over the
   * bus): its identifier. It signs the record (its credential key), not the authority.
   */
  readonly enforcer?: Identifier;
  /** With `enforcer`: when the enforcement point started enforcing the entry (unix seconds). */
  readonly appliedAt?: number;
}

const utf8 = new TextEncoder();

/**
 * Signs a deny-set entry as a revocation record with the authority's credential key (through the
 * vault) and returns the record's JCS bytes, ready to append to the log.
 */
export function signRevocationRecord(
  vault: SigningVault,
  authority: CredentialIssuer,
  entry: DenyEntry,
  sequence: number,
  nowSeconds: number,
): Promise<Uint8Array> {
  return signEntry(
    vault,
    authority,
    entry,
    sequence,
    authority.identity.identifier,
    {},
    nowSeconds,
  );
}

/**
 * Signs a deny-set entry an enforcement point learned from `authority` (over the bus: the
 * authority's signature does not travel with it) as a revocation record naming the enforcement
 * point (`enforcer`) and when it started enforcing it (`appliedAt`), with the enforcement point's
 * credential key. Returns the record's JCS bytes, ready to append to the enforcement point's log.
 */
export function signAppliedRevocationRecord(
  vault: SigningVault,
  enforcer: CredentialIssuer,
  authority: Identifier,
  entry: DenyEntry,
  sequence: number,
  appliedAt: number,
): Promise<Uint8Array> {
  return signEntry(
    vault,
    enforcer,
    entry,
    sequence,
    authority,
    { enforcer: enforcer.identity.identifier, appliedAt },
    appliedAt,
  );
}

async function signEntry(
  vault: SigningVault,
  signer: CredentialIssuer,
  entry: DenyEntry,
  sequence: number,
  authority: Identifier,
  applied: { readonly enforcer?: Identifier; readonly appliedAt?: number },
  nowSeconds: number,
): Promise<Uint8Array> {
  const key = await credentialSigningKey(vault, signer, nowSeconds);
  const unsigned = {
    type: REVOCATION_RECORD_TYPE as typeof REVOCATION_RECORD_TYPE,
    kind: entry.kind,
    id: entry.id,
    revokedAt: entry.revokedAt,
    expiresAt: entry.expiresAt,
    sequence,
    authority,
    attestation: toBase64Url(signer.credentialKeyAttestation),
    ...(entry.reason === undefined ? {} : { reason: entry.reason }),
    ...applied,
  };
  const signature = await signWithCredentialKey(
    vault,
    signer,
    key,
    utf8.encode(canonicalizeJson(unsigned)),
  );
  const record: RevocationRecord = {
    ...unsigned,
    signature: {
      keyType: signature.keyType,
      value: toBase64Url(signature.bytes),
    },
  };
  return utf8.encode(canonicalizeJson(record));
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const MEMBERS = new Set([
  'type',
  'kind',
  'id',
  'revokedAt',
  'expiresAt',
  'sequence',
  'authority',
  'attestation',
  'signature',
  'reason',
  'enforcer',
  'appliedAt',
]);

function malformed(why: string): never {
  throw invalid('ERR_AUDIT_RECORD_MALFORMED', `revocation record: ${why}`);
}

/**
 * Verifies a revocation record from its entry bytes: strictly parsed (the JCS text exactly, no
 * unknown member, the entry as `parseDenyEntry` checks it: `ERR_AUDIT_RECORD_MALFORMED`), signed
 * by the credential key of a trusted authority (`ERR_AUDIT_SIGNER_UNTRUSTED`) valid at
 * `revokedAt`, the one the record names (`ERR_AUDIT_SIGNER_MISMATCH`), the signature
 * (`ERR_AUDIT_SIGNATURE_INVALID`). A record an enforcement point logged (`enforcer`,
 * `appliedAt`) is instead signed by the credential key, valid at `appliedAt`, of the trusted
 * enforcement point it names (`enforcers`; none given: none trusted), and must name a trusted
 * authority as the entry's source (`ERR_AUDIT_SIGNER_UNTRUSTED`). Returns the record.
 */
export function verifyRevocationRecord(
  bytes: Uint8Array,
  authorities: ReadonlyMap<Identifier, VerifiedIdentity>,
  enforcers: ReadonlyMap<Identifier, VerifiedIdentity> = new Map(),
): RevocationRecord {
  if (bytes.byteLength > MAX_AUDIT_RECORD_BYTES) malformed('too large');
  let value: unknown;
  let text: string;
  try {
    text = strictUtf8.decode(bytes);
    value = JSON.parse(text);
  } catch {
    malformed('not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    malformed('not an object');
  if (canonicalizeJson(value) !== text) malformed('not in JCS form');
  const r = value as Record<string, unknown>;
  for (const key of Object.keys(r))
    if (!MEMBERS.has(key)) malformed(`unknown member \`${key.slice(0, 64)}\``);
  if (r.type !== REVOCATION_RECORD_TYPE) malformed('not a revocation record');
  let entry: DenyEntry;
  try {
    entry = parseDenyEntry({
      kind: r.kind as string,
      id: r.id as string,
      revokedAt: r.revokedAt as number,
      expiresAt: r.expiresAt as number,
      reason: r.reason as string | undefined,
    });
  } catch (error) {
    malformed(error instanceof Error ? error.message : 'a bad entry');
  }
  if (!Number.isSafeInteger(r.sequence) || (r.sequence as number) < 1)
    malformed('a bad `sequence`');
  if (typeof r.authority !== 'string' || !isIdentifier(r.authority)) malformed('a bad `authority`');
  const sig = r.signature as { keyType?: unknown; value?: unknown } | null;
  if (
    typeof sig !== 'object' ||
    sig === null ||
    Object.keys(sig).length !== 2 ||
    (sig.keyType !== 'ed25519' && sig.keyType !== 'p256') ||
    typeof sig.value !== 'string'
  )
    malformed('a bad `signature`');
  if (typeof r.attestation !== 'string') malformed('a bad `attestation`');
  const applied = Object.hasOwn(r, 'enforcer') || Object.hasOwn(r, 'appliedAt');
  if (applied) {
    if (typeof r.enforcer !== 'string' || !isIdentifier(r.enforcer)) malformed('a bad `enforcer`');
    if (!Number.isSafeInteger(r.appliedAt) || (r.appliedAt as number) < 0)
      malformed('a bad `appliedAt`');
    if (!authorities.has(r.authority))
      throw unauthorized(
        'ERR_AUDIT_SIGNER_UNTRUSTED',
        `the revocation names \`${r.authority}\` as its authority, which is not a trusted authority`,
      );
  }
  const { issuer } = verifyCredentialKeySignature(
    recordSigningBytes(r),
    { keyType: sig.keyType, bytes: fromBase64Url(sig.value, 'signature') },
    fromBase64Url(r.attestation, 'attestation'),
    applied
      ? { nowSeconds: r.appliedAt as number, authorities: enforcers }
      : { nowSeconds: entry.revokedAt, authorities },
    { untrusted: 'ERR_AUDIT_SIGNER_UNTRUSTED', signature: 'ERR_AUDIT_SIGNATURE_INVALID' },
    applied ? 'applied revocation' : 'revocation',
  );
  const named = applied ? (r.enforcer as string) : r.authority;
  if (issuer !== named)
    throw unauthorized(
      'ERR_AUDIT_SIGNER_MISMATCH',
      `the revocation names ${applied ? 'enforcement point' : 'authority'} \`${named}\` but is signed by \`${issuer}\``,
    );
  return r as unknown as RevocationRecord;
}
