import { afterEach, describe, expect, it } from 'vitest';
import { codeOf, expectCode } from '../../test/helpers/errors.js';
import { localAddress, TransportType, type Address } from './address.js';
import type { Envelope } from './envelope.js';
import { MemoryNetwork, MemoryTransport } from './memory-transport.js';
import { Router, type DropEvent, type MessageContext, type Worker } from './router.js';
import { createSeededPrng } from './seeded-prng.js';

const text = new TextEncoder();
const bytes = (s: string): Uint8Array => text.encode(s);
const str = (b: Uint8Array): string => new TextDecoder().decode(b);
const mem = (name: string): Address => ({ type: TransportType.memory, value: name });
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

interface Seen {
  readonly ctx: MessageContext;
  readonly envelope: Envelope;
}
function recorder(): Worker & { seen: Seen[] } {
  const seen: Seen[] = [];
  return {
    seen,
    handleMessage(ctx, envelope) {
      seen.push({ ctx, envelope });
    },
  };
}
const echo: Worker = {
  async handleMessage(ctx, envelope) {
    await ctx.reply(envelope.payload);
  },
};
const forwarder: Worker = {
  async handleMessage(ctx, envelope) {
    await ctx.forward(envelope);
  },
};

let transports: MemoryTransport[] = [];
afterEach(async () => {
  await Promise.all(transports.map((t) => t.close()));
  transports = [];
});
function node(network: MemoryNetwork, name: string, options = {}) {
  const drops: DropEvent[] = [];
  const router = new Router({ onDrop: (e) => drops.push(e) });
  const transport = new MemoryTransport(router, network, options);
  transports.push(transport);
  transport.listen(name);
  return { router, transport, drops };
}

describe('router, locally', () => {
  it('delivers to a worker and the reply follows the return route', async () => {
    const router = new Router();
    const app = recorder();
    router.registerWorker('echo', echo);
    router.registerWorker('app', app);
    await router.send({
      onwardRoute: [localAddress('echo')],
      returnRoute: [localAddress('app')],
      payload: bytes('hi'),
    });
    await settle();
    expect(app.seen).toHaveLength(1);
    expect(str(app.seen[0]!.envelope.payload)).toBe('hi');
    expect(app.seen[0]!.envelope.returnRoute).toEqual([localAddress('echo')]);
    expect(app.seen[0]!.ctx.sourceConnection).toBeUndefined();
  });

  it('keeps per-worker order and survives a failing worker', async () => {
    const router = new Router();
    const app = recorder();
    let calls = 0;
    router.registerWorker('app', app);
    router.registerWorker('boom', {
      handleMessage() {
        calls++;
        throw new Error('boom');
      },
    });
    for (let i = 0; i < 50; i++) {
      await router.send({
        onwardRoute: [localAddress('app')],
        returnRoute: [],
        payload: bytes(`${i}`),
      });
    }
    await router.send({ onwardRoute: [localAddress('boom')], returnRoute: [], payload: bytes('') });
    await router.send({ onwardRoute: [localAddress('boom')], returnRoute: [], payload: bytes('') });
    await settle();
    expect(app.seen.map((s) => str(s.envelope.payload))).toEqual(
      Array.from({ length: 50 }, (_, i) => `${i}`),
    );
    expect(calls).toBe(2);
  });

  it('rejects unknown workers, taken addresses, empty routes and unknown transports', async () => {
    const router = new Router();
    router.registerWorker('a', recorder());
    expectCode(() => {
      router.registerWorker('a', recorder());
    }, 'ERR_WORKER_EXISTS');
    const send = (onwardRoute: Address[]) =>
      router.send({ onwardRoute, returnRoute: [], payload: new Uint8Array() }).then(
        () => 'accepted',
        (error: unknown) =>
          codeOf(() => {
            throw error;
          }),
      );
    expect(await send([localAddress('nobody')])).toBe('ERR_WORKER_NOT_FOUND');
    expect(await send([])).toBe('ERR_ROUTE_INVALID');
    expect(await send([{ type: 9, value: 'x' }])).toBe('ERR_ROUTE_INVALID');
    const network = new MemoryNetwork();
    transports.push(new MemoryTransport(router, network));
    expectCode(() => new MemoryTransport(router, network), 'ERR_TRANSPORT_EXISTS');
    expect(await send([mem('nowhere')])).toBe('ERR_TRANSPORT_UNREACHABLE');
  });
});

