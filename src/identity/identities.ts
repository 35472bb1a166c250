import { conflict, invalid, notFound } from '../core/internal.js';
import { systemClock, type Clock } from '../core/index.js';
import { SigningKeyType, type SecureChannelVault, type SigningVault } from '../vault/index.js';
import { compareHistories, HistoryRelation } from './compare-histories.js';
import { createIdentity, rotateIdentity } from './create-identity.js';
import { isIdentifier, Purpose, type Identifier } from './model.js';
import {
  attestPurposeKey,
  verifyPurposeKeyAttestation,
  type PurposePublicKey,
  type VerifiedPurposeKey,
} from './purpose-keys.js';
import type { IdentityRepository, StoredIdentity, StoredPurposeKey } from './repository.js';
import type { VerifiedIdentity } from './verified-identity.js';
import { verifyChangeHistory } from './verify-change-history.js';

/**
 * What {@link Identities} needs of a vault: signing keys and secure-channel keys.
 */
export type IdentityVault = SigningVault & SecureChannelVault;

/**
 * Options of {@link Identities}. `rotationGraceSeconds` (default 300): how long purpose-key
 * attestations made under the previous change stay valid after a rotation.
 */
export interface IdentitiesOptions {
  readonly vault: IdentityVault;
  readonly repository: IdentityRepository;
  readonly clock?: Clock;
  readonly rotationGraceSeconds?: number;
}

/**
 * Options of `Identities.create`: an optional unique `name` (1–64 of `A-Z a-z 0-9 . _ -`,
 * starting with a letter or digit; a taken name is `ERR_IDENTITY_NAME_TAKEN`) and the primary key
 * type (default Ed25519).
 */
export interface CreateLocalIdentityOptions {
  readonly name?: string;
  readonly keyType?: SigningKeyType;
  /** Key type of the credential purpose key (default Ed25519). */
  readonly credentialKeyType?: SigningKeyType;
  /** Create and attest both purpose keys (default true). */
  readonly purposeKeys?: boolean;
}

/** A local identity: one whose primary key this node's vault holds. */
export interface LocalIdentity {
  readonly identity: VerifiedIdentity;
  readonly name: string | null;
  readonly primaryKeyId: string;
}

/**
 * An identity the repository holds, verified when read. `primaryKeyId` is the vault key id of
 * its primary key when this vault controls it (a local identity), else `null`.
 */
export interface KnownIdentity {
  readonly identity: VerifiedIdentity;
  readonly name: string | null;
  readonly primaryKeyId: string | null;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const DEFAULT_BATCH_SIZE = 500;

/**
 * The identity service: creates, rotates, imports and looks up identities, keeping vault keys,
 * change histories and purpose-key attestations consistent through one repository transaction
 * per operation (or per batch).
 *
 * @example
 * ```ts
 * const store = openSqliteStore('./.mandate/mandate.db');
 * const kek = await loadOrCreateKeyFile('./.mandate/vault.key');
 * const vault = new SoftwareVault({ repository: store.vaultKeys, kek });
 * const identities = new Identities({ vault, repository: store.identities });
 * const agent = await identities.create({ name: 'support-agent' });
 * await identities.rotate('support-agent');
 * const { verified } = await identities.purposeKey('support-agent', Purpose.credentials);
 * ```
 */
export class Identities {
  readonly #vault: IdentityVault;
  readonly #repository: IdentityRepository;
  readonly #clock: Clock;
  readonly #graceSeconds: number | undefined;

  constructor(options: IdentitiesOptions) {
    this.#vault = options.vault;
    this.#repository = options.repository;
    this.#clock = options.clock ?? systemClock;
    this.#graceSeconds = options.rotationGraceSeconds;
  }

