import type { Command } from 'commander';
import {
  chainFromCredential,
  credentialRevocationId,
  decodeCredential,
} from '../../credentials/index.js';
import type { CliContext } from '../context.js';
import { formatFields } from '../output.js';
import { collect, parseDuration } from '../parse.js';
import {
  attributesOf,
  checkOutputFile,
  DEFAULT_AUTHORITY,
  parseConstraints,
  loadChain,
  writeOrPrint,
} from '../chains.js';
import { runChainVerify } from './chain.js';

interface CredentialIssueOptions {
  to: string;
  attr?: string[];
  ttl?: string;
  out?: string;
  authority: string;
}

export function registerCredentialCommands(program: Command, context: () => CliContext): void {
  const credential = program
    .command('credential')
    .description('issue, show and verify credentials');
  credential
    .command('issue')
    .requiredOption('--to <identity>', 'subject: a name or identifier this home knows')
    .option(
      '--attr <constraint>',
      'attribute, e.g. tools=read_orders,issue_refund or issue_refund#amount<=1000 (repeatable; without tools=… no action is allowed)',
      collect,
    )
    .option('--ttl <duration>', 'lifetime (default 1h, at most 1d: longer is refused)')
    .option('--out <file>', 'write the credential (as a chain of length 0) here')
    .option('--authority <name>', 'the issuing authority', DEFAULT_AUTHORITY)
    .description(
      'issue a credential from the authority: the subject becomes a member with these attributes',
    )
    .action((opts: CredentialIssueOptions) => runCredentialIssue(context(), opts));

  credential
    .command('show')
    .argument('<file>', 'a credential or chain: HEX, a FILE, or - for stdin')
    .description('decode without verifying')
    .action((file: string) => runCredentialShow(context(), file));

  credential
    .command('verify')
    .argument('<file>')
    .option('--presenter <identity>', 'who presents it')
    .description('verify against this home’s trusted authorities and deny-set')
    .action((file: string, opts: { presenter?: string }) => runChainVerify(context(), file, opts));
}

/** `credential issue`: the subject becomes a member with these attributes, and gets a credential. */
export async function runCredentialIssue(
  ctx: CliContext,
  opts: CredentialIssueOptions,
): Promise<void> {
  const attributes = attributesOf(parseConstraints(opts.attr));
  // Parsed before anything is stored: a bad TTL must not leave the membership changed.
  const ttl = opts.ttl === undefined ? {} : { ttlSeconds: parseDuration(opts.ttl, '--ttl') };
  checkOutputFile(opts.out);
  const home = await ctx.openHome();
  try {
    const subject = (await home.identities.get(opts.to)).identity;
    const authority = home.authority(opts.authority);
    // Refused before the membership changes, not cut short after.
    if (ttl.ttlSeconds !== undefined) authority.checkCredentialTtl(ttl.ttlSeconds);
    const authorityId = await authority.identifier();
    // Neither a revoked subject nor a revoked authority gets a credential from this home.
    const now = ctx.clock.nowSeconds();
    (await home.denySet(now)).assertNoneRevoked([subject.identifier, authorityId], now);
    // Issuing sets the member's attributes; an enroller stays an enroller.
    const existing = await authority.member(subject.identifier);
    await authority.addMember(authorityId, subject.identifier, attributes, {
      nowSeconds: ctx.clock.nowSeconds(),
      enroller: existing?.enroller ?? false,
    });
    const bytes = await authority.issueCredential(subject.identifier, ctx.clock.nowSeconds(), ttl);
    const chain = chainFromCredential(bytes, subject);
    const decoded = decodeCredential(bytes);
    // issueCredential ends a credential no later than the issuer's key attestation.
    const requested = ttl.ttlSeconds ?? authority.policy.defaultCredentialTtlSeconds;
    if (decoded.expiresAt - decoded.createdAt < requested)
      ctx.out.note(
        `note: the credential expires ${new Date(decoded.expiresAt * 1000).toISOString()}, sooner than asked: the authority's credential key attestation ends then`,
      );
    writeOrPrint(
      ctx,
      opts.out,
      chain,
      {
        subject: subject.identifier,
        issuer: authorityId,
        expiresAt: decoded.expiresAt,
        revocationId: credentialRevocationId(decoded),
      },
      `issued to ${subject.identifier}, expires ${new Date(decoded.expiresAt * 1000).toISOString()}`,
    );
  } finally {
    home.close();
  }
}

/** `credential show`: decode a credential or chain without verifying it. */
export async function runCredentialShow(ctx: CliContext, file: string): Promise<void> {
  const home = await ctx.openHome();
  try {
    const { decoded } = await loadChain(home, file);
    const root = decodeCredential(decoded.root);
    const revocationId = credentialRevocationId(root);
    const attributes = Object.fromEntries(
      [...root.attributes].map(([k, v]) => [k, new TextDecoder().decode(v)]),
    );
    ctx.out.result(
      {
        subject: root.subject,
        attributes,
        createdAt: root.createdAt,
        expiresAt: root.expiresAt,
        links: decoded.links.length,
        revocationId,
      },
      () =>
        formatFields([
          ['subject', root.subject],
          ['created', new Date(root.createdAt * 1000).toISOString()],
          ['expires', new Date(root.expiresAt * 1000).toISOString()],
          ['revocation id', revocationId],
          ['links', decoded.links.length],
          ...Object.entries(attributes).map(([k, v]): [string, string] => [`  ${k}`, v]),
        ]),
    );
  } finally {
    home.close();
  }
}
