import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import {
  isMandateError,
  MandateError,
  systemClock,
  type Clock,
  type ErrorCode,
  type Logger,
} from '../core/index.js';
import { silentLogger, timeout, unavailable, unsupported } from '../core/internal.js';
import { randomBytes, wipe } from '../crypto/index.js';
import { toHex } from '../encoding/index.js';
import type { Identifier } from '../identity/index.js';
import {
  rewriteRequest,
  Scrubber,
  type ActiveInjection,
  type LeaseAuditSink,
  type UpstreamRequest,
} from '../broker/index.js';
import {
  channelPeerOf,
  SecureChannelLocalInfo,
  type SecureChannel,
  type VerifiedPeer,
} from '../channel/index.js';
import { localAddress, type MessageContext, type Router } from '../routing/index.js';
import {
  chunksOf,
  decodeEgressMessage,
  EGRESS_CHUNK_BYTES,
  EGRESS_ID_BYTES,
  EGRESS_REFUSALS,
  EGRESS_SERVICE_ADDRESS,
  EgressOp,
  encodeEgressMessage,
  type EgressHeaders,
  type EgressMessage,
} from './egress-protocol.js';

/**
 * The credential-injecting egress proxy (docs/spec/broker.md §6). Two halves joined by a secure
 * channel from the agent to the broker node:
 *
 * - the broker side, {@link EgressProxyService} at the local address `egress`: for a request
 *   that came through a channel, it asks the proxy lease provider for the channel peer's live
 *   leases binding the request's host — the peer's identity from the channel, never from the
 *   message — and refuses with `ERR_PROXY_HOST_NOT_BOUND` before anything is sent anywhere when
 *   there is none; else it records a `used` audit event per lease that injects, reads the secret,
 *   rewrites the request, sends it to the upstream (TLS for an `https` binding), scrubs the
 *   response of the secret and streams it back;
 * - the agent side, {@link startLocalEgressProxy}: a plain-HTTP proxy on loopback that the
 *   agent's process talks to (absolute-form `GET http://host/path` or origin-form with `Host`),
 *   forwarding each request over the channel. The agent's process only ever holds the
 *   placeholder (or nothing).
 */
export { EGRESS_SERVICE_ADDRESS } from './egress-protocol.js';

export const DEFAULT_EGRESS_MAX_REQUEST_BYTES = 1024 * 1024;
export const DEFAULT_EGRESS_MAX_RESPONSE_BYTES = 16 * 1024 * 1024;
export const DEFAULT_EGRESS_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_PENDING = 64;
const DEFAULT_MAX_PENDING_PER_HOLDER = 16;

/** Response headers that describe the hop, not the content (RFC 9110 §7.6.1), or that scrubbing changes. */
const RESPONSE_HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'content-length',
]);

/** What an {@link EgressProxyService} reports to its `onEvent` (never a value). */
export type EgressEvent =
  | {
      readonly type: 'forwarded';
      readonly holder: Identifier;
      readonly host: string;
      readonly status: number;
      /** The leases whose secret went into the request. */
      readonly leaseIds: readonly string[];
    }
  | {
      readonly type: 'refused';
      readonly holder: Identifier | undefined;
      readonly reason: ErrorCode;
    };

/** Options of {@link EgressProxyService}. */
export interface EgressProxyServiceOptions {
  /** The proxy lease provider (`ProxyLeaseProvider`): live leases and the sealed store. */
  readonly provider: {
    injectionsFor(
      holder: Identifier,
      authority: string,
      nowSeconds?: number,
    ): readonly ActiveInjection[];
    readSecret(name: string): Promise<Uint8Array>;
  };
  /** Every use of a lease is recorded here (`used`) before the request leaves. */
  readonly audit?: LeaseAuditSink;
  /** The service's local address; default `egress`. */
  readonly address?: string;
  /** Default 1 MiB. */
  readonly maxRequestBodyBytes?: number;
  /** Default 16 MiB: a longer response is cut off (the agent sees its connection reset). */
  readonly maxResponseBodyBytes?: number;
  /** Default 30 000: the upstream's silence allowed, and how long a request's chunks may take. */
  readonly upstreamTimeoutMs?: number;
  /** Default 64: requests being received or forwarded at once. */
  readonly maxPendingRequests?: number;
  /** Default 16: of those, how many one identity may have, so one agent cannot starve the rest. */
  readonly maxPendingRequestsPerHolder?: number;
  /** Trust anchors for `https` upstreams (PEM), in addition to Node's; for tests and private CAs. */
  readonly upstreamCa?: string;
  readonly clock?: Clock;
  readonly logger?: Logger;
  readonly onEvent?: (event: EgressEvent) => void;
}

