// Gate 3's leases (docs/spec/broker.md §2): decide, bound, issue, renew, revoke, expire, audit.
import {
  MandateError,
  isMandateError,
  systemClock,
  type Clock,
  type Logger,
} from '../core/index.js';
import {
  conflict,
  forbidden,
  invalid,
  notFound,
  silentLogger,
  timeout,
  unavailable,
} from '../core/internal.js';
import { randomBytes } from '../crypto/index.js';
import { toHex } from '../encoding/index.js';
import type { Identifier } from '../identity/index.js';
import type { VerifiedChain } from '../credentials/index.js';
import type { GateDecision, LeaseAsk } from '../gates/index.js';
import {
  LeaseKind,
  LeaseState,
  type IssuedLease,
  type Lease,
  type LeaseAuditSink,
  type LeaseContext,
  type LeaseProvider,
} from './types.js';

/**
 * Where leases live (SQLite in src/store). Every state change is one conditional write, so two
 * processes on one home (a running broker and `mandate lease revoke`) never resurrect an ended
 * lease. A lease that ended records whether its provider has been told (`providerDone`): the
 * broker tells it, and a running broker finishes what another process (or a crash) left pending.
 */
export interface LeaseRepository {
  /** Adds an active lease (its provider already issued it). */
  insert(lease: Lease): Promise<void>;
  get(id: string): Promise<Lease | undefined>;
  /**
   * Moves an active lease's end to `expiresAt`, with `handle` and `renewals`; returns the lease
   * after the change, or `undefined` when it is not active any more.
   */
  renew(
    id: string,
    change: { readonly expiresAt: number; readonly handle: string; readonly renewals: number },
  ): Promise<Lease | undefined>;
  /**
   * Ends the listed leases that are still active, in one transaction, with `state`, `at` and
   * `reason`, and marks each as awaiting its provider. Returns the leases it ended.
   */
  end(
    ids: readonly string[],
    state: typeof LeaseState.revoked | typeof LeaseState.expired,
    at: number,
    reason: string,
  ): Promise<readonly Lease[]>;
  /**
   * Ends, in one transaction, every active lease whose holder or chain ids include any of `ids`
   * (state `revoked`); returns them.
   */
  endMatching(ids: readonly string[], at: number, reason: string): Promise<readonly Lease[]>;
  /** Active leases whose `expiresAt` is at or before `nowSeconds`. */
  due(nowSeconds: number, limit: number): Promise<readonly Lease[]>;
  /** Leases, newest first; by state and holder when given. */
  list(filter?: {
    readonly state?: LeaseState;
    readonly holder?: Identifier;
    readonly limit?: number;
  }): Promise<readonly Lease[]>;
  /** Ended leases whose provider has not been told yet. */
  pending(limit: number): Promise<readonly Lease[]>;
  /** Records that the provider has been told about an ended lease. */
  providerDone(id: string): Promise<void>;
}

/** What an agent asks for. */
export interface LeaseRequest {
  readonly kind: LeaseKind;
  /** The audience (jwt), the template (postgres) or the secret name (proxy). */
  readonly resource: string;
  /** JWT scopes; empty where the kind has none. */
  readonly scope?: readonly string[];
  /** How long the lease should last; default `defaultTtlSeconds`. */
  readonly ttlSeconds?: number;
}

/** A granted lease: the record, and the value for the holder (handed over once, never stored). */
export interface GrantedLease<Value = unknown> {
  readonly lease: Lease;
  readonly value: Value;
  readonly decision: GateDecision;
}

/** A renewed lease: the record and, when the provider minted one, a new value. */
export interface RenewedLease<Value = unknown> {
  readonly lease: Lease;
  /** `undefined` when the holder keeps using the value it has (e.g. a role's password). */
  readonly value: Value | undefined;
}

/** Per-kind bounds: how long one grant or renewal may run, and how long a lease may live. */
export interface LeaseLimits {
  /** The longest TTL one grant or renewal may ask for (default 3 600 s). */
  readonly maxTtlSeconds: number;
  /** The longest a lease may live, renewals included, from its grant (default 86 400 s). */
  readonly maxLifetimeSeconds: number;
}

/** The lease decision: gates' `Gate.decideLease`, as the broker calls it. */
export type LeaseDecider = (
  chain: VerifiedChain,
  ask: LeaseAsk,
  options: { readonly nowSeconds: number },
) => GateDecision;

