import { execFile } from 'node:child_process';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { ManualClock, systemClock } from '../../src/core/index.js';
import { notFound } from '../../src/core/internal.js';
import {
  ChainVerifier,
  chainFromCredential,
  constraintsToAttributes,
  issueCredential,
  parseConstraint,
} from '../../src/credentials/index.js';
import { channelWorld } from './channel-world.js';
import {
  openSecureChannel,
  prepareChannelIdentity,
  SecureChannelListener,
  TrustPolicies,
} from '../../src/channel/index.js';
import { localAddress, MemoryNetwork, MemoryTransport, Router } from '../../src/routing/index.js';
import {
  ProxyLeaseProvider,
  type InjectionBindingConfig,
  type Lease,
  type LeaseAuditSink,
  type SecretReader,
} from '../../src/broker/index.js';
import {
  EgressProxyService,
  startLocalEgressProxy,
  type EgressEvent,
  type EgressProxyServiceOptions,
} from '../../src/node/index.js';

// The egress proxy end to end in one process but for the agent: a broker node (listener,
// egress service, proxy lease provider over an in-memory secret reader), agent nodes with their
// own vaults and secure channels to it over the memory transport, each with its agent-side
// local proxy, and local upstream HTTP servers. The agent itself is a child process
// (`agentRequests`) that only ever talks to its local proxy.

/** The sealed store's reading side over a map (brokercore's SecretStore in production). */
export class MapSecretReader implements SecretReader {
  readonly handedOut: Uint8Array[] = [];
  constructor(readonly values: Map<string, string>) {}
  read(name: string): Promise<Uint8Array> {
    const value = this.values.get(name);
    if (value === undefined)
      return Promise.reject(notFound('ERR_SECRET_NOT_FOUND', `no secret \`${name}\``));
    const bytes = new TextEncoder().encode(value);
    this.handedOut.push(bytes);
    return Promise.resolve(bytes);
  }
}

export interface UpstreamHit {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** A local upstream HTTP server (hono on node): records every request and answers with `answer`. */
export async function upstreamServer(
  answer: (hit: UpstreamHit) => Response | Promise<Response>,
  /** Serve HTTPS with this key and certificate (PEM). */
  tls?: { readonly key: string; readonly cert: string },
): Promise<{ host: string; hits: UpstreamHit[]; close: () => Promise<void> }> {
  const hits: UpstreamHit[] = [];
  const server = await new Promise<ServerType>((resolve) => {
    const s = serve(
      {
        hostname: '127.0.0.1',
        port: 0,
        ...(tls === undefined ? {} : { createServer: createHttpsServer, serverOptions: tls }),
        fetch: async (request) => {
          const url = new URL(request.url);
          const headers: Record<string, string> = {};
          request.headers.forEach((v, k) => (headers[k] = v));
          const hit = {
            method: request.method,
            path: `${url.pathname}${url.search}`,
            headers,
            body: await request.text(),
          };
          hits.push(hit);
          return answer(hit);
        },
      },
      () => {
        resolve(s);
      },
    );
  });
  const port = (server.address() as AddressInfo).port;
  return {
    host: `127.0.0.1:${String(port)}`,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
        if ('closeAllConnections' in server) server.closeAllConnections();
      }),
  };
}

export interface AgentRequest {
  readonly method?: string;
  /** Absolute URL (absolute-form through the proxy), or with `origin` the Host to send. */
  readonly url: string;
  readonly origin?: boolean;
  readonly headers?: Record<string, string>;
  readonly body?: string;
  /** A body of this many `y` bytes, made in the agent (too long for its argv). */
  readonly bodyBytes?: number;
}

export interface AgentResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[]>;
  readonly body: string;
}

/**
 * The agent: a child process, given only its proxy's port and (if any) a placeholder in its
 * environment, that makes each request through the proxy with node:http and prints what it got
 * back. Returns what it printed, parsed, and the raw output.
 */
