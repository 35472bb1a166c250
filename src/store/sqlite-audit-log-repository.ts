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

/**
 * Migration 16: a record's long repeated text stored once. Nearly every record carries its
 * signer's credential-key attestation (about 330 characters of base64url, the same for every
 * record that signer signs: some 40% of a record); SQLite's cost of an append grows with the
 * bytes written, so the value is kept once in `audit_log_texts` and an entry stores its record
 * without it, with where it goes (`text_at`, a byte offset) and which it is (`text_id`). Reads
 * put it back: the log's records, leaf hashes, proofs and exports are the records' exact bytes.
 * An entry whose text is missing reads as its record without it — which no longer matches its
 * leaf hash, so verification reports the entry as edited.
 */
export const AUDIT_LOG_TEXTS_MIGRATION_SQL = `
  CREATE TABLE audit_log_texts (
    id INTEGER PRIMARY KEY,
    text BLOB NOT NULL UNIQUE CHECK (length(text) BETWEEN 64 AND 1048576)
  ) STRICT;
  ALTER TABLE audit_log_entries ADD COLUMN text_id INTEGER;
  ALTER TABLE audit_log_entries ADD COLUMN text_at INTEGER CHECK (text_at >= 0);
  CREATE TRIGGER audit_log_texts_no_update BEFORE UPDATE ON audit_log_texts
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
  CREATE TRIGGER audit_log_texts_no_delete BEFORE DELETE ON audit_log_texts
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;`;

/** The member whose value is stored once: every record type's signer attestation. */
const TEXT_MEMBER = Buffer.from('"attestation":"', 'latin1');
const QUOTE = 0x22;
/** Values shorter than this are left in the record. */
const MIN_TEXT_BYTES = 64;
/** Texts whose ids this process keeps (a map cleared when full) and recent ones checked first. */
const KNOWN_TEXTS = 4096;
const RECENT_TEXTS = 8;

/** Where a record's attestation value is (its bytes between the quotes), if worth storing once. */
function textOf(record: Uint8Array): { readonly at: number; readonly end: number } | undefined {
  const bytes = Buffer.from(record.buffer, record.byteOffset, record.byteLength);
  const member = bytes.indexOf(TEXT_MEMBER);
  if (member === -1) return undefined;
  const at = member + TEXT_MEMBER.length;
  const end = bytes.indexOf(QUOTE, at);
  if (end === -1 || end - at < MIN_TEXT_BYTES) return undefined;
  return { at, end };
}

/** One bound value of an entry row: idx, record, leaf_hash, nodes, text_id, text_at. */
type EntryValue = number | Uint8Array | null;
/** Entries inserted by one statement (6 values each: far below SQLite's bound on variables). */
const INSERT_ROWS = 16;

interface EntryRow {
  idx: number;
  record: Buffer;
  leaf_hash: Buffer;
  text_at: number | null;
  text: Buffer | null;
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
  /** `#inserts[k - 1]` inserts k entries in one statement (prepared on first use). */
  readonly #inserts: Statement<EntryValue[]>[] = [];
  readonly #textId: Statement<[Uint8Array], { id: number }>;
  readonly #insertText: Statement<[Uint8Array], { id: number }>;
  /** Text ids known committed, by the text (latin1), and the last few with their bytes. */
  readonly #texts = new Map<string, number>();
  readonly #recent: { readonly bytes: Buffer; readonly id: number }[] = [];
  readonly #entries: Statement<[number, number], EntryRow>;
  readonly #leaf: Statement<[number], { leaf_hash: Buffer }>;
  readonly #node: Statement<[number, number, number], { hash: Buffer }>;
  readonly #putCheckpoint: Statement<[number, string, number]>;
  readonly #checkpoints: Statement<[], { tree_size: number; note: string }>;
  readonly #latest: Statement<[], { tree_size: number; note: string }>;
  readonly #append: Transaction<
    (
      from: number,
      entries: readonly AuditLogEntry[],
      nodes: readonly StoredMerkleNode[],
      added: Map<string, number>,
    ) => void
  >;

