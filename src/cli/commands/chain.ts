import type { Command } from 'commander';
import { invalid } from '../../core/internal.js';
import { authorize, ChainVerifier, type VerifiedChain } from '../../credentials/index.js';
import { isIdentifier, parseIdentifier, type Identifier } from '../../identity/index.js';
import type { Home } from '../home.js';
import type { CliContext } from '../context.js';
import { EXIT_CODES, formatFields } from '../output.js';
import { collect } from '../parse.js';
import { chainSummary, loadChain, verification } from '../chains.js';

interface ChainCheckOptions {
  action: string;
  arg?: string[];
  presenter?: string;
}

export function registerChainCommands(program: Command, context: () => CliContext): void {
  const chainCommand = program
    .command('chain')
    .description('verify delegation chains and check requests against them');
  chainCommand
    .command('verify')
    .argument('<file>')
    .option('--presenter <identity>', 'who presents it')
    .description('verify a chain offline')
    .action((file: string, opts: { presenter?: string }) => runChainVerify(context(), file, opts));
  chainCommand
    .command('check')
    .argument('<file>')
    .requiredOption('--action <tool>', 'the action (tool) requested')
    .option('--arg <k=v>', 'an argument of the request (repeatable)', collect)
    .option(
      '--presenter <identity>',
      'who presents it: the chain must end with this identity (without it, see below)',
    )
    .description('may this chain do ACTION with these arguments? prints the decision and why')
    .addHelpText(
      'after',
      '\nWithout --presenter the chain is checked as a bearer token: anyone holding the file passes,\nsince nothing proves that the caller is the chain’s last subject. A gate must check who\npresents it (over a secure channel, the channel’s verified peer).',
    )
    .action((file: string, opts: ChainCheckOptions) => runChainCheck(context(), file, opts));
}

/** `chain verify` and `credential verify`: verify a chain against what this home knows. */
export async function runChainVerify(
  ctx: CliContext,
  file: string,
  opts: { presenter?: string },
): Promise<void> {
  const home = await ctx.openHome();
  try {
    const { bytes, decoded } = await loadChain(home, file);
    const presenter =
      opts.presenter === undefined ? undefined : await resolveIdentifier(home, opts.presenter);
    const chain = new ChainVerifier(
      await verification(home, ctx.clock.nowSeconds(), decoded, presenter),
    ).verify(bytes, {
      nowSeconds: ctx.clock.nowSeconds(),
      ...(presenter === undefined ? {} : { presenter }),
    });
    ctx.out.result({ valid: true, ...chainSummary(chain) }, () => `valid\n${humanChain(chain)}`);
  } finally {
    home.close();
  }
}

/** `chain check`: may this chain do the action with these arguments? */
export async function runChainCheck(
  ctx: CliContext,
  file: string,
  opts: ChainCheckOptions,
): Promise<void> {
  const args = new Map<string, string>();
  for (const pair of opts.arg ?? []) {
    const at = pair.indexOf('=');
    if (at <= 0) throw invalid('ERR_ARGUMENT_INVALID', `\`--arg\` must be k=v, not \`${pair}\``);
    const name = pair.slice(0, at);
    // One value per argument: with two, whichever a tool reads could be the one not checked.
    if (args.has(name))
      throw invalid('ERR_ARGUMENT_INVALID', `\`--arg ${name}\` is given more than once`);
    args.set(name, pair.slice(at + 1));
  }
  const home = await ctx.openHome();
  try {
    const now = ctx.clock.nowSeconds();
    const denySet = await home.denySet(now);
    const { bytes, decoded } = await loadChain(home, file);
    const presenter =
      opts.presenter === undefined ? undefined : await resolveIdentifier(home, opts.presenter);
    const chain = new ChainVerifier({
      ...(await verification(home, now, decoded, presenter)),
      denySet,
    }).verify(bytes, {
      nowSeconds: now,
      ...(presenter === undefined ? {} : { presenter }),
    });
    const decision = authorize(chain, { action: opts.action, args, nowSeconds: now }, { denySet });
    if (opts.presenter === undefined)
      ctx.out.note(
        `warning: no --presenter: checked as a bearer token, anyone holding this chain would pass as ${chain.actor}`,
      );
    ctx.out.result(decision, () =>
      [
        `${decision.decision.toUpperCase()}: ${decision.actor} ${opts.action}`,
        ...decision.chain.map(
          (s, i) =>
            `  ${i === 0 ? 'root' : `link ${i}`}: ${s.issuer} → ${s.subject}${i > 0 && s.purpose !== '' ? ` "${s.purpose}"` : ''}  ${s.constraints.join('  ')}`,
        ),
        ...(decision.decision === 'deny'
          ? [
              `denied at ${decision.failed.link === 0 ? 'the root credential' : `link ${decision.failed.link}`}${decision.failed.constraint === null ? '' : `, constraint \`${decision.failed.constraint}\``}: ${decision.failed.reason}`,
            ]
          : []),
      ].join('\n'),
    );
    // A denial is an answer, not an error; scripts read the exit code (that of `forbidden`).
    if (decision.decision === 'deny') ctx.out.exitCode = EXIT_CODES.forbidden;
  } finally {
    home.close();
  }
}

function humanChain(chain: VerifiedChain): string {
  const steps = chain.steps
    .map(
      (s, i) =>
        `  ${i === 0 ? 'root' : `link ${i}`}: ${s.issuer} → ${s.subject}${s.purpose === '' || i === 0 ? '' : ` "${s.purpose}"`}${s.constraints.length > 0 ? `\n    ${s.constraints.join('  ')}` : ''}`,
    )
    .join('\n');
  return [
    formatFields([
      ['actor', chain.actor],
      ['authority', chain.root.issuer],
      ['expires', new Date(chain.expiresAt * 1000).toISOString()],
      ['remaining depth', chain.remainingDepth],
    ]),
    steps,
  ].join('\n');
}

async function resolveIdentifier(home: Home, ref: string): Promise<Identifier> {
  if (isIdentifier(ref)) return ref;
  if (/^[0-9a-f]{64}$/.test(ref)) return parseIdentifier(`I${ref}`);
  return (await home.identities.get(ref)).identity.identifier;
}
