/**
 * Revocation records (`mandate/revocation/v1`): the deny-set's history inside the audit log, so
 * an offline verifier knows which revocations were known when each record was made. An entry of
 * the authority's deny-set is logged as a record signed by the authority's credential key; the
 * checkpoint covers it like any record, so it can be neither dropped nor back-dated unnoticed.
 * A verifier checks a chain at a record's time against the revocation records earlier in the log
 * whose `revokedAt` is not after that time.
 */
import { invalid, unauthorized } from '../core/internal.js';
import { canonicalizeJson } from '../encoding/index.js';
import type { CredentialIssuer, DenyEntry } from '../credentials/index.js';
import {
  credentialSigningKey,
  parseDenyEntry,
  signWithCredentialKey,
  verifyCredentialKeySignature,
  type SigningVault,
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
}

const utf8 = new TextEncoder();

/**
 * Signs a deny-set entry as a revocation record with the authority's credential key (through the
 * vault) and returns the record's JCS bytes, ready to append to the log.
 */
export async function signRevocationRecord(
  vault: SigningVault,
  authority: CredentialIssuer,
  entry: DenyEntry,
  sequence: number,
  nowSeconds: number,
): Promise<Uint8Array> {
  const key = await credentialSigningKey(vault, authority, nowSeconds);
  const unsigned = {
    type: REVOCATION_RECORD_TYPE as typeof REVOCATION_RECORD_TYPE,
    kind: entry.kind,
    id: entry.id,
    revokedAt: entry.revokedAt,
    expiresAt: entry.expiresAt,
    sequence,
    authority: authority.identity.identifier,
    attestation: toBase64Url(authority.credentialKeyAttestation),
    ...(entry.reason === undefined ? {} : { reason: entry.reason }),
  };
  const signature = await signWithCredentialKey(
    vault,
    authority,
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
]);

function malformed(why: string): never {
  throw invalid('ERR_AUDIT_RECORD_MALFORMED', `revocation record: ${why}`);
}

/**
 * Verifies a revocation record from its entry bytes: strictly parsed (the JCS text exactly, no
 * unknown member, the entry as `parseDenyEntry` checks it: `ERR_AUDIT_RECORD_MALFORMED`), signed
 * by the credential key of a trusted authority (`ERR_AUDIT_SIGNER_UNTRUSTED`) valid at
 * `revokedAt`, the one the record names (`ERR_AUDIT_SIGNER_MISMATCH`), the signature
 * (`ERR_AUDIT_SIGNATURE_INVALID`). Returns the record.
 */
export function verifyRevocationRecord(
  bytes: Uint8Array,
  authorities: ReadonlyMap<Identifier, VerifiedIdentity>,
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
  const { issuer } = verifyCredentialKeySignature(
    recordSigningBytes(r),
    { keyType: sig.keyType, bytes: fromBase64Url(sig.value, 'signature') },
    fromBase64Url(r.attestation, 'attestation'),
    { nowSeconds: entry.revokedAt, authorities },
    { untrusted: 'ERR_AUDIT_SIGNER_UNTRUSTED', signature: 'ERR_AUDIT_SIGNATURE_INVALID' },
    'revocation',
  );
  if (issuer !== r.authority)
    throw unauthorized(
      'ERR_AUDIT_SIGNER_MISMATCH',
      `the revocation names authority \`${r.authority}\` but is signed by \`${issuer}\``,
    );
  return r as unknown as RevocationRecord;
}
