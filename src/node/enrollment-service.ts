import {
  ErrorKind,
  isMandateError,
  MandateError,
  systemClock,
  type Clock,
  type ErrorCode,
  type Logger,
} from '../core/index.js';
import { invalid, notFound, silentLogger, timeout, unauthorized } from '../core/internal.js';
import { wipe } from '../crypto/index.js';
import { decodeCbor, encodeCbor, expectArray, expectBytes, expectUint } from '../encoding/index.js';
import { compareHistories, HistoryRelation } from '../identity/internal.js';
import type { Identifier, VerifiedIdentity } from '../identity/index.js';
import {
  decodeCredential,
  verifyCredential,
  type DenySet,
  type Enrollment,
  type Member,
  type RedeemRequest,
  type VerifiedCredential,
} from '../credentials/index.js';
import { channelPeerOf, type SecureChannel, type VerifiedPeer } from '../channel/index.js';
import type { Envelope, MessageContext, Router } from '../routing/index.js';
import { requestOverChannel } from './channel-request.js';

/**
 * Redeeming enrollment tickets, and renewing members' credentials, over secure channels
 * (docs/spec/enrollment.md). The authority node runs an `EnrollmentService` at the local address
 * `enroll`, reachable only through a secure channel whose listener trusts any verified identity
 * (`TrustPolicies.anyIdentity()`, on a listener that delivers to `enroll` alone): a redeemer is
 * not a member yet, so it has no credential to show. The service acts for the channel peer's
 * verified identity — taken from the channel, never from the message — so a code is only ever
 * good for the identity that proved its key in the handshake, and a fresh credential goes only to
 * a member that proved it is that member.
 *
 * Messages (strict CBOR): `[1, 0, code: bstr(32)]` redeem and `[1, 3]` renew; answers
 * `[1, 1, credential: bstr]` (a credential) and `[1, 2, code: tstr]` (refused, with a stable
 * error code).
 *
 * The member's side, `redeemTicketOverChannel` and `fetchCredentialOverChannel`, sends only over
 * a channel whose peer is the expected authority and returns the credential only once it
 * verifies against that authority with this side as subject.
 */
export const ENROLLMENT_SERVICE_ADDRESS = 'enroll';
export const DEFAULT_ENROLLMENT_TIMEOUT_MS = 10_000;

const VERSION = 1;
const Op = { redeem: 0, enrolled: 1, refused: 2, renew: 3 } as const;
/** ENROLLMENT_CODE_BYTES of credentials/enrollment-ticket.ts. */
const CODE_BYTES = 32;
const MAX_REQUEST_BYTES = 64;
/** A credential is at most 16 KiB (MAX_CREDENTIAL_BYTES); the envelope adds a few bytes. */
const MAX_ANSWER_BYTES = 16 * 1024 + 64;
const MAX_CODE_CHARS = 64;
const MALFORMED: ErrorCode = 'ERR_ENROLLMENT_MALFORMED';

/**
 * The codes an enrollment service may answer with, and their kinds; any other code on the wire
 * makes the answer malformed. Failures of the authority itself (its store, its keys) are one
 * `ERR_ENROLLMENT_FAILED`: the reason stays in the authority's log.
 */
const REFUSALS: ReadonlyMap<string, readonly [ErrorCode, ErrorKind]> = new Map(
  (
    [
      ['ERR_TICKET_INVALID', ErrorKind.unauthorized],
      ['ERR_ENROLLMENT_FORBIDDEN', ErrorKind.forbidden],
      ['ERR_ENROLLMENT_MALFORMED', ErrorKind.invalid],
      ['ERR_ENROLLMENT_FAILED', ErrorKind.unavailable],
      // The authority knows a history of the redeemer that the presented one does not extend.
      ['ERR_IDENTITY_HISTORY_OLDER', ErrorKind.conflict],
      ['ERR_IDENTITY_HISTORY_FORK', ErrorKind.conflict],
      // Renewals: the peer is no member (any more), or its attributes are outside the policy now.
      ['ERR_MEMBER_NOT_FOUND', ErrorKind.notFound],
      ['ERR_AUTHORITY_POLICY', ErrorKind.forbidden],
      // The authority's deny-set holds the peer's identity: it neither enrolls nor renews it.
      ['ERR_REVOKED', ErrorKind.forbidden],
    ] as const
  ).map(([code, kind]) => [code, [code, kind]]),
);

