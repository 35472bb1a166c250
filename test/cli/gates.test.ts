import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { mandateCedarSchema } from '../../src/gates/index.js';
import { json, run, type Run } from '../helpers/cli.js';
import { CATALOG, POLICIES } from '../helpers/gate-world.js';

// `mandate gate tools|call` and `mandate approvals list|approve|deny` end to end, in process:
// a home with an authority, a human (dana) whose credential carries `human=true` and a refund
// budget, an agent she delegated to, an approver, and a published policy bundle.

const NOW = 1_800_000_000;

afterEach(() => {
  delete process.env.MANDATE_NOW_SECONDS;
});

class Home {
  readonly dir = mkdtempSync(join(tmpdir(), 'mandate-cli-gates-'));
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

async function world() {
  process.env.MANDATE_NOW_SECONDS = String(NOW);
  const h = new Home();
  await h.ok('authority', 'init');
  for (const name of ['dana', 'agent', 'approver', 'robot'])
    await h.ok('identity', 'create', '--name', name);
  await h.ok(
    'credential',
    'issue',
    '--to',
    'dana',
    '--attr',
    'tools=read_orders,issue_refund,deploy',
    '--attr',
    'human=true',
    '--attr',
    'label.environments=dev,staging',
    '--attr',
    'label.regions=eu-west-1',
    '--attr',
    'label.approved_by=security',
    '--attr',
    'mandate.budget:issue_refund#amount<=500',
    '--out',
    h.path('dana.chain'),
  );
  await h.ok(
    'credential',
    'issue',
    '--to',
    'approver',
    '--attr',
    'human=true',
    '--out',
    h.path('approver.chain'),
  );
  await h.ok(
    'credential',
    'issue',
    '--to',
    'robot',
    '--attr',
    'tools=read_orders',
    '--out',
    h.path('robot.chain'),
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
    'tools=read_orders,issue_refund,deploy',
    '--constraint',
    'issue_refund#amount<=400',
    '--purpose',
    'support shift',
    '--out',
    h.path('agent.chain'),
  );
  writeFileSync(h.path('catalog.json'), JSON.stringify({ tools: CATALOG }));
  writeFileSync(h.path('policies.cedar'), POLICIES);
  const printed = await h.ok<{ schema: string }>(
    'gate',
    'schema',
    '--catalog',
    h.path('catalog.json'),
  );
  expect(printed.schema).toBe(mandateCedarSchema({ tools: CATALOG }));
  writeFileSync(h.path('schema.cedarschema'), printed.schema);
  return h;
}

const call = (h: Home, args: Record<string, unknown>, tool = 'issue_refund', chain = 'agent') =>
  h.run(
    'gate',
    'call',
    '--chain',
    h.path(`${chain}.chain`),
    '--presenter',
    chain,
    '--catalog',
    h.path('catalog.json'),
    '--tool',
    tool,
    '--args',
    JSON.stringify(args),
  );

describe('mandate gate and approvals', () => {
  it('without a published bundle every call is denied by the bundle lock', async () => {
    const h = await world();
    const r = await call(h, { order: 'o-1', amount: 10 });
    expect(r.code).toBe(5);
    expect(json(r)).toMatchObject({ decision: 'deny', lock: 'bundle', bundle: null });
    const tools = await h.ok<{ tools: unknown[] }>(
      'gate',
      'tools',
      '--chain',
      h.path('agent.chain'),
      '--presenter',
      'agent',
      '--catalog',
      h.path('catalog.json'),
    );
    expect(tools.tools).toEqual([]);
  });

  it('gate tools, gate call (allow, deny by either lock), approvals, budget, revocation', async () => {
    const h = await world();
    const published = await h.ok<{ version: number; hash: string }>(
      'policy',
      'publish',
      h.path('policies.cedar'),
      '--catalog',
      h.path('catalog.json'),
    );
    const tools = await h.ok<{ tools: { name: string }[]; bundle: string }>(
      'gate',
      'tools',
      '--chain',
      h.path('agent.chain'),
      '--presenter',
      'agent',
      '--catalog',
      h.path('catalog.json'),
    );
    expect(tools.tools.map((t) => t.name).sort()).toEqual([
      'deploy',
      'issue_refund',
      'read_orders',
    ]);
    expect(tools.bundle).toBe(published.hash);

    // allow
    const allowed = await call(h, { order: 'o-1', amount: 150 });
    expect(allowed.code).toBe(0);
    // Signed as the presenter and logged with its decision (issue 11): its record ids come back.
    expect(json(allowed)).toEqual({
      decision: 'allow',
      lock: null,
      reasons: [],
      policies: ['small-refunds'],
      bundle: published.hash,
      invocation: expect.stringMatching(/^[0-9a-f]{64}$/) as unknown,
      record: expect.stringMatching(/^[0-9a-f]{64}$/) as unknown,
      logIndex: 2, // after the chain record (index 0) and the invocation
    });
    // lock 1: the agent's link caps a refund at 400
    const overLink = await call(h, { order: 'o-1', amount: 450 });
    expect(overLink.code).toBe(5);
    expect(json(overLink)).toMatchObject({ decision: 'deny', lock: 'chain' });
    // schema: a missing argument
    expect(json(await call(h, { amount: 5 }))).toMatchObject({ decision: 'deny', lock: 'schema' });
    // lock 2 via labels: prod is not one of dana's environments
    const prod = await call(
      h,
      { service: 'api', environment: 'prod', region: 'eu-west-1' },
      'deploy',
    );
    expect(json(prod)).toMatchObject({ decision: 'deny', lock: 'policy' });
    expect(
      json(await call(h, { service: 'api', environment: 'dev', region: 'eu-west-1' }, 'deploy')),
    ).toMatchObject({ decision: 'allow' });

    // approval: exit 12 and an id; the robot may not answer; the approver may
    const waiting = await call(h, { order: 'o-2', amount: 300 });
    expect(waiting.code).toBe(12);
    const id = (json(waiting) as { approval: string }).approval;
    expect(json(waiting)).toMatchObject({
      decision: 'approval_required',
      lock: 'approval',
      reasons: ['refunds above 200 need a person'],
    });
    const listed = await h.ok<{ approvals: { id: string; status: string; arguments: string }[] }>(
      'approvals',
      'list',
    );
    expect(listed.approvals).toEqual([
      expect.objectContaining({ id, status: 'pending', arguments: '{"amount":300,"order":"o-2"}' }),
    ]);
    const robot = await h.run(
      'approvals',
      'approve',
      id,
      '--as',
      'robot',
      '--reason',
      'looks fine',
    );
    expect(robot.code).toBe(5);
    expect(robot.stderr).toMatch(/^error\[ERR_APPROVAL_NOT_HUMAN\]/);
    const agentSelf = await h.run('approvals', 'approve', id, '--as', 'agent', '--reason', 'me');
    expect(agentSelf.stderr).toMatch(/^error\[ERR_APPROVAL_NOT_HUMAN\]/);
    const approved = await h.ok<{ status: string; answer: { approver: string; reason: string } }>(
      'approvals',
      'approve',
      id,
      '--as',
      'approver',
      '--reason',
      'customer verified by phone',
    );
    expect(approved).toMatchObject({
      status: 'approved',
      answer: { reason: 'customer verified by phone' },
    });
    // other arguments do not pass on this approval; the same ones pass exactly once
    expect((await call(h, { order: 'o-2', amount: 301 })).code).toBe(12);
    const once = await call(h, { order: 'o-2', amount: 300 });
    expect(once.code).toBe(0);
    expect(json(once)).toMatchObject({ decision: 'allow', approval: id });
    expect((await call(h, { order: 'o-2', amount: 300 })).code).toBe(12);

    // budget: 150 + 300 spent of dana's 500; 60 more is too much, 50 fits
    const over = await call(h, { order: 'o-3', amount: 60 });
    expect(json(over)).toMatchObject({
      decision: 'deny',
      lock: 'budget',
      code: 'ERR_GATE_BUDGET_EXHAUSTED',
    });
    expect((await call(h, { order: 'o-3', amount: 50 })).code).toBe(0);

    // revocation: the very next call is denied
    const revoked = await h.ok<{ id?: string }>('revoke', 'agent');
    expect(revoked).toBeDefined();
    const after = await call(h, { order: 'o-1', amount: 1 }, 'read_orders');
    expect(after.code).toBe(5);
    expect(json(after)).toMatchObject({ decision: 'deny', lock: 'chain' });
  });

  it('refuses bad input with typed errors: bad JSON args, huge args, a bad catalog, an unknown approval', async () => {
    const h = await world();
    const bad = await call(h, {}).then(() =>
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
        '{nope',
      ),
    );
    expect(bad.code).toBe(3);
    expect(bad.stderr).toMatch(/^error\[ERR_GATE_ARGUMENTS_INVALID\]/);
    const huge = await h.run(
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
      JSON.stringify({ order: 'x'.repeat(300_000) }),
    );
    expect(huge.stderr).toMatch(/^error\[ERR_GATE_ARGUMENTS_TOO_LARGE\]/);
    writeFileSync(
      h.path('bad-catalog.json'),
      JSON.stringify([{ name: 'a b', server: 's', inputSchema: { type: 'object' } }]),
    );
    const catalog = await h.run(
      'gate',
      'tools',
      '--chain',
      h.path('agent.chain'),
      '--presenter',
      'agent',
      '--catalog',
      h.path('bad-catalog.json'),
    );
    expect(catalog.stderr).toMatch(/^error\[ERR_GATE_CATALOG_INVALID\]/);
    const missing = await h.run(
      'approvals',
      'approve',
      'nope',
      '--as',
      'approver',
      '--reason',
      'x',
    );
    expect(missing.stderr).toMatch(/^error\[ERR_APPROVAL_NOT_FOUND\]/);
    expect(missing.code).toBe(6);
  });
});

