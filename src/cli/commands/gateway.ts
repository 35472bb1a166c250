import { credentialIssuerOf } from '../home.js';
import type { Command } from 'commander';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { Logger } from '../../core/index.js';
import { isMandateError } from '../../core/index.js';
import { invalid } from '../../core/internal.js';
import { randomUnit } from '../../crypto/index.js';
import { decodeChain } from '../../credentials/index.js';
import { prepareChannelIdentity, TrustPolicies } from '../../channel/index.js';
import { Router, TcpTransport } from '../../routing/index.js';
import { NodeServiceName } from '../../node/index.js';
import {
  approvalSigner,
  connectMcpChannel,
  leasedUpstreamConfig,
  gatewayTrustPolicy,
  mergeUpstreamTools,
  catalogOf,
  parseGatewayConfigText,
  Upstream,
  type GatewayConfig,
} from '../../mcp/index.js';
import type { CliContext } from '../context.js';
import { readBytesArgument, readTextArgument } from '../input.js';
import { stderrLogger } from '../logging.js';
import { DEFAULT_AUTHORITY } from '../chains.js';
import { collect, parseDuration } from '../parse.js';
import { connectRoute, toListener } from '../node-runtime.js';
import { humanApprover } from './approvals.js';
import { given, nodeConfigOf, runNode } from './node.js';

// `gateway start` composes a node with the `gateway` service (src/node/gateway-node.ts);
// `gateway catalog` and `mcp connect` are clients.

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
      'sign a checkpoint of the audit log this often while it grows, and on stop (default 10s)',
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
  checkpointInterval?: string;
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

/**
 * `gateway start`: a node with the `gateway` service (src/node/gateway-node.ts) on this home, until
 * SIGINT or SIGTERM. `--listen` and `--identity` default to the configuration's `mandate.listen`
 * and `mandate.identity`.
 */
export async function runGatewayStart(ctx: CliContext, opts: GatewayStartOptions): Promise<void> {
  const gatewayConfig = readConfig(opts.config);
  const listen = opts.listen ?? gatewayConfig.listen;
  const identity = opts.identity ?? gatewayConfig.identity;
  if (listen === undefined)
    throw invalid('ERR_ARGUMENT_INVALID', 'give `--listen` or the config’s `mandate.listen`');
  if (identity === undefined)
    throw invalid('ERR_ARGUMENT_INVALID', 'give `--identity` or the config’s `mandate.identity`');
  const config = nodeConfigOf(
    { listen, identity, ...(opts.credential === undefined ? {} : { credential: opts.credential }) },
    {
      services: [NodeServiceName.gateway],
      gateway: given({
        config: opts.config,
        checkpointIntervalSeconds:
          opts.checkpointInterval === undefined
            ? undefined
            : parseDuration(opts.checkpointInterval, '--checkpoint-interval'),
      }),
    },
  );
  const upstreams = gatewayConfig.upstreams.map((u) => u.name).join(',');
  await runNode(ctx, config, {}, (node, logger) => {
    logger.info('gateway listening', { ...node.listening, upstreams });
  });
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
