// An example MCP server over stdio: a shop's refund desk, built on the MCP SDK, that the demo
// (`npm start`, step 18) puts behind the gateway. A standalone program, run as
// `node dist/mcp/examples/refund-server.js [LEDGER]`: it trusts its caller (the gateway decides
// who may refund how much), checks its arguments anyway, and appends every refund it executes to
// LEDGER (one JSON object a line), so whoever runs it can see exactly which calls got through.
import { appendFileSync } from 'node:fs';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import {
  CallToolRequestSchema,
  ListToolsRequestSchema,
  type CallToolResult,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';

/** The largest refund the desk executes at all (in whole currency units). */
const MAX_AMOUNT = 1_000_000;
const ORDER = /^[A-Za-z0-9-]{1,32}$/;

const TOOLS: readonly Tool[] = [
  {
    name: 'refund',
    description: 'refund (part of) an order, in whole currency units',
    inputSchema: {
      type: 'object',
      properties: {
        order: { type: 'string', pattern: ORDER.source },
        amount: { type: 'integer', minimum: 1, maximum: MAX_AMOUNT },
        reason: { type: 'string', maxLength: 200 },
      },
      required: ['order', 'amount'],
      additionalProperties: false,
    },
    annotations: { destructiveHint: true, idempotentHint: false },
  },
  {
    name: 'list_refunds',
    description: 'the refunds this desk executed so far',
    inputSchema: { type: 'object', properties: {}, additionalProperties: false },
    annotations: { readOnlyHint: true },
  },
];

interface Refund {
  readonly id: string;
  readonly order: string;
  readonly amount: number;
  readonly reason?: string;
}

const ledger = process.argv[2];
const refunds: Refund[] = [];

const text = (value: string, isError = false): CallToolResult => ({
  content: [{ type: 'text', text: value }],
  ...(isError ? { isError: true } : {}),
});

function refund(args: Record<string, unknown>): CallToolResult {
  const { order, amount, reason } = args;
  if (typeof order !== 'string' || !ORDER.test(order))
    return text('`order` must be 1–32 of A-Z a-z 0-9 -', true);
  if (typeof amount !== 'number' || !Number.isInteger(amount) || amount < 1 || amount > MAX_AMOUNT)
    return text(`\`amount\` must be an integer from 1 to ${MAX_AMOUNT}`, true);
  if (reason !== undefined && (typeof reason !== 'string' || reason.length > 200))
    return text('`reason` must be text of at most 200 characters', true);
  const done: Refund = {
    id: `r-${refunds.length + 1}`,
    order,
    amount,
    ...(reason === undefined ? {} : { reason }),
  };
  if (ledger !== undefined) appendFileSync(ledger, `${JSON.stringify(done)}\n`);
  refunds.push(done);
  return text(`refunded ${amount} on order ${order} (${done.id})`);
}

// eslint-disable-next-line @typescript-eslint/no-deprecated -- plain JSON Schemas, no zod: the low-level Server
const server = new Server(
  { name: 'mandate-example-refunds', version: '1' },
  { capabilities: { tools: {} } },
);
server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: [...TOOLS] }));
server.setRequestHandler(CallToolRequestSchema, (request) => {
  const args = request.params.arguments ?? {};
  switch (request.params.name) {
    case 'refund':
      return refund(args);
    case 'list_refunds':
      return text(JSON.stringify(refunds));
    default:
      return text(`no tool \`${request.params.name.slice(0, 64)}\``, true);
  }
});
await server.connect(new StdioServerTransport());
