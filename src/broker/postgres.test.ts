// What the PostgreSQL role provider refuses before it talks to a server, and what it answers when
// no server is there. The real logins are in test/integration/broker-postgres.test.ts.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../test/helpers/processes.js';
import { leaseFixtures } from '../../test/support/postgres-leases.js';
import {
  PostgresRoleProvider,
  type PostgresRoleProviderOptions,
  type RoleTemplate,
} from './postgres.js';

let fixtures: Awaited<ReturnType<typeof leaseFixtures>>;
beforeAll(async () => {
  fixtures = await leaseFixtures();
});

const providers: PostgresRoleProvider[] = [];
afterEach(async () => {
  for (const p of providers.splice(0)) await p.close();
});

function make(options: Partial<PostgresRoleProviderOptions> = {}): PostgresRoleProvider {
  const provider = new PostgresRoleProvider({
    connectionString: 'postgres://postgres@127.0.0.1:1/test',
    ...options,
  });
  providers.push(provider);
  return provider;
}

/** Templates as a config file would give them: unchecked JSON. */
const templatesFrom = (json: string): Record<string, RoleTemplate> =>
  JSON.parse(json) as Record<string, RoleTemplate>;

function refusesTemplates(json: string): void {
  expect(() => make({ templates: templatesFrom(json) })).toThrow(
    expect.objectContaining({ code: 'ERR_LEASE_PG_TEMPLATE_INVALID', kind: 'invalid' }),
  );
}

describe('PostgresRoleProvider options and templates', () => {
  it('has the built-in readonly template and the ones it is given', () => {
    const provider = make({
      templates: {
        writer: {
          grants: [
            { on: 'database' },
            { on: 'schema', schema: 'app' },
            { on: 'tables', schema: 'app', privileges: ['SELECT', 'INSERT'], future: true },
            { on: 'sequences', schema: 'app', privileges: ['USAGE'] },
          ],
          connectionLimit: 5,
        },
      },
    });
    expect(provider.templateNames()).toEqual(['readonly', 'writer']);
    expect(provider.kind).toBe('postgres');
    expect(provider.rolePrefix).toBe('mandate_lease_');
  });

  it('maps a lease id to its role name and refuses anything else', () => {
    const provider = make({ rolePrefix: 'agents_' });
    expect(provider.roleName('lease_0123456789abcdef0123456789abcdef')).toBe(
      'agents_0123456789abcdef0123456789abcdef',
    );
    for (const bad of ['lease_0123', 'lease_0123456789ABCDEF0123456789ABCDEF', 'x"; drop', ''])
      expect(() => provider.roleName(bad)).toThrow(
        expect.objectContaining({ code: 'ERR_LEASE_PG_HANDLE_INVALID' }),
      );
  });

  it('refuses bad options', () => {
    const code = { code: 'ERR_LEASE_PG_OPTIONS_INVALID', kind: 'invalid' };
    expect(() => make({ connectionString: '' })).toThrow(expect.objectContaining(code));
    for (const rolePrefix of ['', 'Upper_', '9lives_', 'a-b', 'x'.repeat(32), 'a"b'])
      expect(() => make({ rolePrefix })).toThrow(expect.objectContaining(code));
    for (const poolSize of [0, 101, 1.5])
      expect(() => make({ poolSize })).toThrow(expect.objectContaining(code));
    expect(() => make({ reapGraceSeconds: -1 })).toThrow(expect.objectContaining(code));
  });

  it('refuses malformed templates', () => {
    refusesTemplates('[]');
    refusesTemplates('{"Bad Name": {"grants": [{"on": "database"}]}}');
    refusesTemplates('{"t": {"grants": []}}');
    refusesTemplates('{"t": {"grants": [{"on": "database"}], "sql": "DROP TABLE x"}}');
    refusesTemplates('{"t": {"grants": [{"on": "database", "name": "other"}]}}');
    refusesTemplates('{"t": {"grants": [{"on": "cluster"}]}}');
    refusesTemplates('{"t": {"grants": [{"on": "schema"}]}}');
    refusesTemplates('{"t": {"grants": [{"on": "schema", "schema": ""}]}}');
    refusesTemplates(`{"t": {"grants": [{"on": "schema", "schema": "${'s'.repeat(64)}"}]}}`);
    refusesTemplates('{"t": {"grants": [{"on": "schema", "schema": "a\\u0000b"}]}}');
    refusesTemplates('{"t": {"grants": [{"on": "tables", "schema": "s", "privileges": []}]}}');
    refusesTemplates(
      '{"t": {"grants": [{"on": "tables", "schema": "s", "privileges": ["TRUNCATE"]}]}}',
    );
    refusesTemplates(
      '{"t": {"grants": [{"on": "tables", "schema": "s", "privileges": ["SELECT; DROP"]}]}}',
    );
    refusesTemplates(
      '{"t": {"grants": [{"on": "sequences", "schema": "s", "privileges": ["DELETE"]}]}}',
    );
    refusesTemplates(
      '{"t": {"grants": [{"on": "tables", "schema": "s", "privileges": ["SELECT"], "future": 1}]}}',
    );
    refusesTemplates('{"t": {"grants": [{"on": "database"}], "connectionLimit": 0}}');
    refusesTemplates('{"t": {"grants": [{"on": "database"}], "connectionLimit": "5"}}');
  });

  it('takes a schema name with quotes and semicolons as a name (it is always quoted)', () => {
    const provider = make({
      templates: templatesFrom(
        '{"odd": {"grants": [{"on": "schema", "schema": "a\\"b; DROP ROLE x; --"}]}}',
      ),
    });
    expect(provider.templateNames()).toContain('odd');
  });
});

