import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isMandateError } from '../core/index.js';
import { encodeCbor } from '../encoding/index.js';
import { DenyEntryKind, type DenyEntry } from '../credentials/index.js';
import { decodeBusMessage, encodeBusMessage } from './codec.js';
import { BusTopic, type BusMessage, type PublishedBundle } from './types.js';

const NOW = 1_800_000_000;

const entryArb: fc.Arbitrary<DenyEntry> = fc
  .record(
    {
      kind: fc.constantFrom(DenyEntryKind.revocationId, DenyEntryKind.identity),
      hex: fc.uint8Array({ minLength: 32, maxLength: 32 }),
      expiresAt: fc.integer({ min: 0, max: 2 ** 40 }),
      revokedAt: fc.integer({ min: 0, max: 2 ** 40 }),
      reason: fc.option(
        fc.string({ maxLength: 20 }).filter((r) => /^[ -~]*$/.test(r)),
        {
          nil: undefined,
        },
      ),
    },
    { requiredKeys: ['kind', 'hex', 'expiresAt', 'revokedAt'] },
  )
  .map(({ kind, hex, expiresAt, revokedAt, reason }) => {
    const digits = Buffer.from(hex).toString('hex');
    const id = kind === DenyEntryKind.identity ? `I${digits}` : digits.slice(0, 32);
    return reason === undefined
      ? { kind, id, expiresAt, revokedAt }
      : { kind, id, expiresAt, revokedAt, reason };
  });

const entriesArb = fc.uniqueArray(entryArb, { selector: (e) => e.id, maxLength: 6 });

const bundleArb: fc.Arbitrary<PublishedBundle> = fc.record({
  version: fc.integer({ min: 1, max: 2 ** 40 }),
  hash: fc.uint8Array({ minLength: 32, maxLength: 32 }).map((h) => Buffer.from(h).toString('hex')),
  bytes: fc.uint8Array({ maxLength: 64 }),
});

const denySetMessage: fc.Arbitrary<BusMessage<'deny-set'>> = fc.oneof(
  fc.tuple(entriesArb, fc.nat(1000), fc.nat()).map(([entries, extra, issuedAt]) => ({
    type: 'snapshot' as const,
    snapshot: { sequence: entries.length + extra, entries, issuedAt },
  })),
  fc.tuple(entriesArb, fc.nat(1000), fc.nat()).map(([entries, from, issuedAt]) => ({
    type: 'update' as const,
    update: { fromSequence: from, toSequence: from + entries.length, entries, issuedAt },
  })),
  fc
    .tuple(fc.nat(), fc.nat())
    .map(([sequence, issuedAt]) => ({ type: 'heartbeat' as const, sequence, issuedAt })),
);

const bundleMessage: fc.Arbitrary<BusMessage<'bundles'>> = fc.oneof(
  fc
    .tuple(fc.option(bundleArb, { nil: undefined }), fc.integer({ min: 1, max: 99 }), fc.nat())
    .map(([bundle, sequence, issuedAt]) => ({
      type: 'snapshot' as const,
      snapshot: { sequence, bundle, issuedAt },
    })),
  fc
    .tuple(fc.array(bundleArb, { maxLength: 3 }), fc.nat(1000), fc.nat())
    .map(([bundles, from, issuedAt]) => ({
      type: 'update' as const,
      update: { fromSequence: from, toSequence: from + bundles.length, bundles, issuedAt },
    })),
);

describe('bus message codec', () => {
  it('round-trips every well-formed message of both topics', () => {
    fc.assert(
      fc.property(denySetMessage, (message) => {
        expect(decodeBusMessage(encodeBusMessage(BusTopic.denySet, message))).toStrictEqual({
          topic: BusTopic.denySet,
          message,
        });
      }),
    );
    fc.assert(
      fc.property(bundleMessage, (message) => {
        const bytes = encodeBusMessage(BusTopic.bundles, message);
        const decoded = decodeBusMessage(bytes);
        // Bytes come back as views of the input: equal content, compared by value.
        expect(decoded).toEqual({ topic: BusTopic.bundles, message });
        expect(encodeBusMessage(BusTopic.bundles, decoded.message as typeof message)).toEqual(
          bytes,
        );
      }),
    );
  });

  it('refuses arbitrary bytes and mutated messages with ERR_BUS_MESSAGE_INVALID only', () => {
    const check = (bytes: Uint8Array): void => {
      try {
        decodeBusMessage(bytes);
      } catch (error) {
        if (!isMandateError(error, 'ERR_BUS_MESSAGE_INVALID')) throw error;
      }
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 256 }), check), { numRuns: 2_000 });
    fc.assert(
      fc.property(denySetMessage, fc.nat(), fc.integer({ min: 0, max: 255 }), (m, at, byte) => {
        const bytes = encodeBusMessage(BusTopic.denySet, m);
        bytes[at % bytes.length] = byte;
        check(bytes);
      }),
      { numRuns: 2_000 },
    );
  });

  it('refuses what the topic rules refuse, when encoding and when decoding', () => {
    const entry = { kind: 'revocation-id', id: 'a'.repeat(32), expiresAt: NOW, revokedAt: NOW };
    const cases: [string, unknown][] = [
      ['version 2', [2, 0, 2, [0, 0]]],
      ['unknown topic', [1, 7, 2, [0, 0]]],
      ['unknown type', [1, 0, 9, [0, 0]]],
      [
        'sequence arithmetic',
        [1, 0, 1, [0, 2, NOW, [['revocation-id', 'a'.repeat(32), NOW, NOW]]]],
      ],
      ['duplicate entry', [1, 0, 0, [2, NOW, [Object.values(entry), Object.values(entry)]]]],
      ['bad id', [1, 0, 0, [1, NOW, [['revocation-id', 'xyz', NOW, NOW]]]]],
      ['unknown kind', [1, 0, 0, [1, NOW, [['user', 'a'.repeat(32), NOW, NOW]]]]],
      ['short hash', [1, 1, 0, [1, NOW, [1, new Uint8Array(31), new Uint8Array(1)]]]],
      ['version 0 bundle', [1, 1, 0, [1, NOW, [0, new Uint8Array(32), new Uint8Array(1)]]]],
      ['bundle at sequence 0', [1, 1, 0, [0, NOW, [1, new Uint8Array(32), new Uint8Array(1)]]]],
      ['negative time', [1, 0, 2, [0, -1]]],
    ];
    for (const [what, value] of cases) {
      let code = 'accepted';
      try {
        decodeBusMessage(encodeCbor(value as never));
      } catch (error) {
        code = isMandateError(error) ? error.code : 'other';
      }
      expect(code, what).toBe('ERR_BUS_MESSAGE_INVALID');
    }
    expect(() =>
      encodeBusMessage(BusTopic.denySet, {
        type: 'update',
        update: { fromSequence: 0, toSequence: 2, entries: [], issuedAt: NOW },
      }),
    ).toThrow(expect.objectContaining({ code: 'ERR_BUS_MESSAGE_INVALID' }) as Error);
  });

  it('bounds the input before decoding', () => {
    const big = encodeBusMessage(BusTopic.bundles, {
      type: 'update',
      update: {
        fromSequence: 0,
        toSequence: 1,
        bundles: [{ version: 1, hash: '0'.repeat(64), bytes: new Uint8Array(4096) }],
        issuedAt: NOW,
      },
    });
    expect(() => decodeBusMessage(big, 1024)).toThrow(
      expect.objectContaining({ code: 'ERR_BUS_MESSAGE_INVALID' }) as Error,
    );
    expect(decodeBusMessage(big).topic).toBe(BusTopic.bundles);
  });
});
