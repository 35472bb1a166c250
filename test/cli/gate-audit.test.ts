import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseAuditRecord } from '../../src/audit/index.js';
import { json, run, type Run } from '../helpers/cli.js';
import { CATALOG, POLICIES } from '../helpers/gate-world.js';

// `mandate gate sign` (an agent signs an invocation) and `mandate gate call --invocation` (the
// home as the enforcement point: verified, replay-checked, recorded with the countersigned
// decision in the home's audit log), end to end in process.

const NOW = 1_800_000_000;

afterEach(() => {
  delete process.env.MANDATE_NOW_SECONDS;
});

class Home {
  readonly dir = mkdtempSync(join(tmpdir(), 'mandate-cli-gate-audit-'));
  path(name: string): string {
    return join(this.dir, name);
  }
  run(...argv: string[]): Promise<Run> {
    return run('--home', this.dir, '--json', ...argv);
  }
  async ok<T = Record<string, unknown>>(...argv: string[]): Promise<T> {
    const r = await this.run(...argv);
    expect(r.code, `${argv.join(' ')}: ${r.stderr}`).toBe(0);
    return json(r) as T;
  }
}

async function world(): Promise<Home> {
  process.env.MANDATE_NOW_SECONDS = String(NOW);
  const h = new Home();
  await h.ok('authority', 'init');
  for (const name of ['dana', 'agent']) await h.ok('identity', 'create', '--name', name);
  await h.ok(
    'credential',
    'issue',
    '--to',
    'dana',
    '--attr',
    'tools=read_orders,issue_refund',
    '--attr',
    'human=true',
    '--out',
    h.path('dana.chain'),
  );
  await h.ok(
    'delegate',
    '--chain',
    h.path('dana.chain'),
    '--from',
    'dana',
    '--to',
    'agent',
    '--constraint',
    'tools=read_orders,issue_refund',
    '--purpose',
    'support shift',
    '--out',
    h.path('agent.chain'),
  );
  writeFileSync(h.path('catalog.json'), JSON.stringify({ tools: CATALOG }));
  writeFileSync(h.path('policies.cedar'), POLICIES);
  // The catalog is signed into the bundle: the gate decides on the bundle's tools only.
  await h.ok('policy', 'publish', h.path('policies.cedar'), '--catalog', h.path('catalog.json'));
  return h;
}

const sign = (h: Home, out: string, args: unknown, tool = 'read_orders') =>
  h.ok<{ invocation: string; previous: string | null }>(
    'gate',
    'sign',
    '--as',
    'agent',
    '--chain',
    h.path('agent.chain'),
    '--tool',
    tool,
    '--server',
    'orders',
    '--args',
    JSON.stringify(args),
    '--out',
    h.path(out),
  );

/**
 * `gate call --invocation`: the invocation names its chain by hash; `--chain` gives that chain
 * (`null`: none), `more` any further flags.
 */
const callSigned = (
  h: Home,
  file: string,
  args: unknown,
  chain: string | null = 'agent.chain',
  ...more: string[]
) =>
  h.run(
    'gate',
    'call',
    '--catalog',
    h.path('catalog.json'),
    '--invocation',
    h.path(file),
    ...(chain === null ? [] : ['--chain', h.path(chain)]),
    '--args',
    JSON.stringify(args),
    ...more,
  );

/** `gate call --chain --presenter`: the CLI signs as the presenter. */
const callPlain = (h: Home, args: unknown) =>
  h.run(
    'gate',
    'call',
    '--chain',
    h.path('agent.chain'),
    '--presenter',
    'agent',
    '--catalog',
    h.path('catalog.json'),
    '--tool',
    'read_orders',
    '--args',
    JSON.stringify(args),
  );

