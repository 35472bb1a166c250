import type { ErrorCode } from '../core/index.js';
import { invalid, unsupported } from '../core/internal.js';
import {
  decodeCbor,
  encodeCbor,
  expectArray,
  expectBool,
  expectBytes,
  expectUint,
  expectVariant,
  type CborValue,
} from '../encoding/index.js';
import {
  ED25519_PUBLIC_KEY_BYTES,
  ED25519_SIGNATURE_BYTES,
  P256_PUBLIC_KEY_BYTES,
  P256_SIGNATURE_BYTES,
} from '../crypto/index.js';
import { SigningKeyType } from '../vault/index.js';
import type { PublicSigningKey } from './model.js';

/**
 * Ockam's wire structures (minicbor conventions: structs are arrays, enums `[index, [fields]]`,
 * trailing `None` fields omitted). See docs/spec/identity.md. Decoders keep the signed bytes as
 * received; encoders produce the shortest form minicbor produces.
 */

const MALFORMED: ErrorCode = 'ERR_IDENTITY_MALFORMED';
const UNSUPPORTED_KEY: ErrorCode = 'ERR_KEY_TYPE_UNSUPPORTED';

export const VERSION = 1;

export interface VersionedData {
  readonly version: number;
  readonly dataType: number;
  readonly data: Uint8Array;
}

export function decodeVersionedData(
  bytes: Uint8Array,
  code: ErrorCode,
  what: string,
): VersionedData {
  const v = expectArray(
    decodeCbor(bytes, { errorCode: code, what, maxDepth: 4 }),
    code,
    what,
    3,
    3,
  );
  return {
    version: expectUint(v[0], code, `${what} version`, 0xff),
    dataType: expectUint(v[1], code, `${what} data type`, 0xff),
    data: expectBytes(v[2], code, `${what} data`),
  };
}

/**
 * The one envelope check of Ockam's `VersionedData{version, data_type, data}`: decodes `bytes`
 * and refuses any version but 1 and any data type but `dataType`. `codes.version` and
 * `codes.dataType` name the codes those two refusals raise where a caller has its own (an
 * unknown version is `unsupported` then); otherwise both are `codes.malformed`, like every
 * structural fault.
 */
export function decodeVersionedDataOf(
  bytes: Uint8Array,
  dataType: number,
  codes: {
    readonly malformed: ErrorCode;
    readonly version?: ErrorCode;
    readonly dataType?: ErrorCode;
  },
  what: string,
): VersionedData {
  const versioned = decodeVersionedData(bytes, codes.malformed, what);
  if (versioned.version !== VERSION) {
    const message = `${what} has version ${versioned.version}, only ${VERSION} is supported`;
    throw codes.version === undefined
      ? invalid(codes.malformed, message)
      : unsupported(codes.version, message);
  }
  if (versioned.dataType !== dataType) {
    throw invalid(
      codes.dataType ?? codes.malformed,
      `${what} has data type ${versioned.dataType}, expected ${dataType}`,
    );
  }
  return versioned;
}

export function encodeVersionedData(dataType: number, data: Uint8Array): Uint8Array {
  return encodeCbor([VERSION, dataType, data]);
}

export function keyVariant(keyType: SigningKeyType): number {
  return keyType === SigningKeyType.ed25519 ? 0 : 1;
}

export function encodePublicSigningKey(key: PublicSigningKey): CborValue {
  return [keyVariant(key.keyType), [key.bytes]];
}

export function decodePublicSigningKey(
  v: CborValue | undefined,
  code: ErrorCode,
  what: string,
): PublicSigningKey {
  const { variant, fields } = expectVariant(v, code, what);
  if (fields.length !== 1) throw invalid(code, `${what} must hold exactly one key`);
  if (variant === 0)
    return {
      keyType: SigningKeyType.ed25519,
      bytes: expectBytes(fields[0], code, `${what} (Ed25519)`, ED25519_PUBLIC_KEY_BYTES),
    };
  if (variant === 1) {
    const bytes = expectBytes(fields[0], code, `${what} (P-256)`, P256_PUBLIC_KEY_BYTES);
    if (bytes[0] !== 0x04)
      throw invalid(code, `${what} (P-256) must be an uncompressed SEC1 point`);
    return { keyType: SigningKeyType.p256, bytes };
  }
  throw invalid(UNSUPPORTED_KEY, `${what} has unsupported key type variant ${variant}`);
}

