import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign as nodeSign,
  verify as nodeVerify,
  type KeyObject,
} from 'node:crypto';
import { invalid } from '../core/index.js';

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

/** ECDSA P-256 with SHA-256 over `message`; returns raw r ‖ s. */
export function signP256(privateKey: Uint8Array | KeyObject, message: Uint8Array): Uint8Array {
  const key = privateKey instanceof Uint8Array ? importP256PrivateKey(privateKey) : privateKey;
  return new Uint8Array(nodeSign('sha256', message, { key, dsaEncoding: 'ieee-p1363' }));
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

/** Verifies a raw r ‖ s ECDSA-SHA-256 signature; malformed keys or signatures are just invalid. */
export function verifyP256(
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  if (
    publicKey.byteLength !== P256_PUBLIC_KEY_BYTES ||
    publicKey[0] !== 0x04 ||
    signature.byteLength !== P256_SIGNATURE_BYTES
  ) {
    return false;
  }
  const key = importP256PublicKey(publicKey);
  if (key === undefined) return false;
  return nodeVerify('sha256', message, { key, dsaEncoding: 'ieee-p1363' }, signature);
}
