import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isMandateError } from '../../src/core/index.js';
import {
  DenySet,
  type DenyEntry,
  type DenySetRepository,
  type DenySetSnapshot,
} from '../../src/credentials/deny-set.js';

const NOW = 1_800_000_000;
const OPTIONS = { maxStalenessSeconds: 60 };

export const revocationId = (n: number): string => n.toString(16).padStart(32, '0');
export const identity = (n: number): string => `I${n.toString(16).padStart(64, '0')}`;

export function linkEntry(n: number, expiresAt = NOW + 3600, reason?: string): DenyEntry {
  const entry = { kind: 'revocation-id', id: revocationId(n), expiresAt, revokedAt: NOW } as const;
  return reason === undefined ? entry : { ...entry, reason };
}

export function identityEntry(n: number, expiresAt = NOW + 86_400): DenyEntry {
  return { kind: 'identity', id: identity(n), expiresAt, revokedAt: NOW };
}

/** The code of the MandateError a promise rejects with, or `resolved`. */
async function rejectionCode(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (isMandateError(error)) return error.code;
    throw error;
  }
  return 'resolved';
}

const byId = (entries: readonly DenyEntry[]): DenyEntry[] =>
  [...entries].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

const view = (snapshot: DenySetSnapshot) => ({
  sequence: snapshot.sequence,
  entries: byId(snapshot.entries),
});

type Operation =
  | {
      readonly type: 'append';
      readonly batch: readonly {
        readonly n: number;
        readonly ttl: number;
        readonly reason: string | null;
      }[];
    }
  | { readonly type: 'prune' }
  | { readonly type: 'catch-up' };

const operation: fc.Arbitrary<Operation> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      type: fc.constant('append' as const),
      batch: fc.array(
        fc.record({
          // A small pool of ids, so duplicates (in a call, across calls, after pruning) are common.
          n: fc.integer({ min: 0, max: 11 }),
          ttl: fc.integer({ min: 0, max: 40 }),
          reason: fc.option(fc.constantFrom('compromised', 'left the team', ''), { nil: null }),
        }),
        { maxLength: 5 },
      ),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ type: 'prune' as const }) },
  { weight: 1, arbitrary: fc.constant({ type: 'catch-up' as const }) },
);

/** Even `n` are link revocation ids, odd `n` identities: both kinds in every run. */
function entryFor(n: number, now: number, ttl: number, reason: string | null): DenyEntry {
  const base = n % 2 === 0 ? linkEntry(n, now + ttl) : identityEntry(n, now + ttl);
  const entry = { ...base, revokedAt: now };
  return reason === null ? entry : { ...entry, reason };
}