// The outside attacker's commands (docs/threat-model.md, outside-attack holes of issue 10).
describe('outside-attack holes of the gates', () => {
  const gateCall = (h: Home, tool: string, args: string, ...more: string[]) =>
    h.run(
      'gate',
      'call',
      '--chain',
      h.path('agent.chain'),
      '--presenter',
      'agent',
      '--tool',
      tool,
      '--args',
      args,
      ...more,
    );

  it('F1, F3, F8: a hostile input schema is refused at catalog load, naming the tool', async () => {
    const h = await world();
    const hostile = {
      async: { type: 'object', $async: true, properties: { amount: { type: 'integer' } } },
      backreference: { type: 'object', properties: { s: { type: 'string', pattern: '(a)\\1' } } },
      self: { type: 'object', $ref: '#' },
    };
    for (const [name, inputSchema] of Object.entries(hostile)) {
      writeFileSync(
        h.path(`${name}.json`),
        JSON.stringify([...CATALOG, { name: `t_${name}`, server: 'evil', inputSchema }]),
      );
      const published = await h.run(
        'policy',
        'publish',
        h.path('policies.cedar'),
        '--catalog',
        h.path(`${name}.json`),
      );
      expect(published.code).toBe(3);
      expect(published.stderr).toMatch(/^error\[ERR_GATE_CATALOG_INVALID\].*`t_/);
    }
  });

  it('F3: a catastrophic pattern runs in linear time at the gate', async () => {
    const h = await world();
    const tools = CATALOG.map((t) =>
      t.name === 'read_orders'
        ? {
            ...t,
            inputSchema: {
              type: 'object',
              properties: { order: { type: 'string', pattern: '^(a+)+$' } },
              required: ['order'],
            },
          }
        : t,
    );
    writeFileSync(h.path('catalog.json'), JSON.stringify(tools));
    await h.ok('policy', 'publish', h.path('policies.cedar'), '--catalog', h.path('catalog.json'));
    const started = Date.now();
    const r = await gateCall(h, 'read_orders', JSON.stringify({ order: `${'a'.repeat(16_000)}!` }));
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(json(r)).toMatchObject({
      decision: 'deny',
      lock: 'schema',
      code: 'ERR_GATE_ARGUMENTS_INVALID',
    });
  });

  it('F4: a key given twice in --args is refused at every depth, not resolved', async () => {
    const h = await world();
    await h.ok('policy', 'publish', h.path('policies.cedar'), '--catalog', h.path('catalog.json'));
    for (const args of [
      '{"order":"o-1","amount":450,"amount":1}',
      '{"order":"o-1","amount":1,"amount":450}',
      '{"order":"o-1","amount":1,"note":"x","\\u006eote":"y"}',
    ]) {
      const r = await gateCall(h, 'issue_refund', args);
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/^error\[ERR_GATE_ARGUMENTS_INVALID\].*twice/);
    }
    const nested = await gateCall(
      h,
      'deploy',
      '{"service":"api","environment":"dev","region":"eu-west-1","tags":[],"x":{"a":1,"a":2}}',
    );
    expect(nested.stderr).toMatch(/^error\[ERR_GATE_ARGUMENTS_INVALID\]/);
    expect(json(await gateCall(h, 'issue_refund', '{"order":"o-1","amount":10}'))).toMatchObject({
      decision: 'allow',
    });
  });

  it('F5: an authority trusted for one identity (ticket redeem) makes no chain or approver at the gates', async () => {
    const h = await world();
    await h.ok('policy', 'publish', h.path('policies.cedar'), '--catalog', h.path('catalog.json'));
    await h.ok('identity', 'create', '--name', 'foreign');
    const { ticket } = await h.ok<{ ticket: string }>(
      'ticket',
      'create',
      '--authority',
      'foreign',
      '--attr',
      'tools=read_orders,issue_refund',
      '--attr',
      'human=true',
    );
    await h.ok('ticket', 'redeem', ticket, '--name', 'member', '--out', h.path('member.chain'));
    // The scoped anchor still serves the member's own verification …
    expect(
      await h.ok('chain', 'verify', h.path('member.chain'), '--presenter', 'member'),
    ).toMatchObject({ valid: true });
    // … but not this home's gates: the foreign authority is not a home-wide anchor.
    const r = await h.run(
      'gate',
      'call',
      '--chain',
      h.path('member.chain'),
      '--presenter',
      'member',
      '--tool',
      'read_orders',
      '--args',
      '{"order":"o-1"}',
    );
    expect(r.code).toBe(5);
    expect(json(r)).toMatchObject({
      decision: 'deny',
      lock: 'chain',
      code: 'ERR_CREDENTIAL_UNTRUSTED_ISSUER',
    });
    // Nor may the member answer an approval.
    const waiting = await gateCall(h, 'issue_refund', '{"order":"o-2","amount":300}');
    expect(waiting.code).toBe(12);
    const id = (json(waiting) as { approval: string }).approval;
    const answer = await h.run(
      'approvals',
      'deny',
      id,
      '--as',
      'member',
      '--credential',
      h.path('member.chain'),
      '--reason',
      'no',
    );
    expect(answer.code).not.toBe(0);
    expect(answer.stderr).toMatch(/^error\[ERR_CREDENTIAL_UNTRUSTED_ISSUER\]/);
    expect(
      (await h.ok<{ approvals: { status: string }[] }>('approvals', 'list')).approvals[0],
    ).toMatchObject({ status: 'pending' });
  });

  it('F2: the catalog is the signed bundle’s; a retyped or relabelled one at call time is denied', async () => {
    const h = await world();
    writeFileSync(
      h.path('forbid.cedar'),
      `${POLICIES}\n@id("no-big")\nforbid(principal, action == Action::"callTool", resource)\n  when { context.args has amount && context.args.amount > 100 };\n`,
    );
    await h.ok('policy', 'publish', h.path('forbid.cedar'), '--catalog', h.path('catalog.json'));
    const shown = await h.ok<{ catalog: { digest: string; tools: string[] } }>('policy', 'show');
    expect(shown.catalog.tools).toContain('orders/issue_refund');
    expect(shown.catalog.digest).toMatch(/^[0-9a-f]{64}$/);
    const args = JSON.stringify({ order: 'o-1', amount: 150 });
    // Without --catalog: the bundle's catalog; the forbid fires.
    expect(json(await gateCall(h, 'issue_refund', args))).toMatchObject({
      decision: 'deny',
      lock: 'policy',
      policies: ['no-big'],
    });
    const retyped = CATALOG.map((t) =>
      t.name === 'issue_refund'
        ? {
            ...t,
            inputSchema: {
              type: 'object',
              properties: { order: { type: 'string' }, amount: { type: 'number' } },
            },
          }
        : t,
    );
    const relabelled = CATALOG.map((t) =>
      t.name === 'issue_refund' ? { ...t, server: 'sandbox' } : t,
    );
    for (const [name, tools] of [
      ['retyped', retyped],
      ['relabelled', relabelled],
    ] as const) {
      writeFileSync(h.path(`${name}.json`), JSON.stringify(tools));
      const r = await gateCall(h, 'issue_refund', args, '--catalog', h.path(`${name}.json`));
      expect(r.code).toBe(5);
      expect(json(r)).toMatchObject({
        decision: 'deny',
        lock: 'bundle',
        code: 'ERR_GATE_CATALOG_MISMATCH',
      });
    }
    // A bundle published without a catalog lists and decides nothing.
    const plain = await h.run(
      'policy',
      'publish',
      h.path('policies.cedar'),
      '--schema',
      h.path('schema.cedarschema'),
    );
    expect(plain.code).toBe(0);
    expect(json(await gateCall(h, 'read_orders', '{"order":"o-1"}'))).toMatchObject({
      decision: 'deny',
      code: 'ERR_GATE_NO_CATALOG',
    });
  });
});
