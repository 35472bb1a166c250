import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  AuditLog,
  MemoryAuditLogRepository,
  type AuditLogEntry,
  type AuditLogRepository,
  type MerkleNodeId,
  type StoredCheckpoint,
  type StoredMerkleNode,
} from '../audit/index.js';
import type { LogFields } from '../core/index.js';
import { CachedAuditTrail, TrailCacheReset } from './audit-trail-cache.js';
import { readAuditTrail, readLogEntries } from './audit-trail-view.js';

// The admin API's trail cache against a fresh read of the whole store (readAuditTrail over
// readLogEntries, what the API did on every request before): equal after any appends; a store
// that is shorter, rewritten with its hashes, or truncated and appended again is read afresh;
// only the entries past what was read are read again.

// A2's golden records, in their file's order (each after the record it names): two invocations,
// a decision, an escalation, an outcome, a lease, a trace, a chain record and an invocation
// naming that chain by hash.
const golden = JSON.parse(
  readFileSync(new URL('../../docs/spec/vectors/audit-records.json', import.meta.url), 'utf8'),
) as Record<string, { text?: string }>;
const utf8 = new TextEncoder();
function record(name: string): Uint8Array {
  const text = golden[name]?.text;
  if (text === undefined) throw new Error(`no golden record \`${name}\``);
  return utf8.encode(text);
}
const RECORDS = Object.values(golden).flatMap((v) =>
  v.text === undefined ? [] : [utf8.encode(v.text)],
);
// Lines the trail skips: not JSON, not an object.
const JUNK = [utf8.encode('not json'), utf8.encode('[1]')];

/** A store whose log can be swapped for another (shortened, rewritten) and whose reads are counted. */
class SwappableRepository implements AuditLogRepository {
  inner: AuditLogRepository;
  readonly reads: [number, number][] = [];
  nodeReads = 0;
  failNodes = false;
  /** While set, reads of entries wait for it. */
  gate: Promise<void> | undefined;

  constructor(inner: AuditLogRepository) {
    this.inner = inner;
  }
  size(): Promise<number> {
    return this.inner.size();
  }
  append(from: number, entries: readonly AuditLogEntry[], nodes: readonly StoredMerkleNode[]) {
    return this.inner.append(from, entries, nodes);
  }
  async readEntries(from: number, to: number): Promise<AuditLogEntry[]> {
    this.reads.push([from, to]);
    await this.gate;
    return this.inner.readEntries(from, to);
  }
  readNodes(nodes: readonly MerkleNodeId[]): Promise<Uint8Array[]> {
    this.nodeReads++;
    if (this.failNodes) return Promise.reject(new Error('disk gone'));
    return this.inner.readNodes(nodes);
  }
  putCheckpoint(checkpoint: StoredCheckpoint): Promise<void> {
    return this.inner.putCheckpoint(checkpoint);
  }
  latestCheckpoint(): Promise<StoredCheckpoint | undefined> {
    return this.inner.latestCheckpoint();
  }
  listCheckpoints(): Promise<StoredCheckpoint[]> {
    return this.inner.listCheckpoints();
  }
}

/** A memory log holding `records`, appended through `AuditLog` (real leaf and subtree hashes). */
async function logOf(records: readonly Uint8Array[]): Promise<MemoryAuditLogRepository> {
  const repository = new MemoryAuditLogRepository();
  await append(repository, records);
  return repository;
}

async function append(repository: AuditLogRepository, records: readonly Uint8Array[]) {
  const log = await AuditLog.open({ repository, origin: 'example.com/trail-cache' });
  for (const r of records) await log.append(r);
}

/** What the API answered before the cache: the whole store, read and parsed now (uncounted). */
async function freshCalls(repository: AuditLogRepository) {
  const store = repository instanceof SwappableRepository ? repository.inner : repository;
  return readAuditTrail(await readLogEntries(store)).calls;
}

function recordingLogger() {
  const warned: { message: string; fields?: LogFields }[] = [];
  const noop = () => undefined;
  return {
    warned,
    logger: {
      debug: noop,
      info: noop,
      error: noop,
      warn: (message: string, fields?: LogFields) => {
        warned.push({ message, ...(fields === undefined ? {} : { fields }) });
      },
    },
  };
}

