/**
 * The credential-injecting egress proxy's overhead per request, next to a direct request to the
 * same upstream in the same run (`node --import tsx bench/run.ts --only proxy`). Everything runs
 * in this process: a local upstream HTTP server (hono on node) that checks the injected header,
 * the broker's egress service and the agent's local proxy joined by a secure channel over the
 * memory transport, and a keep-alive HTTP client. Through the proxy a request crosses the local
 * proxy (HTTP), the channel both ways (encrypt, route, decrypt), the lease lookup, the secret
 * read, the rewrite, a fresh upstream connection (the proxy pools none), and the streaming
 * scrub of the response. A deployment adds the TCP hop between the agent's machine and the
 * broker's.
 */
import { Agent, request } from 'node:http';
import { agentRequests, leasedUpstream } from '../test/helpers/egress-world.js';
import { group, row, type TableRow } from './harness.js';

const SECRET = 'sk_live_bench_0123456789abcdef';

/** GET through `agent` to `port`; resolves with the body's length, rejects unless 200. */
function get(
  agent: Agent,
  port: number,
  path: string,
  headers: Record<string, string> = {},
): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent, headers }, (res) => {
      let bytes = 0;
      res.on('data', (chunk: Buffer) => (bytes += chunk.length));
      res.on('end', () => {
        if (res.statusCode === 200) resolve(bytes);
        else reject(new Error(`status ${String(res.statusCode)}`));
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

export async function proxyBenchmarks(): Promise<TableRow[]> {
  const small = 'a'.repeat(1024);
  const large = 'b'.repeat(256 * 1024);
  const { upstream, agent, close } = await leasedUpstream(SECRET, (hit) =>
    hit.headers['authorization'] === `Bearer ${SECRET}` ||
    hit.headers['authorization'] === 'Bearer direct'
      ? new Response(hit.path === '/large' ? large : small)
      : new Response('no', { status: 401 }),
  );
  // The agent is a child process in the tests; here the client is in process, to time requests.
  const check = await agentRequests(agent.proxy.port, [{ url: `http://${upstream.host}/small` }]);
  if (check.responses[0]?.status !== 200) throw new Error('the bench proxy does not inject');
  const upstreamPort = Number(upstream.host.split(':')[1]);
  const direct = new Agent({ keepAlive: true, maxSockets: 1 });
  const viaProxy = new Agent({ keepAlive: true, maxSockets: 1 });
  const directGet = (path: string) =>
    get(direct, upstreamPort, path, { authorization: 'Bearer direct' });
  const proxyGet = (path: string) =>
    get(viaProxy, agent.proxy.port, `http://${upstream.host}${path}`);
  try {
    const results = await group('proxy')
      .add('direct-small', () => directGet('/small'), {
        label: 'direct request, 1 KiB answer (keep-alive)',
      })
      .add('proxy-small', () => proxyGet('/small'), {
        label: 'through the egress proxy, 1 KiB answer',
      })
      .add('direct-large', () => directGet('/large'), {
        label: 'direct request, 256 KiB answer (keep-alive)',
      })
      .add('proxy-large', () => proxyGet('/large'), {
        label: 'through the egress proxy, 256 KiB answer (scrubbed)',
      })
      .run({ rounds: 5, roundMs: 800, warmupMs: 300, batchMs: 100 });
    return [
      row(results, 'direct-small'),
      row(results, 'proxy-small', { baseline: 'direct-small' }),
      row(results, 'direct-large'),
      row(results, 'proxy-large', { baseline: 'direct-large' }),
    ];
  } finally {
    direct.destroy();
    viaProxy.destroy();
    await close();
  }
}
