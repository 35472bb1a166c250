import { invalid } from './errors.js';

/**
 * Is `value` a time a check may compare against: unix seconds as a safe, non-negative integer?
 * NaN compares false against every bound, ±Infinity and fractions pass bounds they should not,
 * and a missing clock (`undefined`) is NaN in arithmetic, so every time comparison on a
 * verification path asks this first and fails closed when the answer is no.
 */
export function isUnixSeconds(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** `value` when it is unix seconds (see isUnixSeconds); ERR_ARGUMENT_INVALID naming `name` when not. */
export function checkUnixSeconds(value: unknown, name = 'nowSeconds'): number {
  if (!isUnixSeconds(value))
    throw invalid('ERR_ARGUMENT_INVALID', `\`${name}\` must be a non-negative integer`);
  return value;
}
