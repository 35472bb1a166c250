import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { generateX25519KeyPair } from '../crypto/index.js';
import { codeOf } from '../../test/helpers/errors.js';
import {
  createHandshake,
  NoiseSuite,
  OCKAM_PROTOCOL_NAME,
  SplitOrder,
  staticKeyFromSecret,
} from './noise.js';
import { ChannelDecryptor, ChannelEncryptor } from './transport-cipher.js';

function channel() {
  const common = {
    suite: NoiseSuite.aesGcm,
    generateEphemeral: generateX25519KeyPair,
    protocolName: OCKAM_PROTOCOL_NAME,
    splitOrder: SplitOrder.reversed,
  };
  const i = createHandshake({
    ...common,
    initiator: true,
    staticKey: staticKeyFromSecret(generateX25519KeyPair().secretKey),
  });
  const r = createHandshake({
    ...common,
    initiator: false,
    staticKey: staticKeyFromSecret(generateX25519KeyPair().secretKey),
  });
  r.readMessage(i.writeMessage());
  i.readMessage(r.writeMessage());
  r.readMessage(i.writeMessage());
  const a = i.split();
  const b = r.split();
  return {
    /** Another encryptor with the same key and nonces as `send`. */
    twin: new ChannelEncryptor(a.send.clone()),
    send: new ChannelEncryptor(a.send),
    receive: new ChannelDecryptor(b.receive),
    back: new ChannelEncryptor(b.send),
    backReceive: new ChannelDecryptor(a.receive),
  };
}

const text = (n: number): Uint8Array => new TextEncoder().encode(`message ${n}`);

describe('channel transport frames', () => {
  it('carries messages in order across many rekeys, both ways', () => {
    const c = channel();
    for (let n = 0; n < 200; n++) {
      expect(c.receive.decrypt(c.send.encrypt(text(n)))).toEqual(text(n));
      expect(c.backReceive.decrypt(c.back.encrypt(text(n)))).toEqual(text(n));
    }
  });

  it('accepts reordering within the window, across a rekey, each nonce once', () => {
    const c = channel();
    const frames = Array.from({ length: 80 }, (_, n) => c.send.encrypt(text(n)));
    // Deliver in blocks of 20, each block reversed: at most 19 behind, crossing epochs 0 → 1 → 2.
    const order = [...Array(4).keys()].flatMap((b) =>
      [...Array(20).keys()].map((k) => b * 20 + 19 - k),
    );
    for (const n of order) expect(c.receive.decrypt(frames[n]!)).toEqual(text(n));
    for (const n of [0, 40, 79])
      expect(codeOf(() => c.receive.decrypt(frames[n]!))).toBe('ERR_CHANNEL_REPLAY');
  });

  it('seals a message given in pieces, after headroom, as the same frame (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 4 }), {
          minLength: 1,
          maxLength: 70,
        }),
        fc.nat(12),
        (messages, headroom) => {
          const c = channel();
          // 70 messages cross two rekeys (every 32): both encryptors rekey alike.
          for (const pieces of messages) {
            const whole = Buffer.concat(pieces);
            const frame = c.send.encrypt(whole);
            const framed = c.twin.encrypt(pieces, headroom);
            expect(framed.subarray(0, headroom)).toStrictEqual(new Uint8Array(headroom));
            expect(framed.subarray(headroom)).toStrictEqual(frame);
            expect(c.receive.decrypt(framed.subarray(headroom))).toEqual(new Uint8Array(whole));
          }
          expect(c.twin.sent).toBe(c.send.sent);
        },
      ),
      { numRuns: 30 },
    );
    expect(codeOf(() => channel().send.encrypt(text(0), -1))).toBe('ERR_ARGUMENT_INVALID');
  });

  it('refuses too old, too far ahead and malformed frames', () => {
    const c = channel();
    const frames = Array.from({ length: 100 }, (_, n) => c.send.encrypt(text(n)));
    expect(codeOf(() => c.receive.decrypt(frames[40]!))).toBe('ERR_CHANNEL_REPLAY'); // ahead of the start
    c.receive.decrypt(frames[30]!);
    c.receive.decrypt(frames[60]!);
    expect(codeOf(() => c.receive.decrypt(frames[27]!))).toBe('ERR_CHANNEL_REPLAY'); // 33 behind
    expect(codeOf(() => c.receive.decrypt(frames[93]!))).toBe('ERR_CHANNEL_REPLAY'); // 33 ahead
    expect(c.receive.decrypt(frames[28]!)).toEqual(text(28)); // 32 behind: still in the window
    expect(codeOf(() => c.receive.decrypt(new Uint8Array(5)))).toBe('ERR_CHANNEL_FRAME_MALFORMED');
  });

  it('moves nothing on a forged frame: the honest frame with that nonce still arrives (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 70 }), fc.nat(), (count, bitSeed) => {
        const c = channel();
        const frames = Array.from({ length: count + 1 }, (_, n) => c.send.encrypt(text(n)));
        for (let n = 0; n < count; n++) c.receive.decrypt(frames[n]!);
        const honest = frames[count]!;
        const forged = honest.slice();
        const bit = 64 + (bitSeed % ((honest.length - 8) * 8)); // never the nonce itself
        forged[bit >> 3]! ^= 1 << (bit & 7);
        expect(codeOf(() => c.receive.decrypt(forged))).toBe('ERR_NOISE_DECRYPT_FAILED');
        expect(c.receive.decrypt(honest)).toEqual(text(count));
      }),
      { numRuns: 60 },
    );
  });

  it('delivers any schedule that stays within the window exactly once (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 15 }), { minLength: 64, maxLength: 64 }),
        (jitter) => {
          const c = channel();
          const frames = Array.from({ length: 64 }, (_, n) => c.send.encrypt(text(n)));
          // Each frame is delayed by up to 15 positions: a relay that reorders a little.
          const order = [...frames.keys()].sort(
            (a, b) => a + jitter[a]! - (b + jitter[b]!) || a - b,
          );
          for (const n of order) expect(c.receive.decrypt(frames[n]!)).toEqual(text(n));
          for (const n of order.slice(-5))
            expect(codeOf(() => c.receive.decrypt(frames[n]!))).toBe('ERR_CHANNEL_REPLAY');
        },
      ),
      { numRuns: 40 },
    );
  });
});
