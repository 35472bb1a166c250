import { invalid } from '../core/internal.js';
import { asBuffer, sodium } from './sodium.js';

export const X25519_KEY_BYTES = 32;

/** Generates a key pair into caller-provided storage (the secret half into guarded memory). */
export function generateX25519KeyPairInto(publicKey: Uint8Array, secretKey: Uint8Array): void {
  if (publicKey.byteLength !== X25519_KEY_BYTES || secretKey.byteLength !== X25519_KEY_BYTES) {
    throw invalid('ERR_CRYPTO_KEY_LENGTH', `X25519 keys must be ${X25519_KEY_BYTES} bytes`);
  }
  sodium.crypto_box_keypair(asBuffer(publicKey), asBuffer(secretKey));
}

export function generateX25519KeyPair(): {
  readonly publicKey: Uint8Array;
  readonly secretKey: Uint8Array;
} {
  const publicKey = new Uint8Array(X25519_KEY_BYTES);
  const secretKey = new Uint8Array(X25519_KEY_BYTES);
  generateX25519KeyPairInto(publicKey, secretKey);
  return { publicKey, secretKey };
}

export function x25519PublicKey(secretKey: Uint8Array): Uint8Array {
  if (secretKey.byteLength !== X25519_KEY_BYTES)
    throw invalid('ERR_CRYPTO_KEY_LENGTH', `X25519 keys must be ${X25519_KEY_BYTES} bytes`);
  const out = Buffer.alloc(X25519_KEY_BYTES);
  sodium.crypto_scalarmult_base(out, asBuffer(secretKey));
  return new Uint8Array(out);
}

/**
 * X25519 (RFC 7748) into `out`. A peer key of low order yields the all-zero secret; libsodium
 * refuses it and so do we (`ERR_CRYPTO_DH_LOW_ORDER`), as Noise implementations must.
 */
export function x25519Into(
  out: Uint8Array,
  secretKey: Uint8Array,
  peerPublicKey: Uint8Array,
): void {
  if (
    secretKey.byteLength !== X25519_KEY_BYTES ||
    peerPublicKey.byteLength !== X25519_KEY_BYTES ||
    out.byteLength !== X25519_KEY_BYTES
  ) {
    throw invalid('ERR_CRYPTO_KEY_LENGTH', `X25519 keys must be ${X25519_KEY_BYTES} bytes`);
  }
  try {
    sodium.crypto_scalarmult(asBuffer(out), asBuffer(secretKey), asBuffer(peerPublicKey));
  } catch {
    sodium.sodium_memzero(asBuffer(out));
    throw invalid('ERR_CRYPTO_DH_LOW_ORDER', 'peer public key has low order');
  }
}

export function x25519(secretKey: Uint8Array, peerPublicKey: Uint8Array): Uint8Array {
  const out = new Uint8Array(X25519_KEY_BYTES);
  x25519Into(out, secretKey, peerPublicKey);
  return out;
}
