import type { Command } from 'commander';
import { invalid } from '../../core/internal.js';
import { isMandateError } from '../../core/index.js';
import { toHex } from '../../encoding/index.js';
import {
  parseIdentifier,
  Purpose,
  verifyChangeHistory,
  type KnownIdentity,
} from '../../identity/index.js';
import { describePurposeKey } from '../../identity/internal.js';
import { SigningKeyType } from '../../vault/index.js';
import { formatFields } from '../output.js';
import { withProgress } from '../progress.js';
import { readBytesArgument } from '../input.js';
import { parsePositiveInteger } from '../parse.js';
import type { CliContext } from '../context.js';

function parseKeyType(value: string): SigningKeyType {
  if (value === 'ed25519' || value === 'p256') return value;
  throw invalid(
    'ERR_ARGUMENT_INVALID',
    `\`--key-type\` must be \`ed25519\` or \`p256\`, not \`${value}\``,
  );
}

function summary(known: KnownIdentity) {
  const d = known.identity.describe();
  return {
    identifier: d.identifier,
    name: known.name,
    local: known.primaryKeyId !== null,
    keyType: d.keyType,
    changes: d.changes,
  };
}

function humanIdentity(known: KnownIdentity): string {
  const latest = known.identity.latestChange;
  return formatFields([
    ['identifier', known.identity.identifier],
    ['name', known.name ?? '-'],
    ['local', known.primaryKeyId !== null],
    ['key type', known.identity.keyType],
    ['changes', known.identity.changes.length],
    ['primary key', toHex(latest.primaryPublicKey.bytes)],
    ['valid until', new Date(latest.attestationsValidUntil * 1000).toISOString()],
  ]);
}

