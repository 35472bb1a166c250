import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MemoryTrustAnchorRepository, trustedIdentifiers } from '../../src/credentials/index.js';
import { SqliteDatabase } from '../../src/store/sqlite-database.js';
import { SQLITE_MIGRATIONS } from '../../src/store/open-sqlite-store.js';
import { SqliteTrustAnchorRepository } from '../../src/store/sqlite-trust-anchor-repository.js';
import {
  identifier,
  runTrustAnchorRepositoryContract,
} from './trust-anchor-repository-contract.js';

const NOW = 1_800_000_000;

runTrustAnchorRepositoryContract('memory', () => ({
  repository: new MemoryTrustAnchorRepository(),
}));
runTrustAnchorRepositoryContract('sqlite', () => {
  const database = new SqliteDatabase(':memory:', SQLITE_MIGRATIONS);
  return {
    repository: new SqliteTrustAnchorRepository(database),
    close: () => {
      database.close();
    },
  };
});

describe('SqliteTrustAnchorRepository', () => {
  it('migrates unscoped anchors: the home’s own authority to `all`, a redeemed one to its local identities only', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'mandate-anchors-')), 'mandate.db');
    const before = SQLITE_MIGRATIONS.filter((m) => m.name !== 'trust_anchor_scope');
    expect(before).toHaveLength(SQLITE_MIGRATIONS.length - 1);
    const old = new SqliteDatabase(path, before);
    // 1: this home's authority (its key is here); 2, 3: members with keys; 4: a remote
    // authority that enrolled one of them (history only); 5: someone else's identity.
    old.db.exec(
      `INSERT INTO identities (identifier, change_history, name, primary_key_id, created_at, updated_at) VALUES
        ('${identifier(1)}', x'01', 'authority', 'k1', ${NOW}, ${NOW}),
        ('${identifier(2)}', x'02', 'bob', 'k2', ${NOW}, ${NOW}),
        ('${identifier(3)}', x'03', 'carol', 'k3', ${NOW}, ${NOW}),
        ('${identifier(4)}', x'04', NULL, NULL, ${NOW}, ${NOW}),
        ('${identifier(5)}', x'05', NULL, NULL, ${NOW}, ${NOW});
       INSERT INTO trust_anchors (identifier, added_at) VALUES
        ('${identifier(1)}', ${NOW}), ('${identifier(4)}', ${NOW + 1});`,
    );
    old.close();

    // Opened by this Mandate: the migration runs.
    const database = new SqliteDatabase(path, SQLITE_MIGRATIONS);
    const repository = new SqliteTrustAnchorRepository(database);
    const anchors = await repository.listTrustAnchors();
    expect(anchors).toEqual([
      { identifier: identifier(1), scope: 'all', addedAt: NOW },
      { identifier: identifier(4), scope: `identity:${identifier(1)}`, addedAt: NOW + 1 },
      { identifier: identifier(4), scope: `identity:${identifier(2)}`, addedAt: NOW + 1 },
      { identifier: identifier(4), scope: `identity:${identifier(3)}`, addedAt: NOW + 1 },
    ]);
    // No verifier of anyone else trusts the remote authority any more; bob still does for himself.
    expect(trustedIdentifiers(anchors)).toEqual([identifier(1)]);
    expect(trustedIdentifiers(anchors, { forIdentity: identifier(2) })).toEqual([
      identifier(1),
      identifier(4),
    ]);
    expect(trustedIdentifiers(anchors, { forIdentity: identifier(5) })).toEqual([identifier(1)]);
    database.close();
  });

  it('refuses, in SQL, rows it never writes, and reports a hand-edited one as ERR_STORE_CORRUPT', async () => {
    const database = new SqliteDatabase(':memory:', SQLITE_MIGRATIONS);
    const repository = new SqliteTrustAnchorRepository(database);
    const insert = database.db.prepare(
      'INSERT INTO trust_anchors (identifier, scope, added_at) VALUES (?, ?, ?)',
    );
    for (const row of [
      ['bob', 'all', NOW],
      [identifier(1), 'everything', NOW],
      [identifier(1), 'identity:bob', NOW],
      [identifier(1), 'all', -1],
    ] as const)
      expect(() => insert.run(...row), JSON.stringify(row)).toThrow();
    database.db.pragma('ignore_check_constraints = ON');
    insert.run(identifier(1), `identity:I${'g'.repeat(64)}`, NOW);
    await expect(repository.listTrustAnchors()).rejects.toMatchObject({
      code: 'ERR_STORE_CORRUPT',
    });
    database.close();
  });
});
