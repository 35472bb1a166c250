import { credentialIssuerOf } from '../home.js';
import type { Command } from 'commander';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { Logger } from '../../core/index.js';
import { isMandateError } from '../../core/index.js';
import { invalid } from '../../core/internal.js';
import { randomUnit } from '../../crypto/index.js';
import { ChainVerifier, decodeChain } from '../../credentials/index.js';
import {
  prepareChannelIdentity,
  SecureChannelListener,
  TrustPolicies,
} from '../../channel/index.js';
import { Router, TcpTransport } from '../../routing/index.js';
import { Gate } from '../../gates/index.js';
import { AuditLog, EnforcerSigner } from '../../audit/index.js';
import { EnforcementPoint, StoreBundleSource, type DenySetWatcher } from '../../node/index.js';
import {
  connectMcpChannel,
  mergeUpstreamTools,
  catalogOf,
  McpChannelListener,
  McpGateway,
  parseGatewayConfigText,
  Upstream,
  type GatewayConfig,
} from '../../mcp/index.js';
import type { CliContext } from '../context.js';
import { readBytesArgument, readTextArgument } from '../input.js';
import { stderrLogger } from '../logging.js';
import { DEFAULT_AUTHORITY } from '../chains.js';
import { collect } from '../parse.js';
import {
  API,
  channelOptions,
  connectRoute,
  listenTcp,
  toListener,
  untilSignal,
} from '../node-runtime.js';
import { homeAuditOrigin } from './audit.js';

/** How long the gateway's bundle source may go without reading the store before it fails closed. */
const GATEWAY_BUNDLE_STALENESS_SECONDS = 10;

function readConfig(file: string): GatewayConfig {
  return parseGatewayConfigText(readTextArgument(file, 'gateway configuration'));
}

export function registerGatewayCommands(program: Command, context: () => CliContext): void {
  const gateway = program
    .command('gateway')
    .description('the MCP gateway: gates 1 and 2 in front of real MCP servers (docs/spec/mcp.md)');
  gateway
    .command('start')
    .requiredOption('--config <file>', 'the gateway configuration (`mcpServers` + `mandate` keys)')
    .option('--listen <host:port>', 'where agents connect (default: the config’s `mandate.listen`)')
    .option(
      '--identity <name>',
      'the local identity of the gateway: its channels and its countersignatures (default: the config’s `mandate.identity`)',
    )
    .option('--credential <file>', 'a credential to present to agents (repeatable)', collect)
    .description('run the gateway until SIGINT or SIGTERM (logs on stderr)')
    .action((opts: GatewayStartOptions) => runGatewayStart(context(), opts));
  gateway
    .command('catalog')
    .requiredOption('--config <file>', 'the gateway configuration')
    .description(
      'start the upstreams, print their merged tool catalog, stop: sign it into the bundle with `policy publish --catalog`',
    )
    .action((opts: { config: string }) => runGatewayCatalog(context(), opts));

  program
    .command('mcp')
    .description('MCP clients and Mandate')
    .command('connect')
    .argument('<route>', 'the gateway, e.g. /ip4/127.0.0.1/tcp/4400')
    .requiredOption('--identity <name>', 'the local identity the agent acts as')
    .requiredOption('--credential <file>', 'its delegation chain (or root credential)')
    .option(
      '--gateway <identifier>',
      'accept only this gateway identity (default: any credential holder of a trusted authority)',
    )
    .description(
      'a stdio MCP server for an unmodified MCP client: forwards to the gateway over a secure channel, signing every tool call',
    )
    .action((route: string, opts: McpConnectOptions) => runMcpConnect(context(), route, opts));
}

interface GatewayStartOptions {
  config: string;
  listen?: string;
  identity?: string;
  credential?: string[];
}

