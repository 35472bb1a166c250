import type { Statement, Transaction } from 'better-sqlite3';
import type {
  AuditLogEntry,
  AuditLogRepository,
  MerkleNodeId,
  StoredCheckpoint,
  StoredMerkleNode,
} from '../audit/index.js';
import {
  checkAppend,
  checkCheckpoint,
  checkNode,
  checkRange,
  entryNotFound,
} from '../audit/internal.js';
import { concatBytes } from '../encoding/index.js';
import type { SqliteDatabase } from './sqlite-database.js';

/**
 * Migration 10: the audit log, one row per entry. Entry j also carries the perfect subtree
 * hashes it completes — one per trailing 1 bit of j, levels 1, 2, … — in `nodes` (32 bytes each),
 * so node (ℓ, i) lives in row (i + 1)·2^ℓ − 1 at offset (ℓ − 1)·32: every node, one row per entry.
 * Entries are dense from 0 (`append` checks the size in its transaction; a per-row trigger
 * would halve the append rate) and append-only: triggers refuse an update or a delete. (They stop
 * mistakes, not an attacker with the file; `verifyStoredLog` and the signed checkpoints detect
 * those, and a read finds a gap.)
 */
export const AUDIT_LOG_MIGRATION_SQL = `
  CREATE TABLE audit_log_entries (
    idx INTEGER PRIMARY KEY CHECK (idx >= 0),
    record BLOB NOT NULL CHECK (length(record) <= 1048576),
    leaf_hash BLOB NOT NULL CHECK (length(leaf_hash) = 32),
    nodes BLOB NOT NULL CHECK (length(nodes) % 32 = 0 AND length(nodes) <= 1664)
  ) STRICT;
  CREATE TABLE audit_log_checkpoints (
    tree_size INTEGER PRIMARY KEY CHECK (tree_size >= 0),
    note TEXT NOT NULL CHECK (length(note) > 0),
    created_at INTEGER NOT NULL
  ) STRICT;
  CREATE TRIGGER audit_log_entries_no_update BEFORE UPDATE ON audit_log_entries
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
  CREATE TRIGGER audit_log_entries_no_delete BEFORE DELETE ON audit_log_entries
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;`;

const NO_NODES = new Uint8Array(0);

interface EntryRow {
  idx: number;
  record: Buffer;
  leaf_hash: Buffer;
}

/**
 * AuditLogRepository on SQLite. `append` is one transaction (entries and nodes), committed before
 * its promise resolves: in WAL mode with `synchronous = NORMAL`, a committed transaction survives
 * a kill of the process (a power loss may drop the last ones). Reads go through the database's
 * write lock, so they never see another task's uncommitted transaction.
 */
export class SqliteAuditLogRepository implements AuditLogRepository {
  readonly #database: SqliteDatabase;
  readonly #size: Statement<[], { n: number | null }>;
  readonly #insertEntry: Statement<[number, Uint8Array, Uint8Array, Uint8Array]>;
  readonly #entries: Statement<[number, number], EntryRow>;
  readonly #leaf: Statement<[number], { leaf_hash: Buffer }>;
  readonly #node: Statement<[number, number, number], { hash: Buffer }>;
  readonly #putCheckpoint: Statement<[number, string, number]>;
  readonly #checkpoints: Statement<[], { tree_size: number; note: string }>;
  readonly #latest: Statement<[], { tree_size: number; note: string }>;
  readonly #append: Transaction<
    (from: number, entries: readonly AuditLogEntry[], nodes: readonly StoredMerkleNode[]) => void
  >;

