import type { Identifier, Purpose } from './model.js';

/** An identity as stored: its history bytes, and for local identities the vault key that controls it. */
export interface StoredIdentity {
  readonly identifier: Identifier;
  readonly changeHistory: Uint8Array;
  /** Local, unique name (local identities only). */
  readonly name: string | null;
  /** Vault key id of the current primary key (local identities only). */
  readonly primaryKeyId: string | null;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/**
 * A purpose key as a repository keeps it: the vault key id of its secret and its attestation bytes.
 */
export interface StoredPurposeKey {
  readonly identifier: Identifier;
  readonly purpose: Purpose;
  /** Vault key id of the purpose key's secret. */
  readonly keyId: string;
  readonly attestation: Uint8Array;
}

/**
 * Storage for identities, owned by this layer and implemented in `store/` (SQLite; later
 * PostgreSQL) and in memory. `transaction` makes a group of writes — including the vault's, when
 * they share the store — atomic: a crash leaves all of them or none.
 */
export interface IdentityRepository {
  getIdentity(identifier: Identifier): Promise<StoredIdentity | undefined>;
  getIdentityByName(name: string): Promise<StoredIdentity | undefined>;
  /**
   * Inserts or replaces the row for `identity.identifier`, together with the purpose keys given
   * (each replaces the key of its purpose; purposes not given keep what they had). A name held
   * by another identity fails with `ERR_IDENTITY_NAME_TAKEN` and writes nothing.
   */
  putIdentity(identity: StoredIdentity, purposeKeys?: readonly StoredPurposeKey[]): Promise<void>;
  listIdentities(options?: {
    readonly limit?: number;
    readonly offset?: number;
  }): Promise<StoredIdentity[]>;
  countIdentities(): Promise<number>;
  getPurposeKey(identifier: Identifier, purpose: Purpose): Promise<StoredPurposeKey | undefined>;
  transaction<T>(work: () => Promise<T>): Promise<T>;
}
