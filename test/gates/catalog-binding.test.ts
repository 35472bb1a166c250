import { describe, expect, it } from 'vitest';
import { Gate, ToolCatalog, type ToolDescriptor } from '../../src/gates/index.js';
import {
  CATALOG,
  GATE_NOW,
  HeldBundleSource,
  POLICIES,
  bundleOf,
  gateWorld,
} from '../helpers/gate-world.js';

// Outside-attack hole F2 (docs/threat-model.md): the catalog given at call time used to decide
// which arguments the policies saw and which server a tool belonged to. The gate now takes its
// tools from the bundle in force; a catalog given at construction must be that one.

const NOW = GATE_NOW + 20;
const FORBID_BIG = `${POLICIES}
@id("no-big-refunds")
forbid(principal, action == Action::"callTool", resource)
  when { context.args has amount && context.args.amount > 100 };
`;

const retyped: ToolDescriptor[] = CATALOG.map((t) =>
  t.name === 'issue_refund'
    ? {
        ...t,
        inputSchema: {
          ...t.inputSchema,
          properties: { order: { type: 'string' }, amount: { type: 'number' } },
        },
      }
    : t,
);
const relabelled: ToolDescriptor[] = CATALOG.map((t) =>
  t.name === 'issue_refund' ? { ...t, server: 'sandbox' } : t,
);

describe('the gate takes its catalog from the bundle', () => {
  it('a call-time catalog that retypes an argument or relabels a server is refused (mismatch)', async () => {
    const w = await gateWorld({ root: ['tools=*'] });
    const bundles = new HeldBundleSource(bundleOf(FORBID_BIG));
    const honest = new Gate({ bundles, denySet: w.denySet });
    const big = { tool: 'issue_refund', args: { order: 'o', amount: 150 } };
    expect(honest.decide(w.danaChain, big, { nowSeconds: NOW })).toMatchObject({
      decision: 'deny',
      lock: 'policy',
      policies: ['no-big-refunds'],
    });
    for (const tools of [retyped, relabelled]) {
      const gate = new Gate({ catalog: new ToolCatalog(tools), bundles, denySet: w.denySet });
      const call = tools === relabelled ? { ...big, server: 'sandbox' } : big;
      expect(gate.decide(w.danaChain, call, { nowSeconds: NOW })).toMatchObject({
        decision: 'deny',
        lock: 'bundle',
        code: 'ERR_GATE_CATALOG_MISMATCH',
      });
      expect(gate.listTools(w.danaChain, NOW)).toEqual([]);
    }
    // The same catalog, listed in another order, is the same catalog.
    const same = new Gate({
      catalog: new ToolCatalog([...CATALOG].reverse()),
      bundles,
      denySet: w.denySet,
    });
    expect(
      same.decide(w.danaChain, { tool: 'read_orders', args: { order: 'o' } }, { nowSeconds: NOW }),
    ).toMatchObject({ decision: 'allow' });
  });

  it('a bundle that binds no catalog decides no call and lists no tool (fail closed)', async () => {
    const w = await gateWorld({ root: ['tools=*'] });
    const bundles = new HeldBundleSource(bundleOf(POLICIES, 1, undefined, null));
    const gate = new Gate({ catalog: w.catalog, bundles, denySet: w.denySet });
    expect(
      gate.decide(w.danaChain, { tool: 'read_orders', args: { order: 'o' } }, { nowSeconds: NOW }),
    ).toMatchObject({ decision: 'deny', lock: 'bundle', code: 'ERR_GATE_NO_CATALOG' });
    expect(gate.listTools(w.danaChain, NOW)).toEqual([]);
  });
});
