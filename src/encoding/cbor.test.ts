import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorKind, isMandateError, type ErrorCode } from '../core/index.js';
import {
  CBOR_DEFAULT_MAX_BYTES,
  CBOR_DEFAULT_MAX_DEPTH,
  CborMap,
  decodeCbor,
  encodeCbor,
  type CborValue,
} from './cbor.js';
import { fromHex, toHex } from './hex.js';
import { expectCode, thrown } from '../../test/helpers/errors.js';

const MALFORMED: ErrorCode = 'ERR_CBOR_MALFORMED';
const UNENCODABLE: ErrorCode = 'ERR_CBOR_UNENCODABLE';

const bytes = (...b: number[]): Uint8Array => new Uint8Array(b);
const map = (...entries: [CborValue, CborValue][]): CborMap => new CborMap(entries);

// RFC 8949 Appendix A, every example in the subset this codec supports (integers, byte and text
// strings, definite arrays and maps, false/true/null). The hex is copied from the RFC's table.
const appendixA: ReadonlyArray<readonly [diagnostic: string, hex: string, value: CborValue]> = [
  ['0', '00', 0],
  ['1', '01', 1],
  ['10', '0a', 10],
  ['23', '17', 23],
  ['24', '1818', 24],
  ['25', '1819', 25],
  ['100', '1864', 100],
  ['1000', '1903e8', 1000],
  ['1000000', '1a000f4240', 1000000],
  ['1000000000000', '1b000000e8d4a51000', 1000000000000],
  ['18446744073709551615', '1bffffffffffffffff', 18446744073709551615n],
  ['-18446744073709551616', '3bffffffffffffffff', -18446744073709551616n],
  ['-1', '20', -1],
  ['-10', '29', -10],
  ['-100', '3863', -100],
  ['-1000', '3903e7', -1000],
  ['false', 'f4', false],
  ['true', 'f5', true],
  ['null', 'f6', null],
  ["h''", '40', bytes()],
  ["h'01020304'", '4401020304', bytes(1, 2, 3, 4)],
  ['""', '60', ''],
  ['"a"', '6161', 'a'],
  ['"IETF"', '6449455446', 'IETF'],
  ['"\\"\\\\"', '62225c', '"\\'],
  ['"\\u00fc"', '62c3bc', '\u00fc'],
  ['"\\u6c34"', '63e6b0b4', '\u6c34'],
  ['"\\ud800\\udd51"', '64f0908591', '\ud800\udd51'],
  ['[]', '80', []],
  ['[1, 2, 3]', '83010203', [1, 2, 3]],
  ['[1, [2, 3], [4, 5]]', '8301820203820405', [1, [2, 3], [4, 5]]],
  [
    '[1, 2, …, 25]',
    '98190102030405060708090a0b0c0d0e0f101112131415161718181819',
    Array.from({ length: 25 }, (_, i) => i + 1),
  ],
  ['{}', 'a0', map()],
  ['{1: 2, 3: 4}', 'a201020304', map([1, 2], [3, 4])],
  ['{"a": 1, "b": [2, 3]}', 'a26161016162820203', map(['a', 1], ['b', [2, 3]])],
  ['["a", {"b": "c"}]', '826161a161626163', ['a', map(['b', 'c'])]],
  [
    '{"a": "A", "b": "B", "c": "C", "d": "D", "e": "E"}',
    'a56161614161626142616361436164614461656145',
    map(['a', 'A'], ['b', 'B'], ['c', 'C'], ['d', 'D'], ['e', 'E']),
  ],
];

describe('RFC 8949 Appendix A', () => {
  it.each(appendixA)('%s ⇄ %s', (_diagnostic, hex, value) => {
    expect(toHex(encodeCbor(value))).toBe(hex);
    expect(decodeCbor(fromHex(hex))).toStrictEqual(value);
  });

  it('returns numbers below 2^53 and bigints from there on, so no integer loses precision', () => {
    expect(decodeCbor(fromHex('1b001fffffffffffff'))).toBe(Number.MAX_SAFE_INTEGER);
    expect(decodeCbor(fromHex('1b0020000000000000'))).toBe(2n ** 53n);
    expect(decodeCbor(fromHex('3b001ffffffffffffe'))).toBe(-Number.MAX_SAFE_INTEGER);
    expect(decodeCbor(fromHex('3b001fffffffffffff'))).toBe(-(2n ** 53n));
    // A bigint in the safe range is the same integer, so it takes the same bytes.
    expect(encodeCbor(5n)).toStrictEqual(encodeCbor(5));
  });
});

