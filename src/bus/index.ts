// The public API of `mandate/bus`: distribution of the authority's deny-set and policy bundles
// to running nodes (DESIGN.md §2, docs/spec/policy.md §3). The interface (`Bus`, its publisher and
// subscriber sides, the topics and their messages), the in-process bus, the follower that keeps a
// `DenySet` in step with a bus, and the wire form of a bus message. The authority's service over
// secure channels and its client live in `node`.
export { BusTopic } from './types.js';
export type {
  Bus,
  BusMessage,
  BusPublisher,
  BusSnapshot,
  BusSubscriber,
  BusSubscription,
  BusTopicTypes,
  BusUpdate,
  BundleSnapshot,
  BundleUpdate,
  PublishedBundle,
  SubscribeOptions,
} from './types.js';
export { InProcessBus, DEFAULT_MAX_QUEUED, DEFAULT_RETAINED_SEQUENCES } from './in-process-bus.js';
export type { InProcessBusOptions } from './in-process-bus.js';
export { DenySetFollower } from './deny-set-follower.js';
export type { DenySetFollowerOptions, SequencedDenyEntry } from './deny-set-follower.js';
export { encodeBusMessage, decodeBusMessage, MAX_BUS_MESSAGE_BYTES } from './codec.js';
export type { DecodedBusMessage } from './codec.js';
export { MAX_BUNDLE_BYTES } from './topics.js';
