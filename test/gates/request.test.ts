import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { authorize, delegate, parseConstraint } from '../../src/credentials/index.js';
import {
  agentViewOf,
  chainArguments,
  checkArgumentBounds,
  compileArgumentConverter,
} from '../../src/gates/index.js';
import { entityKey } from '../../src/policy/index.js';
import { codeOf } from '../helpers/errors.js';
import { GATE_NOW, gateWorld } from '../helpers/gate-world.js';

const NOW = GATE_NOW + 20;

describe('a verified chain as the Agent entity', () => {
  it('puts the human root, the delegators and the narrowed labels where policies read them', async () => {
    const w = await gateWorld();
    const sub = w.subAgents[0]!.chain;
    const view = agentViewOf(sub);
    expect(view).toBe(agentViewOf(sub)); // built once per chain
    expect(view.principal).toEqual({ type: 'Agent', id: sub.actor });
    const agent = view.entities.get('Agent')!.get(sub.actor)!;
    const danaKey = entityKey({ type: 'Human', id: w.dana.identity.identifier });
    const supportKey = entityKey({ type: 'Agent', id: w.support.identity.identifier });
    expect([...agent.ancestors].sort()).toEqual([danaKey, supportKey].sort());
    expect(agent.attrs.get('depth')).toBe(2);
    expect(agent.attrs.get('human')).toBe(false);
    expect(agent.attrs.get('delegators')).toEqual([
      w.dana.identity.identifier,
      w.support.identity.identifier,
    ]);
    expect(agent.attrs.get('purposes')).toEqual(['support shift', 'complaint #4470']);
    expect(agent.attrs.get('expiresAt')).toBe(sub.expiresAt);
    expect(agent.tags?.get('regions')).toEqual(['eu-west-1']);
    // the intermediate delegator is an Agent with its own prefix of the chain; dana is a Human
    const support = view.entities.get('Agent')!.get(w.support.identity.identifier)!;
    expect(support.attrs.get('depth')).toBe(1);
    expect([...support.ancestors]).toEqual([danaKey]);
    expect(
      view.entities.get('Human')!.get(w.dana.identity.identifier)?.attrs.get('identifier'),
    ).toBe(w.dana.identity.identifier);
    // a human acting under her own credential is the principal, with human == true
    const own = agentViewOf(w.danaChain).entities.get('Agent')!.get(w.dana.identity.identifier)!;
    expect(own.attrs.get('human')).toBe(true);
    expect(own.attrs.get('depth')).toBe(0);
    // the robot's root is not marked human: no Human entity anywhere
    expect(agentViewOf(w.robotChain).entities.get('Human')!.size).toBe(0);
  });

  it('labels and `human` constrain no call (lock 1 ignores them); a link narrows a label but cannot add one', async () => {
    const w = await gateWorld();
    // dana's root holds label.* and human=true; a call without such arguments still passes lock 1
    expect(
      authorize(w.danaChain, {
        action: 'read_orders',
        args: new Map([['order', 'o']]),
        nowSeconds: NOW,
      }).decision,
    ).toBe('allow');
    const narrowed = await delegate(w.vault, w.dana.issuer, w.danaChain, {
      nowSeconds: GATE_NOW,
      subject: w.robot.identity,
      constraints: new Map([
        parseConstraint('tools=read_orders'),
        parseConstraint('label.environments=dev'),
      ]),
      purpose: 'dev only',
      ttlSeconds: 600,
    });
    const chain = w.verify(narrowed, w.robot.identity.identifier);
    expect(
      agentViewOf(chain).entities.get('Agent')!.get(chain.actor)!.tags?.get('environments'),
    ).toEqual(['dev']);
    await expect(
      delegate(w.vault, w.dana.issuer, w.danaChain, {
        nowSeconds: GATE_NOW,
        subject: w.robot.identity,
        constraints: new Map([
          parseConstraint('tools=read_orders'),
          parseConstraint('label.clearance=top'),
        ]),
        purpose: 'escalate',
        ttlSeconds: 600,
      }),
    ).rejects.toMatchObject({ code: 'ERR_DELEGATION_AMPLIFIES' });
    await expect(
      delegate(w.vault, w.dana.issuer, w.danaChain, {
        nowSeconds: GATE_NOW,
        subject: w.robot.identity,
        constraints: new Map([
          parseConstraint('tools=read_orders'),
          parseConstraint('label.environments=prod'),
        ]),
        purpose: 'widen',
        ttlSeconds: 600,
      }),
    ).rejects.toMatchObject({ code: 'ERR_DELEGATION_AMPLIFIES' });
  });
});

