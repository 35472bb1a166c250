// Dynamic PostgreSQL roles (docs/spec/broker.md §5): a lease is a login role made for it, with a
// random password, `VALID UNTIL` the lease's end and a template's grants; revoking it ends the
// role's sessions and drops it; a reaper drops what a crashed broker left behind.
//
// Every identifier in the SQL is quoted with `escapeIdentifier` and every literal with
// `escapeLiteral` (or bound as a parameter where PostgreSQL takes one): names come from config
// and lease ids, and nothing reaches a statement unquoted. The password travels as a SCRAM
// verifier (scram-verifier.ts), and no error built here carries a statement or a server message
// that could echo one.
import {
  Client,
  DatabaseError,
  escapeIdentifier,
  escapeLiteral,
  Pool,
  type PoolClient,
  type QueryResultRow,
} from 'pg';
import { ErrorKind, isMandateError, MandateError, systemClock, type Clock } from '../core/index.js';
import {
  conflict,
  invalid,
  internal,
  notFound,
  unavailable,
  forbidden,
  timeout,
} from '../core/internal.js';
import { randomBytes } from '../crypto/index.js';
import { escapeControlCharacters, hasControlCharacters } from '../encoding/index.js';
import { SCRAM_SALT_BYTES, scramSha256Verifier } from './scram-verifier.js';
import type {
  IssuedLease,
  Lease,
  LeaseContext,
  LeaseProvider,
  PostgresLeaseValue,
} from './types.js';
import { LeaseKind } from './types.js';

/** Table privileges a template may grant. */
export const TablePrivilege = {
  select: 'SELECT',
  insert: 'INSERT',
  update: 'UPDATE',
  delete: 'DELETE',
} as const;
export type TablePrivilege = (typeof TablePrivilege)[keyof typeof TablePrivilege];

/** Sequence privileges a template may grant (INSERT into a `serial` column needs `USAGE`). */
export const SequencePrivilege = { usage: 'USAGE', select: 'SELECT', update: 'UPDATE' } as const;
export type SequencePrivilege = (typeof SequencePrivilege)[keyof typeof SequencePrivilege];

/**
 * One grant of a role template. Every grant is in the database of the broker's admin connection:
 * a lease never reaches another database.
 * - `database`: `CONNECT` on that database;
 * - `schema`: `USAGE` on the schema;
 * - `tables` / `sequences`: the privileges on every table (sequence) in the schema as the lease
 *   starts and, with `future`, also on those the admin role creates there during the lease
 *   (`ALTER DEFAULT PRIVILEGES`).
 */
export type RoleGrant =
  | { readonly on: 'database' }
  | { readonly on: 'schema'; readonly schema: string }
  | {
      readonly on: 'tables';
      readonly schema: string;
      readonly privileges: readonly TablePrivilege[];
      readonly future?: boolean;
    }
  | {
      readonly on: 'sequences';
      readonly schema: string;
      readonly privileges: readonly SequencePrivilege[];
      readonly future?: boolean;
    };

/** What a PostgreSQL lease may do: a list of grants, never SQL text. */
export interface RoleTemplate {
  readonly grants: readonly RoleGrant[];
  /** The role's `CONNECTION LIMIT` (1–1000); none when absent. */
  readonly connectionLimit?: number;
}

/**
 * The built-in `readonly` template: `CONNECT` on the database, `USAGE` on schema `public` and
 * `SELECT` on every table in it.
 */
export const READONLY_ROLE_TEMPLATE: RoleTemplate = {
  grants: [
    { on: 'database' },
    { on: 'schema', schema: 'public' },
    { on: 'tables', schema: 'public', privileges: [TablePrivilege.select] },
  ],
};

