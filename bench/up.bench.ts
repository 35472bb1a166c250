/**
 * `mandate up --demo`, benchmarked (issue 14: "the summary's figures are the benchmark"):
 *
 * - the swarm scenario (`runDemo`, what `up --demo` runs first) in this process with
 *   MANDATE_BENCH_UP_AGENTS agents (default 5,000; 200 with MANDATE_BENCH_QUICK=1) into a
 *   temporary home; each phase the summary times, per item, next to that phase's floor measured
 *   right after it in this run with the floors the other benchmarks use (floors.ts: identity
 *   creation, ticket redemption, Ed25519 checks; channel.bench.ts's handshake section for the
 *   handshake's crypto). A phase no benchmark has a floor for says so. The scenario runs once
 *   (5,000 agents take tens of seconds), so a phase's ratio is its one run over the floor's
 *   median of rounds, not a same-round ratio: on a shared machine it moves by tens of percent;
 * - the whole run end to end against the sum of the floors of the phases that have one;
 * - the node's memory: `startUp` (what `mandate up` runs) over the demo home in a process of its
 *   own (up-node.ts), then 1,000 secure channels (100 in quick mode) opened to its listener from
 *   this process over loopback TCP, one connection each, by as many of the demo's agents (their
 *   identities only, no credential: the listener admits any identity that proves itself); heap
 *   used, array buffers and RSS after two full collections, with no channel (one open, to warm
 *   the code) and with them all, total and per channel.
 *
 * Run alone: `node --import tsx bench/run.ts --only up`.
 */
