import { systemClock, type Clock, type Logger } from '../core/index.js';
import { silentLogger, unavailable } from '../core/internal.js';
import { DenySet } from '../credentials/index.js';
import type { Identifier, VerifiedIdentity } from '../identity/index.js';
import { DenySetFollower, type DenySetFollowerOptions } from '../bus/index.js';
import type { Router } from '../routing/index.js';
import { BusBundleSource } from './bus-bundle-source.js';
import {
  ChannelBusSubscriber,
  type ChannelBusSubscriberOptions,
} from './channel-bus-subscriber.js';

/** How long `AuthorityBus.start` waits for the authority's first word, by default. */
export const DEFAULT_AUTHORITY_BUS_START_MS = 10_000;

/**
 * Options of {@link AuthorityBus}.
 */
export interface AuthorityBusOptions {
  readonly router: Router;
  /** Opens a secure channel to the authority node (ChannelBusSubscriberOptions.connect). */
  readonly connect: ChannelBusSubscriberOptions['connect'];
  /** A number in [0, 1) for the reconnection jitter (crypto's `randomUnit`). */
  readonly random: () => number;
  /**
   * How long the node may go without word from its authority before its deny-set fails every
   * check (ERR_DENY_SET_STALE) and its bundle source every decision (ERR_BUNDLE_STALE).
   */
  readonly maxStalenessSeconds: number;
  /**
   * The set to keep in step (updated in place), already handed to the node's verifiers; a new one
   * (with `maxStalenessSeconds`) when omitted.
   */
  readonly denySet?: DenySet;
  /** The authorities whose bundles are accepted (on a home: `trustedAuthorities()`). */
  readonly authorities: () => Promise<ReadonlyMap<Identifier, VerifiedIdentity>>;
  /**
   * Called with the entries each deny-set delivery applied (`DenySetFollower`'s `onApplied`): an
   * enforcement point logs them with a `RevocationRecorder`.
   */
  readonly onDenyEntries?: DenySetFollowerOptions['onApplied'];
  /** Default 10 000. */
  readonly startTimeoutMs?: number;
  /** ChannelBusSubscriber's silence timeout and backoff, for tests. */
  readonly silenceTimeoutMs?: number;
  readonly retryInitialMs?: number;
  readonly retryMaxMs?: number;
  readonly clock?: Clock;
  readonly logger?: Logger;
}

/**
 * What a node started with `--authority ROUTE` follows (DESIGN.md §6, docs/spec/policy.md §3):
 * its authority's deny-set and policy bundles, over one secure channel to the authority node's
 * bus service. `denySet` is the object to hand to every verifier of the node (its listener checks
 * peers against it at the handshake and on every delivery, so a revocation on the authority's
 * home cuts open channels too); `bundles` is the gates' bundle source. Both fail closed when the
 * authority has been silent past `maxStalenessSeconds`, and recover from the snapshot the
 * authority sends when the node reconnects.
 */
export class AuthorityBus {
  readonly denySet: DenySet;
  readonly bundles: BusBundleSource;
  readonly subscriber: ChannelBusSubscriber;
  readonly #follower: DenySetFollower;

  private constructor(options: AuthorityBusOptions) {
    const logger = options.logger ?? silentLogger;
    this.denySet =
      options.denySet ?? new DenySet({ maxStalenessSeconds: options.maxStalenessSeconds });
    this.subscriber = new ChannelBusSubscriber({
      router: options.router,
      connect: options.connect,
      random: options.random,
      logger,
      ...(options.silenceTimeoutMs === undefined
        ? {}
        : { silenceTimeoutMs: options.silenceTimeoutMs }),
      ...(options.retryInitialMs === undefined ? {} : { retryInitialMs: options.retryInitialMs }),
      ...(options.retryMaxMs === undefined ? {} : { retryMaxMs: options.retryMaxMs }),
    });
    this.#follower = new DenySetFollower(this.subscriber, this.denySet, {
      logger,
      ...(options.onDenyEntries === undefined ? {} : { onApplied: options.onDenyEntries }),
    });
    this.bundles = new BusBundleSource({
      subscriber: this.subscriber,
      authorities: options.authorities,
      maxStalenessSeconds: options.maxStalenessSeconds,
      clock: options.clock ?? systemClock,
      logger,
    });
  }

  /**
   * Subscribes and waits until the authority's deny-set has arrived. Rejects with
   * `ERR_AUTHORITY_UNREACHABLE` when it has not within `startTimeoutMs` (the authority cannot be
   * reached, or refuses this node: see the log), and stops everything then.
   */
  static async start(options: AuthorityBusOptions): Promise<AuthorityBus> {
    const bus = new AuthorityBus(options);
    bus.#follower.start();
    bus.bundles.start();
    const timeoutMs = options.startTimeoutMs ?? DEFAULT_AUTHORITY_BUS_START_MS;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<false>((resolve) => {
      timer = setTimeout(() => {
        resolve(false);
      }, timeoutMs);
    });
    const ready = await Promise.race([bus.#follower.ready.then(() => true), timedOut]);
    clearTimeout(timer);
    if (!ready) {
      await bus.stop();
      throw unavailable(
        'ERR_AUTHORITY_UNREACHABLE',
        `the authority's deny-set did not arrive within ${timeoutMs} ms`,
      );
    }
    return bus;
  }

  /** Unsubscribes and closes the channel; the deny-set and bundle go stale with time. */
  async stop(): Promise<void> {
    this.#follower.stop();
    this.bundles.stop();
    await this.subscriber.stop();
  }
}
