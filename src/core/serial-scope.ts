import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * One writer at a time for a store that async tasks share, with nesting: work started inside a
 * `transaction` (through any number of awaits) joins it, while work from any other task waits.
 * Without the async context, a write from an unrelated task could land inside another task's
 * open transaction — and be rolled back with it.
 */
export class SerialScope {
  readonly #inside = new AsyncLocalStorage<true>();
  #tail: Promise<void> = Promise.resolve();

  /** True when the caller runs inside this scope's current transaction. */
  get active(): boolean {
    return this.#inside.getStore() === true;
  }

  /**
   * Runs `work` alone: `begin` before it, `commit` after it succeeds, `rollback` if it throws.
   * Nested calls run `work` directly, as part of the outer transaction.
   */
  async transaction<T>(
    work: () => Promise<T>,
    hooks: {
      readonly begin?: () => void;
      readonly commit?: () => void;
      readonly rollback?: () => void;
    } = {},
  ): Promise<T> {
    if (this.active) return work();
    const release = await this.#acquire();
    try {
      hooks.begin?.();
      try {
        const result = await this.#inside.run(true, work);
        hooks.commit?.();
        return result;
      } catch (error) {
        hooks.rollback?.();
        throw error;
      }
    } finally {
      release();
    }
  }

  /** A single synchronous write: joins the current transaction, or waits for its turn. */
  async write<T>(statement: () => T): Promise<T> {
    if (this.active) return statement();
    const release = await this.#acquire();
    try {
      return statement();
    } finally {
      release();
    }
  }

  async #acquire(): Promise<() => void> {
    const previous = this.#tail;
    let release!: () => void;
    this.#tail = new Promise<void>((resolve) => {
      release = resolve;
    });
    await previous;
    return release;
  }
}
