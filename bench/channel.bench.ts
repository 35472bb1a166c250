/**
 * Secure-channel benchmarks, each against a baseline measured in the same run:
 *
 * - the bare Noise XX handshake (both sides, no payloads) against noise-handshake, the Noise
 *   library hypercore uses (libsodium underneath; its suite is ChaChaPoly + BLAKE2b, only the
 *   curve can be swapped), plus the handshake's own DH floor;
 * - the full mutual ChannelHandshake (identities, one credential each side, peers verified)
 *   against the raw cost of its X25519, AES-GCM and Ed25519 operations timed alone;
 * - traffic: 16 KiB messages over one secure channel on loopback TCP, the receiver in a process
 *   of its own, directly and through a relay (a third process). The sender's MB/s is compared
 *   with raw AES-256-GCM encryption of 16 KiB in this process; the CPU time of every party per
 *   message (relayed against direct) is the cost of a relay hop;
 * - the peers a user would otherwise pick, in the same rounds and the same shape (16 KiB writes
 *   from this process, the same window and acks, the receiver a process of its own): Node's TLS
 *   1.3 with TLS_AES_256_GCM_SHA384, and plain TCP; and plain TCP through a bare forwarder process
 *   (two sockets joined with `socket.pipe`, no parsing), the floor of any relay hop on this
 *   machine: the kernel's loopback read and write of each frame plus Node's socket machinery,
 *   against which the Mandate relay's CPU per message is set. TLS needs a certificate: a throwaway
 *   self-signed P-256 one is made at the start of the traffic part by the `openssl` command
 *   (test/support/self-signed-certificate.ts, which the egress proxy's https test uses too: a
 *   certificate checked into the repository would expire). Without `openssl` on PATH the traffic
 *   part stops at once with a message saying so. The certificate only matters to the
 *   handshake, which is outside the timing;
 * - memory: 1,000 channels through one relay to one responder, both in processes of their own.
 *
 * Run alone: `node --import tsx bench/channel.bench.ts [handshake] [traffic] [memory] [--markdown]`.
 */
