import { afterEach, describe, expect, it } from 'vitest';
import { notFound } from '../core/internal.js';
import { encodeCbor } from '../encoding/index.js';
import { BusTopic, DenySetFollower, InProcessBus, type BusMessage } from '../bus/index.js';
import { DenyEntryKind, DenySet } from '../credentials/index.js';
import { openSecureChannel, SecureChannelListener, TrustPolicies } from '../channel/index.js';
import {
  localAddress,
  MemoryNetwork,
  MemoryTransport,
  Router,
  type Worker,
} from '../routing/index.js';
import { channelWorld } from '../../test/helpers/channel-world.js';
import { BusService } from './bus-service.js';
import { ChannelBusSubscriber, type ChannelBusEvent } from './channel-bus-subscriber.js';
import { decodeBusAnswer, encodeBusRequest } from './bus-protocol.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const nowSeconds = (): number => Math.floor(Date.now() / 1000);
const until = async (check: () => boolean, timeoutMs = 5_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
};

let networks = 0;

/**
 * An authority node (its bus, a listener whose deny-set follows that bus, the bus service for
 * `members`) and a member node's subscriber, over a memory transport. `service: false` leaves
 * the `bus` address to the test.
 */
async function world(options: { members?: 'member' | 'nobody'; service?: boolean } = {}) {
  const parties = await channelWorld(nowSeconds());
  const authority = await parties.party('authority-node', null);
  const member = await parties.party('member', null);
  const network = new MemoryNetwork();
  const name = `bus-authority-${networks++}`;
  const authorityRouter = new Router();
  const authorityTransport = new MemoryTransport(authorityRouter, network);
  authorityTransport.listen(name);
  const memberRouter = new Router();
  const memberTransport = new MemoryTransport(memberRouter, network);
  const bus = new InProcessBus();
  bus.publishSnapshot(BusTopic.denySet, { sequence: 0, entries: [], issuedAt: nowSeconds() });
  const authorityDenySet = new DenySet({ maxStalenessSeconds: 10 });
  const follower = new DenySetFollower(bus, authorityDenySet);
  follower.start();
  await follower.ready;
  const listener = new SecureChannelListener(authorityRouter, {
    staticKey: authority.staticKey,
    identityPayload: authority.identityPayload,
    verify: {
      authorities: new Map(),
      trustPolicy: TrustPolicies.anyIdentity(),
      denySet: authorityDenySet,
    },
    deliverTo: ['bus'],
  });
  authorityRouter.allowFromAnyConnection('api');
  const service =
    options.service === false
      ? undefined
      : new BusService(authorityRouter, {
          bus,
          authorize: (peer) =>
            options.members !== 'nobody' && peer.identifier === member.identity.identifier
              ? Promise.resolve()
              : Promise.reject(notFound('ERR_MEMBER_NOT_FOUND', 'not a member')),
        });
  const events: ChannelBusEvent[] = [];
  const channels: { close(): Promise<void> }[] = [];
  const subscriber = new ChannelBusSubscriber({
    router: memberRouter,
    random: () => 0,
    retryInitialMs: 20,
    retryMaxMs: 100,
    silenceTimeoutMs: 500,
    onEvent: (event) => events.push(event),
    connect: async (onClosed) => {
      const channel = await openSecureChannel(
        memberRouter,
        [localAddress(memberTransport.connect(name)), localAddress('api')],
        {
          staticKey: member.staticKey,
          identityPayload: member.identityPayload,
          verify: {
            authorities: new Map(),
            trustPolicy: TrustPolicies.identifier(authority.identity.identifier),
          },
          onEvent: (event) => {
            if (event.type === 'closed') onClosed();
          },
        },
      );
      channels.push(channel);
      return channel;
    },
  });
  cleanups.push(async () => {
    await subscriber.stop();
    service?.close();
    follower.stop();
    bus.close();
    await listener.close();
    await memberRouter.close();
    await authorityRouter.close();
  });
  const messages: BusMessage<'deny-set'>[] = [];
  const subscribe = () =>
    subscriber.subscribe(BusTopic.denySet, { onMessage: (m) => void messages.push(m) });
  let next = 1;
  /** Revokes one more id on the authority's bus; `id` overrides it. */
  const revoke = (id?: string) => {
    const sequence = bus.sequence(BusTopic.denySet);
    const entry = {
      kind: id === undefined ? DenyEntryKind.revocationId : DenyEntryKind.identity,
      id: id ?? (next++).toString(16).padStart(32, '0'),
      expiresAt: nowSeconds() + 3600,
      revokedAt: nowSeconds(),
    };
    bus.publish(BusTopic.denySet, {
      fromSequence: sequence,
      toSequence: sequence + 1,
      entries: [entry],
      issuedAt: nowSeconds(),
    });
  };
  return {
    bus,
    member,
    service,
    subscriber,
    events,
    messages,
    subscribe,
    revoke,
    authorityRouter,
    channels,
  };
}

