export { provisionIdentities, IdentityProvisioner } from './provision.js';
export type { ProvisionOptions, ProvisionTarget, ProvisionerOptions } from './provision.js';
