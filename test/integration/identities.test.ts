import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/index.js';
import { randomBytes, SecureArena } from '../../src/crypto/index.js';
import { MemoryVault, SoftwareVault } from '../../src/vault/index.js';
import { openSqliteStore } from '../../src/store/index.js';
import { rotateIdentity } from '../../src/identity/create-identity.js';
import { Identities, type IdentityVault } from '../../src/identity/identities.js';
import { MemoryIdentityRepository } from '../../src/identity/memory-identity-repository.js';
import { Purpose } from '../../src/identity/model.js';
import type { IdentityRepository } from '../../src/identity/repository.js';
import { newerHistory } from '../../src/identity/internal.js';
import { expectCode } from '../helpers/errors.js';

const NOW = 1_800_000_000;

interface Setup {
  identities: Identities;
  vault: IdentityVault;
  repository: IdentityRepository;
  clock: ManualClock;
  vaultKeyCount: () => number | undefined;
}

type Factory = (wrap?: (vault: IdentityVault) => IdentityVault) => Setup;

const memory: Factory = (wrap = (v) => v) => {
  const clock = new ManualClock(NOW);
  const vault = wrap(new MemoryVault());
  const repository = new MemoryIdentityRepository();
  return {
    identities: new Identities({ vault, repository, clock }),
    vault,
    repository,
    clock,
    vaultKeyCount: () => undefined,
  };
};

const sqlite: Factory = (wrap = (v) => v) => {
  const clock = new ManualClock(NOW);
  const store = openSqliteStore(':memory:');
  const kek = new SecureArena().allocateFrom(randomBytes(32));
  const vault = wrap(new SoftwareVault({ repository: store.vaultKeys, kek }));
  return {
    identities: new Identities({ vault, repository: store.identities, clock }),
    vault,
    repository: store.identities,
    clock,
    vaultKeyCount: () =>
      store.database.db.prepare<[], { n: number }>('SELECT count(*) AS n FROM vault_keys').get()!.n,
  };
};