/** How a {@link PostgresRoleProvider} reaches PostgreSQL and what its leases may do. */
export interface PostgresRoleProviderOptions {
  /**
   * The admin connection (`postgres://user:password@host:port/database`): a role with
   * `CREATEROLE` that may grant what the templates name. Never shown in an error.
   */
  readonly connectionString: string;
  /** Templates by name, beside the built-in `readonly` (which a template of that name replaces). */
  readonly templates?: Readonly<Record<string, RoleTemplate>>;
  /**
   * The first part of every leased role's name (`mandate_lease_` by default): lower-case letters,
   * digits and `_`, at most 31 characters. The reaper drops roles with this prefix that it made,
   * and whose comment names this broker (`brokerId`).
   */
  readonly rolePrefix?: string;
  /**
   * Who this broker is (its identifier; `mandate` by default): written into every role's comment,
   * and the reaper drops only roles whose comment names it, so brokers sharing a server never
   * reap each other's live roles. 1 to 200 printable ASCII characters without spaces.
   */
  readonly brokerId?: string;
  /**
   * The admin connections' `lock_timeout` (default 5 000 ms): no grant or revocation waits longer
   * than this for a lock (`ERR_PG_TIMEOUT`).
   */
  readonly lockTimeoutMs?: number;
  /** The admin connections' `statement_timeout` (default 30 000 ms; `ERR_PG_TIMEOUT`). */
  readonly statementTimeoutMs?: number;
  /** For the reaper's grace period. */
  readonly clock?: Clock;
  /** Admin connections kept open (default 4). */
  readonly poolSize?: number;
  /**
   * A role issued less than this long ago is never reaped (default 60): the broker records a
   * lease only after its provider has issued it, and a reaper running in between must not take
   * it for an orphan.
   */
  readonly reapGraceSeconds?: number;
}

export const DEFAULT_ROLE_PREFIX = 'mandate_lease_';
const DEFAULT_POOL_SIZE = 4;
const DEFAULT_REAP_GRACE_SECONDS = 60;
export const DEFAULT_BROKER_ID = 'mandate';
export const DEFAULT_LOCK_TIMEOUT_MS = 5_000;
export const DEFAULT_STATEMENT_TIMEOUT_MS = 30_000;
/** The broker's own schema: no `USAGE` for PUBLIC, so no leased role can lock what is in it. */
export const BROKER_SCHEMA = 'mandate_broker';
const CONNECT_TIMEOUT_MS = 10_000;
/** How long revoke waits for each terminated session to end (`pg_terminate_backend`'s timeout). */
const TERMINATE_TIMEOUT_MS = 5_000;
/** PostgreSQL's NAMEDATALEN − 1. */
const MAX_IDENTIFIER_BYTES = 63;
const PASSWORD_BYTES = 32;

const LEASE_ID_RE = /^lease_([0-9a-f]{32})$/;
const PREFIX_RE = /^[a-z_][a-z0-9_]{0,30}$/;
const TEMPLATE_NAME_RE = /^[a-z][a-z0-9_-]{0,62}$/;
const BROKER_ID_RE = /^[\x21-\x7e]{1,200}$/;
/** The comment on every role a lease made: the reaper's mark, the role's age and its broker. */
const COMMENT_RE =
  /^mandate lease (lease_[0-9a-f]{32}) created ([0-9]{1,12}) by ([\x21-\x7e]{1,200})$/;

const TEMPLATE_INVALID = 'ERR_LEASE_PG_TEMPLATE_INVALID';
const OPTIONS_INVALID = 'ERR_LEASE_PG_OPTIONS_INVALID';

/**
 * Leases PostgreSQL logins. `issue` creates the role in one transaction (it exists with all its
 * grants or not at all); `renew` moves its `VALID UNTIL`; `revoke` refuses new logins, ends the
 * role's sessions and drops it (a missing role counts as revoked); `reap` drops the roles this
 * prefix made that are not among the live handles. The handle is the role's name: the prefix and
 * the lease id's 32 hex digits.
 */
export class PostgresRoleProvider implements LeaseProvider<PostgresLeaseValue> {
  readonly kind = LeaseKind.postgres;
  readonly rolePrefix: string;
  readonly #pool: Pool;
  readonly #templates: ReadonlyMap<string, RoleTemplate>;
  readonly #clock: Clock;
  readonly #reapGraceSeconds: number;
  readonly #handleRe: RegExp;
  readonly #brokerId: string;
  readonly #connectionString: string;
  readonly #timeouts: { readonly lock: number; readonly statement: number };
  #target: Promise<Target> | undefined;
  #closed = false;

