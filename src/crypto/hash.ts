import { createHmac, hash, hkdfSync, pbkdf2 } from 'node:crypto';

import { canonicalizeJson } from '../encoding/index.js';

// OpenSSL's one-shot SHA-256 (crypto.hash) for every size: measured here (Node 20, SHA-NI), with
// its digest turned into bytes as below it takes 0.29 µs for 0–55 bytes, 0.44 µs for a Merkle
// node's 65 and 0.43 µs for 300, where libsodium's portable code (a Buffer for its output, views
// for its input) takes 0.51, 1.05 and 1.29 µs.
export const SHA256_BYTES = 32;

export function sha256(data: Uint8Array): Uint8Array {
  return digestBytes(hash('sha256', data, 'binary'));
}

// crypto.hash's 'buffer' output costs about 0.5 µs more per call than a 'binary' (latin1) string
// turned into bytes (measured here, Node 20): the digest's 32 characters are its 32 bytes, copied
// one by one into a fresh array (0.1 µs less than Buffer.from(…, 'latin1'), and no view of
// Node's shared pool).
function digestBytes(binary: string): Uint8Array {
  const out = new Uint8Array(SHA256_BYTES);
  for (let i = 0; i < SHA256_BYTES; i++) out[i] = binary.charCodeAt(i);
  return out;
}

/**
 * SHA-256 of a string's UTF-8 bytes (without encoding them first), in Node's buffer pool: the
 * digest a record signer hands to a vault, whose signer (libsodium) views it as a Buffer — an
 * array on V8's heap (digestBytes') is moved off it for that, 0.33 µs more per signature than
 * this (measured here, Node 20).
 */
export function sha256Utf8(text: string): Uint8Array {
  const digest = Buffer.from(hash('sha256', text, 'binary'), 'latin1');
  return new Uint8Array(digest.buffer, digest.byteOffset, SHA256_BYTES);
}

/** Lower-case hex SHA-256 of bytes, or of a string's UTF-8 bytes. */
export function sha256Hex(data: Uint8Array | string): string {
  return hash('sha256', data, 'hex');
}

/**
 * A JSON value's JCS text (RFC 8785) and the lower-case hex SHA-256 of its UTF-8 bytes: the one
 * digest of JSON that approvals bind (gates' `argumentsDigest`) and audit records name
 * (`argumentsDigest`, `resultDigest`, reported inputs: audit's `jsonDigest`), so an approval and
 * the invocation it answers agree on the arguments byte for byte.
 */
export function jcsSha256(value: unknown): { readonly text: string; readonly digest: string } {
  const text = canonicalizeJson(value);
  return { text, digest: sha256Hex(text) };
}

export function hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac('sha256', key).update(data).digest());
}

/** HKDF-SHA-256 (RFC 5869). */
export function hkdfSha256(
  ikm: Uint8Array,
  salt: Uint8Array,
  info: Uint8Array,
  length: number,
): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', ikm, salt, info, length));
}

/**
 * PBKDF2-HMAC-SHA-256 (RFC 8018 §5.2), on libuv's thread pool: for SCRAM-SHA-256 verifiers
 * (RFC 7677), where the iteration count is the server's (PostgreSQL: 4096).
 */
export function pbkdf2Sha256(
  password: Uint8Array,
  salt: Uint8Array,
  iterations: number,
  length: number,
): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    pbkdf2(password, salt, iterations, length, 'sha256', (error, key) => {
      if (error === null) resolve(new Uint8Array(key.buffer, key.byteOffset, key.byteLength));
      else reject(error);
    });
  });
}
