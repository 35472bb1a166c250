import { isMandateError, systemClock, type Clock, type Logger } from '../core/index.js';
import {
  invalid,
  isUnixSeconds,
  silentLogger,
  timeout,
  unauthorized,
  unavailable,
} from '../core/internal.js';
import { generateX25519KeyPair } from '../crypto/index.js';
import { decodeEnvelope, encodeEnvelopeHead } from '../routing/internal.js';
import {
  localAddress,
  TransportType,
  type Envelope,
  type MessageContext,
  type Route,
  type Router,
  type Worker,
} from '../routing/index.js';
import { ChannelHandshake } from './channel-handshake.js';
import {
  CredentialRefresh,
  type CredentialRefreshEvent,
  type CredentialRefreshOptions,
} from './credential-refresh.js';
import {
  payloadExpiresAt,
  peerExpiresAt,
  reasonOf,
  revalidatePeer,
  withAttestation,
  type TrustPolicy,
  type VerifiedPeer,
  type VerifyPeerOptions,
} from './identity-payload.js';
import type { NoiseKeyPair, NoiseStaticKey } from './noise.js';
import type { StaticKeySource } from './static-key-manager.js';
import type { ChannelDecryptor, ChannelEncryptor } from './transport-cipher.js';

/**
 * Secure channels over routes (docs/spec/channel.md, "Channels over routes"), as Ockam runs them
 * (research/ockam.md §4.1–4.3). A listener at a local address (default `api`) spawns a responder
 * for each handshake message 1; each end of an established channel is two local workers:
 *
 * - the **encryptor** (`sc-N-enc`) takes local messages sent to `[encryptor, …rest]`, encrypts
 *   `[rest, return_route, payload]` (a routing envelope) and sends the frame to the peer's
 *   decryptor;
 * - the **decryptor** (`sc-N-dec`) takes frames from the network, decrypts them and delivers the
 *   inner message to the local worker its onward route names — only to workers opened to the
 *   channel — with the return route prefixed by the encryptor (replies go back encrypted) and
 *   `ctx.localInfo` a `SecureChannelLocalInfo` holding the verified peer.
 *
 * Every routing payload of a channel is `type: u8 ‖ body`: 0 a handshake message, 1 a transport
 * frame, 2 a close (a transport frame of an empty plaintext, so only the peer can close), 3 a
 * credential refresh (a transport frame whose plaintext is the sender's new identity payload),
 * 4 the responder's rejection of an initiator it refused after message 3 (a transport frame of an
 * empty plaintext: authenticated like the confirmation, and saying nothing of why).
 *
 * After the handshake each end keeps judging its peer: before every delivery, credentials and
 * chains that have expired (or that the deny-set now holds) are dropped from the peer, and when
 * the trust policy no longer accepts what is left, nothing more is delivered until a refresh
 * brings fresh ones; a revoked identity closes the channel.
 */
export const ChannelMessageType = {
  handshake: 0,
  transport: 1,
  close: 2,
  refresh: 3,
  rejection: 4,
} as const;

export const DEFAULT_LISTENER_ADDRESS = 'api';
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_HANDSHAKES = 128;

/** What a worker finds in `ctx.localInfo` for a message that came through a secure channel. */
export class SecureChannelLocalInfo {
  constructor(
    /** The peer as it stood when this message was delivered. */
    readonly peer: VerifiedPeer,
    /** The local encryptor of the channel: replies sent to it go back encrypted. */
    readonly channelAddress: string,
    /**
     * The peer as it stands now — refreshed, with what expired or was revoked dropped — or
     * undefined once the channel closed or the trust policy no longer accepts it: for workers
     * that keep acting on a message's authority later (a relay's registration).
     */
    readonly currentPeer: () => VerifiedPeer | undefined = () => peer,
  ) {}
}

/** The verified peer of a message that came through a secure channel, else undefined. */
export function channelPeerOf(ctx: MessageContext): VerifiedPeer | undefined {
  return ctx.localInfo instanceof SecureChannelLocalInfo ? ctx.localInfo.peer : undefined;
}

/**
 * What a channel end reports to its `onEvent`: established, rejected, timed out, dropped, closed, refreshed.
 */
export type SecureChannelEvent =
  | { readonly type: 'established'; readonly address: string; readonly peer: string }
  | { readonly type: 'rejected'; readonly address: string; readonly reason: string }
  | { readonly type: 'timeout'; readonly address: string }
  | { readonly type: 'dropped'; readonly address: string; readonly reason: string }
  | { readonly type: 'closed'; readonly address: string; readonly byPeer: boolean }
  | CredentialRefreshEvent;

