import { afterEach, describe, expect, it } from 'vitest';
import { toHex } from '../encoding/index.js';
import { sha256 } from '../crypto/index.js';
import type { Identifier, VerifiedIdentity } from '../identity/index.js';
import type { CredentialIssuer } from '../credentials/index.js';
import { MemoryPolicyBundleRepository, type PolicyBundleRepository } from '../gates/index.js';
import { SqliteDatabase } from '../store/sqlite-database.js';
import { SQLITE_MIGRATIONS } from '../store/open-sqlite-store.js';
import { SqlitePolicyBundleRepository } from '../store/sqlite-policy-bundle-repository.js';
import { BUNDLE_T0, bundleWorld } from '../../test/helpers/bundles.js';
import { codeOf } from '../../test/helpers/errors.js';
import { StoreBundleSource, type StoreBundleSourceOptions } from './store-bundle-source.js';

const sources: StoreBundleSource[] = [];
afterEach(async () => {
  await Promise.all(sources.splice(0).map((s) => s.stop()));
});

async function setup(
  repository: PolicyBundleRepository = new MemoryPolicyBundleRepository(),
  extra: Partial<StoreBundleSourceOptions> = {},
) {
  const world = bundleWorld();
  const authority = await world.authority('authority');
  let trusted: CredentialIssuer[] = [authority];
  const start = async () => {
    const source = await StoreBundleSource.start({
      repository,
      authorities: () =>
        Promise.resolve(
          new Map<Identifier, VerifiedIdentity>(
            trusted.map((i) => [i.identity.identifier, i.identity]),
          ),
        ),
      maxStalenessSeconds: 30,
      clock: world.clock,
      pollIntervalMs: 60_000,
      ...extra,
    });
    sources.push(source);
    return source;
  };
  const publish = async (version: number, issuer = authority) =>
    repository.publishBundle(await world.sign(issuer, version), world.clock.nowSeconds());
  return {
    world,
    authority,
    repository,
    start,
    publish,
    trust: (issuers: CredentialIssuer[]) => {
      trusted = issuers;
    },
  };
}

