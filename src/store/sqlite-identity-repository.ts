import type { Statement } from 'better-sqlite3';
import {
  isIdentifier,
  Purpose,
  type Identifier,
  type IdentityRepository,
  type StoredIdentity,
  type StoredPurposeKey,
} from '../identity/index.js';
import { conflict, internal, invalid } from '../core/internal.js';
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
      credentials_key_id TEXT,
      credentials_attestation BLOB,
      secure_channel_key_id TEXT,
      secure_channel_attestation BLOB,
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL,
      CHECK ((credentials_key_id IS NULL) = (credentials_attestation IS NULL)),
      CHECK ((secure_channel_key_id IS NULL) = (secure_channel_attestation IS NULL))
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
  key_id: string | null;
  attestation: Buffer | null;
}

/** IdentityRepository on SQLite; statements are prepared once. */
export class SqliteIdentityRepository implements IdentityRepository {
  readonly #database: SqliteDatabase;
  readonly #get: Statement<[string], IdentityRow>;
  readonly #getByName: Statement<[string], IdentityRow>;
  readonly #put: Statement<
    [
      string,
      Buffer,
      string | null,
      string | null,
      string | null,
      Buffer | null,
      string | null,
      Buffer | null,
      number,
      number,
    ]
  >;
  readonly #list: Statement<[number, number], IdentityRow>;
  readonly #count: Statement<[], { n: number }>;
  readonly #getPurposeKey: Record<Purpose, Statement<[string], PurposeKeyRow>>;

  constructor(database: SqliteDatabase) {
    this.#database = database;
    const db = database.db;
    this.#get = db.prepare('SELECT * FROM identities WHERE identifier = ?');
    this.#getByName = db.prepare('SELECT * FROM identities WHERE name = ?');
    // The two purpose keys are columns of the identity's row, written by the same statement:
    // bulk provisioning then costs one row and one index entry per identity. A purpose passed
    // as NULL keeps the key it had.
    this.#put = db.prepare(`
      INSERT INTO identities (identifier, change_history, name, primary_key_id,
        credentials_key_id, credentials_attestation, secure_channel_key_id, secure_channel_attestation,
        created_at, updated_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (identifier) DO UPDATE SET change_history = excluded.change_history,
        name = excluded.name, primary_key_id = excluded.primary_key_id,
        credentials_key_id = coalesce(excluded.credentials_key_id, credentials_key_id),
        credentials_attestation = coalesce(excluded.credentials_attestation, credentials_attestation),
        secure_channel_key_id = coalesce(excluded.secure_channel_key_id, secure_channel_key_id),
        secure_channel_attestation = coalesce(excluded.secure_channel_attestation, secure_channel_attestation),
        updated_at = excluded.updated_at`);
    this.#list = db.prepare('SELECT * FROM identities ORDER BY rowid LIMIT ? OFFSET ?');
    this.#count = db.prepare('SELECT count(*) AS n FROM identities');
    const get = (column: string): Statement<[string], PurposeKeyRow> =>
      db.prepare(
        `SELECT ${column}_key_id AS key_id, ${column}_attestation AS attestation FROM identities WHERE identifier = ?`,
      );
    this.#getPurposeKey = {
      [Purpose.credentials]: get('credentials'),
      [Purpose.secureChannel]: get('secure_channel'),
    };
  }

  getIdentity(identifier: Identifier): Promise<StoredIdentity | undefined> {
    return Promise.resolve(toStoredIdentity(this.#get.get(identifier)));
  }

  getIdentityByName(name: string): Promise<StoredIdentity | undefined> {
    return Promise.resolve(toStoredIdentity(this.#getByName.get(name)));
  }

  async putIdentity(
    identity: StoredIdentity,
    purposeKeys: readonly StoredPurposeKey[] = [],
  ): Promise<void> {
    const byPurpose = new Map(purposeKeys.map((k) => [k.purpose, k]));
    if (
      byPurpose.size !== purposeKeys.length ||
      purposeKeys.some((k) => k.identifier !== identity.identifier)
    ) {
      throw invalid(
        'ERR_ARGUMENT_INVALID',
        'purpose keys must belong to the identity stored with them, one per purpose',
      );
    }
    const credentials = byPurpose.get(Purpose.credentials);
    const channel = byPurpose.get(Purpose.secureChannel);
    try {
      await this.#database.write(() =>
        this.#put.run(
          identity.identifier,
          toBuffer(identity.changeHistory),
          identity.name,
          identity.primaryKeyId,
          credentials?.keyId ?? null,
          credentials === undefined ? null : toBuffer(credentials.attestation),
          channel?.keyId ?? null,
          channel === undefined ? null : toBuffer(channel.attestation),
          identity.createdAt,
          identity.updatedAt,
        ),
      );
    } catch (error) {
      // Another writer (another process) took the name between our check and this write.
      if (error instanceof Error && 'code' in error && error.code === 'SQLITE_CONSTRAINT_UNIQUE') {
        throw conflict(
          'ERR_IDENTITY_NAME_TAKEN',
          `an identity named \`${identity.name ?? ''}\` already exists`,
        );
      }
      throw error;
    }
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

  getPurposeKey(identifier: Identifier, purpose: Purpose): Promise<StoredPurposeKey | undefined> {
    const row = this.#getPurposeKey[purpose].get(identifier);
    if (row?.key_id == null || row.attestation === null) return Promise.resolve(undefined);
    return Promise.resolve({
      identifier,
      purpose,
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
