// Health and readiness over loopback HTTP (docs/spec/node.md §4): `/healthz` answers while the
// process serves at all, `/readyz` answers 200 only while every part of the node is ready.
import { Hono } from 'hono';
import type { NodeHealth } from './lifecycle.js';
import { serveHttp, type HttpServer } from './http-server.js';

/** The paths the health server answers. */
export const HealthPath = { live: '/healthz', ready: '/readyz' } as const;

/**
 * Serves `health()` at `host:port`: `GET /healthz` is 200 with the node's state and its parts'
 * names until the node has stopped; `GET /readyz` is 200 with every part's readiness when all are
 * ready, 503 with the same body otherwise. Anything else is 404. Nothing secret is in either.
 */
export function startHealthHttp(
  listen: { readonly host: string; readonly port: number },
  health: () => NodeHealth,
): Promise<HttpServer> {
  const app = new Hono();
  app.get(HealthPath.live, (c) => {
    const now = health();
    const live = now.state !== 'stopped';
    return c.json(
      { status: live ? 'ok' : 'stopped', state: now.state, parts: Object.keys(now.parts) },
      live ? 200 : 503,
    );
  });
  app.get(HealthPath.ready, (c) => {
    const now = health();
    return c.json({ ready: now.ready, state: now.state, parts: now.parts }, now.ready ? 200 : 503);
  });
  app.notFound((c) => c.json({ error: 'not found' }, 404));
  return serveHttp(app, listen);
}
