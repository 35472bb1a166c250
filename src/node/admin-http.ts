// The admin HTTP API and the dashboard's files (docs/spec/admin.md): read-only views of a home's
// members, delegation graph, audit trail with inclusion proofs, approvals and leases; approval
// answers as the operator; a live stream of decisions. Loopback by default and never
// unauthenticated (admin-auth.ts); cookie sessions are CSRF-checked on every state change.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { setCookie, deleteCookie } from 'hono/cookie';
import { streamSSE } from 'hono/streaming';
import {
  ErrorKind,
  isMandateError,
  systemClock,
  type Clock,
  type Logger,
  type MandateError,
} from '../core/index.js';
import { forbidden, invalid, silentLogger, unauthorized } from '../core/internal.js';
import { parseJsonNoDuplicateKeys, toBase64 } from '../encoding/index.js';
import type { Identifier } from '../identity/index.js';
import { formatConstraint, type DenySetSnapshot, type Member } from '../credentials/index.js';
import { decodeConstraintValue } from '../credentials/internal.js';
import type { ApprovalRecord, ApprovalRepository, ApprovalStatus } from '../gates/index.js';
import type { Lease, LeaseState } from '../broker/index.js';
import {
  AuditLog,
  auditRecordHash as auditHashOf,
  formatNoteVerifierKey,
  MAX_AUDIT_READ_ENTRIES,
  parseCheckpoint,
  parseNote,
  DECISION_RECORD_TYPE,
  CHAIN_REF_INVOCATION_RECORD_TYPE,
  INVOCATION_RECORD_TYPE,
  type AuditLogRepository,
  type NoteVerifierKey,
} from '../audit/index.js';
import type { TrailCall } from './audit-trail-view.js';
import { CachedAuditTrail, TrailCacheReset, type AuditTrailSnapshot } from './audit-trail-cache.js';
import { serveHttp } from './http-server.js';
import {
  AdminRateLimitedError,
  type AdminAuth,
  type AdminChallengeAnswer,
  type AdminSession,
} from './admin-auth.js';

/** The paths of the admin API. */
export const AdminPath = {
  session: '/api/session',
  login: '/api/login',
  challenge: '/api/challenge',
  logout: '/api/logout',
  agents: '/api/agents',
  graph: '/api/graph',
  audit: '/api/audit',
  logKey: '/api/log-key',
  approvals: '/api/approvals',
  leases: '/api/leases',
  events: '/api/events',
} as const;

/** The session cookie (HttpOnly, SameSite=Strict, Path=/). */
export const ADMIN_SESSION_COOKIE = 'mandate_admin';
/** The header a cookie session's state-changing request carries its CSRF token in. */
export const ADMIN_CSRF_HEADER = 'x-mandate-csrf';
/** Bound on a request body (a login, a challenge answer, an approval answer). */
const MAX_ADMIN_BODY_BYTES = 32 * 1024;
/** Most calls one audit page holds. */
const MAX_AUDIT_PAGE = 200;
/** Members one agents page holds: by default, and at most. */
const DEFAULT_AGENTS_PAGE = 100;
const MAX_AGENTS_PAGE = 1000;
/** Most live streams at once. */
const MAX_STREAMS = 32;
/** Most live streams of one session at once: no session takes every slot. */
const MAX_STREAMS_PER_SESSION = 4;
/** Decisions sent when a stream opens, from the end of the log. */
const STREAM_BACKLOG_ENTRIES = 200;

/** The read-only views and the one action the admin API is built over: narrow, so any node can supply them. */
export interface AdminDataSources {
  readonly auditLog: AuditLogRepository;
  /** The key the log's checkpoints are signed with (offered to the browser, which may pin another). */
  readonly logKey: NoteVerifierKey;
  /** The authority's members (agents and humans) with their attributes. */
  members(): Promise<readonly Member[]>;
  /** Local names of identities, where the home has them. */
  names(): Promise<ReadonlyMap<string, string>>;
  /** The deny-set as of now. */
  denySet(nowSeconds: number): Promise<DenySetSnapshot>;
  readonly approvals: Pick<ApprovalRepository, 'list' | 'get'>;
  readonly leases: {
    list(filter?: {
      readonly state?: LeaseState;
      readonly limit?: number;
    }): Promise<readonly Lease[]>;
  };
  /** Answers an approval as `operator`, signed with its credential key (the CLI's code path). */
  answerApproval(request: {
    readonly id: string;
    readonly decision: 'approve' | 'deny';
    readonly reason: string;
    readonly operator: Identifier;
  }): Promise<ApprovalRecord>;
}

/** Options of {@link createAdminApp}. */
export interface AdminAppOptions {
  readonly data: AdminDataSources;
  readonly auth: AdminAuth;
  /** The built dashboard (`dist/dashboard`): served at `/`; without it only the API is served. */
  readonly dashboardDir?: string;
  /** How often the live stream looks for appended records (default 500 ms). */
  readonly streamPollMs?: number;
  readonly clock?: Clock;
  readonly logger?: Logger;
}

