import { describe, expect, it } from 'vitest';
import { cedarOutcome, mandateOutcome, type Case } from '../../test/helpers/policy-oracle.js';
import { compilePolicySet, EntityStore, parseCedarRequest } from './index.js';

const SCHEMA = `
entity Org;
entity Team in [Org];
entity Human;
entity Agent in [Team] {
  level: Long,
  owner?: Human,
  limit?: decimal,
  envs?: Set<String>,
  rec?: { a: Long, b?: String },
} tags String;
entity Tool { risk: Long };
entity Color enum ["red", "blue"];
type Ctx = { amount: Long, from?: ipaddr, who?: Human };
action all;
action callTool in [all] appliesTo { principal: [Agent, Color], resource: [Tool], context: Ctx };
action listTool in [all] appliesTo { principal: [Agent], resource: [Tool] };
action noApplies;
`;

const POLICIES = `permit(principal, action in Action::"all", resource);
permit(principal, action, resource) when { context has who && context.who == Human::"h" };
permit(principal, action, resource) when { principal has limit && principal.limit.greaterThan(decimal("1.0")) };
forbid(principal, action, resource) when { context has from && context.from.isLoopback() };`;

const agent = (attrs: Record<string, unknown>, parents: unknown[] = [], extra = {}): unknown => ({
  uid: { type: 'Agent', id: 'a' },
  attrs,
  parents,
  ...extra,
});

/** With a schema: where Cedar refuses the input, Mandate denies; elsewhere they agree. */
function expectSameAsCedar(c: Case): void {
  const cedar = cedarOutcome(c);
  const mandate = mandateOutcome(c);
  if (cedar === undefined) {
    expect(mandate.decision).toBe('deny');
    expect(mandate.errors).toEqual(['']);
  } else expect(mandate).toEqual(cedar);
}

const request = (context: unknown, overrides: Record<string, unknown> = {}) => ({
  principal: { type: 'Agent', id: 'a' },
  action: { type: 'Action', id: 'callTool' },
  resource: { type: 'Tool', id: 't' },
  context,
  ...overrides,
});

