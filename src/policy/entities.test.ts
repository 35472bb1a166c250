import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isMandateError } from '../core/index.js';
import { cedarOutcome, mandateOutcome } from '../../test/helpers/policy-oracle.js';
import { EntityStore, entityKey, parseCedarEntities, parseCedarRequest } from './index.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    if (isMandateError(error)) return error.code;
    throw error;
  }
  return undefined;
}

const uid = (type: string, id: string) => ({ type, id });

describe('EntityStore', () => {
  it('resolves transitive ancestors, including parents absent from the store', () => {
    const store = parseCedarEntities([
      { uid: uid('Agent', 'a'), attrs: {}, parents: [uid('Team', 't')] },
      { uid: { __entity: uid('Team', 't') }, attrs: {}, parents: [{ __entity: uid('Org', 'o') }] },
    ]);
    expect([...store.get(uid('Agent', 'a'))!.ancestors].sort()).toEqual(['Org::"o"', 'Team::"t"']);
    expect(store.get(uid('Org', 'o'))).toBeUndefined();
    expect(store.size).toBe(2);
  });

  it('refuses cycles as Cedar does', () => {
    for (const entities of [
      [{ uid: uid('A', 'a'), attrs: {}, parents: [uid('A', 'a')] }],
      [
        { uid: uid('A', 'a'), attrs: {}, parents: [uid('A', 'b')] },
        { uid: uid('A', 'b'), attrs: {}, parents: [uid('A', 'c')] },
        { uid: uid('A', 'c'), attrs: {}, parents: [uid('A', 'a')] },
      ],
    ]) {
      expect(codeOf(() => parseCedarEntities(entities))).toBe('ERR_POLICY_INPUT_INVALID');
      expect(cedarOutcome({ policies: '', entities })).toBeUndefined();
    }
  });

  it('accepts an entity given twice only when both copies are equal, as Cedar', () => {
    const a = { uid: uid('A', 'a'), attrs: { x: [1, 2] }, parents: [uid('G', 'g')] };
    expect(parseCedarEntities([a, { ...a, attrs: { x: [2, 1] } }]).size).toBe(1);
    expect(codeOf(() => parseCedarEntities([a, { ...a, attrs: { x: 3 } }]))).toBe(
      'ERR_POLICY_INPUT_INVALID',
    );
    expect(codeOf(() => parseCedarEntities([a, { ...a, parents: [] }]))).toBe(
      'ERR_POLICY_INPUT_INVALID',
    );
  });

  it('keys entities so that distinct references never collide', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (x, y) => {
        fc.pre(x !== y);
        expect(entityKey(uid('T', x))).not.toBe(entityKey(uid('T', y)));
      }),
    );
  });

  it('bounds the transitive closure of a long chain', () => {
    const chain = Array.from({ length: 3000 }, (_, i) => ({
      uid: { type: 'A', id: String(i) },
      attrs: new Map(),
      parents: [{ type: 'A', id: String(i + 1) }],
    }));
    expect(codeOf(() => EntityStore.fromEntities(chain))).toBe('ERR_POLICY_INPUT_INVALID');
  });
});

