// MCP over a Mandate secure channel (docs/spec/mcp.md, "Channel transport"): SDK `Transport`s for
// both ends. Each channel payload is one JSON-RPC message (UTF-8 JSON, bounded). The gateway's
// end knows the caller from the channel alone (its verified identity and chains); the client's
// end signs an invocation for every `tools/call` and carries it in `params._meta`.
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  ErrorCode as RpcErrorCode,
  JSONRPCMessageSchema,
  type JSONRPCMessage,
  type MessageExtraInfo,
} from '@modelcontextprotocol/sdk/types.js';
import type { Clock, Logger } from '../core/index.js';
import { isMandateError, systemClock } from '../core/index.js';
import { invalid, silentLogger, timeout as timedOut, unavailable } from '../core/internal.js';
import { parseJsonNoDuplicateKeys } from '../encoding/index.js';
import {
  openSecureChannel,
  SecureChannelLocalInfo,
  type SecureChannel,
  type SecureChannelOptions,
  type TrustPolicy,
  type VerifiedPeer,
} from '../channel/index.js';
import { decodeConstraintValue } from '../credentials/internal.js';
import { localAddress, type Route, type Router } from '../routing/index.js';
import {
  GenAiAttribute,
  InvocationSigner,
  jsonDigest,
  MandateAttribute,
  toBase64Url,
  type RecordHash,
} from '../audit/index.js';
import { SpanKind, SpanStatusCode, trace, type Span, type Tracer } from '@opentelemetry/api';
import { sha256 } from '../crypto/index.js';
import { toHex } from '../encoding/index.js';
import type { CredentialIssuer } from '../credentials/index.js';
import type { SigningVault } from '../vault/index.js';
import { DEFAULT_MAX_MESSAGE_BYTES, MAX_MESSAGE_BYTES_LIMIT } from './config.js';
import {
  APPROVAL_ANSWER_META_KEY,
  APPROVAL_REQUEST_META_KEY,
  APPROVAL_REQUESTED_SCHEMA,
  APPROVER_CAPABILITY,
  approvalElicitationMessage,
  parseElicitedApproval,
  type ApprovalSigner,
  type ElicitedApproval,
} from './approval-elicitation.js';
import { parentContextOf, withTraceContext } from './trace-context.js';

/** The local address of the gateway's MCP worker behind its channel listener. */
export const MCP_SERVICE_ADDRESS = 'mcp';
/** Where a `tools/call` carries its signed invocation (base64url of the record bytes). */
export const INVOCATION_META_KEY = 'io.mandate/invocation';
/** Where a tool result carries the gateway's decision (and the invocation's hash once logged). */
export const DECISION_META_KEY = 'io.mandate/decision';
/** The gateway's first message on a session, and again whenever the agent's head moved elsewhere. */
export const SESSION_NOTIFICATION = 'notifications/mandate/session';
/** JSON-RPC error code of a message over the size bound (implementation-defined server error range). */
export const MESSAGE_TOO_LARGE_RPC_CODE = -32010;

/** The credential attribute that marks its subject as a gateway: `role=gateway`. */
export const GATEWAY_ROLE_ATTRIBUTE = 'role';
/** The value of {@link GATEWAY_ROLE_ATTRIBUTE} an agent's default trust requires of its gateway. */
export const GATEWAY_ROLE = 'gateway';

/**
 * The agent's default trust in a gateway: a peer holding a credential from a trusted authority
 * whose `role` attribute names `gateway` (`credential issue --to gateway --attr role=gateway`).
 * Membership alone is not enough: any member could otherwise stand in for the gateway and read
 * the agent's calls. A delegated chain never counts (only the authority writes the role).
 */
export function gatewayTrustPolicy(): TrustPolicy {
  return (peer) =>
    peer.credentials.some((credential) => {
      const value = credential.attributes.get(GATEWAY_ROLE_ATTRIBUTE);
      if (value === undefined) return false;
      try {
        const constraint = decodeConstraintValue(value);
        return constraint.kind === 'set' && constraint.values.includes(GATEWAY_ROLE);
      } catch {
        return false;
      }
    });
}

