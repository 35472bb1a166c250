export { SqliteDatabase } from './sqlite-database.js';
export type { Migration } from './sqlite-database.js';
export { SqliteIdentityRepository, IDENTITIES_MIGRATION } from './sqlite-identity-repository.js';
export {
  SqliteSealedKeyRepository,
  VAULT_KEK_MIGRATION_SQL,
  VAULT_KEYS_MIGRATION_SQL,
} from './sqlite-sealed-key-repository.js';
export type { SqliteSealedKeyRepositoryOptions } from './sqlite-sealed-key-repository.js';
export { SqliteDenySetRepository, DENY_SET_MIGRATION_SQL } from './sqlite-deny-set-repository.js';
export {
  SqliteTrustAnchorRepository,
  TRUST_ANCHORS_MIGRATION_SQL,
} from './sqlite-trust-anchor-repository.js';
export {
  SqliteAuthorityRepository,
  AUTHORITY_MIGRATION_SQL,
} from './sqlite-authority-repository.js';
export { openSqliteStore, SQLITE_MIGRATIONS } from './open-sqlite-store.js';
export type { SqliteStore } from './open-sqlite-store.js';
