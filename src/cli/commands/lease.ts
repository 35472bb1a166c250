import type { Command } from 'commander';
import { invalid } from '../../core/internal.js';
import { EnforcerSigner } from '../../audit/index.js';
import {
  Broker,
  checkLeaseId,
  LeaseKind,
  LeaseState,
  type Lease,
  type LeaseRequest,
} from '../../broker/index.js';
import { openSecureChannel, withCredentials } from '../../channel/index.js';
import {
  AuditLogLeaseSink,
  leaseSummaryOf,
  renewLeaseOverChannel,
  requestLeaseOverChannel,
  revokeLeaseOverChannel,
  type DenySetWatcher,
  type LeaseAnswer,
} from '../../node/index.js';
import { Router, TcpTransport, type Route } from '../../routing/index.js';
import { localAddress } from '../../routing/index.js';
import type { CliContext } from '../context.js';
import { credentialIssuerOf, type Home } from '../home.js';
import { channelOptions, connectRoute, parseDialRoute } from '../node-runtime.js';
import { readBytesArgument } from '../input.js';
import { stderrLogger } from '../logging.js';
import { collect, parseDuration, parsePositiveInteger } from '../parse.js';
import { homeAuditOrigin } from './audit.js';
import { DEFAULT_AUTHORITY } from '../chains.js';

/** The options of the commands that reach the broker over a secure channel as the holder. */
interface HolderOptions {
  broker: string;
  identity: string;
  credential?: string[];
}

const iso = (seconds: number): string => new Date(seconds * 1000).toISOString();

function holderOptions(command: Command, required: boolean): Command {
  const broker = '--broker <route>';
  const brokerHelp = 'the broker node, e.g. /ip4/127.0.0.1/tcp/4300 (its `broker` service)';
  if (required) command.requiredOption(broker, brokerHelp);
  else command.option(broker, brokerHelp);
  command.requiredOption(
    '--identity <name>',
    required
      ? 'the local identity that asks (the lease holder)'
      : 'with --broker: the holder; without: the broker identity that signs the audit record',
  );
  command.option(
    '--credential <file>',
    'a credential or delegation chain to present (repeatable)',
    collect,
  );
  return command;
}

export function registerLeaseCommands(program: Command, context: () => CliContext): void {
  const lease = program
    .command('lease')
    .description('leases from a broker: short-lived, scoped, revoked with the identity');
  holderOptions(
    lease
      .command('jwt')
      .description('lease a JWT for an audience (prints the token)')
      .requiredOption('--audience <aud>', 'the audience the token is for')
      .option('--scope <scope>', 'a scope to ask for (repeatable)', collect)
      .option('--ttl <duration>', "the lease's lifetime (default the broker's, 5m)"),
    true,
  ).action((opts: HolderOptions & { audience: string; scope?: string[]; ttl?: string }) =>
    runLeaseJwt(context(), opts),
  );
  holderOptions(
    lease
      .command('postgres')
      .description('lease a PostgreSQL login from a role template (prints user and password)')
      .requiredOption('--template <name>', 'the role template, e.g. readonly')
      .option('--ttl <duration>', "the lease's lifetime (default the broker's, 5m)"),
    true,
  ).action((opts: HolderOptions & { template: string; ttl?: string }) =>
    runLeasePostgres(context(), opts),
  );
  holderOptions(
    lease
      .command('proxy')
      .description(
        "lease injection of a secret by the broker's egress proxy (prints the host and placeholder, never the secret)",
      )
      .requiredOption('--secret <name>', 'the secret (its binding names the upstream host)')
      .option('--ttl <duration>', "the lease's lifetime (default the broker's, 5m)"),
    true,
  ).action((opts: HolderOptions & { secret: string; ttl?: string }) =>
    runLeaseProxy(context(), opts),
  );
  lease
    .command('list')
    .description("the leases in this (the broker's) home, newest first; never a value")
    .option('--state <state>', 'active, expired or revoked')
    .option('--limit <n>', 'at most this many', '100')
    .action((opts: { state?: string; limit: string }) => runLeaseList(context(), opts));
  holderOptions(
    lease
      .command('renew')
      .argument('<id>', 'the lease id')
      .description('the holder renews its lease over a secure channel (decided again)')
      .option('--ttl <duration>', "renew for this long (default the broker's, 5m)"),
    true,
  ).action((id: string, opts: HolderOptions & { ttl?: string }) =>
    runLeaseRenew(context(), id, opts),
  );
  holderOptions(
    lease
      .command('revoke')
      .argument('<id>', 'the lease id')
      .option('--reason <text>', 'why (kept with the lease; default `revoked`)')
      .description(
        "revoke a lease: in the broker's home, or with --broker as its holder over a secure channel",
      ),
    false,
  ).action((id: string, opts: Partial<HolderOptions> & { identity: string; reason?: string }) =>
    runLeaseRevoke(context(), id, opts),
  );
}

function leaseJson(lease: Lease) {
  return {
    ...leaseSummaryOf(lease),
    holder: lease.holder,
    endedAt: lease.endedAt ?? null,
    endReason: lease.endReason ?? null,
  };
}

