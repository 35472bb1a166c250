import { describe, expect, it } from 'vitest';
import {
  Gate,
  MemoryApprovalRepository,
  MemoryBudgetRepository,
  answerApproval,
  approvalSignedText,
  argumentsDigest,
  enforceCall,
  type ApprovalRepository,
  type EnforcementOptions,
} from '../../src/gates/index.js';
import type { VerifiedChain } from '../../src/credentials/index.js';
import { credentialSigningKey, signWithCredentialKey } from '../../src/credentials/internal.js';
import { toHex } from '../../src/encoding/index.js';
import { revoke } from '../helpers/deny-set.js';
import { GATE_NOW, HeldBundleSource, bundleOf, gateWorld } from '../helpers/gate-world.js';

const NOW = GATE_NOW + 20;

async function setup(
  options: { budget?: number; callsPerMinute?: number; subAgents?: number } = {},
) {
  const w = await gateWorld({
    ...(options.budget === undefined ? {} : { budget: options.budget }),
    subAgents: options.subAgents ?? 2,
  });
  const bundles = new HeldBundleSource(bundleOf());
  const approvals: ApprovalRepository = new MemoryApprovalRepository();
  const budgets = new MemoryBudgetRepository();
  const gate = new Gate({ catalog: w.catalog, bundles, denySet: w.denySet });
  const enforcement: EnforcementOptions = {
    gate,
    bundles,
    approvals,
    budgets,
    denySet: w.denySet,
    authorities: w.authorities,
    ...(options.callsPerMinute === undefined ? {} : { callsPerMinute: options.callsPerMinute }),
  };
  const refund = (chain: VerifiedChain, amount: number, nowSeconds = NOW, order = 'o-1') =>
    enforceCall(enforcement, chain, { tool: 'issue_refund', args: { order, amount } }, nowSeconds);
  const answer = (
    id: string,
    decision: 'approve' | 'deny',
    who: 'approver' | 'dana' | 'robot' | 'support' = 'approver',
    nowSeconds = NOW + 5,
  ) => {
    const party = w[who];
    const chain = {
      approver: w.approverChain,
      dana: w.danaChain,
      robot: w.robotChain,
      support: w.supportChain,
    }[who];
    return answerApproval(approvals, {
      id,
      decision,
      reason: 'checked with the customer',
      approver: chain,
      signer: party.issuer,
      vault: w.vault,
      nowSeconds,
    });
  };
  return { ...w, bundles, approvals, budgets, gate, enforcement, refund, answer };
}

