import { ErrorKind, MandateError, invalid, notFound, unsupported } from '../core/index.js';

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
  new MandateError(
    'ERR_VAULT_UNSEAL_FAILED',
    ErrorKind.unauthorized,
    `sealed key \`${keyId}\` failed to unseal (wrong key-encryption key or tampered record)`,
    cause === undefined ? undefined : { cause },
  );
