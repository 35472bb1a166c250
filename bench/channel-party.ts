/**
 * One party of the channel benchmarks, in a process of its own (started by bench/channel-parties.ts
 * with `--import tsx`), so that every party has its own core and its CPU time is its own
 * `process.cpuUsage()`. Roles:
 *
 * - `receiver`: a router with a TCP transport, a SecureChannelListener at `api` delivering to a
 *   `sink` worker. Directly reachable (it listens) or, given a relay, registered there under a
 *   name (a channel to the relay node, `registerRelay`), reachable only through the relay. The
 *   sink answers every `ackEvery` messages of MESSAGE_BYTES through the channel.
 * - `relay`: a router with a TCP transport, a SecureChannelListener and a RelayService.
 * - `peer-receiver`: no Mandate at all, the peers the channel is compared with: a Node TLS 1.3
 *   server (`node:tls`) or a plain TCP server (`node:net`) whose connections count the bytes they
 *   read and write one ack byte per `ackEvery` messages, the channel sink's flow control.
 * - `forwarder`: no Mandate either, the floor of any relay hop: a TCP server that connects each
 *   connection onward to a given port and pipes bytes both ways (`socket.pipe`), so each frame
 *   costs the kernel's loopback read and write plus Node's socket machinery and nothing else.
 *
 * Commands and answers travel over the IPC channel (structured clone); the benchmark traffic
 * goes over TCP only.
 */
import {
  connect as connectTcp,
  createServer as createTcpServer,
  type Server,
  type Socket,
} from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import {
  openSecureChannel,
  registerRelay,
  RelayService,
  SecureChannelListener,
  type SecureChannel,
} from '../src/channel/index.js';
import { localAddress, Router, TcpTransport } from '../src/routing/index.js';
import { authoritiesFrom, benchChannelOptions, type WorldKeys } from './channel-world.js';
import { findGc, type PartyCommand, type PartyReply, type PeerTls } from './channel-parties.js';

const gc = findGc();
const ACK = Uint8Array.of(1);

let router: Router | undefined;
let tcp: TcpTransport | undefined;
let listener: SecureChannelListener | undefined;
let relayService: RelayService | undefined;
let toRelay: SecureChannel | undefined;
let peerServer: Server | undefined;
const peerSockets = new Set<Socket>();

function reply(message: PartyReply): void {
  process.send?.(message);
}

async function startReceiver(
  keys: WorldKeys,
  messageBytes: number,
  ackEvery: number,
  relay: { readonly port: number; readonly name: string } | undefined,
): Promise<PartyReply> {
  const authorities = authoritiesFrom(keys);
  router = new Router();
  tcp = new TcpTransport(router);
  let received = 0;
  router.registerWorker('sink', {
    async handleMessage(ctx, envelope) {
      if (envelope.payload.byteLength !== messageBytes) throw new Error('wrong message size');
      received++;
      if (received % ackEvery === 0) await ctx.reply(ACK);
    },
  });
  listener = new SecureChannelListener(
    router,
    benchChannelOptions(authorities, keys.self, ['sink']),
  );
  if (relay === undefined) {
    router.allowFromAnyConnection('api');
    const { port } = await tcp.listen({ host: '127.0.0.1', port: 0 });
    return { type: 'ready', port };
  }
  const connection = tcp.connect(`127.0.0.1:${relay.port}`);
  toRelay = await openSecureChannel(
    router,
    [localAddress(connection), localAddress('api')],
    benchChannelOptions(authorities, keys.self, []),
  );
  // Opens `api` to the relay connection, so relayed handshakes reach the listener.
  await registerRelay(router, { channel: toRelay, connection, name: relay.name });
  return { type: 'ready', port: relay.port };
}

async function startRelay(keys: WorldKeys): Promise<PartyReply> {
  router = new Router();
  tcp = new TcpTransport(router);
  listener = new SecureChannelListener(
    router,
    benchChannelOptions(authoritiesFrom(keys), keys.self, []),
  );
  router.allowFromAnyConnection('api');
  relayService = new RelayService(router, { listener });
  const { port } = await tcp.listen({ host: '127.0.0.1', port: 0 });
  return { type: 'ready', port };
}