/** The admin API as a fetch handler, before it is bound to an address. */
export interface AdminApp {
  readonly fetch: (request: Request) => Response | Promise<Response>;
  /**
   * The origins (`http://HOST:PORT`) the app answers for: a request naming another Host or
   * Origin is refused (DNS rebinding, cross-site requests). Set once it is bound.
   */
  setOrigins(origins: readonly string[]): void;
  /** Ends the live streams. */
  close(): void;
}

function statusOf(error: MandateError): 400 | 401 | 403 | 404 | 409 | 429 | 500 | 503 {
  switch (error.kind) {
    case ErrorKind.invalid:
    case ErrorKind.unsupported:
      return 400;
    case ErrorKind.unauthorized:
      return 401;
    case ErrorKind.forbidden:
      return 403;
    case ErrorKind.notFound:
      return 404;
    case ErrorKind.conflict:
      return 409;
    case ErrorKind.exhausted:
      return 429;
    case ErrorKind.unavailable:
    case ErrorKind.timeout:
      return 503;
    default:
      return 500;
  }
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
};

/**
 * The dashboard's files, read once: only these exact paths are ever served (no path from a
 * request reaches the file system).
 */
function loadDashboard(dir: string | undefined): Map<string, { type: string; body: Uint8Array }> {
  const files = new Map<string, { type: string; body: Uint8Array }>();
  if (dir === undefined) return files;
  const walk = (at: string, depth: number): void => {
    if (depth > 4 || files.size > 256) return;
    for (const name of readdirSync(at)) {
      const path = join(at, name);
      const stat = statSync(path);
      if (stat.isDirectory()) walk(path, depth + 1);
      else if (stat.isFile() && stat.size <= 8 * 1024 * 1024) {
        const ext = name.slice(name.lastIndexOf('.'));
        const type = CONTENT_TYPES[ext];
        if (type !== undefined)
          files.set(`/${relative(dir, path).split(sep).join('/')}`, {
            type,
            body: readFileSync(path),
          });
      }
    }
  };
  walk(dir, 0);
  return files;
}

/** The session cookie's value in a `Cookie` header. */
function cookieOf(header: string | undefined): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const at = part.indexOf('=');
    if (at > 0 && part.slice(0, at).trim() === ADMIN_SESSION_COOKIE)
      return part.slice(at + 1).trim();
  }
  return undefined;
}

/** Attribute bytes as text: the constraint grammar (`=a,b`, `<=500`), else UTF-8. */
function attributeText(name: string, bytes: Uint8Array): string {
  try {
    return formatConstraint(name, decodeConstraintValue(bytes)).slice(name.length);
  } catch {
    return new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  }
}

const DECISIONS = new Set(['allow', 'deny', 'approval_required']);
const STATUSES = new Set<string>(['pending', 'approved', 'denied', 'used']);
const LEASE_STATES = new Set<string>(['active', 'expired', 'revoked']);

function integerParam(value: string | undefined, name: string, min: number, max: number) {
  if (value === undefined || value === '') return undefined;
  if (!/^\d{1,16}$/.test(value) || Number(value) < min || Number(value) > max)
    throw invalid('ERR_ADMIN_REQUEST_INVALID', `\`${name}\` is an integer from ${min} to ${max}`);
  return Number(value);
}

/** One decision as the live stream sends it. */
interface DecisionEvent {
  readonly index: number;
  readonly record: string;
  readonly agent: string;
  readonly tool: string | null;
  readonly decision: string;
  readonly lock: string | null;
  readonly reasons: readonly string[];
  readonly approval: string | null;
  /** Seconds from the agent's signature to the decision (records carry whole seconds). */
  readonly latencySeconds: number | null;
  readonly decidedAt: number;
}

/**
 * Follows the log's appends (any process's: it polls the store) and fans decisions out to the
 * open streams; one poll for all of them, running only while a stream is open.
 */
class DecisionFeed {
  readonly #repository: AuditLogRepository;
  readonly #pollMs: number;
  readonly #logger: Logger;
  readonly #listeners = new Set<(event: DecisionEvent) => void>();
  /** Invocations seen (hash → tool, issuedAt), to name a decision's tool; bounded. */
  readonly #invocations = new Map<string, { tool: string; issuedAt: number }>();
  #size = -1;
  #timer: ReturnType<typeof setInterval> | undefined;
  #polling = false;

  constructor(repository: AuditLogRepository, pollMs: number, logger: Logger) {
    this.#repository = repository;
    this.#pollMs = pollMs;
    this.#logger = logger;
  }

