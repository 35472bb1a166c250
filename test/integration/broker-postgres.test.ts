// Dynamic PostgreSQL roles against real servers (issue 12): a throwaway cluster with
// scram-sha-256, where a password matters, and the shared server on 127.0.0.1:5432 (trust) for the
// plain create/grant/drop path. Both skip with the reason printed when they cannot run, unless
// MANDATE_REQUIRE_SERVICES=1.
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresRoleProvider, type RoleTemplate } from '../../src/broker/index.js';
import type { PostgresLeaseValue } from '../../src/broker/index.js';
import { ManualClock } from '../../src/core/index.js';
import {
  postgresClusterUnavailable,
  SHARED_POSTGRES_URL,
  sharedPostgresUnavailable,
  skipUnless,
  startPostgresCluster,
  type PostgresCluster,
} from '../support/postgres-cluster.js';
import { leaseFixtures, newLeaseId, nowSeconds } from '../support/postgres-leases.js';

const ODD_SCHEMA = 'a"b; DROP ROLE victim; --';

const TEMPLATES: Record<string, RoleTemplate> = {
  writer: {
    grants: [
      { on: 'database' },
      { on: 'schema', schema: 'public' },
      { on: 'tables', schema: 'public', privileges: ['SELECT', 'INSERT'], future: true },
      { on: 'sequences', schema: 'public', privileges: ['USAGE'] },
    ],
    connectionLimit: 3,
  },
  odd: {
    grants: [
      { on: 'database' },
      { on: 'schema', schema: ODD_SCHEMA },
      { on: 'tables', schema: ODD_SCHEMA, privileges: ['SELECT'] },
    ],
  },
  missing: { grants: [{ on: 'database' }, { on: 'schema', schema: 'no_such_schema' }] },
};

const clusterSkip = skipUnless(postgresClusterUnavailable(), 'the scram-sha-256 cluster tests');