describe('StoreBundleSource', () => {
  it('has no bundle until one is published, then follows each new version', async () => {
    const { start, publish, world } = await setup();
    const source = await start();
    expect(source.current()).toBeUndefined();
    const v1 = await publish(1);
    await source.refresh();
    expect(source.current()).toMatchObject({ version: 1, hash: v1.hash, createdAt: BUNDLE_T0 });
    world.clock.advance(5);
    await publish(2);
    await source.refresh();
    expect(source.current()?.version).toBe(2);
    expect(source.current()?.policySet.annotations('policy0')?.get('id')).toBe('support-low-risk');
  });

  it('polls on its own: a bundle published on the same home is in force within a poll', async () => {
    const { start, publish } = await setup(undefined, { pollIntervalMs: 10 });
    const source = await start();
    await publish(1);
    const deadline = Date.now() + 1000;
    while (source.current() === undefined && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 5));
    expect(source.current()?.version).toBe(1);
  });

  it('refuses a latest bundle that does not verify: the one in force stays until the staleness bound, then fails closed', async () => {
    const { start, publish, world, authority, trust } = await setup();
    const other = await world.authority('other');
    await publish(1);
    const source = await start();
    expect(source.current()?.version).toBe(1);
    // Version 2 comes from an authority this home does not trust.
    await publish(2, other);
    await source.refresh();
    expect(source.current()?.version).toBe(1);
    world.clock.advance(30);
    expect(source.current()?.version).toBe(1);
    world.clock.advance(1);
    expect(codeOf(() => source.current())).toBe('ERR_BUNDLE_STALE');
    // Trusting `other` now is not enough: the bundle in force is `authority`'s, and a bundle
    // refused once is not verified again.
    trust([authority, other]);
    await source.refresh();
    expect(codeOf(() => source.current())).toBe('ERR_BUNDLE_STALE');
    // A newer valid bundle from the authority in force recovers.
    await publish(3);
    await source.refresh();
    expect(source.current()?.version).toBe(3);
  });

  it('refuses a bundle edited in the database, verifying it once', async () => {
    const database = new SqliteDatabase(':memory:', SQLITE_MIGRATIONS);
    const repository = new SqlitePolicyBundleRepository(database);
    const { start, publish, world } = await setup(repository);
    await publish(1);
    const source = await start();
    const v2 = await publish(2);
    // Someone with the file swaps `support` for `suppore` in version 2 and fixes the hash up.
    const tampered = Uint8Array.from(v2.bytes);
    const at = Buffer.from(tampered).indexOf('"support"');
    expect(at).toBeGreaterThan(0);
    tampered[at + 7] = 'e'.charCodeAt(0);
    database.db.exec('DROP TRIGGER policy_bundles_append_only');
    database.db
      .prepare('UPDATE policy_bundles SET bytes = ?, hash = ? WHERE version = 2')
      .run(tampered, toHex(sha256(tampered)));
    let reads = 0;
    const latestBundle = repository.latestBundle.bind(repository);
    repository.latestBundle = () => {
      reads++;
      return latestBundle();
    };
    await source.refresh();
    await source.refresh();
    expect(reads).toBe(1);
    expect(source.current()?.version).toBe(1);
    world.clock.advance(31);
    expect(codeOf(() => source.current())).toBe('ERR_BUNDLE_STALE');
    database.close();
  });

  it('fails closed when the bundle is older than its bound', async () => {
    const { start, publish, world } = await setup(undefined, { maxAgeSeconds: 100 });
    await publish(1);
    const source = await start();
    world.clock.advance(100);
    await source.refresh();
    expect(source.current()?.version).toBe(1);
    world.clock.advance(1);
    await source.refresh();
    expect(codeOf(() => source.current())).toBe('ERR_BUNDLE_STALE');
  });

  it('goes stale when the store cannot be read, and recovers when it can', async () => {
    const repository = new MemoryPolicyBundleRepository();
    const { start, publish, world } = await setup(repository);
    await publish(1);
    const source = await start();
    const working = repository.latestBundleVersion.bind(repository);
    repository.latestBundleVersion = () => Promise.reject(new Error('disk gone'));
    world.clock.advance(31);
    await source.refresh();
    expect(codeOf(() => source.current())).toBe('ERR_BUNDLE_STALE');
    repository.latestBundleVersion = working;
    await source.refresh();
    expect(source.current()?.version).toBe(1);
  });

  it('does not follow a store that went back', async () => {
    const first = new MemoryPolicyBundleRepository();
    const { start, publish, world } = await setup(first);
    await publish(1);
    await publish(2);
    const source = await start();
    // The database is replaced by one holding only version 1.
    const replaced = new MemoryPolicyBundleRepository();
    await replaced.publishBundle((await first.getBundle(1))!.bytes, BUNDLE_T0);
    first.latestBundleVersion = () => replaced.latestBundleVersion();
    first.latestBundle = () => replaced.latestBundle();
    await source.refresh();
    expect(source.current()?.version).toBe(2);
    world.clock.advance(31);
    expect(codeOf(() => source.current())).toBe('ERR_BUNDLE_STALE');
  });

  it('starts without a bundle when the latest does not verify, but not when the store cannot be read', async () => {
    const { start, publish, world, trust } = await setup();
    await publish(1);
    trust([]);
    const source = await start();
    expect(source.current()).toBeUndefined();
    const broken = new MemoryPolicyBundleRepository();
    broken.latestBundleVersion = () => Promise.reject(new Error('disk gone'));
    await expect(
      StoreBundleSource.start({
        repository: broken,
        authorities: () => Promise.resolve(new Map()),
        maxStalenessSeconds: 30,
        clock: world.clock,
      }),
    ).rejects.toThrow('disk gone');
    for (const bad of [{ pollIntervalMs: 0 }, { maxStalenessSeconds: -1 }, { maxAgeSeconds: 1.5 }])
      await expect(
        StoreBundleSource.start({
          repository: broken,
          authorities: () => Promise.resolve(new Map()),
          maxStalenessSeconds: 30,
          ...bad,
        }),
      ).rejects.toMatchObject({ code: 'ERR_ARGUMENT_INVALID' });
  });
});