// Each of these is well-formed CBOR from RFC 8949 Appendix A (or a minimal variant) that signed
// data must never carry; the decoder refuses all of them with one code.
const rejected: ReadonlyArray<readonly [why: string, hex: string]> = [
  ['indefinite byte string', '5f42010243030405ff'],
  ['indefinite text string', '7f657374726561646d696e67ff'],
  ['indefinite empty array', '9fff'],
  ['indefinite array', '9f018202039f0405ffff'],
  ['indefinite array nested in definite', '83018202039f0405ff'],
  ['indefinite map', 'bf61610161629f0203ffff'],
  ['indefinite map nested', '826161bf61626163ff'],
  ['indefinite length on an integer', '1f'],
  ['lone break', 'ff'],
  ['non-shortest 23 in one byte', '1817'],
  ['non-shortest 23 in two bytes', '190017'],
  ['non-shortest 255 in two bytes', '1900ff'],
  ['non-shortest 65535 in four bytes', '1a0000ffff'],
  ['non-shortest 2^32-1 in eight bytes', '1b00000000ffffffff'],
  ['non-shortest negative', '3817'],
  ['non-shortest byte string length', '580161'],
  ['non-shortest text string length', '780161'],
  ['non-shortest array length', '980101'],
  ['non-shortest map length', 'b8010102'],
  ['reserved additional information 28', '1c'],
  ['reserved additional information 30 on a string', '7e'],
  ['tag 0 (date/time string)', 'c074323031332d30332d32315432303a30343a30305a'],
  ['tag 1 (epoch time)', 'c11a514b67b0'],
  ['tag 2 (bignum 2^64)', 'c249010000000000000000'],
  ['tag 3 (negative bignum)', 'c349010000000000000000'],
  ['tag 23', 'd74401020304'],
  ['tag 32 (URI)', 'd82076687474703a2f2f7777772e6578616d706c652e636f6d'],
  ['half float 0.0', 'f90000'],
  ['half float -0.0', 'f98000'],
  ['half float 1.0', 'f93c00'],
  ['half float Infinity', 'f97c00'],
  ['single float NaN', 'fa7fc00000'],
  ['double float 1.1', 'fb3ff199999999999a'],
  ['undefined', 'f7'],
  ['simple(16)', 'f0'],
  ['simple(255)', 'f8ff'],
  ['duplicate integer map key', 'a201010102'],
  ['duplicate text map key', 'a2616101616102'],
  ['duplicate key in a nested map', '81a2616101616102'],
  ['trailing byte after an integer', '0000'],
  ['trailing byte after an array', '8000'],
  ['empty input', ''],
  ['truncated 1-byte argument', '18'],
  ['truncated 2-byte argument', '1901'],
  ['truncated 4-byte argument', '1a000100'],
  ['truncated 8-byte argument', '1b00000001000000'],
  ['truncated byte string', '430102'],
  ['truncated text string', '6261'],
  ['truncated array', '8201'],
  ['truncated map value', 'a101'],
  ['invalid UTF-8: stray continuation byte', '6180'],
  ['invalid UTF-8: 0xff', '61ff'],
  ['invalid UTF-8: overlong "/"', '62c0af'],
  ['invalid UTF-8: encoded surrogate U+D800', '63eda080'],
  ['invalid UTF-8: beyond U+10FFFF', '64f4908080'],
  ['invalid UTF-8: truncated sequence', '62c328'],
  ['byte string length 2^64-1', '5bffffffffffffffff'],
  ['text string length 2^64-1', '7bffffffffffffffff'],
  ['array length 2^64-1', '9bffffffffffffffff'],
  ['map length 2^64-1', 'bbffffffffffffffff'],
  ['byte string length 2^32', '5b0000000100000000'],
  ['byte string length 2^32-1', '5affffffff'],
  ['array length 2^31-1', '9a7fffffff'],
  ['array length one more than remaining bytes', '830102'],
];

