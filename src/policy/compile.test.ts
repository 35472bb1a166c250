import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { cedarOutcome, mandateOutcome, type Case } from '../../test/helpers/policy-oracle.js';
import { compilePolicySet, EntityStore, parseCedarEntities, parseCedarRequest } from './index.js';

const ENTITIES = [
  {
    uid: { type: 'Agent', id: 'a' },
    attrs: {
      level: 3,
      name: 'refund-bot',
      limits: { refund: 100, region: 'eu' },
      environments: ['prod', 'staging'],
      numbers: [1, 2, 3],
      owner: { __entity: { type: 'Human', id: 'h' } },
      empty: [],
    },
    parents: [{ type: 'Team', id: 'support' }],
    tags: { tier: 'gold' },
  },
  { uid: { type: 'Team', id: 'support' }, attrs: {}, parents: [{ type: 'Org', id: 'acme' }] },
  { uid: { type: 'Human', id: 'h' }, attrs: { name: 'Hana' }, parents: [] },
  {
    uid: { type: 'Tool', id: 't' },
    attrs: { server: { __entity: { type: 'Server', id: 's' } }, risk: 2, path: '/srv/data/x.txt' },
    parents: [{ type: 'Server', id: 's' }],
  },
  { uid: { type: 'Action', id: 'callTool' }, attrs: {}, parents: [{ type: 'Action', id: 'all' }] },
];

const REQUEST = {
  context: {
    amount: 40,
    args: { path: '/srv/data/x.txt', dry: false },
    approved_by: ['h'],
    big: 9007199254740991,
  },
};

