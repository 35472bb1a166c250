import { afterEach, describe, expect, it } from 'vitest';
import { unavailable } from '../core/internal.js';
import { BusTopic, InProcessBus } from '../bus/index.js';
import { DenyEntryKind } from '../credentials/index.js';
import { openSecureChannel, SecureChannelListener, TrustPolicies } from '../channel/index.js';
import { localAddress, MemoryNetwork, MemoryTransport, Router } from '../routing/index.js';
import { channelWorld } from '../../test/helpers/channel-world.js';
import { codeOf } from '../../test/helpers/errors.js';
import { AuthorityBus } from './authority-bus.js';
import { BusService } from './bus-service.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const nowSeconds = (): number => Math.floor(Date.now() / 1000);
const until = async (check: () => boolean, timeoutMs = 8_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
};

describe('AuthorityBus', () => {
  it('does not start without the authority’s deny-set', async () => {
    const started = Date.now();
    const code = await AuthorityBus.start({
      router: new Router(),
      random: () => 0.5,
      maxStalenessSeconds: 10,
      authorities: () => Promise.resolve(new Map()),
      startTimeoutMs: 300,
      connect: () => Promise.reject(unavailable('ERR_TRANSPORT_UNREACHABLE', 'nobody there')),
    }).then(
      () => 'started',
      (error: unknown) => (error as { code?: string }).code,
    );
    expect(code).toBe('ERR_AUTHORITY_UNREACHABLE');
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('follows the authority, fails closed when it goes silent, and recovers when it is back', async () => {
    const parties = await channelWorld(nowSeconds());
    const authority = await parties.party('authority-node', null);
    const member = await parties.party('member', null);
    const network = new MemoryNetwork();
    const authorityRouter = new Router();
    new MemoryTransport(authorityRouter, network).listen('authority');
    const nodeRouter = new Router();
    const nodeTransport = new MemoryTransport(nodeRouter, network);
    const bus = new InProcessBus();
    bus.publishSnapshot(BusTopic.denySet, { sequence: 0, entries: [], issuedAt: nowSeconds() });
    bus.publishSnapshot(BusTopic.bundles, {
      sequence: 0,
      bundle: undefined,
      issuedAt: nowSeconds(),
    });
    const serve = () => {
      const listener = new SecureChannelListener(authorityRouter, {
        staticKey: authority.staticKey,
        identityPayload: authority.identityPayload,
        verify: { authorities: new Map(), trustPolicy: TrustPolicies.anyIdentity() },
        deliverTo: ['bus'],
      });
      // Flow control goes with the worker: a listener registered again is opened again.
      authorityRouter.allowFromAnyConnection('api');
      const service = new BusService(authorityRouter, { bus, authorize: () => Promise.resolve() });
      return async () => {
        service.close();
        await listener.close();
      };
    };
    let stopServing = serve();
    // The authority's feed: a heartbeat every 200 ms while `beating`.
    let beating = true;
    const beat = setInterval(() => {
      if (beating) {
        bus.heartbeat(BusTopic.denySet, nowSeconds());
        bus.heartbeat(BusTopic.bundles, nowSeconds());
      }
    }, 200);
    // What the node's enforcement point would log (RevocationRecorder): every applied entry.
    const applied: { id: string; sequence: number }[] = [];
    const follow = await AuthorityBus.start({
      router: nodeRouter,
      random: () => 0.5,
      maxStalenessSeconds: 1,
      onDenyEntries: (entries) => {
        for (const { entry, sequence } of entries) applied.push({ id: entry.id, sequence });
      },
      authorities: () => Promise.resolve(new Map()),
      silenceTimeoutMs: 500,
      retryInitialMs: 50,
      retryMaxMs: 200,
      connect: (onClosed) =>
        openSecureChannel(
          nodeRouter,
          [localAddress(nodeTransport.connect('authority')), localAddress('api')],
          {
            staticKey: member.staticKey,
            identityPayload: member.identityPayload,
            // A handshake sent while the authority is away is lost: give up on it soon.
            handshakeTimeoutMs: 500,
            verify: {
              authorities: new Map(),
              trustPolicy: TrustPolicies.identifier(authority.identity.identifier),
            },
            onEvent: (event) => {
              if (event.type === 'closed') onClosed();
            },
          },
        ),
    });
    cleanups.push(async () => {
      clearInterval(beat);
      await follow.stop();
      await stopServing();
      bus.close();
      await nodeRouter.close();
      await authorityRouter.close();
    });
    const revoked = 'ab'.repeat(16);
    bus.publish(BusTopic.denySet, {
      fromSequence: 0,
      toSequence: 1,
      entries: [
        {
          kind: DenyEntryKind.revocationId,
          id: revoked,
          expiresAt: nowSeconds() + 60,
          revokedAt: nowSeconds(),
        },
      ],
      issuedAt: nowSeconds(),
    });
    await until(() => follow.denySet.isRevoked(revoked));
    expect(applied).toEqual([{ id: revoked, sequence: 1 }]);
    await until(() => codeOf(() => follow.bundles.current()) === 'accepted');
    expect(
      codeOf(() => {
        follow.denySet.assertNoneRevoked([revoked], nowSeconds());
      }),
    ).toBe('ERR_REVOKED');

    // Silent: the service is gone and nothing beats. Past the bound, both fail closed.
    beating = false;
    await stopServing();
    await until(
      () =>
        codeOf(() => {
          follow.denySet.assertNoneRevoked([], nowSeconds());
        }) === 'ERR_DENY_SET_STALE',
    );
    expect(codeOf(() => follow.bundles.current())).toBe('ERR_BUNDLE_STALE');

    // Back: the node reconnects by itself and is fresh again, still holding the revocation.
    stopServing = serve();
    beating = true;
    await until(
      () =>
        codeOf(() => {
          follow.denySet.assertNoneRevoked([], nowSeconds());
        }) === 'accepted',
    );
    expect(follow.denySet.isRevoked(revoked)).toBe(true);
    expect(codeOf(() => follow.bundles.current())).toBe('accepted');
  });
});
