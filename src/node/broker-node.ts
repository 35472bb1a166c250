// The broker as a node service (docs/spec/broker.md): its lease providers, the gate over the
// node's policy bundles and deny-set, the audit sink, the channel service, the egress proxy with
// proxy bindings, the timers, and the HTTP side with `broker.http`.
import type { Clock, Logger } from '../core/index.js';
import { invalid } from '../core/internal.js';
import { Gate } from '../gates/index.js';
import { ChainVerifier, type DenySet } from '../credentials/index.js';
import type { SigningKeyHandle } from '../vault/index.js';
import {
  Broker,
  JwtLeaseProvider,
  LeaseKind,
  LeaseState,
  MemoryProofNonceStore,
  PostgresRoleProvider,
  ProxyLeaseProvider,
  verifyExchangeProof,
  type LeaseAuditSink,
  type LeaseProvider,
} from '../broker/index.js';
import { parseListenAddress } from './node-runtime.js';
import { BrokerService } from './broker-service.js';
import { BrokerTimers } from './broker-timers.js';
import { EgressProxyService, EGRESS_SERVICE_ADDRESS } from './egress-proxy.js';
import { nodeBundleSource } from './store-bundle-source.js';
import { startBrokerHttp, type BrokerHttp } from './broker-http.js';
import type { Home } from './home.js';
import { ServiceParts, type NodeServiceContext, type RunningService } from './service.js';

/** How stale the home's bundle view may get before every lease is refused (as `gate` commands). */
const BUNDLE_STALENESS_SECONDS = 60;
/** How many ended leases a restart looks at when it re-tells the providers (newest first). */
const RESTART_SCAN_LIMIT = 100_000;

/** What the broker service needs besides the node's config (`broker` in it). */
export interface BrokerNodeOptions {
  /** The home's broker token signing key (created on first use). */
  jwtKey(home: Home): Promise<SigningKeyHandle>;
  /** The lease records' sink, signed by `identity`; closed when the broker stops. */
  auditSink(home: Home, identity: string): Promise<LeaseAuditSink & { close(): Promise<void> }>;
  /** The PostgreSQL admin connection (`--postgres`, `broker.postgresFile` or the environment). */
  readonly postgresUrl?: string;
  /** The injection bindings of `broker.proxyBindings`, parsed (checked by the provider). */
  readonly proxyBindings?: readonly unknown[];
}

/** The JWT issuer of a broker: stable across restarts and ports (docs/spec/broker.md §4.1). */
export function brokerIssuerOf(identifier: string): string {
  return `mandate:broker:${identifier}`;
}

/** The listener addresses of the broker service: `broker`, and the egress proxy with bindings. */
export function brokerAddresses(options: BrokerNodeOptions | undefined): readonly string[] {
  return options?.proxyBindings === undefined ? ['broker'] : ['broker', EGRESS_SERVICE_ADDRESS];
}

/** What the broker service composes around the Broker: its providers, by kind. */
interface BrokerParts {
  readonly providers: readonly LeaseProvider[];
  readonly jwt: JwtLeaseProvider;
  readonly proxy: ProxyLeaseProvider | undefined;
  close(): Promise<void>;
}

/**
 * The lease providers of this broker, by kind (a kind without one answers
 * `ERR_LEASE_KIND_UNAVAILABLE`):
 *
 * - `jwt`, always: `JwtLeaseProvider` signing with the home's broker token key
 *   (`homeBrokerJwtKey`, created on first use; `mandate broker jwks` prints it), issuer
 *   `mandate:broker:<the broker identity's identifier>`.
 * - `postgres` with a PostgreSQL admin connection: `PostgresRoleProvider` over that admin connection, with the
 *   built-in `readonly` template.
 * - `proxy` with proxy bindings: `ProxyLeaseProvider` over the home's sealed store.
 */
async function brokerParts(
  home: Home,
  opts: {
    readonly identity: string;
    readonly postgres?: string;
    readonly postgresRolePrefix?: string;
    readonly brokerId?: string;
    readonly proxyBindings?: readonly unknown[];
    readonly jwtKey: (home: Home) => Promise<SigningKeyHandle>;
  },
  clock: Clock,
): Promise<BrokerParts> {
  const bindings = opts.proxyBindings;
  const identity = await home.identities.get(opts.identity);
  const jwt = new JwtLeaseProvider({
    vault: home.vault,
    key: await opts.jwtKey(home),
    issuer: brokerIssuerOf(identity.identity.identifier),
    clock,
  });
  const providers: LeaseProvider[] = [jwt];
  const proxy =
    bindings === undefined
      ? undefined
      : new ProxyLeaseProvider({ secrets: home.secrets, bindings: [...bindings], clock });
  if (proxy !== undefined) providers.push(proxy);
  let postgres: PostgresRoleProvider | undefined;
  if (opts.postgres !== undefined) {
    postgres = new PostgresRoleProvider({
      connectionString: opts.postgres,
      clock,
      ...(opts.brokerId === undefined ? {} : { brokerId: opts.brokerId }),
      ...(opts.postgresRolePrefix === undefined ? {} : { rolePrefix: opts.postgresRolePrefix }),
    });
    providers.push(postgres);
  }
  return {
    providers,
    jwt,
    proxy,
    close: async () => {
      await postgres?.close();
    },
  };
}

/**
 * The restart rule: the providers' in-memory state comes back from the lease store. Every revoked
 * JWT lease whose tokens may still be valid (`maxExpiresAt` not reached) is revoked at the
 * provider again, so `/revoked` still lists its `jti`; every active proxy lease is registered
 * again, so its holder's requests keep their injection until the lease ends.
 */
