import { isMandateError, type ErrorCode, type Logger } from '../core/index.js';
import { silentLogger } from '../core/internal.js';
import {
  encodeBusMessage,
  type BusMessage,
  type BusSubscriber,
  type BusSubscription,
  type BusTopic,
} from '../bus/index.js';
import { SecureChannelLocalInfo, type VerifiedPeer } from '../channel/index.js';
import {
  localAddress,
  type Envelope,
  type MessageContext,
  type Route,
  type Router,
} from '../routing/index.js';
import {
  decodeBusRequest,
  encodeBusEnd,
  encodeBusMessageFrames,
  type BusRequest,
} from './bus-protocol.js';

/** The local address of the authority node's bus service. */
export const BUS_SERVICE_ADDRESS = 'bus';
/** Subscriptions one channel may hold at once, by default. */
export const DEFAULT_MAX_SUBSCRIPTIONS_PER_CHANNEL = 8;

/**
 * The codes a bus service ends a subscription with; a subscriber takes any other as malformed.
 */
export const BUS_END_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  // Not through a secure channel: no verified identity to serve.
  'ERR_BUS_FORBIDDEN',
  // The subscriber is not a member of the authority, or is revoked.
  'ERR_MEMBER_NOT_FOUND',
  'ERR_REVOKED',
  // Too many subscriptions on one channel, or a request outside the protocol.
  'ERR_BUS_SUBSCRIPTIONS_EXHAUSTED',
  'ERR_BUS_MESSAGE_INVALID',
  // The authority failed for its own reasons (its store, a stale deny-set); see its log.
  'ERR_BUS_FAILED',
]);

/**
 * Options of {@link BusService}.
 */
export interface BusServiceOptions {
  /** The authority's own bus (an InProcessBus fed from its store). */
  readonly bus: BusSubscriber;
  /**
   * Decides whether `peer` (a channel's verified peer) may subscribe: resolves, or throws a
   * MandateError whose code is one of {@link BUS_END_CODES} (any other becomes `ERR_BUS_FAILED`,
   * the reason in the log). The authority node's: a member, not revoked.
   */
  readonly authorize: (peer: VerifiedPeer) => Promise<void>;
  /** Default `bus`. */
  readonly address?: string;
  /** Default 8. */
  readonly maxSubscriptionsPerChannel?: number;
  readonly logger?: Logger;
}

interface Served {
  readonly channel: string;
  readonly id: number;
  readonly topic: BusTopic;
  readonly route: Route;
  readonly info: SecureChannelLocalInfo;
  subscription: BusSubscription | undefined;
}

/**
 * The authority's side of the bus over secure channels (docs/spec/policy.md §3). A member's node
 * subscribes through a secure channel to the authority node (whose listener delivers to `bus`);
 * the service subscribes to the authority's own bus on its behalf and sends each message back
 * through that channel, in order, in pieces when long. It serves only messages that came through
 * a secure channel, to a peer `authorize` accepts, and stops serving a subscription once its
 * channel closes or its peer no longer passes the channel's checks (revoked, expired): the
 * channel's live peer is asked before every message, heartbeats included, so a revoked member's
 * subscription ends within a heartbeat.
 */
export class BusService {
  readonly address: string;
  readonly #router: Router;
  readonly #bus: BusSubscriber;
  readonly #authorize: BusServiceOptions['authorize'];
  readonly #maxPerChannel: number;
  readonly #logger: Logger;
  /** Subscriptions by channel address, then by the subscriber's id. */
  readonly #served = new Map<string, Map<number, Served>>();
  #closed = false;

  constructor(router: Router, options: BusServiceOptions) {
    this.address = options.address ?? BUS_SERVICE_ADDRESS;
    this.#router = router;
    this.#bus = options.bus;
    this.#authorize = options.authorize;
    this.#maxPerChannel =
      options.maxSubscriptionsPerChannel ?? DEFAULT_MAX_SUBSCRIPTIONS_PER_CHANNEL;
    this.#logger = options.logger ?? silentLogger;
    router.registerWorker(this.address, {
      handleMessage: (ctx, envelope) => this.#handle(ctx, envelope),
    });
  }

