import { mkdirSync, rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { invalid } from '../../core/internal.js';
import { isMandateError } from '../../core/index.js';
import { assertHomeNotServed, lockDemo, lockNodeHome, type HomeLock } from '../../node/internal.js';
import { toHex } from '../../encoding/index.js';
import { Purpose, verifyChangeHistory, type Identifier } from '../../identity/index.js';
import { openHome } from '../home.js';
import { formatFields } from '../output.js';
import { parsePositiveInteger } from '../parse.js';
import { withProgress } from '../progress.js';
import { secondsSince } from './demo-time.js';
import { runCredentialScenario } from './demo-credentials.js';
import { runChannelScenario } from './demo-channels.js';
import { runGateScenario } from './demo-gates.js';
import { runAuditScenario } from './demo-audit.js';
import { runBrokerScenario } from './demo-broker.js';
import { runGatewayScenario } from './demo-gateway.js';
import type { CliContext } from '../context.js';
import type { NodeSwarmSummary } from './demo-node.js';

export interface DemoOptions {
  agents: string;
  rotate: string;
}

/**
 * The built-in swarm scenario on the embedded default (SQLite + sealed software vault): provision
 * agent identities with both purpose keys, rotate some, verify everything from stored bytes, and
 * show that tampering and rollback are refused. Later layers add to it.
 */
export function registerDemoCommand(program: Command, context: () => CliContext): void {
  program
    .command('demo')
    .description('run the swarm scenario in <home>/demo (recreated on each run)')
    .option('--agents <n>', 'agent identities to provision', '5000')
    .option('--rotate <n>', 'how many of them rotate their primary key', '250')
    .action(async (opts: DemoOptions) => {
      await runDemo(context(), demoOptions(opts));
    });
}

/** The demo's size: agents to provision and how many of them rotate. */
export interface DemoScale {
  readonly agents: number;
  readonly rotations: number;
}

/** The demo's flags, checked. */
export function demoOptions(opts: DemoOptions): DemoScale {
  // Decimal digits only: `1e3` or `0x10` is a typo, not 1,000 or 16 agents.
  const agents = parsePositiveInteger(opts.agents, '--agents');
  const rotations = parsePositiveInteger(opts.rotate, '--rotate');
  if (agents < 2)
    throw invalid('ERR_ARGUMENT_INVALID', '`--agents` must be an integer of at least 2');
  if (rotations > agents)
    throw invalid('ERR_ARGUMENT_INVALID', '`--rotate` must be between 1 and `--agents`');
  return { agents, rotations };
}

/** What the in-process scenario returns (its steps are printed as they run). */
export type ScenarioSummary = Awaited<ReturnType<typeof scenarioIn>>;

/**
 * What {@link printDemoSummary} prints (with `--json`, as is): the scenario's summary, and with
 * `mandate up --demo` what the swarm did through the running node (`node`).
 */
export type DemoSummary = ScenarioSummary & { readonly node?: NodeSwarmSummary };

/**
 * Runs the swarm scenario in `<home>/demo` (recreated) and prints its steps and summary; returns
 * the summary, whose `home` is that folder: a home holding the run's identities, credentials and
 * audit log.
 */
export async function runDemo(ctx: CliContext, options: DemoScale): Promise<DemoSummary> {
  // One run at a time recreates <home>/demo: held for the whole run (`up --demo` holds it too).
  const lock = lockDemo(ctx.homeDir);
  try {
    const summary = await runDemoScenario(ctx, options);
    printDemoSummary(ctx, summary);
    return summary;
  } finally {
    lock.release();
  }
}

/**
 * Runs the scenario in `<home>/demo` (recreated), its steps printed as they run (on stderr), and
 * returns its summary unprinted: `mandate up --demo` adds the node's part before printing it.
 * The caller holds the home's demo lock (`lockDemo`) from before this call until it no longer
 * needs the folder as the scenario left it.
 */
export async function runDemoScenario(
  ctx: CliContext,
  { agents, rotations }: DemoScale,
  hold?: (lock: HomeLock) => void,
) {
  const dir = join(ctx.homeDir, 'demo');
  // The scenario starts from an empty folder: never the one a node (`up --demo`, or one started
  // on it with --home) is serving.
  assertHomeNotServed(dir);
  rmSync(dir, { recursive: true, force: true });
  // And no node may start on it while the scenario writes it: its node lock, from the folder's
  // making on — released at the end, or handed to `hold` (`up --demo` keeps it while it serves).
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const lock = lockNodeHome(dir);
  if (hold !== undefined) hold(lock);
  try {
    return await scenarioIn(ctx, dir, { agents, rotations });
  } finally {
    if (hold === undefined) lock.release();
  }
}

async function scenarioIn(ctx: CliContext, dir: string, { agents, rotations }: DemoScale) {
  const say = (text: string): void => {
    if (!ctx.out.json) ctx.out.note(text);
  };
  const showProgress = !ctx.out.json;
  say(`Mandate demo — embedded default (SQLite + sealed software vault) in ${dir}\n`);
  const home = await openHome(dir);
  try {
    // 1. Provisioning.
    say(
      `1. provisioning ${agents} agents on ${availableParallelism()} worker threads: primary key, change history, credential and secure-channel purpose keys`,
    );
    let t = process.hrtime.bigint();
    // Worker threads, one per core: each seals its keys under the vault's KEK, this thread
    // writes every batch in one transaction.
    const created = await withProgress('   agents', agents, showProgress, (update) =>
      home.provision({ count: agents, namePrefix: 'agent-', onProgress: update }),
    );
    const provisionSeconds = secondsSince(t);

    // 2. Rotation.
    const step = Math.floor(agents / rotations);
    const toRotate = await Promise.all(
      created
        .filter((_, i) => i % step === 0)
        .slice(0, rotations)
        .map((identifier) => home.identities.get(identifier)),
    );
    const before = new Map<Identifier, Uint8Array>(
      toRotate.map((a) => [a.identity.identifier, a.identity.changeHistory]),
    );
    say(
      `2. rotating the primary key of ${toRotate.length} agents (the old secret is destroyed, the identifier stays)`,
    );
    t = process.hrtime.bigint();
    await withProgress('   rotations', toRotate.length, showProgress, async (update) => {
      let done = 0;
      for (const agent of toRotate) {
        const rotated = await home.identities.rotate(agent.identity.identifier);
        if (rotated.identity.identifier !== agent.identity.identifier)
          throw new Error('rotation changed an identifier');
        update(++done);
      }
    });
    const rotateSeconds = secondsSince(t);

    // 3. Verification of everything, from the stored bytes.
    say(`3. verifying every stored change history and purpose-key attestation`);
    t = process.hrtime.bigint();
    let verified = 0;
    let rotatedSeen = 0;
    let attestations = 0;
    await withProgress('   verified', agents, showProgress, async (update) => {
      for (let offset = 0; offset < agents; offset += 1000) {
        for (const known of await home.identities.list({ limit: 1000, offset })) {
          if (known.identity.changes.length > 1) rotatedSeen++;
          for (const purpose of [Purpose.credentials, Purpose.secureChannel]) {
            await home.identities.purposeKey(known, purpose);
            attestations++;
          }
          update(++verified);
        }
      }
    });
    const verifySeconds = secondsSince(t);
    if (verified !== agents || rotatedSeen !== toRotate.length)
      throw new Error('verification count mismatch');

    // 4. Attacks that must fail.
    say('4. attacks that must be refused');
    const victim = toRotate[0]!;
    const current = (await home.identities.get(victim.identity.identifier)).identity.changeHistory;
    const tampered = current.slice();
    tampered[tampered.length - 5]! ^= 0x01;
    const tamperCode = errorCode(() => verifyChangeHistory(tampered));
    const rollbackCode = await errorCodeAsync(() =>
      home.identities.import(before.get(victim.identity.identifier)!),
    );
    const other = { identifier: created[1]! };
    const spliceCode = errorCode(() =>
      verifyChangeHistory(current, { expectedIdentifier: other.identifier }),
    );
    say(`   flipped bit in a signature        → ${tamperCode}`);
    say(`   rollback to the pre-rotation history → ${rollbackCode}`);
    say(`   history presented as another agent → ${spliceCode}`);

    const credentials = await runCredentialScenario(home, created, ctx.clock, say, showProgress);
    const channels = await runChannelScenario(
      home,
      home.authority('authority'),
      created,
      ctx.clock.nowSeconds(),
      say,
    );
    const gates = await runGateScenario(home, created, ctx.clock, say);
    const audit = await runAuditScenario(home, dir, gates.audit.refund, say);
    const broker = await runBrokerScenario(home, ctx.clock, say);
    const gateway = await runGatewayScenario(home, dir, ctx.clock, say);

    const summary = {
      home: dir,
      agents,
      provisioning: {
        seconds: provisionSeconds,
        perSecond: Math.round(agents / provisionSeconds),
      },
      rotations: {
        count: toRotate.length,
        seconds: rotateSeconds,
        perSecond: Math.round(toRotate.length / rotateSeconds),
      },
      verification: {
        histories: verified,
        attestations,
        seconds: verifySeconds,
        perSecond: Math.round(verified / verifySeconds),
      },
      attacks: {
        tamperedSignature: tamperCode,
        rollback: rollbackCode,
        wrongIdentifier: spliceCode,
      },
      credentials,
      channels,
      gates,
      audit,
      broker,
      gateway,
      // Both revocations made mid-run, each from its commit to the refusal of the revoked agent's
      // very next call (synchronous enforcement: that call is the one refused).
      revocationToEnforcement: {
        enforcementPointMs: gates.revocation.latencyMs,
        gatewayMs: gateway.revocation.latencyMs,
      },
      example: { identifier: victim.identity.identifier, changeHistory: toHex(current) },
    };
    return summary;
  } finally {
    home.close();
  }
}

function errorCode(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (isMandateError(error)) return error.code;
    throw error;
  }
  throw new Error('an attack was accepted');
}

