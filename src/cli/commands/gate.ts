import type { Command } from 'commander';
import { parseJsonNoDuplicateKeys } from '../../encoding/index.js';
import { isMandateError, MandateError } from '../../core/index.js';
import { ChainVerifier, type VerifiedChain } from '../../credentials/index.js';
import { isIdentifier, parseIdentifier, type Identifier } from '../../identity/index.js';
import {
  Gate,
  ToolCatalog,
  enforceCall,
  parseToolArguments,
  mandateCedarSchema,
  type GateDecision,
} from '../../gates/index.js';
import { StoreBundleSource } from '../../node/index.js';
import type { CliContext } from '../context.js';
import type { Home } from '../home.js';
import { EXIT_CODES, formatFields } from '../output.js';
import { readChain, verification } from '../chains.js';
import { readTextArgument } from '../input.js';

/**
 * `gate call` exits with this code when the call waits for a human approval: not 0 (it must not
 * run yet), not 5 (it is not refused). Documented in docs/errors.md.
 */
export const APPROVAL_REQUIRED_EXIT_CODE = 12;

/** How long a one-shot command accepts the home's latest bundle without a newer read. */
const CLI_BUNDLE_STALENESS_SECONDS = 60;

interface GateCommonOptions {
  chain: string;
  presenter: string;
  catalog?: string;
}

export function registerGateCommands(program: Command, context: () => CliContext): void {
  const gate = program
    .command('gate')
    .description('the gates: which tools a chain may see (gate 1), may this call run (gate 2)');
  gate
    .command('tools')
    .requiredOption('--chain <file>', 'the delegation chain presented')
    .requiredOption('--presenter <identity>', 'who presents it: the chain must end with it')
    .option(
      '--catalog <file>',
      "optional: the tool catalog you expect (JSON [{name, server, description, inputSchema}]); it must be the bundle's",
    )
    .description(
      "gate 1: the bundle catalog's tools this chain may see under this home's policy bundle",
    )
    .action((opts: GateCommonOptions) => runGateTools(context(), opts));
  gate
    .command('schema')
    .option('--catalog <file>', 'the tool catalog whose arguments `context.args` declares')
    .description(
      'print the Mandate Cedar schema (for a catalog: with its tools’ arguments), to publish policies with',
    )
    .action((opts: { catalog?: string }) => {
      runGateSchema(context(), opts);
    });
  gate
    .command('call')
    .requiredOption('--chain <file>', 'the delegation chain presented')
    .requiredOption('--presenter <identity>', 'who presents it: the chain must end with it')
    .option('--catalog <file>', "optional: the tool catalog you expect; it must be the bundle's")
    .requiredOption('--tool <name>', 'the tool called')
    .option('--server <name>', 'its server (needed when several servers offer the tool)')
    .requiredOption('--args <json>', 'the arguments: a JSON object')
    .description(
      'gate 2: may this call run? exit 0 allow, 5 deny, 12 waits for a human approval (mandate approvals)',
    )
    .action((opts: GateCommonOptions & GateCallOptions) => runGateCall(context(), opts));
}

interface GateCallOptions {
  tool: string;
  server?: string;
  args: string;
}

async function resolveIdentifier(home: Home, ref: string): Promise<Identifier> {
  if (isIdentifier(ref)) return ref;
  if (/^[0-9a-f]{64}$/.test(ref)) return parseIdentifier(`I${ref}`);
  return (await home.identities.get(ref)).identity.identifier;
}

function readCatalog(file: string): ToolCatalog {
  const text = readTextArgument(file, 'catalog');
  // No key twice in one object: `"type":"integer","type":"number"` has no one meaning.
  const value = parseJsonNoDuplicateKeys(text, 'ERR_GATE_CATALOG_INVALID', `catalog \`${file}\``);
  return ToolCatalog.fromJson(value);
}

/** `--args`: bounded, JSON, no key twice in one object (parseToolArguments). */
function parseArgs(text: string): unknown {
  return parseToolArguments(text);
}

/** The gate's view of one invocation: the verified chain, the deny-set and the home's bundle. */
async function withGate<T>(
  ctx: CliContext,
  opts: GateCommonOptions,
  work: (parts: {
    home: Home;
    chain: VerifiedChain | MandateError;
    gate: Gate;
    bundles: StoreBundleSource;
    denySet: Awaited<ReturnType<Home['denySet']>>;
    now: number;
  }) => Promise<T>,
): Promise<T> {
  const catalog = opts.catalog === undefined ? undefined : readCatalog(opts.catalog);
  const home = await ctx.openHome();
  try {
    const now = ctx.clock.nowSeconds();
    const bytes = await readChain(home, opts.chain);
    const presenter = await resolveIdentifier(home, opts.presenter);
    // Only the home-wide trust anchors: an authority trusted for one identity (a scoped anchor,
    // from `ticket redeem`) vouches for that identity's own channels, never at this home's gates.
    const checks = await verification(home, now, bytes);
    // A chain that does not verify (expired, revoked, another presenter) is the chain lock's
    // refusal: `gate call` answers it as a decision, `gate tools` with an empty list.
    let chain: VerifiedChain | MandateError;
    try {
      chain = new ChainVerifier(checks).verify(bytes, { nowSeconds: now, presenter });
    } catch (error) {
      if (!isMandateError(error)) throw error;
      chain = error;
    }
    const bundles = await StoreBundleSource.start({
      repository: home.store.policyBundles,
      authorities: () => home.trustedAuthorities(),
      maxStalenessSeconds: CLI_BUNDLE_STALENESS_SECONDS,
      clock: ctx.clock,
    });
    try {
      const gate = new Gate({
        ...(catalog === undefined ? {} : { catalog }),
        bundles,
        denySet: checks.denySet,
      });
      return await work({ home, chain, gate, bundles, denySet: checks.denySet, now });
    } finally {
      await bundles.stop();
    }
  } finally {
    home.close();
  }
}

