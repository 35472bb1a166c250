import { isMandateError, systemClock, type Clock, type Logger } from '../core/index.js';
import {
  checkUnixSeconds,
  internal,
  invalid,
  MAX_TIMER_MS,
  silentLogger,
  withJitter,
} from '../core/internal.js';
import { generateX25519KeyPair, randomUnit, wipe, x25519 } from '../crypto/index.js';
import { attestPurposeKey, decodePurposeKeyAttestation } from '../identity/internal.js';
import { Purpose, type VerifiedIdentity } from '../identity/index.js';
import type { SigningVault } from '../vault/index.js';
import { DEFAULT_CHANNEL_KEY_TTL_SECONDS } from './channel-identity.js';
import { encodeIdentityPayload } from './identity-payload.js';
import type { NoiseStaticKey } from './noise.js';

/** A secure-channel static key and the attestation that presents it. */
export interface AttestedStaticKey {
  readonly staticKey: NoiseStaticKey;
  /** The PurposeKeyAttestation bytes naming `staticKey.publicKey`. */
  readonly attestation: Uint8Array;
  /** The attestation's `expires_at` (unix seconds). */
  readonly expiresAt: number;
}

/**
 * Where a channel end takes its static key from (`SecureChannelOptions.staticKey`): each end
 * takes the key current when its handshake starts and keeps it for its life.
 */
export interface StaticKeySource {
  current(): AttestedStaticKey;
}

/** By default a key is replaced once less than this is left of its attestation (half of a day). */
export const DEFAULT_ROTATE_BEFORE_SECONDS = DEFAULT_CHANNEL_KEY_TTL_SECONDS / 2;
/** After a failed rotation, try again after this long (jittered). */
export const DEFAULT_ROTATION_RETRY_MS = 60_000;

/** Options of {@link StaticKeyManager.start}. */
export interface StaticKeyManagerOptions {
  readonly identity: VerifiedIdentity;
  /** The vault key id of the identity's current primary key, which attests every key. */
  readonly primaryKeyId: string;
  readonly clock?: Clock;
  /** How long each key's attestation is valid; default a day. */
  readonly ttlSeconds?: number;
  /** Replace the key once less than this is left of its attestation; default half a day (at most half of `ttlSeconds`). */
  readonly rotateBeforeSeconds?: number;
  /** After a failed rotation, try again after this long; default 60 000. */
  readonly retryMs?: number;
  readonly logger?: Logger;
  /** Called with each new key once it is current (not the first one). */
  readonly onRotated?: (key: AttestedStaticKey) => void;
}

/** A static key whose secret can be wiped once no handshake can still use it. */
interface OwnedStaticKey extends AttestedStaticKey {
  destroy(): void;
}

/**
 * A process's secure-channel static keys, rotated while it runs (docs/spec/channel.md, "Static
 * keys of a running node"): a fresh X25519 key, held in process memory (Noise needs a
 * synchronous DH), attested by the identity's primary key for `ttlSeconds`; once less than
 * `rotateBeforeSeconds` of that attestation is left, a new key is made and attested, and new
 * handshakes take it. Channels opened under an older key keep it — the static key is used only
 * during the handshake — and the previous key's secret is wiped at the rotation after (a whole
 * rotation period later, far past any handshake in flight). A node thus presents a valid
 * attestation to every new peer however long it runs.
 *
 * A timer rotates by itself (unref'd; a failure is logged and retried after `retryMs`, the old
 * key staying valid meanwhile); `rotateIfDue` does the same on demand, for tests and callers
 * with their own schedule. `stop` ends the timer and wipes every secret.
 */
export class StaticKeyManager implements StaticKeySource {
  readonly #vault: SigningVault;
  readonly #options: StaticKeyManagerOptions;
  readonly #clock: Clock;
  readonly #ttlSeconds: number;
  readonly #rotateBeforeSeconds: number;
  #current: OwnedStaticKey;
  #previous: OwnedStaticKey | undefined;
  #rotations = 0;
  #inFlight: Promise<boolean> | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;

  private constructor(
    vault: SigningVault,
    options: StaticKeyManagerOptions,
    ttlSeconds: number,
    rotateBeforeSeconds: number,
    first: OwnedStaticKey,
  ) {
    this.#vault = vault;
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#ttlSeconds = ttlSeconds;
    this.#rotateBeforeSeconds = rotateBeforeSeconds;
    this.#current = first;
  }

