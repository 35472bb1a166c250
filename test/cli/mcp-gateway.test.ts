// `mandate gateway start` and `mandate mcp connect` as child processes: an unmodified MCP client
// (the SDK's Client over StdioClientTransport) launches `mandate mcp connect`, which forwards over
// a secure channel (TCP) to the gateway in front of the reference filesystem server. The home's
// audit trail of the session verifies offline (`mandate audit verify`).
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  ElicitRequestSchema,
  type CallToolResult,
  type ElicitRequest,
} from '@modelcontextprotocol/sdk/types.js';
import { expectErrorStdout } from '../helpers/cli.js';
import { freePort, killChildren, startMandate } from '../helpers/processes.js';
import { repoRoot } from '../helpers/vectors.js';
import { TEST_SERVER_COMMAND } from '../helpers/mcp-world.js';
import { CliHome, closeMcpClients, connectMcpCli } from '../helpers/mcp-cli.js';
import { DECISION_META_KEY, type GatewayDecisionMeta } from '../../src/mcp/index.js';

afterEach(async () => {
  await closeMcpClients();
  await killChildren();
});

const metaOf = (result: CallToolResult): GatewayDecisionMeta | undefined =>
  result._meta?.[DECISION_META_KEY] as GatewayDecisionMeta | undefined;

