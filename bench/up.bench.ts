/**
 * `mandate up --demo`, benchmarked (issue 14: "the summary's figures are the benchmark"):
 *
 * - `mandate --home TMP --json up --demo --agents N --exit` run as a user runs it, in a child
 *   process (`node --import tsx src/cli/bin.ts`), with MANDATE_BENCH_UP_AGENTS agents (default
 *   5,000: two to four minutes on this shared 2-core machine; 200 with MANDATE_BENCH_QUICK=1) and
 *   the demo's proportion of rotations; its stdout is the whole summary as JSON, then the
 *   `dashboard:` line. A child and not `startUp` in this process: the figures are those of the
 *   command the issue names (its process start, the node's start and stop, the swarm's thread
 *   beside the node) with none of this process's heap or event loop in it; and since the summary
 *   holds steps 1–18 as well, this one run replaces the in-process scenario this benchmark ran
 *   before (no second 5,000-agent scenario): every row below comes from the same run;
 * - each phase the summary times, per item, next to that phase's floor measured right after the
 *   run: the crypto the phase's work must do at the least, counted from the summary (where it
 *   does not say, from the step's code, checked against what it does say) and priced with
 *   floors.ts's floors (identity creation, rotation, ticket redemption, Ed25519 signatures and
 *   checks, audit records signed and logged) and channel.bench.ts's handshake crypto (with and
 *   without its signature checks). The gate-2 decisions of step 11 do no crypto or IO: their
 *   floor is `Gate.decide` alone over the same bundle, chains and calls. Step 19's phases (the
 *   swarm through the node: enrollment, MCP sessions and calls, leases, the rest of the step) are
 *   counted in `nodeSwarmPhases`; the summary does not time its offline verification of the
 *   node's log, so this benchmark verifies that log again, the same way, and times it. The run is
 *   one (5,000 agents take minutes), so a phase's ratio is its one run over the floor's median of
 *   rounds, not a same-round ratio: on a shared machine it moves by tens of percent;
 * - the whole command end to end (spawn to exit) against the sum of the phases' floors (the steps
 *   without a row — attacks, delegation, bundles, approvals, budgets, revocations — have none, nor
 *   have the process's and the node's start and stop);
 * - the node's memory: `startUp` (what `mandate up` runs) over the demo home in a process of its
 *   own (up-node.ts), then 1,000 secure channels (100 in quick mode) opened to its listener from
 *   this process over loopback TCP, one connection each, by as many of the demo's agents (their
 *   identities only, no credential: the listener admits any identity that proves itself); heap
 *   used, array buffers and RSS after two full collections, with no channel (one open, to warm
 *   the code) and with them all, total and per channel.
 *
 * Run alone: `node --import tsx bench/run.ts --only up`.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { systemClock } from '../src/core/index.js';
import { randomBytes } from '../src/crypto/index.js';
import {
  openSecureChannel,
  prepareChannelIdentity,
  TrustPolicies,
  type ChannelIdentity,
  type SecureChannel,
} from '../src/channel/index.js';
import { localAddress, Router, TcpTransport } from '../src/routing/index.js';
import { openHome } from '../src/cli/home.js';
import type { DemoSummary } from '../src/cli/commands/demo.js';
import type { NodeSwarmSummary } from '../src/cli/commands/demo-node.js';
import { exportLogLines } from '../src/cli/commands/demo-audit.js';
import { enforcersOf } from '../src/cli/commands/audit.js';
import {
  CHAIN_RECORD_TYPE,
  fromBase64Url,
  MAX_AUDIT_READ_ENTRIES,
  parseAuditRecord,
  verifyTrailExport,
} from '../src/audit/index.js';
import { ChainVerifier, DenySet, type VerifiedChain } from '../src/credentials/index.js';
import { Gate, verifyBundle, type GateDecision, type ToolCall } from '../src/gates/index.js';
import { DEFAULT_AUTHORITY, homeLogKey } from '../src/node/internal.js';
import type { PartyUsage } from './channel-parties.js';
import { channelBenchmarks } from './channel.bench.js';
import {
  CHANGE_DATA_BYTES,
  floorOf,
  identityCreationFloor,
  loggedRecordFloor,
  RECORD_BYTES,
  redemptionFloor,
  rotationFloor,
  signedSample,
  signFloor,
} from './floors.js';
import { group, type TableRow } from './harness.js';
import type { UpNodeCommand, UpNodeReply } from './up-node.js';

/** Identities per call of the identity-creation floor (as identity.bench.ts times it). */
const PER_CALL = 100;
/** About the size of the data a demo credential signs (its SHA-256 is a small part of the floor). */
const CREDENTIAL_DATA_BYTES = 256;
/** Channels opened to the node at a time. */
const CHANNEL_BATCH = 100;

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const NODE_ENTRY = fileURLToPath(new URL('./up-node.ts', import.meta.url));
const CLI_ENTRY = fileURLToPath(new URL('../src/cli/bin.ts', import.meta.url));

