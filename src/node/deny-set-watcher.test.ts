import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock, systemClock, type LogFields, type Logger } from '../core/index.js';
import {
  MemoryDenySetRepository,
  type DenyEntry,
  type DenySetRepository,
} from '../credentials/index.js';
import { openSqliteStore } from '../store/index.js';
import { codeOf } from '../../test/helpers/errors.js';
import { DenySetWatcher } from './deny-set-watcher.js';

// The live deny-set of a process on one home: a snapshot at start, then the store polled.

const NOW = 1_800_000_000;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const identity = (n: number): string => `I${n.toString(16).padStart(64, '0')}`;
const revoked = (n: number, expiresAt = NOW + 86_400): DenyEntry => ({
  kind: 'identity',
  id: identity(n),
  expiresAt,
  revokedAt: NOW,
});

/**
 * Fault injection: a repository that forwards to `target` (which a test may replace, as a
 * replaced database would be) until told to fail, and counts the calls it gets.
 */
class FaultyRepository implements Pick<DenySetRepository, 'snapshot' | 'updatesSince'> {
  failing = false;
  calls = 0;
  constructor(public target: DenySetRepository) {}
  snapshot(nowSeconds: number) {
    return this.#call(() => this.target.snapshot(nowSeconds));
  }
  updatesSince(sequence: number, nowSeconds: number) {
    return this.#call(() => this.target.updatesSince(sequence, nowSeconds));
  }
  #call<T>(read: () => Promise<T>): Promise<T> {
    this.calls++;
    return this.failing ? Promise.reject(new Error('database is locked')) : read();
  }
}

function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const log =
    (level: string) =>
    (message: string, fields?: LogFields): void => {
      lines.push(`${level} ${message} ${JSON.stringify(fields ?? {})}`);
    };
  return { lines, debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}

