// Gate 3 in the gateway (docs/spec/mcp.md, "Gate 3"): an upstream whose configuration sets
// `mandate.lease` gets its credential from the broker, per agent. For each (agent, upstream) the
// gateway holds a `proxy` lease decided with that agent's own verified chain, and an upstream
// connection of that agent only — a stdio server spawned with the credential in its environment,
// or an HTTP client sending it as a header — so no two agents ever share a credential-bearing
// connection, and the agent never sees the value: it is scrubbed from results, errors and logs.
import {
  MandateError,
  isMandateError,
  type Clock,
  type Logger,
  type LogFields,
} from '../core/index.js';
import { exhausted, forbidden, invalid, unavailable } from '../core/internal.js';
import { wipe } from '../crypto/index.js';
import type { VerifiedChain } from '../credentials/index.js';
import type { Identifier } from '../identity/index.js';
import {
  LeaseKind,
  LeaseState,
  MIN_INJECTED_SECRET_BYTES,
  Scrubber,
  type Broker,
  type IssuedLease,
  type Lease,
  type LeaseContext,
  type LeaseProvider,
  type SecretReader,
} from '../broker/index.js';
import type { RestartConfig, UpstreamConfig, UpstreamLeaseConfig } from './config.js';
import { Upstream } from './upstream.js';

/** What a gateway lease's holder is told: the secret's name, never its value. */
export interface GatewayLeaseValue {
  readonly secret: string;
}

/**
 * The `proxy` lease provider of a gateway's broker: the lease's `resource` names a secret of the
 * sealed store, and the gateway (the injection point) injects it into the holder's own upstream
 * connection while the lease lives. `issue` reads the secret once to check that it exists, is at
 * least 8 bytes and is printable ASCII (it goes into a header or an environment variable), then
 * wipes it; nothing is registered (the lease store is the record the gateway checks), so
 * `revoke` has nothing to undo.
 */
export class GatewayLeaseProvider implements LeaseProvider<GatewayLeaseValue> {
  readonly kind = LeaseKind.proxy;
  readonly #secrets: SecretReader;

  constructor(options: { readonly secrets: SecretReader }) {
    this.#secrets = options.secrets;
  }

  async issue(context: LeaseContext): Promise<IssuedLease<GatewayLeaseValue>> {
    const secret = await this.#secrets.read(context.resource);
    try {
      credentialText(context.resource, secret);
    } finally {
      wipe(secret);
    }
    return { handle: context.leaseId, value: { secret: context.resource } };
  }

  renew(): Promise<undefined> {
    return Promise.resolve(undefined);
  }

  revoke(): Promise<void> {
    return Promise.resolve();
  }
}

/** Gate 3's option of the gateway: the broker that decides and records leases, and the store. */
export interface GatewayLeaseOptions {
  /** Decides (`Gate.decideLease` with the agent's chain), records and ends the leases. */
  readonly broker: Broker;
  /** Where the leased secrets are read from (the home's sealed store). */
  readonly secrets: SecretReader;
  /** Most agent upstreams (one per agent and leased upstream) at once; default 64. */
  readonly maxAgentUpstreams?: number;
  /** An agent upstream unused this long is closed and its lease revoked; default 300,000 ms. */
  readonly idleMs?: number;
  /** A lease this close to its end (seconds) is renewed before the call; default 60. */
  readonly renewBeforeSeconds?: number;
}

/** The secret as text for a header or an environment variable: 8+ bytes of printable ASCII. */
function credentialText(name: string, secret: Uint8Array): string {
  if (secret.length < MIN_INJECTED_SECRET_BYTES)
    throw invalid(
      'ERR_PROXY_SECRET_UNFIT',
      `the secret \`${name}\` is shorter than ${MIN_INJECTED_SECRET_BYTES} bytes`,
    );
  for (const byte of secret)
    if (byte < 0x20 || byte > 0x7e)
      throw invalid(
        'ERR_PROXY_SECRET_UNFIT',
        `the secret \`${name}\` has bytes a header or an environment variable cannot carry`,
      );
  return String.fromCharCode(...secret);
}

