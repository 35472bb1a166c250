import { invalid } from '../core/internal.js';
import {
  checkRoute,
  MAX_ADDRESS_LENGTH,
  MAX_ROUTE_HOPS,
  type Address,
  type Route,
} from './address.js';

/**
 * The routing envelope (docs/spec/routing.md): what travels hop by hop. On the wire it is the
 * CBOR array `[1, onward_route, return_route, payload: bstr]`, a route being an array of
 * `[type: uint, value: tstr]`. Nothing else is sent: the connection a message came in on is
 * local knowledge the router adds, so a peer cannot forge it (like Ockam's `local_info`).
 */
export interface Envelope {
  readonly onwardRoute: Route;
  readonly returnRoute: Route;
  readonly payload: Uint8Array;
}

export const ENVELOPE_VERSION = 1;
export const MAX_PAYLOAD_BYTES = 256 * 1024;
/** The payload bound plus room for two full routes (2 × 16 × ~260 bytes) and the heads. */
export const MAX_ENVELOPE_BYTES = MAX_PAYLOAD_BYTES + 16 * 1024;

/** Throws unless the envelope is within bounds: `ERR_ROUTE_INVALID`, `ERR_PAYLOAD_TOO_LARGE`. */
export function checkEnvelope(envelope: Envelope): Envelope {
  checkRoute(envelope.onwardRoute, 'onward route');
  checkRoute(envelope.returnRoute, 'return route');
  if (envelope.payload.byteLength > MAX_PAYLOAD_BYTES) {
    throw invalid(
      'ERR_PAYLOAD_TOO_LARGE',
      `payload is ${envelope.payload.byteLength} bytes, at most ${MAX_PAYLOAD_BYTES} allowed`,
    );
  }
  return envelope;
}

/*
 * The codec is written out for the envelope's one shape instead of going through the generic
 * CBOR codec: a 16 KiB payload is then copied once on encode (into a buffer of the exact size,
 * with room in front for a transport's frame header) and not at all on decode. It produces and
 * accepts exactly the bytes the strict generic codec does for this shape (shortest heads,
 * definite lengths, no trailing bytes); envelope.test.ts checks both directions against it.
 */

const ARRAY_4 = 0x84;
const ARRAY_2 = 0x82;
const MAJOR_ARRAY = 0x80;
const MAJOR_TEXT = 0x60;
const MAJOR_BYTES = 0x40;
/** Additional information 24, 25, 26: a 1-, 2- or 4-byte argument follows. */
const ARG_1 = 24;
const ARG_2 = 25;
const ARG_4 = 26;

/** Head length of a uint, text or byte string of argument `n` (n < 2^32). */
const headBytes = (n: number): number => (n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 5);

function routeBytes(route: Route): number {
  // A route holds at most 16 addresses, so its head is one byte; so is an address's.
  let n = 1;
  for (const a of route) n += 1 + headBytes(a.type) + headBytes(a.value.length) + a.value.length;
  return n;
}

function writeHead(out: Uint8Array, at: number, major: number, n: number): number {
  if (n < 24) {
    out[at] = major | n;
    return at + 1;
  }
  if (n < 0x100) {
    out[at] = major | ARG_1;
    out[at + 1] = n;
    return at + 2;
  }
  if (n < 0x10000) {
    out[at] = major | ARG_2;
    out[at + 1] = n >>> 8;
    out[at + 2] = n & 0xff;
    return at + 3;
  }
  out[at] = major | ARG_4;
  out[at + 1] = n >>> 24;
  out[at + 2] = (n >>> 16) & 0xff;
  out[at + 3] = (n >>> 8) & 0xff;
  out[at + 4] = n & 0xff;
  return at + 5;
}

function writeRoute(out: Uint8Array, at: number, route: Route): number {
  let p = writeHead(out, at, MAJOR_ARRAY, route.length);
  for (const { type, value } of route) {
    out[p] = ARRAY_2;
    p = writeHead(out, p + 1, 0, type);
    p = writeHead(out, p, MAJOR_TEXT, value.length);
    // Checked printable ASCII: one byte per character.
    for (let i = 0; i < value.length; i++) out[p + i] = value.charCodeAt(i);
    p += value.length;
  }
  return p;
}

