import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes, SecureArena } from '../crypto/index.js';
import { SigningKeyType, SoftwareVault, type SealedKeyRecord } from '../vault/index.js';
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

describe('SqliteSealedKeyRepository.putKeys', () => {
  const record = (i: number): SealedKeyRecord => ({
    keyId: `key-${String(i).padStart(4, '0')}`,
    purpose: i % 3 === 2 ? 'x25519' : 'signing',
    keyType: i % 3 === 2 ? 'x25519' : 'ed25519',
    publicKey: randomBytes(32),
    sealed: randomBytes(105),
  });

  it('stores every record, in statements of many rows and the rest one by one', async () => {
    const store = openSqliteStore(':memory:');
    const records = Array.from({ length: 123 }, (_, i) => record(i));
    await store.vaultKeys.putKeys(records);
    for (const expected of records)
      expect(await store.vaultKeys.getKey(expected.keyId)).toEqual(expected);
    store.close();
  });

  it('writes all or none: a key id already stored is ERR_VAULT_KEY_EXISTS and nothing of the batch stays', async () => {
    const store = openSqliteStore(':memory:');
    await store.vaultKeys.putKey(record(60));
    const batch = Array.from({ length: 80 }, (_, i) => record(i));
    await expect(store.vaultKeys.putKeys(batch)).rejects.toMatchObject({
      code: 'ERR_VAULT_KEY_EXISTS',
    });
    for (const r of batch) {
      if (r.keyId !== 'key-0060') expect(await store.vaultKeys.getKey(r.keyId)).toBeUndefined();
    }
    // Inside a caller's transaction that goes on, only the failed batch is undone.
    await store.identities.transaction(async () => {
      await expect(store.vaultKeys.putKeys([record(100), record(60)])).rejects.toMatchObject({
        code: 'ERR_VAULT_KEY_EXISTS',
      });
      await store.vaultKeys.putKeys([record(101)]);
    });
    expect(await store.vaultKeys.getKey('key-0100')).toBeUndefined();
    expect(await store.vaultKeys.getKey('key-0101')).toBeDefined();
    store.close();
  });
});
