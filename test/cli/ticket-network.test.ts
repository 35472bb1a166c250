import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, killChildren, startMandate } from '../helpers/processes.js';
import { expectErrorStdout, okJson as ok, run, type Run } from '../helpers/cli.js';

// `mandate authority start` and `mandate ticket redeem` over TCP: home A runs the authority as a
// child process on 127.0.0.1; homes B and C redeem in this process, with no authority of their
// own.

afterEach(killChildren);

const newHome = (): string => mkdtempSync(join(tmpdir(), 'mandate-ticket-net-'));

/**
 * A failed run: one `error[CODE]: ` line (after the channel's warnings, if any: its local log),
 * the exit code of its kind; on stdout nothing, or the JSON error.
 */
function expectError(r: Run, code: string, exit: number): void {
  expect(r.stderr).toMatch(
    new RegExp(`^(?:\\S+ warn [^\\n]*\\n)*error\\[${code}\\]: \\S[^\\n]*\\n$`),
  );
  expect(r.code, r.stderr).toBe(exit);
  expectErrorStdout(r, code);
}

describe('ticket redeem over the network', () => {
  it('enrolls a home without the authority through `authority start`, once per ticket', async () => {
    const a = newHome();
    const authority = (await ok<{ identifier: string }>(a, 'authority', 'init')).identifier;
    const port = await freePort();
    const route = `/ip4/127.0.0.1/tcp/${String(port)}`;
    const { ticket } = await ok<{ ticket: string }>(
      a,
      'ticket',
      'create',
      '--attr',
      'tools=read_orders',
      '--attr',
      'refund<=50',
      '--route',
      route,
    );
    const node = startMandate(a, 'authority', 'start', '--listen', `127.0.0.1:${String(port)}`);
    await node.waitFor(/listening/);
    expect(node.stderr()).toContain(`route=${route} authority=${authority}`);

    const b = newHome();
    const bob = (await ok<{ identifier: string }>(b, 'identity', 'create', '--name', 'bob'))
      .identifier;
    const chain = join(b, 'bob.chain');
    const redeemed = await ok<{ member: string; authority: string; file: string }>(
      b,
      'ticket',
      'redeem',
      ticket,
      '--identity',
      'bob',
      '--out',
      chain,
    );
    expect(redeemed).toEqual({ member: bob, authority, file: chain });
    await node.waitFor(/enrollment: enrolled/);
    expect(node.stderr()).toContain(`enrollment: enrolled identifier=${bob}`);

    // B now holds bob's credential and trusts the authority for bob, as after an in-home redeem.
    const shown = await ok<{ subject: string; attributes: Record<string, string> }>(
      b,
      'credential',
      'show',
      chain,
    );
    expect(shown.subject).toBe(bob);
    expect(shown.attributes).toEqual({ tools: '=read_orders', refund: '<=50' });
    const verified = await ok<{ valid: boolean; actor: string; issuer: string }>(
      b,
      'credential',
      'verify',
      chain,
      '--presenter',
      'bob',
    );
    expect(verified).toMatchObject({ valid: true, actor: bob, issuer: authority });

    // …but only for bob: the ticket does not make A an authority for every verifier in B.
    // A's credential for another identity, `tools=*`, is refused there until B trusts A itself.
    await ok(a, 'identity', 'create', '--name', 'mallory');
    const malloryChain = join(b, 'mallory.chain');
    await ok(
      a,
      'credential',
      'issue',
      '--to',
      'mallory',
      '--attr',
      'tools=*',
      '--out',
      malloryChain,
    );
    const check = ['chain', 'check', malloryChain, '--action', 'delete_everything'];
    expectError(await run('--home', b, '--json', ...check), 'ERR_CREDENTIAL_UNTRUSTED_ISSUER', 4);
    expectError(
      await run('--home', b, '--json', 'credential', 'verify', chain),
      'ERR_CREDENTIAL_UNTRUSTED_ISSUER',
      4,
    );
    await ok(b, 'trust', 'add', authority);
    expect(await ok(b, ...check)).toMatchObject({ decision: 'allow' });

    // The ticket was for one use: a second redeem (another identity, another home) is refused,
    // and that home writes nothing — no credential file, no authority, no trust anchor.
    const c = newHome();
    await ok(c, 'identity', 'create', '--name', 'carol');
    const carolChain = join(c, 'carol.chain');
    const second = await run(
      '--home',
      c,
      '--json',
      'ticket',
      'redeem',
      ticket,
      '--identity',
      'carol',
      '--out',
      carolChain,
    );
    expectError(second, 'ERR_TICKET_INVALID', 4);
    expect(existsSync(carolChain)).toBe(false);
    expect((await ok<{ total: number }>(c, 'identity', 'list')).total).toBe(1);
    const again = await run('--home', b, '--json', 'ticket', 'redeem', ticket, '--identity', 'bob');
    expectError(again, 'ERR_TICKET_INVALID', 4);
    await node.waitFor(/enrollment: refused[\s\S]*enrollment: refused/);
    expect(node.stderr()).toMatch(
      /enrollment: refused identifier=I[0-9a-f]{64} reason=ERR_TICKET_INVALID/,
    );
    // The one-time code never reaches a log.
    expect(node.stderr()).not.toContain(ticket.slice('mandate1.'.length, 60));

    // The network path creates no identity: it must exist.
    const missing = await run('--home', c, 'ticket', 'redeem', ticket, '--identity', 'nobody');
    expectError(missing, 'ERR_IDENTITY_NOT_FOUND', 6);

    expect(await node.stop('SIGTERM')).toBe(0);
    expect(node.stderr()).toMatch(/stopping signal=SIGTERM/);
  }, 60_000);

  it('refuses another identity listening at the ticket’s route, which never sees the code', async () => {
    const a = newHome();
    await ok(a, 'authority', 'init');
    const e = newHome();
    await ok(e, 'authority', 'init'); // another authority: same name, another identity
    const port = await freePort();
    const { ticket } = await ok<{ ticket: string }>(
      a,
      'ticket',
      'create',
      '--route',
      `/ip4/127.0.0.1/tcp/${String(port)}`,
    );
    const impostor = startMandate(e, 'authority', 'start', '--listen', `127.0.0.1:${String(port)}`);
    await impostor.waitFor(/listening/);

    const b = newHome();
    await ok(b, 'identity', 'create', '--name', 'bob');
    const chain = join(b, 'bob.chain');
    const r = await run(
      '--home',
      b,
      'ticket',
      'redeem',
      ticket,
      '--identity',
      'bob',
      '--out',
      chain,
    );
    expectError(r, 'ERR_CHANNEL_PEER_REJECTED', 4);
    // The local log says why: the trust policy (only the ticket's authority) refused the peer.
    expect(r.stderr).toMatch(/reason=ERR_CHANNEL_UNTRUSTED/);
    expect(r.stderr).toContain("is not the ticket's authority");
    expect(existsSync(chain)).toBe(false);
    expect((await ok<{ total: number }>(b, 'identity', 'list')).total).toBe(1);
    expect(await impostor.stop('SIGINT')).toBe(0);
    expect(impostor.stderr()).not.toMatch(/enrollment:/);

    // The ticket is still good at its authority.
    const real = startMandate(a, 'authority', 'start', '--listen', `127.0.0.1:${String(port)}`);
    await real.waitFor(/listening/);
    await ok(b, 'ticket', 'redeem', ticket, '--identity', 'bob', '--out', chain);
    expect(existsSync(chain)).toBe(true);
    expect(await real.stop('SIGTERM')).toBe(0);
  }, 60_000);

  it('checks the route at ticket creation and reports a ticket without one', async () => {
    const a = newHome();
    await ok(a, 'authority', 'init');
    expectError(
      await run('--home', a, 'ticket', 'create', '--route', '/ip4/127.0.0.1'),
      'ERR_ROUTE_SYNTAX',
      3,
    );
    expectError(
      await run('--home', a, 'ticket', 'create', '--route', '/service/api'),
      'ERR_ARGUMENT_INVALID',
      3,
    );
    const { ticket } = await ok<{ ticket: string }>(a, 'ticket', 'create');
    const b = newHome();
    await ok(b, 'identity', 'create', '--name', 'bob');
    expectError(
      await run('--home', b, 'ticket', 'redeem', ticket, '--identity', 'bob'),
      'ERR_TICKET_AUTHORITY_UNREACHABLE',
      10,
    );
    expectError(
      await run('--home', b, 'ticket', 'redeem', ticket, '--identity', 'bob', '--name', 'carol'),
      'ERR_ARGUMENT_INVALID',
      3,
    );
  });
});
