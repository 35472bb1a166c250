export { provisionIdentities, IdentityProvisioner } from './provision.js';
export type { ProvisionOptions, ProvisionTarget, ProvisionerOptions } from './provision.js';
export {
  EnrollmentService,
  redeemTicketOverChannel,
  fetchCredentialOverChannel,
  ENROLLMENT_SERVICE_ADDRESS,
  DEFAULT_ENROLLMENT_TIMEOUT_MS,
} from './enrollment-service.js';
export type {
  EnrollmentEvent,
  EnrollmentServiceOptions,
  RedeemTicketOptions,
  RedeemedTicket,
  FetchCredentialOptions,
  IssuedCredential,
} from './enrollment-service.js';
export { DenySetWatcher, DEFAULT_DENY_SET_POLL_MS } from './deny-set-watcher.js';
export type { DenySetWatcherOptions } from './deny-set-watcher.js';