/**
 * Opens a secure channel to the broker at `opts.broker` as `opts.identity`, presenting the
 * `--credential` files as chains (a credential file is a chain without links), and runs `use`.
 */
async function withBrokerChannel<T>(
  ctx: CliContext,
  opts: HolderOptions,
  use: (router: Router, channel: Awaited<ReturnType<typeof openSecureChannel>>) => Promise<T>,
): Promise<T> {
  parseDialRoute(opts.broker);
  const chains = (opts.credential ?? []).map((file) => readBytesArgument(file, 'credential'));
  if (chains.length === 0)
    throw invalid(
      'ERR_ARGUMENT_INVALID',
      '`--credential` is needed: the broker leases under a chain',
    );
  const logger = stderrLogger();
  const home = await ctx.openHome();
  const router = new Router();
  let watcher: DenySetWatcher | undefined;
  try {
    watcher = await home.watchDenySet({ logger });
    const { options } = await channelOptions(
      ctx,
      home,
      { identity: opts.identity },
      logger,
      watcher.denySet,
    );
    const transport = new TcpTransport(router, { logger });
    const channel = await openSecureChannel(router, brokerRoute(transport, opts.broker), {
      ...options,
      identityPayload: withCredentials(options.identityPayload, [], chains),
    });
    try {
      return await use(router, channel);
    } finally {
      await channel.close();
    }
  } finally {
    await router.close();
    await watcher?.stop();
    home.close();
  }
}

/** The route to the broker node's channel listener (`api`), unless the route names a service. */
function brokerRoute(transport: TcpTransport, text: string): Route {
  const route = connectRoute(transport, text);
  return route.length > 1 ? route : [...route, localAddress('api')];
}

function ttlOf(ttl: string | undefined): Pick<LeaseRequest, 'ttlSeconds'> {
  return ttl === undefined ? {} : { ttlSeconds: parseDuration(ttl, '--ttl') };
}

async function lease(
  ctx: CliContext,
  opts: HolderOptions,
  request: LeaseRequest,
): Promise<LeaseAnswer> {
  return withBrokerChannel(ctx, opts, (router, channel) =>
    requestLeaseOverChannel(router, channel, request),
  );
}

/** `lease jwt`: `{"leaseId","token","expiresAt"}`. */
export async function runLeaseJwt(
  ctx: CliContext,
  opts: HolderOptions & { audience: string; scope?: string[]; ttl?: string },
): Promise<void> {
  const answer = await lease(ctx, opts, {
    kind: LeaseKind.jwt,
    resource: opts.audience,
    scope: (opts.scope ?? []).flatMap((s) => s.split(/[\s,]+/).filter((x) => x !== '')),
    ...ttlOf(opts.ttl),
  });
  const token = answer.value?.['token'];
  if (typeof token !== 'string')
    throw invalid('ERR_BROKER_MALFORMED', 'the broker answered a JWT lease without a token');
  ctx.out.result(
    { leaseId: answer.lease.id, token, expiresAt: answer.lease.expiresAt },
    () => `${token}\nlease ${answer.lease.id}, expires ${iso(answer.lease.expiresAt)}`,
  );
}

/**
 * `lease proxy`: `{"leaseId","host","scheme","header"?,"placeholder"?,"expiresAt"}`. The value is
 * where to send requests (through `mandate proxy`) and, for a placeholder binding, the token to
 * put where the secret would go: never the secret.
 */
export async function runLeaseProxy(
  ctx: CliContext,
  opts: HolderOptions & { secret: string; ttl?: string },
): Promise<void> {
  const answer = await lease(ctx, opts, {
    kind: LeaseKind.proxy,
    resource: opts.secret,
    ...ttlOf(opts.ttl),
  });
  const v = answer.value ?? {};
  const { host, scheme, header, placeholder } = v;
  if (typeof host !== 'string' || typeof scheme !== 'string')
    throw invalid('ERR_BROKER_MALFORMED', 'the broker answered a proxy lease without a host');
  ctx.out.result(
    {
      leaseId: answer.lease.id,
      host,
      scheme,
      ...(typeof header === 'string' ? { header } : {}),
      ...(typeof placeholder === 'string' ? { placeholder } : {}),
      expiresAt: answer.lease.expiresAt,
    },
    () =>
      `${scheme}://${host}${typeof placeholder === 'string' ? `\nplaceholder ${placeholder}` : ''}\nlease ${answer.lease.id}, expires ${iso(answer.lease.expiresAt)}`,
  );
}

