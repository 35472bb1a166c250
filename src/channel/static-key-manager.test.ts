import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../core/index.js';
import { channelWorld } from '../../test/helpers/channel-world.js';
import { constraintsToAttributes, issueCredential, parseConstraint } from '../credentials/index.js';
import { attestPurposeKey } from '../identity/internal.js';
import { Purpose } from '../identity/index.js';
import {
  localAddress,
  MemoryNetwork,
  MemoryTransport,
  Router,
  type Envelope,
  type MessageContext,
} from '../routing/index.js';
import { DEFAULT_CHANNEL_KEY_TTL_SECONDS, prepareChannelIdentity } from './channel-identity.js';
import { reasonOf, TrustPolicies, verifyPeer, withAttestation } from './identity-payload.js';
import {
  openSecureChannel,
  SecureChannelListener,
  type SecureChannelEvent,
} from './secure-channel.js';
import {
  DEFAULT_ROTATE_BEFORE_SECONDS,
  StaticKeyManager,
  type StaticKeySource,
} from './static-key-manager.js';

const NOW = 1_800_000_000;
const HOUR = 3600;
const DAY = 24 * HOUR;
const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const settle = async (turns = 20): Promise<void> => {
  for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve));
};

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** channelWorld's vault, identities and authority, a clock the test moves and a server identity. */
async function world() {
  const clock = new ManualClock(NOW);
  const { vault, identities, authority, authorities } = await channelWorld(NOW);
  const server = await identities.create({ name: 'server', purposeKeys: false });
  const credential = (ttlSeconds: number): Promise<Uint8Array> =>
    issueCredential(
      vault,
      authority,
      server.identity,
      constraintsToAttributes(new Map([parseConstraint('tools=answer')])),
      { nowSeconds: clock.nowSeconds(), ttlSeconds },
    );
  const manager = async (
    options: { ttlSeconds?: number; rotateBeforeSeconds?: number } = {},
  ): Promise<StaticKeyManager> => {
    const keys = await StaticKeyManager.start(vault, {
      identity: server.identity,
      primaryKeyId: server.primaryKeyId,
      clock,
      ...options,
    });
    cleanups.push(() => {
      keys.stop();
    });
    return keys;
  };
  return { clock, vault, identities, authorities, server, credential, manager };
}

type World = Awaited<ReturnType<typeof world>>;

/**
 * A node (listener at `api` with an `echo` worker) whose static key comes from `source`, and a
 * client with a key attested for a year that pins the node's identifier.
 */
async function node(w: World, source: StaticKeySource, identityPayload: Uint8Array) {
  const network = new MemoryNetwork();
  const serverRouter = new Router();
  const clientRouter = new Router();
  const serverTransport = new MemoryTransport(serverRouter, network);
  const clientTransport = new MemoryTransport(clientRouter, network);
  serverTransport.listen('node');
  cleanups.push(async () => {
    await clientTransport.close();
    await serverTransport.close();
  });
  serverRouter.registerWorker('echo', {
    async handleMessage(ctx: MessageContext, envelope: Envelope) {
      await ctx.reply(envelope.payload);
    },
  });
  const listener = new SecureChannelListener(serverRouter, {
    staticKey: source,
    identityPayload,
    verify: { authorities: w.authorities, trustPolicy: TrustPolicies.anyIdentity() },
    clock: w.clock,
    deliverTo: ['echo'],
  });
  serverRouter.allowFromAnyConnection('api');
  cleanups.push(() => listener.close());

  const clientLocal = await w.identities.create({ name: 'client', purposeKeys: false });
  const client = await prepareChannelIdentity(w.vault, {
    identity: clientLocal.identity,
    primaryKeyId: clientLocal.primaryKeyId,
    nowSeconds: w.clock.nowSeconds(),
    ttlSeconds: 365 * DAY,
  });
  const replies: string[] = [];
  clientRouter.registerWorker('inbox', {
    handleMessage(_ctx: MessageContext, envelope: Envelope) {
      replies.push(new TextDecoder().decode(envelope.payload));
    },
  });
  const open = (events?: SecureChannelEvent[]) =>
    openSecureChannel(
      clientRouter,
      [localAddress(clientTransport.connect('node')), localAddress('api')],
      {
        ...client,
        verify: {
          authorities: w.authorities,
          trustPolicy: TrustPolicies.identifier(w.server.identity.identifier),
        },
        clock: w.clock,
        deliverTo: ['inbox'],
        ...(events === undefined ? {} : { onEvent: (event) => events.push(event) }),
      },
    );
  const echo = async (channelAddress: string, message: string): Promise<void> => {
    await clientRouter.send({
      onwardRoute: [localAddress(channelAddress), localAddress('echo')],
      returnRoute: [localAddress('inbox')],
      payload: text(message),
    });
    await settle();
  };
  return { listener, open, echo, replies };
}

