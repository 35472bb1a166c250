import { afterEach, describe, expect, it } from 'vitest';
import { channelWorld } from '../../test/helpers/channel-world.js';
import { freshDenySet, revoke } from '../../test/helpers/deny-set.js';
import {
  constraintsToAttributes,
  DenySet,
  issueCredential,
  parseConstraint,
  verifyCredential,
} from '../credentials/index.js';
import { attestPurposeKey } from '../identity/internal.js';
import { Identities, MemoryIdentityRepository, Purpose } from '../identity/index.js';
import {
  localAddress,
  MemoryNetwork,
  MemoryTransport,
  Router,
  type Envelope,
  type MessageContext,
} from '../routing/index.js';
import { MemoryVault } from '../vault/index.js';
import {
  decodeIdentityPayload,
  encodeIdentityPayload,
  TrustPolicies,
  verifyPeer,
  withCredentials,
  type TrustPolicy,
  type VerifiedPeer,
} from './identity-payload.js';
import { prepareChannelIdentity } from './channel-identity.js';
import {
  channelPeerOf,
  openSecureChannel,
  SecureChannelListener,
  SecureChannelLocalInfo,
  type SecureChannelEvent,
  type SecureChannelOptions,
} from './secure-channel.js';

const NOW = 1_800_000_000;
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (b: Uint8Array): string => new TextDecoder().decode(b);
const settle = async (turns = 20): Promise<void> => {
  for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve));
};

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Delivery {
  readonly text: string;
  readonly peer: VerifiedPeer | undefined;
}

/**
 * Alice (initiator) and Bob (listener with a recording `inbox`) over the memory transport, with a
 * clock the test moves. Alice's credential lives `ttlSeconds`; `credential()` issues her more.
 */
async function setup(
  options: {
    ttlSeconds?: number;
    trustPolicy?: TrustPolicy;
    denySet?: DenySet;
    alice?: Partial<SecureChannelOptions>;
  } = {},
) {
  const clock = { now: NOW };
  const w = await channelWorld(NOW);
  const local = await w.identities.create({ name: 'alice', purposeKeys: false });
  const credential = (grant: string, ttlSeconds: number): Promise<Uint8Array> =>
    issueCredential(
      w.vault,
      w.authority,
      local.identity,
      constraintsToAttributes(new Map([parseConstraint(grant)])),
      { nowSeconds: clock.now, ttlSeconds },
    );
  const alice = await prepareChannelIdentity(w.vault, {
    identity: local.identity,
    primaryKeyId: local.primaryKeyId,
    credentials: [await credential('tools=read_orders', options.ttlSeconds ?? 100)],
    nowSeconds: NOW,
  });
  const bob = await w.party('bob', ['tools=answer']);
  const verify = (trustPolicy: TrustPolicy) => ({
    authorities: w.authorities,
    trustPolicy,
    ...(options.denySet === undefined ? {} : { denySet: options.denySet }),
  });
  const clockView = { nowSeconds: () => clock.now };

  const network = new MemoryNetwork();
  const routerA = new Router();
  const routerB = new Router();
  const transportA = new MemoryTransport(routerA, network);
  const transportB = new MemoryTransport(routerB, network);
  transportB.listen('bob');
  cleanups.push(async () => {
    await transportA.close();
    await transportB.close();
  });
  const bobEvents: SecureChannelEvent[] = [];
  const inbox: Delivery[] = [];
  routerB.registerWorker('inbox', {
    handleMessage(ctx: MessageContext, envelope: Envelope) {
      inbox.push({ text: str(envelope.payload), peer: channelPeerOf(ctx) });
    },
  });
  const listener = new SecureChannelListener(routerB, {
    staticKey: bob.staticKey,
    identityPayload: bob.identityPayload,
    verify: verify(options.trustPolicy ?? TrustPolicies.credentialHolder()),
    clock: clockView,
    deliverTo: ['inbox'],
    onEvent: (event) => bobEvents.push(event),
  });
  routerB.allowFromAnyConnection('api');
  cleanups.push(() => listener.close());

  const aliceEvents: SecureChannelEvent[] = [];
  const aliceInbox: Delivery[] = [];
  routerA.registerWorker('alice-inbox', {
    handleMessage(ctx: MessageContext, envelope: Envelope) {
      aliceInbox.push({ text: str(envelope.payload), peer: channelPeerOf(ctx) });
    },
  });
  const connection = transportA.connect('bob');
  const channel = await openSecureChannel(
    routerA,
    [localAddress(connection), localAddress('api')],
    {
      staticKey: alice.staticKey,
      identityPayload: alice.identityPayload,
      verify: verify(TrustPolicies.credentialHolder()),
      clock: clockView,
      deliverTo: ['alice-inbox'],
      onEvent: (event) => aliceEvents.push(event),
      ...options.alice,
    },
  );
  const send = async (text: string): Promise<void> => {
    await routerA.send({
      onwardRoute: [localAddress(channel.address), localAddress('inbox')],
      returnRoute: [localAddress('alice-inbox')],
      payload: bytes(text),
    });
    await settle();
  };
  return {
    clock,
    w,
    local,
    alice,
    bob,
    credential,
    channel,
    listener,
    send,
    inbox,
    aliceInbox,
    bobEvents,
    aliceEvents,
    routerA,
    routerB,
    transportA,
  };
}

