// The MCP gateway (docs/spec/mcp.md): one SDK `Server` per agent session, in front of the real
// MCP servers. `tools/list` is gate 1 for the caller's chain; `tools/call` is gate 2 through the
// enforcement point (the agent's signed invocation and the countersigned decision durable in the
// audit log before anything reaches an upstream); the outcome is logged after.
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import {
  CallToolRequestSchema,
  ListToolsRequestSchema,
  type CallToolResult,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import type { Clock, Logger } from '../core/index.js';
import { isMandateError, systemClock } from '../core/index.js';
import { silentLogger } from '../core/internal.js';
import { bytesEqual } from '../encoding/index.js';
import type { VerifiedChain } from '../credentials/index.js';
import type { BundleSource, Gate, GateDecision, ToolDescriptor } from '../gates/index.js';
import {
  chainHashOf,
  fromBase64Url,
  INVOCATION_RECORD_TYPE,
  isInvocationRecord,
  parseAuditRecord,
  type VerifiedInvocation,
} from '../audit/index.js';
import type { EnforcementPoint } from '../node/index.js';
import { randomUnit } from '../crypto/index.js';
import type { GatewayConfig } from './config.js';
import {
  INVOCATION_META_KEY,
  SESSION_NOTIFICATION,
  type ChannelServerTransport,
  type SessionNotice,
} from './channel-transport.js';
import { catalogOf, mergeUpstreamTools, sameTool, type MergedTools } from './catalog.js';
import { brief, Upstream, type UpstreamTool } from './upstream.js';
import type { ToolCatalog } from '../gates/index.js';

/** Where a tool error carries the gateway's decision (code, lock, approval id; never policies). */
export const DECISION_META_KEY = 'io.mandate/decision';

/** Options of {@link McpGateway.start}. */
export interface McpGatewayOptions {
  readonly config: GatewayConfig;
  /** Gate 1 (the same gate the enforcement point decides with). */
  readonly gate: Gate;
  /** Gate 2, the signed invocations and the audit log. */
  readonly point: EnforcementPoint;
  /** The bundle source the gate reads (its catalog is what the gateway may serve). */
  readonly bundles: BundleSource;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** How often every session's tool list is re-checked for a change (default 1000 ms; 0: never). */
  readonly refreshIntervalMs?: number;
  /** Start even when an upstream cannot be reached yet (it is retried with backoff); default false. */
  readonly tolerateDownUpstreams?: boolean;
}

/** What the gateway's `mcp` decision meta holds. */
export interface GatewayDecisionMeta {
  readonly decision: GateDecision['decision'] | 'refused' | 'failed';
  readonly code: string;
  readonly lock?: string | null;
  readonly approval?: string;
  readonly invocation?: string;
}

interface Session {
  readonly transport: ChannelServerTransport;
  // eslint-disable-next-line @typescript-eslint/no-deprecated -- McpServer's tools/list takes no caller (research/gates.md §1.2): per-agent lists need the low-level Server
  readonly server: Server;
  /** The tool names last listed to this session (undefined: it never listed). */
  listed: string | undefined;
}

const NO_TOOLS: readonly ToolDescriptor[] = [];

/**
 * The gateway. `start` connects the upstreams and merges their tools (`ERR_MCP_TOOL_CLASH` on a
 * name two upstreams offer); `connect` serves one agent session over a channel transport.
 */
export class McpGateway {
  readonly #options: McpGatewayOptions;
  readonly #upstreams: readonly Upstream[];
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #sessions = new Set<Session>();
  #merged: MergedTools = { byName: new Map(), descriptors: [] };
  #mergeError: Error | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  private constructor(options: McpGatewayOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? silentLogger;
    this.#upstreams = options.config.upstreams.map(
      (config) =>
        new Upstream(config, {
          restart: options.config.restart,
          logger: this.#logger,
          random: randomUnit,
          onToolsChanged: () => {
            this.#remerge();
            this.refresh();
          },
        }),
    );
  }

  /** Connects every upstream and merges their tool lists. */
  static async start(options: McpGatewayOptions): Promise<McpGateway> {
    const gateway = new McpGateway(options);
    try {
      const started = await Promise.allSettled(gateway.#upstreams.map((u) => u.start()));
      const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
      if (failed !== undefined && options.tolerateDownUpstreams !== true) throw failed.reason;
      gateway.#remerge();
      if (gateway.#mergeError !== undefined) throw gateway.#mergeError;
    } catch (error) {
      await gateway.close();
      throw error;
    }
    const every = options.refreshIntervalMs ?? 1000;
    if (every > 0) {
      gateway.#timer = setInterval(() => {
        gateway.refresh();
      }, every);
      gateway.#timer.unref();
    }
    return gateway;
  }

  get upstreams(): readonly Upstream[] {
    return this.#upstreams;
  }

  get sessionCount(): number {
    return this.#sessions.size;
  }

  /**
   * The merged catalog of the upstreams as they stand: what to sign into the policy bundle
   * (`policy publish --catalog`) so the gates know these tools.
   */
  catalog(): ToolCatalog {
    if (this.#mergeError !== undefined) throw this.#mergeError;
    return catalogOf(this.#merged);
  }

  #remerge(): void {
    try {
      this.#merged = mergeUpstreamTools(this.#upstreams.map((u) => u.tools));
      this.#mergeError = undefined;
    } catch (error) {
      // A clash serves nothing of the clashing upstreams until the config is fixed.
      this.#mergeError = error instanceof Error ? error : new Error(String(error));
      this.#merged = { byName: new Map(), descriptors: [] };
      this.#logger.error('mcp tool lists clash', {
        reason: isMandateError(error) ? error.message : 'error',
      });
    }
  }

  /** The chain a session acts under: the first chain its channel presents that still stands. */
  #chainOf(session: Session): VerifiedChain | undefined {
    return session.transport.peer?.chains[0];
  }

  /** Gate 1 for a session: the bundle's tools its chain may see that an upstream serves unchanged. */
  #visible(session: Session): readonly { descriptor: ToolDescriptor; upstream: UpstreamTool }[] {
    const chain = this.#chainOf(session);
    if (chain === undefined) return [];
    let allowed: readonly ToolDescriptor[] = NO_TOOLS;
    try {
      allowed = this.#options.gate.listTools(chain, this.#clock.nowSeconds());
    } catch {
      allowed = NO_TOOLS;
    }
    const out: { descriptor: ToolDescriptor; upstream: UpstreamTool }[] = [];
    for (const descriptor of allowed) {
      const upstream = this.#merged.byName.get(descriptor.name);
      if (upstream !== undefined && sameTool(descriptor, upstream))
        out.push({ descriptor, upstream });
    }
    return out;
  }

  /**
   * Re-runs gate 1 for every session that listed its tools, and sends
   * `notifications/tools/list_changed` to those whose answer changed (a revocation, a new bundle,
   * an upstream that went down or came back). Runs on a timer; call it after a known change.
   */
  refresh(): void {
    for (const session of this.#sessions) {
      if (session.listed === undefined) continue;
      const now = namesOf(this.#visible(session));
      if (now === session.listed) continue;
      session.listed = now;
      session.server.sendToolListChanged().catch(() => undefined);
    }
  }

  /** Serves one agent session; resolves once the session's server is connected. */
  async connect(transport: ChannelServerTransport): Promise<void> {
    if (this.#closed) {
      await transport.close();
      return;
    }
    // eslint-disable-next-line @typescript-eslint/no-deprecated -- see Session.server
    const server = new Server(
      { name: 'mandate-gateway', version: '1' },
      { capabilities: { tools: { listChanged: true } } },
    );
    const session: Session = { transport, server, listed: undefined };
    const agent = transport.identity.identifier;
    const sendNotice = async (): Promise<void> => {
      const notice: SessionNotice = { agent, head: await this.#options.point.head(agent) };
      await transport.send({ jsonrpc: '2.0', method: SESSION_NOTIFICATION, params: { ...notice } });
    };
    server.fallbackNotificationHandler = async (notification) => {
      if (notification.method === SESSION_NOTIFICATION) await sendNotice();
    };
    server.setRequestHandler(ListToolsRequestSchema, () => {
      const visible = this.#visible(session);
      session.listed = namesOf(visible);
      return {
        tools: visible.map(({ descriptor, upstream }) => toolOf(descriptor, upstream.tool)),
      };
    });
    server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
      const result = await this.#call(
        session,
        request.params.name,
        request.params.arguments ?? {},
        request.params._meta,
        extra.signal,
      );
      if (result.refusedHead === true) await sendNotice().catch(() => undefined);
      return result.result;
    });
    server.onclose = () => {
      this.#sessions.delete(session);
    };
    this.#sessions.add(session);
    await server.connect(transport);
  }

  async #call(
    session: Session,
    name: string,
    args: Record<string, unknown>,
    meta: Record<string, unknown> | undefined,
    signal: AbortSignal,
  ): Promise<{ result: CallToolResult; refusedHead?: boolean }> {
    const o = this.#options;
    const peer = session.transport.peer;
    if (peer === undefined)
      return refused(
        'ERR_MCP_SESSION_REVOKED',
        'the channel no longer holds a valid identity or chain',
      );
    const encoded = meta?.[INVOCATION_META_KEY];
    if (typeof encoded !== 'string')
      return refused(
        'ERR_MCP_INVOCATION_MISSING',
        `a call must carry its signed invocation in \`_meta["${INVOCATION_META_KEY}"]\``,
      );
    let bytes: Uint8Array;
    let record;
    try {
      bytes = fromBase64Url(encoded, 'invocation');
      record = parseAuditRecord(bytes);
    } catch (error) {
      return refused(
        isMandateError(error) ? error.code : 'ERR_MCP_INVOCATION_MISMATCH',
        'the invocation is malformed',
      );
    }
    if (!isInvocationRecord(record))
      return refused('ERR_MCP_INVOCATION_MISMATCH', 'the invocation is not an invocation record');
    // The invocation must be this call, by this channel's identity, under a chain this channel presents.
    if (record.tool !== name || record.agent !== peer.identifier)
      return refused(
        'ERR_MCP_INVOCATION_MISMATCH',
        'the invocation names another tool or another agent than this session',
      );
    // A v1 invocation carries its chain; a v2 names it by hash: either way, one of the chains
    // this channel presents (whose bytes go to the enforcement point with a v2).
    let presented: Uint8Array | undefined;
    if (record.type === INVOCATION_RECORD_TYPE) {
      let chainBytes: Uint8Array;
      try {
        chainBytes = fromBase64Url(record.chain, 'chain');
      } catch {
        return refused('ERR_MCP_INVOCATION_MISMATCH', 'the invocation is malformed');
      }
      presented = peer.chains.find((c) => bytesEqual(c.bytes, chainBytes))?.bytes;
    } else presented = peer.chains.find((c) => chainHashOf(c.bytes) === record.chainHash)?.bytes;
    if (presented === undefined)
      return refused(
        'ERR_MCP_CHAIN_MISMATCH',
        'the invocation carries a chain this channel does not present (or no longer: expired or revoked)',
      );
    const upstream = this.#merged.byName.get(name);
    if (record.server !== null && upstream !== undefined && record.server !== upstream.server)
      return refused('ERR_MCP_INVOCATION_MISMATCH', 'the invocation names another server');
    const now = this.#clock.nowSeconds();
    let enforced;
    try {
      enforced = await o.point.submit(bytes, args, now, presented);
    } catch (error) {
      const code = isMandateError(error) ? error.code : 'ERR_MCP_INVOCATION_REFUSED';
      return {
        ...refused(code, 'the invocation was refused'),
        refusedHead: code === 'ERR_AUDIT_AGENT_CHAIN_MISMATCH',
      };
    }
    const decision = enforced.decision;
    const invocation = enforced.invocation;
    if (decision.decision === 'deny')
      return denied(
        decision,
        invocation.hash,
        `denied (${codeOf(decision)}) by the ${decision.lock ?? 'policy'} lock`,
      );
    if (decision.decision === 'approval_required') {
      const id = decision.approval?.id;
      return denied(
        decision,
        invocation.hash,
        id === undefined
          ? 'approval required, and none can be recorded'
          : `approval required: a person answers with \`mandate approvals approve ${id}\`, then call again with the same arguments`,
      );
    }
    // Allowed by the bundle's catalog: the upstream must still serve that very tool.
    const bundleTool = o.bundles.current()?.catalog?.get(name, record.server ?? undefined);
    if (
      upstream === undefined ||
      bundleTool === undefined ||
      !sameTool(bundleTool.descriptor, upstream)
    ) {
      await this.#outcome(invocation, { error: 'ERR_MCP_TOOL_UNAVAILABLE' });
      return failed(
        'ERR_MCP_TOOL_UNAVAILABLE',
        'no upstream serves this tool as the policy bundle signed it',
        invocation.hash,
      );
    }
    const serving = this.#upstreams.find((u) => u.name === upstream.server);
    let result: CallToolResult;
    try {
      if (serving === undefined) throw new Error('no upstream');
      result = await serving.callTool(upstream.upstreamName, args, { signal });
    } catch (error) {
      const code = isMandateError(error) ? error.code : 'ERR_MCP_UPSTREAM_INVALID';
      await this.#outcome(invocation, { error: code });
      return failed(code, isMandateError(error) ? error.message : brief(error), invocation.hash);
    }
    await this.#outcome(invocation, { result });
    return { result };
  }

  async #outcome(
    invocation: VerifiedInvocation,
    outcome: { result: unknown } | { error: string },
  ): Promise<void> {
    try {
      await this.#options.point.recordOutcome(invocation, outcome, this.#clock.nowSeconds());
    } catch (error) {
      this.#logger.error('mcp outcome not logged', {
        invocation: invocation.hash,
        reason: isMandateError(error) ? error.code : 'error',
      });
    }
  }

  /** Ends every session, stops the upstreams. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    await Promise.all([...this.#sessions].map((s) => s.server.close().catch(() => undefined)));
    await Promise.all(this.#upstreams.map((u) => u.close()));
  }
}

function namesOf(visible: readonly { descriptor: ToolDescriptor }[]): string {
  return visible.map((v) => `${v.descriptor.server}/${v.descriptor.name}`).join('\n');
}

/** The tool as the agent sees it: the signed name, description and schema; the upstream's hints. */
function toolOf(descriptor: ToolDescriptor, upstream: Tool): Tool {
  return {
    name: descriptor.name,
    ...(descriptor.description === undefined ? {} : { description: descriptor.description }),
    inputSchema: descriptor.inputSchema as Tool['inputSchema'],
    ...(upstream.title === undefined ? {} : { title: upstream.title }),
    ...(upstream.outputSchema === undefined ? {} : { outputSchema: upstream.outputSchema }),
    ...(upstream.annotations === undefined ? {} : { annotations: upstream.annotations }),
  };
}