describe('decodeCbor rejects', () => {
  it.each(rejected)('%s (%s)', (_why, hex) => {
    const error = thrown(() => decodeCbor(fromHex(hex)));
    expect(isMandateError(error, MALFORMED), String(error)).toBe(true);
    if (isMandateError(error)) expect(error.kind).toBe(ErrorKind.invalid);
  });

  it('a text string starting with U+FEFF keeps it: a BOM is content, not a marker', () => {
    // Regression: a TextDecoder without ignoreBOM dropped a leading U+FEFF, so two byte strings
    // decoded to the same value and a re-encoding no longer matched what was signed.
    expect(decodeCbor(fromHex('64efbbbf61'))).toBe('\ufeffa');
    expect(toHex(encodeCbor(decodeCbor(fromHex('64efbbbf61'))))).toBe('64efbbbf61');
  });

  it('nesting beyond the default depth', () => {
    const nested = (depth: number): Uint8Array => fromHex('81'.repeat(depth) + '00');
    expect(decodeCbor(nested(CBOR_DEFAULT_MAX_DEPTH))).toBeDefined();
    expectCode(() => decodeCbor(nested(CBOR_DEFAULT_MAX_DEPTH + 1)), MALFORMED);
    // Maps count as a level too.
    expectCode(
      () => decodeCbor(fromHex('a101'.repeat(CBOR_DEFAULT_MAX_DEPTH + 1) + '00')),
      MALFORMED,
    );
  });

  it('nesting beyond maxDepth when one is given', () => {
    expect(decodeCbor(fromHex('818101'), { maxDepth: 2 })).toStrictEqual([[1]]);
    expectCode(() => decodeCbor(fromHex('81818101'), { maxDepth: 2 }), MALFORMED);
    expect(decodeCbor(fromHex('01'), { maxDepth: 0 })).toBe(1);
    expectCode(() => decodeCbor(fromHex('80'), { maxDepth: 0 }), MALFORMED);
    expectCode(() => decodeCbor(fromHex('a0'), { maxDepth: 0 }), MALFORMED);
    // A deep input against a deep limit: the limit, not the call stack, decides.
    const deep = fromHex('81'.repeat(200) + '00');
    expect(decodeCbor(deep, { maxDepth: 200 })).toBeDefined();
    expectCode(() => decodeCbor(deep, { maxDepth: 199 }), MALFORMED);
  });

  it('input over maxBytes, before reading any of it', () => {
    const eleven = encodeCbor(bytes(...Array<number>(10).fill(7)));
    expect(eleven.byteLength).toBe(11);
    expect(decodeCbor(eleven, { maxBytes: 11 })).toBeInstanceOf(Uint8Array);
    expectCode(() => decodeCbor(eleven, { maxBytes: 10 }), MALFORMED);
    const atLimit = encodeCbor(new Uint8Array(CBOR_DEFAULT_MAX_BYTES - 5));
    expect(atLimit.byteLength).toBe(CBOR_DEFAULT_MAX_BYTES);
    expect(decodeCbor(atLimit)).toBeInstanceOf(Uint8Array);
    expectCode(() => decodeCbor(encodeCbor(new Uint8Array(CBOR_DEFAULT_MAX_BYTES - 4))), MALFORMED);
  });

  it('with the caller’s error code and subject when given', () => {
    const error = thrown(() =>
      decodeCbor(fromHex('f7'), { errorCode: 'ERR_TEST_CUSTOM', what: 'change record' }),
    );
    expect(isMandateError(error, 'ERR_TEST_CUSTOM')).toBe(true);
    expect(String(error)).toContain('change record');
  });
});

describe('encodeCbor', () => {
  it.each([
    ['a fraction', 1.5],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['an unsafe integer', 2 ** 53],
    ['a bigint above 2^64-1', 2n ** 64n],
    ['a bigint below -2^64', -(2n ** 64n) - 1n],
    ['a lone high surrogate', 'a\ud800'],
    ['a lone low surrogate', '\udc00b'],
    ['duplicate map keys', map([1, 'x'], [1, 'y'])],
    ['duplicate map keys written differently', map([1n, 'x'], [1, 'y'])],
  ] as const)('refuses %s', (_what, value: CborValue) => {
    expectCode(() => encodeCbor(value), UNENCODABLE);
  });

  it('refuses exactly the nesting the default decoder refuses', () => {
    // Regression: the encoder counted depth on leaves, not containers, so it wrote an empty
    // array 17 levels deep that its own decoder then rejected.
    const nest = (depth: number, inner: CborValue): CborValue => {
      let v = inner;
      for (let i = 0; i < depth; i++) v = [v];
      return v;
    };
    for (const inner of [0, [] as CborValue[], map()]) {
      const deepest = nest(CBOR_DEFAULT_MAX_DEPTH - (typeof inner === 'number' ? 0 : 1), inner);
      expect(decodeCbor(encodeCbor(deepest))).toStrictEqual(deepest);
      expectCode(() => encodeCbor([deepest]), UNENCODABLE);
    }
  });

  it('grows its buffer for large values', () => {
    const big = new Uint8Array(300_000).map((_, i) => i & 0xff);
    const encoded = encodeCbor([big, 'x'.repeat(70_000)]);
    expect(encoded.byteLength).toBe(1 + 5 + big.byteLength + 5 + 70_000);
    expect(decodeCbor(encoded)).toStrictEqual([big, 'x'.repeat(70_000)]);
  });
});