/** `gateway catalog`: the upstreams' merged catalog as `{"tools":[…]}`. */
export async function runGatewayCatalog(ctx: CliContext, opts: { config: string }): Promise<void> {
  const config = readConfig(opts.config);
  const logger = stderrLogger();
  const upstreams = config.upstreams.map(
    (u) => new Upstream(u, { restart: config.restart, logger, random: randomUnit }),
  );
  try {
    await Promise.all(upstreams.map((u) => u.start()));
    const catalog = catalogOf(mergeUpstreamTools(upstreams.map((u) => u.tools)));
    const tools = catalog.tools.map((t) => t.descriptor);
    ctx.out.result({ tools }, () => JSON.stringify({ tools }, null, 2));
  } finally {
    await Promise.all(upstreams.map((u) => u.close()));
  }
}

/** `gateway start`: the gateway on this home, until SIGINT or SIGTERM. */
export async function runGatewayStart(ctx: CliContext, opts: GatewayStartOptions): Promise<void> {
  const config = readConfig(opts.config);
  const listen = opts.listen ?? config.listen;
  const identity = opts.identity ?? config.identity;
  if (listen === undefined)
    throw invalid('ERR_ARGUMENT_INVALID', 'give `--listen` or the config’s `mandate.listen`');
  if (identity === undefined)
    throw invalid('ERR_ARGUMENT_INVALID', 'give `--identity` or the config’s `mandate.identity`');
  const logger = stderrLogger();
  const home = await ctx.openHome();
  const router = new Router({ logger });
  let watcher: DenySetWatcher | undefined;
  let bundles: StoreBundleSource | undefined;
  let log: AuditLog | undefined;
  let gateway: McpGateway | undefined;
  try {
    watcher = await home.watchDenySet({ logger });
    const live = watcher;
    const denySet = watcher.denySet;
    const authorities = await home.trustedAuthorities();
    bundles = await StoreBundleSource.start({
      repository: home.store.policyBundles,
      authorities: () => home.trustedAuthorities(),
      maxStalenessSeconds: GATEWAY_BUNDLE_STALENESS_SECONDS,
      clock: ctx.clock,
      logger,
    });
    const gate = new Gate({ bundles, denySet });
    const authority = await home.identities.get(DEFAULT_AUTHORITY);
    log = await AuditLog.open({
      repository: home.store.auditLog,
      origin: homeAuditOrigin(authority.identity.identifier),
    });
    const point = await EnforcementPoint.open({
      enforcement: {
        gate,
        bundles,
        approvals: home.store.approvals,
        budgets: home.store.budgets,
        denySet,
        authorities,
      },
      chains: new ChainVerifier({ authorities, denySet }),
      authorities,
      log,
      trail: home.store.auditTrail,
      signer: new EnforcerSigner(home.vault, await credentialIssuerOf(home, identity)),
      // A revocation committed on this home before a call is seen by that call, not a poll later.
      catchUp: () => live.catchUp(),
    });
    gateway = await McpGateway.start({ config, gate, point, bundles, clock: ctx.clock, logger });
    const started = gateway;
    const mcp = new McpChannelListener(router, {
      maxMessageBytes: config.maxMessageBytes,
      logger,
      onSession: (session) => {
        started.connect(session).catch((error: unknown) => {
          logger.warn('mcp session failed', {
            reason: isMandateError(error) ? error.code : 'error',
          });
        });
      },
    });
    const { options } = await channelOptions(
      ctx,
      home,
      { identity, ...(opts.credential === undefined ? {} : { credential: opts.credential }) },
      logger,
      denySet,
    );
    const listener = new SecureChannelListener(router, {
      ...options,
      // Any verified identity may open a session: the gateway decides per message from the
      // chains that still stand (a call after a revocation is refused, not silently dropped).
      verify: { ...options.verify, denySet, trustPolicy: TrustPolicies.anyIdentity() },
      deliverTo: [mcp.address],
      onEvent: (event) => {
        if (event.type === 'closed') mcp.channelClosed(event.address);
      },
    });
    router.allowFromAnyConnection(API);
    const transport = new TcpTransport(router, { logger });
    logger.info('gateway listening', {
      ...(await listenTcp(transport, listen)),
      upstreams: gateway.upstreams.map((u) => u.name).join(','),
    });
    const signal = await untilSignal();
    logger.info('stopping', { signal });
    await listener.close();
    await mcp.close();
  } finally {
    await gateway?.close();
    await router.close();
    await log?.close();
    await bundles?.stop();
    await watcher?.stop();
    home.close();
  }
}

