// The MCP gateway (docs/spec/mcp.md): one SDK `Server` per agent session, in front of the real
// MCP servers. `tools/list` is gate 1 for the caller's chain; `tools/call` is gate 2 through the
// enforcement point (the agent's signed invocation and the countersigned decision durable in the
// audit log before anything reaches an upstream); the outcome is logged after.
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import {
  CallToolRequestSchema,
  ErrorCode,
  ListToolsRequestSchema,
  McpError,
  type CallToolResult,
  type JSONRPCMessage,
  type RequestId,
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
  GenAiAttribute,
  INVOCATION_RECORD_TYPE,
  isInvocationRecord,
  MandateAttribute,
  parseAuditRecord,
  type VerifiedInvocation,
} from '../audit/index.js';
import {
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
// Through node's internal barrel, not its index: the index reaches the node's gateway service,
// which composes this gateway (an import cycle).
import type { CallOutcome, EnforcementPoint } from '../node/internal.js';
import { randomUnit } from '../crypto/index.js';
import type { GatewayConfig } from './config.js';
import {
  DECISION_META_KEY,
  INVOCATION_META_KEY,
  SESSION_NOTIFICATION,
  type ChannelServerTransport,
  type SessionNotice,
} from './channel-transport.js';
import { catalogOf, mergeUpstreamTools, sameTool, type MergedTools } from './catalog.js';
import { brief, Upstream, type UpstreamTool } from './upstream.js';
import {
  AgentUpstreams,
  leasedUpstreamConfig,
  scrubText,
  scrubValue,
  type AgentUpstream,
  type GatewayLeaseOptions,
} from './leases.js';
import type { UpstreamConfig } from './config.js';
import type { ToolCatalog } from '../gates/index.js';
import {
  APPROVAL_ANSWER_META_KEY,
  APPROVAL_REQUEST_META_KEY,
  APPROVAL_REQUESTED_SCHEMA,
  APPROVER_CAPABILITY,
  approvalElicitationMessage,
  parseApprovalAnswer,
  type ElicitedApproval,
} from './approval-elicitation.js';
import { parentContextOf, withTraceContext } from './trace-context.js';

/** Where a tool error carries the gateway's decision (code, lock, approval id; never policies). */
export { DECISION_META_KEY };

/** How long the gateway waits for a person's answer through elicitation (default). */
const DEFAULT_APPROVAL_TIMEOUT_MS = 120_000;

/** The `_meta` keys only the gateway writes: an upstream's are dropped before they reach the agent. */
const MANDATE_META_PREFIX = 'io.mandate/';

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
  /**
   * Gate 3: the broker and the sealed store that supply the credentials of the upstreams that set
   * `mandate.lease`, per agent. Without it such an upstream is refused (`ERR_MCP_LEASE_UNAVAILABLE`).
   */
  readonly leases?: GatewayLeaseOptions;
  /**
   * How long a call waits for a person's answer through MCP elicitation (default 120 s, never
   * past the approval's expiry); then the approval stays open, out of band.
   */
  readonly approvalTimeoutMs?: number;
  /**
   * Whether an approval elicitation shows a call's arguments (default: yes); otherwise only their
   * digest, which is what the person signs either way.
   */
  readonly showArguments?: (call: { readonly tool: string; readonly server: string }) => boolean;
  /** Where the gateway's per-call spans go (default the global tracer `mandate`: off unless configured). */
  readonly tracer?: Tracer;
}

/** How an approval the gateway asked for through elicitation ended. */
export interface ElicitationOutcome {
  /** The person's action, or `timeout` / `failed` when no answer came. */
  readonly action: 'accept' | 'decline' | 'cancel' | 'timeout' | 'failed';
  /** The signed answer recorded: the agent's transport sends the call again. */
  readonly answer?: 'approve' | 'deny';
  /** Why an answer was not recorded (`ERR_MCP_APPROVAL_UNSIGNED`, `ERR_APPROVAL_NOT_HUMAN`, …). */
  readonly code?: string;
}