interface Receiving {
  readonly ctx: MessageContext;
  readonly peer: VerifiedPeer;
  readonly head: Extract<EgressMessage, { op: typeof EgressOp.request }>;
  readonly parts: Uint8Array[];
  size: number;
  readonly timer: ReturnType<typeof setTimeout>;
}

/**
 * The broker side. Its channel listener must deliver to it (`deliverTo: ['egress']`). A message
 * that did not come through a secure channel is refused (`ERR_PROXY_FORBIDDEN`). Requests are
 * forwarded concurrently (at most `maxPendingRequests`); each one's chunks must arrive in order.
 */
export class EgressProxyService {
  readonly address: string;
  readonly #router: Router;
  readonly #options: EgressProxyServiceOptions;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #maxRequest: number;
  readonly #maxResponse: number;
  readonly #timeoutMs: number;
  readonly #maxPending: number;
  readonly #maxPendingPerHolder: number;
  readonly #receiving = new Map<string, Receiving>();
  /** Requests being forwarded, and whose. */
  readonly #inFlight = new Map<Promise<void>, Identifier>();
  #closed = false;

  constructor(router: Router, options: EgressProxyServiceOptions) {
    this.address = options.address ?? EGRESS_SERVICE_ADDRESS;
    this.#router = router;
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? silentLogger;
    this.#maxRequest = options.maxRequestBodyBytes ?? DEFAULT_EGRESS_MAX_REQUEST_BYTES;
    this.#maxResponse = options.maxResponseBodyBytes ?? DEFAULT_EGRESS_MAX_RESPONSE_BYTES;
    this.#timeoutMs = options.upstreamTimeoutMs ?? DEFAULT_EGRESS_TIMEOUT_MS;
    this.#maxPending = options.maxPendingRequests ?? DEFAULT_MAX_PENDING;
    this.#maxPendingPerHolder = Math.min(
      this.#maxPending,
      options.maxPendingRequestsPerHolder ?? DEFAULT_MAX_PENDING_PER_HOLDER,
    );
    router.registerWorker(this.address, {
      handleMessage: (ctx, envelope) => {
        this.#handle(ctx, envelope.payload);
      },
    });
  }

  #handle(ctx: MessageContext, payload: Uint8Array): void {
    if (this.#closed) return;
    let message: EgressMessage;
    try {
      message = decodeEgressMessage(payload);
    } catch {
      this.#refuse(ctx, channelPeerOf(ctx), new Uint8Array(EGRESS_ID_BYTES), 'ERR_PROXY_MALFORMED');
      return;
    }
    const peer = channelPeerOf(ctx);
    // Only through a secure channel: a clear message has no verified identity to act for.
    if (peer === undefined || !(ctx.localInfo instanceof SecureChannelLocalInfo)) {
      this.#refuse(ctx, undefined, message.id, 'ERR_PROXY_FORBIDDEN');
      return;
    }
    const key = `${ctx.localInfo.channelAddress}/${toHex(message.id)}`;
    if (message.op === EgressOp.request) {
      if (this.#receiving.has(key)) {
        this.#drop(key, ctx, peer, 'ERR_PROXY_MALFORMED');
        return;
      }
      if (
        this.#receiving.size + this.#inFlight.size >= this.#maxPending ||
        this.#pendingOf(peer.identifier) >= this.#maxPendingPerHolder
      ) {
        this.#refuse(ctx, peer, message.id, 'ERR_PROXY_BUSY');
        return;
      }
      if (message.chunks > Math.ceil(this.#maxRequest / EGRESS_CHUNK_BYTES)) {
        this.#refuse(ctx, peer, message.id, 'ERR_PROXY_BODY_TOO_LARGE');
        return;
      }
      if (message.chunks === 0) {
        this.#start(ctx, peer, message, new Uint8Array(0));
        return;
      }
      const timer = setTimeout(() => {
        this.#drop(key, ctx, peer, 'ERR_PROXY_UPSTREAM_TIMEOUT');
      }, this.#timeoutMs);
      timer.unref();
      this.#receiving.set(key, { ctx, peer, head: message, parts: [], size: 0, timer });
      return;
    }
    if (message.op !== EgressOp.chunk) {
      this.#refuse(ctx, peer, message.id, 'ERR_PROXY_MALFORMED');
      return;
    }
    const receiving = this.#receiving.get(key);
    // A chunk of a request already refused or finished: nothing to do.
    if (receiving === undefined) return;
    if (message.index !== receiving.parts.length) {
      this.#drop(key, ctx, peer, 'ERR_PROXY_MALFORMED');
      return;
    }
    receiving.size += message.bytes.length;
    if (receiving.size > this.#maxRequest) {
      this.#drop(key, ctx, peer, 'ERR_PROXY_BODY_TOO_LARGE');
      return;
    }
    receiving.parts.push(message.bytes);
    if (receiving.parts.length < receiving.head.chunks) return;
    this.#receiving.delete(key);
    clearTimeout(receiving.timer);
    this.#start(receiving.ctx, peer, receiving.head, Buffer.concat(receiving.parts));
  }

  /** The requests `holder` has being received or forwarded. */
  #pendingOf(holder: Identifier): number {
    let count = 0;
    for (const receiving of this.#receiving.values())
      if (receiving.peer.identifier === holder) count++;
    for (const whose of this.#inFlight.values()) if (whose === holder) count++;
    return count;
  }

  #drop(key: string, ctx: MessageContext, peer: VerifiedPeer, code: ErrorCode): void {
    const receiving = this.#receiving.get(key);
    this.#receiving.delete(key);
    if (receiving !== undefined) clearTimeout(receiving.timer);
    const id = receiving?.head.id ?? new Uint8Array(EGRESS_ID_BYTES);
    this.#refuse(receiving?.ctx ?? ctx, peer, id, code);
  }

  #start(
    ctx: MessageContext,
    peer: VerifiedPeer,
    head: Extract<EgressMessage, { op: typeof EgressOp.request }>,
    body: Uint8Array,
  ): void {
    const forwarded = this.#forward(ctx, peer, head, body).catch((error: unknown) => {
      this.#logger.error('egress: unexpected failure', { reason: detailOf(error) });
    });
    this.#inFlight.set(forwarded, peer.identifier);
    void forwarded.finally(() => this.#inFlight.delete(forwarded));
  }

  async #forward(
    ctx: MessageContext,
    peer: VerifiedPeer,
    head: Extract<EgressMessage, { op: typeof EgressOp.request }>,
    body: Uint8Array,
  ): Promise<void> {
    const id = head.id;
    const now = this.#clock.nowSeconds();
    const injections = this.#options.provider.injectionsFor(peer.identifier, head.authority, now);
    const secrets: Uint8Array[] = [];
    let upstream: UpstreamRequest;
    let scrubber: Scrubber;
    let usedLeases: ActiveInjection[];
    try {
      // No lease for the host: refused before a secret is read or a byte leaves.
      for (const injection of injections)
        secrets.push(await this.#options.provider.readSecret(injection.binding.secret));
      const rewritten = rewriteRequest(
        {
          method: head.method,
          authority: head.authority,
          path: head.path,
          headers: head.headers,
          body,
        },
        injections.map((injection, i) => ({ binding: injection.binding, secret: secrets[i]! })),
      );
      upstream = rewritten.upstream;
      usedLeases = rewritten.used.map((i) => injections[i]!);
      scrubber = Scrubber.forSecrets(secrets);
    } catch (error) {
      this.#refuseFor(ctx, peer, id, error);
      return;
    } finally {
      for (const secret of secrets) wipe(secret);
    }
    try {
      try {
        // Durable before use: a use the audit log cannot take does not happen.
        for (const { lease } of usedLeases)
          await this.#options.audit?.record({ lease, event: 'used', at: now });
      } catch (error) {
        this.#refuse(ctx, peer, id, 'ERR_PROXY_FAILED', error);
        return;
      }
      const status = await this.#exchange(ctx, id, upstream, scrubber);
      if (status === undefined) return;
      this.#logger.info('egress: forwarded', {
        holder: peer.identifier,
        host: head.authority,
        status,
        leases: usedLeases.map((u) => u.lease.id).join(','),
      });
      this.#options.onEvent?.({
        type: 'forwarded',
        holder: peer.identifier,
        host: head.authority,
        status,
        leaseIds: usedLeases.map((u) => u.lease.id),
      });
    } catch (error) {
      this.#refuseFor(ctx, peer, id, error);
    } finally {
      scrubber.wipe();
      if (upstream.body !== body) wipe(upstream.body);
    }
  }

  /**
   * Sends the request upstream and streams the scrubbed answer back. Resolves with the status,
   * or undefined when it refused or aborted (already answered).
   */
  async #exchange(
    ctx: MessageContext,
    id: Uint8Array,
    upstream: UpstreamRequest,
    scrubber: Scrubber,
  ): Promise<number | undefined> {
    const response = await sendUpstream(upstream, this.#timeoutMs, this.#options.upstreamCa);
    const encoding = response.headers['content-encoding'];
    if (
      (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') ||
      !onlyChunked(response.headers['transfer-encoding'])
    ) {
      // Compressed bytes (a content coding, or a transfer coding such as `gzip, chunked`, which
      // Node's parser leaves in the body) could carry the secret past the scrub.
      response.destroy();
      throw unsupported(
        'ERR_PROXY_RESPONSE_ENCODED',
        'the upstream answered with a content or transfer coding other than identity or chunked',
      );
    }
    const headers: [string, string][] = [];
    const raw = response.rawHeaders;
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = raw[i]!;
      if (RESPONSE_HOP_BY_HOP.has(name.toLowerCase())) continue;
      // A header whose name carries the secret is dropped: a name cannot hold the marker.
      if (scrubber.scrubText(name) !== name) continue;
      headers.push([name, scrubber.scrubText(raw[i + 1]!)]);
    }
    await ctx.reply(
      encodeEgressMessage({
        op: EgressOp.response,
        id,
        status: response.statusCode ?? 502,
        headers,
      }),
    );
    const stream = scrubber.stream();
    let index = 0;
    let total = 0;
    const send = async (bytes: Uint8Array): Promise<void> => {
      for (const chunk of chunksOf(bytes))
        await ctx.reply(
          encodeEgressMessage({ op: EgressOp.chunk, id, index: index++, bytes: chunk }),
        );
    };
    try {
      for await (const chunk of response as AsyncIterable<Buffer>) {
        total += chunk.length;
        if (total > this.#maxResponse) {
          response.destroy();
          await ctx.reply(
            encodeEgressMessage({ op: EgressOp.refused, id, code: 'ERR_PROXY_BODY_TOO_LARGE' }),
          );
          return undefined;
        }
        await send(stream.push(chunk));
      }
    } catch (error) {
      response.destroy();
      throw error instanceof MandateError ? error : upstreamFailed(error);
    }
    await send(stream.end());
    await ctx.reply(encodeEgressMessage({ op: EgressOp.end, id, chunks: index }));
    return response.statusCode ?? 502;
  }

  #refuseFor(ctx: MessageContext, peer: VerifiedPeer, id: Uint8Array, error: unknown): void {
    const code =
      isMandateError(error) && EGRESS_REFUSALS.has(error.code) ? error.code : 'ERR_PROXY_FAILED';
    this.#refuse(ctx, peer, id, code, error);
  }

  #refuse(
    ctx: MessageContext,
    peer: VerifiedPeer | undefined,
    id: Uint8Array,
    code: ErrorCode,
    error?: unknown,
  ): void {
    this.#logger.warn('egress: refused', {
      holder: peer?.identifier,
      reason: code,
      detail: detailOf(error),
    });
    this.#options.onEvent?.({ type: 'refused', holder: peer?.identifier, reason: code });
    ctx.reply(encodeEgressMessage({ op: EgressOp.refused, id, code })).catch((lost: unknown) => {
      this.#logger.warn('egress: answer lost', { reason: detailOf(lost) });
    });
  }

  /** Removes the worker and waits for the requests being forwarded. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#router.unregisterWorker(this.address);
    for (const receiving of this.#receiving.values()) clearTimeout(receiving.timer);
    this.#receiving.clear();
    await Promise.allSettled([...this.#inFlight.keys()]);
  }
}

function upstreamFailed(cause: unknown): MandateError {
  return unavailable(
    'ERR_PROXY_UPSTREAM_FAILED',
    'the upstream could not be reached or broke off',
    cause,
  );
}

function sendUpstream(
  upstream: UpstreamRequest,
  timeoutMs: number,
  ca: string | undefined,
): Promise<IncomingMessage> {
  // One line per header as given (node takes an array for a repeated name, a string otherwise).
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of upstream.headers) {
    const key = name.toLowerCase();
    const previous = headers[key];
    headers[key] =
      previous === undefined
        ? value
        : [...(Array.isArray(previous) ? previous : [previous]), value];
  }
  if (upstream.body.length > 0 || !['GET', 'HEAD', 'DELETE', 'OPTIONS'].includes(upstream.method))
    headers['content-length'] = String(upstream.body.length);
  const options = {
    host: upstream.hostname,
    port: upstream.port,
    method: upstream.method,
    path: upstream.path,
    headers,
    // A pooled socket could carry one lease's request into another's connection state: none.
    agent: false as const,
    timeout: timeoutMs,
  };
  return new Promise((resolve, reject) => {
    const request =
      upstream.scheme === 'https'
        ? httpsRequest({
            ...options,
            // SNI names hosts, never addresses (RFC 6066 §3); the certificate is checked either way.
            ...(isIP(upstream.hostname) === 0 ? { servername: upstream.hostname } : {}),
            ...(ca === undefined ? {} : { ca }),
          })
        : httpRequest(options);
    request.on('response', resolve);
    request.on('timeout', () => {
      request.destroy(
        timeout('ERR_PROXY_UPSTREAM_TIMEOUT', `the upstream did not answer within ${timeoutMs} ms`),
      );
    });
    request.on('error', (error) => {
      reject(isMandateError(error) ? error : upstreamFailed(error));
    });
    request.end(upstream.body);
  });
}

function detailOf(error: unknown): string | undefined {
  if (error === undefined) return undefined;
  if (!isMandateError(error)) return 'unexpected error';
  return isMandateError(error.cause) ? `${error.code}: ${error.cause.code}` : error.code;
}

// ---------------------------------------------------------------------------------------------
// The agent side.

/** Options of {@link startLocalEgressProxy}. */
export interface LocalEgressProxyOptions {
  /** The router the channel lives on. */
  readonly router: Router;
  /** A secure channel to the broker node (opened with its identifier as the trust policy). */
  readonly channel: EgressChannel;
  /**
   * Opens a new channel to the broker once `channel` (or the last one this opened) has closed —
   * the broker restarted, the connection broke. Without it, requests after a close are answered
   * 502 `ERR_PROXY_CHANNEL_CLOSED`.
   */
  readonly reopen?: () => Promise<EgressChannel>;
  /** Where the agent's process reaches the proxy; loopback (port 0: any free port). */
  readonly listen: { readonly host: string; readonly port: number };
  /** The egress service's address at the broker; default `egress`. */
  readonly serviceAddress?: string;
  /** Default 1 MiB: a longer request body is answered 413 here. */
  readonly maxRequestBodyBytes?: number;
  /** Default 30 000: how long the broker may stay silent during a request. */
  readonly timeoutMs?: number;
  readonly logger?: Logger;
}

