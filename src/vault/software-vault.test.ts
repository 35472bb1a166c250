import { scryptSync } from 'node:crypto';
import {
  chmodSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  AeadAlgorithm,
  SecureArena,
  aeadEncrypt,
  randomBytes,
  verifyEd25519,
  verifyP256,
  type SecretBytes,
} from '../crypto/index.js';
import { toHex } from '../encoding/index.js';
import { InMemorySealedKeyRepository } from './in-memory-sealed-key-repository.js';
import {
  deriveKekFromPassphrase,
  loadOrCreateKeyFile,
  loadOrCreateSaltFile,
} from './key-encryption-key.js';
import { SoftwareVault } from './software-vault.js';
import { SigningKeyType, type SealedKeyRecord, type SealedKeyRepository } from './types.js';

const MESSAGE = new TextEncoder().encode('sealed at rest');
const NONCE = new Uint8Array(12);
const arena = new SecureArena();

function newKek(): SecretBytes {
  return arena.allocateFrom(randomBytes(32));
}

/** A repository that lets a test see and rewrite what the vault stored, and count reads. */
class ObservedRepository implements SealedKeyRepository {
  readonly inner = new InMemorySealedKeyRepository();
  reads = 0;
  failPuts = false;
  /** Resolved before each read returns, so a test can interleave work with a pending read. */
  gate: Promise<void> | undefined;

  async putKey(record: SealedKeyRecord): Promise<void> {
    if (this.failPuts) throw new Error('disk full');
    await this.inner.putKey(record);
  }
  async getKey(keyId: string): Promise<SealedKeyRecord | undefined> {
    this.reads++;
    const record = await this.inner.getKey(keyId);
    await this.gate;
    return record;
  }
  deleteKey(keyId: string): Promise<void> {
    return this.inner.deleteKey(keyId);
  }
  async replace(record: SealedKeyRecord): Promise<void> {
    await this.inner.deleteKey(record.keyId);
    await this.inner.putKey(record);
  }
  async record(keyId: string): Promise<SealedKeyRecord> {
    const record = await this.inner.getKey(keyId);
    if (record === undefined) throw new Error(`no record ${keyId}`);
    return record;
  }
}

function verifies(keyType: SigningKeyType, publicKey: Uint8Array, signature: Uint8Array): boolean {
  return keyType === SigningKeyType.ed25519
    ? verifyEd25519(publicKey, MESSAGE, signature)
    : verifyP256(publicKey, MESSAGE, signature);
}