/** What the gateway's `mcp` decision meta holds. */
export interface GatewayDecisionMeta {
  readonly decision: GateDecision['decision'] | 'refused' | 'failed';
  readonly code: string;
  readonly lock?: string | null;
  readonly approval?: string;
  /** The invocation's hash when it was logged (an allowed call carries it too, code `OK`). */
  readonly invocation?: string;
  /** Present when the gateway asked a person through MCP elicitation. */
  readonly elicitation?: ElicitationOutcome;
  /** With `ERR_AUDIT_AGENT_CHAIN_MISMATCH`: the agent's logged head, to sign the retry on. */
  readonly head?: string | null;
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
  /** Gate 3: the agents' own connections to the leased upstreams. */
  readonly #agents: AgentUpstreams | undefined;
  readonly #tracer: Tracer;
  #merged: MergedTools = { byName: new Map(), descriptors: [] };
  #mergeError: Error | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #closed = false;
  /** Calls between their arrival and their answer: `close` waits for them to finish logging. */
  readonly #inFlight = new Set<Promise<unknown>>();

  private constructor(
    options: McpGatewayOptions,
    upstreams: readonly { readonly config: UpstreamConfig; readonly logger?: Logger }[],
  ) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? silentLogger;
    this.#agents =
      options.leases === undefined
        ? undefined
        : new AgentUpstreams({
            ...options.leases,
            restart: options.config.restart,
            random: randomUnit,
            clock: this.#clock,
            logger: this.#logger,
          });
    this.#tracer = options.tracer ?? trace.getTracer('mandate');
    this.#upstreams = upstreams.map(
      ({ config, logger }) =>
        new Upstream(config, {
          restart: options.config.restart,
          logger: logger ?? this.#logger,
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
    const logger = options.logger ?? silentLogger;
    // A leased upstream's own connection (its tools, the drift check; never a call) carries the
    // secret as the operator configured it; the agents' calls go through their own connections.
    const upstreams = await Promise.all(
      options.config.upstreams.map((config) =>
        leasedUpstreamConfig(config, options.leases?.secrets, logger),
      ),
    );
    const gateway = new McpGateway(options, upstreams);
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
        gateway.#agents?.sweep().catch(() => undefined);
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

  /** Gate 3: the agents' own connections to the leased upstreams, with their leases. */
  get agentUpstreams(): readonly AgentUpstream[] {
    return this.#agents?.list() ?? [];
  }

  /** Closes the agent upstreams whose lease ended or that sat idle (runs on the refresh timer). */
  async sweepLeases(): Promise<void> {
    await this.#agents?.sweep();
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
      const name = request.params.name;
      // The agent's trace context parents this span when it is well-formed; it is used for
      // nothing else (a malformed one starts a new trace).
      const span = this.#tracer.startSpan(
        `tools/call ${name}`,
        {
          kind: SpanKind.SERVER,
          attributes: {
            'mcp.method.name': 'tools/call',
            [GenAiAttribute.operationName]: 'execute_tool',
            [GenAiAttribute.toolName]: name,
            [GenAiAttribute.toolType]: 'function',
            [GenAiAttribute.agentId]: agent,
          },
        },
        parentContextOf(request.params._meta),
      );
      const call = this.#call(
        session,
        name,
        request.params.arguments ?? {},
        request.params._meta,
        extra.signal,
        extra.requestId,
        span,
      );
      this.#inFlight.add(call);
      try {
        const result = await call;
        if (result.refusedHead === true) await sendNotice().catch(() => undefined);
        endSpan(span, result.result);
        return result.result;
      } catch (error) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: 'failed' });
        span.end();
        throw error;
      } finally {
        this.#inFlight.delete(call);
      }
    });
    server.onclose = () => {
      this.#sessions.delete(session);
    };
    this.#sessions.add(session);
    await server.connect(transport);
    // Params the SDK's schemas refuse get -32602 and one clean line, never the schema's dump.
    const dispatch = transport.onmessage;
    transport.onmessage = (message, extra) => {
      const invalidParams = paramsProblem(message);
      if (invalidParams === undefined) dispatch?.(message, extra);
      else void transport.send(invalidParams).catch(() => undefined);
    };
  }

  async #call(
    session: Session,
    name: string,
    args: Record<string, unknown>,
    meta: Record<string, unknown> | undefined,
    signal: AbortSignal,
    requestId: RequestId,
    span: Span,
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
      if (code !== 'ERR_AUDIT_AGENT_CHAIN_MISMATCH')
        return refused(code, 'the invocation was refused');
      // The head is public in the log: the client signs its retry on it.
      const head = await o.point.head(peer.identifier).catch(() => undefined);
      return {
        ...refused(code, 'the invocation does not follow the agent’s last logged one', head),
        refusedHead: true,
      };
    }
    const decision = enforced.decision;
    const invocation = enforced.invocation;
    span.setAttributes(
      decisionAttributes(enforced.invocation, enforced.decisionRecord.hash, decision),
    );
    if (upstream !== undefined) span.setAttribute(MandateAttribute.server, upstream.server);
    if (decision.decision === 'deny')
      return denied(
        decision,
        invocation.hash,
        `denied (${codeOf(decision)}) by the ${decision.lock ?? 'policy'} lock`,
      );
    if (decision.decision === 'approval_required') {
      const id = decision.approval?.id;
      if (id === undefined)
        return denied(decision, invocation.hash, 'approval required, and none can be recorded');
      const outOfBand = `approval required: a person answers with \`mandate approvals approve ${id}\`, then call again with the same arguments`;
      const elicited = await this.#elicitApproval(session, id, name, signal);
      if (elicited === undefined) return denied(decision, invocation.hash, outOfBand);
      return denied(
        decision,
        invocation.hash,
        elicited.answer !== undefined
          ? `a person answered (${elicited.answer}) through elicitation: the agent's transport sends the call again`
          : `${outOfBand} (elicitation: ${elicited.action}${elicited.code === undefined ? '' : `, ${elicited.code}`})`,
        elicited,
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
    if (serving?.config.mandate.lease !== undefined)
      return this.#callLeased(serving.config, bundleTool.descriptor, upstream, args, invocation, {
        signal,
        requestId,
        maxBytes: session.transport.maxMessageBytes,
        span,
      });
    let result: CallToolResult;
    try {
      if (serving === undefined) throw new Error('no upstream');
      // The upstream's span is a child of this call's span: the gateway's own trace context,
      // never the agent's `_meta`.
      const traceMeta = withTraceContext(undefined, span);
      result = await serving.callTool(upstream.upstreamName, args, {
        signal,
        ...(traceMeta === undefined ? {} : { meta: traceMeta }),
      });
    } catch (error) {
      const code = isMandateError(error) ? error.code : 'ERR_MCP_UPSTREAM_INVALID';
      await this.#outcome(invocation, { error: code });
      return failed(code, isMandateError(error) ? error.message : brief(error), invocation.hash);
    }
    // The agent gets the upstream's result under the gateway's own `io.mandate/*` meta only; one
    // too large for the channel is logged and answered as the error the agent gets.
    const answer = withDecision(result, {
      decision: 'allow',
      code: 'OK',
      invocation: invocation.hash,
    });
    if (!fits(requestId, answer, session.transport.maxMessageBytes)) {
      await this.#outcome(invocation, { error: 'ERR_MCP_MESSAGE_TOO_LARGE' });
      return failed(
        'ERR_MCP_MESSAGE_TOO_LARGE',
        `the result exceeds the channel's ${session.transport.maxMessageBytes} bytes`,
        invocation.hash,
      );
    }
    await this.#outcome(invocation, { result });
    return { result: answer };
  }

  /**
   * Asks the person behind the session's client to answer approval `id` through MCP elicitation,
   * when the client declares both elicitation and an approver (`io.mandate/approver`); undefined
   * when it does not (the approval stays out of band). An answer counts only as a human's signed
   * answer, recorded after the same checks as one given out of band.
   */
  async #elicitApproval(
    session: Session,
    id: string,
    name: string,
    signal: AbortSignal,
  ): Promise<ElicitationOutcome | undefined> {
    const capabilities = session.server.getClientCapabilities();
    if (
      capabilities?.elicitation?.form === undefined ||
      capabilities.experimental?.[APPROVER_CAPABILITY] === undefined
    )
      return undefined;
    const point = this.#options.point;
    const record = await point.approvalRequest(id).catch(() => undefined);
    const now = this.#clock.nowSeconds();
    if (record?.status !== 'pending' || now >= record.expiresAt) return undefined;
    const server = record.tool.endsWith(`/${name}`)
      ? record.tool.slice(0, record.tool.length - name.length - 1)
      : record.tool;
    const show = this.#options.showArguments?.({ tool: name, server }) ?? true;
    const request: ElicitedApproval = {
      id: record.id,
      agent: record.agent,
      chainHash: record.chainHash,
      tool: record.tool,
      argumentsDigest: record.argumentsDigest,
      bundleVersion: record.bundleVersion,
      bundleHash: record.bundleHash,
      expiresAt: record.expiresAt,
      name,
      server,
      reason: record.reason,
      ...(show ? { arguments: record.arguments } : {}),
    };
    const timeout = Math.max(
      1,
      Math.min(
        this.#options.approvalTimeoutMs ?? DEFAULT_APPROVAL_TIMEOUT_MS,
        (record.expiresAt - now) * 1000,
      ),
    );
    let result;
    try {
      result = await session.server.elicitInput(
        {
          mode: 'form',
          message: approvalElicitationMessage(request),
          requestedSchema: APPROVAL_REQUESTED_SCHEMA,
          _meta: { [APPROVAL_REQUEST_META_KEY]: { ...request } },
        },
        { timeout, signal },
      );
    } catch (error) {
      const timedOut =
        error instanceof McpError && error.code === (ErrorCode.RequestTimeout as number);
      return { action: timedOut && !signal.aborted ? 'timeout' : 'failed' };
    }
    if (result.action === 'cancel') return { action: 'cancel' };
    const answer = parseApprovalAnswer(result._meta?.[APPROVAL_ANSWER_META_KEY]);
    if (answer === undefined) return { action: result.action, code: 'ERR_MCP_APPROVAL_UNSIGNED' };
    if (answer.decision !== (result.action === 'accept' ? 'approve' : 'deny'))
      return { action: result.action, code: 'ERR_APPROVAL_SIGNATURE_INVALID' };
    try {
      await point.recordApprovalAnswer(id, answer, this.#clock.nowSeconds());
    } catch (error) {
      const code = isMandateError(error) ? error.code : 'ERR_APPROVAL_SIGNATURE_INVALID';
      this.#logger.warn('mcp elicited approval refused', { approval: id, reason: code });
      return { action: result.action, code };
    }
    return { action: result.action, answer: answer.decision };
  }

  /**
   * Gate 3: the call goes through the agent's own connection to the upstream, whose credential a
   * lease decided with the agent's chain supplies; the answer and errors are scrubbed of it, and
   * the outcome names the lease.
   */
  async #callLeased(
    config: UpstreamConfig,
    signed: ToolDescriptor,
    tool: UpstreamTool,
    args: Record<string, unknown>,
    invocation: VerifiedInvocation,
    call: {
      readonly signal: AbortSignal;
      readonly requestId: RequestId;
      readonly maxBytes: number;
      readonly span: Span;
    },
  ): Promise<{ result: CallToolResult }> {
    const agents = this.#agents;
    let held: AgentUpstream;
    try {
      if (agents === undefined) throw new Error('no broker');
      held = await agents.acquire(invocation.chain, config);
    } catch (error) {
      const code = isMandateError(error) ? error.code : 'ERR_MCP_LEASE_UNAVAILABLE';
      this.#logger.warn('mcp lease refused', {
        agent: invocation.agent,
        upstream: config.name,
        reason: code,
        ...(isMandateError(error) ? { detail: error.message } : {}),
      });
      await this.#outcome(invocation, { error: code });
      if (code !== 'ERR_LEASE_DENIED')
        return failed(
          code,
          isMandateError(error) ? error.message : 'no credential for this upstream',
          invocation.hash,
        );
      return {
        result: errorResult(
          `denied (ERR_LEASE_DENIED): the broker refuses this agent the credential of \`${config.name}\``,
          { decision: 'deny', code, lock: 'lease', invocation: invocation.hash },
        ),
      };
    }
    const leases = [held.lease.id];
    try {
      // The agent's connection must serve the tool as the bundle signed it, too.
      const own = held.upstream.tools.find((t) => t.upstreamName === tool.upstreamName);
      if (own === undefined || !sameTool(signed, own)) {
        await this.#outcome(invocation, { error: 'ERR_MCP_TOOL_UNAVAILABLE', leases });
        return failed(
          'ERR_MCP_TOOL_UNAVAILABLE',
          'no upstream serves this tool as the policy bundle signed it',
          invocation.hash,
        );
      }
      const traceMeta = withTraceContext(undefined, call.span);
      const raw = await held.upstream.callTool(tool.upstreamName, args, {
        signal: call.signal,
        ...(traceMeta === undefined ? {} : { meta: traceMeta }),
      });
      const result = scrubValue(held.scrubber, raw) as CallToolResult;
      const answer = withDecision(result, {
        decision: 'allow',
        code: 'OK',
        invocation: invocation.hash,
      });
      if (!fits(call.requestId, answer, call.maxBytes)) {
        await this.#outcome(invocation, { error: 'ERR_MCP_MESSAGE_TOO_LARGE', leases });
        return failed(
          'ERR_MCP_MESSAGE_TOO_LARGE',
          `the result exceeds the channel's ${call.maxBytes} bytes`,
          invocation.hash,
        );
      }
      await this.#outcome(invocation, { result, leases });
      return { result: answer };
    } catch (error) {
      const code = isMandateError(error) ? error.code : 'ERR_MCP_UPSTREAM_INVALID';
      await this.#outcome(invocation, { error: code, leases });
      return failed(
        code,
        scrubText(held.scrubber, isMandateError(error) ? error.message : brief(error)),
        invocation.hash,
      );
    } finally {
      agents.release(held);
    }
  }

  async #outcome(invocation: VerifiedInvocation, outcome: CallOutcome): Promise<void> {
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
    // Closed sessions cancel their calls; each still logs its outcome before it settles, and the
    // log is closed (its last checkpoint signed) only after them.
    await Promise.allSettled([...this.#inFlight]);
    await this.#agents?.close();
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
function refused(code: string, reason: string, head?: string | null): { result: CallToolResult } {
  return {
    result: errorResult(`refused (${code}): ${reason}`, {
      decision: 'refused',
      code,
      ...(head === undefined ? {} : { head }),
    }),
  };
}

/** An upstream's result with its `io.mandate/*` meta dropped and the gateway's decision added. */
function withDecision(result: CallToolResult, meta: GatewayDecisionMeta): CallToolResult {
  const own = Object.entries(result._meta ?? {}).filter(
    ([key]) => !key.startsWith(MANDATE_META_PREFIX),
  );
  return { ...result, _meta: { ...Object.fromEntries(own), [DECISION_META_KEY]: { ...meta } } };
}

/** Whether the answer to request `id` carrying `result` fits in one channel message. */
function fits(id: RequestId, result: CallToolResult, max: number): boolean {
  const text = JSON.stringify({ result, jsonrpc: '2.0', id });
  // UTF-8 takes at most 3 bytes per UTF-16 unit: count exactly only near the bound.
  return text.length * 3 <= max || Buffer.byteLength(text, 'utf8') <= max;
}

/**
 * The JSON-RPC error for a `tools/call` or `tools/list` request whose params the SDK's schemas
 * refuse (`arguments` that is not an object, a name that is not a string), else undefined.
 */
function paramsProblem(message: JSONRPCMessage): JSONRPCMessage | undefined {
  if (!('method' in message) || !('id' in message)) return undefined;
  const schema =
    message.method === 'tools/call'
      ? CallToolRequestSchema
      : message.method === 'tools/list'
        ? ListToolsRequestSchema
        : undefined;
  if (schema === undefined || schema.safeParse(message).success) return undefined;
  return {
    jsonrpc: '2.0',
    id: message.id,
    error: {
      code: ErrorCode.InvalidParams,
      message:
        message.method === 'tools/call'
          ? 'ERR_MCP_PARAMS_INVALID: `tools/call` takes `name` (a string) and `arguments` (an object)'
          : 'ERR_MCP_PARAMS_INVALID: `tools/list` takes an optional `cursor` (a string)',
    },
  };
}

/** Decided (logged) and not allowed: the reason code and the lock, never the policies. */
function denied(
  decision: GateDecision,
  invocation: string,
  text: string,
  elicitation?: ElicitationOutcome,
): { result: CallToolResult } {
  const code = codeOf(decision);
  return {
    result: errorResult(text, {
      decision: decision.decision,
      code,
      lock: decision.lock,
      ...(decision.approval?.id === undefined ? {} : { approval: decision.approval.id }),
      invocation,
      ...(elicitation === undefined ? {} : { elicitation }),
    }),
  };
}

/** The decision's attributes on the call's span (docs/spec/audit.md, "OpenTelemetry"). */
function decisionAttributes(
  invocation: VerifiedInvocation,
  decisionRecord: string,
  decision: GateDecision,
): Attributes {
  const r = invocation.record;
  return {
    [GenAiAttribute.toolCallId]: invocation.hash,
    [MandateAttribute.invocation]: invocation.hash,
    [MandateAttribute.decisionRecord]: decisionRecord,
    [MandateAttribute.argumentsDigest]: r.argumentsDigest,
    ...(r.server === null ? {} : { [MandateAttribute.server]: r.server }),
    [MandateAttribute.decision]: decision.decision,
    [MandateAttribute.reasons]: [...decision.reasons],
    [MandateAttribute.policies]: [...decision.policies],
    ...(decision.lock === null ? {} : { [MandateAttribute.lock]: decision.lock }),
    ...(decision.code === undefined || decision.code === null
      ? {}
      : { [MandateAttribute.code]: decision.code }),
    ...(decision.bundle === null ? {} : { [MandateAttribute.bundleHash]: decision.bundle }),
    ...(decision.approval?.id === undefined ? {} : { 'mandate.approval.id': decision.approval.id }),
  };
}

/** Ends a call's span: an error result is an ERROR status naming its code; a call waiting for a person is not. */
function endSpan(span: Span, result: CallToolResult): void {
  const meta = result._meta?.[DECISION_META_KEY] as GatewayDecisionMeta | undefined;
  // An allowed call's result carries its decision meta too: what the upstream answered is its outcome.
  if (meta !== undefined && meta.decision !== 'allow') {
    if (meta.decision === 'refused' || meta.decision === 'failed')
      span.setAttribute(MandateAttribute.decision, meta.decision);
    if (meta.decision !== 'approval_required') {
      span.setAttribute(GenAiAttribute.errorType, meta.code);
      span.setStatus({ code: SpanStatusCode.ERROR, message: meta.code });
    }
  } else span.setAttribute(MandateAttribute.outcome, result.isError === true ? 'error' : 'ok');
  span.end();
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