const thrown = (f: () => unknown): unknown => {
  try {
    f();
  } catch (error) {
    return error;
  }
  return undefined;
};

const reasons = (events: readonly SecureChannelEvent[]): string[] =>
  events.flatMap((e) => (e.type === 'dropped' ? [e.reason] : []));

describe('credentials over an open channel', () => {
  it('a refresh before expiry keeps delivery going; the worker sees the new credential', async () => {
    const t = await setup({ ttlSeconds: 100 });
    await t.send('one');
    expect(t.inbox.map((d) => d.text)).toEqual(['one']);
    expect(t.inbox[0]!.peer!.credentials[0]!.expiresAt).toBe(NOW + 100);

    t.clock.now = NOW + 50;
    const fresh = await t.credential('tools=write_orders', 3600);
    await t.channel.refreshCredentials(withCredentials(t.alice.identityPayload, [fresh]));
    await settle();
    expect(t.bobEvents).toContainEqual(
      expect.objectContaining({ type: 'refreshed', direction: 'received' }),
    );

    t.clock.now = NOW + 200;
    await t.send('two');
    expect(t.inbox.map((d) => d.text)).toEqual(['one', 'two']);
    const peer = t.inbox[1]!.peer!;
    expect(peer.identifier).toBe(t.local.identity.identifier);
    expect(peer.credentials).toHaveLength(1);
    expect(peer.credentials[0]!.expiresAt).toBe(NOW + 50 + 3600);
    expect([...peer.credentials[0]!.attributes.keys()]).toEqual(['tools']);
  });

  it('stops delivery once the credential expires, and a late refresh resumes it', async () => {
    const t = await setup({ ttlSeconds: 100 });
    t.clock.now = NOW + 100;
    await t.send('too late');
    await t.send('still too late');
    expect(t.inbox).toEqual([]);
    expect(reasons(t.bobEvents)).toEqual(['ERR_CHANNEL_PEER_EXPIRED', 'ERR_CHANNEL_PEER_EXPIRED']);
    expect(t.listener.droppedCount).toBe(2);

    await t.channel.refreshCredentials(
      withCredentials(t.alice.identityPayload, [await t.credential('tools=read_orders', 600)]),
    );
    await t.send('after refresh');
    expect(t.inbox.map((d) => d.text)).toEqual(['after refresh']);
  });

  it('a pinned identity keeps talking after its credential expires, without its attributes', async () => {
    const w = await setup({ ttlSeconds: 100, trustPolicy: () => true });
    w.clock.now = NOW + 150;
    await w.send('pinned');
    expect(w.inbox.map((d) => d.text)).toEqual(['pinned']);
    expect(w.inbox[0]!.peer!.credentials).toEqual([]);
    expect(w.inbox[0]!.peer!.rejected.join()).toContain('ERR_CREDENTIAL_EXPIRED');
  });

  it('the initiator judges the responder the same way: replies stop when its credential expires', async () => {
    // Bob's credential comes with the default hour; Alice's lasts two.
    const t = await setup({ ttlSeconds: 7200 });
    t.routerB.registerWorker('answer', {
      async handleMessage(ctx, envelope) {
        await ctx.reply(envelope.payload);
      },
    });
    t.listener.allow('answer');
    const ask = async (text: string): Promise<void> => {
      await t.routerA.send({
        onwardRoute: [localAddress(t.channel.address), localAddress('answer')],
        returnRoute: [localAddress('alice-inbox')],
        payload: bytes(text),
      });
      await settle();
    };
    await ask('while valid');
    t.clock.now = NOW + 3600;
    await ask('after bob expired');
    expect(t.aliceInbox.map((d) => d.text)).toEqual(['while valid']);
    expect(reasons(t.aliceEvents)).toEqual(['ERR_CHANNEL_PEER_EXPIRED']);
    expect(t.channel.droppedCount).toBe(1);
  });

  it('rejects a refresh from another key or identity, or with untrusted credentials', async () => {
    const t = await setup({ ttlSeconds: 100 });
    // Another identity attesting Alice's very channel key: Noise would accept the key, the
    // identity must still match.
    const vault = new MemoryVault();
    const mallory = await new Identities({
      vault,
      repository: new MemoryIdentityRepository(),
      clock: { nowSeconds: () => NOW },
    }).create({ name: 'mallory', purposeKeys: false });
    const attestation = await attestPurposeKey(
      vault,
      mallory.identity,
      mallory.primaryKeyId,
      { purpose: Purpose.secureChannel, x25519: t.alice.staticKey.publicKey },
      { nowSeconds: NOW },
    );
    const impostor = encodeIdentityPayload({
      changeHistory: mallory.identity.changeHistory,
      secureChannelAttestation: attestation,
      // A member in good standing, so only the identity check can refuse it.
      credentials: [
        await issueCredential(
          t.w.vault,
          t.w.authority,
          mallory.identity,
          constraintsToAttributes(new Map([parseConstraint('tools=everything')])),
          { nowSeconds: NOW },
        ),
      ],
      chains: [],
    });
    await t.channel.refreshCredentials(impostor);
    // Bob's own payload attests another key.
    await t.channel.refreshCredentials(t.bob.identityPayload);
    // A credential from an authority Bob does not trust: dropped, and then nobody holds one.
    const stranger = await channelWorld(NOW);
    const foreign = await issueCredential(
      stranger.vault,
      stranger.authority,
      t.local.identity,
      constraintsToAttributes(new Map([parseConstraint('tools=everything')])),
      { nowSeconds: NOW },
    );
    await t.channel.refreshCredentials(withCredentials(t.alice.identityPayload, [foreign]));
    await settle();
    const failed = t.bobEvents.flatMap((e) => (e.type === 'refresh_failed' ? [e.reason] : []));
    expect(failed).toEqual([
      'ERR_CHANNEL_REFRESH_INVALID',
      'ERR_CHANNEL_KEY_MISMATCH',
      'ERR_CHANNEL_UNTRUSTED',
    ]);
    // The peer is unchanged and still delivered to while its own credential holds.
    await t.send('still me');
    expect(t.inbox.map((d) => d.text)).toEqual(['still me']);
    expect(t.inbox[0]!.peer!.credentials[0]!.expiresAt).toBe(NOW + 100);
    expect(t.inbox[0]!.peer!.identifier).toBe(t.local.identity.identifier);
  });

  it('lets a worker ask later how the peer of a message stands now', async () => {
    const t = await setup({ ttlSeconds: 100 });
    const infos: SecureChannelLocalInfo[] = [];
    t.routerB.registerWorker('keeper', {
      handleMessage(ctx) {
        if (ctx.localInfo instanceof SecureChannelLocalInfo) infos.push(ctx.localInfo);
      },
    });
    t.listener.allow('keeper');
    await t.routerA.send({
      onwardRoute: [localAddress(t.channel.address), localAddress('keeper')],
      returnRoute: [],
      payload: bytes('remember me'),
    });
    await settle();
    const info = infos[0]!;
    expect(info.currentPeer()).toBe(info.peer);
    t.clock.now = NOW + 100;
    expect(info.currentPeer()).toBeUndefined();
    await t.channel.refreshCredentials(
      withCredentials(t.alice.identityPayload, [await t.credential('tools=read_orders', 600)]),
    );
    await settle();
    expect(info.currentPeer()?.credentials[0]?.expiresAt).toBe(NOW + 100 + 600);
    expect(info.peer.credentials[0]?.expiresAt).toBe(NOW + 100);
    await t.channel.close();
    await settle();
    expect(info.currentPeer()).toBeUndefined();
  });

  it('sends a renewal once, however many times it is presented', async () => {
    const t = await setup({ ttlSeconds: 100 });
    const renewed = withCredentials(t.alice.identityPayload, [
      await t.credential('tools=read_orders', 3600),
    ]);
    await t.channel.refreshCredentials(renewed);
    await t.channel.refreshCredentials(renewed.slice());
    await settle();
    const received = t.bobEvents.filter((e) => e.type === 'refreshed');
    expect(received).toHaveLength(1);
  });

  it('ends both sides of a channel when its connection closes, timers included', async () => {
    const t = await setup({
      ttlSeconds: 100,
      alice: {
        credentialRefresh: { leadSeconds: 50, renew: () => Promise.resolve(new Uint8Array(0)) },
      },
    });
    expect(t.listener.channelCount).toBe(1);
    await t.transportA.close();
    await settle();
    expect(t.aliceEvents).toContainEqual(
      expect.objectContaining({ type: 'closed', byPeer: false }),
    );
    expect(t.bobEvents).toContainEqual(expect.objectContaining({ type: 'closed', byPeer: false }));
    expect(t.listener.channelCount).toBe(0);
    await expect(t.channel.refreshCredentials(t.alice.identityPayload)).rejects.toMatchObject({
      code: 'ERR_CHANNEL_CLOSED',
    });
  });

  it('refuses to refresh without a payload or renewer, and after close', async () => {
    const t = await setup();
    await expect(t.channel.refreshCredentials()).rejects.toMatchObject({
      code: 'ERR_ARGUMENT_INVALID',
    });
    await expect(t.channel.refreshCredentials(bytes('not a payload'))).rejects.toMatchObject({
      code: 'ERR_CHANNEL_PAYLOAD_MALFORMED',
    });
    await t.channel.close();
    await expect(t.channel.refreshCredentials(t.alice.identityPayload)).rejects.toMatchObject({
      code: 'ERR_CHANNEL_CLOSED',
    });
  });
});

