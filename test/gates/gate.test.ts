import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { authorize } from '../../src/credentials/index.js';
import {
  Gate,
  MANDATE_CEDAR_SCHEMA,
  ToolCatalog,
  chainArguments,
  mandateCedarSchema,
  type GateDecision,
} from '../../src/gates/index.js';
import { compilePolicySet } from '../../src/policy/index.js';
import { codeOf } from '../helpers/errors.js';
import { revoke } from '../helpers/deny-set.js';
import {
  CATALOG,
  GATE_NOW,
  HeldBundleSource,
  POLICIES,
  SCHEMA,
  bundleOf,
  gateWorld,
} from '../helpers/gate-world.js';

const NOW = GATE_NOW + 20;

async function setup(policies = POLICIES) {
  const w = await gateWorld();
  const bundles = new HeldBundleSource(bundleOf(policies));
  const gate = new Gate({ catalog: w.catalog, bundles, denySet: w.denySet });
  const call = (
    chain = w.subAgents[0]!.chain,
    tool: string,
    args: unknown,
    server?: string,
  ): GateDecision =>
    gate.decide(
      chain,
      { tool, args, ...(server === undefined ? {} : { server }) },
      { nowSeconds: NOW },
    );
  return { ...w, bundles, gate, call };
}

describe('the Mandate Cedar schema', () => {
  it('parses, and the catalog schema validates the organisation policies', () => {
    expect(() =>
      compilePolicySet({
        policies: 'permit(principal, action, resource);',
        schema: MANDATE_CEDAR_SCHEMA,
      }),
    ).not.toThrow();
    expect(() => compilePolicySet({ policies: POLICIES, schema: SCHEMA })).not.toThrow();
    expect(SCHEMA).toContain('amount?: Long');
    expect(SCHEMA).toContain('tags?: Set<String>');
  });

  it('refuses a policy that reads an optional argument without `has`, or compares it wrongly', () => {
    const unguarded =
      'permit(principal, action == Action::"callTool", resource) when { context.args.amount < 5 };';
    expect(codeOf(() => compilePolicySet({ policies: unguarded, schema: SCHEMA }))).toBe(
      'ERR_POLICY_INVALID',
    );
    const mistyped =
      'permit(principal, action == Action::"callTool", resource) when { context.args has order && context.args.order < 5 };';
    expect(codeOf(() => compilePolicySet({ policies: mistyped, schema: SCHEMA }))).toBe(
      'ERR_POLICY_INVALID',
    );
  });

  it('refuses two tools that type one argument differently', () => {
    const clash = [
      CATALOG[0]!,
      {
        name: 'x',
        server: 's',
        inputSchema: { type: 'object', properties: { amount: { type: 'string' } } },
      },
    ];
    expect(codeOf(() => mandateCedarSchema({ tools: clash }))).toBe('ERR_GATE_SCHEMA_CONFLICT');
  });
});

describe('gate 1: listTool', () => {
  it('shows a tool only when the chain grants it AND the bundle permits listing it', async () => {
    const s = await setup();
    const names = (tools: readonly { name: string }[]) => tools.map((t) => t.name).sort();
    // `delete_everything`: neither granted nor permitted. The robot's grant names only read_orders.
    expect(names(s.gate.listTools(s.subAgents[0]!.chain, NOW))).toEqual([
      'deploy',
      'issue_refund',
      'read_orders',
    ]);
    expect(names(s.gate.listTools(s.robotChain, NOW))).toEqual(['read_orders']);
    // Granted but not permitted: a bundle without list-refunds hides issue_refund.
    s.bundles.bundle = bundleOf(
      POLICIES.replace(
        'action == Action::"listTool", resource == Tool::"orders/issue_refund"',
        'action == Action::"listTool", resource == Tool::"orders/nothing"',
      ),
      2,
    );
    expect(names(s.gate.listTools(s.subAgents[0]!.chain, NOW))).toEqual(['deploy', 'read_orders']);
  });

  it('caches per (chain, bundle, deny-set sequence), and a revocation empties the list at once', async () => {
    const s = await setup();
    const sub = s.subAgents[0]!.chain;
    const first = s.gate.listTools(sub, NOW);
    expect(s.gate.listTools(sub, NOW + 1)).toBe(first);
    revoke(s.denySet, s.supportChain.links[0]!.revocationId, {
      expiresAt: NOW + 3600,
      nowSeconds: NOW,
    });
    expect(s.gate.listTools(sub, NOW + 2)).toEqual([]);
  });

  it('fails closed: no bundle, a bundle source that throws, an expired chain', async () => {
    const s = await setup();
    const sub = s.subAgents[0]!.chain;
    expect(s.gate.listTools(sub, sub.expiresAt)).toEqual([]);
    s.bundles.bundle = undefined;
    expect(s.gate.listTools(sub, NOW)).toEqual([]);
    const throwing = new Gate({
      catalog: s.catalog,
      bundles: {
        current: () => {
          throw new Error('stale');
        },
      },
    });
    expect(throwing.listTools(sub, NOW)).toEqual([]);
  });
});

