import type { Statement, Transaction } from 'better-sqlite3';
import { internal } from '../core/internal.js';
import { isMandateError } from '../core/index.js';
import type {
  DenyEntry,
  DenySetRepository,
  DenySetSnapshot,
  DenySetUpdate,
} from '../credentials/index.js';
import {
  checkNonNegativeInteger,
  denySetAheadError,
  denySetPrunedError,
  parseDenyEntry,
} from '../credentials/internal.js';
import type { SqliteDatabase } from './sqlite-database.js';

/**
 * The `deny_set` table and its high-water mark. Pruning deletes rows, so `MAX(sequence)` can go
 * back; the single row of `deny_set_sequence` cannot (a trigger refuses to lower it), and a second
 * trigger refuses a row at or below it, so a sequence number is never reused — a verifier that
 * saw number N must never be handed a different entry under N. The CHECKs make SQLite refuse any
 * row `parseDenyEntry` would.
 */
export const DENY_SET_MIGRATION_SQL = `CREATE TABLE deny_set (
  sequence INTEGER PRIMARY KEY,
  kind TEXT NOT NULL,
  id TEXT NOT NULL UNIQUE,
  expires_at INTEGER NOT NULL CHECK (expires_at BETWEEN 0 AND 9007199254740991),
  revoked_at INTEGER NOT NULL CHECK (revoked_at BETWEEN 0 AND 9007199254740991),
  reason TEXT CHECK (reason IS NULL OR length(reason) <= 200),
  CHECK (sequence > 0),
  CHECK (
    (kind = 'revocation-id' AND length(id) = 32 AND id NOT GLOB '*[^0-9a-f]*')
    OR (kind = 'identity' AND length(id) = 65 AND substr(id, 1, 1) = 'I'
      AND substr(id, 2) NOT GLOB '*[^0-9a-f]*')
  )
) STRICT;
CREATE INDEX deny_set_expires_at ON deny_set (expires_at);
CREATE TABLE deny_set_sequence (
  singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
  sequence INTEGER NOT NULL CHECK (sequence >= 0)
) STRICT;
INSERT INTO deny_set_sequence (singleton, sequence) VALUES (1, 0);
CREATE TRIGGER deny_set_sequence_monotonic BEFORE UPDATE ON deny_set_sequence
  WHEN NEW.sequence < OLD.sequence
  BEGIN SELECT RAISE(ABORT, 'the deny-set sequence never goes back'); END;
CREATE TRIGGER deny_set_sequence_fresh BEFORE INSERT ON deny_set
  WHEN NEW.sequence <= (SELECT sequence FROM deny_set_sequence WHERE singleton = 1)
  BEGIN SELECT RAISE(ABORT, 'a deny-set sequence number is never reused'); END;`;

interface DenyRow {
  sequence: number;
  kind: string;
  id: string;
  expires_at: number;
  revoked_at: number;
  reason: string | null;
}

const COLUMNS = 'sequence, kind, id, expires_at, revoked_at, reason';

/**
 * DenySetRepository on SQLite. Reads go through the database's write lock too: otherwise a read
 * issued while another task's transaction is open would see that transaction's appends, hand them
 * to a verifier, and after a rollback their sequence numbers would be given to other entries.
 */
export class SqliteDenySetRepository implements DenySetRepository {
  readonly #database: SqliteDatabase;
  readonly #insert: Statement<[number, string, string, number, number, string | null]>;
  readonly #highWater: Statement<[], { sequence: number }>;
  readonly #setHighWater: Statement<[number]>;
  readonly #since: Statement<[number], DenyRow>;
  readonly #live: Statement<[number], DenyRow>;
  readonly #prune: Statement<[number]>;
  readonly #append: Transaction<
    (entries: readonly DenyEntry[]) => { fromSequence: number; added: DenyEntry[] }
  >;
  readonly #readSince: Transaction<(sequence: number) => { current: number; rows: DenyRow[] }>;
  readonly #readLive: Transaction<(nowSeconds: number) => { current: number; rows: DenyRow[] }>;

