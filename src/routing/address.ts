import { invalid } from '../core/internal.js';

/**
 * An address names one hop: a transport type (Ockam's `[transport_type: u8, bytes]`, DESIGN.md §2
 * and research/ockam.md §4.3) and a value the transport understands. Local addresses (type 0) name
 * workers registered with a router; other types name a peer the transport of that type reaches.
 */
export const TransportType = {
  /** A worker (or a connection endpoint) inside this router. */
  local: 0,
  /** A TCP peer, value `host:port`. */
  tcp: 1,
  /** A listener of an in-process MemoryNetwork (tests), value its name. */
  memory: 128,
} as const;
export type TransportType = (typeof TransportType)[keyof typeof TransportType];

/**
 * One hop of a route: a transport type and a value (a local worker name, a TCP `host:port`, …).
 */
export interface Address {
  /** 0–255; see TransportType. */
  readonly type: number;
  /** 1–255 printable ASCII characters (0x21–0x7e), no spaces. */
  readonly value: string;
}

/** An ordered list of addresses; the first is the next hop. */
export type Route = readonly Address[];

export const MAX_ROUTE_HOPS = 16;
export const MAX_ADDRESS_LENGTH = 255;

const ADDRESS_VALUE = /^[\x21-\x7e]{1,255}$/;

/** Whether `address` is well formed (type a byte, value 1–255 printable ASCII). */
export function isValidAddress(address: Address): boolean {
  return (
    Number.isInteger(address.type) &&
    address.type >= 0 &&
    address.type <= 255 &&
    ADDRESS_VALUE.test(address.value)
  );
}

/** Throws `ERR_ROUTE_INVALID` unless every address is well formed and there are at most 16. */
export function checkRoute(route: Route, what: string): Route {
  if (route.length > MAX_ROUTE_HOPS) {
    throw invalid('ERR_ROUTE_INVALID', `${what} has ${route.length} hops, at most 16 allowed`);
  }
  for (const address of route) {
    if (!isValidAddress(address)) {
      throw invalid('ERR_ROUTE_INVALID', `${what} holds an invalid address`);
    }
  }
  return route;
}

/**
 * The local address `value` (a worker or connection on this router); throws `ERR_ROUTE_INVALID`
 * unless it is 1–255 printable ASCII characters.
 */
export function localAddress(value: string): Address {
  const address = { type: TransportType.local, value };
  if (!isValidAddress(address)) {
    throw invalid('ERR_ROUTE_INVALID', `local address \`${value}\` is not 1–255 printable ASCII`);
  }
  return address;
}

/** `[address, ...route]`. */
export function prependAddress(address: Address, route: Route): Route {
  return [address, ...route];
}

/** Splits a route into its next hop and the rest; `ERR_ROUTE_INVALID` if it is empty. */
export function stepRoute(route: Route): { readonly next: Address; readonly rest: Route } {
  const next = route[0];
  if (next === undefined) throw invalid('ERR_ROUTE_INVALID', 'route is empty');
  return { next, rest: route.slice(1) };
}
