import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { SqliteDatabase } from '../../src/store/sqlite-database.js';
import {
  SqliteSealedKeyRepository,
  VAULT_KEK_MIGRATION_SQL,
  VAULT_KEYS_MIGRATION_SQL,
} from '../../src/store/sqlite-sealed-key-repository.js';
import { SecureArena, randomBytes } from '../../src/crypto/index.js';
import {
  InMemorySealedKeyRepository,
  MemoryVault,
  SoftwareVault,
  type KekVerifierRepository,
  type SealedKeyRecord,
  type SealedKeyRepository,
} from '../../src/vault/index.js';
import { runVaultContract, type VaultFixture } from './vault-contract.js';

function softwareVaultOver(
  repository: SealedKeyRepository,
  close: () => void,
  cacheKeys?: number,
): VaultFixture {
  const arena = new SecureArena();
  const kek = arena.allocateFrom(randomBytes(32));
  const vault = new SoftwareVault({
    repository,
    kek,
    arena,
    ...(cacheKeys === undefined ? {} : { cacheKeys }),
  });
  return {
    vault,
    close: () => {
      vault.destroy();
      kek.destroy();
      close();
    },
  };
}

function openSqlite(path: string): Database.Database {
  const db = new Database(path);
  db.exec(VAULT_KEYS_MIGRATION_SQL);
  db.exec(VAULT_KEK_MIGRATION_SQL);
  return db;
}

runVaultContract('MemoryVault', () => {
  const vault = new MemoryVault();
  return Promise.resolve({
    vault,
    close: () => {
      vault.destroy();
    },
  });
});

runVaultContract('SoftwareVault + InMemorySealedKeyRepository', () =>
  Promise.resolve(softwareVaultOver(new InMemorySealedKeyRepository(), () => undefined)),
);

// A one-key cache makes every other operation an eviction and an unseal.
runVaultContract('SoftwareVault + InMemorySealedKeyRepository, one cached key', () =>
  Promise.resolve(softwareVaultOver(new InMemorySealedKeyRepository(), () => undefined, 1)),
);

runVaultContract('SoftwareVault + SqliteSealedKeyRepository (:memory:)', () => {
  const db = openSqlite(':memory:');
  return Promise.resolve(softwareVaultOver(new SqliteSealedKeyRepository(db), () => db.close()));
});

runVaultContract('SoftwareVault + SqliteSealedKeyRepository (file)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mandate-vault-'));
  const db = openSqlite(join(dir, 'vault.db'));
  db.pragma('journal_mode = WAL');
  return Promise.resolve(
    softwareVaultOver(new SqliteSealedKeyRepository(db), () => {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }),
  );
});

