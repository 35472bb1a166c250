import { invalid, silentLogger, unavailable } from '../core/internal.js';
import { isMandateError, systemClock, type Clock, type Logger } from '../core/index.js';
import type { Identifier, VerifiedIdentity } from '../identity/index.js';
import {
  checkBundleAge,
  verifyBundle,
  type BundleSource,
  type PolicyBundleRepository,
  type VerifiedBundle,
} from '../gates/index.js';
import { checkPollInterval, Poller } from './poller.js';
import type { NodeServiceContext } from './service.js';

/** How often a source asks the repository for a newer bundle, by default. */
export const DEFAULT_BUNDLE_POLL_MS = 1_000;

/**
 * Options of {@link StoreBundleSource}.
 */
export interface StoreBundleSourceOptions {
  /** Where the home's bundles are published: its SQLite repository (written by `policy publish`). */
  readonly repository: Pick<PolicyBundleRepository, 'latestBundle' | 'latestBundleVersion'>;
  /**
   * The authorities whose bundles are accepted (on a home: `trustedAuthorities()`), asked again
   * for every new version, so a trust anchor removed stops counting for the next bundle.
   */
  readonly authorities: () => Promise<ReadonlyMap<Identifier, VerifiedIdentity>>;
  /**
   * How long the source may go without a successful read of an acceptable latest bundle before
   * `current()` fails closed (`ERR_BUNDLE_STALE`): the bound on how late a new bundle can be
   * missed when the store cannot be read, or holds a latest bundle that does not verify.
   */
  readonly maxStalenessSeconds: number;
  /**
   * When given, a bundle created longer ago than this is not enforced (`ERR_BUNDLE_STALE`): the
   * authority must publish at least that often.
   */
  readonly maxAgeSeconds?: number;
  /** Default 1 000. */
  readonly pollIntervalMs?: number;
  readonly clock?: Clock;
  readonly logger?: Logger;
}

/**
 * The policy bundle of a long-running process on one home (DESIGN.md §6: "processes on one home
 * watch the store"), shaped like the deny-set watcher: `start` reads the latest bundle; from then
 * on a timer asks the repository for the latest version every `pollIntervalMs`, and a version it
 * has not seen is verified (signature by a trusted authority, newer than the one in force, policies
 * compiled against its schema) before it replaces the one in force — so every gate holding this
 * source enforces a new bundle within one poll.
 *
 * Fails closed: `current()` returns undefined while there is no bundle (the gates deny), and
 * throws `ERR_BUNDLE_STALE` when the bundle is older than `maxAgeSeconds` or when no poll has
 * succeeded for `maxStalenessSeconds`. A poll fails when the store cannot be read, when its latest
 * bundle does not verify (a row edited in the database, an untrusted issuer: the bundle in force
 * stays, but only until the staleness bound, and the refused bundle is verified once, not on
 * every poll), and when the store went back (a replaced database is not followed).
 */
export class StoreBundleSource implements BundleSource {
  readonly #options: StoreBundleSourceOptions;
  readonly #poller: Poller;
  readonly #clock: Clock;
  readonly #logger: Logger;
  #bundle: VerifiedBundle | undefined;
  /** Unix seconds of the last successful poll. */
  #freshAt: number;
  /** The latest bundle the source refused, and why: not verified again. */
  #refused: { readonly hash: string; readonly code: string } | undefined;
  /** The code of the last failed poll, so a lasting failure is logged once, not every second. */
  #failing: string | undefined;

