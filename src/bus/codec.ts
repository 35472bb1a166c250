import { invalid } from '../core/internal.js';
import type { ErrorCode } from '../core/index.js';
import {
  decodeCbor,
  encodeCbor,
  expectArray,
  expectBytes,
  expectUint,
  fromHex,
  toHex,
  type CborValue,
} from '../encoding/index.js';
import type { DenyEntry } from '../credentials/index.js';
import { checkTopic, rulesOf } from './topics.js';
import { BusTopic, type BusMessage, type PublishedBundle } from './types.js';

// The bytes of a bus message (docs/spec/policy.md §3), the same on every transport: strict CBOR,
//   [1, topic, type, body]
//   topic: 0 deny-set, 1 bundles; type: 0 snapshot, 1 update, 2 heartbeat
//   deny-set snapshot [sequence, issuedAt, [entry…]]   update [from, to, issuedAt, [entry…]]
//   bundles snapshot  [sequence, issuedAt, bundle / null] update [from, to, issuedAt, [bundle…]]
//   heartbeat         [sequence, issuedAt]
//   entry  [kind: tstr, id: tstr, expiresAt, revokedAt, reason: tstr?]
//   bundle [version, hash: bstr(32), bytes: bstr]
// Decoding checks the structure here and the content with the topic's rules (topics.ts).

const VERSION = 1;
const CODE: ErrorCode = 'ERR_BUS_MESSAGE_INVALID';
/** A bus message is at most this big (a deny-set snapshot of a few hundred thousand entries). */
export const MAX_BUS_MESSAGE_BYTES = 32 * 1024 * 1024;
const TOPICS = [BusTopic.denySet, BusTopic.bundles] as const;
const Type = { snapshot: 0, update: 1, heartbeat: 2 } as const;
const MAX_TEXT = 256;

/** A topic's number on the wire. */
export function topicIndex(topic: BusTopic): number {
  return TOPICS.indexOf(checkTopic(topic));
}

/** The topic numbered `index` on the wire; ERR_BUS_MESSAGE_INVALID for another number. */
export function topicAt(index: number): BusTopic {
  const topic = TOPICS[index];
  if (topic === undefined) throw invalid(CODE, `bus topic \`${index}\` is unknown`);
  return topic;
}

const encodeEntry = (entry: DenyEntry): CborValue =>
  entry.reason === undefined
    ? [entry.kind, entry.id, entry.expiresAt, entry.revokedAt]
    : [entry.kind, entry.id, entry.expiresAt, entry.revokedAt, entry.reason];

const encodeBundle = (bundle: PublishedBundle): CborValue => [
  bundle.version,
  fromHex(bundle.hash),
  bundle.bytes,
];

/**
 * The bytes of `message` on `topic`. The message is checked with the topic's rules first
 * (ERR_BUS_MESSAGE_INVALID): nothing malformed is ever sent.
 */
export function encodeBusMessage<T extends BusTopic>(topic: T, message: BusMessage<T>): Uint8Array {
  const index = topicIndex(topic);
  const deny = topic === BusTopic.denySet;
  let type: number;
  let body: CborValue;
  if (message.type === 'heartbeat') {
    checkHeartbeat(message.sequence, message.issuedAt);
    type = Type.heartbeat;
    body = [message.sequence, message.issuedAt];
  } else if (message.type === 'snapshot') {
    type = Type.snapshot;
    if (deny) {
      const snapshot = rulesOf(BusTopic.denySet).checkSnapshot(message.snapshot);
      body = [snapshot.sequence, snapshot.issuedAt, snapshot.entries.map(encodeEntry)];
    } else {
      const snapshot = rulesOf(BusTopic.bundles).checkSnapshot(message.snapshot);
      const bundle = snapshot.bundle === undefined ? null : encodeBundle(snapshot.bundle);
      body = [snapshot.sequence, snapshot.issuedAt, bundle];
    }
  } else {
    type = Type.update;
    if (deny) {
      const update = rulesOf(BusTopic.denySet).checkUpdate(message.update);
      const entries = update.entries.map(encodeEntry);
      body = [update.fromSequence, update.toSequence, update.issuedAt, entries];
    } else {
      const update = rulesOf(BusTopic.bundles).checkUpdate(message.update);
      const bundles = update.bundles.map(encodeBundle);
      body = [update.fromSequence, update.toSequence, update.issuedAt, bundles];
    }
  }
  return encodeCbor([VERSION, index, type, body]);
}

function checkHeartbeat(sequence: unknown, issuedAt: unknown): void {
  for (const [name, value] of [
    ['sequence', sequence],
    ['issuedAt', issuedAt],
  ] as const)
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0)
      throw invalid(CODE, `a heartbeat's \`${name}\` is not a non-negative integer`);
}