describe('gate 2: callTool', () => {
  it('allows a call both locks allow, and names the policy and bundle', async () => {
    const s = await setup();
    const d = s.call(undefined, 'issue_refund', { order: 'o-1', amount: 150 });
    expect(d).toMatchObject({
      decision: 'allow',
      lock: null,
      policies: ['small-refunds'],
      bundle: s.bundles.bundle!.hash,
    });
  });

  it('lock 1 (the chain) refuses what the humans did not delegate, whatever the bundle permits', async () => {
    const s = await setup('permit(principal, action, resource);');
    // the sub-agent's link says issue_refund#amount<=400; the bundle permits everything
    const over = s.call(undefined, 'issue_refund', { order: 'o-1', amount: 401 });
    expect(over).toMatchObject({
      decision: 'deny',
      lock: 'chain',
      code: 'ERR_GATE_CHAIN_DENIED',
      bundle: null,
    });
    expect(over.reasons[0]).toContain('<=400');
    // a tool outside the grant
    expect(s.call(undefined, 'delete_everything', {})).toMatchObject({
      decision: 'deny',
      lock: 'chain',
    });
    // the robot's grant names read_orders only
    expect(s.call(s.robotChain, 'issue_refund', { order: 'o', amount: 1 })).toMatchObject({
      lock: 'chain',
    });
  });

  it('lock 2 (the bundle) refuses what the organisation does not permit, whatever the chain allows', async () => {
    const s = await setup();
    // dana's own credential allows any amount; no policy permits a refund above 1000
    const d = s.call(s.danaChain, 'issue_refund', { order: 'o-1', amount: 5000 });
    expect(d).toMatchObject({
      decision: 'deny',
      lock: 'policy',
      code: 'ERR_GATE_POLICY_DENIED',
      policies: [],
    });
    expect(d.reasons).toEqual(['no policy permits this call']);
  });

  it('labels replace a role per environment × region: one policy, the credential says where', async () => {
    const s = await setup();
    const deploy = (environment: string, region: string, chain = s.supportChain) =>
      s.call(chain, 'deploy', { service: 'api', environment, region });
    expect(deploy('dev', 'eu-west-1').decision).toBe('allow');
    expect(deploy('staging', 'eu-west-1').decision).toBe('allow');
    expect(deploy('prod', 'eu-west-1')).toMatchObject({ decision: 'deny', lock: 'policy' });
    expect(deploy('dev', 'us-east-1')).toMatchObject({ decision: 'deny', lock: 'policy' });
    // a credential without label.approved_by=security cannot deploy anywhere
    const w = await gateWorld({
      root: [
        'tools=deploy,read_orders,issue_refund',
        'label.environments=dev',
        'label.regions=eu-west-1',
      ],
    });
    const gate = new Gate({ catalog: w.catalog, bundles: s.bundles, denySet: w.denySet });
    expect(
      gate.decide(
        w.danaChain,
        { tool: 'deploy', args: { service: 'a', environment: 'dev', region: 'eu-west-1' } },
        { nowSeconds: NOW },
      ).decision,
    ).toBe('deny');
    // and a link cannot add one its parent lacks
    expect(w.danaChain.rootConstraints.has('label.approved_by')).toBe(false);
  });

  it('a forbid reads the chain: prod deploys only one delegation step from a human', async () => {
    const s = await setup(POLICIES.replace('label.environments', 'x'));
    const w = await gateWorld({
      root: [
        'tools=deploy,read_orders,issue_refund',
        'human=true',
        'label.environments=prod',
        'label.regions=eu-west-1',
        'label.approved_by=security',
      ],
    });
    const gate = new Gate({ catalog: w.catalog, bundles: s.bundles, denySet: w.denySet });
    const args = { service: 'api', environment: 'prod', region: 'eu-west-1' };
    expect(
      gate.decide(w.supportChain, { tool: 'deploy', args }, { nowSeconds: NOW }).decision,
    ).toBe('allow');
    expect(
      gate.decide(w.subAgents[0]!.chain, { tool: 'deploy', args }, { nowSeconds: NOW }),
    ).toMatchObject({
      decision: 'deny',
      lock: 'policy',
      policies: ['prod-needs-a-human-path'],
    });
  });

  it('checks arguments against the tool input schema after the chain', async () => {
    const s = await setup();
    expect(s.call(undefined, 'issue_refund', { amount: 10 })).toMatchObject({
      lock: 'schema',
      code: 'ERR_GATE_ARGUMENTS_INVALID',
    });
    expect(s.call(undefined, 'issue_refund', { order: 7, amount: 10 })).toMatchObject({
      lock: 'schema',
    });
    expect(
      s.call(undefined, 'issue_refund', { order: 'o', amount: 10, extra: true }),
    ).toMatchObject({ lock: 'schema' });
    expect(s.call(undefined, 'read_orders', 'not an object')).toMatchObject({ lock: 'schema' });
    expect(s.call(undefined, 'read_orders', ['o'])).toMatchObject({ lock: 'schema' });
    // a wrong type the chain reads is the chain's refusal first
    expect(s.call(undefined, 'issue_refund', { order: 'o', amount: '10x' })).toMatchObject({
      lock: 'chain',
    });
  });

  it('an unknown tool, or an ambiguous name without its server, denies', async () => {
    const s = await setup('permit(principal, action, resource);');
    const w = await gateWorld({ root: ['tools=*'] });
    const catalog = new ToolCatalog([...CATALOG, { ...CATALOG[1]!, server: 'mirror' }]);
    s.bundles.bundle = { ...s.bundles.bundle!, catalog };
    const gate = new Gate({ catalog, bundles: s.bundles, denySet: w.denySet });
    const decide = (tool: string, server?: string) =>
      gate.decide(
        w.danaChain,
        { tool, args: { order: 'o' }, ...(server === undefined ? {} : { server }) },
        { nowSeconds: NOW },
      );
    expect(decide('nope')).toMatchObject({ lock: 'schema', code: 'ERR_GATE_TOOL_UNKNOWN' });
    expect(decide('read_orders')).toMatchObject({ lock: 'schema', code: 'ERR_GATE_TOOL_UNKNOWN' });
    expect(decide('read_orders', 'mirror').decision).toBe('allow');
  });

  it('bounds huge and deep arguments before anything reads them', async () => {
    const s = await setup();
    let deep: unknown = 'x';
    for (let i = 0; i < 10_000; i++) deep = { d: deep };
    expect(s.call(undefined, 'read_orders', { order: 'o', deep })).toMatchObject({
      lock: 'schema',
      code: 'ERR_GATE_ARGUMENTS_TOO_LARGE',
    });
    expect(s.call(undefined, 'read_orders', { order: 'x'.repeat(20_000) })).toMatchObject({
      code: 'ERR_GATE_ARGUMENTS_TOO_LARGE',
    });
    const wide = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`k${i}`, i]));
    expect(s.call(undefined, 'read_orders', wide)).toMatchObject({
      code: 'ERR_GATE_ARGUMENTS_TOO_LARGE',
    });
    expect(s.call(undefined, 'read_orders', { order: 'o', n: Number.NaN })).toMatchObject({
      code: 'ERR_GATE_ARGUMENTS_INVALID',
    });
    expect(s.call(undefined, 'read_orders', { order: 'o', d: new Date(0) })).toMatchObject({
      code: 'ERR_GATE_ARGUMENTS_INVALID',
    });
    expect(s.call(undefined, 'read_orders', { order: 'o', f: () => 1 })).toMatchObject({
      code: 'ERR_GATE_ARGUMENTS_INVALID',
    });
  });

  it('a policy that errors at run time denies (Cedar would skip it and allow)', async () => {
    const s = await setup();
    // compiled without a schema: `principal.nonexistent` is an evaluation error on every call
    s.bundles.bundle = bundleOf(
      'permit(principal, action, resource);\n@id("broken") forbid(principal, action, resource) when { principal.nonexistent == 1 };',
      2,
      null,
    );
    const d = s.call(undefined, 'read_orders', { order: 'o' });
    expect(d).toMatchObject({
      decision: 'deny',
      lock: 'policy',
      code: 'ERR_GATE_POLICY_ERROR',
      policies: ['broken'],
    });
  });

  it('an arithmetic overflow in a policy denies', async () => {
    const s = await setup(
      '@id("overflow") permit(principal, action == Action::"callTool", resource) when { context.args has amount && context.args.amount * 1000000000000 > 0 };',
    );
    expect(s.call(s.danaChain, 'issue_refund', { order: 'o', amount: 9_000_000 })).toMatchObject({
      decision: 'deny',
      lock: 'policy',
      code: 'ERR_GATE_POLICY_ERROR',
    });
    expect(s.call(s.danaChain, 'issue_refund', { order: 'o', amount: 9 }).decision).toBe('allow');
  });

  it('no bundle, or a source that fails, denies naming the bundle lock', async () => {
    const s = await setup();
    s.bundles.bundle = undefined;
    expect(s.call(undefined, 'read_orders', { order: 'o' })).toMatchObject({
      decision: 'deny',
      lock: 'bundle',
      code: 'ERR_GATE_NO_BUNDLE',
    });
    const gate = new Gate({
      catalog: s.catalog,
      bundles: {
        current: () => {
          throw new Error('boom');
        },
      },
      denySet: s.denySet,
    });
    expect(
      gate.decide(
        s.supportChain,
        { tool: 'read_orders', args: { order: 'o' } },
        { nowSeconds: NOW },
      ),
    ).toMatchObject({ lock: 'bundle' });
  });

  it('a revocation denies the very next call, down the whole sub-tree', async () => {
    const s = await setup();
    const args = { order: 'o-1', amount: 10 };
    expect(s.call(undefined, 'issue_refund', args).decision).toBe('allow');
    revoke(s.denySet, s.supportChain.links[0]!.revocationId, {
      expiresAt: NOW + 3600,
      nowSeconds: NOW,
    });
    const next = s.call(undefined, 'issue_refund', args);
    expect(next).toMatchObject({ decision: 'deny', lock: 'chain' });
    expect(next.reasons[0]).toContain('ERR_REVOKED');
    expect(s.call(s.danaChain, 'issue_refund', args).decision).toBe('allow');
  });

  it('turns an allow determined by an @approval policy into approval_required', async () => {
    const s = await setup();
    const d = s.call(undefined, 'issue_refund', { order: 'o', amount: 300 });
    expect(d).toMatchObject({
      decision: 'approval_required',
      lock: 'approval',
      reasons: ['refunds above 200 need a person'],
      approval: { reason: 'refunds above 200 need a person', policies: ['large-refunds'] },
    });
    // with the approval granted (enforceCall checks it is for this very call) it allows
    const granted = s.gate.decide(
      s.subAgents[0]!.chain,
      { tool: 'issue_refund', args: { order: 'o', amount: 300 } },
      {
        nowSeconds: NOW,
        approval: { granted: true, approvers: ['Ihuman'] },
      },
    );
    expect(granted.decision).toBe('allow');
  });

  it('property: no call is allowed unless both the chain and the bundle allow it', async () => {
    const s = await setup();
    const chains = [s.danaChain, s.supportChain, s.subAgents[0]!.chain, s.robotChain];
    const bundle = s.bundles.bundle!;
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: chains.length - 1 }),
        fc.constantFrom('issue_refund', 'read_orders', 'deploy', 'delete_everything', 'unknown'),
        fc.record(
          {
            order: fc.oneof(fc.string({ maxLength: 6 }), fc.integer()),
            amount: fc.oneof(fc.integer({ min: -10, max: 2000 }), fc.string({ maxLength: 4 })),
            service: fc.constant('api'),
            environment: fc.constantFrom('dev', 'staging', 'prod', 'qa'),
            region: fc.constantFrom('eu-west-1', 'us-east-1'),
          },
          { requiredKeys: [] },
        ),
        (index, tool, args) => {
          const chain = chains[index]!;
          const d = s.gate.decide(chain, { tool, args }, { nowSeconds: NOW });
          if (d.decision !== 'allow') return;
          const lock1 = authorize(
            chain,
            { action: tool, args: chainArguments(args), nowSeconds: NOW },
            { denySet: s.denySet },
          );
          expect(lock1.decision).toBe('allow');
          const catalogTool = s.catalog.get(tool);
          expect(catalogTool).toBeDefined();
          expect(catalogTool!.validate(args)).toBe(true);
          expect(d.bundle).toBe(bundle.hash);
          expect(d.policies.length).toBeGreaterThan(0);
        },
      ),
      { numRuns: 400, seed: 10 },
    );
  });
});