/** Options of {@link Broker}. */
export interface BrokerOptions {
  readonly leases: LeaseRepository;
  /** Both locks: `(chain, ask, {nowSeconds}) => gate.decideLease(chain, ask, {nowSeconds})`. */
  readonly decide: LeaseDecider;
  /** One provider per kind; a kind without one answers `ERR_LEASE_KIND_UNAVAILABLE`. */
  readonly providers: readonly LeaseProvider[];
  readonly audit: LeaseAuditSink;
  /** TTL when a request names none (default 300 s), capped by the chain and the kind. */
  readonly defaultTtlSeconds?: number;
  readonly limits?: Partial<Record<LeaseKind, Partial<LeaseLimits>>>;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /**
   * How long the broker waits for one provider revocation (default 60 000 ms) before leaving it
   * pending (`ERR_BROKER_PROVIDER_TIMEOUT`): a stuck call never holds up the others or the timers.
   */
  readonly providerTimeoutMs?: number;
}

/** How long one provider revocation is waited for, by default. */
export const DEFAULT_PROVIDER_TIMEOUT_MS = 60_000;
/** The longest wait between two attempts at a revocation a provider keeps failing. */
export const MAX_PROVIDER_RETRY_SECONDS = 300;

/** A lease's TTL when the request names none (capped by the chain and the kind). */
export const DEFAULT_LEASE_TTL_SECONDS = 300;
/** Every kind's bounds unless the broker is given others. */
export const DEFAULT_LEASE_LIMITS: LeaseLimits = Object.freeze({
  maxTtlSeconds: 3600,
  maxLifetimeSeconds: 86_400,
});
/**
 * Per-kind defaults over {@link DEFAULT_LEASE_LIMITS}: a bearer JWT lasts at most 15 minutes per
 * grant or renewal (relying parties check the revocation list only now and then; `exp` is the
 * backstop). The broker's `limits` override them; they are the only TTL bounds of a lease.
 */
export const DEFAULT_KIND_LIMITS: Readonly<Partial<Record<LeaseKind, Partial<LeaseLimits>>>> =
  Object.freeze({ [LeaseKind.jwt]: Object.freeze({ maxTtlSeconds: 900 }) });
/** How many leases one `expireDue` or `finishPending` pass handles at most. */
const BATCH = 1000;
const MAX_SCOPES = 32;
const MAX_RESOURCE_CHARS = 120;
/** The tool-name grammar of the constraints (`KIND/RESOURCE` must fit a `secrets` grant). */
const RESOURCE_RE = /^[A-Za-z0-9_.:-][A-Za-z0-9_.:@/-]*$/;
const SCOPE_RE = /^[\x21\x23-\x5b\x5d-\x7e]{1,128}$/;
const LEASE_ID_RE = /^lease_[0-9a-f]{32}$/;
const KINDS: ReadonlySet<string> = new Set(Object.values(LeaseKind));

/** `lease_` and 32 lower-case hex digits. */
export function newLeaseId(): string {
  return `lease_${toHex(randomBytes(16))}`;
}

/** Throws `ERR_LEASE_ID_INVALID` unless `id` is a lease id. */
export function checkLeaseId(id: unknown): string {
  if (typeof id !== 'string' || !LEASE_ID_RE.test(id))
    throw invalid('ERR_LEASE_ID_INVALID', 'a lease id is `lease_` and 32 lower-case hex digits');
  return id;
}

/** A request whose shape was checked. */
export interface CheckedLeaseRequest {
  readonly kind: LeaseKind;
  readonly resource: string;
  readonly scope: readonly string[];
  readonly ttlSeconds: number | undefined;
}

