import {
  ErrorKind,
  isMandateError,
  MandateError,
  type ErrorCode,
  type Logger,
} from '../core/index.js';
import { invalid, silentLogger, withJitter, timeout } from '../core/internal.js';
import { constantTimeEqual, randomBytes, randomUnit } from '../crypto/index.js';
import {
  decodeCbor,
  encodeCbor,
  expectArray,
  expectBytes,
  expectUint,
  type CborValue,
} from '../encoding/index.js';
import { decodeConstraintValue } from '../credentials/internal.js';
import { RELAY_ATTRIBUTE } from '../credentials/index.js';
import {
  localAddress,
  TransportType,
  type Envelope,
  type MessageContext,
  type Router,
} from '../routing/index.js';
import { RELAY_PREFIX } from '../routing/internal.js';
import type { Identifier } from '../identity/index.js';
import type { VerifiedPeer } from './identity-payload.js';
import { SecureChannelLocalInfo } from './secure-channel.js';

/**
 * Relays (Ockam's forwarders, research/ockam.md §4.4): an agent that cannot be dialled registers
 * a NAME at a relay node; the relay then runs a worker `forward_to_NAME` that passes every
 * envelope it receives on to the agent's connection, so others reach the agent with the route
 * `[connection-to-relay, forward_to_NAME, api]`. End-to-end channels run through it: the relay
 * moves frames it cannot decrypt.
 *
 * Registration takes two messages to the relay service (default address `relay`):
 *
 * 1. `register` **through a secure channel** to the relay, so the relay knows the agent's verified
 *    identity and credentials. It is allowed only when a credential carries the attribute `relay`
 *    whose set contains NAME or `*`. The relay answers (encrypted) with a fresh 32-byte secret.
 * 2. `bind` with that secret, **in the clear on the agent's connection**. The router tells the relay
 *    which connection it came in on (local knowledge, not a claim), and that connection becomes
 *    the route of `forward_to_NAME`. The secret only ever travelled encrypted before, so a bind
 *    proves it comes from the registering agent; each secret binds once.
 *
 * Messages (strict CBOR): `[1, 0, name: tstr]` register; `[1, 1, secret: bstr(32)]` bind;
 * answers `[1, 2, secret]` (registered), `[1, 3, name]` (bound), `[1, 4, code: tstr]` (refused).
 */
export const RELAY_SERVICE_ADDRESS = 'relay';
// One list of infrastructure attribute names lives in credentials/constraints.ts; `relay` is one.
export { RELAY_ATTRIBUTE };
export const DEFAULT_RELAY_TIMEOUT_MS = 10_000;

const VERSION = 1;
const Op = { register: 0, bind: 1, registered: 2, bound: 3, refused: 4 } as const;
const SECRET_BYTES = 32;
/** Frames a forwarder holds before the connections feeding it stop reading (Router maxQueued). */
const FORWARD_QUEUE = 64;

/** `forward_to_` plus the name stays within the 128 characters of a `/relay/NAME` segment. */
const MAX_NAME_LENGTH = 128 - RELAY_PREFIX.length;
const NAME = /^[A-Za-z0-9._-]+$/;
const MALFORMED: ErrorCode = 'ERR_RELAY_MALFORMED';
/** The codes a relay may answer with; anything else from the wire is malformed. */
const REFUSALS: ReadonlyMap<string, readonly [ErrorCode, ErrorKind]> = new Map([
  ['ERR_RELAY_FORBIDDEN', ['ERR_RELAY_FORBIDDEN', ErrorKind.forbidden]],
  ['ERR_RELAY_NAME_TAKEN', ['ERR_RELAY_NAME_TAKEN', ErrorKind.conflict]],
  ['ERR_RELAY_NAME_INVALID', ['ERR_RELAY_NAME_INVALID', ErrorKind.invalid]],
  ['ERR_RELAY_MALFORMED', ['ERR_RELAY_MALFORMED', ErrorKind.invalid]],
]);

/** Throws `ERR_RELAY_NAME_INVALID` unless `name` is 1–117 of `A-Z a-z 0-9 . _ -`. */
export function checkRelayName(name: string): string {
  if (typeof name !== 'string')
    throw invalid('ERR_RELAY_NAME_INVALID', 'a relay name must be text');
  if (name.length > MAX_NAME_LENGTH || !NAME.test(name)) {
    throw invalid(
      'ERR_RELAY_NAME_INVALID',
      `relay name \`${name.slice(0, 40)}\` is not 1–${MAX_NAME_LENGTH} of A-Z a-z 0-9 . _ -`,
    );
  }
  return name;
}

