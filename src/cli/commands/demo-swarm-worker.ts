// The swarm of `mandate up --demo`'s step 19, in a worker thread of its own: its agents live in a
// home of their own and reach the node only over TCP and secure channels (demo-node.ts starts it
// and acts as the operator). Sharing nothing with the node but the loopback connection, the
// swarm's side of every handshake, signature and MCP message runs on the second core.
import { parentPort, workerData } from 'node:worker_threads';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { isMandateError, systemClock } from '../../core/index.js';
import { percentile } from '../../core/internal.js';
import {
  ChainVerifier,
  chainFromCredential,
  delegate,
  parseEnrollmentTicket,
  type VerifiedChain,
} from '../../credentials/index.js';
import type { VerifiedIdentity } from '../../identity/index.js';
import { openSecureChannel, prepareChannelIdentity, TrustPolicies } from '../../channel/index.js';
import { Router, TcpTransport } from '../../routing/index.js';
import { connectMcpChannel } from '../../mcp/index.js';
import { redeemTicketOverChannel, requestLeaseOverChannel } from '../../node/index.js';
import { LeaseKind } from '../../broker/index.js';
import { connectRoute, toListener } from '../node-runtime.js';
import { credentialIssuerOf, openHome } from '../home.js';
import type {
  OperatorMessage,
  SwarmInput,
  SwarmMessage,
  SwarmResult,
} from './demo-swarm-protocol.js';
import { secondsSince, wallMs } from './demo-time.js';
import {
  constraints,
  gatewayFiles,
  INJECTION_MARK,
  outcomeOf,
  READS_PER_AGENT,
  textOf,
  type Outcome,
} from './demo-gateway.js';

/** Enrollments (one secure channel each) in flight at once. */
const ENROLL_CONCURRENCY = 16;
/** Agents with an MCP session open through the node at once. */
const CALL_CONCURRENCY = 32;
/** The delegations' lifetime. */
const DELEGATION_TTL_SECONDS = 3600;

interface Agent {
  readonly name: string;
  readonly identity: VerifiedIdentity;
  readonly primaryKeyId: string;
  chain?: VerifiedChain;
}

