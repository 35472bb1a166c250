import { afterEach, describe, expect, it } from 'vitest';
import { toHex } from '../encoding/index.js';
import { sha256 } from '../crypto/index.js';
import type { Identifier, VerifiedIdentity } from '../identity/index.js';
import type { CredentialIssuer } from '../credentials/index.js';
import { BusTopic, InProcessBus, type PublishedBundle } from '../bus/index.js';
import { BUNDLE_T0, bundleWorld } from '../../test/helpers/bundles.js';
import { codeOf } from '../../test/helpers/errors.js';
import { BusBundleSource } from './bus-bundle-source.js';

const stops: (() => void)[] = [];
afterEach(() => {
  for (const stop of stops.splice(0)) stop();
});

const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 20));

async function setup(maxAgeSeconds?: number) {
  const world = bundleWorld();
  const authority = await world.authority('authority');
  const stranger = await world.authority('stranger');
  const bus = new InProcessBus();
  const source = new BusBundleSource({
    subscriber: bus,
    authorities: () =>
      Promise.resolve(
        new Map<Identifier, VerifiedIdentity>([
          [authority.identity.identifier, authority.identity],
        ]),
      ),
    maxStalenessSeconds: 10,
    ...(maxAgeSeconds === undefined ? {} : { maxAgeSeconds }),
    clock: world.clock,
  });
  stops.push(() => {
    source.stop();
    bus.close();
  });
  const signed = async (version: number, issuer: CredentialIssuer = authority) => {
    const bytes = await world.sign(issuer, version);
    return { version, hash: toHex(sha256(bytes)), bytes } satisfies PublishedBundle;
  };
  const publish = (bundle: PublishedBundle) => {
    const sequence = bus.sequence(BusTopic.bundles);
    bus.publish(BusTopic.bundles, {
      fromSequence: sequence,
      toSequence: sequence + 1,
      bundles: [bundle],
      issuedAt: world.clock.nowSeconds(),
    });
  };
  return { world, authority, stranger, bus, source, signed, publish };
}

describe('BusBundleSource', () => {
  it('fails closed before any word, enforces each verified bundle, and goes stale without heartbeats', async () => {
    const { world, bus, source, signed, publish } = await setup();
    source.start();
    expect(codeOf(() => source.current())).toBe('ERR_BUNDLE_STALE');
    bus.heartbeat(BusTopic.bundles, world.clock.nowSeconds());
    await source.ready;
    await settle();
    expect(source.current()).toBeUndefined();
    const v1 = await signed(1);
    publish(v1);
    await settle();
    expect(source.current()).toMatchObject({ version: 1, hash: v1.hash, createdAt: BUNDLE_T0 });
    world.clock.advance(5);
    publish(await signed(2));
    await settle();
    expect(source.current()?.version).toBe(2);
    world.clock.advance(11);
    expect(codeOf(() => source.current())).toBe('ERR_BUNDLE_STALE');
    bus.heartbeat(BusTopic.bundles, world.clock.nowSeconds());
    await settle();
    expect(source.current()?.version).toBe(2);
  });

  it('gives a late subscriber the latest bundle from the snapshot', async () => {
    const { source, signed, publish } = await setup();
    publish(await signed(1));
    publish(await signed(3));
    source.start();
    await source.ready;
    expect(source.current()?.version).toBe(3);
  });

  it('refuses what verifyBundle refuses or the announcement misstates, and stops counting heartbeats', async () => {
    const cases: [string, (w: Awaited<ReturnType<typeof setup>>) => Promise<PublishedBundle>][] = [
      ['untrusted issuer', (w) => w.signed(3, w.stranger)],
      ['not newer', (w) => w.signed(1)],
      ['hash misstated', async (w) => ({ ...(await w.signed(4)), hash: 'ab'.repeat(32) })],
      ['version misstated', async (w) => ({ ...(await w.signed(5)), version: 6 })],
      ['bytes altered', async (w) => ({ ...(await w.signed(7)), bytes: new Uint8Array(100) })],
    ];
    for (const [what, bad] of cases) {
      const w = await setup();
      w.source.start();
      w.publish(await w.signed(2));
      await settle();
      expect(w.source.current()?.version, what).toBe(2);
      w.publish(await bad(w));
      await settle();
      // The bundle in force stays, but heartbeats no longer keep it fresh.
      expect(w.source.current()?.version, what).toBe(2);
      w.world.clock.advance(11);
      w.bus.heartbeat(BusTopic.bundles, w.world.clock.nowSeconds());
      await settle();
      expect(
        codeOf(() => w.source.current()),
        what,
      ).toBe('ERR_BUNDLE_STALE');
      // A good bundle after it brings the source back in step.
      w.publish(await w.signed(8));
      await settle();
      expect(w.source.current()?.version, what).toBe(8);
    }
  });

  it('does not enforce a bundle older than maxAgeSeconds', async () => {
    const { world, source, signed, publish } = await setup(60);
    source.start();
    publish(await signed(1));
    await settle();
    expect(source.current()?.version).toBe(1);
    world.clock.advance(61);
    expect(codeOf(() => source.current())).toBe('ERR_BUNDLE_STALE');
  });
});
