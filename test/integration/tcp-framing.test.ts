import { Socket } from 'node:net';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeEnvelope } from '../../src/routing/envelope.js';
import { localAddress, Router, TcpTransport, type Envelope } from '../../src/routing/index.js';

/*
 * TCP delivers a byte stream in chunks of any size: frames must come out the same however the
 * stream is cut — a header split across chunks, a body across several, many frames in one.
 */

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function receiver() {
  const router = new Router();
  const transport = new TcpTransport(router);
  cleanups.push(() => transport.close());
  const received: Envelope[] = [];
  let wake: (() => void) | undefined;
  let want = Infinity;
  router.registerWorker('sink', {
    handleMessage(_ctx, envelope) {
      received.push({ ...envelope, payload: envelope.payload.slice() });
      if (received.length >= want) wake?.();
    },
  });
  router.allowFromAnyConnection('sink');
  const listener = await transport.listen();
  const waitFor = (n: number): Promise<void> => {
    want = n;
    return received.length >= n
      ? Promise.resolve()
      : new Promise((resolve) => {
          wake = resolve;
        });
  };
  return { port: listener.port, received, waitFor, router };
}

function frameOf(envelope: Envelope): Uint8Array {
  const body = encodeEnvelope(envelope);
  const frame = new Uint8Array(4 + body.byteLength);
  new DataView(frame.buffer).setUint32(0, body.byteLength);
  frame.set(body, 4);
  return frame;
}

function patterned(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let j = 0; j < length; j++) bytes[j] = (j * seed + (j >> 8)) & 0xff;
  return bytes;
}

/** Connects a raw socket and writes `stream` in the pieces `cuts` makes, one write per turn. */
async function writeInPieces(port: number, stream: Uint8Array, cuts: readonly number[]) {
  const socket = new Socket();
  socket.on('error', () => undefined);
  socket.setNoDelay(true);
  socket.resume();
  cleanups.push(() => {
    socket.destroy();
  });
  await new Promise<void>((resolve) => socket.connect(port, '127.0.0.1', resolve));
  const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
  let from = 0;
  for (const to of [...points, stream.length]) {
    if (to <= from) continue;
    await new Promise<void>((resolve, reject) => {
      socket.write(stream.subarray(from, to), (error) => {
        if (error) reject(error);
        else resolve();
      });
    });
    // Let the receiver read before the next piece, so pieces tend to arrive as chunks of their own.
    await new Promise((resolve) => setImmediate(resolve));
    from = to;
  }
}

describe('tcp framing', () => {
  it('delivers every frame intact and in order however the byte stream is cut', async () => {
    const sizes = [0, 1, 200, 16 * 1024, 70_000];
    const arbPayloadSizes = fc.array(fc.constantFrom(...sizes), { minLength: 1, maxLength: 6 });
    await fc.assert(
      fc.asyncProperty(
        arbPayloadSizes,
        fc.array(fc.nat(), { maxLength: 12 }),
        fc.integer({ min: 1, max: 255 }),
        async (payloadSizes, cuts, seed) => {
          const r = await receiver();
          const envelopes = payloadSizes.map((size, i): Envelope => ({
            onwardRoute: [localAddress('sink')],
            returnRoute: [localAddress(`from-${i}`)],
            payload: patterned(size, seed + i),
          }));
          const frames = envelopes.map(frameOf);
          const stream = new Uint8Array(1 + frames.reduce((n, f) => n + f.length, 0));
          stream[0] = 1; // protocol version
          let at = 1;
          for (const f of frames) {
            stream.set(f, at);
            at += f.length;
          }
          await writeInPieces(r.port, stream, cuts);
          await r.waitFor(envelopes.length);
          // Buffer.equals: deep equality over 70 KB arrays is slow.
          expect(
            r.received.map((e, i) => Buffer.from(e.payload).equals(envelopes[i]!.payload)),
          ).toEqual(envelopes.map(() => true));
          expect(r.received.map((e) => e.returnRoute[1]?.value)).toEqual(
            envelopes.map((_, i) => `from-${i}`),
          );
          expect(r.router.droppedCount).toBe(0);
          for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
        },
      ),
      { numRuns: 40 },
    );
  }, 60_000);

  it('delivers byte-by-byte writes', async () => {
    const r = await receiver();
    const envelope: Envelope = {
      onwardRoute: [localAddress('sink')],
      returnRoute: [],
      payload: Uint8Array.from({ length: 40 }, (_, i) => i),
    };
    const frame = frameOf(envelope);
    const stream = new Uint8Array(1 + 2 * frame.length);
    stream[0] = 1;
    stream.set(frame, 1);
    stream.set(frame, 1 + frame.length);
    await writeInPieces(
      r.port,
      stream,
      Array.from({ length: stream.length }, (_, i) => i),
    );
    await r.waitFor(2);
    expect(r.received.map((e) => e.payload)).toEqual([envelope.payload, envelope.payload]);
  });
});
