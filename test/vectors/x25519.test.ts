import { describe, expect, it } from 'vitest';
import { list, readVectorJson, record, text } from '../helpers/vectors.js';
import { isMandateError } from '../../src/core/index.js';
import { x25519, x25519Into } from '../../src/crypto/index.js';
import { fromHex, toHex } from '../../src/encoding/index.js';

const Result = { valid: 'valid', acceptable: 'acceptable', invalid: 'invalid' } as const;
type Result = (typeof Result)[keyof typeof Result];
const isResult = (value: string): value is Result => Object.values<string>(Result).includes(value);

interface XdhTest {
  readonly tcId: number;
  readonly comment: string;
  readonly flags: readonly string[];
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
  readonly shared: Uint8Array;
  readonly result: Result;
}

// C2SP/wycheproof testvectors_v1/x25519_test.json; provenance in test/vectors/data/README.md.
function loadWycheproof(): { readonly declared: number; readonly tests: XdhTest[] } {
  const file = record(readVectorJson('ed25519/wycheproof-x25519_test.json'), 'file');
  const tests: XdhTest[] = [];
  for (const rawGroup of list(file.testGroups, 'testGroups')) {
    const group = record(rawGroup, 'group');
    if (group.curve !== 'curve25519') throw new Error('expected curve25519 groups only');
    for (const rawTest of list(group.tests, 'tests')) {
      const t = record(rawTest, 'test');
      const result = text(t.result, 'result');
      if (!isResult(result)) throw new Error(`unknown result ${result}`);
      if (typeof t.tcId !== 'number') throw new Error('tcId must be a number');
      tests.push({
        tcId: t.tcId,
        comment: text(t.comment, 'comment'),
        flags: list(t.flags, 'flags').map((f) => text(f, 'flag')),
        privateKey: fromHex(text(t.private, 'private')),
        publicKey: fromHex(text(t.public, 'public')),
        shared: fromHex(text(t.shared, 'shared')),
        result,
      });
    }
  }
  if (typeof file.numberOfTests !== 'number') throw new Error('numberOfTests must be a number');
  return { declared: file.numberOfTests, tests };
}

const { declared, tests } = loadWycheproof();
const isZero = (bytes: Uint8Array): boolean => bytes.every((b) => b === 0);
const named = (subset: XdhTest[]): (readonly [string, XdhTest])[] =>
  subset.map((t) => [`tcId ${t.tcId} [${t.flags.join(',')}] ${t.comment}`, t] as const);

function outcome(t: XdhTest): { readonly shared: string } | { readonly code: string } {
  try {
    return { shared: toHex(x25519(t.privateKey, t.publicKey)) };
  } catch (error) {
    if (!isMandateError(error)) throw error;
    return { code: error.code };
  }
}

const valid = tests.filter((t) => t.result === Result.valid);
const acceptableZero = tests.filter((t) => t.result === Result.acceptable && isZero(t.shared));
const acceptableOther = tests.filter((t) => t.result === Result.acceptable && !isZero(t.shared));
const invalid = tests.filter((t) => t.result === Result.invalid);

/*
 * What libsodium (sodium-native 5.1.0) does with each class, checked below:
 *   valid (264)                         → the exact shared secret
 *   acceptable, all-zero shared (31)    → ERR_CRYPTO_DH_LOW_ORDER (every LowOrderPublic vector)
 *   acceptable, other (223)             → the exact shared secret: twist points, non-canonical
 *                                         u ≥ 2^255 − 19 (reduced per RFC 7748 §5) and special
 *                                         public keys are computed, not refused
 *   invalid (0)                         → this file has none: X25519 is total over 32-byte
 *                                         strings, so Wycheproof grades nothing "invalid"
 */
describe('Wycheproof X25519', () => {
  it('reads every test the file declares, in the classes expected', () => {
    expect(tests).toHaveLength(declared);
    expect([
      valid.length,
      acceptableZero.length,
      acceptableOther.length,
      invalid.length,
    ]).toStrictEqual([264, 31, 223, 0]);
    // An all-zero result comes only from a low-order peer key; nothing valid yields one.
    expect(
      acceptableZero.every(
        (t) => t.flags.includes('LowOrderPublic') && t.flags.includes('ZeroSharedSecret'),
      ),
    ).toBe(true);
    expect(valid.some((t) => isZero(t.shared))).toBe(false);
  });

  it.each(named(valid))('valid → exact shared secret: %s', (_name, t) => {
    expect(outcome(t)).toStrictEqual({ shared: toHex(t.shared) });
  });

  it.each(named(acceptableZero))(
    'acceptable, all-zero shared → ERR_CRYPTO_DH_LOW_ORDER: %s',
    (_name, t) => {
      expect(outcome(t)).toStrictEqual({ code: 'ERR_CRYPTO_DH_LOW_ORDER' });
      // The caller's buffer must not keep a half-computed or stale value after the refusal.
      const out = new Uint8Array(32).fill(0xa5);
      expect(() => {
        x25519Into(out, t.privateKey, t.publicKey);
      }).toThrow();
      expect(isZero(out)).toBe(true);
    },
  );

  it.each(named(acceptableOther))(
    'acceptable, non-zero shared → computed exactly: %s',
    (_name, t) => {
      expect(outcome(t)).toStrictEqual({ shared: toHex(t.shared) });
    },
  );

  it('invalid vectors (none today) would never yield their stated secret silently', () => {
    for (const t of invalid) expect(outcome(t)).not.toStrictEqual({ shared: toHex(t.shared) });
  });
});