describe('local info', () => {
  it('carries localInfo from a local send to the worker, never from the network or a reply', async () => {
    const network = new MemoryNetwork();
    const a = node(network, 'a');
    const b = node(network, 'b');
    const app = recorder();
    const seen = recorder();
    a.router.registerWorker('app', app);
    a.router.allowFromConnection('app', a.transport.connect('b'));
    b.router.registerWorker('echo', {
      async handleMessage(ctx, envelope) {
        seen.seen.push({ ctx, envelope });
        await echo.handleMessage(ctx, envelope);
      },
    });
    b.router.allowFromAnyConnection('echo');
    const info = { peer: 'alice' };
    await b.router.send(
      { onwardRoute: [localAddress('echo')], returnRoute: [], payload: bytes('local') },
      { localInfo: info },
    );
    await b.router.send({
      onwardRoute: [localAddress('echo')],
      returnRoute: [],
      payload: bytes(''),
    });
    // localInfo on a send that leaves the router is not carried.
    await a.router.send(
      {
        onwardRoute: [mem('b'), localAddress('echo')],
        returnRoute: [localAddress('app')],
        payload: bytes('net'),
      },
      { localInfo: info },
    );
    for (let i = 0; i < 3; i++) await settle();
    expect(seen.seen.map((s) => s.ctx.localInfo)).toEqual([info, undefined, undefined]);
    expect(app.seen).toHaveLength(1);
    expect(app.seen[0]!.ctx.localInfo).toBeUndefined();
  });
});

describe('memory transport and flow control', () => {
  it('does not deliver a network message to a worker not opened to the connection', async () => {
    const network = new MemoryNetwork();
    const a = node(network, 'a');
    const b = node(network, 'b');
    const secret = recorder();
    b.router.registerWorker('secret', secret);
    await a.router.send({
      onwardRoute: [mem('b'), localAddress('secret')],
      returnRoute: [],
      payload: bytes('x'),
    });
    // Nor through a connection address or onward to another transport.
    await a.router.send({
      onwardRoute: [mem('b'), mem('a'), localAddress('secret')],
      returnRoute: [],
      payload: bytes('x'),
    });
    await a.router.send({
      onwardRoute: [mem('b'), localAddress('nobody')],
      returnRoute: [],
      payload: bytes('x'),
    });
    await settle();
    expect(secret.seen).toEqual([]);
    expect(b.router.droppedCount).toBe(3);
    expect(b.drops.map((d) => d.reason)).toEqual(['flow_control', 'not_local', 'worker_not_found']);
  });

  it('echoes across two routers once opened, with the source connection', async () => {
    const network = new MemoryNetwork();
    const a = node(network, 'a');
    const b = node(network, 'b');
    const app = recorder();
    const seenOnB = recorder();
    b.router.registerWorker('echo', {
      async handleMessage(ctx, envelope) {
        seenOnB.seen.push({ ctx, envelope });
        await echo.handleMessage(ctx, envelope);
      },
    });
    b.router.allowFromAnyConnection('echo');
    a.router.registerWorker('app', app);
    const connection = a.transport.connect('b');
    a.router.allowFromConnection('app', connection);
    await a.router.send({
      onwardRoute: [mem('b'), localAddress('echo')],
      returnRoute: [localAddress('app')],
      payload: bytes('ping'),
    });
    await settle();
    expect(seenOnB.seen[0]!.ctx.sourceConnection).toMatch(/^memory-\d+$/);
    expect(app.seen.map((s) => str(s.envelope.payload))).toEqual(['ping']);
    expect(app.seen[0]!.ctx.sourceConnection).toBe(connection);
  });

  it('goes A → B → C hop by hop through a forwarder and back', async () => {
    const network = new MemoryNetwork();
    const a = node(network, 'a');
    const b = node(network, 'b');
    const c = node(network, 'c');
    const app = recorder();
    a.router.registerWorker('app', app);
    a.router.allowFromConnection('app', a.transport.connect('b'));
    b.router.registerWorker('fwd', forwarder);
    b.router.allowFromAnyConnection('fwd');
    c.router.registerWorker('echo', echo);
    c.router.allowFromAnyConnection('echo');
    await a.router.send({
      onwardRoute: [mem('b'), localAddress('fwd'), mem('c'), localAddress('echo')],
      returnRoute: [localAddress('app')],
      payload: bytes('hop'),
    });
    for (let i = 0; i < 5; i++) await settle();
    expect(app.seen.map((s) => str(s.envelope.payload))).toEqual(['hop']);
    expect(a.router.droppedCount + b.router.droppedCount + c.router.droppedCount).toBe(0);
  });

  it('rejects sends after close', async () => {
    const network = new MemoryNetwork();
    const a = node(network, 'a');
    node(network, 'b');
    a.transport.connect('b');
    await a.transport.close();
    await expect(
      a.router.send({ onwardRoute: [mem('b')], returnRoute: [], payload: bytes('') }),
    ).rejects.toMatchObject({ code: 'ERR_TRANSPORT_CLOSED' });
    expectCode(() => a.transport.listen('again'), 'ERR_TRANSPORT_CLOSED');
    const c = node(network, 'c');
    expectCode(() => c.transport.listen('c'), 'ERR_TRANSPORT_EXISTS');
  });
});

