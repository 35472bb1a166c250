import { beforeAll, describe, expect, it } from 'vitest';
import type { CredentialIssuer } from '../../src/credentials/index.js';
import type { PolicyBundleRepository } from '../../src/gates/index.js';
import { peekBundle } from '../../src/gates/bundle.js';
import { BUNDLE_T0, bundleWorld } from '../helpers/bundles.js';

const PUBLISHED = BUNDLE_T0 + 5;

/** The suite every PolicyBundleRepository passes (memory, SQLite). */
export function runPolicyBundleRepositoryContract(
  name: string,
  open: () => { repository: PolicyBundleRepository; close?: () => void },
): void {
  describe(`PolicyBundleRepository contract: ${name}`, () => {
    // Signed once for the suite: versions 1, 2, 3 and 5 of one authority.
    const world = bundleWorld();
    let authority: CredentialIssuer;
    const signed = new Map<number, Uint8Array>();
    beforeAll(async () => {
      authority = await world.authority('authority');
      for (const version of [1, 2, 3, 5]) {
        world.clock.advance(1);
        signed.set(version, await world.sign(authority, version));
      }
    });
    const bundle = (version: number): Uint8Array => signed.get(version)!;

    it('is empty at first', async () => {
      const { repository, close } = open();
      expect(await repository.latestBundle()).toBeUndefined();
      expect(await repository.latestBundleVersion()).toBeUndefined();
      expect(await repository.getBundle(1)).toBeUndefined();
      expect(await repository.listBundles()).toEqual([]);
      close?.();
    });

    it('keeps every published version and the latest, with what it read from the bytes', async () => {
      const { repository, close } = open();
      const first = await repository.publishBundle(bundle(1), PUBLISHED);
      const peeked = peekBundle(bundle(1));
      expect(first).toEqual({ ...peeked, publishedAt: PUBLISHED, bytes: bundle(1) });
      expect(first.issuer).toBe(authority.identity.identifier);
      await repository.publishBundle(bundle(2), PUBLISHED + 1);
      await repository.publishBundle(bundle(5), PUBLISHED + 2);
      expect((await repository.latestBundle())?.bytes).toEqual(bundle(5));
      expect(await repository.latestBundleVersion()).toEqual({
        version: 5,
        hash: peekBundle(bundle(5)).hash,
      });
      expect((await repository.getBundle(2))?.bytes).toEqual(bundle(2));
      expect(await repository.getBundle(3)).toBeUndefined();
      expect(await repository.getBundle(0)).toBeUndefined();
      const history = await repository.listBundles();
      expect(history.map((b) => [b.version, b.publishedAt])).toEqual([
        [1, PUBLISHED],
        [2, PUBLISHED + 1],
        [5, PUBLISHED + 2],
      ]);
      expect(history[0]).toEqual({ ...peeked, publishedAt: PUBLISHED });
      close?.();
    });

    it('refuses a version that is not newer, and keeps what it had', async () => {
      const { repository, close } = open();
      await repository.publishBundle(bundle(2), PUBLISHED);
      for (const version of [1, 2])
        await expect(repository.publishBundle(bundle(version), PUBLISHED)).rejects.toMatchObject({
          code: 'ERR_BUNDLE_NOT_NEWER',
        });
      expect((await repository.listBundles()).map((b) => b.version)).toEqual([2]);
      close?.();
    });

    it('publishes atomically: of concurrent publishers of one version, exactly one wins', async () => {
      const { repository, close } = open();
      const results = await Promise.allSettled(
        Array.from({ length: 8 }, () => repository.publishBundle(bundle(3), PUBLISHED)),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      for (const r of results)
        if (r.status === 'rejected')
          expect(r.reason).toMatchObject({ code: 'ERR_BUNDLE_NOT_NEWER' });
      expect((await repository.listBundles()).map((b) => b.version)).toEqual([3]);
      close?.();
    });

    it('refuses bytes that are not a bundle, and a bad time, storing nothing', async () => {
      const { repository, close } = open();
      await expect(
        repository.publishBundle(new Uint8Array([1, 2]), PUBLISHED),
      ).rejects.toMatchObject({ code: 'ERR_BUNDLE_MALFORMED' });
      await expect(repository.publishBundle(bundle(1), -1)).rejects.toMatchObject({
        code: 'ERR_ARGUMENT_INVALID',
      });
      expect(await repository.listBundles()).toEqual([]);
      close?.();
    });

    it('hands out copies: changing what it returned changes nothing stored', async () => {
      const { repository, close } = open();
      const input = Uint8Array.from(bundle(1));
      const stored = await repository.publishBundle(input, PUBLISHED);
      input[10]! ^= 1;
      stored.bytes[11]! ^= 1;
      (await repository.latestBundle())!.bytes[12]! ^= 1;
      expect((await repository.getBundle(1))?.bytes).toEqual(bundle(1));
      close?.();
    });
  });
}