/** The repositories are thin, so their own checks ride along here rather than in a suite of their own. */
describe('sealed key repositories', () => {
  const record = (keyId: string): SealedKeyRecord => ({
    keyId,
    purpose: 'signing',
    keyType: 'ed25519',
    publicKey: randomBytes(32),
    sealed: randomBytes(93),
  });

  const repositories: [
    string,
    () => { repository: SealedKeyRepository & KekVerifierRepository; close: () => void },
  ][] = [
    [
      'in-memory',
      () => ({ repository: new InMemorySealedKeyRepository(), close: () => undefined }),
    ],
    [
      'sqlite',
      () => {
        const db = openSqlite(':memory:');
        return { repository: new SqliteSealedKeyRepository(db), close: () => db.close() };
      },
    ],
  ];

  for (const [name, make] of repositories) {
    it(`${name}: stores, returns plain copies, refuses duplicates, deletes idempotently`, async () => {
      const { repository, close } = make();
      try {
        const a = record('a');
        await repository.putKey(a);
        const got = await repository.getKey('a');
        expect(got).toEqual(a);
        expect(Object.getPrototypeOf(got?.sealed)).toBe(Uint8Array.prototype);
        got?.sealed.fill(0);
        expect(await repository.getKey('a')).toEqual(a);
        await expect(
          repository.putKey({ ...record('a'), purpose: 'x25519', keyType: 'x25519' }),
        ).rejects.toMatchObject({
          code: 'ERR_VAULT_KEY_EXISTS',
          kind: 'conflict',
        });
        expect(await repository.getKey('a')).toEqual(a);
        expect(await repository.getKey('b')).toBeUndefined();
        await repository.deleteKey('a');
        await repository.deleteKey('a');
        expect(await repository.getKey('a')).toBeUndefined();
      } finally {
        close();
      }
    });

    it(`${name}: keeps the first KEK verifier, and returns any one sealed key`, async () => {
      const { repository, close } = make();
      try {
        expect(await repository.getKekVerifier()).toBeUndefined();
        expect(await repository.anyKey()).toBeUndefined();
        const first = { source: 'passphrase', verifier: randomBytes(29) } as const;
        expect(await repository.putKekVerifier(first)).toEqual(first);
        // A second writer (another process opening the new home at once) gets the first's back.
        const second = { source: 'key-file', verifier: randomBytes(29) } as const;
        expect(await repository.putKekVerifier(second)).toEqual(first);
        const got = await repository.getKekVerifier();
        expect(got).toEqual(first);
        expect(Object.getPrototypeOf(got?.verifier)).toBe(Uint8Array.prototype);
        const a = record('a');
        await repository.putKey(a);
        expect(await repository.anyKey()).toEqual(a);
      } finally {
        close();
      }
    });
  }

  it("sqlite: with the write lock, a key put during another task's transaction survives its rollback", async () => {
    const database = new SqliteDatabase(':memory:', [
      { version: 1, name: 'vault_keys', sql: VAULT_KEYS_MIGRATION_SQL },
      { version: 2, name: 'vault_kek', sql: VAULT_KEK_MIGRATION_SQL },
    ]);
    try {
      const repository = new SqliteSealedKeyRepository(database.db, {
        write: (statement) => database.write(statement),
      });
      let release = (): void => undefined;
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      const failing = database.transaction(async () => {
        await held;
        throw new Error('rolled back on purpose');
      });
      const a = record('a');
      const put = repository.putKey(a);
      release();
      await expect(failing).rejects.toThrow('rolled back on purpose');
      await put;
      expect(await repository.getKey('a')).toEqual(a);
      await repository.deleteKey('a');
      expect(await repository.getKey('a')).toBeUndefined();
    } finally {
      database.close();
    }
  });

  it('sqlite: the table refuses rows the vault could never write', () => {
    const db = openSqlite(':memory:');
    try {
      const insert = db.prepare('INSERT INTO vault_keys VALUES (?, ?, ?, ?, ?)');
      expect(() =>
        insert.run('k', 'encryption', 'ed25519', Buffer.alloc(32), Buffer.alloc(60)),
      ).toThrow(/CHECK/);
      expect(() => insert.run('k', 'signing', 'rsa', Buffer.alloc(32), Buffer.alloc(60))).toThrow(
        /CHECK/,
      );
      expect(() => insert.run('k', 'signing', 'ed25519', 'text', Buffer.alloc(60))).toThrow(
        /cannot store TEXT/,
      );
    } finally {
      db.close();
    }
  });

  it('sqlite: a hand-made table with a bad row gives ERR_STORE_CORRUPT, not a cast', async () => {
    const db = new Database(':memory:');
    try {
      db.exec(
        'CREATE TABLE vault_keys (key_id TEXT PRIMARY KEY, purpose TEXT, key_type TEXT, public_key BLOB, sealed BLOB)',
      );
      db.exec('CREATE TABLE vault_kek (id INTEGER PRIMARY KEY, source TEXT, verifier BLOB)');
      db.prepare('INSERT INTO vault_kek VALUES (1, ?, ?)').run('rot13', Buffer.alloc(29));
      db.prepare('INSERT INTO vault_keys VALUES (?, ?, ?, ?, ?)').run(
        'p',
        'encryption',
        'ed25519',
        Buffer.alloc(32),
        Buffer.alloc(60),
      );
      db.prepare('INSERT INTO vault_keys VALUES (?, ?, ?, ?, ?)').run(
        't',
        'signing',
        'rsa',
        Buffer.alloc(32),
        Buffer.alloc(60),
      );
      db.prepare('INSERT INTO vault_keys VALUES (?, ?, ?, ?, ?)').run(
        's',
        'signing',
        'ed25519',
        Buffer.alloc(32),
        'text',
      );
      const repository = new SqliteSealedKeyRepository(db);
      for (const keyId of ['p', 't', 's']) {
        await expect(repository.getKey(keyId)).rejects.toMatchObject({ code: 'ERR_STORE_CORRUPT' });
      }
      await expect(repository.getKekVerifier()).rejects.toMatchObject({
        code: 'ERR_STORE_CORRUPT',
      });
    } finally {
      db.close();
    }
  });
});