  /**
   * Makes and attests the first key and starts the rotation timer. Rejects with
   * `ERR_ARGUMENT_INVALID` for a `rotateBeforeSeconds` not between 1 and `ttlSeconds − 1`, and
   * with the attestation's errors (e.g. `ERR_PURPOSE_KEY_EXPIRED` when the identity may no longer
   * attest keys).
   */
  static async start(
    vault: SigningVault,
    options: StaticKeyManagerOptions,
  ): Promise<StaticKeyManager> {
    const ttlSeconds = options.ttlSeconds ?? DEFAULT_CHANNEL_KEY_TTL_SECONDS;
    if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 2) {
      throw invalid('ERR_ARGUMENT_INVALID', '`ttlSeconds` must be an integer of at least 2');
    }
    const rotateBeforeSeconds =
      options.rotateBeforeSeconds ??
      Math.min(DEFAULT_ROTATE_BEFORE_SECONDS, Math.floor(ttlSeconds / 2));
    if (
      !Number.isSafeInteger(rotateBeforeSeconds) ||
      rotateBeforeSeconds < 1 ||
      rotateBeforeSeconds >= ttlSeconds
    ) {
      throw invalid(
        'ERR_ARGUMENT_INVALID',
        `\`rotateBeforeSeconds\` must be an integer from 1 to ${ttlSeconds - 1} (below \`ttlSeconds\`)`,
      );
    }
    const clock = options.clock ?? systemClock;
    const first = await attestedKey(vault, options, ttlSeconds, clock.nowSeconds());
    const manager = new StaticKeyManager(vault, options, ttlSeconds, rotateBeforeSeconds, first);
    manager.#schedule();
    return manager;
  }

  /** The key new handshakes take. */
  current(): AttestedStaticKey {
    return this.#current;
  }

  /** Keys made after the first one so far. */
  get rotations(): number {
    return this.#rotations;
  }

  /** When the current key is due for replacement (unix seconds). */
  get dueAt(): number {
    return this.#current.expiresAt - this.#rotateBeforeSeconds;
  }

  /**
   * The identity payload presenting the current key with `credentials` and `chains` — the
   * `identityPayload` to give with this manager as `staticKey` (channel ends put the attestation
   * of the key they take in its place).
   */
  identityPayload(
    credentials: readonly Uint8Array[] = [],
    chains: readonly Uint8Array[] = [],
  ): Uint8Array {
    return encodeIdentityPayload({
      changeHistory: this.#options.identity.changeHistory,
      secureChannelAttestation: this.#current.attestation,
      credentials,
      chains,
    });
  }

  /**
   * Replaces the key when it is due; resolves true when it did. One rotation at a time: calls
   * meanwhile share it. Rejects with the attestation's error, the current key staying in place.
   */
  rotateIfDue(): Promise<boolean> {
    if (this.#stopped) return Promise.resolve(false);
    const now = checkUnixSeconds(this.#clock.nowSeconds());
    if (now < this.dueAt) return Promise.resolve(false);
    this.#inFlight ??= this.#rotate(now).finally(() => {
      this.#inFlight = undefined;
    });
    return this.#inFlight;
  }

  /** Stops rotating and wipes every key's secret: no handshake can take a key afterwards. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#previous?.destroy();
    this.#current.destroy();
  }

  async #rotate(now: number): Promise<boolean> {
    const next = await attestedKey(this.#vault, this.#options, this.#ttlSeconds, now);
    // The identity's window may cut the new attestation short: a key that would not outlive the
    // current one is no rotation (and would be due again at once).
    if (this.#stopped || next.expiresAt <= this.#current.expiresAt) {
      next.destroy();
      if (this.#stopped) return false;
      throw invalid(
        'ERR_PURPOSE_KEY_EXPIRED',
        `identity \`${this.#options.identity.identifier}\` may attest keys only until ${next.expiresAt}; rotate it`,
      );
    }
    // The key retired a rotation ago can be in no handshake any more.
    this.#previous?.destroy();
    this.#previous = this.#current;
    this.#current = next;
    this.#rotations++;
    (this.#options.logger ?? silentLogger).info('channel: static key rotated', {
      expires: next.expiresAt,
    });
    this.#options.onRotated?.(next);
    return true;
  }

  #schedule(delayMs?: number): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    const waitMs = delayMs ?? (this.dueAt - this.#clock.nowSeconds()) * 1000;
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        // A long wait is taken in steps: rotateIfDue does nothing before the key is due.
        this.rotateIfDue().then(
          () => {
            this.#schedule();
          },
          (error: unknown) => {
            if (this.#stopped) return;
            const retryInMs = withJitter(
              this.#options.retryMs ?? DEFAULT_ROTATION_RETRY_MS,
              randomUnit,
            );
            (this.#options.logger ?? silentLogger).warn('channel: static key rotation failed', {
              reason: isMandateError(error) ? error.code : 'error',
              retryInMs,
            });
            this.#schedule(retryInMs);
          },
        );
      },
      Math.min(Math.max(0, waitMs), MAX_TIMER_MS),
    );
    this.#timer.unref();
  }
}

/** A fresh X25519 key attested for `ttlSeconds` from `nowSeconds`; its secret only in memory. */
async function attestedKey(
  vault: SigningVault,
  options: StaticKeyManagerOptions,
  ttlSeconds: number,
  nowSeconds: number,
): Promise<OwnedStaticKey> {
  const { publicKey, secretKey } = generateX25519KeyPair();
  let attestation: Uint8Array;
  try {
    attestation = await attestPurposeKey(
      vault,
      options.identity,
      options.primaryKeyId,
      { purpose: Purpose.secureChannel, x25519: publicKey },
      { nowSeconds, ttlSeconds },
    );
  } catch (error) {
    wipe(secretKey);
    throw error;
  }
  let destroyed = false;
  return {
    staticKey: {
      publicKey,
      dh: (peerPublicKey) => {
        if (destroyed) throw internal('ERR_INTERNAL', 'a retired static key was used');
        return x25519(secretKey, peerPublicKey);
      },
    },
    attestation,
    expiresAt: decodePurposeKeyAttestation(attestation).expiresAt,
    destroy: () => {
      destroyed = true;
      wipe(secretKey);
    },
  };
}
