import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { authorityHome, brokerHome, expectErrorStdout, json, okJson, run } from '../helpers/cli.js';
import { freePort, killChildren, startMandate } from '../helpers/processes.js';
import { FILESYSTEM_SERVER } from '../helpers/mcp-world.js';

// The node's config (--config FILE < MANDATE_* < flags), its health and readiness endpoints, and
// a clean stop on SIGTERM in the middle of work: every lease the broker acknowledged is in the
// home after the process has exited.

afterEach(killChildren);

const AUDIENCE = 'payments-api';

describe('node config and lifecycle', () => {
  it('refuses a bad config naming the key, before anything is bound', async () => {
    const { home, dir } = await authorityHome('mandate-node-config', ['bob']);
    const port = await freePort();
    const config = join(dir, 'node.json');
    writeFileSync(
      config,
      JSON.stringify({ identity: 'bob', listen: `127.0.0.1:${port}`, lisen: 1 }),
    );
    const bad = await run('--home', home, '--json', 'node', 'start', '--config', config);
    expect(bad.code).toBe(3);
    expectErrorStdout(bad, 'ERR_NODE_CONFIG_INVALID');
    expect(bad.stderr).toContain('`lisen` (from the config file) is not a known key');
    // Nothing was bound: the port is free.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(port, '127.0.0.1', resolve));
    probe.close();

    const missing = await run(
      '--home',
      home,
      '--json',
      'node',
      'start',
      '--config',
      join(dir, 'no.json'),
    );
    expect(missing.code).toBe(6);
    expectErrorStdout(missing, 'ERR_NODE_CONFIG_NOT_FOUND');
    // A flag wins over the file, and its own error names the flag.
    const flag = await run(
      '--home',
      home,
      '--json',
      'node',
      'start',
      '--identity',
      'bob',
      '--listen',
      'nowhere',
    );
    expectErrorStdout(flag, 'ERR_ARGUMENT_INVALID');
    expect(flag.stderr).toContain('`--listen`');
  });

  it('node start and up refuse a `__proto__` or `constructor` key in --config as unknown, polluting nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mandate-node-config-proto-'));
    const home = join(dir, 'home');
    const cases = [
      ['{"__proto__":{"admin":{"listen":"0.0.0.0:0"}}}', '__proto__'],
      ['{"__proto__":{"x":1}}', '__proto__'],
      ['{"constructor":{}}', 'constructor'],
      ['{"toString":"x"}', 'toString'],
    ] as const;
    for (const [text, key] of cases) {
      const config = join(dir, 'node.json');
      writeFileSync(config, text);
      for (const command of [
        ['node', 'start', '--identity', 'bob', '--listen', '127.0.0.1:0'],
        ['up'],
      ]) {
        const r = await run('--home', home, '--json', ...command, '--config', config);
        expect(r.code, text).toBe(3);
        expectErrorStdout(r, 'ERR_NODE_CONFIG_INVALID', text);
        expect(r.stderr).toContain(`\`${key}\` (from the config file) is not a known key`);
      }
    }
    expect(({} as Record<string, unknown>)['x']).toBeUndefined();
    expect(({} as Record<string, unknown>)['admin']).toBeUndefined();
  });

  it('node start and up refuse a --config that is not a regular file, without reading or waiting on it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mandate-node-config-device-'));
    const fifo = join(dir, 'node.pipe');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    for (const path of ['/dev/zero', fifo, dir])
      for (const command of [['node', 'start'], ['up']]) {
        const r = await run('--home', join(dir, 'home'), '--json', ...command, '--config', path);
        expect(r.code, path).toBe(3);
        expectErrorStdout(r, 'ERR_NODE_CONFIG_INVALID', path);
        expect(r.stderr).toContain(`config file \`${path}\` is not a regular file`);
      }
  });

  it('dashboard, up and node start refuse an admin.listen off loopback, before anything is bound', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mandate-node-config-admin-'));
    const home = join(dir, 'home');
    for (const listen of ['0.0.0.0:0', '0:0', '[::]:0']) {
      const flag = await run('--home', home, '--json', 'dashboard', '--listen', listen);
      expect(flag.code, listen).toBe(3);
      expectErrorStdout(flag, 'ERR_ARGUMENT_INVALID', listen);
      expect(flag.stderr).toContain('`--listen` must be on loopback');
      const config = join(dir, 'node.json');
      writeFileSync(config, JSON.stringify({ admin: { listen } }));
      for (const command of [
        ['up'],
        ['node', 'start', '--identity', 'bob', '--listen', '127.0.0.1:0'],
      ]) {
        const r = await run('--home', home, '--json', ...command, '--config', config);
        expect(r.code, listen).toBe(3);
        expectErrorStdout(r, 'ERR_NODE_CONFIG_INVALID', listen);
        expect(r.stderr).toContain('`admin.listen` (from the config file) must be on loopback');
      }
    }
  });

  it('broker start from a config file and the environment: ready per part; SIGTERM mid-work loses no acknowledged lease', async () => {
    const { home, dir, brokerCred, agentCred } = await brokerHome(
      'mandate-node-stop',
      [`secrets=jwt/${AUDIENCE}`, 'secret_scopes=refunds'],
      `jwt/${AUDIENCE}`,
    );
    const port = await freePort();
    const healthPort = await freePort();
    const config = join(dir, 'broker.json');
    writeFileSync(
      config,
      JSON.stringify({
        identity: 'broker',
        listen: `127.0.0.1:${port}`,
        credentials: [brokerCred],
        shutdownTimeoutMs: 8000,
      }),
    );
    process.env.MANDATE_HEALTH_LISTEN = `127.0.0.1:${healthPort}`;
    const node = startMandate(home, 'broker', 'start', '--config', config);
    delete process.env.MANDATE_HEALTH_LISTEN;
    await node.waitFor(/broker: serving/);
    await node.waitFor(/info health /);
    const ready = await fetch(`http://127.0.0.1:${healthPort}/readyz`);
    expect(ready.status).toBe(200);
    const body = (await ready.json()) as {
      ready: boolean;
      parts: Record<string, { ready: boolean }>;
    };
    expect(body.ready).toBe(true);
    expect(Object.keys(body.parts)).toEqual(
      expect.arrayContaining(['home', 'deny-set', 'listener', 'broker', 'health']),
    );

    const route = `/ip4/127.0.0.1/tcp/${port}`;
    const lease = () =>
      run(
        '--home',
        home,
        '--json',
        'lease',
        'jwt',
        '--broker',
        route,
        '--audience',
        AUDIENCE,
        '--scope',
        'refunds',
        '--identity',
        'agent',
        '--credential',
        agentCred,
      );
    const acknowledged: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await lease();
      expect(r.code, r.stderr).toBe(0);
      acknowledged.push((json(r) as { leaseId: string }).leaseId);
    }
    // One more in flight as the signal arrives: granted (and then kept) or refused, never lost.
    const inFlight = lease();
    node.child.kill('SIGTERM');
    const last = await inFlight;
    if (last.code === 0) acknowledged.push((json(last) as { leaseId: string }).leaseId);
    expect(await node.exited).toBe(0);
    expect(node.stderr()).toMatch(/stopping signal=SIGTERM/);
    expect(node.stderr()).toMatch(/info stopped/);
    expect(node.stderr()).not.toMatch(/ERR_NODE_STOP_TIMEOUT/);

    const listed = await okJson<{ leases: { id: string; state: string }[] }>(home, 'lease', 'list');
    const stored = new Map(listed.leases.map((l) => [l.id, l.state]));
    for (const id of acknowledged) expect(stored.get(id), id).toBe('active');
  }, 120_000);

  it('node start --config composes the authority and the gateway behind one listener; a bad key of their sections is refused naming it, before anything is bound', async () => {
    const { home, dir } = await authorityHome('mandate-node-services', []);
    // `authority init` again reuses the authority and says who it is.
    const authority = (await okJson<{ identifier: string }>(home, 'authority', 'init')).identifier;
    expect(authority).toBeDefined();
    const gatewayFile = join(dir, 'gateway.json');
    writeFileSync(
      gatewayFile,
      JSON.stringify({
        mcpServers: { fs: { command: process.execPath, args: [FILESYSTEM_SERVER, dir] } },
      }),
    );
    const port = await freePort();
    const healthPort = await freePort();
    const base = {
      identity: 'authority',
      listen: `127.0.0.1:${port}`,
      // echo beside them: for credential holders only, behind the same listener.
      services: ['authority', 'gateway', 'echo'],
      gateway: { config: gatewayFile, checkpointIntervalSeconds: 1 },
      authorityService: { credentialTtlSeconds: 600 },
      health: { listen: `127.0.0.1:${healthPort}` },
    };
    const refused = async (config: Record<string, unknown>, message: string) => {
      const file = join(dir, 'bad.json');
      writeFileSync(file, JSON.stringify(config));
      const bad = await run('--home', home, '--json', 'node', 'start', '--config', file);
      expectErrorStdout(bad, 'ERR_NODE_CONFIG_INVALID');
      expect(bad.stderr).toContain(message);
      // Nothing was bound: the port is free.
      const probe = createServer();
      await new Promise<void>((resolve) => probe.listen(port, '127.0.0.1', resolve));
      await new Promise<void>((resolve) => {
        probe.close(() => {
          resolve();
        });
      });
    };
    await refused(
      { ...base, gateway: { config: gatewayFile, checkpointInterval: 1 } },
      '`gateway.checkpointInterval` (from the config file) is not a known key',
    );
    await refused(
      { ...base, authorityService: { credentialTtl: 600 } },
      '`authorityService.credentialTtl` (from the config file) is not a known key',
    );
    await refused({ ...base, gateway: undefined }, '`gateway.config` is required');
    // A gateway configuration that is not a regular file is refused, never read without end.
    const fifo = join(dir, 'gateway.pipe');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    for (const path of ['/dev/zero', fifo])
      await refused(
        { ...base, gateway: { config: path } },
        `gateway configuration \`${path}\` (\`gateway.config\`) is not a regular file`,
      );
    process.env['MANDATE_GATEWAY_CONFIG'] = '/dev/zero';
    try {
      await refused(
        { ...base, gateway: undefined },
        'gateway configuration `/dev/zero` (`gateway.config`) is not a regular file',
      );
    } finally {
      delete process.env['MANDATE_GATEWAY_CONFIG'];
    }

    const configFile = join(dir, 'node.json');
    writeFileSync(configFile, JSON.stringify(base));
    const node = startMandate(home, 'node', 'start', '--config', configFile);
    await node.waitFor(/info listening /);
    expect(node.stderr()).toContain(
      `route=/ip4/127.0.0.1/tcp/${port} authority=${authority} credentialTtlSeconds=600 upstreams=fs`,
    );
    await node.waitFor(/info health /);
    const ready = await fetch(`http://127.0.0.1:${healthPort}/readyz`);
    const body = (await ready.json()) as {
      ready: boolean;
      parts: Record<string, { ready: boolean }>;
    };
    expect(ready.status).toBe(200);
    expect(body.parts).toMatchObject({ authority: { ready: true }, gateway: { ready: true } });

    // The authority's enrollment answers through the shared listener.
    const { ticket } = await okJson<{ ticket: string }>(
      home,
      'ticket',
      'create',
      '--attr',
      'role=client',
      '--route',
      `/ip4/127.0.0.1/tcp/${port}`,
    );
    const other = mkdtempSync(join(tmpdir(), 'mandate-node-services-b-'));
    await okJson(other, 'identity', 'create', '--name', 'bob');
    await okJson(other, 'ticket', 'redeem', ticket, '--identity', 'bob');
    await node.waitFor(/enrollment: enrolled/);

    node.child.kill('SIGTERM');
    expect(await node.exited).toBe(0);
    expect(node.stderr()).toMatch(/info stopped/);
  }, 120_000);
});