/** `lease postgres`: `{"leaseId","user","password","database","host","port","expiresAt"}`. */
export async function runLeasePostgres(
  ctx: CliContext,
  opts: HolderOptions & { template: string; ttl?: string },
): Promise<void> {
  const answer = await lease(ctx, opts, {
    kind: LeaseKind.postgres,
    resource: opts.template,
    ...ttlOf(opts.ttl),
  });
  const v = answer.value ?? {};
  const { user, password, database } = v;
  if (typeof user !== 'string' || typeof password !== 'string' || typeof database !== 'string')
    throw invalid('ERR_BROKER_MALFORMED', 'the broker answered a PostgreSQL lease without a login');
  ctx.out.result(
    {
      leaseId: answer.lease.id,
      user,
      password,
      database,
      ...(v['host'] === undefined ? {} : { host: v['host'] }),
      ...(v['port'] === undefined ? {} : { port: v['port'] }),
      expiresAt: answer.lease.expiresAt,
    },
    () =>
      `user ${user}\npassword ${password}\ndatabase ${database}\nlease ${answer.lease.id}, expires ${iso(answer.lease.expiresAt)}`,
  );
}

const STATES: ReadonlySet<string> = new Set(Object.values(LeaseState));

/** `lease list`: from the broker's home. */
export async function runLeaseList(
  ctx: CliContext,
  opts: { state?: string; limit: string },
): Promise<void> {
  if (opts.state !== undefined && !STATES.has(opts.state))
    throw invalid('ERR_ARGUMENT_INVALID', '`--state` is one of active, expired, revoked');
  const limit = parsePositiveInteger(opts.limit, '--limit');
  const home = await ctx.openHome();
  try {
    const leases = await home.store.brokerLeases.list({
      ...(opts.state === undefined ? {} : { state: opts.state as LeaseState }),
      limit,
    });
    ctx.out.result({ leases: leases.map(leaseJson) }, () =>
      leases.length === 0
        ? 'no leases'
        : leases
            .map(
              (l) =>
                `${l.id}  ${l.state}  ${l.kind}/${l.resource}  ${l.holder}  ${l.state === LeaseState.active ? `expires ${iso(l.expiresAt)}` : `ended ${iso(l.endedAt ?? l.expiresAt)} (${l.endReason ?? ''})`}`,
            )
            .join('\n'),
    );
  } finally {
    home.close();
  }
}

/** `lease renew ID`: the holder, over a secure channel (an operator cannot extend a lease). */
export async function runLeaseRenew(
  ctx: CliContext,
  id: string,
  opts: HolderOptions & { ttl?: string },
): Promise<void> {
  checkLeaseId(id);
  const ttl = opts.ttl === undefined ? {} : { ttlSeconds: parseDuration(opts.ttl, '--ttl') };
  const answer = await withBrokerChannel(ctx, opts, (router, channel) =>
    renewLeaseOverChannel(router, channel, id, ttl),
  );
  ctx.out.result(
    {
      leaseId: answer.lease.id,
      expiresAt: answer.lease.expiresAt,
      renewals: answer.lease.renewals,
      ...(answer.value ?? {}),
    },
    () => `renewed ${answer.lease.id} until ${iso(answer.lease.expiresAt)}`,
  );
}

/**
 * `lease revoke ID`: with `--broker`, the holder over a secure channel; without, in the broker's
 * home: the lease ends in the store at once, the revocation record is signed by `--identity` (the
 * broker's identity), and the running broker tells the lease's provider within a second
 * (`finishPending`).
 */
export async function runLeaseRevoke(
  ctx: CliContext,
  id: string,
  opts: Partial<HolderOptions> & { identity: string; reason?: string },
): Promise<void> {
  checkLeaseId(id);
  if (opts.broker !== undefined) {
    const summary = await withBrokerChannel(
      ctx,
      { ...opts, broker: opts.broker },
      (router, channel) => revokeLeaseOverChannel(router, channel, id),
    );
    ctx.out.result({ leaseId: summary.id, state: summary.state }, () => `revoked ${summary.id}`);
    return;
  }
  const home = await ctx.openHome();
  let sink: AuditLogLeaseSink | undefined;
  try {
    sink = await brokerAuditSink(home, opts.identity);
    const broker = new Broker({
      leases: home.store.brokerLeases,
      // This process grants nothing: every decision is a refusal.
      decide: () => ({
        decision: 'deny',
        lock: 'bundle',
        code: 'ERR_GATE_NO_BUNDLE',
        reasons: ['`lease revoke` grants nothing'],
        policies: [],
        bundle: null,
      }),
      providers: [],
      audit: sink,
      clock: ctx.clock,
    });
    const ended = await broker.revoke(id, opts.reason ?? 'revoked');
    ctx.out.result(
      { lease: leaseJson(ended) },
      () => `revoked ${ended.id} (${ended.endReason ?? ''})`,
    );
  } finally {
    await sink?.close();
    home.close();
  }
}

/**
 * The broker's audit sink on a home: lease records signed by `identity`'s credential key, in the
 * home's audit log (whose origin names the home's authority when it has one).
 */
export async function brokerAuditSink(home: Home, identity: string): Promise<AuditLogLeaseSink> {
  const issuer = await credentialIssuerOf(home, identity);
  const authority = await home.identities.find(DEFAULT_AUTHORITY);
  return new AuditLogLeaseSink({
    log: {
      repository: home.store.auditLog,
      origin: homeAuditOrigin(authority?.identity.identifier ?? issuer.identity.identifier),
    },
    signer: new EnforcerSigner(home.vault, issuer),
  });
}
