import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import {
  chainFromCredential,
  decodeChain,
  decodeCredential,
  issueCredential,
  verifyChain,
  type DecodedChain,
} from '../../src/credentials/index.js';
import {
  encodeChain,
  encodeLink,
  encodeLinkData,
  LINK_NONCE_BYTES,
} from '../../src/credentials/chain-codec.js';
import { randomBytes, sha256 } from '../../src/crypto/index.js';
import type { DecodedSignature } from '../../src/identity/codec.js';
import { SigningKeyType } from '../../src/vault/index.js';
import { fromHex, toHex } from '../../src/encoding/index.js';
import { encodeSignature } from '../../src/identity/codec.js';
import { Purpose } from '../../src/identity/index.js';
import { openHome } from '../../src/cli/home.js';
import { expectErrorStdout, json, run, type Run } from '../helpers/cli.js';
import { repoRoot } from '../helpers/vectors.js';

// `mandate authority|ticket|credential|revoke|delegate|chain` end to end, in process: every
// command of issue 3 through main(argv), its --json result, its exit code, and for every
// failure the `error[CODE]: ` line, the exit code of the code's documented kind, and that
// nothing was written.

/** Pins the CLI's clock (unix seconds) until the end of the test. */
function pinNow(seconds: number): void {
  process.env.MANDATE_NOW_SECONDS = String(seconds);
}

afterEach(() => {
  delete process.env.MANDATE_NOW_SECONDS;
});

// --- docs/errors.md: the exit code every error code must give ----------------------------------

const errorsDoc = readFileSync(join(repoRoot, 'docs', 'errors.md'), 'utf8');
const exitOfKind = new Map<string, number>();
for (const m of errorsDoc.matchAll(/^\|\s*`?([a-z_()]+)`?\s*\|\s*(\d+)\s*\|/gm))
  exitOfKind.set(m[1]!, Number(m[2]));
const kindOfCode = new Map<string, string>();
for (const m of errorsDoc.matchAll(/^\|\s*`(ERR_[A-Z0-9_]+)`\s*\|\s*([a-z_()]+)\s*\|/gm))
  kindOfCode.set(m[1]!, m[2]!);

function documentedExit(code: string): number {
  const kind = code === 'ERR_USAGE' ? '(usage)' : kindOfCode.get(code);
  const exit = kind === undefined ? undefined : exitOfKind.get(kind);
  if (exit === undefined) throw new Error(`${code} has no documented kind or exit code`);
  return exit;
}

/** A failed run: one `error[CODE]: ` line on stderr, no stack, exit by kind; stdout: nothing or the JSON error. */
function expectError(r: Run, code: string, what = code): void {
  expect(r.stderr, what).toMatch(new RegExp(`^error\\[${code}\\]: \\S[^\\n]*\\n$`));
  expect(r.code, `${what}: ${r.stderr}`).toBe(documentedExit(code));
  expectErrorStdout(r, code, what);
  expect(r.stderr, what).not.toContain('    at ');
}

/** The code of a failed run (for cases where any ERR_ code is acceptable). */
function errorCodeOf(r: Run): string {
  return /^error\[(ERR_[A-Z0-9_]+)\]: /.exec(r.stderr)?.[1] ?? `no error code in ${r.stderr}`;
}

// --- result shapes (as the CLI prints them with --json) ------------------------------------------

interface ChainStep {
  issuer: string;
  subject: string;
  purpose: string;
  constraints: string[];
}
interface ChainSummary {
  valid?: boolean;
  actor: string;
  issuer: string;
  expiresAt: number;
  remainingDepth: number;
  revocationIds: string[];
  chain: ChainStep[];
  file?: string;
}
interface Decision {
  decision: 'allow' | 'deny';
  actor: string;
  chain: ChainStep[];
  failed?: { link: number; constraint: string | null; reason: string };
}

// --- a home and its commands -----------------------------------------------------------------------

const tempDir = (): string => mkdtempSync(join(tmpdir(), 'mandate-cli-cred-'));

class Home {
  readonly dir = tempDir();

  /** `mandate --home DIR ARGV…` (human output). */
  run(...argv: string[]): Promise<Run> {
    return run('--home', this.dir, ...argv);
  }

  /** `mandate --home DIR --json ARGV…`, which must succeed. */
  async ok<T = Record<string, unknown>>(...argv: string[]): Promise<T> {
    const r = await run('--home', this.dir, '--json', ...argv);
    expect(r.stderr, argv.join(' ')).toBe('');
    expect(r.code, argv.join(' ')).toBe(0);
    return json(r) as T;
  }

  /** `mandate --home DIR --json ARGV…`, which must fail with `code`. */
  async fails(code: string, ...argv: string[]): Promise<Run> {
    const r = await run('--home', this.dir, '--json', ...argv);
    expectError(r, code, argv.join(' '));
    return r;
  }

  path(name: string): string {
    return join(this.dir, name);
  }

  async identity(name: string): Promise<string> {
    return (await this.ok<{ identifier: string }>('identity', 'create', '--name', name)).identifier;
  }

  async authorityInit(): Promise<string> {
    return (await this.ok<{ identifier: string }>('authority', 'init')).identifier;
  }
}

/**
 * The shop: an authority grants alice `tools=read_orders,issue_refund`, `refund<=1000` and the
 * subtree `/orders/**`; alice delegates to bob `refund<=100` on order 4471 only; bob delegates
 * to carol `tools=read_orders`.
 */
async function shop() {
  const home = new Home();
  const authority = await home.authorityInit();
  const alice = await home.identity('alice');
  const bob = await home.identity('bob');
  const carol = await home.identity('carol');
  const mallory = await home.identity('mallory');
  const root = home.path('alice.chain');
  const issued = await home.ok<{
    subject: string;
    issuer: string;
    expiresAt: number;
    revocationId: string;
    file: string;
  }>(
    'credential',
    'issue',
    '--to',
    'alice',
    '--attr',
    'tools=read_orders,issue_refund',
    '--attr',
    'refund<=1000',
    '--attr',
    'order=/orders/**',
    '--ttl',
    '2h',
    '--out',
    root,
  );
  const bobChain = home.path('bob.chain');
  await home.ok(
    'delegate',
    '--chain',
    root,
    '--from',
    'alice',
    '--to',
    'bob',
    '--constraint',
    'refund<=100',
    '--constraint',
    'order=/orders/4471/**',
    '--purpose',
    'resolve complaint #4471',
    '--out',
    bobChain,
  );
  const carolChain = home.path('carol.chain');
  await home.ok(
    'delegate',
    '--chain',
    bobChain,
    '--from',
    'bob',
    '--to',
    'carol',
    '--constraint',
    'tools=read_orders',
    '--purpose',
    'look up order 4471',
    '--out',
    carolChain,
  );
  return { home, authority, alice, bob, carol, mallory, root, bobChain, carolChain, issued };
}

const HEX_FILE_RE = /^[0-9a-f]+\n$/;

// ---------------------------------------------------------------------------------------------------

describe('mandate authority init', () => {
  it('creates the authority identity once, trusts it, and reuses it', async () => {
    const home = new Home();
    const first = await home.ok<{ identifier: string; name: string; changeHistory: string }>(
      'authority',
      'init',
    );
    expect(first.identifier).toMatch(/^I[0-9a-f]{64}$/);
    expect(first.name).toBe('authority');
    expect(first.changeHistory).toMatch(/^[0-9a-f]+$/);
    const again = await home.ok<{ identifier: string }>('authority', 'init');
    expect(again.identifier).toBe(first.identifier);
    const human = await home.run('authority', 'init');
    expect(human.code).toBe(0);
    expect(human.stdout).toContain(first.identifier);
    const listed = await home.ok<{ total: number }>('identity', 'list');
    expect(listed.total).toBe(1);
  });
});