describe("Cedar's JSON forms", () => {
  it('reads attribute values: escapes, records, sets, and {type,id} without __entity as a record', () => {
    const entities = [
      {
        uid: uid('A', 'a'),
        attrs: {
          e: { __entity: uid('B', 'b') },
          r: { type: 'B', id: 'b' },
          s: [1, 'x', true, { k: [] }],
        },
        parents: [],
      },
    ];
    for (const condition of [
      'principal.e == B::"b"',
      'principal.r == B::"b"',
      'principal.r.type == "B"',
      'principal.s.contains({k: []})',
    ]) {
      const c = {
        policies: `permit(principal, action, resource) when { ${condition} };`,
        entities,
        request: { principal: uid('A', 'a') },
      };
      expect(mandateOutcome(c)).toEqual(cedarOutcome(c));
    }
  });

  it('refuses what Cedar refuses, with ERR_POLICY_INPUT_INVALID', () => {
    const bad: unknown[] = [
      [{ uid: uid('A', 'a'), attrs: { f: 1.5 }, parents: [] }],
      [{ uid: uid('A', 'a'), attrs: { f: null }, parents: [] }],
      [{ uid: uid('A', 'a'), parents: [] }],
      [{ uid: uid('A', 'a'), attrs: {} }],
      [{ uid: uid('A B', 'a'), attrs: {}, parents: [] }],
      [{ uid: { type: 'A', id: 1 }, attrs: {}, parents: [] }],
      [{ uid: uid('A', 'a'), attrs: [], parents: [] }],
    ];
    for (const entities of bad) {
      expect(
        codeOf(() => parseCedarEntities(entities)),
        JSON.stringify(entities),
      ).toBe('ERR_POLICY_INPUT_INVALID');
      expect(cedarOutcome({ policies: '', entities: entities as unknown[] })).toBeUndefined();
    }
    expect(codeOf(() => parseCedarEntities('not json'))).toBe('ERR_POLICY_INPUT_INVALID');
    expect(codeOf(() => parseCedarEntities('{}'))).toBe('ERR_POLICY_INPUT_INVALID');
  });

  it('refuses Longs beyond ±(2^53 − 1) (a divergence that only denies)', () => {
    expect(
      codeOf(() =>
        parseCedarEntities([{ uid: uid('A', 'a'), attrs: { n: 2 ** 60 }, parents: [] }]),
      ),
    ).toBe('ERR_POLICY_INPUT_INVALID');
  });

  it('reads decimal and ip escapes; refuses what Cedar refuses; other extensions unsupported', () => {
    const withAttr = (d: unknown) => [{ uid: uid('A', 'a'), attrs: { d }, parents: [] }];
    expect(
      parseCedarEntities(withAttr({ __extn: { fn: 'decimal', arg: '1.5' } }))
        .get(uid('A', 'a'))
        ?.attrs.get('d'),
    ).toMatchObject({ extension: 'decimal', text: '1.5000' });
    for (const bad of [
      { __extn: { fn: 'decimal', arg: '1.23456' } },
      { __extn: { fn: 'decimal', arg: 1 } },
      { __extn: { fn: 'decimal', args: ['1.5', '2.5'] } },
      { __extn: { fn: 'ip', arg: '01.2.3.4' } },
      { __extn: { fn: 'ipaddr', arg: '1.2.3.4' } },
    ]) {
      expect(
        codeOf(() => parseCedarEntities(withAttr(bad))),
        JSON.stringify(bad),
      ).toMatch(/^ERR_POLICY_(INPUT_INVALID|UNSUPPORTED)$/);
      expect(cedarOutcome({ policies: '', entities: withAttr(bad) })).toBeUndefined();
    }
    expect(
      codeOf(() => parseCedarEntities(withAttr({ __extn: { fn: 'datetime', arg: '2024-01-01' } }))),
    ).toBe('ERR_POLICY_UNSUPPORTED');
  });

  it('bounds depth, size and counts', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100; i++) deep = [deep];
    expect(
      codeOf(() => parseCedarEntities([{ uid: uid('A', 'a'), attrs: { deep }, parents: [] }])),
    ).toBe('ERR_POLICY_INPUT_INVALID');
    const limits = {
      maxDepth: 4,
      maxValues: 10,
      maxStringLength: 8,
      maxTextLength: 200,
      maxEntities: 1,
    };
    expect(codeOf(() => parseCedarEntities('[' + ' '.repeat(300) + ']', limits))).toBe(
      'ERR_POLICY_INPUT_INVALID',
    );
    expect(
      codeOf(() =>
        parseCedarEntities(
          [
            { uid: uid('A', 'a'), attrs: {}, parents: [] },
            { uid: uid('A', 'b'), attrs: {}, parents: [] },
          ],
          limits,
        ),
      ),
    ).toBe('ERR_POLICY_INPUT_INVALID');
    expect(
      codeOf(() =>
        parseCedarRequest({ ...requestJson, context: { s: 'a string too long' } }, limits),
      ),
    ).toBe('ERR_POLICY_INPUT_INVALID');
    expect(
      codeOf(() =>
        parseCedarRequest(
          { ...requestJson, context: { s: Array.from({ length: 20 }, () => 1) } },
          limits,
        ),
      ),
    ).toBe('ERR_POLICY_INPUT_INVALID');
  });

  const requestJson = {
    principal: uid('Agent', 'a'),
    action: { __entity: uid('Action', 'callTool') },
    resource: uid('Tool', 't'),
    context: { args: { n: 1 } },
  };

  it('parses a request; context is optional and must be a record', () => {
    const request = parseCedarRequest(JSON.stringify(requestJson));
    expect(request.action).toEqual(uid('Action', 'callTool'));
    expect(request.context.get('args')).toEqual(new Map([['n', 1]]));
    const noContext = {
      principal: requestJson.principal,
      action: requestJson.action,
      resource: requestJson.resource,
    };
    expect(parseCedarRequest(noContext).context.size).toBe(0);
    expect(codeOf(() => parseCedarRequest({ ...requestJson, context: [] }))).toBe(
      'ERR_POLICY_INPUT_INVALID',
    );
    expect(codeOf(() => parseCedarRequest({ ...requestJson, context: { x: null } }))).toBe(
      'ERR_POLICY_INPUT_INVALID',
    );
    expect(codeOf(() => parseCedarRequest({ ...requestJson, principal: 'Agent::"a"' }))).toBe(
      'ERR_POLICY_INPUT_INVALID',
    );
    expect(codeOf(() => parseCedarRequest({ action: requestJson.action }))).toBe(
      'ERR_POLICY_INPUT_INVALID',
    );
  });
});

describe('Cedar JSON text with a key twice', () => {
  it('is refused, at any depth, rather than read last-wins', () => {
    const uid = '{"type":"Agent","id":"a"}';
    expect(
      codeOf(() => parseCedarEntities(`[{"uid":${uid},"attrs":{"n":1,"n":2},"parents":[]}]`)),
    ).toBe('ERR_POLICY_INPUT_INVALID');
    expect(
      codeOf(() =>
        parseCedarRequest(
          `{"principal":${uid},"action":{"type":"Action","id":"x"},"resource":${uid},"context":{"r":{"a":1,"a":1}}}`,
        ),
      ),
    ).toBe('ERR_POLICY_INPUT_INVALID');
    expect(codeOf(() => parseCedarEntities('[{nope'))).toBe('ERR_POLICY_INPUT_INVALID');
    expect(
      parseCedarRequest(
        `{"principal":${uid},"action":{"type":"Action","id":"x"},"resource":${uid},"context":{"r":{"a":1}}}`,
      ).principal,
    ).toEqual({ type: 'Agent', id: 'a' });
    expect(parseCedarEntities(`[{"uid":${uid},"attrs":{"n":1},"parents":[]}]`)).toBeDefined();
  });
});