  constructor(options: PostgresRoleProviderOptions) {
    if (typeof options.connectionString !== 'string' || options.connectionString === '')
      throw invalid(OPTIONS_INVALID, 'the postgresql connection string is empty');
    const prefix = options.rolePrefix ?? DEFAULT_ROLE_PREFIX;
    if (typeof prefix !== 'string' || !PREFIX_RE.test(prefix))
      throw invalid(
        OPTIONS_INVALID,
        'the role prefix must be 1 to 31 lower-case letters, digits or `_`, not starting with a digit',
      );
    const poolSize = options.poolSize ?? DEFAULT_POOL_SIZE;
    if (!Number.isSafeInteger(poolSize) || poolSize < 1 || poolSize > 100)
      throw invalid(OPTIONS_INVALID, 'the pool size must be an integer from 1 to 100');
    const grace = options.reapGraceSeconds ?? DEFAULT_REAP_GRACE_SECONDS;
    if (!Number.isSafeInteger(grace) || grace < 0)
      throw invalid(OPTIONS_INVALID, 'the reap grace period must be a whole number of seconds');
    const brokerId = options.brokerId ?? DEFAULT_BROKER_ID;
    if (typeof brokerId !== 'string' || !BROKER_ID_RE.test(brokerId))
      throw invalid(
        OPTIONS_INVALID,
        'the broker id must be 1 to 200 printable ASCII characters without spaces',
      );
    const lock = options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
    const statement = options.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS;
    for (const [what, ms] of [
      ['lock', lock],
      ['statement', statement],
    ] as const)
      if (!Number.isSafeInteger(ms) || ms < 1 || ms > 3_600_000)
        throw invalid(
          OPTIONS_INVALID,
          `the ${what} timeout must be a whole number of milliseconds from 1 to 3600000`,
        );
    this.#brokerId = brokerId;
    this.#connectionString = options.connectionString;
    this.#timeouts = { lock, statement };
    this.rolePrefix = prefix;
    this.#handleRe = new RegExp(`^${prefix}([0-9a-f]{32})$`);
    this.#templates = parseTemplates(options.templates ?? {});
    this.#clock = options.clock ?? systemClock;
    this.#reapGraceSeconds = grace;
    this.#pool = new Pool({
      ...this.#clientConfig(options.connectionString),
      max: poolSize,
      idleTimeoutMillis: 10_000,
      allowExitOnIdle: true,
    });
    // An idle connection the server closes (restart, admin shutdown) is dropped from the pool and
    // replaced on next use; without a listener the pool's 'error' event would end the process.
    this.#pool.on('error', () => undefined);
  }

  /**
   * Every admin connection's settings: the server ends a statement that waits on a lock past
   * `lock_timeout` or runs past `statement_timeout`, and the client gives up a little later if the
   * server does not answer at all, so no provider call waits forever.
   */
  #clientConfig(connectionString: string) {
    return {
      connectionString,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      application_name: 'mandate-broker',
      lock_timeout: this.#timeouts.lock,
      statement_timeout: this.#timeouts.statement,
      query_timeout: this.#timeouts.statement + CONNECT_TIMEOUT_MS,
    };
  }

  /** The names of the templates this provider knows (with `readonly`). */
  templateNames(): readonly string[] {
    return [...this.#templates.keys()];
  }

  /** The role name a lease id maps to: the prefix and the id's 32 hex digits. */
  roleName(leaseId: string): string {
    const match = LEASE_ID_RE.exec(leaseId);
    if (match === null)
      throw invalid('ERR_LEASE_PG_HANDLE_INVALID', 'a lease id is `lease_` and 32 hex digits');
    return `${this.rolePrefix}${match[1]!}`;
  }

  async issue(context: LeaseContext): Promise<IssuedLease<PostgresLeaseValue>> {
    this.#checkOpen();
    const template = this.#templates.get(context.resource);
    if (template === undefined)
      throw notFound(
        'ERR_LEASE_PG_TEMPLATE_UNKNOWN',
        `no postgresql role template named \`${printable(context.resource)}\``,
      );
    const role = this.roleName(context.leaseId);
    checkExpiry(context.expiresAt);
    if (!Number.isSafeInteger(context.nowSeconds) || context.expiresAt <= context.nowSeconds)
      throw invalid('ERR_LEASE_PG_EXPIRY_INVALID', 'a postgresql lease must end after it starts');
    const target = await this.#targetOnce();
    const password = Buffer.from(randomBytes(PASSWORD_BYTES)).toString('base64url');
    const verifier = await scramSha256Verifier(password, randomBytes(SCRAM_SALT_BYTES));
    const id = escapeIdentifier(role);
    const statements = [
      GRANT_LOCK,
      `CREATE ROLE ${id} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS` +
        (template.connectionLimit === undefined
          ? ''
          : ` CONNECTION LIMIT ${template.connectionLimit}`) +
        ` PASSWORD ${escapeLiteral(verifier)} VALID UNTIL ${validUntil(context.expiresAt)}`,
      `COMMENT ON ROLE ${id} IS ${escapeLiteral(
        `mandate lease ${context.leaseId} created ${context.nowSeconds} by ${this.#brokerId}`,
      )}`,
      ...template.grants.flatMap((grant) => grantStatements(grant, id, target.database)),
    ];
    // One simple-protocol query: PostgreSQL runs a multi-statement string as one implicit
    // transaction, so the role appears with every grant or not at all, in one round trip.
    try {
      await this.#run(statements.join(';\n'), [], true);
    } catch (error) {
      // The server's text is withheld for this statement: say at least which template failed.
      if (isMandateError(error) && error.kind !== ErrorKind.unavailable)
        throw new MandateError(
          error.code,
          error.kind,
          `${error.message} while creating a role from template \`${context.resource}\``,
        );
      throw error;
    }
    return {
      handle: role,
      value: {
        user: role,
        password,
        database: target.database,
        host: target.host,
        port: target.port,
      },
    };
  }

  async renew(lease: Lease, context: LeaseContext): Promise<undefined> {
    this.#checkOpen();
    const role = this.#checkHandle(lease.handle);
    checkExpiry(context.expiresAt);
    const done = await this.#run(
      `ALTER ROLE ${escapeIdentifier(role)} VALID UNTIL ${validUntil(context.expiresAt)}`,
      [],
      false,
      UNDEFINED_OBJECT,
    );
    if (done === undefined)
      throw notFound(
        'ERR_LEASE_PG_ROLE_NOT_FOUND',
        `the role of lease \`${printable(lease.id)}\` no longer exists`,
      );
    return undefined;
  }

  async revoke(lease: Lease): Promise<void> {
    this.#checkOpen();
    await this.#dropRole(this.#checkHandle(lease.handle));
  }

  async reap(live: ReadonlySet<string>): Promise<number> {
    this.#checkOpen();
    const rows = await this.#query<{ rolname: string; comment: string | null }>(
      `SELECT rolname, shobj_description(oid, 'pg_authid') AS comment
         FROM pg_roles WHERE starts_with(rolname, $1)`,
      [this.rolePrefix],
    );
    const before = this.#clock.nowSeconds() - this.#reapGraceSeconds;
    let dropped = 0;
    let failure: Error | undefined;
    for (const { rolname, comment } of rows) {
      if (live.has(rolname)) continue;
      const hex = this.#handleRe.exec(rolname)?.[1];
      const mark = comment === null ? null : COMMENT_RE.exec(comment);
      // Only roles this broker made: the name's shape, the comment naming the same lease and this
      // broker (another broker on the same server, even with the same prefix, keeps its roles).
      if (hex === undefined || mark === null || mark[1] !== `lease_${hex}`) continue;
      if (mark[3] !== this.#brokerId) continue;
      if (Number(mark[2]) > before) continue;
      try {
        if (await this.#dropRole(rolname)) dropped++;
      } catch (error) {
        // Keep reaping the others; the first failure is reported once all were tried.
        failure ??= error instanceof Error ? error : describeFailure(error, false);
      }
    }
    if (failure !== undefined) throw failure;
    return dropped;
  }

  /** Ends the admin connections. Leases stay valid until revoked or expired. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.end();
  }

  /**
   * Whether the role existed (and is now gone). A role that owns objects in other databases (a
   * large object made over a connection to `postgres`, which PUBLIC may CONNECT to) cannot be
   * dropped from here: those are dropped in each database the role's dependencies name, then the
   * role. If that fails too the role stays, NOLOGIN with no session left, and the revocation
   * fails with `ERR_LEASE_PG_ROLE_RESIDUE` (the broker retries it with backoff).
   */
  async #dropRole(role: string): Promise<boolean> {
    await this.#targetOnce();
    const id = escapeIdentifier(role);
    // First, committed on its own so that no login can start from here on: NOLOGIN. A missing
    // role (never made, or a concurrent revoke — the expiry timer and an explicit one — got
    // there first) counts as revoked.
    if ((await this.#run(`ALTER ROLE ${id} NOLOGIN`, [], false, UNDEFINED_OBJECT)) === undefined)
      return false;
    // Then, in one transaction: end its sessions in every database (waiting for each to exit, so
    // that DROP OWNED finds no temporary object still held), drop its grants and default
    // privileges in this database, and the role. (One simple-protocol string takes no bind
    // parameters: the role name, already checked against the handle's shape, is quoted as a
    // literal.)
    const drop = `${terminateSessions(role)};
       ${GRANT_LOCK};
       DROP OWNED BY ${id};
       DROP ROLE IF EXISTS ${id}`;
    const first = await this.#attempt(drop, [UNDEFINED_OBJECT, DEPENDENT_OBJECTS]);
    if (first !== DEPENDENT_OBJECTS) return first !== UNDEFINED_OBJECT;
    const residue = await this.#dropOwnedElsewhere(role);
    const second = await this.#attempt(drop, [UNDEFINED_OBJECT, DEPENDENT_OBJECTS]);
    if (second !== DEPENDENT_OBJECTS) return second !== UNDEFINED_OBJECT;
    throw conflict(
      ROLE_RESIDUE,
      `role \`${role}\` still owns objects${residue.length === 0 ? '' : ` in ${residue.map((d) => `\`${printable(d)}\``).join(', ')}`} and cannot be dropped yet; it can no longer log in and has no session`,
    );
  }

  /**
   * `DROP OWNED BY` the role in every other database where `pg_shdepend` says it owns or was
   * granted something, over an admin connection to that database. Returns the databases where
   * that failed (not reachable, not allowing connections, a privilege missing).
   */
  async #dropOwnedElsewhere(role: string): Promise<string[]> {
    const rows = await this.#query<{ datname: string }>(
      `SELECT DISTINCT d.datname FROM pg_shdepend s JOIN pg_database d ON d.oid = s.dbid
         WHERE s.refclassid = 'pg_authid'::regclass
           AND s.refobjid = (SELECT oid FROM pg_roles WHERE rolname = $1)
           AND d.datname <> current_database()`,
      [role],
    );
    const failed: string[] = [];
    for (const { datname } of rows) {
      let url: URL;
      try {
        url = new URL(this.#connectionString);
        url.pathname = `/${encodeURIComponent(datname)}`;
      } catch {
        failed.push(datname);
        continue;
      }
      const client = new Client(this.#clientConfig(url.toString()));
      client.on('error', () => undefined);
      try {
        await client.connect();
        await client.query(`${terminateSessions(role)}; DROP OWNED BY ${escapeIdentifier(role)}`);
      } catch {
        failed.push(datname);
      } finally {
        await client.end().catch(() => undefined);
      }
    }
    return failed;
  }

  /** Runs `text`; the SQLSTATE when the server answered one of `tolerated`, else `undefined`. */
  async #attempt(text: string, tolerated: readonly string[]): Promise<string | undefined> {
    let state: string | undefined;
    await this.#run(text, [], false, tolerated, (code) => (state = code));
    return state;
  }

  #checkHandle(handle: string): string {
    if (typeof handle !== 'string' || !this.#handleRe.test(handle))
      throw invalid(
        'ERR_LEASE_PG_HANDLE_INVALID',
        `a postgresql lease handle is \`${this.rolePrefix}\` and 32 hex digits`,
      );
    return handle;
  }

  #checkOpen(): void {
    if (this.#closed)
      throw unavailable('ERR_PG_UNAVAILABLE', 'the postgresql role provider is closed');
  }

  #targetOnce(): Promise<Target> {
    this.#target ??= this.#connectTarget().catch((error: unknown) => {
      this.#target = undefined;
      throw error;
    });
    return this.#target;
  }

  async #connectTarget(): Promise<Target> {
    const client = await this.#connect();
    try {
      const result = await client.query<{ database: string }>(
        'SELECT current_database() AS database',
      );
      await ensureLockTable(client);
      return { database: result.rows[0]!.database, host: client.host, port: client.port };
    } catch (error) {
      if (isMandateError(error)) throw error;
      throw describeFailure(error, false);
    } finally {
      client.release();
    }
  }

  async #connect(): Promise<PoolClient> {
    try {
      return await this.#pool.connect();
    } catch (error) {
      throw describeFailure(error, false);
    }
  }

  async #query<Row extends QueryResultRow = QueryResultRow>(
    text: string,
    values: readonly unknown[] = [],
  ): Promise<Row[]> {
    return (await this.#run<Row>(text, values))!;
  }

  /**
   * Runs `text` on a pooled connection; `undefined` when the server answers the SQLSTATE
   * `tolerated`. Other errors become MandateErrors whose message names the SQLSTATE and, unless
   * the statement holds a secret, the server's message; the server's error object is never
   * attached (its fields may quote the statement).
   */
  async #run<Row extends QueryResultRow = QueryResultRow>(
    text: string,
    values: readonly unknown[] = [],
    holdsSecret = false,
    tolerated?: string | readonly string[],
    onTolerated?: (sqlstate: string) => void,
  ): Promise<Row[] | undefined> {
    const client = await this.#connect();
    let broken = false;
    try {
      const result: unknown = await client.query<Row>(
        text,
        values.length === 0 ? undefined : [...values],
      );
      // A multi-statement string answers one result per statement; their rows are not wanted.
      return Array.isArray(result) ? [] : (result as { rows: Row[] }).rows;
    } catch (error) {
      if (
        error instanceof DatabaseError &&
        error.code !== undefined &&
        (typeof tolerated === 'string' ? error.code === tolerated : tolerated?.includes(error.code))
      ) {
        onTolerated?.(error.code);
        return undefined;
      }
      broken = !(error instanceof DatabaseError);
      throw describeFailure(error, holdsSecret);
    } finally {
      client.release(broken);
    }
  }
}

