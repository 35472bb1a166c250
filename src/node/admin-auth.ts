// Authentication of the admin API (docs/spec/admin.md): never an unauthenticated admin port.
// A person logs in with a one-time login token (printed once on the node's stdout, as Jupyter
// does) exchanged for a session bound to the operator's identity; a script proves it holds the
// operator's credential key by signing a server challenge. Tokens, challenges and sessions are
// kept only as SHA-256 digests: a heap dump or a log line holds nothing that logs in.
import {
  ErrorKind,
  isMandateError,
  MandateError,
  systemClock,
  type Clock,
  type Logger,
} from '../core/index.js';
import { invalid, silentLogger, unauthorized } from '../core/internal.js';
import { randomBytes, sha256 } from '../crypto/index.js';
import { canonicalizeJson, fromHex, toBase64Url, toHex } from '../encoding/index.js';
import type { Identifier, VerifiedIdentity } from '../identity/index.js';
import type { CredentialIssuer, CredentialKeyVault } from '../credentials/index.js';
import {
  credentialSigningKey,
  signWithCredentialKey,
  verifyCredentialKeySignature,
} from '../credentials/internal.js';

/** What an operator's challenge answer signs (JCS): the type, the challenge, the API's origin, the identifier. */
export const ADMIN_LOGIN_SIGNED_TYPE = 'mandate/admin-login/v1';
/** How long a login token may wait for its one use (default). */
export const DEFAULT_LOGIN_TOKEN_TTL_SECONDS = 15 * 60;
/** How long a session lives (default). */
export const DEFAULT_ADMIN_SESSION_TTL_SECONDS = 12 * 3600;
/** How long a challenge may wait for its answer. */
export const ADMIN_CHALLENGE_TTL_SECONDS = 60;
/** Bound on outstanding challenges (anyone may ask for one): the oldest go first. */
const MAX_OUTSTANDING = 1024;

/**
 * How fast the admin API's unauthenticated endpoints answer anyone (docs/spec/admin.md, "Rate
 * limits"): token buckets shared by every caller (on loopback every caller has one address, so
 * there is nobody to count per). Rates are whole numbers per second, bursts whole numbers.
 */
export interface AdminRateLimits {
  /** Challenges issued per second once the burst is spent (`GET /api/challenge`). */
  readonly challengesPerSecond: number;
  /** Challenges that may be issued at once. */
  readonly challengeBurst: number;
  /**
   * Refused logins per second once the burst is spent: a login token or a challenge answer that
   * names no live token or challenge (unknown, used, expired, malformed). A login that names a
   * live one is never counted nor refused here: each is one use of something issued already.
   */
  readonly refusedLoginsPerSecond: number;
  /** Refused logins that may come at once. */
  readonly refusedLoginBurst: number;
}

/**
 * The defaults: a script or two logging in, and room to spare. At most 32 + 4 × 60 = 272
 * challenges are ever outstanding, well under the 1,024 kept: a flood never evicts the
 * challenge an operator is signing.
 */
export const DEFAULT_ADMIN_RATE_LIMITS: AdminRateLimits = {
  challengesPerSecond: 4,
  challengeBurst: 32,
  refusedLoginsPerSecond: 4,
  refusedLoginBurst: 32,
};

/** A request refused by a rate limit (`ERR_ADMIN_RATE_LIMITED`), with when to ask again. */
export class AdminRateLimitedError extends MandateError {
  /** Whole seconds until the limit lets one more through (the HTTP `Retry-After`). */
  readonly retryAfterSeconds: number;

