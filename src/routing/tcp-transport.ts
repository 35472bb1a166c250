import { createServer, Socket, type Server } from 'node:net';
import { ErrorKind, MandateError, type Logger } from '../core/index.js';
import { invalid, silentLogger } from '../core/internal.js';
import { TransportType, type Address } from './address.js';
import { decodeEnvelope, encodeEnvelope, MAX_ENVELOPE_BYTES, type Envelope } from './envelope.js';
import { FramePool } from './frame-pool.js';
import type { ConnectionHandle, Router, Transport } from './router.js';

/**
 * TCP transport (docs/spec/routing.md): each side first writes one protocol-version byte (1);
 * then every frame is a 4-byte big-endian length followed by that many bytes of envelope.
 * A frame longer than `maxFrameBytes` closes the connection before its body is read.
 */
export const TCP_PROTOCOL_VERSION = 1;

/** Default send window of a connection (TcpTransportOptions.sendWindowBytes). */
export const DEFAULT_SEND_WINDOW_BYTES = 64 * 1024;

/** How long a closing transport waits for accepted frames to reach the OS before it drops them. */
const CLOSE_FLUSH_MS = 1_000;

/**
 * Options of {@link TcpTransport}: frame and queue bounds, timeouts.
 */
export interface TcpTransportOptions {
  /** Largest frame body accepted or sent (default MAX_ENVELOPE_BYTES, 272 KiB). */
  readonly maxFrameBytes?: number;
  /**
   * Frames a connection holds, queued or being written, at most (default 1024): a send beyond it
   * fails at once with `ERR_TRANSPORT_BACKPRESSURE`.
   */
  readonly maxQueuedFrames?: number;
  /**
   * The send window (default 65 536, 64 KiB): a send resolves at once while the bytes queued
   * and being written on its connection stay within it, else once writes have made room. Frames
   * sent while a write is in flight go out together in the next (one `writev`).
   */
  readonly sendWindowBytes?: number;
  /** Close a connection without traffic for this long (default 300 000; 0 never). */
  readonly idleTimeoutMs?: number;
  /**
   * Close a connection whose setup takes longer (default 10 000): connect and the peer's version
   * byte, and for an incoming connection also the peer's first whole frame.
   */
  readonly handshakeTimeoutMs?: number;
  /**
   * Open connections, incoming and outgoing, at most (default 4096). An incoming socket beyond it
   * takes the place of the oldest incoming connection still in setup, or is destroyed at once
   * when there is none; `connect` beyond it throws `ERR_TRANSPORT_CONNECTION_LIMIT`.
   */
  readonly maxConnections?: number;
  /**
   * Incoming connections still in setup (the peer's version byte or first frame not yet read) at
   * most (default 256), and a quarter of that from one remote address. Beyond the per-address
   * bound an incoming socket is destroyed at once; beyond the total (or `maxConnections`), the
   * oldest connection still in setup is closed to make room (`ERR_TRANSPORT_EVICTED`). With
   * `handshakeTimeoutMs` this bounds what a flood of half-open connections can hold, and keeps it
   * from locking newcomers out.
   */
  readonly maxPendingConnections?: number;
  /**
   * Incoming connections from one remote IP address at most (default 1024, a quarter of
   * `maxConnections`' default): one host cannot take every slot. Beyond it an incoming socket
   * is destroyed at once.
   */
  readonly maxConnectionsPerAddress?: number;
  readonly logger?: Logger;
  /** Told once per connection when it closes; `error` says why, undefined for a clean close. */
  readonly onConnectionClosed?: (connectionId: string, error: MandateError | undefined) => void;
}

/**
 * A listening TCP socket of a {@link TcpTransport}.
 */
export interface TcpListener {
  readonly host: string;
  readonly port: number;
  /** The TCP address of the listener, for routes. */
  readonly address: Address;
}

const transportError = (
  code: `ERR_${string}`,
  kind: ErrorKind,
  message: string,
  cause?: unknown,
): MandateError => new MandateError(code, kind, message, cause === undefined ? {} : { cause });

