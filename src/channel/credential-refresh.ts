import { isMandateError, type Clock, type Logger } from '../core/index.js';
import { invalid, MAX_TIMER_MS, unavailable, withJitter } from '../core/internal.js';
import { randomUnit } from '../crypto/index.js';
import { bytesEqual } from '../encoding/index.js';
import { newerHistory } from '../identity/internal.js';
import { Purpose } from '../identity/index.js';
import {
  payloadExpiresAt,
  reasonOf,
  verifyPeer,
  withAttestation,
  type VerifiedPeer,
  type VerifyPeerOptions,
} from './identity-payload.js';

export const DEFAULT_REFRESH_LEAD_SECONDS = 60;
export const DEFAULT_REFRESH_RETRY_MS = 5_000;

/** How an end renews its own credentials before they expire (docs/spec/channel.md). */
export interface CredentialRefreshOptions {
  /**
   * Returns this side's identity payload with fresh credentials, attesting the same
   * secure-channel key. Every channel end calls it when its credentials near expiry, so it should
   * serve a cached payload while that one is fresh enough.
   */
  readonly renew: () => Promise<Uint8Array>;
  /** Refresh this long before the first credential or chain expires; default 60. */
  readonly leadSeconds?: number;
  /** After a failed renewal, try again after this long; default 5 000. */
  readonly retryMs?: number;
}

/** The events of a credential refresh (members of `SecureChannelEvent`). */
export type CredentialRefreshEvent =
  | {
      readonly type: 'refreshed';
      readonly address: string;
      readonly peer: string;
      /** `sent`: this side presented new credentials; `received`: the peer did. */
      readonly direction: 'sent' | 'received';
    }
  | { readonly type: 'refresh_failed'; readonly address: string; readonly reason: string };

/** What a credential refresh needs of the channel end that owns it. */
export interface CredentialRefreshInputs {
  /** The channel end's encryptor address, named in events and logs. */
  readonly address: string;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Automatic renewal; without it, only explicit refreshes. */
  readonly options: CredentialRefreshOptions | undefined;
  /** How the peer's new credentials are judged (as in the handshake). */
  readonly verify: Omit<VerifyPeerOptions, 'remoteStaticKey' | 'nowSeconds'>;
  /** This side's identity payload as presented in the handshake. */
  readonly ownPayload: Uint8Array;
  /**
   * With a `StaticKeySource`: the attestation of the key this end took at its handshake. Every
   * payload it presents carries this one, whatever key the payload given attests (a source
   * rotates its key; this channel keeps the one its handshake used).
   */
  readonly ownAttestation?: Uint8Array | undefined;
  /** Sends a refresh frame sealing `payload`, or undefined while the channel is not open. */
  readonly sender: () => ((payload: Uint8Array) => Promise<void>) | undefined;
  /** The peer as last verified, or undefined before the channel is established. */
  readonly peer: () => VerifiedPeer | undefined;
  /** Installs the peer verified from its refreshed credentials. */
  readonly setPeer: (peer: VerifiedPeer) => void;
  readonly closed: () => boolean;
  /** Counts and reports a dropped frame. */
  readonly drop: (reason: string) => void;
  readonly onEvent: (event: CredentialRefreshEvent) => void;
}

/**
 * In-band credential refresh of one channel end (message type 3, docs/spec/channel.md): the
 * peer's new identity payload, verified like the handshake's for the same identity and key; this
 * side's new one, presented on demand or renewed by itself `leadSeconds` before its own first
 * credential or chain expires (retrying, jittered, after a failure).
 */