/**
 * Options of {@link openSecureChannel} (and, with a listener's own fields, of
 * {@link SecureChannelListener}): this side's key and payload, and how the peer is verified.
 */
export interface SecureChannelOptions {
  /**
   * This side's secure-channel static key (its attested X25519 purpose key), or a source of
   * rotating ones (a `StaticKeyManager`): each channel end then takes the source's current key
   * when its handshake starts, keeps it for its life, and presents `identityPayload` — and every
   * later refresh — with that key's attestation in place of the one the payload carries.
   */
  readonly staticKey: NoiseStaticKey | StaticKeySource;
  /** This side's encoded identity payload (encodeIdentityPayload). */
  readonly identityPayload: Uint8Array;
  /** How the peer is judged; the static key comes from the handshake, the time from `clock`. */
  readonly verify: Omit<VerifyPeerOptions, 'remoteStaticKey' | 'nowSeconds'>;
  readonly clock?: Clock;
  /** Default 10 000; a handshake not complete by then is abandoned. */
  readonly handshakeTimeoutMs?: number;
  /** Local workers the channel may deliver to; deny by default (see also `allow`). */
  readonly deliverTo?: readonly string[];
  /**
   * Per local worker, a policy the peer must also meet for a message to reach that worker:
   * checked on every message against the peer as it stands then (its live credentials), the
   * message dropped (`not_admitted`) otherwise. For a listener whose own trust policy admits
   * more peers than some of its workers may hear from (a node hosting an enrollment service,
   * open to any identity, beside services for credential holders only).
   */
  readonly admit?: ReadonlyMap<string, TrustPolicy>;
  readonly logger?: Logger;
  readonly onEvent?: (event: SecureChannelEvent) => void;
  /** Renew this side's credentials in-band before they expire; off by default. */
  readonly credentialRefresh?: CredentialRefreshOptions;
  /** Tests only: ephemeral keys. */
  readonly generateEphemeral?: () => NoiseKeyPair;
}

let nextChannel = 1;

/** Frames a decryptor holds before the connections feeding it stop reading. */
const DECRYPTOR_QUEUE = 64;

/** Registers the two workers of a channel end under a fresh `sc-N`; returns N's name. */
function registerPair(router: Router, decryptor: Worker, encryptor: Worker): string {
  for (;;) {
    const name = `sc-${nextChannel++}`;
    try {
      // Frames from the network wait here at most DECRYPTOR_QUEUE deep; then the connection
      // stops reading until they are opened (Router maxQueued).
      router.registerWorker(`${name}-dec`, decryptor, { maxQueued: DECRYPTOR_QUEUE });
    } catch (error) {
      if (isMandateError(error, 'ERR_WORKER_EXISTS')) continue;
      throw error;
    }
    try {
      router.registerWorker(`${name}-enc`, encryptor);
    } catch (error) {
      router.unregisterWorker(`${name}-dec`);
      if (isMandateError(error, 'ERR_WORKER_EXISTS')) continue;
      throw error;
    }
    return name;
  }
}

const frame = (type: number, body: Uint8Array): Uint8Array => {
  const bytes = new Uint8Array(1 + body.byteLength);
  bytes[0] = type;
  bytes.set(body, 1);
  return bytes;
};

/**
 * A frame sealed by the channel's key: the encryptor leaves one byte in front of its output for
 * the type, so the frame is built in one buffer (no copy behind a type byte).
 */
const sealedFrame = (
  type: number,
  encryptor: ChannelEncryptor,
  plaintext: Uint8Array | readonly Uint8Array[],
): Uint8Array => {
  const bytes = encryptor.encrypt(plaintext, 1);
  bytes[0] = type;
  return bytes;
};

const NO_BYTES = new Uint8Array(0);

const isKeySource = (key: NoiseStaticKey | StaticKeySource): key is StaticKeySource =>
  'current' in key;

/**
 * The key a channel end starts with and the payload presenting it: the options' own, or the
 * source's current key with its attestation put in the payload.
 */
