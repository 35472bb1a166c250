import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/index.js';
import { randomBytes, SecureArena, wipe } from '../../src/crypto/index.js';
import { openSqliteStore, type SqliteStore } from '../../src/store/index.js';
import { openBlob } from '../../src/vault/internal.js';
import { sealedKeyAad } from '../../src/vault/sealed-key.js';
import { SecretStore, sealedSecretAad } from '../../src/broker/index.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

const text = (s: string) => new TextEncoder().encode(s);
const arena = new SecureArena(4096);

function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'mandate-secrets-'));
  const stores: SqliteStore[] = [];
  const open = () => {
    const store = openSqliteStore(join(dir, 'mandate.db'));
    stores.push(store);
    return store;
  };
  cleanups.push(() => {
    for (const s of stores) s.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const kek = arena.allocateFrom(randomBytes(32));
  const clock = new ManualClock(1_800_000_000);
  const store = open();
  const secrets = new SecretStore({ repository: store.brokerSecrets, kek, clock });
  return { dir, open, kek, clock, store, secrets };
}

describe('SecretStore', () => {
  it('puts, lists, reads, rotates and removes; listings carry no value', async () => {
    const { secrets, clock } = setup();
    const info = await secrets.put('stripe/refunds', text('sk_live_abc'));
    expect(info).toEqual({
      name: 'stripe/refunds',
      version: 1,
      createdAt: 1_800_000_000,
      updatedAt: 1_800_000_000,
    });
    await expect(secrets.put('stripe/refunds', text('other'))).rejects.toMatchObject({
      code: 'ERR_SECRET_EXISTS',
    });
    const value = await secrets.read('stripe/refunds');
    expect(new TextDecoder().decode(value)).toBe('sk_live_abc');
    wipe(value);
    clock.advance(5);
    expect(await secrets.rotate('stripe/refunds', text('sk_live_def'))).toMatchObject({
      version: 2,
      updatedAt: 1_800_000_005,
    });
    expect(new TextDecoder().decode(await secrets.read('stripe/refunds'))).toBe('sk_live_def');
    expect(JSON.stringify(await secrets.list())).not.toContain('sk_live');
    expect(await secrets.list()).toEqual([
      { name: 'stripe/refunds', version: 2, createdAt: 1_800_000_000, updatedAt: 1_800_000_005 },
    ]);
    await secrets.remove('stripe/refunds');
    await expect(secrets.read('stripe/refunds')).rejects.toMatchObject({
      code: 'ERR_SECRET_NOT_FOUND',
    });
    await expect(secrets.remove('stripe/refunds')).rejects.toMatchObject({
      code: 'ERR_SECRET_NOT_FOUND',
    });
    await expect(secrets.rotate('stripe/refunds', text('x'))).rejects.toMatchObject({
      code: 'ERR_SECRET_NOT_FOUND',
    });
  });

  it('checks names and values', async () => {
    const { secrets } = setup();
    for (const name of ['', '/a', 'a/', 'a//b', '.x', 'a b', 'ü', 'x'.repeat(65), '-a'])
      await expect(secrets.put(name, text('v'))).rejects.toMatchObject({
        code: 'ERR_SECRET_NAME_INVALID',
      });
    await expect(secrets.put('ok', new Uint8Array(0))).rejects.toMatchObject({
      code: 'ERR_SECRET_VALUE_INVALID',
    });
    await expect(secrets.put('ok', new Uint8Array(64 * 1024 + 1))).rejects.toMatchObject({
      code: 'ERR_SECRET_VALUE_INVALID',
    });
  });

  it('is sealed at rest: the database file never holds the value', async () => {
    const { secrets, store, dir } = setup();
    const marker = `plaintext-${Buffer.from(randomBytes(12)).toString('hex')}`;
    await secrets.put('marker', text(marker));
    await secrets.rotate('marker', text(`${marker}-2`));
    store.database.db.pragma('wal_checkpoint(TRUNCATE)');
    for (const file of ['mandate.db', 'mandate.db-wal']) {
      let raw = '';
      try {
        raw = readFileSync(join(dir, file)).toString('latin1');
      } catch {
        continue;
      }
      expect(raw).not.toContain(marker);
    }
  });

  it('does not open under another KEK, under another name or version, or as a sealed key', async () => {
    const { secrets, open, kek } = setup();
    await secrets.put('db', text('hunter2'));
    const other = new SecretStore({
      repository: open().brokerSecrets,
      kek: arena.allocateFrom(randomBytes(32)),
    });
    await expect(other.read('db')).rejects.toMatchObject({ code: 'ERR_SECRET_UNSEAL_FAILED' });
    const store = open();
    const row = await store.brokerSecrets.get('db');
    const sealed = row!.sealed;
    expect(openBlob(kek, sealed, sealedSecretAad('db', 1))).toBeDefined();
    expect(openBlob(kek, sealed, sealedSecretAad('db', 2))).toBeUndefined();
    expect(openBlob(kek, sealed, sealedSecretAad('dc', 1))).toBeUndefined();
    expect(
      openBlob(
        kek,
        sealed,
        sealedKeyAad({
          keyId: 'db',
          purpose: 'signing',
          keyType: 'ed25519',
          publicKey: new Uint8Array(32),
        }),
      ),
    ).toBeUndefined();
    // A sealed blob moved to another name does not open there.
    await store.brokerSecrets.insert({ ...row!, name: 'moved' });
    await expect(secrets.read('moved')).rejects.toMatchObject({ code: 'ERR_SECRET_UNSEAL_FAILED' });
  });
});
