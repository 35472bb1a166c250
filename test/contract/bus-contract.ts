import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import {
  BusTopic,
  type BusMessage,
  type BusPublisher,
  type BusSubscriber,
  type BusSubscription,
  type PublishedBundle,
  type SubscribeOptions,
} from '../../src/bus/index.js';
import { DenySet, DenyEntryKind, type DenyEntry } from '../../src/credentials/index.js';
import { expectCode } from '../helpers/errors.js';

/**
 * What every bus promises (DESIGN.md §2, docs/spec/policy.md §3), whatever carries the messages:
 * one suite, run against the in-process bus and the bus over a secure channel alike
 * (test/contract/bus.test.ts). The publisher side is always the authority's in-process bus; the
 * subscriber side is the implementation under test.
 */
export interface BusWorld {
  readonly publisher: BusPublisher;
  readonly subscriber: BusSubscriber;
  close(): Promise<void>;
}

export interface BusFactory {
  readonly name: string;
  /** A fresh publisher and a subscriber of it; `retainedSequences` as InProcessBusOptions. */
  make(options?: { readonly retainedSequences?: number }): Promise<BusWorld>;
}

export const NOW = 1_800_000_000;

export const revocation = (n: number, expiresAt = NOW + 3600): DenyEntry => ({
  kind: DenyEntryKind.revocationId,
  id: n.toString(16).padStart(32, '0'),
  expiresAt,
  revokedAt: NOW,
});

export const bundle = (version: number, size = 16): PublishedBundle => ({
  version,
  hash: version.toString(16).padStart(64, '0'),
  bytes: new Uint8Array(size).fill(version & 0xff),
});

/** Messages as they arrive, and a way to wait for one. */
function recorder<T extends BusTopic>() {
  const messages: BusMessage<T>[] = [];
  const waiters: (() => void)[] = [];
  const options: SubscribeOptions<T> = {
    onMessage: (message) => {
      messages.push(message);
      for (const wake of waiters.splice(0)) wake();
    },
  };
  return {
    messages,
    options,
    /** Resolves once `predicate` holds for the messages so far (at most `timeoutMs`). */
    until: (predicate: (messages: readonly BusMessage<T>[]) => boolean, timeoutMs = 5_000) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(new Error(`timed out; got ${JSON.stringify(messages.map((m) => m.type))}`));
        }, timeoutMs);
        const check = (): void => {
          if (predicate(messages)) {
            clearTimeout(timer);
            resolve();
          } else waiters.push(check);
        };
        check();
      }),
  };
}

/** The sequence a subscriber is at after `messages` (-1: nothing yet). */
const sequenceAfter = (messages: readonly BusMessage<BusTopic>[]): number => {
  let sequence = -1;
  for (const m of messages)
    sequence =
      m.type === 'snapshot'
        ? m.snapshot.sequence
        : m.type === 'update'
          ? m.update.toSequence
          : sequence;
  return sequence;
};

