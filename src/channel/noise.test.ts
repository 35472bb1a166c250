import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { codeOf, expectCode } from '../../test/helpers/errors.js';
import {
  AeadAlgorithm,
  aeadEncrypt,
  generateX25519KeyPair,
  sha256,
  x25519PublicKey,
} from '../crypto/index.js';
import { concatBytes, fromHex, toHex } from '../encoding/index.js';
import {
  CipherState,
  NOISE_MAX_MESSAGE_BYTES,
  NoiseSuite,
  OCKAM_PROTOCOL_NAME,
  SplitOrder,
  createHandshake,
  staticKeyFromSecret,
  type NoiseHandshake,
  type NoiseHandshakeOptions,
  type NoiseKeyPair,
  type NoiseStaticKey,
  type TransportCipherStates,
} from './noise.js';

const EMPTY = new Uint8Array(0);
const suites = [NoiseSuite.aesGcm, NoiseSuite.chaChaPoly] as const;
const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

// Fixed keys (the cacophony vectors' keys) make every run of a property reproduce the same
// messages, so a tampered run can be compared with an honest one.
const INIT_STATIC = 'e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1';
const INIT_EPHEMERAL = '893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a';
const RESP_STATIC = '4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893';
const RESP_EPHEMERAL = 'bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b';

/** Hands out a fresh copy of one fixed ephemeral each call, and keeps every copy for inspection. */
function fixedEphemeral(secretHex: string): {
  generate: () => NoiseKeyPair;
  issued: Uint8Array[];
} {
  const issued: Uint8Array[] = [];
  return {
    issued,
    generate: () => {
      const secretKey = fromHex(secretHex);
      issued.push(secretKey);
      return { publicKey: x25519PublicKey(secretKey), secretKey };
    },
  };
}

/** Fresh random keys; `issued` keeps every ephemeral secret the handshake was given. */
function randomEphemeral(): { generate: () => NoiseKeyPair; issued: Uint8Array[] } {
  const issued: Uint8Array[] = [];
  return {
    issued,
    generate: () => {
      const pair = generateX25519KeyPair();
      issued.push(pair.secretKey);
      return pair;
    },
  };
}

type Overrides = Partial<Omit<NoiseHandshakeOptions, 'initiator'>>;

function fixedSide(initiator: boolean, overrides: Overrides = {}): NoiseHandshake {
  return createHandshake({
    initiator,
    suite: NoiseSuite.aesGcm,
    staticKey: staticKeyFromSecret(fromHex(initiator ? INIT_STATIC : RESP_STATIC)),
    generateEphemeral: fixedEphemeral(initiator ? INIT_EPHEMERAL : RESP_EPHEMERAL).generate,
    ...overrides,
  });
}

function randomSide(initiator: boolean, overrides: Overrides = {}): NoiseHandshake {
  return createHandshake({
    initiator,
    suite: NoiseSuite.aesGcm,
    staticKey: staticKeyFromSecret(generateX25519KeyPair().secretKey),
    generateEphemeral: randomEphemeral().generate,
    ...overrides,
  });
}

interface Transcript {
  readonly messages: readonly [Uint8Array, Uint8Array, Uint8Array];
  readonly payloads: readonly [Uint8Array, Uint8Array, Uint8Array];
  readonly handshakeHash: Uint8Array;
}

/** Runs the three messages between two sides, checking every payload arrives intact. */
function handshake(
  initiator: NoiseHandshake,
  responder: NoiseHandshake,
  payloads: readonly [Uint8Array, Uint8Array, Uint8Array] = [
    bytes('one'),
    bytes('two'),
    bytes('three'),
  ],
): Transcript {
  const m1 = initiator.writeMessage(payloads[0]);
  expect(responder.readMessage(m1)).toStrictEqual(payloads[0]);
  const m2 = responder.writeMessage(payloads[1]);
  expect(initiator.readMessage(m2)).toStrictEqual(payloads[1]);
  const m3 = initiator.writeMessage(payloads[2]);
  expect(responder.readMessage(m3)).toStrictEqual(payloads[2]);
  expect(initiator.complete && responder.complete).toBe(true);
  expect(initiator.handshakeHash).toStrictEqual(responder.handshakeHash);
  return { messages: [m1, m2, m3], payloads, handshakeHash: initiator.handshakeHash };
}

