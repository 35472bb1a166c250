// Gate 3 in the gateway: upstreams whose credential comes from a broker lease, per agent. A stdio
// server (test/support/mcp-test-server.ts `leased`) and a streamable-HTTP server
// (test/support/mcp-http-leased-server.ts) check the credential they receive and say which
// process or session called; two agents get distinct leases and connections, an agent whose chain
// grants no `secrets` is denied, a revoked lease denies the next call and closes the agent's
// connection, and an upstream that echoes the secret has it scrubbed.
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { emitTrailSpans, GenAiAttribute, MandateAttribute } from '../../src/audit/index.js';
import { DECISION_META_KEY, type GatewayDecisionMeta } from '../../src/mcp/index.js';
import { mcpWorld, TEST_SERVER_COMMAND } from '../helpers/mcp-world.js';
import { leasedHttpServer } from '../support/mcp-http-leased-server.js';

const STDIO_KEY = 'sk_stdio_7f3a9c1e5b2d4680';
const HTTP_KEY = 'tok_http_0a1b2c3d4e5f6789';
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

const POLICIES = `
@id("leased-tools")
permit(principal, action in [Action::"listTool", Action::"callTool"], resource in Server::"pay");
@id("leased-http-tools")
permit(principal, action in [Action::"listTool", Action::"callTool"], resource in Server::"web");
@id("leases")
permit(principal, action == Action::"leaseSecret", resource);
`;
const TOOLS = 'tools=s_whoami,s_leak,s_leak_error,h_whoami,h_leak,h_leak_error';
/** A delegation that may call the tools and lease both secrets. */
const LEASING = [TOOLS, 'secrets=proxy/pay-key,proxy/web-key'];

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function world(leases: { idleMs?: number; maxAgentUpstreams?: number } = {}) {
  const http = await leasedHttpServer(HTTP_KEY);
  cleanups.push(() => http.close());
  const w = await mcpWorld({
    servers: {
      pay: {
        command: TEST_SERVER_COMMAND.command,
        args: [...TEST_SERVER_COMMAND.args, 'leased'],
        env: { EXPECT_KEY_SHA256: sha256(STDIO_KEY) },
        mandate: { prefix: 's_', lease: { secret: 'pay-key', env: 'UPSTREAM_KEY' } },
      },
      web: {
        url: http.url,
        mandate: {
          prefix: 'h_',
          lease: { secret: 'web-key', header: 'Authorization', template: 'Bearer {}' },
        },
      },
    },
    policies: POLICIES,
    rootGrants: [TOOLS, 'secrets=proxy/pay-key,proxy/web-key'],
    leases: { secrets: { 'pay-key': STDIO_KEY, 'web-key': HTTP_KEY }, ...leases },
  });
  cleanups.push(() => w.close());
  return { w, http };
}

/** Agents a and b (both may lease both secrets), connected. */
async function twoAgents(w: Awaited<ReturnType<typeof world>>['w']) {
  const a = await w.agent('a', LEASING);
  const b = await w.agent('b', LEASING);
  return { a, b, ca: (await w.connect(a)).client, cb: (await w.connect(b)).client };
}

const textOf = (result: unknown) =>
  ((result as CallToolResult).content[0] as { text: string }).text;
const metaOf = (result: unknown) =>
  (result as CallToolResult)._meta?.[DECISION_META_KEY] as GatewayDecisionMeta;
const call = (client: Client, name: string) => client.callTool({ name, arguments: {} });

