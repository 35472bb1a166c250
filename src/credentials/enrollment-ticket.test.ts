import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isMandateError } from '../core/index.js';
import { CborMap, encodeCbor, type CborValue } from '../encoding/index.js';
import { MemoryVault, SigningKeyType } from '../vault/index.js';
import { createIdentity } from '../identity/create-identity.js';
import { MAX_CHANGE_HISTORY_BYTES } from '../identity/internal.js';
import { codeOf } from '../../test/helpers/errors.js';
import {
  ENROLLMENT_TICKET_PREFIX,
  formatEnrollmentTicket,
  MAX_ENROLLMENT_TICKET_CHARS,
  parseEnrollmentTicket,
} from './enrollment-ticket.js';

const NOW = 1_800_000_000;
const vault = new MemoryVault();
const { identity: authority } = await createIdentity(vault, { nowSeconds: NOW });
const { identity: p256Authority } = await createIdentity(vault, {
  nowSeconds: NOW,
  keyType: SigningKeyType.p256,
});
const code = new Uint8Array(32).map((_, i) => i + 1);
const ROUTE = '/ip4/127.0.0.1/tcp/4000/service/authority';

const textOf = (payload: CborValue | Uint8Array): string =>
  ENROLLMENT_TICKET_PREFIX +
  Buffer.from(payload instanceof Uint8Array ? payload : encodeCbor(payload)).toString('base64url');
const fields = (overrides: Partial<Record<0 | 1 | 2 | 3 | 4, CborValue>> = {}): CborValue[] => {
  const out: CborValue[] = [1, authority.changeHistory, ROUTE, code, NOW + 600];
  for (const [index, value] of Object.entries(overrides)) out[Number(index)] = value;
  return out;
};