export async function upBenchmarks(): Promise<TableRow[]> {
  const quick = process.env.MANDATE_BENCH_QUICK === '1';
  const agents = Number(process.env.MANDATE_BENCH_UP_AGENTS ?? (quick ? 200 : 5000));
  if (!Number.isSafeInteger(agents) || agents < 20)
    throw new Error('MANDATE_BENCH_UP_AGENTS must be an integer of at least 20');
  // The demo's default proportion: 250 rotations for 5,000 agents.
  const rotations = Math.max(1, Math.round(agents / 20));
  const channelCount = Math.min(quick ? 100 : 1000, agents - 1);
  const dir = mkdtempSync(join(tmpdir(), 'mandate-bench-up-'));
  try {
    const run = await runUpDemo(dir, agents, rotations);
    // The node has stopped and let go of its home: the operator's last step is timed again here.
    const verified = await verifyNodeLog(run.summary);
    const rows = await phaseRows(run, verified);
    rows.push(...(await nodeMemoryRows(run.summary.home, agents, channelCount)));
    return rows;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `up --demo`'s summary with step 19's part, which `up` adds when the swarm ran through the node. */
export type UpDemoSummary = DemoSummary & { readonly node: NodeSwarmSummary };

/** One `mandate up --demo --exit` run: what it printed, and its wall time from spawn to exit. */
interface UpDemoRun {
  readonly summary: UpDemoSummary;
  readonly seconds: number;
}

/** The child's stderr (its node's log lines) kept for a failure's message, at most. */
const STDERR_TAIL_CHARS = 8_000;

/**
 * Runs `mandate --home DIR --json up --demo --agents N --rotate R --exit` in a child process, as
 * a user would (`node --import tsx src/cli/bin.ts`), and returns the summary it printed and its
 * wall time from spawn to exit: steps 1–18 in process, the node started, step 19's swarm through
 * it, the summary, the node stopped. Its stderr (the node's log) is shown only if it fails.
 */
async function runUpDemo(dir: string, agents: number, rotations: number): Promise<UpDemoRun> {
  const args = [
    ...['--import', 'tsx', CLI_ENTRY, '--home', dir, '--json', 'up', '--demo'],
    ...['--agents', String(agents), '--rotate', String(rotations), '--exit'],
  ];
  const started = performance.now();
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-STDERR_TAIL_CHARS);
  });
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  const seconds = (performance.now() - started) / 1000;
  if (code !== 0)
    throw new Error(
      `mandate up --demo exited with ${code ?? signal ?? 'nothing'}; its stderr ended:\n${stderr}`,
    );
  return { summary: parseUpDemoOutput(stdout), seconds };
}

/**
 * `mandate --json up --demo --exit`'s stdout: the summary as one JSON document, then the
 * `dashboard: URL` line. Checks the fields step 19's rows count with (the rest is the demo's own
 * summary, printed by the same code the in-process scenario runs).
 */
export function parseUpDemoOutput(stdout: string): UpDemoSummary {
  const at = stdout.lastIndexOf('\ndashboard: ');
  if (at < 0) throw new Error('mandate up --demo printed no `dashboard:` line after its summary');
  const parsed: unknown = JSON.parse(stdout.slice(0, at));
  const numberAt = (path: string): number => {
    let value: unknown = parsed;
    for (const key of path.split('.'))
      value = typeof value === 'object' && value !== null ? Reflect.get(value, key) : undefined;
    if (typeof value !== 'number' || !Number.isFinite(value))
      throw new Error(`mandate up --demo's summary has no number at \`${path}\``);
    return value;
  };
  for (const path of [
    'agents',
    'node.agents',
    'node.subAgents',
    'node.seconds',
    'node.enrollment.count',
    'node.enrollment.seconds',
    'node.handshakes.count',
    'node.handshakes.meanMs',
    'node.handshakes.perSecond',
    'node.calls.count',
    'node.calls.seconds',
    'node.leases.count',
    'node.leases.seconds',
    'node.revocation.latencyMs',
    'node.audit.records',
    'node.audit.verifiedRecords',
  ])
    numberAt(path);
  // Our own CLI's output, its step-19 counts checked above: the rest is DemoSummary as printed.
  return parsed as UpDemoSummary;
}

/** What the bench's own offline verification of the node's log found, and its time. */
interface NodeLogVerification {
  readonly seconds: number;
  readonly records: number;
  readonly signatures: number;
}

/**
 * Step 19's last step timed again, since the summary does not time it: the node's whole log,
 * exported from its home up to the latest checkpoint (the operator's, at the end of step 19) and
 * verified offline with the same trusted identities (the log key, the trusted authorities, the
 * node's and step 18's enforcement points). Only `verifyTrailExport` is timed, as step 16 times it.
 */
async function verifyNodeLog(s: UpDemoSummary): Promise<NodeLogVerification> {
  const home = await openHome(s.home, { clock: systemClock });
  try {
    const checkpoint = await home.store.auditLog.latestCheckpoint();
    if (checkpoint === undefined) throw new Error("the node's home has no checkpoint");
    const logKey = await homeLogKey(home, DEFAULT_AUTHORITY);
    const text = `${(await exportLogLines(home, checkpoint.treeSize)).join('\n')}\n`;
    const trusted = {
      verifiers: [logKey.verifier],
      authorities: await home.trustedAuthorities(),
      enforcers: await enforcersOf(home, [DEFAULT_AUTHORITY, 'mcp-gateway'], DEFAULT_AUTHORITY),
    };
    const started = performance.now();
    const verdict = verifyTrailExport({ text, checkpoint: checkpoint.note, ...trusted });
    const seconds = (performance.now() - started) / 1000;
    if (!verdict.ok)
      throw new Error(
        `the node's log did not verify: ${verdict.problem.code} ${verdict.problem.message}`,
      );
    if (verdict.summary.records !== s.node.audit.verifiedRecords)
      throw new Error(
        `verified ${verdict.summary.records} records where step 19 verified ${s.node.audit.verifiedRecords}`,
      );
    return { seconds, records: verdict.summary.records, signatures: verdict.summary.signatures };
  } finally {
    home.close();
  }
}

