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
export { PostgresRoleProvider } from './postgres.js';
export type {
  PostgresRoleProviderOptions,
  RoleGrant,
  RoleTemplate,
  SequencePrivilege,
  TablePrivilege,
} from './postgres.js';
