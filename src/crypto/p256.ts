import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign as nodeSign,
  verify as nodeVerify,
  type KeyObject,
} from 'node:crypto';
import { invalid } from '../core/internal.js';

export const P256_PUBLIC_KEY_BYTES = 65; // SEC1 uncompressed: 0x04 ‖ X ‖ Y
export const P256_SIGNATURE_BYTES = 64; // raw r ‖ s (IEEE P1363), not DER

// SubjectPublicKeyInfo header for id-ecPublicKey / prime256v1 with a 65-byte uncompressed point.
const P256_SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');

export interface P256KeyPair {
  readonly publicKey: Uint8Array;
  /** PKCS#8 DER of the private key: secret, keep it in guarded memory. */
  readonly privateKeyPkcs8: Uint8Array;
}

export function generateP256KeyPair(): P256KeyPair {
  // DER export only: JWK export of fresh KeyObjects in a tight loop can deadlock Node 20.
  const { publicKey, privateKey } = generateKeyPairSync('ec', {
    namedCurve: 'prime256v1',
    publicKeyEncoding: { type: 'spki', format: 'der' },
    privateKeyEncoding: { type: 'pkcs8', format: 'der' },
  });
  return {
    publicKey: new Uint8Array(publicKey.subarray(P256_SPKI_PREFIX.length)),
    privateKeyPkcs8: new Uint8Array(privateKey),
  };
}

/** Parses a PKCS#8 P-256 private key once, for callers that sign many times with it. */
export function importP256PrivateKey(privateKeyPkcs8: Uint8Array): KeyObject {
  try {
    const key = createPrivateKey({
      key: Buffer.from(privateKeyPkcs8),
      format: 'der',
      type: 'pkcs8',
    });
    if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1')
      throw new Error('not P-256');
    return key;
  } catch (cause) {
    throw invalid('ERR_CRYPTO_KEY_INVALID', 'not a PKCS#8 P-256 private key', cause);
  }
}

// ECDSA is malleable: when (r, s) verifies, so does (r, n − s), and anyone can compute it without
// the key. OpenSSL accepts both. Mandate signs and accepts only the low-S form, s ≤ (n − 1) / 2
// (as Bitcoin's BIP 146 and @noble/curves' default), so whoever holds a signed object cannot turn
// its signature into another valid one (issue 8: a rewritten signature must not pass for a new
// object anywhere — identities, attestations, credentials, links).

/** Group order n of P-256 (SEC 2 §2.4.2), big-endian, and (n − 1) / 2. */
const P256_ORDER = Buffer.from(
  'ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551',
  'hex',
);
const P256_HALF_ORDER = Buffer.from(
  '7fffffff800000007fffffffffffffffde737d56d38bcf4279dce5617e3192a8',
  'hex',
);
const P256_SCALAR_BYTES = 32;

/** Big-endian comparison of two 32-byte scalars (public values: no constant time needed). */
const compareScalars = (a: Uint8Array, b: Uint8Array): number =>
  Buffer.compare(
    Buffer.from(a.buffer, a.byteOffset, a.byteLength),
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  );

const isZero = (scalar: Uint8Array): boolean => scalar.every((b) => b === 0);

/** n − s for a 32-byte big-endian 0 < s < n. */
function negateScalar(s: Uint8Array): Uint8Array {
  const out = new Uint8Array(P256_SCALAR_BYTES);
  let borrow = 0;
  for (let i = P256_SCALAR_BYTES - 1; i >= 0; i--) {
    const d = P256_ORDER[i]! - s[i]! - borrow;
    out[i] = d & 0xff;
    borrow = d < 0 ? 1 : 0;
  }
  return out;
}

/**
 * Whether a raw r ‖ s signature is in the only form Mandate accepts: 0 < r < n and
 * 0 < s ≤ (n − 1) / 2. Bytes of another length are not.
 */
function isCanonicalP256Signature(signature: Uint8Array): boolean {
  if (signature.byteLength !== P256_SIGNATURE_BYTES) return false;
  const r = signature.subarray(0, P256_SCALAR_BYTES);
  const s = signature.subarray(P256_SCALAR_BYTES);
  return (
    !isZero(r) &&
    compareScalars(r, P256_ORDER) < 0 &&
    !isZero(s) &&
    compareScalars(s, P256_HALF_ORDER) <= 0
  );
}

/** ECDSA P-256 with SHA-256 over `message`; returns raw r ‖ s in low-S form. */
export function signP256(privateKey: Uint8Array | KeyObject, message: Uint8Array): Uint8Array {
  const key = privateKey instanceof Uint8Array ? importP256PrivateKey(privateKey) : privateKey;
  const signature = new Uint8Array(nodeSign('sha256', message, { key, dsaEncoding: 'ieee-p1363' }));
  const s = signature.subarray(P256_SCALAR_BYTES);
  if (compareScalars(s, P256_HALF_ORDER) > 0) s.set(negateScalar(s));
  return signature;
}

// Parsing a public key costs about twice the verification itself, and verifiers see the same
// keys again and again (an identity's primary key, an issuer's credential key): keep the last
// few hundred parsed. Public keys only; nothing secret is cached.
const PUBLIC_KEY_CACHE_SIZE = 512;
const publicKeyCache = new Map<string, KeyObject>();

function importP256PublicKey(publicKey: Uint8Array): KeyObject | undefined {
  const id = Buffer.from(publicKey.buffer, publicKey.byteOffset, publicKey.byteLength).toString(
    'latin1',
  );
  let key = publicKeyCache.get(id);
  if (key !== undefined) return key;
  try {
    key = createPublicKey({
      key: Buffer.concat([P256_SPKI_PREFIX, publicKey]),
      format: 'der',
      type: 'spki',
    });
  } catch {
    return undefined; // not a point on the curve
  }
  if (publicKeyCache.size >= PUBLIC_KEY_CACHE_SIZE) {
    const oldest = publicKeyCache.keys().next();
    if (oldest.done !== true) publicKeyCache.delete(oldest.value);
  }
  publicKeyCache.set(id, key);
  return key;
}

/**
 * Verifies a raw r ‖ s ECDSA-SHA-256 signature in low-S form (see isCanonicalP256Signature): a
 * high-S signature is invalid even where OpenSSL would accept it. Malformed keys or signatures
 * are just invalid.
 */
export function verifyP256(
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  if (
    publicKey.byteLength !== P256_PUBLIC_KEY_BYTES ||
    publicKey[0] !== 0x04 ||
    !isCanonicalP256Signature(signature)
  ) {
    return false;
  }
  const key = importP256PublicKey(publicKey);
  if (key === undefined) return false;
  return nodeVerify('sha256', message, { key, dsaEncoding: 'ieee-p1363' }, signature);
}
