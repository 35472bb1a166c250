import { conflict, invalid, notFound, unauthorized } from '../core/internal.js';
import { systemClock, type Clock } from '../core/index.js';
import type { SecretBytes } from '../crypto/index.js';
import { encodeCbor } from '../encoding/index.js';
import { openBlob, sealBlob } from '../vault/internal.js';
import type { SecretInfo, SecretReader } from './types.js';

/** A secret as the repository keeps it: its value sealed under the KEK, never in clear. */
export interface SealedSecretRecord extends SecretInfo {
  /** `sealBlob` of the value with the AAD of {@link sealedSecretAad}. */
  readonly sealed: Uint8Array;
}

/**
 * Where sealed secrets live (SQLite in src/store). Implementations store what they are given and
 * never see a value in clear.
 */
export interface SecretRepository {
  /** Adds a new name; `ERR_SECRET_EXISTS` when the name is taken. */
  insert(record: SealedSecretRecord): Promise<void>;
  /**
   * Replaces the record of `record.name` if its stored version is `record.version - 1`; returns
   * false when it is not (a concurrent rotation, a removal).
   */
  replace(record: SealedSecretRecord): Promise<boolean>;
  get(name: string): Promise<SealedSecretRecord | undefined>;
  /** Every secret's name, version and dates, by name. */
  list(): Promise<readonly SecretInfo[]>;
  /** Removes the name; false when there was none. */
  remove(name: string): Promise<boolean>;
}

/** The longest secret value accepted (a token, a password, a private key in PEM fits easily). */
export const MAX_SECRET_BYTES = 64 * 1024;
const MAX_NAME_CHARS = 64;
/**
 * Secret names: segments of `A-Z a-z 0-9 _ . -` starting with a letter or digit, joined by `/`
 * (`stripe-refunds`, `stripe/refunds`), at most 64 characters: a subset of the tool-name grammar,
 * so that `proxy/NAME` can stand in a chain's `secrets` grant.
 */
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*(?:\/[A-Za-z0-9][A-Za-z0-9_.-]*)*$/;
const AAD_LABEL = 'mandate/broker/sealed-secret';
const AAD_VERSION = 1;

/** Throws `ERR_SECRET_NAME_INVALID` unless `name` is a secret name (see NAME_RE). */
export function checkSecretName(name: unknown): string {
  if (typeof name !== 'string' || name.length > MAX_NAME_CHARS || !NAME_RE.test(name))
    throw invalid(
      'ERR_SECRET_NAME_INVALID',
      `a secret name is 1–${MAX_NAME_CHARS} of \`A-Z a-z 0-9 _ . -\` in \`/\`-separated segments, each starting with a letter or digit`,
    );
  return name;
}

/**
 * The AAD of a sealed secret: `CBOR ["mandate/broker/sealed-secret", 1, name, version]`. Its label
 * differs from a sealed key's (`mandate/vault/sealed-key`), so a blob of one never opens as the
 * other, and name and version bind the blob to its row: a blob copied under another name or
 * version does not open.
 */
export function sealedSecretAad(name: string, version: number): Uint8Array {
  return encodeCbor([AAD_LABEL, AAD_VERSION, name, version]);
}

const notFoundError = (name: string) =>
  notFound('ERR_SECRET_NOT_FOUND', `no secret \`${name}\` in this broker's store`);

/** Options of {@link SecretStore}. */
export interface SecretStoreOptions {
  readonly repository: SecretRepository;
  /** The vault's key-encryption key (borrowed: the caller destroys it after the store is done). */
  readonly kek: SecretBytes;
  readonly clock?: Clock;
}

/**
 * The broker's sealed secret store (docs/spec/broker.md §1): each value is sealed under the
 * vault's key-encryption key (`sealBlob`, XChaCha20-Poly1305, the sealed-secret AAD) before it reaches
 * the repository, and opened only by `read`, for a provider that injects or signs with it. Values
 * never appear in errors, logs, listings or audit records; `list` and every answer carry names,
 * versions and dates only. The store never keeps a value in clear: `put` and `rotate` seal the
 * caller's bytes (the caller wipes them), `read` returns a fresh copy the caller wipes.
 */