interface Target {
  readonly database: string;
  readonly host: string;
  readonly port: number;
}

const UNDEFINED_OBJECT = '42704';
/** `dependent_objects_still_exist`: DROP ROLE of a role that owns objects in another database. */
const DEPENDENT_OBJECTS = '2BP01';
const ROLE_RESIDUE = 'ERR_LEASE_PG_ROLE_RESIDUE';
const LOCK_TABLE = `${escapeIdentifier(BROKER_SCHEMA)}.grant_lock`;

/**
 * Taken first by every transaction that grants or revokes (issue, and the drop of revoke), held
 * until it commits. GRANT and REVOKE rewrite the object's ACL in place — the database's row in
 * `pg_database`, the schema's in `pg_namespace`, each table's in `pg_class` — and two
 * transactions rewriting the same row fail with "tuple concurrently updated" (XX000): leases
 * issued at once, by this broker or another on the same database, would fail.
 *
 * The lock is a table lock in the broker's own schema, which PUBLIC has no `USAGE` on: a leased
 * role cannot name the table, so cannot take it and hold it (an advisory lock, which any role may
 * take, let one leased role freeze every revocation). EXCLUSIVE conflicts with itself but not
 * with the ACCESS SHARE that size functions take by OID without a privilege.
 */
const GRANT_LOCK = `LOCK TABLE ${LOCK_TABLE} IN EXCLUSIVE MODE`;