  constructor(what: string, retryAfterSeconds: number) {
    super(
      'ERR_ADMIN_RATE_LIMITED',
      ErrorKind.exhausted,
      `too many ${what}: try again in ${retryAfterSeconds} s`,
    );
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/**
 * A token bucket on the injected clock: `capacity` tokens, `perSecond` more each whole second.
 * Whole numbers throughout, so no rounding lets one more through than the rate says.
 */
class TokenBucket {
  readonly #capacity: number;
  readonly #perSecond: number;
  readonly #clock: Clock;
  #tokens: number;
  #at: number;

  constructor(capacity: number, perSecond: number, clock: Clock) {
    this.#capacity = capacity;
    this.#perSecond = perSecond;
    this.#clock = clock;
    this.#tokens = capacity;
    this.#at = clock.nowSeconds();
  }

  /** Takes a token: 0 when one was there, else the whole seconds until one will be. */
  take(): number {
    const now = this.#clock.nowSeconds();
    // A clock set back refills nothing, and the mark stays: it cannot refill twice.
    if (now > this.#at) {
      this.#tokens = Math.min(this.#capacity, this.#tokens + (now - this.#at) * this.#perSecond);
      this.#at = now;
    }
    if (this.#tokens >= 1) {
      this.#tokens--;
      return 0;
    }
    return Math.ceil((1 - this.#tokens) / this.#perSecond);
  }
}

/** A logged-in operator: who, until when, and the CSRF token its state-changing requests echo. */
export interface AdminSession {
  readonly operator: Identifier;
  readonly expiresAt: number;
  /** Sent back in `X-Mandate-CSRF` on every state-changing cookie-authenticated request. */
  readonly csrf: string;
}

/** An operator's signed answer to a challenge (JSON on the wire; hex bytes). */
export interface AdminChallengeAnswer {
  readonly challenge: string;
  readonly identifier: Identifier;
  readonly keyType: 'ed25519' | 'p256';
  readonly signature: string;
  /** The operator's credential-key attestation. */
  readonly attestation: string;
}

/** The exact text an operator signs to answer `challenge` at the API whose origin is `origin`. */
export function adminLoginText(challenge: string, origin: string, identifier: Identifier): string {
  return canonicalizeJson({ type: ADMIN_LOGIN_SIGNED_TYPE, challenge, origin, identifier });
}

/**
 * Answers an admin API challenge as an operator: signs {@link adminLoginText} with the
 * operator's credential key, through its vault (the code path that signs approvals).
 */
export async function signAdminChallenge(options: {
  readonly challenge: string;
  /** The API's origin, `http://HOST:PORT`, as the client reaches it. */
  readonly origin: string;
  readonly signer: CredentialIssuer;
  readonly vault: CredentialKeyVault;
  readonly nowSeconds: number;
}): Promise<AdminChallengeAnswer> {
  const identifier = options.signer.identity.identifier;
  const key = await credentialSigningKey(options.vault, options.signer, options.nowSeconds);
  const text = adminLoginText(options.challenge, options.origin, identifier);
  const signature = await signWithCredentialKey(
    options.vault,
    options.signer,
    key,
    new TextEncoder().encode(text),
  );
  return {
    challenge: options.challenge,
    identifier,
    keyType: signature.keyType,
    signature: toHex(signature.bytes),
    attestation: toHex(options.signer.credentialKeyAttestation),
  };
}

const digestOf = (token: string): string => toHex(sha256(new TextEncoder().encode(token)));
const newToken = (): string => toBase64Url(randomBytes(32));

/** Options of {@link AdminAuth}. */
export interface AdminAuthOptions {
  /** The identity sessions are bound to and whose credential key answers challenges. */
  readonly operator: VerifiedIdentity;
  readonly clock?: Clock;
  /** Where a refused challenge answer's cause goes (the caller is told only that it failed). */
  readonly logger?: Logger;
  readonly loginTokenTtlSeconds?: number;
  readonly sessionTtlSeconds?: number;
  /** Limits on the unauthenticated endpoints; each one not given is its default. */
  readonly rateLimits?: Partial<AdminRateLimits>;
}

/**
 * One-time login tokens, challenges and sessions of one admin API, in memory (a restart logs
 * everyone out). Every refusal is uniform to the caller (`ERR_ADMIN_LOGIN_INVALID`,
 * `ERR_ADMIN_UNAUTHENTICATED`); the reason is for the local log.
 */
export class AdminAuth {
  readonly operator: VerifiedIdentity;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #tokenTtl: number;
  readonly #sessionTtl: number;
  /** digest → expiry. */
  readonly #loginTokens = new Map<string, number>();
  readonly #challenges = new Map<string, number>();
  readonly #sessions = new Map<string, AdminSession>();
  /** Each live session's digest, to tell whether a session an open stream holds still lives. */
  readonly #digests = new WeakMap<AdminSession, string>();
  readonly #challengeBucket: TokenBucket;
  readonly #refusedBucket: TokenBucket;

  constructor(options: AdminAuthOptions) {
    this.operator = options.operator;
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? silentLogger;
    this.#tokenTtl = options.loginTokenTtlSeconds ?? DEFAULT_LOGIN_TOKEN_TTL_SECONDS;
    this.#sessionTtl = options.sessionTtlSeconds ?? DEFAULT_ADMIN_SESSION_TTL_SECONDS;
    for (const [name, value] of [
      ['loginTokenTtlSeconds', this.#tokenTtl],
      ['sessionTtlSeconds', this.#sessionTtl],
    ] as const)
      if (!Number.isSafeInteger(value) || value < 1)
        throw invalid('ERR_ARGUMENT_INVALID', `\`${name}\` is a positive integer`);
    const limits = { ...DEFAULT_ADMIN_RATE_LIMITS, ...options.rateLimits };
    for (const [name, value] of Object.entries(limits))
      if (!Number.isSafeInteger(value) || value < 1)
        throw invalid('ERR_ARGUMENT_INVALID', `\`rateLimits.${name}\` is a positive integer`);
    // Every challenge the limit lets out within one lifetime must fit in the map: then none is
    // evicted before it is answered or expires, however many others are asked for.
    if (
      limits.challengeBurst + limits.challengesPerSecond * ADMIN_CHALLENGE_TTL_SECONDS >
      MAX_OUTSTANDING
    )
      throw invalid(
        'ERR_ARGUMENT_INVALID',
        `\`rateLimits.challengeBurst\` + ${ADMIN_CHALLENGE_TTL_SECONDS} × \`rateLimits.challengesPerSecond\` is at most ${MAX_OUTSTANDING} (the challenges kept at once)`,
      );
    this.#challengeBucket = new TokenBucket(
      limits.challengeBurst,
      limits.challengesPerSecond,
      this.#clock,
    );
    this.#refusedBucket = new TokenBucket(
      limits.refusedLoginBurst,
      limits.refusedLoginsPerSecond,
      this.#clock,
    );
  }

  /**
   * Counts a refused login against its limit: past it, the refusal is `ERR_ADMIN_RATE_LIMITED`
   * (and no longer logged one by one) instead of the usual one.
   */
  #countRefusal(): void {
    const wait = this.#refusedBucket.take();
    if (wait > 0) throw new AdminRateLimitedError('refused logins', wait);
  }

  #prune(map: Map<string, number>): void {
    const now = this.#clock.nowSeconds();
    for (const [k, expiresAt] of map) if (expiresAt <= now) map.delete(k);
    // Maps iterate in insertion order: the oldest go first.
    for (const k of map.keys()) {
      if (map.size < MAX_OUTSTANDING) break;
      map.delete(k);
    }
  }

  /** A new one-time login token for the operator: shown once, kept only as its digest. */
  issueLoginToken(): string {
    this.#prune(this.#loginTokens);
    const token = newToken();
    this.#loginTokens.set(digestOf(token), this.#clock.nowSeconds() + this.#tokenTtl);
    return token;
  }

  /** Exchanges a login token (once, before it expires) for a session: `[session token, session]`. */
  redeemLoginToken(token: unknown): [string, AdminSession] {
    if (typeof token !== 'string' || token.length === 0 || token.length > 256) {
      this.#countRefusal();
      throw unauthorized('ERR_ADMIN_LOGIN_INVALID', 'the login token is not valid');
    }
    const digest = digestOf(token);
    const expiresAt = this.#loginTokens.get(digest);
    // Deleted before anything else: a token logs in once, even when it has expired.
    this.#loginTokens.delete(digest);
    if (expiresAt === undefined || expiresAt <= this.#clock.nowSeconds()) {
      this.#countRefusal();
      throw unauthorized(
        'ERR_ADMIN_LOGIN_INVALID',
        'the login token is not valid (unknown, used or expired)',
      );
    }
    return this.#newSession();
  }

  /**
   * A fresh challenge for an operator to sign (anyone may ask; it proves nothing by itself), or
   * `ERR_ADMIN_RATE_LIMITED` past `challengesPerSecond`: the challenges issued before stay
   * answerable whatever the flood.
   */
  issueChallenge(): { readonly challenge: string; readonly expiresAt: number } {
    const wait = this.#challengeBucket.take();
    if (wait > 0) throw new AdminRateLimitedError('challenges', wait);
    this.#prune(this.#challenges);
    const challenge = newToken();
    const expiresAt = this.#clock.nowSeconds() + ADMIN_CHALLENGE_TTL_SECONDS;
    this.#challenges.set(digestOf(challenge), expiresAt);
    return { challenge, expiresAt };
  }

  /**
   * Checks an answer to a challenge this API issued (once, unexpired), signed for `origin` by the
   * operator's attested credential key; a session on success, `ERR_ADMIN_CHALLENGE_INVALID`
   * otherwise, one message whatever the cause: a caller told "not the operator" apart from "bad
   * signature" could probe which identifier is the operator. The cause goes to the local log.
   * An answer that names no live challenge counts against `refusedLoginsPerSecond`; one that
   * names a live challenge is never rate-limited (issuing it was).
   */
  redeemChallenge(answer: unknown, origin: string): [string, AdminSession] {
    const refuse = (why: string, cause?: unknown): never => {
      // Never the challenge, the signature or the attestation: only why, and the check's code.
      this.#logger.warn('admin challenge refused', {
        reason: why,
        ...(isMandateError(cause) ? { code: cause.code } : {}),
      });
      throw unauthorized(
        'ERR_ADMIN_CHALLENGE_INVALID',
        'the challenge answer does not verify',
        cause,
      );
    };
    // Refused before any live challenge is named: counted, and past the limit not logged.
    const refuseUnnamed = (why: string): never => {
      this.#countRefusal();
      return refuse(why);
    };
    if (typeof answer !== 'object' || answer === null) return refuseUnnamed('not an object');
    const a = answer as Record<string, unknown>;
    const { challenge, identifier, keyType, signature, attestation } = a;
    if (
      typeof challenge !== 'string' ||
      typeof identifier !== 'string' ||
      (keyType !== 'ed25519' && keyType !== 'p256') ||
      typeof signature !== 'string' ||
      typeof attestation !== 'string' ||
      challenge.length > 256 ||
      signature.length > 512 ||
      attestation.length > 16_384
    )
      return refuseUnnamed('malformed');
    const digest = digestOf(challenge);
    const expiresAt = this.#challenges.get(digest);
    this.#challenges.delete(digest);
    const now = this.#clock.nowSeconds();
    if (expiresAt === undefined || expiresAt <= now)
      return refuseUnnamed('unknown, used or expired');
    if (identifier !== this.operator.identifier) return refuse('not the operator');
    try {
      verifyCredentialKeySignature(
        new TextEncoder().encode(adminLoginText(challenge, origin, identifier)),
        { keyType, bytes: fromHex(signature) },
        fromHex(attestation),
        { nowSeconds: now, authorities: new Map([[this.operator.identifier, this.operator]]) },
        { untrusted: 'ERR_ADMIN_CHALLENGE_INVALID', signature: 'ERR_ADMIN_CHALLENGE_INVALID' },
        'admin login',
      );
    } catch (error) {
      if (!isMandateError(error)) throw error;
      return refuse('bad signature', error);
    }
    return this.#newSession();
  }

