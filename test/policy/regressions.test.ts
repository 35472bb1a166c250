// Fixed cases of the differential test: every shrunk counterexample the generator found (paste
// what `npm run fuzz:policy` prints into REGRESSIONS), plus hand-written cases at the edges of the
// comparison rule. Each runs against both engines: Cedar must still answer as recorded (a
// cedar-wasm upgrade that changes semantics shows here), the pair must satisfy the rule, and
// Mandate must answer the expected decision.
import { describe, expect, it } from 'vitest';
import { CedarSession, type CedarAnswer } from './cedar-oracle.js';
import {
  MandateSession,
  isSafeIntegerRangeError,
  judge,
  regressionCase,
  type MandateAnswer,
  type RegressionCase,
} from './differential.js';
import { schemaText } from './generator.js';

const agent = (id: string) => ({ type: 'Agent', id });
const request = (context: RegressionCase['request']['context'] = {}) => ({
  principal: agent('a0'),
  action: { type: 'Action', id: 'callTool' },
  resource: { type: 'Tool', id: 't0' },
  context,
});

const REGRESSIONS: readonly RegressionCase[] = [
  {
    // Found by fuzz:policy (seed 2): with a schema, Cedar refuses a context that lacks a
    // required attribute; the engine evaluated it and allowed (notes/policy-bugs.md #1).
    name: 'seed 2 #0: cedar refused the input but mandate allowed',
    schema: schemaText(new Set(), false),
    policies: [
      'permit (principal in Agent::"a0", action == Action::"listTool", resource == Tool::"t0");',
    ],
    entities: [],
    request: {
      principal: agent('a0'),
      action: { type: 'Action', id: 'listTool' },
      resource: { type: 'Tool', id: 't0' },
      context: { count: 0, approved: false, envs: [], who: false },
    },
    cedar: 'failure',
    expected: 'deny',
  },
  {
    // Found by fuzz:policy (seed 21, through a plain EntityLookup, where the engine checks only
    // the entities it looks up: accepted there); through the EntityStore the engine denies.
    name: 'seed 21: an entity of a type the schema does not declare',
    schema: schemaText(new Set(['Secret.owners']), true),
    policies: ['permit (principal, action, resource) when { principal.owner.active };'],
    entities: [
      {
        uid: { type: 'Human', id: 'ü' },
        attrs: {
          level: 0,
          name: '',
          active: true,
          tags: [],
          owner: { type: 'Human', id: 'ü' },
          limits: { max: 0, env: '' },
          amount: '0.0',
          addr: '10.0.0.1',
        },
        parents: [],
      },
      { uid: { type: 'Stranger', id: 'x' }, attrs: {}, parents: [] },
    ],
    request: {
      principal: { type: 'Human', id: 'ü' },
      action: { type: 'Action', id: 'listTool' },
      resource: { type: 'Tool', id: 't0' },
      context: {
        args: { amount: 0, path: '', env: '' },
        count: 9007199254740991,
        scores: [],
        approved: false,
        envs: [],
        who: { type: 'Human', id: 'h0' },
        price: '0.0',
        src: '10.0.0.1',
      },
    },
    cedar: 'failure',
    expected: 'deny',
  },
  {
    name: 'ids past policy9: cedar-wasm lists parts by id text (policy10 before policy2)',
    policies: Array.from(
      { length: 12 },
      (_, i) => `permit (principal == Agent::"a${i}", action, resource);`,
    ),
    entities: [],
    request: { ...request(), principal: agent('a10') },
    cedar: 'allow',
    expected: 'allow',
  },
  {
    name: 'a sum just past 2^53 − 1: cedar allows, the engine denies with the safe-integer error',
    policies: ['permit (principal, action, resource) when { principal.level + 1 > 0 };'],
    entities: [{ uid: agent('a0'), attrs: { level: 9007199254740991 }, parents: [] }],
    request: request(),
    cedar: 'allow',
    expected: 'deny',
  },
  {
    name: 'an i64 literal: cedar allows, the engine denies with the safe-integer error',
    policies: ['permit (principal, action, resource) when { 9223372036854775807 > 1 };'],
    entities: [],
    request: request(),
    cedar: 'allow',
    expected: 'deny',
  },
  {
    name: 'an entity attribute of 2^53: cedar allows, the engine refuses the entities',
    policies: ['permit (principal, action, resource);'],
    entities: [{ uid: agent('a0'), attrs: { level: 9007199254740992 }, parents: [] }],
    request: request(),
    cedar: 'allow',
    expected: 'deny',
  },
  {
    name: 'i64 overflow in a product errs in both',
    policies: ['permit (principal, action, resource) when { principal.level * 3037000500 > 0 };'],
    entities: [{ uid: agent('a0'), attrs: { level: 3037000500 }, parents: [] }],
    request: request(),
    cedar: 'deny',
    expected: 'deny',
  },
  {
    name: 'a hierarchy cycle: cedar refuses the entities, so does the engine',
    policies: ['permit (principal in Group::"g1", action, resource);'],
    entities: [
      { uid: agent('a0'), attrs: {}, parents: [{ type: 'Group', id: 'g0' }] },
      { uid: { type: 'Group', id: 'g0' }, attrs: {}, parents: [{ type: 'Group', id: 'g1' }] },
      { uid: { type: 'Group', id: 'g1' }, attrs: {}, parents: [agent('a0')] },
    ],
    request: request(),
    cedar: 'failure',
    expected: 'deny',
  },
  {
    name: 'an erring permit beside a satisfied one: cedar allows (skips it), the engine denies',
    policies: [
      'permit (principal, action, resource) when { principal.nope };',
      'permit (principal, action, resource);',
    ],
    entities: [{ uid: agent('a0'), attrs: {}, parents: [] }],
    request: request(),
    cedar: 'allow',
    expected: 'deny',
  },
  {
    name: 'a diamond through a missing entity: ancestors stop where an entity is absent',
    policies: ['permit (principal in Group::"g2", action, resource);'],
    entities: [
      {
        uid: agent('a0'),
        attrs: {},
        parents: [agent('a1'), { type: 'Group', id: 'g0' }],
      },
      { uid: { type: 'Group', id: 'g0' }, attrs: {}, parents: [{ type: 'Group', id: 'g1' }] },
      { uid: { type: 'Group', id: 'g1' }, attrs: {}, parents: [{ type: 'Group', id: 'g2' }] },
    ],
    request: request(),
    cedar: 'allow',
    expected: 'allow',
  },
];

