// The public API of `mandate/identity`: the `Identities` service, verification of change
// histories and purpose-key attestations, and the repository interface stores implement.
// What the layers above share but users do not need is in ./internal.ts (not exported by the
// package).
export { parseIdentifier, isIdentifier, Purpose } from './model.js';
export type { Identifier, Change, PublicSigningKey } from './model.js';
export { VerifiedIdentity } from './verified-identity.js';
export type { IdentitySummary } from './verified-identity.js';
export { verifyChangeHistory } from './verify-change-history.js';
export type { VerifyChangeHistoryOptions } from './verify-change-history.js';
export { verifyPurposeKeyAttestation, VerifiedPurposeKey } from './purpose-keys.js';
export type { PurposePublicKey, VerifyPurposeKeyOptions } from './purpose-keys.js';
export { Identities } from './identities.js';
export type {
  IdentitiesOptions,
  CreateLocalIdentityOptions,
  LocalIdentity,
  KnownIdentity,
  IdentityVault,
} from './identities.js';
export type { IdentityRepository, StoredIdentity, StoredPurposeKey } from './repository.js';
export { MemoryIdentityRepository } from './memory-identity-repository.js';
