import {
  createPrivateKey,
  createPublicKey,
  sign as nodeSign,
  verify as nodeVerify,
} from 'node:crypto';
import { invalid } from '../core/internal.js';
import { asBuffer, sodium } from './sodium.js';

export const ED25519_PUBLIC_KEY_BYTES = 32;
export const ED25519_SECRET_KEY_BYTES = 64; // libsodium form: seed ‖ public key
export const ED25519_SEED_BYTES = 32;
export const ED25519_SIGNATURE_BYTES = 64;

export interface Ed25519KeyPair {
  readonly publicKey: Uint8Array;
  /** 64 bytes, libsodium's `seed ‖ publicKey`. Keep it in guarded memory (see SecureArena). */
  readonly secretKey: Uint8Array;
}

/**
 * Generates a key pair into caller-provided storage, so the secret half can be written straight
 * into guarded memory without a copy on the JS heap.
 */
export function generateEd25519KeyPairInto(publicKey: Uint8Array, secretKey: Uint8Array): void {
  checkLength(publicKey, ED25519_PUBLIC_KEY_BYTES, 'publicKey');
  checkLength(secretKey, ED25519_SECRET_KEY_BYTES, 'secretKey');
  sodium.crypto_sign_keypair(asBuffer(publicKey), asBuffer(secretKey));
}

export function generateEd25519KeyPair(): Ed25519KeyPair {
  const publicKey = new Uint8Array(ED25519_PUBLIC_KEY_BYTES);
  const secretKey = new Uint8Array(ED25519_SECRET_KEY_BYTES);
  generateEd25519KeyPairInto(publicKey, secretKey);
  return { publicKey, secretKey };
}

/** Derives the key pair of a 32-byte RFC 8032 seed. */
export function ed25519KeyPairFromSeed(seed: Uint8Array): Ed25519KeyPair {
  checkLength(seed, ED25519_SEED_BYTES, 'seed');
  const publicKey = Buffer.alloc(ED25519_PUBLIC_KEY_BYTES);
  const secretKey = Buffer.alloc(ED25519_SECRET_KEY_BYTES);
  sodium.crypto_sign_seed_keypair(publicKey, secretKey, asBuffer(seed));
  return { publicKey: new Uint8Array(publicKey), secretKey: new Uint8Array(secretKey) };
}

export function signEd25519(secretKey: Uint8Array, message: Uint8Array): Uint8Array {
  checkLength(secretKey, ED25519_SECRET_KEY_BYTES, 'secretKey');
  const signature = Buffer.allocUnsafe(ED25519_SIGNATURE_BYTES);
  sodium.crypto_sign_detached(signature, asBuffer(message), asBuffer(secretKey));
  return new Uint8Array(signature.buffer, signature.byteOffset, ED25519_SIGNATURE_BYTES);
}

/**
 * Strict verification (libsodium: canonical S, canonical R and A, small-order A rejected).
 * Wrong-length inputs are simply invalid signatures, never exceptions.
 */
export function verifyEd25519(
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  if (
    publicKey.byteLength !== ED25519_PUBLIC_KEY_BYTES ||
    signature.byteLength !== ED25519_SIGNATURE_BYTES
  ) {
    return false;
  }
  return sodium.crypto_sign_verify_detached(
    asBuffer(signature),
    asBuffer(message),
    asBuffer(publicKey),
  );
}

// --- node:crypto (OpenSSL) backend, kept for differential tests and benchmarks -------------------

const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export function signEd25519Node(secretKey: Uint8Array, message: Uint8Array): Uint8Array {
  checkLength(secretKey, ED25519_SECRET_KEY_BYTES, 'secretKey');
  const der = Buffer.concat([
    ED25519_PKCS8_PREFIX,
    asBuffer(secretKey).subarray(0, ED25519_SEED_BYTES),
  ]);
  const key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  return new Uint8Array(nodeSign(null, message, key));
}

export function verifyEd25519Node(
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  if (
    publicKey.byteLength !== ED25519_PUBLIC_KEY_BYTES ||
    signature.byteLength !== ED25519_SIGNATURE_BYTES
  ) {
    return false;
  }
  try {
    const key = createPublicKey({
      key: Buffer.concat([ED25519_SPKI_PREFIX, publicKey]),
      format: 'der',
      type: 'spki',
    });
    return nodeVerify(null, message, key, signature);
  } catch {
    return false;
  }
}

function checkLength(bytes: Uint8Array, length: number, name: string): void {
  if (bytes.byteLength !== length) {
    throw invalid(
      'ERR_CRYPTO_KEY_LENGTH',
      `\`${name}\` must be ${length} bytes, got ${bytes.byteLength}`,
    );
  }
}
