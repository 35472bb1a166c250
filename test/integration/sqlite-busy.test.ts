import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../src/store/open-sqlite-store.js';

// A second process (here: a second connection) that holds SQLite's write lock past the 5 s
// busy_timeout: the waiting transaction or write fails with a typed conflict, nothing written.
describe('SQLite write lock held by another connection', () => {
  it('a transaction or a write that waits past busy_timeout is ERR_STORE_BUSY (conflict)', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'mandate-sqlite-busy-')), 'mandate.db');
    const holder = openSqliteStore(path);
    const waiter = openSqliteStore(path);
    try {
      holder.database.db.exec('BEGIN IMMEDIATE');
      await expect(waiter.database.transaction(() => Promise.resolve(1))).rejects.toMatchObject({
        code: 'ERR_STORE_BUSY',
        kind: 'conflict',
      });
      await expect(
        waiter.denySet.append(
          [{ kind: 'revocation-id', id: '0'.repeat(32), revokedAt: 1, expiresAt: 2 }],
          1,
        ),
      ).rejects.toMatchObject({ code: 'ERR_STORE_BUSY' });
      holder.database.db.exec('ROLLBACK');
      expect(await waiter.denySet.currentSequence()).toBe(0);
    } finally {
      holder.close();
      waiter.close();
    }
  }, 30_000);
});
