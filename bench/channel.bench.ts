/**
 * Secure-channel benchmarks, each against a baseline measured in the same run:
 *
 * - the bare Noise XX handshake (both sides, no payloads) against noise-handshake, the Noise
 *   library hypercore uses (libsodium underneath; its suite is ChaChaPoly + BLAKE2b, only the
 *   curve can be swapped), plus the handshake's own DH floor;
 * - the full mutual ChannelHandshake (identities, one credential each side, peers verified)
 *   against the raw cost of its X25519, AES-GCM and Ed25519 operations timed alone;
 * - the throughput of 16 KiB messages over one secure channel on loopback TCP against raw
 *   AES-256-GCM encryption of 16 KiB;
 * - the memory one channel costs, over the memory transport.
 */
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
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
import {
  ChannelHandshake,
  createHandshake,
  encodeIdentityPayload,
  NoiseSuite,
  openSecureChannel,
  SecureChannelListener,
  staticKeyFromSecret,
  TrustPolicies,
  type SecureChannel,
  type SecureChannelOptions,
} from '../src/channel/index.js';
import {
  constraintsToAttributes,
  issueCredential,
  parseConstraint,
  type CredentialIssuer,
} from '../src/credentials/index.js';
import {
  attestPurposeKey,
  Identities,
  MemoryIdentityRepository,
  Purpose,
  type Identifier,
  type VerifiedIdentity,
} from '../src/identity/index.js';
import {
  localAddress,
  MemoryNetwork,
  MemoryTransport,
  Router,
  TcpTransport,
} from '../src/routing/index.js';
import { MemoryVault } from '../src/vault/index.js';
import { group, median, type TableRow } from './harness.js';

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