export class CredentialRefresh {
  readonly #in: CredentialRefreshInputs;
  /** This side's identity payload as last presented (handshake or refresh). */
  #ownPayload: Uint8Array;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(inputs: CredentialRefreshInputs) {
    this.#in = inputs;
    this.#ownPayload = inputs.ownPayload;
  }

  /** The peer's new credentials: verified as in the handshake, for the same identity and key. */
  receive(payload: Uint8Array): void {
    const peer = this.#in.peer();
    // The handshake only admits a secure-channel key; the check narrows its type.
    const key = peer?.channelKey.key;
    if (peer === undefined || key?.purpose !== Purpose.secureChannel) return;
    const verify = this.#in.verify;
    let next: VerifiedPeer;
    try {
      // Never older than the history this channel already knows the peer by (no rollback), and
      // a fork of it is refused like any other presented history.
      const newest = newerHistory(verify.knownIdentities?.get(peer.identifier), peer.identity);
      next = verifyPeer(payload, {
        ...verify,
        knownIdentities: new Map([[peer.identifier, newest]]),
        remoteStaticKey: key.x25519,
        established: peer,
        nowSeconds: this.#in.clock.nowSeconds(),
      });
      if (next.identifier !== peer.identifier) {
        throw invalid(
          'ERR_CHANNEL_REFRESH_INVALID',
          'a credential refresh names another identity than the channel peer',
        );
      }
    } catch (error) {
      const reason = reasonOf(error);
      this.#in.drop(reason);
      this.#in.onEvent({ type: 'refresh_failed', address: this.#in.address, reason });
      return;
    }
    this.#in.setPeer(next);
    this.#in.onEvent({
      type: 'refreshed',
      address: this.#in.address,
      peer: next.identifier,
      direction: 'received',
    });
  }

  /**
   * Presents new credentials to the peer: `payload` (an identity payload attesting this side's
   * secure-channel key), or else what `credentialRefresh.renew` returns.
   */
  async present(payload?: Uint8Array): Promise<void> {
    const renew = this.#in.options?.renew;
    if (payload === undefined && renew === undefined) {
      throw invalid(
        'ERR_ARGUMENT_INVALID',
        'refreshCredentials needs a payload when the channel has no `credentialRefresh.renew`',
      );
    }
    const given = payload ?? (await renew!());
    const attestation = this.#in.ownAttestation;
    const bytes = attestation === undefined ? given : withAttestation(given, attestation);
    // Checks that it decodes before the peer has to.
    payloadExpiresAt(bytes);
    const send = this.#in.sender();
    const peer = this.#in.peer();
    if (send === undefined || peer === undefined) {
      throw unavailable('ERR_CHANNEL_CLOSED', 'the secure channel is not open');
    }
    // Already presented (the listener and this end's own timer may both bring the same renewal).
    if (bytesEqual(bytes, this.#ownPayload)) return;
    this.#ownPayload = bytes;
    await send(bytes);
    this.#in.onEvent({
      type: 'refreshed',
      address: this.#in.address,
      peer: peer.identifier,
      direction: 'sent',
    });
    this.schedule();
  }

  /** With `credentialRefresh`: a timer for `leadSeconds` before this side's credentials expire. */
  schedule(delayMs?: number): void {
    const refresh = this.#in.options;
    if (refresh === undefined || this.#in.closed()) return;
    this.stop();
    let dueAt: number;
    try {
      dueAt =
        payloadExpiresAt(this.#ownPayload) - (refresh.leadSeconds ?? DEFAULT_REFRESH_LEAD_SECONDS);
    } catch {
      return;
    }
    if (!Number.isFinite(dueAt)) return;
    const waitMs = delayMs ?? (dueAt - this.#in.clock.nowSeconds()) * 1000;
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        void this.#renew(dueAt);
      },
      Math.min(Math.max(0, waitMs), MAX_TIMER_MS),
    );
    this.#timer.unref();
  }

  /** Cancels the renewal timer (the channel closed). */
  stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async #renew(dueAt: number): Promise<void> {
    if (this.#in.closed()) return;
    // A long wait is taken in steps: not due yet, wait again.
    if (this.#in.clock.nowSeconds() < dueAt) {
      this.schedule();
      return;
    }
    const refresh = this.#in.options;
    if (refresh === undefined) return;
    try {
      const current = payloadExpiresAt(this.#ownPayload);
      const renewed = await refresh.renew();
      if (!(payloadExpiresAt(renewed) > current)) {
        throw invalid(
          'ERR_CHANNEL_REFRESH_INVALID',
          'the renewed credentials expire no later than the current ones',
        );
      }
      await this.present(renewed);
    } catch (error) {
      if (this.#in.closed()) return;
      const reason = isMandateError(error) ? error.code : 'error';
      this.#in.logger.warn('channel: credential refresh failed', {
        address: this.#in.address,
        reason,
      });
      this.#in.onEvent({ type: 'refresh_failed', address: this.#in.address, reason });
      // Jittered: every channel of a swarm whose authority was down would otherwise retry at once.
      this.schedule(withJitter(refresh.retryMs ?? DEFAULT_REFRESH_RETRY_MS, randomUnit));
    }
  }
}