describe('human approvals', () => {
  it('caps the pending requests of one agent: it cannot flood the humans’ queue', async () => {
    const s = await setup();
    const sub = s.subAgents[0]!.chain;
    const capped = { ...s.enforcement, maxPendingApprovals: 2 };
    const ask = (order: string) =>
      enforceCall(capped, sub, { tool: 'issue_refund', args: { order, amount: 300 } }, NOW);
    const first = await ask('o-1');
    expect(first.decision).toBe('approval_required');
    expect((await ask('o-2')).decision).toBe('approval_required');
    expect(await ask('o-3')).toMatchObject({
      decision: 'deny',
      lock: 'approval',
      code: 'ERR_GATE_APPROVALS_PENDING_LIMIT',
    });
    // asking again for a recorded request is no new request
    expect((await ask('o-1')).approval?.id).toBe(first.approval!.id);
    // another agent has its own count; an answered request frees a place
    expect((await s.refund(s.subAgents[1]!.chain, 300, NOW, 'o-9')).decision).toBe(
      'approval_required',
    );
    await s.answer(first.approval!.id!, 'deny');
    expect((await ask('o-3')).decision).toBe('approval_required');
  });

  it('a call that needs a person waits, passes once after a human approves, and only with those arguments', async () => {
    const s = await setup();
    const sub = s.subAgents[0]!.chain;
    const first = await s.refund(sub, 300);
    expect(first).toMatchObject({ decision: 'approval_required', lock: 'approval' });
    const id = first.approval!.id!;
    // asking again finds the same pending request
    expect((await s.refund(sub, 300)).approval?.id).toBe(id);
    const pending = await s.approvals.get(id);
    // what the human sees: the arguments, the tool, who asks and why
    expect(pending).toMatchObject({
      status: 'pending',
      agent: sub.actor,
      tool: 'orders/issue_refund',
      arguments: '{"amount":300,"order":"o-1"}',
      argumentsDigest: argumentsDigest({ order: 'o-1', amount: 300 }).digest,
      reason: 'refunds above 200 need a person',
      bundleVersion: 1,
    });
    const answered = await s.answer(id, 'approve');
    expect(answered.answer).toMatchObject({
      approver: s.approver.identity.identifier,
      decision: 'approve',
      reason: 'checked with the customer',
    });
    // other arguments: not this approval (a new request)
    const other = await s.refund(sub, 301);
    expect(other.decision).toBe('approval_required');
    expect(other.approval?.id).not.toBe(id);
    // exactly those arguments: allowed once
    const allowed = await s.refund(sub, 300);
    expect(allowed).toMatchObject({ decision: 'allow', lock: null, approval: { id } });
    expect((await s.approvals.get(id))?.status).toBe('used');
    // replayed: a new request, not an allow
    const replay = await s.refund(sub, 300);
    expect(replay.decision).toBe('approval_required');
    expect(replay.approval?.id).not.toBe(id);
  });

  it('an approval is bound to the agent and chain: a sibling with the same arguments is not let through', async () => {
    const s = await setup();
    const [a, b] = [s.subAgents[0]!.chain, s.subAgents[1]!.chain];
    const id = (await s.refund(a, 300)).approval!.id!;
    await s.answer(id, 'approve');
    expect((await s.refund(b, 300)).decision).toBe('approval_required');
    expect((await s.refund(a, 300)).decision).toBe('allow');
  });

  it('only a human identity may answer: not an agent, not a delegated chain, not the asking agent', async () => {
    const s = await setup();
    const id = (await s.refund(s.subAgents[0]!.chain, 300)).approval!.id!;
    await expect(s.answer(id, 'approve', 'robot')).rejects.toMatchObject({
      code: 'ERR_APPROVAL_NOT_HUMAN',
    });
    // support acts for dana (a human), but is not one
    await expect(s.answer(id, 'approve', 'support')).rejects.toMatchObject({
      code: 'ERR_APPROVAL_NOT_HUMAN',
    });
    expect((await s.approvals.get(id))?.status).toBe('pending');
    // dana is human (her own credential): she may
    await expect(s.answer(id, 'approve', 'dana')).resolves.toMatchObject({ status: 'approved' });
    // a human asking for herself cannot approve her own call
    const own = (await s.refund(s.danaChain, 300)).approval!.id!;
    await expect(s.answer(own, 'approve', 'dana')).rejects.toMatchObject({
      code: 'ERR_APPROVAL_SELF',
    });
  });

  it('a denial is kept and the call stays denied with the human reason', async () => {
    const s = await setup();
    const sub = s.subAgents[0]!.chain;
    const id = (await s.refund(sub, 300)).approval!.id!;
    await s.answer(id, 'deny');
    const d = await s.refund(sub, 300);
    expect(d).toMatchObject({ decision: 'deny', lock: 'approval', code: 'ERR_APPROVAL_DENIED' });
    expect(d.reasons[0]).toContain('checked with the customer');
    await expect(s.answer(id, 'approve')).rejects.toMatchObject({ code: 'ERR_APPROVAL_CLOSED' });
  });

  it('refuses an expired request, a missing one, and an empty reason', async () => {
    const s = await setup();
    const id = (await s.refund(s.subAgents[0]!.chain, 300)).approval!.id!;
    await expect(s.answer(id, 'approve', 'approver', NOW + 900)).rejects.toMatchObject({
      code: 'ERR_APPROVAL_CLOSED',
    });
    await expect(s.answer('nope', 'approve')).rejects.toMatchObject({
      code: 'ERR_APPROVAL_NOT_FOUND',
    });
    await expect(
      answerApproval(s.approvals, {
        id,
        decision: 'approve',
        reason: ' ',
        approver: s.approverChain,
        signer: s.approver.issuer,
        vault: s.vault,
        nowSeconds: NOW + 5,
      }),
    ).rejects.toMatchObject({ code: 'ERR_APPROVAL_REASON_INVALID' });
  });

  it('a tampered record (another argument digest under the signature) lets nothing through', async () => {
    const s = await setup();
    const sub = s.subAgents[0]!.chain;
    // the store is the attacker's: it answers a pending request with a decision signed for another
    const id = (await s.refund(sub, 300)).approval!.id!;
    const forged = (await s.refund(sub, 350)).approval!.id!; // another digest
    const signedElsewhere = await s.answer(forged, 'approve');
    await s.approvals.answer(id, signedElsewhere.answer!, NOW + 5);
    const d = await s.refund(sub, 300);
    expect(d).toMatchObject({ decision: 'deny', code: 'ERR_APPROVAL_SIGNATURE_INVALID' });
  });

  it('an answer forged into the store by an identity that is no human lets nothing through', async () => {
    const s = await setup();
    const sub = s.subAgents[0]!.chain;
    const id = (await s.refund(sub, 300)).approval!.id!;
    const record = (await s.approvals.get(id))!;
    // the robot signs a well-formed answer with its own credential key, bypassing answerApproval
    const fields = {
      approver: s.robot.identity.identifier,
      decision: 'approve',
      reason: 'trust me',
      answeredAt: NOW + 5,
    } as const;
    const signed = approvalSignedText(record, fields);
    const key = await credentialSigningKey(s.vault, s.robot.issuer, NOW + 5);
    const signature = await signWithCredentialKey(
      s.vault,
      s.robot.issuer,
      key,
      new TextEncoder().encode(signed),
    );
    await s.approvals.answer(
      id,
      {
        ...fields,
        signed,
        signatureKeyType: signature.keyType,
        signature: toHex(signature.bytes),
        attestation: toHex(s.robot.issuer.credentialKeyAttestation),
        approverChain: toHex(s.robotChain.bytes),
      },
      NOW + 5,
    );
    expect(await s.refund(sub, 300)).toMatchObject({
      decision: 'deny',
      code: 'ERR_APPROVAL_NOT_HUMAN',
    });
  });

  it('without authorities to check the approver, an approved call is denied', async () => {
    const s = await setup();
    const sub = s.subAgents[0]!.chain;
    const id = (await s.refund(sub, 300)).approval!.id!;
    await s.answer(id, 'approve');
    const d = await enforceCall(
      {
        gate: s.gate,
        bundles: s.bundles,
        approvals: s.approvals,
        budgets: s.budgets,
        denySet: s.denySet,
      },
      sub,
      { tool: 'issue_refund', args: { order: 'o-1', amount: 300 } },
      NOW,
    );
    expect(d).toMatchObject({ decision: 'deny', code: 'ERR_GATE_APPROVAL_UNAVAILABLE' });
  });

  it('a revoked approver’s approval no longer counts', async () => {
    const s = await setup();
    const sub = s.subAgents[0]!.chain;
    const id = (await s.refund(sub, 300)).approval!.id!;
    await s.answer(id, 'approve');
    revoke(s.denySet, s.approver.identity.identifier, {
      identity: true,
      expiresAt: NOW + 3600,
      nowSeconds: NOW,
    });
    expect((await s.refund(sub, 300)).decision).toBe('deny');
  });

  it('without an approval store, approval_required is a deny that says so', async () => {
    const s = await setup();
    const d = await enforceCall(
      { gate: s.gate, bundles: s.bundles },
      s.subAgents[0]!.chain,
      { tool: 'issue_refund', args: { order: 'o', amount: 300 } },
      NOW,
    );
    expect(d).toMatchObject({ decision: 'deny', code: 'ERR_GATE_APPROVAL_UNAVAILABLE' });
  });
});