/** Conditions whose outcome (allow, deny, or error) must be Cedar's, construct by construct. */
const CONDITIONS: Record<string, readonly string[]> = {
  literals: ['true', 'false', '1 == 1', '"a" == "a"', 'Agent::"a" == principal', '1 == "1"'],
  equality: [
    '[1, 2] == [2, 1, 1]',
    '{a: 1, b: [2]} == {b: [2], a: 1}',
    '{a: 1} == {a: 1, b: 2}',
    'principal != resource',
    'principal.owner == Human::"h"',
    'context.args == {path: "/srv/data/x.txt", dry: false}',
    '[principal] == [Agent::"a"]',
  ],
  comparisons: [
    'principal.level > 2',
    'principal.level >= 3 && principal.level <= 3 && !(principal.level < 3)',
    'context.amount < principal.limits.refund',
    '"a" < "b"',
    'principal < 1',
    'true <= false',
  ],
  arithmetic: [
    'context.amount + 60 == principal.limits.refund',
    '2 * 3 - 7 == -1',
    '-principal.level == -3',
    'context.big + 0 == context.big',
    '-context.big + context.big == 0',
    '9223372036854775807 + 1 > 0',
    '9223372036854775807 * 2 > 0',
    '-(-9223372036854775807 - 1) > 0',
    '"a" + 1 == 1',
    '1 - true == 0',
    '-"x" == 1',
  ],
  logic: [
    'true && false',
    'false && 1',
    'true && 1',
    '1 && true',
    'true || 1',
    'false || 1',
    'false || principal.missing',
    'true || principal.missing',
    '!true',
    '!1',
    '!principal.missing',
  ],
  conditionals: [
    'if principal.level > 2 then true else principal.missing',
    'if principal.level > 5 then true else false',
    'if 1 then true else false',
    'if true then 1 else true',
    '(if true then 1 else "x") == 1',
  ],
  attributes: [
    'principal has level',
    'principal has missing',
    'principal.limits has refund',
    'principal has limits.refund',
    'principal has limits.nope.deeper',
    'principal has level.deeper',
    'Agent::"ghost" has level',
    'Agent::"ghost".level == 1',
    'principal.missing == 1',
    'principal.limits.nope == 1',
    '1 has a',
    '"s".a == 1',
    'principal.owner.name == "Hana"',
    'resource.server has name',
    'resource.server.name == "x"',
    'context has args && context.args has path',
    '{a: 1}.a == 1',
    '{a: 1}.b == 1',
    '{a: 1} has b',
  ],
  hierarchy: [
    'principal in Team::"support"',
    'principal in Org::"acme"',
    'principal in Org::"other"',
    'principal in principal',
    'principal in [Org::"acme", Team::"x"]',
    'principal in [Org::"x", 1]',
    'principal in [1, Org::"acme"]',
    'principal in []',
    'principal in 1',
    '1 in principal',
    'Agent::"ghost" in Agent::"ghost"',
    'Agent::"ghost" in Team::"support"',
    'resource in resource.server',
    'principal.owner in principal',
    'principal in principal.owner',
    'principal in [principal.owner, Org::"acme"]',
    'action in Action::"all"',
    'Org::"acme" in Org::"acme"',
  ],
  is: [
    'principal is Agent',
    'principal is Human',
    'resource is Tool in Server::"s"',
    'resource is Tool in Server::"other"',
    'principal is Human in 1',
    'principal is Agent in 1',
    'principal is Agent in [Org::"acme"]',
    '1 is Agent',
    'principal.owner is Human',
  ],
  like: [
    'principal.name like "refund-*"',
    'principal.name like "*bot"',
    'principal.name like "*und*b*"',
    'principal.name like "refund-bot"',
    'principal.name like "*"',
    'principal.name like "r*z"',
    'principal.name like "*d*d*"',
    'principal.name like "*o*o*o*"',
    '"a*b" like "a\\*b"',
    '"axb" like "a\\*b"',
    '"" like ""',
    '"" like "**"',
    '"abc" like "a**c"',
    '"aXbXc" like "a*c"',
    'context.args.path like "/srv/data/*"',
    '1 like "1"',
    '"héllo ✓ wörld" like "h*✓*d"',
  ],
  sets: [
    'principal.environments.contains("prod")',
    'principal.environments.contains(1)',
    '["prod", "dev"].contains(principal.environments)',
    '[1, "a", true].contains(true)',
    '[[1], {a: 2}].contains({a: 2})',
    '[principal.owner].contains(Human::"h")',
    'principal.numbers.containsAll([1, 3])',
    'principal.numbers.containsAll([1, 4])',
    'principal.numbers.containsAny([4, 3])',
    'principal.numbers.containsAny([])',
    '[].containsAll([])',
    'principal.numbers.containsAll(1)',
    'principal.level.contains(1)',
    'principal.empty.isEmpty()',
    'principal.numbers.isEmpty()',
    'principal.level.isEmpty()',
    'context.approved_by.contains("h")',
  ],
  records: [
    '{a: principal.level}.a == 3',
    '{a: principal.missing}.a == 3',
    'context.args.dry == false',
  ],
  tags: [
    'principal.hasTag("tier")',
    'principal.hasTag("nope")',
    'principal.getTag("tier") == "gold"',
    'principal.getTag("nope") == "gold"',
    'Agent::"ghost".hasTag("tier")',
    'Agent::"ghost".getTag("tier") == 1',
    'principal.hasTag(1)',
    '1.hasTag("x")',
    'resource.hasTag("tier")',
  ],
};

function expectSameAsCedar(c: Case): void {
  const cedar = cedarOutcome(c);
  expect(cedar, 'cedar refused the case').toBeDefined();
  const mandate = mandateOutcome(c);
  // Errors are per policy and happen in the same policies; with any error Mandate denies.
  expect(mandate.errors).toEqual(cedar!.errors);
  if (cedar!.errors.length > 0) {
    expect(mandate.decision).toBe('deny');
    expect(mandate.policies).toEqual(
      cedar!.decision === 'deny' ? cedar!.policies : mandate.policies,
    );
  } else {
    expect(mandate).toEqual(cedar);
  }
}

