import { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ChannelHandshake } from '../../src/channel/channel-handshake.js';
import { ChannelMessageType } from '../../src/channel/secure-channel.js';
import {
  openSecureChannel,
  SecureChannelListener,
  TrustPolicies,
  type SecureChannelEvent,
  type SecureChannelOptions,
} from '../../src/channel/index.js';
import type { MandateError } from '../../src/core/index.js';
import { generateX25519KeyPair } from '../../src/crypto/index.js';
import { encodeEnvelope } from '../../src/routing/envelope.js';
import {
  localAddress,
  Router,
  TcpTransport,
  type Envelope,
  type TcpListener,
  type TcpTransportOptions,
  type Worker,
} from '../../src/routing/index.js';
import { channelWorld, type ChannelParty } from '../helpers/channel-world.js';

/**
 * Hostile peers on real TCP (127.0.0.1), with node:net sockets as the attacker: half-open floods,
 * the connection bound, stalls in the middle of a secure-channel handshake, garbage and truncated
 * frames. Each is refused or closed with a typed error, no worker sees the attacker's bytes, the
 * transport and the listener stay within their bounds, and an honest peer is served afterwards.
 */

const NOW = 1_800_000_000;
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (b: Uint8Array): string => new TextDecoder().decode(b);

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Resolves once `ready()` holds, checking every few ms; fails after `timeoutMs`. */
async function until(ready: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function tcpNode(options: TcpTransportOptions = {}) {
  const router = new Router();
  const transport = new TcpTransport(router, options);
  cleanups.push(() => transport.close());
  return { router, transport };
}

/** A worker that records what it gets and, when `echo`, answers with the same payload. */
function recorder(echo: boolean): Worker & { received: Envelope[] } {
  const received: Envelope[] = [];
  return {
    received,
    async handleMessage(ctx, envelope) {
      received.push(envelope);
      if (echo) await ctx.reply(envelope.payload);
    },
  };
}

/** A TCP server node whose `echo` worker is open to every connection. */
async function echoServer(options: TcpTransportOptions = {}) {
  const closed: (string | undefined)[] = [];
  const node = tcpNode({
    ...options,
    onConnectionClosed: (_id, error: MandateError | undefined) => closed.push(error?.code),
  });
  const echo = recorder(true);
  node.router.registerWorker('echo', echo);
  node.router.allowFromAnyConnection('echo');
  const listener = await node.transport.listen();
  return { ...node, echo, listener, closed };
}

/** An honest client: its own router and transport, one echo round trip; returns the reply. */
async function honestEcho(listener: TcpListener, text: string): Promise<string> {
  const client = tcpNode();
  let reply!: (envelope: Envelope) => void;
  const replied = new Promise<Envelope>((resolve) => (reply = resolve));
  client.router.registerWorker('app', {
    handleMessage(_ctx, envelope) {
      reply(envelope);
    },
  });
  client.router.allowFromConnection('app', client.transport.connect(listener.address.value));
  await client.router.send({
    onwardRoute: [listener.address, localAddress('echo')],
    returnRoute: [localAddress('app')],
    payload: bytes(text),
  });
  return str((await replied).payload);
}

interface RawPeer {
  readonly socket: Socket;
  /** Bytes the server sent (its version byte first, for an adopted connection). */
  readonly received: () => number;
  readonly connected: Promise<void>;
  readonly closed: Promise<void>;
}

/** An attacker's socket: connects, reads whatever comes, writes only what the test says. */
function rawPeer(
  port: number,
  onEvent: () => void = () => undefined,
  localAddressToUse?: string,
): RawPeer {
  const socket = new Socket();
  let received = 0;
  socket.on('error', () => undefined);
  socket.on('data', (chunk: Buffer) => {
    received += chunk.length;
    onEvent();
  });
  const closed = new Promise<void>((resolve) =>
    socket.once('close', () => {
      onEvent();
      resolve();
    }),
  );
  const connected = new Promise<void>((resolve) =>
    socket.once('connect', () => {
      onEvent();
      resolve();
    }),
  );
  socket.connect({
    port,
    host: '127.0.0.1',
    ...(localAddressToUse === undefined ? {} : { localAddress: localAddressToUse }),
  });
  cleanups.push(async () => {
    socket.destroy();
    await closed;
  });
  return { socket, received: () => received, connected, closed };
}

/** A routing frame as on the wire: u32 big-endian length ‖ envelope. */
function frameOf(envelope: Envelope): Buffer {
  const body = encodeEnvelope(envelope);
  const frame = Buffer.alloc(4 + body.byteLength);
  frame.writeUInt32BE(body.byteLength, 0);
  frame.set(body, 4);
  return frame;
}

describe('tcp transport under a half-open flood', () => {
  it('holds at most maxPendingConnections, evicting the oldest in setup, and serves an honest peer', async () => {
    const server = await echoServer({ maxPendingConnections: 8, handshakeTimeoutMs: 2_000 });
    let maxHeld = 0;
    const sample = (): void => {
      maxHeld = Math.max(maxHeld, server.transport.connectionCount);
    };
    // Twenty sockets that connect and then never send the version byte.
    const flood: RawPeer[] = [];
    for (let i = 0; i < 20; i++) {
      const peer = rawPeer(server.listener.port, sample);
      flood.push(peer);
      await until(() => peer.received() > 0, 'the server to adopt it');
    }
    sample();
    expect(maxHeld).toBeLessThanOrEqual(8);
    // Each arrival beyond the bound closed the oldest one still in setup; none was refused.
    expect(server.transport.refusedConnections).toBe(0);
    expect(server.transport.evictedConnections).toBe(12);
    await Promise.all(flood.slice(0, 12).map((peer) => peer.closed));
    // While the last eight still stall, honest peers get in at once (each evicting one of them).
    const texts = Array.from({ length: 10 }, (_, i) => `during the flood ${i}`);
    for (const text of texts) expect(await honestEcho(server.listener, text)).toBe(text);
    await Promise.all(flood.map((peer) => peer.closed));
    await until(() => server.transport.connectionCount === 10, 'the stalled connections to close');
    const codes = server.closed.filter((c) => c !== undefined);
    expect(codes.filter((c) => c === 'ERR_TRANSPORT_EVICTED')).toHaveLength(
      server.transport.evictedConnections,
    );
    expect(
      codes
        .filter((c) => c !== 'ERR_TRANSPORT_EVICTED')
        .every((c) => c === 'ERR_TRANSPORT_TIMEOUT'),
    ).toBe(true);
    expect(codes).toHaveLength(20);
    expect(server.echo.received.map((e) => str(e.payload))).toEqual(texts);
  });

  it('evicts from the address that floods: a newcomer from elsewhere stays through it', async () => {
    const server = await echoServer({ maxPendingConnections: 8, handshakeTimeoutMs: 5_000 });
    const adopted = async (peer: RawPeer): Promise<RawPeer> => {
      await until(() => peer.received() > 0, 'the server to adopt it');
      return peer;
    };
    for (let i = 0; i < 8; i++) await adopted(rawPeer(server.listener.port));
    const other = await adopted(rawPeer(server.listener.port, undefined, '127.0.0.2'));
    let otherClosed = false;
    void other.closed.then(() => (otherClosed = true));
    for (let i = 0; i < 20; i++) await adopted(rawPeer(server.listener.port));
    expect(server.transport.evictedConnections).toBe(21);
    expect(otherClosed).toBe(false);
    expect(server.transport.connectionCount).toBe(8);
  });

  it('keeps a socket that sent only the version byte in setup: it times out, it never holds a slot', async () => {
    // Found by an outside attack: 4,200 sockets that each sent the byte 01 held every one of the
    // 4,096 slots until the 5-minute idle timeout, and no agent could connect.
    const server = await echoServer({ maxPendingConnections: 4, handshakeTimeoutMs: 300 });
    const versionOnly = Array.from({ length: 4 }, () => rawPeer(server.listener.port));
    await Promise.all(versionOnly.map((peer) => peer.connected));
    for (const peer of versionOnly) peer.socket.write(Uint8Array.of(1));
    await until(() => versionOnly.every((peer) => peer.received() > 0), 'the version bytes');
    // Still in setup: they count against the bound (nothing is evicted while there is room)...
    expect(server.transport.connectionCount).toBe(4);
    expect(server.transport.evictedConnections).toBe(0);
    // ...and the setup timeout closes them; honest peers (a frame right after the byte) pass.
    await Promise.all(versionOnly.map((peer) => peer.closed));
    expect(server.closed).toEqual(Array.from({ length: 4 }, () => 'ERR_TRANSPORT_TIMEOUT'));
    const texts = Array.from({ length: 6 }, (_, i) => `honest ${i}`);
    for (const text of texts) expect(await honestEcho(server.listener, text)).toBe(text);
    // Past their first frame, they left setup: six connections, more than the pending bound.
    expect(server.transport.connectionCount).toBe(6);
  });

  it('holds at most maxConnectionsPerAddress connections from one address', async () => {
    const server = await echoServer({ maxConnectionsPerAddress: 2 });
    for (const text of ['one', 'two']) expect(await honestEcho(server.listener, text)).toBe(text);
    const third = rawPeer(server.listener.port);
    await third.closed;
    expect(third.received()).toBe(0);
    expect(server.transport.refusedConnections).toBe(1);
    // Another address (all of 127.0.0.0/8 is loopback on Linux) still gets in.
    const elsewhere = rawPeer(server.listener.port, undefined, '127.0.0.2');
    await until(() => elsewhere.received() > 0, 'the other address to be adopted');
    expect(server.transport.connectionCount).toBe(3);
    // A slot freed by a close is free again.
    elsewhere.socket.destroy();
    await until(() => server.transport.connectionCount === 2, 'the close');
    const again = rawPeer(server.listener.port, undefined, '127.0.0.2');
    await until(() => again.received() > 0, 'the freed slot');
  });

  it('refuses incoming sockets beyond maxConnections and throws on connect beyond it', async () => {
    const server = await echoServer({ maxConnections: 3 });
    for (const text of ['one', 'two', 'three']) {
      expect(await honestEcho(server.listener, text)).toBe(text);
    }
    expect(server.transport.connectionCount).toBe(3);

    // A fourth is destroyed on arrival: it never even gets the version byte.
    const extra = rawPeer(server.listener.port);
    await extra.closed;
    expect(extra.received()).toBe(0);
    expect(server.transport.refusedConnections).toBe(1);
    expect(server.transport.connectionCount).toBe(3);

    // The server itself cannot dial out either: the bound counts both directions.
    const other = await echoServer();
    expect(() => server.transport.connect(other.listener.address.value)).toThrow(
      expect.objectContaining({ code: 'ERR_TRANSPORT_CONNECTION_LIMIT', kind: 'exhausted' }),
    );
    await expect(
      server.router.send({
        onwardRoute: [other.listener.address, localAddress('echo')],
        returnRoute: [],
        payload: bytes('out'),
      }),
    ).rejects.toMatchObject({ code: 'ERR_TRANSPORT_CONNECTION_LIMIT' });
    expect(other.echo.received).toEqual([]);
    expect(server.echo.received.map((e) => str(e.payload))).toEqual(['one', 'two', 'three']);

    // An outgoing bound on a client: its existing connection is reused, a new peer is refused.
    const client = tcpNode({ maxConnections: 1 });
    const first = client.transport.connect(server.listener.address.value);
    expect(client.transport.connect(server.listener.address.value)).toBe(first);
    expect(() => client.transport.connect(other.listener.address.value)).toThrow(
      expect.objectContaining({ code: 'ERR_TRANSPORT_CONNECTION_LIMIT' }),
    );
  });

  it('rejects bounds that are not positive integers', () => {
    for (const options of [
      { maxConnections: 0 },
      { maxPendingConnections: -1 },
      { maxConnections: 1.5 },
      { maxConnectionsPerAddress: 0 },
    ]) {
      expect(() => new TcpTransport(new Router(), options)).toThrow(
        expect.objectContaining({ code: 'ERR_ARGUMENT_INVALID' }),
      );
    }
  });
});

describe('tcp transport and secure-channel listener against stalled and hostile peers', () => {
  async function channelServer(listenerOptions: {
    handshakeTimeoutMs: number;
    maxHandshakes: number;
  }) {
    const w = await channelWorld(NOW);
    const alice = await w.party('alice', null);
    const bob = await w.party('bob', null);
    const options = (
      self: ChannelParty,
      peer: ChannelParty,
      deliverTo: string[],
    ): SecureChannelOptions => ({
      staticKey: self.staticKey,
      identityPayload: self.identityPayload,
      verify: {
        authorities: w.authorities,
        trustPolicy: TrustPolicies.identifier(peer.identity.identifier),
      },
      clock: { nowSeconds: () => NOW + 1 },
      deliverTo,
    });
    const server = tcpNode();
    const events: SecureChannelEvent[] = [];
    const channelCounts: number[] = [];
    const listener: SecureChannelListener = new SecureChannelListener(server.router, {
      ...options(bob, alice, ['echo']),
      ...listenerOptions,
      onEvent: (event) => {
        events.push(event);
        channelCounts.push(listener.channelCount);
      },
    });
    cleanups.push(() => listener.close());
    server.router.allowFromAnyConnection('api');
    const echo = recorder(true);
    server.router.registerWorker('echo', echo);
    const { port } = await server.transport.listen();

    /** A valid handshake message 1 (a fresh ephemeral key) in a routing frame to `api`. */
    const message1Frame = (): Buffer => {
      const handshake = new ChannelHandshake({
        initiator: true,
        staticKey: alice.staticKey,
        identityPayload: alice.identityPayload,
        generateEphemeral: generateX25519KeyPair,
        verify: {
          authorities: w.authorities,
          trustPolicy: TrustPolicies.identifier(bob.identity.identifier),
          nowSeconds: NOW + 1,
        },
      });
      const message = handshake.start();
      const payload = new Uint8Array(1 + message.byteLength);
      payload[0] = ChannelMessageType.handshake;
      payload.set(message, 1);
      return frameOf({
        onwardRoute: [localAddress('api')],
        returnRoute: [localAddress('initiator')],
        payload,
      });
    };

    /** Alice, honestly: a channel over her own transport, one echo through it. */
    const honestChannelEcho = async (text: string): Promise<string> => {
      const client = tcpNode();
      let reply!: (envelope: Envelope) => void;
      const replied = new Promise<Envelope>((resolve) => (reply = resolve));
      client.router.registerWorker('app', {
        handleMessage(_ctx, envelope) {
          reply(envelope);
        },
      });
      const connection = client.transport.connect(`127.0.0.1:${port}`);
      const channel = await openSecureChannel(
        client.router,
        [localAddress(connection), localAddress('api')],
        options(alice, bob, ['app']),
      );
      cleanups.push(() => channel.close());
      await client.router.send({
        onwardRoute: [localAddress(channel.address), localAddress('echo')],
        returnRoute: [localAddress('app')],
        payload: bytes(text),
      });
      return str((await replied).payload);
    };

    return {
      server,
      port,
      listener,
      events,
      channelCounts,
      echo,
      message1Frame,
      honestChannelEcho,
    };
  }

  it('abandons a handshake stalled after message 1 and still serves an honest peer', async () => {
    const world = await channelServer({ handshakeTimeoutMs: 1_000, maxHandshakes: 4 });
    const attacker = rawPeer(world.port);
    await attacker.connected;
    attacker.socket.write(Buffer.concat([Buffer.of(1), world.message1Frame()]));
    // The responder answers with message 2 (more than the version byte arrives), then waits.
    await until(() => attacker.received() > 1, 'message 2');
    expect(world.listener.channelCount).toBe(1);

    await until(() => world.events.some((e) => e.type === 'timeout'), 'the handshake timeout');
    expect(world.events.map((e) => e.type)).toEqual(['timeout']);
    expect(world.listener.channelCount).toBe(0);
    expect(world.echo.received).toEqual([]);

    expect(await world.honestChannelEcho('after the stall')).toBe('after the stall');
    expect(world.echo.received.map((e) => str(e.payload))).toEqual(['after the stall']);
  });

  it('drops message 1 beyond maxHandshakes as busy and never holds more', async () => {
    const world = await channelServer({ handshakeTimeoutMs: 1_000, maxHandshakes: 4 });
    // Ten message 1s over two connections, none ever followed by message 3.
    const attackers = [rawPeer(world.port), rawPeer(world.port)];
    for (const attacker of attackers) {
      await attacker.connected;
      const frames = Array.from({ length: 5 }, () => world.message1Frame());
      attacker.socket.write(Buffer.concat([Buffer.of(1), ...frames]));
    }
    const dropReasons = (): string[] =>
      world.events.flatMap((e) => (e.type === 'dropped' ? [e.reason] : []));
    const timeouts = (): number => world.events.filter((e) => e.type === 'timeout').length;
    // Each message 1 is either refused as busy or accepted and, unanswered, timed out.
    await until(() => dropReasons().length + timeouts() === 10, 'every message 1 to settle');
    // 6 and 4, unless a slow machine let a timeout free a slot before the flood was read.
    expect(dropReasons().length).toBeGreaterThanOrEqual(1);
    expect(new Set(dropReasons())).toEqual(new Set(['busy']));
    expect(Math.max(...world.channelCounts)).toBeLessThanOrEqual(4);
    expect(world.listener.channelCount).toBe(0);
    expect(world.echo.received).toEqual([]);

    expect(await world.honestChannelEcho('after the flood')).toBe('after the flood');
  });
});

describe('tcp transport against garbage and truncated frames', () => {
  it('closes each stalled or garbled peer with a typed error; no worker sees its bytes', async () => {
    const server = await echoServer({ handshakeTimeoutMs: 300, idleTimeoutMs: 300 });
    const header = (length: number): Buffer => {
      const h = Buffer.alloc(4);
      h.writeUInt32BE(length, 0);
      return h;
    };
    const cases: readonly (readonly [string, Buffer, string])[] = [
      ['version byte, then nothing', Buffer.of(1), 'ERR_TRANSPORT_TIMEOUT'],
      ['half a frame header', Buffer.of(1, 0, 0), 'ERR_TRANSPORT_TIMEOUT'],
      [
        'a header for 64 bytes and 10 of them',
        Buffer.concat([Buffer.of(1), header(64), Buffer.alloc(10, 0xa5)]),
        'ERR_TRANSPORT_TIMEOUT',
      ],
      [
        'a frame cut off after most of a valid envelope',
        (() => {
          const frame = frameOf({
            onwardRoute: [localAddress('echo')],
            returnRoute: [],
            payload: bytes('never delivered'),
          });
          return Buffer.concat([Buffer.of(1), frame.subarray(0, frame.length - 1)]);
        })(),
        'ERR_TRANSPORT_TIMEOUT',
      ],
      [
        'text instead of the version byte',
        Buffer.from('GET / HTTP/1.1\r\n\r\n'),
        'ERR_TRANSPORT_PROTOCOL',
      ],
      [
        'a whole frame of garbage',
        Buffer.concat([Buffer.of(1), header(8), Buffer.alloc(8, 0xff)]),
        'ERR_ENVELOPE_MALFORMED',
      ],
    ];
    for (const [what, data, code] of cases) {
      const before = server.closed.length;
      const peer = rawPeer(server.listener.port);
      await peer.connected;
      peer.socket.write(data);
      await peer.closed;
      await until(() => server.closed.length === before + 1, `the server to close: ${what}`);
      expect([what, server.closed.at(-1)]).toEqual([what, code]);
    }
    expect(server.echo.received).toEqual([]);
    expect(server.transport.connectionCount).toBe(0);
    expect(await honestEcho(server.listener, 'still here')).toBe('still here');
  });
});
