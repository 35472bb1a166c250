import { afterEach, describe, expect, it } from 'vitest';
import {
  AuditLog,
  CompactRange,
  hashLeaf,
  rootFromLeafHashes,
  verifyInclusion,
  verifyConsistency,
  type AuditLogRepository,
  type StoredMerkleNode,
} from '../../src/audit/index.js';
import { isMandateError } from '../../src/core/index.js';

export interface AuditLogFixture {
  readonly repository: AuditLogRepository;
  readonly close?: () => void;
}

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

async function codeOf(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn();
  } catch (error) {
    if (isMandateError(error)) return error.code;
    throw error;
  }
  return 'no error';
}

/** Entries and the nodes they complete, as the AuditLog computes them. */
function prepare(from: CompactRange, records: readonly Uint8Array[]) {
  const next = from.clone();
  const nodes: StoredMerkleNode[] = [];
  const entries = records.map((record) => ({ record, leafHash: hashLeaf(record) }));
  for (const e of entries) next.append(e.leafHash, (node, hash) => nodes.push({ ...node, hash }));
  return { entries, nodes, next };
}

/** The AuditLogRepository contract, run against every implementation. */
export function runAuditLogRepositoryContract(name: string, open: () => AuditLogFixture): void {
  describe(`AuditLogRepository contract: ${name}`, () => {
    const fixtures: AuditLogFixture[] = [];
    const fresh = (): AuditLogRepository => {
      const f = open();
      fixtures.push(f);
      return f.repository;
    };
    afterEach(() => {
      for (const f of fixtures.splice(0)) f.close?.();
    });

    it('starts empty and appends entries with their nodes in order', async () => {
      const repo = fresh();
      expect(await repo.size()).toBe(0);
      expect(await repo.latestCheckpoint()).toBeUndefined();
      let range = new CompactRange();
      const records = Array.from({ length: 13 }, (_, i) => enc(`record ${i}`));
      for (const chunk of [records.slice(0, 1), records.slice(1, 6), records.slice(6)]) {
        const { entries, nodes, next } = prepare(range, chunk);
        await repo.append(range.size, entries, nodes);
        range = next;
      }
      expect(await repo.size()).toBe(13);
      const read = await repo.readEntries(0, 13);
      expect(read.map((e) => new TextDecoder().decode(e.record))).toEqual(
        records.map((r) => new TextDecoder().decode(r)),
      );
      expect(read.map((e) => e.leafHash)).toEqual(records.map(hashLeaf));
      expect(await repo.readEntries(5, 5)).toEqual([]);
      const [leaf, pair, eight] = await repo.readNodes([
        { level: 0, index: 12 },
        { level: 1, index: 5 },
        { level: 3, index: 0 },
      ]);
      expect(leaf).toEqual(hashLeaf(records[12]!));
      expect(pair).toBeDefined();
      expect(eight).toEqual(rootFromLeafHashes(records.slice(0, 8).map(hashLeaf)));
    });

    it('refuses a stale writer, bad hashes and nodes outside the batch, writing nothing', async () => {
      const repo = fresh();
      const first = prepare(new CompactRange(), [enc('a'), enc('b')]);
      await repo.append(0, first.entries, first.nodes);
      const again = prepare(new CompactRange(), [enc('x')]);
      expect(await codeOf(() => repo.append(0, again.entries, again.nodes))).toBe(
        'ERR_AUDIT_LOG_CONFLICT',
      );
      expect(await codeOf(() => repo.append(3, again.entries, again.nodes))).toBe(
        'ERR_AUDIT_LOG_CONFLICT',
      );
      const bad = [{ record: enc('c'), leafHash: new Uint8Array(31) }];
      expect(await codeOf(() => repo.append(2, bad, []))).toBe('ERR_ARGUMENT_INVALID');
      const next = prepare(first.next, [enc('c')]);
      expect(
        await codeOf(() =>
          repo.append(2, next.entries, [{ level: 2, index: 0, hash: new Uint8Array(32) }]),
        ),
      ).toBe('ERR_ARGUMENT_INVALID');
      // Every node the entries complete, no fewer: entry 3 completes (1, 1) and (2, 0).
      const four = prepare(next.next, [enc('d')]);
      expect(four.nodes.map((n) => [n.level, n.index])).toEqual([
        [1, 1],
        [2, 0],
      ]);
      await repo.append(2, next.entries, next.nodes);
      expect(await codeOf(() => repo.append(3, four.entries, four.nodes.slice(0, 1)))).toBe(
        'ERR_ARGUMENT_INVALID',
      );
      expect(await codeOf(() => repo.append(3, four.entries, [...four.nodes].reverse()))).toBe(
        'ERR_ARGUMENT_INVALID',
      );
      await repo.append(3, four.entries, four.nodes);
      const huge = [{ record: new Uint8Array(1024 * 1024 + 1), leafHash: new Uint8Array(32) }];
      expect(await codeOf(() => repo.append(4, huge, []))).toBe('ERR_ARGUMENT_INVALID');
      expect(await repo.size()).toBe(4);
      expect(await repo.readNodes([{ level: 2, index: 0 }])).toEqual([four.nodes[1]!.hash]);
    });

    it('answers reads past the end with a typed not-found and bounds reads', async () => {
      const repo = fresh();
      const first = prepare(new CompactRange(), [enc('a'), enc('b'), enc('c')]);
      await repo.append(0, first.entries, first.nodes);
      expect(await codeOf(() => repo.readEntries(0, 4))).toBe('ERR_AUDIT_ENTRY_NOT_FOUND');
      expect(await codeOf(() => repo.readEntries(2, 1))).toBe('ERR_ARGUMENT_INVALID');
      expect(await codeOf(() => repo.readEntries(0, 10_001))).toBe('ERR_ARGUMENT_INVALID');
      expect(await codeOf(() => repo.readNodes([{ level: 2, index: 0 }]))).toBe(
        'ERR_AUDIT_ENTRY_NOT_FOUND',
      );
      expect(await codeOf(() => repo.readNodes([{ level: 0, index: 3 }]))).toBe(
        'ERR_AUDIT_ENTRY_NOT_FOUND',
      );
      expect(await codeOf(() => repo.readNodes([{ level: -1, index: 0 }]))).toBe(
        'ERR_ARGUMENT_INVALID',
      );
    });

    it('keeps checkpoints by size, first one wins, none beyond the log', async () => {
      const repo = fresh();
      const first = prepare(new CompactRange(), [enc('a'), enc('b'), enc('c')]);
      await repo.append(0, first.entries, first.nodes);
      await repo.putCheckpoint({ treeSize: 3, note: 'three' });
      await repo.putCheckpoint({ treeSize: 1, note: 'one' });
      await repo.putCheckpoint({ treeSize: 3, note: 'three again' });
      expect(await repo.listCheckpoints()).toEqual([
        { treeSize: 1, note: 'one' },
        { treeSize: 3, note: 'three' },
      ]);
      expect(await repo.latestCheckpoint()).toEqual({ treeSize: 3, note: 'three' });
      expect(await codeOf(() => repo.putCheckpoint({ treeSize: 4, note: 'four' }))).toBe(
        'ERR_ARGUMENT_INVALID',
      );
    });

    it('backs an AuditLog: group commit, proofs, reopening', async () => {
      const repo = fresh();
      const log = await AuditLog.open({ repository: repo, origin: 'test/log' });
      const records = Array.from({ length: 1000 }, (_, i) => enc(`r${i}`));
      // 1000 concurrent appends: acknowledged in order, in a few commits.
      const indices = await Promise.all(records.map((r) => log.append(r)));
      expect(indices).toEqual(records.map((_, i) => i));
      expect(log.size).toBe(1000);
      const root = rootFromLeafHashes(records.map(hashLeaf));
      expect(log.root()).toEqual(root);
      expect(await log.rootAt(1000)).toEqual(root);
      for (const [index, size] of [
        [0, 1],
        [999, 1000],
        [517, 733],
      ] as const) {
        verifyInclusion(
          index,
          size,
          hashLeaf(records[index]!),
          await log.inclusionProof(index, size),
          await log.rootAt(size),
        );
      }
      verifyConsistency(
        377,
        1000,
        await log.rootAt(377),
        root,
        await log.consistencyProof(377, 1000),
      );
      await log.close();
      expect(await codeOf(() => log.append(enc('late')))).toBe('ERR_AUDIT_LOG_CLOSED');
      const reopened = await AuditLog.open({ repository: repo, origin: 'test/log' });
      expect(reopened.size).toBe(1000);
      expect(reopened.root()).toEqual(root);
      expect(await reopened.append(enc('next'))).toBe(1000);
      expect(reopened.root()).toEqual(rootFromLeafHashes([...records, enc('next')].map(hashLeaf)));
    });

    it('lets a second writer catch up and append at the end instead of forking the log', async () => {
      const repo = fresh();
      const a = await AuditLog.open({ repository: repo, origin: 'o' });
      const b = await AuditLog.open({ repository: repo, origin: 'o' });
      expect(await a.append(enc('from a'))).toBe(0);
      // b's first try is refused by the repository (prepared for size 0); it re-reads and retries.
      expect(await b.append(enc('from b'))).toBe(1);
      expect(await a.append(enc('from a again'))).toBe(2);
      expect(await repo.size()).toBe(3);
      const records = ['from a', 'from b', 'from a again'].map(enc);
      expect(a.root()).toEqual(rootFromLeafHashes(records.map(hashLeaf)));
      expect(await codeOf(() => a.append(new Uint8Array(1024 * 1024 + 1)))).toBe(
        'ERR_AUDIT_RECORD_TOO_LARGE',
      );
    });
  });
}
