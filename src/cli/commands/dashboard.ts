import type { Command } from 'commander';
import type { Clock, Logger } from '../../core/index.js';
import {
  loadNodeConfig,
  NodeServiceName,
  startNode,
  type AdminNodeOptions,
  type AdminRateLimits,
  type NodeConfig,
  type RunningNode,
} from '../../node/index.js';
import {
  builtDashboardDir,
  registerServiceNode,
  startHomeAdmin,
  untilSignal,
  type HomeAdmin,
} from '../../node/internal.js';
import type { CliContext } from '../context.js';
import type { Home } from '../home.js';
import { readBytesArgument } from '../input.js';
import { stderrLogger } from '../logging.js';
import { DEFAULT_AUTHORITY } from '../chains.js';
import { homeLogKey } from './audit.js';
import { answerApprovalAs } from './approvals.js';

// `dashboard`: parse the flags, load the node's config (an `admin` node: docs/spec/node.md),
// start the node, print its login link, wait for SIGINT or SIGTERM, stop it. The admin service
// itself is src/node/admin-node.ts.

interface DashboardOptions {
  listen: string;
  as: string;
  authority: string;
}

/** How the admin keys are spelled on `dashboard`'s command line, for errors that name them. */
const FLAG_NAMES: Readonly<Record<string, string>> = {
  'admin.listen': '--listen',
  'admin.as': '--as',
  'admin.authority': '--authority',
};

export function registerDashboardCommand(program: Command, context: () => CliContext): void {
  program
    .command('dashboard')
    .option(
      '--listen <host:port>',
      'where to serve the admin API and dashboard (loopback only)',
      '127.0.0.1:0',
    )
    .option(
      '--as <identity>',
      'the operator: a local identity; sessions are bound to it and approvals are signed with its credential key (a human the authority marked human=true can answer them)',
      DEFAULT_AUTHORITY,
    )
    .option(
      '--authority <name>',
      "the authority whose key signs this home's log checkpoints",
      DEFAULT_AUTHORITY,
    )
    .description(
      'serve the admin API and the dashboard over this home until SIGINT or SIGTERM; prints `dashboard: URL` with a one-time login token',
    )
    .action((opts: DashboardOptions) => runDashboard(context(), opts));
}

/**
 * What the node's admin service takes from the CLI: the home's checkpoint key (`audit`
 * commands') and the approval answer of `approvals approve|deny`.
 */
export function adminNodeOptions(): AdminNodeOptions {
  return {
    logKey: async (home, authority) => (await homeLogKey(home, authority)).verifier,
    answerApproval: (home, answer) =>
      answerApprovalAs(home, {
        id: answer.id,
        decision: answer.decision,
        reason: answer.reason,
        as: answer.operator,
        authority: answer.authority,
        nowSeconds: answer.nowSeconds,
      }),
  };
}

/** The admin API and dashboard over an open home (the admin service's own, for tests). */
export function startHomeDashboard(
  home: Home,
  options: {
    readonly listen?: { readonly host?: string; readonly port?: number };
    readonly as: string;
    readonly authority: string;
    readonly clock: Clock;
    readonly logger: Logger;
    readonly dashboardDir?: string;
    readonly streamPollMs?: number;
    readonly rateLimits?: Partial<AdminRateLimits>;
  },
): Promise<HomeAdmin> {
  return startHomeAdmin(home, { ...adminNodeOptions(), ...options });
}

/**
 * Starts `config`'s node with the CLI's home, credentials and admin options, and prints its
 * dashboard link: one line on stdout, whatever --json says (a launcher reads it).
 */
export async function startNodeWithDashboard(
  ctx: CliContext,
  config: NodeConfig,
  logger: Logger,
  options: {
    readonly openHome?: () => Promise<Home>;
    readonly broker?: Parameters<typeof startNode>[1]['broker'];
    /** Print the `dashboard: URL` line now (default); else the caller does: {@link announceDashboard}. */
    readonly announce?: boolean;
  } = {},
): Promise<RunningNode> {
  const node = await startNode(config, {
    openHome: options.openHome ?? (() => ctx.openHome()),
    readCredential: (file) => readBytesArgument(file, 'credential'),
    admin: adminNodeOptions(),
    ...(options.broker === undefined ? {} : { broker: options.broker }),
    clock: ctx.clock,
    logger,
  });
  if (options.announce !== false) announceDashboard(ctx, node);
  return node;
}

/** Prints `dashboard: URL` (a fresh one-time login token) on stdout, if the node serves one. */
export function announceDashboard(ctx: CliContext, node: RunningNode): void {
  const url = node.dashboardUrl();
  if (url === undefined) return;
  if (builtDashboardDir() === undefined)
    ctx.out.note('note: the dashboard is not built (`npm run build`): serving the API only');
  process.stdout.write(`dashboard: ${url}\n`);
}

/** `dashboard`: a node with the `admin` service only, as `--authority`, until a signal. */
export async function runDashboard(ctx: CliContext, opts: DashboardOptions): Promise<void> {
  const config = loadNodeConfig({
    env: process.env,
    flags: {
      // The node's own channel side: the authority, on a loopback port of its own.
      identity: opts.authority,
      listen: '127.0.0.1:0',
      services: [NodeServiceName.admin],
      admin: { listen: opts.listen, as: opts.as, authority: opts.authority },
    },
    flagNames: FLAG_NAMES,
  });
  // A single-service node: refused on a home `up` serves, and registered so `up` refuses it.
  const registration = registerServiceNode(ctx.homeDir);
  try {
    const logger = stderrLogger();
    const node = await startNodeWithDashboard(ctx, config, logger);
    const signal = await untilSignal();
    logger.info('dashboard stopping', { signal });
    await node.stop();
  } finally {
    registration.release();
  }
}
