import {
  ErrorKind,
  isMandateError,
  MandateError,
  type ErrorCode,
  type Logger,
} from '../core/index.js';
import { forbidden, invalid, silentLogger, timeout } from '../core/internal.js';
import {
  CborMap,
  decodeCbor,
  encodeCbor,
  expectArray,
  expectMap,
  expectUint,
  type CborValue,
} from '../encoding/index.js';
import type { Identifier } from '../identity/index.js';
import type { VerifiedChain } from '../credentials/index.js';
import { channelPeerOf, type SecureChannel, type VerifiedPeer } from '../channel/index.js';
import type { Envelope, MessageContext, Router } from '../routing/index.js';
import {
  checkLeaseId,
  LeaseKind,
  LeaseState,
  type Broker,
  type Lease,
  type LeaseRequest,
} from '../broker/index.js';
import { requestOverChannel } from './channel-request.js';

/**
 * The broker over secure channels (docs/spec/broker.md §3). A broker node runs a `BrokerService`
 * at the local address `broker`, behind a channel listener that admits credential holders. The
 * caller is the channel's verified peer and its chains are those the peer presented in the
 * handshake — nothing in a message names an identity or carries a chain — so a lease goes only
 * to the identity that proved its key, under a chain verified against the broker's authorities
 * and deny-set.
 *
 * Messages (strict CBOR arrays, version 1):
 *
 *   agent → broker   [1, 0, kind: tstr, resource: tstr, scope: [* tstr], ttl: uint / null]  lease
 *                    [1, 1, leaseId: tstr, ttl: uint / null]                                renew
 *                    [1, 2, leaseId: tstr]                                                  revoke
 *   broker → agent   [1, 3, lease, value: {* tstr => tstr / uint} / null]                   lease
 *                    [1, 4, code: tstr, message: tstr]                                      refused
 *
 *   lease = [id, kind, resource, [* scope], createdAt, expiresAt, maxExpiresAt, renewals, state]
 *
 * The value (a token, a login) is in the answer to a grant, and to a renewal that minted a new
 * one; it is never logged. A refusal carries a stable code and a message without secrets.
 */
/** The broker service's local address on its node. */
export const BROKER_SERVICE_ADDRESS = 'broker';
/** How long the agent's side waits for the broker's answer, by default. */
export const DEFAULT_BROKER_TIMEOUT_MS = 10_000;

const VERSION = 1;
const Op = { lease: 0, renew: 1, revoke: 2, answer: 3, refused: 4 } as const;
const MALFORMED: ErrorCode = 'ERR_BROKER_MALFORMED';
const MAX_REQUEST_BYTES = 8 * 1024;
/** A Noise transport message holds 65 535 bytes; the answer stays well inside one. */
const MAX_ANSWER_BYTES = 60 * 1024;
const MAX_MESSAGE_CHARS = 1024;
const MAX_VALUE_FIELDS = 16;

/** The codes a broker may refuse with (its own and the broker's), with their kinds. */
const REFUSALS: ReadonlyMap<string, ErrorKind> = new Map<string, ErrorKind>([
  ['ERR_LEASE_DENIED', ErrorKind.forbidden],
  ['ERR_LEASE_REQUEST_INVALID', ErrorKind.invalid],
  ['ERR_LEASE_ID_INVALID', ErrorKind.invalid],
  ['ERR_LEASE_KIND_UNAVAILABLE', ErrorKind.unavailable],
  ['ERR_LEASE_TTL_TOO_LONG', ErrorKind.invalid],
  ['ERR_LEASE_BEYOND_CHAIN', ErrorKind.invalid],
  ['ERR_LEASE_NOT_FOUND', ErrorKind.notFound],
  ['ERR_LEASE_NOT_HOLDER', ErrorKind.forbidden],
  ['ERR_LEASE_NOT_ACTIVE', ErrorKind.conflict],
  ['ERR_LEASE_RENEWAL_EXHAUSTED', ErrorKind.conflict],
  ['ERR_BROKER_NO_CHAIN', ErrorKind.forbidden],
  ['ERR_BROKER_MALFORMED', ErrorKind.invalid],
  ['ERR_BROKER_FAILED', ErrorKind.unavailable],
]);

/** A lease as the holder sees it over the channel (no holder, handle or chain ids). */
export interface LeaseSummary {
  readonly id: string;
  readonly kind: LeaseKind;
  readonly resource: string;
  readonly scope: readonly string[];
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly maxExpiresAt: number;
  readonly renewals: number;
  readonly state: LeaseState;
}