/**
 * The upstream's configuration with the credential injected: `lease.env` in a stdio server's
 * environment, or `lease.header` (replacing a configured header of that name, in any case) of an
 * HTTP server; `lease.template` with `{}` replaced by the secret.
 */
export function withCredential(config: UpstreamConfig, secret: Uint8Array): UpstreamConfig {
  const lease = config.mandate.lease;
  if (lease === undefined) return config;
  const text = credentialText(lease.secret, secret);
  const value = (lease.template ?? '{}').replace('{}', () => text);
  if (config.kind === 'stdio')
    return { ...config, env: { ...config.env, [lease.env ?? '']: value } };
  const name = (lease.header ?? '').toLowerCase();
  const headers = Object.fromEntries(
    Object.entries(config.headers).filter(([key]) => key.toLowerCase() !== name),
  );
  return { ...config, headers: { ...headers, [lease.header ?? '']: value } };
}

/**
 * The gateway's own connection to an upstream. A leased upstream's carries the secret read from
 * the store (it lists the tools for the catalog and the drift check, and never serves an agent's
 * call), with its logs scrubbed of it. A leased upstream without a store is
 * `ERR_MCP_LEASE_UNAVAILABLE`.
 */
export async function leasedUpstreamConfig(
  config: UpstreamConfig,
  secrets: SecretReader | undefined,
  logger: Logger,
): Promise<{ readonly config: UpstreamConfig; readonly logger?: Logger }> {
  const lease = config.mandate.lease;
  if (lease === undefined) return { config };
  if (secrets === undefined)
    throw unavailable(
      'ERR_MCP_LEASE_UNAVAILABLE',
      `upstream \`${config.name}\` takes its credentials from a broker lease (\`mandate.lease\`), and this gateway has no broker`,
    );
  const secret = await secrets.read(lease.secret);
  try {
    const scrubber = Scrubber.forSecrets([secret]);
    return { config: withCredential(config, secret), logger: scrubbingLogger(logger, scrubber) };
  } finally {
    wipe(secret);
  }
}

/** A logger whose messages and string fields have the secret's forms replaced. */
export function scrubbingLogger(logger: Logger, scrubber: Scrubber): Logger {
  const fields = (f: LogFields | undefined): LogFields | undefined =>
    f === undefined
      ? undefined
      : Object.fromEntries(
          Object.entries(f).map(([k, v]) => [
            k,
            typeof v === 'string' ? scrubText(scrubber, v) : v,
          ]),
        );
  return {
    debug: (m, f) => {
      logger.debug(scrubText(scrubber, m), fields(f));
    },
    info: (m, f) => {
      logger.info(scrubText(scrubber, m), fields(f));
    },
    warn: (m, f) => {
      logger.warn(scrubText(scrubber, m), fields(f));
    },
    error: (m, f) => {
      logger.error(scrubText(scrubber, m), fields(f));
    },
  };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** `text` (any Unicode) with the secret's forms replaced: scrubbed as its UTF-8 bytes. */
export function scrubText(scrubber: Scrubber, text: string): string {
  const bytes = encoder.encode(text);
  const out = scrubber.scrub(bytes);
  return out === bytes ? text : decoder.decode(out);
}

/** A JSON value with every string in it (keys too) scrubbed. */
export function scrubValue(scrubber: Scrubber, value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return scrubText(scrubber, value);
  if (value === null || typeof value !== 'object' || depth > 64) return value;
  if (Array.isArray(value)) return value.map((v) => scrubValue(scrubber, v, depth + 1));
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [
      scrubText(scrubber, k),
      scrubValue(scrubber, v, depth + 1),
    ]),
  );
}

