import { invalid, isUnixSeconds } from '../core/internal.js';
import { isMandateError, type MandateError } from '../core/index.js';
import { parseDenyEntry } from '../credentials/internal.js';
import type { DenyEntry, DenySetSnapshot, DenySetUpdate } from '../credentials/index.js';
import {
  BusTopic,
  type BundleSnapshot,
  type BundleUpdate,
  type BusSnapshot,
  type BusUpdate,
  type PublishedBundle,
} from './types.js';

// Each topic's rules, in one place for every bus implementation and the wire codec: what a
// well-formed snapshot and update are (checked on publish and on receipt), and how updates fold
// into the snapshot a late subscriber gets.

/** A bundle on the bus is at most this many bytes (the gates' bound on a SignedBundle, 2 MiB). */
export const MAX_BUNDLE_BYTES = 2 * 1024 * 1024;
const HASH_RE = /^[0-9a-f]{64}$/;

/** ERR_BUS_MESSAGE_INVALID, the one code of every malformed bus value. */
export const messageInvalid = (message: string, cause?: unknown): MandateError =>
  invalid('ERR_BUS_MESSAGE_INVALID', message, cause);

/** Throws ERR_BUS_TOPIC_UNKNOWN unless `topic` is a {@link BusTopic}. */
export function checkTopic(topic: unknown): BusTopic {
  if (topic === BusTopic.denySet || topic === BusTopic.bundles) return topic;
  const shown = typeof topic === 'string' ? topic.slice(0, 40).replace(/[^\x20-\x7e]|`/g, '?') : '';
  throw invalid(
    'ERR_BUS_TOPIC_UNKNOWN',
    `\`${shown}\` is not a bus topic (\`deny-set\`, \`bundles\`)`,
  );
}

function checkCounter(value: unknown, name: string): number {
  if (!isUnixSeconds(value)) throw messageInvalid(`\`${name}\` is not a non-negative integer`);
  return value;
}

function checkList(value: unknown, name: string): readonly unknown[] {
  if (!Array.isArray(value)) throw messageInvalid(`\`${name}\` is not a list`);
  return value as readonly unknown[];
}

function checkRecord(value: unknown, name: string): Readonly<Record<string, unknown>> {
  if (typeof value !== 'object' || value === null) throw messageInvalid(`${name} is not an object`);
  return value as Readonly<Record<string, unknown>>;
}

function checkEntries(value: unknown, what: string): DenyEntry[] {
  const seen = new Set<string>();
  return checkList(value, `${what} entries`).map((raw) => {
    const { kind, id, expiresAt, revokedAt, reason } = checkRecord(raw, 'a deny entry');
    if (typeof kind !== 'string' || typeof id !== 'string')
      throw messageInvalid(`the ${what} holds an entry without a text \`kind\` and \`id\``);
    if (typeof expiresAt !== 'number' || typeof revokedAt !== 'number')
      throw messageInvalid(`the ${what} holds an entry without numeric times`);
    if (reason !== undefined && typeof reason !== 'string')
      throw messageInvalid(`the ${what} holds an entry whose reason is not text`);
    let entry: DenyEntry;
    try {
      entry = parseDenyEntry({ kind, id, expiresAt, revokedAt, reason });
    } catch (error) {
      if (!isMandateError(error, 'ERR_DENY_ENTRY_INVALID')) throw error;
      throw messageInvalid(`the ${what} holds an invalid entry: ${error.message}`, error);
    }
    if (seen.has(entry.id)) throw messageInvalid(`the ${what} holds \`${entry.id}\` twice`);
    seen.add(entry.id);
    return entry;
  });
}

/** A checked copy of a published bundle: version, hash shape and size. */
export function checkBundle(value: unknown): PublishedBundle {
  const { version, hash, bytes } = checkRecord(value, 'a bundle');
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1)
    throw messageInvalid("a bundle's `version` is not a positive integer");
  if (typeof hash !== 'string' || !HASH_RE.test(hash))
    throw messageInvalid("a bundle's `hash` is not 64 lowercase hex digits");
  if (!(bytes instanceof Uint8Array)) throw messageInvalid("a bundle's `bytes` are not bytes");
  if (bytes.length > MAX_BUNDLE_BYTES)
    throw messageInvalid(
      `a bundle of ${bytes.length} bytes is over the bus's ${MAX_BUNDLE_BYTES}-byte bound`,
    );
  return { version, hash, bytes };
}

/** `from`, `to`, `issuedAt` and `count` items: one sequence step per item. */
function checkSpan(
  update: Readonly<Record<string, unknown>>,
  count: number,
): { fromSequence: number; toSequence: number; issuedAt: number } {
  const fromSequence = checkCounter(update.fromSequence, 'fromSequence');
  const toSequence = checkCounter(update.toSequence, 'toSequence');
  const issuedAt = checkCounter(update.issuedAt, 'issuedAt');
  if (toSequence !== fromSequence + count)
    throw messageInvalid(
      `an update from sequence \`${fromSequence}\` to \`${toSequence}\` cannot carry ${count} items`,
    );
  return { fromSequence, toSequence, issuedAt };
}

/** The per-topic rules: checks and the fold. */
export interface TopicRules<T extends BusTopic> {
  checkUpdate(value: unknown): BusUpdate<T>;
  checkSnapshot(value: unknown): BusSnapshot<T>;
  /** A fresh fold at sequence 0 (nothing published). */
  createFold(): TopicFold<T>;
}

