import { createCipheriv, createDecipheriv } from 'node:crypto';
import { invalid, MandateError, ErrorKind } from '../core/index.js';
import { asBuffer, sodium } from './sodium.js';

export const AEAD_KEY_BYTES = 32;
export const AEAD_NONCE_BYTES = 12;
export const AEAD_TAG_BYTES = 16;

export const AeadAlgorithm = {
  aes256gcm: 'aes-256-gcm',
  chacha20poly1305: 'chacha20-poly1305',
} as const;
export type AeadAlgorithm = (typeof AeadAlgorithm)[keyof typeof AeadAlgorithm];

function checkParams(key: Uint8Array, nonce: Uint8Array): void {
  if (key.byteLength !== AEAD_KEY_BYTES)
    throw invalid('ERR_CRYPTO_KEY_LENGTH', `AEAD keys must be ${AEAD_KEY_BYTES} bytes`);
  if (nonce.byteLength !== AEAD_NONCE_BYTES)
    throw invalid('ERR_CRYPTO_NONCE_LENGTH', `AEAD nonces must be ${AEAD_NONCE_BYTES} bytes`);
}

const decryptFailed = (): MandateError =>
  new MandateError(
    'ERR_CRYPTO_DECRYPT_FAILED',
    ErrorKind.unauthorized,
    'ciphertext failed authentication',
  );

/** Returns ciphertext ‖ 16-byte tag. */
export function aeadEncrypt(
  algorithm: AeadAlgorithm,
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array = new Uint8Array(0),
): Uint8Array {
  checkParams(key, nonce);
  if (algorithm === AeadAlgorithm.chacha20poly1305) {
    const out = Buffer.allocUnsafe(plaintext.byteLength + AEAD_TAG_BYTES);
    sodium.crypto_aead_chacha20poly1305_ietf_encrypt(
      out,
      asBuffer(plaintext),
      asBuffer(aad),
      null,
      asBuffer(nonce),
      asBuffer(key),
    );
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  }
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: AEAD_TAG_BYTES });
  // An empty AAD authenticates exactly like none; skipping the call saves a native round trip.
  if (aad.byteLength > 0) cipher.setAAD(aad);
  // GCM is a stream mode: update() returns every ciphertext byte and final() none, so the output
  // is assembled once, into memory left unfilled because every byte of it is written here.
  const body = cipher.update(plaintext);
  cipher.final();
  const out = unfilledBytes(body.byteLength + AEAD_TAG_BYTES);
  out.set(body);
  out.set(cipher.getAuthTag(), body.byteLength);
  return out;
}

/**
 * A Uint8Array with an ArrayBuffer of its own (not a slice of Buffer's shared pool), not
 * zero-filled: only for output the caller overwrites completely. Allocating a fresh 16 KiB
 * zeroed buffer costs several times the copy into it, and a channel does it per message.
 */
function unfilledBytes(length: number): Uint8Array {
  const buffer = Buffer.allocUnsafeSlow(length);
  return new Uint8Array(buffer.buffer, buffer.byteOffset, length);
}

/** Throws `ERR_CRYPTO_DECRYPT_FAILED` on any authentication failure. */
export function aeadDecrypt(
  algorithm: AeadAlgorithm,
  key: Uint8Array,
  nonce: Uint8Array,
  ciphertext: Uint8Array,
  aad: Uint8Array = new Uint8Array(0),
): Uint8Array {
  checkParams(key, nonce);
  if (ciphertext.byteLength < AEAD_TAG_BYTES) throw decryptFailed();
  if (algorithm === AeadAlgorithm.chacha20poly1305) {
    const out = Buffer.allocUnsafe(ciphertext.byteLength - AEAD_TAG_BYTES);
    try {
      sodium.crypto_aead_chacha20poly1305_ietf_decrypt(
        out,
        null,
        asBuffer(ciphertext),
        asBuffer(aad),
        asBuffer(nonce),
        asBuffer(key),
      );
    } catch {
      throw decryptFailed();
    }
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  }
  const body = ciphertext.subarray(0, ciphertext.byteLength - AEAD_TAG_BYTES);
  const tag = ciphertext.subarray(ciphertext.byteLength - AEAD_TAG_BYTES);
  const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: AEAD_TAG_BYTES });
  if (aad.byteLength > 0) decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  let out: Buffer;
  try {
    out = decipher.update(body);
    // final() checks the tag and, GCM being a stream mode, returns no bytes: update()'s output is
    // the whole plaintext, released only once the tag has verified.
    if (decipher.final().byteLength !== 0) throw new Error('unreachable: GCM final() is empty');
  } catch {
    throw decryptFailed();
  }
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}