const closedError = (cause?: unknown): MandateError =>
  transportError('ERR_TRANSPORT_CLOSED', ErrorKind.unavailable, 'tcp connection is closed', cause);

/** A sender waiting for room in a connection's send window. */
interface Waiter {
  readonly resolve: () => void;
  readonly reject: (error: MandateError) => void;
}

/** Parses `host:port`; `ERR_ROUTE_INVALID` otherwise. */
export function parseTcpPeer(value: string): { readonly host: string; readonly port: number } {
  const colon = value.lastIndexOf(':');
  const host = value.slice(0, colon);
  const portText = value.slice(colon + 1);
  const port = Number(portText);
  if (colon <= 0 || !/^[1-9][0-9]{0,4}$/.test(portText) || port > 65535) {
    throw invalid('ERR_ROUTE_INVALID', `tcp address \`${value}\` is not host:port`);
  }
  return { host, port };
}

/** Outgoing frame buffers, shared by every connection of the process (see FramePool). */
const framePool = new FramePool();
const takeFrame = (length: number): Uint8Array => framePool.take(length);

class TcpConnection {
  readonly handle: ConnectionHandle;
  readonly closed: Promise<void>;
  #state: 'handshake' | 'open' | 'closed' = 'handshake';
  /** Frames accepted and not yet handed to the socket, oldest first. */
  #queue: Uint8Array[] = [];
  /** Their bytes. */
  #queuedBytes = 0;
  /** Frames of the one write in flight (a writev of a whole batch), back to the pool once written. */
  #writing: Uint8Array[] | undefined;
  /** Their bytes. */
  #writingBytes = 0;
  /** Senders waiting for room in the window, in the order they sent. */
  #waiters: Waiter[] = [];
  /** Told once nothing is queued or being written (a graceful close waits for it). */
  #idle: (() => void) | undefined;
  /** Workers with full mailboxes this connection fed: it reads nothing more until they drain. */
  #holds = 0;
  #buffer: Buffer = Buffer.alloc(0);
  #handshakeTimer: NodeJS.Timeout | undefined;
  /** For an incoming connection: whether the peer's first whole frame arrived (setup's end). */
  #framed: boolean;

  /** The peer's IP address (for the per-address bounds). */
  readonly remote: string;