export class SecretStore implements SecretReader {
  readonly #repository: SecretRepository;
  readonly #kek: SecretBytes;
  readonly #clock: Clock;

  constructor(options: SecretStoreOptions) {
    this.#repository = options.repository;
    this.#kek = options.kek;
    this.#clock = options.clock ?? systemClock;
  }

  /** Stores a new secret (version 1); `ERR_SECRET_EXISTS` for a name taken (use `rotate`). */
  async put(name: string, value: Uint8Array): Promise<SecretInfo> {
    checkSecretName(name);
    checkValue(value);
    const now = this.#clock.nowSeconds();
    const record = this.#seal({ name, version: 1, createdAt: now, updatedAt: now }, value);
    await this.#repository.insert(record);
    return infoOf(record);
  }

  /** Replaces the value of an existing secret; its version goes up by one. */
  async rotate(name: string, value: Uint8Array): Promise<SecretInfo> {
    checkSecretName(name);
    checkValue(value);
    const current = await this.#repository.get(name);
    if (current === undefined) throw notFoundError(name);
    const record = this.#seal(
      {
        name,
        version: current.version + 1,
        createdAt: current.createdAt,
        updatedAt: Math.max(current.updatedAt, this.#clock.nowSeconds()),
      },
      value,
    );
    if (!(await this.#repository.replace(record)))
      throw conflict(
        'ERR_SECRET_CHANGED',
        `secret \`${name}\` changed while it was being rotated: try again`,
      );
    return infoOf(record);
  }

  /** Removes a secret; `ERR_SECRET_NOT_FOUND` when there is none. */
  async remove(name: string): Promise<void> {
    checkSecretName(name);
    if (!(await this.#repository.remove(name))) throw notFoundError(name);
  }

  /** Names, versions and dates, never values. */
  list(): Promise<readonly SecretInfo[]> {
    return this.#repository.list();
  }

  /** One secret's name, version and dates; `ERR_SECRET_NOT_FOUND` when there is none. */
  async info(name: string): Promise<SecretInfo> {
    checkSecretName(name);
    const record = await this.#repository.get(name);
    if (record === undefined) throw notFoundError(name);
    return infoOf(record);
  }

  /**
   * The current value, in a fresh buffer the caller wipes (`wipe`) after use.
   * `ERR_SECRET_NOT_FOUND` for an unknown name, `ERR_SECRET_UNSEAL_FAILED` when the blob does not
   * open under this KEK (another vault's key, a tampered or moved row).
   */
  async read(name: string): Promise<Uint8Array> {
    checkSecretName(name);
    const record = await this.#repository.get(name);
    if (record === undefined) throw notFoundError(name);
    const value = openBlob(this.#kek, record.sealed, sealedSecretAad(name, record.version));
    if (value === undefined)
      throw unauthorized(
        'ERR_SECRET_UNSEAL_FAILED',
        `secret \`${name}\` failed to unseal (wrong key-encryption key or tampered record)`,
      );
    return value;
  }

  #seal(info: SecretInfo, value: Uint8Array): SealedSecretRecord {
    return {
      ...info,
      sealed: sealBlob(this.#kek, value, sealedSecretAad(info.name, info.version)),
    };
  }
}

function checkValue(value: Uint8Array): void {
  if (
    !(value instanceof Uint8Array) ||
    value.byteLength === 0 ||
    value.byteLength > MAX_SECRET_BYTES
  )
    throw invalid('ERR_SECRET_VALUE_INVALID', `a secret value is 1 to ${MAX_SECRET_BYTES} bytes`);
}

function infoOf(record: SecretInfo): SecretInfo {
  return {
    name: record.name,
    version: record.version,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
  };
}