/** A lease's value on the wire: text or integer fields (`token`; `user`, `password`, `port`, …). */
export type LeaseValueFields = Readonly<Record<string, string | number>>;

type Request =
  | {
      readonly op: typeof Op.lease;
      readonly kind: string;
      readonly resource: string;
      readonly scope: readonly string[];
      readonly ttlSeconds: number | undefined;
    }
  | {
      readonly op: typeof Op.renew;
      readonly leaseId: string;
      readonly ttlSeconds: number | undefined;
    }
  | { readonly op: typeof Op.revoke; readonly leaseId: string };

type Answer =
  | {
      readonly op: typeof Op.answer;
      readonly lease: LeaseSummary;
      readonly value: LeaseValueFields | undefined;
    }
  | { readonly op: typeof Op.refused; readonly code: string; readonly message: string };

const text = (v: CborValue | undefined, what: string, max = 256): string => {
  if (typeof v !== 'string' || v.length > max) throw invalid(MALFORMED, `${what} must be text`);
  return v;
};
const ttlOf = (v: CborValue | undefined): number | undefined =>
  v === null ? undefined : expectUint(v, MALFORMED, 'ttl');
const textList = (v: CborValue | undefined, what: string): string[] =>
  expectArray(v ?? null, MALFORMED, what, 0, 64).map((s) => text(s, what));

function encodeRequest(request: Request): Uint8Array {
  switch (request.op) {
    case Op.lease:
      return encodeCbor([
        VERSION,
        request.op,
        request.kind,
        request.resource,
        [...request.scope],
        request.ttlSeconds ?? null,
      ]);
    case Op.renew:
      return encodeCbor([VERSION, request.op, request.leaseId, request.ttlSeconds ?? null]);
    case Op.revoke:
      return encodeCbor([VERSION, request.op, request.leaseId]);
  }
}

function header(bytes: Uint8Array, maxBytes: number, what: string): readonly CborValue[] {
  const top = expectArray(
    decodeCbor(bytes, { errorCode: MALFORMED, what, maxBytes, maxDepth: 3 }),
    MALFORMED,
    what,
    2,
    6,
  );
  if (expectUint(top[0], MALFORMED, `${what} version`) !== VERSION)
    throw invalid(MALFORMED, `${what} version is not 1`);
  return top;
}

function decodeRequest(bytes: Uint8Array): Request {
  const top = header(bytes, MAX_REQUEST_BYTES, 'broker request');
  const op = expectUint(top[1], MALFORMED, 'broker request type');
  const arity = (n: number): void => {
    if (top.length !== n)
      throw invalid(MALFORMED, `broker request type \`${op}\` has the wrong length`);
  };
  switch (op) {
    case Op.lease:
      arity(6);
      return {
        op,
        kind: text(top[2], 'kind'),
        resource: text(top[3], 'resource'),
        scope: textList(top[4], 'scope'),
        ttlSeconds: ttlOf(top[5]),
      };
    case Op.renew:
      arity(4);
      return { op, leaseId: text(top[2], 'lease id'), ttlSeconds: ttlOf(top[3]) };
    case Op.revoke:
      arity(3);
      return { op, leaseId: text(top[2], 'lease id') };
    default:
      throw invalid(MALFORMED, `broker request type \`${op}\` is unknown`);
  }
}

function encodeValue(value: unknown): CborValue {
  if (value === undefined) return null;
  if (typeof value !== 'object' || value === null)
    throw invalid(
      'ERR_BROKER_FAILED',
      'a lease value must be an object of text and integer fields',
    );
  const entries: [CborValue, CborValue][] = [];
  for (const [key, field] of Object.entries(value)) {
    if (
      typeof field === 'string' ||
      (typeof field === 'number' && Number.isSafeInteger(field) && field >= 0)
    )
      entries.push([key, field]);
    else
      throw invalid('ERR_BROKER_FAILED', `lease value field \`${key}\` is not text or an integer`);
  }
  return new CborMap(entries);
}

function encodeAnswer(answer: Answer): Uint8Array {
  if (answer.op === Op.refused)
    return encodeCbor([
      VERSION,
      answer.op,
      answer.code,
      answer.message.slice(0, MAX_MESSAGE_CHARS),
    ]);
  const l = answer.lease;
  return encodeCbor([
    VERSION,
    answer.op,
    [
      l.id,
      l.kind,
      l.resource,
      [...l.scope],
      l.createdAt,
      l.expiresAt,
      l.maxExpiresAt,
      l.renewals,
      l.state,
    ],
    encodeValue(answer.value),
  ]);
}

