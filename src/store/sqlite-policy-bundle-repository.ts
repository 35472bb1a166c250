import type { Statement, Transaction } from 'better-sqlite3';
import { internal } from '../core/internal.js';
import { isIdentifier } from '../identity/index.js';
import type { BundleSummary, PolicyBundleRepository, StoredBundle } from '../gates/index.js';
import { bundleHashMatches, bundleNotNewerError, bundleRecord } from '../gates/internal.js';
import type { SqliteDatabase } from './sqlite-database.js';

/**
 * The `policy_bundles` table: every published version, one line of increasing versions. A
 * trigger refuses a version at or below the highest stored (so a version is never reused, even by
 * a writer that skips the repository), another any update of a stored row: the history is
 * append-only. The CHECKs make SQLite refuse rows the repository never writes. A row's hash is
 * checked against its bytes when read; its signature is the reader's to verify (verifyBundle).
 */
export const POLICY_BUNDLES_MIGRATION_SQL = `CREATE TABLE policy_bundles (
  version INTEGER PRIMARY KEY CHECK (version BETWEEN 1 AND 9007199254740991),
  issuer TEXT NOT NULL CHECK (length(issuer) = 65 AND substr(issuer, 1, 1) = 'I'
    AND substr(issuer, 2) NOT GLOB '*[^0-9a-f]*'),
  created_at INTEGER NOT NULL CHECK (created_at BETWEEN 0 AND 9007199254740991),
  hash TEXT NOT NULL CHECK (length(hash) = 64 AND hash NOT GLOB '*[^0-9a-f]*'),
  published_at INTEGER NOT NULL CHECK (published_at BETWEEN 0 AND 9007199254740991),
  bytes BLOB NOT NULL CHECK (length(bytes) BETWEEN 1 AND 2097152)
) STRICT;
CREATE TRIGGER policy_bundles_monotonic BEFORE INSERT ON policy_bundles
  WHEN NEW.version <= (SELECT coalesce(max(version), 0) FROM policy_bundles)
  BEGIN SELECT RAISE(ABORT, 'a policy bundle version is never reused or lowered'); END;
CREATE TRIGGER policy_bundles_append_only BEFORE UPDATE ON policy_bundles
  BEGIN SELECT RAISE(ABORT, 'a published policy bundle is never changed'); END;`;

interface BundleRow {
  version: number;
  issuer: string;
  created_at: number;
  hash: string;
  published_at: number;
  bytes: Buffer;
}

const SUMMARY_COLUMNS = 'version, issuer, created_at, hash, published_at';
const COLUMNS = `${SUMMARY_COLUMNS}, bytes`;

/** PolicyBundleRepository on SQLite; reads go through the write lock, as the deny-set's do. */
export class SqlitePolicyBundleRepository implements PolicyBundleRepository {
  readonly #database: SqliteDatabase;
  readonly #latest: Statement<[], BundleRow>;
  readonly #latestVersion: Statement<[], { version: number; hash: string }>;
  readonly #get: Statement<[number], BundleRow>;
  readonly #list: Statement<[], Omit<BundleRow, 'bytes'>>;
  readonly #publish: Transaction<(record: StoredBundle) => number | undefined>;

  constructor(database: SqliteDatabase) {
    this.#database = database;
    const db = database.db;
    this.#latest = db.prepare(
      `SELECT ${COLUMNS} FROM policy_bundles ORDER BY version DESC LIMIT 1`,
    );
    this.#latestVersion = db.prepare(
      'SELECT version, hash FROM policy_bundles ORDER BY version DESC LIMIT 1',
    );
    this.#get = db.prepare(`SELECT ${COLUMNS} FROM policy_bundles WHERE version = ?`);
    this.#list = db.prepare(`SELECT ${SUMMARY_COLUMNS} FROM policy_bundles ORDER BY version`);
    const insert = db.prepare<[number, string, number, string, number, Uint8Array]>(
      `INSERT INTO policy_bundles (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)`,
    );
    // Read and insert in one IMMEDIATE transaction: two publishers of the same version cannot
    // both pass the check. Returns the latest version that refused the record, if one did.
    this.#publish = db.transaction((record: StoredBundle) => {
      const latest = this.#latestVersion.get();
      if (latest !== undefined && record.version <= latest.version) return latest.version;
      insert.run(
        record.version,
        record.issuer,
        record.createdAt,
        record.hash,
        record.publishedAt,
        record.bytes,
      );
      return undefined;
    });
  }

  async publishBundle(bytes: Uint8Array, publishedAt: number): Promise<StoredBundle> {
    const record = bundleRecord(bytes, publishedAt);
    const refusedBy = await this.#database.write(() => this.#publish.immediate(record));
    if (refusedBy !== undefined) throw bundleNotNewerError(record.version, refusedBy);
    return record;
  }

  async latestBundle(): Promise<StoredBundle | undefined> {
    const row = await this.#database.write(() => this.#latest.get());
    return row === undefined ? undefined : toStoredBundle(row);
  }

  async latestBundleVersion(): Promise<{ version: number; hash: string } | undefined> {
    const row = await this.#database.write(() => this.#latestVersion.get());
    return row === undefined ? undefined : { version: row.version, hash: row.hash };
  }

  async getBundle(version: number): Promise<StoredBundle | undefined> {
    if (!Number.isSafeInteger(version) || version < 1) return undefined;
    const row = await this.#database.write(() => this.#get.get(version));
    return row === undefined ? undefined : toStoredBundle(row);
  }

  async listBundles(): Promise<BundleSummary[]> {
    const rows = await this.#database.write(() => this.#list.all());
    return rows.map(toSummary);
  }
}

function toSummary(row: Omit<BundleRow, 'bytes'>): BundleSummary {
  if (!isIdentifier(row.issuer))
    throw internal(
      'ERR_STORE_CORRUPT',
      `row \`${row.version}\` of \`policy_bundles\` is malformed`,
    );
  return {
    version: row.version,
    issuer: row.issuer,
    createdAt: row.created_at,
    hash: row.hash,
    publishedAt: row.published_at,
  };
}

/** The CHECKs keep rows well formed; bytes edited behind the repository's back show here. */
function toStoredBundle(row: BundleRow): StoredBundle {
  const bytes = new Uint8Array(row.bytes);
  if (!bundleHashMatches(bytes, row.hash))
    throw internal(
      'ERR_STORE_CORRUPT',
      `the bytes of bundle version ${row.version} in \`policy_bundles\` do not match its hash`,
    );
  return { ...toSummary(row), bytes };
}