describe.skipIf(clusterSkip)('PostgresRoleProvider on a scram-sha-256 cluster', () => {
  let cluster: PostgresCluster;
  let admin: pg.Client;
  let provider: PostgresRoleProvider;
  let fixtures: Awaited<ReturnType<typeof leaseFixtures>>;
  const opened: pg.Client[] = [];

  const login = async (value: PostgresLeaseValue, password = value.password) => {
    const client = new pg.Client({
      host: value.host,
      port: value.port,
      user: value.user,
      password,
      database: value.database,
    });
    client.on('error', () => undefined);
    opened.push(client);
    await client.connect();
    return client;
  };
  const roleExists = async (role: string): Promise<boolean> =>
    (await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).rowCount === 1;

  beforeAll(async () => {
    fixtures = await leaseFixtures();
    cluster = await startPostgresCluster();
    admin = new pg.Client({ connectionString: cluster.connectionString });
    await admin.connect();
    await admin.query(`
      CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL);
      INSERT INTO items (name) VALUES ('first'), ('second');
      CREATE SCHEMA ${pg.escapeIdentifier(ODD_SCHEMA)};
      CREATE TABLE ${pg.escapeIdentifier(ODD_SCHEMA)}.t (x int);
      INSERT INTO ${pg.escapeIdentifier(ODD_SCHEMA)}.t VALUES (7);
      CREATE ROLE victim;
      CREATE ROLE someone_else LOGIN;
      -- The provider's name shape, but not made by it (no comment): the reaper leaves it alone.
      CREATE ROLE mandate_lease_0123456789abcdef0123456789abcdef;
    `);
    provider = new PostgresRoleProvider({
      connectionString: cluster.connectionString,
      templates: TEMPLATES,
      reapGraceSeconds: 0,
    });
  });

  afterAll(async () => {
    for (const client of opened) await client.end().catch(() => undefined);
    await provider?.close();
    await admin?.end();
    await cluster?.stop();
  });

  it('leases a login that reads public tables, cannot write, and needs its password', async () => {
    const issued = fixtures.context('readonly');
    const { handle, value } = await provider.issue(issued);
    expect(handle).toBe(provider.roleName(issued.leaseId));
    expect(value).toMatchObject({
      user: handle,
      database: 'postgres',
      host: '127.0.0.1',
      port: cluster.port,
    });
    expect(value.password).toMatch(/^[A-Za-z0-9_-]{43}$/);

    const agent = await login(value);
    expect((await agent.query('SELECT name FROM items ORDER BY id')).rows).toEqual([
      { name: 'first' },
      { name: 'second' },
    ]);
    await expect(agent.query("INSERT INTO items (name) VALUES ('x')")).rejects.toMatchObject({
      code: '42501',
    });
    // The last character changed (to one it is not: a 32-byte base64url password ends in 'A' one
    // time in 16, which would leave it right).
    const wrong = `${value.password.slice(0, -1)}${value.password.endsWith('A') ? 'B' : 'A'}`;
    await expect(login(value, wrong)).rejects.toMatchObject({
      code: '28P01',
    });

    // The server holds a SCRAM verifier made by the provider, valid until the lease's end, and
    // its statement log (log_statement = all) never saw the password.
    const row = (
      await admin.query<{ rolpassword: string; until: string; comment: string }>(
        `SELECT rolpassword, extract(epoch FROM rolvaliduntil)::bigint AS until,
                shobj_description(oid, 'pg_authid') AS comment FROM pg_authid WHERE rolname = $1`,
        [handle],
      )
    ).rows[0]!;
    expect(row.rolpassword).toMatch(/^SCRAM-SHA-256\$4096:/);
    expect(row.until).toBe(String(issued.expiresAt));
    expect(row.comment).toBe(
      `mandate lease ${issued.leaseId} created ${issued.nowSeconds} by mandate`,
    );
    const log = readFileSync(cluster.logFile, 'utf8');
    expect(log).toContain(`CREATE ROLE "${handle}"`);
    expect(log).not.toContain(value.password);
    await provider.revoke(fixtures.lease(issued, handle));
  });

  it('revoke ends open sessions, refuses new logins, drops the role, and may repeat', async () => {
    const issued = fixtures.context('readonly');
    const { handle, value } = await provider.issue(issued);
    const session = await login(value);
    await session.query('SELECT 1');
    const ended = new Promise((resolve) => session.once('error', resolve));
    await provider.revoke(fixtures.lease(issued, handle));
    await expect(session.query('SELECT 1')).rejects.toThrow();
    await expect(ended).resolves.toMatchObject({ code: '57P01' });
    await expect(login(value)).rejects.toMatchObject({ code: '28P01' });
    expect(await roleExists(handle)).toBe(false);
    await provider.revoke(fixtures.lease(issued, handle));
  });

  it('a login fails once VALID UNTIL has passed, and works again when renewed', async () => {
    const issued = fixtures.context('readonly');
    const { handle, value } = await provider.issue(issued);
    const lease = fixtures.lease(issued, handle);
    const past = { ...issued, expiresAt: nowSeconds() - 5 };
    await expect(provider.renew(lease, past)).resolves.toBeUndefined();
    await expect(login(value)).rejects.toMatchObject({ code: '28P01' });
    await provider.renew(lease, { ...issued, expiresAt: nowSeconds() + 600 });
    await (await login(value)).query('SELECT 1');
    await provider.revoke(lease);
    await expect(provider.renew(lease, issued)).rejects.toMatchObject({
      code: 'ERR_LEASE_PG_ROLE_NOT_FOUND',
      kind: 'not_found',
    });
  });

  it('issues and revokes leases at once (grants on the same objects do not collide)', async () => {
    const contexts = Array.from({ length: 8 }, () => fixtures.context('writer'));
    const issued = await Promise.all(contexts.map((c) => provider.issue(c)));
    await Promise.all(
      issued.map(async ({ value }) => (await login(value)).query('SELECT count(*) FROM items')),
    );
    await Promise.all(
      issued.map(({ handle }, i) => provider.revoke(fixtures.lease(contexts[i]!, handle))),
    );
    for (const { handle } of issued) expect(await roleExists(handle)).toBe(false);
  });

  it('a restarted broker renews and revokes the leases the old one issued', async () => {
    const before = new PostgresRoleProvider({ connectionString: cluster.connectionString });
    const issued = fixtures.context('readonly');
    const { handle, value } = await before.issue(issued);
    await before.close();
    const after = new PostgresRoleProvider({ connectionString: cluster.connectionString });
    const lease = fixtures.lease(issued, handle);
    await after.renew(lease, { ...issued, expiresAt: issued.expiresAt + 60 });
    const session = await login(value);
    session.on('error', () => undefined);
    await after.revoke(lease);
    await expect(session.query('SELECT 1')).rejects.toThrow();
    await expect(login(value)).rejects.toMatchObject({ code: '28P01' });
    await after.close();
  });

  it('a lease issued to end a second from now stops working by itself', async () => {
    const now = nowSeconds();
    const issued = fixtures.context('readonly', { now, expiresAt: now + 1 });
    const { handle, value } = await provider.issue(issued);
    await new Promise((resolve) => {
      setTimeout(resolve, (now + 1) * 1000 - Date.now() + 100);
    });
    await expect(login(value)).rejects.toMatchObject({ code: '28P01' });
    await provider.revoke(fixtures.lease(issued, handle));
  });

  it('grants a template: insert through a sequence, tables made later, all gone on revoke', async () => {
    const issued = fixtures.context('writer');
    const { handle, value } = await provider.issue(issued);
    const agent = await login(value);
    await agent.query("INSERT INTO items (name) VALUES ('from the agent')");
    await expect(agent.query('DELETE FROM items')).rejects.toMatchObject({ code: '42501' });
    await admin.query('CREATE TABLE later (y int); INSERT INTO later VALUES (1)');
    expect((await agent.query('SELECT y FROM later')).rows).toEqual([{ y: 1 }]);
    await provider.revoke(fixtures.lease(issued, handle));
    expect(await roleExists(handle)).toBe(false);
    const acl = await admin.query(
      "SELECT 1 FROM pg_default_acl WHERE array_to_string(defaclacl, ',') LIKE $1",
      [`%${handle}%`],
    );
    expect(acl.rowCount).toBe(0);
  });

  it('quotes identifiers: a schema named like an injection is just a name', async () => {
    const issued = fixtures.context('odd');
    const { handle, value } = await provider.issue(issued);
    const agent = await login(value);
    const rows = await agent.query(`SELECT x FROM ${pg.escapeIdentifier(ODD_SCHEMA)}.t`);
    expect(rows.rows).toEqual([{ x: 7 }]);
    expect(await roleExists('victim')).toBe(true);
    await provider.revoke(fixtures.lease(issued, handle));
  });

  it('a template the database cannot satisfy leaves no role behind', async () => {
    const issued = fixtures.context('missing');
    const failure = provider.issue(issued);
    await expect(failure).rejects.toMatchObject({
      code: 'ERR_PG_OBJECT_NOT_FOUND',
      kind: 'not_found',
      message: expect.stringContaining('template `missing`') as unknown,
    });
    expect(await roleExists(provider.roleName(issued.leaseId))).toBe(false);
  });

  it('issuing the same lease twice fails without the password in the error', async () => {
    const issued = fixtures.context('readonly');
    const { handle } = await provider.issue(issued);
    const error = await provider.issue(issued).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error).toMatchObject({ code: 'ERR_PG_STATEMENT_FAILED', kind: 'internal' });
    expect(error?.message).toContain('42710');
    expect(error?.message).not.toContain('SCRAM');
    expect(error?.cause).toBeUndefined();
    await provider.revoke(fixtures.lease(issued, handle));
  });

  it('reaps what a crashed broker left, and nothing else', async () => {
    const crashed = new PostgresRoleProvider({
      connectionString: cluster.connectionString,
      reapGraceSeconds: 0,
    });
    const orphans = [];
    for (let i = 0; i < 3; i++) {
      const issued = fixtures.context('readonly');
      orphans.push({ issued, ...(await crashed.issue(issued)) });
    }
    const session = await login(orphans[0]!.value);
    session.on('error', () => undefined);
    await crashed.close(); // the broker dies: no revoke

    // Another broker on the same server keeps one lease alive; its reaper is told so.
    const kept = await provider.issue(fixtures.context('readonly'));
    // A reaper whose grace period covers the fresh roles drops nothing.
    const patient = new PostgresRoleProvider({
      connectionString: cluster.connectionString,
      clock: new ManualClock(nowSeconds()),
      reapGraceSeconds: 3600,
    });
    expect(await patient.reap(new Set())).toBe(0);
    await patient.close();

    expect(await provider.reap(new Set([kept.handle]))).toBe(3);
    for (const orphan of orphans) expect(await roleExists(orphan.handle)).toBe(false);
    await expect(session.query('SELECT 1')).rejects.toThrow();
    await expect(login(orphans[1]!.value)).rejects.toMatchObject({ code: '28P01' });
    expect(await roleExists(kept.handle)).toBe(true);
    for (const role of ['victim', 'someone_else', 'mandate_lease_0123456789abcdef0123456789abcdef'])
      expect(await roleExists(role)).toBe(true);
    expect(await provider.reap(new Set([kept.handle]))).toBe(0);
    await provider.revoke({
      ...fixtures.lease(fixtures.context('readonly'), kept.handle),
      id: newLeaseId(),
    });
    expect(await roleExists(kept.handle)).toBe(false);
  });

  it('answers ERR_PG_UNAVAILABLE while the server is down, and reaps after it is back', async () => {
    const issued = fixtures.context('readonly');
    const { handle } = await provider.issue(issued);
    // The broker restarts while PostgreSQL is down: its lease store lost nothing, but say the
    // role's lease was never recorded (the crash came between issue and record).
    const restarted = new PostgresRoleProvider({
      connectionString: cluster.connectionString.replace(`:${cluster.port}/`, ':1/'),
      reapGraceSeconds: 0,
    });
    await expect(restarted.reap(new Set())).rejects.toMatchObject({
      code: 'ERR_PG_UNAVAILABLE',
      kind: 'unavailable',
    });
    await expect(restarted.issue(fixtures.context('readonly'))).rejects.toMatchObject({
      code: 'ERR_PG_UNAVAILABLE',
    });
    await restarted.close();
    expect(await provider.reap(new Set())).toBe(1);
    expect(await roleExists(handle)).toBe(false);
  });
});

