// The real MCP servers behind the gateway (docs/spec/mcp.md, "Upstreams"): stdio servers spawned
// and supervised (restart with backoff), streamable-HTTP servers; their tool lists; calls with a
// timeout, every failure a typed error for the caller. The MCP SDK's Client does the protocol.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  getDefaultEnvironment,
  StdioClientTransport,
} from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  CallToolResultSchema,
  ErrorCode as RpcErrorCode,
  McpError,
  ResultSchema,
  ToolListChangedNotificationSchema,
  type CallToolResult,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import { isMandateError, type Logger } from '../core/index.js';
import {
  invalid,
  silentLogger,
  timeout as timedOut,
  unavailable,
  withJitter,
} from '../core/internal.js';
import type { RestartConfig, UpstreamConfig } from './config.js';

/** A tool as one upstream lists it, with the name agents see (its prefix applied). */
export interface UpstreamTool {
  /** The name agents and policies use: `prefix + upstreamName`. */
  readonly name: string;
  /** The name the upstream knows it by. */
  readonly upstreamName: string;
  /** The upstream's name in the configuration: the catalog's `server`. */
  readonly server: string;
  readonly tool: Tool;
}

/** Options of {@link Upstream}. */
export interface UpstreamOptions {
  readonly restart: RestartConfig;
  readonly logger?: Logger;
  /** [0, 1) for the restart jitter (the crypto layer's `randomUnit`). */
  readonly random: () => number;
  /** Called when the upstream's tool list changed (restart, `tools/list_changed`). */
  readonly onToolsChanged?: () => void;
}

/** How long a connection must have lasted for the restart backoff to start over. */
const STABLE_AFTER_MS = 30_000;
/** Most tools taken from one upstream (the catalog bounds the whole at 10,000). */
const MAX_TOOLS_PER_UPSTREAM = 1000;
/** Most pages of `tools/list` followed. */
const MAX_LIST_PAGES = 32;
const CONNECT_TIMEOUT_MS = 20_000;

/** `idle` before `start`, `up` serving, `down` waiting for a restart, `closed` for good. */
export type UpstreamState = 'idle' | 'starting' | 'up' | 'down' | 'closed';

/**
 * One upstream MCP server. `start` connects (a stdio server is spawned with exactly the
 * configured environment plus the SDK's safe defaults) and lists its tools; when a stdio server
 * exits, it is started again after a backoff (exponential with jitter, `restart`), and the calls
 * in flight fail with `ERR_MCP_UPSTREAM_CLOSED`. A call waits at most its timeout
 * (`ERR_MCP_UPSTREAM_TIMEOUT`; the upstream is told to cancel); a reply that is not a tool result
 * is `ERR_MCP_UPSTREAM_INVALID`; a JSON-RPC error of the upstream is `ERR_MCP_UPSTREAM_ERROR`;
 * while it is down, `ERR_MCP_UPSTREAM_UNAVAILABLE`.
 */
export class Upstream {
  readonly config: UpstreamConfig;
  readonly #options: UpstreamOptions;
  readonly #logger: Logger;
  #client: Client | undefined;
  #tools: readonly UpstreamTool[] = [];
  #state: UpstreamState = 'idle';
  #attempt = 0;
  #connectedAt = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #starting: Promise<void> | undefined;
  /** Restarts so far (for health and tests). */
  restarts = 0;

  constructor(config: UpstreamConfig, options: UpstreamOptions) {
    this.config = config;
    this.#options = options;
    this.#logger = options.logger ?? silentLogger;
  }

  get name(): string {
    return this.config.name;
  }

  get state(): UpstreamState {
    return this.#state;
  }

  /** The tools as last listed (none while it is down). */
  get tools(): readonly UpstreamTool[] {
    return this.#state === 'up' ? this.#tools : [];
  }