describe('mandate gateway start / mandate mcp connect', () => {
  it('an unmodified MCP client works through `mcp connect`; the trail verifies offline', async () => {
    const h = new CliHome();
    const files = mkdtempSync(join(tmpdir(), 'mandate-cli-mcp-files-'));
    mkdirSync(join(files, 'allowed'));
    mkdirSync(join(files, 'secret'));
    writeFileSync(join(files, 'allowed', 'a.txt'), 'hello from a');
    writeFileSync(join(files, 'secret', 'key.txt'), 'the secret');
    await h.ok('authority', 'init');
    for (const name of ['dana', 'agent', 'gateway'])
      await h.ok('identity', 'create', '--name', name);
    await h.ok(
      'credential',
      'issue',
      '--to',
      'dana',
      '--attr',
      'tools=read_text_file,list_directory,write_file,list_allowed_directories',
      '--attr',
      'human=true',
      '--out',
      h.path('dana.chain'),
    );
    await h.ok(
      'credential',
      'issue',
      '--to',
      'gateway',
      '--attr',
      'role=gateway',
      '--out',
      h.path('gateway.chain'),
    );
    await h.ok(
      'delegate',
      '--chain',
      h.path('dana.chain'),
      '--from',
      'dana',
      '--to',
      'agent',
      '--constraint',
      'tools=read_text_file,list_directory,write_file,list_allowed_directories',
      '--constraint',
      `read_text_file#path=${files}/allowed/**`,
      '--purpose',
      'read the allowed folder',
      '--out',
      h.path('agent.chain'),
    );
    const catalog = await h.publishFsCatalog(files);
    expect(catalog.tools.length).toBeGreaterThan(5);

    const port = await freePort();
    const gateway = h.startGateway(port, 'gateway.chain');
    await gateway.waitFor(/gateway listening/);
    // One enforcement point per home: a second gateway on it would fork the agents' chains.
    const second = h.startGateway(await freePort(), 'gateway.chain');
    expect(await second.exited).not.toBe(0);
    expect(second.stderr()).toContain('ERR_HOME_ENFORCEMENT_BUSY');

    const { client, log: connectLog } = await connectMcpCli(h.dir, `/ip4/127.0.0.1/tcp/${port}`, [
      '--identity',
      'agent',
      '--credential',
      h.path('agent.chain'),
    ]);
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort(), connectLog()).toEqual([
      'list_allowed_directories',
      'list_directory',
      'read_text_file',
    ]);
    const ok = (await client.callTool({
      name: 'read_text_file',
      arguments: { path: join(files, 'allowed', 'a.txt') },
    })) as CallToolResult;
    expect(ok.isError, JSON.stringify(ok)).not.toBe(true);
    expect(ok.content).toEqual([{ type: 'text', text: 'hello from a' }]);
    const denied = (await client.callTool({
      name: 'read_text_file',
      arguments: { path: join(files, 'secret', 'key.txt') },
    })) as CallToolResult;
    expect(metaOf(denied)).toMatchObject({ decision: 'deny', code: 'ERR_GATE_CHAIN_DENIED' });
    const write = (await client.callTool({
      name: 'write_file',
      arguments: { path: join(files, 'allowed', 'b.txt'), content: 'x' },
    })) as CallToolResult;
    expect(metaOf(write)).toMatchObject({ decision: 'deny', code: 'ERR_GATE_POLICY_DENIED' });
    await client.close();
    expect(await gateway.stop('SIGTERM')).toBe(0);

    // Three calls: the chain logged once, three invocations, three countersigned decisions, one outcome.
    await h.ok('audit', 'checkpoint');
    const verified = await h.ok<{ ok: boolean; records: number }>(
      'audit',
      'verify',
      '--enforcer',
      'gateway',
    );
    expect(verified).toMatchObject({ ok: true, records: 8 });
  }, 120_000);

  it('attack 13: `mcp connect` trusts only a `role=gateway` credential (or `--gateway`), answers a batch or `id: null`; the gateway checkpoints its log; a link cannot say `human=true`', async () => {
    const h = new CliHome();
    const files = mkdtempSync(join(tmpdir(), 'mandate-cli-mcp-files-'));
    mkdirSync(join(files, 'allowed'));
    writeFileSync(join(files, 'allowed', 'a.txt'), 'hello from a');
    await h.ok('authority', 'init');
    const ids: Record<string, string> = {};
    for (const name of ['dana', 'agent', 'gateway'])
      ids[name] = (
        await h.ok<{ identifier: string }>('identity', 'create', '--name', name)
      ).identifier;
    const tools = 'tools=read_text_file,list_allowed_directories';
    await h.ok(
      'credential',
      'issue',
      '--to',
      'dana',
      '--attr',
      tools,
      '--attr',
      'human=true',
      '--out',
      h.path('dana.chain'),
    );
    // Finding 8a: only the authority writes `human=true`.
    const human = await h.run(
      'delegate',
      '--chain',
      h.path('dana.chain'),
      '--from',
      'dana',
      '--to',
      'agent',
      '--constraint',
      'human=true',
      '--out',
      h.path('x.chain'),
    );
    expect(human.code).not.toBe(0);
    expectErrorStdout(human, 'ERR_DELEGATION_HUMAN');
    expect(human.stdout).toContain('ERR_DELEGATION_HUMAN');
    await h.ok(
      'delegate',
      '--chain',
      h.path('dana.chain'),
      '--from',
      'dana',
      '--to',
      'agent',
      '--constraint',
      tools,
      '--constraint',
      `read_text_file#path=${files}/allowed/**`,
      '--out',
      h.path('agent.chain'),
    );
    // A member's credential without the role, and the gateway's with it.
    await h.ok(
      'credential',
      'issue',
      '--to',
      'gateway',
      '--attr',
      'label.team=ops',
      '--out',
      h.path('member.chain'),
    );
    await h.ok(
      'credential',
      'issue',
      '--to',
      'gateway',
      '--attr',
      'role=gateway',
      '--out',
      h.path('gateway.chain'),
    );
    await h.publishFsCatalog(files);
    const port = await freePort();
    const route = `/ip4/127.0.0.1/tcp/${port}`;
    const gatewayAs = (credential: string, ...more: string[]) =>
      h.startGateway(port, credential, ...more);
    const connect = (...more: string[]) =>
      startMandate(
        h.dir,
        'mcp',
        'connect',
        route,
        '--identity',
        'agent',
        '--credential',
        h.path('agent.chain'),
        ...more,
      );

    // Finding 3: a member that is not a gateway is refused by default, accepted when named.
    const member = gatewayAs('member.chain');
    await member.waitFor(/gateway listening/);
    const refused = connect();
    expect(await refused.exited).not.toBe(0);
    expect(refused.stderr()).not.toContain('mcp connected');
    const named = connect('--gateway', ids['gateway']!);
    await named.waitFor(/mcp connected/);
    await named.exited;
    expect(await member.stop('SIGTERM')).toBe(0);

    // Finding 8c: the gateway signs checkpoints while its log grows.
    const gateway = gatewayAs('gateway.chain', '--checkpoint-interval', '1s');
    await gateway.waitFor(/gateway listening/);
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(repoRoot, 'src', 'cli', 'bin.ts'),
        '--home',
        h.dir,
        'mcp',
        'connect',
        route,
        '--identity',
        'agent',
        '--credential',
        h.path('agent.chain'),
      ],
      { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    await expect.poll(() => err, { timeout: 30_000 }).toContain('mcp connected');
    // Finding 7: a batch, `id: null` and a line that is not JSON are answered, not dropped.
    child.stdin.write('[{"jsonrpc":"2.0","id":1,"method":"ping"}]\n');
    child.stdin.write('{"jsonrpc":"2.0","id":null,"method":"ping"}\n');
    child.stdin.write('not json\n');
    child.stdin.write(
      `${JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'read_text_file', arguments: { path: join(files, 'allowed', 'a.txt') } } })}\n`,
    );
    const lines = () =>
      out
        .split('\n')
        .filter((l) => l !== '')
        .map(
          (l) =>
            JSON.parse(l) as { id?: unknown; error?: { code?: number }; result?: CallToolResult },
        );
    await expect.poll(() => lines().length, { timeout: 30_000 }).toBe(4);
    const answers = lines();
    expect(
      answers
        .filter((a) => a.id === null)
        .map((a) => a.error?.code)
        .sort(),
    ).toEqual([-32700, -32600, -32600].sort());
    expect(answers.find((a) => a.id === 7)?.result?.content).toEqual([
      { type: 'text', text: 'hello from a' },
    ]);
    await gateway.waitFor(/audit checkpoint signed/);
    child.stdin.end();
    expect(await gateway.stop('SIGTERM')).toBe(0);
    // No `audit checkpoint` here: the gateway's own checkpoint covers every record.
    const verified = await h.ok<{ ok: boolean; records: number }>(
      'audit',
      'verify',
      '--enforcer',
      'gateway',
    );
    expect(verified).toMatchObject({ ok: true, records: 4 });
  }, 180_000);

  it("`mcp connect --approver`: the client's elicitation asks the person, whose signed approval lets the call through", async () => {
    const h = new CliHome();
    await h.ok('authority', 'init');
    for (const name of ['dana', 'agent', 'gateway'])
      await h.ok('identity', 'create', '--name', name);
    await h.ok(
      'credential',
      'issue',
      '--to',
      'dana',
      '--attr',
      'tools=refund,refunds_done',
      '--attr',
      'human=true',
      '--out',
      h.path('dana.chain'),
    );
    await h.ok(
      'credential',
      'issue',
      '--to',
      'gateway',
      '--attr',
      'role=gateway',
      '--out',
      h.path('gateway.chain'),
    );
    await h.ok(
      'delegate',
      '--chain',
      h.path('dana.chain'),
      '--from',
      'dana',
      '--to',
      'agent',
      '--constraint',
      'tools=refund,refunds_done',
      '--purpose',
      'refunds',
      '--out',
      h.path('agent.chain'),
    );
    writeFileSync(
      h.path('gateway.json'),
      JSON.stringify({
        mcpServers: {
          shop: {
            command: TEST_SERVER_COMMAND.command,
            args: [...TEST_SERVER_COMMAND.args, 'shop'],
          },
        },
      }),
    );
    const catalog = await h.ok('gateway', 'catalog', '--config', h.path('gateway.json'));
    writeFileSync(h.path('catalog.json'), JSON.stringify(catalog));
    writeFileSync(
      h.path('policies.cedar'),
      `@id("list") permit(principal, action == Action::"listTool", resource in Server::"shop");
@id("small") permit(principal, action == Action::"callTool", resource == Tool::"shop/refund")
  when { context.args has amount && context.args.amount <= 100 };
@id("large") @approval("refunds above 100 need a person")
permit(principal, action == Action::"callTool", resource == Tool::"shop/refund")
  when { context.args has amount && context.args.amount > 100 };`,
    );
    await h.ok('policy', 'publish', h.path('policies.cedar'), '--catalog', h.path('catalog.json'));
    const port = await freePort();
    const gateway = startMandate(
      h.dir,
      'gateway',
      'start',
      '--config',
      h.path('gateway.json'),
      '--listen',
      `127.0.0.1:${port}`,
      '--identity',
      'gateway',
      '--credential',
      h.path('gateway.chain'),
    );
    await gateway.waitFor(/gateway listening/);
    const client = new Client({ name: 'ide', version: '1' }, { capabilities: { elicitation: {} } });
    const shown: ElicitRequest[] = [];
    client.setRequestHandler(ElicitRequestSchema, (request) => {
      shown.push(request);
      return { action: 'accept', content: { reason: 'customer called' } };
    });
    const { log: connectLog } = await connectMcpCli(
      h.dir,
      `/ip4/127.0.0.1/tcp/${port}`,
      ['--identity', 'agent', '--credential', h.path('agent.chain'), '--approver', 'dana'],
      client,
    );
    const result = (await client.callTool(
      { name: 'refund', arguments: { order: 'o-1', amount: 300 } },
      undefined,
      { timeout: 120_000 },
    )) as CallToolResult;
    expect(result.content, connectLog()).toEqual([{ type: 'text', text: 'refunded 300 on o-1' }]);
    expect(shown).toHaveLength(1);
    expect(shown[0]!.params.message).toContain('arguments: {"amount":300,"order":"o-1"}');
    expect(shown[0]!.params.message).toContain('why: refunds above 100 need a person');
    await client.close();
    expect(await gateway.stop('SIGTERM')).toBe(0);
    const approvals = await h.ok<{ approvals: { status: string; answer: { reason: string } }[] }>(
      'approvals',
      'list',
    );
    expect(approvals.approvals).toMatchObject([
      { status: 'used', answer: { reason: 'customer called' } },
    ]);
    // Escalation and the approved call: the chain logged once, two invocations, two decisions (one with dana's approval),
    // the decision trace, one outcome; all verify offline.
    await h.ok('audit', 'checkpoint');
    const verified = await h.ok<{ ok: boolean; records: number }>(
      'audit',
      'verify',
      '--enforcer',
      'gateway',
    );
    expect(verified).toMatchObject({ ok: true, records: 7 });
  }, 180_000);
});