function ownKey(options: SecureChannelOptions): {
  staticKey: NoiseStaticKey;
  identityPayload: Uint8Array;
  attestation: Uint8Array | undefined;
} {
  const key = options.staticKey;
  if (!isKeySource(key)) {
    return { staticKey: key, identityPayload: options.identityPayload, attestation: undefined };
  }
  const { staticKey, attestation } = key.current();
  // Handshakes in a row present the same payload with the same key: decode and encode it once.
  let last = presented.get(key);
  if (last?.given !== options.identityPayload || last.attestation !== attestation) {
    last = {
      given: options.identityPayload,
      attestation,
      payload: withAttestation(options.identityPayload, attestation),
    };
    presented.set(key, last);
  }
  return { staticKey, identityPayload: last.payload, attestation };
}

/** Per key source, the payload its current key was last put in (see ownKey). */
const presented = new WeakMap<
  StaticKeySource,
  { given: Uint8Array; attestation: Uint8Array; payload: Uint8Array }
>();

/**
 * One end of a channel, in every state: handshaking, established, closed. It owns the
 * decryptor worker (handshake messages and frames from the network) and, once established,
 * the encryptor worker.
 */
class ChannelEnd {
  readonly decryptorAddress: string;
  readonly encryptorAddress: string;
  readonly #router: Router;
  readonly #options: SecureChannelOptions;
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #handshake: ChannelHandshake;
  readonly #allowed: Set<string>;
  /** The connection the channel's traffic comes in on; undefined for a local peer. */
  readonly #connection: string | undefined;
  #remoteRoute: Route = [];
  readonly #initiator: boolean;
  #peer: VerifiedPeer | undefined;
  /** Initiator: the verified responder, until it confirms the channel. */
  #pendingPeer: VerifiedPeer | undefined;
  #encryptor: ChannelEncryptor | undefined;
  #decryptor: ChannelDecryptor | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** The peer's checks hold until then (its first credential or chain expiry). */
  #peerValidUntil = Number.POSITIVE_INFINITY;
  /** The ids a deny-set must not hold: the peer, and its credentials' and chains' ids. */
  #peerRevocationIds: readonly string[] = [];
  readonly #refresh: CredentialRefresh;
  /** Cancels the watch on the connection the channel runs over. */
  readonly #unwatch: () => void;
  #closed = false;
  readonly #closeListeners = new Set<() => void>();
  #dropped = 0;
  readonly #settled: {
    resolve: (end: ChannelEnd) => void;
    reject: (error: unknown) => void;
  };
  readonly #onGone: (end: ChannelEnd) => void;

  constructor(
    router: Router,
    initiator: boolean,
    connection: string | undefined,
    options: SecureChannelOptions,
    allowed: Set<string>,
    settled: { resolve: (end: ChannelEnd) => void; reject: (error: unknown) => void },
    onGone: (end: ChannelEnd) => void,
  ) {
    this.#router = router;
    this.#initiator = initiator;
    this.#options = options;
    this.#logger = options.logger ?? silentLogger;
    this.#clock = options.clock ?? systemClock;
    this.#connection = connection;
    this.#allowed = allowed;
    this.#settled = settled;
    this.#onGone = onGone;
    const own = ownKey(options);
    this.#handshake = new ChannelHandshake({
      initiator,
      staticKey: own.staticKey,
      identityPayload: own.identityPayload,
      generateEphemeral: options.generateEphemeral ?? generateX25519KeyPair,
      verify: { ...options.verify, nowSeconds: this.#clock.nowSeconds() },
    });
    const name = registerPair(
      router,
      { handleMessage: (ctx, envelope) => this.#fromNetwork(ctx, envelope) },
      { handleMessage: (_ctx, envelope) => this.#fromLocal(envelope) },
    );
    this.decryptorAddress = `${name}-dec`;
    this.encryptorAddress = `${name}-enc`;
    this.#refresh = new CredentialRefresh({
      address: this.encryptorAddress,
      clock: this.#clock,
      logger: this.#logger,
      options: options.credentialRefresh,
      verify: options.verify,
      ownPayload: own.identityPayload,
      ownAttestation: own.attestation,
      sender: () => {
        const encryptor = this.#encryptor;
        if (this.#closed || encryptor === undefined) return undefined;
        return (payload) =>
          this.#sendToPeer(sealedFrame(ChannelMessageType.refresh, encryptor, payload));
      },
      peer: () => this.#peer,
      setPeer: (peer) => {
        this.#setPeer(peer);
      },
      closed: () => this.#closed,
      drop: (reason) => {
        this.#drop(reason);
      },
      onEvent: (event) => {
        this.#event(event);
      },
    });
    if (connection !== undefined) router.allowFromConnection(this.decryptorAddress, connection);
    // A channel cannot outlive the connection its route starts on (nor keep timers for it).
    this.#unwatch =
      connection === undefined
        ? () => undefined
        : router.onConnectionClosed(connection, () => {
            this.#connectionLost();
          });
    const timeoutMs = options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#peer !== undefined || this.#closed) return;
      this.#event({ type: 'timeout', address: this.decryptorAddress });
      this.#fail(
        timeout(
          'ERR_CHANNEL_HANDSHAKE_TIMEOUT',
          `the secure-channel handshake did not complete within ${timeoutMs} ms`,
        ),
      );
    }, timeoutMs);
  }

  get peer(): VerifiedPeer | undefined {
    return this.#peer;
  }

  get droppedCount(): number {
    return this.#dropped;
  }

  get closed(): boolean {
    return this.#closed;
  }

  allow(workerAddress: string): void {
    localAddress(workerAddress);
    this.#allowed.add(workerAddress);
  }

  /** Initiator: sends message 1 along `route`. */
  async start(route: Route): Promise<void> {
    this.#remoteRoute = route;
    await this.#router.send({
      onwardRoute: route,
      returnRoute: [localAddress(this.decryptorAddress)],
      payload: frame(ChannelMessageType.handshake, this.#handshake.start()),
    });
  }

  /** Responder: message 1, as the listener received it. */
  async accept(envelope: Envelope): Promise<void> {
    await this.#onHandshake(envelope, envelope.payload.subarray(1), true);
  }

  #connectionLost(): void {
    if (this.#closed) return;
    this.#logger.info('channel: its connection closed', { address: this.encryptorAddress });
    if (this.#peer === undefined) {
      this.#fail(
        unavailable(
          'ERR_CHANNEL_CLOSED',
          'the connection of the secure channel closed during the handshake',
        ),
      );
    } else this.#teardown(false);
  }

  /** Tells the peer (authenticated) and drops both workers. */
  async close(): Promise<void> {
    if (this.#closed) return;
    const encryptor = this.#encryptor;
    if (encryptor !== undefined) {
      const payload = sealedFrame(ChannelMessageType.close, encryptor, NO_BYTES);
      try {
        await this.#sendToPeer(payload);
      } catch (error) {
        this.#logger.warn('channel: close could not reach the peer', { error: reasonOf(error) });
      }
    }
    this.#teardown(false);
  }

  async #sendToPeer(payload: Uint8Array): Promise<void> {
    await this.#router.send({
      onwardRoute: this.#remoteRoute,
      returnRoute: [localAddress(this.decryptorAddress)],
      payload,
    });
  }

  #drop(reason: string): void {
    this.#dropped++;
    this.#logger.warn('channel: message dropped', { address: this.decryptorAddress, reason });
    this.#event({ type: 'dropped', address: this.decryptorAddress, reason });
  }

  #event(event: SecureChannelEvent): void {
    this.#options.onEvent?.(event);
  }

  async #fromNetwork(ctx: MessageContext, envelope: Envelope): Promise<void> {
    if (this.#closed) return;
    // The router already admits only this connection; local senders are trusted.
    if (ctx.sourceConnection !== undefined && ctx.sourceConnection !== this.#connection) {
      this.#drop('wrong_connection');
      return;
    }
    const type = envelope.payload[0];
    const body = envelope.payload.subarray(1);
    const decryptor = this.#decryptor;
    if (type === ChannelMessageType.rejection) {
      if (decryptor !== undefined && this.#peer === undefined) this.#onRejection(decryptor, body);
      else this.#drop('unexpected_rejection');
      return;
    }
    if (type === ChannelMessageType.handshake) {
      if (decryptor === undefined) await this.#onHandshake(envelope, body);
      else if (this.#peer === undefined) this.#onConfirmation(decryptor, body);
      else this.#drop('unexpected_handshake');
      return;
    }
    if (decryptor === undefined) {
      this.#drop('not_established');
      return;
    }
    if (
      type !== ChannelMessageType.transport &&
      type !== ChannelMessageType.close &&
      type !== ChannelMessageType.refresh
    ) {
      this.#drop('unknown_type');
      return;
    }
    let plaintext: Uint8Array;
    try {
      plaintext = decryptor.decrypt(body);
    } catch (error) {
      this.#drop(reasonOf(error));
      return;
    }
    if (type === ChannelMessageType.close) this.#teardown(true);
    else if (this.#peer === undefined) this.#drop('not_established');
    else if (type === ChannelMessageType.refresh) this.#refresh.receive(plaintext);
    else await this.#deliver(plaintext);
  }

  async #onHandshake(envelope: Envelope, message: Uint8Array, first = false): Promise<void> {
    let step;
    try {
      step = this.#handshake.receive(message);
    } catch (error) {
      const reason = reasonOf(error);
      const stray =
        reason === 'ERR_NOISE_DECRYPT_FAILED' || reason === 'ERR_NOISE_MESSAGE_MALFORMED';
      if (stray && !first) {
        // A tampered or stray message: the handshake state is unchanged, the honest one may follow.
        this.#drop(reason);
        return;
      }
      this.#event({ type: 'rejected', address: this.decryptorAddress, reason });
      this.#logger.warn('channel: handshake failed', { address: this.decryptorAddress, reason });
      this.#fail(error);
      // A responder that refused message 3 says so, under the channel's key, instead of leaving
      // the initiator to time out; the reason stays here.
      const rejection = this.#handshake.takeRejection();
      if (rejection !== undefined) {
        this.#remoteRoute = envelope.returnRoute;
        try {
          await this.#sendToPeer(frame(ChannelMessageType.rejection, rejection));
        } catch (sendError) {
          this.#logger.warn('channel: the rejection could not reach the peer', {
            error: reasonOf(sendError),
          });
        }
      }
      return;
    }
    this.#remoteRoute = envelope.returnRoute;
    if (step.send !== undefined) {
      await this.#sendToPeer(frame(ChannelMessageType.handshake, step.send));
    }
    const established = step.established;
    if (established === undefined) return;
    this.#encryptor = established.encryptor;
    this.#decryptor = established.decryptor;
    if (this.#initiator) {
      // Established on our side, but the responder has yet to accept us: wait for its word.
      this.#pendingPeer = established.peer;
      return;
    }
    // Responder: the initiator is verified; confirm, under the channel's key, that it may talk.
    const confirmation = sealedFrame(ChannelMessageType.handshake, established.encryptor, NO_BYTES);
    this.#ready(established.peer);
    await this.#sendToPeer(confirmation);
  }

  /** Initiator: the responder's confirmation, an empty frame under the channel's key. */
  #onConfirmation(decryptor: ChannelDecryptor, body: Uint8Array): void {
    const peer = this.#pendingPeer;
    if (peer === undefined || !this.#openAnswer(decryptor, body, 'unexpected_handshake')) return;
    this.#ready(peer);
  }

  /**
   * Whether `body` is the responder's answer to our message 3 (a confirmation or a rejection):
   * only an initiator still waiting takes one, and only a frame that opens under the channel's
   * key counts; anything else is dropped (and counted) with its reason.
   */
  #openAnswer(decryptor: ChannelDecryptor, body: Uint8Array, unexpected: string): boolean {
    if (!this.#initiator || this.#pendingPeer === undefined) {
      this.#drop(unexpected);
      return false;
    }
    try {
      decryptor.decrypt(body);
    } catch (error) {
      this.#drop(reasonOf(error));
      return false;
    }
    return true;
  }

  /**
   * Initiator: the responder refused us after message 3. Only a frame under the channel's key
   * counts; anything else is dropped and the handshake goes on (or times out).
   */
  #onRejection(decryptor: ChannelDecryptor, body: Uint8Array): void {
    if (!this.#openAnswer(decryptor, body, 'unexpected_rejection')) return;
    const reason = 'ERR_CHANNEL_PEER_REJECTED';
    this.#event({ type: 'rejected', address: this.decryptorAddress, reason });
    this.#logger.warn('channel: the responder refused this side', {
      address: this.decryptorAddress,
    });
    this.#fail(
      unauthorized(
        reason,
        'the responder refused this side (its trust policy or verification failed; it keeps the reason)',
      ),
    );
  }

  #ready(peer: VerifiedPeer): void {
    this.#clearTimer();
    this.#setPeer(peer);
    this.#event({ type: 'established', address: this.encryptorAddress, peer: peer.identifier });
    this.#settled.resolve(this);
    this.#refresh.schedule();
  }

  #setPeer(peer: VerifiedPeer): void {
    this.#peer = peer;
    this.#peerValidUntil = peerExpiresAt(peer);
    if (this.#options.verify.denySet !== undefined) {
      const ids: string[] = [peer.identifier];
      for (const c of peer.credentials) ids.push(c.revocationId, c.issuer, c.subject);
      for (const c of peer.chains) ids.push(...c.revocationSubjects);
      this.#peerRevocationIds = [...new Set(ids)];
    }
  }

  /**
   * The peer as it stands now, or undefined when nothing may be delivered: its expired or revoked
   * credentials are dropped and the trust policy asked again (the fast path is one clock read,
   * and a deny-set lookup per id when there is a deny-set).
   */
  #currentPeer(): VerifiedPeer | undefined {
    try {
      return this.#peerNow();
    } catch (error) {
      this.#drop(reasonOf(error));
      if (isMandateError(error, 'ERR_REVOKED')) {
        this.#logger.warn('channel: the peer is revoked, closing', {
          address: this.encryptorAddress,
        });
        void this.close();
      }
      return undefined;
    }
  }

  /** For SecureChannelLocalInfo: the peer now, without reporting anything. */
  readonly #livePeer = (): VerifiedPeer | undefined => {
    if (this.#closed) return undefined;
    try {
      return this.#peerNow();
    } catch {
      return undefined;
    }
  };

  /**
   * The peer now; throws ERR_REVOKED, ERR_CHANNEL_PEER_EXPIRED or, for a clock that is not unix
   * seconds, ERR_ARGUMENT_INVALID (see revalidatePeer): the peer is then dropped.
   */
  #peerNow(): VerifiedPeer | undefined {
    const peer = this.#peer;
    if (peer === undefined) return undefined;
    const now = this.#clock.nowSeconds();
    const { denySet, trustPolicy } = this.#options.verify;
    if (isUnixSeconds(now) && now < this.#peerValidUntil) {
      if (denySet === undefined) return peer;
      try {
        denySet.assertNoneRevoked(this.#peerRevocationIds, now);
        return peer;
      } catch {
        // Something the peer holds was revoked (or the set is stale): look closer below.
      }
    }
    const next = revalidatePeer(peer, { nowSeconds: now, trustPolicy, denySet });
    if (next !== peer) this.#setPeer(next);
    return next;
  }

  /**
   * Presents new credentials to the peer: `payload` (an identity payload attesting this side's
   * secure-channel key), or else what `credentialRefresh.renew` returns.
   */
  refreshCredentials(payload?: Uint8Array): Promise<void> {
    return this.#refresh.present(payload);
  }

  async #fromLocal(envelope: Envelope): Promise<void> {
    const encryptor = this.#encryptor;
    if (this.#closed) return;
    if (encryptor === undefined || this.#peer === undefined) {
      this.#drop('not_established');
      return;
    }
    // The inner envelope is sealed as its head and its payload, never joined: the payload's
    // bytes are copied once, as ciphertext, into the frame.
    await this.#sendToPeer(
      sealedFrame(ChannelMessageType.transport, encryptor, [
        encodeEnvelopeHead(envelope),
        envelope.payload,
      ]),
    );
  }

  async #deliver(plaintext: Uint8Array): Promise<void> {
    let inner: Envelope;
    try {
      inner = decodeEnvelope(plaintext);
    } catch {
      this.#drop('inner_malformed');
      return;
    }
    const next = inner.onwardRoute[0];
    if (next?.type !== TransportType.local || !this.#allowed.has(next.value)) {
      this.#drop('not_allowed');
      return;
    }
    const peer = this.#currentPeer();
    if (peer === undefined) return;
    const admit = this.#options.admit?.get(next.value);
    if (admit !== undefined && !admit(peer)) {
      this.#drop('not_admitted');
      return;
    }
    try {
      await this.#router.send(
        {
          onwardRoute: inner.onwardRoute,
          returnRoute: [localAddress(this.encryptorAddress), ...inner.returnRoute],
          payload: inner.payload,
        },
        { localInfo: new SecureChannelLocalInfo(peer, this.encryptorAddress, this.#livePeer) },
      );
    } catch (error) {
      this.#drop(reasonOf(error));
    }
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #fail(error: unknown): void {
    this.#settled.reject(error);
    this.#teardown(false);
  }

  #teardown(byPeer: boolean): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#clearTimer();
    this.#refresh.stop();
    this.#unwatch();
    this.#handshake.destroy();
    this.#encryptor?.destroy();
    this.#decryptor?.destroy();
    this.#router.unregisterWorker(this.decryptorAddress);
    this.#router.unregisterWorker(this.encryptorAddress);
    if (this.#peer !== undefined) {
      this.#event({ type: 'closed', address: this.encryptorAddress, byPeer });
    }
    this.#settled.reject(unavailable('ERR_CHANNEL_CLOSED', 'the secure channel closed'));
    this.#onGone(this);
    const listeners = [...this.#closeListeners];
    this.#closeListeners.clear();
    for (const listener of listeners) {
      try {
        listener();
      } catch (error) {
        this.#logger.warn('channel: a close listener failed', { error: reasonOf(error) });
      }
    }
  }

  /** Calls `listener` once when this end closes (at once, in a microtask, if it has). */
  onClose(listener: () => void): () => void {
    if (this.#closed) {
      queueMicrotask(listener);
      return () => undefined;
    }
    this.#closeListeners.add(listener);
    return () => {
      this.#closeListeners.delete(listener);
    };
  }
}

