export { toHex, fromHex, bytesEqual, bytesEndWith, concatBytes } from './hex.js';
export { hasControlCharacters, escapeControlCharacters, utf8Bytes, copyBytes } from './text.js';
export { canonicalizeJson } from './jcs.js';
export { decodeBase64Strict, toBase64, toBase64Url } from './base64.js';
export type { Base64Variant } from './base64.js';
export { parseJsonNoDuplicateKeys } from './json-strict.js';
export {
  decodeCbor,
  encodeCbor,
  encodeCborArrayOfEncoded,
  CborMap,
  CBOR_DEFAULT_MAX_BYTES,
  CBOR_DEFAULT_MAX_DEPTH,
} from './cbor.js';
export type { CborValue, CborDecodeOptions } from './cbor.js';
export {
  expectArray,
  expectBytes,
  expectUint,
  expectBool,
  expectMap,
  expectVariant,
} from './cbor-schema.js';
