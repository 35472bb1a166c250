import { invalid, isUnixSeconds, silentLogger, unavailable } from '../core/internal.js';
import { isMandateError, systemClock, type Clock, type Logger } from '../core/index.js';
import type { Identifier, VerifiedIdentity } from '../identity/index.js';
import { verifyBundle, type BundleSource, type VerifiedBundle } from '../gates/index.js';
import {
  BusTopic,
  type BusMessage,
  type BusSubscriber,
  type BusSubscription,
  type PublishedBundle,
} from '../bus/index.js';

/**
 * Options of {@link BusBundleSource}.
 */
export interface BusBundleSourceOptions {
  /** The bus to follow: on a node started with `--authority`, its ChannelBusSubscriber. */
  readonly subscriber: BusSubscriber;
  /** The authorities whose bundles are accepted (on a home: `trustedAuthorities()`), per bundle. */
  readonly authorities: () => Promise<ReadonlyMap<Identifier, VerifiedIdentity>>;
  /**
   * How long the source may go without word from the bus (a bundle, a snapshot or a heartbeat,
   * by the publisher's `issuedAt`) before `current()` fails closed (`ERR_BUNDLE_STALE`).
   */
  readonly maxStalenessSeconds: number;
  /** When given, a bundle created longer ago than this is not enforced (`ERR_BUNDLE_STALE`). */
  readonly maxAgeSeconds?: number;
  readonly clock?: Clock;
  readonly logger?: Logger;
}

/**
 * The policy bundle of a node that follows its authority over the bus (DESIGN.md §6), the
 * counterpart of StoreBundleSource: the bus brings signed bytes with an announced version and
 * hash, and nothing is enforced unless `verifyBundle` accepts the bytes (a trusted authority's
 * signature, newer than the bundle in force, policies that compile) and the hash it computes is
 * the one announced. Fails closed like the store's: `current()` is undefined while there is no
 * bundle, and throws `ERR_BUNDLE_STALE` when the bus has been silent for `maxStalenessSeconds`,
 * when the bundle is older than `maxAgeSeconds`, or, after the authority announced a latest
 * bundle this node refuses, once the bound has passed (heartbeats do not count then: this node is
 * not in step with its authority).
 */
export class BusBundleSource implements BundleSource {
  readonly #options: BusBundleSourceOptions;
  readonly #clock: Clock;
  readonly #logger: Logger;
  #subscription: BusSubscription | undefined;
  #bundle: VerifiedBundle | undefined;
  /** The publisher's time of the last word this source is in step with; -Infinity before any. */
  #freshAt = Number.NEGATIVE_INFINITY;
  /** The latest bundle announced and refused (by hash), and why. */
  #refused: { readonly hash: string; readonly code: string } | undefined;
  #ready: (() => void) | undefined;
  /** Resolves at the first message this source is in step with. */
  readonly ready: Promise<void>;

  constructor(options: BusBundleSourceOptions) {
    for (const [name, value] of [
      ['maxStalenessSeconds', options.maxStalenessSeconds],
      ['maxAgeSeconds', options.maxAgeSeconds ?? 0],
    ] as const)
      if (!isUnixSeconds(value))
        throw invalid('ERR_ARGUMENT_INVALID', `\`${name}\` must be a non-negative integer`);
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? silentLogger;
    this.ready = new Promise((resolve) => {
      this.#ready = resolve;
    });
  }

  /** Subscribes to the bundles topic (from a snapshot). */
  start(): void {
    this.#subscription = this.#options.subscriber.subscribe(BusTopic.bundles, {
      onMessage: (message) => this.#receive(message),
      onEnd: (error) => {
        this.#logger.warn('bundle: subscription ended', { reason: error.code });
      },
    });
  }

  /** Unsubscribes; the bundle in force goes stale with time. */
  stop(): void {
    this.#subscription?.unsubscribe();
    this.#subscription = undefined;
  }

  /**
   * The bundle in force: undefined when there is none; `ERR_BUNDLE_STALE` past the bounds.
   * Cheap: called on every decision.
   */
  current(): VerifiedBundle | undefined {
    const now = this.#clock.nowSeconds();
    const bound = this.#options.maxStalenessSeconds;
    if (!isUnixSeconds(now) || now - this.#freshAt > bound)
      throw unavailable(
        'ERR_BUNDLE_STALE',
        this.#freshAt === Number.NEGATIVE_INFINITY
          ? 'no word about policy bundles has come from the authority yet'
          : `the authority last confirmed the policy bundle at \`${this.#freshAt}\`, more than ${bound} s before \`${now}\``,
      );
    const bundle = this.#bundle;
    if (bundle === undefined) return undefined;
    const maxAge = this.#options.maxAgeSeconds;
    if (maxAge !== undefined && now - bundle.createdAt > maxAge)
      throw unavailable(
        'ERR_BUNDLE_STALE',
        `policy bundle version ${bundle.version} was created ${now - bundle.createdAt} s ago, more than the bound of ${maxAge} s`,
      );
    return bundle;
  }

  async #receive(message: BusMessage<'bundles'>): Promise<void> {
    if (message.type === 'heartbeat') {
      if (this.#refused === undefined) this.#fresh(message.issuedAt);
      return;
    }
    const latest: PublishedBundle | undefined =
      message.type === 'snapshot'
        ? message.snapshot.bundle
        : message.update.bundles[message.update.bundles.length - 1];
    const issuedAt =
      message.type === 'snapshot' ? message.snapshot.issuedAt : message.update.issuedAt;
    const held = this.#bundle;
    if (latest === undefined) {
      // The authority has no bundle: fine before the first, a store that went back after it.
      if (held === undefined) this.#fresh(issuedAt);
      else this.#refuse('none', 'ERR_BUNDLE_NOT_NEWER', 0);
      return;
    }
    if (held !== undefined && latest.hash === held.hash) {
      this.#refused = undefined;
      this.#fresh(issuedAt);
      return;
    }
    if (latest.hash === this.#refused?.hash) return;
    let verified: VerifiedBundle;
    try {
      verified = verifyBundle(latest.bytes, {
        nowSeconds: this.#clock.nowSeconds(),
        authorities: await this.#options.authorities(),
        ...(held === undefined ? {} : { known: held }),
        ...(this.#options.maxAgeSeconds === undefined
          ? {}
          : { maxAgeSeconds: this.#options.maxAgeSeconds }),
      });
      if (verified.hash !== latest.hash || verified.version !== latest.version)
        throw invalid(
          'ERR_BUS_MESSAGE_INVALID',
          `the bundle announced as version ${latest.version} is version ${verified.version} with another hash`,
        );
    } catch (error) {
      if (!isMandateError(error)) throw error;
      this.#refuse(latest.hash, error.code, latest.version);
      return;
    }
    this.#bundle = verified;
    this.#refused = undefined;
    this.#fresh(issuedAt);
    this.#logger.info('bundle: updated', {
      from: held?.version ?? 0,
      to: verified.version,
      hash: verified.hash,
    });
  }

  #fresh(issuedAt: number): void {
    if (issuedAt > this.#freshAt) this.#freshAt = issuedAt;
    // A snapshot of a bus that never heard from its publisher (issuedAt 0) is not word yet.
    if (issuedAt === 0) return;
    this.#ready?.();
    this.#ready = undefined;
  }

  #refuse(hash: string, code: string, version: number): void {
    this.#refused = { hash, code };
    this.#logger.warn('bundle: refused', { version, reason: code });
  }
}