/** One phase: its items, its time, and its floor per item (µs). */
interface Phase {
  readonly what: string;
  readonly items: number;
  readonly seconds: number;
  readonly floor: { readonly label: string; readonly usPerItem: number };
  /**
   * Set when the phase's time and work are already inside another row's (a latency inside a
   * phase's wall time, or its work timed again): shown, but left out of the end-to-end sums.
   */
  readonly inside?: true;
}

/** The floors' units as timed in this run, µs each. */
interface Units {
  /** One agent identity created (identityCreationFloor). */
  readonly identity: number;
  /** 1 Ed25519 verify + SHA-256 of about CHANGE_DATA_BYTES (a change, an attestation, a credential). */
  readonly verify: number;
  /** SHA-256 of CREDENTIAL_DATA_BYTES + 1 Ed25519 sign (a credential, a link, a token, a bundle). */
  readonly sign: number;
  /** An audit record signed and appended (loggedRecordFloor). */
  readonly record: number;
  /** An audit record verified: SHA-256 of RECORD_BYTES + 1 Ed25519 verify. */
  readonly recordVerify: number;
  /** A secure-channel handshake's crypto, both sides (channel.bench.ts). */
  readonly handshake: number;
  /**
   * The same without its 8 Ed25519 checks (channel.bench.ts's floor of a handshake between peers
   * verified before): X25519 and AES-GCM only. Step 19 adds the checks its handshakes need.
   */
  readonly handshakeBare: number;
}

/** One term of a floor: how many of a unit, its µs, what they are. */
type Term = readonly [count: number, usEach: number, what: string];

function sumOf(terms: readonly Term[]): { readonly us: number; readonly label: string } {
  const counted = terms.filter(([count]) => count > 0);
  return {
    us: counted.reduce((sum, [count, us]) => sum + count * us, 0),
    label: counted.map(([count, , what]) => `${count.toLocaleString('en-US')} ${what}`).join(' + '),
  };
}