export interface EncodeEnvelopeOptions {
  /** Bytes left in front of the encoding for the caller (a transport's frame header); zeroed. */
  readonly headroom?: number;
  /**
   * Where the bytes go: `length` bytes whose every byte the encoder overwrites (a transport's
   * reusable frame buffer). Default: fresh memory, not zero-filled first.
   */
  readonly allocate?: (length: number) => Uint8Array;
}

/** A Uint8Array with an ArrayBuffer of its own (not a slice of Buffer's pool), not zero-filled. */
function unfilledBytes(length: number): Uint8Array {
  const buffer = Buffer.allocUnsafeSlow(length);
  return new Uint8Array(buffer.buffer, buffer.byteOffset, length);
}

/**
 * The envelope's bytes, copying the payload once. Every byte of the output is written here, so
 * it needs no zero fill first: for a 16 KiB payload a zeroed allocation costs more than the copy.
 */
export function encodeEnvelope(
  envelope: Envelope,
  options: EncodeEnvelopeOptions = {},
): Uint8Array {
  checkEnvelope(envelope);
  const headroom = options.headroom ?? 0;
  if (!Number.isSafeInteger(headroom) || headroom < 0) {
    throw invalid('ERR_ARGUMENT_INVALID', '`headroom` must be a non-negative integer');
  }
  const { payload } = envelope;
  const length = headroom + headLength(envelope) + payload.byteLength;
  const out = (options.allocate ?? unfilledBytes)(length);
  if (out.byteLength !== length) {
    throw invalid(
      'ERR_ARGUMENT_INVALID',
      `\`allocate\` returned ${out.byteLength} bytes, not ${length}`,
    );
  }
  out.fill(0, 0, headroom);
  out.set(payload, writeEnvelopeHead(out, headroom, envelope));
  return out;
}

/**
 * The envelope's bytes before its payload: `encodeEnvelopeHead(e) ‖ e.payload` is exactly
 * `encodeEnvelope(e)`. For a writer that takes its input in pieces (an AEAD, a vectored socket
 * write), so the payload is never copied just to sit behind its head.
 */
export function encodeEnvelopeHead(envelope: Envelope): Uint8Array {
  checkEnvelope(envelope);
  // A few dozen bytes: from Buffer's shared pool, as a view. (A small Uint8Array of its own
  // would be given an ArrayBuffer of its own by the first native call that reads it.)
  const length = headLength(envelope);
  const pooled = Buffer.allocUnsafe(length);
  const out = new Uint8Array(pooled.buffer, pooled.byteOffset, length);
  writeEnvelopeHead(out, 0, envelope);
  return out;
}

function headLength({ onwardRoute, returnRoute, payload }: Envelope): number {
  return 2 + routeBytes(onwardRoute) + routeBytes(returnRoute) + headBytes(payload.byteLength);
}

/** Writes everything but the payload's bytes at `at`; returns where the payload goes. */
function writeEnvelopeHead(out: Uint8Array, at: number, envelope: Envelope): number {
  out[at] = ARRAY_4;
  out[at + 1] = ENVELOPE_VERSION;
  let p = writeRoute(out, at + 2, envelope.onwardRoute);
  p = writeRoute(out, p, envelope.returnRoute);
  return writeHead(out, p, MAJOR_BYTES, envelope.payload.byteLength);
}

const CODE = 'ERR_ENVELOPE_MALFORMED';
const malformed = (reason: string): never => {
  throw invalid(CODE, `envelope is malformed: ${reason}`);
};

/** Reads the shapes an envelope is made of, shortest heads only; any deviation throws. */
class Reader {
  at = 0;
  /** The address being read, for messages (which are built only on failure). */
  hop = -1;
  constructor(readonly bytes: Uint8Array) {}

  fail(what: string, reason: string): never {
    return malformed(`${what}${this.hop < 0 ? '' : ` of address ${this.hop}`} ${reason}`);
  }

