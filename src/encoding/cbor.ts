import { invalid } from '../core/internal.js';
import type { ErrorCode } from '../core/index.js';

/**
 * A strict, bounded CBOR (RFC 8949) codec for the subset Ockam's minicbor structures use:
 * unsigned and negative integers, byte and text strings, arrays, maps, false/true/null.
 *
 * The decoder rejects what signed data must never contain: indefinite lengths, non-shortest
 * heads, tags, floats, `undefined` and other simple values, duplicate map keys, trailing bytes,
 * invalid UTF-8, lengths beyond the input and nesting beyond `maxDepth`. A length is checked
 * against the bytes that remain before anything is allocated, so a small input can never make
 * the decoder allocate much.
 */
export type CborValue =
  number | bigint | Uint8Array | string | boolean | null | CborValue[] | CborMap;

/** Map entries in wire order; keys are unique (checked on decode and encode). */
export class CborMap {
  readonly entries: ReadonlyArray<readonly [CborValue, CborValue]>;
  constructor(entries: ReadonlyArray<readonly [CborValue, CborValue]>) {
    this.entries = entries;
  }
}

export interface CborDecodeOptions {
  /** Maximum nesting of arrays and maps (default 16). */
  readonly maxDepth?: number;
  /** Maximum input size in bytes (default 1 MiB). */
  readonly maxBytes?: number;
  /** The error code to throw on malformed input (default `ERR_CBOR_MALFORMED`). */
  readonly errorCode?: ErrorCode;
  /** What is being decoded, for error messages. */
  readonly what?: string;
}

export const CBOR_DEFAULT_MAX_DEPTH = 16;
export const CBOR_DEFAULT_MAX_BYTES = 1024 * 1024;

// ignoreBOM keeps a leading U+FEFF as content; stripping it would let two encodings decode alike.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();
// With the u flag a surrogate pair is one code point, so \p{Cs} matches only unpaired halves.
const LONE_SURROGATE = /\p{Cs}/u;

class Decoder {
  pos = 0;
  constructor(
    readonly bytes: Uint8Array,
    readonly maxDepth: number,
    readonly code: ErrorCode,
    readonly what: string,
  ) {}

  fail(reason: string): never {
    throw invalid(this.code, `${this.what} is not valid CBOR: ${reason} at byte ${this.pos}`);
  }

  byte(): number {
    const b = this.bytes[this.pos];
    if (b === undefined) this.fail('unexpected end of input');
    this.pos++;
    return b;
  }

  /** Reads a head's argument; enforces shortest form. Returns a number or a bigint above 2^53. */
  argument(info: number): number | bigint {
    if (info < 24) return info;
    const b = this.bytes;
    const p = this.pos;
    switch (info) {
      case 24: {
        if (p + 1 > b.length) this.fail('unexpected end of input');
        const v = b[p]!;
        this.pos = p + 1;
        if (v < 24) this.fail('non-shortest integer');
        return v;
      }
      case 25: {
        if (p + 2 > b.length) this.fail('unexpected end of input');
        const v = (b[p]! << 8) | b[p + 1]!;
        this.pos = p + 2;
        if (v < 0x100) this.fail('non-shortest integer');
        return v;
      }
      case 26: {
        if (p + 4 > b.length) this.fail('unexpected end of input');
        const v = b[p]! * 0x1000000 + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
        this.pos = p + 4;
        if (v < 0x10000) this.fail('non-shortest integer');
        return v;
      }
      case 27: {
        if (p + 8 > b.length) this.fail('unexpected end of input');
        const hi = b[p]! * 0x1000000 + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
        const lo = b[p + 4]! * 0x1000000 + ((b[p + 5]! << 16) | (b[p + 6]! << 8) | b[p + 7]!);
        this.pos = p + 8;
        if (hi === 0) this.fail('non-shortest integer');
        if (hi < 0x200000) return hi * 0x100000000 + lo;
        return (BigInt(hi) << 32n) | BigInt(lo);
      }
      case 31:
        return this.fail('indefinite length is not allowed');
      default:
        return this.fail(`reserved additional information ${info}`);
    }
  }

