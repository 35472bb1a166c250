// The outside attack on the PostgreSQL provider (issue 12), against a throwaway scram-sha-256
// cluster: a leased role holding the broker's lock, owning objects in another database, and two
// brokers on one server. Skips with the reason printed unless MANDATE_REQUIRE_SERVICES=1.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresRoleProvider, type PostgresLeaseValue } from '../../src/broker/index.js';
import {
  postgresClusterUnavailable,
  skipUnless,
  startPostgresCluster,
  type PostgresCluster,
} from '../support/postgres-cluster.js';
import { leaseFixtures } from '../support/postgres-leases.js';

const clusterSkip = skipUnless(postgresClusterUnavailable(), 'the postgresql attack tests');

describe.skipIf(clusterSkip)('PostgresRoleProvider against a hostile leased role', () => {
  let cluster: PostgresCluster;
  let admin: pg.Client;
  let provider: PostgresRoleProvider;
  let fixtures: Awaited<ReturnType<typeof leaseFixtures>>;
  const opened: pg.Client[] = [];

  const login = async (value: PostgresLeaseValue, database = value.database) => {
    const client = new pg.Client({ ...value, database });
    client.on('error', () => undefined);
    opened.push(client);
    await client.connect();
    return client;
  };
  const role = async (name: string) =>
    (
      await admin.query<{ login: boolean; sessions: number }>(
        `SELECT rolcanlogin AS login,
                (SELECT count(*)::int FROM pg_stat_activity WHERE usename = $1) AS sessions
           FROM pg_roles WHERE rolname = $1`,
        [name],
      )
    ).rows[0];

  beforeAll(async () => {
    fixtures = await leaseFixtures();
    cluster = await startPostgresCluster();
    admin = new pg.Client({ connectionString: cluster.connectionString });
    await admin.connect();
    await admin.query('CREATE TABLE items (id int)');
    // Databases whose CONNECT PUBLIC has (the default for every new database).
    await admin.query('CREATE DATABASE otherdb');
    await admin.query('CREATE DATABASE stuckdb');
    provider = new PostgresRoleProvider({
      connectionString: cluster.connectionString,
      reapGraceSeconds: 0,
      brokerId: 'broker-a',
    });
  });

  afterAll(async () => {
    for (const client of opened) await client.end().catch(() => undefined);
    await provider?.close();
    await admin?.end();
    await cluster?.stop();
  });

  it('F1: a leased role cannot take the lock grants and revocations serialise on', async () => {
    const attacker = await provider.issue(fixtures.context('readonly'));
    const victim = await provider.issue(fixtures.context('readonly'));
    const session = await login(attacker.value);
    // The old lock: an advisory lock any role could take and hold from an idle session.
    await session.query('SELECT pg_advisory_lock(30792318992196709)');
    await expect(
      session.query('BEGIN; LOCK TABLE mandate_broker.grant_lock IN EXCLUSIVE MODE'),
    ).rejects.toMatchObject({ code: '42501' });
    await session.query('ROLLBACK');
    // Revocation and issue go on while the attacker holds what it can.
    await provider.revoke(fixtures.lease(fixtures.context('readonly'), victim.handle));
    expect(await role(victim.handle)).toBeUndefined();
    const next = await provider.issue(fixtures.context('readonly'));
    await provider.revoke(fixtures.lease(fixtures.context('readonly'), next.handle));
    await provider.revoke(fixtures.lease(fixtures.context('readonly'), attacker.handle));
    expect(await role(attacker.handle)).toBeUndefined();
    // PUBLIC has no USAGE on the broker's schema.
    const open = await admin.query<{ open: boolean }>(
      `SELECT has_schema_privilege('public', 'mandate_broker', 'USAGE') AS open`,
    );
    expect(open.rows[0]!.open).toBe(false);
  });

  it('F1: a lock held past lock_timeout fails the call with ERR_PG_TIMEOUT instead of waiting', async () => {
    const impatient = new PostgresRoleProvider({
      connectionString: cluster.connectionString,
      brokerId: 'broker-a',
      lockTimeoutMs: 200,
    });
    const issued = await impatient.issue(fixtures.context('readonly'));
    const holder = new pg.Client({ connectionString: cluster.connectionString });
    await holder.connect();
    try {
      await holder.query('BEGIN; LOCK TABLE mandate_broker.grant_lock IN EXCLUSIVE MODE');
      await expect(
        impatient.revoke(fixtures.lease(fixtures.context('readonly'), issued.handle)),
      ).rejects.toMatchObject({ code: 'ERR_PG_TIMEOUT', kind: 'timeout' });
      await expect(impatient.issue(fixtures.context('readonly'))).rejects.toMatchObject({
        code: 'ERR_PG_TIMEOUT',
      });
      // NOLOGIN was committed before the lock was asked for: the role cannot log in already.
      expect(await role(issued.handle)).toMatchObject({ login: false });
      await holder.query('ROLLBACK');
      await impatient.revoke(fixtures.lease(fixtures.context('readonly'), issued.handle));
      expect(await role(issued.handle)).toBeUndefined();
    } finally {
      await holder.end();
      await impatient.close();
    }
  });

  it('F2: a role owning a large object in another database is still dropped', async () => {
    const issued = await provider.issue(fixtures.context('readonly'));
    const elsewhere = await login(issued.value, 'otherdb');
    await elsewhere.query('SELECT lo_create(0)');
    await provider.revoke(fixtures.lease(fixtures.context('readonly'), issued.handle));
    expect(await role(issued.handle)).toBeUndefined();
  });

  it('F2: when the other database cannot be reached, the role is left NOLOGIN with no session, and a typed residue', async () => {
    const issued = await provider.issue(fixtures.context('readonly'));
    const elsewhere = await login(issued.value, 'stuckdb');
    await elsewhere.query('SELECT lo_create(0)');
    await admin.query('ALTER DATABASE stuckdb ALLOW_CONNECTIONS false');
    const lease = fixtures.lease(fixtures.context('readonly'), issued.handle);
    await expect(provider.revoke(lease)).rejects.toMatchObject({
      code: 'ERR_LEASE_PG_ROLE_RESIDUE',
      kind: 'conflict',
    });
    expect(await role(issued.handle)).toEqual({ login: false, sessions: 0 });
    await expect(elsewhere.query('SELECT 1')).rejects.toThrow();
    await expect(login(issued.value)).rejects.toMatchObject({ code: '28000' });
    // Once the database takes connections again, the next attempt finishes.
    await admin.query('ALTER DATABASE stuckdb ALLOW_CONNECTIONS true');
    await provider.revoke(lease);
    expect(await role(issued.handle)).toBeUndefined();
  });

  it("F3: a broker's reaper leaves another broker's roles on the same server alone", async () => {
    const other = new PostgresRoleProvider({
      connectionString: cluster.connectionString,
      reapGraceSeconds: 0,
      brokerId: 'broker-b',
    });
    try {
      const mine = await provider.issue(fixtures.context('readonly'));
      const theirs = await other.issue(fixtures.context('readonly'));
      const comment = await admin.query<{ comment: string }>(
        `SELECT shobj_description(oid, 'pg_authid') AS comment FROM pg_roles WHERE rolname = $1`,
        [theirs.handle],
      );
      expect(comment.rows[0]!.comment).toMatch(/ by broker-b$/);
      expect(await provider.reap(new Set())).toBe(1);
      expect(await role(mine.handle)).toBeUndefined();
      expect(await role(theirs.handle)).toMatchObject({ login: true });
      expect(await other.reap(new Set())).toBe(1);
      expect(await role(theirs.handle)).toBeUndefined();
    } finally {
      await other.close();
    }
  });
});
