import { isMandateError, type Logger } from '../core/index.js';
import { silentLogger } from '../core/internal.js';
import type { DenySet } from '../credentials/index.js';
import type { Broker } from '../broker/index.js';
import { Poller } from './poller.js';

/** How often the deny-set's sequence is compared, by default (a number compare: cheap). */
export const DEFAULT_BROKER_TICK_MS = 100;
/** Expiry and pending provider revocations run every this many ticks (1 s by default). */
const EXPIRY_EVERY_TICKS = 10;

/** Options of {@link BrokerTimers}. */
export interface BrokerTimersOptions {
  readonly broker: Broker;
  /**
   * The node's live deny-set (a DenySetWatcher's or an AuthorityBus's, updated in place): when
   * its sequence moves, every active lease whose holder or chain ids it now names is revoked.
   */
  readonly denySet: DenySet;
  /** Default 100. */
  readonly tickMs?: number;
  readonly logger?: Logger;
}

/**
 * What keeps a running broker's leases honest: the deny-set hook (on every change of the live
 * deny-set, `broker.revokeDenied`: a revoked identity's or chain's leases end within the
 * watcher's poll interval plus one tick), expiry (`expireDue`) and the providers' pending
 * revocations (`finishPending`) every second, and one `reap` at start (what a crash left at the
 * providers). Runs one pass at a time; failures are logged and the next pass tries again.
 */
export class BrokerTimers {
  readonly #options: BrokerTimersOptions;
  readonly #poller: Poller;
  readonly #logger: Logger;
  #sequence = -1;
  #ticks = 0;

  private constructor(options: BrokerTimersOptions) {
    this.#options = options;
    this.#logger = options.logger ?? silentLogger;
    this.#poller = new Poller(() => this.#tick(), options.tickMs ?? DEFAULT_BROKER_TICK_MS);
  }

  /** Reaps, runs a first pass (deny-set, expiry, pending) and starts the timer. */
  static async start(options: BrokerTimersOptions): Promise<BrokerTimers> {
    const timers = new BrokerTimers(options);
    try {
      const removed = await options.broker.reap();
      if (removed > 0) timers.#logger.info('broker: reaped orphans', { removed });
    } catch (error) {
      timers.#logger.warn('broker: reap failed', { reason: codeOf(error) });
    }
    await timers.refresh();
    timers.#poller.start();
    return timers;
  }

  /** Runs a full pass now (deny-set, expiry, pending). */
  refresh(): Promise<void> {
    this.#ticks = 0;
    this.#sequence = -1;
    return this.#poller.refresh();
  }

  stop(): Promise<void> {
    return this.#poller.stop();
  }

  async #tick(): Promise<void> {
    const { broker, denySet } = this.#options;
    const sequence = denySet.sequence;
    if (sequence !== this.#sequence) {
      try {
        const ended = await broker.revokeDenied((id) => denySet.isRevoked(id));
        this.#sequence = sequence;
        if (ended.length > 0)
          this.#logger.info('broker: deny-set revoked leases', { count: ended.length, sequence });
      } catch (error) {
        this.#logger.warn('broker: deny-set pass failed', { reason: codeOf(error) });
      }
    }
    if (this.#ticks++ % EXPIRY_EVERY_TICKS !== 0) return;
    try {
      await broker.expireDue();
      await broker.finishPending();
    } catch (error) {
      this.#logger.warn('broker: expiry pass failed', { reason: codeOf(error) });
    }
  }
}

const codeOf = (error: unknown): string => (isMandateError(error) ? error.code : 'error');
