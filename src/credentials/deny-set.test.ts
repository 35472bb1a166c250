import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isMandateError } from '../core/index.js';
import { codeOf, thrown } from '../../test/helpers/errors.js';
import {
  DenySet,
  MemoryDenySetRepository,
  parseDenyEntry,
  type DenyEntry,
  type DenySetSnapshot,
  type DenySetUpdate,
} from './deny-set.js';

const NOW = 1_800_000_000;
const MAX_STALENESS = 30;
const OPTIONS = { maxStalenessSeconds: MAX_STALENESS };

const revocationId = (n: number): string => n.toString(16).padStart(32, '0');
const identity = (n: number): string => `I${n.toString(16).padStart(64, '0')}`;
const link = (n: number, expiresAt = NOW + 3600): DenyEntry => ({
  kind: 'revocation-id',
  id: revocationId(n),
  expiresAt,
  revokedAt: NOW,
});
const revokedIdentity = (n: number, expiresAt = NOW + 86_400): DenyEntry => ({
  kind: 'identity',
  id: identity(n),
  expiresAt,
  revokedAt: NOW,
});
const update = (
  fromSequence: number,
  entries: readonly DenyEntry[],
  issuedAt = NOW,
): DenySetUpdate => ({
  fromSequence,
  toSequence: fromSequence + entries.length,
  entries,
  issuedAt,
});

/** A set at sequence 3 holding link 1, identity 2 and link 3, fresh at NOW. */
function populated(): DenySet {
  const set = new DenySet(OPTIONS);
  set.apply(update(0, [link(1), revokedIdentity(2)]));
  set.apply(update(2, [link(3)]));
  return set;
}

const ids = (set: DenySet, now = 0): string[] =>
  set
    .snapshot(now)
    .entries.map((e) => e.id)
    .sort();

describe('parseDenyEntry', () => {
  it('accepts both kinds and returns only the known fields', () => {
    expect(parseDenyEntry(link(1))).toEqual(link(1));
    expect(parseDenyEntry({ ...revokedIdentity(2), reason: 'compromisso — 漏えい' })).toEqual({
      ...revokedIdentity(2),
      reason: 'compromisso — 漏えい',
    });
    const withExtra = { ...link(1), note: 'dropped' };
    expect(parseDenyEntry(withExtra)).toEqual(link(1));
    expect(parseDenyEntry({ ...link(1), reason: undefined })).toEqual(link(1));
  });

  it.each([
    ['an unknown kind', { ...link(1), kind: 'link' }],
    ['a revocation id of 31 digits', { ...link(1), id: revocationId(1).slice(1) }],
    ['a revocation id of 33 digits', { ...link(1), id: `${revocationId(1)}0` }],
    ['an uppercase revocation id', { ...link(1), id: 'A'.repeat(32) }],
    ['an identifier as a revocation id', { ...link(1), id: identity(1) }],
    ['a revocation id as an identity', { ...revokedIdentity(1), id: revocationId(1) }],
    ['a lowercase `i` identifier', { ...revokedIdentity(1), id: `i${'0'.repeat(64)}` }],
    ['an uppercase identifier', { ...revokedIdentity(1), id: `I${'A'.repeat(64)}` }],
    ['a padded identifier', { ...revokedIdentity(1), id: ` ${identity(1)}` }],
    ['a negative expiry', { ...link(1), expiresAt: -1 }],
    ['a fractional expiry', { ...link(1), expiresAt: NOW + 0.5 }],
    ['an unsafe expiry', { ...link(1), expiresAt: 2 ** 53 }],
    ['an infinite revocation time', { ...link(1), revokedAt: Number.POSITIVE_INFINITY }],
    ['a NaN revocation time', { ...link(1), revokedAt: Number.NaN }],
    ['a reason of 201 characters', { ...link(1), reason: 'r'.repeat(201) }],
    ['a reason with a newline', { ...link(1), reason: 'two\nlines' }],
    ['a reason with a NUL', { ...link(1), reason: 'a\u0000b' }],
    ['a reason with a bidi override', { ...link(1), reason: 'a\u202eb' }],
    ['a reason with a lone surrogate', { ...link(1), reason: 'a\ud800b' }],
  ])('refuses %s', (_, fields) => {
    expect(codeOf(() => parseDenyEntry(fields))).toBe('ERR_DENY_ENTRY_INVALID');
  });

  it('refuses fields of the wrong type at run time', () => {
    const fields: unknown[] = [
      { ...link(1), id: 42 },
      { ...link(1), expiresAt: '1800000000' },
      { ...link(1), reason: 7 },
      { ...link(1), kind: undefined },
    ];
    for (const value of fields)
      // Runtime input from JavaScript callers: the declared type does not hold.
      expect(codeOf(() => parseDenyEntry(value as DenyEntry))).toBe('ERR_DENY_ENTRY_INVALID');
  });

  it('keeps its messages on one line with values quoted', () => {
    const error = thrown(() => parseDenyEntry({ ...link(1), id: 'a`b\nc' + 'd'.repeat(100) }));
    expect(isMandateError(error)).toBe(true);
    const message = (error as Error).message;
    expect(message).not.toMatch(/\n/);
    expect(message).toContain('`a?b?c');
    expect(message.length).toBeLessThan(160);
  });

  it('property: a revocation id is accepted exactly when it is 32 lowercase hex digits', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({
            unit: fc.constantFrom(...Array.from('0123456789abcdef')),
            minLength: 32,
            maxLength: 32,
          }),
          fc.string({
            unit: fc.constantFrom(...Array.from('0123456789abcdefABCDEFgI ')),
            maxLength: 40,
          }),
          fc.string({ maxLength: 40 }),
        ),
        fc.constantFrom('revocation-id', 'identity'),
        (id, kind) => {
          const accepted = codeOf(() => parseDenyEntry({ ...link(1), kind, id })) === 'accepted';
          const shape = kind === 'identity' ? /^I[0-9a-f]{64}$/ : /^[0-9a-f]{32}$/;
          expect(accepted).toBe(shape.test(id));
        },
      ),
    );
  });
});

