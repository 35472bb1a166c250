// Serving a fetch handler (hono) on Node's http, as the node's HTTP sides do (the broker's, the
// admin API): bounded headers, a bound on receiving a request, and a close that gives requests
// in progress a grace period before cutting their connections.
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { createAdaptorServer } from '@hono/node-server';

/** A listening server. */
export interface ListeningHttp {
  /** `http://HOST:PORT`, as bound (IPv6 in brackets). */
  readonly url: string;
  readonly address: { readonly host: string; readonly port: number };
  /** Stops accepting, ends idle connections, and resolves once the server is closed. */
  close(): Promise<void>;
}

/** Listens on `host:port` (0: any free port); `graceMs` is what requests get to finish on close. */
export async function listenHttp(
  fetch: (request: Request) => Response | Promise<Response>,
  host: string,
  port: number,
  graceMs: number,
): Promise<ListeningHttp> {
  const server = createAdaptorServer({ fetch, hostname: host, port }) as Server;
  // Bounds receiving a request (not answering it: a live stream may stay open).
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  server.maxHeadersCount = 64;
  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error): void => {
      reject(error);
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  const hostText = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${hostText}:${bound.port}`,
    address: { host: bound.address, port: bound.port },
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        const cut = setTimeout(() => {
          server.closeAllConnections();
        }, graceMs);
        cut.unref();
        server.close((error) => {
          clearTimeout(cut);
          if (error === undefined) resolve();
          else reject(error);
        });
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}