  /** The PID of a running stdio server (tests inject faults with it). */
  get pid(): number | undefined {
    const transport = (this.#client as { transport?: unknown } | undefined)?.transport;
    return transport instanceof StdioClientTransport ? (transport.pid ?? undefined) : undefined;
  }

  /**
   * Connects and lists the tools. Rejects on the first failure (`ERR_MCP_UPSTREAM_UNAVAILABLE`);
   * later failures of a stdio server are restarted. A leased upstream (`mandate.lease`) is given
   * its credential in `config` by the gateway (leases.ts `withCredential`).
   */
  start(): Promise<void> {
    this.#starting ??= this.#connect().finally(() => {
      this.#starting = undefined;
    });
    return this.#starting;
  }

  #transport(): Transport {
    const c = this.config;
    if (c.kind === 'stdio') {
      const transport = new StdioClientTransport({
        command: c.command,
        args: [...c.args],
        // The SDK's default inherited variables (PATH, HOME, …) plus the configured ones: never the
        // gateway's whole environment (it may hold the vault passphrase).
        env: { ...getDefaultEnvironment(), ...c.env },
        ...(c.cwd === undefined ? {} : { cwd: c.cwd }),
        stderr: 'pipe',
      });
      return transport;
    }
    return new StreamableHTTPClientTransport(c.url, {
      requestInit: { headers: { ...c.headers } },
    });
  }

  async #connect(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'starting';
    const client = new Client({ name: 'mandate-gateway', version: '1' }, { capabilities: {} });
    const transport = this.#transport();
    let connected = false;
    client.onclose = () => {
      if (this.#client !== client) return;
      this.#client = undefined;
      this.#tools = [];
      if (this.#state === 'closed') return;
      this.#state = 'down';
      if (connected) {
        this.#logger.warn('mcp upstream closed', { upstream: this.name });
        this.#options.onToolsChanged?.();
      }
      this.#scheduleRestart();
    };
    client.onerror = (error) => {
      this.#logger.debug('mcp upstream error', { upstream: this.name, error: error.message });
    };
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      void this.#refreshTools(client);
    });
    this.#client = client;
    try {
      await client.connect(transport, { timeout: CONNECT_TIMEOUT_MS });
      if (transport instanceof StdioClientTransport)
        drainStderr(transport, this.#logger, this.name);
      this.#tools = await listAll(client, this.config);
      connected = true;
      this.#connectedAt = Date.now();
      this.#state = 'up';
      this.#logger.info('mcp upstream up', { upstream: this.name, tools: this.#tools.length });
      this.#options.onToolsChanged?.();
    } catch (error) {
      if (this.#client === client) this.#client = undefined;
      await client.close().catch(() => undefined);
      if ((this.#state as UpstreamState) !== 'closed') {
        this.#state = 'down';
        this.#scheduleRestart();
      }
      if (isMandateError(error)) throw error;
      throw unavailable(
        'ERR_MCP_UPSTREAM_UNAVAILABLE',
        `upstream \`${this.name}\` did not start: ${brief(error)}`,
        error,
      );
    }
  }

  #scheduleRestart(): void {
    if (this.#state === 'closed' || this.#timer !== undefined) return;
    if (Date.now() - this.#connectedAt > STABLE_AFTER_MS) this.#attempt = 0;
    const { initialDelayMs, maxDelayMs } = this.#options.restart;
    const delay = Math.min(maxDelayMs, initialDelayMs * 2 ** Math.min(this.#attempt, 30));
    this.#attempt++;
    const waitMs = withJitter(delay, this.#options.random);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#state === 'closed') return;
      this.restarts++;
      this.start().catch((error: unknown) => {
        this.#logger.warn('mcp upstream restart failed', {
          upstream: this.name,
          reason: isMandateError(error) ? error.code : 'error',
        });
      });
    }, waitMs);
    this.#timer.unref();
  }

  async #refreshTools(client: Client): Promise<void> {
    try {
      const tools = await listAll(client, this.config);
      if (this.#client !== client) return;
      this.#tools = tools;
      this.#options.onToolsChanged?.();
    } catch (error) {
      this.#logger.warn('mcp upstream tools not refreshed', {
        upstream: this.name,
        reason: brief(error),
      });
    }
  }

  /** Calls one tool by its upstream name; see the class for the errors. */
  async callTool(
    upstreamName: string,
    args: Record<string, unknown>,
    options: {
      readonly signal?: AbortSignal;
      readonly timeoutMs?: number;
      /** The request's `_meta` (the gateway's trace context: `traceparent`, `tracestate`). */
      readonly meta?: Record<string, unknown>;
    } = {},
  ): Promise<CallToolResult> {
    const client = this.#client;
    if (client === undefined || this.#state !== 'up')
      throw unavailable(
        'ERR_MCP_UPSTREAM_UNAVAILABLE',
        `upstream \`${this.name}\` is not running (${this.#state})`,
      );
    const timeoutMs = options.timeoutMs ?? this.config.mandate.timeoutMs;
    let result: unknown;
    try {
      result = await client.request(
        {
          method: 'tools/call',
          params: {
            name: upstreamName,
            arguments: args,
            ...(options.meta === undefined ? {} : { _meta: options.meta }),
          },
        },
        // Read loosely, checked below: the SDK's tool-result schema defaults a missing `content`.
        ResultSchema,
        {
          timeout: timeoutMs,
          ...(options.signal === undefined ? {} : { signal: options.signal }),
        },
      );
    } catch (error) {
      // The SDK reports an abort as a timeout (McpError RequestTimeout): tell them apart here.
      if (options.signal?.aborted === true)
        throw unavailable('ERR_MCP_CALL_CANCELLED', 'the call was cancelled', error);
      throw upstreamFailure(this.name, error, timeoutMs);
    }
    // A tool result names its `content` (MCP 2025-06-18): `{"foo":1}` is not one, and is not
    // forwarded as `{"content":[],"foo":1}`.
    const parsed = CallToolResultSchema.safeParse(result);
    if (
      typeof result !== 'object' ||
      result === null ||
      !Array.isArray((result as { content?: unknown }).content) ||
      !parsed.success
    )
      throw invalid(
        'ERR_MCP_UPSTREAM_INVALID',
        `upstream \`${this.name}\` answered with something that is not a tool result`,
      );
    return parsed.data;
  }

  /** Stops the upstream (a stdio server is terminated) and any restart. */
  async close(): Promise<void> {
    this.#state = 'closed';
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const client = this.#client;
    this.#client = undefined;
    // An HTTP session is ended at the server too (DELETE), not just dropped.
    const transport = client?.transport;
    if (transport instanceof StreamableHTTPClientTransport)
      await transport.terminateSession().catch(() => undefined);
    await client?.close().catch(() => undefined);
  }
}

