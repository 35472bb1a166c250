/**
 * PostgreSQL role leases per second (issue 12): one lease is the provider's issue (SCRAM verifier,
 * CREATE ROLE with the `readonly` grants and its comment, one transaction) then its revoke
 * (NOLOGIN, terminate sessions, DROP OWNED, DROP ROLE), one after the other on the shared server
 * (127.0.0.1:5432, or MANDATE_BENCH_POSTGRES_URL). Next to it, measured in the same run over a
 * pool of the same size: the floor, the bare `CREATE ROLE … LOGIN PASSWORD … VALID UNTIL` and
 * `DROP ROLE` of a role with no grants; and the SCRAM verifier alone (PBKDF2, 4096 iterations),
 * which the provider pays so the password never reaches the server. Skipped, with the reason,
 * when the server cannot be reached.
 *   node --import tsx bench/run.ts --only postgres
 */
import pg from 'pg';
import { PostgresRoleProvider } from '../src/broker/index.js';
import type { LeaseContext } from '../src/broker/index.js';
import { scramSha256Verifier } from '../src/broker/scram-verifier.js';
import { randomBytes } from '../src/crypto/index.js';
import { toHex } from '../src/encoding/index.js';
import { gateWorld } from '../test/helpers/gate-world.js';
import { sharedPostgresUnavailable } from '../test/support/postgres-cluster.js';
import { group, row, type TableRow } from './harness.js';

const URL_TEXT =
  process.env.MANDATE_BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const PREFIX = 'mandate_bench_';
const POOL_SIZE = 4;

export async function postgresBenchmarks(): Promise<TableRow[] | undefined> {
  const unreachable = await sharedPostgresUnavailable(URL_TEXT);
  if (unreachable !== undefined) {
    console.log(`skipped: ${unreachable} (set MANDATE_BENCH_POSTGRES_URL)`);
    return undefined;
  }
  const world = await gateWorld({ subAgents: 0 });
  const provider = new PostgresRoleProvider({
    connectionString: URL_TEXT,
    rolePrefix: PREFIX,
    poolSize: POOL_SIZE,
    reapGraceSeconds: 0,
  });
  const pool = new pg.Pool({ connectionString: URL_TEXT, max: POOL_SIZE });
  pool.on('error', () => undefined);
  const verifier = await scramSha256Verifier('bench', randomBytes(16));
  const context = (): LeaseContext => {
    const now = Math.floor(Date.now() / 1000);
    return {
      leaseId: `lease_${toHex(randomBytes(16))}`,
      holder: world.support.identity.identifier,
      chain: world.supportChain,
      resource: 'readonly',
      scope: [],
      nowSeconds: now,
      expiresAt: now + 600,
    };
  };
  const validUntil = pg.escapeLiteral(new Date(Date.now() + 600_000).toISOString());
  const lease = async (): Promise<void> => {
    const issued = context();
    const { handle } = await provider.issue(issued);
    await provider.revoke({
      id: issued.leaseId,
      kind: 'postgres',
      holder: issued.holder,
      chainIds: [],
      resource: issued.resource,
      scope: [],
      createdAt: issued.nowSeconds,
      expiresAt: issued.expiresAt,
      maxExpiresAt: issued.expiresAt,
      renewals: 0,
      state: 'active',
      handle,
    });
  };
  const bare = async (): Promise<void> => {
    const role = pg.escapeIdentifier(`${PREFIX}bare_${toHex(randomBytes(8))}`);
    await pool.query(
      `CREATE ROLE ${role} LOGIN PASSWORD ${pg.escapeLiteral(verifier)} VALID UNTIL ${validUntil}`,
    );
    await pool.query(`DROP ROLE ${role}`);
  };
  const atOnce = (fn: () => Promise<void>) => () =>
    Promise.all(Array.from({ length: POOL_SIZE }, fn));
  try {
    const results = await group('postgres role leases')
      .add('lease', lease, { label: 'role lease: issue + revoke (readonly template)' })
      .add('bare', bare, { label: 'bare CREATE ROLE + DROP ROLE' })
      .add('lease-parallel', atOnce(lease), {
        label: `${POOL_SIZE} role leases at once (pool of ${POOL_SIZE})`,
      })
      .add('bare-parallel', atOnce(bare), {
        label: `${POOL_SIZE} bare CREATE + DROP ROLE at once`,
      })
      .add('scram', () => scramSha256Verifier('password', randomBytes(16)), {
        label: 'SCRAM-SHA-256 verifier (PBKDF2, 4096 iterations)',
      })
      .run();
    console.log(
      `PostgreSQL role leases per second (issue + revoke): ${Math.round(results.get('lease').opsPerSecond)} one at a time, ${Math.round(POOL_SIZE * results.get('lease-parallel').opsPerSecond)} with ${POOL_SIZE} at once\n`,
    );
    return [
      row(results, 'lease', { baseline: 'bare' }),
      row(results, 'lease-parallel', { baseline: 'bare-parallel' }),
      row(results, 'scram', { baseline: 'bare' }),
    ];
  } finally {
    // Anything a failed run left behind.
    await provider.reap(new Set()).catch(() => 0);
    await provider.close();
    await pool.end();
  }
}
