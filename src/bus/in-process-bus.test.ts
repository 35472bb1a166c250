import { describe, expect, it } from 'vitest';
import { DenyEntryKind, type DenyEntry } from '../credentials/index.js';
import type { MandateError } from '../core/index.js';
import { InProcessBus } from './in-process-bus.js';
import { BusTopic, type BusMessage } from './types.js';

const NOW = 1_800_000_000;
const entry = (n: number): DenyEntry => ({
  kind: DenyEntryKind.revocationId,
  id: n.toString(16).padStart(32, '0'),
  expiresAt: NOW + 3600,
  revokedAt: NOW,
});
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 10));
const publishOne = (bus: InProcessBus, n: number): void => {
  bus.publish(BusTopic.denySet, {
    fromSequence: n - 1,
    toSequence: n,
    entries: [entry(n)],
    issuedAt: NOW,
  });
};

// What only the in-process bus does (the contract suite covers the rest).
describe('InProcessBus', () => {
  it('sends a subscriber that falls too far behind one snapshot instead of its queue', async () => {
    const bus = new InProcessBus({ maxQueued: 4 });
    const got: BusMessage<'deny-set'>[] = [];
    let release: (() => void) | undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    bus.subscribe(BusTopic.denySet, {
      onMessage: async (m) => {
        got.push(m);
        await gate;
      },
    });
    await settle(); // the first snapshot is being handled, and holds the queue
    for (let n = 1; n <= 10; n++) publishOne(bus, n);
    release?.();
    await settle();
    // Updates 1–4 queued; 5 overflowed them into a snapshot at 5; 6–8 queued behind it; 9
    // overflowed again: a snapshot at 9, then update 10.
    expect(
      got.map((m) =>
        m.type === 'snapshot'
          ? `snapshot@${String(m.snapshot.sequence)}`
          : m.type === 'update'
            ? `update ${String(m.update.fromSequence)}→${String(m.update.toSequence)}`
            : 'heartbeat',
      ),
    ).toEqual(['snapshot@0', 'snapshot@9', 'update 9→10']);
  });

  it('ends a subscription whose handler throws, and every subscription when closed', async () => {
    const bus = new InProcessBus();
    const ended: string[] = [];
    bus.subscribe(BusTopic.denySet, {
      onMessage: () => {
        throw new Error('boom');
      },
      onEnd: (error: MandateError) => ended.push(`a:${error.code}`),
    });
    const other: BusMessage<'bundles'>[] = [];
    bus.subscribe(BusTopic.bundles, {
      onMessage: (m) => {
        other.push(m);
      },
      onEnd: (error: MandateError) => ended.push(`b:${error.code}`),
    });
    await settle();
    expect(ended).toEqual(['a:ERR_BUS_SUBSCRIBER_FAILED']);
    bus.close();
    expect(ended).toEqual(['a:ERR_BUS_SUBSCRIBER_FAILED', 'b:ERR_BUS_CLOSED']);
    expect(() => {
      publishOne(bus, 1);
    }).toThrow(expect.objectContaining({ code: 'ERR_BUS_CLOSED' }) as Error);
    expect(() => bus.subscribe(BusTopic.denySet, { onMessage: () => undefined })).toThrow(
      expect.objectContaining({ code: 'ERR_BUS_CLOSED' }) as Error,
    );
  });

  it('drops expired deny entries from the snapshots it gives', async () => {
    const bus = new InProcessBus();
    bus.publish(BusTopic.denySet, {
      fromSequence: 0,
      toSequence: 2,
      entries: [{ ...entry(1), expiresAt: NOW + 10 }, entry(2)],
      issuedAt: NOW,
    });
    bus.heartbeat(BusTopic.denySet, NOW + 100);
    const got: BusMessage<'deny-set'>[] = [];
    bus.subscribe(BusTopic.denySet, { onMessage: (m) => void got.push(m) });
    await settle();
    expect(got[0]?.type === 'snapshot' && got[0].snapshot).toEqual({
      sequence: 2,
      entries: [entry(2)],
      issuedAt: NOW + 100,
    });
  });
});