describe('SoftwareVault persistence', () => {
  it('reopens every key type with a new vault over the same repository and KEK', async () => {
    const repository = new ObservedRepository();
    const kek = newKek();
    const first = new SoftwareVault({ repository, kek, arena });
    const ed = await first.generateSigningKey(SigningKeyType.ed25519);
    const p256 = await first.generateSigningKey(SigningKeyType.p256);
    const exchange = await first.generateX25519Key();
    const peer = await first.generateX25519Key();
    const before = await first.aeadEncrypt(
      await first.dh(exchange.keyId, peer.publicKey),
      NONCE,
      MESSAGE,
      new Uint8Array(0),
    );
    first.destroy();

    const second = new SoftwareVault({ repository, kek, arena });
    expect(second.cachedKeys).toBe(0);
    expect(await second.getSigningKey(ed.keyId)).toEqual(ed);
    expect(await second.getSigningKey(p256.keyId)).toEqual(p256);
    expect(await second.getX25519Key(exchange.keyId)).toEqual(exchange);
    for (const handle of [ed, p256]) {
      expect(
        verifies(handle.keyType, handle.publicKey, await second.sign(handle.keyId, MESSAGE)),
      ).toBe(true);
    }
    const after = await second.aeadEncrypt(
      await second.dh(exchange.keyId, peer.publicKey),
      NONCE,
      MESSAGE,
      new Uint8Array(0),
    );
    expect(after).toEqual(before);
  });

  it('stores only the sealed form: no record field holds the secret', async () => {
    const repository = new ObservedRepository();
    const vault = new SoftwareVault({ repository, kek: newKek(), arena });
    const handle = await vault.generateSigningKey(SigningKeyType.ed25519);
    const record = await repository.record(handle.keyId);
    expect(record).toMatchObject({
      keyId: handle.keyId,
      purpose: 'signing',
      keyType: 'ed25519',
      publicKey: handle.publicKey,
    });
    // 1 version + 24 nonce + 64 secret + 16 tag (sealed-blob.ts, version 2).
    expect(record.sealed.byteLength).toBe(105);
    expect(record.sealed[0]).toBe(0x02);
    const x = await vault.generateX25519Key();
    expect((await repository.record(x.keyId)).sealed.byteLength).toBe(1 + 24 + 32 + 16);
  });

  it('refuses a wrong KEK with ERR_VAULT_UNSEAL_FAILED, never a garbage key', async () => {
    const repository = new ObservedRepository();
    const vault = new SoftwareVault({ repository, kek: newKek(), arena });
    const ed = await vault.generateSigningKey(SigningKeyType.ed25519);
    const p256 = await vault.generateSigningKey(SigningKeyType.p256);
    const exchange = await vault.generateX25519Key();

    const wrong = new SoftwareVault({ repository, kek: newKek(), arena });
    const failed = { code: 'ERR_VAULT_UNSEAL_FAILED', kind: 'unauthorized' };
    await expect(wrong.sign(ed.keyId, MESSAGE)).rejects.toMatchObject(failed);
    await expect(wrong.sign(p256.keyId, MESSAGE)).rejects.toMatchObject(failed);
    await expect(wrong.getSigningKey(ed.keyId)).rejects.toMatchObject(failed);
    await expect(wrong.dh(exchange.keyId, exchange.publicKey)).rejects.toMatchObject(failed);
    expect(wrong.cachedKeys).toBe(0);
  });

  it('refuses a sealed blob swapped between two records', async () => {
    const repository = new ObservedRepository();
    const kek = newKek();
    const vault = new SoftwareVault({ repository, kek, arena });
    const a = await vault.generateSigningKey(SigningKeyType.ed25519);
    const b = await vault.generateSigningKey(SigningKeyType.ed25519);
    const recordA = await repository.record(a.keyId);
    const recordB = await repository.record(b.keyId);
    await repository.replace({ ...recordA, sealed: recordB.sealed });
    await repository.replace({ ...recordB, sealed: recordA.sealed });

    const reopened = new SoftwareVault({ repository, kek, arena });
    await expect(reopened.sign(a.keyId, MESSAGE)).rejects.toMatchObject({
      code: 'ERR_VAULT_UNSEAL_FAILED',
    });
    await expect(reopened.sign(b.keyId, MESSAGE)).rejects.toMatchObject({
      code: 'ERR_VAULT_UNSEAL_FAILED',
    });
  });

  it('refuses a record moved to another id, or with its public key or type rewritten', async () => {
    const repository = new ObservedRepository();
    const kek = newKek();
    const vault = new SoftwareVault({ repository, kek, arena });
    const a = await vault.generateSigningKey(SigningKeyType.ed25519);
    const other = await vault.generateSigningKey(SigningKeyType.ed25519);
    const exchange = await vault.generateX25519Key();
    const recordA = await repository.record(a.keyId);
    await repository.replace({ ...recordA, keyId: other.keyId });
    const x = await repository.record(exchange.keyId);
    await repository.replace({ ...x, purpose: 'signing', keyType: 'ed25519' });

    const reopened = new SoftwareVault({ repository, kek, arena });
    const failed = { code: 'ERR_VAULT_UNSEAL_FAILED' };
    await expect(reopened.sign(other.keyId, MESSAGE)).rejects.toMatchObject(failed);
    await expect(reopened.sign(exchange.keyId, MESSAGE)).rejects.toMatchObject(failed);
    await repository.replace({ ...recordA, publicKey: other.publicKey });
    await expect(reopened.getSigningKey(a.keyId)).rejects.toMatchObject(failed);
  });

  it('deletes the record as well as the key in memory', async () => {
    const repository = new ObservedRepository();
    const kek = newKek();
    const vault = new SoftwareVault({ repository, kek, arena });
    const signing = await vault.generateSigningKey(SigningKeyType.p256);
    const exchange = await vault.generateX25519Key();
    await vault.deleteSigningKey(signing.keyId);
    await vault.deleteX25519Key(exchange.keyId);
    expect(await repository.inner.getKey(signing.keyId)).toBeUndefined();
    expect(await repository.inner.getKey(exchange.keyId)).toBeUndefined();
    expect(repository.inner.size).toBe(0);
    expect(vault.cachedKeys).toBe(0);
    const reopened = new SoftwareVault({ repository, kek, arena });
    await expect(reopened.sign(signing.keyId, MESSAGE)).rejects.toMatchObject({
      code: 'ERR_VAULT_KEY_NOT_FOUND',
    });
  });

  it('deletes an uncached key, checking its purpose from the record', async () => {
    const repository = new ObservedRepository();
    const kek = newKek();
    const signing = await new SoftwareVault({ repository, kek, arena }).generateSigningKey(
      SigningKeyType.ed25519,
    );
    const vault = new SoftwareVault({ repository, kek, arena });
    await expect(vault.deleteX25519Key(signing.keyId)).rejects.toMatchObject({
      code: 'ERR_VAULT_WRONG_PURPOSE',
    });
    await vault.deleteSigningKey(signing.keyId);
    expect(repository.inner.size).toBe(0);
  });

  it('keeps no key in memory when the repository refuses it', async () => {
    const repository = new ObservedRepository();
    repository.failPuts = true;
    const vault = new SoftwareVault({ repository, kek: newKek(), arena });
    await expect(vault.generateSigningKey(SigningKeyType.ed25519)).rejects.toThrow('disk full');
    await expect(vault.generateX25519Key()).rejects.toThrow('disk full');
    expect(vault.cachedKeys).toBe(0);
  });

  it('refuses a KEK of the wrong length and a cache of no keys', () => {
    const repository = new InMemorySealedKeyRepository();
    expect(
      () => new SoftwareVault({ repository, kek: arena.allocateFrom(randomBytes(16)), arena }),
    ).toThrow(expect.objectContaining({ code: 'ERR_CRYPTO_KEY_LENGTH' }));
    expect(() => new SoftwareVault({ repository, kek: newKek(), cacheKeys: 0 })).toThrow(
      expect.objectContaining({ code: 'ERR_VAULT_CACHE_SIZE_INVALID' }),
    );
  });
});

