// A stateless streamable-HTTP MCP server (the SDK's StreamableHTTPServerTransport on a local HTTP
// server, port 0) with one tool, `shout` (upper-cases a text), for gateway tests.
import { createServer, type Server as HttpServer } from 'node:http';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import {
  CallToolRequestSchema,
  ListToolsRequestSchema,
  type CallToolRequest,
} from '@modelcontextprotocol/sdk/types.js';

/**
 * Starts the server; resolves with its URL and how to stop it. `onCall` sees every `tools/call`
 * request as it arrived (its `_meta` included) before it is answered.
 */
export async function httpUpstream(
  onCall: (request: CallToolRequest) => void = () => undefined,
): Promise<{ url: string; close: () => Promise<void> }> {
  const http: HttpServer = createServer((req, res) => {
    // eslint-disable-next-line @typescript-eslint/no-deprecated -- a test server with a JSON Schema tool, no zod
    const server = new Server({ name: 'http-test', version: '1' }, { capabilities: { tools: {} } });
    server.setRequestHandler(ListToolsRequestSchema, () => ({
      tools: [
        {
          name: 'shout',
          description: 'upper-case a text',
          inputSchema: {
            type: 'object',
            properties: { text: { type: 'string', maxLength: 100 } },
            required: ['text'],
          },
        },
      ],
    }));
    server.setRequestHandler(CallToolRequestSchema, (request) => {
      onCall(request);
      return {
        content: [{ type: 'text', text: String(request.params.arguments?.['text']).toUpperCase() }],
      };
    });
    // Stateless (no session ids): the SDK's documented `sessionIdGenerator: undefined`, which its
    // option type does not admit under exactOptionalPropertyTypes.
    const stateless = { sessionIdGenerator: undefined } as unknown as ConstructorParameters<
      typeof StreamableHTTPServerTransport
    >[0];
    const transport = new StreamableHTTPServerTransport(stateless);
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      void server
        .connect(transport)
        .then(() =>
          transport.handleRequest(
            req,
            res,
            text === '' ? undefined : (JSON.parse(text) as unknown),
          ),
        );
    });
  });
  // Node closes an idle keep-alive socket after 5 s; on a loaded machine the gateway's next call
  // can go out on it just then (ECONNRESET, a failed call). Keep idle sockets for the test's life.
  http.keepAliveTimeout = 120_000;
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const address = http.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  return {
    url: `http://127.0.0.1:${address.port}/mcp`,
    close: () =>
      new Promise((resolve) =>
        http.close(() => {
          resolve();
        }),
      ),
  };
}