/** Ends the role's sessions in every database of the server (pg_stat_activity is cluster-wide). */
function terminateSessions(role: string): string {
  return `SELECT pg_terminate_backend(pid, ${TERMINATE_TIMEOUT_MS}) FROM pg_stat_activity
         WHERE usename = ${escapeLiteral(role)}`;
}

/**
 * Makes the lock table's schema and table when missing, takes PUBLIC's privileges on both away
 * (idempotent), and refuses to go on if PUBLIC still has \`USAGE\` on the schema.
 */
async function ensureLockTable(client: PoolClient): Promise<void> {
  const schema = escapeIdentifier(BROKER_SCHEMA);
  const present = await client.query<{ present: boolean }>(
    `SELECT to_regclass($1) IS NOT NULL AS present`,
    [`${BROKER_SCHEMA}.grant_lock`],
  );
  if (present.rows[0]?.present !== true) {
    for (let attempt = 0; ; attempt++) {
      try {
        await client.query(
          `CREATE SCHEMA IF NOT EXISTS ${schema};
           REVOKE ALL ON SCHEMA ${schema} FROM PUBLIC;
           CREATE TABLE IF NOT EXISTS ${LOCK_TABLE} ();
           REVOKE ALL ON TABLE ${LOCK_TABLE} FROM PUBLIC`,
        );
        break;
      } catch (error) {
        // Two brokers creating it at once: one loses the race on the catalog's unique index.
        if (attempt === 0 && error instanceof DatabaseError && error.code === '23505') continue;
        throw error;
      }
    }
  }
  const open = await client.query<{ open: boolean }>(
    `SELECT has_schema_privilege('public', $1, 'USAGE') AS open`,
    [BROKER_SCHEMA],
  );
  if (open.rows[0]?.open === true)
    throw forbidden(
      'ERR_PG_PRIVILEGE_MISSING',
      `schema \`${BROKER_SCHEMA}\` grants USAGE to PUBLIC, so leased roles could take the broker's lock: revoke it`,
    );
}

