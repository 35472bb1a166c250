import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MemoryDenySetRepository } from '../../src/credentials/deny-set.js';
import { SqliteDatabase, type Migration } from '../../src/store/sqlite-database.js';
import {
  DENY_SET_MIGRATION_SQL,
  SqliteDenySetRepository,
} from '../../src/store/sqlite-deny-set-repository.js';
import {
  identityEntry,
  linkEntry,
  revocationId,
  runDenySetRepositoryContract,
} from './deny-set-repository-contract.js';

const NOW = 1_800_000_000;
// The lead gives the migration its place in SQLITE_MIGRATIONS; alone here, any version will do.
const MIGRATIONS: readonly Migration[] = [
  { version: 1, name: 'deny_set', sql: DENY_SET_MIGRATION_SQL },
];

function openSqlite(path = ':memory:') {
  const database = new SqliteDatabase(path, MIGRATIONS);
  return { database, repository: new SqliteDenySetRepository(database) };
}

runDenySetRepositoryContract('memory', () => ({ repository: new MemoryDenySetRepository() }));
runDenySetRepositoryContract('sqlite', () => {
  const { database, repository } = openSqlite();
  return {
    repository,
    close: () => {
      database.close();
    },
  };
});

describe('SqliteDenySetRepository', () => {
  it('keeps entries and the high-water mark across a reopen, even after pruning', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'mandate-deny-')), 'deny.db');
    const first = openSqlite(path);
    await first.repository.append(
      [linkEntry(1, NOW + 10), identityEntry(2, NOW + 1000), linkEntry(3, NOW + 10, 'lost laptop')],
      NOW,
    );
    await first.repository.prune(NOW + 11);
    first.database.close();

    const second = openSqlite(path);
    expect(await second.repository.currentSequence()).toBe(3);
    expect(await second.repository.snapshot(NOW + 11)).toEqual({
      sequence: 3,
      entries: [identityEntry(2, NOW + 1000)],
      issuedAt: NOW + 11,
    });
    // Pruned ids may be revoked again; their new entry takes the next number, not an old one.
    expect(await second.repository.append([linkEntry(3, NOW + 500)], NOW + 12)).toMatchObject({
      fromSequence: 3,
      toSequence: 4,
    });
    second.database.close();

    const third = openSqlite(path);
    expect(await third.repository.updatesSince(3, NOW + 13)).toEqual({
      fromSequence: 3,
      toSequence: 4,
      entries: [linkEntry(3, NOW + 500)],
      issuedAt: NOW + 13,
    });
    third.database.close();
  });

  it("keeps another task's uncommitted appends out of reads and their numbers free", async () => {
    const { database, repository } = openSqlite();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let appendedInside!: () => void;
    const inside = new Promise<void>((resolve) => {
      appendedInside = resolve;
    });
    const failing = database.transaction(async () => {
      await repository.append([linkEntry(1)], NOW);
      appendedInside();
      await gate;
      throw new Error('rolled back');
    });
    await inside;
    // Issued while the transaction is open and holds an append: they wait for it instead of
    // reading into it.
    const read = repository.updatesSince(0, NOW);
    const snapshot = repository.snapshot(NOW);
    const sequence = repository.currentSequence();
    const appended = repository.append([linkEntry(2)], NOW);
    release();
    await expect(failing).rejects.toThrow('rolled back');
    expect(await read).toMatchObject({ toSequence: 0, entries: [] });
    expect(await snapshot).toMatchObject({ sequence: 0, entries: [] });
    expect(await sequence).toBe(0);
    expect(await appended).toEqual({
      fromSequence: 0,
      toSequence: 1,
      entries: [linkEntry(2)],
      issuedAt: NOW,
    });
    database.close();
  });

  it('joins an enclosing transaction and rolls back with it', async () => {
    const { database, repository } = openSqlite();
    await expect(
      database.transaction(async () => {
        await repository.append([linkEntry(1)], NOW);
        expect(await repository.currentSequence()).toBe(1);
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(await repository.currentSequence()).toBe(0);
    expect((await repository.snapshot(NOW)).entries).toEqual([]);
    database.close();
  });

  it('refuses, in SQL, rows and high-water marks the repository never writes', async () => {
    const { database, repository } = openSqlite();
    await repository.append([linkEntry(1), linkEntry(2)], NOW);
    const db = database.db;
    const insert = db.prepare(
      'INSERT INTO deny_set (sequence, kind, id, expires_at, revoked_at, reason) VALUES (?, ?, ?, ?, ?, ?)',
    );
    const rows: [number, string, string, number, number, string | null][] = [
      [10, 'revocation-id', revocationId(3).toUpperCase().replace('0', 'A'), NOW, NOW, null],
      [10, 'revocation-id', `I${'0'.repeat(64)}`, NOW, NOW, null],
      [10, 'identity', revocationId(3), NOW, NOW, null],
      [10, 'identity', `i${'0'.repeat(64)}`, NOW, NOW, null],
      [10, 'link', revocationId(3), NOW, NOW, null],
      [10, 'revocation-id', revocationId(3), -1, NOW, null],
      [10, 'revocation-id', revocationId(3), NOW, NOW, 'x'.repeat(201)],
      // At or below the high-water mark: a reused number.
      [2, 'revocation-id', revocationId(3), NOW, NOW, null],
    ];
    for (const row of rows) expect(() => insert.run(...row), JSON.stringify(row)).toThrow();
    expect(() =>
      db.prepare('UPDATE deny_set_sequence SET sequence = 1 WHERE singleton = 1').run(),
    ).toThrow('never goes back');
    expect(await repository.currentSequence()).toBe(2);
    database.close();
  });

  it('reports a hand-edited row as ERR_STORE_CORRUPT', async () => {
    const { database, repository } = openSqlite();
    await repository.append([linkEntry(1)], NOW);
    database.db.pragma('ignore_check_constraints = ON');
    database.db.prepare("UPDATE deny_set SET id = 'not hex' WHERE sequence = 1").run();
    await expect(repository.snapshot(NOW)).rejects.toMatchObject({ code: 'ERR_STORE_CORRUPT' });
    await expect(repository.updatesSince(0, NOW)).rejects.toMatchObject({
      code: 'ERR_STORE_CORRUPT',
    });
    database.close();
  });

  it('reports a high-water mark below a stored row as ERR_STORE_CORRUPT', async () => {
    const { database, repository } = openSqlite();
    await repository.append([linkEntry(1), linkEntry(2)], NOW);
    database.db.exec('DROP TRIGGER deny_set_sequence_monotonic');
    database.db.prepare('UPDATE deny_set_sequence SET sequence = 1 WHERE singleton = 1').run();
    await expect(repository.append([linkEntry(3)], NOW)).rejects.toMatchObject({
      code: 'ERR_STORE_CORRUPT',
    });
    database.close();
  });
});
