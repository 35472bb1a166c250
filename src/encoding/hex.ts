import { invalid } from '../core/internal.js';

const HEX_RE = /^(?:[0-9a-fA-F]{2})*$/;

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** Strict: even length, hex digits only (surrounding whitespace is trimmed). */
export function fromHex(text: string, what = 'hex input'): Uint8Array {
  const trimmed = text.trim();
  if (!HEX_RE.test(trimmed)) {
    throw invalid('ERR_HEX_INVALID', `${what} is not valid hex`);
  }
  return new Uint8Array(Buffer.from(trimmed, 'hex'));
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Do `bytes` end with `suffix`? */
export function bytesEndWith(bytes: Uint8Array, suffix: Uint8Array): boolean {
  if (bytes.byteLength < suffix.byteLength) return false;
  const at = bytes.byteLength - suffix.byteLength;
  for (let i = 0; i < suffix.byteLength; i++) if (bytes[at + i] !== suffix[i]) return false;
  return true;
}

export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.byteLength;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.byteLength;
  }
  return out;
}