describe('SoftwareVault cache', () => {
  it('bounds unsealed keys and unseals evicted ones again on use', async () => {
    const repository = new ObservedRepository();
    const vault = new SoftwareVault({ repository, kek: newKek(), arena, cacheKeys: 3 });
    const handles = [];
    for (let i = 0; i < 10; i++)
      handles.push(
        await vault.generateSigningKey(i % 2 === 0 ? SigningKeyType.ed25519 : SigningKeyType.p256),
      );
    expect(vault.cachedKeys).toBe(3);
    expect(repository.reads).toBe(0);
    // Newest first: the three newest are still cached, the seven others are unsealed again.
    for (const handle of [...handles].reverse()) {
      expect(
        verifies(handle.keyType, handle.publicKey, await vault.sign(handle.keyId, MESSAGE)),
      ).toBe(true);
    }
    expect(vault.cachedKeys).toBe(3);
    expect(repository.reads).toBe(7);
  });

  it('keeps recently used keys and evicts the least recently used', async () => {
    const repository = new ObservedRepository();
    const vault = new SoftwareVault({ repository, kek: newKek(), arena, cacheKeys: 2 });
    const a = await vault.generateSigningKey(SigningKeyType.ed25519);
    await vault.generateSigningKey(SigningKeyType.ed25519);
    await vault.sign(a.keyId, MESSAGE); // a is now the most recent
    await vault.generateSigningKey(SigningKeyType.ed25519); // evicts b, not a
    await vault.sign(a.keyId, MESSAGE);
    expect(repository.reads).toBe(0);
  });

  it('evicts exactly as a reference LRU over any sequence of creations and uses', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 4 }),
        fc.array(fc.option(fc.nat(), { nil: undefined }), { maxLength: 60 }),
        async (cacheKeys, steps) => {
          const repository = new ObservedRepository();
          const vault = new SoftwareVault({ repository, kek: newKek(), arena, cacheKeys });
          const keys: string[] = [];
          const model: string[] = []; // least recently used first
          let misses = 0;
          const touch = (keyId: string): void => {
            const at = model.indexOf(keyId);
            if (at >= 0) model.splice(at, 1);
            model.push(keyId);
            if (model.length > cacheKeys) model.shift();
          };
          for (const step of steps) {
            if (step === undefined || keys.length === 0) {
              const handle = await vault.generateSigningKey(SigningKeyType.ed25519);
              keys.push(handle.keyId);
              touch(handle.keyId);
            } else {
              const keyId = keys[step % keys.length]!;
              if (!model.includes(keyId)) misses++;
              await vault.sign(keyId, MESSAGE);
              touch(keyId);
            }
          }
          expect(repository.reads).toBe(misses);
          expect(vault.cachedKeys).toBe(model.length);
          vault.destroy();
        },
      ),
      { numRuns: 200 },
    );
  });

  it('shares one read and one unseal among concurrent first uses', async () => {
    const repository = new ObservedRepository();
    const kek = newKek();
    const handle = await new SoftwareVault({ repository, kek, arena }).generateSigningKey(
      SigningKeyType.ed25519,
    );
    const vault = new SoftwareVault({ repository, kek, arena });
    const signatures = await Promise.all(
      Array.from({ length: 8 }, () => vault.sign(handle.keyId, MESSAGE)),
    );
    expect(repository.reads).toBe(1);
    for (const signature of signatures)
      expect(verifyEd25519(handle.publicKey, MESSAGE, signature)).toBe(true);
  });

  it('lets a delete win over an unseal that is in flight', async () => {
    const repository = new ObservedRepository();
    const kek = newKek();
    const handle = await new SoftwareVault({ repository, kek, arena }).generateSigningKey(
      SigningKeyType.ed25519,
    );
    const vault = new SoftwareVault({ repository, kek, arena });
    let open = (): void => undefined;
    repository.gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    const signing = vault.sign(handle.keyId, MESSAGE);
    const deleting = vault.deleteSigningKey(handle.keyId);
    open();
    await deleting;
    await expect(signing).rejects.toMatchObject({ code: 'ERR_VAULT_KEY_NOT_FOUND' });
    expect(vault.cachedKeys).toBe(0);
    await expect(vault.sign(handle.keyId, MESSAGE)).rejects.toMatchObject({
      code: 'ERR_VAULT_KEY_NOT_FOUND',
    });
  });

  it('survives evictions racing with concurrent first uses of many keys', async () => {
    const repository = new ObservedRepository();
    const kek = newKek();
    const maker = new SoftwareVault({ repository, kek, arena });
    const handles = await Promise.all(
      Array.from({ length: 12 }, () => maker.generateSigningKey(SigningKeyType.ed25519)),
    );
    const vault = new SoftwareVault({ repository, kek, arena, cacheKeys: 1 });
    const rounds = await Promise.all(
      handles.flatMap((h) => [vault.sign(h.keyId, MESSAGE), vault.sign(h.keyId, MESSAGE)]),
    );
    rounds.forEach((signature, i) => {
      expect(verifyEd25519(handles[Math.floor(i / 2)]!.publicKey, MESSAGE, signature)).toBe(true);
    });
    expect(vault.cachedKeys).toBe(1);
  });
});

