import { invalid } from '../core/internal.js';
import type { ErrorCode } from '../core/index.js';
import {
  decodeCbor,
  encodeCbor,
  expectArray,
  expectBytes,
  expectUint,
  type CborValue,
} from '../encoding/index.js';
import { MAX_BUS_MESSAGE_BYTES, type BusTopic } from '../bus/index.js';
import { topicAt, topicIndex } from '../bus/internal.js';

// The bus over a secure channel (docs/spec/policy.md §3): the frames between a node's
// ChannelBusSubscriber and the authority's BusService, strict CBOR, inside the channel:
//   subscriber → service   [1, 0, id, topic, fromSequence / null]   subscribe
//                          [1, 1, id]                              unsubscribe
//   service → subscriber   [1, 2, id, message: bstr]               one bus message (codec.ts)
//                          [1, 3, id, index, count, chunk: bstr]   a piece of a longer one
//                          [1, 4, id, code: tstr]                  the subscription is refused or over
// `id` is the subscriber's number for one subscription on this channel. A bus message longer
// than FRAGMENT_BYTES travels as `count` pieces in order, each FRAGMENT_BYTES but the last.

const VERSION = 1;
const CODE: ErrorCode = 'ERR_BUS_MESSAGE_INVALID';
/** One piece of a bus message: a Noise transport message holds 65 535 bytes, with the inner envelope. */
export const FRAGMENT_BYTES = 48 * 1024;
const MAX_FRAGMENTS = Math.ceil(MAX_BUS_MESSAGE_BYTES / FRAGMENT_BYTES);
/** A request is tiny; an answer frame a fragment plus its head. */
export const MAX_REQUEST_BYTES = 64;
export const MAX_ANSWER_BYTES = FRAGMENT_BYTES + 64;
const MAX_ID = 0xffff_ffff;
const MAX_CODE_CHARS = 64;
const Op = { subscribe: 0, unsubscribe: 1, message: 2, fragment: 3, end: 4 } as const;

/** What a subscriber asks. */
export type BusRequest =
  | {
      readonly op: 'subscribe';
      readonly id: number;
      readonly topic: BusTopic;
      readonly fromSequence: number | undefined;
    }
  | { readonly op: 'unsubscribe'; readonly id: number };

/** What the service sends. */
export type BusAnswer =
  | { readonly op: 'message'; readonly id: number; readonly message: Uint8Array }
  | {
      readonly op: 'fragment';
      readonly id: number;
      readonly index: number;
      readonly count: number;
      readonly chunk: Uint8Array;
    }
  | { readonly op: 'end'; readonly id: number; readonly code: string };

export function encodeBusRequest(request: BusRequest): Uint8Array {
  if (request.op === 'unsubscribe') return encodeCbor([VERSION, Op.unsubscribe, request.id]);
  return encodeCbor([
    VERSION,
    Op.subscribe,
    request.id,
    topicIndex(request.topic),
    request.fromSequence ?? null,
  ]);
}

export function decodeBusRequest(bytes: Uint8Array): BusRequest {
  const top = frame(bytes, MAX_REQUEST_BYTES, 3, 5);
  const op = expectUint(top[1], CODE, 'bus request type', 255);
  const id = expectUint(top[2], CODE, 'subscription id', MAX_ID);
  if (op === Op.unsubscribe && top.length === 3) return { op: 'unsubscribe', id };
  if (op === Op.subscribe && top.length === 5) {
    const from = top[4];
    return {
      op: 'subscribe',
      id,
      topic: topicAt(expectUint(top[3], CODE, 'bus topic', 255)),
      fromSequence: from === null ? undefined : expectUint(from, CODE, 'subscription start'),
    };
  }
  throw invalid(CODE, `bus request type \`${op}\` with ${top.length} items is unknown`);
}