import { fork, type ChildProcess } from 'node:child_process';
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
import { runDemo, type DemoSummary } from '../src/cli/commands/demo.js';
import type { CliContext } from '../src/cli/context.js';
import { DEFAULT_AUTHORITY } from '../src/node/internal.js';
import type { PartyUsage } from './channel-parties.js';
import { channelBenchmarks } from './channel.bench.js';
import {
  CHANGE_DATA_BYTES,
  floorOf,
  identityCreationFloor,
  redemptionFloor,
  signedSample,
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
    const started = performance.now();
    const summary = await runDemo(silentContext(dir), { agents, rotations });
    const totalSeconds = (performance.now() - started) / 1000;
    const rows = await phaseRows(summary, totalSeconds);
    rows.push(...(await nodeMemoryRows(summary.home, agents, channelCount)));
    return rows;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A CLI context that prints nothing: the tables are this benchmark's output. */
function silentContext(homeDir: string): CliContext {
  return {
    out: { json: true, debug: false, exitCode: 0, result: () => undefined, note: () => undefined },
    homeDir,
    clock: systemClock,
    openHome: () => openHome(homeDir, { clock: systemClock }),
  };
}

/** One phase: its items, its time, and its floor per item (µs) when a benchmark has one. */
interface Phase {
  readonly what: string;
  readonly items: number;
  readonly seconds: number;
  readonly floor?: { readonly label: string; readonly usPerItem: number };
}

async function phaseRows(s: DemoSummary, totalSeconds: number): Promise<TableRow[]> {
  // The floors, timed right after the scenario (the harness's rounds).
  const verify = floorOf([signedSample(CHANGE_DATA_BYTES)]);
  const floors = await group('up-floors')
    .add('identity', identityCreationFloor(PER_CALL), {
      label: 'raw floor: 2 Ed25519 + 1 X25519 keygen, 3 signs, 3 SHA-256',
    })
    .add('verify', verify, { label: 'raw floor: 1 Ed25519 verify + 1 SHA-256' })
    .add(
      'redeem',
      redemptionFloor(signedSample(CHANGE_DATA_BYTES), randomBytes(CREDENTIAL_DATA_BYTES)),
      {
        label:
          'raw floor: 1 Ed25519 verify (redeemer history) + 1 sign (credential), with their SHA-256',
      },
    )
    .run();
  const identityUs = floors.get('identity').usPerOp / PER_CALL;
  const verifyUs = floors.get('verify').usPerOp;
  const redeemUs = floors.get('redeem').usPerOp;
  // channel.bench.ts's handshake section, whose full-handshake row carries the crypto floor.
  const handshake = (await channelBenchmarks(['handshake'])).find((r) =>
    r.what.startsWith('ChannelHandshake XX, both sides'),
  );
  if (handshake?.baselineUsPerOp === undefined)
    throw new Error('channel.bench.ts no longer reports the full handshake against its floor');

  // Every Ed25519 check of step 3: each history's change signatures (a rotation adds two) and
  // each agent's two purpose-key attestations.
  const step3Checks =
    s.verification.histories + 2 * s.rotations.count + s.verification.attestations;
  const phases: Phase[] = [
    {
      what: `1. provision an agent (${s.agents.toLocaleString('en-US')}, worker threads, sealed vault + SQLite)`,
      items: s.agents,
      seconds: s.provisioning.seconds,
      floor: { label: floors.get('identity').label, usPerItem: identityUs },
    },
    {
      what: `2. rotate an agent's primary key (${s.rotations.count})`,
      items: s.rotations.count,
      seconds: s.rotations.seconds,
    },
    {
      what: '3. verify an agent from stored bytes (history + 2 attestations)',
      items: s.verification.histories,
      seconds: s.verification.seconds,
      floor: {
        label: `${(step3Checks / s.verification.histories).toFixed(2)} × (1 Ed25519 verify + 1 SHA-256)`,
        usPerItem: (step3Checks * verifyUs) / s.verification.histories,
      },
    },
    {
      what: '5. enroll an agent with a one-time ticket (redeem, credential issued)',
      items: s.credentials.enrolled,
      seconds: s.credentials.enrollSeconds,
      floor: { label: floors.get('redeem').label, usPerItem: redeemUs },
    },
    {
      what: '5. verify an enrolled agent’s credential',
      items: s.credentials.credentialsVerified,
      seconds: s.credentials.verifySeconds,
      floor: { label: '2 × (1 Ed25519 verify + 1 SHA-256)', usPerItem: 2 * verifyUs },
    },
    {
      what: `8. secure-channel handshake through a relay (${s.channels.channels} at once, in memory)`,
      items: s.channels.channels,
      seconds: s.channels.handshakeSeconds,
      floor: {
        label: handshake.baseline ?? 'handshake crypto',
        usPerItem: handshake.baselineUsPerOp,
      },
    },
    {
      what: `11. gate-2 decision (${s.gates.calls.count.toLocaleString('en-US')} calls)`,
      items: s.gates.calls.count,
      seconds: s.gates.calls.seconds,
    },
    {
      what: '12. call signed, enforced and recorded (invocation + countersigned decision)',
      items: s.gates.audit.sample.count,
      seconds: s.gates.audit.sample.seconds,
    },
    {
      what: `16. verify an exported audit record offline (${s.audit.counts.records.toLocaleString('en-US')})`,
      items: s.audit.counts.records,
      seconds: s.audit.verifySeconds,
      floor: {
        label: `${(s.audit.counts.signatures / s.audit.counts.records).toFixed(2)} × (1 Ed25519 verify + 1 SHA-256)`,
        usPerItem: (s.audit.counts.signatures * verifyUs) / s.audit.counts.records,
      },
    },
    { what: '17. the broker step, whole', items: 1, seconds: s.broker.seconds },
    {
      what: `18. the MCP gateway step, per call (${s.gateway.calls} calls, servers started)`,
      items: s.gateway.calls,
      seconds: s.gateway.seconds,
    },
  ];
  const rows: TableRow[] = phases.map((p) => {
    const usPerOp = (p.seconds * 1e6) / p.items;
    if (p.floor === undefined) return { what: p.what, usPerOp, baseline: 'no floor' };
    return {
      what: p.what,
      usPerOp,
      baseline: p.floor.label,
      baselineUsPerOp: p.floor.usPerItem,
      ratio: usPerOp / p.floor.usPerItem,
    };
  });
  const floorSeconds = phases.reduce(
    (sum, p) => sum + (p.floor === undefined ? 0 : (p.floor.usPerItem * p.items) / 1e6),
    0,
  );
  rows.push({
    what: `the whole scenario, end to end (${s.agents.toLocaleString('en-US')} agents; revocation → enforcement ${s.revocationToEnforcement.enforcementPointMs.toFixed(1)} ms at the enforcement point, ${s.revocationToEnforcement.gatewayMs.toFixed(1)} ms through the gateway)`,
    usPerOp: totalSeconds,
    baseline: 'sum of the floors of the phases that have one',
    baselineUsPerOp: floorSeconds,
    ratio: totalSeconds / floorSeconds,
    unit: 's',
  });
  return rows;
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