import { createRequire } from 'node:module';
import { connect as connectTcp, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { connect as connectTls } from 'node:tls';
import { pathToFileURL } from 'node:url';
import {
  AEAD_KEY_BYTES,
  AEAD_NONCE_BYTES,
  AeadAlgorithm,
  aeadDecrypt,
  aeadEncrypt,
  generateEd25519KeyPair,
  generateX25519KeyPair,
  generateX25519KeyPairInto,
  randomBytes,
  sha256,
  signEd25519,
  verifyEd25519,
  x25519Into,
} from '../src/crypto/index.js';
import { ChannelHandshake } from '../src/channel/channel-handshake.js';
import { createHandshake, NoiseSuite, staticKeyFromSecret } from '../src/channel/noise.js';
import {
  openSecureChannel,
  relayAddress,
  TrustPolicies,
  VerifiedPeerCache,
  type SecureChannel,
} from '../src/channel/index.js';
import { localAddress, Router, TcpTransport, type Route } from '../src/routing/index.js';
import { PartyProcess, type PartyUsage } from './channel-parties.js';
import { BENCH_NOW, benchChannelOptions, benchWorld, worldKeys } from './channel-world.js';
import { group, markdownTable, median, printTable, type TableRow } from './harness.js';
import { selfSignedCertificate } from '../test/support/self-signed-certificate.js';

interface NoiseHandshakePeer {
  initialise(prologue: Uint8Array, remoteStatic?: Uint8Array): void;
  send(payload?: Uint8Array): Uint8Array;
  recv(message: Uint8Array): Uint8Array;
  readonly complete: boolean;
  readonly s: { publicKey: Uint8Array; secretKey: Uint8Array };
}
type NoiseHandshakeClass = new (
  pattern: string,
  initiator: boolean,
  staticKeypair?: unknown,
) => NoiseHandshakePeer;

export type ChannelBenchPart = 'handshake' | 'traffic' | 'memory';

export async function channelBenchmarks(
  parts: readonly ChannelBenchPart[] = ['handshake', 'traffic', 'memory'],
): Promise<TableRow[]> {
  const rows: TableRow[] = [];
  if (parts.includes('handshake'))
    rows.push(...(await bareHandshakeBenchmarks()), ...(await fullHandshakeBenchmarks()));
  if (parts.includes('traffic')) rows.push(...(await trafficBenchmarks()));
  if (parts.includes('memory')) rows.push(await relayMemoryBenchmark());
  return rows;
}

async function bareHandshakeBenchmarks(): Promise<TableRow[]> {
  // noise-handshake is CommonJS.
  const NoiseHandshake = createRequire(import.meta.url)('noise-handshake') as NoiseHandshakeClass;
  const initiatorStatic = generateX25519KeyPair();
  const responderStatic = generateX25519KeyPair();
  const iKey = staticKeyFromSecret(initiatorStatic.secretKey);
  const rKey = staticKeyFromSecret(responderStatic.secretKey);

  const ours = (suite: NoiseSuite) => (): void => {
    const initiator = createHandshake({
      initiator: true,
      suite,
      staticKey: iKey,
      generateEphemeral: generateX25519KeyPair,
    });
    const responder = createHandshake({
      initiator: false,
      suite,
      staticKey: rKey,
      generateEphemeral: generateX25519KeyPair,
    });
    responder.readMessage(initiator.writeMessage());
    initiator.readMessage(responder.writeMessage());
    responder.readMessage(initiator.writeMessage());
    if (!initiator.complete || !responder.complete) throw new Error('handshake incomplete');
    initiator.split();
    responder.split();
  };
  // Same work on both sides: noise-handshake generates a static key pair when given none, so
  // hand it long-lived ones made once, as Mandate's side reuses `iKey`/`rKey`.
  const theirDh = createRequire(import.meta.url)('noise-handshake/dh') as {
    generateKeyPair(): unknown;
  };
  const theirStatics = [theirDh.generateKeyPair(), theirDh.generateKeyPair()] as const;
  const theirs = (): void => {
    const initiator = new NoiseHandshake('XX', true, theirStatics[0]);
    const responder = new NoiseHandshake('XX', false, theirStatics[1]);
    initiator.initialise(new Uint8Array(0));
    responder.initialise(new Uint8Array(0));
    responder.recv(initiator.send());
    initiator.recv(responder.send());
    responder.recv(initiator.send());
    if (!initiator.complete || !responder.complete) throw new Error('handshake incomplete');
  };
  // The DH floor of XX, both sides: 2 ephemeral keygens and 3 DHs each (ee, es, se) = 2 + 6.
  const pk = new Uint8Array(32);
  const sk = new Uint8Array(32);
  const shared = new Uint8Array(32);
  const peer = generateX25519KeyPair();
  const floor = (): void => {
    generateX25519KeyPairInto(pk, sk);
    generateX25519KeyPairInto(pk, sk);
    for (let i = 0; i < 6; i++) x25519Into(shared, sk, peer.publicKey);
  };
  ours(NoiseSuite.aesGcm)();
  theirs();

  const results = await group('noise-xx')
    .add('aes', ours(NoiseSuite.aesGcm), {
      label: 'Noise XX handshake, both sides (AESGCM_SHA256)',
    })
    .add('chacha', ours(NoiseSuite.chaChaPoly), {
      label: 'Noise XX handshake, both sides (ChaChaPoly_SHA256)',
    })
    .add('peer', theirs, { label: 'noise-handshake XX (ChaChaPoly_BLAKE2b)' })
    .add('floor', floor, { label: 'X25519 floor: 2 keygens + 6 DH' })
    .run();
  const row = (id: string, baseline: string, target: string): TableRow => ({
    what: results.get(id).label,
    usPerOp: results.get(id).usPerOp,
    baseline: results.get(baseline).label,
    baselineUsPerOp: results.get(baseline).usPerOp,
    ratio: results.ratio(id, baseline),
    target,
  });
  return [
    row('aes', 'peer', '≤ 1× (issue 4)'),
    row('chacha', 'peer', '≤ 1×'),
    row('aes', 'floor', ''),
  ];
}

// --- the full channel handshake --------------------------------------------------------------

async function fullHandshakeBenchmarks(): Promise<TableRow[]> {
  const world = await benchWorld();
  const { alice, bob } = world;
  const aliceKey = staticKeyFromSecret(alice.staticSecret);
  const bobKey = staticKeyFromSecret(bob.staticSecret);
  const verify = {
    nowSeconds: BENCH_NOW + 1,
    authorities: world.authorities,
    trustPolicy: TrustPolicies.credentialHolder(),
  };
  // Peers verified before: each side's cache already holds the other's payload.
  const cachedVerify = { ...verify, cache: new VerifiedPeerCache() };
  const handshake = (options: typeof verify): void => {
    const a = new ChannelHandshake({
      initiator: true,
      staticKey: aliceKey,
      identityPayload: alice.payload,
      generateEphemeral: generateX25519KeyPair,
      verify: options,
    });
    const b = new ChannelHandshake({
      initiator: false,
      staticKey: bobKey,
      identityPayload: bob.payload,
      generateEphemeral: generateX25519KeyPair,
      verify: options,
    });
    const m2 = b.receive(a.start()).send;
    if (m2 === undefined) throw new Error('no message 2');
    const atAlice = a.receive(m2);
    if (atAlice.send === undefined || atAlice.established === undefined)
      throw new Error('initiator not established');
    const atBob = b.receive(atAlice.send);
    if (
      atBob.established?.peer.credentials.length !== 1 ||
      atAlice.established.peer.credentials.length !== 1
    )
      throw new Error('a peer was not verified with its credential');
  };
  const full = (): void => {
    handshake(verify);
  };
  const cached = (): void => {
    handshake(cachedVerify);
  };

  // The crypto of that handshake, each operation timed alone.
  // X25519: 2 ephemeral keygens + 6 DH (ee, es, se on each side).
  const pk = new Uint8Array(32);
  const sk = new Uint8Array(32);
  const shared = new Uint8Array(32);
  const peer = generateX25519KeyPair();
  // AES-256-GCM with ad = h: s sealed and opened twice (messages 2 and 3), each payload once.
  const key = randomBytes(AEAD_KEY_BYTES);
  const nonce = new Uint8Array(AEAD_NONCE_BYTES);
  const h = randomBytes(32);
  const s = randomBytes(32);
  const sealAndOpen = (plaintext: Uint8Array): void => {
    const sealed = aeadEncrypt(AeadAlgorithm.aes256gcm, key, nonce, plaintext, h);
    aeadDecrypt(AeadAlgorithm.aes256gcm, key, nonce, sealed, h);
  };
  // Ed25519, 4 per side: change history 1, secure-channel attestation 1, credential 2 (the
  // authority's credential-key attestation and the credential), each over a 32-byte digest.
  const signer = generateEd25519KeyPair();
  const digest = sha256(randomBytes(64));
  const signature = signEd25519(signer.secretKey, digest);
  const floor = (): void => {
    generateX25519KeyPairInto(pk, sk);
    generateX25519KeyPairInto(pk, sk);
    for (let i = 0; i < 6; i++) x25519Into(shared, sk, peer.publicKey);
    sealAndOpen(s);
    sealAndOpen(s);
    sealAndOpen(alice.payload);
    sealAndOpen(bob.payload);
    for (let i = 0; i < 8; i++)
      if (!verifyEd25519(signer.publicKey, digest, signature)) throw new Error('verify failed');
  };
  // The crypto of a handshake between peers already verified: no signature checks left.
  const cachedFloor = (): void => {
    generateX25519KeyPairInto(pk, sk);
    generateX25519KeyPairInto(pk, sk);
    for (let i = 0; i < 6; i++) x25519Into(shared, sk, peer.publicKey);
    sealAndOpen(s);
    sealAndOpen(s);
    sealAndOpen(alice.payload);
    sealAndOpen(bob.payload);
  };
  full();
  floor();
  // The first fills the cache (both payloads); the second is answered from it.
  cached();
  cached();
  cachedFloor();
  if (cachedVerify.cache.size !== 2 || cachedVerify.cache.hits < 2)
    throw new Error('the cached handshake did not hit the cache');

  const results = await group('channel-handshake')
    .add('full', full, {
      label: 'ChannelHandshake XX, both sides: identities + 1 credential each, peers verified',
    })
    .add('floor', floor, {
      label: `its crypto alone: X25519 2 keygens + 6 DH, AES-GCM 4 seal+open (s ×2, payloads ${alice.payload.byteLength}/${bob.payload.byteLength} B), Ed25519 8 verifies; SHA-256/HMAC/HKDF left out`,
    })
    .add('cached', cached, {
      label: 'the same between peers verified before (VerifiedPeerCache hit on both sides)',
    })
    .add('cachedFloor', cachedFloor, {
      label: 'its crypto alone: the same without the 8 Ed25519 verifies',
    })
    .run();
  return [
    {
      what: results.get('full').label,
      usPerOp: results.get('full').usPerOp,
      baseline: results.get('floor').label,
      baselineUsPerOp: results.get('floor').usPerOp,
      ratio: results.ratio('full', 'floor'),
      target: '≤ 1.3×',
    },
    {
      what: results.get('cached').label,
      usPerOp: results.get('cached').usPerOp,
      baseline: results.get('cachedFloor').label,
      baselineUsPerOp: results.get('cachedFloor').usPerOp,
      ratio: results.ratio('cached', 'cachedFloor'),
      target: 'skips the checks',
    },
  ];
}

// --- traffic: throughput and the CPU of a relay hop -------------------------------------------

const MESSAGE_BYTES = 16 * 1024;
/** Messages unacknowledged by the sink at most. */
const WINDOW = 64;
/** The sink answers (through the channel) once per this many messages. */
const ACK_EVERY = 16;
const RELAY_NAME = 'bob';
/** The one TLS 1.3 suite the TLS peer offers and accepts: AES-256-GCM, as the channel's. */
const TLS_SUITE = 'TLS_AES_256_GCM_SHA384';

type Traffic = 'raw' | 'direct' | 'relayed' | 'tls' | 'tcp' | 'tcp-relayed';

interface TrafficRound {
  /** Wall time per message (per encryption for `raw`), µs. */
  readonly usPerMessage: number;
  /** CPU time per message of each party that carried the traffic, µs. */
  readonly senderCpuUs: number;
  /** The hop's process: the Mandate relay (`relayed`) or the bare forwarder (`tcp-relayed`). */
  readonly relayCpuUs: number;
  readonly receiverCpuUs: number;
}

const cpuNowUs = (): number => {
  const { user, system } = process.cpuUsage();
  return user + system;
};

/**
 * One direction, 16 KiB messages from this process, 1,024 per round (160 in a quick run), at
 * most WINDOW (64) unacknowledged, the receiver acknowledging every ACK_EVERY (16), over:
 *
 * - `direct`: one secure channel `[channel, sink]` to a receiver (router, TCP transport,
 *   SecureChannelListener, sink answering through the channel) in another process;
 * - `relayed`: the same receiver registered at a relay process, the channel running sender →
 *   relay → receiver;
 * - `tls`: one Node TLS 1.3 connection (TLS_AES_256_GCM_SHA384, checked with `getCipher()`) to a
 *   TLS server in another process, each message one `write` of 16 KiB (one TLS record), the
 *   server writing one ack byte per ACK_EVERY messages;
 * - `tcp`: the same over a plain TCP connection;
 * - `tcp-relayed`: the same plain TCP traffic to the same TCP server through a bare forwarder
 *   process, which joins the sender's connection and its own to the server with `socket.pipe`
 *   both ways and parses nothing: what any relay hop costs at least, here.
 *
 * The TLS and TCP sender writes without waiting for each write (Node queues them, as a TLS user's
 * code does); the window bounds what is queued, as it bounds the channel's. Rounds rotate all of
 * them and raw AES-256-GCM encryption of the same 16 KiB (aeadEncrypt, this process); every ratio
 * is taken per round.
 *
 * Throughput is the sender's wall time per message (the ends run in parallel, so the slower one
 * sets the pace). CPU is user + system time of each process that carried the traffic, GC threads
 * included, per message; relayed ÷ direct is what one relay hop costs in CPU, tcp-relayed ÷ tcp
 * what a hop that only moves bytes costs, and the Mandate relay's CPU ÷ the forwarder's how far
 * the relay is from that floor.
 */
async function trafficBenchmarks(): Promise<TableRow[]> {
  const quick = process.env.MANDATE_BENCH_QUICK === '1';
  // Short rounds, many of them: each ratio pairs measurements taken moments apart.
  const rounds = quick ? 1 : 11;
  const count = quick ? 160 : 1024;
  const certificate = selfSignedCertificate('127.0.0.1');
  const world = await benchWorld();
  const direct = PartyProcess.start();
  const relay = PartyProcess.start();
  const relayed = PartyProcess.start();
  const tlsPeer = PartyProcess.start();
  const tcpPeer = PartyProcess.start();
  const forwarder = PartyProcess.start();
  const router = new Router();
  const tcp = new TcpTransport(router);
  const channels: SecureChannel[] = [];
  const sockets: Socket[] = [];
  try {
    const receiver = (relayAt?: number) => ({
      type: 'receiver' as const,
      keys: worldKeys(world, world.bob),
      messageBytes: MESSAGE_BYTES,
      ackEvery: ACK_EVERY,
      ...(relayAt === undefined ? {} : { relay: { port: relayAt, name: RELAY_NAME } }),
    });
    const peer = {
      type: 'peer-receiver' as const,
      messageBytes: MESSAGE_BYTES,
      ackEvery: ACK_EVERY,
    };
    const [directPort, relayPort, tlsPort, tcpPort] = await Promise.all([
      direct.start(receiver()),
      relay.start({ type: 'relay', keys: worldKeys(world, world.relay) }),
      tlsPeer.start({ ...peer, tls: { ...certificate, ciphers: TLS_SUITE } }),
      tcpPeer.start(peer),
    ]);
    const [forwarderPort] = await Promise.all([
      forwarder.start({ type: 'forwarder', targetPort: tcpPort }),
      relayed.start(receiver(relayPort)),
    ]);

    let acked = 0;
    let waiting: { resolve: () => void; reject: (error: Error) => void } | undefined;
    const settle = (error?: Error): void => {
      const w = waiting;
      waiting = undefined;
      if (error === undefined) w?.resolve();
      else w?.reject(error);
    };
    router.registerWorker('bench', {
      handleMessage() {
        acked += ACK_EVERY;
        settle();
      },
    });
    const options = benchChannelOptions(
      world.authorities,
      world.alice,
      ['bench'],
      world.bob.identity.identifier,
    );
    const open = async (route: Route): Promise<SecureChannel> => {
      const channel = await openSecureChannel(router, route, options);
      channels.push(channel);
      return channel;
    };
    const toDirect = await open([
      localAddress(tcp.connect(`127.0.0.1:${directPort}`)),
      localAddress('api'),
    ]);
    const toRelayed = await open([
      localAddress(tcp.connect(`127.0.0.1:${relayPort}`)),
      localAddress(relayAddress(RELAY_NAME)),
      localAddress('api'),
    ]);
    /** A peer connection whose every byte read is one ack of ACK_EVERY messages. */
    const connectPeer = async <S extends Socket>(socket: S, ready: 'connect' | 'secureConnect') => {
      sockets.push(socket);
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.once(ready, () => {
          socket.off('error', reject);
          resolve();
        });
      });
      socket.setNoDelay(true);
      socket.on('data', (chunk: Buffer) => {
        acked += chunk.byteLength * ACK_EVERY;
        settle();
      });
      socket.on('error', (error) => {
        settle(error);
      });
      return socket;
    };
    const toTls = await connectPeer(
      connectTls({
        host: '127.0.0.1',
        port: tlsPort,
        ca: certificate.cert,
        minVersion: 'TLSv1.3',
        maxVersion: 'TLSv1.3',
        ciphers: TLS_SUITE,
      }),
      'secureConnect',
    );
    const negotiated = toTls.getCipher();
    if (toTls.getProtocol() !== 'TLSv1.3' || negotiated.name !== TLS_SUITE)
      throw new Error(
        `the TLS peer negotiated ${toTls.getProtocol() ?? 'nothing'} ${negotiated.name}, not TLSv1.3 ${TLS_SUITE}`,
      );
    const toTcp = await connectPeer(connectTcp({ host: '127.0.0.1', port: tcpPort }), 'connect');
    const toForwarder = await connectPeer(
      connectTcp({ host: '127.0.0.1', port: forwarderPort }),
      'connect',
    );

    const payload = randomBytes(MESSAGE_BYTES);
    const arrival = (): Promise<void> =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(new Error('the traffic run stalled (a frame was dropped?)'));
        }, 20_000);
        waiting = {
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
          reject: (error) => {
            clearTimeout(timer);
            reject(error);
          },
        };
      });
    /** Sends n messages with `send` (awaited when it returns a promise) in the window. */
    const stream = async (send: () => Promise<void> | undefined, n: number): Promise<number> => {
      if (n % ACK_EVERY !== 0) throw new Error(`stream ${n}: not a multiple of ${ACK_EVERY}`);
      acked = 0;
      let sent = 0;
      const start = performance.now();
      while (acked < n) {
        if (sent < n && sent - acked < WINDOW) {
          const pending = send();
          if (pending !== undefined) await pending;
          sent++;
        } else {
          await arrival();
        }
      }
      return performance.now() - start;
    };
    const overChannel = (channel: SecureChannel) => {
      const envelope = {
        onwardRoute: [localAddress(channel.address), localAddress('sink')],
        returnRoute: [localAddress('bench')],
        payload,
      };
      return () => router.send(envelope);
    };
    const overSocket = (socket: Socket) => (): undefined => {
      socket.write(payload);
      return undefined;
    };
    const senders: Record<
      Exclude<Traffic, 'raw'>,
      { send: () => Promise<void> | undefined; far: PartyProcess; hop?: PartyProcess }
    > = {
      direct: { send: overChannel(toDirect), far: direct },
      relayed: { send: overChannel(toRelayed), far: relayed, hop: relay },
      tls: { send: overSocket(toTls), far: tlsPeer },
      tcp: { send: overSocket(toTcp), far: tcpPeer },
      'tcp-relayed': { send: overSocket(toForwarder), far: tcpPeer, hop: forwarder },
    };
    const rawKey = randomBytes(AEAD_KEY_BYTES);
    const rawNonce = new Uint8Array(AEAD_NONCE_BYTES);
    let rawSink = 0;
    const raw = (n: number): number => {
      const start = performance.now();
      for (let i = 0; i < n; i++)
        rawSink ^= aeadEncrypt(AeadAlgorithm.aes256gcm, rawKey, rawNonce, payload).byteLength;
      return performance.now() - start;
    };
    const run = async (traffic: Traffic, n: number): Promise<TrafficRound> => {
      if (traffic === 'raw') {
        const cpu = cpuNowUs();
        const ms = raw(n);
        return {
          usPerMessage: (ms * 1000) / n,
          senderCpuUs: (cpuNowUs() - cpu) / n,
          relayCpuUs: 0,
          receiverCpuUs: 0,
        };
      }
      const { send, far, hop } = senders[traffic];
      const usage = (): Promise<[PartyUsage, PartyUsage | undefined]> =>
        Promise.all([far.usage(), hop?.usage()]);
      const [farBefore, relayBefore] = await usage();
      const cpu = cpuNowUs();
      const ms = await stream(send, n);
      const senderCpu = cpuNowUs() - cpu;
      const [farAfter, relayAfter] = await usage();
      return {
        usPerMessage: (ms * 1000) / n,
        senderCpuUs: senderCpu / n,
        relayCpuUs:
          relayAfter === undefined || relayBefore === undefined
            ? 0
            : (relayAfter.cpuUs - relayBefore.cpuUs) / n,
        receiverCpuUs: (farAfter.cpuUs - farBefore.cpuUs) / n,
      };
    };

    const order: Traffic[] = ['raw', 'direct', 'relayed', 'tls', 'tcp', 'tcp-relayed'];
    for (const traffic of order) await run(traffic, Math.min(count, 512));
    const results = new Map<Traffic, TrafficRound[]>(order.map((t) => [t, []]));
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < order.length; k++) {
        const traffic = order[(round + k) % order.length]!;
        results.get(traffic)!.push(await run(traffic, count));
      }
    }
    if (rawSink === -1) throw new Error('unreachable');
    return trafficRows(results);
  } finally {
    for (const channel of channels) await channel.close();
    for (const socket of sockets) socket.destroy();
    await tcp.close();
    await Promise.all([
      direct.stop(),
      relayed.stop(),
      relay.stop(),
      tlsPeer.stop(),
      tcpPeer.stop(),
      forwarder.stop(),
    ]);
  }
}