async function errorCodeAsync(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn();
  } catch (error) {
    if (isMandateError(error)) return error.code;
    throw error;
  }
  throw new Error('an attack was accepted');
}

/** The demo's summary on stdout (with `--json`, the whole summary as JSON). */
export function printDemoSummary(ctx: CliContext, summary: DemoSummary): void {
  const { agents, credentials, channels, gates, audit, broker, gateway } = summary;
  const provisionSeconds = summary.provisioning.seconds;
  const rotateSeconds = summary.rotations.seconds;
  const verifySeconds = summary.verification.seconds;
  const verified = summary.verification.histories;
  const attestations = summary.verification.attestations;
  const rotated = summary.rotations.count;
  const dir = summary.home;
  ctx.out.result(summary, () =>
    [
      '',
      'summary',
      formatFields([
        [
          'agents provisioned',
          `${agents} in ${provisionSeconds.toFixed(2)} s (${summary.provisioning.perSecond}/s, durable in SQLite)`,
        ],
        [
          'keys rotated',
          `${rotated} in ${rotateSeconds.toFixed(2)} s (${summary.rotations.perSecond}/s)`,
        ],
        [
          'verified',
          `${verified} histories + ${attestations} attestations in ${verifySeconds.toFixed(2)} s (${summary.verification.perSecond} agents/s)`,
        ],
        ['attacks refused', `3 of 3`],
        [
          'agents enrolled',
          `${credentials.enrolled} with one-time tickets in ${credentials.enrollSeconds.toFixed(2)} s (${Math.round(credentials.enrolled / credentials.enrollSeconds)}/s); ${credentials.credentialsVerified} credentials verified in ${credentials.verifySeconds.toFixed(2)} s`,
        ],
        [
          'delegation',
          `human → support agent → ${credentials.subAgents} sub-agents: ${credentials.decisions.allowed} reads allowed, ${credentials.decisions.denied} refunds denied, injected call denied (${credentials.decisions.injectedCallDenied})`,
        ],
        [
          'revocation',
          `${credentials.revocation.subAgentsDeniedAfter}/${credentials.subAgents} sub-agents denied at once; human unaffected: ${credentials.revocation.humanStillAllowed ? 'yes' : 'no'}`,
        ],
        [
          'secure channels',
          `${channels.channels} through a relay (${channels.handshakesPerSecond} handshakes/s, identities and credentials verified), ${channels.echoed} echoed end to end, ${channels.bytesRelayed} bytes relayed, plaintext seen by the relay: ${channels.plaintextSeenByRelay ? 'YES' : 'no'}, tampered frame ${channels.tamperedFrameDropped ? 'detected' : 'NOT detected'}; after expiry ${channels.refreshedStillAnswered} refreshed in-band still answered, ${channels.expiredCutOff} expired cut off`,
        ],
        [
          'gates',
          `bundle v${gates.bundle.version} (${gates.bundle.policies} Cedar policies) over ${gates.toolsListed.length} visible tools; ${gates.calls.count} gate-2 calls in ${gates.calls.seconds.toFixed(2)} s (${gates.calls.perSecond}/s, p50 ${gates.calls.p50Micros} µs, p99 ${gates.calls.p99Micros} µs); 4 injected calls denied (chain ×3, policy ×1); approval: ${gates.approval.first} → approved by a human → ${gates.approval.afterApproval} once, replay ${gates.approval.replay}; budget ${gates.budget.spent}/${gates.budget.limit} across ${gates.budget.agents} siblings, next ${gates.budget.next.code ?? gates.budget.next.decision}; revoked mid-run: next call ${gates.revocation.nextCall.decision} (${gates.revocation.nextCall.lock ?? gates.revocation.nextCall.code ?? '-'})`,
        ],
        [
          'audit trail',
          `${gates.audit.calls} calls signed by their agents and recorded with countersigned decisions (sample of ${gates.audit.sample.count} at ${gates.audit.sample.perSecond}/s); ${audit.counts.records} records verified offline from the export in ${audit.verifySeconds.toFixed(2)} s; an edited line caught at line ${audit.tamper.reportedLine ?? '?'} (${audit.tamper.code ?? 'NOT DETECTED'})`,
        ],
        [
          'refund X',
          `issued by ${audit.answer.pathNames.at(-1) ?? '?'} on behalf of ${audit.answer.pathNames.slice(0, -1).join(' → ')} (${audit.answer.constraints.at(-1)?.constraints.find((c) => c.startsWith(`${audit.answer.tool}#`)) ?? 'no cap'} delegated), by policy ${audit.answer.policies.join(', ')}, approved by ${audit.answer.approval.approverName ?? audit.answer.approval.approver}: "${audit.answer.approval.reason}"`,
        ],
        [
          'secrets and leases',
          `${broker.injectedCalls} upstream calls with injected secrets, secret seen by agents: ${broker.secretSeenByAgents ? 'YES' : 'no'}; compromised agent revoked: ${broker.revocation.leasesRevoked} leases ended at once, jti on /revoked: ${broker.revocation.jtiListed ? 'yes' : 'NO'}, PostgreSQL: ${broker.revocation.postgres}; ${broker.leaseRecords} lease records, log verified (${broker.verifiedRecords} records)`,
        ],
        [
          'MCP gateway',
          `${gateway.agents} agents through a relay to ${gateway.upstreams.length} real MCP servers (${gateway.upstreams.join(', ')}): ${gateway.calls} calls (${Object.entries(
            gateway.decisions,
          )
            .map(([what, n]) => `${what} ×${n}`)
            .join(
              ', ',
            )}); ${gateway.refunds.executed} refunds executed, budget ${gateway.refunds.spent}/${gateway.refunds.limit}; revoked mid-run: next call ${gateway.revocation.nextCall}, tools ${gateway.revocation.toolsBefore} → ${gateway.revocation.toolsAfter}; log verified (${gateway.audit.verifiedRecords} records)`,
        ],
        [
          'revocation latency',
          `${gates.revocation.latencyMs.toFixed(2)} ms at the enforcement point, ${gateway.revocation.latencyMs.toFixed(2)} ms through the MCP gateway (from the revocation's commit to the refusal of the revoked agent's very next call)`,
        ],
        ...(summary.node === undefined ? [] : nodeSwarmRows(summary.node)),
        ['example agent', summary.example.identifier],
      ]),
      '',
      `try: mandate --home ${dir} identity show agent-0`,
      `     mandate --home ${dir} audit verify --log ${audit.files.trail} --checkpoint ${audit.files.checkpoint}`,
      // The home's whole log: step 18's gateway countersigned as `mcp-gateway`, the rest (and
      // the node of `up --demo`) as the authority.
      `     mandate --home ${dir} audit verify --enforcer authority --enforcer mcp-gateway`,
    ].join('\n'),
  );
}