/** What the agent-side proxy needs of its secure channel to the broker. */
export type EgressChannel = Pick<SecureChannel, 'address' | 'allow' | 'onClose'>;

/** A running agent-side proxy. */
export interface LocalEgressProxy {
  readonly host: string;
  readonly port: number;
  /** `http://host:port`: what the agent's `HTTP_PROXY` names. */
  readonly url: string;
  close(): Promise<void>;
}

interface Waiting {
  /** The encryptor address of the channel the request went over: answers count from it only. */
  readonly via: string;
  head(status: number, headers: EgressHeaders): void;
  chunk(index: number, bytes: Uint8Array): void;
  end(chunks: number): void;
  refused(code: string): void;
  closed(): void;
}

let nextClient = 1;

/**
 * Starts the agent-side proxy: plain HTTP on `listen` (`CONNECT` tunnels are not supported: the
 * agent speaks plain HTTP to it, the broker speaks TLS to an `https` upstream). Each request goes
 * over `channel` to the broker's egress service; a refusal becomes an HTTP error with a JSON body
 * `{ "error": { "code", "message" } }` and an `x-mandate-error` header (403 for a host outside
 * the agent's leases, 413, 502, 504, …). When the channel closes (the broker stopped, or closed
 * it on a revocation), the requests waiting on it are answered 502 `ERR_PROXY_CHANNEL_CLOSED` at
 * once, and the next request opens a new one through `reopen` when it is given.
 */
