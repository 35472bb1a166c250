import { isMandateError, systemClock, type Clock, type Logger } from '../core/index.js';
import { invalid, silentLogger, unavailable } from '../core/internal.js';
import type { DenySetRepository } from '../credentials/index.js';
import { BusTopic, type BusPublisher, type PublishedBundle } from '../bus/index.js';
import { Poller } from './poller.js';

/** How often a feed reads its store, by default: a revocation reaches the bus within this. */
export const DEFAULT_FEED_POLL_MS = 200;
/** How often a feed tells the bus that nothing changed, by default. */
export const DEFAULT_HEARTBEAT_MS = 1_000;

/**
 * Options of {@link DenySetFeed} and {@link BundleFeed}.
 */
export interface FeedOptions {
  /** The bus to publish on: the authority node's in-process bus. */
  readonly bus: BusPublisher;
  /** Default 200. */
  readonly pollIntervalMs?: number;
  /** Default 1 000: a heartbeat at most this often when a poll found nothing new. */
  readonly heartbeatIntervalMs?: number;
  readonly clock?: Clock;
  readonly logger?: Logger;
}

/**
 * What both feeds share: one poll at a time, every `pollIntervalMs` (the node's Poller); a poll
 * that fails is logged once per run of failures and publishes nothing — no heartbeat either, so
 * subscribers go stale when the authority cannot read its own store.
 */
abstract class Feed {
  protected readonly bus: BusPublisher;
  protected readonly clock: Clock;
  protected readonly logger: Logger;
  readonly #poller: Poller;
  readonly #heartbeatMs: number;
  #lastBeatMs = 0;
  #failing: string | undefined;

  protected constructor(
    options: FeedOptions,
    protected readonly topic: BusTopic,
  ) {
    this.bus = options.bus;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
    this.#poller = new Poller(() => this.#poll(), options.pollIntervalMs ?? DEFAULT_FEED_POLL_MS);
    const heartbeatMs = options.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_MS;
    if (!Number.isSafeInteger(heartbeatMs) || heartbeatMs < 1)
      throw invalid('ERR_ARGUMENT_INVALID', '`heartbeatIntervalMs` must be a positive integer');
    this.#heartbeatMs = heartbeatMs;
  }

  /** Reads the store now and publishes what changed (and a heartbeat when due). Never rejects. */
  refresh(): Promise<void> {
    return this.#poller.refresh();
  }

  /** Stops polling and waits for a poll in flight. */
  stop(): Promise<void> {
    return this.#poller.stop();
  }

  protected schedule(): void {
    this.#poller.start();
  }

  /** One read of the store; returns whether it published something (which refreshes too). */
  protected abstract pollOnce(nowSeconds: number): Promise<boolean>;

  async #poll(): Promise<void> {
    const now = this.clock.nowSeconds();
    let published: boolean;
    try {
      published = await this.pollOnce(now);
    } catch (error) {
      const code = isMandateError(error) ? error.code : 'error';
      if (this.#failing !== code)
        this.logger.warn(`bus: ${this.topic} feed failed`, { reason: code });
      this.#failing = code;
      return;
    }
    if (this.#failing !== undefined) this.logger.info(`bus: ${this.topic} feed recovered`);
    this.#failing = undefined;
    const nowMs = Date.now();
    if (published) this.#lastBeatMs = nowMs;
    else if (nowMs - this.#lastBeatMs >= this.#heartbeatMs) {
      this.bus.heartbeat(this.topic, now);
      this.#lastBeatMs = nowMs;
    }
  }
}

/**
 * Options of {@link DenySetFeed}.
 */
export interface DenySetFeedOptions extends FeedOptions {
  /** The authority's durable deny-set (on a home, its SQLite repository, written by `revoke`). */
  readonly repository: Pick<DenySetRepository, 'snapshot' | 'updatesSince'>;
}

/**
 * The authority node's deny-set on its bus: `start` publishes the store's snapshot, then every
 * `pollIntervalMs` the entries past the bus's sequence are published as one update (the store's
 * sequence numbers are the bus's), or a heartbeat when nothing changed and one is due. Entries
 * pruned before they were read: a new snapshot. A store that went back (a replaced database) is
 * not followed: the feed stops publishing, so subscribers go stale.
 */
export class DenySetFeed extends Feed {
  readonly #repository: DenySetFeedOptions['repository'];

  private constructor(options: DenySetFeedOptions) {
    super(options, BusTopic.denySet);
    this.#repository = options.repository;
  }

