/* eslint-disable @typescript-eslint/require-await -- SealedKeyRepository is async for real databases; a Map answers at once */
import { conflict, type MandateError } from '../core/index.js';
import type { SealedKeyRecord, SealedKeyRepository } from './types.js';

/**
 * Sealed keys in a Map: for tests and for a SoftwareVault that need not outlive the process.
 * Records are copied in and out, so callers cannot change what is stored by mutating a record.
 */
export class InMemorySealedKeyRepository implements SealedKeyRepository {
  readonly #records = new Map<string, SealedKeyRecord>();

  /** Refuses to replace a record: overwriting a key is never what a vault means to do. */
  async putKey(record: SealedKeyRecord): Promise<void> {
    if (this.#records.has(record.keyId)) throw keyExists(record.keyId);
    this.#records.set(record.keyId, copyRecord(record));
  }

  async getKey(keyId: string): Promise<SealedKeyRecord | undefined> {
    const record = this.#records.get(keyId);
    return record === undefined ? undefined : copyRecord(record);
  }

  async deleteKey(keyId: string): Promise<void> {
    this.#records.delete(keyId);
  }

  get size(): number {
    return this.#records.size;
  }
}

const keyExists = (keyId: string): MandateError =>
  conflict('ERR_VAULT_KEY_EXISTS', `key \`${keyId}\` already exists`);

function copyRecord(record: SealedKeyRecord): SealedKeyRecord {
  return {
    keyId: record.keyId,
    purpose: record.purpose,
    keyType: record.keyType,
    publicKey: record.publicKey.slice(),
    sealed: record.sealed.slice(),
  };
}
