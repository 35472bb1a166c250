/**
 * Noise XX as a pure, synchronous state machine, named and ordered as The Noise Protocol Framework
 * (revision 34) §5 defines it: CipherState (§5.1), SymmetricState (§5.2), HandshakeState (§5.3),
 * with DH 25519, AES-256-GCM or ChaChaPoly, and SHA-256 (§12). No I/O, no clock and no randomness
 * here: the ephemeral key comes from an injected function and the static key is an interface, so
 * a vault-held key plugs in unchanged. The handshake driver does the rest around it.
 *
 * Two options exist for Ockam, whose channels Mandate runs: a custom protocol name (hashed or
 * padded like any name, §5.2 InitializeSymmetric) and a reversed Split, where the initiator
 * encrypts with the second key (see research/ockam.md §4.1).
 *
 * Every operation either completes or leaves the state exactly as it was: a message that fails to
 * authenticate, or a DH with a low-order key, changes nothing, and the right message still works.
 */
import { MandateError, isMandateError } from '../core/index.js';
import { conflict, invalid, exhausted, unauthorized } from '../core/internal.js';
import {
  AEAD_KEY_BYTES,
  AEAD_NONCE_BYTES,
  AEAD_TAG_BYTES,
  AeadAlgorithm,
  SHA256_BYTES,
  X25519_KEY_BYTES,
  aeadDecrypt,
  aeadEncrypt,
  hmacSha256,
  sha256,
  wipe,
  x25519,
  x25519PublicKey,
} from '../crypto/index.js';
import { concatBytes } from '../encoding/index.js';

/** Every Noise message, handshake or transport, is at most this long (§3). */
export const NOISE_MAX_MESSAGE_BYTES = 65535;

export const NoiseSuite = {
  aesGcm: 'Noise_XX_25519_AESGCM_SHA256',
  chaChaPoly: 'Noise_XX_25519_ChaChaPoly_SHA256',
} as const;
export type NoiseSuite = (typeof NoiseSuite)[keyof typeof NoiseSuite];

/** The name Ockam's secure channels hash into `h` and `ck` (exactly 32 bytes, so used as is). */
export const OCKAM_PROTOCOL_NAME = 'OCKAM_XX_25519_AES256_GCM_SHA256';

/**
 * Which Split key the initiator sends with: `standard` is §5.2 (the first), `reversed` is Ockam's
 * (the second; the responder does the opposite).
 */
export const SplitOrder = { standard: 'standard', reversed: 'reversed' } as const;
export type SplitOrder = (typeof SplitOrder)[keyof typeof SplitOrder];

/** The local static key: its public half and DH with it. `dh` returns a fresh buffer, wiped here. */
export interface NoiseStaticKey {
  readonly publicKey: Uint8Array;
  dh(peerPublicKey: Uint8Array): Uint8Array;
}

/** An X25519 key pair; the handshake wipes `secretKey` when it no longer needs it. */
export interface NoiseKeyPair {
  readonly publicKey: Uint8Array;
  readonly secretKey: Uint8Array;
}

export interface NoiseHandshakeOptions {
  readonly initiator: boolean;
  readonly suite: NoiseSuite;
  readonly staticKey: NoiseStaticKey;
  /** Called once per handshake, when this side writes its `e` token. */
  readonly generateEphemeral: () => NoiseKeyPair;
  readonly prologue?: Uint8Array;
  /** Defaults to the suite's name; Ockam uses `OCKAM_PROTOCOL_NAME`. */
  readonly protocolName?: string;
  /** Defaults to `standard`. */
  readonly splitOrder?: SplitOrder;
}

export interface TransportCipherStates {
  readonly send: CipherState;
  readonly receive: CipherState;
}

export interface NoiseHandshake {
  /** Writes the next handshake message, carrying `payload` (encrypted once a key exists). */
  writeMessage(payload?: Uint8Array): Uint8Array;
  /** Reads the peer's next handshake message and returns its payload. */
  readMessage(message: Uint8Array): Uint8Array;
  readonly complete: boolean;
  /** `h`: after the last message, the channel binding both sides share (§11.2). */
  readonly handshakeHash: Uint8Array;
  /** The peer's static key, once its `s` token has been read and authenticated. */
  readonly remoteStaticKey: Uint8Array | undefined;
  /** Once complete: the transport cipher states; wipes the chaining key. Callable once. */
  split(): TransportCipherStates;
  /** Wipes every secret the handshake holds (an abandoned or timed-out handshake). */
  destroy(): void;
}