describe('with a schema, input that does not conform is refused (deny), as Cedar refuses it', () => {
  const cases: [string, unknown[], Record<string, unknown>][] = [
    ['conforming', [agent({ level: 1 })], request({ amount: 1 })],
    ['no entities', [], request({ amount: 1 })],
    ['missing required attribute', [agent({})], request({ amount: 1 })],
    ['undeclared attribute', [agent({ level: 1, zzz: 1 })], request({ amount: 1 })],
    ['wrong attribute type', [agent({ level: '1' })], request({ amount: 1 })],
    [
      'implicit entity',
      [agent({ level: 1, owner: { type: 'Human', id: 'h' } })],
      request({ amount: 1 }),
    ],
    [
      'wrong entity type',
      [agent({ level: 1, owner: { __entity: { type: 'Team', id: 'h' } } })],
      request({ amount: 1 }),
    ],
    ['decimal as a string', [agent({ level: 1, limit: '1.5' })], request({ amount: 1 })],
    [
      'decimal as fn/arg',
      [agent({ level: 1, limit: { fn: 'decimal', arg: '1.5' } })],
      request({ amount: 1 }),
    ],
    ['bad decimal string', [agent({ level: 1, limit: '1.55555' })], request({ amount: 1 })],
    ['record extra', [agent({ level: 1, rec: { a: 1, c: 2 } })], request({ amount: 1 })],
    ['record missing', [agent({ level: 1, rec: { b: 'x' } })], request({ amount: 1 })],
    ['set element type', [agent({ level: 1, envs: [1] })], request({ amount: 1 })],
    [
      'ancestor type not allowed',
      [agent({ level: 1 }, [{ type: 'Human', id: 'h' }])],
      request({ amount: 1 }),
    ],
    [
      'ancestor type allowed transitively',
      [agent({ level: 1 }, [{ type: 'Org', id: 'o' }])],
      request({ amount: 1 }),
    ],
    [
      'undeclared entity type',
      [agent({ level: 1 }), { uid: { type: 'Ghost', id: 'g' }, attrs: {}, parents: [] }],
      request({ amount: 1 }),
    ],
    ['tags conform', [agent({ level: 1 }, [], { tags: { x: 'y' } })], request({ amount: 1 })],
    ['tag type wrong', [agent({ level: 1 }, [], { tags: { x: 1 } })], request({ amount: 1 })],
    [
      'tags where none declared',
      [{ uid: { type: 'Tool', id: 't' }, attrs: { risk: 1 }, parents: [], tags: { x: 'y' } }],
      request({ amount: 1 }),
    ],
    [
      'enum id',
      [{ uid: { type: 'Color', id: 'red' }, attrs: {}, parents: [] }],
      request({ amount: 1 }),
    ],
    [
      'enum id undeclared',
      [{ uid: { type: 'Color', id: 'green' }, attrs: {}, parents: [] }],
      request({ amount: 1 }),
    ],
    [
      'action entity as declared',
      [
        {
          uid: { type: 'Action', id: 'callTool' },
          attrs: {},
          parents: [{ type: 'Action', id: 'all' }],
        },
      ],
      request({ amount: 1 }),
    ],
    [
      'action entity differs',
      [{ uid: { type: 'Action', id: 'callTool' }, attrs: {}, parents: [] }],
      request({ amount: 1 }),
    ],
    [
      'action entity undeclared',
      [{ uid: { type: 'Action', id: 'zzz' }, attrs: {}, parents: [] }],
      request({ amount: 1 }),
    ],
    ['context missing attribute', [], request({})],
    ['context extra attribute', [], request({ amount: 1, x: 2 })],
    ['context wrong type', [], request({ amount: '1' })],
    ['context ip as a string', [], request({ amount: 1, from: '127.0.0.1' })],
    [
      'context ip escaped',
      [],
      request({ amount: 1, from: { __extn: { fn: 'ip', arg: '10.0.0.1' } } }),
    ],
    ['context implicit entity', [], request({ amount: 1, who: { type: 'Human', id: 'h' } })],
    [
      'principal type not applicable',
      [],
      request({ amount: 1 }, { principal: { type: 'Human', id: 'h' } }),
    ],
    [
      'principal type undeclared',
      [],
      request({ amount: 1 }, { principal: { type: 'Ghost', id: 'h' } }),
    ],
    ['enum principal', [], request({ amount: 1 }, { principal: { type: 'Color', id: 'red' } })],
    [
      'enum principal undeclared id',
      [],
      request({ amount: 1 }, { principal: { type: 'Color', id: 'green' } }),
    ],
    [
      'resource type not applicable',
      [],
      request({ amount: 1 }, { resource: { type: 'Agent', id: 'x' } }),
    ],
    ['action undeclared', [], request({ amount: 1 }, { action: { type: 'Action', id: 'zzz' } })],
    ['action without appliesTo', [], request({}, { action: { type: 'Action', id: 'noApplies' } })],
    ['action group as the action', [], request({}, { action: { type: 'Action', id: 'all' } })],
    ['action without context', [], request({}, { action: { type: 'Action', id: 'listTool' } })],
    [
      'action without context, given one',
      [],
      request({ a: 1 }, { action: { type: 'Action', id: 'listTool' } }),
    ],
  ];
  for (const [name, entities, req] of cases)
    it(name, () => {
      expectSameAsCedar({ policies: POLICIES, schema: SCHEMA, entities, request: req });
    });

  it('checks entities an EntityLookup other than an EntityStore returns, when looked up', () => {
    const set = compilePolicySet({
      policies:
        'permit(principal, action == Action::"listTool", resource) when { principal.level > 0 };',
      schema: SCHEMA,
    });
    const r = parseCedarRequest(request({}, { action: { type: 'Action', id: 'listTool' } }));
    const store = EntityStore.fromEntities([
      { uid: { type: 'Agent', id: 'a' }, attrs: new Map([['level', 1]]), parents: [] },
    ]);
    const bad = EntityStore.fromEntities([
      { uid: { type: 'Agent', id: 'a' }, attrs: new Map([['level', 'x']]), parents: [] },
    ]);
    const wrap = (s: EntityStore) => ({ get: (uid: { type: string; id: string }) => s.get(uid) });
    expect(set.evaluate(r, wrap(store)).decision).toBe('allow');
    const denied = set.evaluate(r, wrap(bad));
    expect(denied.decision).toBe('deny');
    expect(denied.errors.map((e) => e.policy)).toEqual(['']);
  });
});
