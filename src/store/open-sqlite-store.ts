import { SqliteDatabase, type Migration } from './sqlite-database.js';
import { IDENTITIES_MIGRATION, SqliteIdentityRepository } from './sqlite-identity-repository.js';
import {
  SqliteSealedKeyRepository,
  VAULT_KEYS_MIGRATION_SQL,
} from './sqlite-sealed-key-repository.js';

/** Every migration of the embedded store, in order; a version number is never reused. */
export const SQLITE_MIGRATIONS: readonly Migration[] = [
  IDENTITIES_MIGRATION,
  { version: 2, name: 'vault_keys', sql: VAULT_KEYS_MIGRATION_SQL },
];

/** The embedded default: one SQLite file holding identities and sealed vault keys. */
export interface SqliteStore {
  readonly database: SqliteDatabase;
  readonly identities: SqliteIdentityRepository;
  readonly vaultKeys: SqliteSealedKeyRepository;
  close(): void;
}

export function openSqliteStore(path: string): SqliteStore {
  const database = new SqliteDatabase(path, SQLITE_MIGRATIONS);
  return {
    database,
    identities: new SqliteIdentityRepository(database),
    vaultKeys: new SqliteSealedKeyRepository(database.db, {
      write: (statement) => database.write(statement),
    }),
    close: () => {
      database.close();
    },
  };
}
