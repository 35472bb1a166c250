import type { Command } from 'commander';
import type { Logger } from '../../core/index.js';
import { invalid } from '../../core/internal.js';
import { DenySet } from '../../credentials/index.js';
import type { Identifier, VerifiedIdentity } from '../../identity/index.js';
import { randomUnit } from '../../crypto/index.js';
import {
  openSecureChannel,
  TrustPolicies,
  withCredentials,
  registerRelay,
  RelayRegistration,
  RelayService,
  SecureChannelListener,
  type SecureChannelOptions,
} from '../../channel/index.js';
import { Router, TcpTransport, type Worker } from '../../routing/index.js';
import { AuthorityBus, type DenySetWatcher } from '../../node/index.js';
import type { CliContext } from '../context.js';
import type { Home } from '../home.js';
import {
  API,
  channelOptions,
  connectRoute,
  CredentialRenewer,
  ECHO,
  listenTcp,
  parseDialRoute,
  toListener,
  untilSignal,
  type NodeOptions,
} from '../node-runtime.js';
import { stderrLogger } from '../logging.js';
import { collect, parseDuration } from '../parse.js';

const DEFAULT_REFRESH_LEAD = '60s';
const AUTHORITY_OPTION = [
  '--authority <route>',
  'fetch credentials from the authority node at this route (`authority start`) and renew them before they expire; follow its deny-set and policy bundles',
] as const;
const REFRESH_LEAD_OPTION = [
  '--refresh-lead <duration>',
  'with --authority: renew this long before the credentials expire (default 60s)',
] as const;
const DEFAULT_MAX_STALENESS = '10s';
const MAX_STALENESS_OPTION = [
  '--max-staleness <duration>',
  'with --authority: refuse every peer once the authority has been silent this long (default 10s)',
] as const;

interface RenewalOptions {
  authority?: string;
  refreshLead?: string;
  maxStaleness?: string;
}

interface Renewal {
  readonly route: string;
  readonly leadSeconds: number;
  readonly maxStalenessSeconds: number;
}

/** `--authority`, `--refresh-lead` and `--max-staleness`, checked before anything runs. */
function parseRenewal(opts: RenewalOptions): Renewal | undefined {
  if (opts.authority === undefined) {
    if (opts.refreshLead !== undefined)
      throw invalid('ERR_ARGUMENT_INVALID', '`--refresh-lead` needs `--authority`');
    if (opts.maxStaleness !== undefined)
      throw invalid('ERR_ARGUMENT_INVALID', '`--max-staleness` needs `--authority`');
    return undefined;
  }
  parseDialRoute(opts.authority);
  return {
    route: opts.authority,
    leadSeconds: parseDuration(opts.refreshLead ?? DEFAULT_REFRESH_LEAD, '--refresh-lead'),
    maxStalenessSeconds: parseDuration(
      opts.maxStaleness ?? DEFAULT_MAX_STALENESS,
      '--max-staleness',
    ),
  };
}

/**
 * The channel options of a long-running node (`node start`, `relay start`). With `--authority
 * ROUTE` the node fetches a fresh credential from the authority at ROUTE before it starts (in
 * addition to the `--credential` files; it must be a member, and the authority one of this home's
 * trust anchors) and renews it `--refresh-lead` before it expires: `options()` gives the options
 * for a channel opened now (the current credentials, and `credentialRefresh` so that the channel
 * renews in-band), and the renewer hands each renewal to the listener (`onRenewed`).
 *
 * With `--authority`, peers are also checked against the authority's deny-set rather than this
 * home's: the node follows it over the bus (AuthorityBus, docs/spec/policy.md §3), so a
 * revocation on the authority's home reaches the node's listener — new channels and open ones —
 * within about a second, and every peer is refused once the authority has been silent for
 * `--max-staleness`. This home's own deny-set (`localDenySet`) still guards the channels to the
 * authority itself.
 */
