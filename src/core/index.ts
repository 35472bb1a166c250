// The public API of `mandate/core`: the error type every layer throws, and the clock and logger
// every service takes. Helpers the other layers share (error shorthands, time checks, backoff)
// are in ./internal.ts, which the package does not export.
export { ErrorKind, MandateError, isMandateError } from './errors.js';
export type { ErrorCode } from './errors.js';
export { systemClock, ManualClock } from './clock.js';
export type { Clock } from './clock.js';
export type { Logger, LogFields } from './logger.js';
