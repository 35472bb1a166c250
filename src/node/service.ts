// What a node service is given and gives back (src/node/node.ts composes them).
import type { Clock, LogFields, Logger } from '../core/index.js';
import type { DenySet } from '../credentials/index.js';
import type { Router } from '../routing/index.js';
import type { SecureChannelListener } from '../channel/index.js';
import type { AuthorityBus } from './authority-bus.js';
import type { NodeConfig } from './config.js';
import type { Home } from './home.js';
import type { PartHealth } from './lifecycle.js';

/** What a service may use: the node's router, listener and the parts started before it. */
export interface NodeServiceContext {
  readonly config: NodeConfig;
  readonly home: Home;
  readonly router: Router;
  readonly listener: SecureChannelListener;
  /** The deny-set peers are checked against: the home's live one, or the authority's. */
  readonly denySet: DenySet;
  /** The authority's bus with `authority` (its `bundles` are the gates' bundle source). */
  readonly bus: AuthorityBus | undefined;
  /** Resolves once a revocation committed on this home before the call is in `denySet`. */
  catchUpDenySet(): Promise<void>;
  /** `handler` learns each channel of the listener that closes (by its local encryptor address). */
  onChannelClosed(handler: (channelAddress: string) => void): void;
  readonly clock: Clock;
  readonly logger: Logger;
}

/** A started service: how to stop it and whether it is ready. */
export interface RunningService {
  stop(): void | Promise<void>;
  health?(): PartHealth;
  /** What the node's `listening` line names of this service (e.g. the authority's identifier). */
  readonly listening?: LogFields;
  /** The admin service's dashboard address, with a fresh one-time login token. */
  dashboardUrl?(): string;
}

/**
 * The parts a service started, stopped last first — by its `stop`, and when a later part fails
 * to start. A part whose stop fails is logged (`<service>: stopping a part failed`); the others
 * still stop.
 */
export class ServiceParts {
  readonly #stops: (() => void | Promise<void>)[] = [];
  readonly #service: string;
  readonly #logger: Logger;

  constructor(service: string, logger: Logger) {
    this.#service = service;
    this.#logger = logger;
  }

  /** Adds a started part, by how to stop it. */
  add(stop: () => void | Promise<void>): void {
    this.#stops.push(stop);
  }

  /** Stops every part added so far, last first (idempotent: each once). */
  readonly stopAll = async (): Promise<void> => {
    for (const stop of this.#stops.splice(0).reverse()) {
      try {
        await stop();
      } catch (error) {
        this.#logger.warn(`${this.#service}: stopping a part failed`, {
          error: error instanceof Error ? error.message : String(error),
        });
      }
    }
  };
}
