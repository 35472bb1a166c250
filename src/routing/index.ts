// The public API of `mandate/routing`: the router and its workers, addresses and routes (with
// their text form), and the TCP and in-memory transports. Envelope codecs and limits the
// channel layer needs are in ./internal.ts (not exported by the package).
export { TransportType, localAddress } from './address.js';
export type { Address, Route } from './address.js';
export type { Envelope } from './envelope.js';
export { parseRoute, formatRoute } from './route-text.js';
export { Router, DropReason } from './router.js';
export type {
  MessageContext,
  Worker,
  Transport,
  ConnectionEndpoint,
  ConnectionHandle,
  DropEvent,
  RegisterWorkerOptions,
  RouterOptions,
  SendOptions,
} from './router.js';
export { MemoryNetwork, MemoryTransport } from './memory-transport.js';
export type { FaultOptions, FaultStats, MemoryTransportOptions } from './memory-transport.js';
export { TcpTransport } from './tcp-transport.js';
export type { TcpTransportOptions, TcpListener } from './tcp-transport.js';