/** The log's records of a type, parsed. */
async function records(w: Awaited<ReturnType<typeof world>>['w'], type: string) {
  await w.point.flush();
  return (await w.log.readEntries(0, w.log.size))
    .map((e) => JSON.parse(new TextDecoder().decode(e.record)) as Record<string, unknown>)
    .filter((r) => r['type'] === type);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('MCP gateway, gate 3: upstream credentials leased per agent', () => {
  it('two agents get their own leases and connections; the upstreams get the credential, the agents never', async () => {
    const { w, http } = await world();
    const { a, b, ca, cb } = await twoAgents(w);
    expect((await ca.listTools()).tools.map((t) => t.name).sort()).toEqual([
      'h_leak',
      'h_leak_error',
      'h_whoami',
      's_leak',
      's_leak_error',
      's_whoami',
    ]);

    // stdio: one process per agent, each started with the credential in its environment.
    const sa = textOf(await call(ca, 's_whoami'));
    const sb = textOf(await call(cb, 's_whoami'));
    expect(sa).toMatch(new RegExp(`^pid=\\d+ credential=${sha256(STDIO_KEY)}$`));
    expect(sb).toMatch(new RegExp(`credential=${sha256(STDIO_KEY)}$`));
    expect(sa.split(' ')[0]).not.toBe(sb.split(' ')[0]);
    expect(textOf(await call(ca, 's_whoami'))).toBe(sa); // reused
    // HTTP: one session per agent, each request with the header.
    const ha = textOf(await call(ca, 'h_whoami'));
    const hb = textOf(await call(cb, 'h_whoami'));
    expect(ha).toMatch(new RegExp(`credential=${sha256(HTTP_KEY)}$`));
    expect(ha.split(' ')[0]).not.toBe(hb.split(' ')[0]);
    expect(http.refused()).toBe(0);

    // Four leases: one per agent and upstream, held by that agent.
    const held = w.gateway.agentUpstreams;
    expect(held).toHaveLength(4);
    expect(new Set(held.map((h) => h.lease.id)).size).toBe(4);
    for (const h of held) expect(h.lease.holder).toBe(h.agent);
    expect(new Set(held.map((h) => h.agent))).toEqual(
      new Set([a.identity.identifier, b.identity.identifier]),
    );

    // An upstream that echoes the secret: scrubbed from the text, structured content and errors.
    const leaked = await call(ca, 's_leak');
    expect(textOf(leaked)).toBe('my key is [mandate-redacted]');
    expect(leaked.structuredContent).toEqual({ key: '[mandate-redacted]' });
    expect(textOf(await call(ca, 'h_leak'))).toBe('my header is Bearer [mandate-redacted]');
    const failedCall = await call(cb, 's_leak_error');
    expect(metaOf(failedCall)).toMatchObject({
      decision: 'failed',
      code: 'ERR_MCP_UPSTREAM_ERROR',
    });
    expect(textOf(failedCall)).toContain('rejected [mandate-redacted]');
    expect(textOf(await call(cb, 'h_leak_error'))).toContain('rejected [mandate-redacted]');

    // Each outcome names its lease; lease records carry ids, never values; nothing in the log
    // (nor anything the agents got) holds a secret.
    const outcomes = await records(w, 'mandate/outcome/v1');
    const byAgent = (agent: string) =>
      new Set(outcomes.filter((o) => o['agent'] === agent).flatMap((o) => o['leases'] as string[]));
    const leasesOf = (agent: string) =>
      new Set(held.filter((h) => h.agent === agent).map((h) => h.lease.id));
    expect(byAgent(a.identity.identifier)).toEqual(leasesOf(a.identity.identifier));
    expect(byAgent(b.identity.identifier)).toEqual(leasesOf(b.identity.identifier));
    const granted = await records(w, 'mandate/lease/v1');
    expect(granted.map((r) => r['event'])).toEqual(['granted', 'granted', 'granted', 'granted']);
    expect(new Set(granted.map((r) => r['resource']))).toEqual(
      new Set(['proxy/pay-key', 'proxy/web-key']),
    );
    const everything = new TextDecoder().decode(
      Buffer.concat((await w.log.readEntries(0, w.log.size)).map((e) => e.record)),
    );
    for (const secret of [STDIO_KEY, HTTP_KEY]) expect(everything).not.toContain(secret);

    // The OpenTelemetry export names each call's lease (`mandate.lease.ids`).
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({
      spanProcessors: [new SimpleSpanProcessor(exporter)],
    });
    const entries = await w.log.readEntries(0, w.log.size);
    emitTrailSpans(
      entries.map((e, index) => ({ index, record: e.record })),
      {
        tracer: provider.getTracer('test'),
      },
    );
    const whoamiSpan = exporter
      .getFinishedSpans()
      .find(
        (span) =>
          span.name === 'execute_tool s_whoami' &&
          span.attributes[GenAiAttribute.agentId] === a.identity.identifier,
      );
    expect(whoamiSpan?.attributes[MandateAttribute.leases]).toEqual([
      held.find((h) => h.agent === a.identity.identifier && h.upstream.name === 'pay')!.lease.id,
    ]);
  });

  it('an agent whose chain grants no `secrets` is denied the lease (logged), and nothing is started for it', async () => {
    const { w } = await world();
    // Under dana's root without `secrets`: lock 1 of the lease decision refuses.
    const c = await w.agent('c', [TOOLS], 'plain');
    // A delegation naming another secret only: also refused.
    const d = await w.agent('d', [TOOLS, 'secrets=proxy/web-key']);
    const cc = (await w.connect(c)).client;
    const cd = (await w.connect(d)).client;
    for (const [client, tool] of [
      [cc, 's_whoami'],
      [cc, 'h_whoami'],
      [cd, 's_whoami'],
    ] as const) {
      const denied = await call(client, tool);
      expect(denied.isError).toBe(true);
      expect(metaOf(denied)).toMatchObject({
        decision: 'deny',
        code: 'ERR_LEASE_DENIED',
        lock: 'lease',
      });
    }
    // d may lease what its chain names.
    expect(textOf(await call(cd, 'h_whoami'))).toMatch(/credential=/);
    expect(w.gateway.agentUpstreams.map((h) => h.agent)).toEqual([d.identity.identifier]);
    const errors = (await records(w, 'mandate/outcome/v1')).map((o) => o['error']);
    expect(errors).toEqual(['ERR_LEASE_DENIED', 'ERR_LEASE_DENIED', 'ERR_LEASE_DENIED', null]);
  });

  it('a revoked lease: the agent’s process and session are closed, its next call is denied, the one after gets a new lease', async () => {
    const { w, http } = await world();
    const { a, b, ca, cb } = await twoAgents(w);
    await call(ca, 's_whoami');
    await call(ca, 'h_whoami');
    await call(cb, 's_whoami');
    const mine = (name: string, agent = a.identity.identifier) =>
      w.gateway.agentUpstreams.find((h) => h.agent === agent && h.upstream.name === name)!;
    const stdio = mine('pay');
    const pid = stdio.upstream.pid!;
    const session = http.sessions.at(-1)!;
    const broker = w.broker!;

    // Revoked by the operator, noticed by the sweep: the connections close at once.
    await broker.revoke(stdio.lease.id, 'operator');
    await broker.revoke(mine('web').lease.id);
    await w.gateway.sweepLeases();
    await expect.poll(() => alive(pid)).toBe(false);
    await expect.poll(() => http.closed.has(session)).toBe(true);
    expect(w.gateway.agentUpstreams.map((h) => h.agent)).toEqual([b.identity.identifier]);
    for (const tool of ['s_whoami', 'h_whoami']) {
      const denied = await call(ca, tool);
      expect(metaOf(denied)).toMatchObject({ decision: 'failed', code: 'ERR_MCP_LEASE_REVOKED' });
    }
    // b is untouched; a's next call is decided again and gets a new lease and process.
    expect(textOf(await call(cb, 's_whoami'))).toMatch(/credential=/);
    const again = textOf(await call(ca, 's_whoami'));
    expect(again).not.toContain(`pid=${pid} `);
    expect(mine('pay').lease.id).not.toBe(stdio.lease.id);

    // Revoked without a sweep in between: the call itself finds it, and is denied.
    const second = mine('pay');
    await broker.revoke(second.lease.id);
    expect(metaOf(await call(ca, 's_whoami')).code).toBe('ERR_MCP_LEASE_REVOKED');
    expect(second.upstream.state).toBe('closed');

    // The deny-set cascade (every lease whose chain names b) closes b's process too.
    const bPid = mine('pay', b.identity.identifier).upstream.pid!;
    await broker.revokeMatching([b.identity.identifier]);
    await w.gateway.sweepLeases();
    await expect.poll(() => alive(bPid)).toBe(false);
  });

  it('renews a lease near its end on the same connection; at the cap the idlest connection is closed and its lease revoked', async () => {
    const { w } = await world({ maxAgentUpstreams: 2 });
    const { a, ca, cb } = await twoAgents(w);
    const first = textOf(await call(ca, 's_whoami'));
    const lease = w.gateway.agentUpstreams[0]!.lease;
    // 30 s before its end (default TTL 300 s, renewed within 60 s of it).
    w.clock.advance(lease.expiresAt - w.clock.nowSeconds() - 30);
    expect(textOf(await call(ca, 's_whoami'))).toBe(first);
    const renewed = w.gateway.agentUpstreams[0]!.lease;
    expect(renewed.id).toBe(lease.id);
    expect(renewed.renewals).toBe(1);
    expect(renewed.expiresAt).toBeGreaterThan(lease.expiresAt);

    // At the cap (2), a third agent upstream closes the least recently used idle one.
    await call(ca, 'h_whoami');
    await call(cb, 's_whoami');
    expect(
      w.gateway.agentUpstreams
        .map((h) => `${h.agent === a.identity.identifier ? 'a' : 'b'}/${h.upstream.name}`)
        .sort(),
    ).toEqual(['a/web', 'b/pay']);
    expect((await w.broker!.get(lease.id)).endReason).toBe('evicted');
    const events = (await records(w, 'mandate/lease/v1')).map((r) => r['event']);
    expect(events).toEqual(['granted', 'renewed', 'granted', 'revoked', 'granted']);
  });

  it('closes an agent upstream that sat idle and revokes its lease', async () => {
    const { w } = await world({ idleMs: 1 });
    const ca = (await w.connect(await w.agent('a', LEASING))).client;
    await call(ca, 's_whoami');
    const held = w.gateway.agentUpstreams[0]!;
    const pid = held.upstream.pid!;
    await expect
      .poll(async () => {
        await w.gateway.sweepLeases();
        return w.gateway.agentUpstreams.length;
      })
      .toBe(0);
    await expect.poll(() => alive(pid)).toBe(false);
    expect((await w.broker!.get(held.lease.id)).endReason).toBe('idle');
    // Not a revocation by anyone else: the next call simply gets a new lease.
    expect(textOf(await call(ca, 's_whoami'))).toMatch(/credential=/);
  });
});