function exchange(a: TransportCipherStates, b: TransportCipherStates, count = 3): void {
  for (let i = 0; i < count; i++) {
    const there = bytes(`a to b ${i}`);
    expect(b.receive.decryptWithAd(EMPTY, a.send.encryptWithAd(EMPTY, there))).toStrictEqual(there);
    const back = bytes(`b to a ${i}`);
    expect(a.receive.decryptWithAd(EMPTY, b.send.encryptWithAd(EMPTY, back))).toStrictEqual(back);
  }
}

/** The honest run with the fixed keys, which every tampering property starts from. */
const reference = handshake(fixedSide(true), fixedSide(false));

describe('round trips', () => {
  describe.each(
    suites.flatMap((suite) =>
      [SplitOrder.standard, SplitOrder.reversed].map((splitOrder) => [suite, splitOrder] as const),
    ),
  )('%s, %s split', (suite, splitOrder) => {
    it('completes, authenticates both static keys and carries transport both ways', () => {
      const initiatorStatic = generateX25519KeyPair();
      const responderStatic = generateX25519KeyPair();
      const initiator = createHandshake({
        initiator: true,
        suite,
        splitOrder,
        staticKey: staticKeyFromSecret(initiatorStatic.secretKey),
        generateEphemeral: randomEphemeral().generate,
      });
      const responder = createHandshake({
        initiator: false,
        suite,
        splitOrder,
        staticKey: staticKeyFromSecret(responderStatic.secretKey),
        generateEphemeral: randomEphemeral().generate,
      });
      expect(initiator.remoteStaticKey).toBeUndefined();
      handshake(initiator, responder);
      expect(initiator.remoteStaticKey).toStrictEqual(responderStatic.publicKey);
      expect(responder.remoteStaticKey).toStrictEqual(initiatorStatic.publicKey);
      exchange(initiator.split(), responder.split(), 5);
    });

    it('carries arbitrary payloads in every message (property)', () => {
      const payload = fc.uint8Array({ maxLength: 300 });
      fc.assert(
        fc.property(fc.tuple(payload, payload, payload), payload, (handshakePayloads, data) => {
          const initiator = randomSide(true, { suite, splitOrder });
          const responder = randomSide(false, { suite, splitOrder });
          handshake(initiator, responder, handshakePayloads);
          const a = initiator.split();
          const b = responder.split();
          expect(b.receive.decryptWithAd(data, a.send.encryptWithAd(data, data))).toStrictEqual(
            data,
          );
          expect(a.receive.decryptWithAd(EMPTY, b.send.encryptWithAd(EMPTY, data))).toStrictEqual(
            data,
          );
        }),
        { numRuns: 25 },
      );
    });
  });

  it('the reversed split swaps the two keys: the initiator sends with the second one', () => {
    const standard = handshakeAndSplit({});
    const reversed = handshakeAndSplit({ splitOrder: SplitOrder.reversed });
    const plaintext = bytes('which key');
    const sealed = (states: TransportCipherStates): string =>
      toHex(states.send.encryptAt(0n, EMPTY, plaintext));
    expect(sealed(reversed.initiator)).toBe(sealed(standard.responder));
    expect(sealed(reversed.responder)).toBe(sealed(standard.initiator));
    expect(sealed(standard.initiator)).not.toBe(sealed(standard.responder));
  });

  it('sides that disagree on the split order cannot talk', () => {
    const initiator = fixedSide(true, { splitOrder: SplitOrder.reversed });
    const responder = fixedSide(false);
    handshake(initiator, responder);
    const ciphertext = initiator.split().send.encryptWithAd(EMPTY, bytes('hello'));
    expectCode(
      () => responder.split().receive.decryptWithAd(EMPTY, ciphertext),
      'ERR_NOISE_DECRYPT_FAILED',
    );
  });

  it('an Ockam-configured pair (its protocol name, reversed split) completes', () => {
    const ockam = { protocolName: OCKAM_PROTOCOL_NAME, splitOrder: SplitOrder.reversed } as const;
    const initiator = randomSide(true, ockam);
    const responder = randomSide(false, ockam);
    handshake(initiator, responder);
    exchange(initiator.split(), responder.split());
  });
});

