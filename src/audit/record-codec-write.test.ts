// The writer's side of the record codec: the signing and signed texts are JCS (RFC 8785) of the
// record without and with `signature`, whatever the shape and member order of the body.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { canonicalizeJson } from '../encoding/index.js';
import { signedText, unsignedText } from './record-codec.js';

const NAMES = ['type', 'agent', 'zeta', 'signature', 'previous', '10', '2', 'a', 'é', 'Z', 'sig'];
const value = fc.oneof(
  fc.string(),
  fc.integer(),
  fc.constant(null),
  fc.boolean(),
  fc.array(fc.string(), { maxLength: 3 }),
  fc.string({ minLength: 128, maxLength: 300 }),
);
// A body: names from a small pool (integer-like ones too), in any insertion order — many
// shapes, each seen again and again, more of them than the writer keeps sorted.
const body = fc
  .uniqueArray(fc.constantFrom(...NAMES), { minLength: 1, maxLength: NAMES.length })
  .chain((names) =>
    fc.tuple(
      fc.constant(names),
      fc.array(value, { minLength: names.length, maxLength: names.length }),
    ),
  )
  .map(([names, values]) => {
    const o: Record<string, unknown> = {};
    names.forEach((name, i) => {
      o[name] = values[i];
    });
    return o;
  });

describe('unsignedText and signedText', () => {
  it('are JCS of the body without and with its signature, for bodies of many shapes (property)', () => {
    fc.assert(
      fc.property(fc.array(body, { minLength: 1, maxLength: 40 }), (bodies) => {
        for (const b of bodies) {
          const rest = Object.fromEntries(Object.entries(b).filter(([k]) => k !== 'signature'));
          const unsigned = unsignedText(b);
          expect(unsigned.signingText).toBe(canonicalizeJson(rest));
          const signature = { keyType: 'ed25519' as const, value: 'A'.repeat(86) };
          expect(signedText(unsigned, signature)).toBe(canonicalizeJson({ ...rest, signature }));
        }
      }),
      { numRuns: 300 },
    );
  });
});
