// The MCP gateway's added latency per tools/call: the SDK Client over a secure channel (in-memory
// network) through the gateway — signed invocation, gate 2, invocation and countersigned decision
// appended to an in-memory audit log, the call forwarded, the outcome logged — next to the same
// Client calling the same stdio server directly, measured in the same run.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { TableRow } from './harness.js';
import { FS_POLICIES, mcpWorld, TEST_SERVER_COMMAND } from '../test/helpers/mcp-world.js';

const QUICK = process.env['MANDATE_BENCH_QUICK'] === '1';
const CALLS = QUICK ? 40 : 400;
const WARMUP = QUICK ? 5 : 50;

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

export async function mcpBenchmarks(): Promise<TableRow[]> {
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
    return rows;
  } finally {
    await direct.close();
    await w.close();
  }
}