/** One agent's connection to one leased upstream, with the lease that supplies its credential. */
export interface AgentUpstream {
  readonly agent: Identifier;
  readonly upstream: Upstream;
  /** The lease as last checked (renewals move its end). */
  lease: Lease;
  readonly scrubber: Scrubber;
  inFlight: number;
  lastUsedMs: number;
  /** Closed: its scrubber is wiped once no call uses it any more. */
  dropped: boolean;
}

/** Options of {@link AgentUpstreams}. */
export interface AgentUpstreamsOptions extends GatewayLeaseOptions {
  readonly restart: RestartConfig;
  readonly random: () => number;
  readonly clock: Clock;
  readonly logger: Logger;
}

/** Revoked leases remembered so the next call is refused (bounded; the oldest go first). */
const MAX_TOMBSTONES = 4096;

/**
 * The agents' own upstreams of the leased upstreams: opened on an agent's first allowed call
 * (lease granted, then the connection with its credential), reused while the lease lives,
 * renewed near its end, closed and the lease revoked when idle or when the cap needs room, and
 * closed at once when the lease ended elsewhere (revoked by an operator or by the deny-set
 * cascade): the next call of that agent is then refused (`ERR_MCP_LEASE_REVOKED`).
 */
export class AgentUpstreams {
  readonly #o: AgentUpstreamsOptions;
  readonly #held = new Map<string, AgentUpstream>();
  readonly #opening = new Map<string, Promise<AgentUpstream>>();
  /** Keys whose lease was found revoked, with the lease id: the next call is refused. */
  readonly #revoked = new Map<string, string>();
  readonly #max: number;
  readonly #idleMs: number;
  readonly #renewBefore: number;
  #closed = false;