  constructor(
    readonly socket: Socket,
    readonly incoming: boolean,
    router: Router,
    readonly options: Required<Omit<TcpTransportOptions, 'onConnectionClosed'>> &
      Pick<TcpTransportOptions, 'onConnectionClosed'>,
    readonly onGone: (connection: TcpConnection) => void,
  ) {
    this.#framed = !incoming;
    this.remote = socket.remoteAddress ?? '';
    this.handle = router.attachConnection('tcp', { send: (e) => this.send(e) });
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        resolve();
      }),
    );
    socket.setNoDelay(true);
    if (options.handshakeTimeoutMs > 0) {
      this.#handshakeTimer = setTimeout(() => {
        this.fail(
          transportError('ERR_TRANSPORT_TIMEOUT', ErrorKind.timeout, 'tcp handshake timed out'),
        );
      }, options.handshakeTimeoutMs);
    }
    socket.on('data', (chunk: Buffer) => {
      this.#onData(chunk);
    });
    socket.on('timeout', () => {
      this.fail(
        transportError('ERR_TRANSPORT_TIMEOUT', ErrorKind.timeout, 'tcp connection was idle'),
      );
    });
    socket.on('error', (error) => {
      this.fail(
        this.#state === 'handshake'
          ? transportError(
              'ERR_TRANSPORT_UNREACHABLE',
              ErrorKind.unavailable,
              'tcp peer cannot be reached',
              error,
            )
          : closedError(error),
      );
    });
    socket.on('close', () => {
      this.fail(undefined);
    });
    socket.write(Uint8Array.of(TCP_PROTOCOL_VERSION));
  }

  get id(): string {
    return this.handle.id;
  }

  /**
   * Past setup and not closed: the peer's version byte was read and, for an incoming connection,
   * its first whole frame (a socket that only sent the version byte is still in setup, and times
   * out with it, instead of holding a slot until the idle timeout).
   */
  get established(): boolean {
    return this.#state === 'open' && this.#framed;
  }

  /**
   * Queues the envelope's frame behind every frame sent before it and resolves once the frame is
   * within the connection's send window (docs/spec/routing.md, "Send window"): at once while the
   * bytes queued and being written stay within `sendWindowBytes`, else when writes have made room
   * (senders resume in the order they sent). While the connection is still in setup nothing is
   * within the window: a send to a peer that never answers waits for it and fails with it. A
   * frame is never reordered behind a later one, and every accepted frame is written unless the
   * connection fails.
   */
  send(envelope: Envelope): Promise<void> {
    if (this.#state === 'closed') return Promise.reject(closedError());
    // The envelope is encoded after 4 bytes of room for the frame's length, into a buffer of the
    // frame pool: the payload is copied once, and the buffer is reused once the socket has it.
    let frame: Uint8Array;
    try {
      frame = encodeEnvelope(envelope, { headroom: 4, allocate: takeFrame });
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : closedError(error));
    }
    const length = frame.byteLength - 4;
    if (length > this.options.maxFrameBytes) {
      framePool.give(frame);
      return Promise.reject(
        invalid(
          'ERR_FRAME_TOO_LARGE',
          `frame is ${length} bytes, at most ${this.options.maxFrameBytes} allowed`,
        ),
      );
    }
    if (this.#queue.length + (this.#writing?.length ?? 0) >= this.options.maxQueuedFrames) {
      framePool.give(frame);
      return Promise.reject(
        transportError(
          'ERR_TRANSPORT_BACKPRESSURE',
          ErrorKind.exhausted,
          `tcp send queue is full (${this.options.maxQueuedFrames} frames)`,
        ),
      );
    }
    frame[0] = length >>> 24;
    frame[1] = (length >>> 16) & 0xff;
    frame[2] = (length >>> 8) & 0xff;
    frame[3] = length & 0xff;
    this.#queue.push(frame);
    this.#queuedBytes += frame.byteLength;
    this.#flush();
    if (this.#waiters.length === 0 && this.#hasRoom()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
    });
  }

  /** Open, and the bytes queued and being written within the window. */
  #hasRoom(): boolean {
    return (
      this.#state === 'open' &&
      this.#queuedBytes + this.#writingBytes <= this.options.sendWindowBytes
    );
  }

  /**
   * Hands every queued frame to the socket in one write (corked: one `writev`), unless a write
   * is still in flight: frames sent meanwhile wait and go together in the next one, so a busy
   * connection makes one system call per batch rather than per frame.
   */
  #flush(): void {
    if (this.#state !== 'open' || this.#writing !== undefined) return;
    if (this.#queue.length === 0) {
      const idle = this.#idle;
      this.#idle = undefined;
      idle?.();
      return;
    }
    const batch = this.#queue;
    this.#writing = batch;
    this.#writingBytes = this.#queuedBytes;
    this.#queue = [];
    this.#queuedBytes = 0;
    const last = batch.length - 1;
    const done = (error?: Error | null): void => {
      if (this.#writing !== batch) return;
      this.#writing = undefined;
      this.#writingBytes = 0;
      if (error) {
        this.fail(closedError(error));
        return;
      }
      // Written: the kernel has its own copy. (A batch whose write failed is left to the
      // collector: the socket may still hold it while it closes.)
      for (const frame of batch) framePool.give(frame);
      this.#release();
      this.#flush();
    };
    if (last === 0) this.socket.write(batch[0]!, done);
    else {
      this.socket.cork();
      for (let i = 0; i < last; i++) this.socket.write(batch[i]!);
      this.socket.write(batch[last]!, done);
      this.socket.uncork();
    }
  }

  /** Lets waiting senders on, oldest first, while there is room. */
  #release(): void {
    while (this.#waiters.length > 0 && this.#hasRoom()) this.#waiters.shift()!.resolve();
  }

  /**
   * Resolves once every queued frame has been handed to the OS (at once when none waits, or when
   * the connection is not open: frames queued in setup are never written), or it has closed.
   */
  whenWritten(): Promise<void> {
    if (this.#state !== 'open' || (this.#queue.length === 0 && this.#writing === undefined))
      return Promise.resolve();
    return new Promise((resolve) => {
      const before = this.#idle;
      this.#idle = () => {
        before?.();
        resolve();
      };
    });
  }

  /**
   * Frames are read in place: a body that lies within one chunk is decoded from a view of it
   * (the envelope's payload stays a view of the chunk, which nothing writes to again), and only
   * a frame split across chunks is assembled, once. Chunks are fresh buffers from the socket.
   */
  #onData(chunk: Buffer): void {
    if (this.#state === 'closed') return;
    const pending = this.#buffer;
    /** A frame body assembled from the pending bytes and this chunk, delivered first. */
    let assembled: Buffer | undefined;
    let data: Buffer;
    if (pending.length === 0) data = chunk;
    else if (
      this.#state === 'open' &&
      pending.length >= 4 &&
      4 + pending.readUInt32BE(0) - pending.length <= chunk.length
    ) {
      // The chunk completes a frame begun earlier (its length was checked when its header came):
      // copy just that frame's body together, then read the rest of the chunk in place.
      const missing = 4 + pending.readUInt32BE(0) - pending.length;
      assembled = Buffer.allocUnsafeSlow(pending.length - 4 + missing);
      pending.copy(assembled, 0, 4);
      chunk.copy(assembled, pending.length - 4, 0, missing);
      data = chunk.subarray(missing);
    } else data = Buffer.concat([pending, chunk]);
    if (this.#state === 'handshake') {
      const version = data[0];
      if (version === undefined) return;
      if (version !== TCP_PROTOCOL_VERSION) {
        this.fail(
          transportError(
            'ERR_TRANSPORT_PROTOCOL',
            ErrorKind.unsupported,
            `tcp peer speaks protocol version ${version}, not ${TCP_PROTOCOL_VERSION}`,
          ),
        );
        return;
      }
      data = data.subarray(1);
      this.#state = 'open';
      if (this.#framed) clearTimeout(this.#handshakeTimer);
      if (this.options.idleTimeoutMs > 0) this.socket.setTimeout(this.options.idleTimeoutMs);
      this.#flush();
      this.#release();
    }
    this.#readFrames(data, assembled);
  }

  /**
   * Delivers the whole frames of `data` (after `assembled`, a frame put together from earlier
   * bytes) and keeps the rest for the next chunk; stops early while held (see #holdUntil), the
   * unread frames kept for when it resumes.
   */
  #readFrames(data: Buffer, first: Uint8Array | undefined): void {
    let assembled = first;
    let at = 0;
    while (this.#state === 'open' && this.#holds === 0) {
      let body: Uint8Array;
      if (assembled !== undefined) {
        body = assembled;
        assembled = undefined;
      } else {
        if (data.length - at < 4) break;
        const length = data.readUInt32BE(at);
        if (length > this.options.maxFrameBytes) {
          this.fail(
            invalid(
              'ERR_FRAME_TOO_LARGE',
              `tcp frame of ${length} bytes exceeds ${this.options.maxFrameBytes}`,
            ),
          );
          return;
        }
        if (data.length - at < 4 + length) break;
        body = data.subarray(at + 4, at + 4 + length);
        at += 4 + length;
      }
      let envelope: Envelope;
      try {
        envelope = decodeEnvelope(body);
      } catch (error) {
        // A peer that sends garbage is not worth keeping: close rather than resynchronise.
        this.fail(error instanceof MandateError ? error : closedError(error));
        return;
      }
      if (!this.#framed) {
        this.#framed = true;
        clearTimeout(this.#handshakeTimer);
      }
      const held = this.handle.receive(envelope);
      if (held !== undefined) this.#holdUntil(held);
    }
    // A view keeps its whole chunk alive: none is kept once every byte has been read.
    this.#buffer = at === data.length ? Buffer.alloc(0) : data.subarray(at);
  }

  /**
   * Reads nothing more until `drained` — not even the rest of the chunk at hand, kept for later —
   * a worker this connection feeds has its mailbox full (RegisterWorkerOptions.maxQueued): one
   * connection adds at most one message beyond a full mailbox, and the peer is left to TCP's flow
   * control.
   */
  #holdUntil(drained: Promise<void>): void {
    if (this.#holds++ === 0) this.socket.pause();
    void drained.then(() => {
      if (--this.#holds !== 0) return;
      if (this.#state !== 'closed') {
        const rest = this.#buffer;
        this.#buffer = Buffer.alloc(0);
        this.#readFrames(rest, undefined);
      }
      if (this.#holds === 0 && this.#state !== 'closed') this.socket.resume();
    });
  }

  /** Closes the connection once; pending sends are rejected (timeouts and unreachable as such). */
  fail(error: MandateError | undefined, quiet = false): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    clearTimeout(this.#handshakeTimer);
    this.handle.detach();
    const pending =
      error?.code === 'ERR_TRANSPORT_TIMEOUT' || error?.code === 'ERR_TRANSPORT_UNREACHABLE'
        ? error
        : closedError(error);
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) waiter.reject(pending);
    this.#queue = [];
    this.#queuedBytes = 0;
    this.#writing = undefined;
    this.#writingBytes = 0;
    this.socket.destroy();
    const idle = this.#idle;
    this.#idle = undefined;
    idle?.();
    if (error !== undefined && !quiet) {
      this.options.logger.warn('routing: tcp connection closed', {
        connection: this.id,
        code: error.code,
      });
    }
    this.onGone(this);
    this.options.onConnectionClosed?.(this.id, error);
  }
}

const positiveInteger = (value: number, name: string): number => {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw invalid('ERR_ARGUMENT_INVALID', `\`${name}\` must be a positive integer`);
  }
  return value;
};

/** Refusals logged: the first, then every this many (a flood must not flood the log). */
const REFUSAL_LOG_EVERY = 1000;

/** Moves envelopes to `host:port` addresses over TCP; see TcpTransportOptions for the bounds. */
export class TcpTransport implements Transport {
  readonly type = TransportType.tcp;
  readonly #router: Router;
  readonly #options: TcpConnection['options'];
  readonly #servers = new Set<Server>();
  readonly #connections = new Set<TcpConnection>();
  /** Incoming connections still in setup when last looked at (see TcpConnection.established). */
  readonly #pending = new Set<TcpConnection>();
  /** Incoming connections per remote IP address. */
  readonly #perAddress = new Map<string, number>();
  readonly #outgoing = new Map<string, TcpConnection>();
  #refused = 0;
  #evicted = 0;
  #closed = false;

  constructor(router: Router, options: TcpTransportOptions = {}) {
    this.#router = router;
    this.#options = {
      maxFrameBytes: options.maxFrameBytes ?? MAX_ENVELOPE_BYTES,
      maxQueuedFrames: options.maxQueuedFrames ?? 1024,
      sendWindowBytes: positiveInteger(
        options.sendWindowBytes ?? DEFAULT_SEND_WINDOW_BYTES,
        'sendWindowBytes',
      ),
      idleTimeoutMs: options.idleTimeoutMs ?? 300_000,
      handshakeTimeoutMs: options.handshakeTimeoutMs ?? 10_000,
      maxConnections: positiveInteger(options.maxConnections ?? 4096, 'maxConnections'),
      maxPendingConnections: positiveInteger(
        options.maxPendingConnections ?? 256,
        'maxPendingConnections',
      ),
      maxConnectionsPerAddress: positiveInteger(
        options.maxConnectionsPerAddress ?? 1024,
        'maxConnectionsPerAddress',
      ),
      logger: options.logger ?? silentLogger,
      ...(options.onConnectionClosed === undefined
        ? {}
        : { onConnectionClosed: options.onConnectionClosed }),
    };
    router.registerTransport(this);
  }

  /** Open connections, incoming and outgoing (setup included). */
  get connectionCount(): number {
    return this.#connections.size;
  }

  /**
   * Incoming sockets destroyed on arrival: `maxConnections`, `maxPendingConnections` or
   * `maxConnectionsPerAddress` reached.
   */
  get refusedConnections(): number {
    return this.#refused;
  }

  /** Incoming connections closed while still in setup to make room for a newer one. */
  get evictedConnections(): number {
    return this.#evicted;
  }

  /** Listens on `host` (default 127.0.0.1) and `port` (default 0: any free port). */
  listen(options: { readonly host?: string; readonly port?: number } = {}): Promise<TcpListener> {
    if (this.#closed) return Promise.reject(closedError());
    const host = options.host ?? '127.0.0.1';
    const server = createServer((socket) => {
      if (this.#closed) socket.destroy();
      else this.#admit(socket);
    });
    this.#servers.add(server);
    return new Promise((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) => {
        this.#servers.delete(server);
        reject(listenError(host, options.port ?? 0, error));
      });
      server.listen(options.port ?? 0, host, () => {
        const bound = server.address();
        const port = typeof bound === 'object' && bound !== null ? bound.port : 0;
        resolve({ host, port, address: { type: TransportType.tcp, value: `${host}:${port}` } });
      });
    });
  }

  /** The id (on this router) of the connection to `host:port`, dialled on first use. */
  connect(peer: string): string {
    if (this.#closed) throw closedError();
    const existing = this.#outgoing.get(peer);
    if (existing !== undefined) return existing.id;
    const { host, port } = parseTcpPeer(peer);
    if (this.#connections.size >= this.#options.maxConnections) {
      throw transportError(
        'ERR_TRANSPORT_CONNECTION_LIMIT',
        ErrorKind.exhausted,
        `tcp transport already holds its maximum of ${this.#options.maxConnections} connections`,
      );
    }
    const connection = this.#adopt(new Socket().connect({ host, port }), false);
    this.#outgoing.set(peer, connection);
    return connection.id;
  }

  async send(address: Address, envelope: Envelope): Promise<void> {
    this.connect(address.value);
    const connection = this.#outgoing.get(address.value);
    if (connection === undefined) throw closedError();
    await connection.send(envelope);
  }

  /**
   * An incoming socket: adopted within the bounds, else destroyed before anything is read or
   * written, so a flood of sockets holds no more than the bounds' worth of connections and timers.
   */
  #admit(socket: Socket): void {
    const from = socket.remoteAddress ?? '';
    const o = this.#options;
    let refusal: string | undefined;
    if ((this.#perAddress.get(from) ?? 0) >= o.maxConnectionsPerAddress)
      refusal = 'max_connections_per_address';
    else if (
      this.#pending.size >= o.maxPendingConnections ||
      this.#connections.size >= o.maxConnections
    ) {
      if (!this.#makeRoom()) refusal = 'max_connections';
    }
    if (refusal === undefined) {
      this.#perAddress.set(from, (this.#perAddress.get(from) ?? 0) + 1);
      const connection = this.#adopt(socket, true);
      void connection.closed.then(() => {
        const left = (this.#perAddress.get(from) ?? 1) - 1;
        if (left <= 0) this.#perAddress.delete(from);
        else this.#perAddress.set(from, left);
      });
      return;
    }
    socket.destroy();
    this.#refused++;
    if (this.#refused % REFUSAL_LOG_EVERY === 1) {
      this.#options.logger.warn('routing: tcp connection refused', {
        reason: refusal,
        refused: this.#refused,
      });
    }
  }

  /**
   * When the bounds are full, makes room for one more incoming connection, or says there is
   * none (every connection is past setup). First drops the connections that left setup from the
   * pending set (lazily, here: at most maxPendingConnections checks, only when full); then, if
   * still full, closes the oldest connection in setup from the remote address that has the most
   * in setup — a flood's own sockets go first, and an honest peer, whose setup takes
   * milliseconds, gets in.
   */
  #makeRoom(): boolean {
    const byAddress = new Map<string, { count: number; oldest: TcpConnection }>();
    for (const c of this.#pending) {
      if (c.established) {
        this.#pending.delete(c);
        continue;
      }
      const seen = byAddress.get(c.remote);
      if (seen === undefined) byAddress.set(c.remote, { count: 1, oldest: c });
      else seen.count++;
    }
    if (
      this.#pending.size < this.#options.maxPendingConnections &&
      this.#connections.size < this.#options.maxConnections
    )
      return true;
    let most: { count: number; oldest: TcpConnection } | undefined;
    for (const entry of byAddress.values())
      if (most === undefined || entry.count > most.count) most = entry;
    if (most === undefined) return false;
    this.#evict(most.oldest);
    return true;
  }

  /** Closes a connection still in setup to make room for a newer one (counted, logged rarely). */
  #evict(connection: TcpConnection): void {
    this.#pending.delete(connection);
    this.#evicted++;
    if (this.#evicted % REFUSAL_LOG_EVERY === 1)
      this.#options.logger.warn('routing: tcp connection in setup evicted for a newer one', {
        evicted: this.#evicted,
      });
    connection.fail(
      transportError(
        'ERR_TRANSPORT_EVICTED',
        ErrorKind.exhausted,
        'tcp connection still in setup was closed to make room for a newer one',
      ),
      true,
    );
  }

  #adopt(socket: Socket, incoming: boolean): TcpConnection {
    const connection = new TcpConnection(socket, incoming, this.#router, this.#options, (gone) => {
      this.#connections.delete(gone);
      this.#pending.delete(gone);
      for (const [peer, c] of this.#outgoing) if (c === gone) this.#outgoing.delete(peer);
    });
    this.#connections.add(connection);
    if (incoming) this.#pending.add(connection);
    return connection;
  }

  /**
   * Stops listening, closes every connection and waits. Frames queued on an open connection are
   * handed to the OS first (for at most a second); sends to a connection still in setup, and
   * any left waiting, fail with ERR_TRANSPORT_CLOSED.
   */
  async close(): Promise<void> {
    this.#closed = true;
    const connections = [...this.#connections];
    await Promise.all(
      connections.map(async (connection) => {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          connection.whenWritten(),
          new Promise<void>((resolve) => {
            timer = setTimeout(resolve, CLOSE_FLUSH_MS);
          }),
        ]);
        clearTimeout(timer);
        connection.fail(undefined);
      }),
    );
    const servers = [...this.#servers].map(
      (server) =>
        new Promise<void>((resolve) => {
          server.close(() => {
            resolve();
          });
        }),
    );
    this.#servers.clear();
    await Promise.all([...servers, ...connections.map((c) => c.closed)]);
  }
}