/** The local address of the forwarding worker for `name` (`/relay/NAME` in route text). */
export function relayAddress(name: string): string {
  return RELAY_PREFIX + checkRelayName(name);
}

/**
 * Whether `peer` holds a credential whose `relay` attribute (a set constraint) contains `name` or
 * `*`. Values that do not decode, or decode to another kind, grant nothing (fail closed).
 */
export function mayRegisterRelay(peer: VerifiedPeer, name: string): boolean {
  return peer.credentials.some((credential) => {
    const value = credential.attributes.get(RELAY_ATTRIBUTE);
    if (value === undefined) return false;
    try {
      const constraint = decodeConstraintValue(value);
      return (
        constraint.kind === 'set' &&
        (constraint.values.includes('*') || constraint.values.includes(name))
      );
    } catch {
      return false;
    }
  });
}

type RelayMessage =
  | { readonly op: typeof Op.register; readonly name: string }
  | { readonly op: typeof Op.bind; readonly secret: Uint8Array }
  | { readonly op: typeof Op.registered; readonly secret: Uint8Array }
  | { readonly op: typeof Op.bound; readonly name: string }
  | { readonly op: typeof Op.refused; readonly code: string };

function encodeRelayMessage(message: RelayMessage): Uint8Array {
  const body: CborValue =
    'name' in message ? message.name : 'secret' in message ? message.secret : message.code;
  return encodeCbor([VERSION, message.op, body]);
}

function decodeRelayMessage(bytes: Uint8Array): RelayMessage {
  const top = expectArray(
    decodeCbor(bytes, { errorCode: MALFORMED, what: 'relay message', maxBytes: 512, maxDepth: 2 }),
    MALFORMED,
    'relay message',
    3,
    3,
  );
  const version = expectUint(top[0], MALFORMED, 'relay message version');
  if (version !== VERSION)
    throw invalid(MALFORMED, `relay message version \`${version}\` is not 1`);
  const op = expectUint(top[1], MALFORMED, 'relay message type');
  const body = top[2];
  const text = (): string => {
    if (typeof body !== 'string') throw invalid(MALFORMED, 'relay message body must be text');
    return body;
  };
  switch (op) {
    case Op.register:
      return { op, name: text() };
    case Op.bound:
      return { op, name: text() };
    case Op.refused:
      return { op, code: text() };
    case Op.bind:
    case Op.registered:
      return { op, secret: expectBytes(body, MALFORMED, 'relay secret', SECRET_BYTES) };
    default:
      throw invalid(MALFORMED, `relay message type \`${op}\` is unknown`);
  }
}

/**
 * What a {@link RelayService} reports to its `onEvent`.
 */
export type RelayEvent =
  | { readonly type: 'registered'; readonly name: string; readonly identifier: Identifier }
  | { readonly type: 'bound'; readonly name: string; readonly connection: string }
  | { readonly type: 'refused'; readonly name: string | undefined; readonly reason: ErrorCode }
  | { readonly type: 'dropped'; readonly name: string; readonly reason: string };

/**
 * Options of {@link RelayService}.
 */
export interface RelayServiceOptions {
  /** The service's local address; default `relay`. */
  readonly address?: string;
  /**
   * The secure-channel listener registrations arrive through; the service opens itself to its
   * channels (`listener.allow`). Without it, the caller must open the service to the channels.
   */
  readonly listener?: { allow(workerAddress: string): void };
  readonly logger?: Logger;
  readonly onEvent?: (event: RelayEvent) => void;
  /** Tests only: the bind secrets. */
  readonly randomBytes?: (length: number) => Uint8Array;
}

interface Registration {
  readonly identifier: Identifier;
  /** The secret of the latest `register`, until it is bound. */
  pending: Uint8Array | undefined;
  /** How the peer of the latest `register` stands now (its channel's view), until bound. */
  pendingPeer: (() => VerifiedPeer | undefined) | undefined;
  /** The agent's connection once bound. */
  connection: string | undefined;
  /** The bound registration's peer as its registration channel sees it now. */
  currentPeer: () => VerifiedPeer | undefined;
  /** The peer last checked against the name, and whether it held the grant. */
  checkedPeer: VerifiedPeer | undefined;
  granted: boolean;
  forwarded: number;
}

