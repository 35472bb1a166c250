import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openHome } from '../../src/cli/home.js';
import { decodeChain } from '../../src/credentials/index.js';
import { fromHex } from '../../src/encoding/index.js';
import {
  openSecureChannel,
  prepareChannelIdentity,
  TrustPolicies,
} from '../../src/channel/index.js';
import { localAddress, Router, TcpTransport } from '../../src/routing/index.js';
import { freePort, killChildren, startMandate } from '../helpers/processes.js';
import { okJson as ok, run, type Run } from '../helpers/cli.js';

// `node start` / `relay start --authority ROUTE` across processes, in real time: the authority
// (home A) issues credentials that live 10 s; bob's node (B) and a relay node (D) enrolled over
// the network and renew theirs from it 6 s before they expire. Alice (C) holds an hour-long
// credential and talks to bob past the expiry of his first credential: over new channels (the
// listener presents the renewed credential), over a channel opened before (refreshed in-band),
// and through the relay after it restarted (bob registers again with his renewed credential).

afterEach(killChildren);

const CREDENTIAL_TTL = '10s';
const REFRESH_LEAD = '6s';

const newHome = (label: string): string => mkdtempSync(join(tmpdir(), `mandate-renew-${label}-`));

/** A failed run: its `error[CODE]: ` line last on stderr, the exit code of its kind. */
function expectError(r: Run, code: string, exit: number): void {
  expect(r.stderr).toMatch(new RegExp(`error\\[${code}\\]: \\S[^\\n]*\\n$`));
  expect(r.code, r.stderr).toBe(exit);
}

const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

/** The `expires=` time (ms) of the first log line matching `pattern`. */
function expiresOf(log: string, pattern: RegExp): number {
  const match = pattern.exec(log);
  if (match?.[1] === undefined) throw new Error(`no match for ${String(pattern)} in:\n${log}`);
  return Date.parse(match[1]);
}

/**
 * Alice's side in this process, with the library: a secure channel to the node at `address`
 * presenting her hour-long credential, and `echo(text)` through it.
 */
async function aliceChannel(home: string, chainFile: string, address: string) {
  const opened = await openHome(home);
  const router = new Router();
  const transport = new TcpTransport(router);
  try {
    const alice = await opened.identities.get('alice');
    if (alice.primaryKeyId === null) throw new Error('alice has no key');
    const authorities = await opened.trustedAuthorities();
    const chain = decodeChain(fromHex(readFileSync(chainFile, 'utf8').trim()));
    const prepared = await prepareChannelIdentity(opened.vault, {
      identity: alice.identity,
      primaryKeyId: alice.primaryKeyId,
      credentials: [chain.root],
      nowSeconds: Math.floor(Date.now() / 1000),
    });
    const channel = await openSecureChannel(
      router,
      [localAddress(transport.connect(address)), localAddress('api')],
      { ...prepared, verify: { authorities, trustPolicy: TrustPolicies.credentialHolder() } },
    );
    const answers: string[] = [];
    let wake: (() => void) | undefined;
    router.registerWorker('alice', {
      handleMessage: (_ctx, envelope) => {
        answers.push(new TextDecoder().decode(envelope.payload));
        wake?.();
      },
    });
    channel.allow('alice');
    const echo = async (text: string): Promise<string> => {
      const answered = new Promise<void>((resolve, reject) => {
        wake = resolve;
        setTimeout(() => {
          reject(new Error(`no echo of \`${text}\` within 10 s`));
        }, 10_000).unref();
      });
      await router.send({
        onwardRoute: [localAddress(channel.address), localAddress('echo')],
        returnRoute: [localAddress('alice')],
        payload: new TextEncoder().encode(text),
      });
      await answered;
      return answers.shift() ?? '';
    };
    return {
      channel,
      echo,
      close: async () => {
        await channel.close();
        await router.close();
        opened.close();
      },
    };
  } catch (error) {
    await router.close();
    opened.close();
    throw error;
  }
}