async function phaseRows(run: UpDemoRun, verified: NodeLogVerification): Promise<TableRow[]> {
  const s = run.summary;
  // The floors, timed right after the run (the harness's rounds).
  const floors = await group('up-floors')
    .add('identity', identityCreationFloor(PER_CALL), {
      label: 'raw floor: 2 Ed25519 + 1 X25519 keygen, 3 signs, 3 SHA-256',
    })
    .add('verify', floorOf([signedSample(CHANGE_DATA_BYTES)]), {
      label: 'raw floor: 1 Ed25519 verify + 1 SHA-256',
    })
    .add(
      'redeem',
      redemptionFloor(signedSample(CHANGE_DATA_BYTES), randomBytes(CREDENTIAL_DATA_BYTES)),
      {
        label:
          'raw floor: 1 Ed25519 verify (redeemer history) + 1 sign (credential), with their SHA-256',
      },
    )
    .add('rotation', rotationFloor(), {
      label:
        'raw floor: 1 Ed25519 keygen, 3 SHA-256, 4 signs (the change by the new and the old key, 2 re-attestations)',
    })
    .add('sign', signFloor(CREDENTIAL_DATA_BYTES), { label: '1 SHA-256 + 1 Ed25519 sign' })
    .add('record', loggedRecordFloor(RECORD_BYTES), {
      label: 'a record signed and logged: SHA-256, 1 Ed25519 sign, leaf + node hash',
    })
    .add('recordVerify', floorOf([signedSample(RECORD_BYTES)]), {
      label: 'a record verified: SHA-256 + 1 Ed25519 verify',
    })
    .add('decide', await gateDecisionFloor(s), {
      label: 'Gate.decide alone: same bundle, chains and calls (the step does no crypto or IO)',
    })
    .run();
  const us = (id: string): number => floors.get(id).usPerOp;
  // channel.bench.ts's handshake section, whose full-handshake row carries the crypto floor and
  // whose cached-peer row the same floor without the signature checks.
  const handshakeRows = await channelBenchmarks(['handshake']);
  const handshake = handshakeRows.find((r) => r.what.startsWith('ChannelHandshake XX, both sides'));
  const bareHandshake = handshakeRows.find((r) =>
    r.what.startsWith('the same between peers verified before'),
  );
  if (handshake?.baselineUsPerOp === undefined || bareHandshake?.baselineUsPerOp === undefined)
    throw new Error('channel.bench.ts no longer reports the handshakes against their floors');
  const units: Units = {
    identity: us('identity') / PER_CALL,
    verify: us('verify'),
    sign: us('sign'),
    record: us('record'),
    recordVerify: us('recordVerify'),
    handshake: handshake.baselineUsPerOp,
    handshakeBare: bareHandshake.baselineUsPerOp,
  };

  // Every Ed25519 check of step 3: each history's change signatures (a rotation adds two) and
  // each agent's two purpose-key attestations.
  const step3Checks =
    s.verification.histories + 2 * s.rotations.count + s.verification.attestations;
  // Step 11's sample through the enforcement point: per call the agent's invocation signed and
  // verified and the decision countersigned, both logged; per sub-agent, at its first call, its
  // chain record and its credential key's attestation (its chain was verified at step 10, by the
  // verifier the enforcement point uses: no chain signature is checked again).
  const sample = s.gates.audit.sample.count;
  const recordedUs =
    (2 * sample + s.gates.subAgents) * units.record +
    sample * units.recordVerify +
    s.gates.subAgents * units.verify;
  const broker = sumOf(brokerTerms(s, units));
  const gateway = sumOf(gatewayTerms(s, units));
  const phases: Phase[] = [
    {
      what: `1. provision an agent (${s.agents.toLocaleString('en-US')}, worker threads, sealed vault + SQLite)`,
      items: s.agents,
      seconds: s.provisioning.seconds,
      floor: { label: floors.get('identity').label, usPerItem: units.identity },
    },
    {
      what: `2. rotate an agent's primary key (${s.rotations.count})`,
      items: s.rotations.count,
      seconds: s.rotations.seconds,
      floor: { label: floors.get('rotation').label, usPerItem: us('rotation') },
    },
    {
      what: '3. verify an agent from stored bytes (history + 2 attestations)',
      items: s.verification.histories,
      seconds: s.verification.seconds,
      floor: {
        label: `${(step3Checks / s.verification.histories).toFixed(2)} × (1 Ed25519 verify + 1 SHA-256)`,
        usPerItem: (step3Checks * units.verify) / s.verification.histories,
      },
    },
    {
      what: '5. enroll an agent with a one-time ticket (redeem, credential issued)',
      items: s.credentials.enrolled,
      seconds: s.credentials.enrollSeconds,
      floor: { label: floors.get('redeem').label, usPerItem: us('redeem') },
    },
    {
      what: '5. verify an enrolled agent’s credential',
      items: s.credentials.credentialsVerified,
      seconds: s.credentials.verifySeconds,
      floor: { label: '2 × (1 Ed25519 verify + 1 SHA-256)', usPerItem: 2 * units.verify },
    },
    {
      what: `8. secure-channel handshake through a relay (${s.channels.channels} at once, in memory)`,
      items: s.channels.channels,
      seconds: s.channels.handshakeSeconds,
      floor: { label: handshake.baseline ?? 'handshake crypto', usPerItem: units.handshake },
    },
    {
      what: `11. gate-2 decision (${s.gates.calls.count.toLocaleString('en-US')} calls; median ${s.gates.calls.p50Micros} µs)`,
      items: s.gates.calls.count,
      seconds: s.gates.calls.seconds,
      floor: { label: floors.get('decide').label, usPerItem: us('decide') },
    },
    {
      what: '12. call signed, enforced and recorded (invocation + countersigned decision)',
      items: sample,
      seconds: s.gates.audit.sample.seconds,
      floor: {
        label: `per call 2 records signed and logged + 1 verified (SHA-256 + Ed25519 each); per sub-agent (${s.gates.subAgents}) its chain record + 1 attestation check`,
        usPerItem: recordedUs / sample,
      },
    },
    {
      what: `16. verify an exported audit record offline (${s.audit.counts.records.toLocaleString('en-US')})`,
      items: s.audit.counts.records,
      seconds: s.audit.verifySeconds,
      floor: {
        label: `${(s.audit.counts.signatures / s.audit.counts.records).toFixed(2)} × (1 Ed25519 verify + SHA-256 of a ≥ ${RECORD_BYTES}-byte record)`,
        usPerItem: (s.audit.counts.signatures * units.recordVerify) / s.audit.counts.records,
      },
    },
    {
      what: '17. the broker step, whole',
      items: 1,
      seconds: s.broker.seconds,
      floor: { label: `its crypto: ${broker.label}`, usPerItem: broker.us },
    },
    {
      what: `18. the MCP gateway step, per call (${s.gateway.calls} calls, servers started)`,
      items: s.gateway.calls,
      seconds: s.gateway.seconds,
      floor: {
        label: `the step's crypto ÷ ${s.gateway.calls} calls: ${gateway.label}`,
        usPerItem: gateway.us / s.gateway.calls,
      },
    },
    ...nodeSwarmPhases(s, units, us('redeem'), verified),
  ];
  const rows: TableRow[] = phases.map((p) => {
    const usPerOp = (p.seconds * 1e6) / p.items;
    return {
      what: p.inside === true ? `${p.what} [inside the rows above: not in the sums]` : p.what,
      usPerOp,
      baseline: p.floor.label,
      baselineUsPerOp: p.floor.usPerItem,
      ratio: usPerOp / p.floor.usPerItem,
    };
  });
  const summed = phases.filter((p) => p.inside !== true);
  const floorSeconds = summed.reduce((sum, p) => sum + (p.floor.usPerItem * p.items) / 1e6, 0);
  // The steps of the scenario without a row (the attacks, delegation, the bundle, approvals,
  // budgets, the revocations, the channels' traffic…), the process's start, the node's start and
  // stop take the rest of the time, and have no floor.
  const rowSeconds = summed.reduce((sum, p) => sum + p.seconds, 0);
  const totalSeconds = run.seconds;
  rows.push({
    what: `\`mandate up --demo --agents ${s.agents} --exit\`, end to end: spawn to exit (${rowSeconds.toFixed(1)} s of it in the rows above, step 19 ${s.node.seconds.toFixed(1)} s; revocation → enforcement ${s.revocationToEnforcement.enforcementPointMs.toFixed(1)} ms at the enforcement point, ${s.revocationToEnforcement.gatewayMs.toFixed(1)} ms through the gateway, ${s.node.revocation.latencyMs.toFixed(1)} ms at the node)`,
    usPerOp: totalSeconds,
    baseline: 'sum of the floors above',
    baselineUsPerOp: floorSeconds,
    ratio: totalSeconds / floorSeconds,
    unit: 's',
  });
  return rows;
}

