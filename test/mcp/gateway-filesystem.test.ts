// The gateway in front of the reference filesystem MCP server, reached by the SDK Client over a
// secure channel: gate 1 filters the tool list, gate 2 decides each call with its arguments,
// every call is signed, countersigned and logged, and the trail verifies offline.
import { afterEach, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { noteVerifierKey, verifyTrail, type NoteSigner } from '../../src/audit/index.js';
import { ed25519KeyPairFromSeed, signEd25519 } from '../../src/crypto/index.js';
import { DECISION_META_KEY, type GatewayDecisionMeta } from '../../src/mcp/index.js';
import { revoke } from '../helpers/deny-set.js';
import { mcpWorld } from '../helpers/mcp-world.js';

type World = Awaited<ReturnType<typeof mcpWorld>>;
const worlds: World[] = [];
afterEach(async () => {
  for (const w of worlds.splice(0)) await w.close();
});

async function world(options?: Parameters<typeof mcpWorld>[0]): Promise<World> {
  const w = await mcpWorld(options);
  worlds.push(w);
  return w;
}

const textOf = (result: CallToolResult): string =>
  result.content.map((c) => (c.type === 'text' ? c.text : '')).join('');
const metaOf = (result: CallToolResult): GatewayDecisionMeta | undefined =>
  result._meta?.[DECISION_META_KEY] as GatewayDecisionMeta | undefined;

describe('MCP gateway over a secure channel, in front of server-filesystem', () => {
  it('lists only the tools the chain and the bundle allow; reads under the folder pass, writes and other folders are denied', async () => {
    const w = await world();
    const reader = await w.agent('reader');
    const { client } = await w.connect(reader);
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual([
      'list_allowed_directories',
      'list_directory',
      'read_text_file',
    ]);
    // The schema the agent sees is the one the bundle signed (the upstream's).
    expect(tools.find((t) => t.name === 'read_text_file')?.inputSchema).toMatchObject({
      type: 'object',
      required: ['path'],
    });

    const ok = (await client.callTool({
      name: 'read_text_file',
      arguments: { path: join(w.dir, 'allowed', 'a.txt') },
    })) as CallToolResult;
    expect(ok.isError).not.toBe(true);
    expect(textOf(ok)).toBe('hello from a');

    // A result larger than one channel frame (60,000 bytes) arrives whole.
    const big = 'abcdefghij'.repeat(30_000);
    writeFileSync(join(w.dir, 'allowed', 'big.txt'), big);
    const large = (await client.callTool({
      name: 'read_text_file',
      arguments: { path: join(w.dir, 'allowed', 'big.txt') },
    })) as CallToolResult;
    expect(textOf(large)).toBe(big);

    // Another folder: the chain's path constraint refuses; the upstream never sees it.
    const other = (await client.callTool({
      name: 'read_text_file',
      arguments: { path: join(w.dir, 'secret', 'key.txt') },
    })) as CallToolResult;
    expect(other.isError).toBe(true);
    expect(metaOf(other)).toMatchObject({
      decision: 'deny',
      code: 'ERR_GATE_CHAIN_DENIED',
      lock: 'chain',
    });
    expect(textOf(other)).not.toContain('the secret');

    // A prompt-injected traversal out of the folder: denied the same way.
    const injected = (await client.callTool({
      name: 'read_text_file',
      arguments: { path: `${w.dir}/allowed/../secret/key.txt` },
    })) as CallToolResult;
    expect(injected.isError).toBe(true);
    expect(metaOf(injected)?.decision).toBe('deny');
    expect(textOf(injected)).not.toContain('the secret');

    // A write: the chain grants it, the bundle forbids it; the reason code, never the policy.
    const write = (await client.callTool({
      name: 'write_file',
      arguments: { path: join(w.dir, 'allowed', 'b.txt'), content: 'x' },
    })) as CallToolResult;
    expect(metaOf(write)).toMatchObject({
      decision: 'deny',
      code: 'ERR_GATE_POLICY_DENIED',
      lock: 'policy',
    });
    expect(textOf(write)).not.toContain('no-writes');

    // A tool no grant names, one nobody serves, and arguments that break the schema.
    const move = (await client.callTool({
      name: 'move_file',
      arguments: { source: 'a', destination: 'b' },
    })) as CallToolResult;
    expect(metaOf(move)).toMatchObject({ decision: 'deny', code: 'ERR_GATE_CHAIN_DENIED' });
    const unknown = (await client.callTool({
      name: 'no_such_tool',
      arguments: {},
    })) as CallToolResult;
    expect(unknown.isError).toBe(true);
    expect(metaOf(unknown)?.decision).toBe('deny');
    const bad = (await client.callTool({
      name: 'read_text_file',
      arguments: { path: join(w.dir, 'allowed', 'a.txt'), head: 'ten' },
    })) as CallToolResult;
    expect(metaOf(bad)).toMatchObject({ decision: 'deny', lock: 'schema' });

    // Every decided call is in the log (invocation + countersigned decision, outcome when run),
    // and the trail verifies offline.
    await w.point.flush();
    const pair = ed25519KeyPairFromSeed(new Uint8Array(32).fill(9));
    const origin = 'example.com/mcp/test';
    const signer: NoteSigner = {
      name: origin,
      keyId: noteVerifierKey(origin, pair.publicKey).keyId,
      publicKey: pair.publicKey,
      sign: (m) => Promise.resolve(signEd25519(pair.secretKey, m)),
    };
    const checkpoint = await w.log.checkpoint([signer]);
    const entries = await w.log.readEntries(0, w.log.size);
    const verified = verifyTrail({
      entries: entries.map((e, index) => ({ index, record: e.record })),
      checkpoint,
      verifiers: [noteVerifierKey(origin, pair.publicKey)],
      authorities: w.authorities,
      enforcers: new Map([[w.gatewayParty.identity.identifier, w.gatewayParty.identity]]),
    });
    expect(verified.ok, JSON.stringify(verified)).toBe(true);
    if (verified.ok) expect(verified.summary).toMatchObject({});
  });

  it('a revocation mid-session denies the very next call and shrinks the tool list (list_changed)', async () => {
    const w = await world();
    const reader = await w.agent('reader');
    const { client } = await w.connect(reader);
    let changed = 0;
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      changed++;
    });
    expect((await client.listTools()).tools.length).toBe(3);
    const path = join(w.dir, 'allowed', 'a.txt');
    const before = (await client.callTool({
      name: 'read_text_file',
      arguments: { path },
    })) as CallToolResult;
    expect(before.isError).not.toBe(true);
    // Dana revokes the link she issued to the agent.
    const link = reader.chain;
    const verified = w.verifier.verify(link, {
      nowSeconds: w.clock.nowSeconds(),
      presenter: reader.identity.identifier,
    });
    revoke(w.denySet, verified.links[0]!.revocationId, {
      expiresAt: w.now + 3600,
      nowSeconds: w.clock.nowSeconds(),
    });
    const after = (await client.callTool({
      name: 'read_text_file',
      arguments: { path },
    })) as CallToolResult;
    expect(after.isError).toBe(true);
    expect(metaOf(after)?.decision).toBe('refused');
    w.gateway.refresh();
    await expect.poll(() => changed).toBeGreaterThan(0);
    expect((await client.listTools()).tools).toEqual([]);
  });
});
