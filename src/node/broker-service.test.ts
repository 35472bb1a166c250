import { afterEach, describe, expect, it } from 'vitest';
import { encodeCbor, decodeCbor } from '../encoding/index.js';
import { decodeChain, DenyEntryKind, MemoryDenySetRepository } from '../credentials/index.js';
import {
  openSecureChannel,
  prepareChannelIdentity,
  SecureChannelListener,
  TrustPolicies,
} from '../channel/index.js';
import { localAddress, MemoryNetwork, MemoryTransport, Router } from '../routing/index.js';
import { Gate } from '../gates/index.js';
import { LeaseKind, LeaseState, type Broker } from '../broker/index.js';
import {
  BrokerService,
  renewLeaseOverChannel,
  requestLeaseOverChannel,
  revokeLeaseOverChannel,
  type BrokerServiceEvent,
} from './broker-service.js';
import { BrokerTimers } from './broker-timers.js';
import { DenySetWatcher } from './deny-set-watcher.js';
import { brokerWorld } from '../../test/helpers/broker-world.js';
import { GATE_NOW } from '../../test/helpers/gate-world.js';

// The broker service and its client over real secure channels on the memory transport: a broker
// node with a listener that admits credential holders, agents presenting their delegation chains.

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup() {
  const w = await brokerWorld();
  cleanups.push(w.cleanup);
  const network = new MemoryNetwork();
  const brokerRouter = new Router();
  const brokerTransport = new MemoryTransport(brokerRouter, network);
  brokerTransport.listen('broker-node');
  cleanups.push(() => brokerTransport.close());
  const brokerId = await w.identities.create({ name: 'broker' });
  const listener = new SecureChannelListener(brokerRouter, {
    ...(await prepareChannelIdentity(w.vault, {
      identity: brokerId.identity,
      primaryKeyId: brokerId.primaryKeyId,
      nowSeconds: w.clock.nowSeconds(),
    })),
    verify: {
      authorities: w.authorities,
      trustPolicy: TrustPolicies.credentialHolder(),
      denySet: w.denySet,
    },
    deliverTo: ['broker'],
    clock: w.clock,
  });
  brokerRouter.allowFromAnyConnection('api');
  cleanups.push(() => listener.close());
  const events: BrokerServiceEvent[] = [];
  const start = (broker: Broker) => {
    const service = new BrokerService(brokerRouter, { broker, onEvent: (e) => events.push(e) });
    cleanups.push(() => service.close());
    return service;
  };
  let agents = 0;
  /** An agent node presenting `chainBytes` (none: no chain) as `who`. */
  const agent = async (
    who: { identity: typeof brokerId.identity; primaryKeyId: string },
    chainBytes: readonly Uint8Array[],
    credentials: readonly Uint8Array[] = [],
  ) => {
    const router = new Router();
    const transport = new MemoryTransport(router, network);
    cleanups.push(() => transport.close());
    const connection = transport.connect('broker-node');
    const channel = await openSecureChannel(
      router,
      [localAddress(connection), localAddress('api')],
      {
        ...(await prepareChannelIdentity(w.vault, {
          identity: who.identity,
          primaryKeyId: who.primaryKeyId,
          chains: chainBytes,
          credentials,
          nowSeconds: w.clock.nowSeconds(),
        })),
        verify: {
          authorities: w.authorities,
          knownIdentities: new Map([[brokerId.identity.identifier, brokerId.identity]]),
          trustPolicy: TrustPolicies.identifier(brokerId.identity.identifier),
        },
        clock: w.clock,
        handshakeTimeoutMs: 2_000,
      },
    );
    cleanups.push(() => channel.close());
    agents++;
    return { router, channel, n: agents };
  };
  return { ...w, brokerId, brokerRouter, start, agent, events };
}

async function until(condition: () => boolean | Promise<boolean>, turns = 500): Promise<void> {
  for (let i = 0; i < turns; i++) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error('condition not reached');
}

const payments = { kind: LeaseKind.jwt, resource: 'payments-api' } as const;

