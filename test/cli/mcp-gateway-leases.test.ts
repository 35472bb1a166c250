// Gate 3 end to end with the CLI: `mandate gateway start` hosts a broker on its home for the
// upstreams with `mandate.lease`. The secret is put in the home's sealed store, the catalog is
// listed with it, an unmodified MCP client calls through `mandate mcp connect`; the stdio upstream
// gets the credential (it checks it), the agent sees it redacted, `mandate lease list` shows the
// agent's lease, `mandate lease revoke` from another process denies the next call, and the trail
// (lease records included) verifies offline.
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { json, run, type Run } from '../helpers/cli.js';
import { freePort, killChildren, startMandate, withStdin } from '../helpers/processes.js';
import { repoRoot } from '../helpers/vectors.js';
import { TEST_SERVER_COMMAND } from '../helpers/mcp-world.js';
import { DECISION_META_KEY, type GatewayDecisionMeta } from '../../src/mcp/index.js';

const SECRET = 'sk_cli_5e6f7a8b9c0d1e2f';
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const TOOLS = 'tools=whoami,leak,leak_error';
const POLICIES = `
@id("leased")
permit(principal, action in [Action::"listTool", Action::"callTool"], resource in Server::"pay");
@id("lease-pay")
permit(principal, action == Action::"leaseSecret", resource == Secret::"proxy/pay-key");
`;

const clients: Client[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => undefined);
  await killChildren();
});

const bin = ['--import', 'tsx', join(repoRoot, 'src', 'cli', 'bin.ts')];

const textOf = (result: unknown) =>
  ((result as CallToolResult).content[0] as { text: string }).text;
const metaOf = (result: unknown) =>
  (result as CallToolResult)._meta?.[DECISION_META_KEY] as GatewayDecisionMeta | undefined;

describe('mandate gateway start with a leased upstream', () => {
  it('leases the credential per agent from the home, injects it, scrubs it, and honours a revocation', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mandate-cli-gate3-'));
    const path = (name: string) => join(dir, name);
    const h = async (...argv: string[]): Promise<Record<string, unknown>> => {
      const r: Run = await run('--home', dir, '--json', ...argv);
      expect(r.code, `${argv.join(' ')}: ${r.stderr}`).toBe(0);
      return json(r);
    };
    await h('authority', 'init');
    for (const name of ['dana', 'agent', 'gateway']) await h('identity', 'create', '--name', name);
    expect((await withStdin(dir, `${SECRET}\n`, 'secret', 'put', 'pay-key')).code).toBe(0);
    await h(
      'credential',
      'issue',
      '--to',
      'dana',
      '--attr',
      TOOLS,
      '--attr',
      'secrets=proxy/pay-key',
      '--attr',
      'human=true',
      '--out',
      path('dana.chain'),
    );
    await h(
      'credential',
      'issue',
      '--to',
      'gateway',
      '--attr',
      'role=gateway',
      '--out',
      path('gw'),
    );
    await h(
      'delegate',
      '--chain',
      path('dana.chain'),
      '--from',
      'dana',
      '--to',
      'agent',
      '--constraint',
      TOOLS,
      '--constraint',
      'secrets=proxy/pay-key',
      '--purpose',
      'pay things',
      '--out',
      path('agent.chain'),
    );
    writeFileSync(
      path('gateway.json'),
      JSON.stringify({
        mcpServers: {
          pay: {
            command: TEST_SERVER_COMMAND.command,
            args: [...TEST_SERVER_COMMAND.args, 'leased'],
            env: { EXPECT_KEY_SHA256: sha256(SECRET) },
            mandate: { lease: { secret: 'pay-key', env: 'UPSTREAM_KEY' } },
          },
        },
      }),
    );
    const catalog = await h('gateway', 'catalog', '--config', path('gateway.json'));
    writeFileSync(path('catalog.json'), JSON.stringify(catalog));
    writeFileSync(path('policies.cedar'), POLICIES);
    await h('policy', 'publish', path('policies.cedar'), '--catalog', path('catalog.json'));

    const port = await freePort();
    const gateway = startMandate(
      dir,
      'gateway',
      'start',
      '--config',
      path('gateway.json'),
      '--listen',
      `127.0.0.1:${port}`,
      '--identity',
      'gateway',
      '--credential',
      path('gw'),
    );
    await gateway.waitFor(/gateway listening/);
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [
        ...bin,
        '--home',
        dir,
        'mcp',
        'connect',
        `/ip4/127.0.0.1/tcp/${port}`,
        '--identity',
        'agent',
        '--credential',
        path('agent.chain'),
      ],
      cwd: repoRoot,
      stderr: 'pipe',
    });
    const client = new Client({ name: 'unmodified-client', version: '1' });
    clients.push(client);
    await client.connect(transport);
    const call = (name: string) => client.callTool({ name, arguments: {} });

    const who = textOf(await call('whoami'));
    expect(who).toBe(`${who.split(' ')[0]!} credential=${sha256(SECRET)}`);
    expect(textOf(await call('leak'))).toBe('my key is [mandate-redacted]');

    // The agent's lease, in the home: held by the agent, for `pay-key`.
    const agentId = (await h('identity', 'show', 'agent'))['identifier'];
    const listed = (await h('lease', 'list', '--state', 'active'))['leases'] as Record<
      string,
      unknown
    >[];
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ kind: 'proxy', resource: 'pay-key', holder: agentId });

    // Revoked by the operator from another process: the next call is denied, then a new lease.
    await h('lease', 'revoke', String(listed[0]!['id']), '--identity', 'gateway');
    expect(metaOf(await call('whoami'))).toMatchObject({ code: 'ERR_MCP_LEASE_REVOKED' });
    expect(textOf(await call('whoami'))).toMatch(/credential=/);
    await client.close();
    expect(await gateway.stop('SIGTERM')).toBe(0);

    // Stopping the gateway ended its leases; the trail verifies, and holds no secret.
    expect((await h('lease', 'list', '--state', 'active'))['leases']).toEqual([]);
    await h('audit', 'checkpoint');
    expect(await h('audit', 'verify', '--enforcer', 'gateway')).toMatchObject({ ok: true });
    const exported = await run('--home', dir, '--json', 'audit', 'export');
    expect(exported.stdout.length).toBeGreaterThan(0);
    expect(exported.stdout).not.toContain(SECRET);
  }, 120_000);
});
