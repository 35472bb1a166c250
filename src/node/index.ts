// The public API of `mandate/node`: services that join layers — identity provisioning on every
// core, the enrollment service and its clients, the live deny-set of a process.
export { provisionIdentities, IdentityProvisioner } from './provision.js';
export type { ProvisionOptions, ProvisionTarget, ProvisionerOptions } from './provision.js';
export {
  EnrollmentService,
  redeemTicketOverChannel,
  fetchCredentialOverChannel,
  ENROLLMENT_SERVICE_ADDRESS,
} from './enrollment-service.js';
export type {
  EnrollmentEvent,
  EnrollmentServiceOptions,
  RedeemTicketOptions,
  RedeemedTicket,
  FetchCredentialOptions,
  IssuedCredential,
} from './enrollment-service.js';
export { DenySetWatcher } from './deny-set-watcher.js';
export type { DenySetWatcherOptions } from './deny-set-watcher.js';
export { StoreBundleSource, DEFAULT_BUNDLE_POLL_MS } from './store-bundle-source.js';
export type { StoreBundleSourceOptions } from './store-bundle-source.js';
