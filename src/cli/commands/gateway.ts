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
import { Broker } from '../../broker/index.js';
import {
  BrokerTimers,
  EnforcementPoint,
  leaseRecordBody,
  StoreBundleSource,
  type DenySetWatcher,
} from '../../node/index.js';
import {
  approvalSigner,
  connectMcpChannel,
  GatewayLeaseProvider,
  leasedUpstreamConfig,
  gatewayTrustPolicy,
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
import { homeAuditOrigin, homeLogKey } from './audit.js';
import { humanApprover } from './approvals.js';
import type { Home } from '../home.js';
import { parseDuration } from '../parse.js';

/** How long the gateway's bundle source may go without reading the store before it fails closed. */
const GATEWAY_BUNDLE_STALENESS_SECONDS = 10;
/** How often the gateway signs a checkpoint of its log while the log grows (and once on stop). */
const GATEWAY_CHECKPOINT_INTERVAL = '10s';

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
    .option(
      '--credential <file>',
      'a credential to present to agents, with `role=gateway` (repeatable)',
      collect,
    )
    .option(
      '--checkpoint-interval <duration>',
      'sign a checkpoint of the audit log this often while it grows, and on stop',
      GATEWAY_CHECKPOINT_INTERVAL,
    )
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
      'accept only this gateway identity (default: a holder of a credential with `role=gateway` from a trusted authority)',
    )
    .option(
      '--approver <identity>',
      "a local human identity (human=true) who answers the gateway's approval requests through the client's MCP elicitation, signed with its key",
    )
    .option(
      '--approver-credential <file>',
      "the approver's own credential; without it, this home's authority issues one at each answer",
    )
    .option('--authority <name>', 'the authority that vouches for the approver', DEFAULT_AUTHORITY)
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
  checkpointInterval: string;
}

/**
 * Signs a checkpoint of the home's log (as `mandate audit checkpoint` does, with the authority's
 * key) every `everyMs` when it grew, and once more from `stop`: records past the latest
 * checkpoint are the only ones an export can drop unnoticed, so the gateway keeps that window
 * short. A failure is logged, never fatal (the log itself is durable).
 */
function checkpointWhileGrowing(
  home: Home,
  log: AuditLog,
  everyMs: number,
  logger: Logger,
): { stop(): Promise<void> } {
  let running: Promise<void> = Promise.resolve();
  const sign = (): Promise<void> =>
    (running = running.then(async () => {
      try {
        const latest = await home.store.auditLog.latestCheckpoint();
        if (log.size <= (latest?.treeSize ?? 0)) return;
        const { signer } = await homeLogKey(home, DEFAULT_AUTHORITY);
        await log.checkpoint([signer()]);
        logger.info('audit checkpoint signed', { treeSize: log.size });
      } catch (error) {
        logger.warn('audit checkpoint not signed', {
          reason: isMandateError(error) ? error.code : 'error',
        });
      }
    }));
  const timer = setInterval(() => void sign(), everyMs);
  timer.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      await sign();
    },
  };
}

/**
 * `gateway catalog`: the upstreams' merged catalog as `{"tools":[…]}`. A leased upstream is
 * listed with its secret from this home's sealed store (the operator's own connection).
 */