describe('budgets and rate limits', () => {
  it('siblings share the root grant budget: the one that would exceed it is denied', async () => {
    const s = await setup({ budget: 500, subAgents: 3 });
    const [a, b, c] = s.subAgents.map((x) => x.chain);
    expect((await s.refund(a!, 150)).decision).toBe('allow');
    expect((await s.refund(b!, 150)).decision).toBe('allow');
    expect((await s.refund(c!, 150)).decision).toBe('allow');
    const over = await s.refund(a!, 100);
    expect(over).toMatchObject({
      decision: 'deny',
      lock: 'budget',
      code: 'ERR_GATE_BUDGET_EXHAUSTED',
    });
    expect(over.reasons[0]).toContain('50 left');
    expect((await s.refund(b!, 50)).decision).toBe('allow');
    expect((await s.refund(c!, 1)).decision).toBe('deny');
    // dana herself counts against her own grant too
    expect((await s.refund(s.danaChain, 1)).lock).toBe('budget');
  });

  it('a denied call spends nothing, and concurrent calls never overshoot', async () => {
    const s = await setup({ budget: 100, subAgents: 4 });
    expect((await s.refund(s.subAgents[0]!.chain, 401)).lock).toBe('chain');
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => s.refund(s.subAgents[i % 4]!.chain, 15, NOW, `o-${i}`)),
    );
    expect(results.filter((r) => r.decision === 'allow')).toHaveLength(6);
    const key = `${s.danaChain.root.revocationId}:issue_refund#amount`;
    expect(await s.budgets.spent(key)).toBe(90);
  });

  it('an approved call is counted against the budget as well', async () => {
    const s = await setup({ budget: 350 });
    const sub = s.subAgents[0]!.chain;
    const id = (await s.refund(sub, 300)).approval!.id!;
    await s.answer(id, 'approve');
    expect((await s.refund(sub, 300)).decision).toBe('allow');
    expect((await s.refund(sub, 100)).lock).toBe('budget');
  });

  it('a store error after the budget was spent gives the budget back (a deny consumes nothing)', async () => {
    const s = await setup({ budget: 350 });
    const sub = s.subAgents[0]!.chain;
    const id = (await s.refund(sub, 300)).approval!.id!;
    await s.answer(id, 'approve');
    const consume = s.approvals.consume.bind(s.approvals);
    s.approvals.consume = () => Promise.reject(new Error('the store went away'));
    expect(await s.refund(sub, 300)).toMatchObject({
      decision: 'deny',
      code: 'ERR_GATE_STORE_FAILED',
    });
    s.approvals.consume = consume;
    // The 300 were refunded: the same approved call now fits the 350.
    expect(await s.refund(sub, 300)).toMatchObject({ decision: 'allow', approval: { id } });
  });

  it('limits calls per minute per agent', async () => {
    const s = await setup({ callsPerMinute: 2 });
    const [a, b] = s.subAgents.map((x) => x.chain);
    const minute = Math.floor(NOW / 60) * 60;
    expect((await s.refund(a!, 1, minute)).decision).toBe('allow');
    expect((await s.refund(a!, 1, minute + 1)).decision).toBe('allow');
    expect(await s.refund(a!, 1, minute + 2)).toMatchObject({
      decision: 'deny',
      lock: 'rate',
      code: 'ERR_GATE_RATE_LIMITED',
    });
    expect((await s.refund(b!, 1, minute + 3)).decision).toBe('allow');
    expect((await s.refund(a!, 1, minute + 60)).decision).toBe('allow');
  });

  it('a malformed budget declaration denies every call under that root, naming the budget lock', async () => {
    const w = await gateWorld({ root: ['tools=read_orders,issue_refund,deploy'] });
    const { issueCredential, chainFromCredential, constraintsToAttributes, parseConstraint } =
      await import('../../src/credentials/index.js');
    const attributes = constraintsToAttributes(new Map([parseConstraint('tools=issue_refund')]));
    attributes.set('mandate.budget:issue_refund#amount', new TextEncoder().encode('=many'));
    const bytes = chainFromCredential(
      await issueCredential(w.vault, w.authority.issuer, w.dana.identity, attributes, {
        nowSeconds: GATE_NOW,
        ttlSeconds: 600,
      }),
      w.dana.identity,
    );
    const chain = w.verify(bytes, w.dana.identity.identifier);
    const bundles = new HeldBundleSource(bundleOf());
    const gate = new Gate({ catalog: w.catalog, bundles, denySet: w.denySet });
    const d = await enforceCall(
      { gate, bundles, budgets: new MemoryBudgetRepository() },
      chain,
      { tool: 'issue_refund', args: { order: 'o', amount: 1 } },
      NOW,
    );
    expect(d).toMatchObject({
      decision: 'deny',
      lock: 'budget',
      code: 'ERR_BUDGET_DECLARATION_INVALID',
    });
  });

  it('a declared budget with no counters denies (fail closed)', async () => {
    const s = await setup({ budget: 100 });
    const d = await enforceCall(
      { gate: s.gate, bundles: s.bundles },
      s.subAgents[0]!.chain,
      { tool: 'issue_refund', args: { order: 'o', amount: 1 } },
      NOW,
    );
    expect(d).toMatchObject({
      decision: 'deny',
      lock: 'budget',
      code: 'ERR_GATE_BUDGET_UNAVAILABLE',
    });
  });
});
