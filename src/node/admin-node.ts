// The admin API and the dashboard as a node service (docs/spec/admin.md, docs/spec/node.md): the
// home's members, delegation graph, trail with proofs, approvals and leases, served at
// `admin.listen` to sessions bound to the operator `admin.as`.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Clock, Logger } from '../core/index.js';
import { invalid } from '../core/internal.js';
import type { Identifier } from '../identity/index.js';
import type { ApprovalRecord } from '../gates/index.js';
import { formatNoteVerifierKey, type NoteVerifierKey } from '../audit/index.js';
import { AdminAuth, type AdminRateLimits } from './admin-auth.js';
import { startAdminHttp, type AdminHttp } from './admin-http.js';
import type { Home } from './home.js';
import { envNameOf, type NodeConfig } from './config.js';
import { parseListenAddress } from './node-runtime.js';
import type { NodeServiceContext, RunningService } from './service.js';

/** An approval answered from the dashboard, as the operator. */
export interface AdminApprovalAnswer {
  readonly id: string;
  readonly decision: 'approve' | 'deny';
  readonly reason: string;
  readonly operator: Identifier;
  /** The authority that issues the operator's credential (`admin.authority`). */
  readonly authority: string;
  readonly nowSeconds: number;
}

/** What the admin service needs besides the node's config (`admin` in it). */
export interface AdminNodeOptions {
  /** The key the home's log checkpoints are signed with: `authority`'s (`audit` commands' key). */
  logKey(home: Home, authority: string): Promise<NoteVerifierKey>;
  /** Answers an approval as the operator: the code path of `approvals approve|deny`. */
  answerApproval(home: Home, answer: AdminApprovalAnswer): Promise<ApprovalRecord>;
  /** The built dashboard (default {@link builtDashboardDir}); without one, the API only. */
  readonly dashboardDir?: string;
  /** How often the live stream looks for appended records (default 500 ms). */
  readonly streamPollMs?: number;
  /** Limits on the login endpoints (default `DEFAULT_ADMIN_RATE_LIMITS`, each one not given). */
  readonly rateLimits?: Partial<AdminRateLimits>;
}

/**
 * The built dashboard: `dist/dashboard` beside the compiled node, or, when the node runs from
 * source, the one `npm run build` wrote; `undefined` when it is not built.
 */
export function builtDashboardDir(): string | undefined {
  // From dist/node: dist/dashboard; from src/node: the checkout's dist/dashboard.
  const oneUp = new URL('../', import.meta.url);
  for (const url of [new URL('dashboard/', oneUp), new URL('../dist/dashboard/', oneUp)]) {
    const dir = fileURLToPath(url);
    if (existsSync(`${dir}index.html`)) return dir;
  }
  return undefined;
}

/** A running admin API over a home, with the checkpoint key to pin (`NAME+KEYID+KEY`). */
export interface HomeAdmin {
  readonly http: AdminHttp;
  readonly logKey: string;
}

/**
 * The admin API and dashboard over a home's data: members, trail and proofs from the store,
 * approvals answered as the operator `as` (a local identity; sessions are bound to it).
 */
export async function startHomeAdmin(
  home: Home,
  options: AdminNodeOptions & {
    readonly listen?: { readonly host?: string; readonly port?: number };
    readonly as: string;
    readonly authority: string;
    readonly clock: Clock;
    readonly logger: Logger;
  },
): Promise<HomeAdmin> {
  const operator = (await home.identities.get(options.as)).identity;
  const key = await options.logKey(home, options.authority);
  const dashboardDir = options.dashboardDir ?? builtDashboardDir();
  const http = await startAdminHttp({
    auth: new AdminAuth({
      operator,
      clock: options.clock,
      logger: options.logger,
      ...(options.rateLimits === undefined ? {} : { rateLimits: options.rateLimits }),
    }),
    clock: options.clock,
    logger: options.logger,
    ...(options.listen === undefined ? {} : { listen: options.listen }),
    ...(dashboardDir === undefined ? {} : { dashboardDir }),
    ...(options.streamPollMs === undefined ? {} : { streamPollMs: options.streamPollMs }),
    data: {
      auditLog: home.store.auditLog,
      logKey: key,
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
        options.answerApproval(home, {
          ...request,
          authority: options.authority,
          nowSeconds: options.clock.nowSeconds(),
        }),
    },
  });
  return { http, logKey: formatNoteVerifierKey(key) };
}

/** The address a person opens: a fresh one-time token, and the log key to pin, in the fragment. */
export function dashboardLoginUrl(admin: HomeAdmin): string {
  return `${admin.http.loginUrl()}&key=${encodeURIComponent(admin.logKey)}`;
}

/**
 * Refuses an `admin.as` or `admin.authority` that names no identity of `home` — the config's
 * mistake (a typo in MANDATE_ADMIN_AS, say), not a lookup that failed — unless it is among
 * `made` (the identities a set-up about to run makes: `up` on a fresh home).
 */
export async function assertAdminIdentities(
  home: Home,
  config: Pick<NodeConfig, 'admin'>,
  made: readonly string[] = [],
): Promise<void> {
  for (const [key, name] of [
    ['admin.as', config.admin.as],
    ['admin.authority', config.admin.authority],
  ] as const) {
    if (!made.includes(name) && (await home.identities.find(name)) === undefined)
      throw invalid(
        'ERR_NODE_CONFIG_INVALID',
        `node config: \`${key}\` names \`${name}\`, which is no identity of this home (set by the config file, ${envNameOf(key)} or a flag); \`mandate identity list\` shows the names it has`,
      );
  }
}

/**
 * The admin service of a node: {@link startHomeAdmin} over the node's home at `admin.listen`, as
 * `admin.as`, with `admin.authority`'s checkpoint key; `dashboardUrl()` issues a login link.
 */
export async function startAdmin(
  node: NodeServiceContext,
  options: AdminNodeOptions | undefined,
): Promise<RunningService> {
  if (options === undefined)
    throw invalid(
      'ERR_NODE_CONFIG_INVALID',
      'node config: `services` names `admin`, but the node was started without its options',
    );
  const { config, home, clock, logger } = node;
  await assertAdminIdentities(home, config);
  const admin = await startHomeAdmin(home, {
    ...options,
    listen: parseListenAddress(config.admin.listen),
    as: config.admin.as,
    authority: config.admin.authority,
    clock,
    logger,
  });
  return {
    stop: () => admin.http.close(),
    dashboardUrl: () => dashboardLoginUrl(admin),
  };
}
