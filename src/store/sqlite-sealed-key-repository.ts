import type { Database, Statement } from 'better-sqlite3';
import { conflict, internal } from '../core/internal.js';
import type {
  KekVerifierRecord,
  KekVerifierRepository,
  SealedKeyRecord,
  SealedKeyRepository,
} from '../vault/index.js';

/**
 * The `vault_keys` table. STRICT and CHECK constraints make SQLite refuse a row the vault could
 * never have written; WITHOUT ROWID because rows are looked up only by their text key.
 */
export const VAULT_KEYS_MIGRATION_SQL = `CREATE TABLE vault_keys (
  key_id TEXT PRIMARY KEY NOT NULL,
  purpose TEXT NOT NULL CHECK (purpose IN ('signing', 'x25519')),
  key_type TEXT NOT NULL CHECK (key_type IN ('ed25519', 'p256', 'x25519')),
  public_key BLOB NOT NULL,
  sealed BLOB NOT NULL
) STRICT, WITHOUT ROWID;`;

/**
 * The `vault_kek` table: at most one row, the source of the vault's key-encryption key and its
 * verifier (vault/kek-verifier.ts), written once by the first open of the store.
 */
export const VAULT_KEK_MIGRATION_SQL = `CREATE TABLE vault_kek (
  id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
  source TEXT NOT NULL CHECK (source IN ('key-file', 'passphrase')),
  verifier BLOB NOT NULL
) STRICT;`;

/**
 * Migration 15 changes no table: it marks a database whose `vault_keys.sealed` and
 * `broker_secrets.sealed` may hold version-2 blobs (XChaCha20-Poly1305, vault/sealed-blob.ts).
 * Version-1 rows stay as they are and keep opening; a Mandate from before version 2 would not
 * open the new rows, and this entry makes it refuse the whole file at open
 * (`ERR_STORE_SCHEMA_NEWER`) instead.
 */
export const SEALED_BLOB_V2_MIGRATION_SQL =
  '-- vault_keys.sealed and broker_secrets.sealed: version 2';

export interface SqliteSealedKeyRepositoryOptions {
  /**
   * Runs a write under the connection's write lock (`SqliteDatabase.write`). better-sqlite3 has
   * one connection per Database, so without it a key written while another task holds an open
   * transaction lands inside that transaction, and is rolled back with it after the vault has
   * reported the key durable. Omit it only when nothing else opens transactions on `db`.
   */
  readonly write?: <T>(statement: () => T) => Promise<T>;
}

/** Rows per statement of `putKeys` (5 parameters each, far below SQLite's limit of 32,766). */
const ROWS_PER_INSERT = 50;

const writeAtOnce = <T>(statement: () => T): Promise<T> => Promise.resolve(statement());

/**
 * Sealed vault keys and the KEK verifier in SQLite (both tables above must exist); the
 * statements are prepared once, when the repository is made.
 */
export class SqliteSealedKeyRepository implements SealedKeyRepository, KekVerifierRepository {
  readonly #db: Database;
  readonly #insert: Statement<[string, string, string, Uint8Array, Uint8Array]>;
  readonly #insertMany: Statement;
  readonly #select: Statement<[string]>;
  readonly #selectAny: Statement<[]>;
  readonly #delete: Statement<[string]>;
  readonly #insertVerifier: Statement<[string, Uint8Array]>;
  readonly #selectVerifier: Statement<[]>;
  readonly #write: <T>(statement: () => T) => Promise<T>;

