/**
 * Forward secrecy of a secure channel: a recorded session stays closed to an attacker who later
 * learns both parties' static X25519 secrets. XX derives the transport keys from ee, es and se;
 * without an ephemeral secret the attacker can compute none of ee, nor es/se from the recorded
 * side, so neither re-running the handshake nor any key built from static-static DH opens a frame.
 *
 * Controls keep the test honest: the same attacks succeed once the attacker holds the ephemeral
 * secrets, succeed against a broken party whose ephemeral key is its static key, and an earlier
 * session's ephemerals do not open a later session (they would if ephemerals were reused).
 */
import { describe, expect, it } from 'vitest';
import { isMandateError } from '../../src/core/index.js';
import {
  AeadAlgorithm,
  AEAD_NONCE_BYTES,
  aeadDecrypt,
  generateX25519KeyPair,
  hkdfSha256,
  hmacSha256,
  sha256,
  x25519,
  x25519PublicKey,
} from '../../src/crypto/index.js';
import { ChannelHandshake } from '../../src/channel/channel-handshake.js';
import { encodeIdentityPayload } from '../../src/channel/identity-payload.js';
import {
  NoiseSuite,
  OCKAM_PROTOCOL_NAME,
  staticKeyFromSecret,
  type NoiseKeyPair,
  CipherState,
} from '../../src/channel/noise.js';
import { TrustPolicies } from '../../src/channel/index.js';
import { REKEY_INTERVAL } from '../../src/channel/transport-cipher.js';
import { attestPurposeKey } from '../../src/identity/internal.js';
import { Identities, MemoryIdentityRepository, Purpose } from '../../src/identity/index.js';
import { MemoryVault } from '../../src/vault/index.js';

const NOW = 1_800_000_000;
const EMPTY = new Uint8Array(0);
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
/** Frames each way: Alice's cross two rekeys (nonces 32 and 64), Bob's stay in the first epoch. */
const ALICE_FRAMES = 70;
const BOB_FRAMES = 5;
const aliceText = (i: number): Uint8Array => bytes(`alice to bob, frame ${i}: the order is 42`);
const bobText = (i: number): Uint8Array => bytes(`bob to alice, frame ${i}: acknowledged`);

interface Party {
  readonly identifier: `I${string}`;
  readonly payload: Uint8Array;
  readonly staticSecret: Uint8Array;
}

async function parties(): Promise<{ alice: Party; bob: Party }> {
  const vault = new MemoryVault();
  const identities = new Identities({
    vault,
    repository: new MemoryIdentityRepository(),
    clock: { nowSeconds: () => NOW },
  });
  const party = async (name: string): Promise<Party> => {
    const keyPair = generateX25519KeyPair();
    const local = await identities.create({ name, purposeKeys: false });
    const attestation = await attestPurposeKey(
      vault,
      local.identity,
      local.primaryKeyId,
      { purpose: Purpose.secureChannel, x25519: keyPair.publicKey },
      { nowSeconds: NOW },
    );
    return {
      identifier: local.identity.identifier,
      payload: encodeIdentityPayload({
        changeHistory: local.identity.changeHistory,
        secureChannelAttestation: attestation,
        credentials: [],
        chains: [],
      }),
      staticSecret: keyPair.secretKey,
    };
  };
  return { alice: await party('alice'), bob: await party('bob') };
}

/** Everything that crossed the wire, plus what the test (not the attacker) kept aside. */
interface Recording {
  readonly m1: Uint8Array;
  readonly m2: Uint8Array;
  readonly m3: Uint8Array;
  readonly aliceToBob: readonly Uint8Array[];
  readonly bobToAlice: readonly Uint8Array[];
  /** The very buffers handed to each handshake by generateEphemeral. */
  readonly handedOut: { readonly alice: NoiseKeyPair[]; readonly bob: NoiseKeyPair[] };
  /** Copies of the ephemeral secrets taken when generated: only for the control attacks. */
  readonly leaked: { readonly alice: Uint8Array; readonly bob: Uint8Array };
}

