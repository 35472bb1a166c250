// Shared with the CLI, not part of the package's API (package.json does not export this file):
// see docs/architecture.md, "Public API and internal barrels".
export {
  openHome,
  credentialIssuerOf,
  LIVE_DENY_SET_STALENESS_SECONDS,
  PASSPHRASE_ENV,
} from './home.js';
export type { Home } from './home.js';
export {
  API,
  ECHO,
  connectRoute,
  homeChannelOptions,
  listenTcp,
  parseDialRoute,
  toListener,
  untilSignal,
  watchSignals,
} from './node-runtime.js';
export { brokerIssuerOf } from './broker-node.js';
export { DEFAULT_AUTHORITY, homeAuditOrigin, homeLogKey } from './home-audit.js';
export type { CallOutcome, EnforcementPoint } from './enforcement-point.js';
export { openHomeEnforcementPoint } from './enforcement-point.js';
export {
  assertHomeNotServed,
  assertNoEnforcementLock,
  lockEnforcement,
  lockNodeHome,
  lockDemo,
  registerServiceNode,
} from './home-lock.js';
export type { HomeLock } from './home-lock.js';
export {
  assertAdminIdentities,
  builtDashboardDir,
  dashboardLoginUrl,
  startHomeAdmin,
} from './admin-node.js';
export type { HomeAdmin } from './admin-node.js';
export { readRegularFile } from './regular-file.js';
export type { RegularFileRead } from './regular-file.js';