const KINDS: ReadonlySet<string> = new Set(Object.values(LeaseKind));
const STATES: ReadonlySet<string> = new Set(Object.values(LeaseState));

function decodeAnswer(bytes: Uint8Array): Answer {
  const top = header(bytes, MAX_ANSWER_BYTES, 'broker answer');
  const op = expectUint(top[1], MALFORMED, 'broker answer type');
  if (op === Op.refused && top.length === 4)
    return {
      op,
      code: text(top[2], 'code', 64),
      message: text(top[3], 'message', MAX_MESSAGE_CHARS),
    };
  if (op !== Op.answer || top.length !== 4)
    throw invalid(MALFORMED, 'the broker answered out of turn');
  const f = expectArray(top[2] ?? null, MALFORMED, 'lease', 9, 9);
  const kind = text(f[1], 'kind');
  const state = text(f[8], 'state');
  if (!KINDS.has(kind) || !STATES.has(state))
    throw invalid(MALFORMED, 'unknown lease kind or state');
  const lease: LeaseSummary = {
    id: checkLeaseIdOnWire(text(f[0], 'lease id')),
    kind: kind as LeaseKind,
    resource: text(f[2], 'resource'),
    scope: textList(f[3], 'scope'),
    createdAt: expectUint(f[4], MALFORMED, 'createdAt'),
    expiresAt: expectUint(f[5], MALFORMED, 'expiresAt'),
    maxExpiresAt: expectUint(f[6], MALFORMED, 'maxExpiresAt'),
    renewals: expectUint(f[7], MALFORMED, 'renewals'),
    state: state as LeaseState,
  };
  let value: LeaseValueFields | undefined;
  if (top[3] !== null) {
    const map = expectMap(top[3], MALFORMED, 'lease value');
    if (map.entries.length > MAX_VALUE_FIELDS)
      throw invalid(MALFORMED, 'the lease value has too many fields');
    const out: Record<string, string | number> = {};
    for (const [k, v] of map.entries) {
      const key = text(k, 'lease value field', 64);
      if (typeof v === 'string') out[key] = v;
      else out[key] = expectUint(v, MALFORMED, 'lease value field');
    }
    value = Object.freeze(out);
  }
  return { op, lease, value };
}

function checkLeaseIdOnWire(id: string): string {
  try {
    return checkLeaseId(id);
  } catch (cause) {
    throw invalid(MALFORMED, 'the broker answered with a malformed lease id', cause);
  }
}

/** The holder's view of a lease. */
export function leaseSummaryOf(lease: Lease): LeaseSummary {
  return {
    id: lease.id,
    kind: lease.kind,
    resource: lease.resource,
    scope: lease.scope,
    createdAt: lease.createdAt,
    expiresAt: lease.expiresAt,
    maxExpiresAt: lease.maxExpiresAt,
    renewals: lease.renewals,
    state: lease.state,
  };
}

/** What a {@link BrokerService} reports to its `onEvent` (never a value). */
export type BrokerServiceEvent =
  | {
      readonly type: 'granted' | 'renewed' | 'revoked';
      readonly identifier: Identifier;
      readonly lease: string;
    }
  | {
      readonly type: 'refused';
      readonly identifier: Identifier | undefined;
      readonly reason: ErrorCode;
    };

/** Options of {@link BrokerService}. */
export interface BrokerServiceOptions {
  readonly broker: Broker;
  /** The service's local address; default `broker`. */
  readonly address?: string;
  readonly logger?: Logger;
  readonly onEvent?: (event: BrokerServiceEvent) => void;
}

/**
 * The broker node's side. The worker is opened to no connection: a message reaches it only
 * through a secure channel (or from a local sender), and one without a channel peer is refused
 * (`ERR_BROKER_NO_CHAIN`). The peer's chains are tried in the order presented: the first the
 * lease decision allows is the lease's chain (a renewal likewise).
 */
export class BrokerService {
  readonly address: string;
  readonly #router: Router;
  readonly #broker: Broker;
  readonly #logger: Logger;
  readonly #onEvent: ((event: BrokerServiceEvent) => void) | undefined;
  readonly #inFlight = new Set<Promise<void>>();
  #closed = false;

  constructor(router: Router, options: BrokerServiceOptions) {
    this.address = options.address ?? BROKER_SERVICE_ADDRESS;
    this.#router = router;
    this.#broker = options.broker;
    this.#logger = options.logger ?? silentLogger;
    this.#onEvent = options.onEvent;
    router.registerWorker(this.address, {
      handleMessage: (ctx, envelope) => {
        const handled = this.#handle(ctx, envelope);
        this.#inFlight.add(handled);
        const done = (): void => {
          this.#inFlight.delete(handled);
        };
        handled.then(done, done);
        return handled;
      },
    });
  }