/** The summary's rows for the swarm through the running node (`mandate up --demo`). */
function nodeSwarmRows(node: NodeSwarmSummary): [string, string][] {
  return [
    [
      'through the node',
      `${node.enrollment.count} tickets redeemed at its authority service in ${node.enrollment.seconds.toFixed(2)} s (${node.enrollment.perSecond}/s); ${node.handshakes.count} secure channels to it (${node.handshakes.perSecond} handshakes/s, mean ${node.handshakes.meanMs.toFixed(1)} ms each); human-lee → ${node.agents} agents → ${node.subAgents} sub-agents`,
    ],
    [
      'node decisions',
      `${node.calls.count} tool calls through its MCP gateway in ${node.calls.seconds.toFixed(2)} s (${node.calls.perSecond}/s, p50 ${node.calls.p50Ms.toFixed(1)} ms, p99 ${node.calls.p99Ms.toFixed(1)} ms); ${Object.entries(
        node.decisions,
      )
        .map(([what, n]) => `${what} ×${n}`)
        .join(', ')}`,
    ],
    [
      'node gates',
      `injected refund ${node.injected.refund}, injected read ${node.injected.read}; ${node.refunds.executed} refunds within the cap executed; ${node.leases.count} JWT leases from its broker (${((1000 * node.leases.seconds) / node.leases.count).toFixed(1)} ms each, with its own channel); live-agent-0 revoked mid-run: next call ${node.revocation.nextCall} (${node.revocation.latencyMs.toFixed(2)} ms after the commit), its sub-agent ${node.revocation.subAgentNextCall}, its lease revoked ${node.revocation.leaseEndedMs.toFixed(0)} ms after the commit`,
    ],
    [
      'node trail',
      `${node.audit.records} records written by the node; the whole log (${node.audit.verifiedRecords} records) verified offline`,
    ],
  ];
}