/** Why a listen failed, named: the port taken, an address not of this machine, a privileged port. */
export function listenError(
  host: string,
  port: number,
  error: NodeJS.ErrnoException,
): MandateError {
  const where = `\`${host}:${String(port)}\``;
  switch (error.code) {
    case 'EADDRINUSE':
      return transportError(
        'ERR_TRANSPORT_ADDRESS_IN_USE',
        ErrorKind.conflict,
        `cannot listen on ${where}: the port is already in use (stop what holds it, or pick another port)`,
        error,
      );
    case 'EADDRNOTAVAIL':
      return transportError(
        'ERR_TRANSPORT_ADDRESS_UNAVAILABLE',
        ErrorKind.invalid,
        `cannot listen on ${where}: \`${host}\` is not an address of this machine`,
        error,
      );
    case 'EACCES':
      return transportError(
        'ERR_TRANSPORT_PERMISSION_DENIED',
        ErrorKind.forbidden,
        `cannot listen on ${where}: permission denied (ports below 1024 need privileges)`,
        error,
      );
    default:
      return transportError(
        'ERR_TRANSPORT_UNREACHABLE',
        ErrorKind.unavailable,
        `cannot listen on ${where}${error.code === undefined ? '' : ` (${error.code})`}`,
        error,
      );
  }
}
