import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Clock } from '../../core/index.js';
import { internal, startSiblingWorker } from '../../core/internal.js';
import { constraintsToAttributes } from '../../credentials/index.js';
import { AuditLog, verifyTrailExport } from '../../audit/index.js';
import { filesystemServerCommand, refundServerCommand } from '../../mcp/internal.js';
import { openHome, type Home } from '../home.js';
import { LeaseState } from '../../broker/index.js';
import { DEFAULT_AUTHORITY } from '../chains.js';
import { startProgress, type Progress } from '../progress.js';
import { enforcersOf, homeLogKey } from './audit.js';
import { exportLogLines } from './demo-audit.js';
import { constraints, gatewayFiles, type Outcome } from './demo-gateway.js';
import { denyEntry, recordRevocation, revocationSigner } from './revoke.js';
import { secondsSince, wallMs } from './demo-time.js';
import type {
  OperatorMessage,
  SwarmInput,
  SwarmMessage,
  SwarmResult,
} from './demo-swarm-protocol.js';

// The last step of `mandate up --demo`: the swarm through the running node. Everything before it
// runs the library in process; here the agents live in a home of their own (`<demo>/swarm`), in a
// worker thread of their own (demo-swarm-worker.ts), and reach the node only over TCP and secure
// channels — enrollment with one-time tickets at its authority service, every tool call through
// its MCP gateway service to real MCP servers — while this thread is the operator beside the node
// on its home, doing what `mandate ticket create`, `mandate revoke` and `mandate audit checkpoint`
// do. What the node decided is then verified offline from its log.

/** The gateway configuration the node's gateway service reads (written before the node starts). */
const GATEWAY_CONFIG_FILE = 'node-gateway.json';
/** The refund desk of the node's gateway: a ledger of its own, apart from step 18's. */
const LEDGER_FILE = 'node-refund-ledger.jsonl';
/** Sub-agents (each delegated by one agent), at most. */
const MAX_SUB_AGENTS = 50;
/** Refunds within the cap, by as many agents. */
const REFUNDS = 3;
const REFUND_AMOUNT = 60;
const REFUND_CAP = 100;
/** Agents that lease a JWT from the node's broker, at most (besides the one revoked). */
const MAX_LEASES = 100;
/** Their audience: step 17's bundle policy `lease-payment-tokens` permits `jwt/payments`. */
const LEASE_AUDIENCE = 'payments';
/** The one scope the human may pass on (`secret_scopes`), and the agents ask for. */
const LEASE_SCOPE = 'refunds';
/** How long the revoked agent's lease may take to end at the broker (its timers tick each second). */
const LEASE_END_TIMEOUT_MS = 10_000;
/** How often the operator looks at that lease meanwhile. */
const LEASE_POLL_MS = 10;
/** How long the swarm's thread may take to end once it has answered. */
const WORKER_EXIT_MS = 5_000;
/** How long a live ticket may wait for its redemption. */
const TICKET_TTL_SECONDS = 600;

/** What the node's gateway service serves in the demo: step 18's folder and a refund desk. */
export function writeNodeGatewayConfig(demoDir: string): string {
  const file = join(demoDir, GATEWAY_CONFIG_FILE);
  const ledger = join(demoDir, LEDGER_FILE);
  writeFileSync(ledger, '');
  writeFileSync(
    file,
    JSON.stringify({
      mcpServers: {
        fs: filesystemServerCommand([gatewayFiles(demoDir).scratch]),
        shop: refundServerCommand(ledger),
      },
    }),
  );
  return file;
}

export interface NodeSwarmSummary extends Omit<
  SwarmResult,
  'enrollment' | 'calls' | 'refunds' | 'revocation'
> {
  readonly revocation: SwarmResult['revocation'] & {
    /** From the revocation's commit until its lease was seen ended in the node's home (polled). */
    readonly leaseEndedMs: number;
  };
  readonly seconds: number;
  /** Tickets redeemed at the node's authority service, each over its own secure channel. */
  readonly enrollment: SwarmResult['enrollment'] & { readonly perSecond: number };
  /** Tool calls through the node's gateway: signed, decided, logged, executed by the upstream. */
  readonly calls: SwarmResult['calls'] & { readonly perSecond: number };
  readonly refunds: { readonly executed: number; readonly ledger: number };
  readonly audit: { readonly records: number; readonly verifiedRecords: number };
}