  byte(what: string): number {
    const b = this.bytes[this.at];
    if (b === undefined) return this.fail(what, 'is missing');
    this.at++;
    return b;
  }

  /** The argument of a head of major type `major` (as its top three bits), shortest form. */
  argument(major: number, what: string): number {
    const head = this.byte(what);
    if ((head & 0xe0) !== major) return this.fail(what, 'has the wrong type');
    const info = head & 0x1f;
    if (info < 24) return info;
    const size = info === ARG_1 ? 1 : info === ARG_2 ? 2 : info === ARG_4 ? 4 : 0;
    if (size === 0) return this.fail(what, 'has a length this envelope cannot hold');
    if (this.at + size > this.bytes.length) return this.fail(what, 'is cut short');
    let n = 0;
    for (let i = 0; i < size; i++) n = n * 0x100 + this.bytes[this.at + i]!;
    this.at += size;
    const minimum = size === 1 ? 24 : size === 2 ? 0x100 : 0x10000;
    if (n < minimum) return this.fail(what, 'has a non-shortest head');
    return n;
  }

  route(what: string): Route {
    const count = this.argument(MAJOR_ARRAY, what);
    if (count > MAX_ROUTE_HOPS) return this.fail(what, `has ${count} hops, at most 16`);
    const route: Address[] = [];
    const typeName = `${what} type`;
    const valueName = `${what} value`;
    for (let i = 0; i < count; i++) {
      this.hop = i;
      if (this.byte(what) !== ARRAY_2) return this.fail(what, 'is not a [type, value] pair');
      const type = this.argument(0, typeName);
      if (type > 255) return this.fail(typeName, 'is above 255');
      const length = this.argument(MAJOR_TEXT, valueName);
      if (length === 0 || length > MAX_ADDRESS_LENGTH) {
        return this.fail(valueName, 'is not 1–255 characters');
      }
      if (length > this.bytes.length - this.at) return this.fail(valueName, 'is cut short');
      // isValidAddress's rule, checked on the bytes: printable ASCII (so valid UTF-8, one
      // character per byte). Building the string byte by byte beats a spread or a TextDecoder
      // for these short values.
      let value = '';
      const end = this.at + length;
      for (let p = this.at; p < end; p++) {
        const b = this.bytes[p]!;
        if (b < 0x21 || b > 0x7e) return this.fail(valueName, 'is not printable ASCII');
        value += String.fromCharCode(b);
      }
      this.at = end;
      route.push({ type, value });
    }
    this.hop = -1;
    return route;
  }
}

/**
 * Strict and bounded: any deviation throws `ERR_ENVELOPE_MALFORMED`, nothing else. The payload
 * is a view into `bytes`, not a copy: the caller must not reuse `bytes` while it is in use.
 */
export function decodeEnvelope(bytes: Uint8Array): Envelope {
  if (bytes.byteLength > MAX_ENVELOPE_BYTES) {
    malformed(`${bytes.byteLength} bytes, at most ${MAX_ENVELOPE_BYTES}`);
  }
  const r = new Reader(bytes);
  if (r.argument(MAJOR_ARRAY, 'envelope') !== 4) malformed('it must be an array of 4 items');
  const version = r.argument(0, 'envelope version');
  if (version !== ENVELOPE_VERSION) {
    malformed(`version \`${version}\` is not ${ENVELOPE_VERSION}`);
  }
  const onwardRoute = r.route('onward route');
  const returnRoute = r.route('return route');
  const length = r.argument(MAJOR_BYTES, 'payload');
  if (length > MAX_PAYLOAD_BYTES)
    malformed(`payload is ${length} bytes, at most ${MAX_PAYLOAD_BYTES}`);
  if (length !== bytes.length - r.at) {
    malformed(length > bytes.length - r.at ? 'payload is cut short' : 'trailing bytes');
  }
  const payload = new Uint8Array(bytes.buffer, bytes.byteOffset + r.at, length);
  return { onwardRoute, returnRoute, payload };
}
