import { isMandateError, type Logger } from '../core/index.js';
import {
  internal,
  invalid,
  isUnixSeconds,
  silentLogger,
  unavailable,
  withJitter,
} from '../core/internal.js';
import {
  decodeBusMessage,
  type BusMessage,
  type BusSubscriber,
  type BusSubscription,
  type BusTopic,
  type SubscribeOptions,
} from '../bus/index.js';
import { checkTopic } from '../bus/internal.js';
import { SecureChannelLocalInfo, type SecureChannel } from '../channel/index.js';
import { localAddress, type Router } from '../routing/index.js';
import {
  decodeBusAnswer,
  encodeBusRequest,
  FragmentAssembler,
  type BusAnswer,
} from './bus-protocol.js';
import { BUS_SERVICE_ADDRESS } from './bus-service.js';

/** Reconnect when nothing arrived for this long (the service sends heartbeats every second). */
export const DEFAULT_SILENCE_TIMEOUT_MS = 5_000;
/** The first reconnection waits about this long; each failure doubles it up to the maximum. */
export const DEFAULT_RETRY_INITIAL_MS = 250;
export const DEFAULT_RETRY_MAX_MS = 10_000;

/** A channel to the authority, as the subscriber needs it. */
export type BusChannel = Pick<SecureChannel, 'address' | 'allow' | 'close'>;

/**
 * What a {@link ChannelBusSubscriber} reports to its `onEvent`.
 */
export type ChannelBusEvent =
  | { readonly type: 'connected' }
  | { readonly type: 'disconnected'; readonly reason: string; readonly retryInMs: number }
  | { readonly type: 'refused'; readonly topic: BusTopic; readonly code: string };

/**
 * Options of {@link ChannelBusSubscriber}.
 */
export interface ChannelBusSubscriberOptions {
  readonly router: Router;
  /**
   * Opens a secure channel to the authority node (trusting the authority only); called for each
   * connection. Call `onClosed` when that channel closes (its `closed` event).
   */
  connect(onClosed: () => void): Promise<BusChannel>;
  /** The service's address on the authority node; default `bus`. */
  readonly serviceAddress?: string;
  /** Default 5 000. */
  readonly silenceTimeoutMs?: number;
  /** Default 250 and 10 000: the backoff between connection attempts (jittered). */
  readonly retryInitialMs?: number;
  readonly retryMaxMs?: number;
  /** A number in [0, 1) for the jitter (crypto's `randomUnit`). */
  readonly random: () => number;
  readonly logger?: Logger;
  readonly onEvent?: (event: ChannelBusEvent) => void;
}

let nextWorker = 1;

/**
 * A node's side of the bus over a secure channel to its authority (`node start --authority
 * ROUTE`; docs/spec/policy.md §3): a {@link BusSubscriber} whose messages come from the
 * authority's BusService. It keeps one channel open while it has subscriptions and, when the
 * channel closes, goes silent for `silenceTimeoutMs`, or the service refuses a subscription,
 * opens a new one after a jittered, doubling backoff and subscribes again from the sequence each
 * subscriber reached — the service sends a snapshot when it cannot continue from there. A
 * subscriber sees one ordered stream across reconnections; while disconnected it sees nothing,
 * and whatever it holds goes stale by its own bound (a DenySet fails closed).
 *
 * Only messages from the authority's channel count: the worker that receives them accepts a
 * message only when it came through the current channel, and each is decoded strictly.
 */
export class ChannelBusSubscriber implements BusSubscriber {
  readonly #options: ChannelBusSubscriberOptions;
  readonly #worker = `bus-client-${nextWorker++}`;
  readonly #subscriptions = new Map<number, ClientSubscription>();
  readonly #logger: Logger;
  readonly #silenceMs: number;
  readonly #retryInitialMs: number;
  readonly #retryMaxMs: number;
  #nextId = 1;
  #channel: BusChannel | undefined;
  /** Bumped for every connection: callbacks of an older one are ignored. */
  #epoch = 0;
  #connecting = false;
  #failures = 0;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #silenceTimer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;

