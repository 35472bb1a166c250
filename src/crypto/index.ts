export {
  sha256,
  sha256Hex,
  sha256Utf8,
  hmacSha256,
  hkdfSha256,
  jcsSha256,
  pbkdf2Sha256,
  SHA256_BYTES,
} from './hash.js';

export { randomBytes, randomFill, randomUnit } from './random.js';
export { constantTimeEqual, wipe } from './constant-time.js';
export {
  generateEd25519KeyPair,
  generateEd25519KeyPairInto,
  ed25519KeyPairFromSeed,
  signEd25519,
  verifyEd25519,
  signEd25519Node,
  verifyEd25519Node,
  ED25519_PUBLIC_KEY_BYTES,
  ED25519_SECRET_KEY_BYTES,
  ED25519_SEED_BYTES,
  ED25519_SIGNATURE_BYTES,
} from './ed25519.js';
export type { Ed25519KeyPair } from './ed25519.js';
export {
  generateP256KeyPair,
  importP256PrivateKey,
  signP256,
  verifyP256,
  P256_PUBLIC_KEY_BYTES,
  P256_SIGNATURE_BYTES,
} from './p256.js';
export type { P256KeyPair } from './p256.js';
export {
  generateX25519KeyPair,
  generateX25519KeyPairInto,
  x25519PublicKey,
  x25519,
  x25519Into,
  X25519_KEY_BYTES,
} from './x25519.js';
export {
  aeadEncrypt,
  aeadDecrypt,
  AeadAlgorithm,
  AEAD_KEY_BYTES,
  AEAD_NONCE_BYTES,
  AEAD_TAG_BYTES,
} from './aead.js';
export {
  xchacha20poly1305EncryptInto,
  xchacha20poly1305Decrypt,
  XCHACHA20POLY1305_KEY_BYTES,
  XCHACHA20POLY1305_NONCE_BYTES,
  XCHACHA20POLY1305_TAG_BYTES,
} from './xchacha20poly1305.js';
export { SecureArena, SecretBytes } from './secure-memory.js';