type EphemeralSource = (staticSecret: Uint8Array) => NoiseKeyPair;
const honestEphemeral: EphemeralSource = () => generateX25519KeyPair();
/** A broken implementation: the "ephemeral" key is the static key. */
const staticAsEphemeral: EphemeralSource = (staticSecret) => ({
  publicKey: x25519PublicKey(staticSecret),
  secretKey: staticSecret.slice(),
});

function recordSession(alice: Party, bob: Party, ephemeral = honestEphemeral): Recording {
  const handedOut = { alice: [] as NoiseKeyPair[], bob: [] as NoiseKeyPair[] };
  const leaked = { alice: EMPTY, bob: EMPTY };
  const side = (self: Party, peer: Party, name: 'alice' | 'bob', initiator: boolean) =>
    new ChannelHandshake({
      initiator,
      staticKey: staticKeyFromSecret(self.staticSecret),
      identityPayload: self.payload,
      generateEphemeral: () => {
        const pair = ephemeral(self.staticSecret);
        handedOut[name].push(pair);
        leaked[name] = pair.secretKey.slice();
        return pair;
      },
      verify: {
        nowSeconds: NOW + 1,
        authorities: new Map(),
        trustPolicy: TrustPolicies.identifier(peer.identifier),
      },
    });
  const a = side(alice, bob, 'alice', true);
  const b = side(bob, alice, 'bob', false);
  const m1 = a.start();
  const m2 = b.receive(m1).send!;
  const atAlice = a.receive(m2);
  const m3 = atAlice.send!;
  const atBob = b.receive(m3);
  const aliceEnd = atAlice.established!;
  const bobEnd = atBob.established!;
  expect(aliceEnd.peer.identifier).toBe(bob.identifier);
  expect(bobEnd.peer.identifier).toBe(alice.identifier);

  const aliceToBob: Uint8Array[] = [];
  const bobToAlice: Uint8Array[] = [];
  for (let i = 0; i < Math.max(ALICE_FRAMES, BOB_FRAMES); i++) {
    if (i < ALICE_FRAMES) {
      const frame = aliceEnd.encryptor.encrypt(aliceText(i));
      expect(bobEnd.decryptor.decrypt(frame)).toEqual(aliceText(i));
      aliceToBob.push(frame);
    }
    if (i < BOB_FRAMES) {
      const frame = bobEnd.encryptor.encrypt(bobText(i));
      expect(aliceEnd.decryptor.decrypt(frame)).toEqual(bobText(i));
      bobToAlice.push(frame);
    }
  }
  return { m1, m2, m3, aliceToBob, bobToAlice, handedOut, leaked };
}

type Attempt =
  | { readonly ok: true; readonly plaintexts: Uint8Array[] }
  | { readonly ok: false; readonly code: string };

const codeOf = (error: unknown): string => {
  if (isMandateError(error)) return error.code;
  throw error;
};

const acceptAnyone = (): boolean => true;

/**
 * Replays the recorded handshake as Alice (the initiator) with her static secret and a guess at
 * her ephemeral secret, the ephemeral *public* key taken from the recording so the transcript
 * hash matches; if it completes, decrypts Bob's frames.
 */
function replayAsAlice(rec: Recording, alice: Party, guess: Uint8Array): Attempt {
  const h = new ChannelHandshake({
    initiator: true,
    staticKey: staticKeyFromSecret(alice.staticSecret),
    identityPayload: alice.payload,
    generateEphemeral: () => ({ publicKey: rec.m1.slice(0, 32), secretKey: guess.slice() }),
    verify: { nowSeconds: NOW + 1, authorities: new Map(), trustPolicy: acceptAnyone },
  });
  // The attacker reproduces message 1 byte for byte: only the DHs can stop it.
  expect(h.start()).toEqual(rec.m1);
  try {
    const established = h.receive(rec.m2).established!;
    return { ok: true, plaintexts: rec.bobToAlice.map((f) => established.decryptor.decrypt(f)) };
  } catch (error) {
    return { ok: false, code: codeOf(error) };
  }
}

