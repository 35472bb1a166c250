// A streamable-HTTP upstream (the SDK's StreamableHTTPServerTransport on a local HTTP server)
// next to the stdio filesystem server, behind one gateway: its tools merged into the catalog
// (with a prefix), listed and called through the gates; a new bundle that changes what a session
// may see sends it `notifications/tools/list_changed`.
import { afterEach, describe, expect, it } from 'vitest';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { DECISION_META_KEY, type GatewayDecisionMeta } from '../../src/mcp/index.js';
import { FS_POLICIES, mcpWorld } from '../helpers/mcp-world.js';
import { httpUpstream } from '../helpers/mcp-http-upstream.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const HTTP_POLICIES = `${FS_POLICIES}
@id("remote")
permit(principal, action, resource == Tool::"remote/remote_shout");
`;

describe('MCP gateway with a streamable-HTTP upstream', () => {
  it('merges, lists and calls its tools (prefixed); a new bundle shrinks the list and says so', async () => {
    const { url, close } = await httpUpstream();
    cleanups.push(close);
    const w = await mcpWorld({
      servers: { remote: { url, mandate: { prefix: 'remote_' } } },
      policies: HTTP_POLICIES,
    });
    cleanups.push(() => w.close());
    expect(w.gateway.catalog().get('remote_shout', 'remote')?.descriptor.description).toBe(
      'upper-case a text',
    );
    const agent = await w.agent('a', ['tools=remote_shout,read_text_file']);
    const { client } = await w.connect(agent);
    let changed = 0;
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      changed++;
    });
    expect((await client.listTools()).tools.map((t) => t.name).sort()).toEqual([
      'read_text_file',
      'remote_shout',
    ]);
    const result = await client.callTool({ name: 'remote_shout', arguments: { text: 'hi' } });
    expect(result.content).toEqual([{ type: 'text', text: 'HI' }]);
    const tooLong = await client.callTool({
      name: 'remote_shout',
      arguments: { text: 'x'.repeat(101) },
    });
    expect(tooLong._meta?.[DECISION_META_KEY] as GatewayDecisionMeta).toMatchObject({
      decision: 'deny',
      lock: 'schema',
    });
    // A new bundle without the remote policy: the session is told, and sees one tool fewer.
    w.publish(FS_POLICIES);
    w.gateway.refresh();
    await expect.poll(() => changed).toBe(1);
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(['read_text_file']);
    const denied = await client.callTool({ name: 'remote_shout', arguments: { text: 'hi' } });
    expect((denied._meta?.[DECISION_META_KEY] as GatewayDecisionMeta).decision).toBe('deny');
  });
});