describe('mandate gate sign / gate call --invocation', () => {
  it('records the signed invocation and the countersigned decision; refuses a replay', async () => {
    const h = await world();
    const args = { order: 'o-1' };
    const first = await sign(h, 'one.json', args);
    expect(first.previous).toBeNull();
    const record = parseAuditRecord(readFileSync(h.path('one.json')));
    expect(record.type).toBe('mandate/invocation/v2');
    const allowed = await callSigned(h, 'one.json', args);
    expect(allowed.code, allowed.stderr).toBe(0);
    // The chain's record first (index 0), then the invocation and its decision.
    expect(json(allowed)).toMatchObject({
      decision: 'allow',
      invocation: first.invocation,
      logIndex: 2,
    });
    // The same file again: no longer the successor of the agent's head.
    const replay = await callSigned(h, 'one.json', args);
    expect(replay.code).not.toBe(0);
    expect(replay.stderr).toContain('ERR_AUDIT_AGENT_CHAIN_MISMATCH');
    // The next one chains on the home's head; a deny is recorded too (exit 5).
    const second = await sign(h, 'two.json', { order: 'o-2', amount: 5000 }, 'issue_refund');
    expect(second.previous).toBe(first.invocation);
    const denied = await callSigned(h, 'two.json', { order: 'o-2', amount: 5000 });
    expect(denied.code).toBe(5);
    expect(json(denied)).toMatchObject({ decision: 'deny', logIndex: 4 });
    // Arguments other than those signed: refused, nothing recorded.
    const third = await sign(h, 'three.json', args);
    const other = await callSigned(h, 'three.json', { order: 'o-9' });
    expect(other.stderr).toContain('ERR_AUDIT_RECORD_MISMATCH');
    expect(third.previous).toBe(second.invocation);
    // The home's trail verifies offline (mandate audit, issue 11's reader).
    await h.ok('audit', 'checkpoint');
    const verified = await h.run('audit', 'verify');
    expect(verified.code, verified.stderr + verified.stdout).toBe(0);
    expect(JSON.parse(verified.stdout)).toMatchObject({
      summary: { invocations: 2, decisions: 2, chains: 1 },
    });
  });

  it('signs and logs a plain call (--chain --presenter) as the presenter; --invocation needs its own chain', async () => {
    const h = await world();
    const plain = (args: unknown) => callPlain(h, args);
    const first = await plain({ order: 'o-1' });
    expect(first.code, first.stderr).toBe(0);
    expect(json(first)).toMatchObject({ decision: 'allow', logIndex: 2 });
    const second = await plain({ order: 'o-2' });
    expect(json(second)).toMatchObject({ decision: 'allow', logIndex: 4 });
    await h.ok('audit', 'checkpoint');
    expect(await h.ok('audit', 'verify')).toMatchObject({
      ok: true,
      summary: { invocations: 2, decisions: 2, chains: 1 },
    });
    // A signed invocation names its agent (--presenter refused) and its chain by hash: without
    // --chain, or with another chain, it is refused and nothing is logged.
    await sign(h, 'three.json', { order: 'o-3' });
    const args = { order: 'o-3' };
    expect((await callSigned(h, 'three.json', args, null)).stderr).toMatch(
      /^error\[ERR_ARGUMENT_INVALID\].*--chain/,
    );
    expect(
      (await callSigned(h, 'three.json', args, 'agent.chain', '--presenter', 'agent')).stderr,
    ).toMatch(/^error\[ERR_ARGUMENT_INVALID\]/);
    expect((await callSigned(h, 'three.json', args, 'dana.chain')).stderr).toMatch(
      /^error\[ERR_AUDIT_CHAIN_MISMATCH\]/,
    );
    const q = await h.ok<{ calls: { onBehalfOf: string[] }[] }>('audit', 'query');
    expect(q.calls).toHaveLength(2);
    // The reader takes each call's chain (its path) from the log's chain record.
    expect(q.calls[0]!.onBehalfOf.length).toBeGreaterThan(1);
  });

  it('gate sign refuses a signer that is not the chain actor, and integers beyond 2^53 − 1', async () => {
    const h = await world();
    const signAs = (as: string, args: string) =>
      h.run(
        'gate',
        'sign',
        '--as',
        as,
        '--chain',
        h.path('agent.chain'),
        '--tool',
        'read_orders',
        '--args',
        args,
        '--out',
        h.path('x.json'),
      );
    const dana = await signAs('dana', '{"order":"o-1"}');
    expect(dana.stderr).toMatch(/^error\[ERR_CHAIN_PRESENTER_MISMATCH\]/);
    const big = await signAs('agent', '{"order":"o-1","amount":9007199254740993}');
    expect(big.stderr).toMatch(/^error\[ERR_GATE_ARGUMENTS_INVALID\]/);
    const ok = await signAs('agent', '{"order":"o-1","amount":9007199254740991}');
    expect(ok.code, ok.stderr).toBe(0);
  });

  it('gate call refuses integers beyond 2^53 − 1 in --args as gate sign does, logging nothing', async () => {
    const h = await world();
    // 2^53 itself is unsafe: 2^53 + 1 would read as it.
    const plain = await callPlain(h, { order: 'o-1', amount: -9007199254740992 });
    expect(plain.stderr).toMatch(/^error\[ERR_GATE_ARGUMENTS_INVALID\]/);
    await sign(h, 'one.json', { order: 'o-1', amount: 9007199254740991 });
    const signed = await callSigned(h, 'one.json', { order: 'o-1', amount: 9007199254740992 });
    expect(signed.stderr).toMatch(/^error\[ERR_GATE_ARGUMENTS_INVALID\]/);
    const exported = h.path('log.jsonl');
    await h.ok('audit', 'export', '--out', exported);
    expect(readFileSync(exported, 'utf8')).toBe('');
  });

  it('refuses a countersigner that is a party to the call, logging nothing', async () => {
    const h = await world();
    const args = { order: 'o-1' };
    await sign(h, 'one.json', args);
    for (const as of ['agent', 'dana']) {
      const r = await h.run(
        'gate',
        'call',
        '--catalog',
        h.path('catalog.json'),
        '--invocation',
        h.path('one.json'),
        '--chain',
        h.path('agent.chain'),
        '--args',
        JSON.stringify(args),
        '--as',
        as,
      );
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('ERR_AUDIT_ENFORCER_INVALID');
    }
    // The authority (the default) decides it: the log's first entries.
    const allowed = await callSigned(h, 'one.json', args);
    expect(json(allowed)).toMatchObject({ decision: 'allow', logIndex: 2 });
  });

  it('a revoked enforcement point countersigns nothing (ERR_REVOKED, nothing logged)', async () => {
    const h = await world();
    await h.ok('identity', 'create', '--name', 'gw');
    await h.ok('revoke', 'gw', '--reason', 'compromised');
    const args = { order: 'o-1' };
    await sign(h, 'one.json', args);
    const before = await h.ok<{ records: number }>('audit', 'export', '--out', h.path('a.jsonl'));
    const r = await callSigned(h, 'one.json', args, 'agent.chain', '--as', 'gw');
    expect(r.code, r.stderr).not.toBe(0);
    expect(r.stderr).toMatch(/ERR_REVOKED.*enforcement point/);
    const after = await h.ok<{ records: number }>('audit', 'export', '--out', h.path('b.jsonl'));
    expect(after.records).toBe(before.records);
  });

  it('refuses a forward-dated invocation whose chain expires before its issuedAt', async () => {
    const h = await world();
    await h.ok(
      'delegate',
      '--chain',
      h.path('dana.chain'),
      '--from',
      'dana',
      '--to',
      'agent',
      '--constraint',
      'tools=read_orders',
      '--ttl',
      '2m',
      '--out',
      h.path('short.chain'),
    );
    const args = { order: 'o-1' };
    // The agent's clock is 250 s ahead: inside the gate's window, past the chain's 2 minutes.
    process.env.MANDATE_NOW_SECONDS = String(NOW + 250);
    await h.ok(
      'gate',
      'sign',
      '--as',
      'agent',
      '--chain',
      h.path('short.chain'),
      '--tool',
      'read_orders',
      '--server',
      'orders',
      '--args',
      JSON.stringify(args),
      '--out',
      h.path('ahead.json'),
    );
    process.env.MANDATE_NOW_SECONDS = String(NOW);
    const r = await callSigned(h, 'ahead.json', args, 'short.chain');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('ERR_DELEGATION_EXPIRED');
    await h.ok('audit', 'checkpoint');
    expect(await h.ok('audit', 'verify')).toMatchObject({ ok: true, records: 0 });
  });
});