/** Checks a request's shape (kind, resource, scopes, TTL); `ERR_LEASE_REQUEST_INVALID` otherwise. */
export function checkLeaseRequest(request: LeaseRequest): CheckedLeaseRequest {
  const bad = (what: string): MandateError => invalid('ERR_LEASE_REQUEST_INVALID', what);
  if (!KINDS.has(request.kind))
    throw bad(`lease kind \`${request.kind}\` is not one of jwt, postgres, proxy`);
  const { resource } = request;
  if (
    typeof resource !== 'string' ||
    resource.length === 0 ||
    resource.length > MAX_RESOURCE_CHARS ||
    !RESOURCE_RE.test(resource)
  )
    throw bad(
      `a lease resource is 1–${MAX_RESOURCE_CHARS} of \`A-Z a-z 0-9 _ . : @ / -\`, not starting with \`@\` or \`/\``,
    );
  const scope: readonly unknown[] = request.scope ?? [];
  if (
    !Array.isArray(scope) ||
    scope.length > MAX_SCOPES ||
    !scope.every((s) => typeof s === 'string' && SCOPE_RE.test(s))
  )
    throw bad(
      `at most ${MAX_SCOPES} scopes, each 1–128 printable ASCII characters without spaces, \`"\` or \`\\\``,
    );
  const scopes = scope as readonly string[];
  if (new Set(scopes).size !== scopes.length) throw bad('a scope is listed twice');
  const ttl = request.ttlSeconds;
  if (ttl !== undefined && (!Number.isSafeInteger(ttl) || ttl < 1))
    throw bad('`ttlSeconds` must be a positive integer');
  return { kind: request.kind, resource, scope: Object.freeze([...scopes]), ttlSeconds: ttl };
}

/**
 * The broker (gate 3): leases decided by `leaseSecret` (chain AND bundle), bounded, issued by the
 * kind's provider, audited, and ended by expiry, revocation or the deny-set.
 *
 * - A lease's end is `now + ttl` (default 300 s), never past the chain's earliest expiry: a TTL
 *   asked for past it is `ERR_LEASE_BEYOND_CHAIN`, the default is cut to it. A TTL past the kind's
 *   `maxTtlSeconds` is `ERR_LEASE_TTL_TOO_LONG`. `maxExpiresAt` is the lease's horizon:
 *   `min(chain expiry, grant + maxLifetimeSeconds)`.
 * - `renew` is the holder's (the chain's actor; `ERR_LEASE_NOT_HOLDER`), decided again, and moves
 *   the end to `min(now + ttl, maxExpiresAt, renewer's chain expiry)`; once the end is at the
 *   horizon, `ERR_LEASE_RENEWAL_EXHAUSTED`.
 * - `revoke`, `revokeMatching` (the deny-set cascade: every active lease whose holder or chain ids
 *   match, in one transaction) and `expireDue` first end the leases in the store, then tell the
 *   providers; a provider that fails is asked again by `finishPending` (a timer), so is one left
 *   pending by a crash or by another process (`mandate lease revoke` on the broker's home).
 * - Every grant, renewal, use, revocation and expiry goes to the audit sink (ids, never values).
 *   A grant is returned only once its record is durable; if it cannot be recorded the lease is
 *   revoked and the request fails (`ERR_BROKER_AUDIT_FAILED`).
 */
export class Broker {
  readonly #leases: LeaseRepository;
  readonly #decide: LeaseDecider;
  readonly #providers = new Map<LeaseKind, LeaseProvider>();
  readonly #audit: LeaseAuditSink;
  readonly #defaultTtl: number;
  readonly #limits: Partial<Record<LeaseKind, Partial<LeaseLimits>>>;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #providerTimeoutMs: number;
  /** Provider revocations still running, by lease id: never a second call for the same lease. */
  readonly #revoking = new Set<string>();
  /** Failed provider revocations: how many times, the last code and when to try again. */
  readonly #retries = new Map<
    string,
    { readonly failures: number; readonly code: string; readonly at: number }
  >();