/**
 * The relay side. Names belong to the identity that registered them first; the same identity
 * registering again (a reconnect) replaces the route once it binds, another identity gets
 * `ERR_RELAY_NAME_TAKEN`. The forwarding worker is opened to every connection (reaching the agent
 * is the point; the agent's own listener authenticates callers). A message from another
 * connection goes to the agent's connection, with the forwarder pushed on its return route; a
 * message from the agent's connection is a reply and continues along its own onward route, with
 * the agent's connection replaced by the forwarder on its return route (as Ockam's relay does),
 * so both ends address each other through `forward_to_NAME`. The registered agent is trusted like
 * every other local sender on the relay: its replies may name any local address of the relay, but
 * not a transport address (the relay dials nobody for it). A bound name forwards only while the
 * registration channel is open and the agent's credentials on it (refreshed in-band, expired or
 * revoked ones dropped) still grant the name.
 */
export class RelayService {
  readonly address: string;
  readonly #router: Router;
  readonly #logger: Logger;
  readonly #onEvent: ((event: RelayEvent) => void) | undefined;
  readonly #random: (length: number) => Uint8Array;
  readonly #names = new Map<string, Registration>();
  #closed = false;

  constructor(router: Router, options: RelayServiceOptions = {}) {
    this.address = options.address ?? RELAY_SERVICE_ADDRESS;
    this.#router = router;
    this.#logger = options.logger ?? silentLogger;
    this.#onEvent = options.onEvent;
    this.#random = options.randomBytes ?? randomBytes;
    router.registerWorker(this.address, {
      handleMessage: (ctx, envelope) => this.#handle(ctx, envelope),
    });
    // Binds arrive in the clear on the agent's connection; registers through channels.
    router.allowFromAnyConnection(this.address);
    options.listener?.allow(this.address);
  }

