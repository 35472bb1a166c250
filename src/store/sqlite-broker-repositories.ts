import { conflict, internal } from '../core/internal.js';
import type { Identifier } from '../identity/index.js';
import {
  LeaseKind,
  LeaseState,
  type Lease,
  type LeaseRepository,
  type SealedSecretRecord,
  type SecretInfo,
  type SecretRepository,
} from '../broker/index.js';
import type { SqliteDatabase } from './sqlite-database.js';

/**
 * Migration 12: the broker's sealed secrets (docs/spec/broker.md §1). `sealed` is the value under
 * the vault's KEK; nothing else in the row is secret.
 */
export const BROKER_SECRETS_MIGRATION_SQL = `CREATE TABLE broker_secrets (
  name TEXT PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 64),
  version INTEGER NOT NULL CHECK (version >= 1),
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  sealed BLOB NOT NULL
) STRICT;`;

/**
 * Migration 13: the broker's leases (docs/spec/broker.md §2) — never a leased value — and, per
 * lease, the ids whose revocation kills it (its chain's revocation subjects and its holder), so
 * that the deny-set cascade is one indexed lookup. `provider_done` is 0 for a lease that ended
 * and whose provider has not been told yet.
 */
export const BROKER_LEASES_MIGRATION_SQL = `CREATE TABLE broker_leases (
  id TEXT PRIMARY KEY CHECK (length(id) = 38),
  kind TEXT NOT NULL CHECK (kind IN ('jwt', 'postgres', 'proxy')),
  holder TEXT NOT NULL,
  resource TEXT NOT NULL,
  scope TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  max_expires_at INTEGER NOT NULL,
  renewals INTEGER NOT NULL CHECK (renewals >= 0),
  state TEXT NOT NULL CHECK (state IN ('active', 'expired', 'revoked')),
  ended_at INTEGER,
  end_reason TEXT,
  handle TEXT NOT NULL,
  chain_ids TEXT NOT NULL,
  provider_done INTEGER NOT NULL DEFAULT 1 CHECK (provider_done IN (0, 1)),
  CHECK ((state = 'active') = (ended_at IS NULL))
) STRICT;
CREATE INDEX broker_leases_due ON broker_leases (expires_at) WHERE state = 'active';
CREATE INDEX broker_leases_pending ON broker_leases (ended_at) WHERE provider_done = 0;
CREATE INDEX broker_leases_created ON broker_leases (created_at);
CREATE TABLE broker_lease_ids (
  revocation_id TEXT NOT NULL,
  lease TEXT NOT NULL REFERENCES broker_leases (id) ON DELETE CASCADE,
  PRIMARY KEY (revocation_id, lease)
) STRICT, WITHOUT ROWID;`;

interface SecretRow {
  name: string;
  version: number;
  created_at: number;
  updated_at: number;
  sealed: Buffer;
}

/** {@link SecretRepository} over SQLite. */
export class SqliteSecretRepository implements SecretRepository {
  readonly #database: SqliteDatabase;

  constructor(database: SqliteDatabase) {
    this.#database = database;
  }

  async insert(record: SealedSecretRecord): Promise<void> {
    const db = this.#database.db;
    const inserted = await this.#database.write(
      () =>
        db
          .prepare(
            `INSERT INTO broker_secrets (name, version, created_at, updated_at, sealed)
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING`,
          )
          .run(record.name, record.version, record.createdAt, record.updatedAt, record.sealed)
          .changes,
    );
    if (inserted === 0)
      throw conflict(
        'ERR_SECRET_EXISTS',
        `secret \`${record.name}\` exists: use \`mandate secret rotate\` to replace its value`,
      );
  }

  async replace(record: SealedSecretRecord): Promise<boolean> {
    const db = this.#database.db;
    const changed = await this.#database.write(
      () =>
        db
          .prepare(
            `UPDATE broker_secrets SET version = ?, updated_at = ?, sealed = ?
             WHERE name = ? AND version = ?`,
          )
          .run(record.version, record.updatedAt, record.sealed, record.name, record.version - 1)
          .changes,
    );
    return changed === 1;
  }

  get(name: string): Promise<SealedSecretRecord | undefined> {
    const row = this.#database.db
      .prepare<[string], SecretRow>('SELECT * FROM broker_secrets WHERE name = ?')
      .get(name);
    return Promise.resolve(
      row === undefined ? undefined : { ...infoOf(row), sealed: new Uint8Array(row.sealed) },
    );
  }

  list(): Promise<readonly SecretInfo[]> {
    const rows = this.#database.db
      .prepare<[], Omit<SecretRow, 'sealed'>>(
        'SELECT name, version, created_at, updated_at FROM broker_secrets ORDER BY name',
      )
      .all();
    return Promise.resolve(rows.map(infoOf));
  }

  async remove(name: string): Promise<boolean> {
    const db = this.#database.db;
    const removed = await this.#database.write(
      () => db.prepare('DELETE FROM broker_secrets WHERE name = ?').run(name).changes,
    );
    return removed === 1;
  }
}

