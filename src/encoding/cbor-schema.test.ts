import { describe, expect, it } from 'vitest';
import { isMandateError, type ErrorCode } from '../core/index.js';
import { CborMap, decodeCbor, type CborValue } from './cbor.js';
import {
  expectArray,
  expectBool,
  expectBytes,
  expectMap,
  expectUint,
  expectVariant,
} from './cbor-schema.js';
import { fromHex } from './hex.js';

const CODE: ErrorCode = 'ERR_TEST_SCHEMA';

function schemaError(f: () => unknown): string {
  try {
    f();
  } catch (error) {
    expect(isMandateError(error, CODE), String(error)).toBe(true);
    return String(error);
  }
  throw new Error('expected a throw');
}

describe('cbor-schema', () => {
  it('expectArray checks the type and the item count, naming the field', () => {
    expect(expectArray([1, 2], CODE, 'change', 1, 2)).toStrictEqual([1, 2]);
    expect(schemaError(() => expectArray('x', CODE, 'change', 0, 1))).toContain(
      'change must be an array',
    );
    expect(schemaError(() => expectArray([], CODE, 'change', 1, 2))).toContain(
      '1 to 2 items, found 0',
    );
    expect(schemaError(() => expectArray([1, 2, 3], CODE, 'change', 2, 2))).toContain(
      '2 items, found 3',
    );
  });

  it('expectBytes checks the type and an optional exact length', () => {
    const key = new Uint8Array(32);
    expect(expectBytes(key, CODE, 'key', 32)).toBe(key);
    expect(expectBytes(new Uint8Array(3), CODE, 'blob')).toHaveLength(3);
    expect(schemaError(() => expectBytes(key, CODE, 'key', 33))).toContain(
      'key must be 33 bytes, found 32',
    );
    expect(schemaError(() => expectBytes('00', CODE, 'key'))).toContain(
      'key must be a byte string',
    );
    expect(schemaError(() => expectBytes(undefined, CODE, 'key'))).toContain('key');
  });

  it('expectUint takes safe non-negative integers up to a maximum', () => {
    expect(expectUint(0, CODE, 'n')).toBe(0);
    expect(expectUint(Number.MAX_SAFE_INTEGER, CODE, 'n')).toBe(Number.MAX_SAFE_INTEGER);
    expect(expectUint(255, CODE, 'n', 255)).toBe(255);
    for (const bad of [-1, 256, 1n, 2n ** 64n - 1n, '1', null, undefined] satisfies (
      CborValue | undefined
    )[]) {
      expect(schemaError(() => expectUint(bad, CODE, 'version', 255))).toContain(
        'version must be an unsigned integer at most 255',
      );
    }
  });

  it('expectBool and expectMap accept only their type', () => {
    expect(expectBool(false, CODE, 'flag')).toBe(false);
    expect(schemaError(() => expectBool(0, CODE, 'flag'))).toContain('flag must be a boolean');
    const m = new CborMap([[1, 2]]);
    expect(expectMap(m, CODE, 'attrs')).toBe(m);
    expect(schemaError(() => expectMap([[1, 2]], CODE, 'attrs'))).toContain('attrs must be a map');
  });

  it('expectVariant reads minicbor’s [index, [fields…]] enum form', () => {
    // [1, [h'00', true]] as minicbor writes an enum variant with two fields.
    expect(expectVariant(decodeCbor(fromHex('8201824100f5')), CODE, 'change')).toStrictEqual({
      variant: 1,
      fields: [new Uint8Array([0]), true],
    });
    expect(schemaError(() => expectVariant(undefined, CODE, 'change'))).toContain(
      'change is missing',
    );
    expect(schemaError(() => expectVariant([1], CODE, 'change'))).toContain(
      'change must have 2 items',
    );
    expect(schemaError(() => expectVariant([0x10000, []], CODE, 'change'))).toContain(
      'change variant',
    );
    expect(schemaError(() => expectVariant([1, 'x'], CODE, 'change'))).toContain(
      'change fields must be an array',
    );
  });
});