export async function channelBenchmarks(): Promise<TableRow[]> {
  return [
    ...(await bareHandshakeBenchmarks()),
    ...(await fullHandshakeBenchmarks()),
    await throughputBenchmark(),
    await memoryBenchmark(),
  ];
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
  const theirs = (): void => {
    const initiator = new NoiseHandshake('XX', true);
    const responder = new NoiseHandshake('XX', false);
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

// --- the full channel handshake, throughput and memory ------------------------------------------

const NOW = 1_800_000_000;
const MESSAGE_BYTES = 16 * 1024;
/** Messages in flight at once in the throughput run. */
const WINDOW = 64;

interface BenchParty {
  readonly identity: VerifiedIdentity;
  readonly staticSecret: Uint8Array;
  /** The identity payload: change history, secure-channel attestation, one credential. */
  readonly payload: Uint8Array;
}

interface BenchWorld {
  readonly authorities: ReadonlyMap<Identifier, VerifiedIdentity>;
  readonly alice: BenchParty;
  readonly bob: BenchParty;
}

/** Two identities with a one-change history, an attested X25519 key and one credential each. */
async function benchWorld(): Promise<BenchWorld> {
  const vault = new MemoryVault();
  const identities = new Identities({
    vault,
    repository: new MemoryIdentityRepository(),
    clock: { nowSeconds: () => NOW },
  });
  const authorityLocal = await identities.create({ name: 'authority' });
  const authorityKey = await identities.purposeKey('authority', Purpose.credentials);
  const authority: CredentialIssuer = {
    identity: authorityLocal.identity,
    credentialKeyId: authorityKey.keyId,
    credentialKeyAttestation: authorityKey.verified.attestation,
  };
  const party = async (name: string): Promise<BenchParty> => {
    const keyPair = generateX25519KeyPair();
    const local = await identities.create({ name, purposeKeys: false });
    const attestation = await attestPurposeKey(
      vault,
      local.identity,
      local.primaryKeyId,
      { purpose: Purpose.secureChannel, x25519: keyPair.publicKey },
      { nowSeconds: NOW },
    );
    const credential = await issueCredential(
      vault,
      authority,
      local.identity,
      constraintsToAttributes(new Map([parseConstraint('tools=read_orders')])),
      { nowSeconds: NOW },
    );
    return {
      identity: local.identity,
      staticSecret: keyPair.secretKey,
      payload: encodeIdentityPayload({
        changeHistory: local.identity.changeHistory,
        secureChannelAttestation: attestation,
        credentials: [credential],
        chains: [],
      }),
    };
  };
  return {
    authorities: new Map([[authorityLocal.identity.identifier, authorityLocal.identity]]),
    alice: await party('alice'),
    bob: await party('bob'),
  };
}

function channelOptions(
  world: BenchWorld,
  self: BenchParty,
  peer: BenchParty,
  deliverTo: readonly string[],
): SecureChannelOptions {
  return {
    staticKey: staticKeyFromSecret(self.staticSecret),
    identityPayload: self.payload,
    verify: {
      authorities: world.authorities,
      trustPolicy: TrustPolicies.all(
        TrustPolicies.identifier(peer.identity.identifier),
        TrustPolicies.credentialHolder(),
      ),
    },
    clock: { nowSeconds: () => NOW + 1 },
    deliverTo,
  };
}

async function fullHandshakeBenchmarks(): Promise<TableRow[]> {
  const world = await benchWorld();
  const { alice, bob } = world;
  const aliceKey = staticKeyFromSecret(alice.staticSecret);
  const bobKey = staticKeyFromSecret(bob.staticSecret);
  const verify = {
    nowSeconds: NOW + 1,
    authorities: world.authorities,
    trustPolicy: TrustPolicies.credentialHolder(),
  };
  const full = (): void => {
    const a = new ChannelHandshake({
      initiator: true,
      staticKey: aliceKey,
      identityPayload: alice.payload,
      generateEphemeral: generateX25519KeyPair,
      verify,
    });
    const b = new ChannelHandshake({
      initiator: false,
      staticKey: bobKey,
      identityPayload: bob.payload,
      generateEphemeral: generateX25519KeyPair,
      verify,
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
  full();
  floor();

  const results = await group('channel-handshake')
    .add('full', full, {
      label: 'ChannelHandshake XX, both sides: identities + 1 credential each, peers verified',
    })
    .add('floor', floor, {
      label: `its crypto alone: X25519 2 keygens + 6 DH, AES-GCM 4 seal+open (s ×2, payloads ${alice.payload.byteLength}/${bob.payload.byteLength} B), Ed25519 8 verifies; SHA-256/HMAC/HKDF left out`,
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
  ];
}

/**
 * One direction, 16 KiB messages through `[channel, sink]` over loopback TCP, at most WINDOW
 * unacknowledged by the sink; both ends run in this process (and on this thread). Rounds
 * alternate with raw AES-256-GCM encryption of the same 16 KiB, and the ratio is taken per round.
 */
async function throughputBenchmark(): Promise<TableRow> {
  const quick = process.env.MANDATE_BENCH_QUICK === '1';
  const rounds = quick ? 1 : 5;
  const count = quick ? 200 : 2000;
  const world = await benchWorld();
  const server = new Router();
  const serverTcp = new TcpTransport(server);
  const client = new Router();
  const clientTcp = new TcpTransport(client);
  let received = 0;
  let wake: (() => void) | undefined;
  server.registerWorker('sink', {
    handleMessage(_ctx, envelope) {
      if (envelope.payload.byteLength !== MESSAGE_BYTES) throw new Error('wrong message size');
      received++;
      const w = wake;
      wake = undefined;
      w?.();
    },
  });
  const listener = new SecureChannelListener(
    server,
    channelOptions(world, world.bob, world.alice, ['sink']),
  );
  server.allowFromAnyConnection('api');
  let channel: SecureChannel | undefined;
  try {
    const { port } = await serverTcp.listen({ host: '127.0.0.1', port: 0 });
    const connection = clientTcp.connect(`127.0.0.1:${port}`);
    channel = await openSecureChannel(
      client,
      [localAddress(connection), localAddress('api')],
      channelOptions(world, world.alice, world.bob, []),
    );
    const payload = randomBytes(MESSAGE_BYTES);
    const envelope = {
      onwardRoute: [localAddress(channel.address), localAddress('sink')],
      returnRoute: [localAddress('bench')],
      payload,
    };
    const arrival = (): Promise<void> =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(new Error('the throughput run stalled (a frame was dropped?)'));
        }, 10_000);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    const stream = async (n: number): Promise<number> => {
      const base = received;
      let sent = 0;
      const start = performance.now();
      while (received - base < n) {
        if (sent < n && sent - (received - base) < WINDOW) {
          await client.send(envelope);
          sent++;
        } else {
          await arrival();
        }
      }
      return ((performance.now() - start) * 1000) / n;
    };
    const rawKey = randomBytes(AEAD_KEY_BYTES);
    const rawNonce = new Uint8Array(AEAD_NONCE_BYTES);
    let rawSink = 0;
    const raw = (n: number): number => {
      const start = performance.now();
      for (let i = 0; i < n; i++)
        rawSink ^= aeadEncrypt(AeadAlgorithm.aes256gcm, rawKey, rawNonce, payload).byteLength;
      return ((performance.now() - start) * 1000) / n;
    };
    await stream(Math.min(count, 500));
    raw(Math.min(count, 500));
    const channelUs: number[] = [];
    const rawUs: number[] = [];
    for (let round = 0; round < rounds; round++) {
      if (round % 2 === 0) {
        channelUs.push(await stream(count));
        rawUs.push(raw(count));
      } else {
        rawUs.push(raw(count));
        channelUs.push(await stream(count));
      }
    }
    if (rawSink === -1) throw new Error('unreachable');
    const usPerOp = median(channelUs);
    const baselineUsPerOp = median(rawUs);
    const ratio = median(channelUs.map((v, i) => v / rawUs[i]!));
    const mbps = (us: number): string => (MESSAGE_BYTES / us).toFixed(0);
    return {
      what: `16 KiB messages over 1 secure channel, loopback TCP, one direction, ${WINDOW} in flight, both ends on one thread (${mbps(usPerOp)} MB/s, ${(100 / ratio).toFixed(0)}% of raw)`,
      usPerOp,
      baseline: `AES-256-GCM encrypt 16 KiB, aeadEncrypt (${mbps(baselineUsPerOp)} MB/s)`,
      baselineUsPerOp,
      ratio,
      target: '≥ 50% of raw MB/s (ratio ≤ 2×)',
    };
  } finally {
    await channel?.close();
    await listener.close();
    await clientTcp.close();
    await serverTcp.close();
  }
}

/** global.gc when node runs with --expose-gc, else the same function exposed at run time. */
function findGc(): (() => void) | undefined {
  const exposed: unknown = Reflect.get(globalThis, 'gc');
  const fn: unknown = typeof exposed === 'function' ? exposed : exposeGcNow();
  if (typeof fn !== 'function') return undefined;
  return () => {
    Reflect.apply(fn, undefined, []);
  };
}

function exposeGcNow(): unknown {
  try {
    setFlagsFromString('--expose-gc');
    return runInNewContext('gc');
  } catch {
    return undefined;
  }
}

function memoryNow(gc: (() => void) | undefined): { heapUsed: number; rss: number } {
  gc?.();
  gc?.();
  const { heapUsed, rss } = process.memoryUsage();
  return { heapUsed, rss };
}

/**
 * Opens 1,000 channels (100 in a quick run), in batches below the listener's handshake limit,
 * from one router directly to one listener over the memory transport (no relay hop), and keeps
 * them open while the heap is measured. Both ends of every channel live in this process,
 * so the figure is a whole channel: two ends, four workers, their routing entries.
 */
async function memoryBenchmark(): Promise<TableRow> {
  const quick = process.env.MANDATE_BENCH_QUICK === '1';
  const channelCount = quick ? 100 : 1000;
  const batch = 100;
  const gc = findGc();
  const world = await benchWorld();
  const network = new MemoryNetwork();
  const server = new Router();
  const serverTransport = new MemoryTransport(server, network);
  serverTransport.listen('server');
  const client = new Router();
  const clientTransport = new MemoryTransport(client, network);
  const listener = new SecureChannelListener(
    server,
    channelOptions(world, world.bob, world.alice, []),
  );
  server.allowFromAnyConnection('api');
  const route = [localAddress(clientTransport.connect('server')), localAddress('api')];
  const options = channelOptions(world, world.alice, world.bob, []);
  const channels: SecureChannel[] = [];
  try {
    // One channel first, so code and caches are warm before the baseline.
    channels.push(await openSecureChannel(client, route, options));
    const before = memoryNow(gc);
    const start = performance.now();
    for (let opened = 0; opened < channelCount; opened += batch) {
      const n = Math.min(batch, channelCount - opened);
      channels.push(
        ...(await Promise.all(
          Array.from({ length: n }, () => openSecureChannel(client, route, options)),
        )),
      );
    }
    const usPerOp = ((performance.now() - start) * 1000) / channelCount;
    const after = memoryNow(gc);
    if (listener.channelCount !== channelCount + 1) throw new Error('a channel did not open');
    const per = (a: number, b: number): string =>
      Math.round((a - b) / channelCount).toLocaleString('en-US');
    return {
      what: `${channelCount.toLocaleString('en-US')} channels directly to one listener over the memory transport (no relay hop), both ends in-process: ${per(after.heapUsed, before.heapUsed)} B heap + ${per(after.rss, before.rss)} B rss per channel, ${gc === undefined ? 'no gc available' : 'after gc'}; µs = open one channel (100 at a time)`,
      usPerOp,
      target: 'none',
    };
  } finally {
    await listener.close();
    await clientTransport.close();
    await serverTransport.close();
  }
}
