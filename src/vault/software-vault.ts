import { invalid } from '../core/internal.js';
import {
  AEAD_KEY_BYTES,
  ED25519_SECRET_KEY_BYTES,
  SecureArena,
  X25519_KEY_BYTES,
  type SecretBytes,
} from '../crypto/index.js';
import { GuardedSecretOperations } from './ephemeral-secrets.js';
import {
  SigningKeyEntry,
  X25519KeyEntry,
  generateSigningKeyEntry,
  generateX25519KeyEntry,
  newKeyId,
  type KeyEntry,
} from './key-entries.js';
import { sealKey, unsealKey } from './sealed-key.js';
import {
  SigningKeyType,
  type SealedKeyRecord,
  type SealedKeyRepository,
  type SecretHandle,
  type SecureChannelVault,
  type SigningKeyHandle,
  type SigningVault,
  type X25519KeyHandle,
} from './types.js';
import { keyNotFound, unsealFailed, wrongPurpose } from './vault-errors.js';

export const SOFTWARE_VAULT_DEFAULT_CACHE_KEYS = 16_384;

/**
 * Options of {@link SoftwareVault}: where sealed keys live and the key that seals them.
 */
export interface SoftwareVaultOptions {
  /** Where sealed keys live (SQLite in production, a Map in tests). */
  readonly repository: SealedKeyRepository;
  /**
   * The 32-byte key-encryption key (see key-encryption-key.ts). The vault borrows it: the
   * caller destroys it after the vault is done.
   */
  readonly kek: SecretBytes;
  /** Guarded memory for unsealed keys and ephemeral secrets. */
  readonly arena?: SecureArena;
  /** How many unsealed keys to keep in memory; the least recently used are wiped beyond it. */
  readonly cacheKeys?: number;
}

/**
 * A vault whose signing and X25519 keys are sealed at rest (XChaCha20-Poly1305 under a KEK, format in
 * sealed-key.ts) and unsealed lazily into guarded memory on first use. Unsealed keys sit in an
 * LRU cache bounded by `cacheKeys`, so a node serving many agents keeps a bounded amount of
 * locked memory; an evicted key is wiped and unsealed again when next needed. Ephemeral
 * secrets are never persisted.
 *
 * Concurrent first uses of one key share one unseal; a delete racing with an unseal wins (the
 * unsealed copy is wiped and the caller gets `ERR_VAULT_KEY_NOT_FOUND`).
 */