  constructor(database: SqliteDatabase) {
    this.#database = database;
    const db = database.db;
    // A duplicate id is the documented no-op; a clash on `sequence` is not caught here, and the
    // triggers above raise on anything that would reuse a number.
    this.#insert = db.prepare(
      `INSERT INTO deny_set (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
    );
    this.#highWater = db.prepare('SELECT sequence FROM deny_set_sequence WHERE singleton = 1');
    this.#setHighWater = db.prepare(
      'UPDATE deny_set_sequence SET sequence = ? WHERE singleton = 1',
    );
    this.#since = db.prepare(
      `SELECT ${COLUMNS} FROM deny_set WHERE sequence > ? ORDER BY sequence`,
    );
    this.#live = db.prepare(
      `SELECT ${COLUMNS} FROM deny_set WHERE expires_at >= ? ORDER BY sequence`,
    );
    this.#prune = db.prepare('DELETE FROM deny_set WHERE expires_at < ?');

    this.#append = db.transaction((entries: readonly DenyEntry[]) => {
      const fromSequence = this.#current();
      let sequence = fromSequence;
      const added: DenyEntry[] = [];
      for (const entry of entries) {
        const { changes } = this.#insert.run(
          sequence + 1,
          entry.kind,
          entry.id,
          entry.expiresAt,
          entry.revokedAt,
          entry.reason ?? null,
        );
        if (changes === 0) continue;
        sequence++;
        added.push(entry);
      }
      this.#setHighWater.run(sequence);
      return { fromSequence, added };
    });
    // Both reads in one transaction: the high-water mark and the rows come from one snapshot even
    // if another process appends in between.
    this.#readSince = db.transaction((sequence: number) => ({
      current: this.#current(),
      rows: this.#since.all(sequence),
    }));
    this.#readLive = db.transaction((nowSeconds: number) => ({
      current: this.#current(),
      rows: this.#live.all(nowSeconds),
    }));
  }

  async append(entries: readonly DenyEntry[], nowSeconds: number): Promise<DenySetUpdate> {
    checkNonNegativeInteger('nowSeconds', nowSeconds);
    const parsed = entries.map(parseDenyEntry);
    let appended: { fromSequence: number; added: DenyEntry[] };
    try {
      // IMMEDIATE takes SQLite's write lock up front (no SQLITE_BUSY on upgrade); nested in an
      // open transaction, better-sqlite3 uses a savepoint instead.
      appended = await this.#database.write(() => this.#append.immediate(parsed));
    } catch (error) {
      if (isConstraintViolation(error))
        throw internal(
          'ERR_STORE_CORRUPT',
          '`deny_set` holds a sequence number at or above its high-water mark',
          error,
        );
      throw error;
    }
    const { fromSequence, added } = appended;
    return {
      fromSequence,
      toSequence: fromSequence + added.length,
      entries: added,
      issuedAt: nowSeconds,
    };
  }

  async updatesSince(sequence: number, nowSeconds: number): Promise<DenySetUpdate> {
    checkNonNegativeInteger('sequence', sequence);
    checkNonNegativeInteger('nowSeconds', nowSeconds);
    const { current, rows } = await this.#database.write(() => this.#readSince.deferred(sequence));
    if (sequence > current) throw denySetAheadError(sequence, current);
    if (rows.length !== current - sequence) throw denySetPrunedError(sequence);
    return {
      fromSequence: sequence,
      toSequence: current,
      entries: rows.map(toDenyEntry),
      issuedAt: nowSeconds,
    };
  }

  async snapshot(nowSeconds: number): Promise<DenySetSnapshot> {
    checkNonNegativeInteger('nowSeconds', nowSeconds);
    const { current, rows } = await this.#database.write(() => this.#readLive.deferred(nowSeconds));
    return { sequence: current, entries: rows.map(toDenyEntry), issuedAt: nowSeconds };
  }

  async prune(nowSeconds: number): Promise<number> {
    checkNonNegativeInteger('nowSeconds', nowSeconds);
    return (await this.#database.write(() => this.#prune.run(nowSeconds))).changes;
  }

  currentSequence(): Promise<number> {
    return this.#database.write(() => this.#current());
  }

  #current(): number {
    const row = this.#highWater.get();
    if (row === undefined || !Number.isSafeInteger(row.sequence) || row.sequence < 0)
      throw internal('ERR_STORE_CORRUPT', '`deny_set_sequence` has no valid high-water mark');
    return row.sequence;
  }
}

/** Only a hand-edited high-water mark can make an append clash on `sequence` or trip a trigger. */
function isConstraintViolation(error: unknown): boolean {
  return (
    error instanceof Error &&
    'code' in error &&
    (error.code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || error.code === 'SQLITE_CONSTRAINT_TRIGGER')
  );
}

/** The table's constraints should make this check redundant; a hand-edited database may not. */
function toDenyEntry(row: DenyRow): DenyEntry {
  try {
    return parseDenyEntry({
      kind: row.kind,
      id: row.id,
      expiresAt: row.expires_at,
      revokedAt: row.revoked_at,
      reason: row.reason ?? undefined,
    });
  } catch (error) {
    if (!isMandateError(error, 'ERR_DENY_ENTRY_INVALID')) throw error;
    throw internal(
      'ERR_STORE_CORRUPT',
      `row \`${row.sequence}\` of \`deny_set\` is not a valid entry`,
      error,
    );
  }
}