  /** The names bound to a connection, with the identity that owns each. */
  get relays(): ReadonlyMap<string, Identifier> {
    const out = new Map<string, Identifier>();
    for (const [name, r] of this.#names)
      if (r.connection !== undefined) out.set(name, r.identifier);
    return out;
  }

  async #handle(ctx: MessageContext, envelope: Envelope): Promise<void> {
    if (this.#closed) return;
    let message: RelayMessage;
    try {
      message = decodeRelayMessage(envelope.payload);
    } catch {
      await this.#refuse(ctx, undefined, MALFORMED);
      return;
    }
    if (message.op === Op.register) await this.#register(ctx, message.name);
    else if (message.op === Op.bind) await this.#bind(ctx, message.secret);
    else await this.#refuse(ctx, undefined, MALFORMED);
  }

  async #register(ctx: MessageContext, name: string): Promise<void> {
    const info = ctx.localInfo instanceof SecureChannelLocalInfo ? ctx.localInfo : undefined;
    const peer = info?.peer;
    // Only through a secure channel: a clear register has no verified identity.
    if (peer === undefined) return this.#refuse(ctx, name, 'ERR_RELAY_FORBIDDEN');
    try {
      checkRelayName(name);
    } catch {
      return this.#refuse(ctx, name, 'ERR_RELAY_NAME_INVALID');
    }
    if (!mayRegisterRelay(peer, name)) return this.#refuse(ctx, name, 'ERR_RELAY_FORBIDDEN');
    const existing = this.#names.get(name);
    if (existing !== undefined && existing.identifier !== peer.identifier) {
      return this.#refuse(ctx, name, 'ERR_RELAY_NAME_TAKEN');
    }
    const secret = this.#random(SECRET_BYTES);
    const currentPeer = info?.currentPeer ?? (() => undefined);
    if (existing === undefined) {
      this.#names.set(name, {
        identifier: peer.identifier,
        pending: secret,
        pendingPeer: currentPeer,
        connection: undefined,
        currentPeer: () => undefined,
        checkedPeer: undefined,
        granted: false,
        forwarded: 0,
      });
    } else {
      existing.pending = secret;
      existing.pendingPeer = currentPeer;
    }
    this.#onEvent?.({ type: 'registered', name, identifier: peer.identifier });
    await ctx.reply(encodeRelayMessage({ op: Op.registered, secret }));
  }

  async #bind(ctx: MessageContext, secret: Uint8Array): Promise<void> {
    const connection = ctx.sourceConnection;
    let found: [string, Registration] | undefined;
    for (const entry of this.#names) {
      const pending = entry[1].pending;
      if (pending !== undefined && constantTimeEqual(pending, secret)) found = entry;
    }
    if (connection === undefined || found === undefined) {
      return this.#refuse(ctx, undefined, 'ERR_RELAY_FORBIDDEN');
    }
    const [name, registration] = found;
    registration.pending = undefined;
    registration.currentPeer = registration.pendingPeer ?? (() => undefined);
    registration.pendingPeer = undefined;
    registration.checkedPeer = undefined;
    const first = registration.connection === undefined;
    registration.connection = connection;
    if (first) {
      const address = relayAddress(name);
      this.#router.registerWorker(
        address,
        { handleMessage: (c, e) => this.#forward(name, c, e) },
        // A sender faster than the connection it is forwarded to waits in TCP, not here.
        { maxQueued: FORWARD_QUEUE },
      );
      this.#router.allowFromAnyConnection(address);
    }
    this.#logger.info('relay: bound', { name, connection });
    this.#onEvent?.({ type: 'bound', name, connection });
    await ctx.reply(encodeRelayMessage({ op: Op.bound, name }));
  }

  async #forward(name: string, ctx: MessageContext, envelope: Envelope): Promise<void> {
    const registration = this.#names.get(name);
    const connection = registration?.connection;
    if (registration === undefined || connection === undefined) return;
    if (!this.#stillGranted(name, registration)) {
      this.#dropped(name, 'not_granted');
      return;
    }
    try {
      if (ctx.sourceConnection === connection) {
        // A reply from the agent: on along the route the forwarder recorded on the way in.
        const next = envelope.onwardRoute[0];
        if (next === undefined) {
          this.#dropped(name, 'no_route');
          return;
        }
        // That route starts with the caller's connection (or a local worker), never a transport
        // address: refusing one keeps the agent from making the relay dial out. Along a chain this
        // matters, as every agent registered at a downstream relay is trusted here as far as the
        // downstream relay is (docs/spec/relay.md, "Chaining").
        if (next.type !== TransportType.local) {
          this.#dropped(name, 'not_local');
          return;
        }
        // The return route starts with the agent's connection (the router added it); the
        // forwarder replaces it with itself, so answers come back through the relay by name.
        await ctx.forward({ ...envelope, returnRoute: envelope.returnRoute.slice(1) });
      } else {
        await ctx.forward({
          ...envelope,
          onwardRoute: [localAddress(connection), ...envelope.onwardRoute],
        });
      }
      registration.forwarded++;
    } catch (error) {
      this.#dropped(name, isMandateError(error) ? error.code : 'error');
    }
  }

  /**
   * A registration holds while its registration channel is open and the agent's credentials on
   * it — refreshed in-band, expired or revoked ones dropped — still grant the name. Re-checked
   * only when the channel's view of the peer changes.
   */
  #stillGranted(name: string, registration: Registration): boolean {
    const peer = registration.currentPeer();
    if (peer === undefined) return false;
    if (peer !== registration.checkedPeer) {
      registration.checkedPeer = peer;
      registration.granted =
        peer.identifier === registration.identifier && mayRegisterRelay(peer, name);
    }
    return registration.granted;
  }

  #dropped(name: string, reason: string): void {
    this.#logger.warn('relay: message dropped', { name, reason });
    this.#onEvent?.({ type: 'dropped', name, reason });
  }

  async #refuse(ctx: MessageContext, name: string | undefined, code: ErrorCode): Promise<void> {
    this.#logger.warn('relay: registration refused', { name, reason: code });
    this.#onEvent?.({ type: 'refused', name, reason: code });
    try {
      await ctx.reply(encodeRelayMessage({ op: Op.refused, code }));
    } catch {
      // No way back to the sender: nothing more to do.
    }
  }

  /** Removes the service and every forwarding worker. */
  close(): void {
    this.#closed = true;
    this.#router.unregisterWorker(this.address);
    for (const [name, r] of this.#names) {
      if (r.connection !== undefined) this.#router.unregisterWorker(relayAddress(name));
    }
    this.#names.clear();
  }
}

