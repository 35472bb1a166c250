// Shared by the layers above, not part of the package's API (package.json does not export this
// file): see docs/architecture.md, "Public API and internal barrels".
export {
  invalid,
  conflict,
  notFound,
  unsupported,
  internal,
  unauthorized,
  forbidden,
  exhausted,
  timeout,
  unavailable,
} from './errors.js';
export { isUnixSeconds, checkUnixSeconds } from './time.js';
export { silentLogger } from './logger.js';
export { SerialScope } from './serial-scope.js';
export { MAX_TIMER_MS, withJitter } from './backoff.js';
export { percentile } from './stats.js';
export { startSiblingWorker } from './worker.js';
