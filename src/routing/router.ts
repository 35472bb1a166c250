import { conflict, invalid, notFound, silentLogger } from '../core/internal.js';
import type { Logger } from '../core/index.js';
import {
  localAddress,
  MAX_ROUTE_HOPS,
  prependAddress,
  stepRoute,
  TransportType,
  type Address,
} from './address.js';
import { checkEnvelope, type Envelope } from './envelope.js';

/** What a worker learns with each message, beside the envelope. */
export interface MessageContext {
  /** The local address the message was delivered to. */
  readonly address: string;
  /** The connection the message came in on (`tcp-3`, `memory-1`), undefined for a local send. */
  readonly sourceConnection: string | undefined;
  readonly router: Router;
  /**
   * What an in-process sender attached to this message (`send(envelope, { localInfo })`), e.g. a
   * secure channel's verified peer. Never on the wire: a message from a connection has none.
   */
  readonly localInfo?: unknown;
  /** Sends `payload` back along the message's return route, with this worker as return route. */
  reply(payload: Uint8Array): Promise<void>;
  /** Passes the envelope on along its remaining onward route, adding this worker to its return route. */
  forward(envelope: Envelope): Promise<void>;
}

/**
 * A message handler registered at a local address (`Router.registerWorker`).
 */
export interface Worker {
  /** Called once per message, in arrival order; the envelope's onward route no longer holds this worker. */
  handleMessage(ctx: MessageContext, envelope: Envelope): void | Promise<void>;
}

/** A transport moves envelopes to addresses of one non-local type. */
export interface Transport {
  readonly type: number;
  /** `envelope`'s onward route already has `address` removed. */
  send(address: Address, envelope: Envelope): Promise<void>;
  close(): Promise<void>;
}

/** A transport's side of one connection, as seen by the router. */
export interface ConnectionEndpoint {
  /** Writes `envelope` (whose onward route continues on the peer) to the connection. */
  send(envelope: Envelope): Promise<void>;
}

/**
 * What a transport gets from `Router.attachConnection`: the id of the connection and how it hands envelopes in.
 */
export interface ConnectionHandle {
  /** The connection's id, also the local address replies to the peer go to. */
  readonly id: string;
  /**
   * Hands an envelope received on the connection to the router (flow control applies). A
   * promise back means the worker it went to has a full mailbox (`maxQueued`): the connection
   * should read nothing more until the promise resolves.
   */
  receive(envelope: Envelope): void | Promise<void>;
  /** Removes the connection from the router. */
  detach(): void;
}

/**
 * Why the router dropped a message.
 */
export const DropReason = {
  /** No worker with that address. */
  workerNotFound: 'worker_not_found',
  /** The worker is not opened to the connection the message came in on. */
  flowControl: 'flow_control',
  /** The message names a non-local next hop; routers never relay network traffic by themselves. */
  notLocal: 'not_local',
  /** The envelope has no next hop or breaks the bounds once the connection is added. */
  invalid: 'invalid',
} as const;
export type DropReason = (typeof DropReason)[keyof typeof DropReason];

/**
 * A message the router dropped, and why (given to `RouterOptions.onDrop`).
 */
export interface DropEvent {
  readonly reason: DropReason;
  readonly connectionId: string;
  /** The local address the message was for, when there was one. */
  readonly address: string | undefined;
}

/** Options of a local send. */
export interface SendOptions {
  /** Surfaced to the receiving worker as `ctx.localInfo`; only local senders can set it. */
  readonly localInfo?: unknown;
}

/**
 * Options of {@link Router}.
 */
export interface RouterOptions {
  readonly logger?: Logger;
  /** Told about every message flow control or routing drops (after it is counted). */
  readonly onDrop?: (event: DropEvent) => void;
}

/** Options of {@link Router.registerWorker}. */
export interface RegisterWorkerOptions {
  /**
   * Messages queued for the worker at most before a connection that brings one more is asked to
   * stop reading until the queue is down to half (default: no bound). For workers that hand
   * network traffic on (a relay's forwarder, a channel's decryptor): a fast sender then meets
   * TCP's own flow control instead of filling this node's memory. Local sends are never held.
   */
  readonly maxQueued?: number;
}

interface Mailbox {
  readonly worker: Worker;
  /** This worker's own address, as the return route of what it sends. */
  readonly self: Address;
  readonly queue: Delivery[];
  running: boolean;
  readonly maxQueued: number | undefined;
  /** Connections waiting for the queue to come down (see RegisterWorkerOptions.maxQueued). */
  readonly held: (() => void)[];
}

/**
 * One message for a worker and its MessageContext, in one object: reply and forward are methods,
 * not closures made per message (a relay or a channel end handles every message of a stream).
 */
class Delivery implements MessageContext {
  readonly #self: Address;
  readonly #envelope: Envelope;

  constructor(
    readonly router: Router,
    readonly address: string,
    self: Address,
    readonly sourceConnection: string | undefined,
    readonly localInfo: unknown,
    envelope: Envelope,
  ) {
    this.#self = self;
    this.#envelope = envelope;
  }

