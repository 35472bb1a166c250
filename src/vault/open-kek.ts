import { stat } from 'node:fs/promises';
import type { SecretBytes, SecureArena } from '../crypto/index.js';
import {
  deriveKekFromPassphrase,
  loadKeyFile,
  loadOrCreateKeyFile,
  loadOrCreateSaltFile,
  loadSaltFile,
} from './key-encryption-key.js';
import { kekMatchesVerifier, sealKekVerifier } from './kek-verifier.js';
import { sealedKeyOpens } from './sealed-key.js';
import { KekSource, type KekVerifierRepository } from './types.js';
import {
  keyFileWrong,
  passphraseEmpty,
  passphraseRequired,
  passphraseUnexpected,
  passphraseWrong,
} from './vault-errors.js';

/**
 * Options of {@link openKek}: where the KEK comes from and where its verifier is kept.
 */
export interface OpenKekOptions {
  /** Where the vault's sealed keys and its KEK verifier live. */
  readonly repository: KekVerifierRepository;
  /** The key file (source `key-file`), by convention `vault.key` beside the database. */
  readonly keyFile: string;
  /** The scrypt salt file (source `passphrase`), by convention `vault.salt`. */
  readonly saltFile: string;
  /** Given: the KEK is derived from it; absent: the KEK is the key file. Never empty. */
  readonly passphrase?: string | undefined;
  /** How users give the passphrase (e.g. an environment variable), named in errors. */
  readonly passphraseName?: string;
  /** Guarded memory for the KEK. */
  readonly arena?: SecureArena;
}

/**
 * The key-encryption key of a persistent vault, checked before anything is sealed or unsealed
 * under it. A store records which source its KEK comes from and a verifier of it
 * (kek-verifier.ts), written by the first open; every later open must use the same source
 * (`ERR_VAULT_PASSPHRASE_REQUIRED`, `ERR_VAULT_PASSPHRASE_UNEXPECTED`) and a KEK the verifier
 * accepts (`ERR_VAULT_PASSPHRASE_WRONG`, `ERR_VAULT_KEY_FILE_WRONG`), and never creates a key or
 * salt file (`ERR_VAULT_KEY_FILE_MISSING`): a new file would only seal new keys under a KEK that
 * opens none of the old ones.
 *
 * A store written before verifiers existed is judged by its files (a salt file alone means a
 * passphrase, a key file alone the key file) and by one of its sealed keys, which must open;
 * then its verifier is recorded. Nothing is recorded or created when a check fails.
 */
export async function openKek(options: OpenKekOptions): Promise<SecretBytes> {
  const { repository, passphrase } = options;
  if (passphrase === '') throw passphraseEmpty(options.passphraseName);
  const requested = passphrase === undefined ? KekSource.keyFile : KekSource.passphrase;
  const stored = await repository.getKekVerifier();
  if (stored !== undefined) {
    checkSource(stored.source, requested, options);
    const kek = await loadKek(options, false);
    if (kekMatchesVerifier(kek, stored)) return kek;
    kek.destroy();
    throw wrongKek(requested, options);
  }
  const [hasKeyFile, hasSalt] = await Promise.all([
    exists(options.keyFile),
    exists(options.saltFile),
  ]);
  if (hasSalt && !hasKeyFile) checkSource(KekSource.passphrase, requested, options);
  if (hasKeyFile && !hasSalt) checkSource(KekSource.keyFile, requested, options);
  const sample = await repository.anyKey();
  // Keys sealed already: their KEK must exist, not be made up.
  const kek = await loadKek(options, sample === undefined);
  try {
    if (sample !== undefined && !sealedKeyOpens(kek, sample)) throw wrongKek(requested, options);
    const recorded = await repository.putKekVerifier(sealKekVerifier(kek, requested));
    // Another process may have recorded its verifier first: that one is the home's.
    checkSource(recorded.source, requested, options);
    if (!kekMatchesVerifier(kek, recorded)) throw wrongKek(requested, options);
    return kek;
  } catch (error) {
    kek.destroy();
    throw error;
  }
}

function checkSource(recorded: KekSource, requested: KekSource, options: OpenKekOptions): void {
  if (recorded === requested) return;
  throw recorded === KekSource.passphrase
    ? passphraseRequired(options.passphraseName)
    : passphraseUnexpected(options.passphraseName, options.keyFile);
}

const wrongKek = (source: KekSource, options: OpenKekOptions) =>
  source === KekSource.passphrase
    ? passphraseWrong(options.passphraseName)
    : keyFileWrong(options.keyFile);

async function loadKek(options: OpenKekOptions, create: boolean): Promise<SecretBytes> {
  const arena = options.arena === undefined ? {} : { arena: options.arena };
  if (options.passphrase === undefined) {
    return create
      ? loadOrCreateKeyFile(options.keyFile, arena)
      : loadKeyFile(options.keyFile, arena);
  }
  const salt = create
    ? await loadOrCreateSaltFile(options.saltFile)
    : await loadSaltFile(options.saltFile);
  return deriveKekFromPassphrase(options.passphrase, salt, arena);
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if (error instanceof Error && 'code' in error && error.code === 'ENOENT') return false;
    throw error;
  }
}