type EnrollmentMessage =
  | { readonly op: typeof Op.redeem; readonly code: Uint8Array }
  | { readonly op: typeof Op.enrolled; readonly credential: Uint8Array }
  | { readonly op: typeof Op.refused; readonly code: string }
  | { readonly op: typeof Op.renew };

function encodeEnrollmentMessage(message: EnrollmentMessage): Uint8Array {
  // A renewal names nothing: its subject is the channel peer.
  if (message.op === Op.renew) return encodeCbor([VERSION, message.op]);
  const body = message.op === Op.enrolled ? message.credential : message.code;
  return encodeCbor([VERSION, message.op, body]);
}

function decodeEnrollmentMessage(bytes: Uint8Array, maxBytes: number): EnrollmentMessage {
  const top = expectArray(
    decodeCbor(bytes, { errorCode: MALFORMED, what: 'enrollment message', maxBytes, maxDepth: 2 }),
    MALFORMED,
    'enrollment message',
    2,
    3,
  );
  const version = expectUint(top[0], MALFORMED, 'enrollment message version');
  if (version !== VERSION)
    throw invalid(MALFORMED, `enrollment message version \`${version}\` is not 1`);
  const op = expectUint(top[1], MALFORMED, 'enrollment message type');
  // Every type has a body but `renew`, which has none.
  if ((op === Op.renew) !== (top.length === 2))
    throw invalid(MALFORMED, `enrollment message type \`${op}\` has the wrong length`);
  const body = top[2];
  switch (op) {
    case Op.redeem:
      return { op, code: expectBytes(body, MALFORMED, 'enrollment code', CODE_BYTES) };
    case Op.enrolled:
      return { op, credential: expectBytes(body, MALFORMED, 'enrolled credential') };
    case Op.refused:
      if (typeof body !== 'string' || body.length > MAX_CODE_CHARS)
        throw invalid(MALFORMED, 'a refusal carries an error code as text');
      return { op, code: body };
    case Op.renew:
      return { op };
    default:
      throw invalid(MALFORMED, `enrollment message type \`${op}\` is unknown`);
  }
}

/**
 * What an {@link EnrollmentService} reports to its `onEvent`.
 */
export type EnrollmentEvent =
  | { readonly type: 'enrolled'; readonly identifier: Identifier }
  /** A member got a fresh credential (a renew request). */
  | { readonly type: 'renewed'; readonly identifier: Identifier; readonly expiresAt: number }
  | {
      readonly type: 'refused';
      /** The channel peer; undefined for a message that did not come through a channel. */
      readonly identifier: Identifier | undefined;
      readonly reason: ErrorCode;
    };

/**
 * Options of {@link EnrollmentService}.
 */
export interface EnrollmentServiceOptions {
  /** The authority whose tickets are redeemed and whose members' credentials are renewed. */
  readonly authority: {
    redeem(request: RedeemRequest, nowSeconds: number): Promise<Enrollment>;
    member(identifier: Identifier): Promise<Member | undefined>;
    issueCredential(member: VerifiedIdentity, nowSeconds: number): Promise<Uint8Array>;
  };
  /**
   * The authority's identities (its `Identities`): a renewal must come from the member's history
   * as the authority knows it or a newer one (recorded then), never an older or forked one.
   */
  readonly identities: {
    import(
      changeHistory: Uint8Array,
      options: { readonly expectedIdentifier: Identifier },
    ): Promise<unknown>;
  };
  /**
   * The authority's deny-set, live (its listener's too): a revoked identity is neither enrolled
   * nor renewed (`ERR_REVOKED`); a stale set refuses everyone (`ERR_ENROLLMENT_FAILED`, the
   * reason in the log). Required: a service that issues credentials never skips it.
   */
  readonly denySet: DenySet;
  /** The service's local address; default `enroll`. */
  readonly address?: string;
  readonly clock?: Clock;
  readonly logger?: Logger;
  readonly onEvent?: (event: EnrollmentEvent) => void;
}