/** The initiator's view of an established channel. */
export interface SecureChannel {
  /** The local encryptor: send to `[address, …route on the peer]`. */
  readonly address: string;
  /** The peer as last verified (the handshake, or its latest credential refresh). */
  readonly peer: VerifiedPeer;
  /** Frames dropped so far (tampered, replayed, not allowed, from elsewhere). */
  readonly droppedCount: number;
  /** Opens a local worker to messages coming through this channel. */
  allow(workerAddress: string): void;
  /**
   * Presents new credentials to the peer in-band: `identityPayload` (attesting the same
   * secure-channel key), or else what `credentialRefresh.renew` returns. Rejects with
   * `ERR_CHANNEL_CLOSED` once the channel is closed.
   */
  refreshCredentials(identityPayload?: Uint8Array): Promise<void>;
  /** Tells the peer and removes both workers. */
  close(): Promise<void>;
  /**
   * Calls `listener` once when the channel closes, whoever closed it (this side, the peer, its
   * connection, a revocation); at once if it is closed already. Returns a function that removes it.
   */
  onClose(listener: () => void): () => void;
}

function publicChannel(end: ChannelEnd, peer: VerifiedPeer): SecureChannel {
  return {
    address: end.encryptorAddress,
    get peer() {
      return end.peer ?? peer;
    },
    get droppedCount() {
      return end.droppedCount;
    },
    refreshCredentials: (identityPayload) => end.refreshCredentials(identityPayload),
    allow: (workerAddress) => {
      end.allow(workerAddress);
    },
    close: () => end.close(),
    onClose: (listener) => end.onClose(listener),
  };
}