describe('DenySet', () => {
  it('refuses an invalid staleness bound', () => {
    for (const maxStalenessSeconds of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])
      expect(codeOf(() => new DenySet({ maxStalenessSeconds }))).toBe('ERR_ARGUMENT_INVALID');
  });

  it('starts empty, at sequence 0, and stale: it fails closed until first refreshed', () => {
    const set = new DenySet(OPTIONS);
    expect(set.sequence).toBe(0);
    expect(set.size).toBe(0);
    expect(set.isRevoked(revocationId(1))).toBe(false);
    const error = thrown(() => {
      set.assertNoneRevoked([], NOW);
    });
    expect(error).toMatchObject({ code: 'ERR_DENY_SET_STALE', kind: 'unavailable' });
    expect(set.snapshot(NOW)).toEqual({ sequence: 0, entries: [], issuedAt: 0 });
  });

  it('answers lookups for both kinds and names the revoked id', () => {
    const set = populated();
    expect(set.sequence).toBe(3);
    expect(set.size).toBe(3);
    expect(set.isRevoked(revocationId(1))).toBe(true);
    expect(set.isRevoked(identity(2))).toBe(true);
    expect(set.isRevoked(revocationId(2))).toBe(false);
    expect(set.isRevoked(identity(1))).toBe(false);
    set.assertNoneRevoked([revocationId(9), identity(9)], NOW);
    set.assertNoneRevoked([], NOW);
    const linkError = thrown(() => {
      set.assertNoneRevoked([revocationId(9), revocationId(3)], NOW);
    });
    expect(linkError).toMatchObject({ code: 'ERR_REVOKED', kind: 'forbidden' });
    expect((linkError as Error).message).toBe(`revocation id \`${revocationId(3)}\` is revoked`);
    const identityError = thrown(() => {
      set.assertNoneRevoked([revocationId(9), identity(2)], NOW);
    });
    expect((identityError as Error).message).toBe(`identity \`${identity(2)}\` is revoked`);
  });

  it('reports staleness before revocation, and treats a time that is not a safe non-negative integer as stale', () => {
    const set = populated();
    expect(
      codeOf(() => {
        set.assertNoneRevoked([revocationId(1)], NOW + MAX_STALENESS + 1);
      }),
    ).toBe('ERR_DENY_SET_STALE');
    // Issue 8, vulnerability 7: every time that is not a safe non-negative integer fails closed.
    for (const now of [Number.NaN, undefined, Infinity, -Infinity, NOW + 0.5, -1])
      expect(
        codeOf(() => {
          set.assertNoneRevoked([], now as number);
        }),
        String(now),
      ).toBe('ERR_DENY_SET_STALE');
    expect(
      (
        thrown(() => {
          set.assertNoneRevoked([], NOW + 100);
        }) as Error
      ).message,
    ).toBe(
      `the deny-set was last refreshed at \`${NOW}\`, more than \`${MAX_STALENESS}\` s before \`${NOW + 100}\``,
    );
  });

  it('property: the staleness bound is exact (now − fresh == max is fresh, max + 1 is stale)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 40 }),
        fc.integer({ min: 0, max: 86_400 }),
        fc.boolean(),
        (freshAt, max, heartbeat) => {
          const set = new DenySet({ maxStalenessSeconds: max });
          if (heartbeat) set.markFresh(0, freshAt);
          else set.apply(update(0, [link(1)], freshAt));
          set.assertNoneRevoked([revocationId(2)], freshAt + max);
          set.assertNoneRevoked([revocationId(2)], freshAt); // no lower bound: skew is harmless
          expect(
            codeOf(() => {
              set.assertNoneRevoked([], freshAt + max + 1);
            }),
          ).toBe('ERR_DENY_SET_STALE');
        },
      ),
    );
  });

  it('detects a gap, changing nothing', () => {
    const set = populated();
    const error = thrown(() => {
      set.apply(update(4, [link(5)], NOW + 10));
    });
    expect(error).toMatchObject({ code: 'ERR_DENY_SET_GAP', kind: 'conflict' });
    expect(set.sequence).toBe(3);
    expect(set.isRevoked(revocationId(5))).toBe(false);
    expect(
      codeOf(() => {
        set.assertNoneRevoked([], NOW + MAX_STALENESS + 1);
      }),
    ).toBe('ERR_DENY_SET_STALE');
  });

  it('ignores a duplicate or older update, freshness included', () => {
    const set = populated();
    set.apply(update(2, [link(3)], NOW + 20));
    set.apply(update(0, [link(1)], NOW + 20));
    set.apply(update(3, [], NOW));
    expect(set.sequence).toBe(3);
    expect(ids(set)).toEqual([identity(2), revocationId(1), revocationId(3)].sort());
    // A replayed update carries no news about the present.
    expect(
      codeOf(() => {
        set.assertNoneRevoked([], NOW + MAX_STALENESS + 1);
      }),
    ).toBe('ERR_DENY_SET_STALE');
  });

  it('takes from an overlapping update only the entries past its sequence', () => {
    const set = populated();
    // A stale copy of link 3 in the overlap must not replace what the set holds.
    set.apply(update(2, [link(3, NOW + 1), link(4), revokedIdentity(5)], NOW + 5));
    expect(set.sequence).toBe(5);
    expect(set.snapshot(0).entries.find((e) => e.id === revocationId(3))?.expiresAt).toBe(
      NOW + 3600,
    );
    expect(set.isRevoked(revocationId(4))).toBe(true);
    expect(set.isRevoked(identity(5))).toBe(true);
    set.assertNoneRevoked([], NOW + 5 + MAX_STALENESS);
  });

  it('lets an empty update at its sequence refresh it, and an entry revoked again replace the old', () => {
    const set = populated();
    set.apply(update(3, [], NOW + 25));
    set.assertNoneRevoked([], NOW + 25 + MAX_STALENESS);
    set.apply(update(3, [link(1, NOW + 9999)], NOW + 26));
    expect(set.size).toBe(3);
    expect(set.snapshot(0).entries.find((e) => e.id === revocationId(1))?.expiresAt).toBe(
      NOW + 9999,
    );
    // Freshness never goes back.
    set.apply(update(4, [link(7)], NOW));
    set.assertNoneRevoked([], NOW + 26 + MAX_STALENESS);
  });

  it('refuses a malformed update as a whole', () => {
    const valid = update(3, [link(4), revokedIdentity(5)], NOW + 1);
    const malformed: unknown[] = [
      { ...valid, toSequence: 6 },
      { ...valid, toSequence: 4 },
      { ...valid, fromSequence: -1, toSequence: 1 },
      { ...valid, fromSequence: 2.5, toSequence: 4.5 },
      { ...valid, issuedAt: Number.NaN },
      { ...valid, issuedAt: -5 },
      { ...valid, entries: 'not a list' },
      { ...valid, entries: [link(4), { ...revokedIdentity(5), id: revocationId(5) }] },
      { ...valid, entries: [link(4), { ...link(5), id: 'zz' }] },
      { ...valid, entries: [link(4), { ...link(5), reason: '\u0007' }] },
      { ...valid, entries: [link(4), link(4)] },
      // Malformed even when it would otherwise be ignored as old.
      {
        fromSequence: 0,
        toSequence: 2,
        entries: [link(1), { ...link(2), kind: 'x' }],
        issuedAt: NOW,
      },
    ];
    for (const value of malformed) {
      const set = populated();
      // Runtime input from a peer: the declared type does not hold.
      const error = thrown(() => {
        set.apply(value as DenySetUpdate);
      });
      expect(error, JSON.stringify(value)).toMatchObject({
        code: 'ERR_DENY_SET_UPDATE_INVALID',
        kind: 'invalid',
      });
      expect(set.sequence).toBe(3);
      expect(set.size).toBe(3);
      expect(set.isRevoked(revocationId(4))).toBe(false);
    }
  });

  it('takes heartbeats at its sequence, ignores older ones and reports newer ones as a gap', () => {
    const set = populated();
    set.markFresh(3, NOW + 100);
    set.assertNoneRevoked([], NOW + 100 + MAX_STALENESS);
    set.markFresh(2, NOW + 500);
    expect(
      codeOf(() => {
        set.assertNoneRevoked([], NOW + 101 + MAX_STALENESS);
      }),
    ).toBe('ERR_DENY_SET_STALE');
    expect(
      thrown(() => {
        set.markFresh(4, NOW + 500);
      }),
    ).toMatchObject({ code: 'ERR_DENY_SET_GAP' });
    set.markFresh(3, NOW + 50); // older freshness never replaces newer
    set.assertNoneRevoked([], NOW + 100 + MAX_STALENESS);
    for (const [sequence, issuedAt] of [
      [-1, NOW],
      [3, Number.NaN],
      [0.5, NOW],
    ] as const)
      expect(
        codeOf(() => {
          set.markFresh(sequence, issuedAt);
        }),
      ).toBe('ERR_DENY_SET_UPDATE_INVALID');
  });

  it('prunes entries that expired before now and keeps its sequence', () => {
    const set = new DenySet(OPTIONS);
    set.apply(update(0, [link(1, NOW + 10), link(2, NOW + 20), revokedIdentity(3, NOW + 30)]));
    expect(set.prune(NOW + 10)).toBe(0);
    expect(set.prune(NOW + 21)).toBe(2);
    expect(set.sequence).toBe(3);
    expect(set.isRevoked(revocationId(1))).toBe(false);
    expect(set.isRevoked(identity(3))).toBe(true);
    expect(codeOf(() => set.prune(-1))).toBe('ERR_ARGUMENT_INVALID');
    expect(codeOf(() => set.snapshot(Number.NaN))).toBe('ERR_ARGUMENT_INVALID');
  });

  it('round-trips through a snapshot, freshness included, leaving expired entries out', () => {
    const set = populated();
    set.apply(update(3, [link(4, NOW + 1)], NOW + 7));
    const snapshot = set.snapshot(NOW + 2);
    expect(snapshot.sequence).toBe(4);
    expect(snapshot.issuedAt).toBe(NOW + 7);
    const copy = DenySet.fromSnapshot(snapshot, OPTIONS);
    expect(copy.sequence).toBe(4);
    expect(ids(copy)).toEqual([identity(2), revocationId(1), revocationId(3)].sort());
    copy.assertNoneRevoked([], NOW + 7 + MAX_STALENESS);
    expect(
      codeOf(() => {
        copy.assertNoneRevoked([], NOW + 8 + MAX_STALENESS);
      }),
    ).toBe('ERR_DENY_SET_STALE');
    copy.apply(update(4, [link(5)], NOW + 8));
    expect(copy.isRevoked(revocationId(5))).toBe(true);
  });

  it('catches up from a snapshot after a gap, keeping what it holds; refuses one that went back', () => {
    const set = populated();
    set.apply(update(3, [link(4)], NOW + 1));
    // Entries 5 and 6 were appended, then 5 and link 1 pruned: the snapshot at 6 holds the rest.
    const later: DenySetSnapshot = {
      sequence: 6,
      entries: [revokedIdentity(2), link(3), link(4), link(6)],
      issuedAt: NOW + 9,
    };
    expect(
      codeOf(() => {
        set.apply(update(5, [link(6)], NOW + 9));
      }),
    ).toBe('ERR_DENY_SET_GAP');
    set.applySnapshot(later);
    expect(set.sequence).toBe(6);
    expect(set.isRevoked(revocationId(6))).toBe(true);
    // Revocation is never undone by a catch-up: link 1 stays until this set prunes it.
    expect(set.isRevoked(revocationId(1))).toBe(true);
    set.assertNoneRevoked([], NOW + 9 + MAX_STALENESS);
    // The list went back (a reset): nothing changes, freshness included.
    const reset: DenySetSnapshot = { sequence: 2, entries: [link(7), link(8)], issuedAt: NOW + 20 };
    expect(
      codeOf(() => {
        set.applySnapshot(reset);
      }),
    ).toBe('ERR_DENY_SET_GAP');
    expect(set.sequence).toBe(6);
    expect(set.isRevoked(revocationId(7))).toBe(false);
    expect(
      codeOf(() => {
        set.assertNoneRevoked([], NOW + 10 + MAX_STALENESS);
      }),
    ).toBe('ERR_DENY_SET_STALE');
  });

  it('refuses a malformed snapshot', () => {
    const valid: DenySetSnapshot = { sequence: 2, entries: [link(1), link(2)], issuedAt: NOW };
    const malformed: unknown[] = [
      { ...valid, sequence: 1 }, // more entries than sequence steps
      { ...valid, sequence: -1 },
      { ...valid, issuedAt: 1.5 },
      { ...valid, entries: [link(1), link(1)] },
      { ...valid, entries: [link(1), { ...link(2), expiresAt: -3 }] },
      { ...valid, entries: null },
    ];
    for (const value of malformed)
      expect(
        codeOf(() => DenySet.fromSnapshot(value as DenySetSnapshot, OPTIONS)),
        JSON.stringify(value),
      ).toBe('ERR_DENY_SET_UPDATE_INVALID');
    expect(codeOf(() => DenySet.fromSnapshot(valid, { maxStalenessSeconds: -1 }))).toBe(
      'ERR_ARGUMENT_INVALID',
    );
  });

  it('copies entries, so a caller mutating its objects changes nothing', () => {
    const entry: { kind: 'revocation-id'; id: string; expiresAt: number; revokedAt: number } = {
      kind: 'revocation-id',
      id: revocationId(1),
      expiresAt: NOW + 60,
      revokedAt: NOW,
    };
    const set = new DenySet(OPTIONS);
    set.apply(update(0, [entry]));
    entry.id = revocationId(2);
    expect(set.isRevoked(revocationId(1))).toBe(true);
    expect(set.isRevoked(revocationId(2))).toBe(false);
  });
});

