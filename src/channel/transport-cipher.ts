import { invalid, exhausted, unauthorized } from '../core/internal.js';
import type { CipherState } from './noise.js';

/**
 * Transport messages of a secure channel, as Ockam frames them (docs/spec/channel.md):
 *
 *   frame = nonce (u64, big-endian) ‖ AEAD(k_epoch, nonce, ad = ∅, plaintext)
 *
 * The key changes every REKEY_INTERVAL messages with no signalling: the key for nonce n is the
 * split key rekeyed ⌊n / 32⌋ times (Noise REKEY). The receiver accepts a nonce within
 * ±REPLAY_WINDOW of the highest it has accepted, once; it keeps the current and the previous
 * key so reordering across a rekey still decrypts; and it commits any state — the window, a new
 * key epoch — only after the AEAD check succeeds, so forged frames cannot move it.
 */
export const REKEY_INTERVAL = 32n;
export const REPLAY_WINDOW = 32n;
const NONCE_BYTES = 8;
/** Ockam stops a channel before its nonce space ends. */
const MAX_NONCE = (1n << 64n) - 2n;

const EMPTY = new Uint8Array(0);

export class ChannelEncryptor {
  readonly #cipher: CipherState;
  #next = 0n;

  /** Takes over `cipher` (the handshake's send state). */
  constructor(cipher: CipherState) {
    this.#cipher = cipher;
  }

  /**
   * The frame `[headroom zero bytes][nonce][ciphertext ‖ tag]` in one buffer: the caller writes
   * its own header into the headroom. `plaintext` may come in pieces, sealed as their
   * concatenation, so a message and its header need not be joined first.
   */
  encrypt(plaintext: Uint8Array | readonly Uint8Array[], headroom = 0): Uint8Array {
    if (!Number.isSafeInteger(headroom) || headroom < 0)
      throw invalid('ERR_ARGUMENT_INVALID', '`headroom` must be a non-negative integer');
    const n = this.#next;
    if (n > MAX_NONCE)
      throw exhausted(
        'ERR_CHANNEL_NONCE_EXHAUSTED',
        'the channel has used up its nonces; open a new one',
      );
    if (n > 0n && n % REKEY_INTERVAL === 0n) this.#cipher.rekey();
    const frame = this.#cipher.encryptAt(n, EMPTY, plaintext, headroom + NONCE_BYTES);
    this.#next = n + 1n;
    new DataView(frame.buffer, frame.byteOffset).setBigUint64(headroom, n);
    return frame;
  }

  get sent(): bigint {
    return this.#next;
  }

  destroy(): void {
    this.#cipher.destroy();
  }
}

export class ChannelDecryptor {
  /** The key of epoch #epoch, and (when there is one) of the epoch before. */
  #current: CipherState;
  #previous: CipherState | undefined;
  #epoch = 0n;
  /** Highest accepted nonce, or -1 before the first. */
  #highest = -1n;
  /** Bit i set: nonce highest − i was accepted (i < 64). */
  #seen = 0n;

  /** Takes over `cipher` (the handshake's receive state). */
  constructor(cipher: CipherState) {
    this.#current = cipher;
  }

  decrypt(frame: Uint8Array): Uint8Array {
    if (frame.byteLength < NONCE_BYTES)
      throw invalid('ERR_CHANNEL_FRAME_MALFORMED', 'a channel frame is shorter than its nonce');
    const n = new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getBigUint64(0);
    if (n > MAX_NONCE) throw unauthorized('ERR_CHANNEL_REPLAY', 'nonce out of range');
    const highest = this.#highest;
    if (highest >= 0n) {
      if (n > highest + REPLAY_WINDOW)
        throw unauthorized('ERR_CHANNEL_REPLAY', `nonce ${n} is too far ahead of ${highest}`);
      if (n + REPLAY_WINDOW < highest)
        throw unauthorized('ERR_CHANNEL_REPLAY', `nonce ${n} is too far behind ${highest}`);
      if (n <= highest && ((this.#seen >> (highest - n)) & 1n) === 1n)
        throw unauthorized('ERR_CHANNEL_REPLAY', `nonce ${n} was already received`);
    } else if (n > REPLAY_WINDOW) {
      throw unauthorized('ERR_CHANNEL_REPLAY', `nonce ${n} is too far ahead of the start`);
    }
    const epoch = n / REKEY_INTERVAL;
    let key: CipherState;
    let next: CipherState | undefined;
    if (epoch === this.#epoch) key = this.#current;
    else if (epoch + 1n === this.#epoch && this.#previous !== undefined) key = this.#previous;
    else if (epoch === this.#epoch + 1n) {
      next = this.#current.clone();
      next.rekey();
      key = next;
    } else {
      throw unauthorized('ERR_CHANNEL_REPLAY', `nonce ${n} is outside the keys this channel holds`);
    }
    let plaintext: Uint8Array;
    try {
      plaintext = key.decryptAt(n, EMPTY, frame.subarray(NONCE_BYTES));
    } catch (error) {
      next?.destroy();
      throw error;
    }
    // Authentic: now, and only now, the window and the key epoch move.
    if (next !== undefined) {
      this.#previous?.destroy();
      this.#previous = this.#current;
      this.#current = next;
      this.#epoch = epoch;
    }
    if (n > highest) {
      const shift = highest < 0n ? 64n : n - highest;
      this.#seen = shift >= 64n ? 1n : ((this.#seen << shift) | 1n) & 0xffffffffffffffffn;
      this.#highest = n;
    } else {
      this.#seen |= 1n << (highest - n);
    }
    return plaintext;
  }

  destroy(): void {
    this.#current.destroy();
    this.#previous?.destroy();
  }
}
