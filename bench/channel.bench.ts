/**
 * The bare Noise XX handshake (both sides, no payloads) against noise-handshake, the Noise library
 * hypercore uses (libsodium underneath; its suite is ChaChaPoly + BLAKE2b, only the curve can be
 * swapped), measured in the same run, plus the handshake's own DH floor.
 */
import { createRequire } from 'node:module';
import {
  generateX25519KeyPair,
  generateX25519KeyPairInto,
  x25519Into,
} from '../src/crypto/index.js';
import { createHandshake, NoiseSuite, staticKeyFromSecret } from '../src/channel/index.js';
import { group, type TableRow } from './harness.js';

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
