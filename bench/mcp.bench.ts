// The MCP gateway (issue 13), measured in one run next to baselines of the same run:
// - added latency per tools/call: the SDK Client over a secure channel (in-memory network) through
//   the gateway — signed invocation, gate 2, invocation and countersigned decision appended to an
//   in-memory audit log, the call forwarded, the outcome logged — next to the same Client calling
//   the same stdio server directly (median and p99);
// - calls per second through one gateway with 100 concurrent agents, each with its own channel
//   and chain, next to 100 concurrent loops on one direct client of the same server;
// - memory per connected agent: heap (and RSS) growth per idle MCP session over a secure channel,
//   next to an idle secure channel alone, with many of each (both ends live in this process).
import { availableParallelism as availableCores, loadavg } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import {
  openSecureChannel,
  prepareChannelIdentity,
  TrustPolicies,
  type SecureChannel,
} from '../src/channel/index.js';
import { localAddress, MemoryTransport, Router } from '../src/routing/index.js';
import { median, type TableRow } from './harness.js';
import { FS_POLICIES, mcpWorld, TEST_SERVER_COMMAND } from '../test/helpers/mcp-world.js';

const QUICK = process.env['MANDATE_BENCH_QUICK'] === '1';
const CALLS = QUICK ? 40 : 400;
const WARMUP = QUICK ? 5 : 50;
/** Concurrent agents for the throughput rows, and calls each makes per round. */
const AGENTS = QUICK ? 10 : 100;
const CALLS_PER_AGENT = QUICK ? 5 : 20;
const THROUGHPUT_ROUNDS = QUICK ? 1 : 3;
/** Idle sessions (and, for the baseline, idle channels) the memory rows average over. */
const SESSIONS = QUICK ? 20 : 300;

async function latencies(call: () => Promise<unknown>): Promise<number[]> {
  for (let i = 0; i < WARMUP; i++) await call();
  const out: number[] = [];
  for (let i = 0; i < CALLS; i++) {
    const start = process.hrtime.bigint();
    await call();
    out.push(Number(process.hrtime.bigint() - start) / 1000);
  }
  return out.sort((a, b) => a - b);
}