async function startPeerReceiver(
  messageBytes: number,
  ackEvery: number,
  tls: PeerTls | undefined,
): Promise<PartyReply> {
  const bytesPerAck = messageBytes * ackEvery;
  const serve = (socket: Socket): void => {
    peerSockets.add(socket);
    socket.setNoDelay(true);
    // Counted over the connection's life: the sender's rounds are whole multiples of an ack.
    let received = 0;
    let acks = 0;
    socket.on('data', (chunk: Buffer) => {
      received += chunk.byteLength;
      const due = Math.floor(received / bytesPerAck);
      if (due > acks) {
        socket.write(new Uint8Array(due - acks));
        acks = due;
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => peerSockets.delete(socket));
  };
  const server =
    tls === undefined
      ? createTcpServer(serve)
      : createTlsServer(
          {
            key: tls.key,
            cert: tls.cert,
            minVersion: 'TLSv1.3',
            maxVersion: 'TLSv1.3',
            ciphers: tls.ciphers,
          },
          serve,
        );
  return { type: 'ready', port: await listenOnLoopback(server) };
}

/**
 * Joins every accepted connection to a new connection to 127.0.0.1:`targetPort` with `pipe` both
 * ways; either side ending or failing ends both. Nagle is off on both, as on the peers and the
 * TCP transport, so the one-byte acks are not held back.
 */
async function startForwarder(targetPort: number): Promise<PartyReply> {
  const forward = (inbound: Socket): void => {
    const outbound = connectTcp({ host: '127.0.0.1', port: targetPort });
    for (const socket of [inbound, outbound]) {
      peerSockets.add(socket);
      socket.setNoDelay(true);
      socket.on('error', () => {
        inbound.destroy();
        outbound.destroy();
      });
      socket.on('close', () => {
        peerSockets.delete(socket);
        inbound.destroy();
        outbound.destroy();
      });
    }
    inbound.pipe(outbound);
    outbound.pipe(inbound);
  };
  return { type: 'ready', port: await listenOnLoopback(createTcpServer(forward)) };
}

/** Listens on an ephemeral loopback port; the server is closed at `stop`. */
function listenOnLoopback(server: Server): Promise<number> {
  peerServer = server;
  return new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') reject(new Error('no TCP address'));
      else resolve(address.port);
    });
  });
}

/** CPU time first: the collections a memory reading forces must not count as traffic work. */
function usage(memory: boolean): PartyReply {
  const cpu = process.cpuUsage();
  if (memory) {
    gc?.();
    gc?.();
  }
  const { heapUsed, arrayBuffers, rss } = process.memoryUsage();
  return {
    type: 'usage',
    cpuUs: cpu.user + cpu.system,
    heapUsed,
    arrayBuffers,
    rss,
    channels: listener?.channelCount ?? 0,
  };
}

async function stop(): Promise<void> {
  for (const socket of peerSockets) socket.destroy();
  const server = peerServer;
  if (server !== undefined)
    await new Promise<void>((resolve) => {
      server.close(() => {
        resolve();
      });
    });
  relayService?.close();
  await toRelay?.close();
  await listener?.close();
  await tcp?.close();
}

async function handle(command: PartyCommand): Promise<void> {
  try {
    switch (command.type) {
      case 'receiver':
        reply(
          await startReceiver(command.keys, command.messageBytes, command.ackEvery, command.relay),
        );
        return;
      case 'relay':
        reply(await startRelay(command.keys));
        return;
      case 'peer-receiver':
        reply(await startPeerReceiver(command.messageBytes, command.ackEvery, command.tls));
        return;
      case 'forwarder':
        reply(await startForwarder(command.targetPort));
        return;
      case 'usage':
        reply(usage(command.memory));
        return;
      case 'stop':
        await stop();
        reply({ type: 'stopped' });
        process.disconnect();
        return;
    }
  } catch (error) {
    reply({ type: 'error', message: error instanceof Error ? error.message : String(error) });
  }
}

process.on('message', (message: PartyCommand) => {
  void handle(message);
});
