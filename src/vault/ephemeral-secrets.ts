import {
  AeadAlgorithm,
  SHA256_BYTES,
  aeadDecrypt,
  aeadEncrypt,
  hmacSha256,
  wipe,
  type SecretBytes,
  type SecureArena,
} from '../crypto/index.js';
import { invalid } from '../core/internal.js';
import { newKeyId } from './key-entries.js';
import type { SecretHandle } from './types.js';
import { secretNotFound } from './vault-errors.js';

const EMPTY = new Uint8Array(0);

/**
 * Short-lived symmetric secrets (DH outputs, chaining keys, AEAD keys) behind handles. They are
 * never persisted and never evicted: a handshake holds its secrets until it deletes them, so
 * forgetting one early would break it. Shared by every in-process vault.
 */
export class EphemeralSecrets {
  readonly #arena: SecureArena;
  readonly #secrets = new Map<string, SecretBytes>();

  constructor(arena: SecureArena) {
    this.#arena = arena;
  }

  get size(): number {
    return this.#secrets.size;
  }

  add(secret: SecretBytes): SecretHandle {
    const secretId = newKeyId();
    this.#secrets.set(secretId, secret);
    return { secretId };
  }

  get(handle: SecretHandle): SecretBytes {
    const secret = this.#secrets.get(handle.secretId);
    if (secret === undefined) throw secretNotFound(handle.secretId);
    return secret;
  }

  import(bytes: Uint8Array): SecretHandle {
    if (bytes.byteLength === 0)
      throw invalid('ERR_VAULT_SECRET_INVALID', 'an imported secret must not be empty');
    return this.add(this.#arena.allocateFrom(bytes));
  }

  /**
   * HKDF-SHA-256 (RFC 5869) producing `count` 32-byte blocks: PRK = HMAC(salt, ikm), then
   * T(i) = HMAC(PRK, T(i-1) ‖ info ‖ i). With an empty `info` this is exactly Noise's HKDF
   * (Noise rev. 34, §4.3), which is the caller we have; a non-empty `info` stays RFC 5869.
   */
  hkdf(
    salt: SecretHandle,
    ikm: SecretHandle | undefined,
    info: Uint8Array,
    count: 1 | 2 | 3,
  ): SecretHandle[] {
    const saltBytes = this.get(salt).expose();
    const ikmBytes = ikm === undefined ? EMPTY : this.get(ikm).expose();
    if (count !== 1 && count !== 2 && count !== 3)
      throw invalid(
        'ERR_VAULT_HKDF_COUNT_INVALID',
        `\`count\` must be 1, 2 or 3, got ${String(count)}`,
      );
    const prk = hmacSha256(saltBytes, ikmBytes);
    const input = new Uint8Array(SHA256_BYTES + info.byteLength + 1);
    const outputs: SecretBytes[] = [];
    try {
      let previousLength = 0;
      for (let i = 1; i <= count; i++) {
        // input = T(i-1) ‖ info ‖ i, with T(0) empty.
        input.set(info, previousLength);
        input[previousLength + info.byteLength] = i;
        const block = hmacSha256(prk, input.subarray(0, previousLength + info.byteLength + 1));
        outputs.push(this.#arena.allocateFrom(block));
        input.set(block, 0);
        previousLength = SHA256_BYTES;
        wipe(block);
      }
    } catch (error) {
      for (const output of outputs) output.destroy();
      throw error;
    } finally {
      wipe(prk);
      wipe(input);
    }
    return outputs.map((output) => this.add(output));
  }

  aeadEncrypt(
    key: SecretHandle,
    nonce: Uint8Array,
    plaintext: Uint8Array,
    aad: Uint8Array,
  ): Uint8Array {
    return aeadEncrypt(AeadAlgorithm.aes256gcm, this.get(key).expose(), nonce, plaintext, aad);
  }

  aeadDecrypt(
    key: SecretHandle,
    nonce: Uint8Array,
    ciphertext: Uint8Array,
    aad: Uint8Array,
  ): Uint8Array {
    return aeadDecrypt(AeadAlgorithm.aes256gcm, this.get(key).expose(), nonce, ciphertext, aad);
  }

  delete(handle: SecretHandle): void {
    const secret = this.#secrets.get(handle.secretId);
    if (secret === undefined) return;
    this.#secrets.delete(handle.secretId);
    secret.destroy();
  }

  destroyAll(): void {
    for (const secret of this.#secrets.values()) secret.destroy();
    this.#secrets.clear();
  }
}

/**
 * The secure-channel vault operations on ephemeral secrets (DH outputs, HKDF outputs, imported
 * keys), shared by the vaults that keep them in guarded memory: one implementation instead of a
 * copy per vault.
 */
export abstract class GuardedSecretOperations {
  protected readonly secrets: EphemeralSecrets;

  protected constructor(arena: SecureArena) {
    this.secrets = new EphemeralSecrets(arena);
  }

  hkdf(
    salt: SecretHandle,
    ikm: SecretHandle | undefined,
    info: Uint8Array,
    count: 1 | 2 | 3,
  ): Promise<SecretHandle[]> {
    return attempt(() => this.secrets.hkdf(salt, ikm, info, count));
  }

  importSecret(bytes: Uint8Array): Promise<SecretHandle> {
    return attempt(() => this.secrets.import(bytes));
  }

  aeadEncrypt(
    key: SecretHandle,
    nonce: Uint8Array,
    plaintext: Uint8Array,
    aad: Uint8Array,
  ): Promise<Uint8Array> {
    return attempt(() => this.secrets.aeadEncrypt(key, nonce, plaintext, aad));
  }

  aeadDecrypt(
    key: SecretHandle,
    nonce: Uint8Array,
    ciphertext: Uint8Array,
    aad: Uint8Array,
  ): Promise<Uint8Array> {
    return attempt(() => this.secrets.aeadDecrypt(key, nonce, ciphertext, aad));
  }

  deleteSecret(secret: SecretHandle): Promise<void> {
    return attempt(() => {
      this.secrets.delete(secret);
    });
  }
}

/** Synchronous work as a promise: a throw becomes a rejection, as the async interfaces promise. */
function attempt<T>(work: () => T): Promise<T> {
  try {
    return Promise.resolve(work());
  } catch (error) {
    return Promise.reject(error instanceof Error ? error : new Error(String(error)));
  }
}