const at = (sorted: readonly number[], q: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

/** Seconds for `loops` concurrent loops of `each` sequential calls. */
async function concurrently(
  loops: readonly (() => Promise<unknown>)[],
  each: number,
): Promise<number> {
  const start = process.hrtime.bigint();
  await Promise.all(
    loops.map(async (call) => {
      for (let i = 0; i < each; i++) await call();
    }),
  );
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/** A full garbage collection (the flag set at run time; the bench runs without --expose-gc). */
function collect(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

async function settledMemory(gc: () => void): Promise<{ heap: number; rss: number }> {
  for (let i = 0; i < 3; i++) {
    await new Promise((resolve) => setImmediate(resolve));
    gc();
  }
  const m = process.memoryUsage();
  return { heap: m.heapUsed, rss: m.rss };
}

const loadNow = (): string =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(', ');

export async function mcpBenchmarks(): Promise<TableRow[]> {
  const loadStart = loadNow();
  const direct = new Client({ name: 'bench-direct', version: '1' });
  await direct.connect(
    new StdioClientTransport({
      command: TEST_SERVER_COMMAND.command,
      args: [...TEST_SERVER_COMMAND.args, 'faults'],
    }),
  );
  const w = await mcpWorld({
    servers: {
      faults: {
        command: TEST_SERVER_COMMAND.command,
        args: [...TEST_SERVER_COMMAND.args, 'faults'],
      },
    },
    policies: `${FS_POLICIES}\npermit(principal, action, resource in Server::"faults");\n`,
  });
  try {
    const agent = await w.agent('bench', ['tools=echo']);
    const { client } = await w.connect(agent);
    const args = { name: 'echo', arguments: { text: 'hello' } };
    const first = await client.callTool(args);
    if (first.isError === true)
      throw new Error(`the gateway refused the bench call: ${JSON.stringify(first)}`);
    // Interleaved rounds, so both paths see the same machine load.
    const viaGateway: number[] = [];
    const viaDirect: number[] = [];
    for (let round = 0; round < 2; round++) {
      viaDirect.push(...(await latencies(() => direct.callTool(args))));
      viaGateway.push(...(await latencies(() => client.callTool(args))));
    }
    viaGateway.sort((a, b) => a - b);
    viaDirect.sort((a, b) => a - b);
    const rows: TableRow[] = [];
    for (const [name, q] of [
      ['median', 0.5],
      ['p99', 0.99],
    ] as const) {
      const g = at(viaGateway, q);
      const d = at(viaDirect, q);
      rows.push({
        what: `tools/call through the gateway (channel, signed, decided, logged in memory), ${name}`,
        usPerOp: g,
        baseline: `the same call, SDK client → stdio server directly, ${name}`,
        baselineUsPerOp: d,
        ratio: g / d,
        target: `added ${Math.round(g - d).toLocaleString('en-US')} µs`,
      });
    }

    // Throughput: AGENTS agents, each its own identity, chain, router and secure channel, all
    // calling at once; the baseline is as many concurrent loops on the one direct client.
    const crowd = await Promise.all(
      Array.from({ length: AGENTS }, async (_, i) => {
        const party = await w.agent(`crowd-${i}`, ['tools=echo']);
        return (await w.connect(party)).client;
      }),
    );
    const viaCrowd = crowd.map((c) => () => c.callTool(args));
    const viaDirectLoops = crowd.map(() => () => direct.callTool(args));
    await concurrently(viaCrowd, 2);
    await concurrently(viaDirectLoops, 2);
    const total = AGENTS * CALLS_PER_AGENT;
    const perCall: { gateway: number; direct: number }[] = [];
    for (let round = 0; round < THROUGHPUT_ROUNDS; round++) {
      const d = await concurrently(viaDirectLoops, CALLS_PER_AGENT);
      const g = await concurrently(viaCrowd, CALLS_PER_AGENT);
      perCall.push({ gateway: (1e6 * g) / total, direct: (1e6 * d) / total });
    }
    const g = median(perCall.map((p) => p.gateway));
    const d = median(perCall.map((p) => p.direct));
    rows.push({
      what: `tools/call through one gateway, ${AGENTS} agents at once (own channel and chain each), time per call`,
      usPerOp: g,
      baseline: `${AGENTS} concurrent loops on one SDK client → the stdio server directly`,
      baselineUsPerOp: d,
      ratio: median(perCall.map((p) => p.gateway / p.direct)),
      target: `${Math.round(1e6 / g).toLocaleString('en-US')} calls/s (direct: ${Math.round(1e6 / d).toLocaleString('en-US')} calls/s)`,
    });

    // Memory: SESSIONS more agents (made first, so their identities and chains are not counted)
    // with an idle secure channel each, then SESSIONS others with an idle MCP session each.
    const gc = collect();
    const parties = await Promise.all(
      Array.from({ length: 2 * SESSIONS }, (_, i) => w.agent(`idle-${i}`, ['tools=echo'])),
    );
    const channelOnly = parties.slice(0, SESSIONS);
    const withSession = parties.slice(SESSIONS);
    const channels: { channel: SecureChannel; transport: MemoryTransport }[] = [];
    const m0 = await settledMemory(gc);
    for (const party of channelOnly) {
      const router = new Router();
      const transport = new MemoryTransport(router, w.network);
      const channel = await openSecureChannel(
        router,
        [localAddress(transport.connect('gateway')), localAddress('api')],
        {
          ...(await prepareChannelIdentity(w.vault, {
            identity: party.identity,
            primaryKeyId: party.primaryKeyId,
            chains: [party.chain],
            nowSeconds: w.now,
          })),
          verify: {
            authorities: w.authorities,
            trustPolicy: TrustPolicies.identifier(w.gatewayParty.identity.identifier),
          },
          clock: w.clock,
        },
      );
      channels.push({ channel, transport });
    }
    const m1 = await settledMemory(gc);
    const sessionsBefore = w.mcp.sessionCount;
    for (const party of withSession) await w.connect(party);
    const m2 = await settledMemory(gc);
    if (w.mcp.sessionCount - sessionsBefore !== SESSIONS)
      throw new Error('not every idle agent holds a session');
    const kib = (bytes: number): number => bytes / 1024 / SESSIONS;
    rows.push({
      what: `memory per connected agent: an idle MCP session over its secure channel, both ends (heap; RSS ${kib(m2.rss - m1.rss).toFixed(0)} KiB), ${SESSIONS} sessions`,
      usPerOp: kib(m2.heap - m1.heap),
      unit: 'KiB',
      baseline: `an idle secure channel alone, both ends (heap; RSS ${kib(m1.rss - m0.rss).toFixed(0)} KiB)`,
      baselineUsPerOp: kib(m1.heap - m0.heap),
      ratio: (m2.heap - m1.heap) / (m1.heap - m0.heap),
    });
    for (const { channel, transport } of channels) {
      await channel.close();
      await transport.close();
    }
    console.log(
      `load average at the start: ${loadStart}; at the end: ${loadNow()} (${availableCores()} cores)\n`,
    );
    return rows;
  } finally {
    await direct.close();
    await w.close();
  }
}