export interface DecodedSignature {
  readonly keyType: SigningKeyType;
  readonly bytes: Uint8Array;
}

export function encodeSignature(keyType: SigningKeyType, bytes: Uint8Array): CborValue {
  return [keyVariant(keyType), [bytes]];
}

export function decodeSignature(
  v: CborValue | undefined,
  code: ErrorCode,
  what: string,
): DecodedSignature {
  const { variant, fields } = expectVariant(v, code, what);
  if (fields.length !== 1) throw invalid(code, `${what} must hold exactly one signature`);
  if (variant === 0)
    return {
      keyType: SigningKeyType.ed25519,
      bytes: expectBytes(fields[0], code, what, ED25519_SIGNATURE_BYTES),
    };
  if (variant === 1)
    return {
      keyType: SigningKeyType.p256,
      bytes: expectBytes(fields[0], code, what, P256_SIGNATURE_BYTES),
    };
  throw invalid(UNSUPPORTED_KEY, `${what} has unsupported signature type variant ${variant}`);
}

// --- ChangeData and ChangeHistory ----------------------------------------------------------------

export interface ChangeDataFields {
  readonly previousChange: Uint8Array | null;
  readonly primaryPublicKey: PublicSigningKey;
  readonly revokeAllPurposeKeys: boolean;
  readonly attestationsValidFrom: number;
  readonly attestationsValidUntil: number;
}

export function encodeChangeData(fields: ChangeDataFields): Uint8Array {
  return encodeCbor([
    fields.previousChange,
    encodePublicSigningKey(fields.primaryPublicKey),
    fields.revokeAllPurposeKeys,
    fields.attestationsValidFrom,
    fields.attestationsValidUntil,
  ]);
}

export function decodeChangeData(bytes: Uint8Array, what: string): ChangeDataFields {
  const v = expectArray(
    decodeCbor(bytes, { errorCode: MALFORMED, what, maxDepth: 4 }),
    MALFORMED,
    what,
    5,
    5,
  );
  const previous = v[0];
  return {
    previousChange:
      previous === null ? null : expectBytes(previous, MALFORMED, `${what} previous change`, 32),
    primaryPublicKey: decodePublicSigningKey(v[1], MALFORMED, `${what} primary public key`),
    revokeAllPurposeKeys: expectBool(v[2], MALFORMED, `${what} revoke_all_purpose_keys`),
    attestationsValidFrom: expectUint(v[3], MALFORMED, `${what} attestations_valid_from`),
    attestationsValidUntil: expectUint(v[4], MALFORMED, `${what} attestations_valid_until`),
  };
}

export interface EncodedChange {
  readonly data: Uint8Array;
  readonly signature: DecodedSignature;
  readonly previousSignature: DecodedSignature | null;
}

export function encodeChangeHistory(changes: readonly EncodedChange[]): Uint8Array {
  return encodeCbor(
    changes.map((c) => {
      const change: CborValue[] = [c.data, encodeSignature(c.signature.keyType, c.signature.bytes)];
      if (c.previousSignature !== null)
        change.push(encodeSignature(c.previousSignature.keyType, c.previousSignature.bytes));
      return change;
    }),
  );
}

export function decodeChangeHistoryEnvelope(
  bytes: Uint8Array,
  maxBytes: number,
  maxChanges: number,
): EncodedChange[] {
  const root = decodeCbor(bytes, {
    errorCode: MALFORMED,
    what: 'change history',
    maxBytes,
    maxDepth: 6,
  });
  const items = expectArray(root, MALFORMED, 'change history', 1, maxChanges);
  return items.map((item, i) => {
    const what = `change ${i}`;
    const c = expectArray(item, MALFORMED, what, 2, 3);
    return {
      data: expectBytes(c[0], MALFORMED, `${what} data`),
      signature: decodeSignature(c[1], MALFORMED, `${what} signature`),
      previousSignature:
        c[2] === undefined || c[2] === null
          ? null
          : decodeSignature(c[2], MALFORMED, `${what} previous signature`),
    };
  });
}