  /** The decisions among the last entries, then every new one, to `listener` until unsubscribed. */
  async subscribe(listener: (event: DecisionEvent) => void): Promise<() => void> {
    const size = await this.#repository.size();
    const from = Math.max(0, size - STREAM_BACKLOG_ENTRIES);
    const backlog = size === 0 ? [] : await this.#repository.readEntries(from, size);
    backlog.forEach((e, k) => {
      const event = this.#read(from + k, e.record);
      if (event !== undefined) listener(event);
    });
    if (this.#size < 0) this.#size = size;
    this.#listeners.add(listener);
    this.#timer ??= setInterval(() => void this.#poll(), this.#pollMs);
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0) this.stop();
    };
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#size = -1;
  }

  async #poll(): Promise<void> {
    if (this.#polling) return;
    this.#polling = true;
    try {
      const size = await this.#repository.size();
      while (this.#size >= 0 && this.#size < size) {
        const to = Math.min(size, this.#size + MAX_AUDIT_READ_ENTRIES);
        const entries = await this.#repository.readEntries(this.#size, to);
        const from = this.#size;
        this.#size = to;
        entries.forEach((e, k) => {
          const event = this.#read(from + k, e.record);
          if (event !== undefined) for (const l of this.#listeners) l(event);
        });
      }
    } catch (error) {
      this.#logger.warn('admin stream cannot read the audit log', {
        code: isMandateError(error) ? error.code : 'ERR_INTERNAL',
      });
    } finally {
      this.#polling = false;
    }
  }

  #read(index: number, bytes: Uint8Array): DecisionEvent | undefined {
    let record: Record<string, unknown>;
    try {
      const value: unknown = JSON.parse(new TextDecoder().decode(bytes));
      if (typeof value !== 'object' || value === null) return undefined;
      record = value as Record<string, unknown>;
    } catch {
      return undefined;
    }
    const hash = (): string => auditHashOf(bytes);
    if (
      record.type === INVOCATION_RECORD_TYPE ||
      record.type === CHAIN_REF_INVOCATION_RECORD_TYPE
    ) {
      this.#invocations.set(hash(), {
        tool: typeof record.tool === 'string' ? record.tool : '?',
        issuedAt: typeof record.issuedAt === 'number' ? record.issuedAt : 0,
      });
      if (this.#invocations.size > 10_000) {
        const oldest = this.#invocations.keys().next().value;
        if (oldest !== undefined) this.#invocations.delete(oldest);
      }
      return undefined;
    }
    if (record.type !== DECISION_RECORD_TYPE) return undefined;
    const invocation = this.#invocations.get(String(record.invocation));
    const decidedAt = typeof record.decidedAt === 'number' ? record.decidedAt : 0;
    const approval = record.approval as { id?: unknown } | null;
    const escalation = record.escalation as { id?: unknown } | null;
    return {
      index,
      record: hash(),
      agent: String(record.agent),
      tool: invocation?.tool ?? null,
      decision: String(record.decision),
      lock: typeof record.lock === 'string' ? record.lock : null,
      reasons: Array.isArray(record.reasons) ? record.reasons.map(String) : [],
      approval:
        typeof escalation?.id === 'string'
          ? escalation.id
          : typeof approval?.id === 'string'
            ? approval.id
            : null,
      latencySeconds: invocation === undefined ? null : decidedAt - invocation.issuedAt,
      decidedAt,
    };
  }
}

/**
 * The admin API (hono) over `data`, authenticated by `auth`:
 * - `POST /api/login {token}`: a one-time login token → session cookie (and the CSRF token);
 * - `GET /api/challenge`, `POST /api/challenge {answer}`: a script's signed challenge → a bearer
 *   session token;
 * - `GET /api/session`, `POST /api/logout`;
 * - `GET /api/agents?offset&limit`, `/api/graph`,
 *   `/api/audit?agent&tool&decision&since&until&offset&limit`, `/api/log-key`,
 *   `/api/approvals?status`, `/api/leases?state`, `/api/events` (SSE);
 * - `POST /api/approvals/:id {decision, reason}`: the operator's signed answer.
 * Every `/api/*` but login and challenge needs a session (cookie or `Authorization: Bearer`);
 * a cookie session's POST needs the `X-Mandate-CSRF` header and a same-origin `Origin`. Login
 * and challenge are rate-limited by `auth` (429 `ERR_ADMIN_RATE_LIMITED` with `Retry-After`).
 */