function checkExpiry(expiresAt: number): void {
  if (!Number.isSafeInteger(expiresAt) || expiresAt < 0 || expiresAt > 253_402_300_799)
    throw invalid('ERR_LEASE_PG_EXPIRY_INVALID', 'a lease expiry must be whole unix seconds');
}

/** `VALID UNTIL` as a quoted UTC timestamp. */
function validUntil(expiresAt: number): string {
  return escapeLiteral(new Date(expiresAt * 1000).toISOString());
}

function grantStatements(grant: RoleGrant, role: string, database: string): string[] {
  switch (grant.on) {
    case 'database':
      return [`GRANT CONNECT ON DATABASE ${escapeIdentifier(database)} TO ${role}`];
    case 'schema':
      return [`GRANT USAGE ON SCHEMA ${escapeIdentifier(grant.schema)} TO ${role}`];
    case 'tables':
    case 'sequences': {
      const schema = escapeIdentifier(grant.schema);
      const privileges = grant.privileges.join(', ');
      const kind = grant.on === 'tables' ? 'TABLES' : 'SEQUENCES';
      const now = `GRANT ${privileges} ON ALL ${kind} IN SCHEMA ${schema} TO ${role}`;
      if (grant.future !== true) return [now];
      return [
        now,
        `ALTER DEFAULT PRIVILEGES IN SCHEMA ${schema} GRANT ${privileges} ON ${kind} TO ${role}`,
      ];
    }
  }
}

