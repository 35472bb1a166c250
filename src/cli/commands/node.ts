import type { Command } from 'commander';
import {
  loadNodeConfig,
  NodeServiceName,
  startNode,
  type NodeConfig,
  type RunningNode,
  type StartNodeOptions,
} from '../../node/index.js';
import type { Logger } from '../../core/index.js';
import { registerServiceNode, untilSignal } from '../../node/internal.js';
import type { CliContext } from '../context.js';
import { readBytesArgument } from '../input.js';
import { stderrLogger } from '../logging.js';
import { collect, parseDuration } from '../parse.js';

// `node start`, `relay start` (and `broker start`): parse the flags, load the node's config
// (defaults < --config FILE < MANDATE_* < flags; docs/spec/node.md), start the node, wait for
// SIGINT or SIGTERM, stop it. The node itself is composed in src/node/node.ts.

/** The flags of a node command, as commander gives them. */
export interface NodeStartOptions {
  config?: string;
  listen?: string;
  identity?: string;
  credential?: string[];
  relay?: string;
  relayName?: string;
  authority?: string;
  refreshLead?: string;
  maxStaleness?: string;
  health?: string;
  shutdownTimeout?: string;
}

/** How each config key is spelled on the command line, for errors that name it. */
const FLAG_NAMES: Readonly<Record<string, string>> = {
  listen: '--listen',
  identity: '--identity',
  credentials: '--credential',
  'relay.route': '--relay',
  'relay.name': '--relay-name',
  'authority.route': '--authority',
  'authority.refreshLeadSeconds': '--refresh-lead',
  'authority.maxStalenessSeconds': '--max-staleness',
  'health.listen': '--health',
  shutdownTimeoutMs: '--shutdown-timeout',
  'broker.http': '--http',
  'broker.postgresFile': '--postgres-file',
  'broker.postgresRolePrefix': '--postgres-role-prefix',
  'broker.proxyBindings': '--proxy-bindings',
  'authorityService.credentialTtlSeconds': '--credential-ttl',
  'gateway.config': '--config',
  'gateway.checkpointIntervalSeconds': '--checkpoint-interval',
};

/** `value` without its undefined keys, or undefined when none is left. */
export function given(value: Record<string, unknown>): Record<string, unknown> | undefined {
  const kept = Object.entries(value).filter(([, v]) => v !== undefined);
  return kept.length === 0 ? undefined : Object.fromEntries(kept);
}

/** The flags as a config layer (only the flags given). */
function flagLayer(
  opts: NodeStartOptions,
  extra: Record<string, unknown>,
): Record<string, unknown> {
  const duration = (text: string | undefined, flag: string): number | undefined =>
    text === undefined ? undefined : parseDuration(text, flag);
  const timeout = duration(opts.shutdownTimeout, '--shutdown-timeout');
  return {
    ...given({
      listen: opts.listen,
      identity: opts.identity,
      credentials: opts.credential,
      relay: given({ route: opts.relay, name: opts.relayName }),
      authority: given({
        route: opts.authority,
        refreshLeadSeconds: duration(opts.refreshLead, '--refresh-lead'),
        maxStalenessSeconds: duration(opts.maxStaleness, '--max-staleness'),
      }),
      health: given({ listen: opts.health }),
      shutdownTimeoutMs: timeout === undefined ? undefined : timeout * 1000,
    }),
    ...extra,
  };
}

/** The node's config from `--config`, the environment and the flags; refused before anything starts. */
export function nodeConfigOf(
  opts: NodeStartOptions,
  extra: Record<string, unknown> = {},
): NodeConfig {
  return loadNodeConfig({
    ...(opts.config === undefined ? {} : { file: opts.config }),
    env: process.env,
    flags: flagLayer(opts, extra),
    flagNames: FLAG_NAMES,
  });
}

/** Starts the node, waits for SIGINT or SIGTERM, and stops it within its shutdown bound. */
export async function runNode(
  ctx: CliContext,
  config: NodeConfig,
  options: Partial<Pick<StartNodeOptions, 'broker'>> = {},
  onStarted?: (node: RunningNode, logger: Logger) => void,
): Promise<void> {
  // Refused on a home a whole node (`mandate up`) serves, which would run its own services
  // beside these; and registered until stopped, so that an `up` started later is refused too.
  const registration = registerServiceNode(ctx.homeDir);
  try {
    const logger = stderrLogger();
    const node = await startNode(config, {
      ...options,
      openHome: () => ctx.openHome(),
      readCredential: (file) => readBytesArgument(file, 'credential'),
      clock: ctx.clock,
      logger,
    });
    onStarted?.(node, logger);
    const signal = await untilSignal();
    logger.info('stopping', { signal });
    await node.stop();
    logger.info('stopped');
  } finally {
    registration.release();
  }
}

/** The options `node start`, `relay start` and `broker start` share. */
export function nodeOptions(command: Command, relayHelp: string): void {
  command
    .option('--config <file>', 'a JSON node config (see docs/spec/node.md); flags win over it')
    .option('--identity <name>', 'the local identity of this node')
    .option('--credential <file>', 'a credential to present (repeatable)', collect)
    .option('--relay <route>', relayHelp)
    .option('--relay-name <name>', 'the name to register (needs a credential with relay=NAME)')
    .option(
      '--authority <route>',
      'fetch credentials from the authority node at this route (`authority start`) and renew them before they expire; follow its deny-set and policy bundles',
    )
    .option(
      '--refresh-lead <duration>',
      'with --authority: renew this long before the credentials expire (default 60s)',
    )
    .option(
      '--max-staleness <duration>',
      'with --authority: refuse every peer once the authority has been silent this long (default 10s)',
    )
    .option('--health <host:port>', 'serve /healthz and /readyz here (loopback only)')
    .option(
      '--shutdown-timeout <duration>',
      'give up waiting for a clean stop after this long (default 10s)',
    );
}

export function registerNodeCommands(program: Command, context: () => CliContext): void {
  const relayStart = program
    .command('relay')
    .description('relays: reach nodes that cannot be dialled')
    .command('start')
    .description('run a relay node until SIGINT or SIGTERM (logs on stderr)')
    .option('--listen <host:port>', 'where to listen, e.g. 127.0.0.1:4100');
  nodeOptions(relayStart, 'register this relay at an upstream relay node at this route (chaining)');
  relayStart.action((opts: NodeStartOptions) =>
    runNode(context(), nodeConfigOf(opts, { services: [NodeServiceName.relay] })),
  );

  const nodeStart = program
    .command('node')
    .description('a node with a channel listener (`api`) and the services of its config')
    .command('start')
    .description(
      'run a node (by default with an echo service, `echo`) until SIGINT or SIGTERM (logs on stderr)',
    )
    .option('--listen <host:port>', 'where to listen, e.g. 127.0.0.1:4000');
  nodeOptions(nodeStart, 'register at the relay node at this route, e.g. /ip4/127.0.0.1/tcp/4100');
  nodeStart.action((opts: NodeStartOptions) => runNode(context(), nodeConfigOf(opts)));
}