describe('compiled conditions agree with cedar-wasm', () => {
  for (const [construct, conditions] of Object.entries(CONDITIONS)) {
    describe(construct, () => {
      for (const condition of conditions) {
        it(`when { ${condition} }`, () => {
          for (const policies of [
            `permit(principal, action, resource) when { ${condition} };`,
            `permit(principal, action, resource) unless { ${condition} };`,
            `permit(principal, action, resource); forbid(principal, action, resource) when { ${condition} };`,
          ])
            expectSameAsCedar({ policies, entities: ENTITIES, request: REQUEST });
        });
      }
    });
  }
});

describe('policy values never reach generated source as code', () => {
  // Strings that would break out of a string literal or a template if spliced into source.
  const nasty = [
    '"); throw 1; ("',
    "'); throw 1; ('",
    '`${process.exit(1)}`',
    '\\n}}\\u2028',
    '*/ throw 1; /*',
  ];
  for (const text of nasty)
    it(JSON.stringify(text), () => {
      const quoted = JSON.stringify(text);
      const entities = [
        {
          uid: { type: 'Agent', id: text },
          attrs: { [text]: text },
          parents: [{ type: 'Team', id: text }],
        },
      ];
      const policies = [
        `permit(principal == Agent::${quoted}, action, resource) when { principal[${quoted}] == ${quoted} };`,
        `permit(principal in Team::${quoted}, action, resource) when { principal has ${quoted} && {${quoted}: 1} has ${quoted} };`,
        `permit(principal, action, resource) when { principal[${quoted}] like ${JSON.stringify(text.replaceAll('*', '\\*'))} };`,
        `forbid(principal, action, resource) when { [${quoted}].contains(principal[${quoted}]) && context.x == ${quoted} };`,
      ].join('\n');
      expectSameAsCedar({
        policies,
        entities,
        request: { principal: { type: 'Agent', id: text }, context: { x: 'y' } },
      });
    });
});

describe('the Long range divergence only denies', () => {
  // Mandate's Longs are JS numbers: a result or literal beyond ±(2^53 − 1) is an evaluation error
  // (deny) where Cedar, with i64, still computes. docs/spec/policy.md §1.
  for (const condition of [
    'context.big + 1 > 0',
    'context.big * 2 > 0',
    '-context.big - 1 < 0',
    '9007199254740992 > 0',
    '-9223372036854775808 < 0',
  ])
    it(`when { ${condition} }`, () => {
      const c = {
        policies: `permit(principal, action, resource) when { ${condition} };`,
        entities: ENTITIES,
        request: REQUEST,
      };
      expect(cedarOutcome(c)).toEqual({ decision: 'allow', policies: ['policy0'], errors: [] });
      expect(mandateOutcome(c)).toEqual({ decision: 'deny', policies: [], errors: ['policy0'] });
    });
});

describe('scopes agree with cedar-wasm', () => {
  const scopes = [
    'principal == Agent::"a", action, resource',
    'principal == Agent::"b", action, resource',
    'principal in Org::"acme", action, resource',
    'principal in Org::"x", action, resource',
    'principal is Agent, action, resource',
    'principal is Agent in Team::"support", action, resource',
    'principal is Human in Team::"support", action, resource',
    'principal, action == Action::"callTool", resource',
    'principal, action == Action::"listTool", resource',
    'principal, action in Action::"all", resource',
    'principal, action in [Action::"listTool", Action::"all"], resource',
    'principal, action in [Action::"listTool", Action::"callTool"], resource',
    'principal, action in [Action::"listTool"], resource',
    'principal, action, resource == Tool::"t"',
    'principal, action, resource == Tool::"u"',
    'principal, action, resource in Server::"s"',
    'principal, action, resource in Tool::"t"',
    'principal, action, resource in Server::"x"',
    'principal, action, resource is Tool',
    'principal, action, resource is Server',
    'principal, action, resource is Tool in Server::"s"',
    'principal, action, resource is Server in Server::"s"',
  ];
  for (const scope of scopes)
    it(`(${scope})`, () => {
      expectSameAsCedar({
        policies: `permit(${scope}); permit(${scope}) when { principal.missing }; forbid(${scope}) when { context.amount > 100 };`,
        entities: ENTITIES,
        request: REQUEST,
      });
    });

  it('conditions after a false one are not evaluated; forbid wins; errors name policies', () => {
    const policies = [
      'permit(principal, action, resource) when { false } when { principal.missing };',
      'permit(principal, action, resource) unless { true } when { 1 };',
      'permit(principal, action, resource) when { true } unless { false };',
      'forbid(principal, action, resource) when { context.amount == 40 };',
      'forbid(principal, action, resource) when { principal.missing };',
      'permit(principal, action, resource) when { "x" };',
      'permit(principal, action, resource) unless { "x" };',
    ].join('\n');
    expectSameAsCedar({ policies, entities: ENTITIES, request: REQUEST });
  });
});