// --- properties -------------------------------------------------------------------------------

// Integers take their canonical decoded form: a number in the safe range, a bigint outside it,
// so that decode(encode(x)) can be compared with toStrictEqual.
const integer: fc.Arbitrary<CborValue> = fc.oneof(
  fc.integer({ min: -70_000, max: 70_000 }),
  fc.constantFrom(23, 24, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER),
  fc.constantFrom(
    -24,
    -25,
    -256,
    -257,
    -65_536,
    -65_537,
    -(2 ** 32),
    -(2 ** 32) - 1,
    -Number.MAX_SAFE_INTEGER,
  ),
  fc.integer({ min: -Number.MAX_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }),
  fc.bigInt({ min: 2n ** 53n, max: 2n ** 64n - 1n }),
  fc.bigInt({ min: -(2n ** 64n), max: -(2n ** 53n) }),
);

const scalar: fc.Arbitrary<CborValue> = fc.oneof(
  integer,
  fc.uint8Array({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.string({ maxLength: 8 }),
  fc.constantFrom(false, true, null, '\ufeff', '\ufeffbom'),
);

const { value: cborValue } = fc.letrec<{ value: CborValue; array: CborValue[]; map: CborMap }>(
  (tie) => ({
    value: fc.oneof({ maxDepth: 6, depthIdentifier: 'cbor' }, scalar, tie('array'), tie('map')),
    array: fc.array(tie('value'), { maxLength: 5, depthIdentifier: 'cbor' }),
    map: fc
      .uniqueArray(fc.tuple(tie('value'), tie('value')), {
        maxLength: 5,
        depthIdentifier: 'cbor',
        // Keys are unique by encoding, the rule both the encoder and the decoder apply.
        selector: ([key]) => toHex(encodeCbor(key)),
      })
      .map((entries) => new CborMap(entries)),
  }),
);

/** Decoding either succeeds or throws ERR_CBOR_MALFORMED; never a RangeError, TypeError, … */
function decodeOrMalformed(
  input: Uint8Array,
): { readonly ok: true; readonly value: CborValue } | { readonly ok: false } {
  try {
    return { ok: true, value: decodeCbor(input) };
  } catch (error) {
    if (!isMandateError(error, MALFORMED)) throw error;
    return { ok: false };
  }
}

describe('properties', () => {
  it('decode(encode(x)) equals x', () => {
    fc.assert(
      fc.property(cborValue, (value) => {
        expect(decodeCbor(encodeCbor(value))).toStrictEqual(value);
      }),
      { numRuns: 500 },
    );
  });

  it('decode then encode gives back the same bytes', () => {
    fc.assert(
      fc.property(cborValue, (value) => {
        const encoded = encodeCbor(value);
        expect(toHex(encodeCbor(decodeCbor(encoded)))).toBe(toHex(encoded));
      }),
      { numRuns: 300 },
    );
  });

  it('arbitrary bytes: decode throws nothing but ERR_CBOR_MALFORMED, and what it accepts is canonical', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (input) => {
        const result = decodeOrMalformed(input);
        // The decoder accepts only shortest, definite encodings, so whatever it accepts must be
        // the one encoding of its value: signed bytes and their re-encoding never differ.
        if (result.ok) expect(toHex(encodeCbor(result.value))).toBe(toHex(input));
      }),
      { numRuns: 5_000 },
    );
  });

  it('mutated valid encodings: byte flips, truncations and insertions are rejected or canonical', () => {
    const mutation = fc.oneof(
      fc.record({
        kind: fc.constant('flip' as const),
        at: fc.nat(),
        xor: fc.integer({ min: 1, max: 255 }),
      }),
      fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
      fc.record({
        kind: fc.constant('insert' as const),
        at: fc.nat(),
        byte: fc.integer({ min: 0, max: 255 }),
      }),
    );
    fc.assert(
      fc.property(
        cborValue,
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        (value, mutations) => {
          let input = encodeCbor(value);
          for (const m of mutations) {
            const at = m.at % (input.byteLength + 1);
            if (m.kind === 'flip' && at < input.byteLength) {
              input = input.slice();
              input[at] = input[at]! ^ m.xor;
            } else if (m.kind === 'truncate') {
              input = input.slice(0, at);
            } else if (m.kind === 'insert') {
              input = Uint8Array.of(...input.subarray(0, at), m.byte, ...input.subarray(at));
            }
          }
          const result = decodeOrMalformed(input);
          if (result.ok) expect(toHex(encodeCbor(result.value))).toBe(toHex(input));
        },
      ),
      { numRuns: 2_000 },
    );
  });
});
