import { invalid } from '../core/internal.js';
import {
  CborMap,
  concatBytes,
  decodeCbor,
  encodeCbor,
  expectArray,
  expectBytes,
  expectMap,
  expectUint,
  hasControlCharacters,
  toHex,
  type CborValue,
} from '../encoding/index.js';
import {
  DataType,
  decodeSignature,
  decodeVersionedDataOf,
  encodeSignature,
  encodeVersionedData,
  type DecodedSignature,
} from '../identity/internal.js';
import type { Identifier } from '../identity/index.js';

/**
 * Ockam's credential wire format (`ockam_identity/src/models/credential.rs`,
 * `credential_and_purpose_key.rs`), in minicbor conventions (structs are arrays, enums
 * `[index, [fields]]`):
 *
 *   CredentialAndPurposeKey = [ credential: Credential, purpose_key_attestation: PurposeKeyAttestation ]
 *   Credential     = [ data: bstr(VersionedData [1, 3, bstr(CredentialData)]), signature: [0|1, [bstr64]] ]
 *   CredentialData = [ subject: bstr32, subject_latest_change_hash: bstr32,
 *                      subject_attributes: Attributes, created_at: uint, expires_at: uint ]
 *   Attributes     = [ schema: uint, { bstr => bstr } ]
 *
 * Both the credential and the attestation are embedded arrays, not byte strings. Ockam's
 * attribute map is a Rust BTreeMap, so its keys come in plain byte order; the encoder here sorts
 * the same way and reproduces Ockam's bytes, and the decoder accepts any order (a verifier hashes
 * the bytes as received, so the order only has to be unique, which the strict CBOR decoder's
 * duplicate-key check ensures).
 *
 * Mandate is stricter than Ockam in what it decodes: the subject is required (Ockam refuses a
 * subject-less credential at verification too), attribute names are non-empty UTF-8 of at most
 * 256 bytes, and the whole CredentialAndPurposeKey is at most 16 KiB.
 */

/** Bound on a whole CredentialAndPurposeKey, so one input can only cost so much to decode. */
export const MAX_CREDENTIAL_BYTES = 16 * 1024;
export const MAX_ATTRIBUTE_NAME_BYTES = 256;

/** Attribute name (UTF-8 text) → raw value bytes, in wire order when decoded. */
export type CredentialAttributes = ReadonlyMap<string, Uint8Array>;

const MALFORMED = 'ERR_CREDENTIAL_MALFORMED';
const ATTRIBUTES_INVALID = 'ERR_CREDENTIAL_ATTRIBUTES_INVALID';

const utf8Encoder = new TextEncoder();
// ignoreBOM keeps a leading U+FEFF as part of the name, so two encodings never decode alike.
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const LONE_SURROGATE = /\p{Cs}/u;

export interface CredentialFields {
  /** The subject's identifier bytes (SHA-256 of its first change). */
  readonly subject: Uint8Array;
  readonly subjectLatestChangeHash: Uint8Array;
  readonly schema: number;
  readonly attributes: CredentialAttributes;
  readonly createdAt: number;
  readonly expiresAt: number;
}

/**
 * A credential decoded but not verified (`verifyCredential` checks it).
 */
export interface DecodedCredential {
  readonly subject: Identifier;
  readonly subjectLatestChangeHash: Uint8Array;
  readonly schema: number;
  readonly attributes: CredentialAttributes;
  readonly createdAt: number;
  readonly expiresAt: number;
  /** The signed VersionedData bytes as received. */
  readonly data: Uint8Array;
  readonly signature: DecodedSignature;
  /** The issuer's purpose key attestation, the embedded item's bytes as received. */
  readonly attestation: Uint8Array;
}

/**
 * Validates attribute names and returns the map entries in Rust BTreeMap order (raw UTF-8 byte
 * order, which is not JavaScript's UTF-16 string order for characters beyond U+FFFF).
 */
function attributeEntries(attributes: CredentialAttributes): [Uint8Array, Uint8Array][] {
  const entries: [Uint8Array, Uint8Array][] = [];
  for (const [name, value] of attributes) {
    if (typeof name !== 'string' || name.length === 0)
      throw invalid(ATTRIBUTES_INVALID, 'an attribute name must be a non-empty string');
    // TextEncoder would silently turn a lone surrogate into U+FFFD: another name than the caller's.
    if (LONE_SURROGATE.test(name))
      throw invalid(ATTRIBUTES_INVALID, 'an attribute name must be valid UTF-8 text');
    if (hasControlCharacters(name))
      throw invalid(
        ATTRIBUTES_INVALID,
        'an attribute name must not contain control or bidi control characters',
      );
    const key = utf8Encoder.encode(name);
    if (key.length > MAX_ATTRIBUTE_NAME_BYTES) {
      throw invalid(
        ATTRIBUTES_INVALID,
        `an attribute name has at most ${MAX_ATTRIBUTE_NAME_BYTES} bytes, found ${key.length}`,
      );
    }
    if (!(value instanceof Uint8Array))
      throw invalid(ATTRIBUTES_INVALID, `attribute \`${name}\` must have a byte value`);
    entries.push([key, value]);
  }
  return entries.sort(([a], [b]) => Buffer.compare(a, b));
}

/** Encodes CredentialData inside its VersionedData envelope: the bytes the issuer signs. */
export function encodeCredentialData(fields: CredentialFields): Uint8Array {
  return encodeVersionedData(
    DataType.credential,
    encodeCbor([
      fields.subject,
      fields.subjectLatestChangeHash,
      [fields.schema, new CborMap(attributeEntries(fields.attributes))],
      fields.createdAt,
      fields.expiresAt,
    ]),
  );
}

