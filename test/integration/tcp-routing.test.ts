import { createServer, Socket, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { collector } from '../helpers/collector.js';
import type { MandateError } from '../../src/core/index.js';
import { decodeEnvelope } from '../../src/routing/internal.js';
import {
  localAddress,
  Router,
  TcpTransport,
  TransportType,
  type TcpTransportOptions,
} from '../../src/routing/index.js';

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (b: Uint8Array): string => new TextDecoder().decode(b);
const tcp = (value: string) => ({ type: TransportType.tcp, value });

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((f) => f()));
});

function tcpNode(options: TcpTransportOptions = {}) {
  const router = new Router();
  const transport = new TcpTransport(router, options);
  cleanups.push(() => transport.close());
  return { router, transport };
}

function rawServer(onSocket: (socket: Socket) => void): Promise<{ server: Server; port: number }> {
  const server = createServer(onSocket);
  const sockets = new Set<Socket>();
  server.on('connection', (s) => sockets.add(s));
  cleanups.push(
    () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => {
          resolve();
        });
      }),
  );
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const a = server.address();
      resolve({ server, port: typeof a === 'object' && a !== null ? a.port : 0 });
    });
  });
}

describe('tcp transport', () => {
  it('echoes across two routers', async () => {
    const b = tcpNode();
    b.router.registerWorker('echo', {
      async handleMessage(ctx, envelope) {
        await ctx.reply(envelope.payload);
      },
    });
    b.router.allowFromAnyConnection('echo');
    const listener = await b.transport.listen();
    const a = tcpNode();
    const app = collector();
    a.router.registerWorker('app', app);
    a.router.allowFromConnection('app', a.transport.connect(listener.address.value));
    await a.router.send({
      onwardRoute: [listener.address, localAddress('echo')],
      returnRoute: [localAddress('app')],
      payload: bytes('over tcp'),
    });
    await app.waitFor(1);
    expect(str(app.received[0]!.payload)).toBe('over tcp');
  });

  it('drops a network message to a worker not opened to the connection', async () => {
    const b = tcpNode();
    const secret = collector();
    b.router.registerWorker('secret', secret);
    const open = collector();
    b.router.registerWorker('open', open);
    b.router.allowFromAnyConnection('open');
    const listener = await b.transport.listen();
    const a = tcpNode();
    for (const to of ['secret', 'open']) {
      await a.router.send({
        onwardRoute: [listener.address, localAddress(to)],
        returnRoute: [],
        payload: bytes(to),
      });
    }
    await open.waitFor(1);
    expect(secret.received).toEqual([]);
    expect(b.router.droppedCount).toBe(1);
  });

  it('closes a connection that announces a frame over the maximum', async () => {
    const closed: (MandateError | undefined)[] = [];
    const b = tcpNode({ maxFrameBytes: 1024, onConnectionClosed: (_id, e) => closed.push(e) });
    const listener = await b.transport.listen();
    const socket = new Socket();
    const ended = new Promise<void>((resolve) =>
      socket.on('close', () => {
        resolve();
      }),
    );
    socket.on('error', () => undefined);
    socket.resume();
    socket.connect(listener.port, '127.0.0.1', () => {
      const header = Buffer.alloc(5);
      header[0] = 1;
      header.writeUInt32BE(1025, 1);
      socket.write(header);
    });
    await ended;
    expect(closed.map((e) => e?.code)).toEqual(['ERR_FRAME_TOO_LARGE']);
    // And refuses to send one.
    const a = tcpNode({ maxFrameBytes: 16 });
    await expect(
      a.router.send({
        onwardRoute: [listener.address, localAddress('x')],
        returnRoute: [],
        payload: new Uint8Array(64),
      }),
    ).rejects.toMatchObject({ code: 'ERR_FRAME_TOO_LARGE' });
  });

  it('closes a connection on a wrong protocol version or a malformed envelope', async () => {
    const closed: (string | undefined)[] = [];
    const b = tcpNode({ onConnectionClosed: (_id, e) => closed.push(e?.code) });
    const listener = await b.transport.listen();
    for (const data of [Buffer.from([2]), Buffer.from([1, 0, 0, 0, 2, 0xff, 0xff])]) {
      const socket = new Socket();
      socket.on('error', () => undefined);
      socket.resume();
      const ended = new Promise<void>((resolve) =>
        socket.on('close', () => {
          resolve();
        }),
      );
      socket.connect(listener.port, '127.0.0.1', () => socket.write(data));
      await ended;
    }
    expect(closed).toEqual(['ERR_TRANSPORT_PROTOCOL', 'ERR_ENVELOPE_MALFORMED']);
  });

  it('closes an idle connection', async () => {
    const closed: (string | undefined)[] = [];
    const b = tcpNode({ idleTimeoutMs: 100, onConnectionClosed: (_id, e) => closed.push(e?.code) });
    b.router.registerWorker('sink', collector());
    b.router.allowFromAnyConnection('sink');
    const listener = await b.transport.listen();
    const aClosed: (string | undefined)[] = [];
    const a = tcpNode({ onConnectionClosed: (_id, e) => aClosed.push(e?.code) });
    await a.router.send({
      onwardRoute: [listener.address, localAddress('sink')],
      returnRoute: [],
      payload: bytes('once'),
    });
    await new Promise((r) => setTimeout(r, 400));
    expect(closed).toEqual(['ERR_TRANSPORT_TIMEOUT']);
    expect(aClosed).toEqual([undefined]);
  });

  it('times out a handshake and rejects what was queued', async () => {
    const { port } = await rawServer(() => undefined);
    const a = tcpNode({ handshakeTimeoutMs: 100 });
    await expect(
      a.router.send({
        onwardRoute: [tcp(`127.0.0.1:${port}`)],
        returnRoute: [],
        payload: bytes(''),
      }),
    ).rejects.toMatchObject({ code: 'ERR_TRANSPORT_TIMEOUT' });
  });

  it('names why a listen fails: a port in use, an address not of this machine', async () => {
    const first = tcpNode();
    const { port } = await first.transport.listen();
    const second = tcpNode();
    await expect(second.transport.listen({ port })).rejects.toMatchObject({
      code: 'ERR_TRANSPORT_ADDRESS_IN_USE',
      kind: 'conflict',
      message: expect.stringContaining(`127.0.0.1:${String(port)}`) as unknown,
    });
    await expect(second.transport.listen({ host: '192.0.2.1', port: 0 })).rejects.toMatchObject({
      code: 'ERR_TRANSPORT_ADDRESS_UNAVAILABLE',
    });
  });

  it('reports an unreachable peer', async () => {
    const { server, port } = await rawServer(() => undefined);
    await new Promise<void>((r) =>
      server.close(() => {
        r();
      }),
    );
    const a = tcpNode();
    await expect(
      a.router.send({
        onwardRoute: [tcp(`127.0.0.1:${port}`)],
        returnRoute: [],
        payload: bytes(''),
      }),
    ).rejects.toMatchObject({ code: 'ERR_TRANSPORT_UNREACHABLE' });
    await expect(
      a.router.send({ onwardRoute: [tcp('no-port')], returnRoute: [], payload: bytes('') }),
    ).rejects.toMatchObject({ code: 'ERR_ROUTE_INVALID' });
  });

  it('bounds the send queue and rejects pending sends on a clean shutdown', async () => {
    const { port } = await rawServer(() => undefined); // never answers the version byte
    const a = tcpNode({ maxQueuedFrames: 4 });
    const sends = Array.from({ length: 6 }, () =>
      a.router
        .send({ onwardRoute: [tcp(`127.0.0.1:${port}`)], returnRoute: [], payload: bytes('x') })
        .then(
          () => 'sent',
          (e: unknown) => (e as MandateError).code,
        ),
    );
    await new Promise((r) => setTimeout(r, 20));
    await a.transport.close();
    expect(await Promise.all(sends)).toEqual([
      'ERR_TRANSPORT_CLOSED',
      'ERR_TRANSPORT_CLOSED',
      'ERR_TRANSPORT_CLOSED',
      'ERR_TRANSPORT_CLOSED',
      'ERR_TRANSPORT_BACKPRESSURE',
      'ERR_TRANSPORT_BACKPRESSURE',
    ]);
    await expect(
      a.router.send({
        onwardRoute: [tcp(`127.0.0.1:${port}`)],
        returnRoute: [],
        payload: bytes(''),
      }),
    ).rejects.toMatchObject({ code: 'ERR_TRANSPORT_CLOSED' });
  });

  it('delivers 1,000 messages in order under backpressure', async () => {
    const b = tcpNode();
    const sink = collector();
    b.router.registerWorker('sink', sink);
    b.router.allowFromAnyConnection('sink');
    const listener = await b.transport.listen();
    const a = tcpNode({ maxQueuedFrames: 1000 });
    const filler = new Uint8Array(16 * 1024);
    await Promise.all(
      Array.from({ length: 1000 }, (_, i) => {
        const payload = new Uint8Array(filler.length + 4);
        new DataView(payload.buffer).setUint32(0, i);
        return a.router.send({
          onwardRoute: [listener.address, localAddress('sink')],
          returnRoute: [],
          payload,
        });
      }),
    );
    await sink.waitFor(1000);
    const order = sink.received.map((e) =>
      new DataView(e.payload.buffer, e.payload.byteOffset).getUint32(0),
    );
    expect(order).toEqual(Array.from({ length: 1000 }, (_, i) => i));
  });

  /**
   * A peer that writes the version byte and then reads nothing until `resume`; the index at the
   * start of each frame's payload is collected in the order frames arrive.
   */
  async function stalledPeer() {
    let connected: (socket: Socket) => void = () => undefined;
    const socket = new Promise<Socket>((resolve) => {
      connected = resolve;
    });
    const { port } = await rawServer((s) => {
      s.pause();
      s.write(Uint8Array.of(1));
      connected(s);
    });
    const frames: number[] = [];
    const resume = async (): Promise<void> => {
      const s = await socket;
      let pending = Buffer.alloc(0);
      let versionRead = false;
      s.on('data', (chunk: Buffer) => {
        pending = Buffer.concat([pending, chunk]);
        if (!versionRead && pending.length > 0) {
          versionRead = true;
          pending = pending.subarray(1);
        }
        while (pending.length >= 4 && pending.length >= 4 + pending.readUInt32BE(0)) {
          const body = pending.subarray(4, 4 + pending.readUInt32BE(0));
          const { payload } = decodeEnvelope(new Uint8Array(body));
          frames.push(new DataView(payload.buffer, payload.byteOffset).getUint32(0));
          pending = pending.subarray(4 + body.length);
        }
      });
      s.resume();
    };
    return { port, resume, frames };
  }

  const indexed = (i: number, size: number): Uint8Array => {
    const payload = new Uint8Array(size);
    new DataView(payload.buffer).setUint32(0, i);
    return payload;
  };

  it('holds senders at the send window while the peer reads nothing, then lets them on in order', async () => {
    const peer = await stalledPeer();
    const a = tcpNode({ sendWindowBytes: 64 * 1024, maxQueuedFrames: 10_000 });
    const total = 2000;
    let resolved = 0;
    const order: number[] = [];
    // One sender after another, as a channel end sends: each waits for its send.
    const sending = (async () => {
      for (let i = 0; i < total; i++) {
        await a.router.send({
          onwardRoute: [tcp(`127.0.0.1:${peer.port}`), localAddress('sink')],
          returnRoute: [],
          payload: indexed(i, 16 * 1024),
        });
        order.push(i);
        resolved++;
      }
    })();
    // The kernel's buffers fill, then the window: the sender stops well short of the end.
    let before = -1;
    while (resolved !== before) {
      before = resolved;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(resolved).toBeLessThan(total);
    await peer.resume();
    await sending;
    expect(order).toEqual(Array.from({ length: total }, (_, i) => i));
    while (peer.frames.length < total) await new Promise((r) => setTimeout(r, 10));
    expect(peer.frames).toEqual(Array.from({ length: total }, (_, i) => i));
  });

  it('a send within the window resolves before its frame is written, and a clean close still writes it', async () => {
    const b = tcpNode();
    const sink = collector();
    b.router.registerWorker('sink', sink);
    b.router.allowFromAnyConnection('sink');
    const listener = await b.transport.listen();
    const a = tcpNode({ sendWindowBytes: 1024 * 1024 });
    const route = [listener.address, localAddress('sink')];
    await a.router.send({ onwardRoute: route, returnRoute: [], payload: indexed(0, 8) });
    // A burst in one tick: every send resolves at once (all within the window)...
    const burst = Array.from({ length: 50 }, (_, i) =>
      a.router.send({ onwardRoute: route, returnRoute: [], payload: indexed(i + 1, 8 * 1024) }),
    );
    await Promise.all(burst);
    // ...and the transport's close hands every accepted frame to the OS before it closes.
    await a.transport.close();
    await sink.waitFor(51);
    expect(
      sink.received.map((e) => new DataView(e.payload.buffer, e.payload.byteOffset).getUint32(0)),
    ).toEqual(Array.from({ length: 51 }, (_, i) => i));
  });

  it('refuses a send window that is not a positive integer', () => {
    expect(() => new TcpTransport(new Router(), { sendWindowBytes: 0 })).toThrow(
      expect.objectContaining({ code: 'ERR_ARGUMENT_INVALID' }) as Error,
    );
  });

  it('a slow worker with a bounded mailbox holds the connection, and loses or reorders nothing', async () => {
    const b = tcpNode();
    const order: number[] = [];
    b.router.registerWorker(
      'slow',
      {
        async handleMessage(_ctx, envelope) {
          await new Promise((r) => setImmediate(r));
          order.push(
            new DataView(envelope.payload.buffer, envelope.payload.byteOffset).getUint32(0),
          );
        },
      },
      { maxQueued: 8 },
    );
    b.router.allowFromAnyConnection('slow');
    const listener = await b.transport.listen();
    const a = tcpNode({ maxQueuedFrames: 10_000 });
    const total = 600;
    for (let i = 0; i < total; i++)
      await a.router.send({
        onwardRoute: [listener.address, localAddress('slow')],
        returnRoute: [],
        payload: indexed(i, 4 * 1024),
      });
    while (order.length < total) await new Promise((r) => setTimeout(r, 10));
    expect(order).toEqual(Array.from({ length: total }, (_, i) => i));
  });
});
