import { pureJsCrypto } from '@chainsafe/libp2p-noise';
import { Uint8ArrayList } from 'uint8arraylist';
import { describe, expect, it } from 'vitest';
import { expectCode } from '../helpers/errors.js';
// js-libp2p-noise's pure XX state machine (protocol.ts) is not in the package's exports map, so
// its built file is imported by path; `uint8arraylist` is that package's own dependency.
import { XXHandshakeState } from '../../node_modules/@chainsafe/libp2p-noise/dist/src/protocol.js';
import type { ICrypto } from '../../node_modules/@chainsafe/libp2p-noise/dist/src/types.js';
import {
  NoiseSuite,
  createHandshake,
  staticKeyFromSecret,
  type NoiseHandshake,
  type TransportCipherStates,
} from '../../src/channel/noise.js';
import { generateX25519KeyPair } from '../../src/crypto/index.js';
import { toHex } from '../../src/encoding/index.js';

// libp2p's crypto is pure JS (@noble): none of it shares code with Mandate's libsodium/OpenSSL.
const nobleCrypto: ICrypto = {
  generateKeypair: () => pureJsCrypto.generateX25519KeyPair(),
  dh: (keyPair, publicKey) =>
    pureJsCrypto.generateX25519SharedKey(keyPair.privateKey, publicKey).subarray(0, 32),
  encrypt: (plaintext, nonce, ad, k) =>
    pureJsCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, k),
  decrypt: (ciphertext, nonce, ad, k, dst) =>
    pureJsCrypto.chaCha20Poly1305Decrypt(ciphertext, nonce, ad, k, dst),
  hash: (data) => pureJsCrypto.hashSHA256(data),
  hkdf: (ck, ikm) => pureJsCrypto.getHKDF(ck, ikm),
};

const PROLOGUE = new TextEncoder().encode('mandate interop');
const EMPTY = new Uint8Array(0);
const text = (value: string): Uint8Array => new TextEncoder().encode(value);
const flat = (bytes: Uint8Array | Uint8ArrayList): Uint8Array => bytes.subarray();

function libp2pSide(initiator: boolean): XXHandshakeState {
  return new XXHandshakeState({
    crypto: nobleCrypto,
    protocolName: NoiseSuite.chaChaPoly,
    initiator,
    prologue: PROLOGUE,
    s: pureJsCrypto.generateX25519KeyPair(),
  });
}

function mandateSide(initiator: boolean): { handshake: NoiseHandshake; publicKey: Uint8Array } {
  const staticKey = staticKeyFromSecret(generateX25519KeyPair().secretKey);
  return {
    publicKey: staticKey.publicKey,
    handshake: createHandshake({
      initiator,
      suite: NoiseSuite.chaChaPoly,
      prologue: PROLOGUE,
      staticKey,
      generateEphemeral: generateX25519KeyPair,
    }),
  };
}

/**
 * Transport both ways against libp2p's counter: Mandate alternates its counter API and explicit
 * nonces (moving its counter past each explicit one, as libp2p's counter moves on).
 */
function exchangeTransport(
  ours: TransportCipherStates,
  theirs: { encrypt: (p: Uint8Array) => Uint8Array; decrypt: (c: Uint8Array) => Uint8Array },
): void {
  for (let i = 0; i < 6; i++) {
    const n = BigInt(i);
    const explicit = i % 2 === 1;
    const there = text(`mandate -> libp2p ${i}`);
    const sealed = explicit
      ? ours.send.encryptAt(n, EMPTY, there)
      : ours.send.encryptWithAd(EMPTY, there);
    ours.send.setNonce(n + 1n);
    expect(theirs.decrypt(sealed)).toStrictEqual(there);

    const back = text(`libp2p -> mandate ${i}`);
    const reply = theirs.encrypt(back);
    const opened = explicit
      ? ours.receive.decryptAt(n, EMPTY, reply)
      : ours.receive.decryptWithAd(EMPTY, reply);
    ours.receive.setNonce(n + 1n);
    expect(opened).toStrictEqual(back);
  }
}

describe('interop with @chainsafe/libp2p-noise XXHandshakeState (Noise_XX_25519_ChaChaPoly_SHA256)', () => {
  it('Mandate initiator, libp2p responder', () => {
    const mandate = mandateSide(true);
    const libp2p = libp2pSide(false);
    expect(
      flat(libp2p.readMessageA(new Uint8ArrayList(mandate.handshake.writeMessage(text('1'))))),
    ).toStrictEqual(text('1'));
    expect(mandate.handshake.readMessage(flat(libp2p.writeMessageB(text('2'))))).toStrictEqual(
      text('2'),
    );
    expect(
      flat(libp2p.readMessageC(new Uint8ArrayList(mandate.handshake.writeMessage(text('3'))))),
    ).toStrictEqual(text('3'));

    expect(mandate.handshake.complete).toBe(true);
    expect(toHex(mandate.handshake.handshakeHash)).toBe(toHex(libp2p.ss.h));
    expect(mandate.handshake.remoteStaticKey).toStrictEqual(libp2p.s!.publicKey);
    expect(flat(libp2p.rs!)).toStrictEqual(mandate.publicKey);

    // Standard Split: the initiator sends with the first cipher state.
    const [c1, c2] = libp2p.ss.split();
    exchangeTransport(mandate.handshake.split(), {
      encrypt: (p) => flat(c2.encryptWithAd(EMPTY, p)),
      decrypt: (c) => flat(c1.decryptWithAd(EMPTY, c)),
    });
  });

  it('libp2p initiator, Mandate responder', () => {
    const libp2p = libp2pSide(true);
    const mandate = mandateSide(false);
    expect(mandate.handshake.readMessage(flat(libp2p.writeMessageA(text('a'))))).toStrictEqual(
      text('a'),
    );
    expect(
      flat(libp2p.readMessageB(new Uint8ArrayList(mandate.handshake.writeMessage(text('b'))))),
    ).toStrictEqual(text('b'));
    expect(mandate.handshake.readMessage(flat(libp2p.writeMessageC(text('c'))))).toStrictEqual(
      text('c'),
    );

    expect(mandate.handshake.complete).toBe(true);
    expect(toHex(mandate.handshake.handshakeHash)).toBe(toHex(libp2p.ss.h));
    expect(mandate.handshake.remoteStaticKey).toStrictEqual(libp2p.s!.publicKey);
    expect(flat(libp2p.rs!)).toStrictEqual(mandate.publicKey);

    const [c1, c2] = libp2p.ss.split();
    exchangeTransport(mandate.handshake.split(), {
      encrypt: (p) => flat(c1.encryptWithAd(EMPTY, p)),
      decrypt: (c) => flat(c2.decryptWithAd(EMPTY, c)),
    });
  });

  it('a message 2 from libp2p that was tampered with is refused and the honest one still works', () => {
    const mandate = mandateSide(true);
    const libp2p = libp2pSide(false);
    libp2p.readMessageA(new Uint8ArrayList(mandate.handshake.writeMessage()));
    const message2 = flat(libp2p.writeMessageB(text('payload')));
    const tampered = message2.slice();
    tampered[50]! ^= 0x10;
    expectCode(() => mandate.handshake.readMessage(tampered), 'ERR_NOISE_DECRYPT_FAILED');
    expect(mandate.handshake.readMessage(message2)).toStrictEqual(text('payload'));
  });
});
