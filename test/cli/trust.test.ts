import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { failsJson as fails, okJson as ok, run } from '../helpers/cli.js';

// Trust anchors have a scope (issue 8, vulnerability 6): redeeming a ticket trusts its authority
// for the enrolled identity only; `mandate trust add|list|remove` is the explicit, listed,
// removable act that trusts an authority for every verifier of the home.

const newHome = (): string => mkdtempSync(join(tmpdir(), 'mandate-trust-'));

interface Anchor {
  identifier: string;
  scope: string;
  addedAt: number;
}

/**
 * One home with its own authority (`authority init`) and a second authority `b` whose ticket
 * `member` redeems in this home; `b` also issues `tools=*` to `mallory`, another identity.
 */
async function enrolledHome() {
  const home = newHome();
  const files = newHome();
  const own = (await ok<{ identifier: string }>(home, 'authority', 'init')).identifier;
  const b = (await ok<{ identifier: string }>(home, 'identity', 'create', '--name', 'b'))
    .identifier;
  const mallory = (
    await ok<{ identifier: string }>(home, 'identity', 'create', '--name', 'mallory')
  ).identifier;
  await ok(home, 'identity', 'create', '--name', 'carol');
  const { ticket } = await ok<{ ticket: string }>(
    home,
    'ticket',
    'create',
    '--authority',
    'b',
    '--attr',
    'tools=read_orders',
  );
  const memberChain = join(files, 'member.chain');
  const { member } = await ok<{ member: string }>(
    home,
    'ticket',
    'redeem',
    ticket,
    '--name',
    'member',
    '--out',
    memberChain,
  );
  const malloryChain = join(files, 'mallory.chain');
  await ok(
    home,
    'credential',
    'issue',
    '--authority',
    'b',
    '--to',
    'mallory',
    '--attr',
    'tools=*',
    '--out',
    malloryChain,
  );
  return { home, files, own, b, member, mallory, memberChain, malloryChain };
}