/**
 * Options of {@link registerRelay}: the channel to the relay, the connection it runs on, and the name.
 */
export interface RegisterRelayOptions {
  /** An established secure channel to the relay node (its local encryptor address and `allow`). */
  readonly channel: { readonly address: string; allow(workerAddress: string): void };
  /** The connection to the relay node the channel runs on (from the transport's `connect`). */
  readonly connection: string;
  readonly name: string;
  /** The relay service's address on the relay node; default `relay`. */
  readonly serviceAddress?: string;
  /** Local workers opened to the relay connection, so relayed callers reach them; default `['api']`. */
  readonly expose?: readonly string[];
  /** Default 10 000 per message. */
  readonly timeoutMs?: number;
}

/**
 * A registered relay name and the forwarding address on the relay node.
 */
export interface RelayRegistrationResult {
  readonly name: string;
  /** The forwarding worker's address on the relay node: `forward_to_NAME`. */
  readonly address: string;
}

let nextClient = 1;

/**
 * The agent side: registers `name` at the relay through `channel`, binds it to `connection`, and
 * opens `expose` to that connection. Rejects with the relay's refusal (`ERR_RELAY_FORBIDDEN`,
 * `ERR_RELAY_NAME_TAKEN`, `ERR_RELAY_NAME_INVALID`), `ERR_RELAY_MALFORMED` or `ERR_RELAY_TIMEOUT`.
 */
export async function registerRelay(
  router: Router,
  options: RegisterRelayOptions,
): Promise<RelayRegistrationResult> {
  const name = checkRelayName(options.name);
  const service = localAddress(options.serviceAddress ?? RELAY_SERVICE_ADDRESS);
  const timeoutMs = options.timeoutMs ?? DEFAULT_RELAY_TIMEOUT_MS;
  const client = `relay-client-${nextClient++}`;
  const answers: RelayMessage[] = [];
  let wake: (() => void) | undefined;
  router.registerWorker(client, {
    handleMessage: (_ctx, envelope) => {
      try {
        answers.push(decodeRelayMessage(envelope.payload));
      } catch (error) {
        answers.push({ op: Op.refused, code: isMandateError(error) ? error.code : MALFORMED });
      }
      wake?.();
    },
  });
  const next = async (): Promise<RelayMessage> => {
    const ready = answers.shift();
    if (ready !== undefined) return ready;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        wake = resolve;
        timer = setTimeout(() => {
          reject(timeout('ERR_RELAY_TIMEOUT', `the relay did not answer within ${timeoutMs} ms`));
        }, timeoutMs);
      });
    } finally {
      wake = undefined;
      clearTimeout(timer);
    }
    const answer = answers.shift();
    if (answer === undefined) throw invalid(MALFORMED, 'the relay answered nothing');
    return answer;
  };
  const refusal = (answer: RelayMessage): MandateError => {
    const kind = answer.op === Op.refused ? REFUSALS.get(answer.code) : undefined;
    if (answer.op === Op.refused && kind !== undefined) {
      return new MandateError(kind[0], kind[1], `the relay refused \`${name}\``);
    }
    return invalid(MALFORMED, 'the relay answered out of turn');
  };
  try {
    options.channel.allow(client);
    router.allowFromConnection(client, options.connection);
    await router.send({
      onwardRoute: [localAddress(options.channel.address), service],
      returnRoute: [localAddress(client)],
      payload: encodeRelayMessage({ op: Op.register, name }),
    });
    const registered = await next();
    if (registered.op !== Op.registered) throw refusal(registered);
    for (const address of options.expose ?? ['api']) {
      router.allowFromConnection(address, options.connection);
    }
    await router.send({
      onwardRoute: [localAddress(options.connection), service],
      returnRoute: [localAddress(client)],
      payload: encodeRelayMessage({ op: Op.bind, secret: registered.secret }),
    });
    const bound = await next();
    if (bound.op !== Op.bound || bound.name !== name) throw refusal(bound);
    return { name, address: relayAddress(name) };
  } finally {
    router.unregisterWorker(client);
  }
}

/**
 * What a {@link RelayRegistration} reports to its `onEvent`.
 */
