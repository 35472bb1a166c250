import type { Command } from 'commander';
import { invalid } from '../../core/internal.js';
import { delegate, verifyChain } from '../../credentials/index.js';
import { Purpose } from '../../identity/index.js';
import type { CliContext } from '../context.js';
import { collect, parseDuration } from '../parse.js';
import {
  chainSummary,
  parseConstraints,
  loadChain,
  verification,
  writeOrPrint,
} from '../chains.js';

interface DelegateOptions {
  chain: string;
  from: string;
  to: string;
  constraint?: string[];
  purpose?: string;
  ttl?: string;
  depth?: string;
  out?: string;
}

export function registerDelegateCommands(program: Command, context: () => CliContext): void {
  program
    .command('delegate')
    .requiredOption('--chain <file>', 'the chain to extend (a credential is a chain of length 0)')
    .requiredOption('--from <name>', 'the local identity delegating: the chain’s last subject')
    .requiredOption('--to <identity>', 'the identity delegated to (name or identifier known here)')
    .option(
      '--constraint <constraint>',
      'narrowing, e.g. tools=read_orders or issue_refund#amount<=100 (repeatable)',
      collect,
    )
    .option('--purpose <text>', 'why, e.g. "resolve complaint #4471"')
    .option('--ttl <duration>', 'lifetime of the link (default: the parent’s)')
    .option('--depth <n>', 'remaining depth after this link (default: one less than allowed)')
    .option('--out <file>', 'write the longer chain here')
    .description('delegate a narrower part of a chain to another identity')
    .action((opts: DelegateOptions) => runDelegate(context(), opts));
}

/** `delegate`: extend a chain with a narrower link to another identity. */
export async function runDelegate(ctx: CliContext, opts: DelegateOptions): Promise<void> {
  const constraints = parseConstraints(opts.constraint);
  const depth = opts.depth === undefined ? undefined : parseDepth(opts.depth);
  const home = await ctx.openHome();
  try {
    const now = ctx.clock.nowSeconds();
    const parent = await loadChain(home, opts.chain);
    const from = await home.identities.get(opts.from);
    // The delegator holds the chain: an authority trusted for it alone counts here. What
    // this home knows is read once and serves both verifications below.
    const known = await verification(home, now, parent.decoded, from.identity.identifier);
    const chain = verifyChain(parent.bytes, { nowSeconds: now, ...known });
    const subject = (await home.identities.get(opts.to)).identity;
    const { verified, keyId } = await home.identities.purposeKey(from, Purpose.credentials);
    const longer = await delegate(
      home.vault,
      {
        identity: from.identity,
        credentialKeyId: keyId,
        credentialKeyAttestation: verified.attestation,
      },
      chain,
      {
        nowSeconds: now,
        constraints,
        subject,
        ...(opts.purpose === undefined ? {} : { purpose: opts.purpose }),
        ...(opts.ttl === undefined ? {} : { ttlSeconds: parseDuration(opts.ttl, '--ttl') }),
        ...(depth === undefined ? {} : { depth }),
      },
    );
    // The longer chain is checked like any verifier would, deny-set included: delegating
    // to a revoked identity fails here instead of producing a chain that never verifies. The
    // histories verified above are handed on, so only the new link's signature and the
    // subject's history are verified again.
    const extended = verifyChain(longer, {
      nowSeconds: now,
      ...known,
      knownIdentities: new Map([
        ...known.knownIdentities,
        ...chain.identities,
        [subject.identifier, subject],
      ]),
    });
    writeOrPrint(
      ctx,
      opts.out,
      longer,
      chainSummary(extended),
      `delegated to ${subject.identifier} (link ${extended.links.length}, revocation id ${extended.links.at(-1)?.revocationId ?? ''})`,
    );
  } finally {
    home.close();
  }
}

/** `--depth`: 0 to 99, digits only (parseInt would read `1x` as 1 and `x` as NaN). */
function parseDepth(text: string): number {
  if (!/^(?:0|[1-9]\d?)$/.test(text))
    throw invalid(
      'ERR_ARGUMENT_INVALID',
      `\`--depth\` must be an integer from 0 to 99, not \`${text}\``,
    );
  return Number(text);
}
