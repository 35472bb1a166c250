import {
  AEAD_NONCE_BYTES,
  AeadAlgorithm,
  aeadDecrypt,
  randomFill,
  xchacha20poly1305Decrypt,
  xchacha20poly1305EncryptInto,
  XCHACHA20POLY1305_NONCE_BYTES,
  XCHACHA20POLY1305_TAG_BYTES,
  type SecretBytes,
} from '../crypto/index.js';

/**
 * The sealing of everything a key-encryption key protects at rest. Written, version 2:
 *
 *   sealed = 0x02 ‖ nonce (24 random bytes) ‖ XChaCha20-Poly1305(KEK, nonce, plaintext, aad) ‖ tag (16)
 *
 * Still read, version 1 (what Mandate wrote before; such rows are never rewritten):
 *
 *   sealed = 0x01 ‖ nonce (12 random bytes) ‖ AES-256-GCM(KEK, nonce, plaintext, aad) ‖ tag (16)
 *
 * The caller's AAD names what the blob is and binds it to its record: a sealed key's
 * (`["mandate/vault/sealed-key", 1, …]`, sealed-key.ts) and a broker secret's
 * (`["mandate/broker/sealed-secret", 1, …]`) start with different labels, so a blob of one kind
 * never opens as the other. The version byte is not in the AAD, and needs not be: each version
 * names its own AEAD, and a blob relabelled to the other version fails that AEAD's tag.
 *
 * Why version 2: a random 192-bit nonce per seal has no practical limit on how many blobs one KEK
 * seals, and libsodium's XChaCha20-Poly1305 costs about a tenth of a `node:crypto` AES-GCM
 * context on a key-sized message (one cipher object per seal), which made sealing the largest cost
 * of provisioning an agent above its signatures. The store's migration 15 (`sealed_blob_v2`) marks
 * a database that may hold version 2, so an older Mandate refuses it at open
 * (`ERR_STORE_SCHEMA_NEWER`) instead of failing to unseal new keys.
 */
export const SEALED_BLOB_VERSION = 0x02;
const SEALED_BLOB_V1 = 0x01;
export const SEALED_BLOB_HEADER_BYTES = 1 + XCHACHA20POLY1305_NONCE_BYTES;
const V1_HEADER_BYTES = 1 + AEAD_NONCE_BYTES;

/** The length of a version-2 blob sealing `plaintextBytes` bytes. */
export function sealedBlobBytes(plaintextBytes: number): number {
  return SEALED_BLOB_HEADER_BYTES + plaintextBytes + XCHACHA20POLY1305_TAG_BYTES;
}

/** Seals `plaintext` under `kek` with `aad` (format above): one buffer, one libsodium call. */
export function sealBlob(kek: SecretBytes, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
  const sealed = new Uint8Array(sealedBlobBytes(plaintext.byteLength));
  sealed[0] = SEALED_BLOB_VERSION;
  const nonce = sealed.subarray(1, SEALED_BLOB_HEADER_BYTES);
  randomFill(nonce);
  xchacha20poly1305EncryptInto(
    sealed.subarray(SEALED_BLOB_HEADER_BYTES),
    kek.expose(),
    nonce,
    plaintext,
    aad,
  );
  return sealed;
}

/**
 * Opens a blob sealed by {@link sealBlob} (either version) with the same `aad`; `undefined` when it
 * does not open (wrong KEK, another AAD, a tampered or truncated blob, an unknown version). The
 * caller turns that into its own typed error and wipes the plaintext after use.
 */
export function openBlob(
  kek: SecretBytes,
  sealed: Uint8Array,
  aad: Uint8Array,
): Uint8Array | undefined {
  try {
    if (sealed[0] === SEALED_BLOB_VERSION && sealed.byteLength >= SEALED_BLOB_HEADER_BYTES) {
      return xchacha20poly1305Decrypt(
        kek.expose(),
        sealed.subarray(1, SEALED_BLOB_HEADER_BYTES),
        sealed.subarray(SEALED_BLOB_HEADER_BYTES),
        aad,
      );
    }
    if (sealed[0] === SEALED_BLOB_V1 && sealed.byteLength >= V1_HEADER_BYTES) {
      return aeadDecrypt(
        AeadAlgorithm.aes256gcm,
        kek.expose(),
        sealed.subarray(1, V1_HEADER_BYTES),
        sealed.subarray(V1_HEADER_BYTES),
        aad,
      );
    }
    return undefined;
  } catch {
    return undefined;
  }
}