function handshakeAndSplit(overrides: Overrides): {
  initiator: TransportCipherStates;
  responder: TransportCipherStates;
} {
  const initiator = fixedSide(true, overrides);
  const responder = fixedSide(false, overrides);
  handshake(initiator, responder);
  return { initiator: initiator.split(), responder: responder.split() };
}

describe('protocol name and prologue (§5.2 InitializeSymmetric, §6)', () => {
  const prologue = bytes('prologue');
  const initialHash = (protocolName?: string): Uint8Array =>
    fixedSide(true, { prologue, ...(protocolName === undefined ? {} : { protocolName }) })
      .handshakeHash;

  it('pads a name shorter than 32 bytes with zeros', () => {
    const padded = new Uint8Array(32);
    padded.set(bytes(NoiseSuite.aesGcm));
    expect(initialHash()).toStrictEqual(sha256(concatBytes(padded, prologue)));
  });

  it("uses a 32-byte name (Ockam's) as it is", () => {
    expect(bytes(OCKAM_PROTOCOL_NAME)).toHaveLength(32);
    expect(initialHash(OCKAM_PROTOCOL_NAME)).toStrictEqual(
      sha256(concatBytes(bytes(OCKAM_PROTOCOL_NAME), prologue)),
    );
  });

  it('hashes a name longer than 32 bytes', () => {
    const name = 'Noise_XX_25519_AESGCM_SHA256_with_a_long_suffix';
    expect(initialHash(name)).toStrictEqual(sha256(concatBytes(sha256(bytes(name)), prologue)));
  });

  it.each([
    ['protocol names', { protocolName: OCKAM_PROTOCOL_NAME }],
    ['prologues', { prologue: bytes('other prologue') }],
  ] as const)('sides with different %s fail at message 2', (_, overrides) => {
    const initiator = fixedSide(true);
    const responder = fixedSide(false, overrides);
    responder.readMessage(initiator.writeMessage());
    expectCode(() => initiator.readMessage(responder.writeMessage()), 'ERR_NOISE_DECRYPT_FAILED');
  });

  it('rejects bad options with ERR_ARGUMENT_INVALID', () => {
    const base: NoiseHandshakeOptions = {
      initiator: true,
      suite: NoiseSuite.aesGcm,
      staticKey: staticKeyFromSecret(fromHex(INIT_STATIC)),
      generateEphemeral: fixedEphemeral(INIT_EPHEMERAL).generate,
    };
    // Deliberately ill-typed, as a JavaScript caller could pass them.
    const bad: Record<string, unknown>[] = [
      { suite: 'Noise_XX_25519_AESGCM_BLAKE2b' },
      { protocolName: '' },
      { protocolName: 'Noise_XX_25519_AESGCM_SHA256\u00e9' },
      { protocolName: 'N'.repeat(256) },
      { splitOrder: 'sideways' },
      { staticKey: { publicKey: new Uint8Array(31), dh: () => new Uint8Array(32) } },
      { initiator: 'yes' },
    ];
    for (const override of bad) {
      const options = { ...base, ...override };
      expectCode(() => createHandshake(options), 'ERR_ARGUMENT_INVALID');
    }
    expect(() => createHandshake({ ...base, protocolName: 'N'.repeat(255) })).not.toThrow();
  });

  it('rejects an ephemeral or static DH result of the wrong length, without changing state', () => {
    let pair: NoiseKeyPair = { publicKey: new Uint8Array(32), secretKey: new Uint8Array(16) };
    const initiator = fixedSide(true, { generateEphemeral: () => pair });
    expectCode(() => initiator.writeMessage(), 'ERR_ARGUMENT_INVALID');
    pair = fixedEphemeral(INIT_EPHEMERAL).generate();
    expect(initiator.writeMessage()).toStrictEqual(reference.messages[0].subarray(0, 32));

    const brokenStatic: NoiseStaticKey = {
      publicKey: x25519PublicKey(fromHex(RESP_STATIC)),
      dh: () => new Uint8Array(16),
    };
    const responder = fixedSide(false, { staticKey: brokenStatic });
    responder.readMessage(reference.messages[0]);
    expectCode(() => responder.writeMessage(reference.payloads[1]), 'ERR_ARGUMENT_INVALID');
  });
});