describe('the bus over a secure channel', () => {
  it('refuses a subscriber that is not a member, and keeps trying with backoff', async () => {
    const w = await world({ members: 'nobody' });
    w.subscribe();
    await until(() => w.events.filter((e) => e.type === 'refused').length >= 2);
    expect(w.events.find((e) => e.type === 'refused')).toEqual({
      type: 'refused',
      topic: 'deny-set',
      code: 'ERR_MEMBER_NOT_FOUND',
    });
    expect(w.messages).toEqual([]);
    expect(w.service?.subscriptionCount).toBe(0);
  });

  it('ends a revoked member’s subscription within a heartbeat, and refuses its next channel', async () => {
    const w = await world();
    w.subscribe();
    await until(() => w.messages.length >= 1);
    expect(w.service?.subscriptionCount).toBe(1);
    w.revoke(w.member.identity.identifier);
    w.bus.heartbeat(BusTopic.denySet, nowSeconds() + 1);
    await until(() => w.service?.subscriptionCount === 0);
    await until(() =>
      w.events.some((e) => e.type === 'disconnected' && e.reason === 'ERR_CHANNEL_PEER_REJECTED'),
    );
    expect(w.subscriber.connected).toBe(false);
  });

  it('answers a request that did not come through a secure channel with ERR_BUS_FORBIDDEN', async () => {
    const w = await world();
    const answers: Uint8Array[] = [];
    w.authorityRouter.registerWorker('local', {
      handleMessage: (_ctx, envelope) => void answers.push(envelope.payload),
    });
    await w.authorityRouter.send({
      onwardRoute: [localAddress('bus')],
      returnRoute: [localAddress('local')],
      payload: encodeBusRequest({
        op: 'subscribe',
        id: 7,
        topic: BusTopic.denySet,
        fromSequence: undefined,
      }),
    });
    await until(() => answers.length === 1);
    expect(decodeBusAnswer(answers[0]!)).toEqual({ op: 'end', id: 7, code: 'ERR_BUS_FORBIDDEN' });
    expect(w.service?.subscriptionCount).toBe(0);
  });

  it('delivers nothing of a malformed answer and reconnects', async () => {
    const w = await world({ service: false });
    const garbage: Worker = {
      handleMessage: async (ctx) => {
        await ctx.reply(encodeCbor([1, 2, 1, new Uint8Array([0xff, 0x00])]));
        await ctx.reply(new Uint8Array([0x9f]));
      },
    };
    w.authorityRouter.registerWorker('bus', garbage);
    w.subscribe();
    await until(
      () =>
        w.events.filter((e) => e.type === 'disconnected' && e.reason === 'ERR_BUS_MESSAGE_INVALID')
          .length >= 2,
    );
    expect(w.messages).toEqual([]);
  });

  it('resumes after the connection drops: every update once, in order, without a snapshot', async () => {
    const w = await world();
    w.subscribe();
    await until(() => w.messages.length >= 1);
    w.revoke();
    w.revoke();
    await until(() => w.messages.some((m) => m.type === 'update' && m.update.toSequence === 2));
    // The channel goes (a dropped connection looks the same to the subscriber).
    await w.channels.at(-1)?.close();
    w.revoke();
    w.revoke();
    await until(() => w.messages.some((m) => m.type === 'update' && m.update.toSequence === 4));
    expect(w.events.filter((e) => e.type === 'connected')).toHaveLength(2);
    expect(w.messages.filter((m) => m.type === 'snapshot')).toHaveLength(1);
    let at = 0;
    for (const m of w.messages) {
      if (m.type === 'snapshot') at = m.snapshot.sequence;
      else if (m.type === 'update') {
        expect(m.update.fromSequence).toBe(at);
        at = m.update.toSequence;
      }
    }
    expect(at).toBe(4);
  });
});