describe('issue, delegate twice, verify and check (the happy path)', () => {
  it('verifies the chain for its presenter and explains allow and deny', async () => {
    const { home, authority, alice, bob, carol, root, bobChain, carolChain, issued } = await shop();

    // credential issue
    expect(issued).toMatchObject({ subject: alice, issuer: authority, file: root });
    expect(issued.revocationId).toMatch(/^[0-9a-f]{32}$/);
    expect(readFileSync(root, 'utf8')).toMatch(HEX_FILE_RE);
    const rootView = await home.ok<ChainSummary>(
      'credential',
      'verify',
      root,
      '--presenter',
      alice,
    );
    expect(rootView).toMatchObject({
      valid: true,
      actor: alice,
      issuer: authority,
      expiresAt: issued.expiresAt,
      remainingDepth: 3,
      revocationIds: [issued.revocationId],
    });
    expect(rootView.chain).toEqual([
      {
        issuer: authority,
        subject: alice,
        purpose: 'root credential',
        constraints: expect.arrayContaining([
          'tools=issue_refund,read_orders',
          'refund<=1000',
          'order=/orders/**',
        ]) as unknown,
      },
    ]);

    // chain verify --presenter, by name and by identifier
    const verified = await home.ok<ChainSummary>(
      'chain',
      'verify',
      carolChain,
      '--presenter',
      carol,
    );
    const byName = await home.ok<ChainSummary>(
      'chain',
      'verify',
      carolChain,
      '--presenter',
      'carol',
    );
    expect(byName).toEqual(verified);
    expect(verified).toMatchObject({
      valid: true,
      actor: carol,
      issuer: authority,
      remainingDepth: 1,
      expiresAt: issued.expiresAt,
    });
    expect(verified.revocationIds).toHaveLength(3);
    expect(verified.revocationIds[0]).toBe(issued.revocationId);
    expect(new Set(verified.revocationIds).size).toBe(3);
    expect(verified.chain.map((s) => [s.issuer, s.subject, s.purpose])).toEqual([
      [authority, alice, 'root credential'],
      [alice, bob, 'resolve complaint #4471'],
      [bob, carol, 'look up order 4471'],
    ]);
    expect(verified.chain[1]!.constraints.slice().sort()).toEqual([
      'order=/orders/4471/**',
      'refund<=100',
    ]);
    expect(verified.chain[2]!.constraints).toEqual(['tools=read_orders']);
    const human = await home.run('chain', 'verify', carolChain);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^valid\n/);
    expect(human.stdout).toContain('"look up order 4471"');

    // the wrong presenter
    await home.fails(
      'ERR_CHAIN_PRESENTER_MISMATCH',
      'chain',
      'verify',
      carolChain,
      '--presenter',
      bob,
    );
    await home.fails(
      'ERR_CHAIN_PRESENTER_MISMATCH',
      'chain',
      'check',
      carolChain,
      '--action',
      'read_orders',
      '--arg',
      'order=/orders/4471',
      '--presenter',
      'alice',
    );

    // chain check: allow
    const allow = await home.ok<Decision>(
      'chain',
      'check',
      carolChain,
      '--action',
      'read_orders',
      '--arg',
      'order=/orders/4471/items/2',
      // every constraint applies to every action: a missing argument is denied (fail closed)
      '--arg',
      'refund=0',
      '--presenter',
      'carol',
    );
    expect(allow).toEqual({ decision: 'allow', actor: carol, chain: verified.chain });

    // chain check: deny at carol's own link (the tool), exit 5 (forbidden), JSON on stdout
    const denyTool = await run(
      '--home',
      home.dir,
      '--json',
      'chain',
      'check',
      carolChain,
      '--action',
      'issue_refund',
      '--arg',
      'refund=50',
      '--arg',
      'order=/orders/4471',
      '--presenter',
      'carol',
    );
    expect(denyTool.code).toBe(5);
    expect(denyTool.stderr).toBe('');
    const denied = json(denyTool) as unknown as Decision;
    expect(denied).toMatchObject({ decision: 'deny', actor: carol, chain: verified.chain });
    expect(denied.failed).toMatchObject({ link: 2, constraint: 'tools' });
    expect(denied.failed?.reason).toContain('issue_refund');

    // bob may refund up to 100 on order 4471, and nothing else
    const check = async (...args: string[]): Promise<Decision> => {
      const r = await run(
        '--home',
        home.dir,
        '--json',
        'chain',
        'check',
        bobChain,
        '--action',
        'issue_refund',
        '--presenter',
        'bob',
        ...args.flatMap((a) => ['--arg', a]),
      );
      expect(r.stderr).toBe('');
      const decision = json(r) as unknown as Decision;
      expect(r.code).toBe(decision.decision === 'allow' ? 0 : 5);
      return decision;
    };
    expect((await check('refund=100', 'order=/orders/4471')).decision).toBe('allow');
    expect((await check('refund=500', 'order=/orders/4471')).failed).toMatchObject({
      link: 1,
      constraint: 'refund',
    });
    expect((await check('refund=5000', 'order=/orders/4471')).failed).toMatchObject({
      link: 0,
      constraint: 'refund',
    });
    expect((await check('refund=50', 'order=/orders/4472')).failed).toMatchObject({
      link: 1,
      constraint: 'order',
    });
    expect((await check('refund=50', 'order=/orders/4471/../4472')).decision).toBe('deny');
    // a missing argument is denied (fail closed)
    expect((await check('order=/orders/4471')).failed).toMatchObject({ constraint: 'refund' });
    expect((await check('refund=1e2', 'order=/orders/4471')).decision).toBe('deny');

    // human output: the decision and the per-link explanation
    const humanDeny = await home.run(
      'chain',
      'check',
      carolChain,
      '--presenter',
      'carol',
      '--action',
      'issue_refund',
      '--arg',
      'refund=50',
      '--arg',
      'order=/orders/4471',
    );
    expect(humanDeny.code).toBe(5);
    expect(humanDeny.stderr).toBe('');
    expect(humanDeny.stdout).toMatch(new RegExp(`^DENY: ${carol} issue_refund\\n`));
    expect(humanDeny.stdout).toContain(`link 1: ${alice} → ${bob} "resolve complaint #4471"`);
    expect(humanDeny.stdout).toContain('denied at link 2, constraint `tools`');
    const humanAllow = await home.run(
      'chain',
      'check',
      carolChain,
      '--presenter',
      'carol',
      '--action',
      'read_orders',
      '--arg',
      'order=/orders/4471',
      '--arg',
      'refund=0',
    );
    expect(humanAllow.code).toBe(0);
    expect(humanAllow.stdout).toMatch(new RegExp(`^ALLOW: ${carol} read_orders\\n`));
  });

  it('writes the chain as hex on stdout without --out, which chain verify accepts as an argument', async () => {
    const { home, bob, carol, carolChain } = await shop();
    const printed = await home.ok<ChainSummary & { chain: string }>(
      'delegate',
      '--chain',
      readFileSync(carolChain, 'utf8').trim(),
      '--from',
      'carol',
      '--to',
      bob,
      '--constraint',
      'order=/orders/4471/items/**',
    );
    expect(printed.chain).toMatch(/^[0-9a-f]+$/);
    const verified = await home.ok<ChainSummary>(
      'chain',
      'verify',
      printed.chain,
      '--presenter',
      'bob',
    );
    expect(verified.chain.map((s) => s.subject).at(-1)).toBe(bob);
    expect(verified.chain.at(-1)?.issuer).toBe(carol);
    expect(verified.remainingDepth).toBe(0);
    // depth 0: the chain allows no further link
    const out = home.path('too-deep.chain');
    await home.fails(
      'ERR_DELEGATION_DEPTH',
      'delegate',
      '--chain',
      printed.chain,
      '--from',
      'bob',
      '--to',
      'alice',
      '--out',
      out,
    );
    expect(existsSync(out)).toBe(false);
  });

  it('honours --depth and --ttl, and refuses a link that would outlive or out-depth its parent', async () => {
    const { home, root } = await shop();
    const shallow = home.path('shallow.chain');
    const link = await home.ok<ChainSummary>(
      'delegate',
      '--chain',
      root,
      '--from',
      'alice',
      '--to',
      'bob',
      '--depth',
      '0',
      '--ttl',
      '10m',
      '--out',
      shallow,
    );
    expect(link.remainingDepth).toBe(0);
    expect(link.expiresAt).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 600 + 5);
    const out = home.path('refused.chain');
    const attempts: [string, string[]][] = [
      ['ERR_DELEGATION_DEPTH', ['--chain', shallow, '--from', 'bob', '--to', 'carol']],
      ['ERR_DELEGATION_DEPTH', ['--chain', root, '--from', 'alice', '--to', 'bob', '--depth', '3']],
      [
        'ERR_DELEGATION_AMPLIFIES',
        ['--chain', root, '--from', 'alice', '--to', 'bob', '--ttl', '3h'],
      ],
      ['ERR_ARGUMENT_INVALID', ['--chain', root, '--from', 'alice', '--to', 'bob', '--ttl', '0']],
      ['ERR_ARGUMENT_INVALID', ['--chain', root, '--from', 'alice', '--to', 'bob', '--depth', 'x']],
      [
        'ERR_ARGUMENT_INVALID',
        ['--chain', root, '--from', 'alice', '--to', 'bob', '--depth', '1x'],
      ],
      [
        'ERR_ARGUMENT_INVALID',
        ['--chain', root, '--from', 'alice', '--to', 'bob', '--depth', '-1'],
      ],
    ];
    for (const [code, argv] of attempts) {
      await home.fails(code, 'delegate', ...argv, '--out', out);
      expect(existsSync(out), argv.join(' ')).toBe(false);
    }
  });
});