/** The same as Bob (the responder); if it completes, decrypts Alice's frames. */
function replayAsBob(rec: Recording, bob: Party, guess: Uint8Array): Attempt {
  const h = new ChannelHandshake({
    initiator: false,
    staticKey: staticKeyFromSecret(bob.staticSecret),
    identityPayload: bob.payload,
    generateEphemeral: () => ({ publicKey: rec.m2.slice(0, 32), secretKey: guess.slice() }),
    verify: { nowSeconds: NOW + 1, authorities: new Map(), trustPolicy: acceptAnyone },
  });
  try {
    h.receive(rec.m1);
    const established = h.receive(rec.m3).established!;
    return { ok: true, plaintexts: rec.aliceToBob.map((f) => established.decryptor.decrypt(f)) };
  } catch (error) {
    return { ok: false, code: codeOf(error) };
  }
}

/** Noise's HKDF (§4.3), two outputs. */
function noiseHkdf(chainingKey: Uint8Array, ikm: Uint8Array): [Uint8Array, Uint8Array] {
  const temp = hmacSha256(chainingKey, ikm);
  const out1 = hmacSha256(temp, Uint8Array.of(1));
  const out2 = hmacSha256(temp, Uint8Array.of(...out1, 2));
  return [out1, out2];
}

/** Every key an attacker might build from the static-static DH alone. */
function staticStaticKeys(alice: Party, bob: Party): Uint8Array[] {
  const ss = x25519(alice.staticSecret, x25519PublicKey(bob.staticSecret));
  // The same DH from Bob's side: a sanity check that the attacker computes it right.
  expect(x25519(bob.staticSecret, x25519PublicKey(alice.staticSecret))).toEqual(ss);
  const ck0 = new TextEncoder().encode(OCKAM_PROTOCOL_NAME); // exactly 32 bytes: used as is
  const [ck1, k1] = noiseHkdf(ck0, ss);
  const [split1, split2] = noiseHkdf(ck1, EMPTY);
  const plain = hkdfSha256(ss, EMPTY, EMPTY, 64);
  const salted = hkdfSha256(ss, ck0, EMPTY, 64);
  return [
    ss,
    sha256(ss),
    ck1,
    k1,
    split1,
    split2,
    plain.slice(0, 32),
    plain.slice(32),
    salted.slice(0, 32),
    salted.slice(32),
  ];
}

const nonceOf = (frame: Uint8Array): bigint =>
  new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getBigUint64(0);

function gcmNonce(n: bigint): Uint8Array {
  const nonce = new Uint8Array(AEAD_NONCE_BYTES);
  new DataView(nonce.buffer).setBigUint64(4, n);
  return nonce;
}

/** Tries `key` on a frame as the raw AEAD key, and as the frame's epoch key after Noise REKEYs. */
function tryKey(key: Uint8Array, frame: Uint8Array): string[] {
  const n = nonceOf(frame);
  const body = frame.subarray(8);
  const codes: string[] = [];
  try {
    aeadDecrypt(AeadAlgorithm.aes256gcm, key, gcmNonce(n), body);
    codes.push('decrypted');
  } catch (error) {
    codes.push(codeOf(error));
  }
  const cipher = new CipherState(NoiseSuite.aesGcm, key.slice());
  for (let epoch = 0n; epoch < n / REKEY_INTERVAL; epoch++) cipher.rekey();
  try {
    cipher.decryptAt(n, EMPTY, body);
    codes.push('decrypted');
  } catch (error) {
    codes.push(codeOf(error));
  }
  return codes;
}

const isZero = (b: Uint8Array): boolean => b.every((x) => x === 0);