async function restoreProviders(
  home: Home,
  parts: BrokerParts,
  nowSeconds: number,
  logger: Logger,
): Promise<void> {
  const leases = home.store.brokerLeases;
  let jtis = 0;
  for (const lease of await leases.list({
    state: LeaseState.revoked,
    limit: RESTART_SCAN_LIMIT,
  })) {
    if (lease.kind !== LeaseKind.jwt || Math.max(lease.expiresAt, lease.maxExpiresAt) <= nowSeconds)
      continue;
    await parts.jwt.revoke(lease);
    jtis++;
  }
  let restored = 0;
  if (parts.proxy !== undefined) {
    const active = await leases.list({ state: LeaseState.active, limit: RESTART_SCAN_LIMIT });
    restored = parts.proxy.restore(
      active.filter((l) => l.kind === LeaseKind.proxy && l.expiresAt > nowSeconds),
    );
  }
  if (jtis > 0 || restored > 0)
    logger.info('broker: restored provider state', { revokedJtis: jtis, proxyLeases: restored });
}

/**
 * `broker.http` (`--http HOST:PORT`): the JWKS, the RFC 8693 token endpoint (proofs verified against the home's
 * trusted authorities and the live deny-set, replays refused by an in-memory nonce store; the
 * lease decided and recorded by the broker) and the revocation list.
 */
async function startHttp(
  home: Home,
  listen: string,
  broker: Broker,
  jwt: JwtLeaseProvider,
  denySet: DenySet,
  clock: Clock,
  logger: Logger,
): Promise<BrokerHttp> {
  const { host, port } = parseListenAddress(listen);
  const chains = new ChainVerifier({ authorities: await home.trustedAuthorities(), denySet });
  const nonces = new MemoryProofNonceStore({ nowSeconds: clock.nowSeconds() });
  return startBrokerHttp({
    listen: { host, port },
    jwt,
    clock,
    logger,
    verifyProof: (proof, request) =>
      verifyExchangeProof(proof, request, { chains, nonces, nowSeconds: clock.nowSeconds() }),
    exchange: async (chain, request) => {
      const granted = await broker.lease<{ token: string }>(chain, {
        kind: LeaseKind.jwt,
        resource: request.audience,
        scope: request.scope,
      });
      return {
        leaseId: granted.lease.id,
        token: granted.value.token,
        expiresAt: granted.lease.expiresAt,
      };
    },
  });
}

/**
 * The broker service of a node: a listener delivering to `broker` (credential holders of the
 * home's trust anchors). Leases are decided by `Gate.decideLease` over the home's policy bundles
 * (or the authority's bus with `authority`) and the peers' deny-set, stored in the home, audited
 * in the home's audit log signed by the node's identity; the deny-set hook, expiry and pending
 * provider revocations run on the broker's timers. Its parts stop last first.
 */
export async function startBroker(
  node: NodeServiceContext,
  options: BrokerNodeOptions | undefined,
): Promise<RunningService> {
  if (options === undefined)
    throw invalid(
      'ERR_NODE_CONFIG_INVALID',
      'node config: `services` names `broker`, but the node was started without its options',
    );
  const { config, router, logger } = node;
  const opts = {
    identity: config.identity,
    jwtKey: (home: Home) => options.jwtKey(home),
    ...(options.postgresUrl === undefined ? {} : { postgres: options.postgresUrl }),
    ...(options.proxyBindings === undefined ? {} : { proxyBindings: options.proxyBindings }),
    ...(config.broker.postgresRolePrefix === undefined
      ? {}
      : { postgresRolePrefix: config.broker.postgresRolePrefix }),
  };
  const { home, denySet, clock } = node;
  const brokerId = (await home.identities.find(opts.identity))?.identity.identifier;
  const parts = await brokerParts(
    home,
    { ...opts, ...(brokerId === undefined ? {} : { brokerId }) },
    clock,
  );
  const started = new ServiceParts('broker', logger);
  started.add(() => parts.close());
  try {
    const followed = await nodeBundleSource(node, BUNDLE_STALENESS_SECONDS);
    started.add(() => followed.stop());
    const bundles = followed.bundles;
    const gate = new Gate({ bundles, denySet });
    const sink = await options.auditSink(home, opts.identity);
    started.add(() => sink.close());
    const broker = new Broker({
      leases: home.store.brokerLeases,
      decide: (chain, ask, o) => gate.decideLease(chain, ask, o),
      providers: parts.providers,
      audit: sink,
      clock,
      logger,
    });
    await restoreProviders(home, parts, clock.nowSeconds(), logger);
    const service = new BrokerService(router, { broker, logger });
    started.add(() => service.close());
    if (parts.proxy !== undefined) {
      const egress = new EgressProxyService(router, {
        provider: parts.proxy,
        // Each proxied request is a `used` record of its lease, through the broker (which
        // refuses a lease that has ended), before the request leaves.
        audit: {
          record: async ({ lease }) => {
            await broker.used(lease.id);
          },
        },
        clock,
        logger,
      });
      started.add(() => egress.close());
    }
    const timers = await BrokerTimers.start({ broker, denySet, logger });
    started.add(() => timers.stop());
    if (config.broker.http !== undefined) {
      const http = await startHttp(
        home,
        config.broker.http,
        broker,
        parts.jwt,
        denySet,
        clock,
        logger,
      );
      started.add(() => http.close());
      logger.info('broker: http', { url: http.url, tokenEndpoint: http.tokenEndpoint });
    }
    logger.info('broker: serving', { kinds: broker.kinds.join(','), issuer: parts.jwt.issuer });
  } catch (error) {
    await started.stopAll();
    throw error;
  }
  return { stop: started.stopAll };
}
