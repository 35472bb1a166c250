import type { Command } from 'commander';
import { invalid } from '../../core/internal.js';
import { Gate, type BundleSource } from '../../gates/index.js';
import type { Clock, Logger } from '../../core/index.js';
import { parseJsonNoDuplicateKeys } from '../../encoding/index.js';
import { ChainVerifier, type DenySet } from '../../credentials/index.js';
import {
  Broker,
  JwtLeaseProvider,
  LeaseKind,
  LeaseState,
  MemoryProofNonceStore,
  PostgresRoleProvider,
  ProxyLeaseProvider,
  verifyExchangeProof,
  type LeaseProvider,
} from '../../broker/index.js';
import {
  BrokerService,
  BrokerTimers,
  EgressProxyService,
  EGRESS_SERVICE_ADDRESS,
  StoreBundleSource,
  startBrokerHttp,
  type BrokerHttp,
} from '../../node/index.js';
import type { CliContext } from '../context.js';
import type { Home } from '../home.js';
import { readTextArgument } from '../input.js';
import { parseTcpPeer } from '../../routing/internal.js';
import { homeBrokerJwtKey } from './broker-jwks.js';
import { brokerAuditSink } from './lease.js';
import { nodeOptions, runNode, type NodeStartOptions } from './node.js';
import { POSTGRES_URL_ENV, postgresAdminUrl } from './broker-postgres.js';

/** How stale the home's bundle view may get before every lease is refused (as `gate` commands). */
const BUNDLE_STALENESS_SECONDS = 60;
/** How many ended leases a restart looks at when it re-tells the providers (newest first). */
const RESTART_SCAN_LIMIT = 100_000;
/** Largest `--proxy-bindings` file read. */
const MAX_BINDINGS_BYTES = 256 * 1024;

type BrokerStartOptions = NodeStartOptions & {
  postgres?: string;
  http?: string;
  postgresFile?: string;
  postgresRolePrefix?: string;
  /** The broker's identifier, named in its PostgreSQL roles' comments (set at start). */
  brokerId?: string;
  proxyBindings?: string;
};

export function registerBrokerCommands(program: Command, context: () => CliContext): void {
  const start = program
    .command('broker')
    .description('gate 3: a broker that leases short-lived, scoped secrets over secure channels')
    .command('start')
    .description('run a broker node until SIGINT or SIGTERM (logs on stderr)')
    .requiredOption('--listen <host:port>', 'where to listen, e.g. 127.0.0.1:4300')
    .option(
      '--postgres <url>',
      `the admin connection for PostgreSQL role leases (other local users can read a password given here in the process list: prefer --postgres-file or ${POSTGRES_URL_ENV})`,
    )
    .option(
      '--postgres-file <file>',
      'read the PostgreSQL admin connection string from this file (mode 0600)',
    )
    .option(
      '--postgres-role-prefix <prefix>',
      'the first part of leased role names (default mandate_lease_)',
    )
    .option('--http <host:port>', 'serve the JWKS, the token-exchange endpoint and /revoked here')
    .option(
      '--proxy-bindings <file>',
      'a JSON array of injection bindings: serve `proxy` leases and the injecting egress proxy',
    );
  nodeOptions(start, 'register at the relay node at this route');
  start.action((opts: BrokerStartOptions) => runBrokerStart(context(), opts));
}

/** The JWT issuer of a broker: stable across restarts and ports (docs/spec/broker.md §4.1). */
export function brokerIssuerOf(identifier: string): string {
  return `mandate:broker:${identifier}`;
}

/** `--proxy-bindings FILE`: a JSON array of injection bindings (checked by the provider). */
function readBindings(file: string): unknown[] {
  const text = readTextArgument(file, '`--proxy-bindings`', MAX_BINDINGS_BYTES);
  const value = parseJsonNoDuplicateKeys(text, 'ERR_PROXY_BINDING_INVALID', `\`${file}\``, 8);
  if (!Array.isArray(value))
    throw invalid('ERR_PROXY_BINDING_INVALID', `\`${file}\` must hold a JSON array of bindings`);
  return value as unknown[];
}