async function nodeChannelOptions(
  ctx: CliContext,
  home: Home,
  opts: NodeOptions,
  renewal: Renewal | undefined,
  logger: Logger,
  router: Router,
  transport: TcpTransport,
  localDenySet: DenySet,
): Promise<{
  options: () => SecureChannelOptions;
  renewer: CredentialRenewer | undefined;
  bus: AuthorityBus | undefined;
}> {
  const peerDenySet =
    renewal === undefined
      ? localDenySet
      : new DenySet({ maxStalenessSeconds: renewal.maxStalenessSeconds });
  const { identity, options, credentials } = await channelOptions(
    ctx,
    home,
    opts,
    logger,
    peerDenySet,
  );
  if (renewal === undefined) return { options: () => options, renewer: undefined, bus: undefined };
  // The node's own credential: an authority that enrolled this identity counts.
  const anchors = await home.trustedAuthorities({ forIdentity: identity.identifier });
  const renewer = new CredentialRenewer({
    router,
    transport,
    route: renewal.route,
    identity,
    staticKey: options.staticKey,
    identityPayload: options.identityPayload,
    fileCredentials: credentials,
    anchors,
    denySet: localDenySet,
    leadSeconds: renewal.leadSeconds,
    clock: ctx.clock,
    logger,
  });
  await renewer.start();
  // Deny-set and bundles from the authority that answered, and from no other trust anchor: a
  // second authority this home trusts must not be able to stand in for it at the route.
  const pinned = renewer.authority;
  const authority: ReadonlyMap<Identifier, VerifiedIdentity> =
    pinned === undefined ? anchors : new Map([[pinned.identifier, pinned]]);
  let bus: AuthorityBus;
  try {
    bus = await AuthorityBus.start({
      router,
      random: randomUnit,
      maxStalenessSeconds: renewal.maxStalenessSeconds,
      denySet: peerDenySet,
      authorities: () => Promise.resolve(authority),
      clock: ctx.clock,
      logger,
      // A channel that presents no credentials (the authority knows its members by identity)
      // and trusts that authority only.
      connect: (onClosed) =>
        openSecureChannel(router, toListener(connectRoute(transport, renewal.route)), {
          staticKey: options.staticKey,
          identityPayload: withCredentials(options.identityPayload, []),
          verify: {
            authorities: authority,
            knownIdentities: authority,
            trustPolicy: TrustPolicies.any(
              ...[...authority.keys()].map((id) => TrustPolicies.identifier(id)),
            ),
            denySet: localDenySet,
          },
          clock: ctx.clock,
          logger,
          onEvent: (event) => {
            if (event.type === 'closed') onClosed();
          },
        }),
    });
  } catch (error) {
    await renewer.stop();
    throw error;
  }
  const credentialRefresh = { renew: renewer.renew, leadSeconds: renewal.leadSeconds };
  return {
    options: () => ({ ...options, identityPayload: renewer.identityPayload, credentialRefresh }),
    renewer,
    bus,
  };
}

interface UpstreamOptions {
  relay?: string;
  relayName?: string;
}

/**
 * `--relay ROUTE --relay-name NAME`, on `node start` and `relay start`: keeps this node registered
 * as NAME at the relay node at ROUTE. Give `onConnectionClosed` to the TCP transport: the loss of
 * the relay connection ends a registration, and RelayRegistration registers again with backoff.
 * `expose` is what the node opens to its relay connection (registerRelay's option).
 */
function upstreamRelay(opts: UpstreamOptions) {
  const route = opts.relay;
  const name = opts.relayName;
  if ((route === undefined) !== (name === undefined)) {
    throw invalid('ERR_ARGUMENT_INVALID', '`--relay` and `--relay-name` go together');
  }
  const lost = new Map<string, () => void>();
  return {
    onConnectionClosed: (id: string): void => {
      lost.get(id)?.();
      lost.delete(id);
    },
    /** `options()` is called for each attempt: a registration made later presents fresh credentials. */
    start(
      router: Router,
      transport: TcpTransport,
      options: () => SecureChannelOptions,
      logger: Logger,
      expose?: readonly string[],
    ): RelayRegistration | undefined {
      if (route === undefined || name === undefined) return undefined;
      const registration = new RelayRegistration({
        attempt: async () => {
          const relayRoute = connectRoute(transport, route);
          const connection = relayRoute[0]?.value ?? '';
          const dropped = new Promise<void>((resolve) => lost.set(connection, resolve));
          const channel = await openSecureChannel(router, toListener(relayRoute), options());
          try {
            await registerRelay(router, {
              channel,
              connection,
              name,
              ...(expose === undefined ? {} : { expose }),
            });
          } catch (error) {
            await channel.close();
            throw error;
          }
          // The channel goes with its registration: left open on a dead connection, it would
          // keep trying to renew its credentials there.
          return { lost: dropped.finally(() => channel.close()) };
        },
        onEvent: (event) => {
          logger.info(`relay registration ${event.type}`, { ...event, name });
        },
      });
      registration.start();
      return registration;
    },
  };
}

const echoWorker: Worker = {
  async handleMessage(ctx, envelope) {
    await ctx.reply(envelope.payload);
  },
};

/**
 * What `node start` and `relay start` share: the home's channel identity (renewed from the
 * authority with `--authority`), the home's live deny-set (every channel, the listener's and the
 * node's own, checks peers against it; the relay service acts on what those channels verified),
 * a TCP transport, a listener at `api`, the optional registration at an upstream relay, and a
 * clean stop on SIGINT or SIGTERM. `serve` adds the node's own
 * services and returns how to stop them; `expose` is what the upstream registration opens.
 */