function infoOf(row: Omit<SecretRow, 'sealed'>): SecretInfo {
  return {
    name: row.name,
    version: row.version,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

interface LeaseRow {
  id: string;
  kind: string;
  holder: string;
  resource: string;
  scope: string;
  created_at: number;
  expires_at: number;
  max_expires_at: number;
  renewals: number;
  state: string;
  ended_at: number | null;
  end_reason: string | null;
  handle: string;
  chain_ids: string;
}

const KINDS: ReadonlySet<string> = new Set(Object.values(LeaseKind));
const STATES: ReadonlySet<string> = new Set(Object.values(LeaseState));

function stringArray(text: string, id: string): readonly string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw internal('ERR_STORE_CORRUPT', `lease \`${id}\` does not parse`, cause);
  }
  if (!Array.isArray(parsed) || !parsed.every((v) => typeof v === 'string'))
    throw internal('ERR_STORE_CORRUPT', `lease \`${id}\` has a malformed list`);
  return Object.freeze(parsed);
}

function leaseOf(row: LeaseRow): Lease {
  if (!KINDS.has(row.kind) || !STATES.has(row.state))
    throw internal('ERR_STORE_CORRUPT', `lease \`${row.id}\` has an unknown kind or state`);
  return {
    id: row.id,
    kind: row.kind as LeaseKind,
    holder: row.holder as Identifier,
    chainIds: stringArray(row.chain_ids, row.id),
    resource: row.resource,
    scope: stringArray(row.scope, row.id),
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    maxExpiresAt: row.max_expires_at,
    renewals: row.renewals,
    state: row.state as LeaseState,
    ...(row.ended_at === null ? {} : { endedAt: row.ended_at }),
    ...(row.end_reason === null ? {} : { endReason: row.end_reason }),
    handle: row.handle,
  };
}

/** SQLite allows at most 32 766 bound parameters; lists are bound in chunks well below it. */
const CHUNK = 500;

function chunks<T>(items: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += CHUNK) out.push(items.slice(i, i + CHUNK));
  return out;
}

/** {@link LeaseRepository} over SQLite: every state change a conditional write in a transaction. */
export class SqliteLeaseRepository implements LeaseRepository {
  readonly #database: SqliteDatabase;

  constructor(database: SqliteDatabase) {
    this.#database = database;
  }

