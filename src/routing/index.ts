export {
  TransportType,
  MAX_ROUTE_HOPS,
  MAX_ADDRESS_LENGTH,
  isValidAddress,
  checkRoute,
  localAddress,
  prependAddress,
  stepRoute,
  addressEquals,
} from './address.js';
export type { Address, Route } from './address.js';
export {
  ENVELOPE_VERSION,
  MAX_PAYLOAD_BYTES,
  MAX_ENVELOPE_BYTES,
  checkEnvelope,
  encodeEnvelope,
  encodeEnvelopeHead,
  decodeEnvelope,
} from './envelope.js';
export type { Envelope } from './envelope.js';
export { parseRoute, formatRoute, RELAY_PREFIX, MAX_ROUTE_TEXT_LENGTH } from './route-text.js';
export { Router, DropReason } from './router.js';
export type {
  MessageContext,
  Worker,
  Transport,
  ConnectionEndpoint,
  ConnectionHandle,
  DropEvent,
  RouterOptions,
  SendOptions,
} from './router.js';
export { MemoryNetwork, MemoryTransport } from './memory-transport.js';
export type { FaultOptions, FaultStats, MemoryTransportOptions } from './memory-transport.js';
export { createSeededPrng } from './seeded-prng.js';
export { TcpTransport, TCP_PROTOCOL_VERSION, parseTcpPeer } from './tcp-transport.js';
export type { TcpTransportOptions, TcpListener } from './tcp-transport.js';
