// What gate 2 works out once (per chain: the authorization plan, the Agent view; per bundle: the
// rendered decisions) never outlives what it was worked out from: sibling chains taking turns are
// decided each on its own, and a revocation, an expiry or a new bundle takes effect on the very
// next call.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  authorize,
  type AuthorizationRequest,
  type Decision,
  type VerifiedChain,
} from '../../src/credentials/index.js';
import { checkRequest, TOOLS_ATTRIBUTE } from '../../src/credentials/internal.js';
import { Gate, type GateDecision } from '../../src/gates/index.js';
import { revoke } from '../helpers/deny-set.js';
import {
  GATE_NOW,
  HeldBundleSource,
  POLICIES,
  bundleOf,
  gateWorld,
} from '../helpers/gate-world.js';

const NOW = GATE_NOW + 20;
const SMALL = { order: 'o-1', amount: 10 };

async function setup(subAgents = 4) {
  const w = await gateWorld({ subAgents });
  const bundles = new HeldBundleSource(bundleOf());
  const gate = new Gate({ catalog: w.catalog, bundles, denySet: w.denySet });
  const call = (
    chain: VerifiedChain,
    tool: string,
    args: unknown,
    nowSeconds = NOW,
  ): GateDecision => gate.decide(chain, { tool, args }, { nowSeconds });
  return { ...w, bundles, gate, call };
}

/** authorize as it was written before the per-chain plan: every constraint of every level. */
function reference(chain: VerifiedChain, request: AuthorizationRequest): Decision {
  const levels = chain.levels;
  if (!levels.some((l) => l.has(TOOLS_ATTRIBUTE)))
    return {
      decision: 'deny',
      actor: chain.actor,
      chain: chain.steps,
      failed: {
        link: 0,
        constraint: TOOLS_ATTRIBUTE,
        reason: 'no credential or link grants any tool',
      },
    };
  for (let index = 0; index < levels.length; index++)
    for (const [name, constraint] of levels[index]!) {
      const check = checkRequest(name, constraint, request);
      if (!check.ok)
        return {
          decision: 'deny',
          actor: chain.actor,
          chain: chain.steps,
          failed: { link: index, constraint: name, reason: check.reason },
        };
    }
  return { decision: 'allow', actor: chain.actor, chain: chain.steps };
}