/**
 * Polls the node's home until lease `id` is no longer active; resolves with the wall-clock time
 * it was first seen ended, or undefined after {@link LEASE_END_TIMEOUT_MS}.
 */
async function leaseEnded(home: Home, id: string): Promise<number | undefined> {
  const deadline = wallMs() + LEASE_END_TIMEOUT_MS;
  while (wallMs() < deadline) {
    const lease = await home.store.brokerLeases.get(id);
    if (lease !== undefined && lease.state !== LeaseState.active) return wallMs();
    await new Promise((resolve) => setTimeout(resolve, LEASE_POLL_MS));
  }
  return undefined;
}

/** Step 19 stopped by a signal (`signal`) before it finished: not a failure of the node. */
export class SwarmInterrupted extends Error {
  constructor(readonly signal: string) {
    super(`step 19 interrupted by ${signal}`);
  }
}

/** A check of step 19 that did not hold: the node (or the swarm) did not do what it must. */
const failed = (message: string) => internal('ERR_DEMO_CHECK_FAILED', `step 19: ${message}`);

/**
 * Step 19 of `mandate up --demo`: `agents` agents (and a human who delegates to them) enroll at
 * the node at `route` with one-time tickets the operator made here, each over a secure channel to
 * the node's authority service; the human delegates to every agent, some agents to sub-agents;
 * every agent calls tools through the node's MCP gateway service over its own secure channel
 * (each call signed by the agent, decided and countersigned by the node, logged, executed by the
 * real MCP servers); a prompt-injected call is denied; the operator revokes one agent mid-run and
 * its very next call, and its sub-agent's, are refused; then the operator checkpoints the node's
 * log and the whole trail verifies offline. The swarm runs in a worker thread of its own
 * (demo-swarm-worker.ts), with its own home (`<demo>/swarm`), sharing only TCP with the node.
 */