type Step =
  | { readonly type: 'append'; readonly ns: readonly number[]; readonly ttl: number }
  | { readonly type: 'prune' };

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      type: fc.constant('append' as const),
      ns: fc.array(fc.integer({ min: 0, max: 9 }), { maxLength: 4 }),
      ttl: fc.integer({ min: 0, max: 30 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ type: 'prune' as const }) },
);

/** A delivery of updates as an unreliable channel makes it: some repeated, some dropped. */
const delivery = fc.array(fc.constantFrom('once', 'twice', 'drop', 'replay-first'), {
  maxLength: 40,
});

describe('DenySet properties', () => {
  it('a verifier fed every update, with duplicates and drops, agrees with the final snapshot', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { maxLength: 30 }), delivery, async (steps, fates) => {
        const repository = new MemoryDenySetRepository();
        let now = NOW;
        const updates: DenySetUpdate[] = [];
        for (const s of steps) {
          now += 2;
          if (s.type === 'prune') {
            const before = await repository.currentSequence();
            await repository.prune(now);
            expect(await repository.currentSequence()).toBe(before);
            continue;
          }
          const entries = s.ns.map((n) =>
            n % 2 === 0
              ? { ...link(n, now + s.ttl), revokedAt: now }
              : { ...revokedIdentity(n, now + s.ttl), revokedAt: now },
          );
          updates.push(await repository.append(entries, now));
        }

        const reliable = new DenySet(OPTIONS);
        for (const u of updates) reliable.apply(u);

        const unreliable = new DenySet(OPTIONS);
        let gaps = 0;
        const deliver = (u: DenySetUpdate): void => {
          const before = unreliable.snapshot(0);
          try {
            unreliable.apply(u);
          } catch (error) {
            if (!isMandateError(error, 'ERR_DENY_SET_GAP')) throw error;
            // A gap is exactly an update that starts past the set, and it changes nothing.
            expect(u.fromSequence).toBeGreaterThan(before.sequence);
            expect(unreliable.snapshot(0)).toEqual(before);
            gaps++;
            return;
          }
          if (u.toSequence <= before.sequence && u.fromSequence < before.sequence)
            expect(unreliable.snapshot(0)).toEqual(before); // a duplicate changes nothing
          else expect(unreliable.sequence).toBe(u.toSequence);
        };
        updates.forEach((u, i) => {
          const fate = fates[i % Math.max(fates.length, 1)] ?? 'once';
          if (fate === 'drop') return;
          deliver(u);
          if (fate === 'twice') deliver(u);
          if (fate === 'replay-first' && updates[0] !== undefined) deliver(updates[0]);
        });
        const dropped = updates.some(
          (u, i) => u.entries.length > 0 && fates[i % Math.max(fates.length, 1)] === 'drop',
        );
        if (!dropped) expect(gaps).toBe(0);
        // Recover as a verifier would: catch up, or take a snapshot when entries were pruned.
        let recovered = unreliable;
        try {
          recovered.apply(await repository.updatesSince(recovered.sequence, now));
        } catch (error) {
          if (!isMandateError(error, 'ERR_DENY_SET_GAP')) throw error;
          recovered = DenySet.fromSnapshot(await repository.snapshot(now), OPTIONS);
        }

        const fromSnapshot = DenySet.fromSnapshot(await repository.snapshot(now), OPTIONS);
        const expected = { sequence: fromSnapshot.sequence, ids: ids(fromSnapshot, now) };
        expect(expected.sequence).toBe(await repository.currentSequence());
        for (const set of [reliable, recovered]) {
          set.prune(now);
          expect({ sequence: set.sequence, ids: ids(set, now) }).toEqual(expected);
          expect(set.snapshot(now).entries.length).toBe(set.size);
        }
      }),
      { numRuns: 200 },
    );
  });
});