describe('revocation over an open channel', () => {
  it('a revoked credential stops delivery; a revoked identity closes the channel', async () => {
    const denySet = freshDenySet(NOW);
    const t = await setup({ ttlSeconds: 3600, denySet });
    await t.send('before');
    const held = t.inbox[0]!.peer!.credentials[0]!;
    revoke(denySet, held.revocationId, { expiresAt: held.expiresAt, nowSeconds: NOW });
    await t.send('after the credential is revoked');
    expect(t.inbox.map((d) => d.text)).toEqual(['before']);
    expect(reasons(t.bobEvents)).toEqual(['ERR_CHANNEL_PEER_EXPIRED']);

    revoke(denySet, t.local.identity.identifier, {
      expiresAt: NOW + 86_400,
      nowSeconds: NOW,
      identity: true,
    });
    await t.send('after the identity is revoked');
    await settle();
    expect(t.inbox.map((d) => d.text)).toEqual(['before']);
    expect(reasons(t.bobEvents)).toContain('ERR_REVOKED');
    expect(t.bobEvents).toContainEqual(expect.objectContaining({ type: 'closed', byPeer: false }));
    expect(t.aliceEvents).toContainEqual(expect.objectContaining({ type: 'closed', byPeer: true }));
    expect(t.listener.channelCount).toBe(0);
  });

  it('a stale deny-set fails closed', async () => {
    const denySet = freshDenySet(NOW);
    const t = await setup({ ttlSeconds: 3600, denySet });
    t.clock.now = NOW + 601;
    await t.send('stale');
    expect(t.inbox).toEqual([]);
    expect(reasons(t.bobEvents)).toEqual(['ERR_CHANNEL_PEER_EXPIRED']);
  });

  it('a handshake drops a revoked credential, so a credential holder policy refuses', async () => {
    const w = await channelWorld(NOW);
    const alice = await w.party('alice', ['tools=read_orders']);
    const presented = decodeIdentityPayload(alice.identityPayload).credentials[0]!;
    const credential = verifyCredential(presented, {
      nowSeconds: NOW,
      authorities: w.authorities,
    });
    const denySet = freshDenySet(NOW);
    revoke(denySet, credential.revocationId, { expiresAt: credential.expiresAt, nowSeconds: NOW });
    const options = {
      nowSeconds: NOW,
      remoteStaticKey: alice.staticKey.publicKey,
      authorities: w.authorities,
      trustPolicy: TrustPolicies.credentialHolder(),
    };
    expect(verifyPeer(alice.identityPayload, options).credentials).toHaveLength(1);
    expect(thrown(() => verifyPeer(alice.identityPayload, { ...options, denySet }))).toMatchObject({
      code: 'ERR_CHANNEL_PEER_REJECTED',
      cause: { code: 'ERR_CHANNEL_UNTRUSTED' },
    });
    const pinned = verifyPeer(alice.identityPayload, {
      ...options,
      denySet,
      trustPolicy: TrustPolicies.anyIdentity(),
    });
    expect(pinned.credentials).toEqual([]);
    expect(pinned.rejected.join()).toContain('ERR_REVOKED');
    revoke(denySet, alice.identity.identifier, {
      expiresAt: NOW + 86_400,
      nowSeconds: NOW,
      identity: true,
    });
    expect(
      thrown(() =>
        verifyPeer(alice.identityPayload, {
          ...options,
          denySet,
          trustPolicy: TrustPolicies.anyIdentity(),
        }),
      ),
    ).toMatchObject({ cause: { code: 'ERR_REVOKED' } });
  });
});