const rejection = async (promise: Promise<unknown>): Promise<string> => {
  try {
    await promise;
  } catch (error) {
    return reasonOf(error);
  }
  return 'resolved';
};

describe('StaticKeyManager', () => {
  it('keeps a node accepting new handshakes over 40 simulated days, rotating before expiry', async () => {
    const w = await world();
    const keys = await w.manager();
    const n = await node(w, keys, keys.identityPayload([await w.credential(DAY)]));
    const firstEvents: SecureChannelEvent[] = [];
    const first = await n.open(firstEvents);
    const firstKey = first.peer.channelKey;
    expect(firstKey.expiresAt).toBe(NOW + DEFAULT_CHANNEL_KEY_TTL_SECONDS);

    const seenKeys = new Set<string>();
    for (let hours = 6; hours <= 40 * 24; hours += 6) {
      w.clock.set(NOW + hours * HOUR);
      await keys.rotateIfDue();
      const now = w.clock.nowSeconds();
      const key = keys.current();
      // Rotated with its margin: never less than `rotateBeforeSeconds` − a step left.
      expect(key.expiresAt - now).toBeGreaterThan(DEFAULT_ROTATE_BEFORE_SECONDS - 6 * HOUR);
      const channel = await n.open();
      // The node presents the key its handshake used, with a live attestation.
      expect(channel.peer.channelKey.key).toEqual({
        purpose: Purpose.secureChannel,
        x25519: key.staticKey.publicKey,
      });
      expect(channel.peer.channelKey.expiresAt).toBeGreaterThan(now);
      seenKeys.add(Buffer.from(key.staticKey.publicKey).toString('hex'));
      await n.echo(channel.address, `h${hours}`);
      expect(n.replies.at(-1)).toBe(`h${hours}`);
      await channel.close();
    }
    // A key a half day: 80 rotations in 40 days, each handshake on the key current then.
    expect(keys.rotations).toBe(80);
    expect(seenKeys.size).toBe(81);

    // The channel of day 0 outlived the attestation it was opened under: it still delivers, and
    // a refresh presenting that same attestation (the node's credential renewed) is accepted.
    expect(w.clock.nowSeconds()).toBeGreaterThan(firstKey.expiresAt);
    await n.echo(first.address, 'still here');
    expect(n.replies.at(-1)).toBe('still here');
    const renewed = await w.credential(DAY);
    await n.listener.refreshCredentials(keys.identityPayload([renewed]));
    await settle();
    expect(firstEvents).toContainEqual(
      expect.objectContaining({ type: 'refreshed', direction: 'received' }),
    );
    expect(first.peer.channelKey.key).toEqual(firstKey.key);
    expect(first.peer.credentials[0]!.expiresAt).toBe(w.clock.nowSeconds() + DAY);
  });

  it('a peer refuses a node whose key was not rotated once its attestation expired', async () => {
    const w = await world();
    const keys = await w.manager({ ttlSeconds: 2 * HOUR, rotateBeforeSeconds: HOUR });
    const n = await node(w, keys, keys.identityPayload());
    w.clock.set(NOW + 2 * HOUR);
    await (await n.open()).close(); // the last second of its validity
    w.clock.set(NOW + 2 * HOUR + 1);
    expect(await rejection(n.open())).toBe('ERR_PURPOSE_KEY_EXPIRED');
    expect(await keys.rotateIfDue()).toBe(true);
    const channel = await n.open();
    expect(channel.peer.channelKey.expiresAt).toBe(NOW + 4 * HOUR + 1);
  });

  it('rotates only once due, and always leaves more than the margin (property)', async () => {
    const w = await world();
    await fc.assert(
      fc.asyncProperty(
        fc
          .integer({ min: 2, max: 10 * DAY })
          .chain((ttl) =>
            fc.tuple(
              fc.constant(ttl),
              fc.integer({ min: 1, max: ttl - 1 }),
              fc.array(fc.integer({ min: 0, max: 2 * ttl }), { minLength: 1, maxLength: 12 }),
            ),
          ),
        async ([ttlSeconds, rotateBeforeSeconds, steps]) => {
          w.clock.set(NOW);
          const keys = await StaticKeyManager.start(w.vault, {
            identity: w.server.identity,
            primaryKeyId: w.server.primaryKeyId,
            clock: w.clock,
            ttlSeconds,
            rotateBeforeSeconds,
          });
          try {
            for (const step of steps) {
              w.clock.advance(step);
              const now = w.clock.nowSeconds();
              const before = keys.current();
              const due = now >= before.expiresAt - rotateBeforeSeconds;
              expect(await keys.rotateIfDue()).toBe(due);
              const after = keys.current();
              expect(after === before).toBe(!due);
              if (due) expect(after.expiresAt).toBe(now + ttlSeconds);
              expect(after.expiresAt - now).toBeGreaterThan(rotateBeforeSeconds);
            }
          } finally {
            keys.stop();
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  it('rotates by itself on its timer', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const w = await world();
    const rotated: number[] = [];
    const keys = await StaticKeyManager.start(w.vault, {
      identity: w.server.identity,
      primaryKeyId: w.server.primaryKeyId,
      clock: w.clock,
      ttlSeconds: 4 * HOUR,
      rotateBeforeSeconds: HOUR,
      onRotated: (key) => rotated.push(key.expiresAt),
    });
    cleanups.push(() => {
      keys.stop();
    });
    w.clock.advance(3 * HOUR - 1);
    await vi.advanceTimersByTimeAsync((3 * HOUR - 1) * 1000);
    expect(rotated).toEqual([]);
    w.clock.advance(1);
    await vi.advanceTimersByTimeAsync(1000);
    expect(rotated).toEqual([NOW + 7 * HOUR]);
    w.clock.advance(3 * HOUR);
    await vi.advanceTimersByTimeAsync(3 * HOUR * 1000);
    expect(rotated).toEqual([NOW + 7 * HOUR, NOW + 10 * HOUR]);
  });

  it('a rotation the identity can no longer attest past the current key fails and keeps it', async () => {
    const w = await world();
    const until = w.server.identity.latestChange.attestationsValidUntil;
    w.clock.set(until - 3 * DAY);
    const keys = await w.manager({ ttlSeconds: 2 * DAY, rotateBeforeSeconds: DAY });
    w.clock.set(until - 1.5 * DAY);
    expect(await keys.rotateIfDue()).toBe(true);
    // Cut short by the identity's window, still later than the key it replaces.
    expect(keys.current().expiresAt).toBe(until);
    const last = keys.current();
    w.clock.set(until - 0.5 * DAY);
    await expect(keys.rotateIfDue()).rejects.toMatchObject({ code: 'ERR_PURPOSE_KEY_EXPIRED' });
    expect(keys.current()).toBe(last);
    expect(keys.rotations).toBe(1);
  });

  it('refuses a margin that is not inside the attestation lifetime', async () => {
    const w = await world();
    for (const options of [
      { ttlSeconds: HOUR, rotateBeforeSeconds: HOUR },
      { ttlSeconds: HOUR, rotateBeforeSeconds: 0 },
      { ttlSeconds: 1 },
      { rotateBeforeSeconds: 1.5 },
    ]) {
      await expect(w.manager(options)).rejects.toMatchObject({ code: 'ERR_ARGUMENT_INVALID' });
    }
    // Without a margin, half the lifetime (rounded down), at most half a day.
    const short = await w.manager({ ttlSeconds: 7 });
    expect(short.dueAt).toBe(NOW + 7 - 3);
    const long = await w.manager({ ttlSeconds: 10 * DAY });
    expect(long.dueAt).toBe(NOW + 10 * DAY - DEFAULT_ROTATE_BEFORE_SECONDS);
  });
});

describe('an attestation of one key never serves another', () => {
  /** A manager's keys over `count` rotations: each static key with its attestation. */
  async function rotatedKeys(w: World, count: number) {
    const keys = await w.manager({ ttlSeconds: 2 * HOUR, rotateBeforeSeconds: HOUR });
    const all = [keys.current()];
    for (let i = 0; i < count; i++) {
      w.clock.advance(HOUR);
      await keys.rotateIfDue();
      all.push(keys.current());
    }
    return { keys, all };
  }

  it('a handshake whose static key is not the attested one is refused (property)', async () => {
    const w = await world();
    const { keys, all } = await rotatedKeys(w, 5);
    const payload = keys.identityPayload();
    const now = w.clock.nowSeconds();
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: all.length - 1 }),
        fc.integer({ min: 0, max: all.length - 1 }),
        (i, j) => {
          const verify = () =>
            verifyPeer(withAttestation(payload, all[i]!.attestation), {
              nowSeconds: now,
              remoteStaticKey: all[j]!.staticKey.publicKey,
              authorities: w.authorities,
              trustPolicy: TrustPolicies.anyIdentity(),
            });
          // The attestation is judged first (its expiry), then its binding to the Noise key.
          const attested = all[i]!.expiresAt >= now;
          if (!attested) expect(reasonOf(thrown(verify))).toBe('ERR_PURPOSE_KEY_EXPIRED');
          else if (i !== j) expect(reasonOf(thrown(verify))).toBe('ERR_CHANNEL_KEY_MISMATCH');
          else expect(verify().identifier).toBe(w.server.identity.identifier);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('a node presenting the previous key attestation with its new key is refused end to end', async () => {
    const w = await world();
    const { keys, all } = await rotatedKeys(w, 1);
    const [old, current] = [all[0]!, all[1]!];
    // A source that mixes them up: the new key, the old (still valid) attestation.
    const mixed: StaticKeySource = {
      current: () => ({ ...current, attestation: old.attestation }),
    };
    const n = await node(w, mixed, keys.identityPayload());
    expect(await rejection(n.open())).toBe('ERR_CHANNEL_KEY_MISMATCH');
  });

  it('a refresh is spared the clock only for the very attestation its channel was opened under', async () => {
    const w = await world();
    const { keys, all } = await rotatedKeys(w, 1);
    const channelKey = all[0]!;
    const payload = withAttestation(keys.identityPayload(), channelKey.attestation);
    const opened = verifyPeer(payload, {
      nowSeconds: w.clock.nowSeconds(),
      remoteStaticKey: channelKey.staticKey.publicKey,
      authorities: w.authorities,
      trustPolicy: TrustPolicies.anyIdentity(),
    });
    // Another attestation of the same key, expired by now (not the one the channel knows).
    const other = await attestPurposeKey(
      w.vault,
      w.server.identity,
      w.server.primaryKeyId,
      { purpose: Purpose.secureChannel, x25519: channelKey.staticKey.publicKey },
      { nowSeconds: NOW, ttlSeconds: 60 },
    );
    w.clock.advance(10 * DAY);
    const refresh = (attestation: Uint8Array, remoteStaticKey: Uint8Array) => () =>
      verifyPeer(withAttestation(payload, attestation), {
        nowSeconds: w.clock.nowSeconds(),
        remoteStaticKey,
        authorities: w.authorities,
        trustPolicy: TrustPolicies.anyIdentity(),
        established: opened,
      });
    const key = channelKey.staticKey.publicKey;
    expect(refresh(channelKey.attestation, key)().channelKey).toBe(opened.channelKey);
    expect(reasonOf(thrown(refresh(other, key)))).toBe('ERR_PURPOSE_KEY_EXPIRED');
    // The new key's attestation on the old key's channel: verified in full, and refused.
    expect(reasonOf(thrown(refresh(all[1]!.attestation, key)))).toBe('ERR_PURPOSE_KEY_EXPIRED');
    w.clock.set(all[1]!.expiresAt);
    expect(reasonOf(thrown(refresh(all[1]!.attestation, key)))).toBe('ERR_CHANNEL_KEY_MISMATCH');
    // Without `established` (a handshake), the channel's own attestation is judged by the clock.
    expect(
      reasonOf(
        thrown(() =>
          verifyPeer(payload, {
            nowSeconds: w.clock.nowSeconds(),
            remoteStaticKey: key,
            authorities: w.authorities,
            trustPolicy: TrustPolicies.anyIdentity(),
          }),
        ),
      ),
    ).toBe('ERR_PURPOSE_KEY_EXPIRED');
  });
});

const thrown = (f: () => unknown): unknown => {
  try {
    f();
  } catch (error) {
    return error;
  }
  return undefined;
};