  async insert(lease: Lease): Promise<void> {
    const db = this.#database.db;
    const ids = new Set([...lease.chainIds, lease.holder]);
    await this.#database.write(() => {
      db.transaction(() => {
        db.prepare(
          `INSERT INTO broker_leases (id, kind, holder, resource, scope, created_at, expires_at,
             max_expires_at, renewals, state, ended_at, end_reason, handle, chain_ids, provider_done)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', NULL, NULL, ?, ?, 1)`,
        ).run(
          lease.id,
          lease.kind,
          lease.holder,
          lease.resource,
          JSON.stringify(lease.scope),
          lease.createdAt,
          lease.expiresAt,
          lease.maxExpiresAt,
          lease.renewals,
          lease.handle,
          JSON.stringify(lease.chainIds),
        );
        const add = db.prepare(
          'INSERT OR IGNORE INTO broker_lease_ids (revocation_id, lease) VALUES (?, ?)',
        );
        for (const id of ids) add.run(id, lease.id);
      })();
    });
  }

  get(id: string): Promise<Lease | undefined> {
    const row = this.#database.db
      .prepare<[string], LeaseRow>('SELECT * FROM broker_leases WHERE id = ?')
      .get(id);
    return Promise.resolve(row === undefined ? undefined : leaseOf(row));
  }

  async renew(
    id: string,
    change: { readonly expiresAt: number; readonly handle: string; readonly renewals: number },
  ): Promise<Lease | undefined> {
    const db = this.#database.db;
    const changed = await this.#database.write(
      () =>
        db
          .prepare(
            `UPDATE broker_leases SET expires_at = ?, handle = ?, renewals = ?
             WHERE id = ? AND state = 'active'`,
          )
          .run(change.expiresAt, change.handle, change.renewals, id).changes,
    );
    return changed === 1 ? this.get(id) : undefined;
  }

  async end(
    ids: readonly string[],
    state: typeof LeaseState.revoked | typeof LeaseState.expired,
    at: number,
    reason: string,
  ): Promise<readonly Lease[]> {
    const db = this.#database.db;
    return this.#database.write(() =>
      db.transaction(() => {
        const ended: Lease[] = [];
        for (const part of chunks(ids)) {
          const marks = part.map(() => '?').join(', ');
          const rows = db
            .prepare<unknown[], LeaseRow>(
              `UPDATE broker_leases SET state = ?, ended_at = ?, end_reason = ?, provider_done = 0
               WHERE state = 'active' AND id IN (${marks}) RETURNING *`,
            )
            .all(state, at, reason, ...part);
          for (const row of rows) ended.push(leaseOf(row));
        }
        return ended;
      })(),
    );
  }

  async endMatching(ids: readonly string[], at: number, reason: string): Promise<readonly Lease[]> {
    const db = this.#database.db;
    return this.#database.write(() =>
      db.transaction(() => {
        const ended: Lease[] = [];
        for (const part of chunks([...new Set(ids)])) {
          const marks = part.map(() => '?').join(', ');
          const rows = db
            .prepare<unknown[], LeaseRow>(
              `UPDATE broker_leases SET state = 'revoked', ended_at = ?, end_reason = ?, provider_done = 0
               WHERE state = 'active' AND id IN
                 (SELECT lease FROM broker_lease_ids WHERE revocation_id IN (${marks}))
               RETURNING *`,
            )
            .all(at, reason, ...part);
          for (const row of rows) ended.push(leaseOf(row));
        }
        return ended;
      })(),
    );
  }

  due(nowSeconds: number, limit: number): Promise<readonly Lease[]> {
    const rows = this.#database.db
      .prepare<[number, number], LeaseRow>(
        `SELECT * FROM broker_leases WHERE state = 'active' AND expires_at <= ?
         ORDER BY expires_at LIMIT ?`,
      )
      .all(nowSeconds, limit);
    return Promise.resolve(rows.map(leaseOf));
  }

  list(
    filter: {
      readonly state?: LeaseState;
      readonly holder?: Identifier;
      readonly limit?: number;
    } = {},
  ): Promise<readonly Lease[]> {
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (filter.state !== undefined) {
      where.push('state = ?');
      params.push(filter.state);
    }
    if (filter.holder !== undefined) {
      where.push('holder = ?');
      params.push(filter.holder);
    }
    params.push(filter.limit ?? -1);
    const rows = this.#database.db
      .prepare<unknown[], LeaseRow>(
        `SELECT * FROM broker_leases ${where.length === 0 ? '' : `WHERE ${where.join(' AND ')}`}
         ORDER BY created_at DESC, id LIMIT ?`,
      )
      .all(...params);
    return Promise.resolve(rows.map(leaseOf));
  }

  pending(limit: number): Promise<readonly Lease[]> {
    const rows = this.#database.db
      .prepare<[number], LeaseRow>(
        'SELECT * FROM broker_leases WHERE provider_done = 0 ORDER BY ended_at LIMIT ?',
      )
      .all(limit);
    return Promise.resolve(rows.map(leaseOf));
  }

  async providerDone(id: string): Promise<void> {
    const db = this.#database.db;
    await this.#database.write(() => {
      db.prepare('UPDATE broker_leases SET provider_done = 1 WHERE id = ?').run(id);
    });
  }
}