function trafficRows(results: ReadonlyMap<Traffic, readonly TrafficRound[]>): TableRow[] {
  const rounds = (t: Traffic): readonly TrafficRound[] => results.get(t)!;
  const cpu = (r: TrafficRound): number => r.senderCpuUs + r.relayCpuUs + r.receiverCpuUs;
  const perRound = <T>(a: Traffic, b: Traffic, f: (x: TrafficRound, y: TrafficRound) => T): T[] =>
    rounds(a).map((x, i) => f(x, rounds(b)[i]!));
  const med = (t: Traffic, f: (r: TrafficRound) => number): number => median(rounds(t).map(f));
  const wall = (r: TrafficRound): number => r.usPerMessage;
  const wallRatio = (a: Traffic, b: Traffic): number =>
    median(perRound(a, b, (x, y) => x.usPerMessage / y.usPerMessage));
  const mbps = (us: number): string => (MESSAGE_BYTES / us).toFixed(0);
  const pct = (x: number): string => `${(100 * x).toFixed(0)}%`;

  const rawUs = med('raw', wall);
  const directUs = med('direct', wall);
  const relayedUs = med('relayed', wall);
  const tlsUs = med('tls', wall);
  const tcpUs = med('tcp', wall);
  const tcpRelayedUs = med('tcp-relayed', wall);
  const directRatio = wallRatio('direct', 'raw');
  const relayedRatio = wallRatio('relayed', 'direct');
  const tlsRatio = wallRatio('direct', 'tls');
  const hopRatio = median(perRound('relayed', 'direct', (x, y) => cpu(x) / cpu(y)));
  const relayShare = median(rounds('relayed').map((r) => r.relayCpuUs / cpu(r)));
  const floorHopRatio = median(perRound('tcp-relayed', 'tcp', (x, y) => cpu(x) / cpu(y)));
  const forwarderShare = median(rounds('tcp-relayed').map((r) => r.relayCpuUs / cpu(r)));
  const relayOverForwarder = median(
    perRound('relayed', 'tcp-relayed', (x, y) => x.relayCpuUs / y.relayCpuUs),
  );
  // The Mandate hop if its relay cost what the forwarder does: same sender and receiver, the
  // relay's CPU swapped for the forwarder's of the same round.
  const hopAtFloor = median(
    rounds('relayed').map((r, i) => {
      const forwarderUs = rounds('tcp-relayed')[i]!.relayCpuUs;
      return (r.senderCpuUs + forwarderUs + r.receiverCpuUs) / cpu(rounds('direct')[i]!);
    }),
  );
  const us = (t: Traffic, f: (r: TrafficRound) => number): string => med(t, f).toFixed(0);
  const cpuParts = (t: Traffic): string =>
    `CPU sender ${us(t, (r) => r.senderCpuUs)} + receiver ${us(t, (r) => r.receiverCpuUs)} µs`;
  const rawLabel = `AES-256-GCM encrypt 16 KiB, aeadEncrypt (${mbps(rawUs)} MB/s)`;
  const tlsLabel = `16 KiB messages, Node TLS 1.3 (${TLS_SUITE}), loopback, receiver in its own process (${mbps(tlsUs)} MB/s; ${cpuParts('tls')})`;
  return [
    {
      what: `16 KiB messages, 1 secure channel, loopback TCP, receiver in its own process (${mbps(directUs)} MB/s, ${pct(1 / directRatio)} of raw)`,
      usPerOp: directUs,
      baseline: rawLabel,
      baselineUsPerOp: rawUs,
      ratio: directRatio,
      target: '≥ 50% of raw MB/s (ratio ≤ 2×)',
    },
    {
      what: `the same through one relay, relay in its own process (${mbps(relayedUs)} MB/s, ${(1 / relayedRatio).toFixed(2)}× direct)`,
      usPerOp: relayedUs,
      baseline: 'direct',
      baselineUsPerOp: directUs,
      ratio: relayedRatio,
      target: '≥ 0.85× direct (ratio ≤ 1.18×)',
    },
    {
      what: `CPU per message, direct: sender ${us('direct', (r) => r.senderCpuUs)} + receiver ${us('direct', (r) => r.receiverCpuUs)} µs`,
      usPerOp: med('direct', cpu),
      baseline: 'CPU per raw AES-GCM encryption',
      baselineUsPerOp: med('raw', (r) => r.senderCpuUs),
      ratio: median(perRound('direct', 'raw', (x, y) => cpu(x) / y.senderCpuUs)),
    },
    {
      what: `CPU per message through one relay: sender ${us('relayed', (r) => r.senderCpuUs)} + relay ${us('relayed', (r) => r.relayCpuUs)} + receiver ${us('relayed', (r) => r.receiverCpuUs)} µs (relay ${pct(relayShare)})`,
      usPerOp: med('relayed', cpu),
      baseline: 'CPU per message, direct',
      baselineUsPerOp: med('direct', cpu),
      ratio: hopRatio,
      target: '≤ 1.15× (one hop)',
    },
    {
      what: tlsLabel,
      usPerOp: tlsUs,
      baseline: rawLabel,
      baselineUsPerOp: rawUs,
      ratio: wallRatio('tls', 'raw'),
      target: 'peer',
    },
    {
      what: `plain TCP, same shape (${mbps(tcpUs)} MB/s; ${cpuParts('tcp')})`,
      usPerOp: tcpUs,
      baseline: 'Node TLS 1.3',
      baselineUsPerOp: tlsUs,
      ratio: wallRatio('tcp', 'tls'),
      target: 'peer',
    },
    {
      what: `plain TCP through a bare forwarder process (socket.pipe) (${mbps(tcpRelayedUs)} MB/s): CPU per message sender ${us('tcp-relayed', (r) => r.senderCpuUs)} + forwarder ${us('tcp-relayed', (r) => r.relayCpuUs)} + receiver ${us('tcp-relayed', (r) => r.receiverCpuUs)} µs (forwarder ${pct(forwarderShare)})`,
      usPerOp: med('tcp-relayed', cpu),
      baseline: 'CPU per message, plain TCP direct',
      baselineUsPerOp: med('tcp', cpu),
      ratio: floorHopRatio,
      target: 'floor of any hop',
    },
    {
      what: `CPU per message of the Mandate relay process against the bare forwarder's (the Mandate hop with the forwarder's CPU in the relay's place: ${hopAtFloor.toFixed(2)}× direct)`,
      usPerOp: med('relayed', (r) => r.relayCpuUs),
      baseline: 'CPU per message of the bare forwarder',
      baselineUsPerOp: med('tcp-relayed', (r) => r.relayCpuUs),
      ratio: relayOverForwarder,
    },
    {
      what: `Mandate channel bytes/s against TLS 1.3's (${(1 / tlsRatio).toFixed(2)}× TLS's)`,
      usPerOp: directUs,
      baseline: 'Node TLS 1.3',
      baselineUsPerOp: tlsUs,
      ratio: tlsRatio,
      target: "≥ 1.0× TLS's rate (ratio ≤ 1×)",
    },
  ];
}