  constructor(options: AgentUpstreamsOptions) {
    this.#o = options;
    this.#max = options.maxAgentUpstreams ?? 64;
    this.#idleMs = options.idleMs ?? 300_000;
    this.#renewBefore = options.renewBeforeSeconds ?? 60;
    if (!Number.isSafeInteger(this.#max) || this.#max < 1)
      throw invalid('ERR_ARGUMENT_INVALID', '`maxAgentUpstreams` must be a positive integer');
  }

  /** How many agent upstreams are open. */
  get size(): number {
    return this.#held.size;
  }

  /** The open agent upstreams (for health and tests). */
  list(): readonly AgentUpstream[] {
    return [...this.#held.values()];
  }

  /**
   * The agent's upstream for one call, its lease live: reused, renewed when near its end (decided
   * again with `chain`), or granted (decided with `chain`) and connected. Pair with
   * {@link release}. Throws the broker's refusal (`ERR_LEASE_DENIED`, …), `ERR_MCP_LEASE_REVOKED`
   * once after the lease was revoked, `ERR_MCP_AGENT_UPSTREAMS_FULL`, or the upstream's failure
   * to start (scrubbed).
   */
  async acquire(chain: VerifiedChain, config: UpstreamConfig): Promise<AgentUpstream> {
    const key = `${chain.actor}\n${config.name}`;
    const tombstone = this.#revoked.get(key);
    if (tombstone !== undefined) {
      this.#revoked.delete(key);
      throw forbidden(
        'ERR_MCP_LEASE_REVOKED',
        `the lease \`${tombstone}\` that gave this agent its credential for \`${config.name}\` was revoked`,
      );
    }
    let held = this.#held.get(key);
    if (held !== undefined) held = await this.#check(key, held, chain);
    held ??= await this.#openOnce(key, chain, config);
    held.inFlight++;
    held.lastUsedMs = Date.now();
    return held;
  }

  release(held: AgentUpstream): void {
    held.inFlight = Math.max(0, held.inFlight - 1);
    held.lastUsedMs = Date.now();
    if (held.dropped && held.inFlight === 0) held.scrubber.wipe();
  }

  /** The lease as the store has it: revoked → refused; ended → reopened; near its end → renewed. */
  async #check(
    key: string,
    held: AgentUpstream,
    chain: VerifiedChain,
  ): Promise<AgentUpstream | undefined> {
    const { broker, clock } = this.#o;
    const lease = await broker.get(held.lease.id);
    const now = clock.nowSeconds();
    if (lease.state === LeaseState.revoked) {
      await this.#drop(key, held, undefined);
      throw forbidden(
        'ERR_MCP_LEASE_REVOKED',
        `the lease \`${lease.id}\` that gave this agent its credential for \`${held.upstream.name}\` was revoked`,
      );
    }
    if (lease.state !== LeaseState.active || now >= lease.expiresAt) {
      await this.#drop(key, held, undefined);
      return undefined;
    }
    held.lease = lease;
    if (lease.expiresAt - now > this.#renewBefore) return held;
    try {
      const ttl = held.upstream.config.mandate.lease?.ttlSeconds;
      held.lease = (
        await broker.renew(lease.id, chain, ttl === undefined ? {} : { ttlSeconds: ttl })
      ).lease;
      return held;
    } catch (error) {
      if (isMandateError(error, 'ERR_LEASE_DENIED')) {
        // The agent may no longer lease it: the connection goes with the lease.
        await this.#drop(key, held, 'renewal-denied');
        throw error;
      }
      // At its horizon (or ended meanwhile): a new lease, decided again, and a new connection.
      if (
        isMandateError(error, 'ERR_LEASE_RENEWAL_EXHAUSTED') ||
        isMandateError(error, 'ERR_LEASE_NOT_ACTIVE') ||
        isMandateError(error, 'ERR_LEASE_BEYOND_CHAIN')
      ) {
        await this.#drop(key, held, 'replaced');
        return undefined;
      }
      // Any other failure: the lease still lives; use it and try again on the next call.
      this.#o.logger.warn('mcp lease not renewed', {
        lease: lease.id,
        reason: isMandateError(error) ? error.code : 'error',
      });
      return held;
    }
  }

  #openOnce(key: string, chain: VerifiedChain, config: UpstreamConfig): Promise<AgentUpstream> {
    let opening = this.#opening.get(key);
    if (opening === undefined) {
      opening = this.#open(key, chain, config).finally(() => this.#opening.delete(key));
      this.#opening.set(key, opening);
    }
    return opening;
  }

