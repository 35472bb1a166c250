export {
  ErrorKind,
  MandateError,
  isMandateError,
  invalid,
  conflict,
  notFound,
  unsupported,
  internal,
} from './errors.js';
export type { ErrorCode } from './errors.js';
export { systemClock, ManualClock } from './clock.js';
export { isUnixSeconds, checkUnixSeconds } from './time.js';
export type { Clock } from './clock.js';
export { silentLogger } from './logger.js';
export type { Logger, LogFields } from './logger.js';
export { SerialScope } from './serial-scope.js';
export { withJitter } from './backoff.js';