export async function agentRequests(
  proxyPort: number,
  requests: readonly AgentRequest[],
  env: Record<string, string> = {},
): Promise<{ responses: AgentResponse[]; raw: string }> {
  const script = `
    import http from 'node:http';
    const requests = JSON.parse(process.argv[1]);
    const out = [];
    for (const r of requests) {
      const url = new URL(r.url);
      const headers = { ...(r.headers ?? {}) };
      if (r.origin) headers.host = url.host;
      out.push(await new Promise((resolve, reject) => {
        const req = http.request({
          host: '127.0.0.1', port: Number(process.env.PROXY_PORT), method: r.method ?? 'GET',
          path: r.origin ? url.pathname + url.search : r.url, headers, agent: false,
        }, (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('latin1') }));
          res.on('error', reject);
        });
        req.on('error', (e) => resolve({ status: 0, headers: {}, body: String(e.code) }));
        req.end(r.bodyBytes === undefined ? r.body : 'y'.repeat(r.bodyBytes));
      }));
    }
    process.stdout.write(JSON.stringify(out));
  `;
  const raw = await new Promise<string>((resolve, reject) => {
    execFile(
      process.execPath,
      ['--input-type=module', '-e', script, JSON.stringify(requests)],
      {
        // Only what an agent under the proxy has: no secret anywhere in its environment.
        env: { PATH: process.env['PATH'] ?? '', PROXY_PORT: String(proxyPort), ...env },
        maxBuffer: 64 * 1024 * 1024,
      },
      (error, stdout) => {
        if (error === null) resolve(stdout);
        else reject(new Error(`the agent failed: ${error.message}`));
      },
    );
  });
  return { responses: JSON.parse(raw) as AgentResponse[], raw };
}

/** Records lease events. */
export class RecordingAuditSink implements LeaseAuditSink {
  readonly events: { leaseId: string; event: string; at: number }[] = [];
  record(event: Parameters<LeaseAuditSink['record']>[0]): Promise<void> {
    this.events.push({ leaseId: event.lease.id, event: event.event, at: event.at });
    return Promise.resolve();
  }
}