  async #handle(ctx: MessageContext, envelope: Envelope): Promise<void> {
    if (this.#closed) return;
    const peer = channelPeerOf(ctx);
    let answer: Answer;
    let op: number | undefined;
    try {
      if (peer === undefined)
        throw forbidden('ERR_BROKER_NO_CHAIN', 'the broker answers through a secure channel only');
      let request: Request;
      try {
        request = decodeRequest(envelope.payload);
      } catch (cause) {
        throw invalid(MALFORMED, 'the request is outside the broker protocol', cause);
      }
      op = request.op;
      answer = await this.#serve(peer, request);
    } catch (error) {
      const code =
        isMandateError(error) && REFUSALS.has(error.code) ? error.code : 'ERR_BROKER_FAILED';
      this.#logger.warn('broker: refused', {
        identifier: peer?.identifier,
        reason: isMandateError(error) ? error.code : 'error',
      });
      this.#onEvent?.({ type: 'refused', identifier: peer?.identifier, reason: code });
      answer = {
        op: Op.refused,
        code,
        message:
          code === 'ERR_BROKER_FAILED' || !isMandateError(error)
            ? 'the broker could not serve the request'
            : error.message,
      };
    }
    try {
      await ctx.reply(encodeAnswer(answer));
    } catch (error) {
      this.#logger.warn('broker: answer lost', {
        reason: isMandateError(error) ? error.code : 'error',
      });
      // A lease nobody received (the requester gave up waiting, its channel closed) would stay
      // live with no holder: it is revoked at once, and audited as revoked.
      // (A lost renewal leaves the lease as it was: the holder still has its value.)
      if (op === Op.lease && answer.op === Op.answer)
        await this.#revokeUndelivered(answer.lease.id);
    }
  }

  async #revokeUndelivered(id: string): Promise<void> {
    try {
      await this.#broker.revoke(id, 'answer-lost');
      this.#logger.warn('broker: undelivered lease revoked', { lease: id });
    } catch (error) {
      this.#logger.error('broker: undelivered lease not revoked', {
        lease: id,
        reason: isMandateError(error) ? error.code : 'error',
      });
    }
  }

  async #serve(peer: VerifiedPeer, request: Request): Promise<Answer> {
    const chains = peer.chains;
    if (request.op === Op.revoke) {
      const lease = await this.#broker.revoke(checkLeaseId(request.leaseId), 'released-by-holder', {
        holder: peer.identifier,
      });
      this.#onEvent?.({ type: 'revoked', identifier: peer.identifier, lease: lease.id });
      return { op: Op.answer, lease: leaseSummaryOf(lease), value: undefined };
    }
    if (chains.length === 0)
      throw forbidden(
        'ERR_BROKER_NO_CHAIN',
        'present a credential or delegation chain in the channel to lease',
      );
    if (request.op === Op.lease) {
      const ask: LeaseRequest = {
        kind: request.kind as LeaseKind,
        resource: request.resource,
        scope: request.scope,
        ...(request.ttlSeconds === undefined ? {} : { ttlSeconds: request.ttlSeconds }),
      };
      const granted = await firstAllowed(chains, (chain) => this.#broker.lease(chain, ask));
      this.#onEvent?.({ type: 'granted', identifier: peer.identifier, lease: granted.lease.id });
      return {
        op: Op.answer,
        lease: leaseSummaryOf(granted.lease),
        value: granted.value as LeaseValueFields,
      };
    }
    const leaseId = checkLeaseId(request.leaseId);
    const renewed = await firstAllowed(chains, (chain) =>
      this.#broker.renew(
        leaseId,
        chain,
        request.ttlSeconds === undefined ? {} : { ttlSeconds: request.ttlSeconds },
      ),
    );
    this.#onEvent?.({ type: 'renewed', identifier: peer.identifier, lease: leaseId });
    return {
      op: Op.answer,
      lease: leaseSummaryOf(renewed.lease),
      value: renewed.value as LeaseValueFields | undefined,
    };
  }

  /** Removes the worker and waits for the requests being handled. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#router.unregisterWorker(this.address);
    await Promise.allSettled([...this.#inFlight]);
  }
}

/** Tries `work` with each chain; a lease decision's refusal moves on to the next chain. */
async function firstAllowed<T>(
  chains: readonly VerifiedChain[],
  work: (chain: VerifiedChain) => Promise<T>,
): Promise<T> {
  let last: unknown;
  for (const chain of chains) {
    try {
      return await work(chain);
    } catch (error) {
      if (!isMandateError(error, 'ERR_LEASE_DENIED')) throw error;
      last = error;
    }
  }
  throw last;
}