describe('mandate ticket create | redeem', () => {
  it('enrolls a new identity whose credential chain check then allows and denies', async () => {
    const home = new Home();
    const authority = await home.authorityInit();
    const created = await home.ok<{ ticket: string }>(
      'ticket',
      'create',
      '--attr',
      'tools=read_orders',
      '--attr',
      'refund<=50',
      '--ttl',
      '5m',
      '--uses',
      '1',
    );
    expect(created.ticket).toMatch(/^mandate1\.[A-Za-z0-9_-]+$/);
    const chain = home.path('dave.chain');
    const redeemed = await home.ok<{ member: string; authority: string; file: string }>(
      'ticket',
      'redeem',
      created.ticket,
      '--name',
      'dave',
      '--out',
      chain,
    );
    expect(redeemed.authority).toBe(authority);
    expect(redeemed.file).toBe(chain);
    // --name created the identity
    const dave = await home.ok<{ identifier: string }>('identity', 'show', 'dave');
    expect(dave.identifier).toBe(redeemed.member);
    expect(readFileSync(chain, 'utf8')).toMatch(HEX_FILE_RE);

    const shown = await home.ok<{
      subject: string;
      attributes: Record<string, string>;
      links: number;
    }>('credential', 'show', chain);
    expect(shown).toMatchObject({
      subject: dave.identifier,
      attributes: { tools: '=read_orders', refund: '<=50' },
      links: 0,
    });
    await home.ok('chain', 'verify', chain, '--presenter', 'dave');
    const allow = await home.ok<Decision>(
      'chain',
      'check',
      chain,
      '--presenter',
      'dave',
      '--action',
      'read_orders',
      '--arg',
      'refund=0',
    );
    expect(allow).toMatchObject({ decision: 'allow', actor: dave.identifier });
    const deny = await home.run(
      '--json',
      'chain',
      'check',
      chain,
      '--action',
      'issue_refund',
      '--arg',
      'refund=10',
    );
    expect(deny.code).toBe(5);
    expect((json(deny) as unknown as Decision).failed).toMatchObject({
      link: 0,
      constraint: 'tools',
    });

    // the human form prints only the ticket
    const human = await home.run('ticket', 'create', '--attr', 'tools=read_orders');
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^mandate1\.[A-Za-z0-9_-]+\n$/);
  });

  it('refuses a 1-use ticket the second time, and a ticket past its TTL', async () => {
    const home = new Home();
    await home.authorityInit();
    const { ticket } = await home.ok<{ ticket: string }>(
      'ticket',
      'create',
      '--attr',
      'tools=read_orders',
    );
    await home.ok('ticket', 'redeem', ticket, '--name', 'first');
    const out = home.path('second.chain');
    await home.fails(
      'ERR_TICKET_INVALID',
      'ticket',
      'redeem',
      ticket,
      '--name',
      'second',
      '--out',
      out,
    );
    expect(existsSync(out)).toBe(false);
    // A failed redemption leaves nothing behind: not even the identity it would have created.
    await home.fails('ERR_IDENTITY_NOT_FOUND', 'identity', 'show', 'second');
    await home.fails('ERR_TICKET_INVALID', 'ticket', 'redeem', ticket, '--name', 'first');

    // --uses 2: two redemptions, not three
    const twice = (await home.ok<{ ticket: string }>('ticket', 'create', '--uses', '2')).ticket;
    await home.ok('ticket', 'redeem', twice, '--name', 'u1');
    await home.ok('ticket', 'redeem', twice, '--name', 'u2');
    await home.fails('ERR_TICKET_INVALID', 'ticket', 'redeem', twice, '--name', 'u3');

    // expiry, on the pinned clock
    const now = Math.floor(Date.now() / 1000);
    pinNow(now);
    const short = (await home.ok<{ ticket: string }>('ticket', 'create', '--ttl', '60s')).ticket;
    pinNow(now + 61);
    await home.fails('ERR_TICKET_INVALID', 'ticket', 'redeem', short, '--name', 'late');
    await home.fails('ERR_IDENTITY_NOT_FOUND', 'identity', 'show', 'late');
    expect((await home.ok<{ total: number }>('identity', 'list')).total).toBe(4);
  });

  it('refuses malformed tickets, tickets of an authority not in this home, and bad options', async () => {
    const home = new Home();
    await home.authorityInit();
    const other = new Home();
    await other.authorityInit();
    const foreign = (await other.ok<{ ticket: string }>('ticket', 'create')).ticket;
    await home.fails(
      'ERR_TICKET_AUTHORITY_UNREACHABLE',
      'ticket',
      'redeem',
      foreign,
      '--name',
      'x',
    );
    await home.fails('ERR_TICKET_MALFORMED', 'ticket', 'redeem', 'mandate1.AAAA');
    await home.fails('ERR_TICKET_MALFORMED', 'ticket', 'redeem', 'not a ticket');
    const tampered = `${foreign.slice(0, -2)}${foreign.endsWith('AA') ? 'AB' : 'AA'}`;
    expect(errorCodeOf(await home.run('ticket', 'redeem', tampered))).toMatch(/^ERR_TICKET_/);
    await home.fails('ERR_ARGUMENT_INVALID', 'ticket', 'create', '--uses', '0');
    await home.fails('ERR_ARGUMENT_INVALID', 'ticket', 'create', '--uses', '1001');
    await home.fails('ERR_ARGUMENT_INVALID', 'ticket', 'create', '--ttl', 'soon');
    await home.fails('ERR_ARGUMENT_INVALID', 'ticket', 'create', '--ttl', '8d');
    await home.fails('ERR_CONSTRAINT_SYNTAX', 'ticket', 'create', '--attr', 'refund<=lots');
    await home.fails('ERR_IDENTITY_NOT_FOUND', 'ticket', 'create', '--by', 'nobody');
    const bare = new Home();
    await bare.fails('ERR_IDENTITY_NOT_FOUND', 'ticket', 'create');
  });

  it('lets an enroller pass on at most what it holds, and never make enrollers', async () => {
    const home = new Home();
    await home.authorityInit();
    const { ticket } = await home.ok<{ ticket: string }>(
      'ticket',
      'create',
      '--enroller',
      '--attr',
      'tools=read_orders,issue_refund',
      '--attr',
      'refund<=1000',
    );
    await home.ok('ticket', 'redeem', ticket, '--name', 'hr');
    await home.identity('outsider');

    const narrower = await home.ok<{ ticket: string }>(
      'ticket',
      'create',
      '--by',
      'hr',
      '--attr',
      'tools=read_orders',
      '--attr',
      'refund<=100',
    );
    const chain = home.path('erin.chain');
    await home.ok('ticket', 'redeem', narrower.ticket, '--name', 'erin', '--out', chain);
    expect(
      (await home.ok<{ attributes: Record<string, string> }>('credential', 'show', chain))
        .attributes,
    ).toEqual({ tools: '=read_orders', refund: '<=100' });

    const wider = await home.fails(
      'ERR_TICKET_ATTRIBUTES_EXCEED',
      'ticket',
      'create',
      '--by',
      'hr',
      '--attr',
      'tools=read_orders',
      '--attr',
      'refund<=5000',
    );
    expect(wider.stderr).toContain('`refund`');
    const extraTool = await home.fails(
      'ERR_TICKET_ATTRIBUTES_EXCEED',
      'ticket',
      'create',
      '--by',
      'hr',
      '--attr',
      'tools=read_orders,delete_orders',
      '--attr',
      'refund<=10',
    );
    expect(extraTool.stderr).toContain('`tools`');
    // leaving a held constraint out would leave the member unrestricted in it
    const missing = await home.fails(
      'ERR_TICKET_ATTRIBUTES_EXCEED',
      'ticket',
      'create',
      '--by',
      'hr',
      '--attr',
      'tools=read_orders',
    );
    expect(missing.stderr).toContain('`refund`');
    await home.fails(
      'ERR_ENROLLER_FORBIDDEN',
      'ticket',
      'create',
      '--by',
      'hr',
      '--enroller',
      '--attr',
      'tools=read_orders',
      '--attr',
      'refund<=10',
    );
    // a failed issuance leaves the enroller as it was (the TTL is checked before anything is stored)
    await home.fails(
      'ERR_ARGUMENT_INVALID',
      'credential',
      'issue',
      '--to',
      'hr',
      '--attr',
      'tools=read_orders',
      '--ttl',
      '0',
    );
    await home.ok(
      'ticket',
      'create',
      '--by',
      'hr',
      '--attr',
      'tools=issue_refund',
      '--attr',
      'refund<=1000',
    );
    await home.fails('ERR_ENROLLER_FORBIDDEN', 'ticket', 'create', '--by', 'outsider');
    await home.fails('ERR_ENROLLER_FORBIDDEN', 'ticket', 'create', '--by', 'erin');
    // A successful issuance to the enroller changes its attributes, not its enroller status.
    await home.ok(
      'credential',
      'issue',
      '--to',
      'hr',
      '--attr',
      'tools=issue_refund,read_orders',
      '--attr',
      'refund<=1000',
    );
    await home.ok(
      'ticket',
      'create',
      '--by',
      'hr',
      '--attr',
      'tools=read_orders',
      '--attr',
      'refund<=5',
    );
  });
});

