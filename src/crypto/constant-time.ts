import { asBuffer, sodium } from './sodium.js';

/** Compares secrets without leaking where they differ; unequal lengths are simply unequal. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  if (a.byteLength === 0) return true;
  return sodium.sodium_memcmp(asBuffer(a), asBuffer(b));
}

/** Overwrites a buffer with zeros in a way the compiler cannot elide. */
export function wipe(bytes: Uint8Array): void {
  sodium.sodium_memzero(asBuffer(bytes));
}