/** The frames of one encoded bus message: one, or its pieces in order. */
export function encodeBusMessageFrames(id: number, message: Uint8Array): Uint8Array[] {
  if (message.length <= FRAGMENT_BYTES) return [encodeCbor([VERSION, Op.message, id, message])];
  const count = Math.ceil(message.length / FRAGMENT_BYTES);
  const frames: Uint8Array[] = [];
  for (let index = 0; index < count; index++) {
    const chunk = message.subarray(index * FRAGMENT_BYTES, (index + 1) * FRAGMENT_BYTES);
    frames.push(encodeCbor([VERSION, Op.fragment, id, index, count, chunk]));
  }
  return frames;
}

export function encodeBusEnd(id: number, code: ErrorCode): Uint8Array {
  return encodeCbor([VERSION, Op.end, id, code]);
}

export function decodeBusAnswer(bytes: Uint8Array): BusAnswer {
  const top = frame(bytes, MAX_ANSWER_BYTES, 4, 6);
  const op = expectUint(top[1], CODE, 'bus answer type', 255);
  const id = expectUint(top[2], CODE, 'subscription id', MAX_ID);
  if (op === Op.message && top.length === 4)
    return { op: 'message', id, message: expectBytes(top[3], CODE, 'bus message') };
  if (op === Op.fragment && top.length === 6) {
    const count = expectUint(top[4], CODE, 'fragment count', MAX_FRAGMENTS);
    const index = expectUint(top[3], CODE, 'fragment index', MAX_FRAGMENTS);
    const chunk = expectBytes(top[5], CODE, 'fragment');
    if (count < 2 || index >= count) throw invalid(CODE, 'a fragment is out of its message');
    const last = index === count - 1;
    if (
      last ? chunk.length === 0 || chunk.length > FRAGMENT_BYTES : chunk.length !== FRAGMENT_BYTES
    )
      throw invalid(CODE, `fragment ${index} of ${count} has ${chunk.length} bytes`);
    return { op: 'fragment', id, index, count, chunk };
  }
  if (op === Op.end && top.length === 4) {
    const code = top[3];
    if (typeof code !== 'string' || code.length > MAX_CODE_CHARS || !/^ERR_[A-Z0-9_]+$/.test(code))
      throw invalid(CODE, 'a subscription end carries an error code');
    return { op: 'end', id, code };
  }
  throw invalid(CODE, `bus answer type \`${op}\` with ${top.length} items is unknown`);
}

function frame(bytes: Uint8Array, maxBytes: number, min: number, max: number): CborValue[] {
  const top = expectArray(
    decodeCbor(bytes, { errorCode: CODE, what: 'bus frame', maxBytes, maxDepth: 1 }),
    CODE,
    'bus frame',
    min,
    max,
  );
  const version = expectUint(top[0], CODE, 'bus frame version');
  if (version !== VERSION) throw invalid(CODE, `bus frame version \`${version}\` is not 1`);
  return top;
}

/**
 * Puts a bus message back together from its pieces, which must arrive in order; throws
 * ERR_BUS_MESSAGE_INVALID for a piece out of turn (nothing is kept of the message then).
 */
export class FragmentAssembler {
  #count = 0;
  #chunks: Uint8Array[] = [];

  /** The whole message once its last piece is in, else undefined. */
  add(fragment: Extract<BusAnswer, { op: 'fragment' }>): Uint8Array | undefined {
    const expected = this.#chunks.length;
    if (fragment.index !== expected || (expected > 0 && fragment.count !== this.#count)) {
      this.reset();
      throw invalid(CODE, `fragment ${fragment.index} of ${fragment.count} arrived out of turn`);
    }
    this.#count = fragment.count;
    this.#chunks.push(fragment.chunk);
    if (this.#chunks.length < this.#count) return undefined;
    const total = this.#chunks.reduce((sum, chunk) => sum + chunk.length, 0);
    const whole = new Uint8Array(total);
    let at = 0;
    for (const chunk of this.#chunks) {
      whole.set(chunk, at);
      at += chunk.length;
    }
    this.reset();
    return whole;
  }

  /** Whether a message is half received (a whole message must not arrive meanwhile). */
  get pending(): boolean {
    return this.#chunks.length > 0;
  }

  reset(): void {
    this.#count = 0;
    this.#chunks = [];
  }
}