describe('CachedAuditTrail', () => {
  it('equals a fresh read of the store after any appends, in any batches', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(fc.constantFrom(...RECORDS, ...JUNK), { minLength: 0, maxLength: 6 }), {
          minLength: 1,
          maxLength: 6,
        }),
        async (batches) => {
          const repository = new MemoryAuditLogRepository();
          const trail = new CachedAuditTrail(repository);
          let version = (await trail.read()).version;
          for (const batch of batches) {
            const before = await repository.size();
            await append(repository, batch);
            const snapshot = await trail.read();
            expect(snapshot.size).toBe(before + batch.length);
            expect(snapshot.calls).toEqual(await freshCalls(repository));
            // A new version exactly when entries were added.
            expect(snapshot.version !== version).toBe(batch.length > 0);
            version = snapshot.version;
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('reads only the entries past what it read; an unchanged store costs a size and O(log n) nodes', async () => {
    const repository = new SwappableRepository(await logOf(RECORDS));
    const trail = new CachedAuditTrail(repository);
    expect((await trail.read()).calls).toHaveLength(3);
    expect(repository.reads).toEqual([[0, 9]]);
    const again = await trail.read();
    expect(repository.reads).toEqual([[0, 9]]);
    expect(repository.nodeReads).toBe(1);
    // Appended by another writer: read from where the cache stopped, and attached to the calls
    // read before (the decision names an invocation read in the first batch).
    await append(repository, [record('invocation'), record('decision')]);
    const grown = await trail.read();
    expect(repository.reads).toEqual([
      [0, 9],
      [9, 11],
    ]);
    expect(grown.calls).toEqual(await freshCalls(repository));
    expect(grown.calls).toHaveLength(4);
    expect(grown.version).not.toBe(again.version);
    // A snapshot's array is its own: the later read did not grow it.
    expect(again.calls).toHaveLength(3);
  });

  it('reads a shorter store afresh', async () => {
    const repository = new SwappableRepository(await logOf(RECORDS));
    const { warned, logger } = recordingLogger();
    const trail = new CachedAuditTrail(repository, logger);
    expect((await trail.read()).calls).toHaveLength(3);
    repository.inner = await logOf(RECORDS.slice(0, 4));
    const shorter = await trail.read();
    expect(shorter.size).toBe(4);
    expect(shorter.calls).toEqual(await freshCalls(repository));
    expect(shorter.calls).toHaveLength(2);
    expect(warned).toEqual([
      {
        message: 'admin audit trail read afresh',
        fields: { reason: TrailCacheReset.shorter, entries: 9 },
      },
    ]);
  });

  it('reads afresh a store rewritten with its hashes, or truncated and appended again', async () => {
    const repository = new SwappableRepository(await logOf(RECORDS));
    const { warned, logger } = recordingLogger();
    const trail = new CachedAuditTrail(repository, logger);
    await trail.read();
    // The same size, one record different (the decision dropped for a junk line): the tree
    // over the entries read is another.
    const rewritten = [...RECORDS];
    rewritten[2] = JUNK[0]!;
    repository.inner = await logOf(rewritten);
    const first = await trail.read();
    expect(first.calls).toEqual(await freshCalls(repository));
    expect(first.calls[0]!.decision).toBeUndefined();
    // Longer than what was read, its prefix different (the first four records gone, the rest
    // appended again twice).
    repository.inner = await logOf([...RECORDS.slice(4), ...RECORDS.slice(4), ...JUNK]);
    const second = await trail.read();
    expect(second.size).toBe(12);
    expect(second.calls).toEqual(await freshCalls(repository));
    expect(warned.map((w) => w.fields?.reason)).toEqual([
      TrailCacheReset.root,
      TrailCacheReset.root,
    ]);
  });

  it('starts over after a failed read, and after reset', async () => {
    const repository = new SwappableRepository(await logOf(RECORDS));
    const trail = new CachedAuditTrail(repository);
    await trail.read();
    repository.failNodes = true;
    await expect(trail.read()).rejects.toThrow('disk gone');
    repository.failNodes = false;
    // Reads after a failure are not poisoned by it, and read from the first entry.
    const after = await trail.read();
    expect(after.calls).toEqual(await freshCalls(repository));
    expect(repository.reads).toEqual([
      [0, 9],
      [0, 9],
    ]);
    trail.reset(TrailCacheReset.record);
    await trail.read();
    expect(repository.reads.at(-1)).toEqual([0, 9]);
  });

  it('does a reset asked for while a read runs after that read, which ends whole', async () => {
    const repository = new SwappableRepository(await logOf(RECORDS));
    const trail = new CachedAuditTrail(repository);
    await trail.read();
    await append(repository, [record('invocation'), record('decision')]);
    let open = () => {};
    repository.gate = new Promise((resolve) => (open = resolve));
    const running = trail.read();
    // The read is waiting for entries [9, 11) when the reset is asked for.
    await expect.poll(() => repository.reads.at(-1)).toEqual([9, 11]);
    trail.reset(TrailCacheReset.record);
    open();
    repository.gate = undefined;
    expect((await running).calls).toEqual(await freshCalls(repository));
    expect((await trail.read()).calls).toEqual(await freshCalls(repository));
    expect(repository.reads.at(-1)).toEqual([0, 11]);
  });

  it('serialises concurrent reads: each sees what was committed before it began', async () => {
    const repository = new SwappableRepository(await logOf(RECORDS));
    const trail = new CachedAuditTrail(repository);
    const first = trail.read();
    await append(repository, [record('invocation')]);
    const second = trail.read();
    const [a, b] = await Promise.all([first, second]);
    expect(b.calls).toEqual(await freshCalls(repository));
    expect(a.size).toBeLessThanOrEqual(b.size);
    expect(b.size).toBe(10);
    // The second read began once the first had ended: no entry was read twice.
    expect(repository.reads.reduce((n, [from, to]) => n + to - from, 0)).toBe(10);
  });
});
