import type { Statement } from 'better-sqlite3';
import { internal } from '../core/internal.js';
import { isMandateError } from '../core/index.js';
import { isIdentifier, type Identifier } from '../identity/index.js';
import { checkTrustAnchor } from '../credentials/internal.js';
import {
  parseTrustScope,
  type TrustAnchor,
  type TrustAnchorRepository,
  type TrustScope,
} from '../credentials/index.js';
import type { SqliteDatabase } from './sqlite-database.js';

export const TRUST_ANCHORS_MIGRATION_SQL = `
  CREATE TABLE trust_anchors (
    identifier TEXT PRIMARY KEY,
    added_at INTEGER NOT NULL
  ) STRICT;`;

/**
 * Trust anchors get a scope (docs/spec/enrollment.md §Trust anchors). The rows of before could
 * only come from `authority init` (this home's own authority, whose key is here) or from
 * `ticket redeem` (an authority elsewhere, trusted home-wide by mistake). The first become `all`.
 * The second must not stay home-wide, but which identity redeemed is not recorded: they become
 * an `identity:` anchor for every identity with a key in this home, so each enrolled identity
 * still renews and delegates its own credential, and no verifier of anyone else trusts them.
 * `mandate trust add` restores home-wide trust where it was meant.
 */
export const TRUST_ANCHOR_SCOPE_MIGRATION_SQL = `
  CREATE TABLE trust_anchors_scoped (
    identifier TEXT NOT NULL CHECK (identifier GLOB 'I*' AND length(identifier) = 65),
    scope TEXT NOT NULL CHECK (scope = 'all' OR (scope GLOB 'identity:I*' AND length(scope) = 74)),
    added_at INTEGER NOT NULL CHECK (added_at >= 0),
    PRIMARY KEY (identifier, scope)
  ) STRICT;
  INSERT INTO trust_anchors_scoped (identifier, scope, added_at)
    SELECT t.identifier, 'all', t.added_at FROM trust_anchors t
    WHERE EXISTS (SELECT 1 FROM identities i
                  WHERE i.identifier = t.identifier AND i.primary_key_id IS NOT NULL)
    ORDER BY t.rowid;
  INSERT INTO trust_anchors_scoped (identifier, scope, added_at)
    SELECT t.identifier, 'identity:' || i.identifier, t.added_at
    FROM trust_anchors t JOIN identities i
      ON i.primary_key_id IS NOT NULL AND i.identifier <> t.identifier
    WHERE NOT EXISTS (SELECT 1 FROM identities a
                      WHERE a.identifier = t.identifier AND a.primary_key_id IS NOT NULL)
    ORDER BY t.rowid, i.rowid;
  DROP TABLE trust_anchors;
  ALTER TABLE trust_anchors_scoped RENAME TO trust_anchors;`;

interface TrustAnchorRow {
  identifier: string;
  scope: string;
  added_at: number;
}

export class SqliteTrustAnchorRepository implements TrustAnchorRepository {
  readonly #database: SqliteDatabase;
  readonly #add: Statement<[string, string, number]>;
  readonly #remove: Statement<[string]>;
  readonly #removeScope: Statement<[string, string]>;
  readonly #list: Statement<[], TrustAnchorRow>;

  constructor(database: SqliteDatabase) {
    this.#database = database;
    this.#add = database.db.prepare(
      'INSERT INTO trust_anchors (identifier, scope, added_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING',
    );
    this.#remove = database.db.prepare('DELETE FROM trust_anchors WHERE identifier = ?');
    this.#removeScope = database.db.prepare(
      'DELETE FROM trust_anchors WHERE identifier = ? AND scope = ?',
    );
    this.#list = database.db.prepare(
      'SELECT identifier, scope, added_at FROM trust_anchors ORDER BY rowid',
    );
  }

  async addTrustAnchor(anchor: TrustAnchor): Promise<boolean> {
    const { identifier, scope, addedAt } = checkTrustAnchor(anchor);
    return (
      (await this.#database.write(() => this.#add.run(identifier, scope, addedAt))).changes > 0
    );
  }

  async removeTrustAnchors(identifier: Identifier, scope?: TrustScope): Promise<number> {
    return (
      await this.#database.write(() =>
        scope === undefined
          ? this.#remove.run(identifier)
          : this.#removeScope.run(identifier, scope),
      )
    ).changes;
  }

  // async: a corrupt row rejects rather than throwing at the call.
  // eslint-disable-next-line @typescript-eslint/require-await
  async listTrustAnchors(): Promise<TrustAnchor[]> {
    return this.#list.all().map(anchorOf);
  }
}

function anchorOf(row: TrustAnchorRow): TrustAnchor {
  const corrupt = () => internal('ERR_STORE_CORRUPT', 'a trust anchor row is malformed');
  if (!isIdentifier(row.identifier)) throw corrupt();
  let scope: TrustScope;
  try {
    scope = parseTrustScope(row.scope);
  } catch (error) {
    if (isMandateError(error)) throw corrupt();
    throw error;
  }
  return { identifier: row.identifier, scope, addedAt: row.added_at };
}
