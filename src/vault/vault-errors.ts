import type { MandateError } from '../core/index.js';
import { invalid, notFound, unsupported, unauthorized } from '../core/internal.js';

/** The error codes of the vault layer, one place so every vault words them the same way. */

export const keyNotFound = (keyId: string): MandateError =>
  notFound('ERR_VAULT_KEY_NOT_FOUND', `no key \`${keyId}\` in the vault`);

export const secretNotFound = (secretId: string): MandateError =>
  notFound('ERR_VAULT_SECRET_NOT_FOUND', `no secret \`${secretId}\` in the vault`);

export const wrongPurpose = (keyId: string, expected: 'signing' | 'x25519'): MandateError =>
  invalid(
    'ERR_VAULT_WRONG_PURPOSE',
    `key \`${keyId}\` is not ${expected === 'signing' ? 'a signing' : 'an x25519'} key`,
  );

export const keyTypeUnsupported = (keyType: unknown): MandateError =>
  unsupported('ERR_VAULT_KEY_TYPE_UNSUPPORTED', `key type \`${String(keyType)}\` is not supported`);

/** One code for every way a sealed key can fail to open: wrong KEK, tampering, swapped records. */
export const unsealFailed = (keyId: string, cause?: unknown): MandateError =>
  unauthorized(
    'ERR_VAULT_UNSEAL_FAILED',
    `sealed key \`${keyId}\` failed to unseal (wrong key-encryption key or tampered record)`,
    cause,
  );

/**
 * How the user gives the passphrase, for messages: an environment variable's name in backticks
 * when the caller names one, else plain words.
 */
const passphraseVia = (name: string | undefined): string =>
  name === undefined ? 'the passphrase' : `\`${name}\``;

export const passphraseEmpty = (name: string | undefined): MandateError =>
  invalid('ERR_VAULT_PASSPHRASE_EMPTY', `${passphraseVia(name)} is set but empty`);

export const passphraseRequired = (name: string | undefined): MandateError =>
  unauthorized(
    'ERR_VAULT_PASSPHRASE_REQUIRED',
    `this vault's keys are sealed under a passphrase and ${passphraseVia(name)} is not set`,
  );

export const passphraseUnexpected = (name: string | undefined, keyFile: string): MandateError =>
  invalid(
    'ERR_VAULT_PASSPHRASE_UNEXPECTED',
    `this vault's keys are sealed under the key file \`${keyFile}\`, not a passphrase: unset ${passphraseVia(name)}`,
  );

export const passphraseWrong = (name: string | undefined): MandateError =>
  unauthorized(
    'ERR_VAULT_PASSPHRASE_WRONG',
    `wrong passphrase: ${passphraseVia(name)} does not open this vault's keys`,
  );

export const keyFileWrong = (keyFile: string): MandateError =>
  unauthorized(
    'ERR_VAULT_KEY_FILE_WRONG',
    `the key file \`${keyFile}\` does not open this vault's keys`,
  );