export async function runNodeSwarm(options: {
  readonly demoDir: string;
  readonly route: string;
  readonly agents: number;
  readonly clock: Clock;
  readonly say: (text: string) => void;
  readonly showProgress: boolean;
  /** Resolves to stop the swarm early (a signal): the step then rejects with `interrupted`. */
  readonly interrupt?: Promise<string>;
}): Promise<NodeSwarmSummary> {
  const { demoDir, route, clock, say, showProgress } = options;
  const started = process.hrtime.bigint();
  const now = clock.nowSeconds();
  const files = gatewayFiles(demoDir);
  // The operator, beside the running node, on the home it serves.
  const operator = await openHome(demoDir, { clock });
  try {
    const authorityId = (await operator.identities.get(DEFAULT_AUTHORITY)).identity.identifier;
    const authority = operator.authority(DEFAULT_AUTHORITY, route);
    const logKey = await homeLogKey(operator, DEFAULT_AUTHORITY);
    const recordsBefore = await operator.store.auditLog.size();
    say(
      `19. the swarm through the node at ${route}: ${options.agents} agents and a human in ${join(demoDir, 'swarm')}, in a thread of their own, reaching the node over TCP and secure channels only`,
    );
    // The operator's one-time tickets (`mandate ticket create --route`): the human's carries her
    // grant, each agent's its membership.
    const humanTicket = await authority.createTicket(authorityId, {
      attributes: constraintsToAttributes(
        constraints(
          'human=true',
          'tools=read_text_file,list_directory,refund,list_refunds',
          `read_text_file#path=${files.scratch}/**`,
          'refund#amount<=500',
          `secrets=jwt/${LEASE_AUDIENCE}`,
          `secret_scopes=${LEASE_SCOPE}`,
        ),
      ),
      ttlSeconds: TICKET_TTL_SECONDS,
      nowSeconds: now,
    });
    const agentTickets: string[] = [];
    for (let i = 0; i < options.agents; i++)
      agentTickets.push(
        await authority.createTicket(authorityId, {
          attributes: constraintsToAttributes(constraints('agent=true')),
          ttlSeconds: TICKET_TTL_SECONDS,
          nowSeconds: now,
        }),
      );
    const input: SwarmInput = {
      demoDir,
      route,
      humanTicket,
      agentTickets,
      subAgents: Math.min(MAX_SUB_AGENTS, Math.floor(options.agents / 2)),
      refunds: REFUNDS,
      refundAmount: REFUND_AMOUNT,
      refundCap: REFUND_CAP,
      leases: Math.min(MAX_LEASES, options.agents),
      leaseAudience: LEASE_AUDIENCE,
      leaseScope: LEASE_SCOPE,
    };
    // `mandate revoke IDENTIFIER` on the node's home, when the swarm is halfway; from its commit
    // the operator watches the agent's lease (`mandate lease list`) until the broker ends it.
    let leaseEndedMs: Promise<number | undefined> = Promise.resolve(undefined);
    const revoke = async (identifier: string, leaseId: string): Promise<number> => {
      const at = clock.nowSeconds();
      await recordRevocation(
        operator,
        await revocationSigner(operator),
        denyEntry('identity', identifier, at, 'demo: revoked mid-run'),
        at,
      );
      const committed = wallMs();
      // (Never left rejected: an interrupted step closes the home under it.)
      leaseEndedMs = leaseEnded(operator, leaseId).then(
        (ended) => (ended === undefined ? undefined : ended - committed),
        () => undefined,
      );
      return committed;
    };
    const result = await runSwarmWorker(input, {
      say,
      showProgress,
      revoke,
      ...(options.interrupt === undefined ? {} : { interrupt: options.interrupt }),
    });

    // The revoked agent's lease, ended by the revocation's cascade at the broker unasked.
    const leaseEndMs = await leaseEndedMs;
    const line = (what: string, outcome: Outcome) => {
      say(`    ${what.padEnd(52)} → ${outcome}`);
    };
    const ledger = readFileSync(join(demoDir, LEDGER_FILE), 'utf8').split('\n').filter(Boolean);
    line('injected: "refund 900 on order 7731"', result.injected.refund);
    line('injected: "read ../../private/payroll.csv"', result.injected.read);
    line(
      `${REFUNDS} refunds of ${REFUND_AMOUNT} (cap ${REFUND_CAP})`,
      `${result.refunds.executed} executed, ${ledger.length} in the desk's ledger`,
    );
    line('live-agent-0 before the revocation', result.revocation.before);
    line('live-agent-0 revoked mid-run: its next call', result.revocation.nextCall);
    line("its sub-agent's next call (the cascade)", result.revocation.subAgentNextCall);
    line(
      "its JWT lease from the node's broker",
      leaseEndMs === undefined
        ? 'STILL ACTIVE'
        : `revoked ${leaseEndMs.toFixed(0)} ms after the commit`,
    );
    if (!result.injected.refund.startsWith('deny ') || !result.injected.read.startsWith('deny '))
      throw failed('the node did not deny the injected calls');
    const stopped = (outcome: Outcome) =>
      outcome.startsWith('refused ') || outcome.startsWith('closed ');
    if (
      !stopped(result.revocation.nextCall) ||
      (result.subAgents > 0 && !stopped(result.revocation.subAgentNextCall))
    )
      throw failed('the revocation did not hold at the node');
    if (leaseEndMs === undefined) throw failed("the revoked agent's lease did not end");
    if (result.refunds.executed !== REFUNDS || ledger.length !== REFUNDS)
      throw failed('the refunds within the cap were not all executed');

    // The operator checkpoints the node's log (`mandate audit checkpoint`) and verifies it
    // offline, whole: the node's countersigned decisions, the revocation, the earlier steps.
    const log = await AuditLog.open({ repository: operator.store.auditLog, origin: logKey.origin });
    let note: string;
    try {
      note = await log.checkpoint([logKey.signer()]);
    } finally {
      await log.close();
    }
    const size = await operator.store.auditLog.size();
    const verdict = verifyTrailExport({
      text: `${(await exportLogLines(operator, size)).join('\n')}\n`,
      checkpoint: note,
      verifiers: [logKey.verifier],
      authorities: await operator.trustedAuthorities(),
      // The node's gateway countersigns as the authority; step 18's gateway as `mcp-gateway`.
      enforcers: await enforcersOf(operator, [DEFAULT_AUTHORITY, 'mcp-gateway'], DEFAULT_AUTHORITY),
    });
    if (!verdict.ok)
      throw failed(
        `the node's log did not verify: ${verdict.problem.code} ${verdict.problem.message}`,
      );
    const records = size - recordsBefore;
    say(
      `    ${records} records the node wrote (signed invocations, countersigned decisions, outcomes, the revocation); the whole log (${verdict.summary.records} records) checkpointed by the operator and verified offline → ok`,
    );
    const total = secondsSince(started);
    say(`    (step 19 took ${total.toFixed(2)} s)`);
    return {
      ...result,
      seconds: total,
      enrollment: {
        ...result.enrollment,
        perSecond: Math.round(result.enrollment.count / result.enrollment.seconds),
      },
      calls: {
        ...result.calls,
        perSecond: Math.round(result.calls.count / result.calls.seconds),
      },
      refunds: { executed: result.refunds.executed, ledger: ledger.length },
      revocation: { ...result.revocation, leaseEndedMs: leaseEndMs },
      audit: { records, verifiedRecords: verdict.summary.records },
    };
  } finally {
    operator.close();
  }
}

