// The example refund server the package ships (the demo's upstream), spoken to by the SDK Client
// over stdio as the gateway speaks to it: its tools, refunds executed and written to the ledger,
// arguments it refuses on its own.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { refundServerCommand } from '../../src/mcp/internal.js';

const clients: Client[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
});

const textOf = (result: unknown): string =>
  (result as CallToolResult).content.map((c) => (c.type === 'text' ? c.text : '')).join('');

describe('the example refund server', () => {
  it('lists its tools, executes refunds into its ledger, and refuses bad arguments itself', async () => {
    const ledger = join(mkdtempSync(join(tmpdir(), 'mandate-refunds-')), 'ledger.jsonl');
    const command = refundServerCommand(ledger);
    const client = new Client({ name: 'test', version: '1' });
    clients.push(client);
    await client.connect(new StdioClientTransport({ ...command, args: [...command.args] }));
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toEqual(['refund', 'list_refunds']);
    expect(tools[0]!.inputSchema).toMatchObject({ required: ['order', 'amount'] });

    expect(
      textOf(await client.callTool({ name: 'refund', arguments: { order: '4471', amount: 60 } })),
    ).toBe('refunded 60 on order 4471 (r-1)');
    await client.callTool({
      name: 'refund',
      arguments: { order: 'A-2', amount: 5, reason: 'charged twice' },
    });
    // Bad arguments (the gateway validates first; the desk checks anyway): nothing executed.
    for (const args of [
      { order: '4471', amount: 0 },
      { order: '4471', amount: 1.5 },
      { order: '../x', amount: 1 },
      { order: '4471', amount: 1, reason: 'x'.repeat(201) },
      { amount: 1 },
    ]) {
      const refused = (await client.callTool({
        name: 'refund',
        arguments: args,
      })) as CallToolResult;
      expect(refused.isError, JSON.stringify(args)).toBe(true);
    }
    expect(
      ((await client.callTool({ name: 'no_such', arguments: {} })) as CallToolResult).isError,
    ).toBe(true);

    const done = [
      { id: 'r-1', order: '4471', amount: 60 },
      { id: 'r-2', order: 'A-2', amount: 5, reason: 'charged twice' },
    ];
    expect(
      JSON.parse(textOf(await client.callTool({ name: 'list_refunds', arguments: {} }))),
    ).toEqual(done);
    const lines = readFileSync(ledger, 'utf8').trim().split('\n');
    expect(lines.map((l) => JSON.parse(l) as unknown)).toEqual(done);
  });
});