describe('faulty memory transport (test kit)', () => {
  async function run(seed: number): Promise<{ received: string[]; stats: object }> {
    const network = new MemoryNetwork();
    const faults = { seed, dropRate: 0.1, duplicateRate: 0.1, reorderRate: 0.2 };
    const a = node(network, `a${seed}`, { faults });
    const b = node(network, `b${seed}`);
    const sink = recorder();
    b.router.registerWorker('sink', sink);
    b.router.allowFromAnyConnection('sink');
    for (let i = 0; i < 200; i++) {
      await a.router.send({
        onwardRoute: [mem(`b${seed}`), localAddress('sink')],
        returnRoute: [],
        payload: bytes(`${i}`),
      });
    }
    await settle();
    await settle();
    return {
      received: sink.seen.map((s) => str(s.envelope.payload)),
      stats: { ...a.transport.stats },
    };
  }

  it('drops, duplicates and reorders, the same way for the same seed', async () => {
    const first = await run(7);
    const again = await run(7);
    const other = await run(8);
    expect(again).toEqual(first);
    expect(other.received).not.toEqual(first.received);
    const stats = first.stats as { dropped: number; duplicated: number; reordered: number };
    expect(stats.dropped).toBeGreaterThan(0);
    expect(stats.duplicated).toBeGreaterThan(0);
    expect(stats.reordered).toBeGreaterThan(0);
    const numbers = first.received.map(Number);
    expect(new Set(numbers).size).toBeLessThan(200);
    expect(numbers.length).toBeGreaterThan(new Set(numbers).size);
    expect(numbers).not.toEqual([...numbers].sort((x, y) => x - y));
  });

  it('seeded generator is deterministic and in [0, 1)', () => {
    const g1 = createSeededPrng(42);
    const g2 = createSeededPrng(42);
    const xs = Array.from({ length: 1000 }, () => g1());
    expect(Array.from({ length: 1000 }, () => g2())).toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(createSeededPrng(0)()).not.toBe(createSeededPrng(1)());
  });
});

describe('a worker with a bounded mailbox (maxQueued)', () => {
  it('asks the connection to stop reading when full, and lets it on at half', async () => {
    const router = new Router();
    const gate: (() => void)[] = [];
    const handled: number[] = [];
    router.registerWorker(
      'slow',
      {
        async handleMessage(_ctx, envelope) {
          await new Promise<void>((resolve) => gate.push(resolve));
          handled.push(envelope.payload[0]!);
        },
      },
      { maxQueued: 4 },
    );
    router.allowFromAnyConnection('slow');
    const connection = router.attachConnection('test', { send: () => Promise.resolve() });
    const arrive = (i: number) =>
      connection.receive({
        onwardRoute: [localAddress('slow')],
        returnRoute: [],
        payload: Uint8Array.of(i),
      });
    // The first is taken off the queue at once (the worker is busy with it); three more fit.
    expect(arrive(0)).toBeUndefined();
    await Promise.resolve();
    await Promise.resolve();
    expect([arrive(1), arrive(2), arrive(3)]).toEqual([undefined, undefined, undefined]);
    const held = arrive(4);
    expect(held).toBeInstanceOf(Promise);
    let resumed = false;
    void (held as Promise<void>).then(() => {
      resumed = true;
    });
    // One handled: the queue is at 3 of 4, above half: still held.
    gate.shift()!();
    await new Promise((r) => setTimeout(r, 0));
    expect(resumed).toBe(false);
    // Down to half: the connection may read again; nothing was lost or reordered.
    gate.shift()!();
    await new Promise((r) => setTimeout(r, 0));
    expect(resumed).toBe(true);
    while (handled.length < 5) {
      gate.shift()?.();
      await new Promise((r) => setTimeout(r, 0));
    }
    expect(handled).toEqual([0, 1, 2, 3, 4]);
    // Held again when full; a worker going away lets its connections on.
    const again = arrive(5);
    expect(again).toBeUndefined();
    for (let i = 6; i < 9; i++) void arrive(i);
    const heldAgain = arrive(9);
    expect(heldAgain).toBeInstanceOf(Promise);
    router.unregisterWorker('slow');
    await heldAgain;
    expectCode(() => {
      router.registerWorker('bad', { handleMessage: () => undefined }, { maxQueued: 0 });
    }, 'ERR_ARGUMENT_INVALID');
  });
});