  length(info: number): number {
    const n = this.argument(info);
    if (typeof n === 'bigint' || n > this.bytes.length - this.pos)
      this.fail('length exceeds input');
    return n;
  }

  value(depth: number): CborValue {
    const initial = this.byte();
    const major = initial >> 5;
    const info = initial & 0x1f;
    switch (major) {
      case 0:
        return this.argument(info);
      case 1: {
        const n = this.argument(info);
        return typeof n === 'bigint'
          ? -1n - n
          : n >= Number.MAX_SAFE_INTEGER
            ? -1n - BigInt(n)
            : -1 - n;
      }
      case 2: {
        const n = this.length(info);
        const out = this.bytes.slice(this.pos, this.pos + n);
        this.pos += n;
        return out;
      }
      case 3: {
        const n = this.length(info);
        const view = this.bytes.subarray(this.pos, this.pos + n);
        this.pos += n;
        try {
          return utf8.decode(view);
        } catch {
          return this.fail('invalid UTF-8 in text string');
        }
      }
      case 4: {
        if (depth >= this.maxDepth) this.fail('nesting too deep');
        // Each item takes at least one byte, so the remaining input bounds the count.
        const n = this.length(info);
        const out: CborValue[] = new Array<CborValue>(n);
        for (let i = 0; i < n; i++) out[i] = this.value(depth + 1);
        return out;
      }
      case 5: {
        if (depth >= this.maxDepth) this.fail('nesting too deep');
        const n = this.length(info);
        const entries: [CborValue, CborValue][] = [];
        const seen = new Set<string>();
        for (let i = 0; i < n; i++) {
          const keyStart = this.pos;
          const key = this.value(depth + 1);
          const keyId = Buffer.from(this.bytes.subarray(keyStart, this.pos)).toString('latin1');
          if (seen.has(keyId)) this.fail('duplicate map key');
          seen.add(keyId);
          entries.push([key, this.value(depth + 1)]);
        }
        return new CborMap(entries);
      }
      case 6:
        return this.fail('tags are not allowed');
      default:
        if (info === 20) return false;
        if (info === 21) return true;
        if (info === 22) return null;
        return this.fail(
          info >= 25 && info <= 27
            ? 'floats are not allowed'
            : `simple value ${info} is not allowed`,
        );
    }
  }
}

export function decodeCbor(bytes: Uint8Array, options: CborDecodeOptions = {}): CborValue {
  const code = options.errorCode ?? 'ERR_CBOR_MALFORMED';
  const what = options.what ?? 'input';
  const maxBytes = options.maxBytes ?? CBOR_DEFAULT_MAX_BYTES;
  if (bytes.byteLength > maxBytes) {
    throw invalid(
      code,
      `${what} is too large: ${bytes.byteLength} bytes, at most ${maxBytes} allowed`,
    );
  }
  const d = new Decoder(bytes, options.maxDepth ?? CBOR_DEFAULT_MAX_DEPTH, code, what);
  const v = d.value(0);
  if (d.pos !== bytes.length) d.fail('trailing bytes');
  return v;
}