describe('order of calls', () => {
  it('refuses every call out of turn with ERR_NOISE_STATE and stays usable', () => {
    const initiator = fixedSide(true);
    const responder = fixedSide(false);
    expectCode(() => initiator.readMessage(reference.messages[1]), 'ERR_NOISE_STATE');
    expectCode(() => responder.writeMessage(), 'ERR_NOISE_STATE');
    expectCode(() => initiator.split(), 'ERR_NOISE_STATE');
    const m1 = initiator.writeMessage(reference.payloads[0]);
    expectCode(() => initiator.writeMessage(), 'ERR_NOISE_STATE');
    responder.readMessage(m1);
    expectCode(() => responder.readMessage(m1), 'ERR_NOISE_STATE');
    const m2 = responder.writeMessage(reference.payloads[1]);
    expectCode(() => responder.writeMessage(), 'ERR_NOISE_STATE');
    expectCode(() => responder.split(), 'ERR_NOISE_STATE');
    initiator.readMessage(m2);
    expectCode(() => initiator.readMessage(m2), 'ERR_NOISE_STATE');
    const m3 = initiator.writeMessage(reference.payloads[2]);
    expect([m1, m2, m3]).toStrictEqual(reference.messages);
    responder.readMessage(m3);

    for (const side of [initiator, responder]) {
      expectCode(() => side.writeMessage(), 'ERR_NOISE_STATE');
      expectCode(() => side.readMessage(m3), 'ERR_NOISE_STATE');
    }
    expect(initiator.handshakeHash).toStrictEqual(reference.handshakeHash);
    exchange(initiator.split(), responder.split());
    expectCode(() => initiator.split(), 'ERR_NOISE_STATE');
    expect(initiator.handshakeHash).toStrictEqual(reference.handshakeHash);
  });

  it('refuses everything after destroy', () => {
    const initiator = fixedSide(true);
    initiator.writeMessage();
    initiator.destroy();
    expectCode(() => initiator.readMessage(reference.messages[1]), 'ERR_NOISE_STATE');
    expectCode(() => initiator.split(), 'ERR_NOISE_STATE');
  });
});

describe('malformed and oversized messages', () => {
  it.each([
    [1, 32, 0, false],
    [2, 96, 1, true],
    [3, 64, 2, false],
  ] as const)(
    'message %i shorter than %i bytes is ERR_NOISE_MESSAGE_MALFORMED, state unchanged',
    (_, minimum, index, initiatorReads) => {
      const reader = readerAt(index, initiatorReads);
      const message = reference.messages[index];
      expectCode(
        () => reader.readMessage(message.subarray(0, minimum - 1)),
        'ERR_NOISE_MESSAGE_MALFORMED',
      );
      expectCode(() => reader.readMessage(EMPTY), 'ERR_NOISE_MESSAGE_MALFORMED');
      expectCode(
        () => reader.readMessage(new Uint8Array(NOISE_MAX_MESSAGE_BYTES + 1)),
        'ERR_NOISE_MESSAGE_MALFORMED',
      );
      expect(reader.readMessage(message)).toStrictEqual(reference.payloads[index]);
    },
  );

  it.each([
    [1, 32, 0],
    [2, 96, 1],
    [3, 64, 2],
  ] as const)(
    'message %i takes a payload up to 65535 - %i bytes; one more is ERR_NOISE_MESSAGE_TOO_LARGE',
    (_, overhead, index) => {
      const initiator = fixedSide(true);
      const responder = fixedSide(false);
      const sides = [initiator, responder, initiator] as const;
      for (let i = 0; i < index; i++) {
        const writer = sides[i]!;
        const reader = i % 2 === 0 ? responder : initiator;
        reader.readMessage(writer.writeMessage());
      }
      const writer = sides[index];
      const largest = new Uint8Array(NOISE_MAX_MESSAGE_BYTES - overhead);
      expectCode(
        () => writer.writeMessage(new Uint8Array(largest.byteLength + 1)),
        'ERR_NOISE_MESSAGE_TOO_LARGE',
      );
      const message = writer.writeMessage(largest);
      expect(message).toHaveLength(NOISE_MAX_MESSAGE_BYTES);
      const reader = index % 2 === 0 ? responder : initiator;
      expect(reader.readMessage(message)).toStrictEqual(largest);
    },
  );
});