/**
 * Opens a channel to the listener at the end of `route` (e.g. `[connection, 'api']`). The first
 * hop must be a local address — a connection made with the transport's `connect`, or a local
 * worker — so that the channel can accept its answers from that connection only. Rejects with
 * `ERR_CHANNEL_HANDSHAKE_TIMEOUT`, `ERR_CHANNEL_PEER_REJECTED` (the responder failed
 * verification, or it refused this side) or `ERR_CHANNEL_CLOSED`.
 *
 * @example
 * ```ts
 * const router = new Router();
 * const tcp = new TcpTransport(router);
 * const me = await prepareChannelIdentity(vault, {
 *   identity: agent.identity,
 *   primaryKeyId: agent.primaryKeyId,
 *   credentials: [credential],
 *   nowSeconds: Math.floor(Date.now() / 1000),
 * });
 * const channel = await openSecureChannel(router, [localAddress(tcp.connect('127.0.0.1:4000')), localAddress('api')], {
 *   staticKey: me.staticKey,
 *   identityPayload: me.identityPayload,
 *   verify: { authorities, trustPolicy: TrustPolicies.identifier(server) },
 * });
 * await router.send({
 *   onwardRoute: [localAddress(channel.address), localAddress('echo')],
 *   returnRoute: [],
 *   payload: new TextEncoder().encode('hi'),
 * });
 * ```
 */