describe('decisions', () => {
  const entities = parseCedarEntities(ENTITIES);
  const request = parseCedarRequest({
    principal: { type: 'Agent', id: 'a' },
    action: { type: 'Action', id: 'callTool' },
    resource: { type: 'Tool', id: 't' },
    context: { amount: 40 },
  });

  it('denies by default and names nothing', () => {
    const set = compilePolicySet({
      policies: 'permit(principal, action, resource) when { false };',
    });
    expect(set.evaluate(request, entities)).toEqual({ decision: 'deny', policies: [], errors: [] });
    expect(compilePolicySet({ policies: '' }).evaluate(request, entities).decision).toBe('deny');
  });

  it('names the satisfied permits in source order, then forbids over permits', () => {
    const permits = compilePolicySet({
      policies:
        'permit(principal, action, resource is Tool); permit(principal, action == Action::"callTool", resource); permit(principal, action, resource);',
    });
    expect(permits.evaluate(request, entities)).toEqual({
      decision: 'allow',
      policies: ['policy0', 'policy1', 'policy2'],
      errors: [],
    });
    const forbid = compilePolicySet({
      policies:
        'permit(principal, action, resource); forbid(principal, action, resource) when { context.amount > 10 };',
    });
    expect(forbid.evaluate(request, entities)).toEqual({
      decision: 'deny',
      policies: ['policy1'],
      errors: [],
    });
  });

  it('denies on any evaluation error, where Cedar would skip the policy and allow', () => {
    const set = compilePolicySet({
      policies:
        'permit(principal, action, resource); permit(principal, action, resource) when { principal.missing };',
    });
    const decision = set.evaluate(request, entities);
    expect(decision.decision).toBe('deny');
    expect(decision.errors).toEqual([
      { policy: 'policy1', message: '`Agent::"a"` does not have the attribute `missing`' },
    ]);
    expect(
      cedarOutcome({ policies: set.policies.map((p) => p.text).join('\n'), entities: ENTITIES })
        ?.decision,
    ).toBe('allow');
  });

  it('keeps annotations and Cedar ids', () => {
    const set = compilePolicySet({
      policies:
        '@id("refunds") @approval("over 50") permit(principal, action, resource);\n@flag forbid(principal, action, resource) when { false };',
    });
    expect(set.policies.map((p) => [p.id, p.effect])).toEqual([
      ['policy0', 'permit'],
      ['policy1', 'forbid'],
    ]);
    expect(set.annotations('policy0')).toEqual(
      new Map([
        ['id', 'refunds'],
        ['approval', 'over 50'],
      ]),
    );
    expect(set.annotations('policy1')).toEqual(new Map([['flag', '']]));
    expect(set.annotations('policy2')).toBeUndefined();
  });

  it('follows a changed action hierarchy (the per-action index is keyed by its ancestors)', () => {
    const set = compilePolicySet({
      policies: 'permit(principal, action in Action::"writes", resource);',
    });
    const before = EntityStore.fromEntities([]);
    expect(set.evaluate(request, before).decision).toBe('deny');
    const after = EntityStore.fromEntities([
      {
        uid: { type: 'Action', id: 'callTool' },
        attrs: new Map(),
        parents: [{ type: 'Action', id: 'writes' }],
      },
    ]);
    expect(set.evaluate(request, after).decision).toBe('allow');
    expect(set.evaluate(request, before).decision).toBe('deny');
  });

  it("uses Cedar's ids past policy9 (cedar-wasm lists parts ordered by id as text)", () => {
    const policies = Array.from(
      { length: 25 },
      (_, i) => `permit(principal, action, resource) when { context.amount == ${i} };`,
    ).join('\n');
    for (const amount of [1, 2, 10, 12, 24])
      expectSameAsCedar({ policies, entities: ENTITIES, request: { context: { amount } } });
  });

  it('evaluates only the policies the action and resource index selects', () => {
    // 300 policies on other tools and actions, whose conditions would error if evaluated.
    const others = Array.from(
      { length: 100 },
      (_, i) =>
        `permit(principal, action == Action::"callTool", resource == Tool::"other${i}") when { principal.missing };\n` +
        `permit(principal, action == Action::"listTool", resource) when { principal.missing };\n` +
        `permit(principal, action, resource in Server::"x${i}") when { principal.missing };`,
    ).join('\n');
    const set = compilePolicySet({
      policies: `${others}\npermit(principal, action == Action::"callTool", resource == Tool::"t");`,
    });
    expect(set.evaluate(request, entities)).toEqual({
      decision: 'allow',
      policies: ['policy300'],
      errors: [],
    });
  });

  it('takes the action hierarchy from the schema when compiled with one', () => {
    const schema = `
      entity Agent; entity Tool;
      action all;
      action callTool in [all] appliesTo { principal: Agent, resource: Tool };`;
    const policies = 'permit(principal, action in Action::"all", resource);';
    const set = compilePolicySet({ policies, schema });
    const noContext = { ...request, context: new Map() };
    expect(set.evaluate(noContext, EntityStore.fromEntities([])).decision).toBe('allow');
    // The request's context does not conform (callTool declares none): Cedar refuses, we deny.
    expect(set.evaluate(request, EntityStore.fromEntities([])).errors).toHaveLength(1);
    expectSameAsCedar({ policies, schema, entities: [] });
  });
});