/** A growable output buffer writing shortest-form heads, as minicbor does. */
class Encoder {
  buf = new Uint8Array(256);
  pos = 0;

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }

  head(major: number, n: number | bigint): void {
    const m = major << 5;
    if (typeof n === 'bigint') {
      if (n < 0n || n > 0xffffffffffffffffn)
        throw invalid('ERR_CBOR_UNENCODABLE', 'integer out of range');
      if (n <= BigInt(Number.MAX_SAFE_INTEGER)) {
        this.head(major, Number(n));
        return;
      }
      this.ensure(9);
      this.buf[this.pos++] = m | 27;
      new DataView(this.buf.buffer, this.buf.byteOffset).setBigUint64(this.pos, n);
      this.pos += 8;
      return;
    }
    if (!Number.isSafeInteger(n) || n < 0)
      throw invalid('ERR_CBOR_UNENCODABLE', 'integer out of range');
    this.ensure(9);
    const b = this.buf;
    if (n < 24) b[this.pos++] = m | n;
    else if (n < 0x100) {
      b[this.pos++] = m | 24;
      b[this.pos++] = n;
    } else if (n < 0x10000) {
      b[this.pos++] = m | 25;
      b[this.pos++] = n >> 8;
      b[this.pos++] = n & 0xff;
    } else if (n < 0x100000000) {
      b[this.pos++] = m | 26;
      b[this.pos++] = (n >>> 24) & 0xff;
      b[this.pos++] = (n >> 16) & 0xff;
      b[this.pos++] = (n >> 8) & 0xff;
      b[this.pos++] = n & 0xff;
    } else {
      b[this.pos++] = m | 27;
      const hi = Math.floor(n / 0x100000000);
      const lo = n >>> 0;
      const dv = new DataView(b.buffer, b.byteOffset);
      dv.setUint32(this.pos, hi);
      dv.setUint32(this.pos + 4, lo);
      this.pos += 8;
    }
  }

  raw(bytes: Uint8Array): void {
    this.ensure(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  value(v: CborValue, depth: number): void {
    // Same rule as the decoder (containers count, leaves do not), so every output is decodable.
    if (depth >= CBOR_DEFAULT_MAX_DEPTH && (Array.isArray(v) || v instanceof CborMap)) {
      throw invalid('ERR_CBOR_UNENCODABLE', 'nesting too deep');
    }
    if (typeof v === 'number') {
      if (v >= 0) this.head(0, v);
      else this.head(1, -1 - v);
    } else if (typeof v === 'bigint') {
      if (v >= 0n) this.head(0, v);
      else this.head(1, -1n - v);
    } else if (v instanceof Uint8Array) {
      this.head(2, v.length);
      this.raw(v);
    } else if (typeof v === 'string') {
      // TextEncoder would silently turn a lone surrogate into U+FFFD, encoding another string.
      if (LONE_SURROGATE.test(v))
        throw invalid('ERR_CBOR_UNENCODABLE', 'text string has a lone surrogate');
      const bytes = utf8Encoder.encode(v);
      this.head(3, bytes.length);
      this.raw(bytes);
    } else if (typeof v === 'boolean') {
      this.ensure(1);
      this.buf[this.pos++] = v ? 0xf5 : 0xf4;
    } else if (v === null) {
      this.ensure(1);
      this.buf[this.pos++] = 0xf6;
    } else if (Array.isArray(v)) {
      this.head(4, v.length);
      for (const item of v) this.value(item, depth + 1);
    } else {
      this.head(5, v.entries.length);
      const seen = new Set<string>();
      for (const [key, value] of v.entries) {
        const start = this.pos;
        this.value(key, depth + 1);
        const id = Buffer.from(this.buf.subarray(start, this.pos)).toString('latin1');
        if (seen.has(id)) throw invalid('ERR_CBOR_UNENCODABLE', 'duplicate map key');
        seen.add(id);
        this.value(value, depth + 1);
      }
    }
  }
}

// Encoding is synchronous and calls no user code, so one scratch encoder serves every call; its
// buffer is returned to a small size after an unusually large value.
const scratch = new Encoder();
const SCRATCH_KEEP_BYTES = 64 * 1024;

export function encodeCbor(value: CborValue): Uint8Array {
  scratch.pos = 0;
  try {
    scratch.value(value, 0);
    return scratch.buf.slice(0, scratch.pos);
  } finally {
    if (scratch.buf.length > SCRATCH_KEEP_BYTES) scratch.buf = new Uint8Array(256);
  }
}

/**
 * An array whose items are already CBOR-encoded, written without decoding them: for containers
 * that carry signed structures exactly as received.
 */
export function encodeCborArrayOfEncoded(items: readonly Uint8Array[]): Uint8Array {
  const head = new Encoder();
  head.head(4, items.length);
  let length = head.pos;
  for (const item of items) length += item.byteLength;
  const out = new Uint8Array(length);
  out.set(head.buf.subarray(0, head.pos));
  let offset = head.pos;
  for (const item of items) {
    out.set(item, offset);
    offset += item.byteLength;
  }
  return out;
}
