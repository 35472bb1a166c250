import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import type { Clock, Logger } from '../../core/index.js';
import { invalid } from '../../core/internal.js';
import { formatNoteVerifierKey } from '../../audit/index.js';
import { AdminAuth, startAdminHttp, type AdminHttp } from '../../node/index.js';
import type { CliContext } from '../context.js';
import type { Home } from '../home.js';
import { stderrLogger } from '../logging.js';
import { untilSignal } from '../node-runtime.js';
import { DEFAULT_AUTHORITY } from '../chains.js';
import { homeLogKey } from './audit.js';
import { answerApprovalAs } from './approvals.js';

interface DashboardOptions {
  listen: string;
  as: string;
  authority: string;
}

export function registerDashboardCommand(program: Command, context: () => CliContext): void {
  program
    .command('dashboard')
    .option('--listen <host:port>', 'where to serve the admin API and dashboard', '127.0.0.1:0')
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
 * The built dashboard: `dist/dashboard` beside the compiled CLI, or, when the CLI runs from
 * source, the one `npm run build` wrote; `undefined` when it is not built.
 */
export function builtDashboardDir(): string | undefined {
  // From dist/cli/commands: dist/dashboard; from src/cli/commands: the checkout's dist/dashboard.
  const twoUp = new URL('../../', import.meta.url);
  for (const url of [new URL('dashboard/', twoUp), new URL('../dist/dashboard/', twoUp)]) {
    const dir = fileURLToPath(url);
    if (existsSync(`${dir}index.html`)) return dir;
  }
  return undefined;
}

/**
 * The admin API and dashboard over a home's data (what `mandate up` will host too): members,
 * trail and proofs from the store, approvals answered through `approvals approve|deny`'s code
 * path as the operator `as`.
 */
export async function startHomeDashboard(
  home: Home,
  options: {
    readonly listen?: { readonly host?: string; readonly port?: number };
    readonly as: string;
    readonly authority: string;
    readonly clock: Clock;
    readonly logger: Logger;
    readonly dashboardDir?: string;
    readonly streamPollMs?: number;
  },
): Promise<{ readonly http: AdminHttp; readonly logKey: string }> {
  const operator = (await home.identities.get(options.as)).identity;
  const key = await homeLogKey(home, options.authority);
  const dashboardDir = options.dashboardDir ?? builtDashboardDir();
  const http = await startAdminHttp({
    auth: new AdminAuth({ operator, clock: options.clock }),
    clock: options.clock,
    logger: options.logger,
    ...(options.listen === undefined ? {} : { listen: options.listen }),
    ...(dashboardDir === undefined ? {} : { dashboardDir }),
    ...(options.streamPollMs === undefined ? {} : { streamPollMs: options.streamPollMs }),
    data: {
      auditLog: home.store.auditLog,
      logKey: key.verifier,
      members: () => home.store.authority.listMembers(),
      names: async () => {
        const out = new Map<string, string>();
        for (let offset = 0; ; offset += 1000) {
          const page = await home.store.identities.listIdentities({ limit: 1000, offset });
          for (const row of page) if (row.name !== null) out.set(row.identifier, row.name);
          if (page.length < 1000) return out;
        }
      },
      denySet: (now) => home.store.denySet.snapshot(now),
      approvals: home.store.approvals,
      leases: home.store.brokerLeases,
      answerApproval: (request) =>
        answerApprovalAs(home, {
          id: request.id,
          decision: request.decision,
          reason: request.reason,
          as: request.operator,
          authority: options.authority,
          nowSeconds: options.clock.nowSeconds(),
        }),
    },
  });
  return { http, logKey: formatNoteVerifierKey(key.verifier) };
}

/** The address a person opens: a fresh one-time token, and the log key to pin, in the fragment. */
export function dashboardLoginUrl(http: AdminHttp, logKey: string): string {
  return `${http.loginUrl()}&key=${encodeURIComponent(logKey)}`;
}

/** `HOST:PORT` (IPv6 in brackets); port 0 picks a free one. */
export function parseListen(text: string): { host: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(text);
  const port = Number(match?.[3]);
  if (match === null || port > 65_535)
    throw invalid(
      'ERR_ARGUMENT_INVALID',
      `\`--listen\` is HOST:PORT, not \`${text.slice(0, 100)}\``,
    );
  return { host: match[1] ?? match[2]!, port };
}

/** `dashboard`. */
export async function runDashboard(ctx: CliContext, opts: DashboardOptions): Promise<void> {
  const listen = parseListen(opts.listen);
  const logger = stderrLogger();
  const home = await ctx.openHome();
  try {
    const { http, logKey } = await startHomeDashboard(home, {
      listen,
      as: opts.as,
      authority: opts.authority,
      clock: ctx.clock,
      logger,
    });
    try {
      if (builtDashboardDir() === undefined)
        ctx.out.note('note: the dashboard is not built (`npm run build`): serving the API only');
      // One line on stdout, whatever --json says: a launcher reads it.
      process.stdout.write(`dashboard: ${dashboardLoginUrl(http, logKey)}\n`);
      const signal = await untilSignal();
      logger.info('dashboard stopping', { signal });
    } finally {
      await http.close();
    }
  } finally {
    home.close();
  }
}