/** A side positioned to read reference message `index` (the honest messages before it applied). */
function readerAt(index: 0 | 1 | 2, initiatorReads: boolean): NoiseHandshake {
  const side = fixedSide(initiatorReads);
  if (index === 1) side.writeMessage(reference.payloads[0]);
  if (index === 2) {
    side.readMessage(reference.messages[0]);
    side.writeMessage(reference.payloads[1]);
  }
  return side;
}

describe('tampering (properties)', () => {
  const flip = (message: Uint8Array, bit: number): Uint8Array => {
    const copy = message.slice();
    copy[bit >> 3]! ^= 1 << (bit & 7);
    return copy;
  };

  it.each([
    [2, 1, true],
    [3, 2, false],
  ] as const)(
    'any bit flip in message %i fails with ERR_NOISE_DECRYPT_FAILED and changes nothing',
    (_, index, initiatorReads) => {
      const message = reference.messages[index];
      fc.assert(
        fc.property(fc.integer({ min: 0, max: message.byteLength * 8 - 1 }), (bit) => {
          const reader = readerAt(index, initiatorReads);
          expect(codeOf(() => reader.readMessage(flip(message, bit)))).toBe(
            'ERR_NOISE_DECRYPT_FAILED',
          );
          expect(reader.complete).toBe(false);
          expect(reader.remoteStaticKey).toBeUndefined();
          // The state is untouched: the honest message still works and the run ends as it should.
          expect(reader.readMessage(message)).toStrictEqual(reference.payloads[index]);
          if (index === 1)
            expect(reader.writeMessage(reference.payloads[2])).toStrictEqual(reference.messages[2]);
          expect(reader.handshakeHash).toStrictEqual(reference.handshakeHash);
        }),
        { numRuns: 300 },
      );
    },
  );

  it.each([
    [2, 1, true],
    [3, 2, false],
  ] as const)(
    'any truncation or extension of message %i is MALFORMED or DECRYPT_FAILED, state unchanged',
    (_, index, initiatorReads) => {
      const message = reference.messages[index];
      fc.assert(
        fc.property(
          fc.oneof(
            fc.integer({ min: 0, max: message.byteLength - 1 }).map((n) => message.subarray(0, n)),
            fc
              .uint8Array({ minLength: 1, maxLength: 64 })
              .map((tail) => concatBytes(message, tail)),
          ),
          (altered) => {
            const reader = readerAt(index, initiatorReads);
            expect(['ERR_NOISE_MESSAGE_MALFORMED', 'ERR_NOISE_DECRYPT_FAILED']).toContain(
              codeOf(() => reader.readMessage(altered)),
            );
            expect(reader.readMessage(message)).toStrictEqual(reference.payloads[index]);
          },
        ),
        { numRuns: 200 },
      );
    },
  );

  it('a bit flip in message 1 (unauthenticated) is caught when the initiator reads message 2', () => {
    const message = reference.messages[0];
    fc.assert(
      fc.property(fc.integer({ min: 0, max: message.byteLength * 8 - 1 }), (bit) => {
        const initiator = fixedSide(true);
        const responder = fixedSide(false);
        initiator.writeMessage(reference.payloads[0]);
        responder.readMessage(flip(message, bit));
        const m2 = responder.writeMessage(reference.payloads[1]);
        expect(codeOf(() => initiator.readMessage(m2))).toBe('ERR_NOISE_DECRYPT_FAILED');
        // The initiator can still complete with an honest responder.
        expect(initiator.readMessage(reference.messages[1])).toStrictEqual(reference.payloads[1]);
      }),
      { numRuns: 200 },
    );
  });
});

