// Token exchange's lease kind (docs/spec/broker.md §4): the broker mints a JWT (RFC 7519) for an
// audience, signed in its vault with an Ed25519 (`EdDSA`, RFC 8037) or P-256 (`ES256`, RFC 7518
// §3.4) key whose public half it serves as a JWKS (RFC 7517). The JWS compact serialization
// (RFC 7515 §7.1) is built here so the private key never leaves the vault.
import { forbidden, invalid, unsupported } from '../core/internal.js';
import { systemClock, type Clock } from '../core/index.js';
import { randomBytes, sha256 } from '../crypto/index.js';
import { toHex } from '../encoding/index.js';
import type { SigningKeyHandle, SigningVault } from '../vault/index.js';
import type { VerifiedChain } from '../credentials/index.js';
import type { Identifier } from '../identity/index.js';
import {
  LeaseKind,
  type IssuedLease,
  type JwtLeaseValue,
  type Lease,
  type LeaseContext,
  type LeaseProvider,
} from './types.js';

/** Longest audience a token names (a relying party's headers stay small). */
export const MAX_JWT_AUDIENCE_CHARS = 256;
/** Most scope values one token carries. */
export const MAX_JWT_SCOPE_VALUES = 32;
/** Longest scope value. */
export const MAX_JWT_SCOPE_VALUE_CHARS = 128;

/** A public JWK as the JWKS serves it (RFC 7517 §4, RFC 8037 §2, RFC 7518 §6.2.1). */
export type PublicJwk =
  | {
      readonly kty: 'OKP';
      readonly crv: 'Ed25519';
      readonly x: string;
      readonly use: 'sig';
      readonly alg: 'EdDSA';
      readonly kid: string;
    }
  | {
      readonly kty: 'EC';
      readonly crv: 'P-256';
      readonly x: string;
      readonly y: string;
      readonly use: 'sig';
      readonly alg: 'ES256';
      readonly kid: string;
    };

/** A JWK Set (RFC 7517 §5). */
export interface Jwks {
  readonly keys: readonly PublicJwk[];
}

/** One entry of the revocation list relying parties fetch (`GET /revoked`). */
export interface RevokedJti {
  readonly jti: string;
  /** Unix seconds: no token with this `jti` is valid after it, so the entry is dropped then. */
  readonly expiresAt: number;
}

/** The `act` claim (RFC 8693 §4.1): an actor, and the one before it nested inside. */
export interface ActorClaim {
  readonly sub: Identifier;
  readonly act?: ActorClaim;
}

/** The claims of a lease token, in the order they are serialized. */
export interface JwtLeaseClaims {
  readonly iss: string;
  readonly sub: Identifier;
  readonly aud: string;
  readonly iat: number;
  readonly nbf: number;
  readonly exp: number;
  readonly jti: string;
  /** Space-separated (RFC 8693 §4.2); absent when the lease has no scope. */
  readonly scope?: string;
  /** Absent for a chain without links (the root credential's subject acts itself). */
  readonly act?: ActorClaim;
}

/** Options of {@link JwtLeaseProvider}. */
export interface JwtLeaseProviderOptions {
  /** The broker's vault; `key` must be one of its signing keys. */
  readonly vault: SigningVault;
  readonly key: SigningKeyHandle;
  /** The `iss` claim: the broker's URL (its JWKS is at `ISSUER/.well-known/jwks.json`). */
  readonly issuer: string;
  readonly clock?: Clock;
}

const utf8 = new TextEncoder();

function base64Url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

/** The public JWK of a broker signing key (RFC 8037 §2 for Ed25519, RFC 7518 §6.2.1 for P-256). */
export function publicJwkOf(key: SigningKeyHandle): PublicJwk {
  if (key.keyType === 'ed25519') {
    if (key.publicKey.length !== 32)
      throw invalid('ERR_CRYPTO_KEY_LENGTH', 'an Ed25519 public key is 32 bytes');
    const x = base64Url(key.publicKey);
    return {
      kty: 'OKP',
      crv: 'Ed25519',
      x,
      use: 'sig',
      alg: 'EdDSA',
      kid: thumbprint(`{"crv":"Ed25519","kty":"OKP","x":"${x}"}`),
    };
  }
  if (key.keyType === 'p256') {
    if (key.publicKey.length !== 65 || key.publicKey[0] !== 0x04)
      throw invalid('ERR_CRYPTO_KEY_LENGTH', 'a P-256 public key is a 65-byte uncompressed point');
    const x = base64Url(key.publicKey.subarray(1, 33));
    const y = base64Url(key.publicKey.subarray(33, 65));
    return {
      kty: 'EC',
      crv: 'P-256',
      x,
      y,
      use: 'sig',
      alg: 'ES256',
      kid: thumbprint(`{"crv":"P-256","kty":"EC","x":"${x}","y":"${y}"}`),
    };
  }
  throw unsupported(
    'ERR_JWT_KEY_TYPE_UNSUPPORTED',
    `a broker key must be ed25519 or p256, not \`${String((key as { keyType: unknown }).keyType)}\``,
  );
}