/** Options of the agent-side functions. */
export interface BrokerClientOptions {
  /** The broker this side expects at the other end; nothing is sent to another peer. */
  readonly broker?: Identifier;
  /** Default 10 000. */
  readonly timeoutMs?: number;
  /** The service's address on the broker node; default `broker`. */
  readonly serviceAddress?: string;
}

/** What the agent gets back: the lease and, for a grant (or a renewal that minted one), the value. */
export interface LeaseAnswer {
  readonly lease: LeaseSummary;
  readonly value: LeaseValueFields | undefined;
}

async function ask(
  router: Router,
  channel: Pick<SecureChannel, 'address' | 'allow' | 'peer'>,
  request: Request,
  options: BrokerClientOptions,
): Promise<LeaseAnswer> {
  if (options.broker !== undefined && channel.peer.identifier !== options.broker)
    throw forbidden(
      'ERR_BROKER_PEER_MISMATCH',
      `the channel's peer \`${channel.peer.identifier}\` is not the broker \`${options.broker}\``,
    );
  const timeoutMs = options.timeoutMs ?? DEFAULT_BROKER_TIMEOUT_MS;
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1)
    throw invalid('ERR_ARGUMENT_INVALID', '`timeoutMs` must be a positive integer');
  const payload = await requestOverChannel(router, channel, encodeRequest(request), {
    service: options.serviceAddress ?? BROKER_SERVICE_ADDRESS,
    timeoutMs,
    clientPrefix: 'broker-client',
    timeoutError: () =>
      timeout('ERR_BROKER_TIMEOUT', `the broker did not answer within ${timeoutMs} ms`),
  });
  let answer: Answer;
  try {
    answer = decodeAnswer(payload);
  } catch (cause) {
    throw invalid(MALFORMED, 'the broker answered outside the broker protocol', cause);
  }
  if (answer.op === Op.refused) {
    const kind = REFUSALS.get(answer.code);
    if (kind === undefined)
      throw invalid(MALFORMED, 'the broker refused with a code outside the protocol');
    throw new MandateError(answer.code as ErrorCode, kind, `the broker refused: ${answer.message}`);
  }
  return { lease: answer.lease, value: answer.value };
}

/**
 * The agent's side: asks the broker at the channel's other end for a lease under the chains this
 * side presented in the handshake. Rejects with the broker's refusal (`ERR_LEASE_*`,
 * `ERR_BROKER_NO_CHAIN`, `ERR_BROKER_FAILED`), `ERR_BROKER_MALFORMED`, `ERR_BROKER_TIMEOUT`, or
 * `ERR_BROKER_PEER_MISMATCH` (nothing sent) when the peer is not `options.broker`.
 */
export function requestLeaseOverChannel(
  router: Router,
  channel: Pick<SecureChannel, 'address' | 'allow' | 'peer'>,
  request: LeaseRequest,
  options: BrokerClientOptions = {},
): Promise<LeaseAnswer> {
  return ask(
    router,
    channel,
    {
      op: Op.lease,
      kind: request.kind,
      resource: request.resource,
      scope: request.scope ?? [],
      ttlSeconds: request.ttlSeconds,
    },
    options,
  );
}

/** The holder renews its lease (see {@link requestLeaseOverChannel} for the errors). */
export function renewLeaseOverChannel(
  router: Router,
  channel: Pick<SecureChannel, 'address' | 'allow' | 'peer'>,
  leaseId: string,
  options: BrokerClientOptions & { readonly ttlSeconds?: number } = {},
): Promise<LeaseAnswer> {
  return ask(
    router,
    channel,
    { op: Op.renew, leaseId: checkLeaseId(leaseId), ttlSeconds: options.ttlSeconds },
    options,
  );
}

/** The holder revokes its own lease (idempotent: an ended lease answers as it is). */
export async function revokeLeaseOverChannel(
  router: Router,
  channel: Pick<SecureChannel, 'address' | 'allow' | 'peer'>,
  leaseId: string,
  options: BrokerClientOptions = {},
): Promise<LeaseSummary> {
  return (await ask(router, channel, { op: Op.revoke, leaseId: checkLeaseId(leaseId) }, options))
    .lease;
}
