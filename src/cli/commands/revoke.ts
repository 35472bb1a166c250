import type { Command } from 'commander';
import { invalid } from '../../core/internal.js';
import { isIdentifier } from '../../identity/index.js';
import type { CliContext } from '../context.js';
import { logRevocations } from './audit.js';

/** Revoked identities stay on the deny-set this long (they have no expiry of their own). */
const IDENTITY_REVOCATION_SECONDS = 10 * 365 * 86_400;
/** A revoked credential or link expires at the latest this long after revocation. */
const LINK_REVOCATION_SECONDS = 30 * 86_400;

export function registerRevokeCommands(program: Command, context: () => CliContext): void {
  program
    .command('revoke')
    .argument('<id>', 'a revocation id (32 hex digits), an identifier, or a local identity name')
    .addHelpText(
      'after',
      '\nA revocation id names one credential or link, derived from its signed bytes: this home cannot\ntell which until a chain carrying it is presented, and refuses that chain from then on. An\nidentifier this home has never seen is recorded too (a chain from elsewhere may carry it), with a\nnote on stderr.',
    )
    .option('--reason <text>', 'why (kept with the entry)')
    .description(
      'revoke a credential or link (and every chain through it), or an identity (everything it issued or holds)',
    )
    .action((ref: string, opts: { reason?: string }) => runRevoke(context(), ref, opts));
}

/** `revoke`: put a revocation id or an identity on this home's deny-set. */
export async function runRevoke(
  ctx: CliContext,
  ref: string,
  opts: { reason?: string },
): Promise<void> {
  const now = ctx.clock.nowSeconds();
  const home = await ctx.openHome();
  try {
    let id = ref;
    let identity = isIdentifier(ref);
    if (!identity && !/^[0-9a-f]{32}$/.test(ref)) {
      // A local name stands for its identifier (never a guess: the name must exist here).
      const named = await home.identities.find(ref);
      if (named === undefined)
        throw invalid(
          'ERR_ARGUMENT_INVALID',
          `\`${ref}\` is neither a revocation id (32 lowercase hex digits), an identifier (\`I\` + 64 hex digits) nor an identity of this home`,
        );
      id = named.identity.identifier;
      identity = true;
    }
    const known = identity ? (await home.identities.find(id)) !== undefined : undefined;
    const update = await home.denySetRepository.append(
      [
        {
          kind: identity ? 'identity' : 'revocation-id',
          id,
          revokedAt: now,
          expiresAt: now + (identity ? IDENTITY_REVOCATION_SECONDS : LINK_REVOCATION_SECONDS),
          ...(opts.reason === undefined ? {} : { reason: opts.reason }),
        },
      ],
      now,
    );
    // The revocation goes into the audit log too, so an offline verifier knows it from then on.
    if (update.entries.length > 0) await logRevocations(home, update, now, ctx.out);
    // Recorded even when this home has never seen it (a chain from elsewhere may carry it),
    // but said plainly, so a mistyped id is noticed.
    if (identity && known === false)
      ctx.out.note(
        `note: \`${id}\` is not an identity this home knows; recorded anyway, so any chain or peer carrying it is refused here`,
      );
    ctx.out.result(
      {
        revoked: id,
        kind: identity ? 'identity' : 'revocation-id',
        known,
        sequence: update.toSequence,
      },
      () => `revoked ${id} (deny-set sequence ${update.toSequence})`,
    );
  } finally {
    home.close();
  }
}