export async function startLocalEgressProxy(
  options: LocalEgressProxyOptions,
): Promise<LocalEgressProxy> {
  const { router, channel } = options;
  const service = localAddress(options.serviceAddress ?? EGRESS_SERVICE_ADDRESS);
  const maxRequest = options.maxRequestBodyBytes ?? DEFAULT_EGRESS_MAX_REQUEST_BYTES;
  const timeoutMs = options.timeoutMs ?? DEFAULT_EGRESS_TIMEOUT_MS;
  const logger = options.logger ?? silentLogger;
  const client = `egress-client-${String(nextClient++)}`;
  const waiting = new Map<string, Waiting>();
  router.registerWorker(client, {
    handleMessage: (ctx, envelope) => {
      const info = ctx.localInfo;
      if (!(info instanceof SecureChannelLocalInfo)) return;
      let message: EgressMessage;
      try {
        message = decodeEgressMessage(envelope.payload);
      } catch {
        logger.warn('egress proxy: malformed answer dropped');
        return;
      }
      const w = waiting.get(toHex(message.id));
      // Only answers through the very channel the request went over count.
      if (w === undefined || info.channelAddress !== w.via) return;
      switch (message.op) {
        case EgressOp.response: {
          w.head(message.status, message.headers);
          return;
        }
        case EgressOp.chunk: {
          w.chunk(message.index, message.bytes);
          return;
        }
        case EgressOp.end: {
          w.end(message.chunks);
          return;
        }
        case EgressOp.refused: {
          w.refused(message.code);
          return;
        }
        default: {
          w.refused('ERR_PROXY_MALFORMED');
          return;
        }
      }
    },
  });
  let current: EgressChannel | undefined;
  let opening: Promise<EgressChannel> | undefined;
  let closed = false;
  const unwatch = new Set<() => void>();
  const adopt = (opened: EgressChannel): void => {
    current = opened;
    opened.allow(client);
    const stop = opened.onClose(() => {
      unwatch.delete(stop);
      if (current === opened) current = undefined;
      if (!closed) logger.warn('egress proxy: the channel to the broker closed');
      for (const w of [...waiting.values()]) if (w.via === opened.address) w.closed();
    });
    unwatch.add(stop);
  };
  adopt(channel);
  /** The channel to send a new request over: the current one, or a new one through `reopen`. */
  const channelNow = async (): Promise<EgressChannel | undefined> => {
    if (current !== undefined) return current;
    const reopen = options.reopen;
    if (reopen === undefined || closed) return undefined;
    opening ??= reopen().then(
      (opened) => {
        opening = undefined;
        if (closed) return opened;
        adopt(opened);
        logger.info('egress proxy: the channel to the broker is open again');
        return opened;
      },
      (error: unknown) => {
        opening = undefined;
        throw error;
      },
    );
    return opening;
  };

  const send = (via: string, payload: Uint8Array): Promise<void> =>
    router.send({
      onwardRoute: [localAddress(via), service],
      returnRoute: [localAddress(client)],
      payload,
    });

  const handle = async (request: Request): Promise<Response> => {
    const url = new URL(request.url);
    if (url.protocol !== 'http:')
      return errorResponse(
        'ERR_PROXY_REQUEST_INVALID',
        400,
        'only plain http requests are proxied',
      );
    const body = await readBody(request, maxRequest);
    if (body === undefined)
      return errorResponse(
        'ERR_PROXY_BODY_TOO_LARGE',
        413,
        `the request body exceeds ${maxRequest} bytes`,
      );
    let via: EgressChannel | undefined;
    try {
      via = await channelNow();
    } catch (error) {
      logger.warn('egress proxy: the broker cannot be reached', { reason: detailOf(error) });
      return errorResponse('ERR_PROXY_FAILED', 502, 'the broker cannot be reached');
    }
    if (via === undefined)
      return errorResponse(
        'ERR_PROXY_CHANNEL_CLOSED',
        502,
        'the secure channel to the broker is closed',
      );
    const address = via.address;
    const id = randomBytes(EGRESS_ID_BYTES);
    const key = toHex(id);
    return new Promise<Response>((resolve) => {
      let controller: ReadableStreamDefaultController<Uint8Array> | undefined;
      let expected = 0;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const finish = (): void => {
        clearTimeout(timer);
        waiting.delete(key);
      };
      const fail = (code: string, message?: string): void => {
        finish();
        if (controller === undefined) {
          const status = EGRESS_REFUSALS.get(code)?.[2] ?? 502;
          resolve(
            errorResponse(code, status, message ?? `the broker refused the request (${code})`),
          );
        } else {
          controller.error(new Error(code));
        }
      };
      const arm = (): void => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          fail('ERR_PROXY_TIMEOUT');
        }, timeoutMs);
      };
      waiting.set(key, {
        via: address,
        head: (status, headers) => {
          if (controller !== undefined) {
            fail('ERR_PROXY_MALFORMED');
            return;
          }
          arm();
          const responseHeaders = new Headers();
          try {
            for (const [name, value] of headers) responseHeaders.append(name, value);
          } catch {
            fail('ERR_PROXY_MALFORMED');
            return;
          }
          const stream = new ReadableStream<Uint8Array>({
            start: (c) => {
              controller = c;
            },
            cancel: () => {
              finish();
            },
          });
          const nullBody = status === 204 || status === 205 || status === 304 || status < 200;
          resolve(
            new Response(nullBody ? null : stream, {
              status: status < 200 ? 502 : status,
              headers: responseHeaders,
            }),
          );
        },
        chunk: (index, bytes) => {
          if (controller === undefined || index !== expected) {
            fail('ERR_PROXY_MALFORMED');
            return;
          }
          arm();
          expected++;
          controller.enqueue(bytes);
        },
        end: (chunks) => {
          if (controller === undefined || chunks !== expected) {
            fail('ERR_PROXY_MALFORMED');
            return;
          }
          finish();
          controller.close();
        },
        refused: (code) => {
          fail(EGRESS_REFUSALS.has(code) ? code : 'ERR_PROXY_MALFORMED');
        },
        closed: () => {
          fail(
            'ERR_PROXY_CHANNEL_CLOSED',
            'the secure channel to the broker closed during the request',
          );
        },
      });
      arm();
      const chunks = chunksOf(body);
      const headers: [string, string][] = [];
      request.headers.forEach((value, name) => headers.push([name, value]));
      void (async () => {
        try {
          await send(
            address,
            encodeEgressMessage({
              op: EgressOp.request,
              id,
              method: request.method,
              authority: url.host,
              path: `${url.pathname}${url.search}`,
              headers,
              chunks: chunks.length,
            }),
          );
          for (const [index, bytes] of chunks.entries())
            await send(address, encodeEgressMessage({ op: EgressOp.chunk, id, index, bytes }));
        } catch (error) {
          logger.warn('egress proxy: the channel failed', { reason: detailOf(error) });
          fail('ERR_PROXY_FAILED');
        }
      })();
    });
  };

  const server = await new Promise<ServerType>((resolve, reject) => {
    const s = serve(
      { fetch: handle, hostname: options.listen.host, port: options.listen.port },
      () => {
        resolve(s);
      },
    );
    s.once('error', reject);
  });
  const address = server.address() as AddressInfo;
  return {
    host: options.listen.host,
    port: address.port,
    url: `http://${options.listen.host}:${String(address.port)}`,
    close: async () => {
      closed = true;
      for (const stop of [...unwatch]) stop();
      router.unregisterWorker(client);
      for (const w of [...waiting.values()]) w.refused('ERR_PROXY_FAILED');
      await new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
        if ('closeAllConnections' in server) server.closeAllConnections();
      });
    },
  };
}

async function readBody(request: Request, maxBytes: number): Promise<Uint8Array | undefined> {
  if (request.body === null) return new Uint8Array(0);
  const parts: Uint8Array[] = [];
  let total = 0;
  for await (const part of request.body as unknown as AsyncIterable<Uint8Array>) {
    total += part.length;
    if (total > maxBytes) return undefined;
    parts.push(part);
  }
  return Buffer.concat(parts);
}

function errorResponse(code: string, status: number, message: string): Response {
  return new Response(JSON.stringify({ error: { code, message } }), {
    status,
    headers: { 'content-type': 'application/json', 'x-mandate-error': code },
  });
}

/** Whether a response's `Transfer-Encoding` is absent or only `chunked` (the one coding Node undoes). */
function onlyChunked(value: string | undefined): boolean {
  if (value === undefined) return true;
  return value.split(',').every((coding) => coding.trim().toLowerCase() === 'chunked');
}
