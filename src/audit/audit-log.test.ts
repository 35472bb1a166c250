import { describe, expect, it } from 'vitest';
import { isMandateError, ManualClock } from '../core/index.js';
import { MemoryVault } from '../vault/index.js';
import { AuditLog } from './audit-log.js';
import { noteSignerFromVault, noteVerifierKey, verifyCheckpoint } from './checkpoint.js';
import { MemoryAuditLogRepository } from './memory-audit-log-repository.js';
import { hashLeaf, rootFromLeafHashes, verifyConsistency, verifyInclusion } from './merkle.js';
import type { AuditLogEntry, AuditLogRepository, StoredMerkleNode } from './repository.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

/** A real memory repository that counts commits and can be told to fail the next one. */
class CountingRepository extends MemoryAuditLogRepository implements AuditLogRepository {
  commits: number[] = [];
  failNext = false;

  override async append(
    fromIndex: number,
    entries: readonly AuditLogEntry[],
    nodes: readonly StoredMerkleNode[],
  ): Promise<void> {
    if (this.failNext) {
      this.failNext = false;
      throw new Error('disk full');
    }
    await super.append(fromIndex, entries, nodes);
    this.commits.push(entries.length);
  }
}

describe('AuditLog', () => {
  it('groups concurrent appends into few commits and acknowledges each after its commit', async () => {
    const repository = new CountingRepository();
    const log = await AuditLog.open({ repository, origin: 'o', maxBatchRecords: 100 });
    const acknowledged: number[] = [];
    const records = Array.from({ length: 250 }, (_, i) => enc(`r${i}`));
    await Promise.all(
      records.map(async (r) => {
        const index = await log.append(r);
        // Acknowledged means committed: the entry is in the repository already.
        expect(await repository.size()).toBeGreaterThan(index);
        acknowledged.push(index);
      }),
    );
    expect(repository.commits).toEqual([100, 100, 50]);
    expect(acknowledged.sort((a, b) => a - b)).toEqual(records.map((_, i) => i));
    expect(log.root()).toEqual(rootFromLeafHashes(records.map(hashLeaf)));
  });

  it('rejects every append of a failed commit and keeps its state for the next', async () => {
    const repository = new CountingRepository();
    const log = await AuditLog.open({ repository, origin: 'o' });
    await log.append(enc('first'));
    repository.failNext = true;
    const failed = await Promise.allSettled([log.append(enc('a')), log.append(enc('b'))]);
    expect(failed.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(log.size).toBe(1);
    expect(await log.append(enc('after'))).toBe(1);
    expect(log.root()).toEqual(rootFromLeafHashes([enc('first'), enc('after')].map(hashLeaf)));
  });

  it('signs checkpoints through the vault, consistent with each other and with proofs', async () => {
    const vault = new MemoryVault();
    const key = await vault.generateSigningKey('ed25519');
    const signer = noteSignerFromVault(vault, key, 'example.com/audit');
    const verifiers = [noteVerifierKey('example.com/audit', key.publicKey)];
    const clock = new ManualClock(1_800_000_000);
    const log = await AuditLog.open({
      repository: new MemoryAuditLogRepository(),
      origin: 'example.com/audit',
      clock,
    });
    expect(await log.latestCheckpoint()).toBeUndefined();
    const empty = verifyCheckpoint(await log.checkpoint([signer]), verifiers);
    expect(empty.treeSize).toBe(0);
    for (let i = 0; i < 21; i++) await log.append(enc(`e${i}`));
    const older = verifyCheckpoint(await log.checkpoint([signer]), verifiers);
    await Promise.all(Array.from({ length: 40 }, (_, i) => log.append(enc(`f${i}`))));
    clock.advance(90);
    const newer = verifyCheckpoint(await log.checkpoint([signer], ['ext']), verifiers);
    expect(await log.latestCheckpoint()).toBe(newer.note);
    // Dated by the log's clock (signed, first of the extension lines).
    expect([older.treeSize, newer.treeSize, newer.extensions]).toEqual([
      21,
      61,
      ['mandate-time 1800000090', 'ext'],
    ]);
    expect([older.time, newer.time]).toEqual([1_800_000_000, 1_800_000_090]);
    await expect(log.checkpoint([signer], ['mandate-time 1'])).rejects.toMatchObject({
      code: 'ERR_ARGUMENT_INVALID',
    });
    verifyConsistency(0, 61, empty.rootHash, newer.rootHash, await log.consistencyProof(0, 61));
    verifyConsistency(21, 61, older.rootHash, newer.rootHash, await log.consistencyProof(21));
    verifyInclusion(7, 21, hashLeaf(enc('e7')), await log.inclusionProof(7, 21), older.rootHash);
    // A clock set back: dated no earlier than the newest checkpoint.
    clock.set(1_700_000_000);
    await log.append(enc('g'));
    expect(verifyCheckpoint(await log.checkpoint([signer]), verifiers).time).toBe(1_800_000_090);
  });

  it('refuses sizes beyond the log and bad options with typed errors', async () => {
    const log = await AuditLog.open({ repository: new MemoryAuditLogRepository(), origin: 'o' });
    await log.append(enc('x'));
    const codes = await Promise.all(
      [
        () => log.rootAt(2),
        () => log.inclusionProof(0, 2),
        () => log.inclusionProof(1, 1),
        () => log.consistencyProof(2, 1),
        () =>
          AuditLog.open({
            repository: new MemoryAuditLogRepository(),
            origin: 'o',
            maxBatchRecords: 0,
          }),
      ].map(async (fn) => {
        try {
          await fn();
          return 'no error';
        } catch (error) {
          return isMandateError(error) ? error.code : 'other';
        }
      }),
    );
    expect(codes).toEqual(Array(5).fill('ERR_ARGUMENT_INVALID'));
  });
});