  constructor(options: BrokerOptions) {
    this.#leases = options.leases;
    this.#decide = options.decide;
    this.#audit = options.audit;
    for (const provider of options.providers) {
      if (this.#providers.has(provider.kind))
        throw invalid('ERR_ARGUMENT_INVALID', `two providers for lease kind \`${provider.kind}\``);
      this.#providers.set(provider.kind, provider);
    }
    this.#defaultTtl = options.defaultTtlSeconds ?? DEFAULT_LEASE_TTL_SECONDS;
    if (!Number.isSafeInteger(this.#defaultTtl) || this.#defaultTtl < 1)
      throw invalid('ERR_ARGUMENT_INVALID', '`defaultTtlSeconds` must be a positive integer');
    this.#limits = options.limits ?? {};
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? silentLogger;
    this.#providerTimeoutMs = options.providerTimeoutMs ?? DEFAULT_PROVIDER_TIMEOUT_MS;
    if (!Number.isSafeInteger(this.#providerTimeoutMs) || this.#providerTimeoutMs < 1)
      throw invalid('ERR_ARGUMENT_INVALID', '`providerTimeoutMs` must be a positive integer');
  }

  /** The kinds this broker has a provider for. */
  get kinds(): readonly LeaseKind[] {
    return [...this.#providers.keys()];
  }

  limitsOf(kind: LeaseKind): LeaseLimits {
    return { ...DEFAULT_LEASE_LIMITS, ...DEFAULT_KIND_LIMITS[kind], ...this.#limits[kind] };
  }

  #provider(kind: LeaseKind): LeaseProvider {
    const provider = this.#providers.get(kind);
    if (provider === undefined)
      throw unavailable(
        'ERR_LEASE_KIND_UNAVAILABLE',
        `this broker has no provider for \`${kind}\` leases`,
      );
    return provider;
  }

  #refuse(decision: GateDecision): MandateError {
    const lock = decision.lock ?? 'policy';
    return forbidden(
      'ERR_LEASE_DENIED',
      `lease refused by the ${lock} lock (${decision.code ?? 'ERR_GATE_POLICY_DENIED'}): ${decision.reasons.join('; ')}`,
    );
  }

  /**
   * Decides and grants a lease to the chain's actor. Throws `ERR_LEASE_REQUEST_INVALID`,
   * `ERR_LEASE_KIND_UNAVAILABLE`, `ERR_LEASE_TTL_TOO_LONG`, `ERR_LEASE_BEYOND_CHAIN`,
   * `ERR_LEASE_DENIED` (the decision says which lock), the provider's error, or
   * `ERR_BROKER_AUDIT_FAILED`.
   */
  async lease<Value = unknown>(
    chain: VerifiedChain,
    request: LeaseRequest,
  ): Promise<GrantedLease<Value>> {
    const checked = checkLeaseRequest(request);
    const provider = this.#provider(checked.kind) as LeaseProvider<Value>;
    const now = this.#clock.nowSeconds();
    const limits = this.limitsOf(checked.kind);
    const ttl = checked.ttlSeconds ?? Math.min(this.#defaultTtl, limits.maxTtlSeconds);
    if (ttl > limits.maxTtlSeconds)
      throw invalid(
        'ERR_LEASE_TTL_TOO_LONG',
        `a \`${checked.kind}\` lease lasts at most ${limits.maxTtlSeconds}s per grant or renewal, ${ttl}s asked`,
      );
    const decision = this.#decide(chain, checked, { nowSeconds: now });
    if (decision.decision !== 'allow') throw this.#refuse(decision);
    if (checked.ttlSeconds !== undefined && now + ttl > chain.expiresAt)
      throw invalid(
        'ERR_LEASE_BEYOND_CHAIN',
        `the lease would end ${now + ttl - chain.expiresAt}s after the chain expires (at ${chain.expiresAt})`,
      );
    const maxExpiresAt = Math.min(chain.expiresAt, now + limits.maxLifetimeSeconds);
    const expiresAt = Math.min(now + ttl, maxExpiresAt);
    const id = newLeaseId();
    const context: LeaseContext = {
      leaseId: id,
      holder: chain.actor,
      chain,
      resource: checked.resource,
      scope: checked.scope,
      nowSeconds: now,
      expiresAt,
    };
    const issued = await provider.issue(context);
    const lease: Lease = {
      id,
      kind: checked.kind,
      holder: chain.actor,
      chainIds: chainIdsOf(chain),
      resource: checked.resource,
      scope: checked.scope,
      createdAt: now,
      expiresAt,
      maxExpiresAt,
      renewals: 0,
      state: LeaseState.active,
      handle: issued.handle,
    };
    try {
      await this.#leases.insert(lease);
    } catch (error) {
      await provider.revoke(lease).catch(() => undefined);
      throw error;
    }
    try {
      await this.#audit.record({ lease, event: 'granted', at: now });
    } catch (error) {
      this.#logger.error('broker: grant not recorded, lease revoked', {
        lease: id,
        reason: isMandateError(error) ? error.code : 'error',
      });
      await this.#endAndTell([id], LeaseState.revoked, 'audit-failed', now, false);
      throw unavailable(
        'ERR_BROKER_AUDIT_FAILED',
        'the lease could not be recorded in the audit log, so it was revoked',
        error,
      );
    }
    this.#logger.info('broker: lease granted', {
      lease: id,
      kind: lease.kind,
      holder: lease.holder,
      resource: lease.resource,
      expiresAt,
    });
    return { lease, value: issued.value, decision };
  }

  /** One lease; `ERR_LEASE_NOT_FOUND` when there is none. */
  async get(id: string): Promise<Lease> {
    checkLeaseId(id);
    const lease = await this.#leases.get(id);
    if (lease === undefined) throw notFound('ERR_LEASE_NOT_FOUND', `no lease \`${id}\``);
    return lease;
  }

  /**
   * Extends the holder's active lease by `ttlSeconds` (default: the broker's default TTL) from
   * now, up to its horizon and the renewer's chain; decided again. Throws `ERR_LEASE_NOT_FOUND`,
   * `ERR_LEASE_NOT_HOLDER`, `ERR_LEASE_NOT_ACTIVE`, `ERR_LEASE_RENEWAL_EXHAUSTED`,
   * `ERR_LEASE_TTL_TOO_LONG`, `ERR_LEASE_BEYOND_CHAIN`, `ERR_LEASE_DENIED`.
   */
  async renew<Value = unknown>(
    id: string,
    chain: VerifiedChain,
    options: { readonly ttlSeconds?: number } = {},
  ): Promise<RenewedLease<Value>> {
    const lease = await this.get(id);
    if (chain.actor !== lease.holder)
      throw forbidden('ERR_LEASE_NOT_HOLDER', `lease \`${id}\` is not held by \`${chain.actor}\``);
    const now = this.#clock.nowSeconds();
    assertLive(lease, now);
    const limits = this.limitsOf(lease.kind);
    const ttl = options.ttlSeconds ?? Math.min(this.#defaultTtl, limits.maxTtlSeconds);
    if (!Number.isSafeInteger(ttl) || ttl < 1)
      throw invalid('ERR_LEASE_REQUEST_INVALID', '`ttlSeconds` must be a positive integer');
    if (ttl > limits.maxTtlSeconds)
      throw invalid(
        'ERR_LEASE_TTL_TOO_LONG',
        `a \`${lease.kind}\` lease lasts at most ${limits.maxTtlSeconds}s per grant or renewal, ${ttl}s asked`,
      );
    const horizon = Math.min(lease.maxExpiresAt, chain.expiresAt);
    if (lease.expiresAt >= horizon)
      throw conflict(
        'ERR_LEASE_RENEWAL_EXHAUSTED',
        `lease \`${id}\` already ends at its limit (${horizon}): ask for a new lease`,
      );
    if (options.ttlSeconds !== undefined && now + ttl > chain.expiresAt)
      throw invalid(
        'ERR_LEASE_BEYOND_CHAIN',
        `the lease would end ${now + ttl - chain.expiresAt}s after the chain expires (at ${chain.expiresAt})`,
      );
    const decision = this.#decide(
      chain,
      { kind: lease.kind, resource: lease.resource, scope: lease.scope },
      { nowSeconds: now },
    );
    if (decision.decision !== 'allow') throw this.#refuse(decision);
    const expiresAt = Math.max(lease.expiresAt, Math.min(now + ttl, horizon));
    const provider = this.#provider(lease.kind) as LeaseProvider<Value>;
    const issued: IssuedLease<Value> | undefined = await provider.renew(lease, {
      leaseId: lease.id,
      holder: lease.holder,
      chain,
      resource: lease.resource,
      scope: lease.scope,
      nowSeconds: now,
      expiresAt,
    });
    const renewed = await this.#leases.renew(id, {
      expiresAt,
      handle: issued?.handle ?? lease.handle,
      renewals: lease.renewals + 1,
    });
    if (renewed === undefined) {
      // Revoked or expired while the provider renewed: the provider is told again.
      await this.#tell([{ ...lease, handle: issued?.handle ?? lease.handle }]);
      throw conflict('ERR_LEASE_NOT_ACTIVE', `lease \`${id}\` ended while it was being renewed`);
    }
    await this.#audit.record({ lease: renewed, event: 'renewed', at: now });
    return { lease: renewed, value: issued?.value };
  }

