import { ErrorKind, type ErrorCode } from '../core/index.js';
import { invalid } from '../core/internal.js';
import { decodeCbor, encodeCbor, expectArray, expectBytes, expectUint } from '../encoding/index.js';
import {
  MAX_PROXY_HEADER_BYTES,
  MAX_PROXY_HEADERS,
  MAX_PROXY_PATH_CHARS,
} from '../broker/index.js';

/**
 * The egress proxy's messages over a secure channel (docs/spec/broker.md §6.3), strict CBOR
 * arrays `[version 1, type, id: bstr(16), …]`, one request per `id`:
 *
 * - `[1, 0, id, method, authority, path, headers: [[name, value]…], chunks]` request head,
 *   followed by `chunks` body chunks;
 * - `[1, 1, id, index, bytes]` a body chunk (either direction), `index` counting from 0, at
 *   most {@link EGRESS_CHUNK_BYTES} (48 KiB: a channel frame, framing included, must stay within
 *   a Noise message's 65,535 bytes);
 * - `[1, 2, id, status, headers]` response head, followed by body chunks and
 * - `[1, 3, id, chunks]` the response's end;
 * - `[1, 4, id, code]` the request is refused (before the response head) or aborted (after).
 */
export const EGRESS_SERVICE_ADDRESS = 'egress';
export const EGRESS_CHUNK_BYTES = 48 * 1024;
export const EGRESS_ID_BYTES = 16;
const VERSION = 1;
/** A head carries at most the path and header bounds; a chunk at most 64 KiB; plus framing. */
const MAX_MESSAGE_BYTES =
  Math.max(EGRESS_CHUNK_BYTES, MAX_PROXY_HEADER_BYTES + MAX_PROXY_PATH_CHARS) + 4 * 1024;
const MAX_CODE_CHARS = 64;
const MALFORMED: ErrorCode = 'ERR_PROXY_MALFORMED';

export const EgressOp = { request: 0, chunk: 1, response: 2, end: 3, refused: 4 } as const;

export type EgressHeaders = readonly (readonly [string, string])[];

export type EgressMessage =
  | {
      readonly op: typeof EgressOp.request;
      readonly id: Uint8Array;
      readonly method: string;
      readonly authority: string;
      readonly path: string;
      readonly headers: EgressHeaders;
      readonly chunks: number;
    }
  | {
      readonly op: typeof EgressOp.chunk;
      readonly id: Uint8Array;
      readonly index: number;
      readonly bytes: Uint8Array;
    }
  | {
      readonly op: typeof EgressOp.response;
      readonly id: Uint8Array;
      readonly status: number;
      readonly headers: EgressHeaders;
    }
  | { readonly op: typeof EgressOp.end; readonly id: Uint8Array; readonly chunks: number }
  | { readonly op: typeof EgressOp.refused; readonly id: Uint8Array; readonly code: string };

/**
 * The codes an egress service answers with, their kinds and the HTTP status the agent's local
 * proxy shows; any other code on the wire makes the answer malformed.
 */
export const EGRESS_REFUSALS: ReadonlyMap<string, readonly [ErrorCode, ErrorKind, number]> =
  new Map(
    (
      [
        ['ERR_PROXY_HOST_NOT_BOUND', ErrorKind.forbidden, 403],
        ['ERR_PROXY_FORBIDDEN', ErrorKind.forbidden, 403],
        ['ERR_PROXY_REQUEST_INVALID', ErrorKind.invalid, 400],
        ['ERR_PROXY_MALFORMED', ErrorKind.invalid, 400],
        ['ERR_PROXY_BODY_TOO_LARGE', ErrorKind.exhausted, 413],
        ['ERR_PROXY_BUSY', ErrorKind.exhausted, 503],
        ['ERR_PROXY_SECRET_UNFIT', ErrorKind.invalid, 502],
        ['ERR_PROXY_RESPONSE_ENCODED', ErrorKind.unsupported, 502],
        ['ERR_PROXY_UPSTREAM_FAILED', ErrorKind.unavailable, 502],
        ['ERR_PROXY_UPSTREAM_TIMEOUT', ErrorKind.timeout, 504],
        ['ERR_PROXY_FAILED', ErrorKind.unavailable, 502],
        ['ERR_PROXY_TIMEOUT', ErrorKind.timeout, 504],
      ] as const
    ).map(([code, kind, status]) => [code, [code, kind, status]]),
  );