  async #open(key: string, chain: VerifiedChain, config: UpstreamConfig): Promise<AgentUpstream> {
    const lease = config.mandate.lease as UpstreamLeaseConfig;
    await this.#makeRoom();
    const { broker, secrets } = this.#o;
    const granted = await broker.lease(chain, {
      kind: LeaseKind.proxy,
      resource: lease.secret,
      ...(lease.ttlSeconds === undefined ? {} : { ttlSeconds: lease.ttlSeconds }),
    });
    let upstream: Upstream | undefined;
    let scrubber: Scrubber | undefined;
    const secret = await secrets.read(lease.secret).catch(async (error: unknown) => {
      await broker.revoke(granted.lease.id, 'upstream-failed').catch(() => undefined);
      throw error;
    });
    try {
      scrubber = Scrubber.forSecrets([secret]);
      const logger = scrubbingLogger(this.#o.logger, scrubber);
      upstream = new Upstream(withCredential(config, secret), {
        restart: this.#o.restart,
        logger,
        random: this.#o.random,
      });
      await upstream.start();
      if (this.#closed) throw invalid('ERR_MCP_UPSTREAM_UNAVAILABLE', 'the gateway is closing');
    } catch (error) {
      await upstream?.close();
      await broker.revoke(granted.lease.id, 'upstream-failed').catch(() => undefined);
      scrubber?.wipe();
      throw scrubbedError(scrubber, error);
    } finally {
      wipe(secret);
    }
    const held: AgentUpstream = {
      agent: chain.actor,
      upstream,
      lease: granted.lease,
      scrubber,
      inFlight: 0,
      lastUsedMs: Date.now(),
      dropped: false,
    };
    this.#held.set(key, held);
    this.#o.logger.info('mcp agent upstream opened', {
      agent: chain.actor,
      upstream: config.name,
      lease: granted.lease.id,
    });
    return held;
  }

  /** At the cap: the least recently used idle agent upstream is closed (its lease revoked). */
  async #makeRoom(): Promise<void> {
    // Called before this opening is counted: room for one more.
    if (this.#held.size + this.#opening.size < this.#max) return;
    let oldest: [string, AgentUpstream] | undefined;
    for (const entry of this.#held)
      if (
        entry[1].inFlight === 0 &&
        (oldest === undefined || entry[1].lastUsedMs < oldest[1].lastUsedMs)
      )
        oldest = entry;
    if (oldest === undefined)
      throw exhausted(
        'ERR_MCP_AGENT_UPSTREAMS_FULL',
        `all ${this.#max} agent upstreams of this gateway are busy: try again`,
      );
    await this.#drop(oldest[0], oldest[1], 'evicted');
  }

  /**
   * Closes the agent upstreams whose lease ended elsewhere (a revoked one is remembered, so that
   * agent's next call is refused) and those idle for `idleMs` (their lease revoked). Runs on the
   * gateway's refresh timer.
   */
  async sweep(): Promise<void> {
    const now = Date.now();
    for (const [key, held] of [...this.#held]) {
      if (held.inFlight === 0 && now - held.lastUsedMs >= this.#idleMs) {
        await this.#drop(key, held, 'idle');
        continue;
      }
      let lease: Lease;
      try {
        lease = await this.#o.broker.get(held.lease.id);
      } catch {
        continue;
      }
      if (lease.state === LeaseState.active) continue;
      await this.#drop(key, held, undefined);
      if (lease.state === LeaseState.revoked) this.#remember(key, lease.id);
    }
  }

  #remember(key: string, leaseId: string): void {
    this.#revoked.set(key, leaseId);
    while (this.#revoked.size > MAX_TOMBSTONES) {
      const first = this.#revoked.keys().next();
      if (first.done === true) break;
      this.#revoked.delete(first.value);
    }
  }

  /** Closes an agent upstream; with `revokeReason`, also ends its lease at the broker. */
  async #drop(key: string, held: AgentUpstream, revokeReason: string | undefined): Promise<void> {
    if (this.#held.get(key) === held) this.#held.delete(key);
    held.dropped = true;
    await held.upstream.close();
    // A call still in flight scrubs its answer with it: wiped when the last one is released.
    if (held.inFlight === 0) held.scrubber.wipe();
    if (revokeReason !== undefined)
      await this.#o.broker.revoke(held.lease.id, revokeReason).catch((error: unknown) => {
        this.#o.logger.warn('mcp lease not revoked', {
          lease: held.lease.id,
          reason: isMandateError(error) ? error.code : 'error',
        });
      });
    this.#o.logger.info('mcp agent upstream closed', {
      agent: held.agent,
      upstream: held.upstream.name,
      lease: held.lease.id,
      reason: revokeReason ?? held.lease.state,
    });
  }

  /** Closes every agent upstream and revokes their leases. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#opening.values()]);
    await Promise.all(
      [...this.#held].map(([key, held]) => this.#drop(key, held, 'gateway-closed')),
    );
  }
}

/** An error whose message may carry the secret (an upstream's words): scrubbed, code kept. */
export function scrubbedError(scrubber: Scrubber | undefined, error: unknown): unknown {
  if (scrubber === undefined || !(error instanceof Error)) return error;
  const message = scrubText(scrubber, error.message);
  if (message === error.message) return error;
  return isMandateError(error)
    ? new MandateError(error.code, error.kind, message)
    : new Error(message);
}
