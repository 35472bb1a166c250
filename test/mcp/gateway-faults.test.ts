// Bad input and faults at the gateway: malformed and oversized JSON-RPC on a channel, calls
// without (or with a replayed, or someone else's) signed invocation, a stolen chain without its
// key, an upstream that hangs, crashes or answers garbage — each answered with a typed error,
// none reaching the upstream, and other agents' sessions unaffected.
import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { InvocationSigner, toBase64Url } from '../../src/audit/index.js';
import {
  openSecureChannel,
  prepareChannelIdentity,
  TrustPolicies,
} from '../../src/channel/index.js';
import { localAddress, MemoryTransport, Router } from '../../src/routing/index.js';
import {
  DECISION_META_KEY,
  INVOCATION_META_KEY,
  MCP_SERVICE_ADDRESS,
  SESSION_NOTIFICATION,
  type GatewayDecisionMeta,
} from '../../src/mcp/index.js';
import { FS_POLICIES, mcpWorld, TEST_SERVER_COMMAND } from '../helpers/mcp-world.js';

type World = Awaited<ReturnType<typeof mcpWorld>>;
const worlds: World[] = [];
afterEach(async () => {
  for (const w of worlds.splice(0)) await w.close();
});

const FAULT_POLICIES = `${FS_POLICIES}
@id("faults")
permit(principal, action, resource in Server::"faults");
`;

async function world(): Promise<World> {
  const w = await mcpWorld({
    servers: {
      faults: {
        command: TEST_SERVER_COMMAND.command,
        args: [...TEST_SERVER_COMMAND.args, 'faults'],
        mandate: { timeoutMs: 1500 },
      },
    },
    policies: FAULT_POLICIES,
  });
  worlds.push(w);
  return w;
}

const metaOf = (result: unknown): GatewayDecisionMeta | undefined =>
  (result as CallToolResult)._meta?.[DECISION_META_KEY] as GatewayDecisionMeta | undefined;
const FAULT_GRANTS = ['tools=echo,hang,crash,garbage,read_text_file'];