describe('gate 2 with sibling chains taking turns', () => {
  it('decides each chain on its own, and a revocation of one denies its very next call only', async () => {
    const s = await setup();
    const chains = s.subAgents.map((a) => a.chain);
    for (let round = 0; round < 3; round++)
      for (const chain of chains)
        expect(s.call(chain, 'issue_refund', SMALL).decision).toBe('allow');
    revoke(s.denySet, chains[2]!.links.at(-1)!.revocationId, {
      expiresAt: NOW + 3600,
      nowSeconds: NOW,
    });
    const after = chains.map((chain) => s.call(chain, 'issue_refund', SMALL));
    expect(after.map((d) => d.decision)).toEqual(['allow', 'allow', 'deny', 'allow']);
    expect(after[2]).toMatchObject({ lock: 'chain', code: 'ERR_GATE_CHAIN_DENIED' });
    expect(after[2]!.reasons[0]).toContain('ERR_REVOKED');
    // The agent they all delegate from: every sibling, on its next call.
    revoke(s.denySet, s.support.identity.identifier, {
      expiresAt: NOW + 3600,
      nowSeconds: NOW,
      identity: true,
    });
    for (const chain of chains)
      expect(s.call(chain, 'issue_refund', SMALL)).toMatchObject({
        decision: 'deny',
        lock: 'chain',
      });
  });

  it('a chain past its expiry is denied on the next call, after calls that allowed', async () => {
    const s = await setup(2);
    const chain = s.subAgents[1]!.chain;
    expect(s.call(chain, 'issue_refund', SMALL, chain.expiresAt - 1).decision).toBe('allow');
    const expired = s.call(chain, 'issue_refund', SMALL, chain.expiresAt);
    expect(expired).toMatchObject({ decision: 'deny', lock: 'chain' });
    expect(expired.reasons[0]).toContain('expired');
    expect(s.call(s.subAgents[0]!.chain, 'issue_refund', SMALL, chain.expiresAt - 1).decision).toBe(
      'allow',
    );
  });

  it('a new bundle decides the very next call, and the old one again when it comes back', async () => {
    const s = await setup();
    const [a, b] = [s.subAgents[0]!.chain, s.subAgents[1]!.chain];
    const v1 = s.bundles.bundle!;
    const first = s.call(a, 'read_orders', { order: 'o-1' });
    expect(first).toMatchObject({ decision: 'allow', policies: ['read-orders'], bundle: v1.hash });
    // The same engine decision, rendered once: the same answer for a sibling.
    expect(s.call(b, 'read_orders', { order: 'o-2' })).toEqual(first);
    expect(Object.isFrozen(first) && Object.isFrozen(first.policies)).toBe(true);
    const v2 = bundleOf(
      `${POLICIES}\n@id("no-reads") forbid(principal, action == Action::"callTool", resource == Tool::"orders/read_orders");`,
      2,
    );
    s.bundles.bundle = v2;
    expect(s.call(b, 'read_orders', { order: 'o-2' })).toMatchObject({
      decision: 'deny',
      lock: 'policy',
      policies: ['no-reads'],
      bundle: v2.hash,
    });
    s.bundles.bundle = v1;
    expect(s.call(a, 'read_orders', { order: 'o-1' })).toMatchObject({
      decision: 'allow',
      bundle: v1.hash,
    });
    s.bundles.bundle = undefined;
    expect(s.call(a, 'read_orders', { order: 'o-1' })).toMatchObject({
      decision: 'deny',
      lock: 'bundle',
    });
  });

  it('an approval-required decision stays one until an approval is passed, call by call', async () => {
    const s = await setup(2);
    const chain = s.subAgents[0]!.chain;
    const large = { order: 'o-1', amount: 300 };
    expect(s.call(chain, 'issue_refund', large).decision).toBe('approval_required');
    const approved = s.gate.decide(
      chain,
      { tool: 'issue_refund', args: large },
      { nowSeconds: NOW, approval: { granted: true, approvers: ['Ih'] } },
    );
    expect(approved.decision).toBe('allow');
    expect(s.call(chain, 'issue_refund', large).decision).toBe('approval_required');
  });

  it('property: authorize with its per-chain plan decides as every constraint checked in order', async () => {
    const s = await setup(2);
    const chains = [s.danaChain, s.supportChain, ...s.subAgents.map((a) => a.chain), s.robotChain];
    const tool = fc.constantFrom(
      'issue_refund',
      'read_orders',
      'deploy',
      'delete_everything',
      'x#y',
      '',
    );
    const value = fc.oneof(
      fc.constantFrom('10', '400', '401', '1000', '1001', '-0', 'o-1', 'prod'),
      fc.string({ maxLength: 6 }),
    );
    fc.assert(
      fc.property(
        fc.nat({ max: chains.length - 1 }),
        tool,
        fc.dictionary(fc.constantFrom('amount', 'order', 'human', 'environments'), value),
        fc.integer({ min: GATE_NOW - 10, max: GATE_NOW + 4000 }),
        (c, action, record, nowSeconds) => {
          const chain = chains[c]!;
          const request = { action, args: new Map(Object.entries(record)), nowSeconds };
          const expected =
            nowSeconds < chain.notBefore
              ? 'not valid yet'
              : nowSeconds >= chain.expiresAt
                ? 'expired'
                : reference(chain, request);
          const got = authorize(chain, request);
          if (typeof expected === 'string') {
            expect(got.decision).toBe('deny');
            if (got.decision === 'deny') expect(got.failed.reason).toContain(expected);
          } else expect(got).toEqual(expected);
        },
      ),
      { numRuns: 2000, seed: 10 },
    );
  });
});