describe.each([
  ['memory vault + memory repository', memory],
  ['software vault + SQLite', sqlite],
])('Identities over %s', (_name, setup) => {
  it('creates a named identity with both purpose keys', async () => {
    const { identities } = setup();
    const alice = await identities.create({ name: 'alice' });
    expect((await identities.get('alice')).identity.identifier).toBe(alice.identity.identifier);
    expect((await identities.get(alice.identity.identifier)).name).toBe('alice');
    for (const purpose of [Purpose.credentials, Purpose.secureChannel]) {
      const { verified } = await identities.purposeKey('alice', purpose);
      expect(verified.key.purpose).toBe(purpose);
      expect(verified.subject).toBe(alice.identity.identifier);
    }
  });

  it('refuses duplicate and malformed names and unknown references', async () => {
    const { identities } = setup();
    await identities.create({ name: 'alice' });
    await expect(identities.create({ name: 'alice' })).rejects.toMatchObject({
      code: 'ERR_IDENTITY_NAME_TAKEN',
    });
    for (const bad of ['', ' x', 'a/b', 'x'.repeat(65), `I${'a'.repeat(64)}`]) {
      await expect(identities.create({ name: bad })).rejects.toMatchObject({
        code: 'ERR_IDENTITY_NAME_INVALID',
      });
    }
    await expect(identities.get('bob')).rejects.toMatchObject({ code: 'ERR_IDENTITY_NOT_FOUND' });
    expect(await identities.count()).toBe(1);
  });

  it('creates many in batches and reports progress', async () => {
    const { identities } = setup();
    const progress: number[] = [];
    const created = await identities.createMany(25, {
      batchSize: 10,
      namePrefix: 'agent-',
      onProgress: (done) => progress.push(done),
    });
    expect(created).toHaveLength(25);
    expect(progress).toEqual([10, 20, 25]);
    expect(await identities.count()).toBe(25);
    expect((await identities.get('agent-24')).identity.identifier).toBe(
      created[24]!.identity.identifier,
    );
    await expect(identities.createMany(0)).rejects.toMatchObject({ code: 'ERR_ARGUMENT_INVALID' });
  });

  it('rotates: same identifier, old key destroyed, purpose keys re-attested', async () => {
    const { identities, vault, clock } = setup();
    const alice = await identities.create({ name: 'alice' });
    const before = await identities.purposeKey('alice', Purpose.credentials);
    clock.advance(60);
    const rotated = await identities.rotate('alice');
    expect(rotated.identity.identifier).toBe(alice.identity.identifier);
    expect(rotated.identity.changes).toHaveLength(2);
    await expect(vault.sign(alice.primaryKeyId, new Uint8Array(32))).rejects.toMatchObject({
      code: 'ERR_VAULT_KEY_NOT_FOUND',
    });
    const after = await identities.purposeKey('alice', Purpose.credentials);
    expect(after.keyId).toBe(before.keyId);
    expect(after.verified.inRotationGrace).toBe(false);
    clock.advance(10_000);
    await identities.purposeKey('alice', Purpose.secureChannel);
  });

  it('rotates with revocation: new purpose keys, old ones destroyed', async () => {
    const { identities, vault, clock } = setup();
    await identities.create({ name: 'alice' });
    const oldCredential = await identities.purposeKey('alice', Purpose.credentials);
    const oldChannel = await identities.purposeKey('alice', Purpose.secureChannel);
    clock.advance(1);
    await identities.rotate('alice', { revokeAllPurposeKeys: true });
    const newCredential = await identities.purposeKey('alice', Purpose.credentials);
    expect(newCredential.keyId).not.toBe(oldCredential.keyId);
    await expect(vault.getSigningKey(oldCredential.keyId)).rejects.toMatchObject({
      code: 'ERR_VAULT_KEY_NOT_FOUND',
    });
    await expect(vault.getX25519Key(oldChannel.keyId)).rejects.toMatchObject({
      code: 'ERR_VAULT_KEY_NOT_FOUND',
    });
  });

  it('applies the update rule on import: new, equal, newer, older, fork', async () => {
    const a = setup();
    const b = setup();
    const alice = await a.identities.create({ name: 'alice' });
    const base = alice.identity;
    expect((await b.identities.import(base.changeHistory)).relation).toBe('new');
    expect((await b.identities.import(base.changeHistory)).relation).toBe('equal');
    // Two different rotations from the same change: a fork.
    const left = await rotateIdentity(a.vault, base, alice.primaryKeyId, { nowSeconds: NOW + 1 });
    const right = await rotateIdentity(a.vault, base, alice.primaryKeyId, { nowSeconds: NOW + 2 });
    expect((await b.identities.import(left.identity.changeHistory)).relation).toBe('newer');
    await expect(b.identities.import(base.changeHistory)).rejects.toMatchObject({
      code: 'ERR_IDENTITY_HISTORY_OLDER',
    });
    await expect(b.identities.import(right.identity.changeHistory)).rejects.toMatchObject({
      code: 'ERR_IDENTITY_HISTORY_FORK',
    });
    expect((await b.identities.get(base.identifier)).identity.changeHistory).toEqual(
      left.identity.changeHistory,
    );
    // The one rule every verifier applies when a presented history meets a known one.
    expect(newerHistory(undefined, base)).toBe(base);
    expect(newerHistory(base, left.identity)).toBe(left.identity);
    expect(newerHistory(left.identity, base)).toBe(left.identity);
    expect(newerHistory(left.identity, left.identity)).toBe(left.identity);
    expectCode(() => newerHistory(left.identity, right.identity), 'ERR_IDENTITY_HISTORY_FORK');
    await expect(
      b.identities.import(base.changeHistory, { expectedIdentifier: `I${'0'.repeat(64)}` }),
    ).rejects.toMatchObject({ code: 'ERR_IDENTITY_IDENTIFIER_MISMATCH' });
    // An imported identity is not local: it cannot be rotated here.
    await expect(b.identities.rotate(base.identifier)).rejects.toMatchObject({
      code: 'ERR_IDENTITY_NOT_LOCAL',
    });
  });
});

describe('atomicity on SQLite', () => {
  it('a failure mid-batch leaves no identity and no vault key of that batch', async () => {
    let x25519Calls = 0;
    const failing = (vault: IdentityVault): IdentityVault => ({
      generateSigningKey: (t) => vault.generateSigningKey(t),
      getSigningKey: (id) => vault.getSigningKey(id),
      sign: (id, m) => vault.sign(id, m),
      deleteSigningKey: (id) => vault.deleteSigningKey(id),
      generateX25519Key: async () => {
        if (++x25519Calls === 3) throw new Error('vault unavailable');
        return vault.generateX25519Key();
      },
      getX25519Key: (id) => vault.getX25519Key(id),
      deleteX25519Key: (id) => vault.deleteX25519Key(id),
      dh: (id, pk) => vault.dh(id, pk),
      hkdf: (salt, ikm, info, count) => vault.hkdf(salt, ikm, info, count),
      importSecret: (b) => vault.importSecret(b),
      aeadEncrypt: (k, n, p, a) => vault.aeadEncrypt(k, n, p, a),
      aeadDecrypt: (k, n, c, a) => vault.aeadDecrypt(k, n, c, a),
      deleteSecret: (h) => vault.deleteSecret(h),
    });
    const { identities, vaultKeyCount } = sqlite(failing);
    await expect(identities.createMany(5, { batchSize: 5 })).rejects.toThrow('vault unavailable');
    expect(await identities.count()).toBe(0);
    expect(vaultKeyCount()).toBe(0);
  });
});
