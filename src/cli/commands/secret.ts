import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type { Command } from 'commander';
import { forbidden, invalid, notFound } from '../../core/internal.js';
import { wipe } from '../../crypto/index.js';
import { MAX_SECRET_BYTES, checkSecretName, type SecretInfo } from '../../broker/index.js';
import type { CliContext } from '../context.js';

const iso = (seconds: number): string => new Date(seconds * 1000).toISOString();

export function registerSecretCommands(program: Command, context: () => CliContext): void {
  const secret = program
    .command('secret')
    .description("the broker's sealed secrets: values sealed under the vault's key, never printed");
  secret
    .command('put')
    .argument('<name>', 'the secret name, e.g. `stripe/refunds`')
    .option('--from-file <file>', 'read the value from this file (mode 0600), not from stdin')
    .description('store a new secret (stdin by default; one trailing newline is dropped)')
    .action((name: string, opts: { fromFile?: string }) => runSecretPut(context(), name, opts));
  secret
    .command('list')
    .description('the secrets: names, versions and dates, never values')
    .action(() => runSecretList(context()));
  secret
    .command('rotate')
    .argument('<name>', 'an existing secret')
    .option('--from-file <file>', 'read the new value from this file (mode 0600), not from stdin')
    .description("replace a secret's value (its version goes up by one)")
    .action((name: string, opts: { fromFile?: string }) => runSecretRotate(context(), name, opts));
  secret
    .command('remove')
    .argument('<name>', 'an existing secret')
    .description('remove a secret')
    .action((name: string) => runSecretRemove(context(), name));
}

function infoJson(info: SecretInfo) {
  return {
    name: info.name,
    version: info.version,
    createdAt: info.createdAt,
    updatedAt: info.updatedAt,
  };
}

/** `secret put NAME [--from-file FILE]`. */
export function runSecretPut(
  ctx: CliContext,
  name: string,
  opts: { fromFile?: string },
): Promise<void> {
  return storeSecret(ctx, name, opts, 'put');
}

/** `secret rotate NAME [--from-file FILE]`. */
export function runSecretRotate(
  ctx: CliContext,
  name: string,
  opts: { fromFile?: string },
): Promise<void> {
  return storeSecret(ctx, name, opts, 'rotate');
}

/** Reads the value (wiped however this ends), then puts or rotates it. */
async function storeSecret(
  ctx: CliContext,
  name: string,
  opts: { fromFile?: string },
  verb: 'put' | 'rotate',
): Promise<void> {
  checkSecretName(name);
  const value = readSecretValue(opts.fromFile);
  try {
    const home = await ctx.openHome();
    try {
      const info = await (verb === 'put'
        ? home.secrets.put(name, value)
        : home.secrets.rotate(name, value));
      ctx.out.result(
        infoJson(info),
        () =>
          `${verb === 'put' ? 'stored' : 'rotated'} secret ${info.name} (version ${info.version})`,
      );
    } finally {
      home.close();
    }
  } finally {
    wipe(value);
  }
}

/** `secret list`. */
export async function runSecretList(ctx: CliContext): Promise<void> {
  const home = await ctx.openHome();
  try {
    const secrets = await home.secrets.list();
    ctx.out.result({ secrets: secrets.map(infoJson) }, () =>
      secrets.length === 0
        ? 'no secrets'
        : secrets
            .map((s) => `${s.name}  version ${s.version}  updated ${iso(s.updatedAt)}`)
            .join('\n'),
    );
  } finally {
    home.close();
  }
}

/** `secret remove NAME`. */
export async function runSecretRemove(ctx: CliContext, name: string): Promise<void> {
  const home = await ctx.openHome();
  try {
    await home.secrets.remove(name);
    ctx.out.result({ removed: name }, () => `removed secret ${name}`);
  } finally {
    home.close();
  }
}

/**
 * The value, from `file` or stdin, in a buffer the caller wipes. A file must be a regular file
 * that neither group nor others can read (as the vault's key file): a secret left readable to
 * others is refused with `ERR_SECRET_FILE_INSECURE` before a byte is read. One trailing newline
 * (`\n` or `\r\n`) is dropped, so `echo "$TOKEN" | mandate secret put NAME` stores the token.
 */
export function readSecretValue(file: string | undefined): Uint8Array {
  let fd: number;
  if (file === undefined) {
    fd = 0;
  } else {
    try {
      fd = openSync(file, 'r');
    } catch {
      throw notFound('ERR_FILE_NOT_FOUND', `no such file \`${file}\``);
    }
  }
  try {
    if (file !== undefined) {
      const stat = fstatSync(fd);
      if (!stat.isFile()) throw invalid('ERR_ARGUMENT_INVALID', `\`${file}\` is not a file`);
      if ((stat.mode & 0o077) !== 0)
        throw forbidden(
          'ERR_SECRET_FILE_INSECURE',
          `\`${file}\` has mode ${(stat.mode & 0o777).toString(8).padStart(4, '0')}: a secret file must be readable by its owner only (chmod 600)`,
        );
    }
    return readBounded(fd, file ?? 'stdin');
  } finally {
    if (fd !== 0) closeSync(fd);
  }
}

/** Reads at most MAX_SECRET_BYTES (+ a newline) into one buffer, wiping every copy it makes. */
function readBounded(fd: number, what: string): Uint8Array {
  const limit = MAX_SECRET_BYTES + 2;
  const buffer = Buffer.alloc(limit + 1);
  let length = 0;
  for (;;) {
    let n: number;
    try {
      n = readSync(fd, buffer, length, buffer.length - length, null);
    } catch (error) {
      if (error instanceof Error && 'code' in error && error.code === 'EAGAIN') continue;
      wipe(buffer);
      throw error;
    }
    if (n === 0) break;
    length += n;
    if (length > limit) {
      wipe(buffer);
      throw invalid(
        'ERR_SECRET_VALUE_INVALID',
        `the value in ${what} is over ${MAX_SECRET_BYTES} bytes`,
      );
    }
  }
  if (length > 0 && buffer[length - 1] === 0x0a) length--;
  if (length > 0 && buffer[length - 1] === 0x0d) length--;
  const value = new Uint8Array(length);
  value.set(buffer.subarray(0, length));
  wipe(buffer);
  return value;
}