/** The parameters of {@link SESSION_NOTIFICATION}. */
export interface SessionNotice {
  /** The agent the gateway sees at the other end (the channel's verified identity). */
  readonly agent: string;
  /** The hash of that agent's last logged invocation: the next one must follow it. */
  readonly head: RecordHash | null;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * A secure-channel frame carries at most 65,535 bytes (one Noise message), so a JSON-RPC message
 * travels in frames: a 9-byte head — version 1, the sender's message number (u32), the frame's
 * index and the message's frame count (u16 each, big-endian) — and up to this many bytes of it.
 */
export const FRAME_CHUNK_BYTES = 60_000;
const FRAME_HEAD_BYTES = 9;
const FRAME_VERSION = 1;
/** Messages being reassembled at once per session; past it the oldest is dropped. */
const MAX_PARTIAL_MESSAGES = 8;

type RpcError = { code: number; message: string; id: unknown };

/** The frames of one message. */
function framesOf(bytes: Uint8Array, messageNo: number): Uint8Array[] {
  const count = Math.max(1, Math.ceil(bytes.byteLength / FRAME_CHUNK_BYTES));
  const frames: Uint8Array[] = [];
  for (let index = 0; index < count; index++) {
    const chunk = bytes.subarray(index * FRAME_CHUNK_BYTES, (index + 1) * FRAME_CHUNK_BYTES);
    const frame = new Uint8Array(FRAME_HEAD_BYTES + chunk.byteLength);
    const view = new DataView(frame.buffer);
    view.setUint8(0, FRAME_VERSION);
    view.setUint32(1, messageNo >>> 0);
    view.setUint16(5, index);
    view.setUint16(7, count);
    frame.set(chunk, FRAME_HEAD_BYTES);
    frames.push(frame);
  }
  return frames;
}

interface Partial {
  readonly parts: (Uint8Array | undefined)[];
  received: number;
}

/** Puts a peer's frames back together, bounded in size and in messages pending. */
class Reassembler {
  readonly #max: number;
  readonly #partials = new Map<number, Partial>();
  /** Messages refused whole (too large): their later frames are ignored. */
  readonly #refused = new Set<number>();

  constructor(max: number) {
    this.#max = max;
  }

