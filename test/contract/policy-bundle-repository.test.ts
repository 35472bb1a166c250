import { describe, expect, it } from 'vitest';
import { MemoryPolicyBundleRepository } from '../../src/gates/bundle-repository.js';
import { SqliteDatabase } from '../../src/store/sqlite-database.js';
import { SQLITE_MIGRATIONS } from '../../src/store/open-sqlite-store.js';
import { SqlitePolicyBundleRepository } from '../../src/store/sqlite-policy-bundle-repository.js';
import { BUNDLE_T0, bundleWorld } from '../helpers/bundles.js';
import { runPolicyBundleRepositoryContract } from './policy-bundle-repository-contract.js';

runPolicyBundleRepositoryContract('memory', () => ({
  repository: new MemoryPolicyBundleRepository(),
}));
runPolicyBundleRepositoryContract('sqlite', () => {
  const database = new SqliteDatabase(':memory:', SQLITE_MIGRATIONS);
  return {
    repository: new SqlitePolicyBundleRepository(database),
    close: () => {
      database.close();
    },
  };
});

describe('SqlitePolicyBundleRepository', () => {
  it('refuses, in SQL, a lower version or an edit of the history; reports edited bytes as ERR_STORE_CORRUPT', async () => {
    const world = bundleWorld();
    const authority = await world.authority('authority');
    const database = new SqliteDatabase(':memory:', SQLITE_MIGRATIONS);
    const repository = new SqlitePolicyBundleRepository(database);
    const stored = await repository.publishBundle(await world.sign(authority, 4), BUNDLE_T0);
    const insert = database.db.prepare(
      'INSERT INTO policy_bundles (version, issuer, created_at, hash, published_at, bytes) VALUES (?, ?, ?, ?, ?, ?)',
    );
    const row = [stored.issuer, stored.createdAt, stored.hash, BUNDLE_T0, stored.bytes] as const;
    expect(() => insert.run(3, ...row)).toThrow(/never reused or lowered/);
    expect(() => insert.run(0, ...row)).toThrow();
    expect(() => insert.run(5, 'bob', ...row.slice(1))).toThrow();
    expect(() => database.db.prepare('UPDATE policy_bundles SET published_at = 1').run()).toThrow(
      /never changed/,
    );

    // Someone with the file (and no regard for triggers) edits a stored bundle's bytes.
    database.db.exec('DROP TRIGGER policy_bundles_append_only');
    const tampered = Uint8Array.from(stored.bytes);
    tampered[tampered.length - 1]! ^= 1;
    database.db.prepare('UPDATE policy_bundles SET bytes = ? WHERE version = 4').run(tampered);
    await expect(repository.latestBundle()).rejects.toMatchObject({ code: 'ERR_STORE_CORRUPT' });
    await expect(repository.getBundle(4)).rejects.toMatchObject({ code: 'ERR_STORE_CORRUPT' });
    database.close();
  });
});