// RFC 7638 §3: SHA-256 over the required members in lexicographic order, no whitespace. The
// members are base64url and fixed names, so the text above is already that canonical form.
function thumbprint(canonical: string): string {
  return base64Url(sha256(utf8.encode(canonical)));
}

/**
 * The `act` claim of a chain (RFC 8693 §4.1, docs/spec/broker.md §4.2): the actor is `sub`;
 * its delegator is the outermost `act`, that delegator's delegator nested inside, and so on to
 * the root credential's subject, the least recent, most deeply nested. `undefined` for a chain
 * without links.
 */
export function actorClaimOf(chain: VerifiedChain): ActorClaim | undefined {
  if (actorClaims.has(chain)) return actorClaims.get(chain);
  let act: ActorClaim | undefined;
  // links[i].issuer delegated to links[i].subject; links[0].issuer is the root subject.
  for (const link of chain.links)
    act = act === undefined ? { sub: link.issuer } : { sub: link.issuer, act };
  actorClaims.set(chain, act);
  return act;
}

// A chain's links never change after verification: its `act` claim is built once.
const actorClaims = new WeakMap<VerifiedChain, ActorClaim | undefined>();

// Token ids come from the CSPRNG 256 at a time (one getrandom call instead of one per token);
// each is used once and the pool is never reused.
let idPool: Uint8Array = new Uint8Array(0);
let idPoolAt = 0;
function freshTokenId(): string {
  if (idPoolAt + 16 > idPool.length) {
    idPool = randomBytes(16 * 256);
    idPoolAt = 0;
  }
  idPoolAt += 16;
  return `jti_${toHex(idPool.subarray(idPoolAt - 16, idPoolAt))}`;
}

/** An audience is 1 to 256 printable ASCII characters without spaces (`ERR_JWT_AUDIENCE_INVALID`). */
export function checkJwtAudience(audience: string): void {
  if (
    typeof audience !== 'string' ||
    audience.length === 0 ||
    audience.length > MAX_JWT_AUDIENCE_CHARS ||
    !/^[\x21-\x7e]+$/.test(audience)
  )
    throw invalid(
      'ERR_JWT_AUDIENCE_INVALID',
      `an audience is 1 to ${MAX_JWT_AUDIENCE_CHARS} printable ASCII characters without spaces`,
    );
}

/** RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ); unique, bounded. */
export function checkJwtScope(scope: readonly string[]): void {
  if (!Array.isArray(scope) || scope.length > MAX_JWT_SCOPE_VALUES)
    throw invalid('ERR_JWT_SCOPE_INVALID', `a scope holds at most ${MAX_JWT_SCOPE_VALUES} values`);
  const seen = new Set<string>();
  for (const value of scope) {
    if (
      typeof value !== 'string' ||
      value.length === 0 ||
      value.length > MAX_JWT_SCOPE_VALUE_CHARS ||
      !/^[\x21\x23-\x5b\x5d-\x7e]+$/.test(value)
    )
      throw invalid(
        'ERR_JWT_SCOPE_INVALID',
        `a scope value is 1 to ${MAX_JWT_SCOPE_VALUE_CHARS} characters of RFC 6749's scope-token`,
      );
    if (seen.has(value))
      throw invalid('ERR_JWT_SCOPE_INVALID', `scope value \`${value}\` is named twice`);
    seen.add(value);
  }
}

/**
 * Mints lease tokens: JWTs signed in the broker's vault, with `sub` the agent, nested `act` for
 * its chain, `aud` the lease's resource, `scope` the lease's scope, `exp` the lease's end and
 * `jti` the lease handle (kept across renewals, so revoking the handle revokes every token of the
 * lease). Keeps the list of revoked handles relying parties fetch.
 *
 * Whether a chain may have a token is the broker's decision alone (`Gate.decideLease`: the chain's
 * `secrets` / `secret_scopes` grants for `jwt/AUDIENCE` and the bundle's `leaseSecret`), as is how
 * long it lasts (the broker's `limits.jwt`). The provider checks only the token's syntax
 * (audience, scope) and its invariants: `exp` after now and never after the chain's expiry, and
 * the holder is the chain's actor.
 */
