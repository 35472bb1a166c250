// The node's HTTP servers (the broker's token side, health and readiness, the admin API): a Hono app on
// @hono/node-server with bounded request and header times, and a close that lets requests in
// progress finish for a moment before their connections are cut.
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type { Hono } from 'hono';
import { createAdaptorServer } from '@hono/node-server';
import { listenError } from '../routing/internal.js';

/** How long requests in progress may take once a close has begun (default). */
const CLOSE_GRACE_MS = 2_000;

/** A listening HTTP server. */
export interface HttpServer {
  /** `http://HOST:PORT`, as bound. */
  readonly url: string;
  readonly address: { readonly host: string; readonly port: number };
  /** Stops accepting, ends idle connections, and resolves once the server is closed. */
  close(): Promise<void>;
}

/**
 * Serves `app` at `host:port` (port 0: any free port); rejects when it cannot bind, with the
 * transport's typed listen errors. `graceMs` is what requests in progress get to finish on close
 * (default 2 s).
 */
export async function serveHttp(
  app: Pick<Hono, 'fetch'> | { readonly fetch: (request: Request) => Response | Promise<Response> },
  listen: { readonly host: string; readonly port: number },
  options: { readonly graceMs?: number } = {},
): Promise<HttpServer> {
  const { host, port } = listen;
  const server = createAdaptorServer({ fetch: app.fetch, hostname: host, port }) as Server;
  // Bounds receiving a request (not answering it: a live stream may stay open).
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  server.maxHeadersCount = 64;
  await new Promise<void>((resolve, reject) => {
    // A taken port is `ERR_TRANSPORT_ADDRESS_IN_USE`, as for the node's TCP listener.
    const onError = (error: NodeJS.ErrnoException): void => {
      reject(listenError(host, port, error));
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
        }, options.graceMs ?? CLOSE_GRACE_MS);
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
