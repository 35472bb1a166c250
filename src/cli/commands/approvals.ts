import type { Command } from 'commander';
import { forbidden, invalid } from '../../core/internal.js';
import { isMandateError } from '../../core/index.js';
import {
  ChainVerifier,
  chainFromCredential,
  type CredentialIssuer,
  type VerifiedChain,
} from '../../credentials/index.js';
import { Purpose, type Identifier } from '../../identity/index.js';
import { answerApproval, type ApprovalRecord, type ApprovalStatus } from '../../gates/index.js';
import type { CliContext } from '../context.js';
import type { Home } from '../home.js';
import { formatFields } from '../output.js';
import { parsePositiveInteger } from '../parse.js';
import { DEFAULT_AUTHORITY, readChain, verification } from '../chains.js';

/** How long the credential the home's authority issues for one answer lives. */
const ANSWER_CREDENTIAL_TTL_SECONDS = 300;
const STATUSES: readonly ApprovalStatus[] = ['pending', 'approved', 'denied', 'used'];

interface AnswerOptions {
  as: string;
  reason: string;
  credential?: string;
  authority: string;
}

export function registerApprovalCommands(program: Command, context: () => CliContext): void {
  const approvals = program
    .command('approvals')
    .description('human approvals of tool calls a policy marked @approval');
  approvals
    .command('list')
    .option('--status <status>', `only these: ${STATUSES.join(', ')}`)
    .option('--limit <n>', 'at most this many, newest first (default 100)')
    .description('the approval requests of this home, newest first')
    .action((opts: { status?: string; limit?: string }) => runApprovalsList(context(), opts));
  for (const decision of ['approve', 'deny'] as const) {
    approvals
      .command(decision)
      .argument('<id>', 'the approval request')
      .requiredOption(
        '--as <identity>',
        'the human answering: a local identity the authority marked human=true',
      )
      .requiredOption('--reason <text>', 'why (kept with the decision)')
      .option(
        '--credential <file>',
        "the human's own credential; without it, this home's authority issues one from its membership record",
      )
      .option('--authority <name>', 'the authority that vouches for the human', DEFAULT_AUTHORITY)
      .description(`${decision} a pending request, signed with the human's credential key`)
      .action((id: string, opts: AnswerOptions) =>
        runApprovalAnswer(context(), id, decision, opts),
      );
  }
}

/** `approvals list`. */
export async function runApprovalsList(
  ctx: CliContext,
  opts: { status?: string; limit?: string },
): Promise<void> {
  if (opts.status !== undefined && !STATUSES.includes(opts.status as ApprovalStatus))
    throw invalid('ERR_ARGUMENT_INVALID', `\`--status\` is one of ${STATUSES.join(', ')}`);
  const limit = opts.limit === undefined ? 100 : parsePositiveInteger(opts.limit, '--limit');
  if (limit > 10_000)
    throw invalid('ERR_ARGUMENT_INVALID', '`--limit` is an integer from 1 to 10000');
  const home = await ctx.openHome();
  try {
    const records = await home.store.approvals.list({
      limit,
      ...(opts.status === undefined ? {} : { status: opts.status as ApprovalStatus }),
    });
    ctx.out.result({ approvals: records.map(approvalJson) }, () =>
      records.length === 0 ? 'no approval requests' : records.map(humanApproval).join('\n\n'),
    );
  } finally {
    home.close();
  }
}

function approvalJson(r: ApprovalRecord) {
  return {
    id: r.id,
    status: r.status,
    agent: r.agent,
    tool: r.tool,
    arguments: r.arguments,
    argumentsDigest: r.argumentsDigest,
    reason: r.reason,
    policies: r.policies,
    chainHash: r.chainHash,
    bundleVersion: r.bundleVersion,
    bundleHash: r.bundleHash,
    createdAt: r.createdAt,
    expiresAt: r.expiresAt,
    ...(r.answer === undefined
      ? {}
      : {
          answer: {
            approver: r.answer.approver,
            decision: r.answer.decision,
            reason: r.answer.reason,
            answeredAt: r.answer.answeredAt,
            signature: r.answer.signature,
          },
        }),
    ...(r.usedAt === undefined ? {} : { usedAt: r.usedAt }),
  };
}

