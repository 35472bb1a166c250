/* eslint-disable @typescript-eslint/require-await -- the interfaces are async for persistent and HSM vaults; here the work is synchronous and `async` only turns throws into rejections */
import { SecureArena } from '../crypto/index.js';
import { GuardedSecretOperations } from './ephemeral-secrets.js';
import {
  generateSigningKeyEntry,
  generateX25519KeyEntry,
  newKeyId,
  type KeyEntry,
  type SigningKeyEntry,
  type X25519KeyEntry,
} from './key-entries.js';
import type {
  SecretHandle,
  SecureChannelVault,
  SigningKeyHandle,
  SigningKeyType,
  SigningVault,
  X25519KeyHandle,
} from './types.js';
import { keyNotFound, wrongPurpose } from './vault-errors.js';

/**
 * Options of {@link MemoryVault}.
 */
export interface MemoryVaultOptions {
  /** Guarded memory for the secrets; vaults may share one to save locked pages. */
  readonly arena?: SecureArena;
}

/**
 * A vault whose keys live only in guarded memory and die with the process (or `destroy()`): for
 * tests, ephemeral agents and in-process work. One map of entries, so a signature costs a
 * lookup over the raw primitive.
 */
export class MemoryVault
  extends GuardedSecretOperations
  implements SigningVault, SecureChannelVault
{
  readonly #arena: SecureArena;
  readonly #keys = new Map<string, KeyEntry>();

  constructor(options: MemoryVaultOptions = {}) {
    const arena = options.arena ?? new SecureArena();
    super(arena);
    this.#arena = arena;
  }

  async generateSigningKey(keyType: SigningKeyType): Promise<SigningKeyHandle> {
    const entry = generateSigningKeyEntry(this.#arena, newKeyId(), keyType);
    this.#keys.set(entry.keyId, entry);
    return entry.handle();
  }

  async getSigningKey(keyId: string): Promise<SigningKeyHandle> {
    return this.#signingEntry(keyId).handle();
  }

  async sign(keyId: string, message: Uint8Array): Promise<Uint8Array> {
    return this.#signingEntry(keyId).sign(message);
  }

  signNow(keyId: string, message: Uint8Array): Uint8Array {
    return this.#signingEntry(keyId).sign(message);
  }

  async deleteSigningKey(keyId: string): Promise<void> {
    this.#deleteEntry(keyId, 'signing');
  }

  async generateX25519Key(): Promise<X25519KeyHandle> {
    const entry = generateX25519KeyEntry(this.#arena, newKeyId());
    this.#keys.set(entry.keyId, entry);
    return entry.handle();
  }

  async getX25519Key(keyId: string): Promise<X25519KeyHandle> {
    return this.#x25519Entry(keyId).handle();
  }

  async deleteX25519Key(keyId: string): Promise<void> {
    this.#deleteEntry(keyId, 'x25519');
  }

  async dh(keyId: string, peerPublicKey: Uint8Array): Promise<SecretHandle> {
    return this.secrets.add(this.#x25519Entry(keyId).dh(this.#arena, peerPublicKey));
  }

  /** Wipes every key and secret; the vault stays usable but empty. */
  destroy(): void {
    for (const entry of this.#keys.values()) entry.destroy();
    this.#keys.clear();
    this.secrets.destroyAll();
  }

  #signingEntry(keyId: string): SigningKeyEntry {
    const entry = this.#keys.get(keyId);
    if (entry === undefined) throw keyNotFound(keyId);
    if (entry.purpose !== 'signing') throw wrongPurpose(keyId, 'signing');
    return entry;
  }

  #x25519Entry(keyId: string): X25519KeyEntry {
    const entry = this.#keys.get(keyId);
    if (entry === undefined) throw keyNotFound(keyId);
    if (entry.purpose !== 'x25519') throw wrongPurpose(keyId, 'x25519');
    return entry;
  }

  #deleteEntry(keyId: string, purpose: KeyEntry['purpose']): void {
    const entry = this.#keys.get(keyId);
    if (entry === undefined) return;
    if (entry.purpose !== purpose) throw wrongPurpose(keyId, purpose);
    this.#keys.delete(keyId);
    entry.destroy();
  }
}
