import { createServer, Socket, type Server } from 'node:net';
import { ErrorKind, invalid, MandateError, silentLogger, type Logger } from '../core/index.js';
import { TransportType, type Address } from './address.js';
import { decodeEnvelope, encodeEnvelope, MAX_ENVELOPE_BYTES, type Envelope } from './envelope.js';
import type { ConnectionHandle, Router, Transport } from './router.js';

/**
 * TCP transport (docs/spec/routing.md): each side first writes one protocol-version byte (1);
 * then every frame is a 4-byte big-endian length followed by that many bytes of envelope.
 * A frame longer than `maxFrameBytes` closes the connection before its body is read.
 */
export const TCP_PROTOCOL_VERSION = 1;

export interface TcpTransportOptions {
  /** Largest frame body accepted or sent (default MAX_ENVELOPE_BYTES, 272 KiB). */
  readonly maxFrameBytes?: number;
  /** Frames a connection holds while the socket is busy (default 1024); more is backpressure. */
  readonly maxQueuedFrames?: number;
  /** Close a connection without traffic for this long (default 300 000; 0 never). */
  readonly idleTimeoutMs?: number;
  /** Close a connection whose setup (connect and version byte) takes longer (default 10 000). */
  readonly handshakeTimeoutMs?: number;
  readonly logger?: Logger;
  /** Told once per connection when it closes; `error` says why, undefined for a clean close. */
  readonly onConnectionClosed?: (connectionId: string, error: MandateError | undefined) => void;
}

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