/** Runs `work` over `items`, `concurrency` at a time; resolves once all are done. */
async function pool<T>(
  items: readonly T[],
  concurrency: number,
  work: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      await work(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

const port = parentPort;
if (port === null) throw new Error('demo-swarm-worker runs only as a worker thread');
const post = (message: SwarmMessage): void => {
  port.postMessage(message);
};
const say = (text: string): void => {
  post({ type: 'say', text });
};
/** The operator's answer to the one revocation the swarm asks for. */
let revoked: ((message: OperatorMessage) => void) | undefined;
port.on('message', (message: OperatorMessage) => {
  revoked?.(message);
});

// Its last message sent, the thread lets go of its port and ends on its own.
runSwarm(workerData as SwarmInput).then(
  (result) => {
    post({ type: 'done', result });
    port.close();
  },
  (error: unknown) => {
    post({
      type: 'failed',
      message: isMandateError(error)
        ? `${error.code}: ${error.message}`
        : error instanceof Error
          ? error.message
          : String(error),
    });
    port.close();
  },
);

async function runSwarm(input: SwarmInput): Promise<SwarmResult> {
  const clock = systemClock;
  const now = clock.nowSeconds();
  const { route } = input;
  const files = gatewayFiles(input.demoDir);
  const cleanups: (() => Promise<unknown>)[] = [];
  try {
    // The swarm's own home: its identities and keys never touch the node's.
    const swarmDir = join(input.demoDir, 'swarm');
    rmSync(swarmDir, { recursive: true, force: true });
    const swarm = await openHome(swarmDir, { clock });
    cleanups.push(() => {
      swarm.close();
      return Promise.resolve();
    });
    const human = await swarm.identities.create({ name: 'human-lee' });
    const count = input.agentTickets.length;
    await swarm.provision({ count, namePrefix: 'live-agent-' });
    if (input.subAgents > 0)
      await swarm.provision({ count: input.subAgents, namePrefix: 'live-sub-' });
    const local = async (name: string): Promise<Agent> => {
      const known = await swarm.identities.get(name);
      return { name, identity: known.identity, primaryKeyId: known.primaryKeyId! };
    };
    const humanAgent: Agent = {
      name: 'human-lee',
      identity: human.identity,
      primaryKeyId: human.primaryKeyId,
    };
    const agents = await Promise.all(
      Array.from({ length: count }, (_, i) => local(`live-agent-${i}`)),
    );
    const subs = await Promise.all(
      Array.from({ length: input.subAgents }, (_, i) => local(`live-sub-${i}`)),
    );

    const router = new Router();
    cleanups.push(() => router.close());
    const transport = new TcpTransport(router);
    cleanups.push(() => transport.close());
    // The ticket brings the authority: the only identity the swarm's channels to the node trust.
    const authority = parseEnrollmentTicket(input.humanTicket).authority;
    const authorityId = authority.identifier;
    const authorities = new Map([[authorityId, authority]]);
    const denySet = await swarm.denySet(now);
    const channelIdentity = (who: Agent, chains?: readonly Uint8Array[]) =>
      prepareChannelIdentity(swarm.vault, {
        identity: who.identity,
        primaryKeyId: who.primaryKeyId,
        ...(chains === undefined ? {} : { chains }),
        nowSeconds: clock.nowSeconds(),
      });
    // Every secure channel to the node goes through here: counted, each timed, and the time with
    // at least one handshake in flight summed (handshakes per second of that time).
    let handshakes = 0;
    let handshakeSeconds = 0;
    let inFlight = 0;
    let busySince = 0n;
    let busySeconds = 0;
    const handshake = async <T>(open: () => Promise<T>): Promise<T> => {
      const t0 = process.hrtime.bigint();
      if (inFlight++ === 0) busySince = t0;
      try {
        const channel = await open();
        handshakes++;
        handshakeSeconds += secondsSince(t0);
        return channel;
      } finally {
        if (--inFlight === 0) busySeconds += secondsSince(busySince);
      }
    };

    // Enrollment at the node's authority service, one secure channel per redemption.
    const redeem = async (who: Agent, text: string): Promise<Uint8Array> => {
      const ticket = parseEnrollmentTicket(text);
      const prepared = await channelIdentity(who);
      const channel = await handshake(() =>
        openSecureChannel(router, toListener(connectRoute(transport, route)), {
          ...prepared,
          verify: {
            authorities,
            knownIdentities: authorities,
            trustPolicy: TrustPolicies.identifier(authorityId),
            denySet,
          },
          clock,
        }),
      );
      try {
        const redeemed = await redeemTicketOverChannel(router, channel, ticket.code, {
          authority: ticket.authority,
          subject: who.identity,
          clock,
        });
        return redeemed.credential;
      } finally {
        await channel.close();
      }
    };
    let t = process.hrtime.bigint();
    const humanCredential = await redeem(humanAgent, input.humanTicket);
    let enrolledCount = 0;
    await pool(agents, ENROLL_CONCURRENCY, async (agent, i) => {
      await redeem(agent, input.agentTickets[i]!);
      post({ type: 'progress', label: 'enrolled', done: ++enrolledCount, total: count });
    });
    const enrollSeconds = secondsSince(t);
    const enrolled = count + 1;
    say(
      `    ${enrolled} one-time tickets redeemed at the node's authority service in ${enrollSeconds.toFixed(2)} s (${Math.round(enrolled / enrollSeconds)}/s), each over its own secure channel`,
    );

    // Delegation, agent side: human-lee → every agent (reads of the tickets, refunds ≤ the cap)
    // → a sub-agent for some of them (reads only).
    const verifier = new ChainVerifier({ authorities, denySet });
    const verify = (bytes: Uint8Array, who: Agent): VerifiedChain =>
      verifier.verify(bytes, { nowSeconds: now, presenter: who.identity.identifier });
    const humanChain = verify(chainFromCredential(humanCredential, human.identity), humanAgent);
    const humanIssuer = await credentialIssuerOf(swarm, human.identity);
    for (const agent of agents)
      agent.chain = verify(
        await delegate(swarm.vault, humanIssuer, humanChain, {
          nowSeconds: now,
          subject: agent.identity,
          constraints: constraints(
            'tools=read_text_file,list_directory,refund',
            `read_text_file#path=${files.tickets}/**`,
            `list_directory#path=${files.tickets}`,
            `refund#amount<=${input.refundCap}`,
            `secrets=jwt/${input.leaseAudience}`,
            `secret_scopes=${input.leaseScope}`,
          ),
          purpose: 'the live swarm: resolve complaint #4471',
          ttlSeconds: DELEGATION_TTL_SECONDS,
        }),
        agent,
      );
    for (const [i, sub] of subs.entries()) {
      const parent = agents[i]!;
      sub.chain = verify(
        await delegate(
          swarm.vault,
          await credentialIssuerOf(swarm, parent.identity),
          parent.chain!,
          {
            nowSeconds: now,
            subject: sub.identity,
            constraints: constraints(
              'tools=read_text_file',
              `read_text_file#path=${files.tickets}/**`,
            ),
            purpose: 'read the ticket for my agent',
            ttlSeconds: DELEGATION_TTL_SECONDS,
          },
        ),
        sub,
      );
    }
    say(
      `    delegation: human-lee → ${agents.length} agents (reads of tickets/, refunds ≤ ${input.refundCap}, JWTs for ${input.leaseAudience}) → ${subs.length} sub-agents (reads only), each link signed by its issuer`,
    );

    // A session through the node's gateway: the agent's own secure channel, the SDK Client over
    // it, every tools/call signed with the agent's key.
    const connect = async (who: Agent): Promise<Client> => {
      const chain = who.chain!.bytes;
      const prepared = await channelIdentity(who, [chain]);
      const issuer = await credentialIssuerOf(swarm, who.identity);
      const mcp = await handshake(() =>
        connectMcpChannel(
          router,
          toListener(connectRoute(transport, route)),
          {
            ...prepared,
            verify: { authorities, trustPolicy: TrustPolicies.identifier(authorityId), denySet },
            clock,
          },
          { signing: { vault: swarm.vault, issuer, chain, clock } },
        ),
      );
      const client = new Client({ name: who.name, version: '1' });
      await client.connect(mcp);
      return client;
    };
    const decisions: Record<string, number> = {};
    const latencies: number[] = [];
    const call = async (
      s: Client,
      name: string,
      args: Record<string, unknown>,
    ): Promise<{ outcome: Outcome; result: CallToolResult }> => {
      const t0 = process.hrtime.bigint();
      const result = (await s.callTool({ name, arguments: args })) as CallToolResult;
      latencies.push(secondsSince(t0) * 1000);
      const outcome = outcomeOf(result);
      decisions[outcome] = (decisions[outcome] ?? 0) + 1;
      return { outcome, result };
    };
    const read = (s: Client, i: number) =>
      call(s, 'read_text_file', {
        path: join(files.tickets, `message-${(i % READS_PER_AGENT) + 1}.txt`),
      });

    // A JWT lease from the node's broker (gate 3): the agent's own secure channel, presenting its
    // chain; the broker decides under the bundle and hands back a short-lived token.
    let leaseSeconds = 0;
    const lease = async (who: Agent): Promise<string> => {
      const t0 = process.hrtime.bigint();
      const prepared = await channelIdentity(who, [who.chain!.bytes]);
      const channel = await handshake(() =>
        openSecureChannel(router, toListener(connectRoute(transport, route)), {
          ...prepared,
          verify: { authorities, trustPolicy: TrustPolicies.identifier(authorityId), denySet },
          clock,
        }),
      );
      try {
        const answer = await requestLeaseOverChannel(router, channel, {
          kind: LeaseKind.jwt,
          resource: input.leaseAudience,
          scope: [input.leaseScope],
        });
        if (typeof answer.value?.['token'] !== 'string')
          throw new Error('the broker answered a JWT lease without a token');
        return answer.lease.id;
      } finally {
        await channel.close();
        leaseSeconds += secondsSince(t0);
      }
    };

    // The one revoked: an agent with a sub-agent, its session kept open through the run.
    const victim = await connect(agents[0]!);
    cleanups.push(() => victim.close());
    const victimSub = subs[0] === undefined ? undefined : await connect(subs[0]);
    if (victimSub !== undefined) cleanups.push(() => victimSub.close());
    const toolsListed = (await victim.listTools()).tools.map((x) => x.name).sort();
    const before = await read(victim, 0);
    if (before.outcome !== 'allow') throw new Error(`the node refused a read: ${before.outcome}`);
    const victimLease = await lease(agents[0]!);

    // After a revocation the node refuses the revoked agent's call, or has already closed its
    // channel (its listener follows the deny-set too): either way nothing of it gets through.
    const afterRevocation = async (s: Client): Promise<Outcome> => {
      try {
        return (await read(s, 1)).outcome;
      } catch (error) {
        const outcome = `closed by the node (${error instanceof Error ? error.message : 'error'})`;
        decisions[outcome] = (decisions[outcome] ?? 0) + 1;
        return outcome;
      }
    };

    // The operator revokes the victim (`mandate revoke` on the node's home) when asked; its very
    // next call, and its sub-agent's, go to the node right after the commit.
    const revoke = async () => {
      const answer = new Promise<OperatorMessage>((resolve) => {
        revoked = resolve;
      });
      post({ type: 'revoke', identifier: agents[0]!.identity.identifier, leaseId: victimLease });
      const message = await answer;
      if (message.type === 'revoke-failed') throw new Error(message.message);
      const next = await afterRevocation(victim);
      const latencyMs = wallMs() - message.atMs;
      const sub = victimSub === undefined ? undefined : await afterRevocation(victimSub);
      return { nextCall: next, subAgentNextCall: sub ?? 'no sub-agent', latencyMs };
    };

    // The routine work: every other agent and sub-agent opens its session and reads two of the
    // ticket's files; the victim is revoked halfway through, calls still in flight.
    const routine = [...agents.slice(1), ...subs.slice(1)];
    const half = Math.floor(routine.length / 2);
    // Leases by agents only, spread over the run.
    const leaseEvery = Math.max(1, Math.floor((agents.length - 1) / Math.max(input.leases, 1)));
    let leased = 0;
    let revocation: ReturnType<typeof revoke> | undefined;
    let done = 0;
    t = process.hrtime.bigint();
    await pool(routine, CALL_CONCURRENCY, async (who, i) => {
      if (i < agents.length - 1 && i % leaseEvery === 0 && leased < input.leases) {
        leased++;
        await lease(who);
      }
      const s = await connect(who);
      try {
        for (let k = 0; k < 2; k++) {
          const r = await read(s, done + k);
          if (r.outcome !== 'allow')
            throw new Error(`the node refused ${who.name}'s read: ${r.outcome}`);
        }
      } finally {
        await s.close();
      }
      post({ type: 'progress', label: 'calls', done: ++done, total: routine.length });
      if (done === half) revocation = revoke();
    });
    const callSeconds = secondsSince(t);
    const routineCalls = routine.length * 2;
    const latenciesRoutine = latencies.slice();
    const revokedResult = await (revocation ?? revoke());

    // A prompt injection, and refunds within the cap, by agents still standing.
    const injectedBy = await connect(agents[1] ?? agents[0]!);
    cleanups.push(() => injectedBy.close());
    const letter = await call(injectedBy, 'read_text_file', { path: files.injection });
    if (!textOf(letter.result).includes(INJECTION_MARK))
      throw new Error('the injected ticket was not read');
    const injectedRefund = await call(injectedBy, 'refund', { order: '7731', amount: 900 });
    const injectedRead = await call(injectedBy, 'read_text_file', {
      path: `${files.tickets}/../../private/payroll.csv`,
    });
    if (textOf(injectedRead.result).includes('salary'))
      throw new Error('a denied read leaked the file');
    let executed = 0;
    for (let i = 0; i < input.refunds; i++) {
      const s = i === 0 ? injectedBy : await connect(agents[(i + 1) % agents.length]!);
      const r = await call(s, 'refund', {
        order: `55${10 + i}`,
        amount: input.refundAmount,
        reason: 'charged twice',
      });
      if (s !== injectedBy) await s.close();
      if (r.outcome === 'allow') executed++;
    }
    say(
      `    ${routineCalls} reads through the node's MCP gateway in ${callSeconds.toFixed(2)} s (${Math.round(routineCalls / callSeconds)} calls/s, p50 ${percentile(latenciesRoutine, 50).toFixed(1)} ms, p99 ${percentile(latenciesRoutine, 99).toFixed(1)} ms per call with ${CALL_CONCURRENCY} agents at once: signed by the agent, decided and countersigned by the node, logged, read by the real server); gate 1 lists ${toolsListed.join(', ')}`,
    );
    return {
      agents: agents.length,
      subAgents: subs.length,
      enrollment: { count: enrolled, seconds: enrollSeconds },
      handshakes: {
        count: handshakes,
        meanMs: (handshakeSeconds * 1000) / Math.max(handshakes, 1),
        perSecond: Math.round(handshakes / Math.max(busySeconds, 1e-9)),
      },
      calls: {
        count: routineCalls,
        seconds: callSeconds,
        p50Ms: percentile(latenciesRoutine, 50),
        p99Ms: percentile(latenciesRoutine, 99),
      },
      toolsListed,
      decisions: Object.fromEntries(
        Object.entries(decisions).sort(([a], [b]) => a.localeCompare(b)),
      ),
      injected: { refund: injectedRefund.outcome, read: injectedRead.outcome },
      refunds: { executed },
      leases: { count: leased + 1, seconds: leaseSeconds },
      revocation: { leaseId: victimLease, before: before.outcome, ...revokedResult },
    };
  } finally {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  }
}