describe('forward secrecy of a recorded session', () => {
  it('the static secrets of both parties open no frame of a recorded session', async () => {
    const { alice, bob } = await parties();
    const rec = recordSession(alice, bob);

    // The ephemeral secrets handed to the handshakes are wiped once established.
    expect(rec.handedOut.alice).toHaveLength(1);
    expect(rec.handedOut.bob).toHaveLength(1);
    for (const pair of [...rec.handedOut.alice, ...rec.handedOut.bob]) {
      expect(isZero(pair.secretKey)).toBe(true);
    }
    // The ephemerals are neither the static keys nor each other.
    const ephemeralPublics = [rec.m1.slice(0, 32), rec.m2.slice(0, 32)];
    const staticPublics = [x25519PublicKey(alice.staticSecret), x25519PublicKey(bob.staticSecret)];
    for (const e of ephemeralPublics) for (const s of staticPublics) expect(e).not.toEqual(s);
    expect(ephemeralPublics[0]).not.toEqual(ephemeralPublics[1]);

    // Re-running the handshake with a static key and any guess at the ephemeral secret: the
    // transcript matches up to ee, which the attacker cannot compute.
    const guesses = [
      generateX25519KeyPair().secretKey,
      alice.staticSecret,
      bob.staticSecret,
      sha256(alice.staticSecret),
      sha256(bob.staticSecret),
      new Uint8Array(32),
    ];
    for (const guess of guesses) {
      expect(replayAsAlice(rec, alice, guess)).toEqual({
        ok: false,
        code: 'ERR_NOISE_DECRYPT_FAILED',
      });
      expect(replayAsBob(rec, bob, guess)).toEqual({ ok: false, code: 'ERR_NOISE_DECRYPT_FAILED' });
    }

    // Keys from static-static DH through HKDF, tried on every frame both ways, every epoch.
    const keys = staticStaticKeys(alice, bob);
    for (const frame of [...rec.aliceToBob, ...rec.bobToAlice]) {
      for (const key of keys) {
        expect(tryKey(key, frame)).toEqual([
          'ERR_CRYPTO_DECRYPT_FAILED',
          'ERR_NOISE_DECRYPT_FAILED',
        ]);
      }
    }
  });

  it('control: with the ephemeral secrets of the session the same replay decrypts every frame', async () => {
    const { alice, bob } = await parties();
    const rec = recordSession(alice, bob);
    const asAlice = replayAsAlice(rec, alice, rec.leaked.alice);
    const asBob = replayAsBob(rec, bob, rec.leaked.bob);
    expect(asAlice).toEqual({
      ok: true,
      plaintexts: Array.from({ length: BOB_FRAMES }, (_, i) => bobText(i)),
    });
    expect(asBob).toEqual({
      ok: true,
      plaintexts: Array.from({ length: ALICE_FRAMES }, (_, i) => aliceText(i)),
    });
  });

  it('control: a party whose ephemeral key is its static key is broken by the static secrets alone', async () => {
    const { alice, bob } = await parties();
    const rec = recordSession(alice, bob, staticAsEphemeral);
    expect(replayAsBob(rec, bob, bob.staticSecret)).toEqual({
      ok: true,
      plaintexts: Array.from({ length: ALICE_FRAMES }, (_, i) => aliceText(i)),
    });
    expect(replayAsAlice(rec, alice, alice.staticSecret).ok).toBe(true);
  });

  it('an earlier session’s ephemeral secrets do not open a later one (no reuse)', async () => {
    const { alice, bob } = await parties();
    const first = recordSession(alice, bob);
    const second = recordSession(alice, bob);
    expect(second.m1.slice(0, 32)).not.toEqual(first.m1.slice(0, 32));
    expect(second.m2.slice(0, 32)).not.toEqual(first.m2.slice(0, 32));
    expect(replayAsAlice(second, alice, first.leaked.alice)).toEqual({
      ok: false,
      code: 'ERR_NOISE_DECRYPT_FAILED',
    });
    expect(replayAsBob(second, bob, first.leaked.bob)).toEqual({
      ok: false,
      code: 'ERR_NOISE_DECRYPT_FAILED',
    });
    // …while each session's own ephemerals do (the check above is not vacuous).
    expect(replayAsBob(first, bob, first.leaked.bob).ok).toBe(true);
  });
});
