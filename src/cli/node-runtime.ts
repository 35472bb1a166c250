import { invalid, type LogFields, type Logger } from '../core/index.js';
import {
  formatRoute,
  localAddress,
  parseRoute,
  parseTcpPeer,
  RELAY_PREFIX,
  TransportType,
  type Route,
  type TcpTransport,
} from '../routing/index.js';

// What the commands that run or reach a node share: a stderr logger, waiting for a signal,
// listening, and turning route text into a route that starts with a TCP connection.

/** The local address of a node's secure-channel listener. */
export const API = 'api';

/** Logs to stderr, one line per event: `level message key=value …`. */
export function stderrLogger(): Logger {
  const line = (level: string, message: string, fields?: LogFields): void => {
    const rest = Object.entries(fields ?? {})
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${String(v)}`)
      .join(' ');
    process.stderr.write(`${level} ${message}${rest === '' ? '' : ` ${rest}`}\n`);
  };
  return {
    debug: () => undefined,
    info: (message, fields) => {
      line('info', message, fields);
    },
    warn: (message, fields) => {
      line('warn', message, fields);
    },
    error: (message, fields) => {
      line('error', message, fields);
    },
  };
}

/** Resolves on the first SIGINT or SIGTERM. */
export function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    const on = (signal: string): void => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(signal);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

/**
 * Listens on `host:port` text; returns the bound address and, when it has one, the route text
 * others dial (`/ip4/H/tcp/P`; none for a wildcard host such as 0.0.0.0).
 */
export async function listenTcp(
  transport: TcpTransport,
  text: string,
): Promise<{ address: string; route: string | undefined }> {
  const { host, port } = parseTcpPeer(text);
  const listener = await transport.listen({ host, port });
  const address = `${listener.host}:${String(listener.port)}`;
  let route: string | undefined;
  if (listener.host !== '0.0.0.0') {
    try {
      route = formatRoute([{ type: TransportType.tcp, value: address }]);
    } catch {
      route = undefined; // an IPv6 host has no route text yet
    }
  }
  return { address, route };
}

/** Route text whose first hop is a TCP address (`/ip4/…/tcp/…` or `/dnsaddr/…/tcp/…`). */
export function parseDialRoute(text: string): Route {
  const route = parseRoute(text);
  if (route[0]?.type !== TransportType.tcp) {
    throw invalid('ERR_ARGUMENT_INVALID', `route \`${text}\` must start with /ip4 or /dnsaddr`);
  }
  return route;
}

/** A route whose first hop is a TCP address, with that hop replaced by a connection. */
export function connectRoute(transport: TcpTransport, text: string): Route {
  const route = parseDialRoute(text);
  const first = route[0];
  if (first === undefined) return route; // parseDialRoute saw to it
  return [localAddress(transport.connect(first.value)), ...route.slice(1)];
}

/** The route to a node's channel listener: `api` is added unless the route names a service. */
export function toListener(route: Route): Route {
  const last = route[route.length - 1];
  const namesService =
    last?.type === TransportType.local && !last.value.startsWith(RELAY_PREFIX) && route.length > 1;
  return namesService ? route : [...route, localAddress(API)];
}