export class JwtLeaseProvider implements LeaseProvider<JwtLeaseValue> {
  readonly kind = LeaseKind.jwt;
  readonly issuer: string;
  /** The signing key's id in the JWKS (its RFC 7638 thumbprint). */
  readonly kid: string;
  readonly #vault: SigningVault;
  readonly #key: SigningKeyHandle;
  readonly #clock: Clock;
  readonly #jwk: PublicJwk;
  readonly #header: string;
  /** jti → unix seconds after which no token with it is valid. */
  readonly #revoked = new Map<string, number>();

  constructor(options: JwtLeaseProviderOptions) {
    const issuer: unknown = options.issuer;
    if (typeof issuer !== 'string' || issuer.length === 0 || issuer.length > 512)
      throw invalid('ERR_ARGUMENT_INVALID', '`issuer` must be a non-empty string (the broker URL)');
    this.#jwk = publicJwkOf(options.key);
    this.#vault = options.vault;
    this.#key = options.key;
    this.#clock = options.clock ?? systemClock;
    this.issuer = issuer;
    this.kid = this.#jwk.kid;
    this.#header = base64Url(
      utf8.encode(JSON.stringify({ alg: this.#jwk.alg, kid: this.kid, typ: 'JWT' })),
    );
  }

  /** The public JWKS: the one signing key, `use: sig`, its `alg` and `kid`. */
  jwks(): Jwks {
    return { keys: [this.#jwk] };
  }

  async issue(context: LeaseContext): Promise<IssuedLease<JwtLeaseValue>> {
    const jti = freshTokenId();
    return { handle: jti, value: { token: await this.#mint(context, jti) } };
  }

  /** A renewal mints a token with the new `exp` and the same `jti` (the lease's handle). */
  async renew(lease: Lease, context: LeaseContext): Promise<IssuedLease<JwtLeaseValue>> {
    if (this.#isRevoked(lease.handle, context.nowSeconds))
      throw forbidden('ERR_JWT_REVOKED', `the token \`${lease.handle}\` was revoked`);
    return { handle: lease.handle, value: { token: await this.#mint(context, lease.handle) } };
  }

  /**
   * Adds the lease's `jti` to the revocation list until no token of the lease can be valid
   * (`maxExpiresAt`). Idempotent; a broker that restarts calls it again for every revoked JWT
   * lease that has not reached `maxExpiresAt`, since the list lives in memory.
   */
  revoke(lease: Lease): Promise<void> {
    const until = Math.max(lease.expiresAt, lease.maxExpiresAt);
    const known = this.#revoked.get(lease.handle);
    if (known === undefined || known < until) this.#revoked.set(lease.handle, until);
    return Promise.resolve();
  }

  /** The revoked `jti`s whose tokens may still be valid, oldest entry first; prunes the rest. */
  revokedJtis(): readonly RevokedJti[] {
    const now = this.#clock.nowSeconds();
    const out: RevokedJti[] = [];
    for (const [jti, expiresAt] of this.#revoked) {
      if (expiresAt <= now) this.#revoked.delete(jti);
      else out.push({ jti, expiresAt });
    }
    return out;
  }

  #isRevoked(jti: string, now: number): boolean {
    const until = this.#revoked.get(jti);
    return until !== undefined && until > now;
  }

  async #mint(context: LeaseContext, jti: string): Promise<string> {
    const now = context.nowSeconds;
    const exp = context.expiresAt;
    if (
      !Number.isSafeInteger(now) ||
      !Number.isSafeInteger(exp) ||
      exp <= now ||
      exp > context.chain.expiresAt
    )
      throw invalid(
        'ERR_JWT_LIFETIME_INVALID',
        `a token's \`exp\` (${exp}) must be after now (${now}) and not after the chain's expiry (${context.chain.expiresAt})`,
      );
    if (context.holder !== context.chain.actor)
      throw forbidden(
        'ERR_JWT_HOLDER_MISMATCH',
        `the lease holder \`${context.holder}\` is not the chain's actor \`${context.chain.actor}\``,
      );
    checkJwtAudience(context.resource);
    checkJwtScope(context.scope);
    const act = actorClaimOf(context.chain);
    const claims: JwtLeaseClaims = {
      iss: this.issuer,
      sub: context.chain.actor,
      aud: context.resource,
      iat: now,
      nbf: now,
      exp,
      jti,
      ...(context.scope.length === 0 ? {} : { scope: context.scope.join(' ') }),
      ...(act === undefined ? {} : { act }),
    };
    const signingInput = `${this.#header}.${base64Url(utf8.encode(JSON.stringify(claims)))}`;
    // Ed25519 signs the message itself (EdDSA); P-256 signs SHA-256 of it and returns raw r ‖ s
    // in low-S form (ES256's 64-byte encoding; verifiers accept either S).
    const signature = await this.#vault.sign(this.#key.keyId, utf8.encode(signingInput));
    return `${signingInput}.${base64Url(signature)}`;
  }
}