/** A decoded bus message and its topic. */
export interface DecodedBusMessage {
  readonly topic: BusTopic;
  readonly message: BusMessage<BusTopic>;
}

/**
 * Decodes and checks a bus message of at most `maxBytes` (default and ceiling
 * {@link MAX_BUS_MESSAGE_BYTES}). Throws ERR_BUS_MESSAGE_INVALID for anything outside the format:
 * bad CBOR, an unknown version, topic or type, a malformed entry or bundle, wrong sequence
 * arithmetic, a bundle over the bus's bound.
 */
export function decodeBusMessage(
  bytes: Uint8Array,
  maxBytes = MAX_BUS_MESSAGE_BYTES,
): DecodedBusMessage {
  const top = expectArray(
    decodeCbor(bytes, {
      errorCode: CODE,
      what: 'bus message',
      maxBytes: Math.min(maxBytes, MAX_BUS_MESSAGE_BYTES),
      maxDepth: 5,
    }),
    CODE,
    'bus message',
    4,
    4,
  );
  const version = expectUint(top[0], CODE, 'bus message version');
  if (version !== VERSION) throw invalid(CODE, `bus message version \`${version}\` is not 1`);
  const topic = topicAt(expectUint(top[1], CODE, 'bus topic', 255));
  const type = expectUint(top[2], CODE, 'bus message type', 255);
  const body = top[3] ?? null;
  if (type === Type.heartbeat) {
    const [sequence, issuedAt] = expectArray(body, CODE, 'heartbeat', 2, 2);
    return {
      topic,
      message: {
        type: 'heartbeat',
        sequence: expectUint(sequence, CODE, 'heartbeat sequence'),
        issuedAt: expectUint(issuedAt, CODE, 'heartbeat time'),
      },
    };
  }
  if (type === Type.snapshot) {
    const [sequence, issuedAt, content] = expectArray(body, CODE, 'snapshot', 3, 3);
    const fields = {
      sequence: expectUint(sequence, CODE, 'snapshot sequence'),
      issuedAt: expectUint(issuedAt, CODE, 'snapshot time'),
    };
    if (topic === BusTopic.denySet) {
      const snapshot = rulesOf(topic).checkSnapshot({ ...fields, entries: decodeEntries(content) });
      return { topic, message: { type: 'snapshot', snapshot } };
    }
    const bundle = content === null || content === undefined ? undefined : decodeBundle(content);
    const snapshot = rulesOf(topic).checkSnapshot({ ...fields, bundle });
    return { topic, message: { type: 'snapshot', snapshot } };
  }
  if (type === Type.update) {
    const [from, to, issuedAt, content] = expectArray(body, CODE, 'update', 4, 4);
    const fields = {
      fromSequence: expectUint(from, CODE, 'update start'),
      toSequence: expectUint(to, CODE, 'update end'),
      issuedAt: expectUint(issuedAt, CODE, 'update time'),
    };
    if (topic === BusTopic.denySet) {
      const update = rulesOf(topic).checkUpdate({ ...fields, entries: decodeEntries(content) });
      return { topic, message: { type: 'update', update } };
    }
    const bundles = expectArray(content ?? null, CODE, 'bundles', 0, Number.MAX_SAFE_INTEGER);
    const update = rulesOf(topic).checkUpdate({ ...fields, bundles: bundles.map(decodeBundle) });
    return { topic, message: { type: 'update', update } };
  }
  throw invalid(CODE, `bus message type \`${type}\` is unknown`);
}

/** Entries in object form, for the topic's rules to check. */
function decodeEntries(value: CborValue | undefined): Record<string, unknown>[] {
  const list = expectArray(value ?? null, CODE, 'deny entries', 0, Number.MAX_SAFE_INTEGER);
  return list.map((item) => {
    const fields = expectArray(item, CODE, 'deny entry', 4, 5);
    const [kind, id, expiresAt, revokedAt, reason] = fields;
    return {
      kind: text(kind, 'deny entry kind'),
      id: text(id, 'deny entry id'),
      expiresAt: expectUint(expiresAt, CODE, 'deny entry expiry'),
      revokedAt: expectUint(revokedAt, CODE, 'deny entry revocation time'),
      ...(fields.length === 5 ? { reason: text(reason, 'deny entry reason', 4 * MAX_TEXT) } : {}),
    };
  });
}

function decodeBundle(value: CborValue): PublishedBundle {
  const [version, hash, bytes] = expectArray(value, CODE, 'bundle', 3, 3);
  return {
    version: expectUint(version, CODE, 'bundle version'),
    hash: toHex(expectBytes(hash, CODE, 'bundle hash', 32)),
    bytes: expectBytes(bytes, CODE, 'bundle bytes'),
  };
}

function text(value: CborValue | undefined, what: string, max = MAX_TEXT): string {
  if (typeof value !== 'string' || value.length > max) throw invalid(CODE, `${what} is not text`);
  return value;
}