describe('MCP gateway faults', () => {
  it('answers malformed, non-JSON-RPC and oversized messages with JSON-RPC errors; the session and others go on', async () => {
    const w = await world();
    const a = await w.agent('a', FAULT_GRANTS);
    const b = await w.agent('b', FAULT_GRANTS);
    const { client: other } = await w.connect(b);
    // A raw channel to the gateway's MCP worker, as a misbehaving client would use it.
    const router = new Router();
    const transport = new MemoryTransport(router, w.network);
    const me = await prepareChannelIdentity(w.vault, {
      identity: a.identity,
      primaryKeyId: a.primaryKeyId,
      chains: [a.chain],
      nowSeconds: w.now,
    });
    const replies: unknown[] = [];
    router.registerWorker('raw', {
      handleMessage: (_ctx, envelope) => {
        // Single-frame replies: the 9-byte frame head, then the JSON.
        replies.push(JSON.parse(new TextDecoder().decode(envelope.payload.subarray(9))));
      },
    });
    const channel = await openSecureChannel(
      router,
      [localAddress(transport.connect('gateway')), localAddress('api')],
      {
        ...me,
        verify: {
          authorities: w.authorities,
          trustPolicy: TrustPolicies.identifier(w.gatewayParty.identity.identifier),
        },
        clock: w.clock,
        deliverTo: ['raw'],
      },
    );
    const sendRaw = (payload: Uint8Array) =>
      router.send({
        onwardRoute: [localAddress(channel.address), localAddress(MCP_SERVICE_ADDRESS)],
        returnRoute: [localAddress('raw')],
        payload,
      });
    const utf8 = (text: string) => new TextEncoder().encode(text);
    /** One frame: version 1, message number, index, count (docs/spec/mcp.md), then the bytes. */
    const frame = (body: Uint8Array, messageNo: number, index = 0, count = 1) => {
      const out = new Uint8Array(9 + body.byteLength);
      const view = new DataView(out.buffer);
      view.setUint8(0, 1);
      view.setUint32(1, messageNo);
      view.setUint16(5, index);
      view.setUint16(7, count);
      out.set(body, 9);
      return out;
    };
    await sendRaw(frame(utf8('{"jsonrpc":"2.0","id":1,'), 1));
    await sendRaw(frame(utf8('{"hello":"world","id":2}'), 2));
    // The first of 40 frames of 60,000 bytes: over the 1 MiB bound, refused at once.
    await sendRaw(frame(utf8('{"jsonrpc":"2.0","id":3,'), 3, 0, 40));
    await sendRaw(frame(utf8('{"jsonrpc":"2.0","id":4,"id":5,"method":"ping"}'), 4));
    await sendRaw(utf8('{"jsonrpc":"2.0","id":6,"method":"ping"}'));
    await expect.poll(() => replies.length).toBe(5);
    const codes = replies.map((r) => {
      const reply = r as { id: unknown; error?: { code?: number } };
      return [reply.id, reply.error?.code];
    });
    expect(codes).toEqual([
      [null, -32700],
      [2, -32600],
      [null, -32010],
      [null, -32700],
      [null, -32700],
    ]);
    // The rest of the refused message is ignored; the same session still works: it asks for its
    // session notice and gets it.
    await sendRaw(frame(utf8('"more"'), 3, 1, 40));
    await sendRaw(frame(utf8(`{"jsonrpc":"2.0","method":"${SESSION_NOTIFICATION}"}`), 7));
    await expect.poll(() => replies.length).toBe(6);
    expect(replies[5]).toMatchObject({
      method: SESSION_NOTIFICATION,
      params: { agent: a.identity.identifier, head: null },
    });
    await channel.close();
    await transport.close();
    // Another agent's session was never disturbed.
    const echoed = await other.callTool({ name: 'echo', arguments: { text: 'still here' } });
    expect(echoed.content).toEqual([{ type: 'text', text: 'still here' }]);
  });

  it('refuses calls without a signed invocation, replays, and a stolen chain without its key', async () => {
    const w = await world();
    const a = await w.agent('a', FAULT_GRANTS);
    const thief = await w.agent('thief', ['tools=echo']);
    // No signing at all.
    const unsigned = await w.connect(a, { sign: false });
    const missing = await unsigned.client.callTool({ name: 'echo', arguments: { text: 'x' } });
    expect(metaOf(missing)).toMatchObject({
      decision: 'refused',
      code: 'ERR_MCP_INVOCATION_MISSING',
    });
    // One signed invocation used twice: the second is refused, nothing of it is logged.
    const signer = new InvocationSigner(
      w.vault,
      a.issuer,
      unsigned.transport.session?.head ?? null,
    );
    const args = { text: 'once' };
    const signed = await signer.sign({
      chain: a.chain,
      tool: 'echo',
      args,
      nowSeconds: w.clock.nowSeconds(),
    });
    const call = () =>
      unsigned.client.callTool({
        name: 'echo',
        arguments: args,
        _meta: { [INVOCATION_META_KEY]: toBase64Url(signed.bytes) },
      });
    const first = await call();
    expect(first.content).toEqual([{ type: 'text', text: 'once' }]);
    const size = w.log.size;
    const replayed = await call();
    expect(metaOf(replayed)?.decision).toBe('refused');
    expect(metaOf(replayed)?.code).toMatch(/^ERR_AUDIT_(AGENT_CHAIN_MISMATCH|NONCE_REPLAYED)$/);
    expect(w.log.size).toBe(size);
    // The invocation of one call carried on another: refused.
    const other = await unsigned.client.callTool({
      name: 'echo',
      arguments: { text: 'twice' },
      _meta: { [INVOCATION_META_KEY]: toBase64Url(signed.bytes) },
    });
    expect(metaOf(other)?.decision).toBe('refused');

    // The thief presents a's chain on its own channel, and signs with its own key: the channel
    // does not count a chain whose actor is someone else, so the gateway sees no chain.
    const stolen = await w.connect(thief, { chain: a.chain });
    expect((await stolen.client.listTools()).tools).toEqual([]);
    const theft = await stolen.client.callTool({ name: 'echo', arguments: { text: 'mine' } });
    expect(metaOf(theft)).toMatchObject({ decision: 'refused', code: 'ERR_MCP_CHAIN_MISMATCH' });
  });

  it('an upstream that hangs, answers garbage or crashes gives typed errors, is restarted, and other sessions go on', async () => {
    const w = await world();
    const a = await w.agent('a', FAULT_GRANTS);
    const reader = await w.agent('reader');
    const { client } = await w.connect(a);
    const { client: fsClient } = await w.connect(reader);
    const faults = w.gateway.upstreams.find((u) => u.name === 'faults')!;

    const hung = await client.callTool({ name: 'hang', arguments: {} });
    expect(metaOf(hung)).toMatchObject({ decision: 'failed', code: 'ERR_MCP_UPSTREAM_TIMEOUT' });
    const garbage = await client.callTool({ name: 'garbage', arguments: {} });
    expect(metaOf(garbage)).toMatchObject({ decision: 'failed', code: 'ERR_MCP_UPSTREAM_INVALID' });

    const crashed = await client.callTool({ name: 'crash', arguments: {} });
    expect(metaOf(crashed)).toMatchObject({ decision: 'failed', code: 'ERR_MCP_UPSTREAM_CLOSED' });
    // The filesystem session never noticed.
    const read = await fsClient.callTool({
      name: 'read_text_file',
      arguments: { path: join(w.dir, 'allowed', 'a.txt') },
    });
    expect(read.content).toEqual([{ type: 'text', text: 'hello from a' }]);
    // Restarted with backoff; calls work again.
    await expect.poll(() => faults.state, { timeout: 10_000 }).toBe('up');
    expect(faults.restarts).toBeGreaterThan(0);
    const echoed = await client.callTool({ name: 'echo', arguments: { text: 'back' } });
    expect(echoed.content).toEqual([{ type: 'text', text: 'back' }]);
    // Every allowed call's outcome is logged, the failures as their codes.
    await w.point.flush();
    const outcomes = (await w.log.readEntries(0, w.log.size))
      .map((e) => JSON.parse(new TextDecoder().decode(e.record)) as Record<string, unknown>)
      .filter((r) => r['type'] === 'mandate/outcome/v1')
      .map((r) => r['error'] ?? r['status']);
    expect(outcomes).toEqual([
      'ERR_MCP_UPSTREAM_TIMEOUT',
      'ERR_MCP_UPSTREAM_INVALID',
      'ERR_MCP_UPSTREAM_CLOSED',
      'ok',
      'ok',
    ]);
  });

  it('a client that disconnects mid-call: the upstream call is cancelled and logged, other sessions go on', async () => {
    const w = await world();
    const a = await w.agent('a', FAULT_GRANTS);
    const b = await w.agent('b', FAULT_GRANTS);
    const { client, transport } = await w.connect(a);
    const { client: other } = await w.connect(b);
    const pending = client
      .callTool({ name: 'hang', arguments: {} })
      .catch((error: unknown) => error);
    // Wait until the gateway has decided and forwarded it (the decision is logged), then leave.
    // (the chain record, the invocation naming it by hash, the decision)
    await expect.poll(() => w.log.size).toBe(3);
    const sessions = w.mcp.sessionCount;
    await transport.close();
    await expect.poll(() => w.mcp.sessionCount).toBe(sessions - 1);
    expect(await pending).toBeInstanceOf(Error);
    await w.point.flush();
    await expect
      .poll(async () => {
        const records = (await w.log.readEntries(0, w.log.size)).map(
          (e) => JSON.parse(new TextDecoder().decode(e.record)) as Record<string, unknown>,
        );
        return records.find((r) => r['type'] === 'mandate/outcome/v1')?.['error'];
      })
      .toBe('ERR_MCP_CALL_CANCELLED');
    const echoed = await other.callTool({ name: 'echo', arguments: { text: 'unaffected' } });
    expect(echoed.content).toEqual([{ type: 'text', text: 'unaffected' }]);
  });
});