  constructor(options: ChannelBusSubscriberOptions) {
    this.#options = options;
    this.#logger = options.logger ?? silentLogger;
    this.#silenceMs = positive(
      options.silenceTimeoutMs ?? DEFAULT_SILENCE_TIMEOUT_MS,
      'silenceTimeoutMs',
    );
    this.#retryInitialMs = positive(
      options.retryInitialMs ?? DEFAULT_RETRY_INITIAL_MS,
      'retryInitialMs',
    );
    this.#retryMaxMs = positive(options.retryMaxMs ?? DEFAULT_RETRY_MAX_MS, 'retryMaxMs');
    options.router.registerWorker(this.#worker, {
      handleMessage: (ctx, envelope) => {
        const info = ctx.localInfo;
        const channel = this.#channel;
        // Only what came through the current channel to the authority.
        if (
          channel === undefined ||
          !(info instanceof SecureChannelLocalInfo) ||
          info.channelAddress !== channel.address
        )
          return;
        return this.#receive(envelope.payload);
      },
    });
  }

  /** Whether a channel to the authority is open now. */
  get connected(): boolean {
    return this.#channel !== undefined;
  }

  subscribe<T extends BusTopic>(topic: T, options: SubscribeOptions<T>): BusSubscription {
    if (this.#stopped) throw unavailable('ERR_BUS_CLOSED', 'the bus subscriber is stopped');
    checkTopic(topic);
    const from = options.fromSequence;
    if (from !== undefined && !isUnixSeconds(from))
      throw invalid('ERR_ARGUMENT_INVALID', '`fromSequence` must be a non-negative integer');
    const id = this.#nextId++;
    const subscription = new ClientSubscription(
      topic,
      id,
      options as unknown as SubscribeOptions<BusTopic>,
      () => {
        this.#subscriptions.delete(id);
        void this.#request({ op: 'unsubscribe', id });
      },
    );
    this.#subscriptions.set(id, subscription);
    if (this.#channel !== undefined) void this.#request(subscription.request());
    else this.#connectSoon(0);
    return subscription;
  }

  /** Closes the channel and stops reconnecting; subscriptions end without `onEnd`. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#silenceTimer);
    this.#subscriptions.clear();
    this.#options.router.unregisterWorker(this.#worker);
    const channel = this.#channel;
    this.#channel = undefined;
    this.#epoch++;
    await channel?.close();
  }

  #connectSoon(delayMs: number): void {
    if (this.#stopped || this.#connecting || this.#channel !== undefined) return;
    if (this.#retryTimer !== undefined) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      void this.#connect();
    }, delayMs);
    this.#retryTimer.unref();
  }

  async #connect(): Promise<void> {
    if (this.#stopped || this.#subscriptions.size === 0) return;
    this.#connecting = true;
    const epoch = ++this.#epoch;
    let channel: BusChannel;
    try {
      channel = await this.#options.connect(() => {
        if (this.#epoch === epoch) this.#lost('channel closed');
      });
    } catch (error) {
      this.#connecting = false;
      this.#retry(isMandateError(error) ? error.code : 'error');
      return;
    }
    this.#connecting = false;
    if (this.#stopped || this.#epoch !== epoch) {
      await channel.close();
      return;
    }
    this.#channel = channel;
    channel.allow(this.#worker);
    this.#options.onEvent?.({ type: 'connected' });
    this.#logger.info('bus: connected to the authority');
    this.#heard();
    for (const subscription of this.#subscriptions.values()) {
      subscription.assembler.reset();
      void this.#request(subscription.request());
    }
  }

  /** The connection is gone or useless: close it and try again after the backoff. */
  #lost(reason: string): void {
    const channel = this.#channel;
    this.#channel = undefined;
    this.#epoch++;
    clearTimeout(this.#silenceTimer);
    void channel?.close().catch(() => undefined);
    this.#retry(reason);
  }

  #retry(reason: string): void {
    if (this.#stopped) return;
    const base = Math.min(
      this.#retryMaxMs,
      this.#retryInitialMs * 2 ** Math.min(this.#failures, 20),
    );
    this.#failures++;
    const retryInMs = withJitter(base, this.#options.random);
    this.#logger.warn('bus: disconnected from the authority', { reason, retryInMs });
    this.#options.onEvent?.({ type: 'disconnected', reason, retryInMs });
    this.#connectSoon(retryInMs);
  }

  /** Something arrived: the connection is alive; silence from now on is measured again. */
  #heard(): void {
    clearTimeout(this.#silenceTimer);
    if (this.#stopped) return;
    const epoch = this.#epoch;
    this.#silenceTimer = setTimeout(() => {
      if (this.#epoch === epoch) this.#lost('silent');
    }, this.#silenceMs);
    this.#silenceTimer.unref();
  }

  async #request(request: Parameters<typeof encodeBusRequest>[0]): Promise<void> {
    const channel = this.#channel;
    if (channel === undefined) return;
    try {
      await this.#options.router.send({
        onwardRoute: [
          localAddress(channel.address),
          localAddress(this.#options.serviceAddress ?? BUS_SERVICE_ADDRESS),
        ],
        returnRoute: [localAddress(this.#worker)],
        payload: encodeBusRequest(request),
      });
    } catch (error) {
      if (this.#channel === channel) this.#lost(isMandateError(error) ? error.code : 'error');
    }
  }

  async #receive(payload: Uint8Array): Promise<void> {
    let answer: BusAnswer;
    try {
      answer = decodeBusAnswer(payload);
    } catch (error) {
      this.#lost(isMandateError(error) ? error.code : 'error');
      return;
    }
    this.#heard();
    const subscription = this.#subscriptions.get(answer.id);
    if (subscription === undefined) return; // unsubscribed meanwhile
    if (answer.op === 'end') {
      this.#logger.warn('bus: subscription refused', {
        topic: subscription.topic,
        reason: answer.code,
      });
      this.#options.onEvent?.({ type: 'refused', topic: subscription.topic, code: answer.code });
      // Refused now, perhaps not later (a renewed membership): the whole connection starts over.
      this.#lost(answer.code);
      return;
    }
    let bytes: Uint8Array | undefined;
    let message: BusMessage<BusTopic>;
    try {
      if (answer.op === 'fragment') bytes = subscription.assembler.add(answer);
      else {
        if (subscription.assembler.pending)
          throw invalid('ERR_BUS_MESSAGE_INVALID', 'a message cut into its pieces');
        bytes = answer.message;
      }
      if (bytes === undefined) return;
      const decoded = decodeBusMessage(bytes);
      if (decoded.topic !== subscription.topic)
        throw invalid(
          'ERR_BUS_MESSAGE_INVALID',
          `a \`${decoded.topic}\` message for a \`${subscription.topic}\` subscription`,
        );
      message = decoded.message;
    } catch (error) {
      this.#logger.warn('bus: message refused', {
        reason: isMandateError(error) ? error.code : 'error',
      });
      this.#lost('ERR_BUS_MESSAGE_INVALID');
      return;
    }
    // The connection works: the next failure starts the backoff from the beginning.
    this.#failures = 0;
    await subscription.deliver(message);
  }
}

