import type { Command } from 'commander';
import { notFound } from '../../core/internal.js';
import { isMandateError } from '../../core/index.js';
import { toHex } from '../../encoding/index.js';
import { TRUST_SCOPE_ALL } from '../../credentials/index.js';
import type { VerifiedIdentity } from '../../identity/index.js';
import { NodeServiceName } from '../../node/index.js';
import type { Home } from '../home.js';
import type { CliContext } from '../context.js';
import { formatFields } from '../output.js';
import { parseDuration } from '../parse.js';
import { DEFAULT_AUTHORITY } from '../chains.js';
import { given, nodeConfigOf, runNode } from './node.js';

export function registerAuthorityCommands(program: Command, context: () => CliContext): void {
  const authorityCommand = program
    .command('authority')
    .description('run this home as an authority');
  authorityCommand
    .command('init')
    .option('--name <name>', 'name of the authority identity', DEFAULT_AUTHORITY)
    .description('create (or reuse) the authority identity and trust it as an issuer')
    .action((opts: { name: string }) => runAuthorityInit(context(), opts));

  authorityCommand
    .command('start')
    .description(
      'run the authority node until SIGINT or SIGTERM: redeems tickets, renews members’ credentials and serves its deny-set and policy bundles to members’ nodes over secure channels (logs on stderr)',
    )
    .requiredOption('--listen <host:port>', 'where to listen, e.g. 127.0.0.1:4200')
    .option('--name <name>', 'name of the authority identity', DEFAULT_AUTHORITY)
    .option(
      '--credential-ttl <duration>',
      'lifetime of the credentials it issues (redeemed and renewed), at most 1d (default 1h)',
    )
    .action((opts: { listen: string; name: string; credentialTtl?: string }) =>
      runAuthorityStart(context(), opts),
    );
}

/**
 * The authority identity `name` of an open home, created when the home has none by that name,
 * and trusted as an issuer for every scope (again, harmlessly, when it already is): the one-time
 * set-up of `authority init` and `up`.
 */
export async function ensureAuthority(
  home: Home,
  name: string,
  nowSeconds: number,
): Promise<{ readonly identity: VerifiedIdentity; readonly created: boolean }> {
  let identity: VerifiedIdentity;
  let created = false;
  try {
    identity = (await home.identities.get(name)).identity;
  } catch {
    identity = (await home.identities.create({ name })).identity;
    created = true;
  }
  await home.trustAnchors.addTrustAnchor({
    identifier: identity.identifier,
    scope: TRUST_SCOPE_ALL,
    addedAt: nowSeconds,
  });
  return { identity, created };
}

/** `authority init`: create (or reuse) the authority identity and trust it as an issuer. */
export async function runAuthorityInit(ctx: CliContext, opts: { name: string }): Promise<void> {
  const home = await ctx.openHome();
  try {
    const { identity } = await ensureAuthority(home, opts.name, ctx.clock.nowSeconds());
    ctx.out.result(
      {
        identifier: identity.identifier,
        name: opts.name,
        changeHistory: toHex(identity.changeHistory),
      },
      () =>
        formatFields([
          ['authority', identity.identifier],
          ['name', opts.name],
        ]),
    );
  } finally {
    home.close();
  }
}

/**
 * `authority start`: a node whose identity is the authority (`--name`) with the `authority`
 * service (src/node/authority-node.ts), until SIGINT or SIGTERM.
 */
export async function runAuthorityStart(
  ctx: CliContext,
  opts: { listen: string; name: string; credentialTtl?: string },
): Promise<void> {
  const ttlSeconds =
    opts.credentialTtl === undefined
      ? undefined
      : parseDuration(opts.credentialTtl, '--credential-ttl');
  const config = nodeConfigOf(
    { listen: opts.listen, identity: opts.name },
    {
      services: [NodeServiceName.authority],
      authorityService: given({ credentialTtlSeconds: ttlSeconds }),
    },
  );
  await runNode(ctx, config).catch((error: unknown) => {
    if (!isMandateError(error, 'ERR_IDENTITY_NOT_FOUND')) throw error;
    throw notFound(
      'ERR_IDENTITY_NOT_FOUND',
      `no authority \`${opts.name}\` in this home: create it with \`mandate authority init\``,
    );
  });
}
