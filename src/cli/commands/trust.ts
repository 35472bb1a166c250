import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { isMandateError } from '../../core/index.js';
import { notFound } from '../../core/internal.js';
import {
  identityScope,
  parseTrustScope,
  TRUST_SCOPE_ALL,
  type TrustScope,
} from '../../credentials/index.js';
import { isIdentifier, type VerifiedIdentity } from '../../identity/index.js';
import type { CliContext } from '../context.js';
import type { Home } from '../home.js';
import { readBytesArgument } from '../input.js';

const IDENTITY_SCOPE_PREFIX = 'identity:';

/**
 * `IDENTIFIER|NAME|HISTORY-FILE|HEX|-`: an identity this home knows, or a change history, which
 * is verified and imported (a longer history replaces a known prefix; a fork is refused).
 */
async function authorityOf(home: Home, arg: string): Promise<VerifiedIdentity> {
  if (arg !== '-' && !existsSync(arg)) {
    const known = await home.identities.get(arg).catch((error: unknown) => {
      if (isMandateError(error, 'ERR_IDENTITY_NOT_FOUND')) return undefined;
      throw error;
    });
    if (known !== undefined) return known.identity;
    if (isIdentifier(arg))
      throw notFound(
        'ERR_IDENTITY_NOT_FOUND',
        `no identity \`${arg}\` in this home: give its change history instead`,
      );
  }
  return (await home.identities.import(readBytesArgument(arg, 'change history'))).identity;
}

/** `--scope`: `all`, or `identity:` and a name or identifier this home knows. */
async function scopeOf(home: Home, text: string): Promise<TrustScope> {
  if (
    !text.startsWith(IDENTITY_SCOPE_PREFIX) ||
    isIdentifier(text.slice(IDENTITY_SCOPE_PREFIX.length))
  )
    return parseTrustScope(text);
  const known = await home.identities.get(text.slice(IDENTITY_SCOPE_PREFIX.length));
  return identityScope(known.identity.identifier);
}

export function registerTrustCommands(program: Command, context: () => CliContext): void {
  const trust = program
    .command('trust')
    .description('trust anchors: the authorities whose credentials this home accepts, and where');

  trust
    .command('add')
    .argument(
      '<authority>',
      'an identifier or name known here, or its change history: FILE, HEX or -',
    )
    .description(
      'trust an authority for every verifier of this home (`ticket redeem` trusts it for the enrolled identity only)',
    )
    .action(async (arg: string) => {
      const ctx = context();
      const home = await ctx.openHome();
      try {
        const authority = await authorityOf(home, arg);
        const added = await home.trustAnchors.addTrustAnchor({
          identifier: authority.identifier,
          scope: TRUST_SCOPE_ALL,
          addedAt: ctx.clock.nowSeconds(),
        });
        ctx.out.result(
          { identifier: authority.identifier, scope: TRUST_SCOPE_ALL, added },
          () => `${added ? 'trusted' : 'already trusted'} ${authority.identifier} (all)`,
        );
      } finally {
        home.close();
      }
    });

  trust
    .command('list')
    .description('list the trust anchors: identifier, when added, and scope')
    .action(async () => {
      const ctx = context();
      const home = await ctx.openHome();
      try {
        const anchors = await home.trustAnchors.listTrustAnchors();
        ctx.out.result({ anchors }, () =>
          anchors.length === 0
            ? 'no trust anchors'
            : anchors
                .map(
                  (a) => `${a.identifier}  ${new Date(a.addedAt * 1000).toISOString()}  ${a.scope}`,
                )
                .join('\n'),
        );
      } finally {
        home.close();
      }
    });

  trust
    .command('remove')
    .argument('<authority>', 'the authority: an identifier or a name known here')
    .option('--scope <scope>', '`all` or `identity:NAME|IDENTIFIER` (default: every scope)')
    .description('stop trusting an authority, in one scope or in all of them')
    .action(async (ref: string, opts: { scope?: string }) => {
      const ctx = context();
      const home = await ctx.openHome();
      try {
        const scope = opts.scope === undefined ? undefined : await scopeOf(home, opts.scope);
        const identifier = isIdentifier(ref)
          ? ref
          : (await home.identities.get(ref)).identity.identifier;
        const removed = await home.trustAnchors.removeTrustAnchors(identifier, scope);
        if (removed === 0)
          throw notFound(
            'ERR_TRUST_ANCHOR_NOT_FOUND',
            `\`${identifier}\` is no trust anchor${scope === undefined ? '' : ` in scope \`${scope}\``}`,
          );
        ctx.out.result(
          { identifier, removed },
          () => `removed ${removed} trust anchor${removed === 1 ? '' : 's'} of ${identifier}`,
        );
      } finally {
        home.close();
      }
    });
}
