import { afterEach, describe, expect, it } from 'vitest';
import { freePort, killChildren, startMandate } from '../helpers/processes.js';
import { authorityHome, json, run } from '../helpers/cli.js';

// `mandate relay start`, `mandate node start --relay`, `mandate channel ping` across processes:
// a relay and a node run as children on 127.0.0.1; the ping runs in process.

afterEach(killChildren);

describe('relay and node commands', () => {
  it('pings a node through a relay by name, and both stop cleanly on SIGINT / SIGTERM', async () => {
    const { home, issue } = await authorityHome('mandate-relay', ['relay', 'bob', 'alice', 'eve']);
    const relayCred = await issue('relay', 'role=relay');
    const bobCred = await issue('bob', 'relay=bob');
    const aliceCred = await issue('alice', 'role=client');
    const eveCred = await issue('eve', 'role=client');

    const relayPort = await freePort();
    const relay = startMandate(
      home,
      'relay',
      'start',
      '--listen',
      `127.0.0.1:${String(relayPort)}`,
      '--identity',
      'relay',
      '--credential',
      relayCred,
    );
    await relay.waitFor(/listening/);
    const relayRoute = `/ip4/127.0.0.1/tcp/${String(relayPort)}`;
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
      relayRoute,
      '--relay-name',
      'bob',
    );
    await bob.waitFor(/relay registration registered/);
    // Eve may not take a name her credential does not grant.
    const eve = startMandate(
      home,
      'node',
      'start',
      '--listen',
      `127.0.0.1:${String(await freePort())}`,
      '--identity',
      'eve',
      '--credential',
      eveCred,
      '--relay',
      relayRoute,
      '--relay-name',
      'bob',
    );
    await eve.waitFor(/relay registration failed.*ERR_RELAY_FORBIDDEN/);

    const ping = await run(
      '--home',
      home,
      '--json',
      'channel',
      'ping',
      `${relayRoute}/relay/bob`,
      '--identity',
      'alice',
      '--credential',
      aliceCred,
      '--count',
      '3',
    );
    expect(ping.code, ping.stderr).toBe(0);
    const result = json(ping);
    const bobId = json(await run('--home', home, '--json', 'identity', 'show', 'bob'));
    expect(result.peer).toEqual({
      identifier: bobId.identifier,
      attributes: { relay: '=bob' },
    });
    expect(result.rttsMs).toHaveLength(3);
    expect(relay.stderr()).toMatch(/relay: bound name=bob/);

    // `channel open`: the handshake alone, the verified peer printed.
    const open = await run(
      '--home',
      home,
      '--json',
      'channel',
      'open',
      `${relayRoute}/relay/bob`,
      '--identity',
      'alice',
      '--credential',
      aliceCred,
    );
    expect(open.code, open.stderr).toBe(0);
    expect(json(open).peer).toEqual(result.peer);

    expect(await bob.stop('SIGTERM')).toBe(0);
    expect(bob.stderr()).toMatch(/stopping signal=SIGTERM/);
    expect(await relay.stop('SIGINT')).toBe(0);
    expect(relay.stderr()).toMatch(/stopping signal=SIGINT/);
  }, 60_000);
});