  /** Runs `worker` on the message. */
  handOver(worker: Worker): void | Promise<void> {
    return worker.handleMessage(this, this.#envelope);
  }

  reply(payload: Uint8Array): Promise<void> {
    return this.router.send({
      onwardRoute: this.#envelope.returnRoute,
      returnRoute: [this.#self],
      payload,
    });
  }

  forward(next: Envelope): Promise<void> {
    return this.router.send({
      onwardRoute: next.onwardRoute,
      returnRoute: prependAddress(this.#self, next.returnRoute),
      payload: next.payload,
    });
  }
}

/** Lets the connections held by a full mailbox read again. */
function releaseHeld(mailbox: Mailbox): void {
  for (const resume of mailbox.held.splice(0)) resume();
}

/**
 * A node-local message bus (research/ockam.md §4.3). Workers register under local addresses;
 * `send` delivers to the worker the first onward address names, or hands the envelope to the
 * transport of that address's type. Each worker has a mailbox handled one message at a time.
 *
 * Flow control is deny by default: a message arriving on a connection reaches a worker only if
 * `allowFromConnection(worker, connection)` or `allowFromAnyConnection(worker)` was called;
 * otherwise it is dropped, counted and reported, never delivered. Local sends are allowed.
 */
export class Router {
  readonly #logger: Logger;
  readonly #onDrop: ((event: DropEvent) => void) | undefined;
  readonly #mailboxes = new Map<string, Mailbox>();
  readonly #connections = new Map<string, ConnectionEndpoint>();
  readonly #transports = new Map<number, Transport>();
  readonly #allowedFrom = new Map<string, Set<string>>();
  readonly #allowedFromAny = new Set<string>();
  readonly #onClosed = new Map<string, Set<() => void>>();
  #nextConnection = 1;
  #dropped = 0;

  constructor(options: RouterOptions = {}) {
    this.#logger = options.logger ?? silentLogger;
    this.#onDrop = options.onDrop;
  }

  /** Messages dropped so far (flow control, unknown worker, bad route). */
  get droppedCount(): number {
    return this.#dropped;
  }

  registerWorker(address: string, worker: Worker, options: RegisterWorkerOptions = {}): void {
    const self = localAddress(address);
    if (this.#mailboxes.has(address) || this.#connections.has(address)) {
      throw conflict('ERR_WORKER_EXISTS', `a worker is already registered at \`${address}\``);
    }
    const { maxQueued } = options;
    if (maxQueued !== undefined && (!Number.isSafeInteger(maxQueued) || maxQueued < 1))
      throw invalid('ERR_ARGUMENT_INVALID', '`maxQueued` must be a positive integer');
    this.#mailboxes.set(address, {
      worker,
      self,
      queue: [],
      running: false,
      maxQueued,
      held: [],
    });
  }

  unregisterWorker(address: string): void {
    const mailbox = this.#mailboxes.get(address);
    if (mailbox !== undefined) releaseHeld(mailbox);
    this.#mailboxes.delete(address);
    this.#allowedFrom.delete(address);
    this.#allowedFromAny.delete(address);
  }

  registerTransport(transport: Transport): void {
    if (transport.type === TransportType.local || this.#transports.has(transport.type)) {
      throw conflict(
        'ERR_TRANSPORT_EXISTS',
        `a transport for address type ${transport.type} is already registered`,
      );
    }
    this.#transports.set(transport.type, transport);
  }

  /** Opens `workerAddress` to messages arriving on connection `connectionId`. */
  allowFromConnection(workerAddress: string, connectionId: string): void {
    let set = this.#allowedFrom.get(workerAddress);
    if (set === undefined) this.#allowedFrom.set(workerAddress, (set = new Set()));
    set.add(connectionId);
  }

  /** Opens `workerAddress` to messages from every connection: a listener-level policy, never implied. */
  allowFromAnyConnection(workerAddress: string): void {
    this.#allowedFromAny.add(workerAddress);
  }

  /** Called by transports for each new connection. */
  attachConnection(prefix: string, endpoint: ConnectionEndpoint): ConnectionHandle {
    let id: string;
    do id = `${prefix}-${this.#nextConnection++}`;
    while (this.#mailboxes.has(id) || this.#connections.has(id));
    const self = localAddress(id);
    this.#connections.set(id, endpoint);
    return {
      id,
      receive: (envelope) => this.#receive(self, envelope),
      detach: () => {
        this.#connections.delete(id);
        for (const set of this.#allowedFrom.values()) set.delete(id);
        const callbacks = this.#onClosed.get(id);
        this.#onClosed.delete(id);
        for (const callback of callbacks ?? []) callback();
      },
    };
  }

  /**
   * Calls `callback` once when connection `connectionId` closes; does nothing for an address that
   * is not an open connection (a local worker). Returns a function that cancels the call. What
   * lives on a connection — the ends of secure channels that run over it — goes with it.
   */
  onConnectionClosed(connectionId: string, callback: () => void): () => void {
    if (!this.#connections.has(connectionId)) return () => undefined;
    let callbacks = this.#onClosed.get(connectionId);
    if (callbacks === undefined) this.#onClosed.set(connectionId, (callbacks = new Set()));
    // A wrapper of its own, so the same callback watched twice is cancelled one watch at a time.
    const once = (): void => {
      callback();
    };
    callbacks.add(once);
    return () => {
      callbacks.delete(once);
    };
  }

  /** A local send: allowed to any worker, connection or transport. */
  async send(envelope: Envelope, options: SendOptions = {}): Promise<void> {
    checkEnvelope(envelope);
    const { next, rest } = stepRoute(envelope.onwardRoute);
    const stepped: Envelope = {
      onwardRoute: rest,
      returnRoute: envelope.returnRoute,
      payload: envelope.payload,
    };
    if (next.type !== TransportType.local) {
      const transport = this.#transports.get(next.type);
      if (transport === undefined) {
        throw invalid('ERR_ROUTE_INVALID', `no transport for address type ${next.type}`);
      }
      await transport.send(next, stepped);
      return;
    }
    const connection = this.#connections.get(next.value);
    if (connection !== undefined) {
      await connection.send(stepped);
      return;
    }
    const mailbox = this.#mailboxes.get(next.value);
    if (mailbox === undefined) {
      throw notFound('ERR_WORKER_NOT_FOUND', `no worker at \`${next.value}\``);
    }
    this.#enqueue(mailbox, next.value, undefined, stepped, options.localInfo);
  }

  /** `from`: the connection's own local address (its id), validated once when it attached. */
  #receive(from: Address, arrived: Envelope): Promise<void> | undefined {
    const connectionId = from.value;
    const next = arrived.onwardRoute[0];
    if (next === undefined) {
      this.#drop(DropReason.invalid, connectionId, undefined);
      return;
    }
    if (next.type !== TransportType.local) {
      this.#drop(DropReason.notLocal, connectionId, undefined);
      return;
    }
    const address = next.value;
    const mailbox = this.#mailboxes.get(address);
    const connection = this.#connections.get(address);
    if (mailbox === undefined && connection === undefined) {
      this.#drop(DropReason.workerNotFound, connectionId, address);
      return;
    }
    if (!this.#allowedFromAny.has(address) && !this.#allowedFrom.get(address)?.has(connectionId)) {
      this.#drop(DropReason.flowControl, connectionId, address);
      return;
    }
    if (arrived.returnRoute.length >= MAX_ROUTE_HOPS) {
      this.#drop(DropReason.invalid, connectionId, address);
      return;
    }
    const envelope: Envelope = {
      onwardRoute: arrived.onwardRoute.slice(1),
      returnRoute: prependAddress(from, arrived.returnRoute),
      payload: arrived.payload,
    };
    if (mailbox !== undefined) {
      this.#enqueue(mailbox, address, connectionId, envelope);
      if (mailbox.maxQueued !== undefined && mailbox.queue.length >= mailbox.maxQueued)
        return new Promise((resolve) => mailbox.held.push(resolve));
    } else if (connection !== undefined) {
      connection.send(envelope).catch((error: unknown) => {
        this.#logger.warn('routing: forwarding between connections failed', {
          connection: connectionId,
          error: String(error),
        });
      });
    }
    return undefined;
  }

  #drop(reason: DropReason, connectionId: string, address: string | undefined): void {
    this.#dropped++;
    this.#logger.warn('routing: message dropped', { reason, connection: connectionId, address });
    this.#onDrop?.({ reason, connectionId, address });
  }

  #enqueue(
    mailbox: Mailbox,
    address: string,
    sourceConnection: string | undefined,
    envelope: Envelope,
    localInfo?: unknown,
  ): void {
    mailbox.queue.push(
      new Delivery(this, address, mailbox.self, sourceConnection, localInfo, envelope),
    );
    if (!mailbox.running) void this.#drain(mailbox);
  }

  async #drain(mailbox: Mailbox): Promise<void> {
    mailbox.running = true;
    // Yield first so a send never runs the worker inside the sender's call stack.
    await Promise.resolve();
    for (let item = mailbox.queue.shift(); item !== undefined; item = mailbox.queue.shift()) {
      if (mailbox.held.length > 0 && mailbox.queue.length <= (mailbox.maxQueued ?? 0) / 2)
        releaseHeld(mailbox);
      try {
        await item.handOver(mailbox.worker);
      } catch (error) {
        this.#logger.warn('routing: worker failed', {
          address: item.address,
          error: String(error),
        });
      }
    }
    mailbox.running = false;
  }

  /** Closes every registered transport (listeners, connections, pending sends). */
  async close(): Promise<void> {
    await Promise.all([...this.#transports.values()].map((t) => t.close()));
  }
}