  /**
   * Records a use of an active lease (the injecting proxy calls it per request it serves).
   * `ERR_LEASE_NOT_ACTIVE` once it has ended.
   */
  async used(id: string): Promise<Lease> {
    const lease = await this.get(id);
    const now = this.#clock.nowSeconds();
    assertLive(lease, now);
    await this.#audit.record({ lease, event: 'used', at: now });
    return lease;
  }

  /**
   * Ends a lease now and tells its provider. Idempotent: a lease that already ended is returned
   * as it is (`ERR_LEASE_NOT_FOUND` for an unknown id). With `holder`, only that identity's lease
   * (`ERR_LEASE_NOT_HOLDER` otherwise): how a holder revokes its own lease over a channel.
   */
  async revoke(
    id: string,
    reason = 'revoked',
    options: { readonly holder?: Identifier } = {},
  ): Promise<Lease> {
    const lease = await this.get(id);
    if (options.holder !== undefined && lease.holder !== options.holder)
      throw forbidden(
        'ERR_LEASE_NOT_HOLDER',
        `lease \`${id}\` is not held by \`${options.holder}\``,
      );
    const now = this.#clock.nowSeconds();
    const ended = await this.#endAndTell([id], LeaseState.revoked, checkReason(reason), now, true);
    return ended[0] ?? (await this.get(id));
  }

