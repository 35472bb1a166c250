/**
 * Characters that change how text is displayed instead of being displayed: the C0 controls, DEL
 * and the C1 controls (`\p{Cc}`: ESC starts terminal escape sequences, CR moves the cursor back,
 * U+009B is an 8-bit CSI), the line and paragraph separators U+2028 and U+2029, and the
 * bidirectional controls U+061C, U+200E, U+200F, U+202A–U+202E and U+2066–U+2069, which reorder
 * what a reader sees ("Trojan Source", CVE-2021-42574). Text from outside that a person may read
 * (a link's purpose, an attribute name, a route) must hold none of them.
 */
const CONTROL_SOURCE = '[\\p{Cc}\\u061c\\u200e\\u200f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069]';
const CONTROL = new RegExp(CONTROL_SOURCE, 'u');
const CONTROL_GLOBAL = new RegExp(CONTROL_SOURCE, 'gu');

/** Does `text` hold a control, separator or bidi control character (see above)? */
export function hasControlCharacters(text: string): boolean {
  return CONTROL.test(text);
}

/**
 * `text` with each control, separator or bidi control character written as `\uXXXX` (all of them
 * are in the BMP), except those in `keep` (e.g. `'\n'` for multi-line output). The escape is also
 * a JSON string escape, so JSON text stays JSON with the same value.
 */
export function escapeControlCharacters(text: string, keep = ''): string {
  return text.replace(CONTROL_GLOBAL, (c) =>
    keep.includes(c) ? c : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/**
 * The UTF-8 bytes of `text` (lone surrogates as U+FFFD, as TextEncoder writes them), copied into
 * Node's shared buffer pool when short: no ArrayBuffer of their own, about half TextEncoder's
 * cost for a record-sized text. Never transfer or reuse their `.buffer` (others share it).
 */
export function utf8Bytes(text: string): Uint8Array {
  const bytes = Buffer.from(text, 'utf8');
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A copy of `bytes`, in Node's shared buffer pool when short (see {@link utf8Bytes}). */
export function copyBytes(bytes: Uint8Array): Uint8Array {
  const copy = Buffer.from(bytes);
  return new Uint8Array(copy.buffer, copy.byteOffset, copy.byteLength);
}
