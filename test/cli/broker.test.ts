import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../src/store/index.js';
import { AuditLog, parseAuditRecord } from '../../src/audit/index.js';
import { LeaseKind, LeaseState, newLeaseId } from '../../src/broker/index.js';
import { authorityHome, expectErrorStdout, failsJson, okJson, run } from '../helpers/cli.js';
import { freePort, killChildren, startMandate, withStdin } from '../helpers/processes.js';
import pg from 'pg';
import {
  SHARED_POSTGRES_URL,
  sharedPostgresUnavailable,
  skipUnless,
} from '../support/postgres-cluster.js';

// `mandate secret`, `mandate lease` and `mandate broker start` as a user runs them.

afterEach(async () => {
  await killChildren();
});

describe('mandate secret', () => {
  it('puts from stdin and from a private file, refuses a file others can read, never prints a value', async () => {
    const { home, dir } = await authorityHome('mandate-secret', []);
    const value = `sk_live_${Date.now().toString(36)}_stdin`;
    const put = await withStdin(home, `${value}\n`, 'secret', 'put', 'stripe/refunds');
    expect(put.code, put.stderr).toBe(0);
    expect(JSON.parse(put.stdout)).toMatchObject({ name: 'stripe/refunds', version: 1 });
    expect(put.stdout + put.stderr).not.toContain(value);

    const loose = join(dir, 'loose.txt');
    writeFileSync(loose, 'sk_live_loose');
    chmodSync(loose, 0o644);
    await failsJson(
      home,
      'ERR_SECRET_FILE_INSECURE',
      5,
      'secret',
      'rotate',
      'stripe/refunds',
      '--from-file',
      loose,
    );
    const tight = join(dir, 'tight.txt');
    writeFileSync(tight, 'sk_live_rotated', { mode: 0o600 });
    expect(
      await okJson(home, 'secret', 'rotate', 'stripe/refunds', '--from-file', tight),
    ).toMatchObject({
      version: 2,
    });
    await failsJson(
      home,
      'ERR_SECRET_EXISTS',
      7,
      'secret',
      'put',
      'stripe/refunds',
      '--from-file',
      tight,
    );
    await failsJson(
      home,
      'ERR_SECRET_NAME_INVALID',
      3,
      'secret',
      'put',
      '../x',
      '--from-file',
      tight,
    );
    await failsJson(
      home,
      'ERR_SECRET_NOT_FOUND',
      6,
      'secret',
      'rotate',
      'nope',
      '--from-file',
      tight,
    );
    const list = await okJson<{ secrets: unknown[] }>(home, 'secret', 'list');
    expect(list.secrets).toEqual([
      {
        name: 'stripe/refunds',
        version: 2,
        createdAt: expect.any(Number) as unknown,
        updatedAt: expect.any(Number) as unknown,
      },
    ]);
    const human = await run('--home', home, 'secret', 'list');
    expect(human.stdout).toContain('stripe/refunds  version 2');
    expect(human.stdout).not.toContain('sk_live');

    // Sealed at rest: neither value is in the database files.
    const store = openSqliteStore(join(home, 'mandate.db'));
    store.database.db.pragma('wal_checkpoint(TRUNCATE)');
    store.close();
    const raw = readFileSync(join(home, 'mandate.db')).toString('latin1');
    expect(raw).not.toContain(value);
    expect(raw).not.toContain('sk_live_rotated');

    expect(await okJson(home, 'secret', 'remove', 'stripe/refunds')).toEqual({
      removed: 'stripe/refunds',
    });
    await failsJson(home, 'ERR_SECRET_NOT_FOUND', 6, 'secret', 'remove', 'stripe/refunds');
  });

  it('refuses an empty value', async () => {
    const { home } = await authorityHome('mandate-secret-empty', []);
    const put = await withStdin(home, '\n', 'secret', 'put', 'empty');
    expect(put.code).toBe(3);
    expect(put.stderr).toMatch(/^error\[ERR_SECRET_VALUE_INVALID\]/);
  });
});