  constructor(database: SqliteDatabase) {
    this.#database = database;
    const db = database.db;
    this.#size = db.prepare('SELECT MAX(idx) + 1 AS n FROM audit_log_entries');
    this.#textId = db.prepare('SELECT id FROM audit_log_texts WHERE text = ?');
    this.#insertText = db.prepare('INSERT INTO audit_log_texts (text) VALUES (?) RETURNING id');
    this.#entries = db.prepare(
      `SELECT e.idx, e.record, e.leaf_hash, e.text_at, t.text
         FROM audit_log_entries e LEFT JOIN audit_log_texts t ON t.id = e.text_id
        WHERE e.idx >= ? AND e.idx < ? ORDER BY e.idx`,
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
    this.#append = db.transaction((from, entries, nodes, added) => {
      checkAppend(this.#currentSize(), from, entries, nodes);
      // checkAppend made sure the nodes are those the entries complete, in order: entry j takes
      // as many as j has trailing 1 bits.
      let k = 0;
      // The entries' values, six each, inserted INSERT_ROWS rows per statement: one
      // statement step per row cost about 0.6 µs more per entry (measured, 32-entry commits).
      const values: EntryValue[] = [];
      let rows = 0;
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
        const { record, leafHash } = entries[i]!;
        const text = textOf(record);
        if (text === undefined) {
          values.push(from + i, record, leafHash, own, null, null);
        } else {
          const value = Buffer.from(record.buffer, record.byteOffset + text.at, text.end - text.at);
          const stored = Buffer.allocUnsafe(record.byteLength - value.byteLength);
          stored.set(record.subarray(0, text.at), 0);
          stored.set(record.subarray(text.end), text.at);
          const id = this.#textIdOf(value, added);
          values.push(from + i, stored, leafHash, own, id, text.at);
        }
        if (++rows === INSERT_ROWS) {
          this.#insertRows(rows).run(...values);
          values.length = 0;
          rows = 0;
        }
      }
      if (rows > 0) this.#insertRows(rows).run(...values);
    });
  }

  /** The statement inserting `rows` entries (1 to INSERT_ROWS), in index order. */
  #insertRows(rows: number): Statement<EntryValue[]> {
    let statement = this.#inserts[rows - 1];
    if (statement === undefined) {
      statement = this.#database.db.prepare<EntryValue[]>(
        `INSERT INTO audit_log_entries (idx, record, leaf_hash, nodes, text_id, text_at) VALUES ${Array.from({ length: rows }, () => '(?, ?, ?, ?, ?, ?)').join(', ')}`,
      );
      this.#inserts[rows - 1] = statement;
    }
    return statement;
  }

  /**
   * The id of a text (inserted if new). Ids this transaction inserted go to `added`: they are
   * known only once it commits (a rolled-back insert's id may be another text's later).
   */
  #textIdOf(value: Buffer, added: Map<string, number>): number {
    for (const known of this.#recent) if (known.bytes.equals(value)) return known.id;
    const key = value.toString('latin1');
    const known = this.#texts.get(key) ?? added.get(key);
    if (known !== undefined) {
      this.#remember(value, known);
      return known;
    }
    const id = (this.#textId.get(value) ?? this.#insertText.get(value))!.id;
    added.set(key, id);
    return id;
  }

  #remember(value: Buffer, id: number): void {
    if (this.#recent.length >= RECENT_TEXTS) this.#recent.shift();
    this.#recent.push({ bytes: Buffer.from(value), id });
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
      const added = new Map<string, number>();
      this.#append.immediate(fromIndex, entries, nodes, added);
      // Committed: the texts it inserted are known from now on.
      if (this.#texts.size + added.size > KNOWN_TEXTS) this.#texts.clear();
      for (const [key, id] of added) this.#texts.set(key, id);
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
        record: recordOf(row),
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

/** An entry's record as appended: the stored bytes with their text put back where it was. */
function recordOf(row: EntryRow): Uint8Array {
  const { record, text_at: at, text } = row;
  if (at === null || text === null || at > record.byteLength) return new Uint8Array(record);
  const out = new Uint8Array(record.byteLength + text.byteLength);
  out.set(record.subarray(0, at), 0);
  out.set(text, at);
  out.set(record.subarray(at), at + text.byteLength);
  return out;
}
