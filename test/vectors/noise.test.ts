import { describe, expect, it } from 'vitest';
import { list, readVectorJson, record, text } from '../helpers/vectors.js';
import {
  NoiseSuite,
  createHandshake,
  staticKeyFromSecret,
  type NoiseHandshake,
  type NoiseKeyPair,
} from '../../src/channel/noise.js';
import { x25519PublicKey } from '../../src/crypto/index.js';
import { fromHex, toHex } from '../../src/encoding/index.js';

interface NoiseVector {
  readonly source: string;
  readonly suite: NoiseSuite;
  readonly initPrologue: Uint8Array;
  readonly respPrologue: Uint8Array;
  readonly initStatic: string;
  readonly initEphemeral: string;
  readonly respStatic: string;
  readonly respEphemeral: string;
  readonly handshakeHash: string;
  readonly messages: readonly { readonly payload: string; readonly ciphertext: string }[];
}

const isSuite = (value: string): value is NoiseSuite =>
  Object.values<string>(NoiseSuite).includes(value);

// cacophony (vectors/cacophony.txt) names the suite `protocol_name`, noise-c (tests/vector/
// noise-c-basic.txt) `name`; otherwise the structure is shared. Provenance: vectors/README.md.
function load(file: string): NoiseVector[] {
  return list(record(readVectorJson(file), file).vectors, 'vectors').map((raw, i) => {
    const v = record(raw, `${file} vector ${i}`);
    const suite = text(v.protocol_name ?? v.name, 'protocol name');
    if (!isSuite(suite)) throw new Error(`unexpected suite ${suite}`);
    return {
      source: file,
      suite,
      initPrologue: fromHex(text(v.init_prologue, 'init_prologue')),
      respPrologue: fromHex(text(v.resp_prologue, 'resp_prologue')),
      initStatic: text(v.init_static, 'init_static'),
      initEphemeral: text(v.init_ephemeral, 'init_ephemeral'),
      respStatic: text(v.resp_static, 'resp_static'),
      respEphemeral: text(v.resp_ephemeral, 'resp_ephemeral'),
      handshakeHash: text(v.handshake_hash, 'handshake_hash'),
      messages: list(v.messages, 'messages').map((m) => {
        const message = record(m, 'message');
        return {
          payload: text(message.payload, 'payload'),
          ciphertext: text(message.ciphertext, 'ciphertext'),
        };
      }),
    };
  });
}

const vectors = [
  ...load('noise/cacophony-XX_25519_SHA256.json'),
  ...load('noise/noise-c-basic-XX_25519_SHA256.json'),
];

/** The vector's fixed ephemeral, handed out once (a second call would be a bug). */
function fixedEphemeral(secretHex: string): () => NoiseKeyPair {
  let used = false;
  return () => {
    if (used) throw new Error('ephemeral requested twice');
    used = true;
    const secretKey = fromHex(secretHex);
    return { publicKey: x25519PublicKey(secretKey), secretKey };
  };
}

function handshakeFor(v: NoiseVector, initiator: boolean): NoiseHandshake {
  return createHandshake({
    initiator,
    suite: v.suite,
    prologue: initiator ? v.initPrologue : v.respPrologue,
    staticKey: staticKeyFromSecret(fromHex(initiator ? v.initStatic : v.respStatic)),
    generateEphemeral: fixedEphemeral(initiator ? v.initEphemeral : v.respEphemeral),
  });
}

// Senders alternate through the whole file, transport messages included: the initiator sends
// messages 1, 3 and 5 (indexes 0, 2, 4), the responder 2, 4 and 6.
const sentByInitiator = (index: number): boolean => index % 2 === 0;
const EMPTY = new Uint8Array(0);

/**
 * Runs one role alone against the file: it must write its own messages byte for byte and read the
 * peer's (the file's bytes, never our other side's), then do the same with transport messages.
 */
function playRole(v: NoiseVector, initiator: boolean): void {
  const handshake = handshakeFor(v, initiator);
  for (const [i, m] of v.messages.slice(0, 3).entries()) {
    if (sentByInitiator(i) === initiator)
      expect(toHex(handshake.writeMessage(fromHex(m.payload))), `message ${i + 1}`).toBe(
        m.ciphertext,
      );
    else
      expect(toHex(handshake.readMessage(fromHex(m.ciphertext))), `payload ${i + 1}`).toBe(
        m.payload,
      );
  }
  expect(handshake.complete).toBe(true);
  expect(toHex(handshake.handshakeHash)).toBe(v.handshakeHash);
  const peerStatic = x25519PublicKey(fromHex(initiator ? v.respStatic : v.initStatic));
  expect(toHex(handshake.remoteStaticKey!)).toBe(toHex(peerStatic));

  const { send, receive } = handshake.split();
  // The same messages again through the explicit-nonce API, on copies of the fresh states.
  const sendAt = send.clone();
  const receiveAt = receive.clone();
  let sent = 0n;
  let received = 0n;
  for (const [i, m] of v.messages.slice(3).entries()) {
    const what = `message ${i + 4}`;
    if (sentByInitiator(i + 3) === initiator) {
      expect(toHex(send.encryptWithAd(EMPTY, fromHex(m.payload))), what).toBe(m.ciphertext);
      expect(toHex(sendAt.encryptAt(sent++, EMPTY, fromHex(m.payload))), what).toBe(m.ciphertext);
    } else {
      expect(toHex(receive.decryptWithAd(EMPTY, fromHex(m.ciphertext))), what).toBe(m.payload);
      expect(toHex(receiveAt.decryptAt(received++, EMPTY, fromHex(m.ciphertext))), what).toBe(
        m.payload,
      );
    }
  }
  expect([send.nonce, receive.nonce]).toStrictEqual([sent, received]);
}

describe('Noise XX vectors (cacophony, noise-c)', () => {
  it('loads the four XX vectors, two per suite, each with 3 handshake and 3 transport messages', () => {
    expect(vectors.map((v) => v.suite).sort()).toStrictEqual([
      NoiseSuite.aesGcm,
      NoiseSuite.aesGcm,
      NoiseSuite.chaChaPoly,
      NoiseSuite.chaChaPoly,
    ]);
    for (const v of vectors) expect(v.messages).toHaveLength(6);
  });

  describe.each(vectors.map((v) => [`${v.source} ${v.suite}`, v] as const))('%s', (_, v) => {
    it('initiator: messages 1 and 3 byte for byte, reads 2, handshake hash, transport 4-6', () => {
      playRole(v, true);
    });

    it('responder: message 2 byte for byte, reads 1 and 3, handshake hash, transport 4-6', () => {
      playRole(v, false);
    });

    it('both sides together agree end to end (our writer feeding our reader)', () => {
      const initiator = handshakeFor(v, true);
      const responder = handshakeFor(v, false);
      for (const [i, m] of v.messages.slice(0, 3).entries()) {
        const [writer, reader] = sentByInitiator(i)
          ? [initiator, responder]
          : [responder, initiator];
        expect(toHex(reader.readMessage(writer.writeMessage(fromHex(m.payload))))).toBe(m.payload);
      }
      const a = initiator.split();
      const b = responder.split();
      for (const [i, m] of v.messages.slice(3).entries()) {
        const [from, to] = sentByInitiator(i + 3) ? [a, b] : [b, a];
        const ciphertext = from.send.encryptWithAd(EMPTY, fromHex(m.payload));
        expect(toHex(ciphertext)).toBe(m.ciphertext);
        expect(toHex(to.receive.decryptWithAd(EMPTY, ciphertext))).toBe(m.payload);
      }
    });
  });
});
