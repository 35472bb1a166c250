// The contract of gate 3 (DESIGN.md §2 layer 8, docs/spec/broker.md): the secret store, leases,
// and the providers that turn a decided lease into something usable (a JWT, a PostgreSQL login,
// an injecting proxy). Types only: the broker, its repositories and its providers implement them.
import type { Identifier } from '../identity/index.js';
import type { VerifiedChain } from '../credentials/index.js';

/** The kinds of lease the broker hands out. */
export const LeaseKind = { jwt: 'jwt', postgres: 'postgres', proxy: 'proxy' } as const;
export type LeaseKind = (typeof LeaseKind)[keyof typeof LeaseKind];

/** Where a lease stands; `expired` and `revoked` are final. */
export const LeaseState = { active: 'active', expired: 'expired', revoked: 'revoked' } as const;
export type LeaseState = (typeof LeaseState)[keyof typeof LeaseState];

/**
 * A lease as the broker keeps it. It never holds the leased value (a token, a password, a
 * secret): only what is needed to find, renew and revoke it.
 */
export interface Lease {
  /** `lease_` and 32 lower-case hex digits (16 random bytes). */
  readonly id: string;
  readonly kind: LeaseKind;
  /** The agent the lease was given to: the chain's actor, verified on the channel. */
  readonly holder: Identifier;
  /**
   * The revocation ids of the holder's chain (`VerifiedChain.revocationSubjects`: the root
   * credential, every link, every identity on the way). A deny-set entry matching any of them
   * kills the lease: revoke-by-identity and revoke-by-chain cascade through this list.
   */
  readonly chainIds: readonly string[];
  /** The secret name (proxy, jwt signing secret), the audience (jwt) or the template (postgres). */
  readonly resource: string;
  /** What the lease allows at the resource (JWT `scope`; empty where the kind has none). */
  readonly scope: readonly string[];
  /** Unix seconds. */
  readonly createdAt: number;
  /** Unix seconds: the lease ends then unless renewed. */
  readonly expiresAt: number;
  /** Unix seconds: no renewal goes beyond this (the chain's earliest expiry, or the kind's max TTL). */
  readonly maxExpiresAt: number;
  readonly renewals: number;
  readonly state: LeaseState;
  /** Unix seconds, once revoked or expired. */
  readonly endedAt?: number | undefined;
  /** Why it ended: `expired`, `revoked`, `holder-revoked` (deny-set), … (never a secret). */
  readonly endReason?: string | undefined;
  /**
   * Kind-specific, non-secret data the provider needs to renew and revoke: a JWT's `jti`, a
   * PostgreSQL role name, a proxy binding id.
   */
  readonly handle: string;
}

/** What a provider is given to issue a lease the broker has already decided. */
export interface LeaseContext {
  readonly leaseId: string;
  readonly holder: Identifier;
  /** The holder's verified chain, as the channel (or the token-exchange proof) showed it. */
  readonly chain: VerifiedChain;
  readonly resource: string;
  readonly scope: readonly string[];
  /** Unix seconds. */
  readonly nowSeconds: number;
  /** Unix seconds, already bounded by the chain's earliest expiry and the kind's max TTL. */
  readonly expiresAt: number;
}

/** What a provider returns: the handle it will be asked to revoke, and the value for the holder. */
export interface IssuedLease<Value> {
  readonly handle: string;
  /** Handed to the holder once and never stored, logged or audited by the broker. */
  readonly value: Value;
}

/**
 * Turns a decided lease into something usable, and takes it back. Each kind has one. Revocation
 * and reaping are idempotent: something already gone counts as done.
 */
export interface LeaseProvider<Value = unknown> {
  readonly kind: LeaseKind;
  issue(context: LeaseContext): Promise<IssuedLease<Value>>;
  /**
   * Extends the lease to `context.expiresAt` at the provider: moves a role's `VALID UNTIL`, or
   * issues a fresh value where the old one cannot be extended (a JWT's `exp` is signed in, so a
   * renewal mints a new token). Returns the new value, or `undefined` when the holder keeps using
   * the one it has. `context.leaseId` is `lease.id`; `context.chain` is the renewer's chain.
   */
  renew(lease: Lease, context: LeaseContext): Promise<IssuedLease<Value> | undefined>;
  /** Ends the lease at the provider (drop the role and its sessions, deny the jti, unbind). */
  revoke(lease: Lease): Promise<void>;
  /**
   * Removes what a crash left behind: everything of this kind the provider finds that is not
   * among `live` handles. Returns how many it removed.
   */
  reap?(live: ReadonlySet<string>): Promise<number>;
}

/** A JWT lease's value. */
export interface JwtLeaseValue {
  readonly token: string;
}

/** A PostgreSQL lease's value: a login that works until the lease ends. */
export interface PostgresLeaseValue {
  readonly user: string;
  readonly password: string;
  readonly database: string;
  readonly host: string;
  readonly port: number;
}

/** A secret as the store lists it: never its value. */
export interface SecretInfo {
  readonly name: string;
  /** Increases by one on every `put` over an existing name and every `rotate`. */
  readonly version: number;
  /** Unix seconds. */
  readonly createdAt: number;
  readonly updatedAt: number;
}

/**
 * Reads a secret's current value from the sealed store, for the providers that inject it (the
 * proxy) or sign with it. The caller wipes the bytes (`wipe` from the crypto layer) as soon as it
 * has used them. Throws `ERR_SECRET_NOT_FOUND` for an unknown name.
 */
export interface SecretReader {
  read(name: string): Promise<Uint8Array>;
}

/**
 * Where the broker's lease events go: the audit log, as lease records signed by the broker's
 * identity (`audit` LeaseRecord: ids and names, never a value). Resolves once durable.
 */
export interface LeaseAuditSink {
  record(event: {
    readonly lease: Lease;
    readonly event: 'granted' | 'renewed' | 'used' | 'revoked' | 'expired';
    /** Unix seconds. */
    readonly at: number;
  }): Promise<void>;
}