/** The broker step's agents (demo-broker.ts: billing, support-refunds, compromised). */
const BROKER_AGENTS = 3;

/**
 * Step 17's floor, whole: the crypto its work must do (demo-broker.ts). Its agents' and the
 * broker's identities created; each agent's credential issued and its chain verified (the
 * credential and the agent's history, the authority's credential-key attestation once); the bundle
 * with the leaseSecret permits signed, and verified by the bundle source; a JWT signed per agent;
 * a secure-channel handshake per agent (to the broker's egress service); every lease event and the
 * revocation signed into the log; a checkpoint signed; and the whole log verified record by record
 * (as step 16 counts it), with the checkpoint. HTTP, the PostgreSQL role (its login's SCRAM is
 * PostgreSQL's and pg's) and the sealed secrets' AEAD are not in it.
 */
function brokerTerms(s: DemoSummary, u: Units): Term[] {
  const b = s.broker;
  // The counts above not in the summary are checked against what is: the lease records are each
  // agent's JWT and proxy lease and the PostgreSQL role (when the server answered) granted, a use
  // per proxied call (the two injections, the compromised agent's call before its revocation) and
  // each lease revoked.
  const postgres = b.revocation.postgres.startsWith('skipped') ? 0 : 1;
  const leaseRecords =
    2 * BROKER_AGENTS + postgres + b.injectedCalls + 1 + b.revocation.leasesRevoked;
  if (b.leaseRecords !== leaseRecords)
    throw new Error(
      `the broker step logged ${b.leaseRecords} lease records where its floor counts ${leaseRecords}: demo-broker.ts changed, count its floor again`,
    );
  return [
    // The agents and the broker's own identity.
    [BROKER_AGENTS + 1, u.identity, 'identities'],
    [BROKER_AGENTS, u.handshake, 'handshakes'],
    // A credential and a JWT per agent; the bundle; the checkpoint.
    [2 * BROKER_AGENTS + 2, u.sign, 'signs (credentials, JWTs, bundle, checkpoint)'],
    // A credential and a history per agent's chain; the authority's attestation; the bundle; the
    // checkpoint.
    [2 * BROKER_AGENTS + 3, u.verify, 'verifies (chains, bundle, checkpoint)'],
    [b.verifiedRecords - s.audit.checkpointTreeSize, u.record, 'records signed and logged'],
    [b.verifiedRecords, u.recordVerify, 'records verified'],
  ];
}

/**
 * Step 18's floor, whole (demo-gateway.ts): the gateway's, the relay's, the human's and each
 * agent's identity created; the relay's, the gateway's and the human's credentials issued and each
 * agent's link delegated; the chains verified (the human's credential and history, each link and
 * agent history, the authority's and the human's credential-key attestations once) and each
 * agent's key attestation checked once by the enforcement point; the bundle with the upstreams'
 * catalog signed, and verified by the bundle source; a handshake for the gateway's registration at
 * the relay and one per agent (end to end, through the relay); per call the agent's signed
 * invocation (a refused call's too), verified, its countersigned decision and, when it ran, its
 * outcome, all logged with a chain record per agent and the revocation; a checkpoint signed; and
 * the whole log verified record by record (as step 16 counts it), with the checkpoint. The MCP
 * round trips and the upstream servers' processes are not in it.
 */
function gatewayTerms(s: DemoSummary, u: Units): Term[] {
  const g = s.gateway;
  const outcomes = (prefix: string): number => outcomeCount(g.decisions, prefix);
  // A refused call is signed and never logged; a denied one is logged with its decision.
  const refused = outcomes('refused ');
  const invocations = g.calls - refused;
  const ran = invocations - outcomes('deny ');
  const records = 2 * invocations + ran + g.agents + 1;
  if (g.audit.records !== records)
    throw new Error(
      `the gateway step logged ${g.audit.records} records where its floor counts ${records}: demo-gateway.ts changed, count its floor again`,
    );
  return [
    // The agents, the gateway, the relay, the human.
    [g.agents + 3, u.identity, 'identities'],
    // The agents' channels and the gateway's registration.
    [g.agents + 1, u.handshake, 'handshakes'],
    // 3 credentials (relay, gateway, human), a link per agent, the bundle, the checkpoint.
    [
      g.agents + 5 + refused,
      u.sign,
      'signs (credentials, links, bundle, checkpoint, refused calls)',
    ],
    // Per agent its link, its history and its key's attestation; the human's credential and
    // history; the authority's and the human's attestations; the bundle; the checkpoint.
    [3 * g.agents + 6, u.verify, 'verifies (chains, key attestations, bundle, checkpoint)'],
    [g.audit.records, u.record, 'records signed and logged'],
    [invocations + g.audit.verifiedRecords, u.recordVerify, 'records verified'],
  ];
}