describe('automatic refresh', () => {
  it('renews ahead of expiry; a renewal that brings nothing newer is retried', async () => {
    let calls = 0;
    let renewed: Uint8Array | undefined;
    const t = await setup({
      ttlSeconds: 100,
      alice: {
        credentialRefresh: {
          // Due at once: the credential expires within the lead.
          leadSeconds: 1000,
          retryMs: 5,
          renew: () => {
            calls++;
            if (renewed === undefined) throw new Error('not yet');
            return Promise.resolve(renewed);
          },
        },
      },
    });
    // First attempts fail (the renewer throws), and are retried.
    for (let i = 0; i < 50 && calls < 3; i++) await new Promise((r) => setTimeout(r, 5));
    expect(calls).toBeGreaterThanOrEqual(3);
    expect(t.aliceEvents).toContainEqual(expect.objectContaining({ type: 'refresh_failed' }));
    // The same payload again is no renewal.
    renewed = t.alice.identityPayload;
    const before = calls;
    for (let i = 0; i < 50 && calls < before + 2; i++) await new Promise((r) => setTimeout(r, 5));
    expect(t.aliceEvents).toContainEqual({
      type: 'refresh_failed',
      address: t.channel.address,
      reason: 'ERR_CHANNEL_REFRESH_INVALID',
    });
    // A real renewal reaches Bob.
    renewed = withCredentials(t.alice.identityPayload, [
      await t.credential('tools=read_orders', 3600),
    ]);
    for (let i = 0; i < 100; i++) {
      if (t.bobEvents.some((e) => e.type === 'refreshed')) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(t.bobEvents).toContainEqual(
      expect.objectContaining({ type: 'refreshed', direction: 'received' }),
    );
    t.clock.now = NOW + 500;
    await t.send('renewed');
    expect(t.inbox.map((d) => d.text)).toEqual(['renewed']);
    // The next renewal is an hour away (less the lead); closing stops everything.
    await t.channel.close();
    const after = calls;
    await new Promise((r) => setTimeout(r, 30));
    expect(calls).toBe(after);
  });

  it('a listener refreshes every established channel and presents the new payload to new ones', async () => {
    const t = await setup({ ttlSeconds: 3600 });
    const bobLocal = await t.w.identities.get('bob');
    const freshBob = await issueCredential(
      t.w.vault,
      t.w.authority,
      bobLocal.identity,
      constraintsToAttributes(new Map([parseConstraint('tools=answer,escalate')])),
      { nowSeconds: NOW, ttlSeconds: 7200 },
    );
    await t.listener.refreshCredentials(withCredentials(t.bob.identityPayload, [freshBob]));
    await settle();
    expect(t.aliceEvents).toContainEqual(
      expect.objectContaining({ type: 'refreshed', direction: 'received' }),
    );
    expect(t.channel.peer.credentials[0]!.expiresAt).toBe(NOW + 7200);
  });
});
