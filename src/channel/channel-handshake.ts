import { invalid, conflict } from '../core/internal.js';
import {
  createHandshake,
  NoiseSuite,
  OCKAM_PROTOCOL_NAME,
  SplitOrder,
  type NoiseHandshake,
  type NoiseKeyPair,
  type NoiseStaticKey,
} from './noise.js';
import { verifyPeer, type VerifiedPeer, type VerifyPeerOptions } from './identity-payload.js';
import { ChannelDecryptor, ChannelEncryptor } from './transport-cipher.js';

/**
 * A secure-channel handshake as a pure state machine: Noise XX under Ockam's protocol name and
 * split, with each side's identity payload in the message that carries its static key (the
 * responder's in message 2, the initiator's in message 3) and the peer verified — identity,
 * attested key bound to the Noise key, credentials, chains, trust policy — before this side
 * says another word. A driver moves the messages; nothing here does I/O or reads a clock.
 */
export interface ChannelHandshakeOptions {
  readonly initiator: boolean;
  /** This side's secure-channel static key (its attested X25519 purpose key). */
  readonly staticKey: NoiseStaticKey;
  /** This side's encoded identity payload (encodeIdentityPayload). */
  readonly identityPayload: Uint8Array;
  readonly generateEphemeral: () => NoiseKeyPair;
  /** How the peer is judged; `remoteStaticKey` is filled in from the handshake. */
  readonly verify: Omit<VerifyPeerOptions, 'remoteStaticKey'>;
}

export interface EstablishedChannel {
  readonly peer: VerifiedPeer;
  readonly encryptor: ChannelEncryptor;
  readonly decryptor: ChannelDecryptor;
  /** Both sides share it: binds anything signed over the channel to this channel. */
  readonly handshakeHash: Uint8Array;
}

export type HandshakeStep =
  | { readonly send: Uint8Array; readonly established?: undefined }
  | { readonly send?: Uint8Array; readonly established: EstablishedChannel };

export class ChannelHandshake {
  readonly #options: ChannelHandshakeOptions;
  readonly #noise: NoiseHandshake;
  #done = false;
  #rejection: Uint8Array | undefined;

  constructor(options: ChannelHandshakeOptions) {
    this.#options = options;
    this.#noise = createHandshake({
      initiator: options.initiator,
      suite: NoiseSuite.aesGcm,
      staticKey: options.staticKey,
      generateEphemeral: options.generateEphemeral,
      protocolName: OCKAM_PROTOCOL_NAME,
      splitOrder: SplitOrder.reversed,
    });
  }

  /** The initiator's first message (empty payload, as in Ockam). */
  start(): Uint8Array {
    if (!this.#options.initiator)
      throw invalid('ERR_NOISE_STATE', 'only the initiator starts a handshake');
    return this.#noise.writeMessage();
  }

  /**
   * Feeds the peer's next message. The responder answers message 1 with message 2; the initiator
   * answers message 2 with message 3 and is then established; the responder is established by
   * message 3. A peer that fails verification throws `ERR_CHANNEL_PEER_REJECTED`; a responder
   * then has a rejection for the initiator (`takeRejection`).
   */
  receive(message: Uint8Array): HandshakeStep {
    if (this.#done) throw invalid('ERR_NOISE_STATE', 'the handshake is already complete');
    const payload = this.#noise.readMessage(message);
    if (!this.#options.initiator && !this.#noise.complete) {
      // Message 1 read: answer with our identity.
      return { send: this.#noise.writeMessage(this.#options.identityPayload) };
    }
    const peer = this.#verify(payload);
    if (this.#options.initiator) {
      const send = this.#noise.writeMessage(this.#options.identityPayload);
      return { send, established: this.#establish(peer) };
    }
    return { established: this.#establish(peer) };
  }

  /**
   * Responder, once `receive` refused the initiator's message 3: the rejection to send it, once.
   * A transport frame of an empty plaintext (nonce 0) under the channel's key, like the
   * confirmation: only this responder can make it, so a forged one is dropped, and it says
   * nothing of why (the reason stays in the thrown error, for the local log).
   */
  takeRejection(): Uint8Array | undefined {
    const rejection = this.#rejection;
    this.#rejection = undefined;
    return rejection;
  }

  /** Wipes the handshake's secrets (a failed or abandoned handshake). */
  destroy(): void {
    this.#noise.destroy();
  }

  #verify(payload: Uint8Array): VerifiedPeer {
    const remoteStaticKey = this.#noise.remoteStaticKey;
    if (remoteStaticKey === undefined) {
      throw conflict('ERR_NOISE_STATE', 'the peer has not sent its static key');
    }
    try {
      return verifyPeer(payload, { ...this.#options.verify, remoteStaticKey });
    } catch (error) {
      if (!this.#options.initiator) this.#rejection = this.#sealRejection();
      this.#noise.destroy();
      throw error;
    }
  }

  /** Message 3 was read, so the transport keys exist: seal the empty rejection, then wipe them. */
  #sealRejection(): Uint8Array {
    const { send, receive } = this.#noise.split();
    receive.destroy();
    const encryptor = new ChannelEncryptor(send);
    try {
      return encryptor.encrypt(new Uint8Array(0));
    } finally {
      encryptor.destroy();
    }
  }

  #establish(peer: VerifiedPeer): EstablishedChannel {
    this.#done = true;
    const handshakeHash = this.#noise.handshakeHash.slice();
    const { send, receive } = this.#noise.split();
    return {
      peer,
      encryptor: new ChannelEncryptor(send),
      decryptor: new ChannelDecryptor(receive),
      handshakeHash,
    };
  }
}
