import { invalid } from '../core/internal.js';
import type { ErrorCode } from '../core/index.js';
import { CborMap, type CborValue } from './cbor.js';

/**
 * Typed accessors for decoded CBOR: each throws `invalid(code, ...)` naming the field, so a
 * structure's parser reads as a list of expectations and never `as`-casts untrusted data.
 */
export function expectArray(
  v: CborValue,
  code: ErrorCode,
  what: string,
  min: number,
  max: number,
): CborValue[] {
  if (!Array.isArray(v)) throw invalid(code, `${what} must be an array`);
  if (v.length < min || v.length > max) {
    throw invalid(
      code,
      `${what} must have ${min === max ? min : `${min} to ${max}`} items, found ${v.length}`,
    );
  }
  return v;
}

export function expectBytes(
  v: CborValue | undefined,
  code: ErrorCode,
  what: string,
  length?: number,
): Uint8Array {
  if (!(v instanceof Uint8Array)) throw invalid(code, `${what} must be a byte string`);
  if (length !== undefined && v.length !== length) {
    throw invalid(code, `${what} must be ${length} bytes, found ${v.length}`);
  }
  return v;
}

export function expectUint(
  v: CborValue | undefined,
  code: ErrorCode,
  what: string,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) {
    throw invalid(code, `${what} must be an unsigned integer at most ${max}`);
  }
  return v;
}

export function expectBool(v: CborValue | undefined, code: ErrorCode, what: string): boolean {
  if (typeof v !== 'boolean') throw invalid(code, `${what} must be a boolean`);
  return v;
}

export function expectMap(v: CborValue | undefined, code: ErrorCode, what: string): CborMap {
  if (!(v instanceof CborMap)) throw invalid(code, `${what} must be a map`);
  return v;
}

/** minicbor's enum convention: `[variant_index, [fields…]]`. */
export function expectVariant(
  v: CborValue | undefined,
  code: ErrorCode,
  what: string,
): { readonly variant: number; readonly fields: CborValue[] } {
  if (v === undefined) throw invalid(code, `${what} is missing`);
  const outer = expectArray(v, code, what, 2, 2);
  const variant = expectUint(outer[0], code, `${what} variant`, 0xffff);
  const fields = outer[1];
  if (!Array.isArray(fields)) throw invalid(code, `${what} fields must be an array`);
  return { variant, fields };
}
