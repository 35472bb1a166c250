// The gateway reached through relays (docs/spec/mcp.md, "Channel transport": end to end through
// relays): the gateway registers a name at relay nodes, agents open their secure channels through
// them, and the relays move frames they cannot read. A relay that drops its connections mid-call
// ends the sessions through it (the call in flight is cancelled upstream and logged) and nothing
// else: sessions through another relay go on, and the agent carries on through that one.
import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import {
  constraintsToAttributes,
  issueCredential,
  parseConstraint,
} from '../../src/credentials/index.js';
import {
  openSecureChannel,
  prepareChannelIdentity,
  registerRelay,
  RelayService,
  SecureChannelListener,
  TrustPolicies,
} from '../../src/channel/index.js';
import {
  localAddress,
  MemoryTransport,
  parseRoute,
  Router,
  type Envelope,
} from '../../src/routing/index.js';
import { DECISION_META_KEY, type GatewayDecisionMeta } from '../../src/mcp/index.js';
import { FS_POLICIES, mcpWorld, TEST_SERVER_COMMAND } from '../helpers/mcp-world.js';

type World = Awaited<ReturnType<typeof mcpWorld>>;
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

async function world(): Promise<World> {
  const w = await mcpWorld({
    servers: {
      faults: {
        command: TEST_SERVER_COMMAND.command,
        args: [...TEST_SERVER_COMMAND.args, 'faults'],
        mandate: { timeoutMs: 20_000 },
      },
    },
    policies: `${FS_POLICIES}\npermit(principal, action, resource in Server::"faults");\n`,
  });
  cleanups.push(() => w.close());
  return w;
}

/**
 * A relay node listening at `name` on the world's network (a RelayService behind a secure-channel
 * listener), which keeps every payload it forwards; the gateway registers `gateway` there.
 */
async function relay(w: World, name: string) {
  const router = new Router();
  const transport = new MemoryTransport(router, w.network);
  transport.listen(name);
  const node = await w.agent(`${name}-node`, ['tools=echo']);
  const listener = new SecureChannelListener(router, {
    ...(await prepareChannelIdentity(w.vault, {
      identity: node.identity,
      primaryKeyId: node.primaryKeyId,
      nowSeconds: w.now,
    })),
    verify: {
      authorities: w.authorities,
      trustPolicy: TrustPolicies.credentialHolder(),
      denySet: w.denySet,
    },
    clock: w.clock,
  });
  router.allowFromAnyConnection('api');
  const service = new RelayService(router, { listener });
  const forwarded: Uint8Array[] = [];
  const send = router.send.bind(router);
  router.send = (envelope: Envelope, options) => {
    forwarded.push(envelope.payload);
    return send(envelope, options);
  };
  cleanups.push(async () => {
    service.close();
    await listener.close();
    await transport.close();
  });

  // The gateway's registration: a channel to the relay presenting a credential naming `gateway`.
  const credential = await issueCredential(
    w.vault,
    w.authority.issuer,
    w.gatewayParty.identity,
    constraintsToAttributes(new Map([parseConstraint('relay=gateway')])),
    { nowSeconds: w.now, ttlSeconds: 3600 },
  );
  const connection = w.gwTransport.connect(name);
  const channel = await openSecureChannel(
    w.gwRouter,
    [localAddress(connection), localAddress('api')],
    {
      ...(await prepareChannelIdentity(w.vault, {
        identity: w.gatewayParty.identity,
        primaryKeyId: w.gatewayParty.primaryKeyId,
        credentials: [credential],
        nowSeconds: w.now,
      })),
      verify: {
        authorities: w.authorities,
        trustPolicy: TrustPolicies.identifier(node.identity.identifier),
      },
      clock: w.clock,
    },
  );
  await registerRelay(w.gwRouter, { channel, connection, name: 'gateway' });
  return {
    forwarded,
    /** The route an agent's transport takes to the gateway through this relay. */
    route: (t: MemoryTransport) => [
      localAddress(t.connect(name)),
      ...parseRoute('/relay/gateway/service/api'),
    ],
    /** The relay drops every connection it holds (the agents' and the gateway's). */
    drop: () => transport.close(),
  };
}

const textOf = (result: unknown): string =>
  (result as CallToolResult).content.map((c) => (c.type === 'text' ? c.text : '')).join('');
const metaOf = (result: unknown): GatewayDecisionMeta | undefined =>
  (result as CallToolResult)._meta?.[DECISION_META_KEY] as GatewayDecisionMeta | undefined;