/** The broker node and a way to add agents with channels and local proxies. */
export async function egressWorld(options: {
  readonly secrets: Record<string, string>;
  readonly bindings: readonly InjectionBindingConfig[];
  readonly service?: Partial<EgressProxyServiceOptions>;
}) {
  const cleanups: (() => Promise<void> | void)[] = [];
  const now = systemClock.nowSeconds();
  /** The broker's clock for lease expiry (the channels use the system clock). */
  const clock = new ManualClock(now);
  // The authority and its issuer (the identities' clock is fixed at `now`: nothing here rotates).
  const { vault, identities, authority: issuer, authorities } = await channelWorld(now);
  const verifier = new ChainVerifier({ authorities });
  const network = new MemoryNetwork();

  const brokerRouter = new Router();
  const brokerTransport = new MemoryTransport(brokerRouter, network);
  brokerTransport.listen('broker');
  cleanups.push(() => brokerTransport.close());
  const brokerLocal = await identities.create({ name: 'broker' });
  const listenerOptions = {
    ...(await prepareChannelIdentity(vault, {
      identity: brokerLocal.identity,
      primaryKeyId: brokerLocal.primaryKeyId,
      nowSeconds: now,
    })),
    verify: { authorities, trustPolicy: TrustPolicies.anyIdentity() },
    deliverTo: ['egress'],
  };
  let listener = new SecureChannelListener(brokerRouter, listenerOptions);
  brokerRouter.allowFromAnyConnection('api');
  cleanups.push(() => listener.close());
  /** The broker's listener stops (closing every channel, telling the agents) and starts again. */
  const restartListener = async (): Promise<void> => {
    await listener.close();
    listener = new SecureChannelListener(brokerRouter, listenerOptions);
    brokerRouter.allowFromAnyConnection('api');
  };
  const reader = new MapSecretReader(new Map(Object.entries(options.secrets)));
  const provider = new ProxyLeaseProvider({ secrets: reader, bindings: options.bindings, clock });
  const audit = new RecordingAuditSink();
  const events: EgressEvent[] = [];
  const service = new EgressProxyService(brokerRouter, {
    provider,
    audit,
    clock,
    onEvent: (e) => events.push(e),
    ...options.service,
  });
  cleanups.push(() => service.close());
  let leases = 0;

  /** An agent: identity, credential, channel to the broker, and its local proxy. */
  const agent = async (name: string, agentOptions: { readonly reopen?: boolean } = {}) => {
    const local = await identities.create({ name });
    const credential = await issueCredential(
      vault,
      issuer,
      local.identity,
      constraintsToAttributes(new Map([parseConstraint('tools=read_orders')])),
      { nowSeconds: now, ttlSeconds: 3_600 },
    );
    const chain = verifier.verify(chainFromCredential(credential, local.identity), {
      nowSeconds: now,
      presenter: local.identity.identifier,
    });
    const router = new Router();
    const transport = new MemoryTransport(router, network);
    cleanups.push(() => transport.close());
    const channelIdentity = await prepareChannelIdentity(vault, {
      identity: local.identity,
      primaryKeyId: local.primaryKeyId,
      credentials: [credential],
      nowSeconds: now,
    });
    const open = async () => {
      const opened = await openSecureChannel(
        router,
        [localAddress(transport.connect('broker')), localAddress('api')],
        {
          ...channelIdentity,
          verify: {
            authorities,
            knownIdentities: new Map([[brokerLocal.identity.identifier, brokerLocal.identity]]),
            trustPolicy: TrustPolicies.identifier(brokerLocal.identity.identifier),
          },
          handshakeTimeoutMs: 5_000,
        },
      );
      cleanups.push(() => opened.close());
      return opened;
    };
    const channel = await open();
    const proxy = await startLocalEgressProxy({
      router,
      channel,
      ...(agentOptions.reopen === true ? { reopen: open } : {}),
      listen: { host: '127.0.0.1', port: 0 },
      timeoutMs: 10_000,
    });
    cleanups.push(() => proxy.close());
    /** Asks the provider for a lease as the broker would once its decision allowed it. */
    const lease = async (secret: string, ttlSeconds = 600) => {
      const leaseId = `lease_${String(++leases).padStart(32, '0')}`;
      const issued = await provider.issue({
        leaseId,
        holder: local.identity.identifier,
        chain,
        resource: secret,
        scope: [],
        nowSeconds: clock.nowSeconds(),
        expiresAt: clock.nowSeconds() + ttlSeconds,
      });
      return { leaseId, value: issued.value, handle: issued.handle };
    };
    const leaseOf = (leaseId: string): Lease | undefined => {
      for (const binding of provider.bindings()) {
        const found = provider
          .injectionsFor(local.identity.identifier, binding.host, clock.nowSeconds())
          .find((a) => a.lease.id === leaseId);
        if (found !== undefined) return found.lease;
      }
      return undefined;
    };
    return { name, local, chain, router, channel, proxy, lease, leaseOf };
  };

  const close = async (): Promise<void> => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  };
  return {
    clock,
    reader,
    provider,
    audit,
    events,
    service,
    agent,
    close,
    brokerRouter,
    restartListener,
  };
}

/**
 * One upstream bound to the secret `payments` (as `authorization: Bearer {secret}`), and the
 * agent `billing` holding a lease on it.
 */
export async function leasedUpstream(
  secret: string,
  answer: (hit: UpstreamHit) => Response | Promise<Response>,
) {
  const upstream = await upstreamServer(answer);
  const world = await egressWorld({
    secrets: { payments: secret },
    bindings: [
      {
        secret: 'payments',
        host: upstream.host,
        scheme: 'http',
        header: { name: 'authorization', format: 'Bearer {secret}' },
      },
    ],
  });
  const agent = await world.agent('billing');
  await agent.lease('payments', 3_600);
  const close = async (): Promise<void> => {
    await world.close();
    await upstream.close();
  };
  return { upstream, world, agent, close };
}
