import type { Statement } from 'better-sqlite3';
import {
  isIdentifier,
  Purpose,
  type Identifier,
  type IdentityRepository,
  type StoredIdentity,
  type StoredPurposeKey,
} from '../identity/index.js';
import { internal } from '../core/index.js';
import type { Migration, SqliteDatabase } from './sqlite-database.js';

export const IDENTITIES_MIGRATION: Migration = {
  version: 1,
  name: 'identities',
  sql: `
    CREATE TABLE identities (
      identifier TEXT PRIMARY KEY,
      change_history BLOB NOT NULL,
      name TEXT UNIQUE,
      primary_key_id TEXT,
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE purpose_keys (
      identifier TEXT NOT NULL REFERENCES identities (identifier),
      purpose TEXT NOT NULL,
      key_id TEXT NOT NULL,
      attestation BLOB NOT NULL,
      PRIMARY KEY (identifier, purpose)
    ) STRICT;
  `,
};

interface IdentityRow {
  identifier: string;
  change_history: Buffer;
  name: string | null;
  primary_key_id: string | null;
  created_at: number;
  updated_at: number;
}

interface PurposeKeyRow {
  identifier: string;
  purpose: string;
  key_id: string;
  attestation: Buffer;
}

/** IdentityRepository on SQLite; statements are prepared once. */
export class SqliteIdentityRepository implements IdentityRepository {
  readonly #database: SqliteDatabase;
  readonly #get: Statement<[string], IdentityRow>;
  readonly #getByName: Statement<[string], IdentityRow>;
  readonly #put: Statement<[string, Buffer, string | null, string | null, number, number]>;
  readonly #list: Statement<[number, number], IdentityRow>;
  readonly #count: Statement<[], { n: number }>;
  readonly #putPurposeKey: Statement<[string, string, string, Buffer]>;
  readonly #getPurposeKey: Statement<[string, string], PurposeKeyRow>;

  constructor(database: SqliteDatabase) {
    this.#database = database;
    const db = database.db;
    this.#get = db.prepare('SELECT * FROM identities WHERE identifier = ?');
    this.#getByName = db.prepare('SELECT * FROM identities WHERE name = ?');
    this.#put = db.prepare(`
      INSERT INTO identities (identifier, change_history, name, primary_key_id, created_at, updated_at)
      VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT (identifier) DO UPDATE SET change_history = excluded.change_history, name = excluded.name,
        primary_key_id = excluded.primary_key_id, updated_at = excluded.updated_at`);
    this.#list = db.prepare('SELECT * FROM identities ORDER BY rowid LIMIT ? OFFSET ?');
    this.#count = db.prepare('SELECT count(*) AS n FROM identities');
    this.#putPurposeKey = db.prepare(`
      INSERT INTO purpose_keys (identifier, purpose, key_id, attestation) VALUES (?, ?, ?, ?)
      ON CONFLICT (identifier, purpose) DO UPDATE SET key_id = excluded.key_id, attestation = excluded.attestation`);
    this.#getPurposeKey = db.prepare(
      'SELECT * FROM purpose_keys WHERE identifier = ? AND purpose = ?',
    );
  }

  getIdentity(identifier: Identifier): Promise<StoredIdentity | undefined> {
    return Promise.resolve(toStoredIdentity(this.#get.get(identifier)));
  }

  getIdentityByName(name: string): Promise<StoredIdentity | undefined> {
    return Promise.resolve(toStoredIdentity(this.#getByName.get(name)));
  }

  async putIdentity(identity: StoredIdentity): Promise<void> {
    await this.#database.write(() =>
      this.#put.run(
        identity.identifier,
        toBuffer(identity.changeHistory),
        identity.name,
        identity.primaryKeyId,
        identity.createdAt,
        identity.updatedAt,
      ),
    );
  }

  listIdentities(
    options: { readonly limit?: number; readonly offset?: number } = {},
  ): Promise<StoredIdentity[]> {
    const rows = this.#list.all(options.limit ?? -1, options.offset ?? 0);
    return Promise.resolve(rows.map((row) => toStoredIdentity(row)!));
  }

  countIdentities(): Promise<number> {
    return Promise.resolve(this.#count.get()!.n);
  }

  async putPurposeKey(key: StoredPurposeKey): Promise<void> {
    await this.#database.write(() =>
      this.#putPurposeKey.run(key.identifier, key.purpose, key.keyId, toBuffer(key.attestation)),
    );
  }

  getPurposeKey(identifier: Identifier, purpose: Purpose): Promise<StoredPurposeKey | undefined> {
    const row = this.#getPurposeKey.get(identifier, purpose);
    if (row === undefined) return Promise.resolve(undefined);
    if (row.purpose !== Purpose.credentials && row.purpose !== Purpose.secureChannel) {
      throw internal('ERR_STORE_CORRUPT', `purpose key row has unknown purpose \`${row.purpose}\``);
    }
    return Promise.resolve({
      identifier,
      purpose: row.purpose,
      keyId: row.key_id,
      attestation: new Uint8Array(row.attestation),
    });
  }

  transaction<T>(work: () => Promise<T>): Promise<T> {
    return this.#database.transaction(work);
  }
}

function toStoredIdentity(row: IdentityRow | undefined): StoredIdentity | undefined {
  if (row === undefined) return undefined;
  if (!isIdentifier(row.identifier))
    throw internal('ERR_STORE_CORRUPT', 'identity row has a malformed identifier');
  return {
    identifier: row.identifier,
    changeHistory: new Uint8Array(row.change_history),
    name: row.name,
    primaryKeyId: row.primary_key_id,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