/** A topic's state: the snapshot every update so far adds up to. */
export interface TopicFold<T extends BusTopic> {
  readonly sequence: number;
  /** Applies a checked update that starts at `sequence`. */
  apply(update: BusUpdate<T>): void;
  /** Replaces the state with a checked snapshot. */
  reset(snapshot: BusSnapshot<T>): void;
  /** The state as a snapshot, as of `issuedAt`. */
  snapshot(issuedAt: number): BusSnapshot<T>;
  /** Drops what no longer matters at `nowSeconds` (expired deny entries). */
  prune(nowSeconds: number): void;
  /**
   * One update `fromSequence … last.toSequence` made of `updates` (contiguous, the first starting
   * at or before `fromSequence`), as of `issuedAt`.
   */
  merge(updates: readonly BusUpdate<T>[], fromSequence: number, issuedAt: number): BusUpdate<T>;
}

const denySetRules: TopicRules<'deny-set'> = {
  checkUpdate(value): DenySetUpdate {
    const update = checkRecord(value, 'a deny-set update');
    const entries = checkEntries(update.entries, 'deny-set update');
    return { ...checkSpan(update, entries.length), entries };
  },
  checkSnapshot(value): DenySetSnapshot {
    const snapshot = checkRecord(value, 'a deny-set snapshot');
    const sequence = checkCounter(snapshot.sequence, 'sequence');
    const issuedAt = checkCounter(snapshot.issuedAt, 'issuedAt');
    const entries = checkEntries(snapshot.entries, 'deny-set snapshot');
    if (entries.length > sequence)
      throw messageInvalid(
        `a snapshot at sequence \`${sequence}\` cannot hold ${entries.length} entries`,
      );
    return { sequence, issuedAt, entries };
  },
  createFold: () => new DenySetFold(),
};

class DenySetFold implements TopicFold<'deny-set'> {
  // Insertion order is (roughly) sequence order; a snapshot needs no order.
  #entries = new Map<string, DenyEntry>();
  sequence = 0;

  apply(update: DenySetUpdate): void {
    for (const entry of update.entries) this.#entries.set(entry.id, entry);
    this.sequence = update.toSequence;
  }

  reset(snapshot: DenySetSnapshot): void {
    this.#entries = new Map(snapshot.entries.map((entry) => [entry.id, entry]));
    this.sequence = snapshot.sequence;
  }

  snapshot(issuedAt: number): DenySetSnapshot {
    return { sequence: this.sequence, entries: [...this.#entries.values()], issuedAt };
  }

  prune(nowSeconds: number): void {
    for (const [id, entry] of this.#entries)
      if (entry.expiresAt < nowSeconds) this.#entries.delete(id);
  }

  merge(updates: readonly DenySetUpdate[], fromSequence: number, issuedAt: number): DenySetUpdate {
    const entries: DenyEntry[] = [];
    let toSequence = fromSequence;
    for (const update of updates) {
      entries.push(...update.entries.slice(Math.max(0, fromSequence - update.fromSequence)));
      toSequence = update.toSequence;
    }
    return { fromSequence, toSequence, entries, issuedAt };
  }
}

const bundleRules: TopicRules<'bundles'> = {
  checkUpdate(value): BundleUpdate {
    const update = checkRecord(value, 'a bundle update');
    const bundles = checkList(update.bundles, 'bundles').map(checkBundle);
    return { ...checkSpan(update, bundles.length), bundles };
  },
  checkSnapshot(value): BundleSnapshot {
    const snapshot = checkRecord(value, 'a bundle snapshot');
    const sequence = checkCounter(snapshot.sequence, 'sequence');
    const issuedAt = checkCounter(snapshot.issuedAt, 'issuedAt');
    const bundle = snapshot.bundle === undefined ? undefined : checkBundle(snapshot.bundle);
    if (bundle !== undefined && sequence === 0)
      throw messageInvalid('a bundle snapshot at sequence `0` cannot hold a bundle');
    return { sequence, bundle, issuedAt };
  },
  createFold: () => new BundleFold(),
};

class BundleFold implements TopicFold<'bundles'> {
  #latest: PublishedBundle | undefined;
  sequence = 0;

  apply(update: BundleUpdate): void {
    this.#latest = update.bundles[update.bundles.length - 1] ?? this.#latest;
    this.sequence = update.toSequence;
  }

  reset(snapshot: BundleSnapshot): void {
    this.#latest = snapshot.bundle;
    this.sequence = snapshot.sequence;
  }

  snapshot(issuedAt: number): BundleSnapshot {
    return { sequence: this.sequence, bundle: this.#latest, issuedAt };
  }

  prune(): void {
    // The latest bundle is the state; nothing expires here (staleness is the receiver's).
  }

  merge(updates: readonly BundleUpdate[], fromSequence: number, issuedAt: number): BundleUpdate {
    const bundles: PublishedBundle[] = [];
    let toSequence = fromSequence;
    for (const update of updates) {
      bundles.push(...update.bundles.slice(Math.max(0, fromSequence - update.fromSequence)));
      toSequence = update.toSequence;
    }
    return { fromSequence, toSequence, bundles, issuedAt };
  }
}

/** The rules of `topic`. */
export function rulesOf<T extends BusTopic>(topic: T): TopicRules<T> {
  // The map from topic to rules is exact; TypeScript cannot follow it through a generic.
  return (topic === BusTopic.denySet ? denySetRules : bundleRules) as unknown as TopicRules<T>;
}
