import { SqliteDatabase, type Migration } from './sqlite-database.js';
import { IDENTITIES_MIGRATION, SqliteIdentityRepository } from './sqlite-identity-repository.js';
import {
  SEALED_BLOB_V2_MIGRATION_SQL,
  SqliteSealedKeyRepository,
  VAULT_KEK_MIGRATION_SQL,
  VAULT_KEYS_MIGRATION_SQL,
} from './sqlite-sealed-key-repository.js';
import { DENY_SET_MIGRATION_SQL, SqliteDenySetRepository } from './sqlite-deny-set-repository.js';
import {
  SqliteTrustAnchorRepository,
  TRUST_ANCHOR_SCOPE_MIGRATION_SQL,
  TRUST_ANCHORS_MIGRATION_SQL,
} from './sqlite-trust-anchor-repository.js';
import {
  AUDIT_LOG_MIGRATION_SQL,
  AUDIT_LOG_TEXTS_MIGRATION_SQL,
  SqliteAuditLogRepository,
} from './sqlite-audit-log-repository.js';
import {
  AUDIT_CHAINS_MIGRATION_SQL,
  AUDIT_TRAIL_MIGRATION_SQL,
  SqliteAuditTrailRepository,
} from './sqlite-audit-trail-repository.js';
import {
  AUTHORITY_MIGRATION_SQL,
  SqliteAuthorityRepository,
} from './sqlite-authority-repository.js';
import {
  GATES_MIGRATION_SQL,
  SqliteApprovalRepository,
  SqliteBudgetRepository,
} from './sqlite-gate-repositories.js';
import {
  POLICY_BUNDLES_MIGRATION_SQL,
  SqlitePolicyBundleRepository,
} from './sqlite-policy-bundle-repository.js';
import {
  BROKER_LEASES_MIGRATION_SQL,
  BROKER_SECRETS_MIGRATION_SQL,
  SqliteLeaseRepository,
  SqliteSecretRepository,
} from './sqlite-broker-repositories.js';

/** Every migration of the embedded store, in order; a version number is never reused. */
export const SQLITE_MIGRATIONS: readonly Migration[] = [
  IDENTITIES_MIGRATION,
  { version: 2, name: 'vault_keys', sql: VAULT_KEYS_MIGRATION_SQL },
  { version: 3, name: 'deny_set', sql: DENY_SET_MIGRATION_SQL },
  { version: 4, name: 'trust_anchors', sql: TRUST_ANCHORS_MIGRATION_SQL },
  { version: 5, name: 'authority', sql: AUTHORITY_MIGRATION_SQL },
  { version: 6, name: 'vault_kek', sql: VAULT_KEK_MIGRATION_SQL },
  { version: 7, name: 'trust_anchor_scope', sql: TRUST_ANCHOR_SCOPE_MIGRATION_SQL },
  { version: 8, name: 'policy_bundles', sql: POLICY_BUNDLES_MIGRATION_SQL },
  { version: 9, name: 'gates', sql: GATES_MIGRATION_SQL },
  { version: 10, name: 'audit_log', sql: AUDIT_LOG_MIGRATION_SQL },
  { version: 11, name: 'audit_trail', sql: AUDIT_TRAIL_MIGRATION_SQL },
  { version: 12, name: 'broker_secrets', sql: BROKER_SECRETS_MIGRATION_SQL },
  { version: 13, name: 'broker_leases', sql: BROKER_LEASES_MIGRATION_SQL },
  { version: 14, name: 'audit_chains', sql: AUDIT_CHAINS_MIGRATION_SQL },
  { version: 15, name: 'sealed_blob_v2', sql: SEALED_BLOB_V2_MIGRATION_SQL },
  { version: 16, name: 'audit_log_texts', sql: AUDIT_LOG_TEXTS_MIGRATION_SQL },
];

/** The embedded default: one SQLite file for identities, sealed keys and credentials state. */
export interface SqliteStore {
  readonly database: SqliteDatabase;
  readonly identities: SqliteIdentityRepository;
  readonly vaultKeys: SqliteSealedKeyRepository;
  readonly denySet: SqliteDenySetRepository;
  readonly trustAnchors: SqliteTrustAnchorRepository;
  readonly authority: SqliteAuthorityRepository;
  readonly policyBundles: SqlitePolicyBundleRepository;
  readonly approvals: SqliteApprovalRepository;
  readonly budgets: SqliteBudgetRepository;
  readonly auditLog: SqliteAuditLogRepository;
  readonly auditTrail: SqliteAuditTrailRepository;
  readonly brokerSecrets: SqliteSecretRepository;
  readonly brokerLeases: SqliteLeaseRepository;
  close(): void;
}

/**
 * Opens (creating it, and its directory with mode 0700, if absent) the SQLite database at `path`
 * (or `:memory:`), applies any pending migration, and returns every repository over it: the
 * embedded default store. The file is made 0600 and runs in WAL mode. Throws
 * `ERR_STORE_UNAVAILABLE` when the file cannot be opened and `ERR_STORE_SCHEMA_NEWER` when a newer
 * Mandate wrote it. Call `close()` when done.
 *
 * @example
 * ```ts
 * const store = openSqliteStore('./.mandate/mandate.db');
 * try {
 *   const identities = new Identities({ vault, repository: store.identities });
 *   // …
 * } finally {
 *   store.close();
 * }
 * ```
 */
export function openSqliteStore(path: string): SqliteStore {
  const database = new SqliteDatabase(path, SQLITE_MIGRATIONS);
  return {
    database,
    identities: new SqliteIdentityRepository(database),
    vaultKeys: new SqliteSealedKeyRepository(database.db, {
      write: (statement) => database.write(statement),
    }),
    denySet: new SqliteDenySetRepository(database),
    trustAnchors: new SqliteTrustAnchorRepository(database),
    authority: new SqliteAuthorityRepository(database),
    policyBundles: new SqlitePolicyBundleRepository(database),
    approvals: new SqliteApprovalRepository(database),
    budgets: new SqliteBudgetRepository(database),
    auditLog: new SqliteAuditLogRepository(database),
    auditTrail: new SqliteAuditTrailRepository(database),
    brokerSecrets: new SqliteSecretRepository(database),
    brokerLeases: new SqliteLeaseRepository(database),
    close: () => {
      database.close();
    },
  };
}