export function registerIdentityCommands(program: Command, context: () => CliContext): void {
  const identity = program
    .command('identity')
    .description('create, rotate, export, import and verify identities');

  identity
    .command('create')
    .description('create one identity, or many with --count (with a progress bar)')
    .option('--name <name>', 'a local name (with --count: a prefix, names become NAME0, NAME1, …)')
    .option('--key-type <type>', 'primary key type: ed25519 or p256', 'ed25519')
    .option('--count <n>', 'how many identities to create', '1')
    .option('--workers <n>', 'worker threads for --count (default: one per core)')
    .action(async (opts: { name?: string; keyType: string; count: string; workers?: string }) => {
      const ctx = context();
      const keyType = parseKeyType(opts.keyType);
      const count = parsePositiveInteger(opts.count, '--count');
      const workers =
        opts.workers === undefined ? undefined : parsePositiveInteger(opts.workers, '--workers');
      const home = await ctx.openHome();
      try {
        if (count === 1) {
          const created = await home.identities.create({
            keyType,
            ...(opts.name === undefined ? {} : { name: opts.name }),
          });
          const known = {
            identity: created.identity,
            name: created.name,
            primaryKeyId: created.primaryKeyId,
          };
          ctx.out.result(summary(known), () => humanIdentity(known));
          return;
        }
        const started = process.hrtime.bigint();
        const created = await withProgress('creating identities', count, !ctx.out.json, (update) =>
          home.provision({
            count,
            keyType,
            ...(workers === undefined ? {} : { workers }),
            ...(opts.name === undefined ? {} : { namePrefix: opts.name }),
            onProgress: update,
          }),
        );
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        const rate = Math.round(count / seconds);
        ctx.out.result(
          {
            created: created.length,
            seconds,
            perSecond: rate,
            identifiers: created,
          },
          () => `created ${created.length} identities in ${seconds.toFixed(2)} s (${rate}/s)`,
        );
      } finally {
        home.close();
      }
    });

  identity
    .command('list')
    .description('list known identities')
    .option('--limit <n>', 'at most this many', '100')
    .option('--offset <n>', 'skip this many', '0')
    .action(async (opts: { limit: string; offset: string }) => {
      const ctx = context();
      const home = await ctx.openHome();
      try {
        const offset = opts.offset === '0' ? 0 : parsePositiveInteger(opts.offset, '--offset');
        const rows = await home.identities.list({
          limit: parsePositiveInteger(opts.limit, '--limit'),
          offset,
        });
        const total = await home.identities.count();
        ctx.out.result({ total, identities: rows.map(summary) }, () =>
          rows.length === 0
            ? 'no identities'
            : [
                ...rows.map(
                  (r) =>
                    `${r.identity.identifier}  ${(r.name ?? '-').padEnd(16)} ${r.identity.keyType.padEnd(8)} changes=${r.identity.changes.length}${r.primaryKeyId === null ? '' : ' local'}`,
                ),
                `(${rows.length} of ${total})`,
              ].join('\n'),
        );
      } finally {
        home.close();
      }
    });

  identity
    .command('show')
    .argument('<ref>', 'name or identifier')
    .description('show an identity and its purpose keys')
    .action(async (ref: string) => {
      const ctx = context();
      const home = await ctx.openHome();
      try {
        const known = await home.identities.get(ref);
        const purposeKeys: ({ purpose: Purpose } & (
          | (ReturnType<typeof describePurposeKey> & { expiresAt: number; valid: true })
          | { valid: false; error: string }
        ))[] = [];
        for (const purpose of [Purpose.credentials, Purpose.secureChannel]) {
          try {
            const { verified } = await home.identities.purposeKey(known, purpose);
            purposeKeys.push({
              ...describePurposeKey(verified.key),
              expiresAt: verified.expiresAt,
              valid: true,
            });
          } catch (error) {
            // Identities imported from elsewhere have no local purpose keys: nothing to show.
            if (isMandateError(error, 'ERR_PURPOSE_KEY_NOT_FOUND')) continue;
            // A stale, revoked or expired key is shown as such, with its code.
            if (isMandateError(error))
              purposeKeys.push({ purpose, valid: false, error: error.code });
            else throw error;
          }
        }
        ctx.out.result({ ...summary(known), purposeKeys }, () =>
          [
            humanIdentity(known),
            ...purposeKeys.map((p) =>
              formatFields([
                [
                  `${p.purpose} key`,
                  p.valid ? `${p.keyType} ${p.publicKey}` : `invalid (${p.error})`,
                ],
              ]),
            ),
          ].join('\n'),
        );
      } finally {
        home.close();
      }
    });

  identity
    .command('rotate')
    .argument('<ref>', 'name or identifier of a local identity')
    .option(
      '--revoke-purpose-keys',
      'void all purpose keys at once (key compromise) and make new ones',
    )
    .option('--key-type <type>', 'key type of the new primary key')
    .description('rotate the primary key; the identifier stays the same')
    .action(async (ref: string, opts: { revokePurposeKeys?: boolean; keyType?: string }) => {
      const ctx = context();
      const home = await ctx.openHome();
      try {
        const rotated = await home.identities.rotate(ref, {
          revokeAllPurposeKeys: opts.revokePurposeKeys === true,
          ...(opts.keyType === undefined ? {} : { keyType: parseKeyType(opts.keyType) }),
        });
        const known = {
          identity: rotated.identity,
          name: rotated.name,
          primaryKeyId: rotated.primaryKeyId,
        };
        ctx.out.result(summary(known), () => humanIdentity(known));
      } finally {
        home.close();
      }
    });

  identity
    .command('export')
    .argument('<ref>', 'name or identifier')
    .description('print the change history as hex')
    .action(async (ref: string) => {
      const ctx = context();
      const home = await ctx.openHome();
      try {
        const known = await home.identities.get(ref);
        ctx.out.result(
          {
            identifier: known.identity.identifier,
            changeHistory: toHex(known.identity.changeHistory),
          },
          () => toHex(known.identity.changeHistory),
        );
      } finally {
        home.close();
      }
    });

  identity
    .command('import')
    .argument('<history>', 'change history: HEX, a FILE, or - for stdin')
    .option('--expect <identifier>', 'fail unless the history has this identifier')
    .description('verify and store a change history (a longer one replaces a known prefix)')
    .action(async (input: string, opts: { expect?: string }) => {
      const ctx = context();
      const bytes = readBytesArgument(input, 'change history');
      const home = await ctx.openHome();
      try {
        const { identity: imported, relation } = await home.identities.import(
          bytes,
          opts.expect === undefined ? {} : { expectedIdentifier: parseIdentifier(opts.expect) },
        );
        ctx.out.result(
          { identifier: imported.identifier, relation, changes: imported.changes.length },
          () =>
            `${relation === 'equal' ? 'already known' : relation === 'new' ? 'imported' : 'updated'} ${imported.identifier} (${imported.changes.length} change${imported.changes.length === 1 ? '' : 's'})`,
        );
      } finally {
        home.close();
      }
    });

  identity
    .command('verify')
    .argument('<history>', 'change history: HEX, a FILE, or - for stdin')
    .option('--expect <identifier>', 'fail unless the history has this identifier')
    .description('verify any change history offline and print its identifier, key type and changes')
    .action((input: string, opts: { expect?: string }) => {
      const ctx = context();
      const bytes = readBytesArgument(input, 'change history');
      const verified = verifyChangeHistory(
        bytes,
        opts.expect === undefined ? {} : { expectedIdentifier: parseIdentifier(opts.expect) },
      );
      const d = verified.describe();
      ctx.out.result({ valid: true, ...d }, () =>
        [
          formatFields([
            ['identifier', d.identifier],
            ['key type', d.keyType],
            ['changes', d.changes.length],
          ]),
          ...d.changes.map(
            (c, i) =>
              `  change ${i}: ${c.changeHash} ${c.keyType} valid ${new Date(c.attestationsValidFrom * 1000).toISOString()} .. ${new Date(c.attestationsValidUntil * 1000).toISOString()}${c.revokeAllPurposeKeys ? ' revokes purpose keys' : ''}`,
          ),
        ].join('\n'),
      );
    });
}
