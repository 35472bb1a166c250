import type { Command } from 'commander';
import { forbidden, invalid } from '../../core/internal.js';
import { isMandateError, MandateError } from '../../core/index.js';
import { ChainVerifier, type VerifiedChain } from '../../credentials/index.js';
import { isIdentifier, parseIdentifier, type Identifier } from '../../identity/index.js';
import {
  Gate,
  parseToolArguments,
  mandateCedarSchema,
  type GateDecision,
} from '../../gates/index.js';
import { StoreBundleSource } from '../../node/index.js';
import { assertNoEnforcementLock, openHomeEnforcementPoint } from '../../node/internal.js';
import {
  AuditLog,
  delegationPath,
  EnforcerSigner,
  InvocationSigner,
  fromBase64Url,
  parseAuditRecord,
  type InvocationRecord,
  chainHashOf,
  INVOCATION_RECORD_TYPE,
  isInvocationRecord,
} from '../../audit/index.js';
import { homeAuditOrigin } from './audit.js';
import { DEFAULT_AUTHORITY, checkOutputFile } from '../chains.js';
import { readBytesArgument } from '../input.js';
import { writeFileSync } from 'node:fs';
import type { CliContext } from '../context.js';
import { credentialIssuerOf, type Home } from '../home.js';
import { EXIT_CODES, formatFields } from '../output.js';
import { readCatalog, readChain, verification } from '../chains.js';

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
    .option(
      '--chain <file>',
      'the delegation chain presented (with --invocation: the chain it names by hash)',
    )
    .option(
      '--presenter <identity>',
      'who presents it: the chain must end with it; a local identity the call is signed as and logged under',
    )
    .option('--catalog <file>', "optional: the tool catalog you expect; it must be the bundle's")
    .option('--tool <name>', 'the tool called (with --invocation: the one it names)')
    .option('--server <name>', 'its server (needed when several servers offer the tool)')
    .requiredOption('--args <json>', 'the arguments: a JSON object')
    .option(
      '--invocation <file>',
      'a signed invocation (mandate gate sign): verified, checked for replay and recorded with the decision in the audit log',
    )
    .option(
      '--as <name>',
      'the identity that countersigns the decision (not the agent nor anyone in its chain)',
      DEFAULT_AUTHORITY,
    )
    .description(
      'gate 2: may this call run? exit 0 allow, 5 deny, 12 waits for a human approval (mandate approvals)',
    )
    .action((opts: Partial<GateCommonOptions> & GateCallOptions) => runGateCall(context(), opts));
  gate
    .command('sign')
    .requiredOption('--as <name>', 'the agent: a local identity, the actor of the chain')
    .requiredOption('--chain <file>', 'its delegation chain')
    .requiredOption('--tool <name>', 'the tool it calls')
    .option('--server <name>', "the tool's server")
    .requiredOption(
      '--args <json>',
      'the arguments: a JSON object (only their digest is signed in)',
    )
    .option(
      '--previous <hash>',
      "the agent's last invocation record hash (default: this home's audit trail head for it)",
    )
    .requiredOption('--out <file>', 'where the signed invocation record goes')
    .description(
      'sign an invocation as an agent (docs/spec/audit.md, "Records"), for `gate call --invocation`',
    )
    .action((opts: GateSignOptions) => runGateSign(context(), opts));
}

interface GateSignOptions {
  as: string;
  chain: string;
  tool: string;
  server?: string;
  args: string;
  previous?: string;
  out: string;
}

/** `gate sign`: an agent signs one invocation with its credential key. */
export async function runGateSign(ctx: CliContext, opts: GateSignOptions): Promise<void> {
  const args = parseArgs(opts.args);
  checkOutputFile(opts.out);
  const home = await ctx.openHome();
  try {
    const issuer = await credentialIssuerOf(home, opts.as);
    const chain = await readChain(home, opts.chain);
    const actor = delegationPath(chain)?.at(-1);
    if (actor !== issuer.identity.identifier)
      throw forbidden(
        'ERR_CHAIN_PRESENTER_MISMATCH',
        `\`${opts.as}\` is not the chain's last subject (its actor): it cannot sign a call under it`,
      );
    const previous =
      opts.previous ?? (await home.store.auditTrail.head(issuer.identity.identifier))?.hash ?? null;
    const signer = new InvocationSigner(home.vault, issuer, previous);
    const signed = await signer.sign({
      chain,
      tool: opts.tool,
      ...(opts.server === undefined ? {} : { server: opts.server }),
      args,
      nowSeconds: ctx.clock.nowSeconds(),
    });
    writeFileSync(opts.out, signed.bytes, { mode: 0o644 });
    ctx.out.result(
      { invocation: signed.hash, agent: signed.record.agent, previous, out: opts.out },
      () => `signed invocation ${signed.hash} of ${signed.record.agent} → ${opts.out}`,
    );
  } finally {
    home.close();
  }
}

interface GateCallOptions {
  tool?: string;
  server?: string;
  args: string;
  invocation?: string;
  as?: string;
}