/**
 * The authority side. Its channel listener must deliver to it (`deliverTo: ['enroll']`, and to
 * nothing else when the listener trusts any identity). The worker is opened to no connection: a
 * message reaches it only through a channel (or from a local sender), and one without a channel
 * peer is refused with `ERR_ENROLLMENT_FORBIDDEN` (no verified identity to act for). Requests
 * are handled one at a time, in arrival order (the router's mailbox). The code is wiped once the
 * authority has hashed it.
 *
 * A renewal is answered with a credential issued now (the authority's default TTL, the member's
 * attributes as stored) to the channel peer, if it is a member (`ERR_MEMBER_NOT_FOUND`
 * otherwise) presenting the history the authority knows or a newer one, which is recorded.
 */
export class EnrollmentService {
  readonly address: string;
  readonly #router: Router;
  readonly #authority: EnrollmentServiceOptions['authority'];
  readonly #identities: EnrollmentServiceOptions['identities'];
  readonly #denySet: DenySet;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #onEvent: ((event: EnrollmentEvent) => void) | undefined;
  /** Requests being handled, so that `close` can let them finish. */
  readonly #inFlight = new Set<Promise<void>>();
  #closed = false;

  constructor(router: Router, options: EnrollmentServiceOptions) {
    this.address = options.address ?? ENROLLMENT_SERVICE_ADDRESS;
    this.#router = router;
    this.#authority = options.authority;
    this.#identities = options.identities;
    this.#denySet = options.denySet;
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? silentLogger;
    this.#onEvent = options.onEvent;
    router.registerWorker(this.address, {
      handleMessage: (ctx, envelope) => {
        const handled = this.#handle(ctx, envelope);
        const done = (): void => {
          this.#inFlight.delete(handled);
        };
        this.#inFlight.add(handled);
        handled.then(done, done);
        return handled;
      },
    });
  }