describe('mandate revoke', () => {
  it('voids a link and every chain through it, and leaves the parent chain valid', async () => {
    const { home, bob, bobChain, carolChain, root } = await shop();
    const ids = (await home.ok<ChainSummary>('chain', 'verify', carolChain)).revocationIds;
    expect(ids).toHaveLength(3);

    const revoked = await home.ok<{ revoked: string; sequence: number }>(
      'revoke',
      ids[2]!,
      '--reason',
      'carol is done',
    );
    expect(revoked.revoked).toBe(ids[2]);
    expect(revoked.sequence).toBeGreaterThan(0);
    await home.fails('ERR_REVOKED', 'chain', 'verify', carolChain);
    await home.fails('ERR_REVOKED', 'chain', 'check', carolChain, '--action', 'read_orders');
    expect((await home.ok<ChainSummary>('chain', 'verify', bobChain)).actor).toBe(bob);
    await home.ok('chain', 'verify', root);

    // revoking bob's link voids bob's chain and carol's, not alice's credential
    const human = await home.run('revoke', ids[1]!);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain(`revoked ${ids[1]!}`);
    await home.fails('ERR_REVOKED', 'chain', 'verify', bobChain);
    await home.fails('ERR_REVOKED', 'chain', 'verify', carolChain);
    await home.ok('credential', 'verify', root);
    // nor may a revoked chain be extended
    const out = home.path('from-revoked.chain');
    await home.fails(
      'ERR_REVOKED',
      'delegate',
      '--chain',
      bobChain,
      '--from',
      'bob',
      '--to',
      'mallory',
      '--out',
      out,
    );
    expect(existsSync(out)).toBe(false);

    // revoking the root credential voids everything
    await home.ok('revoke', ids[0]!);
    await home.fails('ERR_REVOKED', 'credential', 'verify', root);
  });

  it('revokes an identity: every chain through it fails, the others still verify', async () => {
    const { home, authority, bob, bobChain, carolChain, root } = await shop();
    const other = home.path('other.chain');
    await home.ok(
      'delegate',
      '--chain',
      root,
      '--from',
      'alice',
      '--to',
      'mallory',
      '--out',
      other,
    );
    await home.ok('revoke', bob);
    for (const chain of [bobChain, carolChain])
      await home.fails('ERR_REVOKED', 'chain', 'verify', chain);
    await home.ok('chain', 'verify', root);
    await home.ok('chain', 'verify', other);
    // the authority itself
    await home.ok('revoke', authority);
    for (const chain of [root, other]) await home.fails('ERR_REVOKED', 'chain', 'verify', chain);
  });

  it('a revoked P-256-signed credential or link stays revoked when its signature is malleated', async () => {
    // Issue 8: (r, s) → (r, n − s) needs no key. The CLI makes Ed25519 credential keys; these
    // identities get P-256 ones through the library, then live in the home like any other.
    const home = new Home();
    const lib = await openHome(home.dir);
    try {
      for (const name of ['authority', 'alice', 'bob'])
        await lib.identities.create({
          name,
          keyType: SigningKeyType.p256,
          credentialKeyType: SigningKeyType.p256,
        });
    } finally {
      lib.close();
    }
    await home.authorityInit();
    const root = home.path('alice.chain');
    await home.ok(
      'credential',
      'issue',
      '--to',
      'alice',
      '--attr',
      'tools=read_orders',
      '--out',
      root,
    );
    const bobChain = home.path('bob.chain');
    await home.ok('delegate', '--chain', root, '--from', 'alice', '--to', 'bob', '--out', bobChain);
    const ids = (await home.ok<ChainSummary>('chain', 'verify', bobChain)).revocationIds;

    /** Rewrites s → n − s in the signature `pick` chooses, in the hex chain file. */
    const malleate = (file: string, pick: (c: DecodedChain) => DecodedSignature): void => {
      const bytes = fromHex(readFileSync(file, 'utf8').trim());
      const { keyType, bytes: signature } = pick(decodeChain(bytes));
      expect(keyType).toBe(SigningKeyType.p256);
      const n = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551');
      const s = BigInt(`0x${toHex(signature.subarray(32))}`);
      const twin = fromHex(
        toHex(signature.subarray(0, 32)) + (n - s).toString(16).padStart(64, '0'),
      );
      const at = Buffer.from(bytes).indexOf(signature);
      bytes.set(twin, at);
      writeFileSync(file, `${toHex(bytes)}\n`);
    };

    await home.ok('revoke', ids[1]!);
    await home.fails('ERR_REVOKED', 'chain', 'check', bobChain, '--action', 'read_orders');
    malleate(bobChain, (c) => c.links[0]!.signature);
    await home.fails(
      'ERR_DELEGATION_SIGNATURE_INVALID',
      'chain',
      'check',
      bobChain,
      '--action',
      'read_orders',
    );

    await home.ok('revoke', ids[0]!);
    await home.fails('ERR_REVOKED', 'chain', 'check', root, '--action', 'read_orders');
    malleate(root, (c) => decodeCredential(c.root).signature);
    await home.fails(
      'ERR_CREDENTIAL_SIGNATURE_INVALID',
      'chain',
      'check',
      root,
      '--action',
      'read_orders',
    );
  });

  it('refuses what is neither a revocation id nor an identifier', async () => {
    const home = new Home();
    for (const id of ['nope', 'ABCDEF0123456789ABCDEF0123456789', '0123', `I${'0'.repeat(63)}`])
      await home.fails('ERR_ARGUMENT_INVALID', 'revoke', id);
    await home.fails('ERR_USAGE', 'revoke');
  });
});

