import { chmodSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { conflict, SerialScope, unavailable, unsupported } from '../core/internal.js';

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/**
 * One better-sqlite3 connection in WAL mode with versioned migrations and an async-friendly
 * transaction: writes from concurrent async tasks are serialised through one lock, so a task's
 * writes can never land inside (and be rolled back with) another task's transaction.
 *
 * `synchronous = NORMAL` in WAL mode: a committed transaction survives a crash of the process
 * (kill -9); only a power loss can drop the last commits.
 */
export class SqliteDatabase {
  readonly db: Database.Database;
  readonly #scope = new SerialScope();

  constructor(path: string, migrations: readonly Migration[]) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    try {
      this.db = new Database(path);
      // Sealed keys are safe to read, but histories, names and key ids are nobody else's
      // business; SQLite gives the -wal and -shm files the database file's mode.
      if (path !== ':memory:') chmodSync(path, 0o600);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      this.db.pragma('foreign_keys = ON');
      this.db.pragma('busy_timeout = 5000');
    } catch (cause) {
      throw unavailable('ERR_STORE_UNAVAILABLE', `cannot open the database at \`${path}\``, cause);
    }
    this.#migrate(migrations);
  }

  #migrate(migrations: readonly Migration[]): void {
    this.db.exec(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT',
    );
    const applied = new Set(
      this.db
        .prepare<[], { version: number }>('SELECT version FROM schema_migrations')
        .all()
        .map((r) => r.version),
    );
    const known = new Set(migrations.map((m) => m.version));
    for (const version of applied) {
      if (!known.has(version)) {
        throw unsupported(
          'ERR_STORE_SCHEMA_NEWER',
          `the database has schema version ${version}, which this Mandate does not know; upgrade Mandate`,
        );
      }
    }
    const record = this.db.prepare(
      'INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)',
    );
    for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
      if (applied.has(m.version)) continue;
      this.db
        .transaction(() => {
          this.db.exec(m.sql);
          record.run(m.version, m.name, Math.floor(Date.now() / 1000));
        })
        .immediate();
    }
  }

  /**
   * Runs `work` in one SQLite transaction (BEGIN IMMEDIATE … COMMIT, ROLLBACK on any error).
   * Nested calls join the outer transaction.
   */
  transaction<T>(work: () => Promise<T>): Promise<T> {
    return this.#scope.transaction(work, {
      begin: () => {
        try {
          this.db.exec('BEGIN IMMEDIATE');
        } catch (error) {
          throw busyError(error);
        }
      },
      commit: () => this.db.exec('COMMIT'),
      rollback: () => {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
      },
    });
  }

  /** A single write: joins the current transaction, or waits for the lock and autocommits. */
  write<T>(statement: () => T): Promise<T> {
    return this.#scope.write(() => {
      try {
        return statement();
      } catch (error) {
        throw busyError(error);
      }
    });
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

/**
 * Another process held SQLite's write lock past `busy_timeout` (5 s): a typed conflict (nothing
 * of this statement or transaction was written), anything else unchanged.
 */
function busyError(error: unknown): unknown {
  if (
    error instanceof Error &&
    'code' in error &&
    typeof error.code === 'string' &&
    (error.code === 'SQLITE_BUSY' || error.code.startsWith('SQLITE_BUSY_'))
  )
    return conflict(
      'ERR_STORE_BUSY',
      'another process kept the database busy for more than 5 s; nothing was written, try again',
    );
  return error;
}
