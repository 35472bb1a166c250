import type { ErrorCode, ErrorKind } from '../core/index.js';
import type { SealedKeyRecord, SigningKeyType } from '../vault/index.js';
import type { StoredIdentity, StoredPurposeKey } from '../identity/index.js';

/** Messages between `provisionIdentities` and its worker threads (structured-clone safe). */
export interface ProvisionInit {
  readonly type: 'init';
  /** The vault's key-encryption key; the worker copies it into guarded memory and wipes this. */
  readonly kek: Uint8Array;
}

/** Asks the worker to wipe the KEK and exit. */
export interface ProvisionClose {
  readonly type: 'close';
}

export interface ProvisionRequest {
  readonly type: 'create';
  readonly batch: number;
  readonly count: number;
  readonly keyType: SigningKeyType;
}

export interface ProvisionedIdentity {
  readonly identity: StoredIdentity;
  readonly purposeKeys: readonly StoredPurposeKey[];
}

export interface ProvisionResult {
  readonly type: 'created';
  readonly batch: number;
  readonly identities: readonly ProvisionedIdentity[];
  /** Every key of the batch, sealed under the KEK: no secret leaves the worker in the clear. */
  readonly keys: readonly SealedKeyRecord[];
}

export interface ProvisionFailure {
  readonly type: 'failed';
  readonly batch: number;
  readonly code: ErrorCode;
  readonly kind: ErrorKind;
  readonly message: string;
}

export type ProvisionReply = ProvisionResult | ProvisionFailure;