interface McpConnectOptions {
  identity: string;
  credential: string;
  gateway?: string;
}

/**
 * `mcp connect ROUTE`: an MCP server on stdin/stdout for an unmodified client. Every message is
 * forwarded over one secure channel to the gateway at ROUTE, opened as `--identity` presenting
 * the `--credential` chain; each `tools/call` is signed as that identity on its way. Logs go to
 * stderr only (stdout is the MCP stream). Ends when the client closes stdin or the channel closes.
 */
export async function runMcpConnect(
  ctx: CliContext,
  route: string,
  opts: McpConnectOptions,
): Promise<void> {
  const logger: Logger = stderrLogger();
  const home = await ctx.openHome();
  const router = new Router({ logger });
  try {
    const chain = readBytesArgument(opts.credential, 'credential');
    decodeChain(chain);
    const known = await home.identities.get(opts.identity);
    if (known.primaryKeyId === null)
      throw invalid(
        'ERR_IDENTITY_NOT_LOCAL',
        `identity \`${opts.identity}\` has no key in this vault`,
      );
    const authorities = await home.trustedAuthorities({ forIdentity: known.identity.identifier });
    const me = await prepareChannelIdentity(home.vault, {
      identity: known.identity,
      primaryKeyId: known.primaryKeyId,
      chains: [chain],
      nowSeconds: ctx.clock.nowSeconds(),
    });
    const denySet = await home.denySet(ctx.clock.nowSeconds());
    const transport = new TcpTransport(router, { logger });
    const upstream = await connectMcpChannel(
      router,
      toListener(connectRoute(transport, route)),
      {
        ...me,
        verify: {
          authorities,
          trustPolicy:
            opts.gateway === undefined
              ? TrustPolicies.credentialHolder()
              : TrustPolicies.identifier(opts.gateway as `I${string}`),
          denySet,
        },
        clock: ctx.clock,
        logger,
      },
      {
        signing: {
          vault: home.vault,
          issuer: await credentialIssuerOf(home, opts.identity),
          chain,
          clock: ctx.clock,
        },
      },
    );
    const stdio = new StdioServerTransport();
    const done = new Promise<void>((resolve) => {
      upstream.onclose = resolve;
      stdio.onclose = resolve;
      process.stdin.once('end', resolve);
    });
    upstream.onmessage = (message: JSONRPCMessage) => {
      void stdio.send(message).catch(() => undefined);
    };
    upstream.onerror = (error) => {
      logger.warn('mcp gateway message refused', { reason: error.message });
    };
    stdio.onmessage = (message: JSONRPCMessage) => {
      upstream.send(message).catch((error: unknown) => {
        logger.warn('mcp message not forwarded', {
          reason: isMandateError(error) ? error.code : 'error',
        });
        // A request that cannot go out gets an error, not silence.
        if ('id' in message && 'method' in message)
          void stdio
            .send({
              jsonrpc: '2.0',
              id: message.id,
              error: {
                code: -32603,
                message: isMandateError(error)
                  ? `${error.code}: ${error.message}`
                  : 'not forwarded',
              },
            })
            .catch(() => undefined);
      });
    };
    await upstream.start();
    await stdio.start();
    logger.info('mcp connected', { gateway: upstream.peer.identifier });
    await done;
    await upstream.close();
    await stdio.close();
  } finally {
    await router.close();
    home.close();
  }
}