export async function runGatewayCatalog(ctx: CliContext, opts: { config: string }): Promise<void> {
  const config = readConfig(opts.config);
  const logger = stderrLogger();
  const leased = config.upstreams.some((u) => u.mandate.lease !== undefined);
  const home = leased ? await ctx.openHome() : undefined;
  let upstreams: Upstream[] = [];
  try {
    upstreams = (
      await Promise.all(config.upstreams.map((u) => leasedUpstreamConfig(u, home?.secrets, logger)))
    ).map(
      (u) =>
        new Upstream(u.config, {
          restart: config.restart,
          logger: u.logger ?? logger,
          random: randomUnit,
        }),
    );
    await Promise.all(upstreams.map((u) => u.start()));
    const catalog = catalogOf(mergeUpstreamTools(upstreams.map((u) => u.tools)));
    const tools = catalog.tools.map((t) => t.descriptor);
    ctx.out.result({ tools }, () => JSON.stringify({ tools }, null, 2));
  } finally {
    await Promise.all(upstreams.map((u) => u.close()));
    home?.close();
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
  // setInterval holds at most 2^31 - 1 ms (about 24 days).
  const checkpointEveryMs = Math.min(
    parseDuration(opts.checkpointInterval, '--checkpoint-interval') * 1000,
    2 ** 31 - 1,
  );
  const logger = stderrLogger();
  const home = await ctx.openHome();
  const router = new Router({ logger });
  let checkpoints: { stop(): Promise<void> } | undefined;
  let watcher: DenySetWatcher | undefined;
  let bundles: StoreBundleSource | undefined;
  let log: AuditLog | undefined;
  let gateway: McpGateway | undefined;
  let timers: BrokerTimers | undefined;
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
    checkpoints = checkpointWhileGrowing(home, log, checkpointEveryMs, logger);
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
    // Gate 3: upstreams with `mandate.lease` get their credentials from a broker on this home —
    // `proxy` leases decided with each agent's own chain, stored with the home's leases (so
    // `mandate lease list|revoke` see them), recorded in the audit log by the gateway's identity,
    // ended by the deny-set cascade and expiry on the broker's timers.
    let broker: Broker | undefined;
    if (config.upstreams.some((u) => u.mandate.lease !== undefined)) {
      const recorder = point;
      broker = new Broker({
        leases: home.store.brokerLeases,
        decide: (chain, ask, o) => gate.decideLease(chain, ask, o),
        providers: [new GatewayLeaseProvider({ secrets: home.secrets })],
        audit: {
          record: async (event) => {
            await recorder.recordLease(leaseRecordBody(event));
          },
        },
        clock: ctx.clock,
        logger,
      });
      timers = await BrokerTimers.start({ broker, denySet, logger });
    }
    gateway = await McpGateway.start({
      config,
      gate,
      point,
      bundles,
      clock: ctx.clock,
      logger,
      ...(broker === undefined ? {} : { leases: { broker, secrets: home.secrets } }),
    });
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
    await timers?.stop();
    await router.close();
    await checkpoints?.stop();
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
  approver?: string;
  approverCredential?: string;
  authority: string;
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
    // The approver is checked now (a human of a trusted authority), and its credential is
    // fetched again at every answer (an issued one lives minutes).
    const approverName = opts.approver;
    const approverOptions = {
      authority: opts.authority,
      ...(opts.approverCredential === undefined ? {} : { credential: opts.approverCredential }),
    };
    const approver =
      approverName === undefined
        ? undefined
        : await humanApprover(home, approverName, ctx.clock.nowSeconds(), approverOptions);
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
              ? gatewayTrustPolicy()
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
        ...(approver === undefined || approverName === undefined
          ? {}
          : {
              approver: approvalSigner({
                approver: async () =>
                  (await humanApprover(home, approverName, ctx.clock.nowSeconds(), approverOptions))
                    .approver,
                signer: approver.signer,
                vault: home.vault,
                clock: ctx.clock,
              }),
            }),
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
    // A line the SDK cannot read as one JSON-RPC message (a batch, `id: null`, not JSON) gets an
    // error, not silence: the client would wait for an answer that never comes.
    stdio.onerror = (error) => {
      const notJson = error instanceof SyntaxError;
      if (!notJson && error.name !== 'ZodError') {
        logger.warn('mcp client stream failed', { reason: 'error' });
        return;
      }
      void stdio
        .send({
          jsonrpc: '2.0',
          id: null,
          error: notJson
            ? { code: -32700, message: 'ERR_MCP_MESSAGE_MALFORMED: not JSON' }
            : {
                code: -32600,
                message:
                  'ERR_MCP_MESSAGE_MALFORMED: not one JSON-RPC 2.0 message (a batch, or an `id` that is not a string or a number)',
              },
        } as unknown as JSONRPCMessage)
        .catch(() => undefined);
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
