import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { expectErrorStdout, type Run } from '../helpers/cli.js';
import { freePort, killChildren, startMandate, withEnv, withStdin } from '../helpers/processes.js';
import { FILESYSTEM_SERVER } from '../helpers/mcp-world.js';

// `mandate up` as a real process: the one-time set-up of a fresh home and its reuse, the one
// dashboard line on stdout, the admin API it serves (refused without a session, the printed
// token accepted once), a clean stop on SIGTERM, and what it refuses before binding anything.

afterEach(killChildren);

const DASHBOARD_LINE = /^dashboard: (http:\/\/127\.0\.0\.1:(\d+))\/#token=([\w-]+)&key=(\S+)\n$/;

const freshDir = (prefix: string) => mkdtempSync(join(tmpdir(), `${prefix}-`));

/** `mandate --home HOME --json up ARGV…`, to its exit. */
async function up(home: string, ...argv: string[]): Promise<Run> {
  const r = await withStdin(home, '', 'up', ...argv);
  return { ...r, code: r.code ?? -1 };
}

async function holdPort(): Promise<{ server: Server; port: number }> {
  const port = await freePort();
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { server, port };
}

describe('mandate up', () => {
  it('sets up a fresh home, prints one dashboard line, exits 0 with --exit; a second run reuses the home', async () => {
    const home = join(freshDir('mandate-up'), 'home');
    const first = await up(home, '--exit');
    expect(first.code, first.stderr).toBe(0);
    const line = DASHBOARD_LINE.exec(first.stdout);
    expect(line, first.stdout).not.toBeNull();
    expect(first.stderr).toMatch(
      /up: created the authority name=authority identifier=I[0-9a-f]{64}/,
    );
    expect(first.stderr).toMatch(/ up services=authority,relay,admin /);
    expect(first.stderr).toMatch(/ stopped\n/);
    expect(existsSync(join(home, 'mandate.db'))).toBe(true);

    const second = await up(home, '--exit');
    expect(second.code, second.stderr).toBe(0);
    const again = DASHBOARD_LINE.exec(second.stdout);
    expect(again, second.stdout).not.toBeNull();
    expect(second.stderr).not.toContain('created the authority');
    // The same authority signs the log's checkpoints: the home was reused, not set up again.
    expect(again![4]).toBe(line![4]);
    // A fresh one-time token per start.
    expect(again![3]).not.toBe(line![3]);
  });

  it('serves the admin API until SIGTERM: no session refused, the printed token accepted once', async () => {
    const home = join(freshDir('mandate-up-serve'), 'home');
    const node = startMandate(home, 'up');
    await node.waitFor(/ up services=/, 60_000);
    await vi.waitFor(
      () => {
        expect(node.stdout()).toMatch(DASHBOARD_LINE);
      },
      { timeout: 5_000 },
    );
    expect(node.stdout().split('\n')).toHaveLength(2); // one line and its newline
    const [, url, , token] = DASHBOARD_LINE.exec(node.stdout())!;

    const anonymous = await fetch(`${url}/api/agents`);
    expect(anonymous.status).toBe(401);

    const login = () =>
      fetch(`${url}/api/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: url! },
        body: JSON.stringify({ token }),
      });
    const accepted = await login();
    expect(accepted.status).toBe(200);
    const cookie = (accepted.headers.get('set-cookie') ?? '').split(';')[0]!;
    const agents = await fetch(`${url}/api/agents`, { headers: { cookie } });
    expect(agents.status).toBe(200);
    const reused = await login();
    expect(reused.status).toBe(401);
    expect(((await reused.json()) as { error: { code: string } }).error.code).toBe(
      'ERR_ADMIN_LOGIN_INVALID',
    );

    expect(await node.stop('SIGTERM')).toBe(0);
    expect(node.stderr()).toMatch(/stopping signal=SIGTERM/);
    expect(node.stderr()).toMatch(/ stopped\n/);
    await expect(fetch(`${url}/api/session`)).rejects.toThrow();
  });

  it('--demo runs the swarm scenario, then through the node it serves: the dashboard shows its members and signed trail', async () => {
    const home = join(freshDir('mandate-up-demo'), 'home');
    const node = startMandate(home, 'up', '--demo', '--agents', '12', '--rotate', '2');
    await node.waitFor(
      / up home=\S+\/demo services=authority,relay,broker,gateway,admin /,
      120_000,
    );
    await vi.waitFor(
      () => {
        expect(node.stdout()).toMatch(/\ndashboard: /);
      },
      { timeout: 5_000 },
    );
    const out = node.stdout();
    // The scenario's summary, then the dashboard line, last.
    expect(out).toMatch(/\nsummary\nagents provisioned: 12 /);
    // Step 19 went through the node's own services: 12 agents and the human enrolled at its
    // authority service, their calls decided by its gateway, the revoked agent refused there.
    expect(out).toMatch(/\nthrough the node: +13 tickets redeemed at its authority service /);
    expect(out).toMatch(
      /\nnode gates: .*injected refund deny ERR_GATE_CHAIN_DENIED, injected read deny ERR_GATE_CHAIN_DENIED; 3 refunds within the cap executed; 12 JWT leases from its broker .*; live-agent-0 revoked mid-run: next call (refused ERR_REVOKED|closed by the node) .*, its lease revoked \d+ ms after the commit/,
    );
    expect(out).toMatch(
      /\nnode trail: +\d+ records written by the node; the whole log \(\d+ records\) verified offline/,
    );
    expect(node.stderr()).toMatch(
      /19\. the swarm through the node at \/ip4\/127\.0\.0\.1\/tcp\/\d+/,
    );
    const lastLine = `${out.trimEnd().split('\n').at(-1)!}\n`;
    const [, url, , token] = DASHBOARD_LINE.exec(lastLine)!;
    const login = await fetch(`${url}/api/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: url! },
      body: JSON.stringify({ token }),
    });
    expect(login.status).toBe(200);
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!;
    const get = async <T>(path: string): Promise<T> => {
      const r = await fetch(`${url}${path}`, { headers: { cookie } });
      expect(r.status, path).toBe(200);
      return (await r.json()) as T;
    };
    // The demo's members (enrolled by the authority, delegated to) and its trail of calls.
    const { agents } = await get<{ agents: { name: string | null; revoked: boolean }[] }>(
      '/api/agents',
    );
    expect(agents.map((a) => a.name)).toContain('agent-0');
    expect(agents.some((a) => a.revoked)).toBe(true);
    const denied = await get<{ total: number }>('/api/audit?decision=deny&limit=5');
    expect(denied.total).toBeGreaterThan(0);
    // The home it serves is held as well: a node on it, or the scenario run again (which starts
    // from an empty folder), is refused while it runs, and nothing of it is lost.
    const direct = await up(join(home, 'demo'), '--exit');
    expect(direct.code).not.toBe(0);
    expect(direct.stderr).toContain('ERR_HOME_LOCKED');
    const rerun = await withStdin(home, '', 'demo', '--agents', '12', '--rotate', '2');
    expect(rerun.code).not.toBe(0);
    expect(rerun.stderr).toContain('ERR_HOME_LOCKED');
    expect(existsSync(join(home, 'demo', 'mandate.db'))).toBe(true);
    expect((await get<{ agents: unknown[] }>('/api/agents')).agents.length).toBe(agents.length);
    expect(await node.stop('SIGTERM')).toBe(0);
  }, 240_000);

  it('--demo stopped by SIGINT in the middle of step 19: the swarm and the node stop cleanly, the log verifies, the home is free', async () => {
    const home = join(freshDir('mandate-up-demo-sigint'), 'home');
    const node = startMandate(home, 'up', '--demo', '--agents', '150', '--rotate', '2');
    // Step 19 takes seconds with 150 agents (each enrolls, then opens its own MCP session).
    // Into the call pool, where leases are granted too: the broker's records come after the
    // gateway's last checkpoint, and the node's own checkpoint at its stop must cover them.
    await node.waitFor(/ delegation: human-lee → /, 180_000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await node.stop('SIGINT')).toBe(0);
    const stderr = node.stderr();
    expect(stderr).toContain('step 19 interrupted by SIGINT: stopping the node');
    expect(stderr).toMatch(/stopping signal=SIGINT/);
    expect(stderr).toMatch(/ stopped\n/);
    // No summary and no dashboard line: the run did not finish.
    expect(node.stdout()).not.toMatch(/^dashboard: /m);
    // What the node logged up to the signal, checkpointed as it stopped, verifies.
    const verify = await withStdin(
      join(home, 'demo'),
      '',
      'audit',
      'verify',
      '--enforcer',
      'authority',
      '--enforcer',
      'mcp-gateway',
    );
    expect(verify.code, verify.stderr).toBe(0);
    // Both homes are free again.
    const again = await up(home, '--exit');
    expect(again.code, again.stderr).toBe(0);
  }, 240_000);

  it('one demo run per home: `mandate demo` is refused while `up --demo` runs its scenario, and the demo flags take decimal digits only', async () => {
    const home = join(freshDir('mandate-up-demo-lock'), 'home');
    const node = startMandate(home, 'up', '--demo', '--agents', '40', '--rotate', '2');
    // The in-process scenario, before the node: the demo folder is being made.
    await node.waitFor(/1\. provisioning 40 agents/, 120_000);
    const rerun = await withStdin(home, '', 'demo', '--agents', '12', '--rotate', '2');
    expect(rerun.code).toBe(7);
    expect(rerun.stderr).toContain('ERR_HOME_LOCKED');
    expect(rerun.stderr).toContain('the demo scenario');
    // Nor may a node start on the folder the scenario is writing.
    const beside = await up(join(home, 'demo'), '--exit');
    expect(beside.code).toBe(7);
    expect(beside.stderr).toContain('ERR_HOME_LOCKED');
    // The run it would have wiped goes on to serve its home.
    await node.waitFor(/ up home=\S+\/demo services=/, 180_000);
    expect(await node.stop('SIGTERM'), node.stderr().slice(-1500)).toBe(0);
    for (const bad of ['1e3', '0x10', '12.0'])
      expectErrorStdout(
        await up(home, '--demo', '--agents', bad, '--exit'),
        'ERR_ARGUMENT_INVALID',
      );
  }, 240_000);

  it('on a home set up before, a config naming another identity is refused, not made an authority', async () => {
    const home = join(freshDir('mandate-up-typo'), 'home');
    expect((await up(home, '--exit')).code).toBe(0);
    const anchors = async () =>
      JSON.parse((await withStdin(home, '', 'trust', 'list')).stdout) as unknown;
    const before = await anchors();
    for (const [key, env] of [
      ['identity', { MANDATE_IDENTITY: 'typo-authorty' }],
      ['admin.authority', { MANDATE_ADMIN_AUTHORITY: 'typo-authorty' }],
    ] as const) {
      const r = await withEnv(home, '', env, 'up', '--exit');
      expect(r.code, r.stderr).toBe(3);
      expect(r.stderr).toContain(`\`${key}\` names \`typo-authorty\`, which is not an authority`);
    }
    // On a fresh home, an identity it has already is not made an authority, and a refused
    // set-up leaves no trust behind.
    const fresh = join(freshDir('mandate-up-fresh'), 'home');
    await withStdin(fresh, '', 'identity', 'create', '--name', 'agent-2');
    const taken = await withEnv(fresh, '', { MANDATE_IDENTITY: 'agent-2' }, 'up', '--exit');
    expect(taken.code, taken.stderr).toBe(3);
    expect(taken.stderr).toContain('`identity` names `agent-2`, an identity this home has');
    expect(JSON.parse((await withStdin(fresh, '', 'trust', 'list')).stdout)).toMatchObject({
      anchors: [],
    });
    // An agent of the home is not made an authority either.
    await withStdin(home, '', 'identity', 'create', '--name', 'agent-1');
    expect((await withEnv(home, '', { MANDATE_IDENTITY: 'agent-1' }, 'up', '--exit')).code).toBe(3);
    expect(await anchors()).toEqual(before);
    // An operator (admin.as) the home lacks: the config's error, on a set-up home and on a fresh
    // one — where nothing is set up first (the second outside attack found the authority made).
    const operator = { MANDATE_ADMIN_AS: 'typo-operator' };
    const setUp = await withEnv(home, '', operator, 'up', '--exit');
    expect(setUp.code, setUp.stderr).toBe(3);
    expect(setUp.stderr).toMatch(/ERR_NODE_CONFIG_INVALID.*`admin\.as` names `typo-operator`/);
    const untouched = join(freshDir('mandate-up-operator'), 'home');
    const refused = await withEnv(untouched, '', operator, 'up', '--exit');
    expect(refused.code, refused.stderr).toBe(3);
    expect(refused.stderr).toMatch(/ERR_NODE_CONFIG_INVALID.*`admin\.as` names `typo-operator`/);
    expect(JSON.parse((await withStdin(untouched, '', 'trust', 'list')).stdout)).toMatchObject({
      anchors: [],
    });
    expect(
      JSON.parse((await withStdin(untouched, '', 'identity', 'list')).stdout) as unknown,
    ).toMatchObject({ total: 0, identities: [] });
  }, 120_000);

  it('signs a last checkpoint over everything in the log when it stops, after every service that writes it', async () => {
    const dir = freshDir('mandate-up-checkpoint');
    const home = join(dir, 'home');
    const config = join(dir, 'node.json');
    writeFileSync(config, JSON.stringify({ broker: { http: '127.0.0.1:0' } }));
    const node = startMandate(home, 'up', '--config', config);
    await node.waitFor(/ up services=authority,relay,broker,admin /, 60_000);
    // A record the node did not write itself (as a lease or a late decision would come after the
    // gateway's own last checkpoint): the revocation record of `mandate revoke` beside it.
    const revoked = await withStdin(home, '', 'revoke', `I${'ab'.repeat(32)}`);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(await node.stop('SIGTERM')).toBe(0);
    expect(node.stderr()).toMatch(/audit checkpoint signed treeSize=1/);
    const verify = await withStdin(home, '', 'audit', 'verify');
    expect(verify.code, verify.stdout).toBe(0);
  }, 120_000);

  it('composes the broker and the MCP gateway only when the config gives them a section', async () => {
    const dir = freshDir('mandate-up-gateway');
    const gatewayFile = join(dir, 'gateway.json');
    writeFileSync(
      gatewayFile,
      JSON.stringify({
        mcpServers: { fs: { command: process.execPath, args: [FILESYSTEM_SERVER, dir] } },
      }),
    );
    const config = join(dir, 'node.json');
    writeFileSync(config, JSON.stringify({ gateway: { config: gatewayFile } }));
    const r = await up(join(dir, 'home'), '--exit', '--config', config);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(DASHBOARD_LINE);
    expect(r.stderr).toMatch(/ up services=authority,relay,gateway,admin /);
    expect(r.stderr).toMatch(/ upstreams=fs/);

    // The broker joins when configured, behind the same listener (for credential holders only).
    const brokerConfig = join(dir, 'broker.json');
    writeFileSync(brokerConfig, JSON.stringify({ broker: { http: '127.0.0.1:0' } }));
    const withBroker = await up(join(dir, 'home-2'), '--exit', '--config', brokerConfig);
    expect(withBroker.code, withBroker.stderr).toBe(0);
    expect(withBroker.stderr).toMatch(/ up services=authority,relay,broker,admin /);
    expect(withBroker.stderr).toMatch(/broker: serving kinds=jwt /);
  });

  it('refuses an invalid config naming the key, before the home is made or a port bound', async () => {
    const dir = freshDir('mandate-up-config');
    const home = join(dir, 'home');
    const { server, port } = await holdPort();
    server.close();
    const config = join(dir, 'node.json');
    writeFileSync(config, JSON.stringify({ listen: `127.0.0.1:${port}`, admin: { lisen: 'x' } }));
    const unknown = await up(home, '--exit', '--config', config);
    expect(unknown.code).toBe(3);
    expectErrorStdout(unknown, 'ERR_NODE_CONFIG_INVALID');
    expect(unknown.stderr).toContain('`admin.lisen` (from the config file) is not a known key');
    writeFileSync(config, JSON.stringify({ admin: { listen: 'anywhere' } }));
    const address = await up(home, '--exit', '--config', config);
    expect(address.code).toBe(3);
    expect(address.stderr).toContain('`admin.listen` (from the config file) is not a valid value');
    const flag = await up(home, '--exit', '--listen', 'nowhere');
    expect(flag.code).toBe(3);
    expectErrorStdout(flag, 'ERR_ARGUMENT_INVALID');
    expect(flag.stderr).toContain('`--listen`');
    // Nothing was made or bound.
    expect(existsSync(home)).toBe(false);
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(port, '127.0.0.1', resolve));
    probe.close();
  });

  it('refuses a taken port, for the channel listener and for the admin API', async () => {
    const dir = freshDir('mandate-up-port');
    const home = join(dir, 'home');
    const { server, port } = await holdPort();
    try {
      const channel = await up(home, '--exit', '--listen', `127.0.0.1:${port}`);
      expect(channel.code).toBe(7);
      expectErrorStdout(channel, 'ERR_TRANSPORT_ADDRESS_IN_USE');
      expect(channel.stderr).toContain(`\`127.0.0.1:${port}\``);
      const config = join(dir, 'node.json');
      writeFileSync(config, JSON.stringify({ admin: { listen: `127.0.0.1:${port}` } }));
      const admin = await up(home, '--exit', '--config', config);
      expect(admin.code).toBe(7);
      expectErrorStdout(admin, 'ERR_TRANSPORT_ADDRESS_IN_USE');
      // No dashboard line for a node that did not start.
      expect(admin.stdout).not.toContain('dashboard:');
    } finally {
      server.close();
    }
  });

  it('one node per home: a second `up`, or a single-service node, on a home a node serves is refused', async () => {
    const home = join(freshDir('mandate-up-lock'), 'home');
    const node = startMandate(home, 'up');
    await node.waitFor(/ up services=/, 60_000);
    const second = await up(home, '--exit');
    expect(second.code).not.toBe(0);
    expectErrorStdout(second, 'ERR_HOME_LOCKED');
    expect(second.stderr).toContain('one node per home');
    expect(second.stdout).not.toContain('dashboard:');
    const relay = await withStdin(
      home,
      '',
      'relay',
      'start',
      '--listen',
      '127.0.0.1:0',
      '--identity',
      'authority',
    );
    expect(relay.code).not.toBe(0);
    expectErrorStdout({ ...relay, code: relay.code ?? -1 }, 'ERR_HOME_LOCKED');
    expect(relay.stderr).toContain('one node per home');
    expect(await node.stop('SIGTERM')).toBe(0);
    // Released with the node: the home serves again.
    const again = await up(home, '--exit');
    expect(again.code, again.stderr).toBe(0);
    expect(existsSync(join(home, 'node.lock'))).toBe(false);
  });

  it('a single-service node started first on a home refuses `up` there while it runs (F7)', async () => {
    const home = join(freshDir('mandate-up-after'), 'home');
    expect((await withStdin(home, '', 'identity', 'create', '--name', 'relay')).code).toBe(0);
    const relay = startMandate(
      home,
      'relay',
      'start',
      '--listen',
      '127.0.0.1:0',
      '--identity',
      'relay',
    );
    await relay.waitFor(/listening/);
    const refused = await up(home, '--exit');
    expect(refused.code).toBe(7);
    expectErrorStdout(refused, 'ERR_HOME_LOCKED');
    expect(refused.stderr).toContain('a single-service node');
    expect(refused.stderr).toContain(`in process ${relay.child.pid!}`);
    expect(refused.stdout).not.toContain('dashboard:');
    expect(existsSync(join(home, 'node.lock'))).toBe(false);
    // Its registration goes when it stops: the home is free for `up` again.
    expect(await relay.stop('SIGTERM')).toBe(0);
    expect(readdirSync(join(home, 'service-nodes'))).toEqual([]);
  });
});
