/**
 * Revocation-to-enforcement latency on a running node (issue 10): the authority's deny-set in
 * SQLite (WAL), its DenySetFeed and in-process bus, its BusService behind a secure-channel
 * listener on TCP; a node that follows it with an AuthorityBus and serves an echo behind its own
 * listener; a peer with an open channel to the node, sending an echo every millisecond. One
 * sample: append the peer's identity to the store, and time until the node closes the peer's
 * channel (its next delivery finds the peer revoked). Next to it, the floor measured in the same
 * run: an echo round trip over the same kind of channel. Two series: the feed polling the store
 * every 200 ms (what `authority start` does: another process writes the store), and the feed
 * told at once (what a bus costs without the store poll).
 *   node --import tsx bench/run.ts
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { randomUnit } from '../src/crypto/index.js';
import { DenyEntryKind } from '../src/credentials/index.js';
import { InProcessBus } from '../src/bus/index.js';
import {
  openSecureChannel,
  SecureChannelListener,
  TrustPolicies,
  type SecureChannel,
} from '../src/channel/index.js';
import { localAddress, Router, TcpTransport } from '../src/routing/index.js';
import { AuthorityBus, BusService, DenySetFeed } from '../src/node/index.js';
import { SqliteDatabase } from '../src/store/sqlite-database.js';
import {
  DENY_SET_MIGRATION_SQL,
  SqliteDenySetRepository,
} from '../src/store/sqlite-deny-set-repository.js';
import { channelWorld } from '../test/helpers/channel-world.js';
import type { TableRow } from './harness.js';
import { percentile } from '../src/core/internal.js';

const nowSeconds = (): number => Math.floor(Date.now() / 1000);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export async function busBenchmarks(
  samples = process.env.MANDATE_BENCH_QUICK === '1' ? 5 : 60,
): Promise<TableRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'mandate-bench-bus-'));
  const database = new SqliteDatabase(join(dir, 'deny.db'), [
    { version: 1, name: 'deny_set', sql: DENY_SET_MIGRATION_SQL },
  ]);
  const repository = new SqliteDenySetRepository(database);
  const world = await channelWorld(nowSeconds());
  const authorityParty = await world.party('authority-node', null);
  const nodeParty = await world.party('node', null);

  // The authority node.
  const authorityRouter = new Router();
  const authorityTcp = new TcpTransport(authorityRouter);
  const bus = new InProcessBus();
  const feed = await DenySetFeed.start({ repository, bus });
  const authorityListener = new SecureChannelListener(authorityRouter, {
    staticKey: authorityParty.staticKey,
    identityPayload: authorityParty.identityPayload,
    verify: { authorities: new Map(), trustPolicy: TrustPolicies.anyIdentity() },
    deliverTo: ['bus'],
  });
  authorityRouter.allowFromAnyConnection('api');
  const service = new BusService(authorityRouter, { bus, authorize: () => Promise.resolve() });
  const authorityAt = await authorityTcp.listen({ host: '127.0.0.1', port: 0 });

  // The node, following the authority, with an echo behind its listener.
  const nodeRouter = new Router();
  const nodeTcp = new TcpTransport(nodeRouter);
  const follow = await AuthorityBus.start({
    router: nodeRouter,
    random: randomUnit,
    maxStalenessSeconds: 10,
    authorities: () => Promise.resolve(new Map()),
    connect: (onClosed) =>
      openSecureChannel(
        nodeRouter,
        [
          localAddress(nodeTcp.connect(`127.0.0.1:${String(authorityAt.port)}`)),
          localAddress('api'),
        ],
        {
          staticKey: nodeParty.staticKey,
          identityPayload: nodeParty.identityPayload,
          verify: {
            authorities: new Map(),
            trustPolicy: TrustPolicies.identifier(authorityParty.identity.identifier),
          },
          onEvent: (event) => {
            if (event.type === 'closed') onClosed();
          },
        },
      ),
  });
  const nodeListener = new SecureChannelListener(nodeRouter, {
    staticKey: nodeParty.staticKey,
    identityPayload: nodeParty.identityPayload,
    verify: {
      authorities: new Map(),
      trustPolicy: TrustPolicies.anyIdentity(),
      denySet: follow.denySet,
    },
    deliverTo: ['echo'],
  });
  nodeRouter.registerWorker('echo', {
    handleMessage: async (ctx, envelope) => {
      await ctx.reply(envelope.payload);
    },
  });
  nodeRouter.allowFromAnyConnection('api');
  const nodeAt = await nodeTcp.listen({ host: '127.0.0.1', port: 0 });

  // Peers: a fresh identity per sample, with an open channel to the node.
  const peerRouter = new Router();
  const peerTcp = new TcpTransport(peerRouter);
  let answered: (() => void) | undefined;
  peerRouter.registerWorker('inbox', {
    handleMessage: () => {
      answered?.();
    },
  });
  let peers = 0;
  const openPeer = async (onClosed: () => void) => {
    const party = await world.party(`peer-${String(peers++)}`, null);
    const channel = await openSecureChannel(
      peerRouter,
      [localAddress(peerTcp.connect(`127.0.0.1:${String(nodeAt.port)}`)), localAddress('api')],
      {
        staticKey: party.staticKey,
        identityPayload: party.identityPayload,
        verify: {
          authorities: new Map(),
          trustPolicy: TrustPolicies.identifier(nodeParty.identity.identifier),
        },
        onEvent: (event) => {
          if (event.type === 'closed') onClosed();
        },
      },
    );
    channel.allow('inbox');
    return { party, channel };
  };
  const send = (channel: SecureChannel): Promise<void> =>
    peerRouter
      .send({
        onwardRoute: [localAddress(channel.address), localAddress('echo')],
        returnRoute: [localAddress('inbox')],
        payload: new Uint8Array(8),
      })
      .catch(() => undefined);

  // The floor: echo round trips over a channel like the peers'.
  const floorPeer = await openPeer(() => undefined);
  const roundTrips: number[] = [];
  for (let i = 0; i < 200; i++) {
    const start = performance.now();
    await new Promise<void>((resolve) => {
      answered = resolve;
      void send(floorPeer.channel);
    });
    roundTrips.push(performance.now() - start);
  }
  answered = undefined;
  await floorPeer.channel.close();

  const measure = async (refreshAtOnce: boolean): Promise<number[]> => {
    const latencies: number[] = [];
    for (let i = 0; i < samples; i++) {
      let closedAt: number | undefined;
      const { party, channel } = await openPeer(() => {
        closedAt ??= performance.now();
      });
      // Revocations at random moments of the poll's 200 ms period, as they come in practice
      // (a sample ends right after a poll: without this, every one would wait almost a period).
      await sleep(Math.floor(randomUnit() * 200));
      const now = nowSeconds();
      await repository.append(
        [
          {
            kind: DenyEntryKind.identity,
            id: party.identity.identifier,
            expiresAt: now + 3600,
            revokedAt: now,
          },
        ],
        now,
      );
      const revokedAt = performance.now();
      if (refreshAtOnce) void feed.refresh();
      while (closedAt === undefined && performance.now() - revokedAt < 5_000) {
        void send(channel);
        await sleep(1);
      }
      if (closedAt === undefined) throw new Error('the revoked peer was never cut off');
      latencies.push(closedAt - revokedAt);
      await channel.close();
    }
    return latencies;
  };
  const polled = await measure(false);
  const pushed = await measure(true);

  await follow.stop();
  service.close();
  await nodeListener.close();
  await authorityListener.close();
  await feed.stop();
  bus.close();
  await peerRouter.close();
  await nodeRouter.close();
  await authorityRouter.close();
  database.close();
  rmSync(dir, { recursive: true, force: true });

  const us = (ms: number): number => ms * 1000;
  const floor50 = us(percentile(roundTrips, 50));
  const floor99 = us(percentile(roundTrips, 99));
  const row = (what: string, value: number, floor: number, p: string): TableRow => ({
    what,
    usPerOp: value,
    baseline: `echo round trip on a channel (${p})`,
    baselineUsPerOp: floor,
    ratio: value / floor,
    target: 'under 1 s',
  });
  return [
    row(
      'revocation → cut on a running node, p50 (store polled every 200 ms)',
      us(percentile(polled, 50)),
      floor50,
      'p50',
    ),
    row(
      'revocation → cut on a running node, p99 (store polled every 200 ms)',
      us(percentile(polled, 99)),
      floor99,
      'p99',
    ),
    row(
      'revocation → cut on a running node, p50 (feed told at once)',
      us(percentile(pushed, 50)),
      floor50,
      'p50',
    ),
    row(
      'revocation → cut on a running node, p99 (feed told at once)',
      us(percentile(pushed, 99)),
      floor99,
      'p99',
    ),
  ];
}
