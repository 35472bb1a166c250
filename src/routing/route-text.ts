import { invalid } from '../core/internal.js';
import { MAX_ROUTE_HOPS, TransportType, type Address, type Route } from './address.js';

/**
 * The text form of a route, in the spirit of Ockam's multiaddrs (research/ockam.md §4.3); the
 * grammar is in docs/spec/routing.md:
 *
 *   /ip4/127.0.0.1/tcp/4000/service/echo
 *   /ip4/127.0.0.1/tcp/4100/relay/NAME/service/echo
 *
 * `/relay/NAME` is the local address `forward_to_NAME` (Ockam's relay worker prefix), so
 * `/service/forward_to_x` formats back as `/relay/x`. Anything outside the grammar is
 * `ERR_ROUTE_SYNTAX`; formatting an address the grammar cannot express is too.
 */
export const RELAY_PREFIX = 'forward_to_';
export const MAX_ROUTE_TEXT_LENGTH = 4096;

const NAME = /^[A-Za-z0-9._~-]{1,128}$/;
const OCTET = /^(?:0|[1-9][0-9]{0,2})$/;
const PORT = /^[1-9][0-9]{0,4}$/;
const LABEL = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;

const syntax = (message: string): never => {
  throw invalid('ERR_ROUTE_SYNTAX', message);
};

function isIpv4(text: string): boolean {
  const parts = text.split('.');
  return parts.length === 4 && parts.every((p) => OCTET.test(p) && Number(p) <= 255);
}

/** RFC 1123 host name; the last label is not all digits, so it never reads as an IPv4 address. */
function isHostname(text: string): boolean {
  if (text.length > 253) return false;
  const labels = text.split('.');
  const last = labels[labels.length - 1] ?? '';
  return labels.every((l) => LABEL.test(l)) && !/^[0-9]+$/.test(last);
}

function isPort(text: string): boolean {
  return PORT.test(text) && Number(text) <= 65535;
}

/**
 * A route from its text form (`/ip4/127.0.0.1/tcp/4000/service/api`, `/node/n1/relay/bob`);
 * throws `ERR_ROUTE_SYNTAX` for text that is not one.
 *
 * @example
 * ```ts
 * const route = parseRoute('/ip4/127.0.0.1/tcp/4000/service/api');
 * ```
 */
export function parseRoute(text: string): Route {
  if (text.length > MAX_ROUTE_TEXT_LENGTH) {
    syntax(`route text is ${text.length} characters, at most ${MAX_ROUTE_TEXT_LENGTH} allowed`);
  }
  if (!text.startsWith('/')) syntax('route text must start with `/`');
  const parts = text.slice(1).split('/');
  const route: Address[] = [];
  let i = 0;
  const take = (what: string): string => {
    const part = parts[i++];
    if (part === undefined || part === '') syntax(`route text lacks ${what}`);
    return part ?? '';
  };
  while (i < parts.length) {
    const protocol = take('a protocol');
    switch (protocol) {
      case 'ip4':
      case 'dnsaddr': {
        const host = take(`the ${protocol} host`);
        if (protocol === 'ip4' ? !isIpv4(host) : !isHostname(host)) {
          syntax(`\`${host}\` is not a valid ${protocol} host`);
        }
        if (take('`/tcp`') !== 'tcp') syntax(`\`/${protocol}/${host}\` must be followed by /tcp`);
        const port = take('the tcp port');
        if (!isPort(port)) syntax(`\`${port}\` is not a port from 1 to 65535`);
        route.push({ type: TransportType.tcp, value: `${host}:${port}` });
        break;
      }
      case 'service':
      case 'relay':
      case 'memory': {
        const name = take(`the ${protocol} name`);
        if (!NAME.test(name)) syntax(`\`${name}\` is not a valid ${protocol} name`);
        if (protocol === 'memory') route.push({ type: TransportType.memory, value: name });
        else {
          const value = protocol === 'relay' ? RELAY_PREFIX + name : name;
          if (value.length > 128) syntax(`relay name \`${name}\` is too long`);
          route.push({ type: TransportType.local, value });
        }
        break;
      }
      default:
        syntax(`unknown route protocol \`${protocol}\``);
    }
    if (route.length > MAX_ROUTE_HOPS) syntax(`route text has more than ${MAX_ROUTE_HOPS} hops`);
  }
  return route;
}

function formatAddress(address: Address): string {
  switch (address.type) {
    case TransportType.local: {
      if (!NAME.test(address.value)) break;
      const relay = address.value.startsWith(RELAY_PREFIX)
        ? address.value.slice(RELAY_PREFIX.length)
        : undefined;
      return relay !== undefined && relay !== '' ? `/relay/${relay}` : `/service/${address.value}`;
    }
    case TransportType.tcp: {
      const colon = address.value.lastIndexOf(':');
      const host = address.value.slice(0, colon);
      const port = address.value.slice(colon + 1);
      if (colon < 0 || !isPort(port)) break;
      if (isIpv4(host)) return `/ip4/${host}/tcp/${port}`;
      if (isHostname(host)) return `/dnsaddr/${host}/tcp/${port}`;
      break;
    }
    case TransportType.memory:
      if (NAME.test(address.value)) return `/memory/${address.value}`;
      break;
  }
  return syntax(`address of type ${address.type} has no text form`);
}

/**
 * The text form of `route` (what {@link parseRoute} reads); throws `ERR_ROUTE_SYNTAX` for an empty or too long route.
 */
export function formatRoute(route: Route): string {
  if (route.length === 0) syntax('an empty route has no text form');
  if (route.length > MAX_ROUTE_HOPS) syntax(`route has more than ${MAX_ROUTE_HOPS} hops`);
  return route.map(formatAddress).join('');
}
