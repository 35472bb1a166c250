import type { MandateError } from '../core/index.js';
import type { DenySetSnapshot, DenySetUpdate } from '../credentials/index.js';

/**
 * What the bus distributes (DESIGN.md §2, `bus`; docs/spec/policy.md §3): the authority's
 * deny-set and its policy bundles, each a topic with its own sequence numbers. A topic is a
 * sequenced log that folds into a snapshot: a subscriber that is new, or too far behind for the
 * updates the bus still holds, gets the snapshot first and then every update in order.
 *
 * The shape is the one NATS JetStream's KV-with-watch gives (scale-out): a topic is a bucket, an
 * update's sequence numbers are the bucket's revisions, a snapshot is the bucket's latest values
 * (what `watch()` sends first), `fromSequence` is `resumeFromRevision`, and heartbeats travel on
 * a plain subject beside it.
 */
export const BusTopic = {
  /** Revocations: {@link DenySetSnapshot} and {@link DenySetUpdate}, one sequence per entry. */
  denySet: 'deny-set',
  /** Signed policy bundles: {@link BundleSnapshot} and {@link BundleUpdate}, one sequence per bundle. */
  bundles: 'bundles',
} as const;
export type BusTopic = (typeof BusTopic)[keyof typeof BusTopic];

/**
 * A policy bundle as the bus carries it: the signed bytes exactly as the authority signed them,
 * with the version and hash it announces. The bus never trusts these: a receiver accepts a bundle
 * only through the gates' bundle verification, which recomputes the hash and checks the signature.
 */
export interface PublishedBundle {
  /** The bundle's version as announced (a positive integer). */
  readonly version: number;
  /** Hex SHA-256 of `bytes` as announced (64 lowercase hex digits). */
  readonly hash: string;
  /** The signed bundle. */
  readonly bytes: Uint8Array;
}

/** Bundles `fromSequence + 1 … toSequence`, one sequence step per bundle, sent at `issuedAt`. */
export interface BundleUpdate {
  readonly fromSequence: number;
  readonly toSequence: number;
  readonly bundles: readonly PublishedBundle[];
  readonly issuedAt: number;
}

/** The latest bundle at `sequence` (none before the first), as of `issuedAt`. */
export interface BundleSnapshot {
  readonly sequence: number;
  readonly bundle: PublishedBundle | undefined;
  readonly issuedAt: number;
}

/** What each topic's snapshots and updates are. */
export interface BusTopicTypes {
  readonly 'deny-set': { readonly snapshot: DenySetSnapshot; readonly update: DenySetUpdate };
  readonly bundles: { readonly snapshot: BundleSnapshot; readonly update: BundleUpdate };
}

/** A topic's snapshot type. */
export type BusSnapshot<T extends BusTopic> = BusTopicTypes[T]['snapshot'];
/** A topic's update type. */
export type BusUpdate<T extends BusTopic> = BusTopicTypes[T]['update'];

/**
 * One delivery to a subscriber. `snapshot` replaces what the subscriber holds (it is at
 * `snapshot.sequence` after it); `update` continues from exactly the sequence the subscriber is at;
 * `heartbeat` is the publisher's word that the topic still stood at `sequence` at `issuedAt` (unix
 * seconds) — what keeps a subscriber fresh when nothing changes.
 */
export type BusMessage<T extends BusTopic> =
  | { readonly type: 'snapshot'; readonly snapshot: BusSnapshot<T> }
  | { readonly type: 'update'; readonly update: BusUpdate<T> }
  | { readonly type: 'heartbeat'; readonly sequence: number; readonly issuedAt: number };

/**
 * Options of {@link BusSubscriber.subscribe}.
 */
export interface SubscribeOptions<T extends BusTopic> {
  /**
   * The sequence the subscriber holds already (0: nothing yet, but updates from the start are
   * welcome). Omitted, or outside what the bus can continue from (older than the updates it keeps,
   * or ahead of the topic), the subscription starts with a snapshot.
   */
  readonly fromSequence?: number;
  /**
   * Called once per message, in order, never concurrently: the next message waits until a
   * returned promise settles. A throw or rejection ends the subscription (`onEnd` with the error).
   */
  readonly onMessage: (message: BusMessage<T>) => void | Promise<void>;
  /**
   * Called once when the subscription ends other than by `unsubscribe`: the bus closed
   * (`ERR_BUS_CLOSED`), the publisher refused this subscriber, or `onMessage` failed.
   */
  readonly onEnd?: (error: MandateError) => void;
}

/** A live subscription. */
export interface BusSubscription {
  readonly topic: BusTopic;
  /** Stops deliveries at once (a message being handled finishes); `onEnd` is not called. */
  unsubscribe(): void;
}

/** The receiving side of a bus: what a node that enforces needs. */
export interface BusSubscriber {
  /**
   * Subscribes to `topic`. Throws ERR_BUS_TOPIC_UNKNOWN for a topic that is not a
   * {@link BusTopic}, ERR_ARGUMENT_INVALID for a `fromSequence` that is not a non-negative
   * integer, ERR_BUS_CLOSED once the bus is closed.
   */
  subscribe<T extends BusTopic>(topic: T, options: SubscribeOptions<T>): BusSubscription;
}

/** The sending side of a bus: what the authority (the one writer of each topic) needs. */
export interface BusPublisher {
  /** The topic's current sequence (0 before anything was published). */
  sequence(topic: BusTopic): number;
  /**
   * Appends an update, which must start at the topic's current sequence
   * (ERR_BUS_SEQUENCE_CONFLICT otherwise) and be well formed (ERR_BUS_MESSAGE_INVALID); every
   * subscriber gets it, in order. An update that carries nothing (from = to) only refreshes, like
   * a heartbeat.
   */
  publish<T extends BusTopic>(topic: T, update: BusUpdate<T>): void;
  /**
   * Replaces the topic's state with `snapshot`, when the publisher cannot continue with updates
   * (it starts, or the updates it would need were pruned). Its sequence must not be behind the
   * topic's (ERR_BUS_SEQUENCE_CONFLICT: a topic never goes back). Subscribers behind it get it.
   */
  publishSnapshot<T extends BusTopic>(topic: T, snapshot: BusSnapshot<T>): void;
  /**
   * The publisher's word that the topic still stands at its sequence as of `issuedAt` (unix
   * seconds); subscribers get a heartbeat message. An older `issuedAt` than the last is ignored.
   */
  heartbeat(topic: BusTopic, issuedAt: number): void;
}

/** A bus both sides of which live here: the in-process bus (and NATS JetStream, later). */
export interface Bus extends BusPublisher, BusSubscriber {
  /** Ends every subscription (`onEnd` with ERR_BUS_CLOSED); later calls throw ERR_BUS_CLOSED. */
  close(): void;
}