const recordsOf = async (w: World) =>
  (await w.log.readEntries(0, w.log.size)).map(
    (e) => JSON.parse(new TextDecoder().decode(e.record)) as Record<string, unknown>,
  );

describe('MCP gateway through relays', () => {
  it('an agent reaches the gateway through a relay: filtered list, allowed and denied calls, nothing readable at the relay', async () => {
    const w = await world();
    const r = await relay(w, 'relay-1');
    const reader = await w.agent('reader');
    const { client, transport } = await w.connect(reader, { route: r.route });
    // The gateway knows the caller across the relay: its verified identity and chain.
    expect(transport.session?.agent).toBe(reader.identity.identifier);
    expect((await client.listTools()).tools.map((t) => t.name).sort()).toEqual([
      'list_allowed_directories',
      'list_directory',
      'read_text_file',
    ]);
    const read = await client.callTool({
      name: 'read_text_file',
      arguments: { path: join(w.dir, 'allowed', 'a.txt') },
    });
    expect(textOf(read)).toBe('hello from a');
    const other = await client.callTool({
      name: 'read_text_file',
      arguments: { path: join(w.dir, 'secret', 'key.txt') },
    });
    expect(metaOf(other)).toMatchObject({ decision: 'deny', code: 'ERR_GATE_CHAIN_DENIED' });
    // The relay carried the whole session, and never a plaintext of it.
    expect(r.forwarded.length).toBeGreaterThan(4);
    const relayed = Buffer.concat(r.forwarded.map((p) => Buffer.from(p)));
    for (const plain of ['hello from a', 'read_text_file', 'tools/call', 'io.mandate/invocation'])
      expect(relayed.includes(Buffer.from(plain)), plain).toBe(false);
    // Both calls decided and logged as over a direct connection.
    await w.point.flush();
    expect((await recordsOf(w)).map((rec) => rec['type'])).toEqual([
      'mandate/chain/v1',
      'mandate/invocation/v2',
      'mandate/decision/v1',
      'mandate/outcome/v1',
      'mandate/invocation/v2',
      'mandate/decision/v1',
    ]);
  });

  it('a relay that drops its connections mid-call: the call fails, its upstream call is cancelled and logged, sessions through another relay go on, and the agent carries on through it', async () => {
    const w = await world();
    const r1 = await relay(w, 'relay-1');
    const r2 = await relay(w, 'relay-2');
    const grants = ['tools=echo,hang'];
    const a = await w.agent('a', grants);
    const b = await w.agent('b', grants);
    const { client: viaR1 } = await w.connect(a, { route: r1.route });
    const { client: other } = await w.connect(b, { route: r2.route });
    expect(textOf(await viaR1.callTool({ name: 'echo', arguments: { text: 'one' } }))).toBe('one');
    expect(w.mcp.sessionCount).toBe(2);

    const pending = viaR1
      .callTool({ name: 'hang', arguments: {} })
      .then(() => 'answered')
      .catch((error: unknown) => error);
    // Decided and forwarded (invocation and decision logged after the chain record and echo's
    // three records), then the relay goes down.
    await expect.poll(() => w.log.size).toBe(6);
    await r1.drop();
    expect(await pending).toBeInstanceOf(Error);
    await expect.poll(() => w.mcp.sessionCount).toBe(1);
    await w.point.flush();
    await expect
      .poll(async () =>
        (await recordsOf(w))
          .filter((rec) => rec['type'] === 'mandate/outcome/v1')
          .map((rec) => rec['error'] ?? rec['status']),
      )
      .toEqual(['ok', 'ERR_MCP_CALL_CANCELLED']);

    // The session through the other relay never noticed.
    expect(textOf(await other.callTool({ name: 'echo', arguments: { text: 'two' } }))).toBe('two');
    // The agent reconnects through the relay still up; its invocations go on from its head.
    const { client: viaR2, transport } = await w.connect(a, { route: r2.route });
    expect(transport.session?.head).toBe(await w.point.head(a.identity.identifier));
    expect(textOf(await viaR2.callTool({ name: 'echo', arguments: { text: 'three' } }))).toBe(
      'three',
    );
    await w.point.flush();
    const invocations = (await recordsOf(w)).filter(
      (rec) => rec['type'] === 'mandate/invocation/v2' && rec['agent'] === a.identity.identifier,
    );
    expect(invocations.map((rec) => rec['tool'])).toEqual(['echo', 'hang', 'echo']);
  });
});
