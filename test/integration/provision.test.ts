import { describe, expect, it } from 'vitest';
import { randomBytes, SecureArena } from '../../src/crypto/index.js';
import { Identities, Purpose } from '../../src/identity/index.js';
import { IdentityProvisioner, provisionIdentities } from '../../src/node/index.js';
import { openSqliteStore } from '../../src/store/index.js';
import { SigningKeyType, SoftwareVault } from '../../src/vault/index.js';

function setup() {
  const store = openSqliteStore(':memory:');
  const kek = new SecureArena().allocateFrom(randomBytes(32));
  const vault = new SoftwareVault({ repository: store.vaultKeys, kek });
  const identities = new Identities({ vault, repository: store.identities });
  return {
    store,
    kek,
    vault,
    identities,
    target: { identities: store.identities, vaultKeys: store.vaultKeys, kek },
  };
}

describe('provisionIdentities (worker threads)', () => {
  it('creates whole identities on two workers that this thread can use', async () => {
    const { store, vault, identities, target } = setup();
    const progress: number[] = [];
    const created = await provisionIdentities(target, {
      count: 650,
      workers: 2,
      batchSize: 200,
      namePrefix: 'agent-',
      onProgress: (done) => progress.push(done),
    });
    expect(created).toHaveLength(650);
    expect(new Set(created).size).toBe(650);
    expect(progress.at(-1)).toBe(650);
    expect(await identities.count()).toBe(650);
    for (const index of [0, 199, 200, 649]) {
      const known = await identities.get(`agent-${index}`);
      expect(known.identity.identifier).toBe(created[index]);
      // Keys sealed in a worker open here: same KEK, same format.
      const signature = await vault.sign(known.primaryKeyId!, new Uint8Array(32));
      expect(signature).toHaveLength(64);
      for (const purpose of [Purpose.credentials, Purpose.secureChannel]) {
        const { keyId, verified } = await identities.purposeKey(known, purpose);
        expect(verified.subject).toBe(known.identity.identifier);
        if (purpose === Purpose.secureChannel)
          expect((await vault.getX25519Key(keyId)).publicKey).toEqual(
            verified.key.purpose === Purpose.secureChannel ? verified.key.x25519 : undefined,
          );
      }
    }
    const vaultKeys = store.database.db
      .prepare<[], { n: number }>('SELECT count(*) AS n FROM vault_keys')
      .get()!.n;
    expect(vaultKeys).toBe(3 * 650);
    store.close();
  });

  it('refuses taken names and keeps nothing of the refused batch', async () => {
    const { store, identities, target } = setup();
    await identities.create({ name: 'bot-3' });
    await expect(
      provisionIdentities(target, { count: 10, workers: 1, batchSize: 10, namePrefix: 'bot-' }),
    ).rejects.toMatchObject({ code: 'ERR_IDENTITY_NAME_TAKEN' });
    expect(await identities.count()).toBe(1);
    expect(
      store.database.db.prepare<[], { n: number }>('SELECT count(*) AS n FROM vault_keys').get()!.n,
    ).toBe(3);
    store.close();
  });

  it('keeps its workers between calls, runs calls one after another, and closes', async () => {
    const { store, identities, target } = setup();
    const provisioner = IdentityProvisioner.start(target, { workers: 2 });
    const [a, b] = await Promise.all([
      provisioner.provision({ count: 120, batchSize: 50, namePrefix: 'a-' }),
      provisioner.provision({
        count: 80,
        batchSize: 50,
        namePrefix: 'b-',
        keyType: SigningKeyType.p256,
      }),
    ]);
    expect(a).toHaveLength(120);
    expect(b).toHaveLength(80);
    expect((await identities.get('b-79')).identity.keyType).toBe(SigningKeyType.p256);
    expect(await identities.count()).toBe(200);
    await provisioner.close();
    await provisioner.close();
    await expect(provisioner.provision({ count: 1 })).rejects.toMatchObject({
      code: 'ERR_ARGUMENT_INVALID',
    });
    store.close();
  });

  it('refuses bad arguments', async () => {
    const { store, target } = setup();
    await expect(provisionIdentities(target, { count: 0 })).rejects.toMatchObject({
      code: 'ERR_ARGUMENT_INVALID',
    });
    await expect(provisionIdentities(target, { count: 5, workers: 0 })).rejects.toMatchObject({
      code: 'ERR_ARGUMENT_INVALID',
    });
    await expect(provisionIdentities(target, { count: 5, batchSize: 1.5 })).rejects.toMatchObject({
      code: 'ERR_ARGUMENT_INVALID',
    });
    store.close();
  });
});