  constructor(db: Database, options: SqliteSealedKeyRepositoryOptions = {}) {
    this.#write = options.write ?? writeAtOnce;
    this.#db = db;
    this.#insert = db.prepare(
      'INSERT INTO vault_keys (key_id, purpose, key_type, public_key, sealed) VALUES (?, ?, ?, ?, ?)',
    );
    this.#insertMany = db.prepare(
      `INSERT INTO vault_keys (key_id, purpose, key_type, public_key, sealed) VALUES ${Array.from(
        { length: ROWS_PER_INSERT },
        () => '(?, ?, ?, ?, ?)',
      ).join(', ')}`,
    );
    this.#select = db.prepare(
      'SELECT key_id, purpose, key_type, public_key, sealed FROM vault_keys WHERE key_id = ?',
    );
    this.#selectAny = db.prepare(
      'SELECT key_id, purpose, key_type, public_key, sealed FROM vault_keys LIMIT 1',
    );
    this.#delete = db.prepare('DELETE FROM vault_keys WHERE key_id = ?');
    this.#insertVerifier = db.prepare(
      'INSERT INTO vault_kek (id, source, verifier) VALUES (1, ?, ?) ON CONFLICT (id) DO NOTHING',
    );
    this.#selectVerifier = db.prepare('SELECT source, verifier FROM vault_kek WHERE id = 1');
  }

  async putKey(record: SealedKeyRecord): Promise<void> {
    try {
      await this.#write(() =>
        this.#insert.run(
          record.keyId,
          record.purpose,
          record.keyType,
          record.publicKey,
          record.sealed,
        ),
      );
    } catch (error) {
      if (isPrimaryKeyViolation(error))
        throw conflict('ERR_VAULT_KEY_EXISTS', `key \`${record.keyId}\` already exists`);
      throw error;
    }
  }

  /**
   * Every record in one SQLite transaction (a savepoint inside the caller's), `ROWS_PER_INSERT`
   * rows per statement: measured about half the cost per row of one statement per key.
   */
  async putKeys(records: readonly SealedKeyRecord[]): Promise<void> {
    const insertAll = this.#db.transaction(() => {
      let at = 0;
      const values: unknown[] = new Array<unknown>(ROWS_PER_INSERT * 5);
      for (; at + ROWS_PER_INSERT <= records.length; at += ROWS_PER_INSERT) {
        for (let i = 0; i < ROWS_PER_INSERT; i++) {
          const record = records[at + i]!;
          values[i * 5] = record.keyId;
          values[i * 5 + 1] = record.purpose;
          values[i * 5 + 2] = record.keyType;
          values[i * 5 + 3] = record.publicKey;
          values[i * 5 + 4] = record.sealed;
        }
        this.#insertMany.run(values);
      }
      for (const record of records.slice(at)) {
        this.#insert.run(
          record.keyId,
          record.purpose,
          record.keyType,
          record.publicKey,
          record.sealed,
        );
      }
    });
    try {
      await this.#write(() => {
        insertAll();
      });
    } catch (error) {
      if (isPrimaryKeyViolation(error)) {
        throw conflict(
          'ERR_VAULT_KEY_EXISTS',
          `one of ${records.length} keys written together already exists`,
        );
      }
      throw error;
    }
  }

  getKey(keyId: string): Promise<SealedKeyRecord | undefined> {
    try {
      const row = this.#select.get(keyId);
      return Promise.resolve(row === undefined ? undefined : parseRow(keyId, row));
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }

  async deleteKey(keyId: string): Promise<void> {
    await this.#write(() => this.#delete.run(keyId));
  }

  getKekVerifier(): Promise<KekVerifierRecord | undefined> {
    try {
      return Promise.resolve(parseVerifierRow(this.#selectVerifier.get()));
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }

  async putKekVerifier(record: KekVerifierRecord): Promise<KekVerifierRecord> {
    // Insert-if-absent and read back under one write lock: two first opens agree on one verifier.
    const stored = await this.#write(() => {
      this.#insertVerifier.run(record.source, record.verifier);
      return parseVerifierRow(this.#selectVerifier.get());
    });
    if (stored === undefined) throw internal('ERR_STORE_CORRUPT', '`vault_kek` lost its row');
    return stored;
  }

  anyKey(): Promise<SealedKeyRecord | undefined> {
    try {
      const row = this.#selectAny.get();
      if (row === undefined) return Promise.resolve(undefined);
      const keyId: unknown =
        typeof row === 'object' && row !== null ? Reflect.get(row, 'key_id') : undefined;
      if (typeof keyId !== 'string') throw rowInvalid('?', 'key_id');
      return Promise.resolve(parseRow(keyId, row));
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }
}

function parseVerifierRow(row: unknown): KekVerifierRecord | undefined {
  if (row === undefined) return undefined;
  const invalidColumn = (column: string) =>
    internal('ERR_STORE_CORRUPT', `the row of \`vault_kek\` has an invalid \`${column}\``);
  if (typeof row !== 'object' || row === null) throw invalidColumn('row');
  const source: unknown = Reflect.get(row, 'source');
  const verifier: unknown = Reflect.get(row, 'verifier');
  if (source !== 'key-file' && source !== 'passphrase') throw invalidColumn('source');
  if (!(verifier instanceof Uint8Array)) throw invalidColumn('verifier');
  return { source, verifier: toPlainBytes(verifier) };
}

function isPrimaryKeyViolation(error: unknown): boolean {
  return error instanceof Error && 'code' in error && error.code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

const rowInvalid = (keyId: string, column: string) =>
  internal('ERR_STORE_CORRUPT', `row \`${keyId}\` of \`vault_keys\` has an invalid \`${column}\``);

/** The table's constraints should make these checks redundant; a hand-edited database may not. */
function parseRow(keyId: string, row: unknown): SealedKeyRecord {
  if (typeof row !== 'object' || row === null) throw rowInvalid(keyId, 'row');
  const keyIdColumn: unknown = Reflect.get(row, 'key_id');
  const purpose: unknown = Reflect.get(row, 'purpose');
  const keyType: unknown = Reflect.get(row, 'key_type');
  const publicKey: unknown = Reflect.get(row, 'public_key');
  const sealed: unknown = Reflect.get(row, 'sealed');
  if (keyIdColumn !== keyId) throw rowInvalid(keyId, 'key_id');
  if (purpose !== 'signing' && purpose !== 'x25519') throw rowInvalid(keyId, 'purpose');
  if (keyType !== 'ed25519' && keyType !== 'p256' && keyType !== 'x25519')
    throw rowInvalid(keyId, 'key_type');
  if (!(publicKey instanceof Uint8Array)) throw rowInvalid(keyId, 'public_key');
  if (!(sealed instanceof Uint8Array)) throw rowInvalid(keyId, 'sealed');
  return {
    keyId,
    purpose,
    keyType,
    publicKey: toPlainBytes(publicKey),
    sealed: toPlainBytes(sealed),
  };
}

/** better-sqlite3 returns Buffers; the rest of Mandate speaks plain Uint8Array. */
function toPlainBytes(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