  async #handle(ctx: MessageContext, envelope: Envelope): Promise<void> {
    if (this.#closed) return;
    const peer = channelPeerOf(ctx);
    // Only through a secure channel: a clear message has no verified identity to act for.
    if (peer === undefined) return this.#refuse(ctx, undefined, 'ERR_ENROLLMENT_FORBIDDEN');
    let message: EnrollmentMessage;
    try {
      message = decodeEnrollmentMessage(envelope.payload, MAX_REQUEST_BYTES);
    } catch {
      return this.#refuse(ctx, peer, MALFORMED);
    }
    if (message.op === Op.renew) return this.#renew(ctx, peer);
    if (message.op !== Op.redeem) return this.#refuse(ctx, peer, MALFORMED);
    let enrollment: Enrollment;
    try {
      // Before the ticket is touched: a revoked identity's redemption does not use it up.
      this.#assertNotRevoked(peer);
      enrollment = await this.#authority.redeem(
        { code: message.code, changeHistory: peer.identity.changeHistory },
        this.#clock.nowSeconds(),
      );
    } catch (error) {
      const code = isMandateError(error) && REFUSALS.has(error.code) ? error.code : undefined;
      await this.#refuse(ctx, peer, code ?? 'ERR_ENROLLMENT_FAILED', error);
      return;
    } finally {
      wipe(message.code);
    }
    this.#logger.info('enrollment: enrolled', { identifier: peer.identifier });
    this.#onEvent?.({ type: 'enrolled', identifier: peer.identifier });
    await this.#reply(
      ctx,
      encodeEnrollmentMessage({ op: Op.enrolled, credential: enrollment.credential }),
    );
  }

  async #renew(ctx: MessageContext, peer: VerifiedPeer): Promise<void> {
    let credential: Uint8Array;
    try {
      this.#assertNotRevoked(peer);
      // Membership first: a stranger's history is not written to the authority's store.
      if ((await this.#authority.member(peer.identifier)) === undefined) {
        throw notFound(
          'ERR_MEMBER_NOT_FOUND',
          `\`${peer.identifier}\` is not a member of this authority`,
        );
      }
      // A member's old key (rotated out, perhaps leaked) must not get credentials: the history
      // presented must be the one the authority knows or extend it.
      await this.#identities.import(peer.identity.changeHistory, {
        expectedIdentifier: peer.identifier,
      });
      credential = await this.#authority.issueCredential(peer.identity, this.#clock.nowSeconds());
    } catch (error) {
      const code = isMandateError(error) && REFUSALS.has(error.code) ? error.code : undefined;
      await this.#refuse(ctx, peer, code ?? 'ERR_ENROLLMENT_FAILED', error);
      return;
    }
    const { expiresAt } = decodeCredential(credential);
    this.#logger.info('enrollment: renewed', { identifier: peer.identifier, expiresAt });
    this.#onEvent?.({ type: 'renewed', identifier: peer.identifier, expiresAt });
    await this.#reply(ctx, encodeEnrollmentMessage({ op: Op.enrolled, credential }));
  }

  /**
   * The deny-set as of now, for the identity the request acts for (the channel's verification
   * checked it too, at the handshake and at this delivery; this check holds whatever the listener).
   */
  #assertNotRevoked(peer: VerifiedPeer): void {
    this.#denySet.assertNoneRevoked([peer.identifier], this.#clock.nowSeconds());
  }

  async #refuse(
    ctx: MessageContext,
    peer: VerifiedPeer | undefined,
    code: ErrorCode,
    error?: unknown,
  ): Promise<void> {
    // The peer learns the stable code only; the local log also gets the authority's reason
    // (e.g. `expired`, the ERR_TICKET_INVALID cause), never the code presented.
    this.#logger.warn('enrollment: refused', {
      identifier: peer?.identifier,
      reason: code,
      detail: detailOf(error),
    });
    this.#onEvent?.({ type: 'refused', identifier: peer?.identifier, reason: code });
    await this.#reply(ctx, encodeEnrollmentMessage({ op: Op.refused, code }));
  }

  async #reply(ctx: MessageContext, payload: Uint8Array): Promise<void> {
    try {
      await ctx.reply(payload);
    } catch (error) {
      // The channel or connection is gone: a used ticket stays used (docs/spec/enrollment.md).
      this.#logger.warn('enrollment: answer lost', { reason: detailOf(error) });
    }
  }

  /**
   * Removes the service's worker and waits for the request being handled, if any, so that the
   * store is not closed under its transaction.
   */
  async close(): Promise<void> {
    this.#closed = true;
    this.#router.unregisterWorker(this.address);
    await Promise.allSettled([...this.#inFlight]);
  }
}

function detailOf(error: unknown): string | undefined {
  if (error === undefined) return undefined;
  if (!isMandateError(error)) return 'unexpected error';
  const cause = error.cause;
  if (typeof cause === 'string') return `${error.code}: ${cause}`;
  if (isMandateError(cause)) return `${error.code}: ${cause.code}`;
  return error.code;
}

/**
 * Options of {@link redeemTicketOverChannel}.
 */
export interface RedeemTicketOptions {
  /** The authority the ticket names (its verified history, from the ticket). */
  readonly authority: VerifiedIdentity;
  /** This side's identity, the one the channel presented: the credential's subject. */
  readonly subject: VerifiedIdentity;
  /** Default 10 000: how long to wait for the answer. */
  readonly timeoutMs?: number;
  /** The service's address on the authority node; default `enroll`. */
  readonly serviceAddress?: string;
  readonly clock?: Clock;
}

/**
 * Options of {@link fetchCredentialOverChannel}.
 */
export interface FetchCredentialOptions {
  /** The authority to ask, as this side trusts it (a trust anchor's verified history). */
  readonly authority: VerifiedIdentity;
  /** This side's identity, the one the channel presented: a member, the credential's subject. */
  readonly subject: VerifiedIdentity;
  /** Default 10 000: how long to wait for the answer. */
  readonly timeoutMs?: number;
  /** The service's address on the authority node; default `enroll`. */
  readonly serviceAddress?: string;
  readonly clock?: Clock;
}

/** A credential from the authority, verified. */
export interface IssuedCredential {
  /** The credential (CredentialAndPurposeKey) exactly as received. */
  readonly credential: Uint8Array;
  readonly verified: VerifiedCredential;
  /**
   * The authority's history the credential verified against: the one given, or the newer one
   * (extending it) that the authority presented in the channel. Keep it as the trust anchor.
   */
  readonly authority: VerifiedIdentity;
}

/** What a redemption returns: the member's first credential. */
export type RedeemedTicket = IssuedCredential;

const timeoutError = (timeoutMs: number): MandateError =>
  timeout('ERR_ENROLLMENT_TIMEOUT', `the authority did not answer within ${timeoutMs} ms`);

function checkTimeout(timeoutMs: number): number {
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1)
    throw invalid('ERR_ARGUMENT_INVALID', '`timeoutMs` must be a positive integer');
  return timeoutMs;
}

