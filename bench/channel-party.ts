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
 *
 * Commands and answers travel over the IPC channel (structured clone); the benchmark traffic
 * goes over TCP only.
 */
import {
  openSecureChannel,
  registerRelay,
  RelayService,
  SecureChannelListener,
  type SecureChannel,
} from '../src/channel/index.js';
import { localAddress, Router, TcpTransport } from '../src/routing/index.js';
import { authoritiesFrom, benchChannelOptions, type WorldKeys } from './channel-world.js';
import { findGc, type PartyCommand, type PartyReply } from './channel-parties.js';

const gc = findGc();
const ACK = Uint8Array.of(1);

let router: Router | undefined;
let tcp: TcpTransport | undefined;
let listener: SecureChannelListener | undefined;
let relayService: RelayService | undefined;
let toRelay: SecureChannel | undefined;

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