export async function runNode(
  ctx: CliContext,
  opts: NodeOptions & UpstreamOptions & RenewalOptions & { listen: string },
  role: {
    readonly deliverTo?: readonly string[];
    readonly expose?: readonly string[];
    serve(
      router: Router,
      listener: SecureChannelListener,
      logger: Logger,
      node: NodeServices,
    ): (() => void | Promise<void>) | Promise<() => void | Promise<void>>;
  },
): Promise<void> {
  const upstream = upstreamRelay(opts);
  const renewal = parseRenewal(opts);
  const logger = stderrLogger();
  const home = await ctx.openHome();
  const router = new Router({ logger });
  let renewer: CredentialRenewer | undefined;
  let watcher: DenySetWatcher | undefined;
  let bus: AuthorityBus | undefined;
  try {
    watcher = await home.watchDenySet({ logger });
    const transport = new TcpTransport(router, {
      logger,
      onConnectionClosed: upstream.onConnectionClosed,
    });
    const node = await nodeChannelOptions(
      ctx,
      home,
      opts,
      renewal,
      logger,
      router,
      transport,
      watcher.denySet,
    );
    const options = node.options;
    renewer = node.renewer;
    bus = node.bus;
    const listener = new SecureChannelListener(
      router,
      role.deliverTo === undefined ? options() : { ...options(), deliverTo: role.deliverTo },
    );
    renewer?.onRenewed((payload) => listener.refreshCredentials(payload));
    router.allowFromAnyConnection(API);
    const stopServices = await role.serve(router, listener, logger, {
      home,
      denySet: options().verify.denySet ?? watcher.denySet,
      bus,
    });
    logger.info('listening', await listenTcp(transport, opts.listen));
    const registration = upstream.start(router, transport, options, logger, role.expose);
    const signal = await untilSignal();
    logger.info('stopping', { signal });
    registration?.stop();
    await stopServices();
    await listener.close();
  } finally {
    // Also when starting failed after the first fetch (e.g. the port is taken).
    await bus?.stop();
    await renewer?.stop();
    await router.close();
    await watcher?.stop();
    home.close();
  }
}

/** What a node's services may use besides the router and listener (`serve`'s last argument). */
export interface NodeServices {
  readonly home: Home;
  /** The deny-set peers are checked against: the home's live one, or the authority's with `--authority`. */
  readonly denySet: DenySet;
  /** The authority's bus with `--authority` (its `bundles` are the gates' bundle source). */
  readonly bus: AuthorityBus | undefined;
}

/** The options `node start` and `relay start` share (`--listen` aside). */
export function nodeOptions(command: Command, relayHelp: string): void {
  command
    .requiredOption('--identity <name>', 'the local identity of this node')
    .option('--credential <file>', 'a credential to present (repeatable)', collect)
    .option('--relay <route>', relayHelp)
    .option('--relay-name <name>', 'the name to register (needs a credential with relay=NAME)')
    .option(...AUTHORITY_OPTION)
    .option(...REFRESH_LEAD_OPTION)
    .option(...MAX_STALENESS_OPTION);
}

export type NodeStartOptions = NodeOptions & UpstreamOptions & RenewalOptions & { listen: string };

export function registerNodeCommands(program: Command, context: () => CliContext): void {
  const relayStart = program
    .command('relay')
    .description('relays: reach nodes that cannot be dialled')
    .command('start')
    .description('run a relay node until SIGINT or SIGTERM (logs on stderr)')
    .requiredOption('--listen <host:port>', 'where to listen, e.g. 127.0.0.1:4100');
  nodeOptions(relayStart, 'register this relay at an upstream relay node at this route (chaining)');
  relayStart.action((opts: NodeStartOptions) => runRelayStart(context(), opts));

  const nodeStart = program
    .command('node')
    .description('a node with a channel listener (`api`) and an echo service (`echo`)')
    .command('start')
    .description('run a node until SIGINT or SIGTERM (logs on stderr)')
    .requiredOption('--listen <host:port>', 'where to listen, e.g. 127.0.0.1:4000');
  nodeOptions(nodeStart, 'register at the relay node at this route, e.g. /ip4/127.0.0.1/tcp/4100');
  nodeStart.action((opts: NodeStartOptions) => runNodeStart(context(), opts));
}

/** `relay start`: a relay node, until SIGINT or SIGTERM. */
export async function runRelayStart(ctx: CliContext, opts: NodeStartOptions): Promise<void> {
  await runNode(ctx, opts, {
    // A chained relay exposes nothing to its upstream connection: its `forward_to_*` workers
    // are open to every connection already (the service opens them), and nothing else of
    // this node need be reachable through the upstream relay.
    expose: [],
    serve: (router, listener, logger) => {
      const service = new RelayService(router, {
        listener,
        logger,
        // Binds and refusals the service logs itself.
        onEvent: (event) => {
          if (event.type === 'registered') logger.info('relay registered', { ...event });
        },
      });
      return () => {
        service.close();
      };
    },
  });
}

/** `node start`: a node with an echo service, until SIGINT or SIGTERM. */
export async function runNodeStart(ctx: CliContext, opts: NodeStartOptions): Promise<void> {
  await runNode(ctx, opts, {
    deliverTo: [ECHO],
    serve: (router) => {
      router.registerWorker(ECHO, echoWorker);
      return () => undefined;
    },
  });
}