/** A quiet moment: whatever was going to arrive has arrived. */
const settle = (ms = 100): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export function busContract(factory: BusFactory): void {
  describe(`bus contract: ${factory.name}`, () => {
    const worlds: BusWorld[] = [];
    const subscriptions: BusSubscription[] = [];
    const make = async (options?: { retainedSequences?: number }) => {
      const world = await factory.make(options);
      worlds.push(world);
      return world;
    };
    afterEach(async () => {
      for (const s of subscriptions.splice(0)) s.unsubscribe();
      await Promise.all(worlds.splice(0).map((w) => w.close()));
    });

    it('gives a new subscriber a snapshot, then every update in order', async () => {
      const { publisher, subscriber } = await make();
      publisher.publishSnapshot(BusTopic.denySet, {
        sequence: 2,
        entries: [revocation(1), revocation(2)],
        issuedAt: NOW,
      });
      const r = recorder<'deny-set'>();
      subscriptions.push(subscriber.subscribe(BusTopic.denySet, r.options));
      await r.until((m) => m.length >= 1);
      expect(r.messages[0]).toStrictEqual({
        type: 'snapshot',
        snapshot: { sequence: 2, entries: [revocation(1), revocation(2)], issuedAt: NOW },
      });
      publisher.publish(BusTopic.denySet, {
        fromSequence: 2,
        toSequence: 3,
        entries: [revocation(3)],
        issuedAt: NOW + 1,
      });
      publisher.publish(BusTopic.denySet, {
        fromSequence: 3,
        toSequence: 5,
        entries: [revocation(4), revocation(5)],
        issuedAt: NOW + 2,
      });
      await r.until((m) => sequenceAfter(m) === 5);
      const updates = r.messages.filter((m) => m.type === 'update');
      expect(updates.map((m) => [m.update.fromSequence, m.update.toSequence])).toStrictEqual([
        [2, 3],
        [3, 5],
      ]);
      expect(updates[1]?.update.entries).toStrictEqual([revocation(4), revocation(5)]);
    });

    it('resumes a subscriber from its sequence with the updates it missed, without a snapshot', async () => {
      const { publisher, subscriber } = await make();
      for (let i = 0; i < 4; i++)
        publisher.publish(BusTopic.denySet, {
          fromSequence: i,
          toSequence: i + 1,
          entries: [revocation(i + 1)],
          issuedAt: NOW + i,
        });
      const r = recorder<'deny-set'>();
      subscriptions.push(subscriber.subscribe(BusTopic.denySet, { ...r.options, fromSequence: 1 }));
      await r.until((m) => sequenceAfter(m) === 4);
      await settle();
      expect(r.messages.map((m) => m.type)).not.toContain('snapshot');
      const entries = r.messages.flatMap((m) => (m.type === 'update' ? m.update.entries : []));
      expect(entries).toStrictEqual([revocation(2), revocation(3), revocation(4)]);
      expect(r.messages.find((m) => m.type === 'update')?.update.fromSequence).toBe(1);
    });

    it('sends a snapshot to a subscriber too far behind, or ahead of the topic', async () => {
      const { publisher, subscriber } = await make({ retainedSequences: 2 });
      for (let i = 0; i < 5; i++)
        publisher.publish(BusTopic.denySet, {
          fromSequence: i,
          toSequence: i + 1,
          entries: [revocation(i + 1)],
          issuedAt: NOW + i,
        });
      for (const fromSequence of [1, 9]) {
        const r = recorder<'deny-set'>();
        subscriptions.push(subscriber.subscribe(BusTopic.denySet, { ...r.options, fromSequence }));
        await r.until((m) => m.length >= 1);
        const first = r.messages[0];
        expect(first?.type, `from ${fromSequence}`).toBe('snapshot');
        if (first?.type === 'snapshot') {
          expect(first.snapshot.sequence).toBe(5);
          expect(first.snapshot.entries).toHaveLength(5);
          expect(first.snapshot.issuedAt).toBe(NOW + 4);
        }
      }
      // Within what is kept: the updates only.
      const r = recorder<'deny-set'>();
      subscriptions.push(subscriber.subscribe(BusTopic.denySet, { ...r.options, fromSequence: 3 }));
      await r.until((m) => sequenceAfter(m) === 5);
      expect(r.messages[0]?.type).toBe('update');
    });

    it('passes heartbeats on, with the topic’s sequence, and ignores older ones', async () => {
      const { publisher, subscriber } = await make();
      publisher.publish(BusTopic.denySet, {
        fromSequence: 0,
        toSequence: 1,
        entries: [revocation(1)],
        issuedAt: NOW,
      });
      const r = recorder<'deny-set'>();
      subscriptions.push(subscriber.subscribe(BusTopic.denySet, r.options));
      await r.until((m) => m.length >= 1);
      publisher.heartbeat(BusTopic.denySet, NOW + 5);
      publisher.heartbeat(BusTopic.denySet, NOW + 3);
      await r.until((m) => m.some((x) => x.type === 'heartbeat' && x.issuedAt === NOW + 5));
      await settle();
      const beats = r.messages.filter((m) => m.type === 'heartbeat');
      expect(beats.every((m) => m.sequence === 1)).toBe(true);
      expect(beats.map((m) => m.issuedAt)).not.toContain(NOW + 3);
    });

    it('sends a new snapshot to subscribers behind it', async () => {
      const { publisher, subscriber } = await make();
      const r = recorder<'deny-set'>();
      subscriptions.push(subscriber.subscribe(BusTopic.denySet, r.options));
      await r.until((m) => m.length >= 1);
      publisher.publishSnapshot(BusTopic.denySet, {
        sequence: 7,
        entries: [revocation(7)],
        issuedAt: NOW,
      });
      await r.until((m) => sequenceAfter(m) === 7);
      expect(r.messages.at(-1)).toMatchObject({ type: 'snapshot', snapshot: { sequence: 7 } });
    });

    it('stops delivering after unsubscribe', async () => {
      const { publisher, subscriber } = await make();
      const r = recorder<'deny-set'>();
      const subscription = subscriber.subscribe(BusTopic.denySet, r.options);
      await r.until((m) => m.length >= 1);
      subscription.unsubscribe();
      publisher.publish(BusTopic.denySet, {
        fromSequence: 0,
        toSequence: 1,
        entries: [revocation(1)],
        issuedAt: NOW,
      });
      await settle(200);
      expect(r.messages).toHaveLength(1);
    });

    it('carries bundles: the latest in a snapshot, each new one in order, bytes intact', async () => {
      const { publisher, subscriber } = await make();
      publisher.publish(BusTopic.bundles, {
        fromSequence: 0,
        toSequence: 2,
        bundles: [bundle(1), bundle(2)],
        issuedAt: NOW,
      });
      const r = recorder<'bundles'>();
      subscriptions.push(subscriber.subscribe(BusTopic.bundles, r.options));
      await r.until((m) => m.length >= 1);
      expect(r.messages[0]).toStrictEqual({
        type: 'snapshot',
        snapshot: { sequence: 2, bundle: bundle(2), issuedAt: NOW },
      });
      // A large bundle (beyond one secure-channel message) arrives whole.
      const big = bundle(3, 600 * 1024);
      publisher.publish(BusTopic.bundles, {
        fromSequence: 2,
        toSequence: 3,
        bundles: [big],
        issuedAt: NOW + 1,
      });
      await r.until((m) => sequenceAfter(m) === 3);
      const last = r.messages.at(-1);
      const got = last?.type === 'update' ? last.update.bundles[0] : undefined;
      expect(got && { version: got.version, hash: got.hash }).toEqual({
        version: 3,
        hash: big.hash,
      });
      // Compared as one buffer: an element-wise deep equality of 600 KiB takes seconds.
      expect(got !== undefined && Buffer.from(got.bytes).equals(Buffer.from(big.bytes))).toBe(true);
      // The topics are independent.
      expect(subscriber.subscribe(BusTopic.denySet, recorder<'deny-set'>().options)).toBeDefined();
    });

    it('refuses unknown topics, bad sequences and malformed or out-of-turn publications', async () => {
      const { publisher, subscriber } = await make();
      expectCode(
        () => subscriber.subscribe('policies' as BusTopic, recorder().options),
        'ERR_BUS_TOPIC_UNKNOWN',
      );
      expectCode(
        () =>
          subscriber.subscribe(BusTopic.denySet, {
            ...recorder<'deny-set'>().options,
            fromSequence: -1,
          }),
        'ERR_ARGUMENT_INVALID',
      );
      const update = { fromSequence: 0, toSequence: 1, entries: [revocation(1)], issuedAt: NOW };
      publisher.publish(BusTopic.denySet, update);
      expectCode(() => {
        publisher.publish(BusTopic.denySet, update);
      }, 'ERR_BUS_SEQUENCE_CONFLICT');
      expectCode(() => {
        publisher.publish(BusTopic.denySet, { ...update, fromSequence: 1, toSequence: 3 });
      }, 'ERR_BUS_MESSAGE_INVALID');
      expectCode(() => {
        publisher.publish(BusTopic.denySet, {
          fromSequence: 1,
          toSequence: 2,
          entries: [{ ...revocation(2), id: 'not-an-id' }],
          issuedAt: NOW,
        });
      }, 'ERR_BUS_MESSAGE_INVALID');
      expectCode(() => {
        publisher.publish(BusTopic.bundles, {
          fromSequence: 0,
          toSequence: 1,
          bundles: [{ ...bundle(1), hash: 'AB' }],
          issuedAt: NOW,
        });
      }, 'ERR_BUS_MESSAGE_INVALID');
      expectCode(() => {
        publisher.publishSnapshot(BusTopic.denySet, { sequence: 0, entries: [], issuedAt: NOW });
      }, 'ERR_BUS_SEQUENCE_CONFLICT');
      expect(publisher.sequence(BusTopic.denySet)).toBe(1);
      expect(publisher.sequence(BusTopic.bundles)).toBe(0);
    });

    it('brings every subscriber, whenever it joins and from wherever, to the publisher’s deny-set', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(
            fc.oneof(
              fc.record({
                op: fc.constant('publish' as const),
                count: fc.integer({ min: 0, max: 3 }),
              }),
              fc.record({
                op: fc.constant('snapshot' as const),
                skip: fc.integer({ min: 0, max: 3 }),
              }),
              fc.record({
                op: fc.constant('subscribe' as const),
                from: fc.option(fc.integer({ min: 0, max: 20 }), { nil: undefined }),
              }),
            ),
            { maxLength: 12 },
          ),
          fc.integer({ min: 1, max: 6 }),
          async (ops, retainedSequences) => {
            const { publisher, subscriber } = await make({ retainedSequences });
            const followers: DenySet[] = [];
            const truth = new DenySet({ maxStalenessSeconds: 60 });
            truth.applySnapshot({ sequence: 0, entries: [], issuedAt: NOW });
            let next = 1;
            const subscribe = (from: number | undefined): void => {
              const set = new DenySet({ maxStalenessSeconds: 60 });
              // A subscriber resuming from `from` holds the truth up to there; one past it holds nothing.
              if (from !== undefined && from > 0 && from <= truth.sequence)
                set.applySnapshot({
                  sequence: from,
                  entries: truth.snapshot(NOW).entries.filter((e) => parseInt(e.id, 16) <= from),
                  issuedAt: NOW,
                });
              followers.push(set);
              subscriptions.push(
                subscriber.subscribe(BusTopic.denySet, {
                  ...(from === undefined || from > truth.sequence ? {} : { fromSequence: from }),
                  onMessage: (m) => {
                    if (m.type === 'snapshot') set.applySnapshot(m.snapshot);
                    else if (m.type === 'update') set.apply(m.update);
                    else set.markFresh(m.sequence, m.issuedAt);
                  },
                }),
              );
            };
            for (const op of ops) {
              if (op.op === 'publish') {
                const entries = Array.from({ length: op.count }, () => revocation(next++));
                const update = {
                  fromSequence: truth.sequence,
                  toSequence: truth.sequence + entries.length,
                  entries,
                  issuedAt: NOW,
                };
                publisher.publish(BusTopic.denySet, update);
                truth.apply(update);
              } else if (op.op === 'snapshot') {
                const entries = Array.from({ length: op.skip }, () => revocation(next++));
                truth.apply({
                  fromSequence: truth.sequence,
                  toSequence: truth.sequence + entries.length,
                  entries,
                  issuedAt: NOW,
                });
                publisher.publishSnapshot(BusTopic.denySet, truth.snapshot(NOW));
              } else subscribe(op.from);
            }
            subscribe(undefined);
            publisher.heartbeat(BusTopic.denySet, NOW + 1);
            const deadline = Date.now() + 5_000;
            while (followers.some((f) => f.sequence !== truth.sequence) && Date.now() < deadline)
              await settle(10);
            for (const f of followers) {
              expect(f.sequence).toBe(truth.sequence);
              expect(new Set(f.snapshot(NOW).entries.map((e) => e.id))).toStrictEqual(
                new Set(truth.snapshot(NOW).entries.map((e) => e.id)),
              );
            }
            for (const s of subscriptions.splice(0)) s.unsubscribe();
          },
        ),
        { numRuns: 25, seed: 10 },
      );
    }, 60_000);
  });
}