function humanApproval(r: ApprovalRecord): string {
  return [
    `${r.id}  ${r.status}`,
    formatFields([
      ['agent', r.agent],
      ['tool', r.tool],
      ['arguments', r.arguments],
      ['why', r.reason],
      ['expires', new Date(r.expiresAt * 1000).toISOString()],
      ...(r.answer === undefined
        ? []
        : ([
            ['answer', `${r.answer.decision} by ${r.answer.approver}`],
            ['because', r.answer.reason],
          ] as [string, string][])),
    ]),
  ].join('\n');
}

/** A short-lived credential from this home's authority, for a member; anyone else is no human it knows. */
async function memberCredential(
  home: Home,
  authority: string,
  identifier: Identifier,
  now: number,
): Promise<Uint8Array> {
  try {
    return await home
      .authority(authority)
      .issueCredential(identifier, now, { ttlSeconds: ANSWER_CREDENTIAL_TTL_SECONDS });
  } catch (error) {
    if (isMandateError(error, 'ERR_MEMBER_NOT_FOUND'))
      throw forbidden(
        'ERR_APPROVAL_NOT_HUMAN',
        `\`${identifier}\` is not a member the authority marked \`human=true\``,
        error,
      );
    throw error;
  }
}

/**
 * A human who answers approvals: its own credential — given, or issued now by this home's
 * authority from the membership record that says `human=true` — verified like any chain against
 * the home-wide trust anchors (a scoped anchor never makes an approver), and its credential key.
 * `answerApproval` / `signApprovalAnswer` refuse it unless its subject is marked human and it
 * carries no delegation.
 */
export async function humanApprover(
  home: Home,
  name: string,
  now: number,
  opts: { readonly credential?: string; readonly authority: string },
): Promise<{ approver: VerifiedChain; signer: CredentialIssuer }> {
  const human = (await home.identities.get(name)).identity;
  const bytes =
    opts.credential !== undefined
      ? await readChain(home, opts.credential)
      : chainFromCredential(
          await memberCredential(home, opts.authority, human.identifier, now),
          human,
        );
  const approver = new ChainVerifier(await verification(home, now, bytes)).verify(bytes, {
    nowSeconds: now,
    presenter: human.identifier,
  });
  const { verified, keyId } = await home.identities.purposeKey(
    human.identifier,
    Purpose.credentials,
  );
  const signer: CredentialIssuer = {
    identity: human,
    credentialKeyId: keyId,
    credentialKeyAttestation: verified.attestation,
    verifiedKey: verified,
  };
  return { approver, signer };
}

/** `approvals approve|deny ID --as NAME --reason TEXT`. */
export async function runApprovalAnswer(
  ctx: CliContext,
  id: string,
  decision: 'approve' | 'deny',
  opts: AnswerOptions,
): Promise<void> {
  const home = await ctx.openHome();
  try {
    const record = await answerApprovalAs(home, {
      id,
      decision,
      reason: opts.reason,
      as: opts.as,
      authority: opts.authority,
      nowSeconds: ctx.clock.nowSeconds(),
      ...(opts.credential === undefined ? {} : { credential: opts.credential }),
    });
    ctx.out.result(
      approvalJson(record),
      () => `${record.status}: ${record.id}\n${humanApproval(record)}`,
    );
  } finally {
    home.close();
  }
}

/**
 * A human of this home answers an approval request: the one code path of `approvals approve|deny`
 * and the dashboard. `as` names the human (a local identity); its credential is `credential` (a
 * file) or issued now by this home's authority from the membership record that says `human=true`.
 */
export async function answerApprovalAs(
  home: Home,
  options: {
    readonly id: string;
    readonly decision: 'approve' | 'deny';
    readonly reason: string;
    readonly as: string;
    readonly authority: string;
    readonly credential?: string;
    readonly nowSeconds: number;
  },
): Promise<ApprovalRecord> {
  const now = options.nowSeconds;
  const { approver, signer } = await humanApprover(home, options.as, now, options);
  return answerApproval(home.store.approvals, {
    id: options.id,
    decision: options.decision,
    reason: options.reason,
    approver,
    signer,
    vault: home.vault,
    nowSeconds: now,
  });
}