const ARRAY_OF_TWO = new Uint8Array([0x82]);

/**
 * Assembles a CredentialAndPurposeKey. The attestation is embedded as the CBOR item it already
 * is, byte for byte, so its signature holds.
 */
export function encodeCredentialAndPurposeKey(
  data: Uint8Array,
  signature: DecodedSignature,
  attestation: Uint8Array,
): Uint8Array {
  return concatBytes(
    ARRAY_OF_TWO,
    encodeCbor([data, encodeSignature(signature.keyType, signature.bytes)]),
    attestation,
  );
}

/**
 * The offset just past the CBOR item starting at `pos`. Only called on input the strict decoder
 * has already accepted, so every head is well formed and every length fits.
 */
function itemEnd(bytes: Uint8Array, pos: number): number {
  const initial = bytes[pos]!;
  const major = initial >> 5;
  const info = initial & 0x1f;
  let p = pos + 1;
  let n = info;
  if (info >= 24) {
    const size = 1 << (info - 24);
    n = 0;
    for (let i = 0; i < size; i++) n = n * 256 + bytes[p + i]!;
    p += size;
  }
  switch (major) {
    case 2:
    case 3:
      return p + n;
    case 4:
      for (let i = 0; i < n; i++) p = itemEnd(bytes, p);
      return p;
    case 5:
      for (let i = 0; i < 2 * n; i++) p = itemEnd(bytes, p);
      return p;
    default:
      return p;
  }
}

function decodeName(name: Uint8Array): string {
  let text: string;
  try {
    text = utf8Decoder.decode(name);
  } catch {
    throw invalid(MALFORMED, 'an attribute name is not valid UTF-8');
  }
  // Names are shown to people (`credential show`, a peer's attributes): no terminal escapes.
  // Values are any bytes (Ockam's plain values) and are escaped where they are shown instead.
  if (hasControlCharacters(text))
    throw invalid(MALFORMED, 'an attribute name contains control or bidi control characters');
  return text;
}

function decodeAttributes(v: CborValue): {
  schema: number;
  attributes: CredentialAttributes;
} {
  const fields = expectArray(v, MALFORMED, 'credential subject_attributes', 2, 2);
  const schema = expectUint(fields[0], MALFORMED, 'credential schema');
  const map = expectMap(fields[1], MALFORMED, 'credential attributes');
  const attributes = new Map<string, Uint8Array>();
  for (const [key, value] of map.entries) {
    const name = expectBytes(key, MALFORMED, 'an attribute name');
    if (name.length === 0 || name.length > MAX_ATTRIBUTE_NAME_BYTES) {
      throw invalid(
        MALFORMED,
        `an attribute name must have 1 to ${MAX_ATTRIBUTE_NAME_BYTES} bytes, found ${name.length}`,
      );
    }
    // Distinct byte strings decode to distinct names (fatal UTF-8 is injective), and the CBOR
    // decoder has already refused duplicate keys, so no entry is overwritten here.
    attributes.set(decodeName(name), expectBytes(value, MALFORMED, 'an attribute value'));
  }
  return { schema, attributes };
}

/**
 * Strict decoding of a CredentialAndPurposeKey; nothing here is trusted until verifyCredential
 * accepts it. The attestation is only checked to be an embedded two-item array; its content is
 * the purpose-key layer's to decode (`ERR_PURPOSE_KEY_MALFORMED`).
 */
export function decodeCredential(bytes: Uint8Array): DecodedCredential {
  const root = expectArray(
    decodeCbor(bytes, {
      errorCode: MALFORMED,
      what: 'credential',
      maxBytes: MAX_CREDENTIAL_BYTES,
      // CredentialAndPurposeKey → credential or attestation → signature → its fields.
      maxDepth: 4,
    }),
    MALFORMED,
    'credential and purpose key',
    2,
    2,
  );
  const credential = expectArray(root[0]!, MALFORMED, 'credential', 2, 2);
  expectArray(root[1]!, MALFORMED, 'credential purpose key attestation', 2, 2);
  const data = expectBytes(credential[0], MALFORMED, 'credential data');
  const signature = decodeSignature(credential[1], MALFORMED, 'credential signature');

  const versioned = decodeVersionedDataOf(
    data,
    DataType.credential,
    { malformed: MALFORMED },
    'credential data',
  );
  const fields = expectArray(
    // CredentialData → Attributes → attribute map.
    decodeCbor(versioned.data, { errorCode: MALFORMED, what: 'credential data', maxDepth: 3 }),
    MALFORMED,
    'credential data',
    5,
    5,
  );
  const subject = expectBytes(fields[0], MALFORMED, 'credential subject', 32);
  const subjectLatestChangeHash = expectBytes(
    fields[1],
    MALFORMED,
    'credential subject_latest_change_hash',
    32,
  );
  const { schema, attributes } = decodeAttributes(fields[2]!);
  const createdAt = expectUint(fields[3], MALFORMED, 'credential created_at');
  const expiresAt = expectUint(fields[4], MALFORMED, 'credential expires_at');

  // The attestation is the second item of the outer array: slice it rather than re-encode it.
  const attestation = bytes.subarray(itemEnd(bytes, 1));
  return {
    subject: `I${toHex(subject)}`,
    subjectLatestChangeHash,
    schema,
    attributes,
    createdAt,
    expiresAt,
    data,
    signature,
    attestation,
  };
}
