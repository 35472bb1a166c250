/* eslint-disable @typescript-eslint/require-await -- SealedKeyRepository is async for real databases; a Map answers at once */
import { conflict } from '../core/internal.js';
import type { MandateError } from '../core/index.js';
import type {
  KekVerifierRecord,
  KekVerifierRepository,
  SealedKeyRecord,
  SealedKeyRepository,
} from './types.js';

/**
 * Sealed keys in a Map: for tests and for a SoftwareVault that need not outlive the process.
 * Records are copied in and out, so callers cannot change what is stored by mutating a record.
 */
export class InMemorySealedKeyRepository implements SealedKeyRepository, KekVerifierRepository {
  readonly #records = new Map<string, SealedKeyRecord>();
  #kekVerifier: KekVerifierRecord | undefined;

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

  async getKekVerifier(): Promise<KekVerifierRecord | undefined> {
    return this.#kekVerifier === undefined ? undefined : copyVerifier(this.#kekVerifier);
  }

  async putKekVerifier(record: KekVerifierRecord): Promise<KekVerifierRecord> {
    this.#kekVerifier ??= copyVerifier(record);
    return copyVerifier(this.#kekVerifier);
  }

  async anyKey(): Promise<SealedKeyRecord | undefined> {
    const first = this.#records.values().next();
    return first.done === true ? undefined : copyRecord(first.value);
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

function copyVerifier(record: KekVerifierRecord): KekVerifierRecord {
  return { source: record.source, verifier: record.verifier.slice() };
}
