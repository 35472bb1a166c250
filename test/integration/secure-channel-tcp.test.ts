import { afterEach, describe, expect, it } from 'vitest';
import {
  channelPeerOf,
  openSecureChannel,
  SecureChannelListener,
  TrustPolicies,
  type SecureChannelOptions,
} from '../../src/channel/index.js';
import { encodeIdentityPayload } from '../../src/channel/identity-payload.js';
import { staticKeyFromSecret } from '../../src/channel/noise.js';
import { generateX25519KeyPair } from '../../src/crypto/index.js';
import { attestPurposeKey } from '../../src/identity/internal.js';
import { Identities, MemoryIdentityRepository, Purpose } from '../../src/identity/index.js';
import {
  localAddress,
  Router,
  TcpTransport,
  type Envelope,
  type MessageContext,
  type Worker,
} from '../../src/routing/index.js';
import { MemoryVault } from '../../src/vault/index.js';

const NOW = 1_800_000_000;
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (b: Uint8Array): string => new TextDecoder().decode(b);

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function parties() {
  const vault = new MemoryVault();
  const identities = new Identities({
    vault,
    repository: new MemoryIdentityRepository(),
    clock: { nowSeconds: () => NOW },
  });
  const party = async (name: string) => {
    const keyPair = generateX25519KeyPair();
    const local = await identities.create({ name, purposeKeys: false });
    const attestation = await attestPurposeKey(
      vault,
      local.identity,
      local.primaryKeyId,
      { purpose: Purpose.secureChannel, x25519: keyPair.publicKey },
      { nowSeconds: NOW },
    );
    return { identity: local.identity, keyPair, attestation };
  };
  const alice = await party('alice');
  const bob = await party('bob');
  const options = (
    self: typeof alice,
    peer: typeof alice,
    deliverTo: string[],
  ): SecureChannelOptions => ({
    staticKey: staticKeyFromSecret(self.keyPair.secretKey),
    identityPayload: encodeIdentityPayload({
      changeHistory: self.identity.changeHistory,
      secureChannelAttestation: self.attestation,
      credentials: [],
      chains: [],
    }),
    verify: {
      authorities: new Map(),
      trustPolicy: TrustPolicies.identifier(peer.identity.identifier),
    },
    clock: { nowSeconds: () => NOW + 1 },
    deliverTo,
  });
  return { alice, bob, options };
}

function tcpNode() {
  const router = new Router();
  const transport = new TcpTransport(router);
  cleanups.push(() => transport.close());
  return { router, transport };
}

function waiter(): Worker & { received: Envelope[]; next(): Promise<Envelope> } {
  const received: Envelope[] = [];
  const waiting: ((e: Envelope) => void)[] = [];
  return {
    received,
    handleMessage(_ctx, envelope) {
      received.push(envelope);
      waiting.shift()?.(envelope);
    },
    next() {
      return new Promise((resolve) => waiting.push(resolve));
    },
  };
}

describe('secure channel over TCP', () => {
  it('echoes through a channel on 127.0.0.1, with the verified peer on both sides', async () => {
    const { alice, bob, options } = await parties();
    const server = tcpNode();
    const client = tcpNode();
    const listener = new SecureChannelListener(server.router, options(bob, alice, ['echo']));
    cleanups.push(() => listener.close());
    server.router.allowFromAnyConnection('api');
    const seenBy: (string | undefined)[] = [];
    server.router.registerWorker('echo', {
      async handleMessage(ctx: MessageContext, envelope: Envelope) {
        seenBy.push(channelPeerOf(ctx)?.identifier);
        await ctx.reply(envelope.payload);
      },
    });
    const { port } = await server.transport.listen({ port: 0 });
    const app = waiter();
    client.router.registerWorker('app', app);
    const connection = client.transport.connect(`127.0.0.1:${port}`);
    const channel = await openSecureChannel(
      client.router,
      [localAddress(connection), localAddress('api')],
      options(alice, bob, ['app']),
    );
    cleanups.push(() => channel.close());
    expect(channel.peer.identifier).toBe(bob.identity.identifier);
    for (const text of ['one', 'two']) {
      const reply = app.next();
      await client.router.send({
        onwardRoute: [localAddress(channel.address), localAddress('echo')],
        returnRoute: [localAddress('app')],
        payload: bytes(text),
      });
      expect(str((await reply).payload)).toBe(text);
    }
    expect(seenBy).toEqual([alice.identity.identifier, alice.identity.identifier]);
    expect(listener.channelCount).toBe(1);
  });
});