  constructor(database: SqliteDatabase) {
    this.#database = database;
    const db = database.db;
    this.#size = db.prepare('SELECT MAX(idx) + 1 AS n FROM audit_log_entries');
    this.#insertEntry = db.prepare(
      'INSERT INTO audit_log_entries (idx, record, leaf_hash, nodes) VALUES (?, ?, ?, ?)',
    );
    this.#entries = db.prepare(
      'SELECT idx, record, leaf_hash FROM audit_log_entries WHERE idx >= ? AND idx < ? ORDER BY idx',
    );
    this.#leaf = db.prepare('SELECT leaf_hash FROM audit_log_entries WHERE idx = ?');
    this.#node = db.prepare(
      'SELECT substr(nodes, ?, 32) AS hash FROM audit_log_entries WHERE idx = ? AND length(nodes) >= ?',
    );
    this.#putCheckpoint = db.prepare(
      'INSERT INTO audit_log_checkpoints (tree_size, note, created_at) VALUES (?, ?, ?) ON CONFLICT (tree_size) DO NOTHING',
    );
    this.#checkpoints = db.prepare(
      'SELECT tree_size, note FROM audit_log_checkpoints ORDER BY tree_size',
    );
    this.#latest = db.prepare(
      'SELECT tree_size, note FROM audit_log_checkpoints ORDER BY tree_size DESC LIMIT 1',
    );
    this.#append = db.transaction((from, entries, nodes) => {
      checkAppend(this.#currentSize(), from, entries, nodes);
      // checkAppend made sure the nodes are those the entries complete, in order: entry j takes
      // as many as j has trailing 1 bits.
      let k = 0;
      for (let i = 0; i < entries.length; i++) {
        let count = 0;
        for (let j = from + i; j % 2 === 1; j = (j - 1) / 2) count++;
        const own =
          count === 0
            ? NO_NODES
            : count === 1
              ? nodes[k]!.hash
              : concatBytes(...nodes.slice(k, k + count).map((n) => n.hash));
        k += count;
        this.#insertEntry.run(from + i, entries[i]!.record, entries[i]!.leafHash, own);
      }
    });
  }

  #currentSize(): number {
    return this.#size.get()?.n ?? 0;
  }

  size(): Promise<number> {
    return this.#database.write(() => this.#currentSize());
  }

  append(
    fromIndex: number,
    entries: readonly AuditLogEntry[],
    nodes: readonly StoredMerkleNode[],
  ): Promise<void> {
    return this.#database.write(() => {
      this.#append.immediate(fromIndex, entries, nodes);
    });
  }

  readEntries(from: number, to: number): Promise<AuditLogEntry[]> {
    return this.#database.write(() => {
      checkRange(this.#currentSize(), from, to);
      const rows = this.#entries.all(from, to);
      for (let i = 0; i < to - from; i++) {
        // A gap is a row deleted behind the triggers' back.
        if (rows[i]?.idx !== from + i) throw entryNotFound(from + i);
      }
      return rows.map((row) => ({
        record: new Uint8Array(row.record),
        leafHash: new Uint8Array(row.leaf_hash),
      }));
    });
  }

  readNodes(nodes: readonly MerkleNodeId[]): Promise<Uint8Array[]> {
    return this.#database.write(() => {
      const size = this.#currentSize();
      return nodes.map((node) => {
        checkNode(size, node);
        const row =
          node.level === 0
            ? this.#leaf.get(node.index)?.leaf_hash
            : this.#node.get(
                (node.level - 1) * 32 + 1,
                (node.index + 1) * 2 ** node.level - 1,
                node.level * 32,
              )?.hash;
        if (row === undefined) throw entryNotFound(node.index);
        return new Uint8Array(row);
      });
    });
  }

  putCheckpoint(checkpoint: StoredCheckpoint): Promise<void> {
    return this.#database.write(() => {
      checkCheckpoint(checkpoint.treeSize, checkpoint.note, this.#currentSize());
      this.#putCheckpoint.run(checkpoint.treeSize, checkpoint.note, Math.floor(Date.now() / 1000));
    });
  }

  latestCheckpoint(): Promise<StoredCheckpoint | undefined> {
    return this.#database.write(() => {
      const row = this.#latest.get();
      return row === undefined ? undefined : { treeSize: row.tree_size, note: row.note };
    });
  }

  listCheckpoints(): Promise<StoredCheckpoint[]> {
    return this.#database.write(() =>
      this.#checkpoints.all().map((row) => ({ treeSize: row.tree_size, note: row.note })),
    );
  }
}
