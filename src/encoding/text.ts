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

// utf8Bytes and copyBytes cut their results from a slab of their own, 16 KiB at a time: Node's
// pool (Buffer.from) takes 8 KiB, so for record-sized bytes (about 900) it allocated an
// ArrayBuffer every ninth call, and it measures the UTF-8 length in a pass of its own before
// writing. A result keeps its slab alive, as a pooled Buffer keeps its pool. Results are
// 8-byte aligned, like the pool's.
const SLAB_BYTES = 16 * 1024;
/** Longest result cut from the slab (longer ones get their own buffer). */
const SLAB_MAX_BYTES = SLAB_BYTES >>> 2;
let slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
let slabAt = 0;

function slabRoom(bytes: number): void {
  if (slabAt + bytes > SLAB_BYTES) {
    slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
    slabAt = 0;
  }
}

function cutSlab(length: number): Uint8Array {
  const out = new Uint8Array(slab.buffer, slabAt, length);
  slabAt = (slabAt + length + 7) & ~7;
  return out;
}

/**
 * The UTF-8 bytes of `text` (lone surrogates as U+FFFD, as TextEncoder writes them), cut from a
 * shared slab when short (see above): no ArrayBuffer of their own, about a third of
 * TextEncoder's cost for a record-sized text. Never transfer or reuse their `.buffer` (others
 * share it).
 */
export function utf8Bytes(text: string): Uint8Array {
  // A UTF-16 code unit is at most 3 UTF-8 bytes.
  if (text.length * 3 > SLAB_MAX_BYTES) {
    const bytes = Buffer.from(text, 'utf8');
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  slabRoom(text.length * 3);
  return cutSlab(slab.write(text, slabAt, 'utf8'));
}

/** A copy of `bytes`, cut from a shared slab when short (see {@link utf8Bytes}). */
export function copyBytes(bytes: Uint8Array): Uint8Array {
  const length = bytes.byteLength;
  if (length > SLAB_MAX_BYTES) return new Uint8Array(bytes); // a copy (Buffer#slice is a view)
  slabRoom(length);
  slab.set(bytes, slabAt);
  return cutSlab(length);
}
