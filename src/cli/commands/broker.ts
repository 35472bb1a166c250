import type { Command } from 'commander';
import { unavailable } from '../../core/internal.js';
import { Gate, type BundleSource } from '../../gates/index.js';
import type { Clock } from '../../core/index.js';
import { Broker, PostgresRoleProvider, type LeaseProvider } from '../../broker/index.js';
import { BrokerService, BrokerTimers, StoreBundleSource } from '../../node/index.js';
import type { CliContext } from '../context.js';
import { parseTcpPeer } from '../../routing/internal.js';
import { brokerAuditSink } from './lease.js';
import { nodeOptions, runNode, type NodeStartOptions } from './node.js';
import { POSTGRES_URL_ENV, postgresAdminUrl } from './broker-postgres.js';

/** How stale the home's bundle view may get before every lease is refused (as `gate` commands). */
const BUNDLE_STALENESS_SECONDS = 60;

type BrokerStartOptions = NodeStartOptions & {
  postgres?: string;
  http?: string;
  postgresFile?: string;
  postgresRolePrefix?: string;
  /** The broker's identifier, named in its PostgreSQL roles' comments (set at start). */
  brokerId?: string;
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
    .option('--http <host:port>', 'serve the JWKS and the token-exchange endpoint here');
  nodeOptions(start, 'register at the relay node at this route');
  start.action((opts: BrokerStartOptions) => runBrokerStart(context(), opts));
}

/** What `broker start` composes around the Broker: its providers and their servers. */
interface BrokerParts {
  readonly providers: readonly LeaseProvider[];
  close(): Promise<void>;
}

/**
 * The lease providers of this broker, by kind. Each kind is served only when its provider is
 * configured here; a request for any other kind is refused with `ERR_LEASE_KIND_UNAVAILABLE`.
 *
 * - `--postgres URL`: `PostgresRoleProvider` (docs/spec/broker-postgres.md) over that admin
 *   connection, with the built-in `readonly` template.
 * - Integration point (issue 12): the JWT provider (`JwtLeaseProvider`) with `--http`
 *   (`startBrokerHttp`: the JWKS and the token exchange) and the injecting proxy
 *   (`ProxyLeaseProvider`, `EgressProxyService`) are composed here at integration. Until then
 *   `--http` is refused at start rather than accepted and ignored.
 */
function brokerParts(opts: BrokerStartOptions, clock: Clock): Promise<BrokerParts> {
  if (opts.http !== undefined) {
    parseTcpPeer(opts.http);
    throw unavailable(
      'ERR_BROKER_PROVIDER_UNAVAILABLE',
      '`--http`: the JWT provider and token-exchange endpoint are not composed into `broker start` yet',
    );
  }
  const providers: LeaseProvider[] = [];
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
  return Promise.resolve({
    providers,
    close: async () => {
      await postgres?.close();
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
  await runNode(ctx, opts, {
    deliverTo: ['broker'],
    expose: [],
    serve: async (router, _listener, logger, node) => {
      const { home, denySet, bus } = node;
      const brokerId = (await home.identities.find(opts.identity))?.identity.identifier;
      const parts = await brokerParts(
        {
          ...opts,
          ...(postgres === undefined ? {} : { postgres }),
          ...(brokerId === undefined ? {} : { brokerId }),
        },
        ctx.clock,
      );
      let store: StoreBundleSource | undefined;
      const bundles: BundleSource =
        bus?.bundles ??
        (store = await StoreBundleSource.start({
          repository: home.store.policyBundles,
          authorities: () => home.trustedAuthorities(),
          maxStalenessSeconds: BUNDLE_STALENESS_SECONDS,
          clock: ctx.clock,
          logger,
        }));
      const gate = new Gate({ bundles, denySet });
      const sink = await brokerAuditSink(home, opts.identity);
      const broker = new Broker({
        leases: home.store.brokerLeases,
        decide: (chain, ask, o) => gate.decideLease(chain, ask, o),
        providers: parts.providers,
        audit: sink,
        clock: ctx.clock,
        logger,
      });
      const service = new BrokerService(router, { broker, logger });
      const timers = await BrokerTimers.start({ broker, denySet, logger });
      logger.info('broker: serving', { kinds: broker.kinds.join(',') || 'none' });
      return async () => {
        await service.close();
        await timers.stop();
        await parts.close();
        await sink.close();
        await store?.stop();
      };
    },
  });
}
