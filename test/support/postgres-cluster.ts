// PostgreSQL for tests: a throwaway cluster of their own with `scram-sha-256` authentication (the
// shared server on 127.0.0.1:5432 trusts every local login, so it cannot show that a password
// matters), and the shared server itself where trust is enough.
//
// The cluster is Debian's initdb and pg_ctl (the postgresql-15 server package) in a temporary
// folder, on a free port, its unix socket in that folder. initdb refuses to run as root: as root,
// the cluster runs as the `postgres` user (`runuser -u postgres --`) and the folder is handed to
// it. Tests that cannot get a server skip with the reason, unless MANDATE_REQUIRE_SERVICES=1.
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from '../../src/crypto/index.js';
import { freePort } from '../helpers/processes.js';

export const SHARED_POSTGRES_URL =
  process.env.MANDATE_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

const BIN = process.env.MANDATE_PG_BIN ?? '/usr/lib/postgresql/15/bin';
const RUN_AS = 'postgres';

/** Whether a missing service fails the tests instead of skipping them. */
export const servicesRequired = process.env.MANDATE_REQUIRE_SERVICES === '1';

/**
 * `undefined` when the tests may run; otherwise the reason they skip, printed. With
 * MANDATE_REQUIRE_SERVICES=1 a reason throws instead, failing the file.
 */
export function skipUnless(reason: string | undefined, what: string): boolean {
  if (reason === undefined) return false;
  if (servicesRequired)
    throw new Error(`${what}: ${reason} (MANDATE_REQUIRE_SERVICES=1 forbids skipping)`);
  console.warn(`skipped ${what}: ${reason}`);
  return true;
}

/** Why the shared server cannot be used, or `undefined` when something listens there. */
export async function sharedPostgresUnavailable(
  url: string = SHARED_POSTGRES_URL,
): Promise<string | undefined> {
  const { hostname, port } = new URL(url);
  const at = { host: hostname, port: Number(port === '' ? 5432 : port) };
  return new Promise((resolve) => {
    const socket = connect(at);
    socket.setTimeout(2000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(undefined);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(`nothing answers on ${at.host}:${at.port} (timeout)`);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      resolve(`nothing answers on ${at.host}:${at.port} (${error.code ?? error.message})`);
    });
  });
}

interface RunAs {
  readonly uid: number;
  readonly gid: number;
}

function userIds(name: string): RunAs | undefined {
  try {
    const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    return undefined;
  }
}

/** Why a throwaway cluster cannot be started here, or `undefined` when it can. */
export function postgresClusterUnavailable(): string | undefined {
  for (const tool of ['initdb', 'pg_ctl'])
    if (!existsSync(join(BIN, tool)))
      return `${join(BIN, tool)} is missing (install postgresql-15, or set MANDATE_PG_BIN)`;
  if (process.getuid?.() === 0) {
    if (userIds(RUN_AS) === undefined)
      return `running as root and there is no \`${RUN_AS}\` user to run initdb as`;
    if (!existsSync('/usr/sbin/runuser') && !existsSync('/sbin/runuser'))
      return 'running as root and runuser(1) is missing';
  }
  return undefined;
}

export interface PostgresCluster {
  /** `postgres://postgres:PASSWORD@127.0.0.1:PORT/postgres`: the superuser, over TCP. */
  readonly connectionString: string;
  readonly host: string;
  readonly port: number;
  readonly superuser: string;
  readonly superuserPassword: string;
  /** The server's log (every statement is logged: `log_statement = all`). */
  readonly logFile: string;
  /** Stops the server (immediate) and removes its folder. */
  stop(): Promise<void>;
}

/**
 * Starts a cluster with `scram-sha-256` for every connection, over TCP on 127.0.0.1 and a unix
 * socket in its own folder; durability is off (a test cluster). About a second.
 */
export async function startPostgresCluster(): Promise<PostgresCluster> {
  const reason = postgresClusterUnavailable();
  if (reason !== undefined) throw new Error(reason);
  const runAs = process.getuid?.() === 0 ? userIds(RUN_AS) : undefined;
  const dir = mkdtempSync(join(tmpdir(), 'mandate-pg-'));
  const data = join(dir, 'data');
  const logFile = join(dir, 'server.log');
  const pwFile = join(dir, 'superuser.pw');
  const superuserPassword = Buffer.from(randomBytes(18)).toString('base64url');
  const run = (tool: string, args: readonly string[]): void => {
    const argv =
      runAs === undefined
        ? [join(BIN, tool), ...args]
        : ['/usr/sbin/runuser', '-u', RUN_AS, '--', join(BIN, tool), ...args];
    const result = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', cwd: dir });
    if (result.status !== 0)
      throw new Error(`${tool} failed (${result.status}): ${result.stderr || result.stdout}`);
  };
  try {
    writeFileSync(pwFile, superuserPassword, { mode: 0o600 });
    if (runAs !== undefined) {
      chownSync(dir, runAs.uid, runAs.gid);
      chownSync(pwFile, runAs.uid, runAs.gid);
    }
    run('initdb', [
      '-D',
      data,
      '-U',
      'postgres',
      '--auth=scram-sha-256',
      `--pwfile=${pwFile}`,
      '--no-sync',
      '--encoding=UTF8',
      '--locale=C',
    ]);
    rmSync(pwFile);
    // The port was free a moment ago; another process may take it first, so try a few.
    let port = 0;
    for (let attempt = 0; ; attempt++) {
      port = await freePort();
      const options = [
        `-p ${port}`,
        `-k ${dir}`,
        '-c listen_addresses=127.0.0.1',
        '-c fsync=off',
        '-c synchronous_commit=off',
        '-c full_page_writes=off',
        '-c max_connections=40',
        '-c shared_buffers=16MB',
        '-c log_statement=all',
      ].join(' ');
      try {
        run('pg_ctl', ['-D', data, '-l', logFile, '-w', '-t', '30', '-o', options, 'start']);
        break;
      } catch (error) {
        if (attempt >= 2) throw error;
      }
    }
    let stopped = false;
    const stop = (): void => {
      if (stopped) return;
      stopped = true;
      process.off('exit', stop);
      try {
        run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    };
    // A test file that dies before its afterAll still leaves no server running.
    process.once('exit', stop);
    return {
      connectionString: `postgres://postgres:${superuserPassword}@127.0.0.1:${port}/postgres`,
      host: '127.0.0.1',
      port,
      superuser: 'postgres',
      superuserPassword,
      logFile,
      stop() {
        stop();
        return Promise.resolve();
      },
    };
  } catch (error) {
    if (existsSync(join(data, 'postmaster.pid')))
      try {
        run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } catch {
        // Already down: nothing left to stop.
      }
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}