// --- templates ---------------------------------------------------------------------------------

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkKeys(
  value: Record<string, unknown>,
  allowed: readonly string[],
  where: string,
): void {
  for (const key of Object.keys(value))
    if (!allowed.includes(key))
      throw invalid(TEMPLATE_INVALID, `${where} has an unknown field \`${printable(key)}\``);
}

/** Templates come from config: checked field by field, never trusted for their declared type. */
function parseTemplates(templates: unknown): ReadonlyMap<string, RoleTemplate> {
  if (!isRecord(templates))
    throw invalid(TEMPLATE_INVALID, 'postgresql role templates must be an object of templates');
  const parsed = new Map<string, RoleTemplate>([['readonly', READONLY_ROLE_TEMPLATE]]);
  for (const [name, template] of Object.entries(templates)) {
    if (!TEMPLATE_NAME_RE.test(name))
      throw invalid(
        TEMPLATE_INVALID,
        `a role template name must be 1 to 63 lower-case letters, digits, \`-\` or \`_\`, starting with a letter: \`${printable(name)}\``,
      );
    parsed.set(name, parseTemplate(template, `role template \`${name}\``));
  }
  return parsed;
}

function parseTemplate(value: unknown, where: string): RoleTemplate {
  if (!isRecord(value)) throw invalid(TEMPLATE_INVALID, `${where} must be an object`);
  checkKeys(value, ['grants', 'connectionLimit'], where);
  const { grants, connectionLimit } = value;
  if (!Array.isArray(grants) || grants.length === 0)
    throw invalid(TEMPLATE_INVALID, `${where} needs a non-empty list of grants`);
  if (grants.length > 64) throw invalid(TEMPLATE_INVALID, `${where} has more than 64 grants`);
  const parsedGrants = grants.map((grant, i) => parseGrant(grant, `${where}, grant ${i + 1},`));
  if (connectionLimit === undefined) return { grants: parsedGrants };
  if (
    typeof connectionLimit !== 'number' ||
    !Number.isSafeInteger(connectionLimit) ||
    connectionLimit < 1 ||
    connectionLimit > 1000
  )
    throw invalid(TEMPLATE_INVALID, `${where} has a connection limit outside 1 to 1000`);
  return { grants: parsedGrants, connectionLimit };
}