describe('mandate delegate refusals (nothing is written)', () => {
  it('refuses a delegator that is not the chain’s last subject', async () => {
    const { home, bobChain, carolChain } = await shop();
    for (const [chain, from] of [
      [bobChain, 'alice'],
      [bobChain, 'mallory'],
      [carolChain, 'bob'],
    ] as const) {
      const out = home.path('hijack.chain');
      await home.fails(
        'ERR_DELEGATION_PRINCIPAL_MISMATCH',
        'delegate',
        '--chain',
        chain,
        '--from',
        from,
        '--to',
        'mallory',
        '--out',
        out,
      );
      expect(existsSync(out)).toBe(false);
    }
  });

  it('refuses a widening link and names the constraint', async () => {
    const { home, bobChain, root } = await shop();
    const out = home.path('wider.chain');
    const cases: [string, string, string][] = [
      [bobChain, 'refund<=5000', 'refund'],
      [bobChain, 'refund<=101', 'refund'],
      [bobChain, 'order=/orders/**', 'order'],
      [bobChain, 'order=/orders/4472', 'order'],
      [bobChain, 'tools=read_orders,delete_orders', 'tools'],
      [root, 'tools=*', 'tools'],
      [root, 'refund>=0', 'refund'],
    ];
    for (const [chain, constraint, name] of cases) {
      const r = await home.fails(
        'ERR_DELEGATION_AMPLIFIES',
        'delegate',
        '--chain',
        chain,
        '--from',
        chain === root ? 'alice' : 'bob',
        '--to',
        'carol',
        '--constraint',
        constraint,
        '--out',
        out,
      );
      expect(r.stderr, constraint).toContain(`\`${name}\``);
      expect(existsSync(out), constraint).toBe(false);
    }
  });

  it('refuses bad constraint syntax (exit 3) on every command that takes constraints', async () => {
    const { home, root } = await shop();
    const bad = [
      'refund<=lots',
      'refund<=01',
      'refund<=1.5',
      'Refund<=10',
      'refund',
      'refund=',
      'tools=a,,b',
      'order=/orders/../admin',
      'order=/orders/',
      'order=/orders/**/x',
      'window=@20..10',
    ];
    for (const constraint of bad) {
      const out = home.path('syntax.chain');
      await home.fails(
        'ERR_CONSTRAINT_SYNTAX',
        'delegate',
        '--chain',
        root,
        '--from',
        'alice',
        '--to',
        'bob',
        '--constraint',
        constraint,
        '--out',
        out,
      );
      await home.fails(
        'ERR_CONSTRAINT_SYNTAX',
        'credential',
        'issue',
        '--to',
        'bob',
        '--attr',
        constraint,
        '--out',
        out,
      );
      await home.fails('ERR_CONSTRAINT_SYNTAX', 'ticket', 'create', '--attr', constraint);
      expect(existsSync(out), constraint).toBe(false);
    }
    const out = home.path('dup.chain');
    await home.fails(
      'ERR_ARGUMENT_INVALID',
      'delegate',
      '--chain',
      root,
      '--from',
      'alice',
      '--to',
      'bob',
      '--constraint',
      'refund<=10',
      '--constraint',
      'refund<=20',
      '--out',
      out,
    );
    await home.fails(
      'ERR_DELEGATION_MALFORMED',
      'delegate',
      '--chain',
      root,
      '--from',
      'alice',
      '--to',
      'bob',
      '--constraint',
      'mandate.max-depth=9',
      '--out',
      out,
    );
    expect(existsSync(out)).toBe(false);
  });

  it('refuses unknown identities and chains it cannot read', async () => {
    const { home, root } = await shop();
    const out = home.path('unknown.chain');
    await home.fails(
      'ERR_IDENTITY_NOT_FOUND',
      'delegate',
      '--chain',
      root,
      '--from',
      'alice',
      '--to',
      'nobody',
      '--out',
      out,
    );
    await home.fails(
      'ERR_IDENTITY_NOT_FOUND',
      'delegate',
      '--chain',
      root,
      '--from',
      'nobody',
      '--to',
      'bob',
      '--out',
      out,
    );
    // A missing file says so (it used to be read as bad hex).
    await home.fails(
      'ERR_FILE_NOT_FOUND',
      'delegate',
      '--chain',
      home.path('missing.chain'),
      '--from',
      'alice',
      '--to',
      'bob',
      '--out',
      out,
    );
    await home.fails('ERR_USAGE', 'delegate', '--chain', root, '--from', 'alice');
    expect(existsSync(out)).toBe(false);
  });
});