function upstreamFailure(name: string, error: unknown, timeoutMs: number): Error {
  if (isMandateError(error)) return error;
  if (error instanceof McpError) {
    if (error.code === (RpcErrorCode.RequestTimeout as number))
      return timedOut(
        'ERR_MCP_UPSTREAM_TIMEOUT',
        `upstream \`${name}\` did not answer within ${timeoutMs} ms`,
        error,
      );
    if (error.code === (RpcErrorCode.ConnectionClosed as number))
      return unavailable(
        'ERR_MCP_UPSTREAM_CLOSED',
        `upstream \`${name}\` closed during the call`,
        error,
      );
    return invalid(
      'ERR_MCP_UPSTREAM_ERROR',
      `upstream \`${name}\` refused the call: ${brief(error)}`,
      error,
    );
  }
  // A reply that the result schema refuses (zod), or anything else unexpected.
  return invalid(
    'ERR_MCP_UPSTREAM_INVALID',
    `upstream \`${name}\` answered with something that is not a tool result`,
    error,
  );
}

/** An upstream's words, bounded and on one line (they reach the agent). */
export function brief(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  const line = text.replace(/[\r\n\t]+/g, ' ').replace(/[^\x20-\x7e]/g, '?');
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

async function listAll(client: Client, config: UpstreamConfig): Promise<UpstreamTool[]> {
  const out: UpstreamTool[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < MAX_LIST_PAGES; page++) {
    const result = await client.listTools(cursor === undefined ? {} : { cursor }, {
      timeout: config.mandate.timeoutMs,
    });
    for (const tool of result.tools) {
      if (out.length >= MAX_TOOLS_PER_UPSTREAM)
        throw invalid(
          'ERR_MCP_UPSTREAM_INVALID',
          `upstream \`${config.name}\` lists more than ${MAX_TOOLS_PER_UPSTREAM} tools`,
        );
      out.push({
        name: `${config.mandate.prefix}${tool.name}`,
        upstreamName: tool.name,
        server: config.name,
        tool,
      });
    }
    cursor = result.nextCursor;
    if (cursor === undefined) return out;
  }
  throw invalid(
    'ERR_MCP_UPSTREAM_INVALID',
    `upstream \`${config.name}\` pages its tool list more than ${MAX_LIST_PAGES} times`,
  );
}

/** Reads a stdio server's stderr so it never blocks on a full pipe; lines go to the debug log. */
function drainStderr(transport: StdioClientTransport, logger: Logger, name: string): void {
  const stream = transport.stderr as NodeJS.ReadableStream | null;
  if (stream === null) return;
  stream.on('data', (chunk: Buffer | string) => {
    const text = typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    logger.debug('mcp upstream stderr', { upstream: name, text: text.slice(0, 500) });
  });
}