function positive(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 1)
    throw invalid('ERR_ARGUMENT_INVALID', `\`${name}\` must be a positive integer`);
  return value;
}

class ClientSubscription implements BusSubscription {
  readonly assembler = new FragmentAssembler();
  /** The sequence the subscriber reached: where a new connection resumes. */
  #sequence: number | undefined;
  #ended = false;

  constructor(
    readonly topic: BusTopic,
    readonly id: number,
    readonly options: SubscribeOptions<BusTopic>,
    readonly onUnsubscribe: () => void,
  ) {
    this.#sequence = options.fromSequence;
  }

  request(): Parameters<typeof encodeBusRequest>[0] {
    return { op: 'subscribe', id: this.id, topic: this.topic, fromSequence: this.#sequence };
  }

  async deliver(message: BusMessage<BusTopic>): Promise<void> {
    if (this.#ended) return;
    try {
      await this.options.onMessage(message);
    } catch (error) {
      this.#ended = true;
      this.onUnsubscribe();
      this.options.onEnd?.(
        isMandateError(error)
          ? error
          : internal('ERR_BUS_SUBSCRIBER_FAILED', 'a bus subscriber failed', error),
      );
      return;
    }
    if (message.type === 'snapshot') this.#sequence = message.snapshot.sequence;
    else if (message.type === 'update') this.#sequence = message.update.toSequence;
  }

  unsubscribe(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.onUnsubscribe();
  }
}