/**
 * The redeemer side: sends the ticket's `code` to the enrollment service through `channel` and
 * returns the verified credential. Before anything is sent, the channel's peer must be the
 * ticket's authority (same identifier, a history equal to or extending the ticket's), else
 * `ERR_ENROLLMENT_AUTHORITY_MISMATCH` and the code never leaves this process. Open the channel
 * with `TrustPolicies.identifier(authority.identifier)` so that an impostor fails the handshake
 * already. Rejects with the authority's refusal (`ERR_TICKET_INVALID`, `ERR_ENROLLMENT_FORBIDDEN`,
 * `ERR_ENROLLMENT_MALFORMED`, `ERR_ENROLLMENT_FAILED`, `ERR_IDENTITY_HISTORY_*`),
 * `ERR_ENROLLMENT_MALFORMED` for an answer outside the protocol, `ERR_ENROLLMENT_TIMEOUT`, or the
 * `ERR_CREDENTIAL_*` code of a credential that does not verify.
 */
export async function redeemTicketOverChannel(
  router: Router,
  channel: Pick<SecureChannel, 'address' | 'peer' | 'allow'>,
  code: Uint8Array,
  options: RedeemTicketOptions,
): Promise<RedeemedTicket> {
  const timeoutMs = checkTimeout(options.timeoutMs ?? DEFAULT_ENROLLMENT_TIMEOUT_MS);
  if (!(code instanceof Uint8Array) || code.length !== CODE_BYTES)
    throw invalid('ERR_ARGUMENT_INVALID', `the enrollment code must be ${CODE_BYTES} bytes`);
  // The code is a bearer secret: whoever holds it enrolls. It goes to the ticket's authority only.
  const authority = authorityOf(channel.peer, options.authority, "the ticket's authority");
  // Not wiped after sending: the encryptor reads it later, from its mailbox.
  const answer = await request(router, channel, encodeEnrollmentMessage({ op: Op.redeem, code }), {
    timeoutMs,
    serviceAddress: options.serviceAddress,
  });
  return credentialOf(answer, authority, options, 'the enrollment');
}

