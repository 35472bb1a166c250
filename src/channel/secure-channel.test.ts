import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { channelWorld } from '../../test/helpers/channel-world.js';
import {
  localAddress,
  MemoryNetwork,
  MemoryTransport,
  Router,
  TransportType,
  type Envelope,
  type MessageContext,
  type Worker,
} from '../routing/index.js';
import { TrustPolicies, type TrustPolicy } from './identity-payload.js';
import {
  channelPeerOf,
  ChannelMessageType,
  openSecureChannel,
  SecureChannelListener,
  SecureChannelLocalInfo,
  type SecureChannelEvent,
  type SecureChannelOptions,
} from './secure-channel.js';

const NOW = 1_800_000_000;
const clock = { nowSeconds: () => NOW + 1 };
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (b: Uint8Array): string => new TextDecoder().decode(b);
const mem = (value: string) => ({ type: TransportType.memory, value });
const settle = async (turns = 10): Promise<void> => {
  for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve));
};

/** Parties as channel options, over the shared channel test world. */
async function world() {
  const w = await channelWorld(NOW);
  const party = async (name: string, credentialed: boolean) => {
    const p = await w.party(name, credentialed ? ['tools=read_orders'] : null);
    const options = (
      trustPolicy: TrustPolicy,
      extra: Partial<SecureChannelOptions> = {},
    ): SecureChannelOptions => ({
      staticKey: p.staticKey,
      identityPayload: p.identityPayload,
      verify: { authorities: w.authorities, trustPolicy },
      clock,
      ...extra,
    });
    return { identity: p.identity, options };
  };
  return { party };
}

