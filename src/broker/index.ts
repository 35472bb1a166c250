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
