// What the agent gets and what the log says agree (attack 13, findings 4–6): a result too large
// for the channel and a reply that is not a tool result are logged as the errors the agent gets;
// an upstream cannot forge the gateway's `io.mandate/*` meta; two sessions of one agent, and a
// call refused before the gate, never leave the agent unable to call again.
import { afterEach, describe, expect, it } from 'vitest';
import { CallToolResultSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { DECISION_META_KEY, type GatewayDecisionMeta } from '../../src/mcp/index.js';
import { FS_POLICIES, mcpWorld, TEST_SERVER_COMMAND } from '../helpers/mcp-world.js';

type World = Awaited<ReturnType<typeof mcpWorld>>;
const worlds: World[] = [];
afterEach(async () => {
  for (const w of worlds.splice(0)) await w.close();
});

const GRANTS = ['tools=echo,no_content,huge,spoof'];

async function world(): Promise<World> {
  const w = await mcpWorld({
    servers: {
      faults: {
        command: TEST_SERVER_COMMAND.command,
        args: [...TEST_SERVER_COMMAND.args, 'faults'],
        mandate: { timeoutMs: 5000 },
      },
    },
    policies: `${FS_POLICIES}
@id("faults")
permit(principal, action, resource in Server::"faults");
`,
  });
  worlds.push(w);
  return w;
}

const metaOf = (result: unknown): GatewayDecisionMeta | undefined =>
  (result as CallToolResult)._meta?.[DECISION_META_KEY] as GatewayDecisionMeta | undefined;

async function records(w: World): Promise<Record<string, unknown>[]> {
  await w.point.flush();
  return (await w.log.readEntries(0, w.log.size)).map(
    (e) => JSON.parse(new TextDecoder().decode(e.record)) as Record<string, unknown>,
  );
}

const outcomesOf = (all: Record<string, unknown>[]) =>
  all.filter((r) => r['type'] === 'mandate/outcome/v1').map((r) => r['error'] ?? r['status']);

describe('MCP gateway: the logged outcome is what the agent got', () => {
  it('a reply that is not a tool result and a result too large to send are logged as their errors', async () => {
    const w = await world();
    const a = await w.agent('a', GRANTS);
    const { client } = await w.connect(a);
    const notResult = await client.callTool({ name: 'no_content', arguments: {} });
    expect(notResult).not.toHaveProperty('foo');
    expect(metaOf(notResult)).toMatchObject({
      decision: 'failed',
      code: 'ERR_MCP_UPSTREAM_INVALID',
    });
    // Over the channel's 1 MiB bound once wrapped in its JSON-RPC answer.
    const huge = await client.callTool({ name: 'huge', arguments: { n: 1_100_000 } });
    expect(metaOf(huge)).toMatchObject({ decision: 'failed', code: 'ERR_MCP_MESSAGE_TOO_LARGE' });
    const fits = await client.callTool({ name: 'huge', arguments: { n: 1000 } });
    expect(fits.content).toEqual([{ type: 'text', text: 'x'.repeat(1000) }]);
    const allowed = metaOf(fits);
    expect(allowed).toMatchObject({ decision: 'allow', code: 'OK' });
    const all = await records(w);
    expect(outcomesOf(all)).toEqual([
      'ERR_MCP_UPSTREAM_INVALID',
      'ERR_MCP_MESSAGE_TOO_LARGE',
      'ok',
    ]);
    // The allowed call's meta names its logged invocation.
    expect(
      all.filter(
        (r) => r['type'] === 'mandate/invocation/v1' || r['type'] === 'mandate/invocation/v2',
      ),
    ).toHaveLength(3);
    expect(typeof allowed?.invocation).toBe('string');
  });

  it("an upstream's io.mandate/* meta never reaches the agent; its other meta does", async () => {
    const w = await world();
    const a = await w.agent('a', GRANTS);
    const { client } = await w.connect(a);
    const spoofed = await client.callTool({ name: 'spoof', arguments: {} });
    expect(spoofed.content).toEqual([{ type: 'text', text: 'spoofed' }]);
    expect(spoofed._meta?.['io.mandate/approval']).toBeUndefined();
    expect(spoofed._meta?.['example.com/trace']).toBe('kept');
    expect(metaOf(spoofed)).toMatchObject({ decision: 'allow', code: 'OK' });
    expect(metaOf(spoofed)?.code).not.toBe('FORGED');
  });

  it('two sessions of one agent taking turns: every call goes through (the client re-signs on the logged head once)', async () => {
    const w = await world();
    const a = await w.agent('a', GRANTS);
    const first = await w.connect(a);
    const second = await w.connect(a);
    for (let round = 0; round < 3; round++) {
      for (const [name, session] of [
        ['first', first],
        ['second', second],
      ] as const) {
        const text = `${name} ${round}`;
        const result = await session.client.callTool({ name: 'echo', arguments: { text } });
        expect(result.content, JSON.stringify(result)).toEqual([{ type: 'text', text }]);
      }
    }
    const all = await records(w);
    expect(outcomesOf(all)).toEqual(Array.from({ length: 6 }, () => 'ok'));
    // One chain of invocations, no gap: each follows the one logged before it.
    const invocations = all.filter(
      (r) => r['type'] === 'mandate/invocation/v1' || r['type'] === 'mandate/invocation/v2',
    );
    expect(invocations).toHaveLength(6);
  });

  it('params the schema refuses get -32602 and one clean line; the next call goes through', async () => {
    const w = await world();
    const a = await w.agent('a', GRANTS);
    const { client } = await w.connect(a);
    const refused = await client
      .request(
        { method: 'tools/call', params: { name: 'echo', arguments: ['not', 'an', 'object'] } },
        CallToolResultSchema,
      )
      .then(
        () => undefined,
        (error: unknown) => error as { code?: number; message?: string },
      );
    expect(refused?.code).toBe(-32602);
    expect(refused?.message).toContain('ERR_MCP_PARAMS_INVALID');
    expect(refused?.message).not.toMatch(/expected|invalid_type|\[\s*\{/);
    const size = w.log.size;
    const next = await client.callTool({ name: 'echo', arguments: { text: 'after' } });
    expect(next.content, JSON.stringify(next)).toEqual([{ type: 'text', text: 'after' }]);
    expect(w.log.size).toBeGreaterThan(size);
  });
});
