// The public API of `mandate/broker` (gate 3, DESIGN.md §2 layer 8): the sealed secret store,
// leases and their providers (token exchange, dynamic PostgreSQL roles, injection). The broker's
// services over secure channels and HTTP live in `node`.
export { LeaseKind, LeaseState } from './types.js';
export type {
  IssuedLease,
  JwtLeaseValue,
  Lease,
  LeaseAuditSink,
  LeaseContext,
  LeaseProvider,
  PostgresLeaseValue,
  SecretInfo,
  SecretReader,
} from './types.js';
export { SecretStore, checkSecretName, sealedSecretAad, MAX_SECRET_BYTES } from './secret-store.js';
export type { SecretRepository, SealedSecretRecord, SecretStoreOptions } from './secret-store.js';
export {
  Broker,
  checkLeaseId,
  checkLeaseRequest,
  newLeaseId,
  DEFAULT_LEASE_LIMITS,
  DEFAULT_KIND_LIMITS,
  DEFAULT_LEASE_TTL_SECONDS,
} from './broker.js';
export type {
  BrokerOptions,
  CheckedLeaseRequest,
  GrantedLease,
  LeaseDecider,
  LeaseLimits,
  LeaseRepository,
  LeaseRequest,
  RenewedLease,
} from './broker.js';
export {
  JwtLeaseProvider,
  MAX_JWT_AUDIENCE_CHARS,
  MAX_JWT_SCOPE_VALUES,
  MAX_JWT_SCOPE_VALUE_CHARS,
  actorClaimOf,
  checkJwtAudience,
  checkJwtScope,
  publicJwkOf,
} from './jwt.js';
export type {
  ActorClaim,
  Jwks,
  JwtLeaseClaims,
  JwtLeaseProviderOptions,
  PublicJwk,
  RevokedJti,
} from './jwt.js';
export {
  CHAIN_PROOF_TOKEN_TYPE,
  CHAIN_PROOF_JWS_TYPE,
  ChainProofAlg,
  DEFAULT_EXCHANGE_PROOF_TTL_SECONDS,
  MAX_EXCHANGE_PROOF_CHARS,
  MAX_EXCHANGE_PROOF_TTL_SECONDS,
  MemoryProofNonceStore,
  parseScopeText,
  signExchangeProof,
  verifyExchangeProof,
} from './exchange-proof.js';
export type {
  ExchangeProofRequest,
  ExchangeProofToSign,
  ProofNonceStore,
  VerifiedExchangeProof,
  VerifyExchangeProofOptions,
} from './exchange-proof.js';
export {
  bindingMatches,
  checkProxyRequest,
  MAX_PROXY_HEADER_BYTES,
  MAX_PROXY_HEADERS,
  MAX_PROXY_PATH_CHARS,
  MIN_INJECTED_SECRET_BYTES,
  parseInjectionBinding,
  ProxyLeaseProvider,
  rewriteRequest,
  SCRUB_MARKER,
  Scrubber,
  ScrubStream,
  secretForms,
} from './injection.js';
export type {
  ActiveInjection,
  Injection,
  InjectionBinding,
  InjectionBindingConfig,
  InjectionScheme,
  ProxyLeaseProviderOptions,
  ProxyLeaseValue,
  ProxyRequest,
  RewrittenRequest,
  UpstreamRequest,
} from './injection.js';
export { PostgresRoleProvider } from './postgres.js';
export type {
  PostgresRoleProviderOptions,
  RoleGrant,
  RoleTemplate,
  SequencePrivilege,
  TablePrivilege,
} from './postgres.js';