function errorResult(text: string, meta: GatewayDecisionMeta): CallToolResult {
  return {
    content: [{ type: 'text', text }],
    isError: true,
    _meta: { [DECISION_META_KEY]: { ...meta } },
  };
}

/** Refused before any decision (nothing logged): a bad or replayed invocation, a revoked session. */
function refused(code: string, reason: string): { result: CallToolResult } {
  return { result: errorResult(`refused (${code}): ${reason}`, { decision: 'refused', code }) };
}

/** Decided (logged) and not allowed: the reason code and the lock, never the policies. */
function denied(
  decision: GateDecision,
  invocation: string,
  text: string,
): { result: CallToolResult } {
  const code = codeOf(decision);
  return {
    result: errorResult(text, {
      decision: decision.decision,
      code,
      lock: decision.lock,
      ...(decision.approval?.id === undefined ? {} : { approval: decision.approval.id }),
      invocation,
    }),
  };
}

/** A decision's code: a deny's own, `ERR_MCP_APPROVAL_REQUIRED` for a call waiting for a person. */
function codeOf(decision: GateDecision): string {
  return decision.code ?? 'ERR_MCP_APPROVAL_REQUIRED';
}

/** Allowed, and the upstream failed (the outcome is logged as this error). */
function failed(code: string, reason: string, invocation: string): { result: CallToolResult } {
  return {
    result: errorResult(`failed (${code}): ${reason}`, { decision: 'failed', code, invocation }),
  };
}