// --- memory: 1,000 channels through one relay --------------------------------------------------

/**
 * Opens 1,000 channels (100 in a quick run), 100 at a time, each from an initiator with its own
 * router and TCP connection to the relay, through the relay to one responder registered there;
 * relay and responder are processes of their own and report heap and rss (after full
 * collections) before and after, with every channel open. µs is the wall time to open one
 * channel (TCP connect and the full identity handshake through the relay), 100 at a time.
 */
async function relayMemoryBenchmark(): Promise<TableRow> {
  const quick = process.env.MANDATE_BENCH_QUICK === '1';
  const channelCount = quick ? 100 : 1000;
  const batch = 100;
  const world = await benchWorld();
  const relay = PartyProcess.start();
  const responder = PartyProcess.start();
  const initiators: { router: Router; tcp: TcpTransport }[] = [];
  const channels: SecureChannel[] = [];
  try {
    const relayPort = await relay.start({ type: 'relay', keys: worldKeys(world, world.relay) });
    await responder.start({
      type: 'receiver',
      keys: worldKeys(world, world.bob),
      messageBytes: MESSAGE_BYTES,
      ackEvery: ACK_EVERY,
      relay: { port: relayPort, name: RELAY_NAME },
    });
    const options = benchChannelOptions(
      world.authorities,
      world.alice,
      [],
      world.bob.identity.identifier,
    );
    const openOne = async (): Promise<void> => {
      const router = new Router();
      const tcp = new TcpTransport(router);
      initiators.push({ router, tcp });
      channels.push(
        await openSecureChannel(
          router,
          [
            localAddress(tcp.connect(`127.0.0.1:${relayPort}`)),
            localAddress(relayAddress(RELAY_NAME)),
            localAddress('api'),
          ],
          options,
        ),
      );
    };
    // One channel first, so code and caches are warm before the baseline.
    await openOne();
    const [relayBefore, responderBefore] = await Promise.all([
      relay.usage(true),
      responder.usage(true),
    ]);
    const start = performance.now();
    for (let opened = 0; opened < channelCount; opened += batch) {
      const n = Math.min(batch, channelCount - opened);
      await Promise.all(Array.from({ length: n }, openOne));
    }
    const usPerOp = ((performance.now() - start) * 1000) / channelCount;
    const [relayAfter, responderAfter] = await Promise.all([
      relay.usage(true),
      responder.usage(true),
    ]);
    if (responderAfter.channels !== channelCount + 1) throw new Error('a channel did not open');
    const kb = (after: number, before: number): string =>
      ((after - before) / channelCount / 1000).toFixed(1);
    const side = (name: string, before: PartyUsage, after: PartyUsage): string =>
      `${name} ${kb(after.heapUsed, before.heapUsed)} KB heap + ${kb(after.arrayBuffers, before.arrayBuffers)} KB buffers (${kb(after.rss, before.rss)} KB rss)`;
    return {
      what: `${channelCount.toLocaleString('en-US')} channels through one relay, per channel after GC: ${side('relay', relayBefore, relayAfter)}, ${side('responder', responderBefore, responderAfter)}; µs = open one, ${batch} at a time`,
      usPerOp,
      target: 'memory reported',
    };
  } finally {
    for (const channel of channels) await channel.close();
    await Promise.all(initiators.map(({ tcp }) => tcp.close()));
    await Promise.all([responder.stop(), relay.stop()]);
  }
}

const invokedDirectly =
  process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (invokedDirectly) {
  const parts = process.argv
    .slice(2)
    .filter((a): a is ChannelBenchPart => a === 'handshake' || a === 'traffic' || a === 'memory');
  const rows = await channelBenchmarks(parts.length === 0 ? undefined : parts);
  printTable(rows);
  if (process.argv.includes('--markdown')) console.log(`\n${markdownTable(rows)}`);
}
