import { expect } from 'vitest';
import { isMandateError, type ErrorCode } from '../../src/core/index.js';

/** The code of the MandateError `fn` throws, or `accepted`; anything else is rethrown. */
export function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (isMandateError(error)) return error.code;
    throw error;
  }
  return 'accepted';
}

/** Asserts that `fn` throws a MandateError with exactly this code. */
export function expectCode(fn: () => unknown, code: ErrorCode): void {
  expect(codeOf(fn)).toBe(code);
}

/** Whatever `fn` throws; fails the test if it returns. */
export function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}