describe('trust anchors have a scope', () => {
  it('trusts a redeemed ticket’s authority for the enrolled identity only', async () => {
    const { home, files, b, member, memberChain, malloryChain } = await enrolledHome();
    // b's credential for another identity, `tools=*`: not allowed, not valid, in this home.
    await fails(
      home,
      'ERR_CREDENTIAL_UNTRUSTED_ISSUER',
      4,
      'chain',
      'check',
      malloryChain,
      '--action',
      'delete_everything',
    );
    await fails(home, 'ERR_CREDENTIAL_UNTRUSTED_ISSUER', 4, 'chain', 'verify', malloryChain);
    await fails(home, 'ERR_CREDENTIAL_UNTRUSTED_ISSUER', 4, 'credential', 'verify', malloryChain);
    // … and not for mallory presenting it either: the scope names `member`.
    await fails(
      home,
      'ERR_CREDENTIAL_UNTRUSTED_ISSUER',
      4,
      'chain',
      'verify',
      malloryChain,
      '--presenter',
      'mallory',
    );
    // The member's own credential: verified when the member presents it, and it can delegate.
    expect(await ok(home, 'chain', 'verify', memberChain, '--presenter', 'member')).toMatchObject({
      valid: true,
      actor: member,
      issuer: b,
    });
    await fails(home, 'ERR_CREDENTIAL_UNTRUSTED_ISSUER', 4, 'chain', 'verify', memberChain);
    const carolChain = join(files, 'carol.chain');
    await ok(
      home,
      'delegate',
      '--chain',
      memberChain,
      '--from',
      'member',
      '--to',
      'carol',
      '--out',
      carolChain,
    );
    // Carol is no enrolled identity here: the chain delegated to her is not trusted for her.
    await fails(
      home,
      'ERR_CREDENTIAL_UNTRUSTED_ISSUER',
      4,
      'chain',
      'check',
      carolChain,
      '--action',
      'read_orders',
    );
  });

  it('adds, lists and removes anchors explicitly', async () => {
    const { home, own, b, member, malloryChain } = await enrolledHome();
    const listed = (await ok<{ anchors: Anchor[] }>(home, 'trust', 'list')).anchors;
    expect(listed.map(({ identifier, scope }) => ({ identifier, scope }))).toEqual([
      { identifier: own, scope: 'all' },
      { identifier: b, scope: `identity:${member}` },
    ]);
    for (const anchor of listed) expect(anchor.addedAt).toBeGreaterThan(1_700_000_000);

    // `trust add` makes b an anchor for every verifier of the home.
    expect(await ok(home, 'trust', 'add', b)).toMatchObject({
      identifier: b,
      scope: 'all',
      added: true,
    });
    expect(await ok(home, 'trust', 'add', b)).toMatchObject({ added: false });
    expect(
      await ok(home, 'chain', 'check', malloryChain, '--action', 'delete_everything'),
    ).toMatchObject({ decision: 'allow' });
    expect(
      (await ok<{ anchors: Anchor[] }>(home, 'trust', 'list')).anchors.map((a) => a.scope),
    ).toEqual(['all', `identity:${member}`, 'all']);
    const human = await run('--home', home, 'trust', 'list');
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(new RegExp(`^${b}  \\S+Z  all$`, 'm'));
    expect(human.stdout).toMatch(new RegExp(`^${b}  \\S+Z  identity:${member}$`, 'm'));

    // Removing the home-wide anchor leaves the member's.
    expect(await ok(home, 'trust', 'remove', b, '--scope', 'all')).toMatchObject({ removed: 1 });
    await fails(
      home,
      'ERR_CREDENTIAL_UNTRUSTED_ISSUER',
      4,
      'chain',
      'check',
      malloryChain,
      '--action',
      'delete_everything',
    );
    await fails(home, 'ERR_TRUST_ANCHOR_NOT_FOUND', 6, 'trust', 'remove', b, '--scope', 'all');
    // A scope may name the identity by name; removing without --scope removes every scope.
    await ok(home, 'trust', 'add', 'b');
    expect(await ok(home, 'trust', 'remove', 'b', '--scope', 'identity:member')).toMatchObject({
      removed: 1,
    });
    expect(await ok(home, 'trust', 'remove', b)).toMatchObject({ removed: 1 });
    await fails(home, 'ERR_TRUST_ANCHOR_NOT_FOUND', 6, 'trust', 'remove', b);
    expect(
      (await ok<{ anchors: Anchor[] }>(home, 'trust', 'list')).anchors.map((a) => a.identifier),
    ).toEqual([own]);
  });

  it('adds an authority from its change history, and refuses what it cannot verify', async () => {
    const home = newHome();
    const other = newHome();
    const { identifier, changeHistory } = await ok<{ identifier: string; changeHistory: string }>(
      other,
      'authority',
      'init',
    );
    await ok(other, 'identity', 'create', '--name', 'alice');
    const alice = join(other, 'alice.chain');
    await ok(
      other,
      'credential',
      'issue',
      '--to',
      'alice',
      '--attr',
      'tools=read_orders',
      '--out',
      alice,
    );
    // Unknown here: an identifier alone is not enough.
    await fails(home, 'ERR_IDENTITY_NOT_FOUND', 6, 'trust', 'add', identifier);
    await fails(home, 'ERR_CREDENTIAL_UNTRUSTED_ISSUER', 4, 'chain', 'verify', alice);
    const file = join(home, 'authority.history');
    writeFileSync(file, `${changeHistory}\n`);
    expect(await ok(home, 'trust', 'add', file)).toEqual({
      identifier,
      scope: 'all',
      added: true,
    });
    expect(await ok(home, 'chain', 'verify', alice)).toMatchObject({
      valid: true,
      issuer: identifier,
    });
    // A corrupted history is refused with the identity layer's code, and adds nothing.
    const broken = `${changeHistory.slice(0, -4)}${changeHistory.endsWith('00') ? 'ff' : '00'}00`;
    const r = await run('--home', home, 'trust', 'add', broken);
    expect(r.stderr).toMatch(/^error\[ERR_(?:IDENTITY|CBOR)_[A-Z_]+\]: /);
    expect(
      (await ok<{ anchors: Anchor[] }>(home, 'trust', 'list')).anchors.map((a) => a.identifier),
    ).toEqual([identifier]);
    await fails(
      home,
      'ERR_ARGUMENT_INVALID',
      3,
      'trust',
      'remove',
      identifier,
      '--scope',
      'everything',
    );
    await fails(
      home,
      'ERR_IDENTITY_NOT_FOUND',
      6,
      'trust',
      'remove',
      identifier,
      '--scope',
      'identity:nobody',
    );
  });
});