describe('mandate lease list and revoke (the broker home)', () => {
  it('lists leases and revokes one, signing the record with the broker identity', async () => {
    const { home } = await authorityHome('mandate-lease', ['broker']);
    const id = newLeaseId();
    const now = Math.floor(Date.now() / 1000);
    const holder = `I${'ab'.repeat(32)}` as const;
    const store = openSqliteStore(join(home, 'mandate.db'));
    await store.brokerLeases.insert({
      id,
      kind: LeaseKind.jwt,
      holder,
      chainIds: [holder, '0123456789abcdef0123456789abcdef'],
      resource: 'payments-api',
      scope: ['refunds'],
      createdAt: now,
      expiresAt: now + 300,
      maxExpiresAt: now + 3600,
      renewals: 0,
      state: LeaseState.active,
      handle: 'jti-1',
    });
    store.close();
    const listed = await okJson<{ leases: { id: string; state: string }[] }>(home, 'lease', 'list');
    expect(listed.leases.map((l) => [l.id, l.state])).toEqual([[id, 'active']]);
    const revoked = await okJson<{ lease: { state: string; endReason: string } }>(
      home,
      'lease',
      'revoke',
      id,
      '--identity',
      'broker',
      '--reason',
      'compromised',
    );
    expect(revoked.lease).toMatchObject({ state: 'revoked', endReason: 'compromised' });
    // Idempotent.
    expect(
      (
        await okJson<{ lease: { state: string } }>(
          home,
          'lease',
          'revoke',
          id,
          '--identity',
          'broker',
        )
      ).lease.state,
    ).toBe('revoked');
    await failsJson(
      home,
      'ERR_LEASE_ID_INVALID',
      3,
      'lease',
      'revoke',
      'lease_x',
      '--identity',
      'broker',
    );
    await failsJson(
      home,
      'ERR_LEASE_NOT_FOUND',
      6,
      'lease',
      'revoke',
      newLeaseId(),
      '--identity',
      'broker',
    );
    expect(
      (await okJson<{ leases: unknown[] }>(home, 'lease', 'list', '--state', 'active')).leases,
    ).toEqual([]);

    // One lease record in the audit log, by the broker, naming the lease and never a value; the
    // provider's part is pending for the running broker.
    const after = openSqliteStore(join(home, 'mandate.db'));
    try {
      const log = await AuditLog.open({ repository: after.auditLog, origin: 'x' });
      const records = (await log.readEntries(0, log.size)).map((e) => parseAuditRecord(e.record));
      const leaseRecords = records.filter((r) => r.type === 'mandate/lease/v1');
      expect(leaseRecords).toHaveLength(1);
      expect(leaseRecords[0]).toMatchObject({
        lease: id,
        event: 'revoked',
        agent: holder,
        resource: 'jwt/payments-api',
        expiresAt: null,
      });
      expect((await after.brokerLeases.pending(10)).map((l) => l.id)).toEqual([id]);
    } finally {
      after.close();
    }
  });
});

describe('mandate broker start', () => {
  it('serves the broker over a secure channel; a kind without a provider (proxy without --proxy-bindings) is a typed refusal', async () => {
    const { home, issue } = await authorityHome('mandate-broker', ['broker', 'agent']);
    const brokerCred = await issue('broker', 'tools=read_orders');
    const agentCred = await issue('agent', 'secrets=proxy/payments');
    const port = await freePort();
    const node = startMandate(
      home,
      'broker',
      'start',
      '--listen',
      `127.0.0.1:${port}`,
      '--identity',
      'broker',
      '--credential',
      brokerCred,
    );
    await node.waitFor(/broker: serving/);
    const r = await run(
      '--home',
      home,
      '--json',
      'lease',
      'proxy',
      '--broker',
      `/ip4/127.0.0.1/tcp/${port}`,
      '--secret',
      'payments',
      '--identity',
      'agent',
      '--credential',
      agentCred,
    );
    expect(r.stderr).toMatch(/^error\[ERR_LEASE_KIND_UNAVAILABLE\]/m);
    expect(r.code).toBe(10);
    expect(await node.stop('SIGTERM')).toBe(0);
  });
});