/** What `broker start` composes around the Broker: its providers, by kind. */
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
 * - `postgres` with `--postgres URL`: `PostgresRoleProvider` over that admin connection, with the
 *   built-in `readonly` template.
 * - `proxy` with `--proxy-bindings FILE`: `ProxyLeaseProvider` over the home's sealed store.
 */
async function brokerParts(
  home: Home,
  opts: BrokerStartOptions,
  clock: Clock,
): Promise<BrokerParts> {
  const bindings = opts.proxyBindings === undefined ? undefined : readBindings(opts.proxyBindings);
  const identity = await home.identities.get(opts.identity);
  const jwt = new JwtLeaseProvider({
    vault: home.vault,
    key: await homeBrokerJwtKey(home),
    issuer: brokerIssuerOf(identity.identity.identifier),
    clock,
  });
  const providers: LeaseProvider[] = [jwt];
  const proxy =
    bindings === undefined
      ? undefined
      : new ProxyLeaseProvider({ secrets: home.secrets, bindings, clock });
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
 * `--http HOST:PORT`: the JWKS, the RFC 8693 token endpoint (proofs verified against the home's
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
  const { host, port } = parseTcpPeer(listen);
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
 * `broker start`: a node whose channel listener (`api`, credential holders of this home's trust
 * anchors) delivers to the `broker` service. Leases are decided by `Gate.decideLease` over the
 * home's policy bundles (or the authority's with `--authority`) and the peers' deny-set, stored
 * in the home, audited in the home's audit log signed by `--identity`; the deny-set hook, expiry
 * and pending provider revocations run on the broker's timers, and orphans are reaped at start.
 */
export async function runBrokerStart(ctx: CliContext, opts: BrokerStartOptions): Promise<void> {
  // Resolved before the node starts: a bad file fails at once, and the argv warning comes first.
  const postgres = postgresAdminUrl(opts, process.env, (line) => {
    process.stderr.write(`${line}\n`);
  });
  if (opts.http !== undefined) parseTcpPeer(opts.http);
  const proxied = opts.proxyBindings !== undefined;
  await runNode(ctx, opts, {
    deliverTo: proxied ? ['broker', EGRESS_SERVICE_ADDRESS] : ['broker'],
    expose: [],
    serve: async (router, _listener, logger, node) => {
      const { home, denySet, bus } = node;
      const clock = ctx.clock;
      const brokerId = (await home.identities.find(opts.identity))?.identity.identifier;
      const parts = await brokerParts(
        home,
        {
          ...opts,
          ...(postgres === undefined ? {} : { postgres }),
          ...(brokerId === undefined ? {} : { brokerId }),
        },
        clock,
      );
      const stops: (() => Promise<void>)[] = [() => parts.close()];
      // Stops what started so far, last first; also when a later part fails to start.
      const stopAll = async (): Promise<void> => {
        for (const stop of stops.splice(0).reverse()) {
          try {
            await stop();
          } catch (error) {
            logger.warn('broker: stopping a part failed', {
              error: error instanceof Error ? error.message : String(error),
            });
          }
        }
      };
      try {
        let bundles: BundleSource;
        if (bus !== undefined) bundles = bus.bundles;
        else {
          const store = await StoreBundleSource.start({
            repository: home.store.policyBundles,
            authorities: () => home.trustedAuthorities(),
            maxStalenessSeconds: BUNDLE_STALENESS_SECONDS,
            clock,
            logger,
          });
          stops.push(() => store.stop());
          bundles = store;
        }
        const gate = new Gate({ bundles, denySet });
        const sink = await brokerAuditSink(home, opts.identity);
        stops.push(() => sink.close());
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
        stops.push(() => service.close());
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
          stops.push(() => egress.close());
        }
        const timers = await BrokerTimers.start({ broker, denySet, logger });
        stops.push(() => timers.stop());
        if (opts.http !== undefined) {
          const http = await startHttp(home, opts.http, broker, parts.jwt, denySet, clock, logger);
          stops.push(() => http.close());
          logger.info('broker: http', { url: http.url, tokenEndpoint: http.tokenEndpoint });
        }
        logger.info('broker: serving', { kinds: broker.kinds.join(','), issuer: parts.jwt.issuer });
      } catch (error) {
        await stopAll();
        throw error;
      }
      return stopAll;
    },
  });
}