describe('BrokerService', () => {
  it('leases to the channel peer under its presented chain; renews and revokes its own lease', async () => {
    const s = await setup();
    const { broker } = s.open();
    s.start(broker);
    const support = await s.agent(s.support, [s.supportChainBytes]);
    const answer = await requestLeaseOverChannel(
      support.router,
      support.channel,
      { ...payments, scope: ['refunds'], ttlSeconds: 120 },
      { broker: s.brokerId.identity.identifier },
    );
    expect(answer.lease.expiresAt).toBe(GATE_NOW + 10 + 120);
    expect(answer.lease.scope).toEqual(['refunds']);
    expect(answer.value?.['token']).toMatch(/^tok-/);
    const stored = await broker.get(answer.lease.id);
    expect(stored.holder).toBe(s.support.identity.identifier);
    s.clock.advance(60);
    const renewed = await renewLeaseOverChannel(support.router, support.channel, answer.lease.id);
    expect(renewed.lease.renewals).toBe(1);
    expect(renewed.value?.['token']).toMatch(/^tok-/);
    // Another agent cannot renew or revoke it.
    const sub = await s.agent(s.subAgents[0]!, [s.subAgents[0]!.bytes]);
    await expect(
      revokeLeaseOverChannel(sub.router, sub.channel, answer.lease.id),
    ).rejects.toMatchObject({ code: 'ERR_LEASE_NOT_HOLDER' });
    await expect(
      renewLeaseOverChannel(sub.router, sub.channel, answer.lease.id),
    ).rejects.toMatchObject({ code: 'ERR_LEASE_NOT_HOLDER' });
    const revoked = await revokeLeaseOverChannel(support.router, support.channel, answer.lease.id);
    expect(revoked.state).toBe(LeaseState.revoked);
    expect((await broker.get(answer.lease.id)).endReason).toBe('released-by-holder');
    expect(s.events.map((e) => e.type)).toEqual([
      'granted',
      'renewed',
      'refused',
      'refused',
      'revoked',
    ]);
  });

  it('answers the broker decision as a typed refusal, and refuses a peer without a chain', async () => {
    const s = await setup();
    const { broker } = s.open();
    s.start(broker);
    const sub = await s.agent(s.subAgents[0]!, [s.subAgents[0]!.bytes]);
    await expect(
      requestLeaseOverChannel(sub.router, sub.channel, {
        kind: LeaseKind.proxy,
        resource: 'stripe',
      }),
    ).rejects.toMatchObject({
      code: 'ERR_LEASE_DENIED',
      message: expect.stringContaining('no-deep-stripe') as unknown,
    });
    await expect(
      requestLeaseOverChannel(sub.router, sub.channel, {
        kind: LeaseKind.postgres,
        resource: 'readonly',
      }),
    ).rejects.toMatchObject({ code: 'ERR_LEASE_KIND_UNAVAILABLE' });
    await expect(
      requestLeaseOverChannel(sub.router, sub.channel, { ...payments, ttlSeconds: 4_000 }),
    ).rejects.toMatchObject({ code: 'ERR_LEASE_TTL_TOO_LONG' });
    // dana presents her credential (a chain of no links) as a chain: she may lease.
    const dana = await s.agent(s.dana, [s.danaChain.bytes]);
    await requestLeaseOverChannel(dana.router, dana.channel, payments);
    // A credential holder that presents its credential but no chain gets nothing.
    const bare = await s.agent(s.dana, [], [decodeChain(s.danaChain.bytes).root]);
    await expect(
      requestLeaseOverChannel(bare.router, bare.channel, payments),
    ).rejects.toMatchObject({ code: 'ERR_BROKER_NO_CHAIN' });
    // Nothing is sent to a peer that is not the broker expected.
    await expect(
      requestLeaseOverChannel(sub.router, sub.channel, payments, {
        broker: s.dana.identity.identifier,
      }),
    ).rejects.toMatchObject({ code: 'ERR_BROKER_PEER_MISMATCH' });
  });

  it('a lease whose answer cannot be delivered is revoked at once and audited as revoked', async () => {
    const s = await setup();
    const { broker } = s.open();
    s.start(broker);
    const support = await s.agent(s.support, [s.supportChainBytes]);
    let release!: () => void;
    s.provider.issueGate = new Promise((resolve) => (release = resolve));
    // The requester gives up (its provider call is stuck) and goes away; the grant comes later.
    await expect(
      requestLeaseOverChannel(support.router, support.channel, payments, {
        broker: s.brokerId.identity.identifier,
        timeoutMs: 50,
      }),
    ).rejects.toMatchObject({ code: 'ERR_BROKER_TIMEOUT' });
    await support.channel.close();
    release();
    await until(async () => (await broker.list()).some((l) => l.state === LeaseState.revoked));
    const [lease] = await broker.list();
    expect(lease).toMatchObject({ state: LeaseState.revoked, endReason: 'answer-lost' });
    expect(s.provider.live.has(lease!.handle)).toBe(false);
    expect(s.sink.events.map((e) => [e.event, e.lease.id])).toEqual([
      ['granted', lease!.id],
      ['revoked', lease!.id],
    ]);
  });

  it('refuses malformed requests and messages outside a channel', async () => {
    const s = await setup();
    const { broker } = s.open();
    s.start(broker);
    const sub = await s.agent(s.subAgents[0]!, [s.subAgents[0]!.bytes]);
    const raw = async (payload: Uint8Array) => {
      let answer: Uint8Array | undefined;
      sub.router.registerWorker('raw', {
        handleMessage: (_ctx, envelope) => {
          answer = envelope.payload;
        },
      });
      sub.channel.allow('raw');
      await sub.router.send({
        onwardRoute: [localAddress(sub.channel.address), localAddress('broker')],
        returnRoute: [localAddress('raw')],
        payload,
      });
      await until(() => answer !== undefined);
      sub.router.unregisterWorker('raw');
      return decodeCbor(answer!);
    };
    expect(await raw(encodeCbor([1, 9]))).toEqual([
      1,
      4,
      'ERR_BROKER_MALFORMED',
      expect.any(String),
    ]);
    expect(await raw(encodeCbor([2, 0, 'jwt', 'x', [], null]))).toEqual([
      1,
      4,
      'ERR_BROKER_MALFORMED',
      expect.any(String),
    ]);
    expect(await raw(new Uint8Array([0xff]))).toEqual([
      1,
      4,
      'ERR_BROKER_MALFORMED',
      expect.any(String),
    ]);
    // A local sender (no channel peer) is refused.
    let local: Uint8Array | undefined;
    s.brokerRouter.registerWorker('local', {
      handleMessage: (_ctx, envelope) => {
        local = envelope.payload;
      },
    });
    await s.brokerRouter.send({
      onwardRoute: [localAddress('broker')],
      returnRoute: [localAddress('local')],
      payload: encodeCbor([1, 0, 'jwt', 'payments-api', [], null]),
    });
    await until(() => local !== undefined);
    expect(decodeCbor(local!)).toEqual([1, 4, 'ERR_BROKER_NO_CHAIN', expect.any(String)]);
    expect(await broker.list()).toEqual([]);
  });

  it('a revocation on the deny-set kills the live leases within the watcher poll', async () => {
    const s = await setup();
    const repository = new MemoryDenySetRepository();
    const watcher = await DenySetWatcher.start({
      repository,
      maxStalenessSeconds: 3600,
      pollIntervalMs: 50,
      clock: s.clock,
    });
    cleanups.push(() => watcher.stop());
    const gate = new Gate({ bundles: s.bundles, denySet: watcher.denySet });
    const { broker } = s.open({ decide: (chain, ask, o) => gate.decideLease(chain, ask, o) });
    s.start(broker);
    const timers = await BrokerTimers.start({ broker, denySet: watcher.denySet, tickMs: 20 });
    cleanups.push(() => timers.stop());
    const sub = await s.agent(s.subAgents[0]!, [s.subAgents[0]!.bytes]);
    const other = await s.agent(s.subAgents[1]!, [s.subAgents[1]!.bytes]);
    const mine = await requestLeaseOverChannel(sub.router, sub.channel, payments);
    const theirs = await requestLeaseOverChannel(other.router, other.channel, payments);
    await repository.append(
      [
        {
          kind: DenyEntryKind.identity,
          id: s.subAgents[0]!.identity.identifier,
          revokedAt: s.clock.nowSeconds(),
          expiresAt: s.clock.nowSeconds() + 3600,
        },
      ],
      s.clock.nowSeconds(),
    );
    await until(async () => (await broker.get(mine.lease.id)).state === LeaseState.revoked);
    expect((await broker.get(mine.lease.id)).endReason).toBe('holder-revoked');
    expect(s.provider.revoked).toContain(mine.lease.id);
    expect((await broker.get(theirs.lease.id)).state).toBe(LeaseState.active);
  });

  it('expires leases on its timer', async () => {
    const s = await setup();
    const { broker } = s.open();
    const timers = await BrokerTimers.start({ broker, denySet: s.denySet, tickMs: 10 });
    cleanups.push(() => timers.stop());
    const { lease } = await broker.lease(s.supportChain, { ...payments, ttlSeconds: 30 });
    s.clock.advance(30);
    await until(async () => (await broker.get(lease.id)).state === LeaseState.expired);
    expect(s.provider.revoked).toEqual([lease.id]);
  });
});
