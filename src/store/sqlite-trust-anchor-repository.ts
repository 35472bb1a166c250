import type { Statement } from 'better-sqlite3';
import { internal } from '../core/index.js';
import { isIdentifier, type Identifier } from '../identity/index.js';
import type { TrustAnchorRepository } from '../credentials/index.js';
import type { SqliteDatabase } from './sqlite-database.js';

export const TRUST_ANCHORS_MIGRATION_SQL = `
  CREATE TABLE trust_anchors (
    identifier TEXT PRIMARY KEY,
    added_at INTEGER NOT NULL
  ) STRICT;`;

export class SqliteTrustAnchorRepository implements TrustAnchorRepository {
  readonly #database: SqliteDatabase;
  readonly #add: Statement<[string, number]>;
  readonly #remove: Statement<[string]>;
  readonly #list: Statement<[], { identifier: string }>;

  constructor(database: SqliteDatabase) {
    this.#database = database;
    this.#add = database.db.prepare(
      'INSERT INTO trust_anchors (identifier, added_at) VALUES (?, ?) ON CONFLICT DO NOTHING',
    );
    this.#remove = database.db.prepare('DELETE FROM trust_anchors WHERE identifier = ?');
    this.#list = database.db.prepare('SELECT identifier FROM trust_anchors ORDER BY rowid');
  }

  async addTrustAnchor(identifier: Identifier, addedAt: number): Promise<void> {
    await this.#database.write(() => this.#add.run(identifier, addedAt));
  }

  async removeTrustAnchor(identifier: Identifier): Promise<boolean> {
    return (await this.#database.write(() => this.#remove.run(identifier))).changes > 0;
  }

  listTrustAnchors(): Promise<Identifier[]> {
    return Promise.resolve(
      this.#list.all().map(({ identifier }) => {
        if (!isIdentifier(identifier))
          throw internal('ERR_STORE_CORRUPT', 'a trust anchor row holds a malformed identifier');
        return identifier;
      }),
    );
  }
}