async function resolveIdentifier(home: Home, ref: string): Promise<Identifier> {
  if (isIdentifier(ref)) return ref;
  if (/^[0-9a-f]{64}$/.test(ref)) return parseIdentifier(`I${ref}`);
  return (await home.identities.get(ref)).identity.identifier;
}

/**
 * `--args`, for `gate sign` and `gate call` alike: bounded, JSON, no key twice in one object
 * (parseToolArguments), and no integer beyond ±(2^53 − 1) (refuseUnsafeIntegers).
 */
function parseArgs(text: string): unknown {
  const args = parseToolArguments(text);
  refuseUnsafeIntegers(args);
  return args;
}

/**
 * Integers beyond ±(2^53 − 1) lose precision in JSON.parse silently: the digest signed would be
 * of other arguments than written. Refused (`ERR_GATE_ARGUMENTS_INVALID`).
 */
function refuseUnsafeIntegers(value: unknown, depth = 0): void {
  if (depth > 64) return; // the gate bounds depth itself
  if (typeof value === 'number') {
    if (Number.isInteger(value) && !Number.isSafeInteger(value))
      throw invalid(
        'ERR_GATE_ARGUMENTS_INVALID',
        '`--args` holds an integer beyond ±(2^53 − 1): its value would change; pass it as a string',
      );
    return;
  }
  if (typeof value !== 'object' || value === null) return;
  for (const v of Array.isArray(value) ? value : Object.values(value))
    refuseUnsafeIntegers(v, depth + 1);
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
  opts: Partial<GateCommonOptions> & GateCallOptions,
): Promise<void> {
  const args = parseArgs(opts.args);
  if (opts.invocation !== undefined) {
    if (opts.presenter !== undefined)
      throw invalid(
        'ERR_ARGUMENT_INVALID',
        '`--invocation` names its agent: give no `--presenter`',
      );
    await runSignedGateCall(
      ctx,
      opts,
      readBytesArgument(opts.invocation, 'invocation'),
      args,
      opts.chain,
    );
    return;
  }
  if (opts.chain === undefined || opts.presenter === undefined || opts.tool === undefined)
    throw invalid(
      'ERR_ARGUMENT_INVALID',
      '`gate call` needs `--chain`, `--presenter` and `--tool`, or a signed `--invocation`',
    );
  const common = {
    chain: opts.chain,
    presenter: opts.presenter,
    ...(opts.catalog === undefined ? {} : { catalog: opts.catalog }),
  };
  const tool = opts.tool;
  const presenter = opts.presenter;
  // A chain that does not verify is refused here (a deny, nothing consumed, nothing logged);
  // any other call goes through the enforcement point as an invocation signed by the presenter
  // (a local identity whose key the vault holds), so it is logged with its decision.
  const signed = await withGate(ctx, common, ({ chain }) => {
    if (chain instanceof MandateError) {
      const decision: GateDecision = {
        decision: 'deny',
        lock: 'chain',
        code: chain.code,
        reasons: [chain.message],
        policies: [],
        bundle: null,
      };
      ctx.out.result(decisionJson(decision), () => humanDecision(decision, tool));
      ctx.out.exitCode = EXIT_CODES.forbidden;
      return Promise.resolve(undefined);
    }
    // Signed later, inside the enforcement point's transaction, on the agent's head as it then
    // stands: concurrent calls of one agent each chain on the previous one instead of racing.
    const plain: PlainInvocation = {
      chainBytes: chain.bytes,
      agent: chain.actor,
      tool,
      sign: async (h, previous, nowSeconds) => {
        const issuer = await credentialIssuerOf(h, presenter);
        const invocation = await new InvocationSigner(h.vault, issuer, previous).sign({
          chain: chain.bytes,
          tool,
          ...(opts.server === undefined ? {} : { server: opts.server }),
          args,
          nowSeconds,
        });
        return invocation.bytes;
      },
    };
    return Promise.resolve(plain);
  });
  if (signed !== undefined) await runSignedGateCall(ctx, opts, signed, args);
}

/** A plain `gate call`: the invocation the CLI signs as the presenter once it holds the lock. */
interface PlainInvocation {
  readonly chainBytes: Uint8Array;
  readonly agent: Identifier;
  readonly tool: string;
  sign(home: Home, previous: string | null, nowSeconds: number): Promise<Uint8Array>;
}

/**
 * `gate call --invocation FILE`: the enforcement point on this home — the signed invocation
 * verified (signature, chain, window, nonce, the agent's chain head), gate 2, and the invocation
 * with the decision countersigned by `--as` appended to the home's audit log before the answer.
 * A refused invocation is an error (nothing logged), not a decision.
 */