function parseGrant(value: unknown, where: string): RoleGrant {
  if (!isRecord(value)) throw invalid(TEMPLATE_INVALID, `${where} must be an object`);
  switch (value.on) {
    case 'database':
      checkKeys(value, ['on'], where);
      return { on: 'database' };
    case 'schema':
      checkKeys(value, ['on', 'schema'], where);
      return { on: 'schema', schema: parseIdentifier(value.schema, where) };
    case 'tables':
    case 'sequences': {
      checkKeys(value, ['on', 'schema', 'privileges', 'future'], where);
      const allowed: readonly string[] = Object.values(
        value.on === 'tables' ? TablePrivilege : SequencePrivilege,
      );
      const { privileges, future } = value;
      if (!Array.isArray(privileges) || privileges.length === 0)
        throw invalid(TEMPLATE_INVALID, `${where} needs a non-empty list of privileges`);
      const seen = new Set<string>();
      for (const privilege of privileges) {
        if (typeof privilege !== 'string' || !allowed.includes(privilege))
          throw invalid(
            TEMPLATE_INVALID,
            `${where} names a privilege outside ${allowed.join(', ')} on ${value.on}: \`${printable(String(privilege))}\``,
          );
        seen.add(privilege);
      }
      if (future !== undefined && typeof future !== 'boolean')
        throw invalid(TEMPLATE_INVALID, `${where} has a \`future\` that is not true or false`);
      const schema = parseIdentifier(value.schema, where);
      const base = { schema, future: future === true };
      return value.on === 'tables'
        ? { on: 'tables', ...base, privileges: [...seen] as TablePrivilege[] }
        : { on: 'sequences', ...base, privileges: [...seen] as SequencePrivilege[] };
    }
    default:
      throw invalid(
        TEMPLATE_INVALID,
        `${where} grants on something other than database, schema, tables or sequences`,
      );
  }
}

/**
 * A schema name: any text PostgreSQL takes as a quoted identifier (1 to 63 bytes, no control
 * characters). It is always quoted, so quotes and semicolons in it are just characters.
 */
function parseIdentifier(value: unknown, where: string): string {
  if (
    typeof value !== 'string' ||
    value === '' ||
    Buffer.byteLength(value) > MAX_IDENTIFIER_BYTES ||
    hasControlCharacters(value)
  )
    throw invalid(
      TEMPLATE_INVALID,
      `${where} needs a schema name of 1 to 63 bytes without control characters`,
    );
  if (value === BROKER_SCHEMA)
    throw invalid(TEMPLATE_INVALID, `${where} names the broker's own schema \`${BROKER_SCHEMA}\``);
  return value;
}

/** A user value for a message: bounded, control characters escaped. */
function printable(value: string): string {
  const short = value.length > 64 ? `${value.slice(0, 64)}…` : value;
  return escapeControlCharacters(short).replaceAll('`', "'");
}

// --- errors ------------------------------------------------------------------------------------

/** SQLSTATE classes and codes that mean "the server cannot be used right now". */
function isUnavailableState(code: string): boolean {
  return (
    code.startsWith('08') || // connection exception
    code.startsWith('53') || // insufficient resources (too many connections, out of memory)
    code.startsWith('57P') || // admin or crash shutdown, cannot connect now
    code.startsWith('28') || // the broker's own login refused
    code === '3D000' // the admin connection's database does not exist
  );
}

function describeFailure(error: unknown, holdsSecret: boolean): Error {
  if (error instanceof DatabaseError) {
    const code = error.code ?? 'XX000';
    // A statement holding a secret gets no server text at all: a syntax error quotes the
    // statement near the fault, which might be the secret itself.
    const text = holdsSecret ? '' : `: ${printable(error.message)}`;
    if (isUnavailableState(code))
      return unavailable(
        'ERR_PG_UNAVAILABLE',
        `postgresql cannot be used${text} (sqlstate ${code})`,
      );
    if (code === '55P03' || code === '57014')
      return timeout(
        'ERR_PG_TIMEOUT',
        `postgresql gave up waiting${text} (sqlstate ${code}, lock_timeout or statement_timeout)`,
      );
    if (code === '42501')
      return forbidden(
        'ERR_PG_PRIVILEGE_MISSING',
        `the broker's postgresql role lacks a privilege${text} (sqlstate ${code})`,
      );
    if (code === '3F000' || code === UNDEFINED_OBJECT)
      return notFound(
        'ERR_PG_OBJECT_NOT_FOUND',
        `postgresql has no such object${text} (sqlstate ${code})`,
      );
    return internal(
      'ERR_PG_STATEMENT_FAILED',
      `postgresql refused a statement${text} (sqlstate ${code})`,
    );
  }
  if (error instanceof Error && error.message === 'Query read timeout')
    return timeout('ERR_PG_TIMEOUT', 'postgresql did not answer in time');
  // Not from the server: the connection failed, timed out or dropped. Node's system errors carry
  // a code (ECONNREFUSED); pg's own messages name the connection, never the connection string.
  const code =
    error instanceof Error && 'code' in error && typeof error.code === 'string'
      ? ` (${printable(error.code)})`
      : '';
  return unavailable('ERR_PG_UNAVAILABLE', `postgresql cannot be reached${code}`);
}