  /** Subscriptions being served. */
  get subscriptionCount(): number {
    let count = 0;
    for (const byId of this.#served.values()) count += byId.size;
    return count;
  }

  async #handle(ctx: MessageContext, envelope: Envelope): Promise<void> {
    if (this.#closed) return;
    const info = ctx.localInfo;
    let request: BusRequest;
    try {
      request = decodeBusRequest(envelope.payload);
    } catch {
      // Nothing to answer to: a request that does not decode names no subscription.
      this.#logger.warn('bus: request malformed', { peer: peerOf(info) });
      return;
    }
    if (!(info instanceof SecureChannelLocalInfo)) {
      // Only through a secure channel: a clear message has no verified identity to serve.
      await ctx.reply(encodeBusEnd(request.id, 'ERR_BUS_FORBIDDEN')).catch(() => undefined);
      return;
    }
    const channel = info.channelAddress;
    if (request.op === 'unsubscribe') {
      this.#end(channel, request.id);
      return;
    }
    const byId = this.#served.get(channel) ?? new Map<number, Served>();
    this.#end(channel, request.id);
    if (byId.size >= this.#maxPerChannel) {
      await this.#refuse(envelope.returnRoute, request.id, 'ERR_BUS_SUBSCRIPTIONS_EXHAUSTED', info);
      return;
    }
    try {
      await this.#authorize(info.peer);
    } catch (error) {
      const code =
        isMandateError(error) && BUS_END_CODES.has(error.code) ? error.code : 'ERR_BUS_FAILED';
      await this.#refuse(envelope.returnRoute, request.id, code, info, error);
      return;
    }
    if (this.#closed) return;
    const served: Served = {
      channel,
      id: request.id,
      topic: request.topic,
      route: envelope.returnRoute,
      info,
      subscription: undefined,
    };
    byId.set(request.id, served);
    this.#served.set(channel, byId);
    this.#logger.info('bus: subscribed', {
      peer: info.peer.identifier,
      topic: request.topic,
      from: request.fromSequence,
    });
    served.subscription = this.#bus.subscribe(request.topic, {
      ...(request.fromSequence === undefined ? {} : { fromSequence: request.fromSequence }),
      onMessage: (message) => this.#send(served, message),
      onEnd: (error) => {
        this.#end(channel, request.id);
        void this.#refuse(served.route, served.id, 'ERR_BUS_FAILED', info, error);
      },
    });
  }

  async #send(served: Served, message: BusMessage<BusTopic>): Promise<void> {
    // The channel's peer as it stands now: undefined once the channel closed, or its peer was
    // revoked or expired (the listener's deny-set and clock).
    if (served.info.currentPeer() === undefined) {
      this.#logger.info('bus: subscriber gone', {
        peer: served.info.peer.identifier,
        topic: served.topic,
      });
      this.#end(served.channel, served.id);
      return;
    }
    try {
      for (const payload of encodeBusMessageFrames(
        served.id,
        encodeBusMessage(served.topic, message),
      ))
        await this.#router.send({
          onwardRoute: served.route,
          returnRoute: [localAddress(this.address)],
          payload,
        });
    } catch (error) {
      this.#logger.warn('bus: message not sent', {
        peer: served.info.peer.identifier,
        reason: isMandateError(error) ? error.code : 'error',
      });
      this.#end(served.channel, served.id);
    }
  }

  async #refuse(
    route: Route,
    id: number,
    code: ErrorCode,
    info: SecureChannelLocalInfo,
    error?: unknown,
  ): Promise<void> {
    this.#logger.warn('bus: refused', {
      peer: info.peer.identifier,
      reason: code,
      detail: isMandateError(error) ? error.code : undefined,
    });
    try {
      await this.#router.send({
        onwardRoute: route,
        returnRoute: [localAddress(this.address)],
        payload: encodeBusEnd(id, code),
      });
    } catch {
      // The channel is gone: nobody to tell.
    }
  }

  #end(channel: string, id: number): void {
    const byId = this.#served.get(channel);
    const served = byId?.get(id);
    if (byId === undefined || served === undefined) return;
    served.subscription?.unsubscribe();
    byId.delete(id);
    if (byId.size === 0) this.#served.delete(channel);
  }

  /** Ends every subscription and stops serving. */
  close(): void {
    this.#closed = true;
    this.#router.unregisterWorker(this.address);
    for (const [channel, byId] of [...this.#served])
      for (const id of [...byId.keys()]) this.#end(channel, id);
  }
}

function peerOf(info: unknown): string | undefined {
  return info instanceof SecureChannelLocalInfo ? info.peer.identifier : undefined;
}
