import {
  AEAD_NONCE_BYTES,
  AeadAlgorithm,
  aeadDecrypt,
  aeadEncrypt,
  randomBytes,
  type SecretBytes,
} from '../crypto/index.js';

/**
 * The sealing of everything a key-encryption key protects at rest, version 1:
 *
 *   sealed = 0x01 ‖ nonce (12 random bytes) ‖ AES-256-GCM(KEK, nonce, plaintext, aad) ‖ tag (16)
 *
 * The caller's AAD names what the blob is and binds it to its record: a sealed key's
 * (`["mandate/vault/sealed-key", 1, …]`, sealed-key.ts) and a broker secret's
 * (`["mandate/broker/sealed-secret", 1, …]`) start with different labels, so a blob of one kind
 * never opens as the other. A random 96-bit nonce per seal is safe far beyond any plausible count.
 */
export const SEALED_BLOB_VERSION = 0x01;
export const SEALED_BLOB_HEADER_BYTES = 1 + AEAD_NONCE_BYTES;

/** Seals `plaintext` under `kek` with `aad` (format above). */
export function sealBlob(kek: SecretBytes, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
  const nonce = randomBytes(AEAD_NONCE_BYTES);
  const body = aeadEncrypt(AeadAlgorithm.aes256gcm, kek.expose(), nonce, plaintext, aad);
  const sealed = new Uint8Array(SEALED_BLOB_HEADER_BYTES + body.byteLength);
  sealed[0] = SEALED_BLOB_VERSION;
  sealed.set(nonce, 1);
  sealed.set(body, SEALED_BLOB_HEADER_BYTES);
  return sealed;
}

/**
 * Opens a blob sealed by {@link sealBlob} with the same `aad`; `undefined` when it does not open
 * (wrong KEK, another AAD, a tampered or truncated blob, an unknown version). The caller turns
 * that into its own typed error and wipes the plaintext after use.
 */
export function openBlob(
  kek: SecretBytes,
  sealed: Uint8Array,
  aad: Uint8Array,
): Uint8Array | undefined {
  if (sealed.byteLength < SEALED_BLOB_HEADER_BYTES || sealed[0] !== SEALED_BLOB_VERSION)
    return undefined;
  try {
    return aeadDecrypt(
      AeadAlgorithm.aes256gcm,
      kek.expose(),
      sealed.subarray(1, SEALED_BLOB_HEADER_BYTES),
      sealed.subarray(SEALED_BLOB_HEADER_BYTES),
      aad,
    );
  } catch {
    return undefined;
  }
}
