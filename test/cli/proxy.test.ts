import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/core/index.js';
import { ChainVerifier, decodeChain } from '../../src/credentials/index.js';
import {
  prepareChannelIdentity,
  SecureChannelListener,
  TrustPolicies,
} from '../../src/channel/index.js';
import { Router, TcpTransport } from '../../src/routing/index.js';
import { ProxyLeaseProvider } from '../../src/broker/index.js';
import { EgressProxyService } from '../../src/node/index.js';
import { openHome } from '../../src/cli/home.js';
import { readBytesArgument } from '../../src/cli/input.js';
import { freePort, killChildren, startMandate } from '../helpers/processes.js';
import { authorityHome, run } from '../helpers/cli.js';
import {
  agentRequests,
  MapSecretReader,
  RecordingAuditSink,
  upstreamServer,
} from '../helpers/egress-world.js';

// `mandate proxy` as a child process: a broker node runs in this process (a TCP listener, the
// egress service and a proxy lease provider, with identities from the same home), the proxy
// command opens its channel to it, and the agent — another child process — calls an upstream
// through the proxy without ever holding the secret.

const SECRET = 'sk_live_cli_proxy_0123456789';
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  await killChildren();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('mandate proxy', () => {
  it('forwards the agent’s requests to the broker, which injects for leased hosts only', async () => {
    const { home, issue } = await authorityHome('mandate-proxy', ['broker', 'billing']);
    const brokerCred = await issue('broker', 'role=broker');
    const billingCred = await issue('billing', 'role=billing');
    const upstream = await upstreamServer((hit) =>
      hit.headers['authorization'] === `Bearer ${SECRET}`
        ? new Response(`hello ${hit.headers['authorization']}`)
        : new Response('no', { status: 401 }),
    );
    cleanups.push(upstream.close);

    // The broker node.
    const h = await openHome(home);
    cleanups.push(() => {
      h.close();
    });
    const now = systemClock.nowSeconds();
    const authorities = await h.trustedAuthorities();
    const broker = await h.identities.get('broker');
    const router = new Router();
    cleanups.push(() => router.close());
    const transport = new TcpTransport(router);
    const listening = await transport.listen({ host: '127.0.0.1', port: 0 });
    const listenerOptions = {
      ...(await prepareChannelIdentity(h.vault, {
        identity: broker.identity,
        primaryKeyId: broker.primaryKeyId!,
        credentials: [decodeChain(readBytesArgument(brokerCred, 'credential')).root],
        nowSeconds: now,
      })),
      verify: { authorities, trustPolicy: TrustPolicies.credentialHolder() },
      deliverTo: ['egress'],
    };
    let listener = new SecureChannelListener(router, listenerOptions);
    cleanups.push(() => listener.close());
    router.allowFromAnyConnection('api');
    const provider = new ProxyLeaseProvider({
      secrets: new MapSecretReader(new Map([['payments', SECRET]])),
      bindings: [
        {
          secret: 'payments',
          host: upstream.host,
          scheme: 'http',
          header: { name: 'authorization', format: 'Bearer {secret}' },
        },
      ],
    });
    const audit = new RecordingAuditSink();
    const service = new EgressProxyService(router, { provider, audit });
    cleanups.push(() => service.close());

    // The billing agent's lease, as the broker grants it after its decision.
    const billing = await h.identities.get('billing');
    const chain = new ChainVerifier({ authorities }).verify(
      readBytesArgument(billingCred, 'credential'),
      { nowSeconds: now, presenter: billing.identity.identifier },
    );
    await provider.issue({
      leaseId: `lease_${'1'.repeat(32)}`,
      holder: billing.identity.identifier,
      chain,
      resource: 'payments',
      scope: [],
      nowSeconds: now,
      expiresAt: now + 600,
    });

    const port = await freePort();
    const proxy = startMandate(
      home,
      'proxy',
      '--broker',
      `/ip4/127.0.0.1/tcp/${String(listening.port)}`,
      '--identity',
      'billing',
      '--credential',
      billingCred,
      '--listen',
      `127.0.0.1:${String(port)}`,
    );
    await proxy.waitFor(/proxy: listening/, 15_000);
    const { responses, raw } = await agentRequests(port, [
      { url: `http://${upstream.host}/v1/balance` },
      { url: 'http://127.0.0.1:9/elsewhere' },
    ]);
    expect(responses.map((r) => r.status)).toEqual([200, 403]);
    expect(responses[0]!.body).toBe('hello Bearer [mandate-redacted]');
    expect(raw).not.toContain(SECRET);
    expect(upstream.hits.map((hit) => hit.headers['authorization'])).toEqual([`Bearer ${SECRET}`]);
    expect(audit.events.map((e) => e.event)).toEqual(['used']);
    expect(proxy.stderr()).not.toContain(SECRET);

    // The broker's listener restarts: its channels close, and the proxy — still running — opens
    // a new one for the next request.
    await listener.close();
    listener = new SecureChannelListener(router, listenerOptions);
    router.allowFromAnyConnection('api');
    await proxy.waitFor(/the channel to the broker closed/, 10_000);
    const again = await agentRequests(port, [{ url: `http://${upstream.host}/v1/balance` }]);
    expect(again.responses.map((r) => r.status)).toEqual([200]);
    expect(proxy.stderr()).toMatch(/the channel to the broker is open again/);
    expect(await proxy.stop('SIGTERM')).toBe(0);
  }, 45_000);

  it('listens on loopback only', async () => {
    const { home } = await authorityHome('mandate-proxy-listen', ['billing']);
    const r = await run(
      '--home',
      home,
      'proxy',
      '--broker',
      '/ip4/127.0.0.1/tcp/9',
      '--identity',
      'billing',
      '--listen',
      '0.0.0.0:8480',
    );
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('ERR_ARGUMENT_INVALID');
  });
});
