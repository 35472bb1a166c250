/** Time is a parameter of every protocol core; wire times are integer seconds. */
export interface Clock {
  /** Unix time in whole seconds. */
  nowSeconds(): number;
}

/**
 * The clock services use unless given another: `Date.now()` in whole seconds.
 */
export const systemClock: Clock = {
  nowSeconds: () => Math.floor(Date.now() / 1000),
};

/** A clock that moves only when told to: for tests and deterministic scenarios. */
export class ManualClock implements Clock {
  #now: number;
  constructor(startSeconds: number) {
    this.#now = startSeconds;
  }
  nowSeconds(): number {
    return this.#now;
  }
  advance(seconds: number): void {
    this.#now += seconds;
  }
  set(seconds: number): void {
    this.#now = seconds;
  }
}
