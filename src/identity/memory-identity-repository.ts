import { conflict, invalid } from '../core/internal.js';
import type { Identifier, Purpose } from './model.js';
import type { IdentityRepository, StoredIdentity, StoredPurposeKey } from './repository.js';

/** An IdentityRepository in process memory: for tests and throwaway in-process swarms. */
export class MemoryIdentityRepository implements IdentityRepository {
  readonly #byId = new Map<Identifier, StoredIdentity>();
  readonly #byName = new Map<string, Identifier>();
  readonly #purposeKeys = new Map<string, StoredPurposeKey>();

  getIdentity(identifier: Identifier): Promise<StoredIdentity | undefined> {
    return Promise.resolve(this.#byId.get(identifier));
  }

  getIdentityByName(name: string): Promise<StoredIdentity | undefined> {
    const id = this.#byName.get(name);
    return Promise.resolve(id === undefined ? undefined : this.#byId.get(id));
  }

  putIdentity(
    identity: StoredIdentity,
    purposeKeys: readonly StoredPurposeKey[] = [],
  ): Promise<void> {
    if (purposeKeys.some((k) => k.identifier !== identity.identifier)) {
      return Promise.reject(
        invalid(
          'ERR_ARGUMENT_INVALID',
          'purpose keys must belong to the identity stored with them',
        ),
      );
    }
    const owner = identity.name === null ? undefined : this.#byName.get(identity.name);
    if (owner !== undefined && owner !== identity.identifier) {
      return Promise.reject(
        conflict(
          'ERR_IDENTITY_NAME_TAKEN',
          `an identity named \`${identity.name ?? ''}\` already exists`,
        ),
      );
    }
    for (const key of purposeKeys) this.#purposeKeys.set(`${key.identifier}/${key.purpose}`, key);
    const previous = this.#byId.get(identity.identifier);
    if (previous?.name != null) this.#byName.delete(previous.name);
    this.#byId.set(identity.identifier, identity);
    if (identity.name !== null) this.#byName.set(identity.name, identity.identifier);
    return Promise.resolve();
  }

  listIdentities(
    options: { readonly limit?: number; readonly offset?: number } = {},
  ): Promise<StoredIdentity[]> {
    const offset = options.offset ?? 0;
    const all = [...this.#byId.values()];
    return Promise.resolve(
      all.slice(offset, options.limit === undefined ? undefined : offset + options.limit),
    );
  }

  countIdentities(): Promise<number> {
    return Promise.resolve(this.#byId.size);
  }

  getPurposeKey(identifier: Identifier, purpose: Purpose): Promise<StoredPurposeKey | undefined> {
    return Promise.resolve(this.#purposeKeys.get(`${identifier}/${purpose}`));
  }

  /** No durability to protect in memory; the work simply runs. */
  transaction<T>(work: () => Promise<T>): Promise<T> {
    return work();
  }
}