/** How many of a step's MCP calls ended in an outcome that starts with `prefix`. */
function outcomeCount(decisions: Readonly<Record<string, number>>, prefix: string): number {
  return Object.entries(decisions).reduce(
    (sum, [what, n]) => sum + (what.startsWith(prefix) ? n : 0),
    0,
  );
}

/**
 * Step 19's rows (demo-node.ts, demo-swarm-worker.ts): the swarm through the running node, its
 * phases as the summary times them, each next to the crypto its work must do at the least,
 * counted from the summary (and checked against the node's record count). A handshake to the
 * node is priced as its X25519 and AES-GCM work (channel.bench.ts's floor between peers verified
 * before) plus the checks it needs at the least: the node checks the agent's history and
 * channel-key attestation (and, from a delegated agent, its link and the attestation of the key
 * its calls are signed with, once per agent); the node's own payload, the same in every handshake,
 * and the human's credential, the same in every chain, could be answered from a cache of verified
 * peers and chains, so they are left out.
 *
 * - enrollment (wall time ÷ tickets, 16 at once): a handshake, the ticket redeemed (floors.ts's
 *   redemption: the redeemer's history checked, its credential signed), the channel key's
 *   attestation checked by the node and the credential by the agent;
 * - the routine pool (wall time ÷ calls, 32 agents at once): every agent but the revoked one and
 *   every sub-agent but its own opens one MCP session (a handshake and 4 checks, a chain record
 *   logged at its first call) and makes 2 calls (per call the agent's invocation signed and
 *   logged, verified by the node, the decision countersigned and the outcome signed, both logged);
 *   up to 100 agents spread over the pool lease a JWT first (a handshake, the JWT signed, a lease
 *   record logged; their checks are counted with the session's);
 * - a lease on its own (each lease's time, summed, ÷ leases: a latency, inside the pool's row);
 * - the rest of step 19, whole (its time less the two phases): the swarm's identities created in
 *   its own home, each delegation link signed and checked, the sessions and calls after the pool
 *   (the revoked agent's and its sub-agent's, the injected calls, the refunds), the revoked
 *   agent's lease and its end, the revocation, the checkpoint and the whole log verified offline
 *   (one Ed25519 check per signature the verifier counts). The tickets the operator makes are a
 *   random code and its SHA-256 each: no floor;
 * - that offline verification alone, timed again by this benchmark over the node's home after
 *   the run (the summary does not time it; inside the rest's row).
 */
function nodeSwarmPhases(
  s: UpDemoSummary,
  u: Units,
  redeemUs: number,
  verified: NodeLogVerification,
): Phase[] {
  const n = s.node;
  const allowed = outcomeCount(n.decisions, 'allow');
  const denied = outcomeCount(n.decisions, 'deny ');
  // Signed by the agent, refused before the log (the revoked agent's sub-agent).
  const refused = outcomeCount(n.decisions, 'refused ');
  const poolSessions = n.calls.count / 2;
  // The revoked agent's lease is taken before the pool.
  const poolLeases = n.leases.count - 1;
  const sessions = n.handshakes.count - n.enrollment.count - n.leases.count;
  // The node's records: per allowed call its invocation, decision and outcome, per denied call
  // the first two; a chain record per agent at its first logged call (the pool's and the revoked
  // agent's); a lease record per lease and one for the revoked agent's end; the revocation.
  const records = 3 * allowed + 2 * denied + (poolSessions + 1) + (n.leases.count + 1) + 1;
  if (!Number.isInteger(poolSessions) || records !== n.audit.records)
    throw new Error(
      `step 19 logged ${n.audit.records} records where its floor counts ${records}: demo-swarm-worker.ts changed, count its floor again`,
    );
  const poolRecords = 3 * n.calls.count + poolSessions + poolLeases;
  const count = (x: number): string => x.toLocaleString('en-US');

  const enrollment = sumOf([
    [1, u.handshakeBare, 'handshake (X25519, AES-GCM)'],
    [1, redeemUs, 'redemption (history checked, credential signed)'],
    [2, u.verify, 'verifies (channel-key attestation, credential)'],
  ]);
  const pool = sumOf([
    [poolSessions + poolLeases, u.handshakeBare, 'handshakes (X25519, AES-GCM)'],
    [4 * poolSessions, u.verify, 'verifies (history, channel key, link, signing key)'],
    [poolRecords, u.record, 'records signed and logged'],
    [n.calls.count, u.recordVerify, 'invocations verified'],
    [poolLeases, u.sign, 'JWTs signed'],
  ]);
  const lease = sumOf([
    [1, u.handshakeBare, 'handshake (X25519, AES-GCM)'],
    [3, u.verify, 'verifies (history, channel key, link)'],
    [1, u.sign, 'JWT signed'],
    [1, u.record, 'lease record logged'],
  ]);
  const delegated = n.agents + n.subAgents;
  const rest = sumOf([
    [delegated + 1, u.identity, 'identities'],
    [sessions - poolSessions + 1, u.handshakeBare, 'handshakes (X25519, AES-GCM)'],
    [delegated + 2 + refused, u.sign, 'signs (links, JWT, checkpoint, refused call)'],
    [delegated, u.verify, 'verifies (links)'],
    [n.audit.records - poolRecords, u.record, 'records signed and logged'],
    [
      allowed - n.calls.count + denied + verified.signatures,
      u.recordVerify,
      'records verified (invocations; the whole log offline)',
    ],
  ]);
  const restSeconds = n.seconds - n.enrollment.seconds - n.calls.seconds;
  const perRecord = verified.signatures / verified.records;
  return [
    {
      what: `19. enroll at the node's authority service over TCP (${count(n.enrollment.count)} tickets, 16 at once, a secure channel each)`,
      items: n.enrollment.count,
      seconds: n.enrollment.seconds,
      floor: { label: enrollment.label, usPerItem: enrollment.us },
    },
    {
      what: `19. MCP session through the node's gateway + its 2 calls, per call (${count(n.calls.count)} calls, 32 agents at once, ${count(poolLeases)} JWT leases among them; ${count(n.handshakes.count)} handshakes to the node in all, ${n.handshakes.perSecond}/s of in-flight time, ${n.handshakes.meanMs.toFixed(0)} ms each)`,
      items: n.calls.count,
      seconds: n.calls.seconds,
      floor: {
        label: `÷ ${count(n.calls.count)} calls: ${pool.label}`,
        usPerItem: pool.us / n.calls.count,
      },
    },
    {
      what: `19. lease a JWT from the node's broker: a lease's mean latency, up to 32 agents at the node at once (${count(n.leases.count)} leases, among the calls)`,
      items: n.leases.count,
      seconds: n.leases.seconds,
      floor: { label: lease.label, usPerItem: lease.us },
      inside: true,
    },
    {
      what: `19. the rest of step 19, whole (the swarm's home with ${count(delegated + 1)} identities, delegation, ${count(sessions - poolSessions)} more sessions, the revocation, the log checkpointed and verified offline)`,
      items: 1,
      seconds: restSeconds,
      floor: { label: `its crypto: ${rest.label}`, usPerItem: rest.us },
    },
    {
      what: `19. verify the node's whole log offline, per record (${count(verified.records)}; timed again by this benchmark after the run)`,
      items: verified.records,
      seconds: verified.seconds,
      floor: {
        label: `${perRecord.toFixed(2)} × (1 Ed25519 verify + SHA-256 of a ≥ ${RECORD_BYTES}-byte record)`,
        usPerItem: perRecord * u.recordVerify,
      },
      inside: true,
    },
  ];
}