interface Seen {
  readonly ctx: MessageContext;
  readonly envelope: Envelope;
}
function recorder(): Worker & { seen: Seen[] } {
  const seen: Seen[] = [];
  return {
    seen,
    handleMessage(ctx, envelope) {
      seen.push({ ctx, envelope });
    },
  };
}
function echo(): Worker & { seen: Seen[] } {
  const seen: Seen[] = [];
  return {
    seen,
    async handleMessage(ctx, envelope) {
      seen.push({ ctx, envelope });
      await ctx.reply(envelope.payload);
    },
  };
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function node(network: MemoryNetwork, name: string) {
  const router = new Router();
  const transport = new MemoryTransport(router, network);
  transport.listen(name);
  cleanups.push(() => transport.close());
  return { router, transport };
}

/** A forwarding worker that records every payload it passes on and may alter or repeat them. */
function relay(
  tamper: (payload: Uint8Array) => Uint8Array[] = (p) => [p],
): Worker & { payloads: Uint8Array[] } {
  const payloads: Uint8Array[] = [];
  return {
    payloads,
    async handleMessage(ctx, envelope) {
      payloads.push(envelope.payload.slice());
      for (const payload of tamper(envelope.payload)) await ctx.forward({ ...envelope, payload });
    },
  };
}

const contains = (haystack: Uint8Array, needle: Uint8Array): boolean =>
  Buffer.from(haystack).includes(Buffer.from(needle));

describe('secure channel over memory routing', () => {
  it('admit: a listener open to any identity delivers to a restricted worker only from peers its policy admits', async () => {
    const w = await world();
    const bob = await w.party('bob', true);
    const member = await w.party('member', true);
    const stranger = await w.party('stranger', false);
    const network = new MemoryNetwork();
    const b = node(network, 'bob');
    const events: SecureChannelEvent[] = [];
    const listener = new SecureChannelListener(
      b.router,
      bob.options(TrustPolicies.anyIdentity(), {
        deliverTo: ['enroll', 'members'],
        admit: new Map([['members', TrustPolicies.credentialHolder()]]),
        onEvent: (e) => events.push(e),
      }),
    );
    cleanups.push(() => listener.close());
    b.router.allowFromAnyConnection('api');
    const enroll = recorder();
    const members = recorder();
    b.router.registerWorker('enroll', enroll);
    b.router.registerWorker('members', members);
    const sendAs = async (party: typeof member, name: string) => {
      const a = node(network, name);
      const channel = await openSecureChannel(
        a.router,
        [localAddress(a.transport.connect('bob')), localAddress('api')],
        party.options(TrustPolicies.identifier(bob.identity.identifier)),
      );
      cleanups.push(() => channel.close());
      for (const to of ['enroll', 'members'])
        await a.router.send({
          onwardRoute: [localAddress(channel.address), localAddress(to)],
          returnRoute: [],
          payload: bytes(`${name} to ${to}`),
        });
      await settle();
    };
    await sendAs(stranger, 'stranger');
    // The stranger (no credential) reaches the open worker, not the restricted one.
    expect(enroll.seen.map((x) => str(x.envelope.payload))).toEqual(['stranger to enroll']);
    expect(members.seen).toEqual([]);
    expect(events.at(-1)).toMatchObject({ type: 'dropped', reason: 'not_admitted' });
    await sendAs(member, 'member');
    expect(members.seen.map((x) => str(x.envelope.payload))).toEqual(['member to members']);
    expect(enroll.seen).toHaveLength(2);
  });

  it('echoes through the channel; the worker sees the verified peer; closed workers get nothing', async () => {
    const w = await world();
    const alice = await w.party('alice', true);
    const bob = await w.party('bob', true);
    const network = new MemoryNetwork();
    const a = node(network, 'alice');
    const b = node(network, 'bob');
    const events: SecureChannelEvent[] = [];
    const listener = new SecureChannelListener(
      b.router,
      bob.options(TrustPolicies.credentialHolder(), {
        deliverTo: ['echo'],
        onEvent: (e) => events.push(e),
      }),
    );
    cleanups.push(() => listener.close());
    b.router.allowFromAnyConnection('api');
    const bobEcho = echo();
    const secret = recorder();
    b.router.registerWorker('echo', bobEcho);
    b.router.registerWorker('secret', secret);
    const app = recorder();
    a.router.registerWorker('app', app);

    const channel = await openSecureChannel(
      a.router,
      [localAddress(a.transport.connect('bob')), localAddress('api')],
      alice.options(TrustPolicies.identifier(bob.identity.identifier), { deliverTo: ['app'] }),
    );
    cleanups.push(() => channel.close());
    expect(channel.peer.identifier).toBe(bob.identity.identifier);
    expect(events.map((e) => e.type)).toEqual(['established']);

    for (const text of ['ping', 'pong', 'again']) {
      await a.router.send({
        onwardRoute: [localAddress(channel.address), localAddress('echo')],
        returnRoute: [localAddress('app')],
        payload: bytes(text),
      });
    }
    await a.router.send({
      onwardRoute: [localAddress(channel.address), localAddress('secret')],
      returnRoute: [localAddress('app')],
      payload: bytes('for secret'),
    });
    await settle();
    expect(app.seen.map((s) => str(s.envelope.payload))).toEqual(['ping', 'pong', 'again']);
    // Alice's app sees Bob as the peer, and its return route goes back through the channel.
    expect(channelPeerOf(app.seen[0]!.ctx)?.identifier).toBe(bob.identity.identifier);
    expect(app.seen[0]!.envelope.returnRoute[0]).toEqual(localAddress(channel.address));
    const info = bobEcho.seen[0]!.ctx.localInfo;
    expect(info).toBeInstanceOf(SecureChannelLocalInfo);
    expect((info as SecureChannelLocalInfo).peer.identifier).toBe(alice.identity.identifier);
    expect(channelPeerOf(bobEcho.seen[0]!.ctx)?.credentials).toHaveLength(1);
    expect(secret.seen).toEqual([]);
    expect(listener.droppedCount).toBe(1);
    expect(events.at(-1)).toMatchObject({ type: 'dropped', reason: 'not_allowed' });

    // Opened later: now it receives.
    listener.allow('secret');
    await a.router.send({
      onwardRoute: [localAddress(channel.address), localAddress('secret')],
      returnRoute: [],
      payload: bytes('now'),
    });
    await settle();
    expect(secret.seen.map((s) => str(s.envelope.payload))).toEqual(['now']);

    // A network message straight to the responder's workers is refused by flow control.
    const droppedBefore = b.router.droppedCount;
    await a.router.send({
      onwardRoute: [mem('bob'), localAddress('secret')],
      returnRoute: [],
      payload: bytes('x'),
    });
    await settle();
    expect(b.router.droppedCount).toBe(droppedBefore + 1);
    expect(secret.seen).toHaveLength(1);

    // Close: both ends drop their workers.
    expect(listener.channelCount).toBe(1);
    await channel.close();
    await settle();
    expect(listener.channelCount).toBe(0);
    expect(events.at(-1)).toMatchObject({ type: 'closed', byPeer: true });
    await expect(
      a.router.send({
        onwardRoute: [localAddress(channel.address), localAddress('echo')],
        returnRoute: [],
        payload: bytes('late'),
      }),
    ).rejects.toMatchObject({ code: 'ERR_WORKER_NOT_FOUND' });
  });

  it('runs A ↔ C through a forwarding B that never sees the plaintext', async () => {
    const w = await world();
    const alice = await w.party('alice', true);
    const carol = await w.party('carol', true);
    const network = new MemoryNetwork();
    const a = node(network, 'a');
    const b = node(network, 'b');
    const c = node(network, 'c');
    const hop = relay();
    b.router.registerWorker('fwd', hop);
    b.router.allowFromAnyConnection('fwd');
    const listener = new SecureChannelListener(
      c.router,
      carol.options(TrustPolicies.credentialHolder(), { deliverTo: ['echo'] }),
    );
    cleanups.push(() => listener.close());
    c.router.allowFromAnyConnection('api');
    c.router.registerWorker('echo', echo());
    const app = recorder();
    a.router.registerWorker('app', app);
    const channel = await openSecureChannel(
      a.router,
      [localAddress(a.transport.connect('b')), localAddress('fwd'), mem('c'), localAddress('api')],
      alice.options(TrustPolicies.credentialHolder(), { deliverTo: ['app'] }),
    );
    cleanups.push(() => channel.close());
    expect(channel.peer.identifier).toBe(carol.identity.identifier);
    const secret = bytes('the launch code is 0000');
    await a.router.send({
      onwardRoute: [localAddress(channel.address), localAddress('echo')],
      returnRoute: [localAddress('app')],
      payload: secret,
    });
    await settle(20);
    expect(app.seen.map((s) => s.envelope.payload)).toEqual([secret]);
    // Handshake (3 + confirmation) and two frames went through B, none in the clear.
    expect(hop.payloads.length).toBeGreaterThanOrEqual(6);
    expect(hop.payloads.some((p) => contains(p, secret))).toBe(false);
    expect(hop.payloads.some((p) => contains(p, bytes('echo')))).toBe(false);
  });

  it('drops a tampered frame and delivers the next honest one; a replay is delivered once', async () => {
    const w = await world();
    const alice = await w.party('alice', true);
    const carol = await w.party('carol', true);
    const network = new MemoryNetwork();
    const a = node(network, 'a');
    const b = node(network, 'b');
    const c = node(network, 'c');
    let mode: 'honest' | 'flip' | 'replay' = 'honest';
    const hop = relay((payload) => {
      if (payload[0] !== ChannelMessageType.transport || mode === 'honest') return [payload];
      if (mode === 'replay') return [payload, payload];
      const flipped = payload.slice();
      flipped[flipped.length - 1]! ^= 1;
      return [flipped];
    });
    b.router.registerWorker('fwd', hop);
    b.router.allowFromAnyConnection('fwd');
    const events: SecureChannelEvent[] = [];
    const listener = new SecureChannelListener(
      c.router,
      carol.options(TrustPolicies.credentialHolder(), {
        deliverTo: ['sink'],
        onEvent: (e) => events.push(e),
      }),
    );
    cleanups.push(() => listener.close());
    c.router.allowFromAnyConnection('api');
    const sink = recorder();
    c.router.registerWorker('sink', sink);
    const channel = await openSecureChannel(
      a.router,
      [localAddress(a.transport.connect('b')), localAddress('fwd'), mem('c'), localAddress('api')],
      alice.options(TrustPolicies.credentialHolder()),
    );
    cleanups.push(() => channel.close());
    const send = async (text: string): Promise<void> => {
      await a.router.send({
        onwardRoute: [localAddress(channel.address), localAddress('sink')],
        returnRoute: [],
        payload: bytes(text),
      });
      await settle(20);
    };
    mode = 'flip';
    await send('tampered');
    mode = 'honest';
    await send('honest');
    mode = 'replay';
    await send('replayed');
    mode = 'honest';
    await send('after');
    expect(sink.seen.map((s) => str(s.envelope.payload))).toEqual(['honest', 'replayed', 'after']);
    expect(listener.droppedCount).toBe(2);
    expect(events.filter((e) => e.type === 'dropped').map((e) => e.reason)).toEqual([
      'ERR_NOISE_DECRYPT_FAILED',
      'ERR_CHANNEL_REPLAY',
    ]);
  });

  it('through a hop that drops, duplicates and reorders frames, delivers each at most once and intact (property)', async () => {
    const w = await world();
    const alice = await w.party('alice', true);
    const carol = await w.party('carol', true);
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom('pass', 'drop', 'duplicate', 'hold', 'flip'), {
          minLength: 40,
          maxLength: 80,
        }),
        async (faults) => {
          const network = new MemoryNetwork();
          const a = node(network, 'a');
          const b = node(network, 'b');
          const c = node(network, 'c');
          // Faults apply to transport frames only, once the channel is up: the handshake has
          // no retransmission (Ockam's has none either; TCP is reliable).
          let next = 0;
          let held: Uint8Array | undefined;
          const hop = relay((payload) => {
            if (payload[0] !== ChannelMessageType.transport) return [payload];
            const fault = faults[next++ % faults.length];
            const release = held === undefined ? [] : [held];
            held = undefined;
            switch (fault) {
              case 'drop':
                return release;
              case 'duplicate':
                return [payload, payload, ...release];
              case 'hold':
                held = payload;
                return release;
              case 'flip': {
                const flipped = payload.slice();
                flipped[1 + (next % (flipped.length - 1))]! ^= 0x40;
                return [flipped, ...release];
              }
              default:
                return [payload, ...release];
            }
          });
          b.router.registerWorker('fwd', hop);
          b.router.allowFromAnyConnection('fwd');
          const listener = new SecureChannelListener(
            c.router,
            carol.options(TrustPolicies.credentialHolder(), { deliverTo: ['sink'] }),
          );
          c.router.allowFromAnyConnection('api');
          const sink = recorder();
          c.router.registerWorker('sink', sink);
          const channel = await openSecureChannel(
            a.router,
            [
              localAddress(a.transport.connect('b')),
              localAddress('fwd'),
              mem('c'),
              localAddress('api'),
            ],
            alice.options(TrustPolicies.credentialHolder()),
          );
          const sent = Array.from({ length: faults.length }, (_, i) => `message ${i}`);
          for (const text of sent) {
            await a.router.send({
              onwardRoute: [localAddress(channel.address), localAddress('sink')],
              returnRoute: [],
              payload: bytes(text),
            });
          }
          await settle(40);
          const received = sink.seen.map((s) => str(s.envelope.payload));
          // Only what was sent, intact, each at most once; passed frames always arrive.
          expect(received.every((text) => sent.includes(text))).toBe(true);
          expect(new Set(received).size).toBe(received.length);
          faults.forEach((fault, i) => {
            if (fault === 'pass' || fault === 'duplicate')
              expect(received).toContain(`message ${i}`);
            if (fault === 'drop' || fault === 'flip')
              expect(received).not.toContain(`message ${i}`);
          });
          // Every worker message came through the channel, from Alice.
          for (const seen of sink.seen) {
            expect(channelPeerOf(seen.ctx)?.identifier).toBe(alice.identity.identifier);
          }
          await channel.close();
          await listener.close();
          await a.transport.close();
          await b.transport.close();
          await c.transport.close();
        },
      ),
      { numRuns: 15 },
    );
  });

  it('never gives an untrusted initiator a channel, and tells it at once', async () => {
    const w = await world();
    const mallory = await w.party('mallory', false);
    const bob = await w.party('bob', true);
    const network = new MemoryNetwork();
    const a = node(network, 'mallory');
    const b = node(network, 'bob');
    const events: SecureChannelEvent[] = [];
    const malloryEvents: SecureChannelEvent[] = [];
    const listener = new SecureChannelListener(
      b.router,
      bob.options(TrustPolicies.credentialHolder(), {
        deliverTo: ['echo'],
        onEvent: (e) => events.push(e),
      }),
    );
    cleanups.push(() => listener.close());
    b.router.allowFromAnyConnection('api');
    const bobEcho = echo();
    b.router.registerWorker('echo', bobEcho);
    // The rejection beats a timeout far longer than a memory round trip: not a timeout in disguise.
    await expect(
      openSecureChannel(
        a.router,
        [localAddress(a.transport.connect('bob')), localAddress('api')],
        mallory.options(TrustPolicies.credentialHolder(), {
          handshakeTimeoutMs: 5_000,
          onEvent: (e) => malloryEvents.push(e),
        }),
      ),
    ).rejects.toMatchObject({ code: 'ERR_CHANNEL_PEER_REJECTED', kind: 'unauthorized' });
    // The reason stays with the responder; the initiator learns only that it was refused.
    expect(events).toEqual([
      expect.objectContaining({ type: 'rejected', reason: 'ERR_CHANNEL_UNTRUSTED' }),
    ]);
    expect(malloryEvents).toEqual([
      expect.objectContaining({ type: 'rejected', reason: 'ERR_CHANNEL_PEER_REJECTED' }),
    ]);
    expect(listener.channelCount).toBe(0);
    expect(bobEcho.seen).toEqual([]);
  });

  it('ignores a rejection it cannot authenticate', async () => {
    const w = await world();
    const alice = await w.party('alice', true);
    const mallory = await w.party('mallory', false);
    const bob = await w.party('bob', true);
    const network = new MemoryNetwork();
    const a = node(network, 'a');
    const b = node(network, 'b');
    const c = node(network, 'c');
    const listener = new SecureChannelListener(
      c.router,
      bob.options(TrustPolicies.credentialHolder(), { deliverTo: ['echo'] }),
    );
    cleanups.push(() => listener.close());
    c.router.allowFromAnyConnection('api');
    c.router.registerWorker('echo', echo());
    const forged = (): Uint8Array => {
      const bytes = new Uint8Array(25);
      bytes[0] = ChannelMessageType.rejection;
      return bytes;
    };
    // A hop that puts a forged rejection before every handshake message it passes on.
    const forging = relay((p) => (p[0] === ChannelMessageType.handshake ? [forged(), p] : [p]));
    b.router.registerWorker('forge', forging);
    b.router.allowFromAnyConnection('forge');
    const viaForger = (party: typeof alice, timeoutMs: number) =>
      openSecureChannel(
        a.router,
        [
          localAddress(a.transport.connect('b')),
          localAddress('forge'),
          mem('c'),
          localAddress('api'),
        ],
        party.options(TrustPolicies.credentialHolder(), { handshakeTimeoutMs: timeoutMs }),
      );
    const channel = await viaForger(alice, 5_000);
    cleanups.push(() => channel.close());
    expect(channel.peer.identifier).toBe(bob.identity.identifier);
    expect(channel.droppedCount).toBeGreaterThan(0);

    // A hop that swaps the responder's real rejection for a forged one: the initiator waits.
    const real: Uint8Array[] = [];
    const swapping = relay((p) => {
      if (p[0] !== ChannelMessageType.rejection) return [p];
      real.push(p);
      return [forged()];
    });
    b.router.registerWorker('swap', swapping);
    b.router.allowFromAnyConnection('swap');
    await expect(
      openSecureChannel(
        a.router,
        [
          localAddress(a.transport.connect('b')),
          localAddress('swap'),
          mem('c'),
          localAddress('api'),
        ],
        mallory.options(TrustPolicies.credentialHolder(), { handshakeTimeoutMs: 200 }),
      ),
    ).rejects.toMatchObject({ code: 'ERR_CHANNEL_HANDSHAKE_TIMEOUT' });
    // The real one was uniform: a type byte, a nonce and a tag, no reason.
    expect(real.map((p) => p.byteLength)).toEqual([1 + 8 + 16]);
  });

  it('times out against silence and cleans up, and refuses a route not starting locally', async () => {
    const w = await world();
    const alice = await w.party('alice', true);
    const network = new MemoryNetwork();
    const a = node(network, 'a');
    node(network, 'b'); // no listener there: message 1 is dropped
    const events: SecureChannelEvent[] = [];
    await expect(
      openSecureChannel(
        a.router,
        [localAddress(a.transport.connect('b')), localAddress('api')],
        alice.options(TrustPolicies.credentialHolder(), {
          handshakeTimeoutMs: 50,
          onEvent: (e) => events.push(e),
        }),
      ),
    ).rejects.toMatchObject({ code: 'ERR_CHANNEL_HANDSHAKE_TIMEOUT' });
    const decryptor = events[0]?.address ?? 'missing';
    expect(decryptor).toMatch(/^sc-\d+-dec$/);
    for (const address of [decryptor, decryptor.replace(/dec$/, 'enc')]) {
      await expect(
        a.router.send({
          onwardRoute: [localAddress(address)],
          returnRoute: [],
          payload: bytes(''),
        }),
      ).rejects.toMatchObject({ code: 'ERR_WORKER_NOT_FOUND' });
    }
    await expect(
      openSecureChannel(
        a.router,
        [mem('b'), localAddress('api')],
        alice.options(TrustPolicies.credentialHolder()),
      ),
    ).rejects.toMatchObject({ code: 'ERR_CHANNEL_ROUTE_INVALID' });
  });

  it('drops message 1 while the listener has its fill of handshakes', async () => {
    const w = await world();
    const alice = await w.party('alice', true);
    const bob = await w.party('bob', true);
    const network = new MemoryNetwork();
    const a = node(network, 'a');
    const b = node(network, 'b');
    const events: SecureChannelEvent[] = [];
    const listener = new SecureChannelListener(b.router, {
      ...bob.options(TrustPolicies.credentialHolder(), { onEvent: (e) => events.push(e) }),
      maxHandshakes: 0,
    });
    cleanups.push(() => listener.close());
    b.router.allowFromAnyConnection('api');
    await expect(
      openSecureChannel(
        a.router,
        [localAddress(a.transport.connect('b')), localAddress('api')],
        alice.options(TrustPolicies.credentialHolder(), { handshakeTimeoutMs: 50 }),
      ),
    ).rejects.toMatchObject({ code: 'ERR_CHANNEL_HANDSHAKE_TIMEOUT' });
    expect(events).toEqual([{ type: 'dropped', address: 'api', reason: 'busy' }]);
    expect(listener.droppedCount).toBe(1);
  });

  it('lets the initiator refuse a responder it does not trust', async () => {
    const w = await world();
    const alice = await w.party('alice', true);
    const bob = await w.party('bob', true);
    const network = new MemoryNetwork();
    const a = node(network, 'a');
    const b = node(network, 'b');
    const listener = new SecureChannelListener(
      b.router,
      bob.options(TrustPolicies.credentialHolder()),
    );
    cleanups.push(() => listener.close());
    b.router.allowFromAnyConnection('api');
    await expect(
      openSecureChannel(
        a.router,
        [localAddress(a.transport.connect('b')), localAddress('api')],
        alice.options(TrustPolicies.identifier(alice.identity.identifier), {
          handshakeTimeoutMs: 200,
        }),
      ),
    ).rejects.toMatchObject({ code: 'ERR_CHANNEL_PEER_REJECTED' });
  });
});
