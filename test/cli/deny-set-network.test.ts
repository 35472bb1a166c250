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
  relayAddress,
  TrustPolicies,
} from '../../src/channel/index.js';
import { localAddress, Router, TcpTransport, type Route } from '../../src/routing/index.js';
import { freePort, killChildren, startMandate } from '../helpers/processes.js';
import { authorityHome, okJson as ok, run, type Run } from '../helpers/cli.js';

// The network paths consult the home's deny-set (issue 8, vulnerability 2). In one home, where
// `mandate revoke` revokes bob: a channel to bob is refused, a relay refuses bob's registration,
// the authority node refuses bob's renewal and a revoked identity's enrollment — and processes
// that were already running when the revocation was made see it within about two seconds.

afterEach(killChildren);

/** A failed run: its `error[CODE]: ` line last on stderr, the exit code of its kind. */
function expectError(r: Run, code: string, exit: number): void {
  expect(r.stderr).toMatch(new RegExp(`error\\[${code}\\]: \\S[^\\n]*\\n$`));
  expect(r.code, r.stderr).toBe(exit);
}

const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

const listen = async (): Promise<{ address: string; route: string }> => {
  const port = String(await freePort());
  return { address: `127.0.0.1:${port}`, route: `/ip4/127.0.0.1/tcp/${port}` };
};

/** A responder's log line for a handshake it refused because the initiator is revoked. */
const REFUSED_REVOKED = /channel: handshake failed [^\n]*reason=ERR_REVOKED/;

/**
 * This process as `name` of `home`, with the library: a secure channel along `route` (given the
 * transport) presenting the credential in `chainFile`, and `echo(text)` through it. Its own
 * verification has no deny-set: what is refused is refused by the running processes.
 */