describe('PostgresRoleProvider without a server', () => {
  it('refuses an unknown template and a malformed handle before connecting', async () => {
    const provider = make();
    await expect(provider.issue(fixtures.context('no-such-template'))).rejects.toMatchObject({
      code: 'ERR_LEASE_PG_TEMPLATE_UNKNOWN',
      kind: 'not_found',
    });
    await expect(provider.issue(fixtures.context('constructor'))).rejects.toMatchObject({
      code: 'ERR_LEASE_PG_TEMPLATE_UNKNOWN',
    });
    const issued = fixtures.context('readonly');
    await expect(
      provider.revoke(fixtures.lease(issued, 'postgres" WITH SUPERUSER --')),
    ).rejects.toMatchObject({ code: 'ERR_LEASE_PG_HANDLE_INVALID' });
    await expect(
      provider.renew(fixtures.lease(issued, 'someone_else'), issued),
    ).rejects.toMatchObject({ code: 'ERR_LEASE_PG_HANDLE_INVALID' });
    await expect(
      provider.issue(fixtures.context('readonly', { expiresAt: issued.nowSeconds })),
    ).rejects.toMatchObject({ code: 'ERR_LEASE_PG_EXPIRY_INVALID' });
  });

  it('answers ERR_PG_UNAVAILABLE when nothing listens, without the connection string', async () => {
    const port = await freePort();
    const provider = make({
      connectionString: `postgres://postgres:hunter2-admin@127.0.0.1:${port}/test`,
    });
    const issued = fixtures.context('readonly');
    const failures = await Promise.allSettled([
      provider.issue(issued),
      provider.revoke(fixtures.lease(issued, provider.roleName(issued.leaseId))),
      provider.reap(new Set()),
    ]);
    for (const failure of failures) {
      expect(failure.status).toBe('rejected');
      const reason = (failure as PromiseRejectedResult).reason as Error;
      expect(reason).toMatchObject({ code: 'ERR_PG_UNAVAILABLE', kind: 'unavailable' });
      expect(reason.message).not.toContain('hunter2');
      expect(reason.cause).toBeUndefined();
    }
  });

  it('answers ERR_PG_UNAVAILABLE once closed', async () => {
    const provider = make();
    await provider.close();
    await provider.close();
    await expect(provider.reap(new Set())).rejects.toMatchObject({ code: 'ERR_PG_UNAVAILABLE' });
  });
});