describe('mandate credential issue | show | verify', () => {
  it('refuses unknown subjects, bad TTLs and reserved attribute names, and writes nothing', async () => {
    const home = new Home();
    await home.authorityInit();
    await home.identity('alice');
    const out = home.path('refused.chain');
    await home.fails(
      'ERR_IDENTITY_NOT_FOUND',
      'credential',
      'issue',
      '--to',
      'nobody',
      '--out',
      out,
    );
    await home.fails(
      'ERR_ARGUMENT_INVALID',
      'credential',
      'issue',
      '--to',
      'alice',
      '--ttl',
      '0',
      '--out',
      out,
    );
    // Beyond the authority's maximum (a day): refused, never silently cut to the maximum.
    for (const ttl of ['31d', '2d', '86401s']) {
      const r = await home.fails(
        'ERR_CREDENTIAL_TTL_TOO_LONG',
        'credential',
        'issue',
        '--to',
        'alice',
        '--ttl',
        ttl,
        '--out',
        out,
      );
      expect(r.stderr).toContain('86400');
    }
    await home.fails(
      'ERR_ARGUMENT_INVALID',
      'credential',
      'issue',
      '--to',
      'alice',
      '--attr',
      'a=1',
      '--attr',
      'a=2',
      '--out',
      out,
    );
    // a reserved name would give a credential that never verifies: refused before signing
    await home.fails(
      'ERR_ARGUMENT_INVALID',
      'credential',
      'issue',
      '--to',
      'alice',
      '--attr',
      'mandate.max-depth=1',
      '--out',
      out,
    );
    await home.fails('ERR_ARGUMENT_INVALID', 'ticket', 'create', '--attr', 'mandate.max-depth=1');
    await home.fails('ERR_USAGE', 'credential', 'issue', '--out', out);
    // an --out that cannot be written is the caller's mistake (exit 3), not an internal error
    const nowhere = home.path(join('no-such-dir', 'x.chain'));
    await home.fails(
      'ERR_ARGUMENT_INVALID',
      'credential',
      'issue',
      '--to',
      'alice',
      '--out',
      nowhere,
    );
    const root = home.path('root.chain');
    await home.ok('credential', 'issue', '--to', 'alice', '--out', root);
    await home.identity('bob');
    await home.fails(
      'ERR_ARGUMENT_INVALID',
      'delegate',
      '--chain',
      root,
      '--from',
      'alice',
      '--to',
      'bob',
      '--out',
      nowhere,
    );
    expect(existsSync(nowhere)).toBe(false);
    await home.fails(
      'ERR_IDENTITY_NOT_FOUND',
      'credential',
      'issue',
      '--to',
      'alice',
      '--authority',
      'nobody',
      '--out',
      out,
    );
    expect(existsSync(out)).toBe(false);
  });

  it('shows a chain file, hex on the command line, a bare credential and hex from stdin', async () => {
    const { home, alice, bobChain, root, issued } = await shop();
    const fromFile = await home.ok<{
      subject: string;
      attributes: Record<string, string>;
      createdAt: number;
      expiresAt: number;
      links: number;
      revocationId: string;
    }>('credential', 'show', bobChain);
    expect(fromFile).toEqual({
      subject: alice,
      attributes: { tools: '=issue_refund,read_orders', refund: '<=1000', order: '=/orders/**' },
      createdAt: fromFile.createdAt,
      expiresAt: issued.expiresAt,
      links: 1,
      revocationId: issued.revocationId,
    });
    expect(fromFile.expiresAt - fromFile.createdAt).toBe(7200);

    const hex = readFileSync(bobChain, 'utf8').trim();
    expect(await home.ok('credential', 'show', hex)).toEqual(fromFile);

    // a bare credential (not wrapped in a chain) whose subject this home knows
    const bare = toHex(decodeChain(fromHex(readFileSync(root, 'utf8').trim(), 'chain')).root);
    expect(await home.ok('credential', 'show', bare)).toEqual({ ...fromFile, links: 0 });
    expect((await home.ok<ChainSummary>('credential', 'verify', bare)).actor).toBe(alice);

    const human = await home.run('credential', 'show', bobChain);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain(alice);
    expect(human.stdout).toContain(issued.revocationId);

    // stdin, through the real binary
    const bin = join(repoRoot, 'src', 'cli', 'bin.ts');
    const viaStdin = spawnSync(
      process.execPath,
      ['--import', 'tsx', bin, '--home', home.dir, '--json', 'credential', 'show', '-'],
      { cwd: repoRoot, encoding: 'utf8', input: `${hex}\n` },
    );
    expect(viaStdin.stderr).toBe('');
    expect(viaStdin.status).toBe(0);
    expect(JSON.parse(viaStdin.stdout)).toEqual(fromFile);
  });

  it('fails with an error code, never a stack, on a corrupted chain file', async () => {
    const { home, carolChain } = await shop();
    const hex = readFileSync(carolChain, 'utf8').trim();
    const corrupt = home.path('corrupt.chain');
    const positions = new Set([0, 1, 2, 3, hex.length - 1]);
    for (let i = 4; i < hex.length; i += Math.ceil(hex.length / 48)) positions.add(i);
    const codes = new Set<string>();
    for (const at of positions) {
      const digit = (Number.parseInt(hex[at]!, 16) ^ 0x8).toString(16);
      writeFileSync(corrupt, `${hex.slice(0, at)}${digit}${hex.slice(at + 1)}\n`);
      const r = await home.run('chain', 'verify', corrupt);
      const code = errorCodeOf(r);
      expectError(r, code, `digit ${at}`);
      expect(code, `digit ${at}`).not.toBe('ERR_INTERNAL');
      codes.add(code);
    }
    // and the same for show (decoding only) and check
    // a dropped digit (odd length: read as raw bytes) and a truncated chain
    for (const text of [
      `${hex.slice(0, 10)}${hex.slice(11)}`,
      hex.slice(0, -2),
      hex.slice(0, 40),
    ]) {
      writeFileSync(corrupt, `${text}\n`);
      for (const argv of [
        ['credential', 'show', corrupt],
        ['chain', 'check', corrupt, '--action', 'read_orders'],
      ]) {
        const r = await home.run(...argv);
        const code = errorCodeOf(r);
        expectError(r, code, `${argv.join(' ')} (${text.length} digits)`);
        expect(code).toMatch(/^ERR_(?:CHAIN|CBOR|CREDENTIAL)_/);
      }
    }
    expect(codes.size).toBeGreaterThan(1);
  });

  it('refuses a chain from an authority this home does not trust', async () => {
    const { home: theirs, carolChain, root } = await shop();
    const ours = new Home();
    await ours.authorityInit();
    for (const chain of [root, carolChain]) {
      await ours.fails('ERR_CREDENTIAL_UNTRUSTED_ISSUER', 'chain', 'verify', chain);
      await ours.fails(
        'ERR_CREDENTIAL_UNTRUSTED_ISSUER',
        'chain',
        'check',
        chain,
        '--action',
        'read_orders',
      );
    }
    // a home with no authority at all trusts nothing
    const empty = new Home();
    await empty.fails('ERR_CREDENTIAL_UNTRUSTED_ISSUER', 'credential', 'verify', root);
    // showing does not verify
    expect((await ours.ok<{ links: number }>('credential', 'show', carolChain)).links).toBe(2);
    // theirs still trusts it
    await theirs.ok('chain', 'verify', carolChain);
  });
});

describe('expiry (MANDATE_NOW_SECONDS pins the clock)', () => {
  it('fails a link after its TTL and the credential after its own', async () => {
    const now = Math.floor(Date.now() / 1000);
    pinNow(now);
    const home = new Home();
    await home.authorityInit();
    await home.identity('alice');
    await home.identity('bob');
    const root = home.path('root.chain');
    const issued = await home.ok<{ expiresAt: number }>(
      'credential',
      'issue',
      '--to',
      'alice',
      '--attr',
      'tools=read_orders',
      '--ttl',
      '1h',
      '--out',
      root,
    );
    expect(issued.expiresAt).toBe(now + 3600);
    const link = home.path('link.chain');
    const delegated = await home.ok<ChainSummary>(
      'delegate',
      '--chain',
      root,
      '--from',
      'alice',
      '--to',
      'bob',
      '--ttl',
      '10m',
      '--out',
      link,
    );
    expect(delegated.expiresAt).toBe(now + 600);

    pinNow(now + 599);
    await home.ok('chain', 'verify', link);
    expect(
      (
        await home.ok<Decision>(
          'chain',
          'check',
          link,
          '--action',
          'read_orders',
          '--presenter',
          'bob',
        )
      ).decision,
    ).toBe('allow');

    pinNow(now + 600);
    await home.fails('ERR_DELEGATION_EXPIRED', 'chain', 'verify', link);
    await home.fails('ERR_DELEGATION_EXPIRED', 'chain', 'check', link, '--action', 'read_orders');
    await home.ok('chain', 'verify', root);

    pinNow(now + 3600);
    await home.fails('ERR_CREDENTIAL_EXPIRED', 'chain', 'verify', root);
    await home.fails('ERR_CREDENTIAL_EXPIRED', 'credential', 'verify', root);
    await home.fails('ERR_CREDENTIAL_EXPIRED', 'chain', 'verify', link);
    const out = home.path('late.chain');
    await home.fails(
      'ERR_CREDENTIAL_EXPIRED',
      'delegate',
      '--chain',
      root,
      '--from',
      'alice',
      '--to',
      'bob',
      '--out',
      out,
    );
    expect(existsSync(out)).toBe(false);
    // showing still works: it does not verify
    expect((await home.ok<{ expiresAt: number }>('credential', 'show', root)).expiresAt).toBe(
      now + 3600,
    );
  });

  it('says so when the authority key attestation ends before the requested lifetime', async () => {
    const now = Math.floor(Date.now() / 1000);
    pinNow(now);
    const home = new Home();
    await home.authorityInit();
    await home.identity('alice');
    // An hour before the authority's credential key attestation (a year) runs out.
    pinNow(now + 365 * 86_400 - 3600);
    const r = await home.run('--json', 'credential', 'issue', '--to', 'alice', '--ttl', '1d');
    expect(r.code).toBe(0);
    const issued = json(r) as { expiresAt: number };
    expect(issued.expiresAt).toBe(now + 365 * 86_400);
    expect(r.stderr).toMatch(/^note: [^\n]*attestation[^\n]*\n$/);
  });

  it('refuses a malformed MANDATE_NOW_SECONDS', async () => {
    process.env.MANDATE_NOW_SECONDS = 'yesterday';
    const home = new Home();
    await home.fails('ERR_ARGUMENT_INVALID', 'chain', 'verify', '00');
  });
});