  /**
   * The deny-set cascade: ends every active lease whose holder or chain ids include any of
   * `revocationIds`, in one transaction, then tells the providers. Returns the leases it ended.
   */
  async revokeMatching(
    revocationIds: readonly string[],
    reason = 'holder-revoked',
  ): Promise<readonly Lease[]> {
    if (revocationIds.length === 0) return [];
    const now = this.#clock.nowSeconds();
    const ended = await this.#leases.endMatching(revocationIds, now, checkReason(reason));
    await this.#after(ended, 'revoked', now);
    return ended;
  }

  /**
   * The deny-set hook's pass: the ids of active leases that `isRevoked` names go to
   * {@link revokeMatching}. Returns the leases it ended.
   */
  async revokeDenied(isRevoked: (id: string) => boolean): Promise<readonly Lease[]> {
    const active = await this.#leases.list({ state: LeaseState.active });
    const matched = new Set<string>();
    for (const lease of active) for (const id of lease.chainIds) if (isRevoked(id)) matched.add(id);
    return this.revokeMatching([...matched]);
  }

  /** Ends the leases due at `nowSeconds` (default now) and tells their providers. */
  async expireDue(nowSeconds = this.#clock.nowSeconds()): Promise<readonly Lease[]> {
    const due = await this.#leases.due(nowSeconds, BATCH);
    if (due.length === 0) return [];
    const ended = await this.#leases.end(
      due.map((l) => l.id),
      LeaseState.expired,
      nowSeconds,
      'expired',
    );
    await this.#after(ended, 'expired', nowSeconds);
    return ended;
  }

  /**
   * Tells the providers about ended leases they have not heard of (a failed call, a crash, an
   * ending by another process). Kinds without a provider here stay pending; a lease whose
   * revocation failed is tried again after 1, 2, 4, … seconds, at most
   * {@link MAX_PROVIDER_RETRY_SECONDS} apart. Returns how many were completed.
   */
  async finishPending(): Promise<number> {
    const pending = await this.#leases.pending(BATCH);
    const now = this.#clock.nowSeconds();
    return this.#tell(
      pending.filter(
        (lease) =>
          this.#providers.has(lease.kind) && (this.#retries.get(lease.id)?.at ?? now) <= now,
      ),
    );
  }

  /**
   * After a crash: each provider that can removes what it finds that no active lease of its kind
   * holds. Returns how many it removed in all.
   */
  async reap(): Promise<number> {
    const active = await this.#leases.list({ state: LeaseState.active });
    let removed = 0;
    for (const provider of this.#providers.values()) {
      if (provider.reap === undefined) continue;
      const live = new Set(active.filter((l) => l.kind === provider.kind).map((l) => l.handle));
      removed += await provider.reap(live);
    }
    return removed;
  }

  /** Leases, newest first. */
  list(filter?: Parameters<LeaseRepository['list']>[0]): Promise<readonly Lease[]> {
    return this.#leases.list(filter);
  }

  async #endAndTell(
    ids: readonly string[],
    state: typeof LeaseState.revoked | typeof LeaseState.expired,
    reason: string,
    now: number,
    audit: boolean,
  ): Promise<readonly Lease[]> {
    const ended = await this.#leases.end(ids, state, now, reason);
    if (audit) await this.#after(ended, state, now);
    else await this.#tell(ended);
    return ended;
  }

  /** Audits the ended leases, then tells their providers. */
  async #after(ended: readonly Lease[], event: 'revoked' | 'expired', now: number): Promise<void> {
    for (const lease of ended) {
      this.#logger.info(`broker: lease ${event}`, {
        lease: lease.id,
        holder: lease.holder,
        reason: lease.endReason,
      });
      await this.#audit.record({ lease, event, at: now }).catch((error: unknown) => {
        // The lease is ended in the store either way: an audit failure must not keep it alive.
        this.#logger.error('broker: lease event not recorded', {
          lease: lease.id,
          event,
          reason: isMandateError(error) ? error.code : 'error',
        });
      });
    }
    await this.#tell(ended);
  }

  /**
   * Tells each lease's provider it ended; failures stay pending for `finishPending`. Each call is
   * waited for at most `providerTimeoutMs`: one that takes longer stays pending and finishes (and
   * is recorded) in the background, and is not started again while it runs.
   */
  async #tell(ended: readonly Lease[]): Promise<number> {
    let done = 0;
    await Promise.all(
      ended.map(async (lease) => {
        const provider = this.#providers.get(lease.kind);
        if (provider === undefined || this.#revoking.has(lease.id)) return;
        this.#revoking.add(lease.id);
        const call = provider
          .revoke(lease)
          .then(async () => {
            await this.#leases.providerDone(lease.id);
            if (this.#retries.delete(lease.id))
              this.#logger.info('broker: provider revocation finished', { lease: lease.id });
          })
          .finally(() => this.#revoking.delete(lease.id));
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([
            call,
            new Promise<never>((_, reject) => {
              timer = setTimeout(() => {
                reject(
                  timeout(
                    'ERR_BROKER_PROVIDER_TIMEOUT',
                    `the \`${lease.kind}\` provider did not revoke lease \`${lease.id}\` within ${this.#providerTimeoutMs} ms`,
                  ),
                );
              }, this.#providerTimeoutMs);
              timer.unref?.();
            }),
          ]);
          done++;
        } catch (error) {
          // A call that timed out may still fail later: that rejection is handled here.
          call.catch(() => undefined);
          this.#failed(lease, isMandateError(error) ? error.code : 'error');
        } finally {
          clearTimeout(timer);
        }
      }),
    );
    return done;
  }

  /** Schedules the next attempt (exponential backoff); logs the first failure and a new code. */
  #failed(lease: Lease, code: string): void {
    const before = this.#retries.get(lease.id);
    const failures = (before?.failures ?? 0) + 1;
    const delay = Math.min(2 ** (failures - 1), MAX_PROVIDER_RETRY_SECONDS);
    this.#retries.set(lease.id, { failures, code, at: this.#clock.nowSeconds() + delay });
    if (before?.code === code) return;
    this.#logger.warn('broker: provider revocation failed, will retry with backoff', {
      lease: lease.id,
      kind: lease.kind,
      reason: code,
    });
  }
}

/** The ids whose revocation kills a lease: the chain's revocation subjects (holder included). */
function chainIdsOf(chain: VerifiedChain): readonly string[] {
  const ids = new Set(chain.revocationSubjects);
  ids.add(chain.actor);
  return Object.freeze([...ids]);
}

function assertLive(lease: Lease, now: number): void {
  if (lease.state !== LeaseState.active || now >= lease.expiresAt)
    throw conflict(
      'ERR_LEASE_NOT_ACTIVE',
      `lease \`${lease.id}\` is ${lease.state === LeaseState.active ? 'expired' : lease.state}`,
    );
}

const REASON_RE = /^[\x20-\x7e]{1,200}$/;

function checkReason(reason: string): string {
  if (!REASON_RE.test(reason))
    throw invalid('ERR_LEASE_REQUEST_INVALID', 'a reason is 1–200 printable ASCII characters');
  return reason;
}
