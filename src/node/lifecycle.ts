// A node's lifecycle (docs/spec/node.md §3): parts start one after another, each once the parts
// it depends on (those started before it) run; a stop runs them in reverse, each part's stop after
// the stops of everything that depends on it, within one bound.
import { isMandateError, type Logger } from '../core/index.js';
import { timeout } from '../core/internal.js';

/** A part's readiness, as `/readyz` reports it. */
export interface PartHealth {
  readonly ready: boolean;
  /** Why it is not ready (an error code or a short phrase); never a secret. */
  readonly reason?: string;
}

/** What `/healthz` and `/readyz` answer: the node and each part. */
export interface NodeHealth {
  /** `running` once every part has started, `starting` before, `stopping` from the first signal. */
  readonly state: LifecycleState;
  readonly ready: boolean;
  readonly parts: Readonly<Record<string, PartHealth>>;
}

/** Where a node is in its life: `starting`, `running`, `stopping`, `stopped`. */
export const LifecycleState = {
  starting: 'starting',
  running: 'running',
  stopping: 'stopping',
  stopped: 'stopped',
} as const;
export type LifecycleState = (typeof LifecycleState)[keyof typeof LifecycleState];

interface Part {
  readonly name: string;
  readonly stop: () => void | Promise<void>;
  readonly health: () => PartHealth;
}

const alwaysReady = (): PartHealth => ({ ready: true });

export class Lifecycle {
  readonly #logger: Logger;
  readonly #parts: Part[] = [];
  #state: LifecycleState = LifecycleState.starting;
  #stopping: Promise<void> | undefined;

  constructor(options: { readonly logger: Logger }) {
    this.#logger = options.logger;
  }

  get state(): LifecycleState {
    return this.#state;
  }

  /**
   * Starts `name` (after every part started so far) and keeps its stop and health. A part whose
   * start fails is not kept: the caller stops the parts that did start (`stop`).
   */
  async start<T>(
    name: string,
    start: () => T | Promise<T>,
    stop: (value: T) => void | Promise<void>,
    health: (value: T) => PartHealth = alwaysReady,
  ): Promise<T> {
    if (this.#state !== LifecycleState.starting)
      throw new Error(`part \`${name}\` started after the node has ${this.#state}`);
    const value = await start();
    this.#parts.push({ name, stop: () => stop(value), health: () => health(value) });
    return value;
  }

  /** Every part has started. */
  running(): void {
    if (this.#state === LifecycleState.starting) this.#state = LifecycleState.running;
  }

  health(): NodeHealth {
    const parts: Record<string, PartHealth> = {};
    let ready = this.#state === LifecycleState.running;
    for (const part of this.#parts) {
      let health: PartHealth;
      try {
        health = part.health();
      } catch (error) {
        health = { ready: false, reason: isMandateError(error) ? error.code : 'error' };
      }
      parts[part.name] = health;
      ready &&= health.ready;
    }
    return { state: this.#state, ready, parts };
  }

  /**
   * Stops every started part, last first. A part whose stop fails is logged and the next one
   * stopped. Rejects with `ERR_NODE_STOP_TIMEOUT` when the whole stop takes longer than
   * `timeoutMs` (the parts still stopping are left to the process's exit). Idempotent.
   */
  stop(timeoutMs: number): Promise<void> {
    this.#stopping ??= this.#stopAll(timeoutMs);
    return this.#stopping;
  }

  async #stopAll(timeoutMs: number): Promise<void> {
    this.#state = LifecycleState.stopping;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let current = '';
    const stops = (async () => {
      for (const part of this.#parts.splice(0).reverse()) {
        current = part.name;
        try {
          await part.stop();
        } catch (error) {
          this.#logger.warn('stopping a part failed', {
            part: part.name,
            reason: isMandateError(error) ? error.code : String(error),
          });
        }
      }
    })();
    const bound = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(
          timeout(
            'ERR_NODE_STOP_TIMEOUT',
            `the node did not stop within ${timeoutMs} ms (still stopping \`${current}\`)`,
          ),
        );
      }, timeoutMs);
    });
    try {
      await Promise.race([stops, bound]);
      this.#state = LifecycleState.stopped;
    } finally {
      clearTimeout(timer);
    }
  }
}