  push(frame: Uint8Array): { message: Uint8Array } | { error: RpcError } | undefined {
    if (frame.byteLength < FRAME_HEAD_BYTES || frame[0] !== FRAME_VERSION)
      return { error: malformedFrame() };
    const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
    const messageNo = view.getUint32(1);
    const index = view.getUint16(5);
    const count = view.getUint16(7);
    const chunk = frame.subarray(FRAME_HEAD_BYTES);
    if (this.#refused.has(messageNo)) return undefined;
    if (count === 0 || index >= count || chunk.byteLength > FRAME_CHUNK_BYTES)
      return { error: malformedFrame() };
    if ((count - 1) * FRAME_CHUNK_BYTES >= this.#max) {
      this.#refused.add(messageNo);
      if (this.#refused.size > 64) this.#refused.delete(this.#refused.values().next().value!);
      this.#partials.delete(messageNo);
      return { error: tooLargeError(this.#max) };
    }
    if (count === 1) return { message: chunk };
    let partial = this.#partials.get(messageNo);
    if (partial === undefined) {
      if (this.#partials.size >= MAX_PARTIAL_MESSAGES)
        this.#partials.delete(this.#partials.keys().next().value!);
      partial = { parts: new Array<Uint8Array | undefined>(count), received: 0 };
      this.#partials.set(messageNo, partial);
    }
    if (partial.parts.length !== count || partial.parts[index] !== undefined) {
      this.#partials.delete(messageNo);
      return { error: malformedFrame() };
    }
    partial.parts[index] = chunk.slice();
    partial.received++;
    if (partial.received < count) return undefined;
    this.#partials.delete(messageNo);
    const parts = partial.parts as Uint8Array[];
    const total = parts.reduce((n, p) => n + p.byteLength, 0);
    const message = new Uint8Array(total);
    let at = 0;
    for (const p of parts) {
      message.set(p, at);
      at += p.byteLength;
    }
    return { message };
  }
}

function malformedFrame(): RpcError {
  return {
    code: RpcErrorCode.ParseError,
    message: 'ERR_MCP_MESSAGE_MALFORMED: not a Mandate MCP frame',
    id: null,
  };
}

function tooLargeError(max: number): RpcError {
  return {
    code: MESSAGE_TOO_LARGE_RPC_CODE,
    message: `ERR_MCP_MESSAGE_TOO_LARGE: a message is at most ${max} bytes`,
    id: null,
  };
}

/** Sends one message's frames along a route, in order. */
async function sendFrames(
  router: Router,
  onwardRoute: Route,
  returnRoute: Route,
  bytes: Uint8Array,
  messageNo: number,
): Promise<void> {
  for (const payload of framesOf(bytes, messageNo))
    await router.send({ onwardRoute, returnRoute, payload });
}

function checkLimit(maxMessageBytes: number | undefined): number {
  const max = maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  if (!Number.isSafeInteger(max) || max < 1024 || max > MAX_MESSAGE_BYTES_LIMIT)
    throw invalid(
      'ERR_ARGUMENT_INVALID',
      `\`maxMessageBytes\` must be 1024 to ${MAX_MESSAGE_BYTES_LIMIT}`,
    );
  return max;
}

/** One message's bytes → a JSON-RPC message, or the JSON-RPC error to answer with. */
function decodeMessage(
  bytes: Uint8Array,
  max: number,
): { message: JSONRPCMessage } | { error: RpcError } {
  if (bytes.byteLength > max) return { error: tooLargeError(max) };
  let value: unknown;
  try {
    value = parseJsonNoDuplicateKeys(
      decoder.decode(bytes),
      'ERR_MCP_MESSAGE_MALFORMED',
      'the message',
      64,
    );
  } catch {
    return {
      error: {
        code: RpcErrorCode.ParseError,
        message: 'ERR_MCP_MESSAGE_MALFORMED: not JSON',
        id: null,
      },
    };
  }
  const parsed = JSONRPCMessageSchema.safeParse(value);
  if (!parsed.success) {
    const id = typeof value === 'object' && value !== null && 'id' in value ? value.id : null;
    return {
      error: {
        code: RpcErrorCode.InvalidRequest,
        message: 'ERR_MCP_MESSAGE_MALFORMED: not a JSON-RPC 2.0 message',
        id: typeof id === 'string' || typeof id === 'number' ? id : null,
      },
    };
  }
  return { message: parsed.data };
}

function isRequest(message: JSONRPCMessage): message is JSONRPCMessage & {
  id: string | number;
  method: string;
  params?: Record<string, unknown>;
} {
  return 'method' in message && 'id' in message;
}

/** An answer (result or error) to a request with an id. */
function isResponse(message: JSONRPCMessage): message is JSONRPCMessage & { id: string | number } {
  return (
    !('method' in message) &&
    'id' in message &&
    (typeof message.id === 'string' || typeof message.id === 'number')
  );
}

/**
 * The gateway's end of one agent's session: JSON-RPC messages from one secure channel. Created by
 * {@link McpChannelListener}; `peer` is the channel's verified peer as it stands now (undefined
 * once the channel closed or its trust policy no longer accepts the peer).
 */
export class ChannelServerTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage, extra?: MessageExtraInfo) => void;
  readonly sessionId: string;
  readonly #router: Router;
  readonly #returnRoute: Route;
  readonly #ownAddress: string;
  readonly #max: number;
  readonly #currentPeer: () => VerifiedPeer | undefined;
  readonly #initialPeer: VerifiedPeer;
  readonly #onGone: () => void;
  readonly #frames: Reassembler;
  #messageNo = 0;
  #closed = false;
  /** Messages dropped or answered with an error (too large, malformed). */
  refused = 0;

  constructor(parts: {
    readonly router: Router;
    readonly channelAddress: string;
    readonly returnRoute: Route;
    readonly ownAddress: string;
    readonly maxMessageBytes: number;
    readonly peer: VerifiedPeer;
    readonly currentPeer: () => VerifiedPeer | undefined;
    readonly onGone: () => void;
  }) {
    this.#router = parts.router;
    this.#returnRoute = parts.returnRoute;
    this.#ownAddress = parts.ownAddress;
    this.#max = parts.maxMessageBytes;
    this.#initialPeer = parts.peer;
    this.#currentPeer = parts.currentPeer;
    this.#onGone = parts.onGone;
    this.#frames = new Reassembler(parts.maxMessageBytes);
    this.sessionId = parts.channelAddress;
  }

  /** The peer verified at the handshake (its identity never changes on a channel). */
  get identity(): VerifiedPeer {
    return this.#initialPeer;
  }

  /** The peer as it stands now: undefined once revoked, expired or closed. */
  get peer(): VerifiedPeer | undefined {
    return this.#closed ? undefined : this.#currentPeer();
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The largest message this session carries (an answer over it is refused: -32010). */
  get maxMessageBytes(): number {
    return this.#max;
  }

  start(): Promise<void> {
    return Promise.resolve();
  }

  /** A frame from the channel (the listener's worker hands it over). */
  deliver(frame: Uint8Array): void {
    if (this.#closed) return;
    const assembled = this.#frames.push(frame);
    if (assembled === undefined) return;
    const decoded = 'error' in assembled ? assembled : decodeMessage(assembled.message, this.#max);
    if ('error' in decoded) {
      this.refused++;
      const { id, ...error } = decoded.error;
      void this.#sendRaw({ jsonrpc: '2.0', id, error } as unknown as JSONRPCMessage).catch(
        () => undefined,
      );
      return;
    }
    this.onmessage?.(decoded.message);
  }

  async send(message: JSONRPCMessage): Promise<void> {
    if (this.#closed) throw unavailable('ERR_CHANNEL_CLOSED', 'the session closed');
    await this.#sendRaw(message);
  }

  async #sendRaw(message: JSONRPCMessage): Promise<void> {
    let payload = encoder.encode(JSON.stringify(message));
    if (payload.byteLength > this.#max) {
      // A result too large for the channel: the caller gets an error for its request, not silence.
      this.refused++;
      if (!('id' in message) || 'method' in message) throw tooLarge(this.#max);
      payload = encoder.encode(
        JSON.stringify({
          jsonrpc: '2.0',
          id: message.id,
          error: {
            code: MESSAGE_TOO_LARGE_RPC_CODE,
            message: `ERR_MCP_MESSAGE_TOO_LARGE: the answer exceeds ${this.#max} bytes`,
          },
        }),
      );
    }
    await sendFrames(
      this.#router,
      this.#returnRoute,
      [localAddress(this.#ownAddress)],
      payload,
      this.#messageNo++,
    );
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    this.#onGone();
    this.onclose?.();
    return Promise.resolve();
  }
}

function tooLarge(max: number): Error {
  return invalid('ERR_MCP_MESSAGE_TOO_LARGE', `a message is at most ${max} bytes`);
}

/** Options of {@link McpChannelListener}. */
export interface McpChannelListenerOptions {
  /** The local worker address (default `mcp`); open it on the secure-channel listener (`allow`). */
  readonly address?: string;
  readonly maxMessageBytes?: number;
  /** Sessions open at once (default 10,000); a new channel beyond it is not answered. */
  readonly maxSessions?: number;
  /** A new session: connect an MCP server to it. */
  readonly onSession: (transport: ChannelServerTransport) => void;
  readonly logger?: Logger;
}

/**
 * The gateway's MCP worker: every secure channel that sends to it becomes one session (one
 * {@link ChannelServerTransport}). A message that did not come through a secure channel is
 * dropped. Call {@link McpChannelListener.channelClosed} from the secure-channel listener's
 * `onEvent` (`closed`) so the session ends with its channel.
 */
export class McpChannelListener {
  readonly address: string;
  readonly #router: Router;
  readonly #max: number;
  readonly #maxSessions: number;
  readonly #options: McpChannelListenerOptions;
  readonly #sessions = new Map<string, ChannelServerTransport>();
  /** Messages dropped: not through a channel, or past the session bound. */
  dropped = 0;

  constructor(router: Router, options: McpChannelListenerOptions) {
    this.#router = router;
    this.#options = options;
    this.address = options.address ?? MCP_SERVICE_ADDRESS;
    this.#max = checkLimit(options.maxMessageBytes);
    this.#maxSessions = options.maxSessions ?? 10_000;
    router.registerWorker(this.address, {
      handleMessage: (ctx, envelope) => {
        const info = ctx.localInfo;
        if (!(info instanceof SecureChannelLocalInfo)) {
          this.dropped++;
          return;
        }
        let session = this.#sessions.get(info.channelAddress);
        if (session === undefined) {
          if (this.#sessions.size >= this.#maxSessions) {
            this.dropped++;
            return;
          }
          const key = info.channelAddress;
          session = new ChannelServerTransport({
            router,
            channelAddress: key,
            returnRoute: envelope.returnRoute,
            ownAddress: this.address,
            maxMessageBytes: this.#max,
            peer: info.peer,
            currentPeer: info.currentPeer,
            onGone: () => {
              if (this.#sessions.get(key) === session) this.#sessions.delete(key);
            },
          });
          this.#sessions.set(key, session);
          try {
            this.#options.onSession(session);
          } catch (error) {
            (this.#options.logger ?? silentLogger).warn('mcp session refused', {
              reason: isMandateError(error) ? error.code : 'error',
            });
            void session.close();
            return;
          }
        }
        session.deliver(envelope.payload);
      },
    });
  }

  /** Sessions open. */
  get sessionCount(): number {
    return this.#sessions.size;
  }

  /** The secure channel with this local encryptor address closed: its session ends. */
  channelClosed(channelAddress: string): void {
    void this.#sessions.get(channelAddress)?.close();
  }

  /** Ends every session and stops the worker. */
  async close(): Promise<void> {
    this.#router.unregisterWorker(this.address);
    await Promise.all([...this.#sessions.values()].map((s) => s.close()));
  }
}

/** What the agent's end signs its calls with: its credential key and the chain it presents. */
export interface InvocationSigning {
  readonly vault: SigningVault;
  readonly issuer: CredentialIssuer;
  /** The delegation chain the invocations carry (the one the channel presents). */
  readonly chain: Uint8Array;
  readonly clock?: Clock;
}

/** Options of {@link ChannelClientTransport}. */
export interface ChannelClientTransportOptions {
  /** The gateway's MCP worker address (default `mcp`). */
  readonly remoteAddress?: string;
  readonly maxMessageBytes?: number;
  /** Sign every `tools/call` (without it, the gateway refuses calls: `ERR_MCP_INVOCATION_MISSING`). */
  readonly signing?: InvocationSigning;
  /** How long `start` waits for the gateway's session notice (default 10 s). */
  readonly sessionTimeoutMs?: number;
  /** Close the secure channel with the transport (default true). */
  readonly ownsChannel?: boolean;
  /**
   * A human who answers the gateway's approval elicitations (needs `signing`): the transport
   * declares the `io.mandate/approver` capability, shows the client the request as it will be
   * signed, and signs the person's accept (approve) or decline (deny); the call is then sent once
   * more, and goes through (or is denied) on that signed answer.
   */
  readonly approver?: ApprovalSigner;
  /** Where the `tools/call` client spans go (default the global tracer `mandate`: off unless configured). */
  readonly tracer?: Tracer;
}

/** A `tools/call` this transport sent and has no answer for yet. */
interface PendingCall {
  /** As the client sent it (before signing and trace context). */
  readonly message: JSONRPCMessage & { params?: Record<string, unknown> };
  readonly name: string;
  readonly argumentsDigest: string;
  readonly span: Span;
  /** Sent again after a person answered through elicitation (once at most). */
  resent: boolean;
  /** Its invocation, once signed, and the head it followed. */
  hash?: RecordHash;
  previous?: RecordHash | null;
  /** Signed again on the head the gateway named, after another session moved it (once at most). */
  retried: boolean;
}

let nextClient = 1;

/**
 * The agent's end: an SDK `Transport` over an open secure channel to a gateway. `start` waits for
 * the gateway's session notice (the agent's invocation head). Each outgoing `tools/call` gets an
 * invocation signed by the agent (tool, arguments digest, fresh nonce, its chain, the previous
 * invocation's hash) in `params._meta["io.mandate/invocation"]`; messages go out in signing order.
 */
export class ChannelClientTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage, extra?: MessageExtraInfo) => void;
  readonly #router: Router;
  readonly #channel: SecureChannel;
  readonly #remote: string;
  readonly #max: number;
  readonly #options: ChannelClientTransportOptions;
  readonly #worker = `mcp-client-${nextClient++}`;
  #signer: InvocationSigner | undefined;
  #tail: Promise<unknown> = Promise.resolve();
  #closed = false;
  #session: SessionNotice | undefined;
  readonly #frames: Reassembler;
  #messageNo = 0;
  #onSession: ((notice: SessionNotice) => void) | undefined;
  readonly #calls = new Map<string | number, PendingCall>();
  /** The gateway's approval elicitations shown to the client, by request id. */
  readonly #elicited = new Map<string | number, ElicitedApproval>();
  readonly #tracer: Tracer;

  constructor(router: Router, channel: SecureChannel, options: ChannelClientTransportOptions = {}) {
    this.#router = router;
    this.#channel = channel;
    this.#options = options;
    this.#remote = options.remoteAddress ?? MCP_SERVICE_ADDRESS;
    this.#max = checkLimit(options.maxMessageBytes);
    this.#frames = new Reassembler(this.#max);
    this.#tracer = options.tracer ?? trace.getTracer('mandate');
  }

  /** The gateway's last session notice (undefined before `start` resolved). */
  get session(): SessionNotice | undefined {
    return this.#session;
  }

  /** The verified gateway at the other end. */
  get peer(): VerifiedPeer {
    return this.#channel.peer;
  }

  async start(): Promise<void> {
    const noticed = new Promise<SessionNotice>((resolve) => {
      this.#onSession = resolve;
    });
    this.#router.registerWorker(this.#worker, {
      handleMessage: (_ctx, envelope) => {
        this.#receive(envelope.payload);
      },
    });
    this.#channel.allow(this.#worker);
    // The gateway speaks first only when asked: an empty ping-like notification opens the session.
    await this.#sendRaw({ jsonrpc: '2.0', method: SESSION_NOTIFICATION });
    const waitMs = this.#options.sessionTimeoutMs ?? 10_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        noticed,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            reject(
              timedOut(
                'ERR_MCP_SESSION_TIMEOUT',
                `the gateway did not open a session within ${waitMs} ms`,
              ),
            );
          }, waitMs);
        }),
      ]);
    } catch (error) {
      await this.close();
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  #receive(frame: Uint8Array): void {
    if (this.#closed) return;
    const assembled = this.#frames.push(frame);
    if (assembled === undefined) return;
    const decoded = 'error' in assembled ? assembled : decodeMessage(assembled.message, this.#max);
    if ('error' in decoded) {
      this.onerror?.(invalid('ERR_MCP_MESSAGE_MALFORMED', decoded.error.message));
      return;
    }
    const message = decoded.message;
    if ('method' in message && message.method === SESSION_NOTIFICATION && !('id' in message)) {
      const params = (message.params ?? {}) as Record<string, unknown>;
      const head = params['head'];
      const agent = params['agent'];
      if (typeof agent !== 'string' || !(head === null || typeof head === 'string')) return;
      const notice: SessionNotice = { agent, head };
      this.#session = notice;
      const signing = this.#options.signing;
      // A head the gateway knows and this signer does not: continue from the gateway's.
      if (signing !== undefined && (this.#signer === undefined || this.#signer.head !== head))
        this.#signer = new InvocationSigner(signing.vault, signing.issuer, head);
      this.#onSession?.(notice);
      this.#onSession = undefined;
      return;
    }
    if (isRequest(message) && message.method === 'elicitation/create') {
      const shown = this.#approvalElicitation(message);
      if (shown !== undefined) this.onmessage?.(shown);
      return;
    }
    if (isResponse(message) && this.#answered(message)) return;
    this.onmessage?.(message);
  }

  /**
   * An elicitation from the gateway: one asking for an approval, with an approver here, is shown
   * as the approver will sign it (the text rebuilt from the request, after checking that it names
   * this agent and a call it has in flight with those very arguments); anything else passes.
   * Returns the message to give the client, or undefined when answered here (refused).
   */
  #approvalElicitation(
    message: JSONRPCMessage & { id: string | number; params?: Record<string, unknown> },
  ): JSONRPCMessage | undefined {
    const approver = this.#options.approver;
    const meta = message.params?.['_meta'] as Record<string, unknown> | undefined;
    if (approver === undefined || meta?.[APPROVAL_REQUEST_META_KEY] === undefined) return message;
    const request = parseElicitedApproval(meta[APPROVAL_REQUEST_META_KEY]);
    const agent = this.#options.signing?.issuer.identity.identifier;
    const refusal =
      request === undefined
        ? 'the request is malformed'
        : request.agent !== agent
          ? 'it names another agent'
          : request.arguments !== undefined &&
              toHex(sha256(encoder.encode(request.arguments))) !== request.argumentsDigest
            ? 'the arguments shown are not those of the digest'
            : ![...this.#calls.values()].some(
                  (c) => c.name === request.name && c.argumentsDigest === request.argumentsDigest,
                )
              ? 'it names no call this agent has in flight'
              : undefined;
    if (request === undefined || refusal !== undefined) {
      // Not shown, not signed: the gateway hears a cancel and the approval stays out of band.
      this.onerror?.(invalid('ERR_MCP_APPROVAL_UNSIGNED', `approval not shown: ${refusal ?? ''}`));
      void this.#sendRaw({ jsonrpc: '2.0', id: message.id, result: { action: 'cancel' } }).catch(
        () => undefined,
      );
      return undefined;
    }
    this.#elicited.set(message.id, request);
    return {
      ...message,
      params: {
        ...message.params,
        mode: 'form',
        message: approvalElicitationMessage(request),
        requestedSchema: APPROVAL_REQUESTED_SCHEMA,
      },
    };
  }

  /**
   * An answer to one of this transport's calls. When the gateway recorded a person's signed
   * answer through elicitation, the call is sent once more (signed anew) and this answer is not
   * delivered: the client gets the outcome of the call with the approval. Returns true when
   * handled here.
   */
  #answered(message: JSONRPCMessage & { id: string | number }): boolean {
    const call = this.#calls.get(message.id);
    if (call === undefined) return false;
    const result = 'result' in message ? (message.result as Record<string, unknown>) : undefined;
    const decision = (result?.['_meta'] as Record<string, unknown> | undefined)?.[
      DECISION_META_KEY
    ] as
      | { elicitation?: { answer?: unknown }; invocation?: unknown; code?: unknown; head?: unknown }
      | undefined;
    const signing = this.#options.signing;
    // The head stays on the call's invocation only when the gateway says it was logged; a call
    // refused because another session moved the head is signed again on the head the gateway
    // names and sent once more.
    if (signing !== undefined && call.hash !== undefined && decision?.invocation !== call.hash) {
      const head = decision?.head;
      if (
        !call.retried &&
        decision?.code === 'ERR_AUDIT_AGENT_CHAIN_MISMATCH' &&
        (head === null || typeof head === 'string')
      ) {
        call.retried = true;
        if (this.#signer?.head !== head)
          this.#signer = new InvocationSigner(signing.vault, signing.issuer, head);
        this.#sendCall(call).catch(() => {
          this.#finish(message.id, result);
          this.onmessage?.(message);
        });
        return true;
      }
      // Not logged: the next invocation follows the one before it, unless others were signed since.
      if (this.#signer?.head === call.hash)
        this.#signer = new InvocationSigner(signing.vault, signing.issuer, call.previous ?? null);
    }
    const answer = decision?.elicitation?.answer;
    if (
      !call.resent &&
      this.#options.signing !== undefined &&
      (answer === 'approve' || answer === 'deny')
    ) {
      call.resent = true;
      this.#sendCall(call).catch(() => {
        this.#finish(message.id, result);
        this.onmessage?.(message);
      });
      return true;
    }
    this.#finish(message.id, result);
    return false;
  }