async function channelAs(
  home: string,
  name: string,
  chainFile: string,
  route: (transport: TcpTransport) => Route,
) {
  const opened = await openHome(home);
  const router = new Router();
  const transport = new TcpTransport(router);
  try {
    const me = await opened.identities.get(name);
    if (me.primaryKeyId === null) throw new Error(`${name} has no key`);
    const authorities = await opened.trustedAuthorities({ forIdentity: me.identity.identifier });
    const chain = decodeChain(fromHex(readFileSync(chainFile, 'utf8').trim()));
    const prepared = await prepareChannelIdentity(opened.vault, {
      identity: me.identity,
      primaryKeyId: me.primaryKeyId,
      credentials: [chain.root],
      nowSeconds: Math.floor(Date.now() / 1000),
    });
    const channel = await openSecureChannel(router, route(transport), {
      ...prepared,
      verify: { authorities, trustPolicy: TrustPolicies.credentialHolder() },
    });
    const answers: string[] = [];
    let wake: (() => void) | undefined;
    router.registerWorker('inbox', {
      handleMessage: (_ctx, envelope) => {
        answers.push(new TextDecoder().decode(envelope.payload));
        wake?.();
      },
    });
    channel.allow('inbox');
    /** Whether `text` comes back within `timeoutMs`. */
    const echo = async (text: string, timeoutMs: number): Promise<boolean> => {
      answers.length = 0;
      const answered = new Promise<boolean>((resolve) => {
        wake = () => {
          resolve(true);
        };
        setTimeout(() => {
          resolve(false);
        }, timeoutMs).unref();
      });
      try {
        await router.send({
          onwardRoute: [localAddress(channel.address), localAddress('echo')],
          returnRoute: [localAddress('inbox')],
          payload: new TextEncoder().encode(text),
        });
      } catch {
        return false; // the channel is gone
      }
      return (await answered) && answers.includes(text);
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

describe('the network paths apply the home’s deny-set', () => {
  it('refuses a revoked identity in processes started after the revocation', async () => {
    const { home, issue } = await authorityHome('mandate-deny', ['relay', 'bob', 'alice']);
    const relayCred = await issue('relay', 'role=relay');
    const bobCred = await issue('bob', 'relay=bob');
    const aliceCred = await issue('alice', 'role=client');
    const bobId = (await ok<{ identifier: string }>(home, 'identity', 'show', 'bob')).identifier;

    const bobAt = await listen();
    const bobNode = startMandate(
      home,
      'node',
      'start',
      '--listen',
      bobAt.address,
      '--identity',
      'bob',
      '--credential',
      bobCred,
    );
    await bobNode.waitFor(/listening/);
    const channelCommand = (command: 'open' | 'ping') =>
      run(
        '--home',
        home,
        '--json',
        'channel',
        command,
        bobAt.route,
        '--identity',
        'alice',
        '--credential',
        aliceCred,
        ...(command === 'ping' ? ['--count', '1'] : []),
      );
    const before = await channelCommand('open');
    expect(before.code, before.stderr).toBe(0);

    expect(await ok(home, 'revoke', bobId)).toMatchObject({ revoked: bobId });

    // (a) A channel to bob: refused by the initiator, whose verification reads the deny-set.
    const open = await channelCommand('open');
    expectError(open, 'ERR_CHANNEL_PEER_REJECTED', 4);
    expect(open.stderr).toMatch(/reason=ERR_REVOKED/);
    const ping = await channelCommand('ping');
    expectError(ping, 'ERR_CHANNEL_PEER_REJECTED', 4);
    expect(ping.stderr).toMatch(/reason=ERR_REVOKED/);

    // (b) A relay started after the revocation refuses bob's registration channel.
    const relayAt = await listen();
    const relay = startMandate(
      home,
      'relay',
      'start',
      '--listen',
      relayAt.address,
      '--identity',
      'relay',
      '--credential',
      relayCred,
    );
    await relay.waitFor(/listening/);
    startMandate(
      home,
      'node',
      'start',
      '--listen',
      (await listen()).address,
      '--identity',
      'bob',
      '--credential',
      bobCred,
      '--relay',
      relayAt.route,
      '--relay-name',
      'bob',
    );
    await relay.waitFor(REFUSED_REVOKED);

    // (c) The authority node refuses bob's renewal, and a revoked identity's enrollment.
    const authorityAt = await listen();
    const authority = startMandate(home, 'authority', 'start', '--listen', authorityAt.address);
    await authority.waitFor(/listening/);
    startMandate(
      home,
      'node',
      'start',
      '--listen',
      (await listen()).address,
      '--identity',
      'bob',
      '--authority',
      authorityAt.route,
    );
    await authority.waitFor(REFUSED_REVOKED);
    const other = mkdtempSync(join(tmpdir(), 'mandate-deny-carol-'));
    const carol = (await ok<{ identifier: string }>(other, 'identity', 'create', '--name', 'carol'))
      .identifier;
    // carol is not an identity of this home: the revocation is recorded, with a note saying so.
    const revoked = await run('--home', home, 'revoke', carol);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.stderr).toMatch(/not an identity this home knows/);
    // A running authority sees a revocation at its next poll (about a second): wait for it, or
    // a fast redemption could arrive first.
    await authority.waitFor(/deny-set: updated/);
    const { ticket } = await ok<{ ticket: string }>(
      home,
      'ticket',
      'create',
      '--route',
      authorityAt.route,
    );
    startMandate(other, 'ticket', 'redeem', ticket, '--identity', 'carol');
    await authority.waitFor(new RegExp(`(?:${REFUSED_REVOKED.source}[\\s\\S]*){2}`));

    expect(relay.stderr()).not.toMatch(/relay registered|relay: bound/);
    expect(authority.stderr()).not.toMatch(/enrollment: (?:renewed|enrolled)/);
    expect(await relay.stop('SIGTERM')).toBe(0);
    expect(await authority.stop('SIGTERM')).toBe(0);
    expect(await bobNode.stop('SIGTERM')).toBe(0);
  }, 90_000);

  it('has running nodes, relays and authorities see a revocation within about two seconds', async () => {
    const { home, issue } = await authorityHome('mandate-deny-live', ['relay', 'bob', 'alice']);
    const relayCred = await issue('relay', 'role=relay');
    // Also makes bob a member with relay=bob: the authority renews that.
    const bobCred = await issue('bob', 'relay=bob');
    const aliceCred = await issue('alice', 'role=client');
    const bobId = (await ok<{ identifier: string }>(home, 'identity', 'show', 'bob')).identifier;

    const authorityAt = await listen();
    const authority = startMandate(
      home,
      'authority',
      'start',
      '--listen',
      authorityAt.address,
      '--credential-ttl',
      '10s',
    );
    const relayAt = await listen();
    const relay = startMandate(
      home,
      'relay',
      'start',
      '--listen',
      relayAt.address,
      '--identity',
      'relay',
      '--credential',
      relayCred,
    );
    const aliceAt = await listen();
    const aliceNode = startMandate(
      home,
      'node',
      'start',
      '--listen',
      aliceAt.address,
      '--identity',
      'alice',
      '--credential',
      aliceCred,
    );
    await authority.waitFor(/listening/);
    await relay.waitFor(/listening/);
    await aliceNode.waitFor(/listening/);
    // Bob renews from the authority every few seconds and is registered at the relay.
    const bobNode = startMandate(
      home,
      'node',
      'start',
      '--listen',
      (await listen()).address,
      '--identity',
      'bob',
      '--authority',
      authorityAt.route,
      '--refresh-lead',
      '6s',
      '--relay',
      relayAt.route,
      '--relay-name',
      'bob',
    );
    await bobNode.waitFor(/relay registration registered/);
    await authority.waitFor(/enrollment: renewed/);

    // Bob's channel to alice's node, and alice's channel to bob through the relay by name.
    const bobToAlice = await channelAs(home, 'bob', bobCred, (t) => [
      localAddress(t.connect(aliceAt.address)),
      localAddress('api'),
    ]);
    const aliceToBob = await channelAs(home, 'alice', aliceCred, (t) => [
      localAddress(t.connect(relayAt.address)),
      localAddress(relayAddress('bob')),
      localAddress('api'),
    ]);
    try {
      expect(await bobToAlice.echo('before', 10_000)).toBe(true);
      expect(await aliceToBob.echo('before', 10_000)).toBe(true);

      await ok(home, 'revoke', bobId);
      const revokedAt = Date.now();
      // When the first echo that did not come back was sent (ms after `revoke`), per channel.
      const cutAt = async (echo: (text: string, timeoutMs: number) => Promise<boolean>) => {
        while (Date.now() - revokedAt < 6_000) {
          await sleep(100);
          const sentAt = Date.now() - revokedAt;
          if (!(await echo('after', 1_000))) return sentAt;
        }
        return undefined;
      };
      const [bobToAliceCut, aliceToBobCut] = await Promise.all([
        cutAt(bobToAlice.echo),
        cutAt(aliceToBob.echo),
      ]);
      // (d) Alice's node closes bob's channel on its next delivery; the relay stops forwarding
      // to bob's name. Both within the watcher's poll (1 s), with room for a busy machine.
      expect(bobToAliceCut).toBeLessThan(2_500);
      expect(aliceToBobCut).toBeLessThan(2_500);
      await aliceNode.waitFor(/channel: the peer is revoked, closing/);
      await relay.waitFor(/relay: message dropped name=bob reason=not_granted/);
      // The authority refuses bob's next renewal (due within a few seconds), and renews nothing
      // for him after that.
      await authority.waitFor(REFUSED_REVOKED, 15_000);
      const log = authority.stderr();
      expect(log.slice(log.search(REFUSED_REVOKED))).not.toContain(
        `enrollment: renewed identifier=${bobId}`,
      );
    } finally {
      await bobToAlice.close();
      await aliceToBob.close();
    }
    // Every process stops cleanly: the watcher leaves no timer behind.
    for (const child of [bobNode, aliceNode, relay, authority])
      expect(await child.stop('SIGTERM')).toBe(0);
  }, 90_000);
});