const sharedSkip = skipUnless(
  await sharedPostgresUnavailable(),
  'the shared PostgreSQL server tests',
);

describe.skipIf(sharedSkip)('PostgresRoleProvider on the shared server', () => {
  let provider: PostgresRoleProvider;
  let admin: pg.Client;
  let fixtures: Awaited<ReturnType<typeof leaseFixtures>>;

  beforeAll(async () => {
    fixtures = await leaseFixtures();
    // A prefix of its own: other tests and brokers may use this server at the same time.
    provider = new PostgresRoleProvider({
      connectionString: SHARED_POSTGRES_URL,
      rolePrefix: 'mandate_test_pg_',
    });
    admin = new pg.Client({ connectionString: SHARED_POSTGRES_URL });
    await admin.connect();
  });
  afterAll(async () => {
    await provider?.close();
    await admin?.end();
  });

  it('creates the role with the readonly grants, and drops it', async () => {
    const issued = fixtures.context('readonly');
    const { handle, value } = await provider.issue(issued);
    expect(value.database).toBe('test');
    const privileges = await admin.query<{ connect: boolean; usage: boolean; login: boolean }>(
      `SELECT has_database_privilege($1, current_database(), 'CONNECT') AS connect,
              has_schema_privilege($1, 'public', 'USAGE') AS usage,
              (SELECT rolcanlogin FROM pg_roles WHERE rolname = $1) AS login`,
      [handle],
    );
    expect(privileges.rows[0]).toEqual({ connect: true, usage: true, login: true });
    const agent = new pg.Client({ ...value });
    await agent.connect();
    expect((await agent.query('SELECT current_user AS me')).rows[0]).toEqual({ me: handle });
    agent.on('error', () => undefined);
    await provider.revoke(fixtures.lease(issued, handle));
    const left = await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [handle]);
    expect(left.rowCount).toBe(0);
    await agent.end().catch(() => undefined);
  });
});