/**
 * Runs the swarm in its worker thread: prints what it says, draws its progress, revokes when it
 * asks (answering with the commit's wall-clock time), and resolves with its result; a failure
 * in the worker rejects, and the worker is ended either way.
 */
async function runSwarmWorker(
  input: SwarmInput,
  host: {
    readonly say: (text: string) => void;
    readonly showProgress: boolean;
    readonly revoke: (identifier: string, leaseId: string) => Promise<number>;
    readonly interrupt?: Promise<string>;
  },
): Promise<SwarmResult> {
  const worker = startSiblingWorker(import.meta.url, 'demo-swarm-worker', { workerData: input });
  const bars = new Map<string, Progress>();
  let interrupted = false;
  try {
    return await new Promise<SwarmResult>((resolve, reject) => {
      void host.interrupt?.then((signal) => {
        reject(new SwarmInterrupted(signal));
      });
      worker.on('error', reject);
      worker.on('exit', (code) => {
        reject(failed(`the swarm's thread exited (${code}) before it finished`));
      });
      worker.on('message', (message: SwarmMessage) => {
        switch (message.type) {
          case 'say':
            host.say(message.text);
            break;
          case 'progress': {
            let bar = bars.get(message.label);
            if (bar === undefined) {
              bar = startProgress(`   ${message.label}`, message.total, host.showProgress);
              bars.set(message.label, bar);
            }
            bar.update(message.done);
            if (message.done === message.total) bar.stop();
            break;
          }
          case 'revoke':
            host.revoke(message.identifier, message.leaseId).then(
              (atMs) => {
                worker.postMessage({ type: 'revoked', atMs } satisfies OperatorMessage);
              },
              (error: unknown) => {
                worker.postMessage({
                  type: 'revoke-failed',
                  message: error instanceof Error ? error.message : String(error),
                } satisfies OperatorMessage);
              },
            );
            break;
          case 'done':
            resolve(message.result);
            break;
          case 'failed':
            reject(failed(`the swarm failed: ${message.message}`));
            break;
        }
      });
    });
  } catch (error) {
    interrupted = error instanceof SwarmInterrupted;
    throw error;
  } finally {
    for (const bar of bars.values()) bar.stop();
    // A thread that finished ends by itself (its profile, with --cpu-prof, written); one that
    // failed or hangs is ended.
    const exited = new Promise((resolve) => worker.once('exit', resolve));
    const timer = setTimeout(() => void worker.terminate(), WORKER_EXIT_MS);
    if (interrupted) void worker.terminate();
    await exited;
    clearTimeout(timer);
  }
}