/** One contract for every DenySetRepository implementation. */
export function runDenySetRepositoryContract(
  name: string,
  create: () => { repository: DenySetRepository; close?: () => void },
): void {
  describe(`DenySetRepository contract: ${name}`, () => {
    it('starts empty at sequence 0', async () => {
      const { repository, close } = create();
      expect(await repository.currentSequence()).toBe(0);
      expect(await repository.snapshot(NOW)).toEqual({ sequence: 0, entries: [], issuedAt: NOW });
      expect(await repository.updatesSince(0, NOW)).toEqual({
        fromSequence: 0,
        toSequence: 0,
        entries: [],
        issuedAt: NOW,
      });
      close?.();
    });

    it('appends with one sequence step per new id and returns the update to push', async () => {
      const { repository, close } = create();
      const first = await repository.append(
        [linkEntry(1, NOW + 60, 'key leaked'), identityEntry(2)],
        NOW,
      );
      expect(first).toEqual({
        fromSequence: 0,
        toSequence: 2,
        entries: [linkEntry(1, NOW + 60, 'key leaked'), identityEntry(2)],
        issuedAt: NOW,
      });
      // Already present, and twice in one call: each new id takes exactly one step.
      const second = await repository.append(
        [linkEntry(1, NOW + 999), linkEntry(3), linkEntry(3, NOW + 5)],
        NOW + 1,
      );
      expect(second).toEqual({
        fromSequence: 2,
        toSequence: 3,
        entries: [linkEntry(3)],
        issuedAt: NOW + 1,
      });
      // Revoking only what is already revoked is a no-op at the current sequence.
      expect(await repository.append([identityEntry(2)], NOW + 2)).toEqual({
        fromSequence: 3,
        toSequence: 3,
        entries: [],
        issuedAt: NOW + 2,
      });
      expect(await repository.append([], NOW + 3)).toMatchObject({
        fromSequence: 3,
        toSequence: 3,
      });
      expect(await repository.currentSequence()).toBe(3);
      expect((await repository.snapshot(NOW)).entries).toEqual([
        linkEntry(1, NOW + 60, 'key leaked'),
        identityEntry(2),
        linkEntry(3),
      ]);
      // The pushed updates chain: a verifier fed them equals one built from the snapshot.
      const follower = new DenySet(OPTIONS);
      for (const update of [first, second]) follower.apply(update);
      expect(view(follower.snapshot(NOW))).toEqual(view(await repository.snapshot(NOW)));
      close?.();
    });

    it('stores only the known fields of an entry', async () => {
      const { repository, close } = create();
      const extra = { ...linkEntry(1), note: 'not a field' };
      await repository.append([extra], NOW);
      expect((await repository.snapshot(NOW)).entries).toEqual([linkEntry(1)]);
      close?.();
    });

    it('refuses a malformed entry and writes nothing of its call', async () => {
      const { repository, close } = create();
      await repository.append([linkEntry(1)], NOW);
      const bad: DenyEntry[] = [
        { ...linkEntry(2), id: revocationId(2).toUpperCase().replace('0', 'A') },
        { ...linkEntry(2), id: revocationId(2).slice(1) },
        { ...linkEntry(2), id: identity(2) },
        { ...identityEntry(2), id: revocationId(2) },
        { ...identityEntry(2), id: `i${identity(2).slice(1)}` },
        { ...linkEntry(2), expiresAt: -1 },
        { ...linkEntry(2), expiresAt: 1.5 },
        { ...linkEntry(2), revokedAt: Number.NaN },
        { ...linkEntry(2), revokedAt: 2 ** 53 },
        linkEntry(2, NOW, 'x'.repeat(201)),
        linkEntry(2, NOW, 'line\nbreak'),
      ];
      for (const entry of bad)
        expect(await rejectionCode(repository.append([linkEntry(3), entry], NOW))).toBe(
          'ERR_DENY_ENTRY_INVALID',
        );
      expect(await repository.currentSequence()).toBe(1);
      expect((await repository.snapshot(NOW)).entries).toEqual([linkEntry(1)]);
      // The bounds themselves are fine.
      await repository.append([linkEntry(4, 0, 'y'.repeat(200))], NOW);
      expect(await repository.currentSequence()).toBe(2);
      close?.();
    });

    it('refuses arguments that are not non-negative integers', async () => {
      const { repository, close } = create();
      for (const value of [-1, 0.5, Number.NaN, Number.POSITIVE_INFINITY]) {
        expect(await rejectionCode(repository.append([linkEntry(1)], value))).toBe(
          'ERR_ARGUMENT_INVALID',
        );
        expect(await rejectionCode(repository.updatesSince(value, NOW))).toBe(
          'ERR_ARGUMENT_INVALID',
        );
        expect(await rejectionCode(repository.updatesSince(0, value))).toBe('ERR_ARGUMENT_INVALID');
        expect(await rejectionCode(repository.snapshot(value))).toBe('ERR_ARGUMENT_INVALID');
        expect(await rejectionCode(repository.prune(value))).toBe('ERR_ARGUMENT_INVALID');
      }
      expect(await repository.currentSequence()).toBe(0);
      close?.();
    });

    it('returns everything after a sequence, and a gap when the caller is ahead', async () => {
      const { repository, close } = create();
      await repository.append([linkEntry(1), linkEntry(2), identityEntry(3)], NOW);
      await repository.append([linkEntry(4)], NOW + 1);
      expect(await repository.updatesSince(1, NOW + 2)).toEqual({
        fromSequence: 1,
        toSequence: 4,
        entries: [linkEntry(2), identityEntry(3), linkEntry(4)],
        issuedAt: NOW + 2,
      });
      expect(await repository.updatesSince(4, NOW + 2)).toMatchObject({
        fromSequence: 4,
        toSequence: 4,
        entries: [],
      });
      expect(await rejectionCode(repository.updatesSince(5, NOW))).toBe('ERR_DENY_SET_GAP');
      close?.();
    });

    it('prunes what expired before now, keeps the sequence, and never reuses a number', async () => {
      const { repository, close } = create();
      await repository.append(
        [linkEntry(1, NOW + 10), linkEntry(2, NOW + 20), identityEntry(3, NOW + 30)],
        NOW,
      );
      expect(await repository.prune(NOW + 10)).toBe(0); // expiresAt == now is kept
      expect(await repository.prune(NOW + 21)).toBe(2);
      expect(await repository.currentSequence()).toBe(3);
      expect(await repository.snapshot(NOW + 21)).toEqual({
        sequence: 3,
        entries: [identityEntry(3, NOW + 30)],
        issuedAt: NOW + 21,
      });
      // Entries a lagging verifier has not seen are gone: it must take a snapshot.
      expect(await rejectionCode(repository.updatesSince(0, NOW + 21))).toBe('ERR_DENY_SET_GAP');
      expect(await rejectionCode(repository.updatesSince(1, NOW + 21))).toBe('ERR_DENY_SET_GAP');
      expect(await repository.updatesSince(2, NOW + 21)).toMatchObject({
        fromSequence: 2,
        toSequence: 3,
        entries: [identityEntry(3, NOW + 30)],
      });
      // Pruning everything lowers nothing: the next entry takes the next number, and a pruned id
      // revoked again is a new entry.
      expect(await repository.prune(NOW + 31)).toBe(1);
      expect(await repository.currentSequence()).toBe(3);
      expect(await repository.append([linkEntry(1, NOW + 100)], NOW + 31)).toEqual({
        fromSequence: 3,
        toSequence: 4,
        entries: [linkEntry(1, NOW + 100)],
        issuedAt: NOW + 31,
      });
      expect(await repository.updatesSince(3, NOW + 31)).toMatchObject({
        toSequence: 4,
        entries: [linkEntry(1, NOW + 100)],
      });
      close?.();
    });

    it('leaves expired entries out of a snapshot before they are pruned', async () => {
      const { repository, close } = create();
      await repository.append([linkEntry(1, NOW + 5), linkEntry(2, NOW + 50)], NOW);
      expect(await repository.snapshot(NOW + 6)).toEqual({
        sequence: 2,
        entries: [linkEntry(2, NOW + 50)],
        issuedAt: NOW + 6,
      });
      // updatesSince cannot leave them out (one step per entry); the verifier prunes them.
      expect((await repository.updatesSince(0, NOW + 6)).entries).toHaveLength(2);
      close?.();
    });

    it('gives concurrent appends distinct, consecutive sequence numbers', async () => {
      const { repository, close } = create();
      const updates = await Promise.all(
        Array.from({ length: 20 }, (_, n) =>
          repository.append([linkEntry(n), linkEntry(n + 1)], NOW),
        ),
      );
      expect(await repository.currentSequence()).toBe(21);
      const ordered = [...updates].sort((a, b) => a.fromSequence - b.fromSequence);
      const follower = new DenySet(OPTIONS);
      for (const update of ordered) follower.apply(update);
      expect(follower.sequence).toBe(21);
      expect(view(follower.snapshot(NOW))).toEqual(view(await repository.snapshot(NOW)));
      close?.();
    });

    it('property: verifiers fed by pushes, by catching up, or by the final snapshot agree', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(operation, { maxLength: 25 }), async (operations) => {
          const { repository, close } = create();
          try {
            let now = NOW;
            let sequence = 0;
            // Fed every update append returns, in order, as a push channel would.
            const pushed = new DenySet(OPTIONS);
            // Catches up now and then through updatesSince, or a snapshot when it has a gap.
            let polling = new DenySet(OPTIONS);
            const catchUp = async (): Promise<void> => {
              try {
                polling.apply(await repository.updatesSince(polling.sequence, now));
              } catch (error) {
                if (!isMandateError(error, 'ERR_DENY_SET_GAP')) throw error;
                polling = DenySet.fromSnapshot(await repository.snapshot(now), OPTIONS);
              }
            };
            for (const op of operations) {
              now += 3;
              if (op.type === 'append') {
                const update = await repository.append(
                  op.batch.map((b) => entryFor(b.n, now, b.ttl, b.reason)),
                  now,
                );
                expect(update.fromSequence).toBe(sequence);
                expect(update.toSequence).toBe(sequence + update.entries.length);
                pushed.apply(update);
              } else if (op.type === 'prune') {
                await repository.prune(now);
              } else {
                await catchUp();
              }
              // Monotonic: pruning never lowers it, appending only raises it.
              const current = await repository.currentSequence();
              expect(current).toBeGreaterThanOrEqual(sequence);
              sequence = current;
            }
            await catchUp();
            const fromSnapshot = DenySet.fromSnapshot(await repository.snapshot(now), OPTIONS);
            const expected = view(fromSnapshot.snapshot(now));
            expect(expected.sequence).toBe(sequence);
            pushed.prune(now);
            polling.prune(now);
            expect(view(pushed.snapshot(now))).toEqual(expected);
            expect(view(polling.snapshot(now))).toEqual(expected);
          } finally {
            close?.();
          }
        }),
        { numRuns: 60 },
      );
    });
  });
}