  async create(options: CreateLocalIdentityOptions = {}): Promise<LocalIdentity> {
    const name = options.name ?? null;
    if (name !== null) {
      checkName(name);
      if ((await this.#repository.getIdentityByName(name)) !== undefined) {
        throw conflict('ERR_IDENTITY_NAME_TAKEN', `an identity named \`${name}\` already exists`);
      }
    }
    return this.#repository.transaction(() => this.#createUnchecked(name, options));
  }

  /**
   * Creates `count` identities in batches, one transaction each: a crash loses at most the batch
   * in flight, never half an identity. Names are `${namePrefix}${index}` when a prefix is given.
   */
  async createMany(
    count: number,
    options: CreateLocalIdentityOptions & {
      readonly namePrefix?: string;
      readonly batchSize?: number;
      readonly onProgress?: (done: number, total: number) => void;
    } = {},
  ): Promise<LocalIdentity[]> {
    if (!Number.isSafeInteger(count) || count < 1)
      throw invalid('ERR_ARGUMENT_INVALID', '`count` must be a positive integer');
    const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
    const created: LocalIdentity[] = [];
    const prefix = options.namePrefix;
    if (prefix !== undefined) checkName(`${prefix}${count}`);
    while (created.length < count) {
      const start = created.length;
      const end = Math.min(count, start + batchSize);
      const batch = await this.#repository.transaction(async () => {
        const out: LocalIdentity[] = [];
        for (let i = start; i < end; i++) {
          const name = prefix === undefined ? null : `${prefix}${i}`;
          if (name !== null && (await this.#repository.getIdentityByName(name)) !== undefined) {
            throw conflict(
              'ERR_IDENTITY_NAME_TAKEN',
              `an identity named \`${name}\` already exists`,
            );
          }
          out.push(await this.#createUnchecked(name, options));
        }
        return out;
      });
      created.push(...batch);
      options.onProgress?.(created.length, count);
    }
    return created;
  }

  async #createUnchecked(
    name: string | null,
    options: CreateLocalIdentityOptions,
  ): Promise<LocalIdentity> {
    const now = this.#clock.nowSeconds();
    const { identity, primaryKey } = await createIdentity(this.#vault, {
      nowSeconds: now,
      ...(options.keyType === undefined ? {} : { keyType: options.keyType }),
    });
    const purposeKeys =
      (options.purposeKeys ?? true)
        ? await this.#createPurposeKeys(
            identity,
            primaryKey.keyId,
            options.credentialKeyType ?? SigningKeyType.ed25519,
            now,
          )
        : [];
    // One write for the identity and its purpose keys.
    await this.#repository.putIdentity(
      {
        identifier: identity.identifier,
        changeHistory: identity.changeHistory,
        name,
        primaryKeyId: primaryKey.keyId,
        createdAt: now,
        updatedAt: now,
      },
      purposeKeys,
    );
    return { identity, name, primaryKeyId: primaryKey.keyId };
  }

  async #createPurposeKeys(
    identity: VerifiedIdentity,
    primaryKeyId: string,
    credentialKeyType: SigningKeyType,
    now: number,
  ): Promise<StoredPurposeKey[]> {
    const credentialKey = await this.#vault.generateSigningKey(credentialKeyType);
    const channelKey = await this.#vault.generateX25519Key();
    const attest = (key: PurposePublicKey): Promise<Uint8Array> =>
      attestPurposeKey(this.#vault, identity, primaryKeyId, key, { nowSeconds: now });
    return [
      {
        identifier: identity.identifier,
        purpose: Purpose.credentials,
        keyId: credentialKey.keyId,
        attestation: await attest({
          purpose: Purpose.credentials,
          signingKey: { keyType: credentialKey.keyType, bytes: credentialKey.publicKey },
        }),
      },
      {
        identifier: identity.identifier,
        purpose: Purpose.secureChannel,
        keyId: channelKey.keyId,
        attestation: await attest({ purpose: Purpose.secureChannel, x25519: channelKey.publicKey }),
      },
    ];
  }

  /**
   * Rotates the primary key of a local identity. Purpose keys are re-attested under the new
   * change; with `revokeAllPurposeKeys` they are replaced by new keys instead, and the old ones
   * destroyed. The old primary secret is destroyed once the new history is stored.
   */
  async rotate(
    ref: string,
    options: { readonly revokeAllPurposeKeys?: boolean; readonly keyType?: SigningKeyType } = {},
  ): Promise<LocalIdentity> {
    const known = await this.get(ref);
    if (known.primaryKeyId === null) {
      throw invalid(
        'ERR_IDENTITY_NOT_LOCAL',
        `identity \`${known.identity.identifier}\` is not controlled by this vault`,
      );
    }
    const oldKeyId = known.primaryKeyId;
    const now = this.#clock.nowSeconds();
    const stored = await this.#requireStored(known.identity.identifier);
    const revokeAll = options.revokeAllPurposeKeys ?? false;
    const oldPurposeKeys: StoredPurposeKey[] = [];
    const rotated = await this.#repository.transaction(async () => {
      const { identity, primaryKey } = await rotateIdentity(this.#vault, known.identity, oldKeyId, {
        nowSeconds: now,
        revokeAllPurposeKeys: revokeAll,
        ...(options.keyType === undefined ? {} : { keyType: options.keyType }),
      });
      for (const purpose of [Purpose.credentials, Purpose.secureChannel]) {
        const existing = await this.#repository.getPurposeKey(identity.identifier, purpose);
        if (existing !== undefined) oldPurposeKeys.push(existing);
      }
      let purposeKeys: StoredPurposeKey[];
      if (revokeAll || oldPurposeKeys.length < 2) {
        const credentialType =
          oldPurposeKeys.length > 0
            ? await this.#credentialKeyType(oldPurposeKeys)
            : SigningKeyType.ed25519;
        purposeKeys = await this.#createPurposeKeys(
          identity,
          primaryKey.keyId,
          credentialType,
          now,
        );
      } else {
        purposeKeys = [];
        for (const old of oldPurposeKeys) {
          const key = await this.#purposePublicKey(old);
          purposeKeys.push({
            ...old,
            attestation: await attestPurposeKey(this.#vault, identity, primaryKey.keyId, key, {
              nowSeconds: now,
            }),
          });
        }
      }
      await this.#repository.putIdentity(
        {
          ...stored,
          changeHistory: identity.changeHistory,
          primaryKeyId: primaryKey.keyId,
          updatedAt: now,
        },
        purposeKeys,
      );
      return { identity, name: stored.name, primaryKeyId: primaryKey.keyId };
    });
    // Only after the new history is durable: destroy the secrets it no longer needs.
    await this.#vault.deleteSigningKey(oldKeyId);
    if (revokeAll) {
      for (const old of oldPurposeKeys) {
        if (old.purpose === Purpose.credentials) await this.#vault.deleteSigningKey(old.keyId);
        else await this.#vault.deleteX25519Key(old.keyId);
      }
    }
    return rotated;
  }

  async #purposePublicKey(stored: StoredPurposeKey): Promise<PurposePublicKey> {
    if (stored.purpose === Purpose.credentials) {
      const handle = await this.#vault.getSigningKey(stored.keyId);
      return {
        purpose: Purpose.credentials,
        signingKey: { keyType: handle.keyType, bytes: handle.publicKey },
      };
    }
    return {
      purpose: Purpose.secureChannel,
      x25519: (await this.#vault.getX25519Key(stored.keyId)).publicKey,
    };
  }

  async #credentialKeyType(keys: readonly StoredPurposeKey[]): Promise<SigningKeyType> {
    const credential = keys.find((k) => k.purpose === Purpose.credentials);
    return credential === undefined
      ? SigningKeyType.ed25519
      : (await this.#vault.getSigningKey(credential.keyId)).keyType;
  }

  /**
   * Imports a change history from elsewhere. Unknown → stored; equal → no-op; a longer history
   * extending the known one → replaces it; older or diverging → `ERR_IDENTITY_HISTORY_OLDER` /
   * `ERR_IDENTITY_HISTORY_FORK`, and nothing changes.
   */
  async import(
    changeHistory: Uint8Array,
    options: { readonly expectedIdentifier?: Identifier } = {},
  ): Promise<{ identity: VerifiedIdentity; relation: HistoryRelation | 'new' }> {
    const candidate = verifyChangeHistory(changeHistory, options);
    return this.#repository.transaction(async () => {
      const stored = await this.#repository.getIdentity(candidate.identifier);
      const now = this.#clock.nowSeconds();
      if (stored === undefined) {
        await this.#repository.putIdentity({
          identifier: candidate.identifier,
          changeHistory,
          name: null,
          primaryKeyId: null,
          createdAt: now,
          updatedAt: now,
        });
        return { identity: candidate, relation: 'new' as const };
      }
      const known = verifyChangeHistory(stored.changeHistory, {
        expectedIdentifier: stored.identifier,
      });
      const relation = compareHistories(known, candidate);
      if (relation === HistoryRelation.older) {
        throw conflict(
          'ERR_IDENTITY_HISTORY_OLDER',
          `the known history of \`${known.identifier}\` is newer than the one given`,
        );
      }
      if (relation === HistoryRelation.conflict) {
        throw conflict(
          'ERR_IDENTITY_HISTORY_FORK',
          `the history given for \`${known.identifier}\` diverges from the known one`,
        );
      }
      if (relation === HistoryRelation.newer) {
        await this.#repository.putIdentity({ ...stored, changeHistory, updatedAt: now });
      }
      return { identity: relation === HistoryRelation.newer ? candidate : known, relation };
    });
  }

  /** Looks up by identifier or local name; the stored history is verified again on every read. */
  async get(ref: string): Promise<KnownIdentity> {
    const stored = isIdentifier(ref)
      ? await this.#repository.getIdentity(ref)
      : await this.#repository.getIdentityByName(ref);
    if (stored === undefined) throw notFound('ERR_IDENTITY_NOT_FOUND', `no identity \`${ref}\``);
    return this.#verifyStored(stored);
  }

  /**
   * As `get`, but `undefined` when no identity has that identifier or name. Only absence is
   * `undefined`: a stored history that no longer verifies, or a store that fails, still throws.
   */
  async find(ref: string): Promise<KnownIdentity | undefined> {
    const stored = isIdentifier(ref)
      ? await this.#repository.getIdentity(ref)
      : await this.#repository.getIdentityByName(ref);
    return stored === undefined ? undefined : this.#verifyStored(stored);
  }

  async list(
    options: { readonly limit?: number; readonly offset?: number } = {},
  ): Promise<KnownIdentity[]> {
    const rows = await this.#repository.listIdentities(options);
    return rows.map((row) => this.#verifyStored(row));
  }

  count(): Promise<number> {
    return this.#repository.countIdentities();
  }

  /** The verified purpose key of a known identity, checked at the current time. */
  async purposeKey(
    ref: string | KnownIdentity,
    purpose: Purpose,
  ): Promise<{ verified: VerifiedPurposeKey; keyId: string }> {
    // A KnownIdentity was verified when it was read: no need to read and verify it again.
    const known = typeof ref === 'string' ? await this.get(ref) : ref;
    const stored = await this.#repository.getPurposeKey(known.identity.identifier, purpose);
    if (stored === undefined)
      throw notFound(
        'ERR_PURPOSE_KEY_NOT_FOUND',
        `identity \`${known.identity.identifier}\` has no ${purpose} key`,
      );
    const verified = verifyPurposeKeyAttestation(known.identity, stored.attestation, {
      nowSeconds: this.#clock.nowSeconds(),
      expectedPurpose: purpose,
      ...(this.#graceSeconds === undefined ? {} : { rotationGraceSeconds: this.#graceSeconds }),
    });
    return { verified, keyId: stored.keyId };
  }

  #verifyStored(stored: StoredIdentity): KnownIdentity {
    const identity = verifyChangeHistory(stored.changeHistory, {
      expectedIdentifier: stored.identifier,
    });
    return { identity, name: stored.name, primaryKeyId: stored.primaryKeyId };
  }

  async #requireStored(identifier: Identifier): Promise<StoredIdentity> {
    const stored = await this.#repository.getIdentity(identifier);
    if (stored === undefined)
      throw notFound('ERR_IDENTITY_NOT_FOUND', `no identity \`${identifier}\``);
    return stored;
  }
}

function checkName(name: string): void {
  if (!NAME_RE.test(name) || isIdentifier(name)) {
    throw invalid(
      'ERR_IDENTITY_NAME_INVALID',
      'a name is 1 to 64 letters, digits, `.`, `_` or `-`, starting with a letter or digit',
    );
  }
}