describe('arguments', () => {
  const convert = compileArgumentConverter({
    type: 'object',
    properties: {
      s: { type: 'string' },
      i: { type: 'integer' },
      n: { type: 'number' },
      b: { type: 'boolean' },
      list: { type: 'array', items: { type: 'integer' } },
      rec: { type: 'object', properties: { x: { type: 'string' } }, required: ['x'] },
      any: {},
      union: { type: ['string', 'null'] },
    },
  });

  it('convert per the input schema; untyped and undeclared arguments are not shown', () => {
    const out = convert({
      s: 'a',
      i: 3,
      n: 12.5,
      b: true,
      list: [1, 2],
      rec: { x: 'y', extra: 1 },
      any: 1,
      union: 'u',
      extra: 'e',
      nul: null,
    });
    expect(out.get('s')).toBe('a');
    expect(out.get('i')).toBe(3);
    // a JSON number has no Cedar form the gates can build yet (docs/spec/policy.md §4.3)
    expect(out.has('n')).toBe(false);
    expect(out.get('b')).toBe(true);
    expect(out.get('list')).toEqual([1, 2]);
    expect(out.get('rec')).toEqual(new Map([['x', 'y']]));
    expect(out.has('any')).toBe(false);
    expect(out.has('union')).toBe(false);
    expect(out.has('extra')).toBe(false);
  });

  it('refuses values their Cedar type cannot hold', () => {
    expect(codeOf(() => convert({ i: 2 ** 60 }))).toBe('ERR_GATE_ARGUMENT_UNREPRESENTABLE');
    expect(codeOf(() => convert({ s: 5 }))).toBe('ERR_GATE_ARGUMENT_UNREPRESENTABLE');
    expect(codeOf(() => convert({ list: [1, 'x'] }))).toBe('ERR_GATE_ARGUMENT_UNREPRESENTABLE');
  });

  it('lock 1 sees top-level strings, safe integers and booleans as text, nothing else', () => {
    expect([
      ...chainArguments({ s: 'x', i: 5, b: false, f: 1.5, big: 2 ** 60, o: {}, a: [], z: null }),
    ]).toEqual([
      ['s', 'x'],
      ['i', '5'],
      ['b', 'false'],
    ]);
  });

  it('property: anything within bounds is JSON data that JSON.stringify can write; bounds hold for any depth', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (value) => {
        const code = codeOf(() => {
          checkArgumentBounds(value);
        });
        if (code === 'accepted') expect(typeof JSON.stringify(value)).toBe('string');
        else expect(code).toBe('ERR_GATE_ARGUMENTS_TOO_LARGE');
      }),
      { numRuns: 300, seed: 4 },
    );
    fc.assert(
      fc.property(fc.integer({ min: 9, max: 5000 }), (depth) => {
        let v: unknown = 1;
        for (let i = 0; i < depth; i++) v = i % 2 === 0 ? [v] : { k: v };
        expect(
          codeOf(() => {
            checkArgumentBounds(v);
          }),
        ).toBe('ERR_GATE_ARGUMENTS_TOO_LARGE');
      }),
      { numRuns: 50, seed: 5 },
    );
  });
});