describe('enrollment ticket text', () => {
  it.each([
    ['Ed25519', authority, ROUTE],
    ['P-256', p256Authority, ''],
  ])('round-trips with an %s authority', (_, identity, route) => {
    const text = formatEnrollmentTicket({ authority: identity, route, code, expiresAt: NOW + 600 });
    expect(text.startsWith('mandate1.')).toBe(true);
    expect(text).toMatch(/^mandate1\.[A-Za-z0-9_-]+$/);
    const parsed = parseEnrollmentTicket(text);
    expect(parsed.authority.identifier).toBe(identity.identifier);
    expect(parsed.authority.changeHistory).toEqual(identity.changeHistory);
    expect(parsed.route).toBe(route);
    expect(parsed.code).toEqual(code);
    expect(parsed.expiresAt).toBe(NOW + 600);
    // Copied with a line end or surrounding spaces: still the same ticket.
    expect(parseEnrollmentTicket(`  ${text}\n`).code).toEqual(code);
  });

  it('keeps the code out of logs and JSON', () => {
    const parsed = parseEnrollmentTicket(
      formatEnrollmentTicket({ authority, route: ROUTE, code, expiresAt: NOW }),
    );
    const codeHex = Buffer.from(code).toString('hex');
    expect(JSON.stringify(parsed)).not.toContain('"code"');
    expect(inspect(parsed, { depth: 5 })).not.toMatch(/code/);
    expect(JSON.stringify(parsed)).not.toContain(codeHex);
  });

  it.each<[string, string, string]>([
    ['an empty text', '', 'ERR_TICKET_MALFORMED'],
    ['a wrong prefix', textOf(fields()).replace('mandate1.', 'mandate2.'), 'ERR_TICKET_MALFORMED'],
    [
      'an upper-case prefix',
      textOf(fields()).replace('mandate1.', 'MANDATE1.'),
      'ERR_TICKET_MALFORMED',
    ],
    ['no payload', 'mandate1.', 'ERR_TICKET_MALFORMED'],
    ['base64 padding', `${textOf(fields())}==`, 'ERR_TICKET_MALFORMED'],
    ['standard base64 characters', `${textOf(fields()).slice(0, -4)}ab+/`, 'ERR_TICKET_MALFORMED'],
    ['an impossible base64 length', `${textOf(fields())}A`.slice(0, 9 + 5), 'ERR_TICKET_MALFORMED'],
    [
      'inner whitespace',
      `${textOf(fields()).slice(0, 20)} ${textOf(fields()).slice(20)}`,
      'ERR_TICKET_MALFORMED',
    ],
    ['non-canonical trailing bits', `${ENROLLMENT_TICKET_PREFIX}AB`, 'ERR_TICKET_MALFORMED'],
    ['truncated CBOR', textOf(encodeCbor(fields()).subarray(0, 100)), 'ERR_TICKET_MALFORMED'],
    [
      'trailing bytes',
      textOf(new Uint8Array([...encodeCbor(fields()), 0])),
      'ERR_TICKET_MALFORMED',
    ],
    ['a map instead of an array', textOf(new CborMap([])), 'ERR_TICKET_MALFORMED'],
    ['an empty array', textOf([]), 'ERR_TICKET_MALFORMED'],
    ['version 2', textOf(fields({ 0: 2 })), 'ERR_TICKET_MALFORMED'],
    ['version 0', textOf(fields({ 0: 0 })), 'ERR_TICKET_MALFORMED'],
    ['a text version', textOf(fields({ 0: '1' })), 'ERR_TICKET_MALFORMED'],
    ['four fields', textOf(fields().slice(0, 4)), 'ERR_TICKET_MALFORMED'],
    ['six fields', textOf([...fields(), 0]), 'ERR_TICKET_MALFORMED'],
    ['a text history', textOf(fields({ 1: 'history' })), 'ERR_TICKET_MALFORMED'],
    ['a byte-string route', textOf(fields({ 2: new Uint8Array([0x2f]) })), 'ERR_TICKET_MALFORMED'],
    [
      'a control character in the route',
      textOf(fields({ 2: '/ip4/\u001b[2J' })),
      'ERR_TICKET_MALFORMED',
    ],
    [
      'a bidi override in the route',
      textOf(fields({ 2: '/ip4/127.0.0.1/tcp/4200\u202e' })),
      'ERR_TICKET_MALFORMED',
    ],
    ['a too-long route', textOf(fields({ 2: '/'.repeat(1025) })), 'ERR_TICKET_MALFORMED'],
    ['a 31-byte code', textOf(fields({ 3: code.subarray(0, 31) })), 'ERR_TICKET_MALFORMED'],
    ['a 33-byte code', textOf(fields({ 3: new Uint8Array(33) })), 'ERR_TICKET_MALFORMED'],
    ['a negative expiry', textOf(fields({ 4: -1 })), 'ERR_TICKET_MALFORMED'],
    ['a null expiry', textOf(fields({ 4: null })), 'ERR_TICKET_MALFORMED'],
    ['an empty history', textOf(fields({ 1: new Uint8Array(0) })), 'ERR_IDENTITY_MALFORMED'],
    [
      'a history that is not one',
      textOf(fields({ 1: new Uint8Array([1, 2, 3]) })),
      'ERR_IDENTITY_MALFORMED',
    ],
  ])('refuses %s', (_, text, expected) => {
    expect(codeOf(() => parseEnrollmentTicket(text))).toBe(expected);
  });

  it('refuses a tampered authority history with the identity error', () => {
    const tampered = authority.changeHistory.slice();
    // The last byte is inside the change's signature.
    tampered[tampered.length - 1]! ^= 1;
    expect(codeOf(() => parseEnrollmentTicket(textOf(fields({ 1: tampered }))))).toBe(
      'ERR_IDENTITY_SIGNATURE_INVALID',
    );
  });

  it('refuses oversized text before decoding it', () => {
    const big = ENROLLMENT_TICKET_PREFIX + 'A'.repeat(MAX_ENROLLMENT_TICKET_CHARS);
    expect(codeOf(() => parseEnrollmentTicket(big))).toBe('ERR_TICKET_MALFORMED');
    const hugeHistory = new Uint8Array(MAX_CHANGE_HISTORY_BYTES + 1);
    expect(codeOf(() => parseEnrollmentTicket(textOf(fields({ 1: hugeHistory }))))).toMatch(
      /^ERR_(TICKET|IDENTITY)_MALFORMED$/,
    );
  });

  it('refuses to format what it could not parse', () => {
    const base = { authority, route: ROUTE, code, expiresAt: NOW };
    expect(codeOf(() => formatEnrollmentTicket({ ...base, code: new Uint8Array(16) }))).toBe(
      'ERR_ARGUMENT_INVALID',
    );
    expect(codeOf(() => formatEnrollmentTicket({ ...base, route: 'a\nb' }))).toBe(
      'ERR_ARGUMENT_INVALID',
    );
    expect(codeOf(() => formatEnrollmentTicket({ ...base, route: 'a\u2067b' }))).toBe(
      'ERR_ARGUMENT_INVALID',
    );
    expect(codeOf(() => formatEnrollmentTicket({ ...base, expiresAt: 1.5 }))).toBe(
      'ERR_ARGUMENT_INVALID',
    );
  });

  describe('properties', () => {
    const onlyMandateErrors = (text: string): void => {
      try {
        parseEnrollmentTicket(text);
      } catch (error) {
        if (!isMandateError(error)) throw error;
      }
    };

    it('random text only ever throws MandateError', () => {
      fc.assert(
        fc.property(fc.string({ maxLength: 300 }), (text) => {
          onlyMandateErrors(text);
          onlyMandateErrors(ENROLLMENT_TICKET_PREFIX + text);
        }),
        { numRuns: 2000 },
      );
    });

    it('random bytes as a payload only ever throw MandateError', () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
          onlyMandateErrors(textOf(bytes));
        }),
        { numRuns: 2000 },
      );
    });

    it('a mutated valid ticket parses or throws MandateError, never anything else', () => {
      const valid = formatEnrollmentTicket({ authority, route: ROUTE, code, expiresAt: NOW });
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/. ';
      fc.assert(
        fc.property(
          fc.array(
            fc.tuple(fc.nat({ max: valid.length - 1 }), fc.nat({ max: alphabet.length - 1 })),
            { minLength: 1, maxLength: 4 },
          ),
          (edits) => {
            const chars = valid.split('');
            for (const [at, c] of edits) chars[at] = alphabet[c]!;
            onlyMandateErrors(chars.join(''));
          },
        ),
        { numRuns: 500 },
      );
    });

    it('structured payloads with wrong field types only ever throw MandateError', () => {
      const field = fc.oneof(
        fc.integer({ min: -5, max: 2 ** 40 }),
        fc.string({ maxLength: 40 }),
        fc.uint8Array({ maxLength: 40 }),
        fc.boolean(),
        fc.constant(null),
        fc.constant(authority.changeHistory),
        fc.constant(code),
      );
      fc.assert(
        fc.property(fc.array(field, { maxLength: 7 }), (items) => {
          onlyMandateErrors(textOf(items));
        }),
        { numRuns: 1000 },
      );
    });
  });
});