export type RelayRegistrationEvent =
  | { readonly type: 'registered'; readonly attempt: number }
  | {
      readonly type: 'failed';
      readonly attempt: number;
      readonly reason: string;
      readonly retryInMs: number | undefined;
    }
  | { readonly type: 'lost' };

/**
 * Options of {@link RelayRegistration}: one attempt, and the backoff between attempts.
 */
export interface RelayRegistrationOptions {
  /**
   * One registration attempt: connect to the relay, open the channel, `registerRelay`. Resolves
   * once registered with `lost`, a promise that settles when that registration ends (its
   * connection dropped); rejects if the attempt fails.
   */
  readonly attempt: () => Promise<{ readonly lost: Promise<unknown> }>;
  /** The first retry delay, doubled after each failure; default 500. */
  readonly initialDelayMs?: number;
  /** Default 30 000. */
  readonly maxDelayMs?: number;
  readonly setTimer?: (callback: () => void, delayMs: number) => unknown;
  readonly clearTimer?: (handle: unknown) => void;
  readonly onEvent?: (event: RelayRegistrationEvent) => void;
  /** [0, 1) for the retry jitter (default: the CSPRNG); tests pin it. */
  readonly random?: () => number;
}

/** Refusals no retry can change: the agent's credentials or the name must change first. */
const FINAL_REFUSALS: ReadonlySet<string> = new Set([
  'ERR_RELAY_FORBIDDEN',
  'ERR_RELAY_NAME_INVALID',
]);

/**
 * Keeps an agent registered at a relay: runs `attempt`, and when it fails or the registration is
 * lost, tries again after an exponentially growing delay (reset by each success, each retry
 * jittered over the upper half of its delay so a swarm does not reconnect in lockstep), until
 * `stop()` or a final refusal (`ERR_RELAY_FORBIDDEN`, `ERR_RELAY_NAME_INVALID`).
 */
export class RelayRegistration {
  readonly #options: RelayRegistrationOptions;
  readonly #setTimer: (callback: () => void, delayMs: number) => unknown;
  readonly #clearTimer: (handle: unknown) => void;
  #delayMs: number;
  #attempts = 0;
  #timer: unknown;
  #stopped = false;
  #registered = false;

  constructor(options: RelayRegistrationOptions) {
    this.#options = options;
    this.#setTimer = options.setTimer ?? ((callback, delayMs) => setTimeout(callback, delayMs));
    this.#clearTimer =
      options.clearTimer ??
      ((handle) => {
        if (handle !== undefined) clearTimeout(handle as ReturnType<typeof setTimeout>);
      });
    this.#delayMs = options.initialDelayMs ?? 500;
  }

  get registered(): boolean {
    return this.#registered;
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  start(): void {
    void this.#run();
  }

  stop(): void {
    this.#stopped = true;
    this.#clearTimer(this.#timer);
    this.#timer = undefined;
  }

  async #run(): Promise<void> {
    if (this.#stopped) return;
    const attempt = ++this.#attempts;
    let lost: Promise<unknown>;
    try {
      ({ lost } = await this.#options.attempt());
    } catch (error) {
      const reason = isMandateError(error) ? error.code : 'error';
      const final = FINAL_REFUSALS.has(reason);
      if (final) this.#stopped = true;
      const retryInMs = this.#stopped ? undefined : this.#nextDelayMs();
      this.#options.onEvent?.({ type: 'failed', attempt, reason, retryInMs });
      if (retryInMs !== undefined) this.#schedule(retryInMs);
      return;
    }
    this.#registered = true;
    this.#delayMs = this.#options.initialDelayMs ?? 500;
    this.#options.onEvent?.({ type: 'registered', attempt });
    await lost.catch(() => undefined);
    this.#registered = false;
    if (this.#stopped) return;
    this.#options.onEvent?.({ type: 'lost' });
    this.#schedule(this.#nextDelayMs());
  }

  /** This retry's delay (jittered), doubling the next one up to the maximum. */
  #nextDelayMs(): number {
    const delayMs = this.#delayMs;
    this.#delayMs = Math.min(delayMs * 2, this.#options.maxDelayMs ?? 30_000);
    return withJitter(delayMs, this.#options.random ?? randomUnit);
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    this.#timer = this.#setTimer(() => {
      this.#timer = undefined;
      void this.#run();
    }, delayMs);
  }
}
