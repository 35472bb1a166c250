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