const sharedSkip = skipUnless(
  await sharedPostgresUnavailable(),
  'the broker start --postgres test',
);

describe.skipIf(sharedSkip)('mandate broker start --postgres', () => {
  it('leases a PostgreSQL login over a secure channel; an operator revocation drops it', async () => {
    const { home, dir, issue } = await authorityHome('mandate-broker-pg', ['broker', 'agent']);
    const brokerCred = await issue('broker', 'tools=read_orders');
    const agentCred = await issue('agent', 'secrets=postgres/readonly');
    const policies = join(dir, 'leases.cedar');
    writeFileSync(
      policies,
      '@id("readonly-db")\npermit(principal, action == Action::"leaseSecret", resource == Secret::"postgres/readonly");\n',
    );
    expect((await run('--home', home, 'policy', 'publish', policies)).code).toBe(0);
    const port = await freePort();
    const node = startMandate(
      home,
      'broker',
      'start',
      '--listen',
      `127.0.0.1:${port}`,
      '--identity',
      'broker',
      '--credential',
      brokerCred,
      '--postgres',
      SHARED_POSTGRES_URL,
    );
    await node.waitFor(/broker: serving/);
    const leased = await okJson<{
      leaseId: string;
      user: string;
      password: string;
      database: string;
    }>(
      home,
      'lease',
      'postgres',
      '--broker',
      `/ip4/127.0.0.1/tcp/${port}`,
      '--template',
      'readonly',
      '--identity',
      'agent',
      '--credential',
      agentCred,
    );
    expect(leased.leaseId).toMatch(/^lease_/);
    const url = new URL(SHARED_POSTGRES_URL);
    const login = async (): Promise<string> => {
      const client = new pg.Client({
        host: url.hostname,
        port: Number(url.port === '' ? 5432 : url.port),
        user: leased.user,
        password: leased.password,
        database: leased.database,
      });
      // The broker may end this session (a revocation terminates the role's sessions): the
      // client's 'error' event must not go unheard (it would fail the whole run).
      client.on('error', () => undefined);
      try {
        await client.connect();
        const r = await client.query<{ u: string }>('SELECT current_user AS u');
        return r.rows[0]!.u;
      } finally {
        await client.end().catch(() => undefined);
      }
    };
    expect(await login()).toBe(leased.user);
    // The value is not in the broker's log.
    expect(node.stderr()).not.toContain(leased.password);
    await okJson(home, 'lease', 'revoke', leased.leaseId, '--identity', 'broker');
    // The running broker tells the provider (its pending pass runs every second): the role goes.
    let gone = false;
    for (let i = 0; i < 100 && !gone; i++) {
      gone = await login().then(
        () => false,
        () => true,
      );
      if (!gone) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(gone).toBe(true);
    expect(await node.stop('SIGTERM')).toBe(0);
  });

  it('takes the admin URL from --postgres-file or MANDATE_POSTGRES_URL, with --postgres-role-prefix; roles name the broker', async () => {
    const { home, dir, issue } = await authorityHome('mandate-broker-pg2', ['broker', 'agent']);
    const brokerCred = await issue('broker', 'tools=read_orders');
    const agentCred = await issue('agent', 'secrets=postgres/readonly');
    const policies = join(dir, 'leases.cedar');
    writeFileSync(
      policies,
      '@id("readonly-db")\npermit(principal, action == Action::"leaseSecret", resource == Secret::"postgres/readonly");\n',
    );
    expect((await run('--home', home, 'policy', 'publish', policies)).code).toBe(0);
    const file = join(dir, 'pg.url');
    writeFileSync(file, `${SHARED_POSTGRES_URL}\n`, { mode: 0o600 });
    const identifier = (await okJson<{ identifier: string }>(home, 'identity', 'show', 'broker'))
      .identifier;
    const admin = new pg.Client({ connectionString: SHARED_POSTGRES_URL });
    await admin.connect();
    try {
      for (const [how, prefix] of [
        ['file', 'mandate_cli_file_'],
        ['env', 'mandate_cli_env_'],
      ] as const) {
        const port = await freePort();
        const argv = [
          'broker',
          'start',
          '--listen',
          `127.0.0.1:${port}`,
          '--identity',
          'broker',
          '--credential',
          brokerCred,
          '--postgres-role-prefix',
          prefix,
        ];
        if (how === 'file') argv.push('--postgres-file', file);
        else process.env.MANDATE_POSTGRES_URL = SHARED_POSTGRES_URL;
        const node = startMandate(home, ...argv);
        delete process.env.MANDATE_POSTGRES_URL;
        await node.waitFor(/broker: serving/);
        expect(node.stderr()).not.toMatch(/holds a password/);
        const leased = await okJson<{ leaseId: string; user: string }>(
          home,
          'lease',
          'postgres',
          '--broker',
          `/ip4/127.0.0.1/tcp/${port}`,
          '--template',
          'readonly',
          '--identity',
          'agent',
          '--credential',
          agentCred,
        );
        expect(leased.user.startsWith(prefix)).toBe(true);
        const comment = await admin.query<{ comment: string }>(
          `SELECT shobj_description(oid, 'pg_authid') AS comment FROM pg_roles WHERE rolname = $1`,
          [leased.user],
        );
        expect(comment.rows[0]!.comment.endsWith(` by ${identifier}`)).toBe(true);
        await okJson(home, 'lease', 'revoke', leased.leaseId, '--identity', 'broker');
        expect(await node.stop('SIGTERM')).toBe(0);
      }
    } finally {
      await admin.end();
    }
  });
});

describe('mandate broker start: the PostgreSQL admin connection stays out of argv', () => {
  it('refuses a --postgres-file others can read, and --postgres with --postgres-file', async () => {
    const { home, dir } = await authorityHome('mandate-broker-pgfile', ['broker']);
    const file = join(dir, 'pg.url');
    writeFileSync(file, 'postgres://postgres:pw@127.0.0.1:1/test\n');
    chmodSync(file, 0o644);
    const args = ['--home', home, '--json', 'broker', 'start', '--listen', '127.0.0.1:0'];
    const insecure = await run(...args, '--identity', 'broker', '--postgres-file', file);
    expect(insecure.code).not.toBe(0);
    expectErrorStdout(insecure, 'ERR_SECRET_FILE_INSECURE');
    const both = await run(
      ...args,
      '--identity',
      'broker',
      '--postgres-file',
      file,
      '--postgres',
      'postgres://postgres@127.0.0.1:1/test',
    );
    expectErrorStdout(both, 'ERR_ARGUMENT_INVALID');
  });

  it('warns on stderr when the --postgres URL holds a password, not when it does not', async () => {
    const { home } = await authorityHome('mandate-broker-pgwarn', ['broker']);
    // A listen address that fails after the options are read: the node never starts.
    const args = ['--home', home, '--json', 'broker', 'start', '--listen', 'nowhere'];
    const withPassword = await run(
      ...args,
      '--identity',
      'broker',
      '--postgres',
      'postgres://postgres:hunter2@127.0.0.1:1/test',
    );
    expect(withPassword.stderr).toMatch(/--postgres.* holds a password/);
    expect(withPassword.stderr).not.toContain('hunter2');
    const without = await run(
      ...args,
      '--identity',
      'broker',
      '--postgres',
      'postgres://postgres@127.0.0.1:1/test',
    );
    expect(without.stderr).not.toMatch(/holds a password/);
  });
});
