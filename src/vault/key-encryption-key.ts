import { scrypt } from 'node:crypto';
import { link, open, unlink, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { invalid, notFound, forbidden } from '../core/internal.js';
import { MandateError } from '../core/index.js';
import { randomBytes, SecureArena, wipe, type SecretBytes } from '../crypto/index.js';
import { toHex } from '../encoding/index.js';

/**
 * Where a SoftwareVault's key-encryption key (KEK) comes from. Two sources:
 *
 * - A key file: exactly 32 raw random bytes, mode 0600, owned by the running user (or root).
 *   Created on first use; an existing file that group or others may read is refused.
 * - A passphrase: scrypt(passphrase, salt, N = 2^15, r = 8, p = 1, 32 bytes). The salt is a
 *   separate file of exactly 16 raw random bytes (by convention `vault.salt` beside the
 *   database), created on first use by `loadOrCreateSaltFile`. It is not secret, but losing it
 *   loses every sealed key, so it is written like the key file. The scrypt parameters are part
 *   of this format: changing them needs a new salt-file format, not a silent re-derivation.
 *
 * Either way the KEK ends up in guarded memory and the heap copies are wiped. A persistent vault
 * opens its KEK through `openKek` (open-kek.ts), which checks it against the store's verifier.
 */
export const KEK_BYTES = 32;
export const KEK_SALT_BYTES = 16;
const SCRYPT_PARAMS = { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 } as const;
const GROUP_OR_OTHER_BITS = 0o077;

/**
 * Options of `loadOrCreateKeyFile`, `loadOrCreateSaltFile` and `deriveKekFromPassphrase`.
 */
export interface KekOptions {
  /** Guarded memory for the KEK; by default a small arena of its own. */
  readonly arena?: SecureArena;
}

const fileInvalid = (path: string, reason: string): MandateError =>
  invalid('ERR_VAULT_KEY_FILE_INVALID', `\`${path}\` ${reason}`);

/** Loads the 32-byte KEK at `path`, creating it (0600, atomically) if it does not exist. */
export async function loadOrCreateKeyFile(
  path: string,
  options: KekOptions = {},
): Promise<SecretBytes> {
  const arena = options.arena ?? new SecureArena(KEK_BYTES);
  const secret = arena.allocate(KEK_BYTES);
  try {
    const existing = await readExactFile(path, KEK_BYTES, true);
    if (existing !== undefined) {
      moveInto(secret, existing);
      return secret;
    }
    const fresh = randomBytes(KEK_BYTES);
    try {
      if (await createFileExclusive(path, fresh)) {
        moveInto(secret, fresh);
        return secret;
      }
    } finally {
      wipe(fresh);
    }
    // Another process created the file between our read and our link: its key wins.
    const winner = await readExactFile(path, KEK_BYTES, true);
    if (winner === undefined) throw fileInvalid(path, 'disappeared while being created');
    moveInto(secret, winner);
    return secret;
  } catch (error) {
    secret.destroy();
    throw error;
  }
}

const fileMissing = (path: string): MandateError =>
  notFound(
    'ERR_VAULT_KEY_FILE_MISSING',
    `\`${path}\` is missing: this vault's keys are sealed under it and cannot be opened without it`,
  );

/** Loads the 32-byte KEK at `path`, which must exist (an established vault's: never re-created). */
export async function loadKeyFile(path: string, options: KekOptions = {}): Promise<SecretBytes> {
  const existing = await readExactFile(path, KEK_BYTES, true);
  if (existing === undefined) throw fileMissing(path);
  const secret = (options.arena ?? new SecureArena(KEK_BYTES)).allocate(KEK_BYTES);
  moveInto(secret, existing);
  return secret;
}

/** Loads the 16-byte scrypt salt at `path`, which must exist (see loadKeyFile). */
export async function loadSaltFile(path: string): Promise<Uint8Array> {
  const existing = await readExactFile(path, KEK_SALT_BYTES, false);
  if (existing === undefined) throw fileMissing(path);
  return existing;
}

/** Loads the 16-byte scrypt salt at `path`, creating a random one if it does not exist. */
export async function loadOrCreateSaltFile(path: string): Promise<Uint8Array> {
  const existing = await readExactFile(path, KEK_SALT_BYTES, false);
  if (existing !== undefined) return existing;
  const fresh = randomBytes(KEK_SALT_BYTES);
  if (await createFileExclusive(path, fresh)) return fresh;
  const winner = await readExactFile(path, KEK_SALT_BYTES, false);
  if (winner === undefined) throw fileInvalid(path, 'disappeared while being created');
  return winner;
}

/** scrypt (N = 2^15, r = 8, p = 1): deterministic per passphrase and salt, about 0.1 s by design. */
export async function deriveKekFromPassphrase(
  passphrase: string | Uint8Array,
  salt: Uint8Array,
  options: KekOptions = {},
): Promise<SecretBytes> {
  if (passphrase.length === 0)
    throw invalid('ERR_VAULT_PASSPHRASE_EMPTY', 'the vault passphrase must not be empty');
  if (salt.byteLength < KEK_SALT_BYTES) {
    throw invalid(
      'ERR_VAULT_SALT_INVALID',
      `\`salt\` must be at least ${KEK_SALT_BYTES} bytes, got ${salt.byteLength}`,
    );
  }
  const derived = await new Promise<Buffer>((resolve, reject) => {
    scrypt(passphrase, salt, KEK_BYTES, SCRYPT_PARAMS, (error, key) => {
      if (error === null) resolve(key);
      else reject(error);
    });
  });
  const arena = options.arena ?? new SecureArena(KEK_BYTES);
  const secret = arena.allocate(KEK_BYTES);
  moveInto(secret, derived);
  return secret;
}

function moveInto(secret: SecretBytes, bytes: Uint8Array): void {
  secret.expose().set(bytes);
  wipe(bytes);
}

function isErrnoException(error: unknown, code: string): boolean {
  return error instanceof Error && 'code' in error && error.code === code;
}

/**
 * Reads a file that must hold exactly `length` bytes; `undefined` if it does not exist. With
 * `secret`, the file must be a regular file owned by us (or root) that nobody else can read, as
 * OpenSSH demands of private keys: a KEK readable by others is not a KEK.
 */
async function readExactFile(
  path: string,
  length: number,
  secret: boolean,
): Promise<Uint8Array | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    if (isErrnoException(error, 'ENOENT')) return undefined;
    throw error;
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw fileInvalid(path, 'is not a regular file');
    if (secret) {
      const uid = process.getuid?.();
      if (
        (stat.mode & GROUP_OR_OTHER_BITS) !== 0 ||
        (uid !== undefined && stat.uid !== uid && stat.uid !== 0)
      ) {
        throw forbidden(
          'ERR_VAULT_KEY_FILE_INSECURE',
          `key file \`${path}\` has mode ${(stat.mode & 0o777).toString(8).padStart(4, '0')} or a foreign owner; it must be 0600 and ours`,
        );
      }
    }
    if (stat.size !== length)
      throw fileInvalid(path, `must hold exactly ${length} bytes, has ${stat.size}`);
    // One byte of slack detects a file that grew between stat and read.
    const buffer = Buffer.alloc(length + 1);
    const { bytesRead } = await handle.read(buffer, 0, length + 1, 0);
    const bytes = new Uint8Array(buffer.subarray(0, length));
    wipe(buffer);
    if (bytesRead !== length) {
      wipe(bytes);
      throw fileInvalid(path, `must hold exactly ${length} bytes`);
    }
    return bytes;
  } finally {
    await handle.close();
  }
}

/**
 * Writes `bytes` to `path` only if `path` does not exist, never exposing a partial file: the
 * bytes go to a private temp file (0600, O_EXCL), are fsynced, then hard-linked into place.
 * link(2) fails with EEXIST instead of replacing, so two processes racing to create the key
 * cannot clobber each other (rename(2) would). Returns false if someone else won.
 */
async function createFileExclusive(path: string, bytes: Uint8Array): Promise<boolean> {
  const temp = `${path}.${toHex(randomBytes(8))}.tmp`;
  const handle = await open(temp, 'wx', 0o600);
  try {
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await link(temp, path);
    await syncDirectory(dirname(path));
    return true;
  } catch (error) {
    if (isErrnoException(error, 'EEXIST')) return false;
    throw error;
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

/**
 * Makes the new directory entry durable: sealed keys written after this point are useless if a
 * power cut could take the KEK file back. Best effort, since not every platform can fsync a
 * directory.
 */
async function syncDirectory(path: string): Promise<void> {
  try {
    const handle = await open(path, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Not supported here (e.g. Windows); the file itself was fsynced before the link.
  }
}