  #newSession(): [string, AdminSession] {
    const now = this.#clock.nowSeconds();
    for (const [k, s] of this.#sessions) if (s.expiresAt <= now) this.#sessions.delete(k);
    const token = newToken();
    const session: AdminSession = {
      operator: this.operator.identifier,
      expiresAt: now + this.#sessionTtl,
      csrf: newToken(),
    };
    const digest = digestOf(token);
    this.#sessions.set(digest, session);
    this.#digests.set(session, digest);
    return [token, session];
  }

  /** The live session a session token names, if any. */
  session(token: string | undefined): AdminSession | undefined {
    if (token === undefined || token.length === 0 || token.length > 256) return undefined;
    const session = this.#sessions.get(digestOf(token));
    if (session === undefined || session.expiresAt <= this.#clock.nowSeconds()) return undefined;
    return session;
  }

  /** Whether `session` (as {@link session} gave it) is still live: not ended, not expired. */
  isLive(session: AdminSession): boolean {
    const digest = this.#digests.get(session);
    return (
      digest !== undefined &&
      this.#sessions.get(digest) === session &&
      session.expiresAt > this.#clock.nowSeconds()
    );
  }

  /** Ends a session (logout). */
  endSession(token: string): void {
    this.#sessions.delete(digestOf(token));
  }
}