export function encodeEgressMessage(message: EgressMessage): Uint8Array {
  switch (message.op) {
    case EgressOp.request:
      return encodeCbor([
        VERSION,
        message.op,
        message.id,
        message.method,
        message.authority,
        message.path,
        message.headers.map(([n, v]) => [n, v]),
        message.chunks,
      ]);
    case EgressOp.chunk:
      return encodeCbor([VERSION, message.op, message.id, message.index, message.bytes]);
    case EgressOp.response:
      return encodeCbor([
        VERSION,
        message.op,
        message.id,
        message.status,
        message.headers.map(([n, v]) => [n, v]),
      ]);
    case EgressOp.end:
      return encodeCbor([VERSION, message.op, message.id, message.chunks]);
    case EgressOp.refused:
      return encodeCbor([VERSION, message.op, message.id, message.code]);
  }
}

const LENGTHS: Readonly<Record<number, number>> = { 0: 8, 1: 5, 2: 5, 3: 4, 4: 4 };

/** Decodes one message; throws `ERR_PROXY_MALFORMED` for anything outside the protocol. */
export function decodeEgressMessage(bytes: Uint8Array): EgressMessage {
  const top = expectArray(
    decodeCbor(bytes, {
      errorCode: MALFORMED,
      what: 'egress message',
      maxBytes: MAX_MESSAGE_BYTES,
      maxDepth: 3,
    }),
    MALFORMED,
    'egress message',
    4,
    8,
  );
  const version = expectUint(top[0], MALFORMED, 'egress message version');
  if (version !== VERSION)
    throw invalid(MALFORMED, `egress message version \`${version}\` is not 1`);
  const op = expectUint(top[1], MALFORMED, 'egress message type');
  if (LENGTHS[op] !== top.length)
    throw invalid(MALFORMED, `egress message type \`${op}\` is unknown or has the wrong length`);
  const id = expectBytes(top[2], MALFORMED, 'egress request id', EGRESS_ID_BYTES);
  switch (op) {
    case EgressOp.request:
      return {
        op,
        id,
        method: text(top[3], 32, 'method'),
        authority: text(top[4], 255, 'authority'),
        path: text(top[5], MAX_PROXY_PATH_CHARS, 'path'),
        headers: headers(top[6]),
        chunks: expectUint(top[7], MALFORMED, 'chunk count'),
      };
    case EgressOp.chunk: {
      const chunk = expectBytes(top[4], MALFORMED, 'body chunk');
      if (chunk.length > EGRESS_CHUNK_BYTES)
        throw invalid(MALFORMED, `a body chunk is at most ${EGRESS_CHUNK_BYTES} bytes`);
      return { op, id, index: expectUint(top[3], MALFORMED, 'chunk index'), bytes: chunk };
    }
    case EgressOp.response: {
      const status = expectUint(top[3], MALFORMED, 'response status');
      if (status < 100 || status > 599) throw invalid(MALFORMED, 'a response status is 100 to 599');
      return { op, id, status, headers: headers(top[4]) };
    }
    case EgressOp.end:
      return { op, id, chunks: expectUint(top[3], MALFORMED, 'chunk count') };
    default:
      return { op: EgressOp.refused, id, code: text(top[3], MAX_CODE_CHARS, 'refusal code') };
  }
}

function text(value: unknown, maxChars: number, what: string): string {
  if (typeof value !== 'string' || value.length > maxChars)
    throw invalid(MALFORMED, `the ${what} must be text of at most ${maxChars} characters`);
  return value;
}

function headers(value: unknown): EgressHeaders {
  if (!Array.isArray(value) || value.length > MAX_PROXY_HEADERS)
    throw invalid(MALFORMED, `headers are an array of at most ${MAX_PROXY_HEADERS} pairs`);
  let bytes = 0;
  const out: [string, string][] = [];
  for (const pair of value) {
    if (!Array.isArray(pair) || pair.length !== 2)
      throw invalid(MALFORMED, 'a header is a [name, value] pair');
    const name = text(pair[0], 256, 'header name');
    const headerValue = text(pair[1], MAX_PROXY_HEADER_BYTES, 'header value');
    bytes += name.length + headerValue.length + 4;
    out.push([name, headerValue]);
  }
  if (bytes > MAX_PROXY_HEADER_BYTES)
    throw invalid(MALFORMED, `headers exceed ${MAX_PROXY_HEADER_BYTES} bytes`);
  return out;
}

/** `bytes` cut into chunks of at most {@link EGRESS_CHUNK_BYTES}. */
export function chunksOf(bytes: Uint8Array): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < bytes.length; at += EGRESS_CHUNK_BYTES)
    chunks.push(bytes.subarray(at, at + EGRESS_CHUNK_BYTES));
  return chunks;
}