describe('mandate chain check without --presenter (a bearer check)', () => {
  it('says so in its help, and warns on stderr only, never in the --json result', async () => {
    const help = await run('chain', 'check', '--help');
    expect(help.stdout).toMatch(/bearer token/);
    const { home, carolChain } = await shop();
    const args = ['chain', 'check', carolChain, '--action', 'read_orders', '--arg', 'refund=0'];
    const bearer = await home.run('--json', ...args, '--arg', 'order=/orders/4471');
    expect(bearer.code).toBe(0);
    expect(bearer.stderr).toMatch(/^warning: [^\n]*--presenter[^\n]*\n$/);
    expect(json(bearer)).toMatchObject({ decision: 'allow' });
    const human = await home.run(...args, '--arg', 'order=/orders/4471');
    expect(human.stderr).toBe(bearer.stderr);
    expect(human.stdout).not.toContain('warning');
    // With the presenter named, nothing but the decision.
    await home.ok(...args, '--arg', 'order=/orders/4471', '--presenter', 'carol');
    // A chain that fails verification gets its error line alone.
    await home.fails('ERR_IDENTITY_NOT_FOUND', ...args, '--presenter', 'nobody');
  });
});

describe('mandate chain check arguments', () => {
  it('refuses a missing --action and a malformed --arg', async () => {
    const { home, root } = await shop();
    await home.fails('ERR_USAGE', 'chain', 'check', root);
    await home.fails(
      'ERR_ARGUMENT_INVALID',
      'chain',
      'check',
      root,
      '--action',
      'read_orders',
      '--arg',
      'refund',
    );
    await home.fails(
      'ERR_ARGUMENT_INVALID',
      'chain',
      'check',
      root,
      '--action',
      'read_orders',
      '--arg',
      '=5',
    );
    // a value may itself hold `=`
    const r = await home.run(
      '--json',
      'chain',
      'check',
      root,
      '--action',
      'read_orders',
      '--arg',
      'order=/orders/1',
      '--arg',
      'refund=1',
      '--arg',
      'note=a=b',
    );
    expect(r.code).toBe(0);
  });
});

describe('mandate chain check: no constraint is skipped, nothing is granted by omission', () => {
  /** A home whose authority issued alice a credential with exactly these attributes. */
  async function credentialWith(...attrs: string[]) {
    const home = new Home();
    await home.authorityInit();
    await home.identity('alice');
    const root = home.path('alice.chain');
    await home.ok(
      'credential',
      'issue',
      '--to',
      'alice',
      ...attrs.flatMap((a) => ['--attr', a]),
      '--out',
      root,
    );
    const check = async (action: string, ...args: string[]): Promise<Decision> => {
      const r = await home.run(
        '--json',
        'chain',
        'check',
        root,
        '--presenter',
        'alice',
        '--action',
        action,
        ...args.flatMap((a) => ['--arg', a]),
      );
      expect(r.stderr).toBe('');
      const decision = json(r) as unknown as Decision;
      expect(r.code).toBe(decision.decision === 'deny' ? 5 : 0);
      return decision;
    };
    return { home, root, check };
  }

  // Issue 8, vulnerability 3.
  it('applies a constraint scoped to a tool whose name holds a dot', async () => {
    const scoped = await credentialWith('tools=orders.refund', 'orders.refund#amount<=100');
    expect(await scoped.check('orders.refund', 'amount=1000000')).toMatchObject({
      decision: 'deny',
      failed: { link: 0, constraint: 'orders.refund#amount' },
    });
    expect((await scoped.check('orders.refund', 'amount=100')).decision).toBe('allow');
    // The old dotted form is one argument name: it can only fail closed.
    const dotted = await credentialWith('tools=orders.refund', 'orders.refund.amount<=100');
    expect((await dotted.check('orders.refund', 'amount=1000000')).decision).toBe('deny');
  });

  it('refuses to issue a constraint scoped to a tool the credential does not grant', async () => {
    const home = new Home();
    await home.authorityInit();
    await home.identity('alice');
    await home.fails(
      'ERR_CONSTRAINT_TOOL_NOT_GRANTED',
      'credential',
      'issue',
      '--to',
      'alice',
      '--attr',
      'tools=read_orders',
      '--attr',
      'orders.refund#amount<=100',
    );
  });

  // Issue 8, vulnerability 4.
  it('denies every action to a credential without `tools`, and never reads `relay` from the call', async () => {
    const toolless = await credentialWith('refund<=1000');
    expect(await toolless.check('drop_all_tables', 'refund=1')).toMatchObject({
      decision: 'deny',
      failed: { link: 0, constraint: 'tools' },
    });
    const relayOnly = await credentialWith('relay=bob');
    expect((await relayOnly.check('drop_all_tables', 'relay=bob')).decision).toBe('deny');
  });
});

// --- text from outside never repaints the terminal ---------------------------------------------------