  /** Publishes the snapshot (its failure rejects: an authority must not serve without one). */
  static async start(options: DenySetFeedOptions): Promise<DenySetFeed> {
    const feed = new DenySetFeed(options);
    const now = feed.clock.nowSeconds();
    options.bus.publishSnapshot(BusTopic.denySet, await options.repository.snapshot(now));
    feed.schedule();
    return feed;
  }

  protected async pollOnce(nowSeconds: number): Promise<boolean> {
    const sequence = this.bus.sequence(BusTopic.denySet);
    try {
      const update = await this.#repository.updatesSince(sequence, nowSeconds);
      if (update.toSequence === sequence) return false;
      this.bus.publish(BusTopic.denySet, update);
    } catch (error) {
      if (!isMandateError(error, 'ERR_DENY_SET_GAP')) throw error;
      this.bus.publishSnapshot(BusTopic.denySet, await this.#repository.snapshot(nowSeconds));
    }
    this.logger.info('bus: deny-set published', {
      from: sequence,
      to: this.bus.sequence(BusTopic.denySet),
    });
    return true;
  }
}

/** What {@link BundleFeed} reads: a policy bundle repository (the gates' PolicyBundleRepository). */
export interface BundleFeedRepository {
  latestBundleVersion(): Promise<{ readonly version: number; readonly hash: string } | undefined>;
  /** The history, oldest first. */
  listBundles(): Promise<readonly { readonly version: number; readonly hash: string }[]>;
  getBundle(version: number): Promise<PublishedBundle | undefined>;
}

/**
 * Options of {@link BundleFeed}.
 */
export interface BundleFeedOptions extends FeedOptions {
  readonly repository: BundleFeedRepository;
}

/**
 * The authority node's policy bundles on its bus. The topic's sequence is the number of bundles
 * in the repository's history (one step per published version), so it survives restarts; the
 * snapshot holds the latest bundle. Each poll compares the latest version and hash, and publishes
 * the versions published since as one update, the signed bytes as stored (receivers verify them).
 */
export class BundleFeed extends Feed {
  readonly #repository: BundleFeedRepository;
  #latest: { readonly version: number; readonly hash: string } | undefined;

  private constructor(options: BundleFeedOptions) {
    super(options, BusTopic.bundles);
    this.#repository = options.repository;
  }

  /** Publishes the snapshot (its failure rejects). */
  static async start(options: BundleFeedOptions): Promise<BundleFeed> {
    const feed = new BundleFeed(options);
    const history = await options.repository.listBundles();
    const latest = history.at(-1);
    const bundle =
      latest === undefined ? undefined : await options.repository.getBundle(latest.version);
    options.bus.publishSnapshot(BusTopic.bundles, {
      sequence: history.length,
      bundle: bundle === undefined ? undefined : published(bundle),
      issuedAt: feed.clock.nowSeconds(),
    });
    feed.#latest = latest;
    feed.schedule();
    return feed;
  }

  protected async pollOnce(nowSeconds: number): Promise<boolean> {
    const latest = await this.#repository.latestBundleVersion();
    if (
      latest === undefined ||
      (latest.version === this.#latest?.version && latest.hash === this.#latest.hash)
    )
      return false;
    const history = await this.#repository.listBundles();
    const sequence = this.bus.sequence(BusTopic.bundles);
    const fresh = history.slice(sequence);
    const bundles: PublishedBundle[] = [];
    for (const summary of fresh) {
      const bundle = await this.#repository.getBundle(summary.version);
      if (bundle === undefined)
        throw unavailable('ERR_BUS_FAILED', `bundle version \`${summary.version}\` vanished`);
      bundles.push(published(bundle));
    }
    if (bundles.length === 0 || history.length < sequence) {
      // The history is not one this bus continues (it went back): a snapshot of what stands.
      const last = history.at(-1);
      const bundle =
        last === undefined ? undefined : await this.#repository.getBundle(last.version);
      this.bus.publishSnapshot(BusTopic.bundles, {
        sequence: Math.max(history.length, sequence),
        bundle: bundle === undefined ? undefined : published(bundle),
        issuedAt: nowSeconds,
      });
    } else {
      this.bus.publish(BusTopic.bundles, {
        fromSequence: sequence,
        toSequence: sequence + bundles.length,
        bundles,
        issuedAt: nowSeconds,
      });
    }
    this.#latest = latest;
    this.logger.info('bus: bundle published', { version: latest.version, hash: latest.hash });
    return true;
  }
}

const published = (bundle: PublishedBundle): PublishedBundle => ({
  version: bundle.version,
  hash: bundle.hash,
  bytes: bundle.bytes,
});