  /** Ends a call's span with its result. */
  #finish(id: string | number, result: Record<string, unknown> | undefined): void {
    const call = this.#calls.get(id);
    if (call === undefined) return;
    this.#calls.delete(id);
    const meta = (result?.['_meta'] as Record<string, unknown> | undefined)?.[DECISION_META_KEY] as
      { decision?: unknown; code?: unknown } | undefined;
    if (typeof meta?.decision === 'string')
      call.span.setAttribute(MandateAttribute.decision, meta.decision);
    if (result === undefined || result['isError'] === true) {
      const code = typeof meta?.code === 'string' ? meta.code : 'error';
      call.span.setAttribute(GenAiAttribute.errorType, code);
      call.span.setStatus({ code: SpanStatusCode.ERROR, message: code });
    }
    call.span.end();
  }

  send(message: JSONRPCMessage): Promise<void> {
    if (this.#closed)
      return Promise.reject(unavailable('ERR_CHANNEL_CLOSED', 'the session closed'));
    if (isRequest(message) && message.method === 'tools/call') {
      const params = message.params ?? {};
      const name = params['name'];
      if (typeof name !== 'string')
        return Promise.reject(invalid('ERR_ARGUMENT_INVALID', '`tools/call` needs a tool name'));
      let digest: string;
      try {
        digest = jsonDigest(params['arguments'] ?? {});
      } catch (error) {
        return Promise.reject(error instanceof Error ? error : new Error(String(error)));
      }
      const span = this.#tracer.startSpan(
        `tools/call ${name}`,
        {
          kind: SpanKind.CLIENT,
          attributes: {
            'mcp.method.name': 'tools/call',
            [GenAiAttribute.operationName]: 'execute_tool',
            [GenAiAttribute.toolName]: name,
            [MandateAttribute.argumentsDigest]: digest,
            ...(this.#options.signing === undefined
              ? {}
              : { [GenAiAttribute.agentId]: this.#options.signing.issuer.identity.identifier }),
          },
        },
        parentContextOf(params['_meta']),
      );
      const call: PendingCall = {
        message,
        name,
        argumentsDigest: digest,
        span,
        resent: false,
        retried: false,
      };
      this.#calls.set(message.id, call);
      return this.#sendCall(call).catch((error: unknown) => {
        this.#finish(message.id, undefined);
        throw error;
      });
    }
    if (isResponse(message) && this.#elicited.has(message.id))
      return this.#answerElicitation(message);
    if (isRequest(message) && message.method === 'initialize' && this.#options.approver)
      return this.#enqueue(Promise.resolve(declareApprover(message)));
    return this.#enqueue(Promise.resolve(message));
  }

  /** Signs a call (when signing) with its span's trace context, and sends it in signing order. */
  #sendCall(call: PendingCall): Promise<void> {
    const message = call.message;
    const params = message.params ?? {};
    const meta = withTraceContext(
      params['_meta'] as Record<string, unknown> | undefined,
      call.span,
    );
    const traced = {
      ...message,
      params: { ...params, ...(meta === undefined ? {} : { _meta: meta }) },
    };
    const signing = this.#options.signing;
    if (signing === undefined) return this.#enqueue(Promise.resolve(traced));
    const signer = this.#signer;
    if (signer === undefined)
      return Promise.reject(unavailable('ERR_MCP_SESSION_TIMEOUT', 'the session is not open'));
    const prepared = signer
      .sign({
        chain: signing.chain,
        tool: call.name,
        args: params['arguments'] ?? {},
        nowSeconds: (signing.clock ?? systemClock).nowSeconds(),
      })
      .then((signed) => {
        call.hash = signed.hash;
        call.previous = signed.record.previous;
        call.span.setAttribute(MandateAttribute.invocation, signed.hash);
        call.span.setAttribute(GenAiAttribute.toolCallId, signed.hash);
        return {
          ...traced,
          params: {
            ...traced.params,
            _meta: { ...meta, [INVOCATION_META_KEY]: toBase64Url(signed.bytes) },
          },
        };
      });
    return this.#enqueue(prepared);
  }

  /** In signing order: the gateway accepts an agent's invocations only as a chain. */
  #enqueue(prepared: Promise<JSONRPCMessage>): Promise<void> {
    const sent = this.#tail.then(() => prepared).then((m) => this.#sendRaw(m));
    this.#tail = sent.catch(() => undefined);
    return sent;
  }

  /**
   * The client's answer to an approval elicitation: accept (approve) or decline (deny) is signed
   * by the approver, with the form's reason; a cancel goes back unsigned (the approval stays
   * open, out of band). Whatever the client put in the result's `_meta` is replaced.
   */
  async #answerElicitation(message: JSONRPCMessage & { id: string | number }): Promise<void> {
    const request = this.#elicited.get(message.id)!;
    this.#elicited.delete(message.id);
    const result = 'result' in message ? (message.result as Record<string, unknown>) : undefined;
    const action = result?.['action'];
    if (result === undefined || (action !== 'accept' && action !== 'decline'))
      return this.#enqueue(Promise.resolve(message));
    const rest = { ...result };
    delete rest['_meta'];
    const content = result['content'] as Record<string, unknown> | undefined;
    const given = content?.['reason'];
    const decision = action === 'accept' ? 'approve' : 'deny';
    const reason =
      typeof given === 'string' && given.trim() !== ''
        ? given
        : `${decision === 'approve' ? 'approved' : 'denied'} through MCP elicitation`;
    let answered: Record<string, unknown> = rest;
    try {
      const answer = await this.#options.approver!.sign(request, decision, reason);
      answered = { ...rest, _meta: { [APPROVAL_ANSWER_META_KEY]: { ...answer } } };
    } catch (error) {
      // Not signed (e.g. the approver is no human the authority marked): the gateway gets an
      // unsigned answer, which approves nothing; the approval stays open out of band.
      this.onerror?.(error instanceof Error ? error : new Error(String(error)));
    }
    return this.#enqueue(Promise.resolve({ ...message, result: answered } as JSONRPCMessage));
  }

  async #sendRaw(message: JSONRPCMessage): Promise<void> {
    const payload = encoder.encode(JSON.stringify(message));
    if (payload.byteLength > this.#max) throw tooLarge(this.#max);
    await sendFrames(
      this.#router,
      [localAddress(this.#channel.address), localAddress(this.#remote)],
      [localAddress(this.#worker)],
      payload,
      this.#messageNo++,
    );
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#router.unregisterWorker(this.#worker);
    for (const id of [...this.#calls.keys()]) this.#finish(id, undefined);
    this.#elicited.clear();
    if (this.#options.ownsChannel !== false) await this.#channel.close().catch(() => undefined);
    this.onclose?.();
  }
}

/** The client's `initialize` with the approver capability added to what it declares. */
function declareApprover(
  message: JSONRPCMessage & { params?: Record<string, unknown> },
): JSONRPCMessage {
  const params = message.params ?? {};
  const capabilities = (params['capabilities'] ?? {}) as Record<string, unknown>;
  const experimental = (capabilities['experimental'] ?? {}) as Record<string, unknown>;
  return {
    ...message,
    params: {
      ...params,
      capabilities: {
        ...capabilities,
        experimental: { ...experimental, [APPROVER_CAPABILITY]: {} },
      },
    },
  };
}

/**
 * Opens a secure channel to a gateway at `route` (its channel listener) and an MCP transport over
 * it; the transport closes when the channel does. `connect` a Client to the result.
 */
export async function connectMcpChannel(
  router: Router,
  route: Route,
  channelOptions: SecureChannelOptions,
  transportOptions: Omit<ChannelClientTransportOptions, 'ownsChannel'> = {},
): Promise<ChannelClientTransport> {
  const held: { transport?: ChannelClientTransport } = {};
  const onEvent = channelOptions.onEvent;
  const channel = await openSecureChannel(router, route, {
    ...channelOptions,
    onEvent: (event) => {
      onEvent?.(event);
      if (event.type === 'closed') void held.transport?.close();
    },
  });
  const transport = new ChannelClientTransport(router, channel, transportOptions);
  held.transport = transport;
  return transport;
}