/** Raw control characters (C0 but the line feed, DEL, C1) and bidi controls. */
const RAW_CONTROL_RE =
  // eslint-disable-next-line no-control-regex -- control characters are what this looks for
  /[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/u;

/**
 * A link from `from` to `to` under `parent`, signed with `from`'s credential key in the home's
 * vault but built directly with the codec: delegate()'s checks never see it, as with an attacker
 * who holds a key and writes their own tool.
 */
async function signLinkDirectly(
  dir: string,
  parent: string,
  from: string,
  to: string,
  purpose: string,
): Promise<Uint8Array> {
  const home = await openHome(dir);
  try {
    const now = Math.floor(Date.now() / 1000);
    const bytes = fromHex(readFileSync(parent, 'utf8').trim(), 'chain');
    const authority = (await home.identities.get('authority')).identity;
    const chain = verifyChain(bytes, {
      nowSeconds: now,
      authorities: new Map([[authority.identifier, authority]]),
    });
    const issuer = await home.identities.get(from);
    const subject = (await home.identities.get(to)).identity;
    const { verified, keyId } = await home.identities.purposeKey(issuer, Purpose.credentials);
    const data = encodeLinkData({
      issuer: issuer.identity.changes[0]!.changeHash,
      subject: subject.changes[0]!.changeHash,
      parent: chain.hash,
      constraints: new Map(),
      notBefore: now,
      expiresAt: null,
      depth: chain.remainingDepth - 1,
      purpose,
      nonce: randomBytes(LINK_NONCE_BYTES),
    });
    const link = encodeLink(
      data,
      encodeSignature('ed25519', await home.vault.sign(keyId, sha256(data))),
      verified.attestation,
    );
    const decoded = decodeChain(bytes);
    return encodeChain(
      decoded.root,
      [...decoded.linkBytes, link],
      [...decoded.histories, issuer.identity.changeHistory, subject.changeHistory],
    );
  } finally {
    home.close();
  }
}

describe('control characters from chains and credentials never reach the terminal', () => {
  const repaint = '\x1b[1A\x1b[2K\rALLOW: bob delete_everything \u202eWOLLA';

  it('refuses a purpose with control or bidi characters at `delegate`, and writes nothing', async () => {
    const { home, bobChain } = await shop();
    const out = home.path('dave.chain');
    for (const purpose of [
      repaint,
      'a\rb',
      'a\nb',
      'c1 \x9b2J',
      'del \x7f',
      'rlo \u202e',
      'fsi \u2068',
    ]) {
      await home.fails(
        'ERR_ARGUMENT_INVALID',
        'delegate',
        '--chain',
        bobChain,
        '--from',
        'bob',
        '--to',
        'mallory',
        '--purpose',
        purpose,
        '--out',
        out,
      );
      expect(existsSync(out), JSON.stringify(purpose)).toBe(false);
    }
  });

  it('refuses a properly signed link whose purpose carries them, and prints none of it', async () => {
    const { home, bobChain } = await shop();
    const forged = home.path('forged.chain');
    writeFileSync(
      forged,
      `${toHex(await signLinkDirectly(home.dir, bobChain, 'bob', 'mallory', repaint))}\n`,
    );
    for (const argv of [
      [
        'chain',
        'check',
        forged,
        '--action',
        'read_orders',
        '--arg',
        'refund=1',
        '--arg',
        'order=/orders/4471',
      ],
      ['chain', 'verify', forged],
      ['credential', 'verify', forged],
      ['credential', 'show', forged],
    ]) {
      for (const r of [await home.run(...argv), await home.run('--json', ...argv)]) {
        expect(errorCodeOf(r), argv.join(' ')).toBe('ERR_DELEGATION_MALFORMED');
        expect(r.stdout + r.stderr, argv.join(' ')).not.toMatch(RAW_CONTROL_RE);
        expect(r.stdout, argv.join(' ')).not.toContain('ALLOW');
      }
    }
  });

  it('escapes control characters of attribute values on `credential show`', async () => {
    const { home, alice } = await shop();
    // Plain Ockam attribute values are any bytes: an issuer (or a forger: show does not verify)
    // may put escape sequences there.
    const value = `x${repaint}\n\u0085\u2066`;
    const lib = await openHome(home.dir);
    let file: string;
    try {
      const authority = await lib.identities.get('authority');
      const { verified, keyId } = await lib.identities.purposeKey(authority, Purpose.credentials);
      const subject = (await lib.identities.get('alice')).identity;
      const credential = await issueCredential(
        lib.vault,
        {
          identity: authority.identity,
          credentialKeyId: keyId,
          credentialKeyAttestation: verified.attestation,
        },
        subject,
        new Map([['note', new TextEncoder().encode(value)]]),
        { nowSeconds: Math.floor(Date.now() / 1000) },
      );
      file = home.path('note.chain');
      writeFileSync(file, `${toHex(chainFromCredential(credential, subject))}\n`);
    } finally {
      lib.close();
    }
    const human = await home.run('credential', 'show', file);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toContain(alice);
    expect(human.stdout).not.toMatch(RAW_CONTROL_RE);
    expect(human.stdout).toContain('\\u001b[1A');
    // The value stays on its one line: its line feed is escaped too.
    expect(human.stdout.split('\n').filter((line) => line.includes('ALLOW'))).toHaveLength(1);
    expect(human.stdout).not.toMatch(/^ALLOW/m);
    const machine = await home.run('--json', 'credential', 'show', file);
    expect(machine.code).toBe(0);
    expect(machine.stdout).not.toMatch(RAW_CONTROL_RE);
    // --json escapes differently, never lossily: the value parses back as it was.
    expect((json(machine).attributes as Record<string, string>).note).toBe(value);
  });
});

describe('a stored history that no longer verifies', () => {
  // Issue 9: loading the stored history swallowed every error, so a corrupt (or tampered) row
  // silently fell back to the history the presented chain carries. Only absence may do that.
  it('is an error, never replaced by the history the chain carries', async () => {
    const { home, bob, bobChain } = await shop();
    const db = new Database(join(home.dir, 'mandate.db'));
    try {
      const row = db
        .prepare<[string], { change_history: Buffer }>(
          'SELECT change_history FROM identities WHERE identifier = ?',
        )
        .get(bob);
      if (row === undefined) throw new Error('bob is not stored');
      const tampered = Buffer.from(row.change_history);
      tampered[tampered.length - 1]! ^= 1; // a bit of the last signature
      db.prepare('UPDATE identities SET change_history = ? WHERE identifier = ?').run(
        tampered,
        bob,
      );
    } finally {
      db.close();
    }
    const r = await home.run('chain', 'verify', bobChain);
    expect(r.code).not.toBe(0);
    expect(errorCodeOf(r)).toMatch(/^ERR_IDENTITY_/);
  });
});

describe('found by the outside attack on the issue 8 fixes (CLI)', () => {
  it('refuses an argument given twice (a tool could read the value that was not checked)', async () => {
    const { home, bobChain } = await shop();
    await home.fails(
      'ERR_ARGUMENT_INVALID',
      'chain',
      'check',
      bobChain,
      '--presenter',
      'bob',
      '--action',
      'issue_refund',
      '--arg',
      'refund=1000',
      '--arg',
      'refund=50',
      '--arg',
      'order=/orders/4471',
    );
  });

  it('refuses an --out it cannot write before redeeming or issuing anything', async () => {
    const home = new Home();
    await home.authorityInit();
    await home.identity('carol');
    const ticket = json(await home.run('--json', 'ticket', 'create', '--attr', 'tools=read_orders'))
      .ticket as string;
    await home.fails(
      'ERR_ARGUMENT_INVALID',
      'ticket',
      'redeem',
      ticket,
      '--name',
      'r7',
      '--out',
      home.dir,
    );
    expect((await home.run('identity', 'show', 'r7')).code).toBe(6);
    // The ticket was not used up: it still enrolls.
    await home.ok('ticket', 'redeem', ticket, '--name', 'r8', '--out', home.path('r8.chain'));
    const before = await home.ok<{ attributes?: unknown }>(
      'credential',
      'show',
      home.path('r8.chain'),
    );
    await home.fails(
      'ERR_ARGUMENT_INVALID',
      'credential',
      'issue',
      '--to',
      'carol',
      '--attr',
      'tools=zzz',
      '--out',
      home.dir,
    );
    expect(before).toBeDefined();
  });

  it('without --out prints the chain alone on stdout, the status on stderr', async () => {
    const home = new Home();
    await home.authorityInit();
    await home.identity('carol');
    const r = await home.run('credential', 'issue', '--to', 'carol', '--attr', 'tools=read_orders');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(HEX_FILE_RE);
    expect(r.stderr).toMatch(/issued/);
    const file = home.path('carol.chain');
    writeFileSync(file, r.stdout);
    expect((await home.run('chain', 'verify', file, '--presenter', 'carol')).code).toBe(0);
  });

  it('enrolls and issues nothing for a revoked identity or by a revoked authority', async () => {
    const home = new Home();
    const authority = await home.authorityInit();
    const bob = await home.identity('bob');
    await home.ok('revoke', bob);
    const ticket = json(await home.run('--json', 'ticket', 'create', '--attr', 'tools=read_orders'))
      .ticket as string;
    await home.fails(
      'ERR_REVOKED',
      'ticket',
      'redeem',
      ticket,
      '--identity',
      'bob',
      '--out',
      home.path('b.chain'),
    );
    await home.fails('ERR_REVOKED', 'credential', 'issue', '--to', 'bob', '--attr', 'tools=x');
    await home.identity('carol');
    await home.ok('revoke', authority);
    await home.fails('ERR_REVOKED', 'credential', 'issue', '--to', 'carol', '--attr', 'tools=x');
  });
});

describe('mandate revoke: what it names', () => {
  it('takes a local name for its identifier, and says so when an identifier is unknown here', async () => {
    const home = new Home();
    await home.authorityInit();
    const bob = await home.identity('bob');
    const byName = json(await home.run('--json', 'revoke', 'bob'));
    expect(byName).toMatchObject({ revoked: bob, kind: 'identity', known: true });
    const stranger = `I${'ab'.repeat(32)}`;
    const r = await home.run('revoke', stranger);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/not an identity this home knows; recorded anyway/);
    await home.fails('ERR_ARGUMENT_INVALID', 'revoke', 'nobody-by-that-name');
  });
});

describe('a home without an authority', () => {
  it('says so, and how to make one', async () => {
    const home = new Home();
    await home.identity('bob');
    const r = await home.run('credential', 'issue', '--to', 'bob', '--attr', 'tools=x');
    expect(r.code).toBe(6);
    expect(r.stderr).toMatch(/no authority identity `authority`.*mandate authority init/);
  });
});
