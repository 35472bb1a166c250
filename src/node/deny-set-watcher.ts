import { silentLogger } from '../core/internal.js';
import { isMandateError, systemClock, type Clock, type Logger } from '../core/index.js';
import { DenySet, type DenySetRepository } from '../credentials/index.js';
import { checkPollInterval, Poller } from './poller.js';

/** How often a watcher asks the repository for updates, by default. */
export const DEFAULT_DENY_SET_POLL_MS = 1_000;

/**
 * Options of {@link DenySetWatcher}.
 */
export interface DenySetWatcherOptions {
  /** The durable list to follow: on one home, its SQLite repository (written by `revoke`). */
  readonly repository: Pick<DenySetRepository, 'snapshot' | 'updatesSince'> &
    Partial<Pick<DenySetRepository, 'currentSequence'>>;
  /**
   * How long the view may go without a successful poll before every check fails closed
   * (ERR_DENY_SET_STALE): the bound on how late a revocation can be missed when the store cannot
   * be read.
   */
  readonly maxStalenessSeconds: number;
  /** Default 1 000. */
  readonly pollIntervalMs?: number;
  readonly clock?: Clock;
  readonly logger?: Logger;
}

/**
 * A long-running process's live deny-set on one home (DESIGN.md §6: "processes on one home watch
 * the store"). `start` reads a snapshot; from then on a timer asks the repository for the entries
 * past the set's sequence every `pollIntervalMs` and applies them to the same `DenySet` object,
 * so every verifier holding it — channel listeners and initiators (`verify.denySet`, re-checked
 * on every delivery), relay registrations through them, the enrollment service — sees a
 * revocation within one poll. Each successful poll refreshes the set (the repository answers as
 * of now); when polls keep failing, the set goes stale after `maxStalenessSeconds` and every check
 * fails closed until a poll succeeds again. When the entries a poll needs were pruned, it catches
 * up from a snapshot; a list that went back (a replaced database) is not followed: the set stays
 * as it was and goes stale.
 */
export class DenySetWatcher {
  /** The live view: hand this object to every verifier; it is updated in place. */
  readonly denySet: DenySet;
  readonly #repository: DenySetWatcherOptions['repository'];
  readonly #poller: Poller;
  readonly #clock: Clock;
  readonly #logger: Logger;
  /** The code of the last failed poll, so a lasting failure is logged once, not every second. */
  #failing: string | undefined;

  private constructor(denySet: DenySet, options: DenySetWatcherOptions, pollIntervalMs: number) {
    this.denySet = denySet;
    this.#repository = options.repository;
    this.#poller = new Poller(() => this.#poll(), pollIntervalMs);
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? silentLogger;
  }

  /**
   * Reads the snapshot (its failure rejects: a process must not start without a deny-set) and
   * starts polling. Throws ERR_ARGUMENT_INVALID for a poll interval that is not a positive
   * integer, or a staleness bound that is not a non-negative one.
   */
  static async start(options: DenySetWatcherOptions): Promise<DenySetWatcher> {
    const pollIntervalMs = checkPollInterval(options.pollIntervalMs ?? DEFAULT_DENY_SET_POLL_MS);
    const clock = options.clock ?? systemClock;
    const snapshot = await options.repository.snapshot(clock.nowSeconds());
    const denySet = DenySet.fromSnapshot(snapshot, {
      maxStalenessSeconds: options.maxStalenessSeconds,
    });
    const watcher = new DenySetWatcher(denySet, options, pollIntervalMs);
    watcher.#poller.start();
    return watcher;
  }

  /** Polls now (and resolves once applied); polls run one at a time. For tests and scenarios. */
  refresh(): Promise<void> {
    return this.#poller.refresh();
  }

  /**
   * Brings the set up to the repository's sequence before a decision that must see every
   * revocation committed so far (the enforcement point calls it per call): one cheap read of the
   * sequence, and a poll only when it moved. A repository without `currentSequence` polls.
   * Never rejects: a failed read leaves the set as it is (its staleness bound still holds).
   */
  async catchUp(): Promise<void> {
    const current = this.#repository.currentSequence;
    if (current === undefined) {
      await this.#poller.refresh();
      return;
    }
    let target: number;
    try {
      target = await current.call(this.#repository);
    } catch {
      await this.#poller.refresh(); // which logs the failure once
      return;
    }
    // A poll already in flight may have read before `target` was committed: poll again then.
    for (let attempt = 0; attempt < 3 && this.denySet.sequence < target; attempt++)
      await this.#poller.refresh();
  }

  /** Stops polling and waits for a poll in flight: no timer is left behind. */
  stop(): Promise<void> {
    return this.#poller.stop();
  }

  /** One poll; never rejects (a failure is logged, and the set's staleness does the rest). */
  async #poll(): Promise<void> {
    const set = this.denySet;
    const before = set.sequence;
    try {
      try {
        set.apply(await this.#repository.updatesSince(set.sequence, this.#clock.nowSeconds()));
      } catch (error) {
        if (!isMandateError(error, 'ERR_DENY_SET_GAP')) throw error;
        set.applySnapshot(await this.#repository.snapshot(this.#clock.nowSeconds()));
      }
    } catch (error) {
      const code = isMandateError(error) ? error.code : 'error';
      if (this.#failing !== code)
        this.#logger.warn('deny-set: poll failed', {
          reason: code,
          sequence: set.sequence,
        });
      this.#failing = code;
      return;
    }
    if (this.#failing !== undefined) this.#logger.info('deny-set: poll recovered');
    this.#failing = undefined;
    if (set.sequence !== before)
      this.#logger.info('deny-set: updated', { from: before, to: set.sequence });
  }
}