  private constructor(options: StoreBundleSourceOptions, pollIntervalMs: number) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? silentLogger;
    this.#poller = new Poller(() => this.#poll(), pollIntervalMs);
    this.#freshAt = this.#clock.nowSeconds();
  }

  /**
   * Reads the latest bundle (a store that cannot be read rejects: a process must not start
   * without knowing; a latest bundle that does not verify does not, and leaves no bundle in force)
   * and starts polling. ERR_ARGUMENT_INVALID for a poll interval that is not a positive integer or
   * bounds that are not non-negative integers.
   */
  static async start(options: StoreBundleSourceOptions): Promise<StoreBundleSource> {
    const pollIntervalMs = checkPollInterval(options.pollIntervalMs ?? DEFAULT_BUNDLE_POLL_MS);
    checkSeconds(options.maxStalenessSeconds, 'maxStalenessSeconds');
    if (options.maxAgeSeconds !== undefined) checkSeconds(options.maxAgeSeconds, 'maxAgeSeconds');
    const source = new StoreBundleSource(options, pollIntervalMs);
    const failure = await source.#read();
    if (failure !== undefined) source.#logFailure(failure);
    source.#poller.start();
    return source;
  }

  /**
   * The bundle in force: undefined when there is none; `ERR_BUNDLE_STALE` when it is older than
   * `maxAgeSeconds` or the source has not read an acceptable latest bundle for
   * `maxStalenessSeconds`. Cheap: called on every decision.
   */
  current(): VerifiedBundle | undefined {
    const now = this.#clock.nowSeconds();
    const since = now - this.#freshAt;
    if (since > this.#options.maxStalenessSeconds)
      throw unavailable(
        'ERR_BUNDLE_STALE',
        `the policy bundle was last confirmed ${since} s ago, more than the bound of ${this.#options.maxStalenessSeconds} s`,
      );
    const bundle = this.#bundle;
    if (bundle !== undefined) checkBundleAge(bundle, now, this.#options.maxAgeSeconds);
    return bundle;
  }

  /** Polls now (and resolves once applied); polls run one at a time. For tests and scenarios. */
  refresh(): Promise<void> {
    return this.#poller.refresh();
  }

  /** Stops polling and waits for a poll in flight: no timer is left behind. */
  stop(): Promise<void> {
    return this.#poller.stop();
  }

  /** One poll; never rejects (a failure is logged, and staleness does the rest). */
  async #poll(): Promise<void> {
    let failure: string | undefined;
    try {
      failure = await this.#read();
    } catch (error) {
      failure = isMandateError(error) ? error.code : 'error';
    }
    if (failure !== undefined) {
      this.#logFailure(failure);
      return;
    }
    if (this.#failing !== undefined) this.#logger.info('bundle: poll recovered');
    this.#failing = undefined;
  }

  /**
   * Reads the latest version and, when it is new, verifies and installs it. Returns undefined on
   * success (the view is fresh), else the code that made this read fail; rejects only when the
   * repository does.
   */
  async #read(): Promise<string | undefined> {
    const now = this.#clock.nowSeconds();
    const latest = await this.#options.repository.latestBundleVersion();
    const held = this.#bundle;
    if (latest === undefined) {
      if (held !== undefined) return 'ERR_BUNDLE_NOT_NEWER';
      this.#freshAt = now;
      return undefined;
    }
    if (held !== undefined && latest.hash === held.hash) {
      this.#freshAt = now;
      return undefined;
    }
    if (latest.hash === this.#refused?.hash) return this.#refused.code;
    const stored = await this.#options.repository.latestBundle();
    if (stored === undefined) return 'ERR_BUNDLE_NOT_FOUND';
    try {
      const verified = verifyBundle(stored.bytes, {
        nowSeconds: now,
        authorities: await this.#options.authorities(),
        ...(held === undefined ? {} : { known: held }),
      });
      this.#bundle = verified;
      this.#freshAt = now;
      this.#refused = undefined;
      this.#logger.info('bundle: updated', {
        from: held?.version ?? 0,
        to: verified.version,
        hash: verified.hash,
      });
      return undefined;
    } catch (error) {
      if (!isMandateError(error)) throw error;
      this.#refused = { hash: stored.hash, code: error.code };
      this.#logger.warn('bundle: latest refused', {
        version: stored.version,
        reason: error.code,
        message: error.message,
      });
      return error.code;
    }
  }

  #logFailure(code: string): void {
    if (this.#failing !== code)
      this.#logger.warn('bundle: poll failed', {
        reason: code,
        version: this.#bundle?.version ?? 0,
      });
    this.#failing = code;
  }
}

function checkSeconds(value: number, name: string): void {
  if (!Number.isSafeInteger(value) || value < 0)
    throw invalid('ERR_ARGUMENT_INVALID', `\`${name}\` must be a non-negative integer`);
}

/**
 * The policy bundles a node service's gate follows: the authority's bus when the node follows
 * one, otherwise the home's stored bundles, polled (stale past `maxStalenessSeconds`); `stop`
 * ends the polling (nothing to end for the bus, which the node owns).
 */
export async function nodeBundleSource(
  node: Pick<NodeServiceContext, 'home' | 'bus' | 'clock' | 'logger'>,
  maxStalenessSeconds: number,
): Promise<{ readonly bundles: BundleSource; stop(): Promise<void> }> {
  if (node.bus !== undefined) return { bundles: node.bus.bundles, stop: () => Promise.resolve() };
  const { home } = node;
  const store = await StoreBundleSource.start({
    repository: home.store.policyBundles,
    authorities: () => home.trustedAuthorities(),
    maxStalenessSeconds,
    clock: node.clock,
    logger: node.logger,
  });
  return { bundles: store, stop: () => store.stop() };
}