describe('SoftwareVault tamper detection', () => {
  it('fails to unseal after any single bit flip in the public key or sealed blob', async () => {
    const repository = new ObservedRepository();
    const kek = newKek();
    const maker = new SoftwareVault({ repository, kek, arena });
    const records = [
      await repository.record((await maker.generateSigningKey(SigningKeyType.ed25519)).keyId),
      await repository.record((await maker.generateSigningKey(SigningKeyType.p256)).keyId),
      await repository.record((await maker.generateX25519Key()).keyId),
    ];
    const vault = new SoftwareVault({ repository, kek, arena });
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...records),
        fc.nat(),
        fc.boolean(),
        async (original, bitSeed, inPublicKey) => {
          const field = inPublicKey ? original.publicKey : original.sealed;
          const bit = bitSeed % (field.byteLength * 8);
          const flipped = field.slice();
          flipped[bit >> 3]! ^= 1 << (bit & 7);
          await repository.replace(
            inPublicKey ? { ...original, publicKey: flipped } : { ...original, sealed: flipped },
          );
          try {
            const use =
              original.purpose === 'signing'
                ? vault.getSigningKey(original.keyId)
                : vault.getX25519Key(original.keyId);
            await expect(use).rejects.toMatchObject({ code: 'ERR_VAULT_UNSEAL_FAILED' });
            expect(vault.cachedKeys).toBe(0);
          } finally {
            await repository.replace(original);
          }
        },
      ),
      { numRuns: 300 },
    );
    // The untouched records still open.
    expect((await vault.getSigningKey(records[0]!.keyId)).publicKey).toEqual(records[0]!.publicKey);
  });
});