/**
 * Step 11's work alone: gate 2 deciding the scenario's routine calls (`Gate.decide`, what
 * enforceCall runs first; a lookup or a read has no budget, rate limit or approval after it), over
 * the bundle the step published, the chains of its sub-agents (from the chain records the
 * enforcement point logged for them) and the same calls in the same order. The step has no crypto or IO of its own: the chains were
 * verified at step 10, and nothing is signed or stored for these calls.
 */
async function gateDecisionFloor(s: DemoSummary): Promise<() => GateDecision> {
  const now = systemClock.nowSeconds();
  const home = await openHome(s.home, { clock: systemClock });
  try {
    const authorities = await home.trustedAuthorities();
    const stored = await home.store.policyBundles.getBundle(s.gates.bundle.version);
    if (stored === undefined) throw new Error('the gates step’s bundle is not in the demo home');
    const bundle = verifyBundle(stored.bytes, { nowSeconds: now, authorities });
    const denySet = new DenySet({ maxStalenessSeconds: 600 });
    denySet.markFresh(0, now);
    const gate = new Gate({ bundles: { current: () => bundle }, denySet });
    const verifier = new ChainVerifier({ authorities, denySet });
    // demo-gates.ts's routine call i.
    const routine = (i: number): ToolCall =>
      i % 2 === 0
        ? { tool: 'orders.lookup', args: { order: `4471-${i % 17}` } }
        : { tool: 'files.read', args: { path: `/tickets/4471/message-${i % 23}.txt` } };
    const allowed = (chain: VerifiedChain, call: ToolCall): boolean =>
      gate.decide(chain, call, { nowSeconds: now }).decision === 'allow';
    // The sub-agents' chains: those logged by the end of the gates step that both kinds of call
    // pass (in the order of their first calls, which is the step's).
    const chains: VerifiedChain[] = [];
    for (let from = 0; from < s.gates.audit.records; from += MAX_AUDIT_READ_ENTRIES) {
      const to = Math.min(s.gates.audit.records, from + MAX_AUDIT_READ_ENTRIES);
      for (const entry of await home.store.auditLog.readEntries(from, to)) {
        let record;
        try {
          record = parseAuditRecord(entry.record);
        } catch {
          continue; // a revocation record (another record family)
        }
        if (record.type !== CHAIN_RECORD_TYPE) continue;
        const chain = verifier.verify(fromBase64Url(record.chain, 'chain'), { nowSeconds: now });
        if (allowed(chain, routine(0)) && allowed(chain, routine(1))) chains.push(chain);
      }
    }
    if (chains.length !== s.gates.subAgents)
      throw new Error(`found ${chains.length} of the gates step's ${s.gates.subAgents} chains`);
    const calls = Array.from({ length: s.gates.calls.count }, (_, i) => ({
      chain: chains[i % chains.length]!,
      call: routine(i),
    }));
    if (!calls.every((c) => allowed(c.chain, c.call)))
      throw new Error('a routine call is refused outside the scenario');
    let next = 0;
    return () => {
      const c = calls[next]!;
      next = (next + 1) % calls.length;
      return gate.decide(c.chain, c.call, { nowSeconds: now });
    };
  } finally {
    home.close();
  }
}