describe('low-order keys (ERR_CRYPTO_DH_LOW_ORDER propagates, state unchanged)', () => {
  // u = 0 and u = 1 are points of small order on Curve25519: any DH with them is all zeros.
  const lowOrder = [new Uint8Array(32), fromHex('01'.padEnd(64, '0'))] as const;

  it.each(lowOrder.map((key) => [toHex(key).slice(0, 8), key] as const))(
    'an initiator ephemeral %s… is refused when the responder writes message 2',
    (_, key) => {
      const ephemeral = randomEphemeral();
      const responder = fixedSide(false, { generateEphemeral: ephemeral.generate });
      responder.readMessage(concatBytes(key, reference.payloads[0]));
      expectCode(() => responder.writeMessage(), 'ERR_CRYPTO_DH_LOW_ORDER');
      expectCode(() => responder.writeMessage(), 'ERR_CRYPTO_DH_LOW_ORDER');
      expect(responder.complete).toBe(false);
      // The ephemeral each failed attempt generated is wiped, not kept.
      expect(ephemeral.issued).toHaveLength(2);
      for (const secret of ephemeral.issued) expect(secret.every((b) => b === 0)).toBe(true);
    },
  );

  it('a responder ephemeral of low order is refused and the honest message 2 still works', () => {
    const initiator = fixedSide(true);
    initiator.writeMessage(reference.payloads[0]);
    const forged = reference.messages[1].slice();
    forged.set(lowOrder[1]);
    expectCode(() => initiator.readMessage(forged), 'ERR_CRYPTO_DH_LOW_ORDER');
    expect(initiator.readMessage(reference.messages[1])).toStrictEqual(reference.payloads[1]);
  });

  it('an authenticated but low-order responder static key is refused at the es token', () => {
    const initiator = fixedSide(true);
    const m1 = initiator.writeMessage(reference.payloads[0]);
    const lowOrderStatic: NoiseStaticKey = {
      publicKey: lowOrder[0],
      dh: () => generateX25519KeyPair().secretKey,
    };
    const rogue = fixedSide(false, { staticKey: lowOrderStatic });
    rogue.readMessage(m1);
    expectCode(() => initiator.readMessage(rogue.writeMessage()), 'ERR_CRYPTO_DH_LOW_ORDER');
    expect(initiator.remoteStaticKey).toBeUndefined();
    expect(initiator.readMessage(reference.messages[1])).toStrictEqual(reference.payloads[1]);
  });
});

