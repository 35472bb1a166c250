// The node as composition root (docs/spec/node.md): from one NodeConfig it opens the home, follows
// the deny-set, takes its side of secure channels (renewed from its authority), listens, runs the
// configured services behind one secure-channel listener, keeps its upstream relay registration,
// and serves health and readiness; each as a part of one Lifecycle, stopped in reverse.
import { isMandateError, type Clock, type LogFields, type Logger } from '../core/index.js';
import { DenySet } from '../credentials/index.js';
import type { Identifier, VerifiedIdentity } from '../identity/index.js';
import { randomUnit } from '../crypto/index.js';
import {
  openSecureChannel,
  TrustPolicies,
  withCredentials,
  registerRelay,
  RelayRegistration,
  RelayService,
  SecureChannelListener,
  type RelayRegistrationEvent,
  type SecureChannelOptions,
} from '../channel/index.js';
import { Router, TcpTransport, type Worker } from '../routing/index.js';
import { AuthorityBus } from './authority-bus.js';
import type { Home } from './home.js';
import {
  API,
  connectRoute,
  CredentialRenewer,
  ECHO,
  homeChannelOptions,
  listenTcp,
  parseListenAddress,
  toListener,
} from './node-runtime.js';
import { NodeServiceName, type NodeConfig } from './config.js';
import { Lifecycle, type NodeHealth, type PartHealth } from './lifecycle.js';
import { checkpointHomeLog } from './home-audit.js';
import { startHealthHttp } from './health-http.js';
import type { NodeServiceContext, RunningService } from './service.js';
import { brokerAddresses, startBroker, type BrokerNodeOptions } from './broker-node.js';
import { AUTHORITY_SERVICE_ADDRESSES, startAuthority } from './authority-node.js';
import { GATEWAY_SERVICE_ADDRESSES, startGateway } from './gateway-node.js';
import { startAdmin, type AdminNodeOptions } from './admin-node.js';

/**
 * The channel options of a long-running node. With `authority.route` (`--authority ROUTE`) the node fetches a fresh credential from the authority at ROUTE before it starts (in
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
  clock: Clock,
  home: Home,
  opts: { readonly identity: string; readonly credentialChains: readonly Uint8Array[] },
  renewal: NodeConfig['authority'],
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
  const { identity, options, credentials } = await homeChannelOptions(home, {
    ...opts,
    denySet: peerDenySet,
    clock,
    logger,
  });
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
    leadSeconds: renewal.refreshLeadSeconds,
    clock,
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
      clock,
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
          clock,
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
  const credentialRefresh = { renew: renewer.renew, leadSeconds: renewal.refreshLeadSeconds };
  return {
    options: () => ({ ...options, identityPayload: renewer.identityPayload, credentialRefresh }),
    renewer,
    bus,
  };
}

/**
 * `relay` (`--relay ROUTE --relay-name NAME`): keeps this node registered
 * as NAME at the relay node at ROUTE. Give `onConnectionClosed` to the TCP transport: the loss of
 * the relay connection ends a registration, and RelayRegistration registers again with backoff.
 * `expose` is what the node opens to its relay connection (registerRelay's option).
 */