const HASHLEN = SHA256_BYTES;
const DHLEN = X25519_KEY_BYTES;
/** §5.1: 2^64 − 1 is reserved for REKEY; a counter that reaches it is exhausted. */
const MAX_NONCE = (1n << 64n) - 1n;
const EMPTY = new Uint8Array(0);
const ZEROS = new Uint8Array(AEAD_KEY_BYTES);
const HKDF_ONE = Uint8Array.of(1);
const PROTOCOL_NAME_MAX_BYTES = 255;

const noiseState = (message: string): MandateError => conflict('ERR_NOISE_STATE', message);
const malformed = (message: string): MandateError =>
  invalid('ERR_NOISE_MESSAGE_MALFORMED', message);
const tooLarge = (bytes: number): MandateError =>
  invalid(
    'ERR_NOISE_MESSAGE_TOO_LARGE',
    `a noise message of ${bytes} bytes exceeds ${NOISE_MAX_MESSAGE_BYTES}`,
  );
const argument = (message: string): MandateError => invalid('ERR_ARGUMENT_INVALID', message);

interface Cipher {
  readonly algorithm: AeadAlgorithm;
  /** §12.3 ChaChaPoly encodes n little-endian, §12.4 AESGCM big-endian, both after 4 zero bytes. */
  readonly littleEndian: boolean;
}

function cipherOf(suite: NoiseSuite): Cipher {
  switch (suite) {
    case NoiseSuite.aesGcm:
      return { algorithm: AeadAlgorithm.aes256gcm, littleEndian: false };
    case NoiseSuite.chaChaPoly:
      return { algorithm: AeadAlgorithm.chacha20poly1305, littleEndian: true };
    default:
      throw argument(`unknown noise suite \`${String(suite)}\``);
  }
}

function checkExplicitNonce(n: bigint): void {
  if (typeof n !== 'bigint' || n < 0n || n >= MAX_NONCE)
    throw invalid('ERR_NOISE_NONCE_INVALID', 'an explicit nonce must be a bigint in [0, 2^64 - 2]');
}

/** §4.3 HKDF with two outputs: HMAC(ck, ikm) as the temporary key, then out1, out2. */
function hkdf(chainingKey: Uint8Array, ikm: Uint8Array): [Uint8Array, Uint8Array] {
  const tempKey = hmacSha256(chainingKey, ikm);
  const out1 = hmacSha256(tempKey, HKDF_ONE);
  const input2 = new Uint8Array(HASHLEN + 1);
  input2.set(out1);
  input2[HASHLEN] = 2;
  const out2 = hmacSha256(tempKey, input2);
  wipe(tempKey);
  wipe(input2);
  return [out1, out2];
}

/**
 * §5.1 CipherState: a key `k` and a counter `n`. `encryptWithAd`/`decryptWithAd` use and advance
 * the counter (advancing only after success); `encryptAt`/`decryptAt` take the nonce from the
 * caller, for transport messages that carry it explicitly, and leave the counter alone.
 */
export class CipherState {
  readonly #suite: NoiseSuite;
  readonly #cipher: Cipher;
  #k: Uint8Array | undefined;
  #n = 0n;
  #destroyed = false;
  /**
   * The AEAD nonce of the current call, rewritten each time (the AEAD copies it): a fresh small
   * array per message would also get an ArrayBuffer of its own once the AEAD looks at its bytes.
   */
  readonly #nonce = new Uint8Array(new ArrayBuffer(AEAD_NONCE_BYTES));
  readonly #nonceView = new DataView(this.#nonce.buffer);

  /** Takes ownership of `key` (wiped on rekey and destroy); no key means pass-through (§5.1). */
  constructor(suite: NoiseSuite, key?: Uint8Array) {
    this.#suite = suite;
    this.#cipher = cipherOf(suite);
    if (key !== undefined && key.byteLength !== AEAD_KEY_BYTES)
      throw argument(`a cipher key must be ${AEAD_KEY_BYTES} bytes`);
    this.#k = key;
  }

  hasKey(): boolean {
    return this.#k !== undefined;
  }

  /** The counter the next `encryptWithAd`/`decryptWithAd` uses. */
  get nonce(): bigint {
    return this.#n;
  }