describe('properties against cedar-wasm', () => {
  const chars = fc.constantFrom('a', 'b', '*', '\\*', 'é');
  const pattern = fc.array(chars, { maxLength: 7 }).map((parts) => parts.join(''));
  const text = fc
    .array(fc.constantFrom('a', 'b', '*', 'é'), { maxLength: 8 })
    .map((p) => p.join(''));

  it('like: Cedar and Mandate match the same texts', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(text, pattern), { minLength: 30, maxLength: 30 }), (pairs) => {
        const policies = pairs
          .map(
            ([t, p]) =>
              `permit(principal, action, resource) when { ${JSON.stringify(t)} like "${p}" };`,
          )
          .join('\n');
        const c = { policies };
        expect(mandateOutcome(c)).toEqual(cedarOutcome(c));
      }),
      { numRuns: 20 },
    );
  });

  it('in: transitive ancestors over random hierarchies agree', () => {
    // A random DAG over 8 entities (edges only from lower to higher index: no cycles).
    const edges = fc.array(fc.tuple(fc.nat(7), fc.nat(7)), { maxLength: 14 });
    fc.assert(
      fc.property(edges, (pairs) => {
        const parents = new Map<number, Set<number>>();
        for (const [a, b] of pairs) if (a < b) parents.set(a, (parents.get(a) ?? new Set()).add(b));
        const entities = Array.from({ length: 8 }, (_, i) => ({
          uid: { type: 'G', id: String(i) },
          attrs: {},
          parents: [...(parents.get(i) ?? [])].map((p) => ({ type: 'G', id: String(p) })),
        }));
        const policies = Array.from(
          { length: 8 },
          (_, i) =>
            `permit(principal, action, resource) when { G::"0" in G::"${i}" && G::"${i}" in [G::"7", G::"${(i + 3) % 8}"] };`,
        ).join('\n');
        const c = { policies, entities };
        expect(mandateOutcome(c)).toEqual(cedarOutcome(c));
      }),
      { numRuns: 40 },
    );
  });
});
