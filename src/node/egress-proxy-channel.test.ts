import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { egressWorld, upstreamServer } from '../../test/helpers/egress-world.js';

// The egress proxy's channel to the broker and its fairness: a closed channel answers the
// requests waiting on it at once (not after the 30 s silence), the proxy reopens it for the next
// request when it can, and one agent cannot take every request slot of the service.

const SECRET = 'sk_live_payments_0123456789abcdef';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Answer {
  readonly status: number;
  readonly error: string | undefined;
  readonly body: string;
}

/** One absolute-form GET through a local proxy, as an agent's HTTP client sends it. */
function viaProxy(port: number, url: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method: 'GET', path: url, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const error = res.headers['x-mandate-error'];
          resolve({
            status: res.statusCode ?? 0,
            error: typeof error === 'string' ? error : undefined,
            body: Buffer.concat(chunks).toString(),
          });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++)
    await new Promise((resolve) => setTimeout(resolve, 10));
  expect(condition()).toBe(true);
}

/** An upstream that holds every request until `release()`, then answers 200 `ok`. */
async function heldUpstream() {
  let releases: (() => void)[] = [];
  const upstream = await upstreamServer(
    () =>
      new Promise<Response>((resolve) => {
        releases.push(() => {
          resolve(new Response('ok'));
        });
      }),
  );
  const release = (): void => {
    for (const r of releases.splice(0)) r();
  };
  cleanups.push(async () => {
    release();
    releases = [];
    await upstream.close();
  });
  return { upstream, release };
}

async function world(
  host: string,
  service: { maxPendingRequests?: number; maxPendingRequestsPerHolder?: number } = {},
) {
  const w = await egressWorld({
    secrets: { payments: SECRET },
    bindings: [
      {
        secret: 'payments',
        host,
        scheme: 'http',
        header: { name: 'authorization', format: 'Bearer {secret}' },
      },
    ],
    service,
  });
  cleanups.push(() => w.close());
  return w;
}

describe('the egress proxy and its channel to the broker', () => {
  it('answers a request waiting on a channel that closes at once, with ERR_PROXY_CHANNEL_CLOSED', async () => {
    const { upstream, release } = await heldUpstream();
    const w = await world(upstream.host);
    const agent = await w.agent('billing');
    await agent.lease('payments');
    const pending = viaProxy(agent.proxy.port, `http://${upstream.host}/slow`);
    await until(() => upstream.hits.length === 1);
    // The broker stops: its listener closes the channel and tells the agent.
    await w.restartListener();
    const answer = await pending;
    expect(answer.status).toBe(502);
    expect(answer.error).toBe('ERR_PROXY_CHANNEL_CLOSED');
    expect(answer.body).not.toContain(SECRET);
    // Without a way to reopen, every later request is refused the same way, without waiting.
    const later = await viaProxy(agent.proxy.port, `http://${upstream.host}/again`);
    expect(later.error).toBe('ERR_PROXY_CHANNEL_CLOSED');
    expect(upstream.hits).toHaveLength(1);
    release();
  });

  it('opens a new channel for the next request after the broker restarted', async () => {
    const upstream = await upstreamServer(
      (hit) => new Response(hit.headers['authorization'] === `Bearer ${SECRET}` ? 'ok' : 'no'),
    );
    cleanups.push(() => upstream.close());
    const w = await world(upstream.host);
    const agent = await w.agent('billing', { reopen: true });
    await agent.lease('payments');
    const before = await viaProxy(agent.proxy.port, `http://${upstream.host}/one`);
    expect(before).toMatchObject({ status: 200, body: 'ok' });
    await w.restartListener();
    // The close reaches the agent's side; the next request goes over a new channel.
    const after = await viaProxy(agent.proxy.port, `http://${upstream.host}/two`);
    expect(after).toMatchObject({ status: 200, body: 'ok' });
    expect(upstream.hits.map((h) => h.path)).toEqual(['/one', '/two']);
  });

  it('keeps one agent from taking every request slot of the service', async () => {
    const { upstream, release } = await heldUpstream();
    const w = await world(upstream.host, { maxPendingRequests: 8, maxPendingRequestsPerHolder: 2 });
    const greedy = await w.agent('greedy');
    const other = await w.agent('other');
    await greedy.lease('payments');
    await other.lease('payments');
    const held = [
      viaProxy(greedy.proxy.port, `http://${upstream.host}/g1`),
      viaProxy(greedy.proxy.port, `http://${upstream.host}/g2`),
    ];
    await until(() => upstream.hits.length === 2);
    const third = await viaProxy(greedy.proxy.port, `http://${upstream.host}/g3`);
    expect(third).toMatchObject({ status: 503, error: 'ERR_PROXY_BUSY' });
    // Another agent still gets through while the greedy one is at its cap.
    const others = viaProxy(other.proxy.port, `http://${upstream.host}/o1`);
    await until(() => upstream.hits.length === 3);
    release();
    expect((await others).status).toBe(200);
    for (const answer of await Promise.all(held)) expect(answer.status).toBe(200);
    // Its slots are free again once its requests are answered.
    const freed = viaProxy(greedy.proxy.port, `http://${upstream.host}/g4`);
    await until(() => upstream.hits.length === 4);
    release();
    expect((await freed).status).toBe(200);
    expect(upstream.hits.map((h) => h.path).sort()).toEqual(['/g1', '/g2', '/g4', '/o1']);
  });
});