  /** §5.1 SetNonce; 2^64 − 1 is allowed and leaves the counter exhausted. */
  setNonce(n: bigint): void {
    this.#checkLive();
    if (typeof n !== 'bigint' || n < 0n || n > MAX_NONCE)
      throw invalid('ERR_NOISE_NONCE_INVALID', 'a nonce must be a bigint in [0, 2^64 - 1]');
    this.#n = n;
  }

  encryptWithAd(ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    this.#checkLive();
    if (this.#k === undefined) return this.#passThrough(plaintext);
    this.#checkCounter();
    const ciphertext = this.#encrypt(this.#k, this.#n, ad, plaintext);
    this.#n += 1n;
    return ciphertext;
  }

  /** Throws `ERR_NOISE_DECRYPT_FAILED` and keeps `n` if `ciphertext` does not authenticate. */
  decryptWithAd(ad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
    this.#checkLive();
    if (this.#k === undefined) return this.#passThrough(ciphertext);
    this.#checkCounter();
    const plaintext = this.#decrypt(this.#k, this.#n, ad, ciphertext);
    this.#n += 1n;
    return plaintext;
  }

  /**
   * ENCRYPT(k, n, ad, plaintext) with the caller's `n`. `plaintext` may come in pieces (sealed as
   * their concatenation); the ciphertext follows `headroom` zero bytes the caller fills (a frame's
   * header), in one buffer.
   */
  encryptAt(
    n: bigint,
    ad: Uint8Array,
    plaintext: Uint8Array | readonly Uint8Array[],
    headroom = 0,
  ): Uint8Array {
    checkExplicitNonce(n);
    return this.#encrypt(this.#requireKey(), n, ad, plaintext, headroom);
  }

  decryptAt(n: bigint, ad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
    checkExplicitNonce(n);
    return this.#decrypt(this.#requireKey(), n, ad, ciphertext);
  }

  /** §4.2 REKEY: k = the first 32 bytes of ENCRYPT(k, 2^64 − 1, zerolen, 32 zeros); n is kept. */
  rekey(): void {
    const key = this.#requireKey();
    const sealed = aeadEncrypt(
      this.#cipher.algorithm,
      key,
      this.#nonceFor(MAX_NONCE),
      ZEROS,
      EMPTY,
    );
    this.#k = sealed.slice(0, AEAD_KEY_BYTES);
    wipe(sealed);
    wipe(key);
  }

  /**
   * An independent copy (key and counter). A receiver that rekeys on a schedule keeps a copy of
   * the previous key for messages still in flight, as Ockam's decryptor does.
   */
  clone(): CipherState {
    this.#checkLive();
    const copy = new CipherState(this.#suite, this.#k?.slice());
    copy.#n = this.#n;
    return copy;
  }

  /** Wipes the key; every later call throws `ERR_NOISE_STATE`. Idempotent. */
  destroy(): void {
    if (this.#k !== undefined) wipe(this.#k);
    this.#k = undefined;
    this.#destroyed = true;
  }

  #checkLive(): void {
    if (this.#destroyed) throw noiseState('the cipher state was destroyed');
  }

  #requireKey(): Uint8Array {
    this.#checkLive();
    if (this.#k === undefined) throw noiseState('the cipher state has no key');
    return this.#k;
  }

  /** §5.1: 32 zero bits, then n as 64 bits (§12.3 ChaChaPoly little-endian, §12.4 AESGCM big). */
  #nonceFor(n: bigint): Uint8Array {
    this.#nonceView.setBigUint64(4, n, this.#cipher.littleEndian);
    return this.#nonce;
  }

  #checkCounter(): void {
    if (this.#n >= MAX_NONCE)
      throw exhausted(
        'ERR_NOISE_NONCE_EXHAUSTED',
        'the cipher state nonce is exhausted: a new handshake is needed',
      );
  }

  #passThrough(bytes: Uint8Array): Uint8Array {
    if (bytes.byteLength > NOISE_MAX_MESSAGE_BYTES) throw tooLarge(bytes.byteLength);
    return bytes.slice();
  }

  #encrypt(
    key: Uint8Array,
    n: bigint,
    ad: Uint8Array,
    plaintext: Uint8Array | readonly Uint8Array[],
    headroom = 0,
  ): Uint8Array {
    let length = AEAD_TAG_BYTES;
    if (ArrayBuffer.isView(plaintext)) length += plaintext.byteLength;
    else for (const piece of plaintext) length += piece.byteLength;
    if (length > NOISE_MAX_MESSAGE_BYTES) throw tooLarge(length);
    return aeadEncrypt(this.#cipher.algorithm, key, this.#nonceFor(n), plaintext, ad, headroom);
  }

  #decrypt(key: Uint8Array, n: bigint, ad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
    if (ciphertext.byteLength > NOISE_MAX_MESSAGE_BYTES)
      throw malformed(`a noise message of ${ciphertext.byteLength} bytes exceeds the maximum`);
    if (ciphertext.byteLength < AEAD_TAG_BYTES)
      throw malformed(`a ciphertext of ${ciphertext.byteLength} bytes is shorter than its tag`);
    try {
      return aeadDecrypt(this.#cipher.algorithm, key, this.#nonceFor(n), ciphertext, ad);
    } catch (error) {
      if (isMandateError(error, 'ERR_CRYPTO_DECRYPT_FAILED'))
        throw unauthorized('ERR_NOISE_DECRYPT_FAILED', 'noise message failed authentication');
      throw error;
    }
  }
}

/** §5.2 SymmetricState. Not exported: the handshake snapshots it (`clone`) to stay atomic. */
class SymmetricState {
  readonly #suite: NoiseSuite;
  #ck: Uint8Array;
  #h: Uint8Array;
  #cs: CipherState;

  private constructor(suite: NoiseSuite, ck: Uint8Array, h: Uint8Array, cs: CipherState) {
    this.#suite = suite;
    this.#ck = ck;
    this.#h = h;
    this.#cs = cs;
  }

  /** InitializeSymmetric: h = the name padded with zeros to HASHLEN, or HASH(name) if longer. */
  static initialize(suite: NoiseSuite, protocolName: Uint8Array): SymmetricState {
    let h: Uint8Array;
    if (protocolName.byteLength <= HASHLEN) {
      h = new Uint8Array(HASHLEN);
      h.set(protocolName);
    } else {
      h = sha256(protocolName).slice();
    }
    return new SymmetricState(suite, h.slice(), h, new CipherState(suite));
  }

  get h(): Uint8Array {
    return this.#h;
  }

  mixKey(inputKeyMaterial: Uint8Array): void {
    const [ck, tempK] = hkdf(this.#ck, inputKeyMaterial);
    wipe(this.#ck);
    this.#ck = ck;
    this.#cs.destroy();
    this.#cs = new CipherState(this.#suite, tempK);
  }

  mixHash(data: Uint8Array): void {
    const input = new Uint8Array(HASHLEN + data.byteLength);
    input.set(this.#h);
    input.set(data, HASHLEN);
    this.#h = sha256(input).slice();
  }

  encryptAndHash(plaintext: Uint8Array): Uint8Array {
    const ciphertext = this.#cs.encryptWithAd(this.#h, plaintext);
    this.mixHash(ciphertext);
    return ciphertext;
  }

  decryptAndHash(ciphertext: Uint8Array): Uint8Array {
    const plaintext = this.#cs.decryptWithAd(this.#h, ciphertext);
    this.mixHash(ciphertext);
    return plaintext;
  }

  split(): [CipherState, CipherState] {
    const [tempK1, tempK2] = hkdf(this.#ck, EMPTY);
    return [new CipherState(this.#suite, tempK1), new CipherState(this.#suite, tempK2)];
  }

  clone(): SymmetricState {
    return new SymmetricState(this.#suite, this.#ck.slice(), this.#h.slice(), this.#cs.clone());
  }

  /** Wipes ck and k; h stays readable (it is the public handshake hash). */
  wipe(): void {
    wipe(this.#ck);
    this.#cs.destroy();
  }
}

/** What each XX message (§7.5: -> e; <- e, ee, s, es; -> s, se) adds around its payload. */
const OVERHEAD_BYTES = [
  DHLEN, // e
  DHLEN + DHLEN + AEAD_TAG_BYTES + AEAD_TAG_BYTES, // e, enc(s), payload tag
  DHLEN + AEAD_TAG_BYTES + AEAD_TAG_BYTES, // enc(s), payload tag
] as const;
const MESSAGE_COUNT = OVERHEAD_BYTES.length;

function checkKey(bytes: Uint8Array, what: string): void {
  if (!(bytes instanceof Uint8Array) || bytes.byteLength !== DHLEN)
    throw argument(`${what} must be ${DHLEN} bytes`);
}

function checkProtocolName(name: string): Uint8Array {
  // §8: names are ASCII, at most 255 bytes.
  if (!/^[\x20-\x7e]+$/.test(name) || name.length > PROTOCOL_NAME_MAX_BYTES)
    throw argument(`a protocol name must be 1 to ${PROTOCOL_NAME_MAX_BYTES} printable ascii bytes`);
  return new TextEncoder().encode(name);
}

/** §5.3 HandshakeState for the XX pattern. */
class HandshakeState implements NoiseHandshake {
  readonly #initiator: boolean;
  readonly #s: NoiseStaticKey;
  readonly #generateEphemeral: () => NoiseKeyPair;
  readonly #splitOrder: SplitOrder;
  #ss: SymmetricState;
  #e: NoiseKeyPair | undefined;
  #re: Uint8Array | undefined;
  #rs: Uint8Array | undefined;
  /** The index of the next message of the pattern (0, 1, 2); 3 once complete. */
  #index = 0;
  #split = false;
  #destroyed = false;

  constructor(options: NoiseHandshakeOptions) {
    if (typeof options.initiator !== 'boolean') throw argument('`initiator` must be a boolean');
    cipherOf(options.suite);
    checkKey(options.staticKey.publicKey, 'the static public key');
    const splitOrder = options.splitOrder ?? SplitOrder.standard;
    if (splitOrder !== SplitOrder.standard && splitOrder !== SplitOrder.reversed)
      throw argument(`unknown split order \`${String(splitOrder)}\``);
    this.#initiator = options.initiator;
    this.#s = options.staticKey;
    this.#generateEphemeral = options.generateEphemeral;
    this.#splitOrder = splitOrder;
    this.#ss = SymmetricState.initialize(
      options.suite,
      checkProtocolName(options.protocolName ?? options.suite),
    );
    this.#ss.mixHash(options.prologue ?? EMPTY);
  }

  get complete(): boolean {
    return this.#index === MESSAGE_COUNT;
  }

  get handshakeHash(): Uint8Array {
    return this.#ss.h.slice();
  }

  get remoteStaticKey(): Uint8Array | undefined {
    return this.#rs?.slice();
  }

  writeMessage(payload: Uint8Array = EMPTY): Uint8Array {
    const index = this.#expectTurn(true);
    const length = payload.byteLength + OVERHEAD_BYTES[index];
    if (length > NOISE_MAX_MESSAGE_BYTES) throw tooLarge(length);
    const ss = this.#ss.clone();
    let e: NoiseKeyPair | undefined;
    try {
      const parts: Uint8Array[] = [];
      if (index === 0) {
        e = this.#newEphemeral();
        ss.mixHash(e.publicKey); // e
        parts.push(e.publicKey);
      } else if (index === 1) {
        const re = this.#re!;
        e = this.#newEphemeral();
        ss.mixHash(e.publicKey); // e
        mixDh(ss, x25519(e.secretKey, re)); // ee
        parts.push(e.publicKey, ss.encryptAndHash(this.#s.publicKey)); // s
        mixDh(ss, this.#staticDh(re)); // es
      } else {
        parts.push(ss.encryptAndHash(this.#s.publicKey)); // s
        mixDh(ss, this.#staticDh(this.#re!)); // se
      }
      parts.push(ss.encryptAndHash(payload));
      const message = concatBytes(...parts);
      this.#commit(ss, e === undefined ? {} : { e });
      return message;
    } catch (error) {
      ss.wipe();
      if (e !== undefined) wipe(e.secretKey);
      throw error;
    }
  }

  readMessage(message: Uint8Array): Uint8Array {
    const index = this.#expectTurn(false);
    if (message.byteLength > NOISE_MAX_MESSAGE_BYTES)
      throw malformed(`a noise message of ${message.byteLength} bytes exceeds the maximum`);
    const minimum = OVERHEAD_BYTES[index];
    if (message.byteLength < minimum)
      throw malformed(
        `handshake message ${index + 1} has ${message.byteLength} bytes, fewer than ${minimum}`,
      );
    const ss = this.#ss.clone();
    try {
      let offset = 0;
      let re: Uint8Array | undefined;
      let rs: Uint8Array | undefined;
      if (index === 0 || index === 1) {
        re = message.slice(0, DHLEN);
        offset = DHLEN;
        ss.mixHash(re); // e
      }
      if (index === 1) {
        const e = this.#e!;
        mixDh(ss, x25519(e.secretKey, re!)); // ee
        rs = ss.decryptAndHash(message.subarray(offset, offset + DHLEN + AEAD_TAG_BYTES)); // s
        offset += DHLEN + AEAD_TAG_BYTES;
        mixDh(ss, x25519(e.secretKey, rs)); // es
      } else if (index === 2) {
        rs = ss.decryptAndHash(message.subarray(0, DHLEN + AEAD_TAG_BYTES)); // s
        offset = DHLEN + AEAD_TAG_BYTES;
        mixDh(ss, x25519(this.#e!.secretKey, rs)); // se
      }
      const payload = ss.decryptAndHash(message.subarray(offset));
      this.#commit(ss, {
        ...(re === undefined ? {} : { re }),
        ...(rs === undefined ? {} : { rs }),
      });
      return payload;
    } catch (error) {
      ss.wipe();
      throw error;
    }
  }

  split(): TransportCipherStates {
    if (this.#destroyed) throw noiseState('the handshake was destroyed');
    if (!this.complete)
      throw noiseState(`split before the handshake is complete (next message ${this.#index + 1})`);
    if (this.#split) throw noiseState('split was already called');
    const [c1, c2] = this.#ss.split();
    this.#split = true;
    this.#ss.wipe();
    const sendsFirst = this.#initiator === (this.#splitOrder === SplitOrder.standard);
    return sendsFirst ? { send: c1, receive: c2 } : { send: c2, receive: c1 };
  }

  destroy(): void {
    this.#destroyed = true;
    this.#ss.wipe();
    this.#wipeEphemeral();
  }

  #expectTurn(writing: boolean): 0 | 1 | 2 {
    if (this.#destroyed) throw noiseState('the handshake was destroyed');
    const index = this.#index;
    if (index !== 0 && index !== 1 && index !== 2) throw noiseState('the handshake is complete');
    // The initiator writes messages 1 and 3, the responder message 2.
    const ours = (index % 2 === 0) === this.#initiator;
    if (ours !== writing)
      throw noiseState(
        `handshake message ${index + 1} is to be ${ours ? 'written' : 'read'} by this side`,
      );
    return index;
  }

  #newEphemeral(): NoiseKeyPair {
    const pair = this.#generateEphemeral();
    checkKey(pair.publicKey, 'an ephemeral public key');
    checkKey(pair.secretKey, 'an ephemeral secret key');
    return pair;
  }

  #staticDh(peerPublicKey: Uint8Array): Uint8Array {
    const shared = this.#s.dh(peerPublicKey);
    if (!(shared instanceof Uint8Array) || shared.byteLength !== DHLEN) {
      throw argument(`the static key's dh must return ${DHLEN} bytes`);
    }
    return shared;
  }

  #commit(
    ss: SymmetricState,
    update: { e?: NoiseKeyPair; re?: Uint8Array; rs?: Uint8Array },
  ): void {
    this.#ss.wipe();
    this.#ss = ss;
    if (update.e !== undefined) this.#e = update.e;
    if (update.re !== undefined) this.#re = update.re;
    if (update.rs !== undefined) this.#rs = update.rs;
    this.#index += 1;
    // XX's last DH is in message 3: from here on the ephemeral secret only endangers forward
    // secrecy, so it goes now rather than at split.
    if (this.complete) this.#wipeEphemeral();
  }

  #wipeEphemeral(): void {
    if (this.#e !== undefined) wipe(this.#e.secretKey);
  }
}

function mixDh(ss: SymmetricState, shared: Uint8Array): void {
  try {
    ss.mixKey(shared);
  } finally {
    wipe(shared);
  }
}

export function createHandshake(options: NoiseHandshakeOptions): NoiseHandshake {
  return new HandshakeState(options);
}

/** A static key from a raw X25519 secret (copied), for tests and keys not held by a vault. */
export function staticKeyFromSecret(secretKey: Uint8Array): NoiseStaticKey {
  const secret = secretKey.slice();
  const publicKey = x25519PublicKey(secret);
  return { publicKey, dh: (peerPublicKey) => x25519(secret, peerPublicKey) };
}
