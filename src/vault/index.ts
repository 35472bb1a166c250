export { KekSource, SigningKeyType } from './types.js';
export type {
  KekVerifierRecord,
  KekVerifierRepository,
  SigningKeyHandle,
  SigningVault,
  X25519KeyHandle,
  SecretHandle,
  SecureChannelVault,
  SealedKeyRecord,
  SealedKeyRepository,
} from './types.js';
export { MemoryVault } from './memory-vault.js';
export type { MemoryVaultOptions } from './memory-vault.js';
export { SoftwareVault } from './software-vault.js';
export type { SoftwareVaultOptions } from './software-vault.js';
export { InMemorySealedKeyRepository } from './in-memory-sealed-key-repository.js';
export {
  loadOrCreateKeyFile,
  loadOrCreateSaltFile,
  deriveKekFromPassphrase,
} from './key-encryption-key.js';
export type { KekOptions } from './key-encryption-key.js';
export { openKek } from './open-kek.js';
export type { OpenKekOptions } from './open-kek.js';
// The guarded-memory types of this layer's signatures (a KEK is a SecretBytes; vaults may share
// a SecureArena), re-exported because `mandate/crypto` is not part of the package's API.
export { SecretBytes, SecureArena } from '../crypto/index.js';
