import {
  conflict,
  internal,
  invalid,
  isUnixSeconds,
  silentLogger,
  unavailable,
} from '../core/internal.js';
import { isMandateError, type MandateError, type Logger } from '../core/index.js';
import { checkTopic, rulesOf, type TopicFold, type TopicRules } from './topics.js';
import type {
  Bus,
  BusMessage,
  BusSnapshot,
  BusSubscription,
  BusTopic,
  BusUpdate,
  SubscribeOptions,
} from './types.js';

/** How many sequence steps of updates a topic keeps for subscribers that resume, by default. */
export const DEFAULT_RETAINED_SEQUENCES = 4_096;
/** How many messages may wait for one subscriber before it is sent a snapshot instead, by default. */
export const DEFAULT_MAX_QUEUED = 256;
/** Expired deny entries are dropped from the fold at most this often (by heartbeat time). */
const PRUNE_EVERY_SECONDS = 60;

/**
 * Options of {@link InProcessBus}.
 */
export interface InProcessBusOptions {
  /**
   * How many sequence steps of updates each topic keeps (default 4 096): a subscriber resuming
   * from further back gets a snapshot instead.
   */
  readonly retainedSequences?: number;
  /**
   * How many messages may wait for a subscriber that is slow to take them (default 256): past
   * that, what waits is replaced by one snapshot of the topic as it stands.
   */
  readonly maxQueued?: number;
  readonly logger?: Logger;
}

/**
 * The bus of one process (the embedded default, and the authority node's source for the
 * subscribers it serves over secure channels). Publishing is synchronous and checks what it is
 * given; each subscription gets its messages in order from a queue of its own, after the
 * publishing call returns, so a slow or failing subscriber holds up neither the publisher nor
 * the others.
 *
 * @example
 * ```ts
 * const bus = new InProcessBus();
 * bus.publishSnapshot('deny-set', await repository.snapshot(now));
 * const denySet = new DenySet({ maxStalenessSeconds: 10 });
 * bus.subscribe('deny-set', {
 *   onMessage: (m) => {
 *     if (m.type === 'snapshot') denySet.applySnapshot(m.snapshot);
 *     else if (m.type === 'update') denySet.apply(m.update);
 *     else denySet.markFresh(m.sequence, m.issuedAt);
 *   },
 * });
 * ```
 */
export class InProcessBus implements Bus {
  readonly #topics = new Map<BusTopic, TopicState<BusTopic>>();
  readonly #retained: number;
  readonly #maxQueued: number;
  readonly #logger: Logger;
  #closed = false;

  constructor(options: InProcessBusOptions = {}) {
    this.#retained = positive(
      options.retainedSequences ?? DEFAULT_RETAINED_SEQUENCES,
      'retainedSequences',
    );
    this.#maxQueued = positive(options.maxQueued ?? DEFAULT_MAX_QUEUED, 'maxQueued');
    this.#logger = options.logger ?? silentLogger;
  }

  sequence(topic: BusTopic): number {
    return this.#topic(checkTopic(topic)).fold.sequence;
  }

  publish<T extends BusTopic>(topic: T, update: BusUpdate<T>): void {
    this.#open();
    const state = this.#topic(checkTopic(topic));
    const checked = state.rules.checkUpdate(update);
    const current = state.fold.sequence;
    if (checked.fromSequence !== current)
      throw conflict(
        'ERR_BUS_SEQUENCE_CONFLICT',
        `topic \`${topic}\` is at sequence \`${current}\`, and an update from \`${checked.fromSequence}\` cannot follow it`,
      );
    if (checked.toSequence === current) {
      this.heartbeat(topic, checked.issuedAt);
      return;
    }
    state.fold.apply(checked);
    state.retain(checked, this.#retained);
    state.refresh(checked.issuedAt);
    const message: BusMessage<T> = { type: 'update', update: checked };
    for (const subscription of state.subscriptions) subscription.push(message);
  }

  publishSnapshot<T extends BusTopic>(topic: T, snapshot: BusSnapshot<T>): void {
    this.#open();
    const state = this.#topic(checkTopic(topic));
    const checked = state.rules.checkSnapshot(snapshot);
    const current = state.fold.sequence;
    if (checked.sequence < current)
      throw conflict(
        'ERR_BUS_SEQUENCE_CONFLICT',
        `topic \`${topic}\` is at sequence \`${current}\`, and a snapshot at \`${checked.sequence}\` would take it back`,
      );
    state.fold.reset(checked);
    state.updates.length = 0;
    state.oldest = checked.sequence;
    state.refresh(checked.issuedAt);
    for (const subscription of state.subscriptions) {
      // A subscriber already at this sequence needs only the freshness.
      if (subscription.sequence === checked.sequence)
        subscription.push({
          type: 'heartbeat',
          sequence: checked.sequence,
          issuedAt: state.freshAt,
        });
      else subscription.push({ type: 'snapshot', snapshot: state.fold.snapshot(state.freshAt) });
    }
  }

  heartbeat(topic: BusTopic, issuedAt: number): void {
    this.#open();
    const state = this.#topic(checkTopic(topic));
    if (!isUnixSeconds(issuedAt))
      throw invalid('ERR_ARGUMENT_INVALID', '`issuedAt` must be a non-negative integer');
    if (issuedAt < state.freshAt) return;
    state.refresh(issuedAt);
    const message: BusMessage<BusTopic> = {
      type: 'heartbeat',
      sequence: state.fold.sequence,
      issuedAt,
    };
    for (const subscription of state.subscriptions) subscription.push(message);
  }

  subscribe<T extends BusTopic>(topic: T, options: SubscribeOptions<T>): BusSubscription {
    this.#open();
    const state = this.#topic(checkTopic(topic)) as unknown as TopicState<T>;
    const from = options.fromSequence;
    if (from !== undefined && !isUnixSeconds(from))
      throw invalid('ERR_ARGUMENT_INVALID', '`fromSequence` must be a non-negative integer');
    const subscription = new Subscription<T>(topic, state, options, this.#maxQueued, this.#logger);
    state.subscriptions.add(subscription);
    const current = state.fold.sequence;
    if (from === undefined || from > current || from < state.oldest) {
      subscription.push({ type: 'snapshot', snapshot: state.fold.snapshot(state.freshAt) });
    } else if (from < current) {
      const after = state.updates.filter((update) => update.toSequence > from);
      subscription.push({ type: 'update', update: state.fold.merge(after, from, state.freshAt) });
    } else if (state.freshAt > 0) {
      subscription.push({ type: 'heartbeat', sequence: current, issuedAt: state.freshAt });
    }
    return subscription;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const error = closedError();
    for (const state of this.#topics.values())
      for (const subscription of [...state.subscriptions]) subscription.end(error);
  }

  #open(): void {
    if (this.#closed) throw closedError();
  }

  #topic<T extends BusTopic>(topic: T): TopicState<T> {
    let state = this.#topics.get(topic);
    if (state === undefined) {
      state = new TopicState(rulesOf(topic)) as unknown as TopicState<BusTopic>;
      this.#topics.set(topic, state);
    }
    return state as unknown as TopicState<T>;
  }
}

const closedError = (): MandateError => unavailable('ERR_BUS_CLOSED', 'the bus is closed');

function positive(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 1)
    throw invalid('ERR_ARGUMENT_INVALID', `\`${name}\` must be a positive integer`);
  return value;
}