async function runSignedGateCall(
  ctx: CliContext,
  opts: GateCallOptions & { catalog?: string },
  invocation: Uint8Array | PlainInvocation,
  args: unknown,
  chainFile?: string,
): Promise<void> {
  let record: Pick<InvocationRecord, 'agent' | 'tool'>;
  let parsed: InvocationRecord | undefined;
  if (invocation instanceof Uint8Array) {
    const read = parseAuditRecord(invocation);
    if (!isInvocationRecord(read))
      throw invalid('ERR_AUDIT_RECORD_TYPE', 'the invocation is not an invocation record');
    if (
      (opts.tool !== undefined && opts.tool !== read.tool) ||
      (opts.server !== undefined && opts.server !== read.server)
    )
      throw invalid('ERR_AUDIT_RECORD_MISMATCH', 'the invocation names another tool or server');
    if (read.type === INVOCATION_RECORD_TYPE && chainFile !== undefined)
      throw invalid('ERR_ARGUMENT_INVALID', 'the invocation carries its chain: give no `--chain`');
    if (read.type !== INVOCATION_RECORD_TYPE && chainFile === undefined)
      throw invalid(
        'ERR_ARGUMENT_INVALID',
        'the invocation names its chain by hash: give that chain with `--chain`',
      );
    record = read;
    parsed = read;
  } else record = { agent: invocation.agent, tool: invocation.tool };
  const catalog = opts.catalog === undefined ? undefined : readCatalog(opts.catalog);
  const home = await ctx.openHome();
  try {
    const now = ctx.clock.nowSeconds();
    let chainBytes: Uint8Array;
    if (parsed === undefined) chainBytes = (invocation as PlainInvocation).chainBytes;
    else if (parsed.type === INVOCATION_RECORD_TYPE)
      chainBytes = fromBase64Url(parsed.chain, 'chain');
    else {
      chainBytes = await readChain(home, chainFile!);
      if (chainHashOf(chainBytes) !== parsed.chainHash)
        throw invalid(
          'ERR_AUDIT_CHAIN_MISMATCH',
          '`--chain` is not the chain the invocation names by hash',
        );
    }
    // Home-wide trust anchors only, as for every gate decision (a scoped anchor vouches for one
    // identity's own channels, never at this home's gates).
    const checks = await verification(home, now, chainBytes);
    const bundles = await StoreBundleSource.start({
      repository: home.store.policyBundles,
      authorities: () => home.trustedAuthorities(),
      maxStalenessSeconds: CLI_BUNDLE_STALENESS_SECONDS,
      clock: ctx.clock,
    });
    const authority = await home.identities.get(DEFAULT_AUTHORITY);
    try {
      const gate = new Gate({
        ...(catalog === undefined ? {} : { catalog }),
        bundles,
        denySet: checks.denySet,
      });
      const chains = new ChainVerifier(checks);
      const enforcer = await credentialIssuerOf(home, opts.as ?? DEFAULT_AUTHORITY);
      // The countersigner must not be a party to the call: not the agent, nor anyone the
      // chain delegates through below its authority (they would decide their own calls).
      const chain = chains.verify(chainBytes, { nowSeconds: now, presenter: record.agent });
      const parties = [chain.root.subject, ...chain.links.map((l) => l.subject)];
      if (parties.includes(enforcer.identity.identifier))
        throw invalid(
          'ERR_AUDIT_ENFORCER_INVALID',
          `\`${opts.as ?? DEFAULT_AUTHORITY}\` is in the invocation's chain: it cannot countersign its decision`,
        );
      // One SQLite transaction from reading the log's end to the commit: the nonce claimed, the
      // approval consumed, the budget spent, the invocation, its countersigned decision (and
      // trace) appended, and the agent's head stored — all committed together, or, on any error
      // (or a crash), none of it. The write lock it holds serialises `gate call` processes on
      // this home, so each reads the agent heads and the log's end as the last one left them
      // (docs/spec/audit.md, "Side effects and the log").
      // Not beside a running gateway on this home (its agent heads are in its memory).
      assertNoEnforcementLock(home.dir);
      const result = await home.store.database.transaction(async () => {
        const log = await AuditLog.open({
          repository: home.store.auditLog,
          origin: homeAuditOrigin(authority.identity.identifier),
        });
        try {
          const point = await openHomeEnforcementPoint(home, {
            gate,
            bundles,
            denySet: checks.denySet,
            chains,
            authorities: checks.authorities,
            log,
            signer: new EnforcerSigner(home.vault, enforcer),
          });
          const bytes =
            invocation instanceof Uint8Array
              ? invocation
              : await invocation.sign(home, await point.head(record.agent), now);
          const submitted = await point.submit(bytes, args, now, chainBytes);
          await point.flush();
          return submitted;
        } finally {
          await log.close();
        }
      });
      const decision = result.decision;
      ctx.out.result(
        {
          ...decisionJson(decision),
          invocation: result.invocation.hash,
          record: result.decisionRecord.hash,
          logIndex: result.decisionIndex,
        },
        () =>
          `${humanDecision(decision, record.tool)}\nrecorded: invocation ${result.invocation.hash} at ${result.invocationIndex}, decision at ${result.decisionIndex}`,
      );
      if (decision.decision === 'deny') ctx.out.exitCode = EXIT_CODES.forbidden;
      if (decision.decision === 'approval_required') ctx.out.exitCode = APPROVAL_REQUIRED_EXIT_CODE;
    } finally {
      await bundles.stop();
    }
  } finally {
    home.close();
  }
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