function cedarKind(a: CedarAnswer): RegressionCase['cedar'] {
  return a.kind === 'failure' ? 'failure' : a.decision;
}

function mandateDecision(m: MandateAnswer): 'allow' | 'deny' {
  return m.kind === 'refused' ? 'deny' : m.decision;
}

describe('differential regressions', () => {
  for (const r of REGRESSIONS) {
    it(r.name, () => {
      const c = regressionCase(r);
      const withSchema = r.schema !== undefined;
      const cedar = new CedarSession(c, withSchema).decide(r.request);
      const mandate = new MandateSession(c, withSchema).decide(r.request, r.lookup ?? 'store');
      expect(cedarKind(cedar)).toBe(r.cedar);
      expect(judge(cedar, mandate)).toBeUndefined();
      expect(mandateDecision(mandate)).toBe(r.expected);
    });
  }
});

describe('the comparison rule', () => {
  const allow: CedarAnswer = {
    kind: 'decision',
    decision: 'allow',
    policies: ['policy0'],
    errors: [],
  };
  const denyWith = (message: string): MandateAnswer => ({
    kind: 'decision',
    decision: 'deny',
    policies: [],
    errors: [{ policy: 'policy0', message }],
  });

  it('accepts the safe-integer divergence only for values really outside the safe range', () => {
    expect(
      judge(
        allow,
        denyWith(
          'the result of add `9007199254740991` and `1` is outside the supported long range ±(2^53 − 1)',
        ),
      ),
    ).toBeUndefined();
    // The same message about numbers whose sum is safe, or past i64, is a disagreement.
    expect(
      judge(
        allow,
        denyWith(
          'the result of add `9007199254740990` and `1` is outside the supported long range ±(2^53 − 1)',
        ),
      ),
    ).toBeDefined();
    expect(
      isSafeIntegerRangeError(
        'the result of multiply `9223372036854775807` and `2` is outside the supported long range ±(2^53 − 1)',
      ),
    ).toBe(false);
    expect(
      isSafeIntegerRangeError('long literal `12` is outside the supported range ±(2^53 − 1)'),
    ).toBe(false);
    expect(judge(allow, denyWith('type error: expected bool, got long'))).toBeDefined();
  });

  it('requires equal decisions and equal determining policies when cedar reports no error', () => {
    expect(
      judge(allow, { kind: 'decision', decision: 'allow', policies: ['policy0'], errors: [] }),
    ).toBeUndefined();
    expect(
      judge(allow, { kind: 'decision', decision: 'allow', policies: ['policy1'], errors: [] }),
    ).toBeDefined();
    expect(
      judge(allow, { kind: 'decision', decision: 'deny', policies: [], errors: [] }),
    ).toBeDefined();
    expect(
      judge(allow, {
        kind: 'refused',
        code: 'ERR_POLICY_INPUT_INVALID',
        message: 'duplicate entity `Agent::"a0"`',
      }),
    ).toBeDefined();
  });

  it('requires a deny whenever cedar reports an error', () => {
    const erring: CedarAnswer = {
      kind: 'decision',
      decision: 'allow',
      policies: ['policy1'],
      errors: [{ policy: 'policy0', message: 'x' }],
    };
    expect(
      judge(erring, { kind: 'decision', decision: 'allow', policies: ['policy1'], errors: [] }),
    ).toBeDefined();
    expect(judge(erring, denyWith('anything'))).toBeUndefined();
    const failure: CedarAnswer = { kind: 'failure', messages: ['x'] };
    expect(
      judge(failure, { kind: 'decision', decision: 'allow', policies: [], errors: [] }),
    ).toBeDefined();
    expect(
      judge(failure, { kind: 'refused', code: 'ERR_POLICY_INPUT_INVALID', message: 'x' }),
    ).toBeUndefined();
  });
});