describe('key-encryption keys', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'mandate-kek-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates a 32-byte key file with mode 0600 and loads the same key again', async () => {
    const path = join(dir, 'vault.key');
    const created = await loadOrCreateKeyFile(path);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readFileSync(path).byteLength).toBe(32);
    const loaded = await loadOrCreateKeyFile(path, { arena });
    expect(toHex(loaded.expose())).toBe(toHex(created.expose()));
    expect(String(loaded)).toBe('[redacted]');
    expect(readdirSync(dir)).toEqual(['vault.key']); // no temp file left behind
  });

  it('gives racing creators one and the same key', async () => {
    const path = join(dir, 'vault.key');
    const keys = await Promise.all(
      Array.from({ length: 8 }, () => loadOrCreateKeyFile(path, { arena })),
    );
    expect(new Set(keys.map((k) => toHex(k.expose()))).size).toBe(1);
    expect(readdirSync(dir)).toEqual(['vault.key']);
  });

  it('refuses a key file that group or others can read with ERR_VAULT_KEY_FILE_INSECURE', async () => {
    const path = join(dir, 'vault.key');
    await loadOrCreateKeyFile(path);
    for (const mode of [0o644, 0o640, 0o604, 0o660]) {
      chmodSync(path, mode);
      await expect(loadOrCreateKeyFile(path)).rejects.toMatchObject({
        code: 'ERR_VAULT_KEY_FILE_INSECURE',
      });
    }
    chmodSync(path, 0o400);
    await expect(loadOrCreateKeyFile(path)).resolves.toBeDefined();
  });

  it('refuses a key file of the wrong length with ERR_VAULT_KEY_FILE_INVALID', async () => {
    for (const length of [0, 16, 31, 33, 64]) {
      const path = join(dir, `key-${length}`);
      writeFileSync(path, randomBytes(length), { mode: 0o600 });
      await expect(loadOrCreateKeyFile(path)).rejects.toMatchObject({
        code: 'ERR_VAULT_KEY_FILE_INVALID',
      });
    }
    await expect(loadOrCreateKeyFile(dir)).rejects.toMatchObject({
      code: 'ERR_VAULT_KEY_FILE_INVALID',
    });
  });

  it('persists a vault across processes through the key file', async () => {
    const path = join(dir, 'vault.key');
    const repository = new InMemorySealedKeyRepository();
    const first = new SoftwareVault({
      repository,
      kek: await loadOrCreateKeyFile(path, { arena }),
      arena,
    });
    const handle = await first.generateSigningKey(SigningKeyType.ed25519);
    const second = new SoftwareVault({
      repository,
      kek: await loadOrCreateKeyFile(path, { arena }),
      arena,
    });
    expect(verifyEd25519(handle.publicKey, MESSAGE, await second.sign(handle.keyId, MESSAGE))).toBe(
      true,
    );
  });

  it('derives a passphrase KEK deterministically per salt and passphrase', async () => {
    const salt = await loadOrCreateSaltFile(join(dir, 'vault.salt'));
    expect(salt.byteLength).toBe(16);
    expect(statSync(join(dir, 'vault.salt')).size).toBe(16);
    expect(await loadOrCreateSaltFile(join(dir, 'vault.salt'))).toEqual(salt);
    const [a, b, otherSalt, otherPassphrase] = await Promise.all([
      deriveKekFromPassphrase('correct horse battery staple', salt, { arena }),
      deriveKekFromPassphrase(new TextEncoder().encode('correct horse battery staple'), salt, {
        arena,
      }),
      deriveKekFromPassphrase('correct horse battery staple', randomBytes(16), { arena }),
      deriveKekFromPassphrase('correct horse battery stapler', salt, { arena }),
    ]);
    expect(a.byteLength).toBe(32);
    expect(toHex(b.expose())).toBe(toHex(a.expose()));
    expect(toHex(otherSalt.expose())).not.toBe(toHex(a.expose()));
    expect(toHex(otherPassphrase.expose())).not.toBe(toHex(a.expose()));
    // A KEK is only as good as its use: the derived key seals and reopens a vault.
    const repository = new InMemorySealedKeyRepository();
    const handle = await new SoftwareVault({ repository, kek: a, arena }).generateX25519Key();
    expect(
      await new SoftwareVault({ repository, kek: b, arena }).getX25519Key(handle.keyId),
    ).toEqual(handle);
  });

  it('matches scrypt(N=2^15, r=8, p=1) as a fixed format', async () => {
    const salt = new Uint8Array(16).fill(1);
    const kek = await deriveKekFromPassphrase('mandate', salt, { arena });
    const expected = scryptSync('mandate', salt, 32, {
      N: 32768,
      r: 8,
      p: 1,
      maxmem: 64 * 1024 * 1024,
    });
    expect(toHex(kek.expose())).toBe(expected.toString('hex'));
    // Sanity: the KEK is a working AES-256-GCM key.
    expect(aeadEncrypt(AeadAlgorithm.aes256gcm, kek.expose(), NONCE, MESSAGE).byteLength).toBe(
      MESSAGE.byteLength + 16,
    );
  });

  it('refuses an empty passphrase, a short salt and a salt file of the wrong length', async () => {
    await expect(deriveKekFromPassphrase('', randomBytes(16))).rejects.toMatchObject({
      code: 'ERR_VAULT_PASSPHRASE_EMPTY',
    });
    await expect(deriveKekFromPassphrase('x', randomBytes(8))).rejects.toMatchObject({
      code: 'ERR_VAULT_SALT_INVALID',
    });
    writeFileSync(join(dir, 'bad.salt'), randomBytes(15));
    await expect(loadOrCreateSaltFile(join(dir, 'bad.salt'))).rejects.toMatchObject({
      code: 'ERR_VAULT_KEY_FILE_INVALID',
    });
  });
});
