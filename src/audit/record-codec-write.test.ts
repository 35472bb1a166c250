// The writer's side of the record codec: the signing and signed texts are JCS (RFC 8785) of the
// record without and with `signature`, whatever the shape and member order of the body.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { isMandateError } from '../core/index.js';
import { sha256Hex } from '../crypto/index.js';
import { canonicalizeJson } from '../encoding/index.js';
import {
  chainHashOf,
  checkAuditRecord,
  keptText,
  signedText,
  toBase64Url,
  unsignedText,
} from './record-codec.js';

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

const golden = JSON.parse(
  readFileSync(new URL('../../docs/spec/vectors/audit-records.json', import.meta.url), 'utf8'),
) as { decision: { text: string }; invocation: { text: string } };

function code(value: Record<string, unknown>): string {
  try {
    checkAuditRecord(value);
    return 'no error';
  } catch (error) {
    return isMandateError(error) ? error.code : 'other';
  }
}

describe('what the codec keeps between records', () => {
  it('a kept text is the text of the bytes as they are now, not as they were', () => {
    const bytes = new Uint8Array(200).fill(1);
    const kept = new WeakMap<Uint8Array, { readonly copy: Uint8Array; readonly text: string }>();
    expect(chainHashOf(bytes)).toBe(sha256Hex(bytes));
    expect(keptText(kept, bytes, toBase64Url)).toBe(toBase64Url(bytes));
    bytes[199] = 2;
    expect(chainHashOf(bytes)).toBe(sha256Hex(bytes));
    expect(keptText(kept, bytes, toBase64Url)).toBe(toBase64Url(bytes));
  });

  it('an identifier that passed does not let a malformed one pass after it', () => {
    const record = JSON.parse(golden.decision.text) as Record<string, string>;
    for (let round = 0; round < 3; round++) {
      expect(code(record)).toBe('no error');
      for (const wrong of [
        record.agent!.toUpperCase(),
        `${record.agent!}0`,
        record.enforcer!.slice(0, -1),
        `I${'0'.repeat(63)}`,
        '',
      ]) {
        expect(code({ ...record, agent: wrong }), wrong).toBe('ERR_AUDIT_RECORD_MALFORMED');
        expect(code({ ...record, enforcer: wrong }), wrong).toBe('ERR_AUDIT_RECORD_MALFORMED');
      }
    }
  });

  it('a name that passed does not let a malformed one pass after it', () => {
    const record = JSON.parse(golden.invocation.text) as Record<string, unknown>;
    const names = ['issue_refund', 'orders', 'x'.repeat(256), 'naïve — 顧客'];
    for (let round = 0; round < 3; round++) {
      for (const name of names) {
        expect(code({ ...record, tool: name }), name).toBe('no error');
        expect(code({ ...record, server: name }), name).toBe('no error');
      }
      for (const wrong of ['', 'x'.repeat(257), 'issue\u202erefund', 'orders\n', 7, null]) {
        expect(code({ ...record, tool: wrong }), String(wrong)).toBe('ERR_AUDIT_RECORD_MALFORMED');
      }
      expect(code({ ...record, server: '' })).toBe('ERR_AUDIT_RECORD_MALFORMED');
      expect(code({ ...record, server: null })).toBe('no error');
    }
  });
});
