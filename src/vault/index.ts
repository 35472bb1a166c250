export { SigningKeyType } from './types.js';
export type {
  SigningKeyHandle,
  SigningVault,
  X25519KeyHandle,
  SecretHandle,
  SecureChannelVault,
  SealedKeyRecord,
  SealedKeyRepository,
} from './types.js';
