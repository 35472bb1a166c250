import { silentLogger } from '../core/internal.js';
import { isMandateError, type Logger, type MandateError } from '../core/index.js';
import type { DenyEntry, DenySet } from '../credentials/index.js';
import { BusTopic, type BusMessage, type BusSubscriber, type BusSubscription } from './types.js';

/**
 * Options of {@link DenySetFollower}.
 */
export interface DenySetFollowerOptions {
  readonly logger?: Logger;
  /**
   * Called after a snapshot or update with entries was applied to the set, with those entries and
   * each one's sequence number (for a snapshot's entries, the snapshot's sequence: the entry was
   * at or before it). A snapshot repeats entries delivered before: a listener that records them
   * (an enforcement point's audit log) must keep each once. Called synchronously, never awaited;
   * a throw is logged and ignored (the set is already updated).
   */
  readonly onApplied?: (entries: readonly SequencedDenyEntry[]) => void;
}

/** A deny-set entry with the sequence number the authority gave it. */
export interface SequencedDenyEntry {
  readonly entry: DenyEntry;
  readonly sequence: number;
}

/**
 * Keeps a `DenySet` in step with the bus's `deny-set` topic: snapshots, updates and heartbeats are
 * applied to that very object, so every verifier holding it (channel listeners, which re-check on
 * every delivery) sees a revocation as soon as it arrives. The set's own staleness bound does
 * the failing closed: when nothing arrives (the authority is gone, the subscription refused),
 * its checks throw ERR_DENY_SET_STALE once the bound has passed, until a message refreshes it.
 *
 * A message that does not fit (an update or heartbeat past the set's sequence: ERR_DENY_SET_GAP)
 * makes the follower subscribe again for a snapshot. A snapshot behind the set's sequence (the
 * list went back: a reset or foreign authority) is not followed: the set keeps what it has and
 * goes stale.
 */
export class DenySetFollower {
  readonly denySet: DenySet;
  readonly #subscriber: BusSubscriber;
  readonly #logger: Logger;
  readonly #onApplied: DenySetFollowerOptions['onApplied'];
  #subscription: BusSubscription | undefined;
  #stopped = false;
  #fresh: (() => void) | undefined;
  /** Resolves once a message from the bus has refreshed the set for the first time. */
  readonly ready: Promise<void>;

  constructor(subscriber: BusSubscriber, denySet: DenySet, options: DenySetFollowerOptions = {}) {
    this.denySet = denySet;
    this.#subscriber = subscriber;
    this.#logger = options.logger ?? silentLogger;
    this.#onApplied = options.onApplied;
    this.ready = new Promise((resolve) => {
      this.#fresh = resolve;
    });
  }

  /** Subscribes: from the set's sequence when it holds one, else from a snapshot. */
  start(): void {
    this.#subscribe(this.denySet.sequence > 0 ? this.denySet.sequence : undefined);
  }

  /** Unsubscribes; the set keeps what it has and goes stale with time. */
  stop(): void {
    this.#stopped = true;
    this.#subscription?.unsubscribe();
    this.#subscription = undefined;
  }

  #subscribe(fromSequence: number | undefined): void {
    if (this.#stopped) return;
    this.#subscription = this.#subscriber.subscribe(BusTopic.denySet, {
      ...(fromSequence === undefined ? {} : { fromSequence }),
      onMessage: (message) => {
        this.#apply(message);
      },
      onEnd: (error: MandateError) => {
        this.#logger.warn('deny-set: subscription ended', { reason: error.code });
      },
    });
  }

  #apply(message: BusMessage<'deny-set'>): void {
    const set = this.denySet;
    const before = set.sequence;
    try {
      if (message.type === 'snapshot') set.applySnapshot(message.snapshot);
      else if (message.type === 'update') set.apply(message.update);
      else set.markFresh(message.sequence, message.issuedAt);
    } catch (error) {
      const code = isMandateError(error) ? error.code : 'error';
      this.#logger.warn('deny-set: message not applied', {
        reason: code,
        type: message.type,
        sequence: before,
      });
      // Missed updates: start again from a snapshot (not from inside this delivery).
      if (code === 'ERR_DENY_SET_GAP' && message.type !== 'snapshot') {
        this.#subscription?.unsubscribe();
        queueMicrotask(() => {
          this.#subscribe(undefined);
        });
      }
      return;
    }
    if (set.sequence !== before)
      this.#logger.info('deny-set: updated', { from: before, to: set.sequence });
    if (message.type !== 'heartbeat') this.#notify(message);
    // A snapshot of a bus that never heard from its publisher (issuedAt 0) does not make it fresh.
    const issuedAt =
      message.type === 'snapshot'
        ? message.snapshot.issuedAt
        : message.type === 'update'
          ? message.update.issuedAt
          : message.issuedAt;
    if (issuedAt === 0) return;
    this.#fresh?.();
    this.#fresh = undefined;
  }

  #notify(message: Exclude<BusMessage<'deny-set'>, { type: 'heartbeat' }>): void {
    if (this.#onApplied === undefined) return;
    const entries: SequencedDenyEntry[] =
      message.type === 'snapshot'
        ? message.snapshot.entries.map((entry) => ({
            entry,
            sequence: message.snapshot.sequence,
          }))
        : message.update.entries.map((entry, k) => ({
            entry,
            sequence: message.update.fromSequence + k + 1,
          }));
    if (entries.length === 0) return;
    try {
      this.#onApplied(entries);
    } catch (error) {
      this.#logger.warn('deny-set: a listener failed', {
        reason: isMandateError(error) ? error.code : 'error',
      });
    }
  }
}