async function watch(options: Parameters<typeof DenySetWatcher.start>[0]) {
  const watcher = await DenySetWatcher.start(options);
  cleanups.push(() => watcher.stop());
  return watcher;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('DenySetWatcher', () => {
  it('starts from a snapshot and sees a revocation another connection makes within a poll', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'mandate-watch-')), 'mandate.db');
    const ours = openSqliteStore(path);
    const theirs = openSqliteStore(path); // another process on the same home
    cleanups.push(() => {
      ours.close();
    });
    cleanups.push(() => {
      theirs.close();
    });
    const now = systemClock.nowSeconds();
    await theirs.denySet.append([revoked(1, now + 3600)], now);
    const watcher = await watch({
      repository: ours.denySet,
      maxStalenessSeconds: 10,
      pollIntervalMs: 20,
    });
    const set = watcher.denySet;
    expect(set.isRevoked(identity(1))).toBe(true);
    expect(set.sequence).toBe(1);
    set.assertNoneRevoked([identity(2)], systemClock.nowSeconds());

    await theirs.denySet.append([revoked(2, now + 3600)], systemClock.nowSeconds());
    const started = Date.now();
    while (!set.isRevoked(identity(2)) && Date.now() - started < 2_000) await sleep(10);
    // The same object every verifier holds, updated in place.
    expect(watcher.denySet).toBe(set);
    expect(
      codeOf(() => {
        set.assertNoneRevoked([identity(2)], systemClock.nowSeconds());
      }),
    ).toBe('ERR_REVOKED');
    expect(set.sequence).toBe(2);
  });

  it('catches up at once on demand: a revocation committed before catchUp() is in the set after it', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'mandate-watch-')), 'mandate.db');
    const ours = openSqliteStore(path);
    const theirs = openSqliteStore(path); // `mandate revoke`, another process on the same home
    cleanups.push(() => {
      ours.close();
    });
    cleanups.push(() => {
      theirs.close();
    });
    const now = systemClock.nowSeconds();
    // A poll interval no test waits for: only catchUp() can bring the revocation in.
    const watcher = await watch({
      repository: ours.denySet,
      maxStalenessSeconds: 7_200,
      pollIntervalMs: 3_600_000,
    });
    const set = watcher.denySet;
    await watcher.catchUp(); // nothing new: no change
    expect(set.sequence).toBe(0);
    await theirs.denySet.append([revoked(1, now + 3600)], now);
    expect(set.isRevoked(identity(1))).toBe(false);
    await watcher.catchUp();
    expect(set.isRevoked(identity(1))).toBe(true);
    expect(set.sequence).toBe(1);
    // Many calls at once, each after a second revocation: all see it.
    await theirs.denySet.append([revoked(2, now + 3600)], now);
    await Promise.all(Array.from({ length: 8 }, () => watcher.catchUp()));
    expect(set.isRevoked(identity(2))).toBe(true);
  });

  it('fails closed once polls have failed for longer than the bound, and recovers', async () => {
    const clock = new ManualClock(NOW);
    const memory = new MemoryDenySetRepository();
    const repository = new FaultyRepository(memory);
    const logger = recordingLogger();
    const watcher = await watch({
      repository,
      maxStalenessSeconds: 5,
      pollIntervalMs: 3_600_000, // polled by hand here
      clock,
      logger,
    });
    const set = watcher.denySet;
    repository.failing = true;
    clock.advance(3);
    await watcher.refresh();
    clock.advance(2);
    await watcher.refresh();
    // Last refreshed at NOW: still within the bound.
    set.assertNoneRevoked([identity(1)], clock.nowSeconds());
    clock.advance(1);
    expect(
      codeOf(() => {
        set.assertNoneRevoked([identity(1)], clock.nowSeconds());
      }),
    ).toBe('ERR_DENY_SET_STALE');
    // A lasting failure is logged once.
    expect(logger.lines.filter((l) => l.startsWith('warn deny-set: poll failed'))).toHaveLength(1);

    repository.failing = false;
    await memory.append([revoked(1)], clock.nowSeconds());
    await watcher.refresh();
    expect(
      codeOf(() => {
        set.assertNoneRevoked([identity(1)], clock.nowSeconds());
      }),
    ).toBe('ERR_REVOKED');
    set.assertNoneRevoked([identity(2)], clock.nowSeconds());
    expect(logger.lines.some((l) => l.startsWith('info deny-set: poll recovered'))).toBe(true);
  });

  it('catches up from a snapshot after pruning, and does not follow a list that went back', async () => {
    const clock = new ManualClock(NOW);
    const memory = new MemoryDenySetRepository();
    await memory.append([revoked(1)], NOW);
    const repository = new FaultyRepository(memory);
    const watcher = await watch({
      repository,
      maxStalenessSeconds: 5,
      pollIntervalMs: 3_600_000,
      clock,
    });
    const set = watcher.denySet;
    // Entry 2 is appended and pruned before the watcher polls: updates cannot bridge the gap.
    await memory.append([revoked(2, NOW + 1), revoked(3)], NOW);
    await memory.prune(NOW + 2);
    clock.advance(4);
    await watcher.refresh();
    expect(set.sequence).toBe(3);
    expect(set.isRevoked(identity(3))).toBe(true);
    set.assertNoneRevoked([identity(4)], clock.nowSeconds());

    // The database was replaced by an empty one: its list is behind the set's sequence.
    repository.target = new MemoryDenySetRepository();
    clock.advance(6);
    await watcher.refresh();
    expect(set.sequence).toBe(3);
    expect(set.isRevoked(identity(3))).toBe(true);
    expect(
      codeOf(() => {
        set.assertNoneRevoked([identity(4)], clock.nowSeconds());
      }),
    ).toBe('ERR_DENY_SET_STALE');
  });

  it('stops cleanly: the poll in flight finishes, and no timer is left', async () => {
    const repository = new FaultyRepository(new MemoryDenySetRepository());
    const watcher = await DenySetWatcher.start({
      repository,
      maxStalenessSeconds: 10,
      pollIntervalMs: 5,
    });
    await sleep(50);
    expect(repository.calls).toBeGreaterThan(2);
    const polling = watcher.refresh();
    await watcher.stop();
    await polling;
    const calls = repository.calls;
    await sleep(50);
    expect(repository.calls).toBe(calls);
  });

  it('refuses a bad poll interval, and does not start without its snapshot', async () => {
    const repository = new FaultyRepository(new MemoryDenySetRepository());
    for (const pollIntervalMs of [0, -1, 1.5, Number.NaN]) {
      await expect(
        DenySetWatcher.start({ repository, maxStalenessSeconds: 10, pollIntervalMs }),
      ).rejects.toMatchObject({ code: 'ERR_ARGUMENT_INVALID' });
    }
    await expect(
      DenySetWatcher.start({ repository, maxStalenessSeconds: -1 }),
    ).rejects.toMatchObject({ code: 'ERR_ARGUMENT_INVALID' });
    repository.failing = true;
    await expect(DenySetWatcher.start({ repository, maxStalenessSeconds: 10 })).rejects.toThrow(
      'database is locked',
    );
  });
});
