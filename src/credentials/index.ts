// The public API of `mandate/credentials`: issuing and verifying credentials, delegation chains
// and decisions, deny-sets, trust anchors, the enrollment authority, and the repository
// interfaces stores implement. What the layers above share but users do not need is in
// ./internal.ts (not exported by the package).
export {
  issueCredential,
  verifyCredential,
  decodeCredential,
  credentialRevocationId,
  VerifiedCredential,
} from './credential.js';
export type {
  CredentialIssuer,
  IssueCredentialOptions,
  VerifyCredentialOptions,
  CredentialAttributes,
  DecodedCredential,
} from './credential.js';
export type { RevocationId } from './revocation-id.js';
export type { CredentialKeyVault } from './credential-key.js';
export {
  parseConstraint,
  formatConstraint,
  constraintsFromAttributes,
  constraintsToAttributes,
  RELAY_ATTRIBUTE,
} from './constraints.js';
export type { Constraint, Constraints, AuthorizationRequest } from './constraints.js';
export { DenySet, DenyEntryKind, MemoryDenySetRepository } from './deny-set.js';
export type {
  DenyEntry,
  DenySetUpdate,
  DenySetSnapshot,
  DenySetRepository,
  DenySetOptions,
} from './deny-set.js';
export {
  verifyChain,
  delegate,
  authorize,
  chainFromCredential,
  VerifiedChain,
} from './delegation.js';
export type {
  VerifiedLink,
  VerifyChainOptions,
  DelegateOptions,
  Decision,
  ChainStep,
} from './delegation.js';
export { decodeChain } from './chain-codec.js';
export type { DecodedChain, DecodedLink } from './chain-codec.js';
export { ChainVerifier } from './chain-verifier.js';
export type { ChainVerifierOptions } from './chain-verifier.js';
export {
  identityScope,
  MemoryTrustAnchorRepository,
  parseTrustScope,
  TRUST_SCOPE_ALL,
  trustedIdentifiers,
} from './trust-anchors.js';
export type { TrustAnchor, TrustAnchorRepository, TrustScope } from './trust-anchors.js';
export { Authority } from './authority.js';
export type {
  AuthorityPolicy,
  AuthorityOptions,
  CreateTicketOptions,
  RedeemRequest,
  Enrollment,
} from './authority.js';
export {
  parseEnrollmentTicket,
  formatEnrollmentTicket,
  EnrollmentTicket,
} from './enrollment-ticket.js';
export type { EnrollmentTicketFields } from './enrollment-ticket.js';
export { MemoryAuthorityRepository } from './authority-repository.js';
export type { AuthorityRepository, Member, StoredTicket } from './authority-repository.js';
