// A streamable-HTTP MCP server for gate 3 (the gateway's leased upstreams): every request must
// carry `Authorization: Bearer <the expected secret>` (401 otherwise, before any MCP), sessions are
// stateful so each client connection is its own session, and the tools say who called: `whoami`
// answers the session id and the credential's digest, `leak` echoes the credential, `leak_error`
// fails with it in the error message.
import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import {
  CallToolRequestSchema,
  ErrorCode,
  ListToolsRequestSchema,
  McpError,
} from '@modelcontextprotocol/sdk/types.js';

export interface LeasedHttpServer {
  readonly url: string;
  /** Requests refused for a missing or wrong credential. */
  readonly refused: () => number;
  /** The session ids the server created, in order. */
  readonly sessions: readonly string[];
  /** Session ids the client ended (HTTP DELETE) or whose transport closed. */
  readonly closed: ReadonlySet<string>;
  close(): Promise<void>;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

export async function leasedHttpServer(expected: string): Promise<LeasedHttpServer> {
  const transports = new Map<string, StreamableHTTPServerTransport>();
  const sessions: string[] = [];
  const closed = new Set<string>();
  let refused = 0;
  const newSession = (): StreamableHTTPServerTransport => {
    // eslint-disable-next-line @typescript-eslint/no-deprecated -- a test server with JSON Schema tools, no zod
    const server = new Server(
      { name: 'leased-http', version: '1' },
      { capabilities: { tools: {} } },
    );
    const empty = { type: 'object' as const, properties: {} };
    server.setRequestHandler(ListToolsRequestSchema, () => ({
      tools: [
        { name: 'whoami', description: 'session and credential digest', inputSchema: empty },
        { name: 'leak', description: 'echoes its credential', inputSchema: empty },
        { name: 'leak_error', description: 'fails with its credential', inputSchema: empty },
      ],
    }));
    server.setRequestHandler(CallToolRequestSchema, (request, extra) => {
      const header = String(extra.requestInfo?.headers['authorization'] ?? '');
      const key = header.replace(/^Bearer /, '');
      switch (request.params.name) {
        case 'whoami':
          return {
            content: [
              { type: 'text', text: `session=${extra.sessionId ?? ''} credential=${sha256(key)}` },
            ],
          };
        case 'leak':
          return { content: [{ type: 'text', text: `my header is ${header}` }] };
        default:
          throw new McpError(ErrorCode.InvalidRequest, `rejected ${key}`);
      }
    });
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        sessions.push(id);
        transports.set(id, transport);
      },
    });
    transport.onclose = () => {
      if (transport.sessionId !== undefined) closed.add(transport.sessionId);
    };
    void server.connect(transport);
    return transport;
  };
  const bodyOf = (req: IncomingMessage) =>
    new Promise<unknown>((resolve) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve(text === '' ? undefined : (JSON.parse(text) as unknown));
      });
    });
  const http = createServer((req, res) => {
    void (async () => {
      const body = await bodyOf(req);
      if (req.headers['authorization'] !== `Bearer ${expected}`) {
        refused++;
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"unauthorized"}');
        return;
      }
      const id = req.headers['mcp-session-id'];
      const transport = typeof id === 'string' ? transports.get(id) : newSession();
      if (transport === undefined) {
        res.writeHead(404).end();
        return;
      }
      await transport.handleRequest(req, res, body);
    })();
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const address = http.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  return {
    url: `http://127.0.0.1:${address.port}/mcp`,
    refused: () => refused,
    sessions,
    closed,
    close: async () => {
      for (const t of transports.values()) await t.close().catch(() => undefined);
      http.closeAllConnections();
      await new Promise((resolve) => http.close(resolve));
    },
  };
}
