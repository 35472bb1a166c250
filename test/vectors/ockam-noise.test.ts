import { describe, expect, it } from 'vitest';
import { aeadDecrypt, AeadAlgorithm, x25519PublicKey } from '../../src/crypto/index.js';
import { fromHex, toHex } from '../../src/encoding/index.js';
import {
  createHandshake,
  NoiseSuite,
  OCKAM_PROTOCOL_NAME,
  SplitOrder,
  staticKeyFromSecret,
} from '../../src/channel/noise.js';
import { readVectorJson } from '../helpers/vectors.js';

interface OckamNoiseCase {
  name: string;
  initiator_static_private_hex: string;
  initiator_ephemeral_private_hex: string;
  responder_static_private_hex: string;
  responder_ephemeral_private_hex: string;
  message1_payload_hex: string;
  message1_hex: string;
  message2_payload_hex: string;
  message2_hex: string;
  message3_payload_hex: string;
  message3_hex: string;
  derived: {
    handshake_hash_after_message3_hex: string;
    ockam_initiator_encrypt_key_hex: string;
    ockam_responder_encrypt_key_hex: string;
  };
}

const vector = readVectorJson('ockam/noise-xx.json') as {
  initialization: { expected_h_after_initialization_hex: string };
  production_protocol_name: { name: string; derived_h_after_initialization_hex: string };
  cases: OckamNoiseCase[];
};

const ephemeral = (secretHex: string) => () => {
  const secretKey = fromHex(secretHex);
  return { publicKey: x25519PublicKey(secretKey), secretKey };
};

/** AES-GCM nonce for counter n as Noise encodes it: 4 zero bytes ‖ 64-bit big-endian n. */
const nonce = (n: number): Uint8Array => {
  const out = new Uint8Array(12);
  new DataView(out.buffer).setBigUint64(4, BigInt(n));
  return out;
};

describe('Ockam Noise XX vectors (ockam/noise-xx.json)', () => {
  it('initialises h as Ockam does, for the standard and the production protocol names', () => {
    const make = (protocolName?: string) =>
      createHandshake({
        initiator: true,
        suite: NoiseSuite.aesGcm,
        staticKey: staticKeyFromSecret(new Uint8Array(32).fill(1)),
        generateEphemeral: ephemeral('00'.repeat(32)),
        ...(protocolName === undefined ? {} : { protocolName }),
      });
    expect(toHex(make().handshakeHash)).toBe(
      vector.initialization.expected_h_after_initialization_hex,
    );
    expect(vector.production_protocol_name.name).toBe(OCKAM_PROTOCOL_NAME);
    // Computed by the vector's authors, not asserted by Ockam: SHA-256 of the 32-byte name.
    expect(toHex(make(OCKAM_PROTOCOL_NAME).handshakeHash)).toBe(
      vector.production_protocol_name.derived_h_after_initialization_hex,
    );
  });

  it.each(vector.cases.map((c) => [c.name, c] as const))(
    '%s: reproduces messages 1-3, the handshake hash and the reversed split',
    (_name, c) => {
      const initiator = createHandshake({
        initiator: true,
        suite: NoiseSuite.aesGcm,
        staticKey: staticKeyFromSecret(fromHex(c.initiator_static_private_hex)),
        generateEphemeral: ephemeral(c.initiator_ephemeral_private_hex),
        splitOrder: SplitOrder.reversed,
      });
      const responder = createHandshake({
        initiator: false,
        suite: NoiseSuite.aesGcm,
        staticKey: staticKeyFromSecret(fromHex(c.responder_static_private_hex)),
        generateEphemeral: ephemeral(c.responder_ephemeral_private_hex),
        splitOrder: SplitOrder.reversed,
      });
      const m1 = initiator.writeMessage(fromHex(c.message1_payload_hex));
      expect(toHex(m1)).toBe(c.message1_hex);
      expect(toHex(responder.readMessage(m1))).toBe(c.message1_payload_hex);
      const m2 = responder.writeMessage(fromHex(c.message2_payload_hex));
      expect(toHex(m2)).toBe(c.message2_hex);
      expect(toHex(initiator.readMessage(m2))).toBe(c.message2_payload_hex);
      const m3 = initiator.writeMessage(fromHex(c.message3_payload_hex));
      expect(toHex(m3)).toBe(c.message3_hex);
      expect(toHex(responder.readMessage(m3))).toBe(c.message3_payload_hex);
      expect(toHex(initiator.handshakeHash)).toBe(c.derived.handshake_hash_after_message3_hex);
      expect(toHex(responder.handshakeHash)).toBe(c.derived.handshake_hash_after_message3_hex);
      // Ockam's reversed split: each side encrypts with the key the vector derives for its role.
      const fromInitiator = initiator
        .split()
        .send.encryptWithAd(new Uint8Array(0), new Uint8Array([1, 2, 3]));
      expect(
        aeadDecrypt(
          AeadAlgorithm.aes256gcm,
          fromHex(c.derived.ockam_initiator_encrypt_key_hex),
          nonce(0),
          fromInitiator,
        ),
      ).toEqual(new Uint8Array([1, 2, 3]));
      const fromResponder = responder
        .split()
        .send.encryptWithAd(new Uint8Array(0), new Uint8Array([4]));
      expect(
        aeadDecrypt(
          AeadAlgorithm.aes256gcm,
          fromHex(c.derived.ockam_responder_encrypt_key_hex),
          nonce(0),
          fromResponder,
        ),
      ).toEqual(new Uint8Array([4]));
    },
  );
});
