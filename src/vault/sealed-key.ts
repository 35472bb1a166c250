import { wipe, type SecretBytes, type SecureArena } from '../crypto/index.js';
import { concatBytes, encodeCbor } from '../encoding/index.js';
import type { SealedKeyRecord } from './types.js';
import { unsealFailed } from './vault-errors.js';
import { openBlob, sealBlob } from './sealed-blob.js';

/**
 * Sealed key format: a sealed blob (sealed-blob.ts; written as version 2, XChaCha20-Poly1305
 * under the KEK; version 1, AES-256-GCM, still opens) of the secret, with
 *
 *   aad = CBOR ["mandate/vault/sealed-key", 1, keyId, purpose, keyType, publicKey]
 *
 * (the 1 is the version of this AAD, unchanged by the blob's version). The AAD binds the blob to
 * its record, so a blob copied into another record (or a record whose metadata was edited) fails
 * authentication instead of yielding a key under the wrong id. The secret is libsodium's 64-byte
 * Ed25519 `seed ‖ public key`, P-256 PKCS#8 DER, or the 32-byte X25519 scalar.
 */
export const SEALED_KEY_VERSION = 1;
const AAD_LABEL = 'mandate/vault/sealed-key';

export type SealedKeyFields = Omit<SealedKeyRecord, 'sealed'>;

/** Pre-encoded parts of the AAD: the array head with label and version, and the enum strings. */
const AAD_PREFIX = concatBytes(
  Uint8Array.of(0x86),
  encodeCbor(AAD_LABEL),
  encodeCbor(SEALED_KEY_VERSION),
);
const ENCODED_NAMES = new Map(
  ['signing', 'x25519', 'ed25519', 'p256'].map((name) => [name, encodeCbor(name)]),
);
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/**
 * The AAD of the format above. The general CBOR encoder costs about as much as the AES-GCM seal, so
 * the usual case (ASCII key id, known names) writes the same bytes directly; anything else
 * goes through encodeCbor. A test holds the two paths equal.
 */
export function sealedKeyAad(fields: SealedKeyFields): Uint8Array {
  const { keyId, publicKey } = fields;
  const purpose = ENCODED_NAMES.get(fields.purpose);
  const keyType = ENCODED_NAMES.get(fields.keyType);
  if (
    purpose === undefined ||
    keyType === undefined ||
    keyId.length > 0xffff ||
    !PRINTABLE_ASCII.test(keyId) ||
    publicKey.byteLength > 0xffff
  ) {
    return encodeCbor([
      AAD_LABEL,
      SEALED_KEY_VERSION,
      keyId,
      fields.purpose,
      fields.keyType,
      publicKey,
    ]);
  }
  const out = new Uint8Array(
    AAD_PREFIX.byteLength +
      3 +
      keyId.length +
      purpose.byteLength +
      keyType.byteLength +
      3 +
      publicKey.byteLength,
  );
  out.set(AAD_PREFIX, 0);
  let pos = writeHead(out, AAD_PREFIX.byteLength, 3, keyId.length);
  for (let i = 0; i < keyId.length; i++) out[pos++] = keyId.charCodeAt(i);
  out.set(purpose, pos);
  pos += purpose.byteLength;
  out.set(keyType, pos);
  pos = writeHead(out, pos + keyType.byteLength, 2, publicKey.byteLength);
  out.set(publicKey, pos);
  return out.subarray(0, pos + publicKey.byteLength);
}

/** A shortest-form CBOR head for a length below 2^16 (RFC 8949 §3). */
function writeHead(out: Uint8Array, pos: number, major: number, length: number): number {
  const m = major << 5;
  if (length < 24) {
    out[pos] = m | length;
    return pos + 1;
  }
  if (length < 0x100) {
    out[pos] = m | 24;
    out[pos + 1] = length;
    return pos + 2;
  }
  out[pos] = m | 25;
  out[pos + 1] = length >> 8;
  out[pos + 2] = length & 0xff;
  return pos + 3;
}

export function sealKey(
  kek: SecretBytes,
  fields: SealedKeyFields,
  secret: SecretBytes,
): SealedKeyRecord {
  return {
    keyId: fields.keyId,
    purpose: fields.purpose,
    keyType: fields.keyType,
    publicKey: fields.publicKey.slice(),
    sealed: sealBlob(kek, secret.expose(), sealedKeyAad(fields)),
  };
}

/**
 * Opens `record` as the key `keyId` into guarded memory. The AAD is built from the id asked
 * for, not the id the repository returned, so a repository that answers with another record
 * cannot substitute a key. Any failure is `ERR_VAULT_UNSEAL_FAILED`, never a garbage key.
 */
export function unsealKey(
  kek: SecretBytes,
  arena: SecureArena,
  keyId: string,
  record: SealedKeyRecord,
  expectedSecretBytes: number | undefined,
): SecretBytes {
  const plaintext = openBlob(
    kek,
    record.sealed,
    sealedKeyAad({
      keyId,
      purpose: record.purpose,
      keyType: record.keyType,
      publicKey: record.publicKey,
    }),
  );
  if (plaintext === undefined) throw unsealFailed(keyId);
  try {
    if (
      plaintext.byteLength === 0 ||
      (expectedSecretBytes !== undefined && plaintext.byteLength !== expectedSecretBytes)
    ) {
      throw unsealFailed(keyId);
    }
    return arena.allocateFrom(plaintext);
  } finally {
    wipe(plaintext);
  }
}

/**
 * True when `record` opens under `kek` (its secret is wiped at once): how a store that predates
 * KEK verifiers has its KEK checked before anything is sealed under it.
 */
export function sealedKeyOpens(kek: SecretBytes, record: SealedKeyRecord): boolean {
  const plaintext = openBlob(kek, record.sealed, sealedKeyAad(record));
  if (plaintext === undefined) return false;
  wipe(plaintext);
  return true;
}
