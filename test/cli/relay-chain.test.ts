import { connect, createServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, killChildren, startMandate } from '../helpers/processes.js';
import { authorityHome, json, run } from '../helpers/cli.js';

// A channel over two relays, across processes over TCP: relay R1, relay R2 registered at R1 as
// `r2` (`relay start --relay`), node B registered at R2 as `bob`, and `channel ping` (in process)
// along /ip4/…/R1/relay/r2/relay/bob. Every TCP connection either relay has runs through a
// recording proxy (a tap) in front of it, so the test sees every byte each relay sends or
// receives, and checks that the ping's plaintext is in none of them.

const taps: (() => Promise<void>)[] = [];
afterEach(async () => {
  await killChildren();
  for (const close of taps.splice(0)) await close();
});

/** What a tap saw on one proxied connection, chunk by chunk, in each direction. */
interface TappedConnection {
  readonly toRelay: Buffer[];
  readonly fromRelay: Buffer[];
}

interface Tap {
  /** Dial this port to reach the relay through the tap. */
  readonly port: number;
  readonly connections: TappedConnection[];
}

/**
 * A TCP proxy on 127.0.0.1 that forwards each connection to `relayPort` and records every chunk
 * both ways before passing it on.
 */
async function tap(relayPort: number): Promise<Tap> {
  const connections: TappedConnection[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const record: TappedConnection = { toRelay: [], fromRelay: [] };
    connections.push(record);
    const relay = connect(relayPort, '127.0.0.1');
    for (const socket of [client, relay]) {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        sockets.delete(socket);
        client.destroy();
        relay.destroy();
      });
    }
    client.on('data', (chunk: Buffer) => record.toRelay.push(Buffer.from(chunk)));
    relay.on('data', (chunk: Buffer) => record.fromRelay.push(Buffer.from(chunk)));
    client.pipe(relay);
    relay.pipe(client);
  });
  taps.push(async () => {
    const closed = new Promise((resolve) => server.close(resolve));
    for (const socket of sockets) socket.destroy();
    await closed;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return { port: address.port, connections };
}

/** Each direction of each connection as one stream, so a needle split across chunks is found. */
const streams = (t: Tap): Buffer[] =>
  t.connections.flatMap((c) => [Buffer.concat(c.toRelay), Buffer.concat(c.fromRelay)]);
const seen = (t: Tap, needle: Buffer): boolean => streams(t).some((s) => s.includes(needle));
const bytesSeen = (t: Tap): number => streams(t).reduce((n, s) => n + s.byteLength, 0);

describe('a channel over two relays', () => {
  it('pings B through R1 and R2 by name; no byte either relay sent or received holds the plaintext', async () => {
    const { home, issue } = await authorityHome('mandate-chain', [
      'relay1',
      'relay2',
      'bob',
      'alice',
    ]);
    const relay1Cred = await issue('relay1', 'role=relay');
    const relay2Cred = await issue('relay2', 'relay=r2');
    const bobCred = await issue('bob', 'relay=bob');
    const aliceCred = await issue('alice', 'role=client');

    // Each relay listens on its own port; everyone dials it through its tap.
    const r1Port = await freePort();
    const r2Port = await freePort();
    const tap1 = await tap(r1Port);
    const tap2 = await tap(r2Port);
    const viaTap1 = `/ip4/127.0.0.1/tcp/${String(tap1.port)}`;
    const viaTap2 = `/ip4/127.0.0.1/tcp/${String(tap2.port)}`;

    const r1 = startMandate(
      home,
      'relay',
      'start',
      '--listen',
      `127.0.0.1:${String(r1Port)}`,
      '--identity',
      'relay1',
      '--credential',
      relay1Cred,
    );
    await r1.waitFor(/listening/);
    const r2 = startMandate(
      home,
      'relay',
      'start',
      '--listen',
      `127.0.0.1:${String(r2Port)}`,
      '--identity',
      'relay2',
      '--credential',
      relay2Cred,
      '--relay',
      viaTap1,
      '--relay-name',
      'r2',
    );
    await r2.waitFor(/relay registration registered/);
    const bob = startMandate(
      home,
      'node',
      'start',
      '--listen',
      `127.0.0.1:${String(await freePort())}`,
      '--identity',
      'bob',
      '--credential',
      bobCred,
      '--relay',
      viaTap2,
      '--relay-name',
      'bob',
    );
    await bob.waitFor(/relay registration registered/);
    await r1.waitFor(/relay: bound name=r2/);
    await r2.waitFor(/relay: bound name=bob/);

    const marker = `plaintext-marker-${String(process.pid)}-${String(Date.now())}`;
    const markerBytes = Buffer.from(marker, 'utf8');
    const ping = await run(
      '--home',
      home,
      '--json',
      'channel',
      'ping',
      `${viaTap1}/relay/r2/relay/bob`,
      '--identity',
      'alice',
      '--credential',
      aliceCred,
      '--message',
      marker,
      '--count',
      '3',
    );
    expect(ping.code, ping.stderr).toBe(0);
    const result = json(ping);
    const bobId = json(await run('--home', home, '--json', 'identity', 'show', 'bob'));
    expect(result.peer).toEqual({ identifier: bobId.identifier, attributes: { relay: '=bob' } });
    expect(result.rttsMs).toHaveLength(3);

    // Stop everything before judging, so the taps hold every byte, closes included.
    expect(await bob.stop('SIGTERM')).toBe(0);
    expect(await r2.stop('SIGTERM')).toBe(0);
    expect(await r1.stop('SIGTERM')).toBe(0);
    for (const p of [bob, r2, r1]) expect(p.stderr()).toMatch(/stopping signal=SIGTERM/);

    // The taps saw the real traffic: R1 the ping's connection and R2's registration, R2 bob's
    // registration; the relay names travel in the clear routing headers.
    expect(tap1.connections.length).toBeGreaterThanOrEqual(2);
    expect(tap2.connections.length).toBeGreaterThanOrEqual(1);
    expect(seen(tap1, Buffer.from('forward_to_r2'))).toBe(true);
    for (const t of [tap1, tap2]) {
      expect(seen(t, Buffer.from('forward_to_bob'))).toBe(true);
      expect(bytesSeen(t)).toBeGreaterThan(3 * markerBytes.byteLength);
    }
    // Control: the search finds the marker where it is, even split across chunks.
    const control: Tap = {
      port: 0,
      connections: [
        {
          toRelay: [markerBytes.subarray(0, 7), markerBytes.subarray(7)],
          fromRelay: [],
        },
      ],
    };
    expect(seen(control, markerBytes)).toBe(true);
    // Neither relay sent or received the plaintext, in either direction, on any connection.
    expect(seen(tap1, markerBytes)).toBe(false);
    expect(seen(tap2, markerBytes)).toBe(false);
    for (const p of [r1, r2]) expect(p.stderr()).not.toContain(marker);
  }, 120_000);
});