describe('transport cipher states', () => {
  const key = fromHex('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f');
  const plaintext = bytes('transport');

  it.each([
    [NoiseSuite.aesGcm, AeadAlgorithm.aes256gcm, '000000000102030405060708'],
    [NoiseSuite.chaChaPoly, AeadAlgorithm.chacha20poly1305, '000000000807060504030201'],
  ] as const)('%s encodes the nonce as 4 zero bytes then n (§12)', (suite, algorithm, nonce) => {
    const n = 0x0102030405060708n;
    const state = new CipherState(suite, key.slice());
    expect(state.encryptAt(n, bytes('ad'), plaintext)).toStrictEqual(
      aeadEncrypt(algorithm, key, fromHex(nonce), plaintext, bytes('ad')),
    );
  });

  it('advances n on encryption, and on decryption only after success', () => {
    const { initiator, responder } = handshakeAndSplit({});
    const first = initiator.send.encryptWithAd(EMPTY, plaintext);
    const second = initiator.send.encryptWithAd(EMPTY, plaintext);
    expect(initiator.send.nonce).toBe(2n);
    expectCode(() => responder.receive.decryptWithAd(EMPTY, second), 'ERR_NOISE_DECRYPT_FAILED');
    expectCode(
      () => responder.receive.decryptWithAd(EMPTY, flipLast(first)),
      'ERR_NOISE_DECRYPT_FAILED',
    );
    expectCode(
      () => responder.receive.decryptWithAd(bytes('ad'), first),
      'ERR_NOISE_DECRYPT_FAILED',
    );
    expectCode(
      () => responder.receive.decryptWithAd(EMPTY, first.subarray(0, 15)),
      'ERR_NOISE_MESSAGE_MALFORMED',
    );
    expect(responder.receive.nonce).toBe(0n);
    expect(responder.receive.decryptWithAd(EMPTY, first)).toStrictEqual(plaintext);
    expect(responder.receive.decryptWithAd(EMPTY, second)).toStrictEqual(plaintext);
    expect(responder.receive.nonce).toBe(2n);
  });

  it('explicit nonces decrypt in any order and leave the counter alone', () => {
    const { initiator, responder } = handshakeAndSplit({});
    const nonces = [5n, 0n, 3n, (1n << 64n) - 2n, 1n];
    const sealed = nonces.map((n) => initiator.send.encryptAt(n, EMPTY, bytes(`m${n}`)));
    expect(initiator.send.nonce).toBe(0n);
    for (const i of [3, 1, 4, 0, 2]) {
      const n = nonces[i]!;
      expect(responder.receive.decryptAt(n, EMPTY, sealed[i]!)).toStrictEqual(bytes(`m${n}`));
    }
    expectCode(
      () => responder.receive.decryptAt(4n, EMPTY, sealed[0]!),
      'ERR_NOISE_DECRYPT_FAILED',
    );
    expect(responder.receive.nonce).toBe(0n);
    // The counter API and the explicit one agree on what nonce n means.
    expect(initiator.send.encryptWithAd(EMPTY, bytes('m0'))).toStrictEqual(sealed[1]);
  });

  it('refuses explicit nonces outside [0, 2^64 - 2] with ERR_NOISE_NONCE_INVALID', () => {
    const state = new CipherState(NoiseSuite.aesGcm, key.slice());
    for (const n of [-1n, (1n << 64n) - 1n, 1n << 64n]) {
      expectCode(() => state.encryptAt(n, EMPTY, plaintext), 'ERR_NOISE_NONCE_INVALID');
      expectCode(() => state.decryptAt(n, EMPTY, plaintext), 'ERR_NOISE_NONCE_INVALID');
    }
    expectCode(() => {
      state.setNonce(1n << 64n);
    }, 'ERR_NOISE_NONCE_INVALID');
  });

  it('stops at n = 2^64 - 1 with ERR_NOISE_NONCE_EXHAUSTED', () => {
    const sender = new CipherState(NoiseSuite.chaChaPoly, key.slice());
    const receiver = new CipherState(NoiseSuite.chaChaPoly, key.slice());
    sender.setNonce((1n << 64n) - 2n);
    receiver.setNonce((1n << 64n) - 2n);
    expect(receiver.decryptWithAd(EMPTY, sender.encryptWithAd(EMPTY, plaintext))).toStrictEqual(
      plaintext,
    );
    expectCode(() => sender.encryptWithAd(EMPTY, plaintext), 'ERR_NOISE_NONCE_EXHAUSTED');
    expectCode(() => receiver.decryptWithAd(EMPTY, plaintext), 'ERR_NOISE_NONCE_EXHAUSTED');
  });

  it('bounds transport messages to 65535 bytes', () => {
    const state = new CipherState(NoiseSuite.aesGcm, key.slice());
    const largest = new Uint8Array(NOISE_MAX_MESSAGE_BYTES - 16);
    expect(state.encryptAt(0n, EMPTY, largest)).toHaveLength(NOISE_MAX_MESSAGE_BYTES);
    expectCode(
      () => state.encryptWithAd(EMPTY, new Uint8Array(largest.byteLength + 1)),
      'ERR_NOISE_MESSAGE_TOO_LARGE',
    );
    expectCode(
      () => state.decryptAt(0n, EMPTY, new Uint8Array(NOISE_MAX_MESSAGE_BYTES + 1)),
      'ERR_NOISE_MESSAGE_MALFORMED',
    );
  });

  it('refuses every call after destroy', () => {
    const state = new CipherState(NoiseSuite.aesGcm, key.slice());
    state.destroy();
    state.destroy();
    expectCode(() => state.encryptWithAd(EMPTY, plaintext), 'ERR_NOISE_STATE');
    expectCode(() => state.decryptAt(0n, EMPTY, plaintext), 'ERR_NOISE_STATE');
    expectCode(() => {
      state.rekey();
    }, 'ERR_NOISE_STATE');
  });
});

function flipLast(message: Uint8Array): Uint8Array {
  const copy = message.slice();
  copy[copy.length - 1]! ^= 1;
  return copy;
}

