/**
 * base64 (RFC 4648 §4, padded) and base64url (§5, without padding), decoded strictly: a text is
 * accepted only when it is the one canonical encoding of its bytes — the alphabet of its variant,
 * padding exactly as the variant wants it (none for base64url), and zero spare bits in the last
 * character (Node's decoder ignores them, so two texts would decode to the same bytes).
 */
export type Base64Variant = 'base64' | 'base64url';

const ALPHABET: Record<Base64Variant, RegExp> = {
  base64: /^[A-Za-z0-9+/]*={0,2}$/,
  base64url: /^[A-Za-z0-9_-]*$/,
};

/** base64url without padding (RFC 4648 §5). */
export function toBase64Url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

/** Standard base64 with padding (RFC 4648 §4). */
export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/**
 * The bytes of `text` when it is the canonical `variant` encoding of them, else `undefined` (the
 * caller throws its own error). Padded base64 must have a length that is a multiple of 4;
 * base64url has no padding, so its length is never 1 more than a multiple of 4.
 */
export function decodeBase64Strict(text: string, variant: Base64Variant): Uint8Array | undefined {
  if (typeof text !== 'string' || !ALPHABET[variant].test(text)) return undefined;
  if (variant === 'base64' ? text.length % 4 !== 0 : text.length % 4 === 1) return undefined;
  const bytes = Buffer.from(text, variant);
  // Re-encoding catches padding in the wrong place and non-zero spare bits.
  if (bytes.toString(variant) !== text) return undefined;
  // A copy: a short Buffer is a view of Node's shared pool.
  return new Uint8Array(bytes);
}