/**
 * A member's side of renewal: asks the authority's enrollment service, through `channel`, for a
 * fresh credential for the channel's own identity (`options.subject`), and returns it verified
 * against `options.authority` with `subject` as its subject. Nothing is sent unless the channel's
 * peer is that authority (same identifier, a history equal to or extending the one given:
 * `ERR_ENROLLMENT_AUTHORITY_MISMATCH` otherwise); open the channel with
 * `TrustPolicies.identifier(authority.identifier)` so that an impostor fails the handshake
 * already. Rejects with the authority's refusal (`ERR_MEMBER_NOT_FOUND`, `ERR_AUTHORITY_POLICY`,
 * `ERR_IDENTITY_HISTORY_*`, `ERR_ENROLLMENT_FORBIDDEN`, `ERR_ENROLLMENT_MALFORMED`,
 * `ERR_ENROLLMENT_FAILED`), `ERR_ENROLLMENT_MALFORMED` for an answer outside the protocol,
 * `ERR_ENROLLMENT_TIMEOUT`, or the `ERR_CREDENTIAL_*` code of a credential that does not verify.
 */
export async function fetchCredentialOverChannel(
  router: Router,
  channel: Pick<SecureChannel, 'address' | 'peer' | 'allow'>,
  options: FetchCredentialOptions,
): Promise<IssuedCredential> {
  const timeoutMs = checkTimeout(options.timeoutMs ?? DEFAULT_ENROLLMENT_TIMEOUT_MS);
  const authority = authorityOf(channel.peer, options.authority, 'the authority');
  const answer = await request(router, channel, encodeEnrollmentMessage({ op: Op.renew }), {
    timeoutMs,
    serviceAddress: options.serviceAddress,
  });
  return credentialOf(answer, authority, options, 'the credential');
}

/** Sends one request to the service through `channel`; resolves with the answer's payload. */
function request(
  router: Router,
  channel: Pick<SecureChannel, 'address' | 'allow'>,
  payload: Uint8Array,
  options: { readonly timeoutMs: number; readonly serviceAddress: string | undefined },
): Promise<Uint8Array> {
  return requestOverChannel(router, channel, payload, {
    service: options.serviceAddress ?? ENROLLMENT_SERVICE_ADDRESS,
    timeoutMs: options.timeoutMs,
    clientPrefix: 'enroll-client',
    timeoutError: () => timeoutError(options.timeoutMs),
  });
}

/** The answer's credential, verified; the authority's refusal or a protocol error otherwise. */
function credentialOf(
  payload: Uint8Array,
  authority: VerifiedIdentity,
  options: { readonly subject: VerifiedIdentity; readonly clock?: Clock },
  what: string,
): IssuedCredential {
  let message: EnrollmentMessage;
  try {
    message = decodeEnrollmentMessage(payload, MAX_ANSWER_BYTES);
  } catch (cause) {
    throw invalid(MALFORMED, 'the authority answered outside the enrollment protocol', cause);
  }
  if (message.op === Op.refused) {
    const refusal = REFUSALS.get(message.code);
    if (refusal === undefined)
      throw invalid(MALFORMED, 'the authority refused with a code outside the enrollment protocol');
    throw new MandateError(
      refusal[0],
      refusal[1],
      `the authority \`${authority.identifier}\` refused ${what}`,
    );
  }
  if (message.op !== Op.enrolled) throw invalid(MALFORMED, 'the authority answered out of turn');
  const verified = verifyCredential(message.credential, {
    nowSeconds: (options.clock ?? systemClock).nowSeconds(),
    authorities: new Map([[authority.identifier, authority]]),
    subject: options.subject,
  });
  return { credential: message.credential, verified, authority };
}

/**
 * The authority's history to trust: the peer must be the expected authority, and present its
 * history or a newer one extending it (a shorter one is fine: the expected one is kept). A fork
 * means someone holds a key of the authority's past: refused like a stranger.
 */
function authorityOf(
  peer: VerifiedPeer,
  expected: VerifiedIdentity,
  described: string,
): VerifiedIdentity {
  const relation =
    peer.identifier === expected.identifier
      ? compareHistories(expected, peer.identity)
      : HistoryRelation.conflict;
  if (relation === HistoryRelation.conflict) {
    throw unauthorized(
      'ERR_ENROLLMENT_AUTHORITY_MISMATCH',
      `the channel's peer \`${peer.identifier}\` is not ${described} \`${expected.identifier}\``,
    );
  }
  return relation === HistoryRelation.newer ? peer.identity : expected;
}
