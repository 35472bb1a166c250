import { createCipheriv, createDecipheriv } from 'node:crypto';
import { invalid, unauthorized } from '../core/internal.js';
import { MandateError } from '../core/index.js';
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

const EMPTY = new Uint8Array(0);

const decryptFailed = (): MandateError =>
  unauthorized('ERR_CRYPTO_DECRYPT_FAILED', 'ciphertext failed authentication');

/**
 * Returns ciphertext ‖ 16-byte tag, after `headroom` zero bytes left for the caller (a frame's
 * header), all in one buffer. `plaintext` may come in pieces, encrypted as their concatenation:
 * a message and its header then need not be joined first.
 */
export function aeadEncrypt(
  algorithm: AeadAlgorithm,
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array | readonly Uint8Array[],
  aad: Uint8Array = EMPTY,
  headroom = 0,
): Uint8Array {
  checkParams(key, nonce);
  if (!Number.isSafeInteger(headroom) || headroom < 0)
    throw invalid('ERR_ARGUMENT_INVALID', '`headroom` must be a non-negative integer');
  const pieces = ArrayBuffer.isView(plaintext) ? [plaintext] : plaintext;
  if (algorithm === AeadAlgorithm.chacha20poly1305) {
    // libsodium seals one contiguous message (its output lands right after the headroom).
    const whole = pieces.length === 1 ? pieces[0]! : joinPieces(pieces);
    const out = unfilledBytes(headroom + whole.byteLength + AEAD_TAG_BYTES);
    out.fill(0, 0, headroom);
    sodium.crypto_aead_chacha20poly1305_ietf_encrypt(
      asBuffer(out.subarray(headroom)),
      asBuffer(whole),
      asBuffer(aad),
      null,
      asBuffer(nonce),
      asBuffer(key),
    );
    return out;
  }
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: AEAD_TAG_BYTES });
  // An empty AAD authenticates exactly like none; skipping the call saves a native round trip.
  if (aad.byteLength > 0) cipher.setAAD(aad);
  // GCM is a stream mode: update() returns every ciphertext byte of its piece and final() none,
  // so the pieces' outputs and the tag are copied once, side by side, into memory left unfilled
  // because every byte of it (but the headroom, zeroed) is written here. Measured: cheaper than
  // joining the plaintext first.
  const bodies = pieces.map((piece) => cipher.update(piece));
  cipher.final();
  let length = headroom + AEAD_TAG_BYTES;
  for (const body of bodies) length += body.byteLength;
  const out = unfilledBytes(length);
  out.fill(0, 0, headroom);
  let at = headroom;
  for (const body of bodies) {
    out.set(body, at);
    at += body.byteLength;
  }
  out.set(cipher.getAuthTag(), at);
  return out;
}

function joinPieces(pieces: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const piece of pieces) length += piece.byteLength;
  const whole = unfilledBytes(length);
  let at = 0;
  for (const piece of pieces) {
    whole.set(piece, at);
    at += piece.byteLength;
  }
  return whole;
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
  aad: Uint8Array = EMPTY,
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
