import { describe, expect, it } from 'vitest';
import { DenyEntryKind, DenySet, type DenyEntry } from '../credentials/index.js';
import { codeOf } from '../../test/helpers/errors.js';
import { DenySetFollower } from './deny-set-follower.js';
import { InProcessBus } from './in-process-bus.js';
import { BusTopic } from './types.js';

const NOW = 1_800_000_000;
const entry = (n: number): DenyEntry => ({
  kind: DenyEntryKind.revocationId,
  id: n.toString(16).padStart(32, '0'),
  expiresAt: NOW + 3600,
  revokedAt: NOW,
});
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 10));

describe('DenySetFollower', () => {
  it('keeps the very DenySet it was given in step: snapshot, updates, heartbeats', async () => {
    const bus = new InProcessBus();
    bus.publishSnapshot(BusTopic.denySet, { sequence: 1, entries: [entry(1)], issuedAt: NOW });
    const set = new DenySet({ maxStalenessSeconds: 5 });
    const follower = new DenySetFollower(bus, set);
    expect(
      codeOf(() => {
        set.assertNoneRevoked([], NOW);
      }),
    ).toBe('ERR_DENY_SET_STALE');
    follower.start();
    await follower.ready;
    expect(set.isRevoked(entry(1).id)).toBe(true);
    bus.publish(BusTopic.denySet, {
      fromSequence: 1,
      toSequence: 2,
      entries: [entry(2)],
      issuedAt: NOW + 1,
    });
    await settle();
    expect(
      codeOf(() => {
        set.assertNoneRevoked([entry(2).id], NOW + 1);
      }),
    ).toBe('ERR_REVOKED');
    // Silence past the bound fails closed; a heartbeat refreshes.
    expect(
      codeOf(() => {
        set.assertNoneRevoked([], NOW + 7);
      }),
    ).toBe('ERR_DENY_SET_STALE');
    bus.heartbeat(BusTopic.denySet, NOW + 7);
    await settle();
    expect(
      codeOf(() => {
        set.assertNoneRevoked([], NOW + 7);
      }),
    ).toBe('accepted');
    follower.stop();
    bus.heartbeat(BusTopic.denySet, NOW + 20);
    await settle();
    expect(
      codeOf(() => {
        set.assertNoneRevoked([], NOW + 20);
      }),
    ).toBe('ERR_DENY_SET_STALE');
  });

  it('does not follow a list that went back: the set keeps its entries and goes stale', async () => {
    const bus = new InProcessBus();
    bus.publishSnapshot(BusTopic.denySet, { sequence: 1, entries: [entry(1)], issuedAt: NOW });
    const set = DenySet.fromSnapshot(
      { sequence: 3, entries: [entry(1), entry(2), entry(3)], issuedAt: NOW - 10 },
      { maxStalenessSeconds: 5 },
    );
    const follower = new DenySetFollower(bus, set);
    follower.start();
    bus.heartbeat(BusTopic.denySet, NOW + 1);
    await settle();
    expect(set.sequence).toBe(3);
    expect(set.isRevoked(entry(3).id)).toBe(true);
    expect(
      codeOf(() => {
        set.assertNoneRevoked([], NOW + 1);
      }),
    ).toBe('ERR_DENY_SET_STALE');
    follower.stop();
  });

  it('waits for word from the publisher: a snapshot of a bus never refreshed is not ready', async () => {
    const bus = new InProcessBus();
    const set = new DenySet({ maxStalenessSeconds: 5 });
    const follower = new DenySetFollower(bus, set);
    let ready = false;
    void follower.ready.then(() => {
      ready = true;
    });
    follower.start();
    await settle();
    expect(ready).toBe(false);
    bus.heartbeat(BusTopic.denySet, NOW);
    await settle();
    expect(ready).toBe(true);
    follower.stop();
  });
});
