import { afterEach, describe, expect, it } from 'vitest';
import { collector } from '../helpers/collector.js';
import type { MandateError } from '../../src/core/index.js';
import { localAddress, Router, type Address, type Transport } from '../../src/routing/index.js';

/**
 * What every transport promises the router, whatever carries the bytes: one suite, run against
 * the memory transport and TCP alike (test/contract/transport.test.ts).
 */
export interface TransportNode {
  readonly router: Router;
  readonly transport: Transport;
}

export interface TransportFactory {
  readonly name: string;
  /** A node whose transport is not listening. */
  node(): TransportNode;
  /** Makes `node` reachable; returns the address other nodes send to. */
  listen(node: TransportNode): Promise<Address>;
  /** The router-local id of `node`'s connection to `address` (dialled on first use). */
  connect(node: TransportNode, address: Address): string;
  /** An address of this transport where nobody listens. */
  nowhere(): Promise<Address>;
}

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

export function transportContract(factory: TransportFactory): void {
  describe(`transport contract: ${factory.name}`, () => {
    const nodes: TransportNode[] = [];
    const node = (): TransportNode => {
      const made = factory.node();
      nodes.push(made);
      return made;
    };
    afterEach(async () => {
      await Promise.all(nodes.splice(0).map((n) => n.transport.close()));
    });

    /** b runs an echo worker open to every connection; a has a collector open to b. */
    async function echoPair() {
      const b = node();
      b.router.registerWorker('echo', {
        async handleMessage(ctx, envelope) {
          await ctx.reply(envelope.payload);
        },
      });
      b.router.allowFromAnyConnection('echo');
      const address = await factory.listen(b);
      const a = node();
      const app = collector();
      a.router.registerWorker('app', app);
      a.router.allowFromConnection('app', factory.connect(a, address));
      return { a, b, app, address };
    }

    it('carries a message there and its reply back along the return route', async () => {
      const { a, app, address } = await echoPair();
      await a.router.send({
        onwardRoute: [address, localAddress('echo')],
        returnRoute: [localAddress('app')],
        payload: bytes('hello'),
      });
      await app.waitFor(1);
      expect(text(app.received[0]!.payload)).toBe('hello');
    });

    it('delivers the messages of one connection in order', async () => {
      const { a, app, address } = await echoPair();
      const count = 300;
      for (let i = 0; i < count; i++) {
        void a.router.send({
          onwardRoute: [address, localAddress('echo')],
          returnRoute: [localAddress('app')],
          payload: bytes(String(i)),
        });
      }
      await app.waitFor(count);
      expect(app.received.map((e) => text(e.payload))).toStrictEqual(
        Array.from({ length: count }, (_, i) => String(i)),
      );
    });

    it('delivers to a worker only if it is open to the connection (deny by default)', async () => {
      const b = node();
      const secret = collector();
      const open = collector();
      b.router.registerWorker('secret', secret);
      b.router.registerWorker('open', open);
      b.router.allowFromAnyConnection('open');
      const address = await factory.listen(b);
      const a = node();
      factory.connect(a, address);
      for (const to of ['secret', 'open']) {
        await a.router.send({
          onwardRoute: [address, localAddress(to)],
          returnRoute: [],
          payload: bytes(to),
        });
      }
      await open.waitFor(1);
      // Sent first on the same connection: had it been delivered, it would be there by now.
      expect(secret.received).toHaveLength(0);
    });

    it('refuses to send where nobody listens', async () => {
      const a = node();
      await expect(
        a.router.send({
          onwardRoute: [await factory.nowhere()],
          returnRoute: [],
          payload: bytes(''),
        }),
      ).rejects.toMatchObject({
        code: 'ERR_TRANSPORT_UNREACHABLE',
      } satisfies Partial<MandateError>);
    });

    it('refuses to send once closed, and closing twice is harmless', async () => {
      const { a, address } = await echoPair();
      await a.transport.close();
      await a.transport.close();
      await expect(
        a.router.send({
          onwardRoute: [address, localAddress('echo')],
          returnRoute: [],
          payload: bytes('late'),
        }),
      ).rejects.toMatchObject({ code: 'ERR_TRANSPORT_CLOSED' });
    });
  });
}
