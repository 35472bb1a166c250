// Where `broker start` takes its PostgreSQL admin connection from, keeping the password out of
// the process's arguments (`/proc/PID/cmdline` is readable by every local user).
import { invalid } from '../../core/internal.js';
import { readSecretValue } from './secret.js';

/** The environment variable `broker start` reads the admin connection string from. */
export const POSTGRES_URL_ENV = 'MANDATE_POSTGRES_URL';

export interface BrokerPostgresOptions {
  readonly postgres?: string;
  readonly postgresFile?: string;
}

/**
 * The admin connection string, from exactly one of: `--postgres-file FILE` (a regular file that
 * neither group nor others can read, as `secret put` demands: `ERR_SECRET_FILE_INSECURE`),
 * `--postgres URL` (visible to other local users: a URL holding a password gets a warning on
 * stderr), or `MANDATE_POSTGRES_URL` when neither option is given. `undefined` when none is.
 */
export function postgresAdminUrl(
  opts: BrokerPostgresOptions,
  env: NodeJS.ProcessEnv,
  warn: (line: string) => void,
): string | undefined {
  if (opts.postgres !== undefined && opts.postgresFile !== undefined)
    throw invalid(
      'ERR_ARGUMENT_INVALID',
      'give the postgresql admin connection once: `--postgres` or `--postgres-file`',
    );
  if (opts.postgresFile !== undefined) {
    const bytes = readSecretValue(opts.postgresFile);
    try {
      const url = Buffer.from(bytes).toString('utf8').trim();
      if (url === '')
        throw invalid(
          'ERR_ARGUMENT_INVALID',
          `\`${opts.postgresFile}\` holds no connection string`,
        );
      return url;
    } finally {
      bytes.fill(0);
    }
  }
  if (opts.postgres !== undefined) {
    if (holdsPassword(opts.postgres))
      warn(
        `warning: the \`--postgres\` URL holds a password, which other local users can read in the process list; use \`--postgres-file\` or ${POSTGRES_URL_ENV}`,
      );
    return opts.postgres;
  }
  const fromEnv = env[POSTGRES_URL_ENV];
  return fromEnv === undefined || fromEnv === '' ? undefined : fromEnv;
}

/** Whether a connection string carries a password (`user:password@`, or `password=`). */
function holdsPassword(url: string): boolean {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '' || parsed.searchParams.has('password')) return true;
  } catch {
    // Not a URL (a keyword string): fall through to the text checks.
  }
  return /password\s*=/i.test(url) || /^[a-z][a-z0-9+.-]*:\/\/[^/@]*:[^/@]*@/i.test(url);
}