export class SoftwareVault
  extends GuardedSecretOperations
  implements SigningVault, SecureChannelVault
{
  readonly #repository: SealedKeyRepository;
  readonly #kek: SecretBytes;
  readonly #arena: SecureArena;
  readonly #cacheKeys: number;
  /** Insertion order is recency order: a hit moves the key to the end, eviction takes the front. */
  readonly #cache = new Map<string, KeyEntry>();
  /**
   * Where eviction resumes: one live iterator over `#cache`. A Map iterator visits entries added
   * after it was made and skips deleted ones, and everything before its position has been evicted
   * or moved to the end, so its next entry is always the least recently used. A fresh
   * `entries()` per eviction would scan the deleted slots that LRU churn leaves at the front of
   * the table (measured: about 7 µs per provisioned agent at 16,384 cached keys).
   */
  #evictor: MapIterator<[string, KeyEntry]> | undefined;
  readonly #loading = new Map<string, Promise<KeyEntry>>();

  constructor(options: SoftwareVaultOptions) {
    const arena = options.arena ?? new SecureArena();
    super(arena);
    if (options.kek.byteLength !== AEAD_KEY_BYTES) {
      throw invalid(
        'ERR_CRYPTO_KEY_LENGTH',
        `\`kek\` must be ${AEAD_KEY_BYTES} bytes, got ${options.kek.byteLength}`,
      );
    }
    const cacheKeys = options.cacheKeys ?? SOFTWARE_VAULT_DEFAULT_CACHE_KEYS;
    if (!Number.isSafeInteger(cacheKeys) || cacheKeys < 1) {
      throw invalid(
        'ERR_VAULT_CACHE_SIZE_INVALID',
        `\`cacheKeys\` must be a positive integer, got ${cacheKeys}`,
      );
    }
    this.#repository = options.repository;
    this.#kek = options.kek;
    this.#arena = arena;
    this.#cacheKeys = cacheKeys;
  }

  async generateSigningKey(keyType: SigningKeyType): Promise<SigningKeyHandle> {
    const entry = generateSigningKeyEntry(this.#arena, newKeyId(), keyType);
    await this.#persist(entry, 'signing', keyType);
    return entry.handle();
  }

  async getSigningKey(keyId: string): Promise<SigningKeyHandle> {
    let entry = this.#cached(keyId);
    while (entry === undefined || entry.secret.destroyed) entry = await this.#load(keyId);
    if (entry.purpose !== 'signing') throw wrongPurpose(keyId, 'signing');
    return entry.handle();
  }

  async sign(keyId: string, message: Uint8Array): Promise<Uint8Array> {
    // The await happens only on a miss, and the check for a destroyed entry and its use sit in
    // one synchronous step, so an eviction can never wipe a key between lookup and signature.
    let entry = this.#cached(keyId);
    while (entry === undefined || entry.secret.destroyed) entry = await this.#load(keyId);
    if (entry.purpose !== 'signing') throw wrongPurpose(keyId, 'signing');
    return entry.sign(message);
  }

  /** `sign` when the key is loaded now (no await); `undefined` on a miss. */
  signNow(keyId: string, message: Uint8Array): Uint8Array | undefined {
    const entry = this.#cached(keyId);
    if (entry === undefined || entry.secret.destroyed) return undefined;
    if (entry.purpose !== 'signing') throw wrongPurpose(keyId, 'signing');
    return entry.sign(message);
  }

  async deleteSigningKey(keyId: string): Promise<void> {
    await this.#delete(keyId, 'signing');
  }

  async generateX25519Key(): Promise<X25519KeyHandle> {
    const entry = generateX25519KeyEntry(this.#arena, newKeyId());
    await this.#persist(entry, 'x25519', 'x25519');
    return entry.handle();
  }

  async getX25519Key(keyId: string): Promise<X25519KeyHandle> {
    let entry = this.#cached(keyId);
    while (entry === undefined || entry.secret.destroyed) entry = await this.#load(keyId);
    if (entry.purpose !== 'x25519') throw wrongPurpose(keyId, 'x25519');
    return entry.handle();
  }

  async deleteX25519Key(keyId: string): Promise<void> {
    await this.#delete(keyId, 'x25519');
  }

  async dh(keyId: string, peerPublicKey: Uint8Array): Promise<SecretHandle> {
    let entry = this.#cached(keyId);
    while (entry === undefined || entry.secret.destroyed) entry = await this.#load(keyId);
    if (entry.purpose !== 'x25519') throw wrongPurpose(keyId, 'x25519');
    return this.secrets.add(entry.dh(this.#arena, peerPublicKey));
  }

  /** Wipes every unsealed key and ephemeral secret in memory; sealed keys stay and reload on use. */
  destroy(): void {
    for (const entry of this.#cache.values()) entry.destroy();
    this.#cache.clear();
    this.#evictor = undefined;
    this.secrets.destroyAll();
  }

  /** The number of unsealed keys in memory (for tests and metrics). */
  get cachedKeys(): number {
    return this.#cache.size;
  }

  async #persist(
    entry: KeyEntry,
    purpose: SealedKeyRecord['purpose'],
    keyType: SealedKeyRecord['keyType'],
  ): Promise<void> {
    try {
      const record = sealKey(
        this.#kek,
        { keyId: entry.keyId, purpose, keyType, publicKey: entry.publicKey },
        entry.secret,
      );
      await this.#repository.putKey(record);
    } catch (error) {
      entry.destroy();
      throw error;
    }
    this.#remember(entry);
  }

  #cached(keyId: string): KeyEntry | undefined {
    const entry = this.#cache.get(keyId);
    if (entry !== undefined) {
      this.#cache.delete(keyId);
      this.#cache.set(keyId, entry);
    }
    return entry;
  }

  #remember(entry: KeyEntry): void {
    const previous = this.#cache.get(entry.keyId);
    if (previous !== undefined && previous !== entry) previous.destroy();
    this.#cache.delete(entry.keyId);
    this.#cache.set(entry.keyId, entry);
    while (this.#cache.size > this.#cacheKeys) {
      let oldest = this.#evictor?.next();
      if (oldest === undefined || oldest.done === true) {
        this.#evictor = this.#cache.entries();
        oldest = this.#evictor.next();
        if (oldest.done === true) break;
      }
      this.#cache.delete(oldest.value[0]);
      oldest.value[1].destroy();
    }
  }

  #forget(keyId: string): void {
    this.#loading.delete(keyId);
    const entry = this.#cache.get(keyId);
    if (entry === undefined) return;
    this.#cache.delete(keyId);
    entry.destroy();
  }

  /** One unseal per key however many callers miss at once. */
  #load(keyId: string): Promise<KeyEntry> {
    const pending = this.#loading.get(keyId);
    if (pending !== undefined) return pending;
    const load: Promise<KeyEntry> = this.#repository.getKey(keyId).then(
      (record) => {
        // A delete during the read took this load off the map: its result is void.
        const current = this.#loading.get(keyId) === load;
        if (current) this.#loading.delete(keyId);
        if (record === undefined || !current) throw keyNotFound(keyId);
        const entry = this.#open(keyId, record);
        this.#remember(entry);
        return entry;
      },
      (error: unknown) => {
        if (this.#loading.get(keyId) === load) this.#loading.delete(keyId);
        throw error;
      },
    );
    this.#loading.set(keyId, load);
    return load;
  }

  #open(keyId: string, record: SealedKeyRecord): KeyEntry {
    const publicKey = record.publicKey.slice();
    if (record.purpose === 'signing') {
      if (record.keyType === SigningKeyType.ed25519) {
        return new SigningKeyEntry(
          keyId,
          record.keyType,
          publicKey,
          this.#unseal(keyId, record, ED25519_SECRET_KEY_BYTES),
        );
      }
      if (record.keyType === SigningKeyType.p256) {
        // PKCS#8 DER has no fixed length; importing it on first signature checks its shape.
        return new SigningKeyEntry(
          keyId,
          record.keyType,
          publicKey,
          this.#unseal(keyId, record, undefined),
        );
      }
    } else if (record.purpose === 'x25519' && record.keyType === 'x25519') {
      return new X25519KeyEntry(keyId, publicKey, this.#unseal(keyId, record, X25519_KEY_BYTES));
    }
    // We never seal such a record, so it was not written by a vault.
    throw unsealFailed(keyId);
  }

  #unseal(
    keyId: string,
    record: SealedKeyRecord,
    expectedSecretBytes: number | undefined,
  ): SecretBytes {
    return unsealKey(this.#kek, this.#arena, keyId, record, expectedSecretBytes);
  }

  async #delete(keyId: string, purpose: SealedKeyRecord['purpose']): Promise<void> {
    let storedPurpose = this.#cache.get(keyId)?.purpose;
    if (storedPurpose === undefined) {
      const record = await this.#repository.getKey(keyId);
      if (record === undefined) {
        this.#forget(keyId);
        return;
      }
      storedPurpose = record.purpose;
    }
    if (storedPurpose !== purpose) throw wrongPurpose(keyId, purpose);
    this.#forget(keyId);
    await this.#repository.deleteKey(keyId);
    // A use that started while the record was being deleted may have unsealed it again.
    this.#forget(keyId);
  }
}