describe('credential renewal from the authority', () => {
  it('keeps a node trusted past its first credential: new channels, open channels, relays', async () => {
    // A: the authority node, issuing credentials for 10 s.
    const a = newHome('a');
    const authority = (await ok<{ identifier: string }>(a, 'authority', 'init')).identifier;
    const authorityPort = await freePort();
    const authorityRoute = `/ip4/127.0.0.1/tcp/${String(authorityPort)}`;
    const ticket = async (attr: string): Promise<string> =>
      (
        await ok<{ ticket: string }>(
          a,
          'ticket',
          'create',
          '--attr',
          attr,
          '--route',
          authorityRoute,
        )
      ).ticket;
    const tickets = {
      bob: await ticket('relay=bob'),
      alice: await ticket('role=client'),
      hub: await ticket('role=relay'),
    };
    const authorityNode = startMandate(
      a,
      'authority',
      'start',
      '--listen',
      `127.0.0.1:${String(authorityPort)}`,
      '--credential-ttl',
      CREDENTIAL_TTL,
    );
    await authorityNode.waitFor(/listening/);
    expect(authorityNode.stderr()).toContain(`authority=${authority} credentialTtlSeconds=10`);
    // No longer than the policy allows (a day).
    expectError(
      await run(
        '--home',
        a,
        'authority',
        'start',
        '--listen',
        '127.0.0.1:0',
        '--credential-ttl',
        '2d',
      ),
      'ERR_ARGUMENT_INVALID',
      3,
    );

    // B (bob), C (alice) and D (hub, a relay) enroll over the network, and each home trusts A
    // for its peers too (`trust add`): a redeemed ticket trusts A for the enrolled identity only.
    const homes = { bob: newHome('b'), alice: newHome('c'), hub: newHome('d') };
    const ids: Record<string, string> = {};
    for (const name of ['bob', 'alice', 'hub'] as const) {
      const home = homes[name];
      ids[name] = (
        await ok<{ identifier: string }>(home, 'identity', 'create', '--name', name)
      ).identifier;
      await ok(home, 'ticket', 'redeem', tickets[name], '--identity', name);
      await ok(home, 'trust', 'add', authority);
    }
    const alice = ids.alice ?? '';
    const bobId = ids.bob ?? '';
    // Alice's credential for the hour, issued in A's home (which learned her history when she
    // enrolled): she talks to bob without renewing, so any failure is bob's.
    const aliceChain = join(homes.alice, 'alice.chain');
    await ok(
      a,
      'credential',
      'issue',
      '--to',
      alice,
      '--attr',
      'role=client',
      '--ttl',
      '1h',
      '--out',
      aliceChain,
    );

    // Checked before anything runs, or at the first fetch.
    const bobStart = (...argv: string[]) =>
      run(
        '--home',
        homes.bob,
        'node',
        'start',
        '--listen',
        '127.0.0.1:0',
        '--identity',
        'bob',
        ...argv,
      );
    expectError(await bobStart('--refresh-lead', '6s'), 'ERR_ARGUMENT_INVALID', 3);
    const nobody = `/ip4/127.0.0.1/tcp/${String(await freePort())}`;
    const unreachable = await bobStart('--authority', nobody);
    expectError(unreachable, 'ERR_AUTHORITY_UNREACHABLE', 10);
    expect(unreachable.stderr).toContain(`cannot reach the authority at \`${nobody}\``);
    expectError(
      await bobStart('--authority', authorityRoute, '--refresh-lead', '1h'),
      'ERR_ARGUMENT_INVALID',
      3,
    );

    const hubPort = await freePort();
    const hubAddress = `127.0.0.1:${String(hubPort)}`;
    const hubRoute = `/ip4/127.0.0.1/tcp/${String(hubPort)}`;
    const startHub = () =>
      startMandate(
        homes.hub,
        'relay',
        'start',
        '--listen',
        hubAddress,
        '--identity',
        'hub',
        '--authority',
        authorityRoute,
        '--refresh-lead',
        REFRESH_LEAD,
      );
    let hub = startHub();
    await hub.waitFor(/listening/);
    const hubFirstExpiryMs = expiresOf(hub.stderr(), /credentials fetched expires=(\S+)/);
    // The relay is no authority of bob's home: refused before anything is asked.
    const stranger = await bobStart('--authority', hubRoute);
    expectError(stranger, 'ERR_CHANNEL_PEER_REJECTED', 4);
    expect(stranger.stderr).toContain('is not an authority this home trusts');
    const bobPort = await freePort();
    const bobAddress = `127.0.0.1:${String(bobPort)}`;
    const bobRoute = `/ip4/127.0.0.1/tcp/${String(bobPort)}`;
    const bob = startMandate(
      homes.bob,
      'node',
      'start',
      '--listen',
      bobAddress,
      '--identity',
      'bob',
      '--authority',
      authorityRoute,
      '--refresh-lead',
      REFRESH_LEAD,
      '--relay',
      hubRoute,
      '--relay-name',
      'bob',
    );
    await bob.waitFor(/relay registration registered/);
    const firstExpiryMs = expiresOf(bob.stderr(), /credentials fetched expires=(\S+)/);
    expect(bob.stderr()).toContain(`authority=${authority}`);

    const ping = (route: string) =>
      ok<{ peer: { identifier: string; attributes: Record<string, string> } }>(
        homes.alice,
        'channel',
        'ping',
        route,
        '--identity',
        'alice',
        '--credential',
        aliceChain,
        '--count',
        '1',
      );
    expect((await ping(bobRoute)).peer.identifier).toBe(bobId);
    expect((await ping(`${hubRoute}/relay/bob`)).peer).toEqual({
      identifier: bobId,
      attributes: { relay: '=bob' },
    });
    const open = await aliceChannel(homes.alice, aliceChain, bobAddress);
    try {
      expect(await open.echo('before')).toBe('before');
      // Bob's first credential, or on a slow machine already a renewed one.
      const openedWith = open.channel.peer.credentials.map((c) => c.expiresAt * 1000);
      expect(openedWith).toHaveLength(1);
      const openedExpiryMs = openedWith[0] ?? 0;
      expect(openedExpiryMs).toBeGreaterThanOrEqual(firstExpiryMs);

      // Bob and the relay renew before their first credentials expire; wait until every
      // credential presented so far has expired (whole seconds).
      await bob.waitFor(/credentials renewed expires=/, 20_000);
      await sleep(Math.max(firstExpiryMs, hubFirstExpiryMs, openedExpiryMs) + 1_100 - Date.now());
      const renewedMs = expiresOf(bob.stderr(), /credentials renewed expires=(\S+)/);
      expect(renewedMs).toBeGreaterThan(firstExpiryMs);

      // The relay's own listener presents a renewed credential to a new channel…
      await ok(
        homes.alice,
        'channel',
        'open',
        hubRoute,
        '--identity',
        'alice',
        '--credential',
        aliceChain,
      );
      // …and, crashed and restarted, has bob register again: with his renewed credential, or not
      // at all. (A crash: no channel is closed by the relay, bob finds out from the connection.)
      expect(await hub.stop('SIGKILL')).toBeNull();
      hub = startHub();

      // The channel opened before still works: bob refreshed it in-band.
      expect(await open.echo('after')).toBe('after');
      const [presented] = open.channel.peer.credentials;
      expect((presented?.expiresAt ?? 0) * 1000).toBeGreaterThan(openedExpiryMs);
      expect(open.channel.droppedCount).toBe(0);
      // A new channel: bob's listener presents its renewed credential.
      expect((await ping(bobRoute)).peer.identifier).toBe(bobId);

      await bob.waitFor(/relay registration registered[\s\S]*relay registration registered/);
      expect((await ping(`${hubRoute}/relay/bob`)).peer.identifier).toBe(bobId);

      // One more renewal, and time for the channels' own timers (a second later): the channel of
      // the lost registration was closed with it, not left renewing on a dead connection.
      const renewals = bob.stderr().match(/credentials renewed/g)?.length ?? 0;
      await bob.waitFor(new RegExp(`(?:credentials renewed[\\s\\S]*){${String(renewals + 1)}}`));
      await sleep(2_000);
    } finally {
      await open.close();
    }
    expect(bob.stderr()).not.toMatch(/refresh failed|renewal failed/);
    expect(await bob.stop('SIGTERM')).toBe(0);
    expect(await hub.stop('SIGINT')).toBe(0);
  }, 90_000);
});
