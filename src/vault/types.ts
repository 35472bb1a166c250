/**
 * Vault interfaces, split by purpose as in Ockam: a signing vault for primary and credential
 * keys, a secure-channel vault for X25519 static keys, DH, HKDF and AEAD. Everything is
 * handle-based: no method returns private key bytes, so a PKCS#11 or KMS backend can implement
 * the same interfaces with keys that never leave the device.
 */

export const SigningKeyType = { ed25519: 'ed25519', p256: 'p256' } as const;
export type SigningKeyType = (typeof SigningKeyType)[keyof typeof SigningKeyType];

/** A reference to a signing key held by a vault, with its public half. */
export interface SigningKeyHandle {
  readonly keyId: string;
  readonly keyType: SigningKeyType;
  /** Ed25519: 32 bytes; P-256: 65-byte SEC1 uncompressed point. */
  readonly publicKey: Uint8Array;
}

/**
 * Signing keys behind handles: the secret never leaves the vault. Implemented by
 * `MemoryVault` and `SoftwareVault`; a custom vault (an HSM) implements this and
 * `SecureChannelVault` and passes the contract suite in test/contract/vault-contract.ts.
 */
export interface SigningVault {
  /** Creates a key; with a persistent vault it is durable when the promise resolves. */
  generateSigningKey(keyType: SigningKeyType): Promise<SigningKeyHandle>;
  /** Throws `ERR_VAULT_KEY_NOT_FOUND` if the vault has no such key. */
  getSigningKey(keyId: string): Promise<SigningKeyHandle>;
  /** Ed25519 signs `message`; P-256 signs SHA-256(`message`) and returns raw r ‖ s. */
  sign(keyId: string, message: Uint8Array): Promise<Uint8Array>;
  /**
   * Optional: `sign` done now, for a vault that holds the key in memory at this moment; returns
   * `undefined` when it cannot (then call `sign`). Hot paths (audit records) use it to sign
   * without a promise per signature.
   */
  signNow?(keyId: string, message: Uint8Array): Uint8Array | undefined;
  /** Destroys the secret (wiped in memory, removed at rest). Idempotent. */
  deleteSigningKey(keyId: string): Promise<void>;
}

/** A reference to an X25519 static key held by a vault. */
export interface X25519KeyHandle {
  readonly keyId: string;
  readonly publicKey: Uint8Array;
}

/** A reference to a symmetric secret (DH output, HKDF output, AEAD key) held by a vault. */
export interface SecretHandle {
  readonly secretId: string;
}

/**
 * X25519 static keys and the Noise key schedule behind handles: Diffie-Hellman, HKDF and AEAD
 * run inside the vault, so secure-channel secrets never reach the caller.
 */
export interface SecureChannelVault {
  /** A persistent static key (durable on resolve with a persistent vault). */
  generateX25519Key(): Promise<X25519KeyHandle>;
  getX25519Key(keyId: string): Promise<X25519KeyHandle>;
  deleteX25519Key(keyId: string): Promise<void>;
  /** X25519(static secret, peer public) as a secret handle; low-order peers are refused. */
  dh(keyId: string, peerPublicKey: Uint8Array): Promise<SecretHandle>;
  /** HKDF-SHA-256 (Noise's HKDF: salt = chaining key) into `count` 32-byte secrets. */
  hkdf(
    salt: SecretHandle,
    ikm: SecretHandle | undefined,
    info: Uint8Array,
    count: 1 | 2 | 3,
  ): Promise<SecretHandle[]>;
  /** Imports bytes as an ephemeral secret (e.g. Noise's initial chaining key, which is public). */
  importSecret(bytes: Uint8Array): Promise<SecretHandle>;
  /** AES-256-GCM with a 12-byte nonce; returns ciphertext ‖ tag. */
  aeadEncrypt(
    key: SecretHandle,
    nonce: Uint8Array,
    plaintext: Uint8Array,
    aad: Uint8Array,
  ): Promise<Uint8Array>;
  /** Throws `ERR_CRYPTO_DECRYPT_FAILED` on authentication failure. */
  aeadDecrypt(
    key: SecretHandle,
    nonce: Uint8Array,
    ciphertext: Uint8Array,
    aad: Uint8Array,
  ): Promise<Uint8Array>;
  /** Wipes an ephemeral secret. Idempotent. */
  deleteSecret(secret: SecretHandle): Promise<void>;
}

/** What a persistent vault stores per key: the secret only in sealed form. */
export interface SealedKeyRecord {
  readonly keyId: string;
  readonly purpose: 'signing' | 'x25519';
  readonly keyType: SigningKeyType | 'x25519';
  readonly publicKey: Uint8Array;
  /** A sealed blob (sealed-blob.ts) of the secret, its AAD the fields above. */
  readonly sealed: Uint8Array;
}

/** Storage for sealed keys; implemented in `store/` (SQLite) and in memory for tests. */
export interface SealedKeyRepository {
  putKey(record: SealedKeyRecord): Promise<void>;
  /**
   * Optional: `putKey` of every record, all or none (bulk provisioning writes a batch's keys with
   * it: SQLite inserts many rows per statement). A key id already stored is `ERR_VAULT_KEY_EXISTS`.
   */
  putKeys?(records: readonly SealedKeyRecord[]): Promise<void>;
  getKey(keyId: string): Promise<SealedKeyRecord | undefined>;
  deleteKey(keyId: string): Promise<void>;
}

/** Where a vault's key-encryption key comes from (see key-encryption-key.ts). */
export const KekSource = { keyFile: 'key-file', passphrase: 'passphrase' } as const;
export type KekSource = (typeof KekSource)[keyof typeof KekSource];

/** What a persistent vault stores of its KEK: the source, and a verifier (kek-verifier.ts). */
export interface KekVerifierRecord {
  readonly source: KekSource;
  /** version ‖ nonce ‖ AES-256-GCM(KEK, empty plaintext, aad = label and source); never the KEK. */
  readonly verifier: Uint8Array;
}

/** Storage for the KEK verifier, beside the sealed keys it vouches for (`store/` and memory). */
export interface KekVerifierRepository {
  getKekVerifier(): Promise<KekVerifierRecord | undefined>;
  /** Stores `record` unless a verifier is stored already; returns the stored one (first wins). */
  putKekVerifier(record: KekVerifierRecord): Promise<KekVerifierRecord>;
  /** Any one sealed key, to check a KEK against a store written before verifiers existed. */
  anyKey(): Promise<SealedKeyRecord | undefined>;
}