/** `gate schema`: the schema text (no home needed). */
export function runGateSchema(ctx: CliContext, opts: { catalog?: string }): void {
  const tools =
    opts.catalog === undefined ? [] : readCatalog(opts.catalog).tools.map((t) => t.descriptor);
  const schema = mandateCedarSchema({ tools });
  ctx.out.result({ schema }, () => schema.trimEnd());
}

/** `gate tools`: gate 1 over a catalog. */
export async function runGateTools(ctx: CliContext, opts: GateCommonOptions): Promise<void> {
  await withGate(ctx, opts, ({ chain, gate, bundles, now }) => {
    if (chain instanceof MandateError) throw chain;
    const tools = gate.listTools(chain, now);
    const bundle = safeCurrent(bundles);
    if (bundle === undefined)
      ctx.out.note('note: no policy bundle is in force on this home: no tool is shown');
    else if (bundle.catalog === undefined)
      ctx.out.note(
        'note: the bundle in force binds no tool catalog (publish it with `--catalog`): no tool is shown',
      );
    else if (gate.catalog !== undefined && gate.catalog.digest !== bundle.catalog.digest)
      ctx.out.note("note: `--catalog` is not the bundle's catalog: no tool is shown");
    ctx.out.result({ agent: chain.actor, bundle: bundle?.hash ?? null, tools }, () =>
      tools.length === 0
        ? `no tools for ${chain.actor}`
        : tools
            .map(
              (t) =>
                `${t.server}/${t.name}${t.description === undefined ? '' : `  ${t.description}`}`,
            )
            .join('\n'),
    );
    return Promise.resolve();
  });
}

function safeCurrent(bundles: StoreBundleSource) {
  try {
    return bundles.current();
  } catch {
    return undefined;
  }
}

/** `gate call`: gate 2 for one call, with approvals and budgets on this home's store. */
export async function runGateCall(
  ctx: CliContext,
  opts: GateCommonOptions & GateCallOptions,
): Promise<void> {
  const args = parseArgs(opts.args);
  await withGate(ctx, opts, async ({ home, chain, gate, bundles, denySet, now }) => {
    const decision: GateDecision =
      chain instanceof MandateError
        ? {
            decision: 'deny',
            lock: 'chain',
            code: chain.code,
            reasons: [chain.message],
            policies: [],
            bundle: null,
          }
        : await enforceCall(
            {
              gate,
              bundles,
              approvals: home.store.approvals,
              budgets: home.store.budgets,
              denySet,
              authorities: await home.trustedAuthorities(),
            },
            chain,
            {
              tool: opts.tool,
              args,
              ...(opts.server === undefined ? {} : { server: opts.server }),
            },
            now,
          );
    ctx.out.result(decisionJson(decision), () => humanDecision(decision, opts.tool));
    if (decision.decision === 'deny') ctx.out.exitCode = EXIT_CODES.forbidden;
    if (decision.decision === 'approval_required') ctx.out.exitCode = APPROVAL_REQUIRED_EXIT_CODE;
  });
}

function decisionJson(d: GateDecision) {
  return {
    decision: d.decision,
    lock: d.lock,
    reasons: d.reasons,
    policies: d.policies,
    bundle: d.bundle,
    ...(d.code === undefined ? {} : { code: d.code }),
    ...(d.approval?.id === undefined ? {} : { approval: d.approval.id }),
  };
}

function humanDecision(d: GateDecision, tool: string): string {
  return [
    `${d.decision.toUpperCase()}: ${tool}`,
    formatFields([
      ['lock', d.lock ?? '-'],
      ['policies', d.policies.join(', ') || '-'],
      ['bundle', d.bundle ?? '-'],
      ...(d.approval?.id === undefined
        ? []
        : ([['approval', d.approval.id]] as [string, string][])),
    ]),
    ...d.reasons.map((r) => `  ${r}`),
    ...(d.decision === 'approval_required' && d.approval?.id !== undefined
      ? [`a human answers with: mandate approvals approve ${d.approval.id} --as NAME --reason TEXT`]
      : []),
  ].join('\n');
}
