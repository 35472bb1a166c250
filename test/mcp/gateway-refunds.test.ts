// The gateway in front of a refund server of our own: amount bounds from the chain, a budget on
// the root grant shared by sibling sub-agents, and a human approval above a threshold, bound to
// the call's argument digest and used once.
import { afterEach, describe, expect, it } from 'vitest';
import { answerApproval } from '../../src/gates/index.js';
import {
  mcpWorld,
  metaOf,
  SHOP_POLICIES,
  TEST_SERVER_COMMAND,
  textOf,
} from '../helpers/mcp-world.js';

type World = Awaited<ReturnType<typeof mcpWorld>>;
const worlds: World[] = [];
afterEach(async () => {
  for (const w of worlds.splice(0)) await w.close();
});

describe('MCP gateway in front of a refund server', () => {
  it('bounds from the chain, a budget shared by siblings, an approval bound to the exact call', async () => {
    const w = await mcpWorld({
      servers: {
        shop: {
          command: TEST_SERVER_COMMAND.command,
          args: [...TEST_SERVER_COMMAND.args, 'shop'],
        },
      },
      policies: SHOP_POLICIES,
      refundBudget: 600,
    });
    worlds.push(w);
    const grants = ['tools=refund,refunds_done', 'refund#amount<=400'];
    const a = await w.agent('sub-a', grants);
    const b = await w.agent('sub-b', grants);
    const { client: ca } = await w.connect(a);
    const { client: cb } = await w.connect(b);
    expect((await ca.listTools()).tools.map((t) => t.name).sort()).toEqual([
      'refund',
      'refunds_done',
    ]);
    const refund = (client: typeof ca, order: string, amount: number) =>
      client.callTool({ name: 'refund', arguments: { order, amount } });

    expect(textOf(await refund(ca, 'o-1', 50))).toBe('refunded 50 on o-1');
    // Above what the chain delegates (400): the chain lock, whatever the policies say.
    expect(metaOf(await refund(ca, 'o-1', 500))).toMatchObject({
      decision: 'deny',
      code: 'ERR_GATE_CHAIN_DENIED',
    });
    // Above the threshold: waits for a person; asking again finds the same request.
    const waiting = metaOf(await refund(ca, 'o-1', 300));
    expect(waiting).toMatchObject({
      decision: 'approval_required',
      code: 'ERR_MCP_APPROVAL_REQUIRED',
      lock: 'approval',
    });
    const id = waiting!.approval!;
    expect(metaOf(await refund(ca, 'o-1', 300))?.approval).toBe(id);
    // Dana (human=true) approves exactly that call, out of band (what `mandate approvals approve` does).
    await answerApproval(w.approvals, {
      id,
      decision: 'approve',
      reason: 'checked with the customer',
      approver: w.danaChain,
      signer: w.dana.issuer,
      vault: w.vault,
      nowSeconds: w.clock.nowSeconds(),
    });
    // Other arguments are another call: a new request.
    const other = metaOf(await refund(ca, 'o-1', 301));
    expect(other?.decision).toBe('approval_required');
    expect(other?.approval).not.toBe(id);
    // The approved call runs once; again, it needs a person again.
    expect(textOf(await refund(ca, 'o-1', 300))).toBe('refunded 300 on o-1');
    expect(metaOf(await refund(ca, 'o-1', 300))?.decision).toBe('approval_required');

    // The sibling draws on the same root budget (600): 350 spent by a, 100 + 100 by b, then no more.
    expect(textOf(await refund(cb, 'o-2', 100))).toBe('refunded 100 on o-2');
    expect(textOf(await refund(cb, 'o-2', 100))).toBe('refunded 100 on o-2');
    expect(metaOf(await refund(cb, 'o-2', 100))).toMatchObject({
      decision: 'deny',
      code: 'ERR_GATE_BUDGET_EXHAUSTED',
      lock: 'budget',
    });
    // Only the allowed refunds reached the server.
    expect(textOf(await cb.callTool({ name: 'refunds_done', arguments: {} }))).toBe(
      'o-1:50,o-1:300,o-2:100,o-2:100',
    );
  });
});