export function createAdminApp(options: AdminAppOptions): AdminApp {
  const { data, auth } = options;
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? silentLogger;
  const files = loadDashboard(options.dashboardDir);
  const feed = new DecisionFeed(data.auditLog, options.streamPollMs ?? 500, logger);
  // The trail, parsed once and then only past what was parsed (audit-trail-cache.ts): the graph
  // and the audit search read it on every request, and the page polls the graph.
  const trail = new CachedAuditTrail(data.auditLog, logger);
  let origins: readonly string[] = [];
  const hosts = (): string[] => origins.map((o) => new URL(o).host);

  const app = new Hono();
  // The session of each authenticated request (set by the authentication middleware).
  const sessions = new WeakMap<Request, AdminSession>();
  const sessionOf = (c: Context): AdminSession => {
    const session = sessions.get(c.req.raw);
    if (session === undefined)
      throw unauthorized('ERR_ADMIN_UNAUTHENTICATED', 'log in first (a session is required)');
    return session;
  };

  const fail = (c: Context, error: unknown): Response => {
    const known = isMandateError(error) ? error : undefined;
    const status = known === undefined ? 500 : statusOf(known);
    if (known === undefined || status === 500)
      logger.error('admin request failed', {
        path: c.req.path,
        reason: known?.code ?? String(error),
      });
    else logger.info('admin request refused', { path: c.req.path, code: known.code });
    const body =
      known === undefined || known.kind === ErrorKind.internal
        ? { code: 'ERR_INTERNAL', kind: 'internal', message: 'internal error' }
        : known.toJSON();
    c.header('Cache-Control', 'no-store');
    if (known instanceof AdminRateLimitedError)
      c.header('Retry-After', String(known.retryAfterSeconds));
    return c.json({ error: body }, status);
  };
  app.onError((error, c) => fail(c, error));

  // Every request: a Host this app answers for (no DNS rebinding), headers that keep the page
  // in its own origin, and a structured log line (never a token: they travel in bodies,
  // cookies and fragments, none of which is logged).
  app.use('*', async (c, next) => {
    const started = performance.now();
    const host = c.req.header('host') ?? '';
    if (origins.length > 0 && !hosts().includes(host))
      throw forbidden('ERR_ADMIN_ORIGIN_REFUSED', 'the request names another host');
    c.header('X-Content-Type-Options', 'nosniff');
    c.header('X-Frame-Options', 'DENY');
    c.header('Referrer-Policy', 'no-referrer');
    c.header(
      'Content-Security-Policy',
      "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    );
    await next();
    logger.info('admin request', {
      method: c.req.method,
      path: c.req.path,
      status: c.res.status,
      ms: Math.round(performance.now() - started),
    });
    return undefined;
  });

  // A state-changing request from a browser names this origin (browsers always send Origin on
  // POST); one naming another is refused whatever it carries.
  const checkOrigin = (origin: string | undefined): void => {
    if (origin !== undefined && !origins.includes(origin))
      throw forbidden('ERR_ADMIN_ORIGIN_REFUSED', 'a cross-origin request is refused');
  };

  /**
   * The body as a JSON object holding only `keys` (each at most once): a duplicate key could be
   * read one way here and another elsewhere, and an unknown one (`approver`, `as`) would be
   * silently ignored, so both are refused.
   */
  const readJson = async <K extends string>(
    c: Context,
    keys: readonly K[],
  ): Promise<Partial<Record<K, unknown>>> => {
    const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    // JSON only: a cross-site form cannot send it without a CORS preflight, which is never granted.
    if (type !== 'application/json')
      throw invalid('ERR_ADMIN_REQUEST_INVALID', 'the body is `application/json`');
    const value = parseJsonNoDuplicateKeys(
      await c.req.text(),
      'ERR_ADMIN_REQUEST_INVALID',
      'the body',
      8,
    );
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      throw invalid('ERR_ADMIN_REQUEST_INVALID', 'the body is a JSON object');
    const allowed: readonly string[] = keys;
    for (const key of Object.keys(value))
      if (!allowed.includes(key))
        throw invalid(
          'ERR_ADMIN_REQUEST_INVALID',
          `the body has an unknown key \`${JSON.stringify(key).slice(1, -1).slice(0, 64)}\` (it takes ${keys.map((k) => `\`${k}\``).join(', ')})`,
        );
    return value;
  };

  const limitBody = bodyLimit({
    maxSize: MAX_ADMIN_BODY_BYTES,
    onError: (c) =>
      fail(
        c,
        invalid('ERR_ADMIN_REQUEST_INVALID', `a body is at most ${MAX_ADMIN_BODY_BYTES} bytes`),
      ),
  });

  const startSession = (c: Context, token: string, session: AdminSession, how: string) => {
    setCookie(c, ADMIN_SESSION_COOKIE, token, {
      httpOnly: true,
      sameSite: 'Strict',
      path: '/',
      maxAge: Math.max(1, session.expiresAt - clock.nowSeconds()),
    });
    logger.info('admin login', { operator: session.operator, method: how });
    c.header('Cache-Control', 'no-store');
  };

  app.post(AdminPath.login, limitBody, async (c) => {
    checkOrigin(c.req.header('origin'));
    const body = await readJson(c, ['token']);
    const [token, session] = auth.redeemLoginToken(body.token);
    startSession(c, token, session, 'token');
    return c.json({ operator: session.operator, expiresAt: session.expiresAt, csrf: session.csrf });
  });

  app.get(AdminPath.challenge, (c) => {
    c.header('Cache-Control', 'no-store');
    return c.json({ ...auth.issueChallenge(), origin: origins[0] ?? null });
  });
  app.post(AdminPath.challenge, limitBody, async (c) => {
    checkOrigin(c.req.header('origin'));
    const body = await readJson<keyof AdminChallengeAnswer>(c, [
      'challenge',
      'identifier',
      'keyType',
      'signature',
      'attestation',
    ]);
    // The origin signed must be this API's as bound: an answer made for another API is refused.
    const [token, session] = auth.redeemChallenge(body, origins[0] ?? '');
    startSession(c, token, session, 'challenge');
    return c.json({
      operator: session.operator,
      expiresAt: session.expiresAt,
      token,
      csrf: session.csrf,
    });
  });

  // Authentication of everything else under /api.
  app.use('/api/*', async (c, next) => {
    const authorization = c.req.header('authorization');
    const bearer =
      authorization?.startsWith('Bearer ') === true ? authorization.slice(7) : undefined;
    const token = bearer ?? cookieOf(c.req.header('cookie'));
    const session = auth.session(token);
    if (session === undefined)
      throw unauthorized('ERR_ADMIN_UNAUTHENTICATED', 'log in first (a session is required)');
    // An operator revoked since it logged in: its session ends, with its open streams.
    if ((await revokedIdentities()).has(session.operator)) {
      if (token !== undefined) auth.endSession(token);
      for (const end of [...(streams.get(session) ?? [])]) end();
      throw forbidden(
        'ERR_REVOKED',
        'the operator of this session is revoked: the session is over',
      );
    }
    if (c.req.method !== 'GET' && c.req.method !== 'HEAD') {
      checkOrigin(c.req.header('origin'));
      // A bearer token is never sent by a browser on its own; a cookie is, so it needs the echo.
      if (bearer === undefined && c.req.header(ADMIN_CSRF_HEADER) !== session.csrf)
        throw forbidden('ERR_ADMIN_CSRF', 'the request lacks this session’s CSRF token');
    }
    sessions.set(c.req.raw, session);
    c.header('Cache-Control', 'no-store');
    await next();
  });

  // The open live streams by the session they were opened on (a logout ends its session's).
  const streams = new Map<AdminSession, Set<() => void>>();
  let streamCount = 0;

  app.get(AdminPath.session, (c) => {
    const session = sessionOf(c);
    return c.json({ operator: session.operator, expiresAt: session.expiresAt, csrf: session.csrf });
  });
  app.post(AdminPath.logout, (c) => {
    const authorization = c.req.header('authorization');
    const token =
      authorization?.startsWith('Bearer ') === true
        ? authorization.slice(7)
        : cookieOf(c.req.header('cookie'));
    if (token !== undefined) auth.endSession(token);
    // The session's open streams end now, not at their next event.
    for (const end of [...(streams.get(sessionOf(c)) ?? [])]) end();
    deleteCookie(c, ADMIN_SESSION_COOKIE, { path: '/' });
    return c.json({ ok: true });
  });

  const revokedIdentities = async (): Promise<Set<string>> => {
    const snapshot = await data.denySet(clock.nowSeconds());
    return new Set(snapshot.entries.filter((e) => e.kind === 'identity').map((e) => e.id));
  };

  app.get(AdminPath.agents, async (c) => {
    const offset = integerParam(c.req.query('offset'), 'offset', 0, 10_000_000) ?? 0;
    const limit =
      integerParam(c.req.query('limit'), 'limit', 1, MAX_AGENTS_PAGE) ?? DEFAULT_AGENTS_PAGE;
    const [members, names, revoked] = await Promise.all([
      data.members(),
      data.names(),
      revokedIdentities(),
    ]);
    return c.json({
      total: members.length,
      offset,
      limit,
      agents: members.slice(offset, offset + limit).map((m) => {
        const attributes: Record<string, string> = {};
        for (const [name, bytes] of m.attributes) attributes[name] = attributeText(name, bytes);
        return {
          identifier: m.identifier,
          name: names.get(m.identifier) ?? null,
          attributes,
          human: attributes.human === '=true' || attributes.human === 'true',
          enroller: m.enroller,
          addedAt: m.addedAt,
          addedBy: m.addedBy,
          revoked: revoked.has(m.identifier),
        };
      }),
    });
  });

  // The identities on the trail's chains and the delegation edges between them, kept while the
  // trail is unchanged: each call's path, root subject → … → acting agent, one edge per hop,
  // counted per call.
  interface TrailGraph {
    readonly version: number;
    readonly ids: ReadonlySet<string>;
    readonly edges: readonly { from: string; to: string; calls: number }[];
  }
  let trailGraph: TrailGraph | undefined;
  const graphOf = (snapshot: AuditTrailSnapshot): TrailGraph => {
    if (trailGraph?.version === snapshot.version) return trailGraph;
    const ids = new Set<string>();
    const edges = new Map<string, { from: string; to: string; calls: number }>();
    for (const { path } of snapshot.calls) {
      for (const id of path) ids.add(id);
      for (let i = 1; i < path.length; i++) {
        const key = `${path[i - 1]!}>${path[i]!}`;
        const edge = edges.get(key);
        if (edge === undefined) edges.set(key, { from: path[i - 1]!, to: path[i]!, calls: 1 });
        else edge.calls++;
      }
    }
    trailGraph = { version: snapshot.version, ids, edges: [...edges.values()] };
    return trailGraph;
  };

  app.get(AdminPath.graph, async (c) => {
    const [members, names, revoked, snapshot] = await Promise.all([
      data.members(),
      data.names(),
      revokedIdentities(),
      trail.read(),
    ]);
    const { ids: onChains, edges } = graphOf(snapshot);
    // The identities on a logged chain, then the revoked members on none; any other member is
    // only counted (the agents view lists them all): a home of thousands of members would send,
    // and draw, thousands of boxes.
    const ids = new Set(onChains);
    const human = new Set<string>();
    let unlinkedMembers = 0;
    for (const m of members) {
      if (!ids.has(m.identifier) && !revoked.has(m.identifier)) {
        unlinkedMembers++;
        continue;
      }
      ids.add(m.identifier);
      const flag = m.attributes.get('human');
      const text = flag === undefined ? '' : attributeText('human', flag);
      if (text === '=true' || text === 'true') human.add(m.identifier);
    }
    // A revoked identity cuts its branch: it and everything delegated below it.
    const cut = new Set<string>([...ids].filter((id) => revoked.has(id)));
    for (let changed = true; changed;) {
      changed = false;
      for (const e of edges)
        if (cut.has(e.from) && !cut.has(e.to)) {
          cut.add(e.to);
          changed = true;
        }
    }
    return c.json({
      nodes: [...ids].map((id) => ({
        id,
        name: names.get(id) ?? null,
        human: human.has(id),
        revoked: revoked.has(id),
        inRevokedBranch: cut.has(id),
      })),
      edges: edges.map((e) => ({ ...e, revoked: cut.has(e.to) })),
      unlinkedMembers,
    });
  });

  app.get(AdminPath.logKey, (c) =>
    c.json({ key: formatNoteVerifierKey(data.logKey), origin: data.logKey.name }),
  );

  app.get(AdminPath.audit, async (c) => {
    const q = (name: string) => c.req.query(name);
    const decision = q('decision');
    if (decision !== undefined && decision !== '' && !DECISIONS.has(decision))
      throw invalid('ERR_ADMIN_REQUEST_INVALID', '`decision` is allow, deny or approval_required');
    const since = integerParam(q('since'), 'since', 0, 2 ** 40);
    const until = integerParam(q('until'), 'until', 0, 2 ** 40);
    const offset = integerParam(q('offset'), 'offset', 0, 10_000_000) ?? 0;
    const limit = integerParam(q('limit'), 'limit', 1, MAX_AUDIT_PAGE) ?? 50;
    const agent = q('agent') ?? '';
    const tool = q('tool') ?? '';
    if (agent.length > 256 || tool.length > 256)
      throw invalid('ERR_ADMIN_REQUEST_INVALID', '`agent` and `tool` are at most 256 characters');
    const names = await data.names();
    const matching = (call: TrailCall) =>
      (agent === '' || call.agent === agent || names.get(call.agent) === agent) &&
      (tool === '' || call.tool === tool) &&
      (decision === undefined || decision === '' || call.decision?.decision === decision) &&
      (since === undefined || call.issuedAt >= since) &&
      (until === undefined || call.issuedAt <= until);
    // The page's records are read from the store now, never from the cache: they are the bytes
    // the browser checks the proofs over, so a record tampered with in the store fails there as
    // it is. One that differs from the record the cache parsed drops the cache, and the page is
    // made again from the trail read afresh (once: a store that keeps changing under the read is
    // served as read).
    let matches: TrailCall[] = [];
    let page: TrailCall[] = [];
    let stored = new Map<number, Uint8Array>();
    for (let attempt = 0; attempt < 2; attempt++) {
      matches = (await trail.read()).calls.filter(matching).reverse();
      // Copies: a later read may attach a decision or an outcome to a call meanwhile.
      page = matches.slice(offset, offset + limit).map((call) => ({
        ...call,
        ...(call.extraDecisions === undefined ? {} : { extraDecisions: [...call.extraDecisions] }),
      }));
      stored = await readRecords(
        page.flatMap((call) =>
          call.decision === undefined ? [call.index] : [call.index, call.decision.index],
        ),
      );
      const fresh = page.every(
        (call) =>
          auditHashOf(stored.get(call.index)!) === call.hash &&
          (call.decision === undefined ||
            auditHashOf(stored.get(call.decision.index)!) === call.decision.hash),
      );
      if (fresh) break;
      trail.reset(TrailCacheReset.record);
    }
    const checkpoint = await data.auditLog.latestCheckpoint();
    const treeSize =
      checkpoint === undefined ? 0 : parseCheckpoint(parseNote(checkpoint.note).text).treeSize;
    const log = await AuditLog.open({ repository: data.auditLog, origin: data.logKey.name });
    const proofOf = async (index: number) => {
      if (index >= treeSize || treeSize > log.size) return null;
      const hashes = await log.inclusionProof(index, treeSize);
      return {
        index,
        treeSize,
        record: toBase64(stored.get(index)!),
        hashes: hashes.map((h) => toBase64(h)),
      };
    };
    const calls = [];
    for (const call of page) calls.push(await callView(call));
    return c.json({
      total: matches.length,
      offset,
      limit,
      checkpoint: checkpoint === undefined ? null : { treeSize, note: checkpoint.note },
      calls,
    });

    /** The stored records at `indices`, read one by one (a page holds at most 400). */
    async function readRecords(indices: readonly number[]) {
      const out = new Map<number, Uint8Array>();
      try {
        for (const i of indices)
          if (!out.has(i)) out.set(i, (await data.auditLog.readEntries(i, i + 1))[0]!.record);
      } catch (error) {
        // A record the trail holds is not in the store (deleted behind the log's back, or the
        // store replaced): the next read starts over, and meets what a read of the store meets.
        trail.reset(TrailCacheReset.error);
        throw error;
      }
      return out;
    }

    async function callView(call: TrailCall) {
      const escalation = call.decision?.escalation?.id;
      const approval = escalation === undefined ? undefined : await data.approvals.get(escalation);
      const record = (i: number | undefined): unknown => {
        if (i === undefined) return null;
        try {
          return JSON.parse(new TextDecoder().decode(stored.get(i)));
        } catch {
          // Only when the store changed again under the second read: its proof tells the rest.
          return null;
        }
      };
      return {
        ...call,
        pathNames: call.path.map((id) => names.get(id) ?? null),
        invocationRecord: record(call.index),
        decisionRecord: record(call.decision?.index),
        approval: approval ?? null,
        proofs: {
          invocation: await proofOf(call.index),
          decision: call.decision === undefined ? null : await proofOf(call.decision.index),
        },
      };
    }
  });

  app.get(AdminPath.approvals, async (c) => {
    const status = c.req.query('status');
    if (status !== undefined && status !== '' && !STATUSES.has(status))
      throw invalid('ERR_ADMIN_REQUEST_INVALID', '`status` is pending, approved, denied or used');
    const limit = integerParam(c.req.query('limit'), 'limit', 1, 1000) ?? 100;
    const approvals = await data.approvals.list({
      limit,
      ...(status === undefined || status === '' ? {} : { status: status as ApprovalStatus }),
    });
    return c.json({ approvals, now: clock.nowSeconds() });
  });

  app.post(`${AdminPath.approvals}/:id`, limitBody, async (c) => {
    const id = c.req.param('id');
    if (!/^[0-9a-f]{32}$/.test(id))
      throw invalid('ERR_ADMIN_REQUEST_INVALID', 'an approval id is 32 lowercase hex digits');
    const body = await readJson(c, ['decision', 'reason']);
    if (body.decision !== 'approve' && body.decision !== 'deny')
      throw invalid('ERR_ADMIN_REQUEST_INVALID', '`decision` is `approve` or `deny`');
    if (typeof body.reason !== 'string')
      throw invalid('ERR_ADMIN_REQUEST_INVALID', '`reason` is a string');
    const session = sessionOf(c);
    const record = await data.answerApproval({
      id,
      decision: body.decision,
      reason: body.reason,
      operator: session.operator,
    });
    logger.info('admin approval answered', {
      approval: id,
      decision: body.decision,
      operator: session.operator,
    });
    return c.json(record);
  });

  app.get(AdminPath.leases, async (c) => {
    const state = c.req.query('state');
    if (state !== undefined && state !== '' && !LEASE_STATES.has(state))
      throw invalid('ERR_ADMIN_REQUEST_INVALID', '`state` is active, expired or revoked');
    const leases = await data.leases.list({
      limit: 500,
      ...(state === undefined || state === '' ? {} : { state: state as LeaseState }),
    });
    // Never the handle or the chain's ids: what a page shows is who, what, until when.
    return c.json({
      now: clock.nowSeconds(),
      leases: leases.map((l) => ({
        id: l.id,
        kind: l.kind,
        holder: l.holder,
        resource: l.resource,
        scope: l.scope,
        createdAt: l.createdAt,
        expiresAt: l.expiresAt,
        maxExpiresAt: l.maxExpiresAt,
        renewals: l.renewals,
        state: l.state,
        endedAt: l.endedAt ?? null,
        endReason: l.endReason ?? null,
      })),
    });
  });

  app.get(AdminPath.events, (c) => {
    const session = sessionOf(c);
    // Counted as each is opened (not once subscribed, after an await): concurrent opens see it.
    if (streamCount >= MAX_STREAMS)
      throw invalid('ERR_ADMIN_REQUEST_INVALID', `at most ${MAX_STREAMS} live streams at once`);
    if ((streams.get(session)?.size ?? 0) >= MAX_STREAMS_PER_SESSION)
      throw invalid(
        'ERR_ADMIN_REQUEST_INVALID',
        `at most ${MAX_STREAMS_PER_SESSION} live streams per session at once`,
      );
    const queue: DecisionEvent[] = [];
    let wake: (() => void) | undefined;
    let open = true;
    const end = () => {
      open = false;
      wake?.();
    };
    const own = streams.get(session) ?? new Set();
    streams.set(session, own);
    own.add(end);
    streamCount++;
    // A stream lives no longer than its session: a logout ends it at once (`end`), and an
    // expired or ended session is looked for before anything is sent.
    const live = () => open && auth.isLive(session);
    return streamSSE(c, async (stream) => {
      try {
        stream.onAbort(end);
        const unsubscribe = await feed.subscribe((event) => {
          queue.push(event);
          wake?.();
        });
        try {
          while (live()) {
            const event = queue.shift();
            if (event !== undefined) {
              await stream.writeSSE({
                event: 'decision',
                id: String(event.index),
                data: JSON.stringify(event),
              });
              continue;
            }
            // A comment line every 15 s keeps proxies from closing an idle stream.
            await new Promise<void>((resolve) => {
              const timer = setTimeout(resolve, 15_000);
              wake = () => {
                clearTimeout(timer);
                resolve();
              };
            });
            wake = undefined;
            if (queue.length === 0 && live()) await stream.write(': keep-alive\n\n');
          }
        } finally {
          unsubscribe();
        }
      } finally {
        own.delete(end);
        streamCount--;
        if (own.size === 0) streams.delete(session);
      }
    });
  });

  app.get('*', (c) => {
    const path = c.req.path === '/' ? '/index.html' : c.req.path;
    const file =
      files.get(path) ?? (path.startsWith('/api/') ? undefined : files.get('/index.html'));
    if (file === undefined) {
      if (files.size === 0 && path === '/index.html')
        return c.text('the dashboard is not built: run `npm run build`; the API is at /api\n', 404);
      return fail(c, invalid('ERR_ADMIN_REQUEST_INVALID', 'no such page'));
    }
    c.header('Content-Type', file.type);
    c.header('Cache-Control', path === '/index.html' ? 'no-store' : 'public, max-age=3600');
    return c.body(file.body as Uint8Array<ArrayBuffer>);
  });

  return {
    fetch: (request) => app.fetch(request),
    setOrigins(list) {
      origins = [...list];
    },
    close() {
      for (const own of [...streams.values()]) for (const end of [...own]) end();
      feed.stop();
    },
  };
}

/** A running admin API. */
export interface AdminHttp {
  /** `http://HOST:PORT`, as bound. */
  readonly url: string;
  readonly address: { readonly host: string; readonly port: number };
  /** The dashboard's address carrying a fresh one-time login token in its fragment. */
  loginUrl(): string;
  close(): Promise<void>;
}

/**
 * Serves {@link createAdminApp} on `listen` (default `127.0.0.1`, port 0). A host other than a
 * loopback address must be asked for explicitly; the API still requires a login there.
 */
export async function startAdminHttp(
  options: AdminAppOptions & {
    readonly listen?: { readonly host?: string; readonly port?: number };
  },
): Promise<AdminHttp> {
  const host = options.listen?.host ?? '127.0.0.1';
  const port = options.listen?.port ?? 0;
  const app = createAdminApp(options);
  const listening = await serveHttp(app, { host, port }, { graceMs: 1_000 });
  const { url, address } = listening;
  const loopback = address.host === '127.0.0.1' || address.host === '::1';
  app.setOrigins(loopback ? [url, `http://localhost:${address.port}`] : [url]);
  (options.logger ?? silentLogger).info('admin api listening', { url });
  return {
    url,
    address,
    loginUrl: () => `${url}/#token=${options.auth.issueLoginToken()}`,
    close() {
      // The live streams end first, or the server would wait for them.
      app.close();
      return listening.close();
    },
  };
}