interface PendingFrame {
  readonly frame: Uint8Array;
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

class TcpConnection {
  readonly handle: ConnectionHandle;
  readonly closed: Promise<void>;
  #state: 'handshake' | 'open' | 'closed' = 'handshake';
  #queue: PendingFrame[] = [];
  readonly #inFlight = new Set<PendingFrame>();
  #waitingDrain = false;
  #buffer: Buffer = Buffer.alloc(0);
  #handshakeTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly socket: Socket,
    router: Router,
    readonly options: Required<Omit<TcpTransportOptions, 'onConnectionClosed'>> &
      Pick<TcpTransportOptions, 'onConnectionClosed'>,
    readonly onGone: (connection: TcpConnection) => void,
  ) {
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

  async send(envelope: Envelope): Promise<void> {
    if (this.#state === 'closed') throw closedError();
    const body = encodeEnvelope(envelope);
    if (body.byteLength > this.options.maxFrameBytes) {
      throw invalid(
        'ERR_FRAME_TOO_LARGE',
        `frame is ${body.byteLength} bytes, at most ${this.options.maxFrameBytes} allowed`,
      );
    }
    if (this.#queue.length >= this.options.maxQueuedFrames) {
      throw transportError(
        'ERR_TRANSPORT_BACKPRESSURE',
        ErrorKind.exhausted,
        `tcp send queue is full (${this.options.maxQueuedFrames} frames)`,
      );
    }
    const frame = new Uint8Array(4 + body.byteLength);
    new DataView(frame.buffer).setUint32(0, body.byteLength);
    frame.set(body, 4);
    await new Promise<void>((resolve, reject) => {
      this.#queue.push({ frame, resolve, reject });
      this.#pump();
    });
  }

  #pump(): void {
    while (this.#state === 'open' && !this.#waitingDrain) {
      const item = this.#queue.shift();
      if (item === undefined) return;
      this.#inFlight.add(item);
      const ready = this.socket.write(item.frame, (error) => {
        if (!this.#inFlight.delete(item)) return;
        if (error) item.reject(closedError(error));
        else item.resolve();
      });
      if (!ready) {
        this.#waitingDrain = true;
        this.socket.once('drain', () => {
          this.#waitingDrain = false;
          this.#pump();
        });
      }
    }
  }

  #onData(chunk: Buffer): void {
    if (this.#state === 'closed') return;
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    if (this.#state === 'handshake') {
      const version = this.#buffer[0];
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
      this.#buffer = this.#buffer.subarray(1);
      this.#state = 'open';
      clearTimeout(this.#handshakeTimer);
      if (this.options.idleTimeoutMs > 0) this.socket.setTimeout(this.options.idleTimeoutMs);
      this.#pump();
    }
    while (this.#state === 'open' && this.#buffer.length >= 4) {
      const length = this.#buffer.readUInt32BE(0);
      if (length > this.options.maxFrameBytes) {
        this.fail(
          invalid(
            'ERR_FRAME_TOO_LARGE',
            `tcp frame of ${length} bytes exceeds ${this.options.maxFrameBytes}`,
          ),
        );
        return;
      }
      if (this.#buffer.length < 4 + length) return;
      const body = Uint8Array.prototype.slice.call(this.#buffer, 4, 4 + length);
      this.#buffer = this.#buffer.subarray(4 + length);
      let envelope: Envelope;
      try {
        envelope = decodeEnvelope(body);
      } catch (error) {
        // A peer that sends garbage is not worth keeping: close rather than resynchronise.
        this.fail(error instanceof MandateError ? error : closedError(error));
        return;
      }
      this.handle.receive(envelope);
    }
  }

  /** Closes the connection once; pending sends are rejected (timeouts and unreachable as such). */
  fail(error: MandateError | undefined): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    clearTimeout(this.#handshakeTimer);
    this.handle.detach();
    const pending =
      error?.code === 'ERR_TRANSPORT_TIMEOUT' || error?.code === 'ERR_TRANSPORT_UNREACHABLE'
        ? error
        : closedError(error);
    for (const item of [...this.#queue, ...this.#inFlight]) item.reject(pending);
    this.#queue = [];
    this.#inFlight.clear();
    this.socket.destroy();
    if (error !== undefined) {
      this.options.logger.warn('routing: tcp connection closed', {
        connection: this.id,
        code: error.code,
      });
    }
    this.onGone(this);
    this.options.onConnectionClosed?.(this.id, error);
  }
}

/** Moves envelopes to `host:port` addresses over TCP; see TcpTransportOptions for the bounds. */
export class TcpTransport implements Transport {
  readonly type = TransportType.tcp;
  readonly #router: Router;
  readonly #options: TcpConnection['options'];
  readonly #servers = new Set<Server>();
  readonly #connections = new Set<TcpConnection>();
  readonly #outgoing = new Map<string, TcpConnection>();
  #closed = false;

  constructor(router: Router, options: TcpTransportOptions = {}) {
    this.#router = router;
    this.#options = {
      maxFrameBytes: options.maxFrameBytes ?? MAX_ENVELOPE_BYTES,
      maxQueuedFrames: options.maxQueuedFrames ?? 1024,
      idleTimeoutMs: options.idleTimeoutMs ?? 300_000,
      handshakeTimeoutMs: options.handshakeTimeoutMs ?? 10_000,
      logger: options.logger ?? silentLogger,
      ...(options.onConnectionClosed === undefined
        ? {}
        : { onConnectionClosed: options.onConnectionClosed }),
    };
    router.registerTransport(this);
  }

  /** Listens on `host` (default 127.0.0.1) and `port` (default 0: any free port). */
  listen(options: { readonly host?: string; readonly port?: number } = {}): Promise<TcpListener> {
    if (this.#closed) return Promise.reject(closedError());
    const host = options.host ?? '127.0.0.1';
    const server = createServer((socket) => {
      if (this.#closed) socket.destroy();
      else this.#adopt(socket);
    });
    this.#servers.add(server);
    return new Promise((resolve, reject) => {
      server.once('error', (error) => {
        this.#servers.delete(server);
        reject(
          transportError(
            'ERR_TRANSPORT_UNREACHABLE',
            ErrorKind.unavailable,
            `cannot listen on \`${host}\``,
            error,
          ),
        );
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
    const connection = this.#adopt(new Socket().connect({ host, port }));
    this.#outgoing.set(peer, connection);
    return connection.id;
  }

  async send(address: Address, envelope: Envelope): Promise<void> {
    this.connect(address.value);
    const connection = this.#outgoing.get(address.value);
    if (connection === undefined) throw closedError();
    await connection.send(envelope);
  }

  #adopt(socket: Socket): TcpConnection {
    const connection = new TcpConnection(socket, this.#router, this.#options, (gone) => {
      this.#connections.delete(gone);
      for (const [peer, c] of this.#outgoing) if (c === gone) this.#outgoing.delete(peer);
    });
    this.#connections.add(connection);
    return connection;
  }

  /** Stops listening, closes every connection (pending sends: ERR_TRANSPORT_CLOSED) and waits. */
  async close(): Promise<void> {
    this.#closed = true;
    const connections = [...this.#connections];
    for (const connection of connections) connection.fail(undefined);
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