class TopicState<T extends BusTopic> {
  readonly fold: TopicFold<T>;
  /** Updates kept for resuming subscribers, contiguous, ending at the fold's sequence. */
  readonly updates: BusUpdate<T>[] = [];
  /** The sequence the kept updates start from: a subscriber behind it gets a snapshot. */
  oldest = 0;
  /** The latest `issuedAt` heard (0: never). */
  freshAt = 0;
  #prunedAt = 0;
  readonly subscriptions = new Set<Subscription<T>>();

  constructor(readonly rules: TopicRules<T>) {
    this.fold = rules.createFold();
  }

  retain(update: BusUpdate<T>, maxSequences: number): void {
    this.updates.push(update);
    while (this.updates.length > 0 && this.fold.sequence - this.oldest > maxSequences) {
      const dropped = this.updates.shift();
      if (dropped !== undefined) this.oldest = dropped.toSequence;
    }
  }

  refresh(issuedAt: number): void {
    if (issuedAt > this.freshAt) this.freshAt = issuedAt;
    if (this.freshAt - this.#prunedAt >= PRUNE_EVERY_SECONDS) {
      this.fold.prune(this.freshAt);
      this.#prunedAt = this.freshAt;
    }
  }
}

class Subscription<T extends BusTopic> implements BusSubscription {
  readonly #state: TopicState<T>;
  readonly #options: SubscribeOptions<T>;
  readonly #maxQueued: number;
  readonly #logger: Logger;
  #queue: BusMessage<T>[] = [];
  #draining = false;
  #ended = false;
  /** The sequence the subscriber will be at once the queue is taken. */
  sequence: number;

  constructor(
    readonly topic: T,
    state: TopicState<T>,
    options: SubscribeOptions<T>,
    maxQueued: number,
    logger: Logger,
  ) {
    this.#state = state;
    this.#options = options;
    this.#maxQueued = maxQueued;
    this.#logger = logger;
    this.sequence = options.fromSequence ?? -1;
  }

  push(message: BusMessage<T>): void {
    if (this.#ended) return;
    if (this.#queue.length >= this.#maxQueued) {
      // Too far behind: what waits is replaced by where the topic stands now.
      this.#logger.warn('bus: subscriber behind, sending a snapshot', { topic: this.topic });
      this.#queue = [
        { type: 'snapshot', snapshot: this.#state.fold.snapshot(this.#state.freshAt) },
      ];
    } else this.#queue.push(message);
    this.sequence = this.#state.fold.sequence;
    if (!this.#draining) {
      this.#draining = true;
      queueMicrotask(() => void this.#drain());
    }
  }

  async #drain(): Promise<void> {
    try {
      for (
        let message = this.#queue.shift();
        message !== undefined;
        message = this.#queue.shift()
      ) {
        if (this.#ended) return;
        try {
          await this.#options.onMessage(message);
        } catch (error) {
          this.end(
            isMandateError(error)
              ? error
              : internal('ERR_BUS_SUBSCRIBER_FAILED', 'a bus subscriber failed', error),
          );
          return;
        }
      }
    } finally {
      this.#draining = false;
      // A message pushed while the last one was being handled, after the loop looked.
      if (this.#queue.length > 0 && !this.#ended) {
        this.#draining = true;
        queueMicrotask(() => void this.#drain());
      }
    }
  }

  unsubscribe(): void {
    this.#ended = true;
    this.#queue = [];
    this.#state.subscriptions.delete(this);
  }

  end(error: MandateError): void {
    if (this.#ended) return;
    this.unsubscribe();
    this.#options.onEnd?.(error);
  }
}
