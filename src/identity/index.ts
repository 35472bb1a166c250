export {
  parseIdentifier,
  isIdentifier,
  Purpose,
  DataType,
  MAX_CHANGE_HISTORY_BYTES,
  MAX_CHANGES,
} from './model.js';
export type { Identifier, Change, PublicSigningKey } from './model.js';
export { VerifiedIdentity } from './verified-identity.js';
export type { IdentitySummary } from './verified-identity.js';
export { verifyChangeHistory } from './verify-change-history.js';
export type { VerifyChangeHistoryOptions } from './verify-change-history.js';
export { createIdentity, rotateIdentity, DEFAULT_IDENTITY_TTL_SECONDS } from './create-identity.js';
export type {
  CreateIdentityOptions,
  CreatedIdentity,
  RotateIdentityOptions,
  RotatedIdentity,
} from './create-identity.js';
export {
  attestPurposeKey,
  verifyPurposeKeyAttestation,
  decodePurposeKeyAttestation,
  describePurposeKey,
  VerifiedPurposeKey,
  DEFAULT_PURPOSE_KEY_TTL_SECONDS,
  DEFAULT_ROTATION_GRACE_SECONDS,
  MAX_CLOCK_SKEW_SECONDS,
} from './purpose-keys.js';
export type {
  DecodedPurposeKeyAttestation,
  PurposePublicKey,
  AttestPurposeKeyOptions,
  VerifyPurposeKeyOptions,
} from './purpose-keys.js';
export { compareHistories, HistoryRelation, newerHistory } from './compare-histories.js';
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
