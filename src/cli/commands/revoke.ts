import type { Command } from 'commander';
import { internal, invalid } from '../../core/internal.js';
import { AuditLog, signRevocationRecord } from '../../audit/index.js';
import type { CredentialIssuer, DenyEntry } from '../../credentials/index.js';
import { isIdentifier, Purpose } from '../../identity/index.js';
import { DEFAULT_AUTHORITY } from '../chains.js';
import type { CliContext } from '../context.js';
import type { Home } from '../home.js';
import { homeAuditOrigin } from './audit.js';

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
    const entry = denyEntry(identity ? 'identity' : 'revocation-id', id, now, opts.reason);
    const authority = await revocationSigner(home);
    if (authority === undefined)
      ctx.out.note('note: no local authority identity: the revocation is not in the audit log');
    const { sequence, added, logIndex } = await recordRevocation(home, authority, entry, now);
    if (!added)
      ctx.out.note(`note: \`${id}\` was already on this home's deny-set: nothing new was recorded`);
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
        sequence,
        ...(logIndex === undefined ? {} : { logIndex }),
      },
      () =>
        `revoked ${id} (deny-set sequence ${sequence}${logIndex === undefined ? '' : `, audit log index ${logIndex}`})`,
    );
  } finally {
    home.close();
  }
}

/**
 * The deny-set entry `revoke` makes for `id` at `now`: an identity stays revoked for good (ten
 * years), a credential or link until after it must have expired anyway.
 */
export function denyEntry(
  kind: DenyEntry['kind'],
  id: string,
  now: number,
  reason?: string,
): DenyEntry {
  return {
    kind,
    id,
    revokedAt: now,
    expiresAt: now + (kind === 'identity' ? IDENTITY_REVOCATION_SECONDS : LINK_REVOCATION_SECONDS),
    ...(reason === undefined ? {} : { reason }),
  };
}

/** The home's authority as the signer of revocation records; none on a home without one. */
export async function revocationSigner(home: Home): Promise<CredentialIssuer | undefined> {
  const known = await home.identities.find(DEFAULT_AUTHORITY);
  if (known?.primaryKeyId == null) return undefined;
  const { verified, keyId } = await home.identities.purposeKey(known, Purpose.credentials);
  return {
    identity: known.identity,
    credentialKeyId: keyId,
    credentialKeyAttestation: verified.attestation,
    verifiedKey: verified,
  };
}

/**
 * Puts `entry` on the deny-set and its signed revocation record in the audit log, both or
 * neither: one SQLite transaction (the deny-set and the log are in the home's one database) holds
 * the write lock from reading the next sequence number to the commit. The record is signed for
 * that number before anything is written, so a signer that fails (a credential key not valid at
 * `now`, a vault error) leaves no row; an append that fails rolls the row back. Under the lock no
 * other process can take the number or move the log's end, so concurrent revocations are logged
 * in deny-set order with no gap (`audit verify` checks: ERR_AUDIT_REVOCATION_MISSING). An entry
 * already on the deny-set (by id) adds nothing and logs nothing (docs/spec/audit.md).
 */
export async function recordRevocation(
  home: Home,
  authority: CredentialIssuer | undefined,
  entry: DenyEntry,
  now: number,
): Promise<{ sequence: number; added: boolean; logIndex?: number }> {
  return home.store.database.transaction(async () => {
    const from = await home.denySetRepository.currentSequence();
    const record =
      authority === undefined
        ? undefined
        : await signRevocationRecord(home.vault, authority, entry, from + 1, now);
    const update = await home.denySetRepository.append([entry], now);
    if (update.entries.length === 0) return { sequence: update.toSequence, added: false };
    if (update.fromSequence !== from)
      throw internal(
        'ERR_STORE_CORRUPT',
        `the deny-set moved from sequence ${from} to ${update.fromSequence} inside one transaction`,
      );
    if (authority === undefined || record === undefined)
      return { sequence: update.toSequence, added: true };
    // Opened under the lock: the log's end it reads is the end this append extends.
    const log = await AuditLog.open({
      repository: home.store.auditLog,
      origin: homeAuditOrigin(authority.identity.identifier),
    });
    try {
      const logIndex = await log.append(record);
      return { sequence: update.toSequence, added: true, logIndex };
    } finally {
      await log.close();
    }
  });
}
