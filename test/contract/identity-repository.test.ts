import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MemoryIdentityRepository, type Identifier } from '../../src/identity/index.js';
import { openSqliteStore } from '../../src/store/index.js';
import { runIdentityRepositoryContract } from './identity-repository-contract.js';

runIdentityRepositoryContract('memory', () => ({ repository: new MemoryIdentityRepository() }));
runIdentityRepositoryContract('sqlite', () => {
  const store = openSqliteStore(':memory:');
  return {
    repository: store.identities,
    close: () => {
      store.close();
    },
  };
});

describe('SQLite transactions', () => {
  const id = (n: number): Identifier => `I${n.toString(16).padStart(64, '0')}`;
  const row = (n: number) => ({
    identifier: id(n),
    changeHistory: new Uint8Array([1]),
    name: `n${n}`,
    primaryKeyId: null,
    createdAt: 1,
    updatedAt: 1,
  });

  it('rolls back every write of a failed transaction', async () => {
    const store = openSqliteStore(':memory:');
    await expect(
      store.identities.transaction(async () => {
        await store.identities.putIdentity(row(1));
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(await store.identities.countIdentities()).toBe(0);
    store.close();
  });

  it("keeps a concurrent write out of another task's transaction", async () => {
    const store = openSqliteStore(':memory:');
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const failing = store.identities.transaction(async () => {
      await store.identities.putIdentity(row(1));
      await gate;
      throw new Error('rolled back');
    });
    // Issued while the transaction is open: must wait for it, not join it.
    const concurrent = store.identities.putIdentity(row(2));
    release();
    await expect(failing).rejects.toThrow('rolled back');
    await concurrent;
    expect(await store.identities.getIdentity(id(1))).toBeUndefined();
    expect(await store.identities.getIdentity(id(2))).toBeDefined();
    store.close();
  });

  it('refuses a database from a newer Mandate', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'mandate-')), 'm.db');
    const store = openSqliteStore(path);
    store.database.db.prepare('INSERT INTO schema_migrations VALUES (999, ?, 0)').run('future');
    store.close();
    expect(() => openSqliteStore(path)).toThrow(
      expect.objectContaining({ code: 'ERR_STORE_SCHEMA_NEWER' }),
    );
  });
});
