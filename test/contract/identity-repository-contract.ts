import { describe, expect, it } from 'vitest';
import {
  Purpose,
  type Identifier,
  type IdentityRepository,
  type StoredIdentity,
} from '../../src/identity/index.js';

const id = (n: number): Identifier => `I${n.toString(16).padStart(64, '0')}`;
const row = (n: number, name: string | null = null): StoredIdentity => ({
  identifier: id(n),
  changeHistory: new Uint8Array([n & 0xff, 1, 2, 3]),
  name,
  primaryKeyId: name === null ? null : `key-${n}`,
  createdAt: 1000 + n,
  updatedAt: 1000 + n,
});

/** One contract for every IdentityRepository implementation. */
export function runIdentityRepositoryContract(
  name: string,
  create: () => { repository: IdentityRepository; close?: () => void },
): void {
  describe(`IdentityRepository contract: ${name}`, () => {
    it('stores, finds by identifier and by name, and replaces', async () => {
      const { repository, close } = create();
      expect(await repository.getIdentity(id(1))).toBeUndefined();
      await repository.putIdentity(row(1, 'alice'));
      await repository.putIdentity(row(2));
      expect(await repository.getIdentity(id(1))).toEqual(row(1, 'alice'));
      expect(await repository.getIdentityByName('alice')).toEqual(row(1, 'alice'));
      expect(await repository.getIdentityByName('bob')).toBeUndefined();
      const updated = {
        ...row(1, 'alice'),
        changeHistory: new Uint8Array([9, 9]),
        updatedAt: 5000,
      };
      await repository.putIdentity(updated);
      expect(await repository.getIdentity(id(1))).toEqual(updated);
      expect(await repository.countIdentities()).toBe(2);
      close?.();
    });

    it('refuses a name held by another identity', async () => {
      const { repository, close } = create();
      await repository.putIdentity(row(1, 'alice'));
      await expect(repository.putIdentity(row(2, 'alice'))).rejects.toMatchObject({
        code: 'ERR_IDENTITY_NAME_TAKEN',
      });
      expect(await repository.getIdentity(id(2))).toBeUndefined();
      expect((await repository.getIdentityByName('alice'))?.identifier).toBe(id(1));
      close?.();
    });

    it('lists in insertion order with limit and offset', async () => {
      const { repository, close } = create();
      for (let n = 0; n < 10; n++) await repository.putIdentity(row(n));
      expect((await repository.listIdentities()).map((r) => r.identifier)).toEqual(
        [...Array(10).keys()].map(id),
      );
      expect(
        (await repository.listIdentities({ limit: 3, offset: 4 })).map((r) => r.identifier),
      ).toEqual([4, 5, 6].map(id));
      close?.();
    });

    it('stores purpose keys with their identity, per purpose', async () => {
      const { repository, close } = create();
      const key = (purpose: Purpose, keyId: string, byte: number) => ({
        identifier: id(1),
        purpose,
        keyId,
        attestation: new Uint8Array([byte]),
      });
      await repository.putIdentity(row(1), [
        key(Purpose.credentials, 'c1', 1),
        key(Purpose.secureChannel, 's1', 2),
      ]);
      expect(await repository.getPurposeKey(id(1), Purpose.credentials)).toEqual(
        key(Purpose.credentials, 'c1', 1),
      );
      // Replacing one purpose keeps the other; replacing the identity alone keeps both.
      await repository.putIdentity({ ...row(1), updatedAt: 9999 }, [
        key(Purpose.credentials, 'c2', 3),
      ]);
      await repository.putIdentity({ ...row(1), updatedAt: 10000 });
      expect(await repository.getPurposeKey(id(1), Purpose.credentials)).toEqual(
        key(Purpose.credentials, 'c2', 3),
      );
      expect((await repository.getPurposeKey(id(1), Purpose.secureChannel))?.keyId).toBe('s1');
      expect(await repository.getPurposeKey(id(2), Purpose.credentials)).toBeUndefined();
      await repository.putIdentity(row(2));
      expect(await repository.getPurposeKey(id(2), Purpose.credentials)).toBeUndefined();
      // Keys of another identity are refused, and nothing is written.
      await expect(
        repository.putIdentity(row(3), [{ ...key(Purpose.credentials, 'x', 4) }]),
      ).rejects.toMatchObject({ code: 'ERR_ARGUMENT_INVALID' });
      expect(await repository.getIdentity(id(3))).toBeUndefined();
      close?.();
    });

    it('runs a transaction and returns its result', async () => {
      const { repository, close } = create();
      const result = await repository.transaction(async () => {
        await repository.putIdentity(row(7));
        return 42;
      });
      expect(result).toBe(42);
      expect(await repository.getIdentity(id(7))).toBeDefined();
      close?.();
    });
  });
}
