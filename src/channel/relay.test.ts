import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MandateError } from '../core/index.js';
import { channelWorld } from '../../test/helpers/channel-world.js';
import { encodeEnvelope } from '../routing/envelope.js';
import {
  localAddress,
  MemoryNetwork,
  MemoryTransport,
  parseRoute,
  Router,
  type Envelope,
  type MessageContext,
  type Worker,
} from '../routing/index.js';
import { TrustPolicies } from './identity-payload.js';
import {
  channelPeerOf,
  openSecureChannel,
  SecureChannelListener,
  type SecureChannelOptions,
} from './secure-channel.js';
import {
  checkRelayName,
  registerRelay,
  relayAddress,
  RelayRegistration,
  RelayService,
  type RelayEvent,
  type RelayRegistrationEvent,
} from './relay.js';

const NOW = 1_800_000_000;
let now = NOW + 1;
const clock = { nowSeconds: () => now };
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const settle = async (turns = 10): Promise<void> => {
  for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve));
};
const contains = (haystack: Uint8Array, needle: Uint8Array): boolean =>
  Buffer.from(haystack).includes(Buffer.from(needle));

/** Parties as channel options, over the shared channel test world. */
async function world() {
  const w = await channelWorld(NOW);
  /** A party holding one credential with the given constraints (`relay=bob`, `tools=x`). */
  const party = async (name: string, constraints: readonly string[]) => {
    const p = await w.party(name, constraints);
    const options = (extra: Partial<SecureChannelOptions> = {}): SecureChannelOptions => ({
      staticKey: p.staticKey,
      identityPayload: p.identityPayload,
      verify: { authorities: w.authorities, trustPolicy: TrustPolicies.credentialHolder() },
      clock,
      ...extra,
    });
    return { identity: p.identity, options };
  };
  return { party };
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  now = NOW + 1;
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function node(network: MemoryNetwork, name: string) {
  const router = new Router();
  const transport = new MemoryTransport(router, network);
  transport.listen(name);
  cleanups.push(() => transport.close());
  return { router, transport };
}

interface Seen {
  readonly ctx: MessageContext;
  readonly envelope: Envelope;
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
function recorder(): Worker & { seen: Seen[] } {
  const seen: Seen[] = [];
  return {
    seen,
    handleMessage(ctx, envelope) {
      seen.push({ ctx, envelope });
    },
  };
}

/** Relay node R with a channel listener and the relay service, recording every payload it forwards. */
async function setup() {
  const w = await world();
  const network = new MemoryNetwork();
  const relayParty = await w.party('relay-node', ['tools=relay']);
  const r = node(network, 'r');
  const listener = new SecureChannelListener(r.router, relayParty.options());
  cleanups.push(() => listener.close());
  r.router.allowFromAnyConnection('api');
  const events: RelayEvent[] = [];
  const service = new RelayService(r.router, { listener, onEvent: (e) => events.push(e) });
  cleanups.push(() => {
    service.close();
  });
  /** An agent node that opens a channel to R and registers `name`. */
  const agent = async (nodeName: string, constraints: readonly string[]) => {
    const party = await w.party(nodeName, constraints);
    const n = node(network, nodeName);
    const connection = n.transport.connect('r');
    const channel = await openSecureChannel(
      n.router,
      [localAddress(connection), localAddress('api')],
      party.options(),
    );
    cleanups.push(() => channel.close());
    return { ...n, party, connection, channel };
  };
  return { w, network, r, service, events, agent };
}

describe('relays', () => {
  it('A reaches B through R by /relay/bob; the channel is end to end and R sees only ciphertext', async () => {
    const s = await setup();
    const bob = await s.agent('bob', ['relay=bob']);
    const result = await registerRelay(bob.router, {
      channel: bob.channel,
      connection: bob.connection,
      name: 'bob',
    });
    expect(result).toEqual({ name: 'bob', address: 'forward_to_bob' });
    expect(s.service.relays.get('bob')).toBe(bob.party.identity.identifier);
    // Bob's service side: a listener and an echo, opened to channels.
    const bobListener = new SecureChannelListener(bob.router, bob.party.options());
    cleanups.push(() => bobListener.close());
    const bobEcho = echo();
    bob.router.registerWorker('echo', bobEcho);
    bobListener.allow('echo');

    // R records what passes through its relay worker by watching its connections' traffic.
    const wire: Uint8Array[] = [];
    const forwarder = s.r.router;
    const originalSend = forwarder.send.bind(forwarder);
    forwarder.send = (envelope, options) => {
      wire.push(envelope.payload.slice());
      return originalSend(envelope, options);
    };

    const alice = await s.w.party('alice', ['tools=read']);
    const a = node(s.network, 'alice');
    const route = [localAddress(a.transport.connect('r')), ...parseRoute('/relay/bob/service/api')];
    const channel = await openSecureChannel(a.router, route, alice.options());
    cleanups.push(() => channel.close());
    expect(channel.peer.identifier).toBe(bob.party.identity.identifier);
    const app = recorder();
    a.router.registerWorker('app', app);
    channel.allow('app');
    const secret = bytes('the launch code is 0000');
    for (let i = 0; i < 3; i++) {
      await a.router.send({
        onwardRoute: [localAddress(channel.address), localAddress('echo')],
        returnRoute: [localAddress('app')],
        payload: secret,
      });
    }
    await settle(30);
    expect(app.seen.map((x) => x.envelope.payload)).toEqual([secret, secret, secret]);
    const seenByBob = bobEcho.seen[0];
    expect(seenByBob === undefined ? undefined : channelPeerOf(seenByBob.ctx)?.identifier).toBe(
      alice.identity.identifier,
    );
    // Handshake (m1, m2, m3, confirmation) and 6 frames crossed R, never in the clear.
    expect(wire.length).toBeGreaterThanOrEqual(10);
    expect(wire.some((p) => contains(p, secret))).toBe(false);
    expect(wire.some((p) => contains(p, bytes('echo')))).toBe(false);
  });

  it('forwards only while the registration channel is open and its credential still grants the name', async () => {
    const s = await setup();
    const bob = await s.agent('bob', ['relay=bob']);
    await registerRelay(bob.router, {
      channel: bob.channel,
      connection: bob.connection,
      name: 'bob',
    });
    const bobListener = new SecureChannelListener(bob.router, bob.party.options());
    cleanups.push(() => bobListener.close());
    const alice = await s.w.party('alice', ['tools=read']);
    const a = node(s.network, 'alice');
    const open = () =>
      openSecureChannel(
        a.router,
        [localAddress(a.transport.connect('r')), ...parseRoute('/relay/bob/service/api')],
        alice.options({ handshakeTimeoutMs: 500 }),
      );
    const first = await open();
    cleanups.push(() => first.close());
    const notGranted = () =>
      s.events.filter((e) => e.type === 'dropped' && e.reason === 'not_granted').length;
    expect(notGranted()).toBe(0);
    // Bob's credential (an hour from NOW) expires: the relay's channel with Bob no longer holds
    // one granting `bob`, so the name stops forwarding.
    now = NOW + 3600;
    await expect(open()).rejects.toMatchObject({ code: 'ERR_CHANNEL_HANDSHAKE_TIMEOUT' });
    expect(notGranted()).toBeGreaterThan(0);
    // Back in time, the registration holds again; once Bob closes its registration channel, not.
    now = NOW + 1;
    const second = await open();
    cleanups.push(() => second.close());
    await bob.channel.close();
    await settle();
    const before = notGranted();
    await expect(open()).rejects.toMatchObject({ code: 'ERR_CHANNEL_HANDSHAKE_TIMEOUT' });
    expect(notGranted()).toBeGreaterThan(before);
  });

  it('refuses a registration without the relay attribute, or for another name', async () => {
    const s = await setup();
    const eve = await s.agent('eve', ['tools=read']);
    await expect(
      registerRelay(eve.router, { channel: eve.channel, connection: eve.connection, name: 'bob' }),
    ).rejects.toMatchObject({ code: 'ERR_RELAY_FORBIDDEN', kind: 'forbidden' });
    const carol = await s.agent('carol', ['relay=carol,dave']);
    await expect(
      registerRelay(carol.router, {
        channel: carol.channel,
        connection: carol.connection,
        name: 'bob',
      }),
    ).rejects.toMatchObject({ code: 'ERR_RELAY_FORBIDDEN' });
    await expect(
      registerRelay(carol.router, {
        channel: carol.channel,
        connection: carol.connection,
        name: 'dave',
      }),
    ).resolves.toEqual({ name: 'dave', address: 'forward_to_dave' });
    expect([...s.service.relays.keys()]).toEqual(['dave']);
    expect(s.events.filter((e) => e.type === 'refused').length).toBe(2);
  });

  it('another identity cannot take a name; the owner may re-register (reconnect)', async () => {
    const s = await setup();
    const bob = await s.agent('bob', ['relay=bob']);
    const mallory = await s.agent('mallory', ['relay=*']);
    await registerRelay(bob.router, {
      channel: bob.channel,
      connection: bob.connection,
      name: 'bob',
    });
    await expect(
      registerRelay(mallory.router, {
        channel: mallory.channel,
        connection: mallory.connection,
        name: 'bob',
      }),
    ).rejects.toMatchObject({ code: 'ERR_RELAY_NAME_TAKEN', kind: 'conflict' });
    // `*` grants any free name.
    await registerRelay(mallory.router, {
      channel: mallory.channel,
      connection: mallory.connection,
      name: 'anything',
    });
    // Bob reconnects on a fresh node and connection: the route is replaced.
    const bob2Node = node(s.network, 'bob2');
    const connection = bob2Node.transport.connect('r');
    const channel = await openSecureChannel(
      bob2Node.router,
      [localAddress(connection), localAddress('api')],
      bob.party.options(),
    );
    cleanups.push(() => channel.close());
    await registerRelay(bob2Node.router, { channel, connection, name: 'bob' });
    const bound = s.events.filter((e) => e.type === 'bound' && e.name === 'bob');
    expect(bound.length).toBe(2);
    const target = recorder();
    bob2Node.router.registerWorker('api', target);
    const a = node(s.network, 'a');
    await a.router.send({
      onwardRoute: [mem('r'), localAddress(relayAddress('bob')), localAddress('api')],
      returnRoute: [],
      payload: bytes('hello'),
    });
    await settle();
    expect(target.seen.map((x) => x.envelope.payload)).toEqual([bytes('hello')]);
  });

  it("an agent's replies may name the relay's local addresses, never one it would dial", async () => {
    const s = await setup();
    const bob = await s.agent('bob', ['relay=bob']);
    await registerRelay(bob.router, {
      channel: bob.channel,
      connection: bob.connection,
      name: 'bob',
    });
    const local = recorder();
    s.r.router.registerWorker('sink', local);
    const victim = node(s.network, 'victim');
    const target = recorder();
    victim.router.registerWorker('w', target);
    victim.router.allowFromAnyConnection('w');
    const viaBob = (onward: Envelope['onwardRoute']) =>
      bob.router.send({
        onwardRoute: [localAddress(bob.connection), localAddress(relayAddress('bob')), ...onward],
        returnRoute: [],
        payload: bytes('hi'),
      });
    await viaBob([mem('victim'), localAddress('w')]);
    await viaBob([localAddress('sink')]);
    await settle();
    expect(target.seen).toEqual([]);
    expect(local.seen.map((x) => x.envelope.payload)).toEqual([bytes('hi')]);
    expect(s.events.filter((e) => e.type === 'dropped')).toEqual([
      { type: 'dropped', name: 'bob', reason: 'not_local' },
    ]);
    // Control: the victim is reachable from the relay by a local send.
    await s.r.router.send({
      onwardRoute: [mem('victim'), localAddress('w')],
      returnRoute: [],
      payload: bytes('direct'),
    });
    await settle();
    expect(target.seen.map((x) => x.envelope.payload)).toEqual([bytes('direct')]);
  });

  it('refuses a register in the clear and a bind with an unknown secret', async () => {
    const s = await setup();
    const n = node(s.network, 'x');
    const answers = recorder();
    n.router.registerWorker('me', answers);
    const conn = n.transport.connect('r');
    n.router.allowFromConnection('me', conn);
    // [1, 0, "bob"] register, [1, 1, 32 zero bytes] bind
    const register = Uint8Array.from([0x83, 0x01, 0x00, 0x63, 0x62, 0x6f, 0x62]);
    const bind = new Uint8Array(3 + 2 + 32);
    bind.set([0x83, 0x01, 0x01, 0x58, 0x20]);
    for (const payload of [register, bind, bytes('junk')]) {
      await n.router.send({
        onwardRoute: [localAddress(conn), localAddress('relay')],
        returnRoute: [localAddress('me')],
        payload,
      });
    }
    await settle();
    expect(s.events.map((e) => (e.type === 'refused' ? e.reason : e.type))).toEqual([
      'ERR_RELAY_FORBIDDEN',
      'ERR_RELAY_FORBIDDEN',
      'ERR_RELAY_MALFORMED',
    ]);
    expect(answers.seen.length).toBe(3);
    expect(s.service.relays.size).toBe(0);
  });

  it('checks names', () => {
    expect(relayAddress('bob')).toBe('forward_to_bob');
    for (const bad of ['', 'a b', 'a/b', 'x'.repeat(118), 'é', 'a~b']) {
      expect(() => checkRelayName(bad)).toThrow(
        expect.objectContaining({ code: 'ERR_RELAY_NAME_INVALID' }),
      );
    }
    fc.assert(
      fc.property(fc.stringMatching(/^[A-Za-z0-9._-]{1,117}$/), (name) => {
        expect(parseRoute(`/relay/${name}`)).toEqual([localAddress(relayAddress(name))]);
      }),
    );
  });

  it('reads the relay attribute as a set; anything else grants nothing', async () => {
    const s = await setup();
    const cases: [string, boolean][] = [
      ['relay=n0', true],
      ['relay=*', true],
      ['relay=a,n2', true],
      ['relay=a', false],
      ['relay<=5', false],
      ['tools=n5', false],
    ];
    for (const [i, [constraint, allowed]] of cases.entries()) {
      const agent = await s.agent(`p${i}`, [constraint]);
      const outcome = registerRelay(agent.router, {
        channel: agent.channel,
        connection: agent.connection,
        name: `n${i}`,
      });
      if (allowed) await expect(outcome).resolves.toMatchObject({ name: `n${i}` });
      else await expect(outcome).rejects.toMatchObject({ code: 'ERR_RELAY_FORBIDDEN' });
    }
    expect([...s.service.relays.keys()]).toEqual(['n0', 'n1', 'n2']);
  });
});

function mem(value: string) {
  return { type: 128, value };
}

describe('RelayRegistration', () => {
  const fakeTimers = () => {
    const delays: number[] = [];
    let pending: (() => void) | undefined;
    return {
      delays,
      setTimer: (callback: () => void, delayMs: number) => {
        delays.push(delayMs);
        pending = callback;
        return delays.length;
      },
      clearTimer: () => {
        pending = undefined;
      },
      fire: async () => {
        const run = pending;
        pending = undefined;
        run?.();
        await settle(2);
      },
      get pending() {
        return pending !== undefined;
      },
    };
  };
  const refuse = (code: `ERR_${string}`) =>
    Promise.reject(new MandateError(code, 'unavailable', 'no'));

  it('jitters every retry over the upper half of its delay', async () => {
    const timers = fakeTimers();
    const draws = [0, 0.5, 0.25];
    const registration = new RelayRegistration({
      attempt: () => refuse('ERR_TRANSPORT_UNREACHABLE'),
      initialDelayMs: 100,
      maxDelayMs: 400,
      random: () => draws.shift() ?? 0,
      setTimer: timers.setTimer,
      clearTimer: timers.clearTimer,
    });
    registration.start();
    await settle(2);
    await timers.fire();
    await timers.fire();
    expect(timers.delays).toEqual([50, 150, 250]); // 100·[½,1], 200·[½,1], 400·[½,1]
    registration.stop();
  });

  it('retries with exponential backoff, resets after a success, re-registers when lost', async () => {
    const timers = fakeTimers();
    let lose: (() => void) | undefined;
    const outcomes = ['fail', 'fail', 'fail', 'ok', 'fail', 'ok'];
    const events: RelayRegistrationEvent[] = [];
    const registration = new RelayRegistration({
      attempt: () => {
        const outcome = outcomes.shift();
        if (outcome !== 'ok') return refuse('ERR_TRANSPORT_UNREACHABLE');
        return Promise.resolve({
          lost: new Promise<void>((resolve) => {
            lose = resolve;
          }),
        });
      },
      initialDelayMs: 100,
      maxDelayMs: 300,
      random: () => 1, // no jitter: the delays below are the backoff itself
      setTimer: timers.setTimer,
      clearTimer: timers.clearTimer,
      onEvent: (e) => events.push(e),
    });
    registration.start();
    await settle(2);
    await timers.fire();
    await timers.fire();
    await timers.fire();
    expect(registration.registered).toBe(true);
    expect(timers.delays).toEqual([100, 200, 300]);
    lose?.();
    await settle(2);
    expect(registration.registered).toBe(false);
    await timers.fire(); // fails
    await timers.fire(); // ok
    expect(timers.delays).toEqual([100, 200, 300, 100, 200]);
    expect(registration.registered).toBe(true);
    expect(events.map((e) => e.type)).toEqual([
      'failed',
      'failed',
      'failed',
      'registered',
      'lost',
      'failed',
      'registered',
    ]);
    registration.stop();
    lose?.();
    await settle(2);
    expect(timers.pending).toBe(false);
  });

  it('stops on a final refusal and on stop()', async () => {
    const timers = fakeTimers();
    const events: RelayRegistrationEvent[] = [];
    const registration = new RelayRegistration({
      attempt: () => refuse('ERR_RELAY_FORBIDDEN'),
      setTimer: timers.setTimer,
      clearTimer: timers.clearTimer,
      onEvent: (e) => events.push(e),
    });
    registration.start();
    await settle(2);
    expect(registration.stopped).toBe(true);
    expect(timers.pending).toBe(false);
    expect(events).toEqual([
      { type: 'failed', attempt: 1, reason: 'ERR_RELAY_FORBIDDEN', retryInMs: undefined },
    ]);
    const other = new RelayRegistration({
      attempt: () => refuse('ERR_RELAY_TIMEOUT'),
      setTimer: timers.setTimer,
      clearTimer: timers.clearTimer,
    });
    other.start();
    await settle(2);
    expect(timers.pending).toBe(true);
    other.stop();
    expect(timers.pending).toBe(false);
  });
});

/**
 * Records every envelope `router` sends or receives on any of its connections, encoded as on the
 * wire: wraps `attachConnection`, which every transport calls for every connection (both ends of a
 * memory link attach through their own router). Must run before the router has connections.
 */
function tapConnections(router: Router): Uint8Array[] {
  const frames: Uint8Array[] = [];
  const attach = router.attachConnection.bind(router);
  router.attachConnection = (prefix, endpoint) => {
    const handle = attach(prefix, {
      send: (envelope) => {
        frames.push(encodeEnvelope(envelope));
        return endpoint.send(envelope);
      },
    });
    return {
      id: handle.id,
      receive: (envelope) => {
        frames.push(encodeEnvelope(envelope));
        return handle.receive(envelope);
      },
      detach: () => {
        handle.detach();
      },
    };
  };
  return frames;
}

describe('relay chains', () => {
  it('A reaches B through R1 and R2 (R2 registered at R1 as `r2`); neither relay sees plaintext', async () => {
    const w = await world();
    const network = new MemoryNetwork();
    /** A relay node: listener at `api` opened to every connection, relay service, taps. */
    const relayNode = async (name: string, constraints: readonly string[]) => {
      const party = await w.party(name, constraints);
      const router = new Router();
      const frames = tapConnections(router);
      const transport = new MemoryTransport(router, network);
      transport.listen(name);
      cleanups.push(() => transport.close());
      const listener = new SecureChannelListener(router, party.options());
      cleanups.push(() => listener.close());
      router.allowFromAnyConnection('api');
      const events: RelayEvent[] = [];
      const service = new RelayService(router, { listener, onEvent: (e) => events.push(e) });
      cleanups.push(() => {
        service.close();
      });
      return { party, router, transport, service, events, frames };
    };
    const r1 = await relayNode('r1', ['tools=relay']);
    const r2 = await relayNode('r2', ['relay=r2']);

    // R2 registers at R1 exactly as an agent does, exposing nothing: its forwarders are open to
    // every connection already, and nothing else of R2 need be reachable through R1.
    const r2Connection = r2.transport.connect('r1');
    const r2Channel = await openSecureChannel(
      r2.router,
      [localAddress(r2Connection), localAddress('api')],
      r2.party.options(),
    );
    cleanups.push(() => r2Channel.close());
    await registerRelay(r2.router, {
      channel: r2Channel,
      connection: r2Connection,
      name: 'r2',
      expose: [],
    });
    expect(r1.service.relays.get('r2')).toBe(r2.party.identity.identifier);

    // B registers `bob` at R2 and serves an echo through its channel listener.
    const bobParty = await w.party('bob', ['relay=bob']);
    const b = node(network, 'bob');
    const bConnection = b.transport.connect('r2');
    const bChannel = await openSecureChannel(
      b.router,
      [localAddress(bConnection), localAddress('api')],
      bobParty.options(),
    );
    cleanups.push(() => bChannel.close());
    await registerRelay(b.router, { channel: bChannel, connection: bConnection, name: 'bob' });
    expect(r2.service.relays.get('bob')).toBe(bobParty.identity.identifier);
    const bobListener = new SecureChannelListener(b.router, bobParty.options());
    cleanups.push(() => bobListener.close());
    const bobEcho = echo();
    b.router.registerWorker('echo', bobEcho);
    bobListener.allow('echo');

    // A knows only R1 and the names: /memory/r1/relay/r2/relay/bob/service/api.
    const alice = await w.party('alice', ['tools=read']);
    const a = node(network, 'alice');
    const route = [
      localAddress(a.transport.connect('r1')),
      ...parseRoute('/relay/r2/relay/bob/service/api'),
    ];
    const before = { r1: r1.frames.length, r2: r2.frames.length };
    const channel = await openSecureChannel(a.router, route, alice.options());
    cleanups.push(() => channel.close());
    expect(channel.peer.identifier).toBe(bobParty.identity.identifier);
    const app = recorder();
    a.router.registerWorker('app', app);
    channel.allow('app');
    const marker = bytes(`plaintext-marker-${String(NOW)}-through-two-relays`);
    for (let i = 0; i < 3; i++) {
      await a.router.send({
        onwardRoute: [localAddress(channel.address), localAddress('echo')],
        returnRoute: [localAddress('app')],
        payload: marker,
      });
    }
    await settle(60);
    expect(app.seen.map((x) => x.envelope.payload)).toEqual([marker, marker, marker]);
    const seenByBob = bobEcho.seen[0];
    expect(seenByBob === undefined ? undefined : channelPeerOf(seenByBob.ctx)?.identifier).toBe(
      alice.identity.identifier,
    );

    // Control: the search finds the marker where it is in the clear (B's deliveries), and the
    // taps saw the chain's traffic (4 handshake messages and 6 frames crossed each relay twice,
    // in and out, with the relay names in the clear routing headers).
    expect(bobEcho.seen.some((x) => contains(x.envelope.payload, marker))).toBe(true);
    for (const relay of [r1, r2]) {
      const frames = relay.frames.slice(before[relay === r1 ? 'r1' : 'r2']);
      expect(frames.length).toBeGreaterThanOrEqual(20);
      expect(frames.some((f) => contains(f, bytes('forward_to_bob')))).toBe(true);
    }
    // Every byte either relay sent or received, registration included, never holds the marker.
    for (const frame of [...r1.frames, ...r2.frames]) {
      expect(contains(frame, marker)).toBe(false);
      expect(contains(frame, bytes('echo'))).toBe(false);
    }
    expect(r1.events.filter((e) => e.type === 'dropped')).toEqual([]);
    expect(r2.events.filter((e) => e.type === 'dropped')).toEqual([]);
  });
});
