import type { KeyObject } from 'node:crypto';
import {
  ED25519_PUBLIC_KEY_BYTES,
  ED25519_SECRET_KEY_BYTES,
  X25519_KEY_BYTES,
  generateEd25519KeyPairInto,
  generateP256KeyPair,
  generateX25519KeyPairInto,
  importP256PrivateKey,
  randomBytes,
  signEd25519,
  signP256,
  wipe,
  x25519Into,
  type SecretBytes,
  type SecureArena,
} from '../crypto/index.js';
import { toHex } from '../encoding/index.js';
import { SigningKeyType, type SigningKeyHandle, type X25519KeyHandle } from './types.js';
import { keyTypeUnsupported } from './vault-errors.js';

// Key ids: 48 bits of milliseconds ‖ 48 random bits chosen once per process ‖ a 32-bit counter.
// Ids from different processes never collide in practice (same millisecond and same 48-bit
// prefix), ids from one process never repeat, and ids made together sort together, so a store's
// index of key ids grows at its end instead of rewriting pages all over a large file (bulk
// provisioning writes thousands per second) — and no id costs a getrandom(2) call. Ids are not
// secret; nothing is derived from them.
const processPrefix = toHex(randomBytes(6));
let counter = 0;

export function newKeyId(): string {
  counter = (counter + 1) >>> 0;
  return `${Date.now().toString(16).padStart(12, '0')}${processPrefix}${counter.toString(16).padStart(8, '0')}`;
}

/**
 * A signing key in guarded memory. Ed25519 keeps libsodium's 64-byte `seed ‖ public key`;
 * P-256 keeps PKCS#8 DER, parsed once into a KeyObject on first use because parsing costs more
 * than the signature. That KeyObject lives in OpenSSL's heap, not in guarded memory: it is the
 * price of P-256 through node:crypto, and it is dropped with the entry.
 */
export class SigningKeyEntry {
  readonly purpose = 'signing';
  readonly keyId: string;
  readonly keyType: SigningKeyType;
  readonly publicKey: Uint8Array;
  readonly secret: SecretBytes;
  #p256Key: KeyObject | undefined;

  constructor(keyId: string, keyType: SigningKeyType, publicKey: Uint8Array, secret: SecretBytes) {
    this.keyId = keyId;
    this.keyType = keyType;
    this.publicKey = publicKey;
    this.secret = secret;
  }

  sign(message: Uint8Array): Uint8Array {
    if (this.keyType === SigningKeyType.ed25519) return signEd25519(this.secret.expose(), message);
    this.#p256Key ??= importP256PrivateKey(this.secret.expose());
    return signP256(this.#p256Key, message);
  }

  /** A fresh handle each time: callers may keep or mutate theirs without touching ours. */
  handle(): SigningKeyHandle {
    return { keyId: this.keyId, keyType: this.keyType, publicKey: this.publicKey.slice() };
  }

  destroy(): void {
    this.secret.destroy();
    this.#p256Key = undefined;
  }
}

export class X25519KeyEntry {
  readonly purpose = 'x25519';
  readonly keyId: string;
  readonly publicKey: Uint8Array;
  readonly secret: SecretBytes;

  constructor(keyId: string, publicKey: Uint8Array, secret: SecretBytes) {
    this.keyId = keyId;
    this.publicKey = publicKey;
    this.secret = secret;
  }

  /** X25519 straight into a guarded slot; a low-order peer throws `ERR_CRYPTO_DH_LOW_ORDER`. */
  dh(arena: SecureArena, peerPublicKey: Uint8Array): SecretBytes {
    const shared = arena.allocate(X25519_KEY_BYTES);
    try {
      x25519Into(shared.expose(), this.secret.expose(), peerPublicKey);
    } catch (error) {
      shared.destroy();
      throw error;
    }
    return shared;
  }

  handle(): X25519KeyHandle {
    return { keyId: this.keyId, publicKey: this.publicKey.slice() };
  }

  destroy(): void {
    this.secret.destroy();
  }
}

export type KeyEntry = SigningKeyEntry | X25519KeyEntry;

/** Checks the key type at run time too: callers in plain JS or from config can pass anything. */
export function generateSigningKeyEntry(
  arena: SecureArena,
  keyId: string,
  keyType: SigningKeyType,
): SigningKeyEntry {
  switch (keyType) {
    case SigningKeyType.ed25519: {
      const publicKey = new Uint8Array(ED25519_PUBLIC_KEY_BYTES);
      const secret = arena.allocate(ED25519_SECRET_KEY_BYTES);
      generateEd25519KeyPairInto(publicKey, secret.expose());
      return new SigningKeyEntry(keyId, keyType, publicKey, secret);
    }
    case SigningKeyType.p256: {
      // node:crypto hands the private key back on the JS heap; move it to guarded memory at once.
      const { publicKey, privateKeyPkcs8 } = generateP256KeyPair();
      const secret = arena.allocateFrom(privateKeyPkcs8);
      wipe(privateKeyPkcs8);
      return new SigningKeyEntry(keyId, keyType, publicKey, secret);
    }
    default:
      throw keyTypeUnsupported(keyType);
  }
}

export function generateX25519KeyEntry(arena: SecureArena, keyId: string): X25519KeyEntry {
  const publicKey = new Uint8Array(X25519_KEY_BYTES);
  const secret = arena.allocate(X25519_KEY_BYTES);
  generateX25519KeyPairInto(publicKey, secret.expose());
  return new X25519KeyEntry(keyId, publicKey, secret);
}