/** The node process (up-node.ts), driven one request at a time. */
class UpNodeProcess {
  readonly #child: ChildProcess;
  #waiting: ((reply: UpNodeReply) => void) | undefined;

  constructor() {
    this.#child = fork(NODE_ENTRY, [], {
      cwd: ROOT,
      execArgv: ['--import', 'tsx', '--expose-gc'],
      serialization: 'advanced',
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    this.#child.on('message', (message: UpNodeReply) => {
      const waiting = this.#waiting;
      this.#waiting = undefined;
      waiting?.(message);
    });
    this.#child.on('exit', (code) => {
      const waiting = this.#waiting;
      this.#waiting = undefined;
      waiting?.({ type: 'error', message: `the node process exited (code ${code ?? 'none'})` });
    });
  }

  async request<T extends UpNodeReply['type']>(
    command: UpNodeCommand,
    expect: T,
  ): Promise<Extract<UpNodeReply, { type: T }>> {
    if (this.#waiting !== undefined) throw new Error('one node request at a time');
    const reply = await new Promise<UpNodeReply>((resolve) => {
      this.#waiting = resolve;
      this.#child.send(command);
    });
    if (reply.type === 'error') throw new Error(`node process: ${reply.message}`);
    if (reply.type !== expect) throw new Error(`the node process answered ${reply.type}`);
    return reply as Extract<UpNodeReply, { type: T }>;
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) =>
      this.#child.once('exit', () => {
        resolve();
      }),
    );
    // A node that does not wind down in time is ended: the benchmark is over either way.
    const timer = setTimeout(() => this.#child.kill(), 15_000);
    await this.request({ type: 'stop' }, 'stopped').catch(() => this.#child.kill());
    await exited;
    clearTimeout(timer);
  }
}

async function nodeMemoryRows(
  home: string,
  agents: number,
  channelCount: number,
): Promise<TableRow[]> {
  // The channels' sides, prepared while this process still holds the home (the node locks it):
  // as many of the demo's agents, each its own attested secure-channel key.
  const now = systemClock.nowSeconds();
  const parties: ChannelIdentity[] = [];
  let authorityId;
  let authorities;
  {
    const opened = await openHome(home, { clock: systemClock });
    try {
      authorityId = (await opened.identities.get(DEFAULT_AUTHORITY)).identity.identifier;
      authorities = await opened.trustedAuthorities();
      for (const known of await opened.identities.list({ limit: channelCount + 1, offset: 0 })) {
        if (known.primaryKeyId === null || known.identity.identifier === authorityId) continue;
        parties.push(
          await prepareChannelIdentity(opened.vault, {
            identity: known.identity,
            primaryKeyId: known.primaryKeyId,
            nowSeconds: now,
          }),
        );
        if (parties.length === channelCount + 1) break;
      }
    } finally {
      opened.close();
    }
  }
  if (parties.length < channelCount + 1)
    throw new Error('not enough local agents for the channels');

  const node = new UpNodeProcess();
  const initiators: TcpTransport[] = [];
  const channels: SecureChannel[] = [];
  try {
    const { address } = await node.request({ type: 'start', home }, 'ready');
    const openOne = async (party: ChannelIdentity): Promise<void> => {
      const router = new Router();
      const tcp = new TcpTransport(router);
      initiators.push(tcp);
      channels.push(
        await openSecureChannel(router, [localAddress(tcp.connect(address)), localAddress('api')], {
          ...party,
          verify: { authorities, trustPolicy: TrustPolicies.identifier(authorityId) },
          clock: systemClock,
        }),
      );
    };
    // One channel first, so the node's channel code and caches are warm before the baseline.
    await openOne(parties[0]!);
    const before = await node.request({ type: 'usage' }, 'usage');
    const startedAt = performance.now();
    for (let opened = 0; opened < channelCount; opened += CHANNEL_BATCH) {
      const batch = parties.slice(1 + opened, 1 + Math.min(channelCount, opened + CHANNEL_BATCH));
      await Promise.all(batch.map(openOne));
    }
    const openUs = ((performance.now() - startedAt) * 1000) / channelCount;
    const after = await node.request({ type: 'usage' }, 'usage');
    if (channels.length !== channelCount + 1) throw new Error('a channel did not open');
    const n = channelCount.toLocaleString('en-US');
    const memoryRow = (
      what: string,
      key: keyof Omit<PartyUsage, 'cpuUs' | 'channels'>,
    ): TableRow => {
      const perChannelKb = (after[key] - before[key]) / channelCount / 1000;
      return {
        what: `node ${what} after GC, ${agents.toLocaleString('en-US')}-agent home: with ${n} channels`,
        usPerOp: after[key] / 1e6,
        baseline: 'no channel (1 open)',
        baselineUsPerOp: before[key] / 1e6,
        ratio: after[key] / before[key],
        target: `${perChannelKb.toFixed(1)} KB per channel`,
        unit: 'MB',
      };
    };
    return [
      memoryRow('heap used', 'heapUsed'),
      memoryRow('array buffers', 'arrayBuffers'),
      memoryRow('RSS', 'rss'),
      {
        what: `open a channel to the node's listener (loopback TCP, ${CHANNEL_BATCH} at a time, from another process)`,
        usPerOp: openUs,
      },
    ];
  } finally {
    for (const channel of channels) await channel.close().catch(() => undefined);
    await Promise.all(initiators.map((tcp) => tcp.close()));
    await node.stop();
  }
}
