import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes, SecureArena } from '../crypto/index.js';
import { SigningKeyType, SoftwareVault } from '../vault/index.js';
import { openSqliteStore, SQLITE_MIGRATIONS } from './open-sqlite-store.js';
import { SqliteDatabase } from './sqlite-database.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('sealed keys in SQLite (migration 15, sealed blobs version 2)', () => {
  it('stores version-2 blobs, and a Mandate from before them refuses the file at open', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mandate-sealed-'));
    dirs.push(dir);
    const path = join(dir, 'mandate.db');
    const store = openSqliteStore(path);
    const kek = new SecureArena().allocateFrom(randomBytes(32));
    const vault = new SoftwareVault({ repository: store.vaultKeys, kek });
    const handle = await vault.generateSigningKey(SigningKeyType.ed25519);
    expect((await store.vaultKeys.getKey(handle.keyId))?.sealed[0]).toBe(0x02);
    store.close();

    const before = SQLITE_MIGRATIONS.filter((m) => m.name !== 'sealed_blob_v2');
    expect(before).toHaveLength(SQLITE_MIGRATIONS.length - 1);
    expect(() => new SqliteDatabase(path, before)).toThrow(
      expect.objectContaining({ code: 'ERR_STORE_SCHEMA_NEWER' }),
    );
  });
});
