export {
  issueCredential,
  verifyCredential,
  decodeCredential,
  credentialRevocationId,
  VerifiedCredential,
  DEFAULT_CREDENTIAL_TTL_SECONDS,
  MAX_CREDENTIAL_TTL_SECONDS,
} from './credential.js';
export type {
  CredentialIssuer,
  IssueCredentialOptions,
  VerifyCredentialOptions,
  CredentialAttributes,
  DecodedCredential,
} from './credential.js';
export { revocationIdOf } from './revocation-id.js';
export type { RevocationId } from './revocation-id.js';
export {
  parseConstraint,
  encodeConstraintValue,
  decodeConstraintValue,
  formatConstraint,
  checkNarrower,
  checkConstraintsNarrower,
  checkRequest,
  constraintsFromAttributes,
  constraintsToAttributes,
  RELAY_ATTRIBUTE,
} from './constraints.js';
export type {
  Constraint,
  Constraints,
  AuthorizationRequest,
  ConstraintCheck,
} from './constraints.js';
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
  describeChain,
  chainFromCredential,
  VerifiedChain,
  RESERVED_PREFIX,
  DEFAULT_MAX_DEPTH,
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
  checkTrustAnchor,
  identityScope,
  MemoryTrustAnchorRepository,
  parseTrustScope,
  TRUST_SCOPE_ALL,
  trustedIdentifiers,
} from './trust-anchors.js';
export type { TrustAnchor, TrustAnchorRepository, TrustScope } from './trust-anchors.js';
export {
  Authority,
  DEFAULT_TICKET_TTL_SECONDS,
  MAX_TICKET_TTL_SECONDS,
  MAX_TICKET_USES,
} from './authority.js';
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
  ENROLLMENT_TICKET_PREFIX,
} from './enrollment-ticket.js';
export type { EnrollmentTicketFields } from './enrollment-ticket.js';
export { MemoryAuthorityRepository } from './authority-repository.js';
export type { AuthorityRepository, Member, StoredTicket } from './authority-repository.js';