export async function openSecureChannel(
  router: Router,
  route: Route,
  options: SecureChannelOptions,
): Promise<SecureChannel> {
  const first = route[0];
  if (first?.type !== TransportType.local) {
    throw invalid(
      'ERR_CHANNEL_ROUTE_INVALID',
      'a secure-channel route must start with a local address (a connection from `connect`)',
    );
  }
  let settle!: { resolve: (end: ChannelEnd) => void; reject: (error: unknown) => void };
  const done = new Promise<ChannelEnd>((resolve, reject) => {
    settle = { resolve, reject };
  });
  done.catch(() => undefined);
  // Answers come back on the connection the route starts with (or locally).
  const allowed = new Set(options.deliverTo ?? []);
  const end = new ChannelEnd(router, true, first.value, options, allowed, settle, () => undefined);
  try {
    await end.start(route);
  } catch (error) {
    await end.close();
    throw error;
  }
  const established = await done;
  const peer = established.peer;
  if (peer === undefined) {
    throw unavailable('ERR_CHANNEL_CLOSED', 'the secure channel closed');
  }
  return publicChannel(established, peer);
}

/**
 * Options of {@link SecureChannelListener}.
 */
export interface SecureChannelListenerOptions extends SecureChannelOptions {
  /** The local address of the listener; default `api`. */
  readonly address?: string;
  /** Handshakes in progress at once (default 128); message 1 beyond it is dropped. */
  readonly maxHandshakes?: number;
}