describe('rekey (§4.2, §11.3)', () => {
  const key = fromHex('4142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f60');

  it.each([
    [NoiseSuite.aesGcm, AeadAlgorithm.aes256gcm, 'ffffffffffffffff'],
    [NoiseSuite.chaChaPoly, AeadAlgorithm.chacha20poly1305, 'ffffffffffffffff'],
  ] as const)(
    '%s: k = first 32 bytes of ENCRYPT(k, maxnonce, zerolen, zeros)',
    (suite, algorithm, max) => {
      const state = new CipherState(suite, key.slice());
      state.setNonce(7n);
      state.rekey();
      const expectedKey = aeadEncrypt(
        algorithm,
        key,
        fromHex(`00000000${max}`),
        new Uint8Array(32),
      ).subarray(0, 32);
      const plaintext = bytes('after rekey');
      expect(state.nonce).toBe(7n);
      expect(state.encryptWithAd(EMPTY, plaintext)).toStrictEqual(
        new CipherState(suite, expectedKey.slice()).encryptAt(7n, EMPTY, plaintext),
      );
    },
  );

  it.each(suites)('%s: both sides rekeying in step keep talking; one alone cannot', (suite) => {
    const { initiator, responder } = handshakeAndSplit({ suite });
    const before = initiator.send.encryptWithAd(EMPTY, bytes('before'));
    const previous = responder.receive.clone();
    initiator.send.rekey();
    responder.receive.rekey();
    const after = initiator.send.encryptWithAd(EMPTY, bytes('after'));
    // A receiver keeps the previous key (a clone) for messages sent before the rekey.
    expect(previous.decryptWithAd(EMPTY, before)).toStrictEqual(bytes('before'));
    expectCode(() => responder.receive.decryptAt(0n, EMPTY, before), 'ERR_NOISE_DECRYPT_FAILED');
    responder.receive.setNonce(1n);
    expect(responder.receive.decryptWithAd(EMPTY, after)).toStrictEqual(bytes('after'));
    // The other direction was not rekeyed by either side and still works.
    exchangeOneWay(responder.send, initiator.receive);
    // One side rekeying alone breaks the direction.
    responder.send.rekey();
    expectCode(
      () => initiator.receive.decryptWithAd(EMPTY, responder.send.encryptWithAd(EMPTY, bytes('x'))),
      'ERR_NOISE_DECRYPT_FAILED',
    );
  });

  it('a rekey schedule (every 32 messages, as Ockam) agrees on both sides (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100 }), (count) => {
        const { initiator, responder } = handshakeAndSplit({ suite: NoiseSuite.aesGcm });
        for (let n = 0n; n < BigInt(count); n++) {
          if (n > 0n && n % 32n === 0n) {
            initiator.send.rekey();
            responder.receive.rekey();
          }
          const message = bytes(`message ${n}`);
          expect(
            responder.receive.decryptAt(n, EMPTY, initiator.send.encryptAt(n, EMPTY, message)),
          ).toStrictEqual(message);
        }
      }),
      { numRuns: 20 },
    );
  });
});

function exchangeOneWay(send: CipherState, receive: CipherState): void {
  const message = bytes('one way');
  expect(receive.decryptWithAd(EMPTY, send.encryptWithAd(EMPTY, message))).toStrictEqual(message);
}

describe('forward secrecy (smoke)', () => {
  const zeroed = (secret: Uint8Array): boolean => secret.every((b) => b === 0);

  it('wipes both ephemeral secrets by the time the handshake completes and splits', () => {
    const initiatorEphemeral = randomEphemeral();
    const responderEphemeral = randomEphemeral();
    const initiator = randomSide(true, { generateEphemeral: initiatorEphemeral.generate });
    const responder = randomSide(false, { generateEphemeral: responderEphemeral.generate });
    const m1 = initiator.writeMessage();
    responder.readMessage(m1);
    const m2 = responder.writeMessage();
    initiator.readMessage(m2);
    // Still needed for the se DH of message 3.
    expect(zeroed(initiatorEphemeral.issued[0]!)).toBe(false);
    expect(zeroed(responderEphemeral.issued[0]!)).toBe(false);
    responder.readMessage(initiator.writeMessage());
    const a = initiator.split();
    const b = responder.split();
    expect(initiatorEphemeral.issued).toHaveLength(1);
    expect(responderEphemeral.issued).toHaveLength(1);
    expect(zeroed(initiatorEphemeral.issued[0]!)).toBe(true);
    expect(zeroed(responderEphemeral.issued[0]!)).toBe(true);
    exchange(a, b);
    for (const state of [a.send, a.receive]) {
      state.destroy();
      expectCode(() => state.encryptAt(0n, EMPTY, EMPTY), 'ERR_NOISE_STATE');
    }
  });

  it('wipes the ephemeral secret of an abandoned handshake on destroy', () => {
    const ephemeral = randomEphemeral();
    const initiator = randomSide(true, { generateEphemeral: ephemeral.generate });
    initiator.writeMessage();
    expect(zeroed(ephemeral.issued[0]!)).toBe(false);
    initiator.destroy();
    expect(zeroed(ephemeral.issued[0]!)).toBe(true);
  });
});
