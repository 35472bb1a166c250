import { toHex } from '../encoding/index.js';
import { sha256 } from '../crypto/index.js';
import { checkUnixSeconds, forbidden, unauthorized } from '../core/internal.js';
import type { Identifier, VerifiedIdentity } from '../identity/index.js';
import { credentialKeyHeldUntil, VerifiedAttestations } from './credential-key.js';
import { verifyChainWith, type VerifiedChain } from './delegation.js';
import type { DenySet } from './deny-set.js';

/**
 * Options of {@link ChainVerifier}: the trusted authorities, the deny-set and the cache size.
 */
export interface ChainVerifierOptions {
  readonly authorities: ReadonlyMap<Identifier, VerifiedIdentity>;
  readonly denySet?: DenySet;
  /** Verified chains kept (default 10,000); the least recently used go first. */
  readonly cacheSize?: number;
  /**
   * How long a verified chain is trusted without re-verifying its signatures (default 300 s).
   * Expiry and the deny-set are re-checked on every call regardless; this bound limits how long
   * an issuer's key rotation goes unnoticed by a cached chain.
   */
  readonly maxCacheAgeSeconds?: number;
  readonly rotationGraceSeconds?: number;
  /** See VerifyChainOptions.knownIdentities. */
  readonly knownIdentities?: ReadonlyMap<Identifier, VerifiedIdentity>;
}

interface Entry {
  readonly chain: VerifiedChain;
  readonly verifiedAt: number;
  /** The last time the verification holds as it did at `verifiedAt` (see reusableUntil). */
  readonly until: number;
}

/**
 * Until when a chain verifies alike, as far as its keys go: while every issuer key holds as
 * when verified ({@link credentialKeyHeldUntil}) — not at all, once verified, when one was
 * accepted under a rotation grace window (found by an outside attack: a chain verified in the
 * window was reused after it closed). Its own expiry and the deny-set are checked on every call.
 */
function reusableUntil(chain: VerifiedChain): number {
  let until = credentialKeyHeldUntil(chain.root.issuerKey);
  for (const link of chain.links) until = Math.min(until, credentialKeyHeldUntil(link.issuerKey));
  return until;
}

/**
 * Verifies chains once and remembers them by the hash of their bytes: a presenter's later calls
 * cost a hash, an expiry check and deny-set lookups — no signature check.
 */
export class ChainVerifier {
  readonly #options: ChainVerifierOptions;
  readonly #cache = new Map<string, Entry>();
  readonly #cacheSize: number;
  readonly #maxAge: number;
  // The authorities' attestations the chains' root credentials carry, each verified once while
  // it holds (chains rooted at one authority carry the same one).
  readonly #attestations = new VerifiedAttestations();

  constructor(options: ChainVerifierOptions) {
    this.#options = options;
    this.#cacheSize = options.cacheSize ?? 10_000;
    this.#maxAge = options.maxCacheAgeSeconds ?? 300;
  }

  /**
   * `hash`: the hex SHA-256 of `bytes` when the caller holds it already (an audit verifier that
   * checked it against a logged chain record): the cache key without hashing the chain again.
   */
  verify(
    bytes: Uint8Array,
    options: {
      readonly nowSeconds: number;
      readonly presenter?: Identifier;
      readonly hash?: string;
    },
  ): VerifiedChain {
    const now = checkUnixSeconds(options.nowSeconds);
    const key = options.hash ?? toHex(sha256(bytes));
    const entry = this.#cache.get(key);
    if (
      entry !== undefined &&
      now >= entry.verifiedAt &&
      now - entry.verifiedAt <= this.#maxAge &&
      now <= entry.until
    ) {
      const { chain } = entry;
      if (now >= chain.expiresAt) {
        this.#cache.delete(key);
        throw unauthorized('ERR_DELEGATION_EXPIRED', `the chain expired at ${chain.expiresAt}`);
      }
      if (options.presenter !== undefined && options.presenter !== chain.actor) {
        throw forbidden(
          'ERR_CHAIN_PRESENTER_MISMATCH',
          `the chain was delegated to \`${chain.actor}\`, not to the presenter \`${options.presenter}\``,
        );
      }
      this.#options.denySet?.assertNoneRevoked(chain.revocationSubjects, now);
      this.#cache.delete(key);
      this.#cache.set(key, entry);
      return chain;
    }
    const chain = verifyChainWith(
      bytes,
      {
        nowSeconds: now,
        authorities: this.#options.authorities,
        ...(options.presenter === undefined ? {} : { presenter: options.presenter }),
        ...(this.#options.denySet === undefined ? {} : { denySet: this.#options.denySet }),
        ...(this.#options.knownIdentities === undefined
          ? {}
          : { knownIdentities: this.#options.knownIdentities }),
        ...(this.#options.rotationGraceSeconds === undefined
          ? {}
          : { rotationGraceSeconds: this.#options.rotationGraceSeconds }),
      },
      this.#attestations,
    );
    this.#cache.delete(key);
    this.#cache.set(key, { chain, verifiedAt: now, until: reusableUntil(chain) });
    if (this.#cache.size > this.#cacheSize) {
      const oldest = this.#cache.keys().next();
      if (oldest.done !== true) this.#cache.delete(oldest.value);
    }
    return chain;
  }

  get cached(): number {
    return this.#cache.size;
  }
}
