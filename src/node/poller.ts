import { invalid } from '../core/internal.js';

/** The poll interval, or ERR_ARGUMENT_INVALID unless it is a positive integer. */
export function checkPollInterval(intervalMs: number): number {
  if (!Number.isSafeInteger(intervalMs) || intervalMs < 1)
    throw invalid('ERR_ARGUMENT_INVALID', '`pollIntervalMs` must be a positive integer');
  return intervalMs;
}

/**
 * What a long-running process's views of the store share (the deny-set watcher, the bundle
 * source): `poll` runs every `intervalMs` after the previous run ends, one run at a time;
 * `refresh()` runs it now (joining a run in flight); `stop()` ends the timer and waits for a run
 * in flight, so nothing is left behind. `poll` must not reject: a view logs its own failures and
 * goes stale by its own rule. The timer is unref'd: a process lives for its listeners, not for it.
 */
export class Poller {
  readonly #poll: () => Promise<void>;
  readonly #intervalMs: number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #inFlight: Promise<void> | undefined;
  #stopped = false;

  /** ERR_ARGUMENT_INVALID unless `intervalMs` is a positive integer. */
  constructor(poll: () => Promise<void>, intervalMs: number) {
    this.#poll = poll;
    this.#intervalMs = checkPollInterval(intervalMs);
  }

  /** Starts the timer (the first run comes after one interval). */
  start(): void {
    this.#schedule();
  }

  /** Runs the poll now and resolves once it has run; runs never overlap. */
  refresh(): Promise<void> {
    this.#inFlight ??= this.#poll().finally(() => {
      this.#inFlight = undefined;
    });
    return this.#inFlight;
  }

  /** Stops the timer and waits for a run in flight. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#inFlight;
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.refresh().finally(() => {
        this.#schedule();
      });
    }, this.#intervalMs);
    this.#timer.unref();
  }
}
