import { createCipheriv, createDecipheriv } from 'node:crypto';
import { invalid, unauthorized } from '../core/internal.js';
import { MandateError } from '../core/index.js';
import { sodium } from './sodium.js';

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
const NO_PIECES: readonly Uint8Array[] = [];

const decryptFailed = (): MandateError =>
  unauthorized('ERR_CRYPTO_DECRYPT_FAILED', 'ciphertext failed authentication');

/**
 * Several plaintext pieces up to this many bytes in all are copied into the frame and sealed by
 * one `update()`; larger ones get one `update()` each. Each `update()` of node:crypto allocates
 * its output twice and copies it once (GCM's block size is 1, so the output is first sized
 * length + 1, then trimmed), which costs more than copying a small plaintext; past a few KiB the
 * extra copy of the whole message costs more than the extra call (bench/aead.bench.ts).
 */
export const JOIN_PIECES_MAX_BYTES = 4096;

const GCM_OPTIONS = { authTagLength: AEAD_TAG_BYTES } as const;

/**
 * Returns ciphertext ‖ 16-byte tag, after `headroom` zero bytes left for the caller (a frame's
 * header), all in one buffer. `plaintext` may come in pieces, encrypted as their concatenation:
 * a message and its header then need not be joined first.
 *
 * The output is allocated once, at its final size, and every path writes into it: libsodium
 * (ChaCha20-Poly1305) seals straight into it, in place when the pieces had to be joined there
 * first; node:crypto (AES-256-GCM) has no call that writes into a caller's buffer, so its output
 * is copied in. AES-256-GCM stays on node:crypto: libsodium has it (with a precomputed-key API),
 * but sodium-native does not bind it (see README, "AEAD per message").
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
  // `whole` is the plaintext when it is one contiguous piece; otherwise `pieces` holds it.
  let whole: Uint8Array | undefined;
  let pieces: readonly Uint8Array[] = NO_PIECES;
  if (ArrayBuffer.isView(plaintext)) whole = plaintext;
  else if (plaintext.length === 1) whole = plaintext[0];
  else pieces = plaintext;
  let length = whole?.byteLength ?? 0;
  for (const piece of pieces) length += piece.byteLength;
  const out = unfilledBytes(headroom + length + AEAD_TAG_BYTES);
  out.fill(0, 0, headroom);
  if (algorithm === AeadAlgorithm.chacha20poly1305) {
    // Pieces are joined where the ciphertext goes and sealed in place: libsodium's stream XOR
    // reads each byte before writing it, and the tag goes after the message.
    whole ??= joinInto(out.subarray(headroom, headroom + length), pieces);
    sodium.crypto_aead_chacha20poly1305_ietf_encrypt(
      out.subarray(headroom),
      whole,
      aad.byteLength > 0 ? aad : null,
      null,
      nonce,
      key,
    );
    return out;
  }
  const cipher = createCipheriv('aes-256-gcm', key, nonce, GCM_OPTIONS);
  // An empty AAD authenticates exactly like none; skipping the call saves a native round trip.
  if (aad.byteLength > 0) cipher.setAAD(aad);
  // GCM is a stream mode: update() returns every ciphertext byte of its input and final() none.
  if (whole === undefined && length <= JOIN_PIECES_MAX_BYTES)
    whole = joinInto(out.subarray(headroom, headroom + length), pieces);
  if (whole !== undefined) {
    out.set(cipher.update(whole), headroom);
  } else {
    let at = headroom;
    for (const piece of pieces) {
      const sealed = cipher.update(piece);
      out.set(sealed, at);
      at += sealed.byteLength;
    }
  }
  cipher.final();
  out.set(cipher.getAuthTag(), headroom + length);
  return out;
}

/** Copies `pieces` side by side into `target` (exactly their total length) and returns it. */
function joinInto(target: Uint8Array, pieces: readonly Uint8Array[]): Uint8Array {
  let at = 0;
  for (const piece of pieces) {
    target.set(piece, at);
    at += piece.byteLength;
  }
  return target;
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
        ciphertext,
        aad.byteLength > 0 ? aad : null,
        nonce,
        key,
      );
    } catch {
      throw decryptFailed();
    }
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  }
  const length = ciphertext.byteLength - AEAD_TAG_BYTES;
  const decipher = createDecipheriv('aes-256-gcm', key, nonce, GCM_OPTIONS);
  if (aad.byteLength > 0) decipher.setAAD(aad);
  decipher.setAuthTag(ciphertext.subarray(length));
  let out: Buffer;
  try {
    out = decipher.update(ciphertext.subarray(0, length));
    // final() checks the tag and, GCM being a stream mode, returns no bytes: update()'s output
    // (a buffer of its own, exactly the plaintext) is released only once the tag has verified.
    decipher.final();
  } catch {
    throw decryptFailed();
  }
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}