function upstreamRelay(relay: NodeConfig['relay']) {
  const route = relay?.route;
  const name = relay?.name;
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
      expose: readonly string[] | undefined,
      onEvent: (event: RelayRegistrationEvent) => void,
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
          onEvent(event);
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

interface ServiceDefinition {
  /** The addresses the listener delivers to for this service. */
  readonly deliverTo: readonly string[];
  /**
   * Whether the service is for peers that reach the node through its upstream relay: a node whose
   * services all say no opens nothing to its relay connection (registerRelay's `expose: []`).
   */
  readonly throughRelay: boolean;
  /**
   * Whether the service's peers need no credential: the listener then admits any identity that
   * proves itself, and the service decides per message. Services the listener delivers to must
   * that do not are reached only by the peers the node's trust policy admits (see
   * {@link listenerAdmission}).
   */
  readonly admitsAnyIdentity?: boolean;
  start(ctx: NodeServiceContext): RunningService | Promise<RunningService>;
}

function serviceDefinition(name: NodeServiceName, options: StartNodeOptions): ServiceDefinition {
  switch (name) {
    case NodeServiceName.echo:
      return {
        deliverTo: [ECHO],
        throughRelay: true,
        start: ({ router }) => {
          router.registerWorker(ECHO, echoWorker);
          return { stop: () => undefined };
        },
      };
    case NodeServiceName.relay:
      // A chained relay exposes nothing to its upstream connection: its `forward_to_*` workers
      // are open to every connection already (the service opens them), and nothing else of
      // this node need be reachable through the upstream relay.
      return {
        deliverTo: [],
        throughRelay: false,
        start: ({ router, listener, logger }) => {
          const service = new RelayService(router, {
            listener,
            logger,
            // Binds and refusals the service logs itself.
            onEvent: (event) => {
              if (event.type === 'registered') logger.info('relay registered', { ...event });
            },
          });
          return {
            stop: () => {
              service.close();
            },
          };
        },
      };
    case NodeServiceName.broker:
      return {
        deliverTo: brokerAddresses(options.broker),
        throughRelay: false,
        start: (ctx) => startBroker(ctx, options.broker),
      };
    case NodeServiceName.authority:
      return {
        deliverTo: AUTHORITY_SERVICE_ADDRESSES,
        throughRelay: false,
        admitsAnyIdentity: true,
        start: startAuthority,
      };
    case NodeServiceName.gateway:
      return {
        deliverTo: GATEWAY_SERVICE_ADDRESSES,
        throughRelay: false,
        admitsAnyIdentity: true,
        start: startGateway,
      };
    case NodeServiceName.admin:
      // HTTP at `admin.listen`, nothing on the channel listener.
      return { deliverTo: [], throughRelay: false, start: (ctx) => startAdmin(ctx, options.admin) };
  }
}

/**
 * How the node's listener admits peers. When some service is open to any identity that proves
 * itself (its peers need no credential: enrollment, the gateway deciding per message), the
 * listener admits any identity, and the addresses of the other services it delivers to (for
 * credential holders only) are `restricted`: a message reaches them only from a peer that the
 * node's own trust policy admits (the listener's `admit`), so that a service open to anyone never
 * opens the others to anyone.
 */
function listenerAdmission(
  definitions: readonly { name: NodeServiceName; definition: ServiceDefinition }[],
): { readonly anyIdentity: boolean; readonly restricted: readonly string[] } {
  const listened = definitions.filter((d) => d.definition.deliverTo.length > 0);
  const anyIdentity = listened.some((d) => d.definition.admitsAnyIdentity === true);
  const restricted = anyIdentity
    ? listened
        .filter((d) => d.definition.admitsAnyIdentity !== true)
        .flatMap((d) => d.definition.deliverTo)
    : [];
  return { anyIdentity, restricted };
}

/** What {@link startNode} needs besides its config. */
export interface StartNodeOptions {
  /** Opens the node's home (the CLI's `--home`, with its vault passphrase). */
  openHome(): Promise<Home>;
  /** Reads a credential file of `credentials` (hex or raw bytes). */
  readCredential(file: string): Uint8Array;
  /** With `broker` among the services: what the broker needs from outside the config. */
  readonly broker?: BrokerNodeOptions;
  /** With `admin` among the services: what the admin service needs from outside the config. */
  readonly admin?: AdminNodeOptions;
  readonly clock: Clock;
  readonly logger: Logger;
}

/** A started node. */
export interface RunningNode {
  /** The channel listener's TCP address and route (`/ip4/H/tcp/P`, none for a wildcard host). */
  readonly listening: { readonly address: string; readonly route: string | undefined };
  /** The health server's URL, with `health.listen`. */
  readonly healthUrl: string | undefined;
  /** With `admin`: the dashboard's address carrying a fresh one-time login token. */
  dashboardUrl(): string | undefined;
  /** The node and each of its parts. */
  health(): NodeHealth;
  /**
   * Stops every part in reverse order within `config.shutdownTimeoutMs` (rejects with
   * `ERR_NODE_STOP_TIMEOUT` past it). Idempotent.
   */
  stop(): Promise<void>;
}

/**
 * Starts a node from `config`: its parts in dependency order — the home, its live deny-set, the
 * router and TCP transport, the node's side of secure channels (with `authority`: a credential
 * fetched and renewed, the authority's bus followed), the listener at `api`, each service in
 * `config.services` order, the TCP listener, the upstream relay registration, the health server.
 * When a part fails to start, the parts already started are stopped, last first, and the error
 * is thrown (a taken port, an unreachable authority, an unknown identity).
 */
export async function startNode(
  config: NodeConfig,
  options: StartNodeOptions,
): Promise<RunningNode> {
  const { clock, logger } = options;
  const definitions = config.services.map((name) => ({
    name,
    definition: serviceDefinition(name, options),
  }));
  const admission = listenerAdmission(definitions);
  const credentialChains = config.credentials.map((file) => options.readCredential(file));
  const lifecycle = new Lifecycle({ logger });
  const upstream = upstreamRelay(config.relay);
  try {
    const home = await lifecycle.start(
      'home',
      () => options.openHome(),
      (h) => {
        h.close();
      },
    );
    const watcher = await lifecycle.start(
      'deny-set',
      () => home.watchDenySet({ logger }),
      (w) => w.stop(),
      (w) => freshness(w.denySet, clock),
    );
    const router = await lifecycle.start(
      'router',
      () => new Router({ logger }),
      (r) => r.close(),
    );
    const transport = new TcpTransport(router, {
      logger,
      onConnectionClosed: upstream.onConnectionClosed,
    });
    const channels = await lifecycle.start(
      'channel-identity',
      () =>
        nodeChannelOptions(
          clock,
          home,
          { identity: config.identity, credentialChains },
          config.authority,
          logger,
          router,
          transport,
          watcher.denySet,
        ),
      async (c) => {
        await c.bus?.stop();
        await c.renewer?.stop();
      },
      (c) => (c.bus === undefined ? { ready: true } : freshness(c.options().verify.denySet, clock)),
    );
    const channelOptionsNow = channels.options;
    const deliverTo = [...new Set(definitions.flatMap((d) => d.definition.deliverTo))];
    const closed: ((channelAddress: string) => void)[] = [];
    const listener = await lifecycle.start(
      'listener',
      () => {
        const opts = channelOptionsNow();
        const verify = admission.anyIdentity
          ? { ...opts.verify, trustPolicy: TrustPolicies.anyIdentity() }
          : opts.verify;
        return new SecureChannelListener(router, {
          ...opts,
          verify,
          deliverTo,
          admit: new Map(admission.restricted.map((a) => [a, opts.verify.trustPolicy])),
          onEvent: (event) => {
            if (event.type === 'closed') for (const handler of closed) handler(event.address);
          },
        });
      },
      (l) => l.close(),
    );
    channels.renewer?.onRenewed((payload) => listener.refreshCredentials(payload));
    router.allowFromAnyConnection(API);
    const context: NodeServiceContext = {
      config,
      home,
      router,
      listener,
      denySet: channelOptionsNow().verify.denySet ?? watcher.denySet,
      bus: channels.bus,
      // With `authority`, `denySet` is the authority's, followed over its bus.
      catchUpDenySet: () => (channels.bus === undefined ? watcher.catchUp() : Promise.resolve()),
      onChannelClosed: (handler) => closed.push(handler),
      clock,
      logger,
    };
    // The services that write the home's audit log (the gateway's decisions, the broker's leases)
    // stop before this part, which then signs a last checkpoint over everything they wrote: the
    // gateway's own checkpoint at its stop comes before the broker's last records.
    if (
      config.services.includes(NodeServiceName.gateway) ||
      config.services.includes(NodeServiceName.broker)
    )
      await lifecycle.start(
        'audit-checkpoint',
        () => undefined,
        async () => {
          try {
            const treeSize = await checkpointHomeLog(home, undefined, clock);
            if (treeSize !== undefined) logger.info('audit checkpoint signed', { treeSize });
          } catch (error) {
            logger.warn('audit checkpoint not signed', {
              reason: isMandateError(error) ? error.code : 'error',
            });
          }
        },
      );
    const serviceFields: LogFields[] = [];
    const services: RunningService[] = [];
    for (const { name, definition } of definitions) {
      const service = await lifecycle.start(
        name,
        () => definition.start(context),
        (s) => s.stop(),
        (s) => s.health?.() ?? { ready: true },
      );
      services.push(service);
      if (service.listening !== undefined) serviceFields.push(service.listening);
    }
    const listening = await listenTcp(transport, config.listen);
    logger.info('listening', Object.assign({ ...listening }, ...serviceFields) as LogFields);
    const expose = definitions.some((d) => d.definition.throughRelay) ? undefined : [];
    let registered: PartHealth = { ready: false, reason: 'not registered yet' };
    await lifecycle.start(
      'relay-registration',
      () =>
        upstream.start(router, transport, channelOptionsNow, logger, expose, (event) => {
          registered =
            event.type === 'registered'
              ? { ready: true }
              : { ready: false, reason: event.type === 'failed' ? event.reason : 'lost' };
        }),
      (registration) => registration?.stop(),
      (registration) => (registration === undefined ? { ready: true } : registered),
    );
    let healthUrl: string | undefined;
    if (config.health !== undefined) {
      const health = await lifecycle.start(
        'health',
        () => startHealthHttp(parseListenAddress(config.health!.listen), () => lifecycle.health()),
        (h) => h.close(),
      );
      healthUrl = health.url;
      logger.info('health', { url: health.url });
    }
    lifecycle.running();
    return {
      listening,
      healthUrl,
      dashboardUrl: () => services.find((s) => s.dashboardUrl !== undefined)?.dashboardUrl?.(),
      health: () => lifecycle.health(),
      stop: () => lifecycle.stop(config.shutdownTimeoutMs),
    };
  } catch (error) {
    // Also when starting failed after the first fetch (e.g. the port is taken).
    await lifecycle.stop(config.shutdownTimeoutMs).catch((stopError: unknown) => {
      logger.warn('stopping after a failed start failed', { reason: String(stopError) });
    });
    throw error;
  }
}

/** A deny-set's readiness: fresh enough that peers can be checked against it. */
function freshness(denySet: DenySet | undefined, clock: Clock): PartHealth {
  if (denySet === undefined) return { ready: true };
  denySet.assertNoneRevoked([], clock.nowSeconds());
  return { ready: true };
}