/**
 * Accepts channels at a local address (default `api`). The caller opens it to the network
 * (`router.allowFromAnyConnection('api')` on a server); each handshake message 1 spawns a
 * responder that accepts the rest of the channel's traffic from that connection only. Messages
 * through its channels reach only the workers given in `deliverTo` or to `allow`.
 */
export class SecureChannelListener {
  readonly address: string;
  readonly #router: Router;
  readonly #allowed: Set<string>;
  readonly #ends = new Set<ChannelEnd>();
  #options: SecureChannelListenerOptions;
  #dropped = 0;
  #closed = false;

  constructor(router: Router, options: SecureChannelListenerOptions) {
    this.address = options.address ?? DEFAULT_LISTENER_ADDRESS;
    this.#router = router;
    this.#options = options;
    this.#allowed = new Set(options.deliverTo ?? []);
    for (const address of this.#allowed) localAddress(address);
    router.registerWorker(this.address, {
      handleMessage: (ctx, envelope) => this.#accept(ctx, envelope),
    });
  }

  /** Opens a local worker to messages through this listener's channels, present and future. */
  allow(workerAddress: string): void {
    localAddress(workerAddress);
    this.#allowed.add(workerAddress);
  }

  /** Channels open or handshaking. */
  get channelCount(): number {
    return this.#ends.size;
  }

  /** Messages dropped by the listener and its channels so far. */
  get droppedCount(): number {
    let total = this.#dropped;
    for (const end of this.#ends) total += end.droppedCount;
    return total;
  }

  async #accept(ctx: MessageContext, envelope: Envelope): Promise<void> {
    if (this.#closed) return;
    if (envelope.payload[0] !== ChannelMessageType.handshake) {
      this.#dropped++;
      this.#options.onEvent?.({ type: 'dropped', address: this.address, reason: 'not_handshake' });
      return;
    }
    let handshaking = 0;
    for (const end of this.#ends) if (end.peer === undefined) handshaking++;
    if (handshaking >= (this.#options.maxHandshakes ?? DEFAULT_MAX_HANDSHAKES)) {
      this.#dropped++;
      this.#options.onEvent?.({ type: 'dropped', address: this.address, reason: 'busy' });
      return;
    }
    const noop = (): void => undefined;
    const end = new ChannelEnd(
      this.#router,
      false,
      ctx.sourceConnection,
      this.#options,
      this.#allowed,
      { resolve: noop, reject: noop },
      (gone) => {
        this.#dropped += gone.droppedCount;
        this.#ends.delete(gone);
      },
    );
    this.#ends.add(end);
    try {
      await end.accept(envelope);
    } catch (error) {
      (this.#options.logger ?? silentLogger).warn('channel: responder failed', {
        error: reasonOf(error),
      });
      await end.close();
    }
  }

  /**
   * New credentials for this listener: handshakes from now on present `identityPayload` (which
   * must attest the same secure-channel key, unless the static key comes from a source: each
   * channel then presents its own key's attestation), and every established channel gets it
   * in-band.
   * Resolves once each has been sent; a channel that closed meanwhile is skipped.
   */
  async refreshCredentials(identityPayload: Uint8Array): Promise<void> {
    payloadExpiresAt(identityPayload);
    this.#options = { ...this.#options, identityPayload };
    const established = [...this.#ends].filter((end) => end.peer !== undefined && !end.closed);
    await Promise.all(
      established.map((end) =>
        end.refreshCredentials(identityPayload).catch((error: unknown) => {
          if (!isMandateError(error, 'ERR_CHANNEL_CLOSED')) throw error;
        }),
      ),
    );
  }

  /** Closes every channel (telling each peer) and stops listening. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#router.unregisterWorker(this.address);
    await Promise.all([...this.#ends].map((end) => end.close()));
  }
}
