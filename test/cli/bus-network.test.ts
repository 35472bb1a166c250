import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
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
import { freePort, killChildren, startMandate, type Started } from '../helpers/processes.js';
import { authorityHome, okJson as ok } from '../helpers/cli.js';

// Distribution to running nodes over the bus (docs/spec/policy.md §3): an authority node on home
// A, a node on home B started with `--authority ROUTE` (enrolled by ticket), peers from home A
// with channels to node B. A revocation made with `mandate revoke` on home A must reach node B —
// new channels and open ones — within about a second; node B must fail closed once its authority
// has been silent past `--max-staleness`, and recover from a snapshot when it is back; a bundle
// published on home A must become node B's bundle.

afterEach(killChildren);

const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

const listen = async (): Promise<{ address: string; route: string }> => {
  const port = String(await freePort());
  return { address: `127.0.0.1:${port}`, route: `/ip4/127.0.0.1/tcp/${port}` };
};

/**
 * This process as `name` of `home`: a secure channel to the node listening at `address`,
 * presenting the credential in `chainFile`, and `echo(text)` through it. Its own verification
 * has no deny-set: what is refused is refused by node B.
 */
async function peer(home: string, name: string, chainFile: string, address: string) {
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
    const channel = await openSecureChannel(
      router,
      [localAddress(transport.connect(address)), localAddress('api')],
      { ...prepared, verify: { authorities, trustPolicy: TrustPolicies.credentialHolder() } },
    );
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

/** Whether a new channel from `name` to node B is accepted (its echo answered). */
async function connects(home: string, name: string, chainFile: string, address: string) {
  try {
    const p = await peer(home, name, chainFile, address);
    const answered = await p.echo('hello', 3_000);
    await p.close();
    return answered;
  } catch {
    return false;
  }
}

/** Milliseconds from `since` until `echo` first fails (polled every 20 ms), or undefined. */
async function cutAfter(
  echo: (text: string, timeoutMs: number) => Promise<boolean>,
  since: number,
  withinMs: number,
): Promise<number | undefined> {
  while (Date.now() - since < withinMs) {
    const sentAt = Date.now() - since;
    if (!(await echo('after', 500))) return sentAt;
    await sleep(20);
  }
  return undefined;
}

const count = (log: string, pattern: RegExp): number =>
  (log.match(new RegExp(pattern.source, 'g')) ?? []).length;

describe('deny-sets and bundles reach a node on another home over the bus', () => {
  it('revocation within a second, fail closed when the authority is silent, recovery from a snapshot, new bundles', async () => {
    const a = await authorityHome('mandate-bus-a', ['alice', 'carol', 'dave']);
    const aliceCred = await a.issue('alice', 'role=client');
    const carolCred = await a.issue('carol', 'role=client');
    const daveCred = await a.issue('dave', 'role=client');
    const id = async (name: string) =>
      (await ok<{ identifier: string }>(a.home, 'identity', 'show', name)).identifier;
    const authorityHistory = (await ok<{ changeHistory: string }>(a.home, 'authority', 'init'))
      .changeHistory;

    const authorityAt = await listen();
    const startAuthority = (): Started =>
      startMandate(a.home, 'authority', 'start', '--listen', authorityAt.address);
    let authority = startAuthority();
    await authority.waitFor(/listening/);

    // Home B: node B's identity, enrolled at A by ticket; B trusts A for its peers too.
    const b = mkdtempSync(join(tmpdir(), 'mandate-bus-b-'));
    await ok(b, 'identity', 'create', '--name', 'nodeb');
    const { ticket } = await ok<{ ticket: string }>(
      a.home,
      'ticket',
      'create',
      '--route',
      authorityAt.route,
    );
    await ok(b, 'ticket', 'redeem', ticket, '--identity', 'nodeb');
    writeFileSync(join(b, 'authority.hex'), authorityHistory);
    await ok(b, 'trust', 'add', join(b, 'authority.hex'));

    const nodeAt = await listen();
    const nodeB = startMandate(
      b,
      'node',
      'start',
      '--listen',
      nodeAt.address,
      '--identity',
      'nodeb',
      '--authority',
      authorityAt.route,
      '--max-staleness',
      '3s',
    );
    await nodeB.waitFor(/listening/);
    expect(nodeB.stderr()).toMatch(/bus: connected to the authority/);
    await authority.waitFor(/bus: subscribed [^\n]*topic=deny-set/);

    // (1) A revocation on home A cuts alice's open channel to node B, and her next one.
    const alice = await peer(a.home, 'alice', aliceCred, nodeAt.address);
    const carol = await peer(a.home, 'carol', carolCred, nodeAt.address);
    expect(await alice.echo('before', 5_000)).toBe(true);
    expect(await carol.echo('before', 5_000)).toBe(true);
    await ok(a.home, 'revoke', await id('alice'));
    const revokedAt = Date.now();
    const cutMs = await cutAfter(alice.echo, revokedAt, 5_000);
    console.log(`revocation on home A → open channel cut on node B: ${String(cutMs)} ms`);
    expect(cutMs).toBeDefined();
    expect(cutMs).toBeLessThan(1_500);
    await nodeB.waitFor(/channel: the peer is revoked, closing/);
    expect(await connects(a.home, 'alice', aliceCred, nodeAt.address)).toBe(false);
    await nodeB.waitFor(/channel: handshake failed [^\n]*reason=ERR_REVOKED/);
    console.log(
      `revocation on home A → new channel refused by node B: ${String(Date.now() - revokedAt)} ms (upper bound, includes the attempt)`,
    );
    // Carol is not revoked: her channel works, and so does a new one.
    expect(await carol.echo('still', 5_000)).toBe(true);
    expect(await connects(a.home, 'carol', carolCred, nodeAt.address)).toBe(true);

    // (2) The authority goes away: past --max-staleness (3 s) node B refuses everyone.
    await authority.stop('SIGKILL');
    const killedAt = Date.now();
    const staleMs = await cutAfter(carol.echo, killedAt, 15_000);
    console.log(`authority gone → node B fails closed after ${String(staleMs)} ms (bound 3 s)`);
    expect(staleMs).toBeGreaterThan(2_000);
    expect(staleMs).toBeLessThan(8_000);
    expect(await connects(a.home, 'carol', carolCred, nodeAt.address)).toBe(false);
    // A stale deny-set drops every credential a peer shows: the messages of open channels are
    // dropped, and a credential holder's handshake fails as untrusted.
    await nodeB.waitFor(/channel: message dropped [^\n]*reason=ERR_CHANNEL_PEER_EXPIRED/);
    await nodeB.waitFor(/channel: handshake failed [^\n]*reason=ERR_CHANNEL_UNTRUSTED/);

    // (3) Meanwhile dave is revoked on home A; the authority comes back on the same port, and
    // node B catches up from a snapshot: carol is served again, dave is refused.
    await ok(a.home, 'revoke', await id('dave'));
    const connectedBefore = count(nodeB.stderr(), /bus: connected to the authority/);
    authority = startAuthority();
    await authority.waitFor(/listening/);
    const backAt = Date.now();
    await nodeB.waitFor(
      new RegExp(`(?:bus: connected to the authority[\\s\\S]*){${connectedBefore + 1}}`),
      30_000,
    );
    await authority.waitFor(/bus: subscribed [^\n]*topic=deny-set/);
    let recoveredMs: number | undefined;
    while (Date.now() - backAt < 30_000) {
      if (await carol.echo('back', 500)) {
        recoveredMs = Date.now() - backAt;
        break;
      }
      await sleep(50);
    }
    console.log(`authority back → node B serves again after ${String(recoveredMs)} ms`);
    expect(recoveredMs).toBeDefined();
    expect(await connects(a.home, 'carol', carolCred, nodeAt.address)).toBe(true);
    expect(await connects(a.home, 'dave', daveCred, nodeAt.address)).toBe(false);
    // From a snapshot: the restarted authority's bus starts at sequence 2, past node B's 1.
    expect(nodeB.stderr()).toMatch(/deny-set: updated from=1 to=2/);

    // (4) A bundle published on home A becomes node B's (verified there).
    writeFileSync(
      join(a.dir, 'policies.cedar'),
      'permit(principal, action == Action::"listTool", resource);\n',
    );
    writeFileSync(
      join(a.dir, 'catalog.json'),
      JSON.stringify([
        {
          name: 'read_orders',
          server: 'crm',
          description: 'read',
          inputSchema: { type: 'object' },
        },
      ]),
    );
    const published = await ok<{ version: number; hash: string }>(
      a.home,
      'policy',
      'publish',
      join(a.dir, 'policies.cedar'),
      '--catalog',
      join(a.dir, 'catalog.json'),
    );
    const publishedAt = Date.now();
    await nodeB.waitFor(
      new RegExp(`bundle: updated from=0 to=${published.version} hash=${published.hash}`),
    );
    console.log(
      `policy publish on home A → bundle in force on node B: ${String(Date.now() - publishedAt)} ms`,
    );

    await alice.close();
    await carol.close();
    expect(await nodeB.stop('SIGTERM')).toBe(0);
    expect(await authority.stop('SIGTERM')).toBe(0);
  }, 120_000);
});
