import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { json, run } from '../helpers/cli.js';

// Keeps `npm start` true: the whole scenario, small, with its outcomes asserted.
describe('mandate demo', () => {
  it('provisions, rotates, verifies, enrolls, delegates, revokes, talks over secure channels through a relay, and gates tool calls', async () => {
    const home = mkdtempSync(join(tmpdir(), 'mandate-demo-'));
    const r = await run('--home', home, '--json', 'demo', '--agents', '40', '--rotate', '4');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const summary = json(r) as {
      agents: number;
      rotations: { count: number };
      verification: { histories: number; attestations: number };
      attacks: Record<string, string>;
      credentials: {
        enrolled: number;
        credentialsVerified: number;
        subAgents: number;
        decisions: { allowed: number; denied: number; injectedCallDenied: string };
        revocation: { subAgentsDeniedAfter: number; humanStillAllowed: boolean };
      };
      channels: {
        channels: number;
        echoed: number;
        bytesRelayed: number;
        plaintextSeenByRelay: boolean;
        tamperedFrameDropped: boolean;
        refreshedStillAnswered: number;
        expiredCutOff: number;
      };
      gates: GateSummary;
    };
    expect(summary.agents).toBe(40);
    expect(summary.rotations.count).toBe(4);
    expect(summary.verification).toMatchObject({ histories: 40, attestations: 80 });
    expect(summary.attacks).toEqual({
      tamperedSignature: 'ERR_IDENTITY_SIGNATURE_INVALID',
      rollback: 'ERR_IDENTITY_HISTORY_OLDER',
      wrongIdentifier: 'ERR_IDENTITY_IDENTIFIER_MISMATCH',
    });
    expect(summary.credentials).toMatchObject({
      enrolled: 40,
      credentialsVerified: 40,
      subAgents: 10,
    });
    expect(summary.credentials.decisions).toMatchObject({ allowed: 10, denied: 10 });
    expect(summary.credentials.decisions.injectedCallDenied).toMatch(/^order: /);
    expect(summary.credentials.revocation).toEqual({
      ...summary.credentials.revocation,
      subAgentsDeniedAfter: 10,
      humanStillAllowed: true,
    });
    expect(summary.channels).toMatchObject({
      channels: 39,
      echoed: 39,
      plaintextSeenByRelay: false,
      tamperedFrameDropped: true,
      // 39 callers: the 20 at even positions refreshed in-band, the other 19 expired.
      refreshedStillAnswered: 20,
      expiredCutOff: 19,
    });
    expect(summary.channels.bytesRelayed).toBeGreaterThan(0);
    checkGates(summary.gates);
  });

  it('prints the gates part: gate 1, gate 2 with a rate, each denial with its lock, the approval, the budget, the revocation', async () => {
    const home = mkdtempSync(join(tmpdir(), 'mandate-demo-'));
    const r = await run('--home', home, 'demo', '--agents', '12', '--rotate', '2');
    expect(r.code, r.stderr).toBe(0);
    const out = r.stdout + r.stderr;
    expect(out).toMatch(
      /\n9\. the authority publishes policy bundle version 1 \(6 Cedar policies, signed\) over 4 tools: crm\/orders\.lookup, crm\/orders\.refund, files\/files\.read, files\/files\.delete\n/,
    );
    expect(out).toMatch(/ sees: crm\/orders\.lookup, crm\/orders\.refund, files\/files\.read\n/);
    expect(out).toMatch(/\n11\. .*: 6000\/6000 allowed in \d+\.\d\d s \(\d+ calls\/s\)\n/);
    expect(out).toMatch(
      /a refund of 300 \(delegated ≤ 100\) +→ deny, lock chain ERR_GATE_CHAIN_DENIED: chain level 1 \(`orders\.refund#amount`\)/,
    );
    expect(out).toMatch(/files\.delete \(never granted\) +→ deny, lock chain .*\(`tools`\)/);
    expect(out).toMatch(
      /read another customer's ticket file +→ deny, lock chain .*`\/tickets\/9921\/customer-export\.csv` is outside `=\/tickets\/4471\/\*\*`/,
    );
    expect(out).toMatch(
      /staging-only sub-agent → deny, lock policy ERR_GATE_POLICY_DENIED: forbidden by `refunds-from-production-only`/,
    );
    expect(out).toMatch(
      /\n13\. refund of 100 → approval_required, lock approval: a refund above 50 needs a person \(request [0-9a-f]{32}\)\n {4}human-ava approves \(signed\): "customer verified by phone: charged twice"\n {4}the same call again → allow \(large-refunds\), approval [0-9a-f]{32}\n {4}replayed → approval_required \(a new request [0-9a-f]{32}: the approval was used\)\n {4}approving request [0-9a-f]{32} again → ERR_APPROVAL_CLOSED\n/,
    );
    expect(out).toMatch(
      /\n14\. 5 sibling sub-agents refund 40 each: 5 refunds, 300 of 300 spent .*the next → deny, lock budget ERR_GATE_BUDGET_EXHAUSTED/,
    );
    expect(out).toMatch(
      /\n15\. revoking sub-agent I[0-9a-f]{11}… mid-run: its call before → allow; the very next → deny, lock chain ERR_GATE_CHAIN_DENIED: .*ERR_REVOKED.*; a sibling → allow\n/,
    );
    expect(r.stdout).toMatch(
      /\ngates: +bundle v1 \(6 Cedar policies\) over 3 visible tools; 6000 gate-2 calls/,
    );
  });
});

interface Denial {
  decision: string;
  lock: string | null;
  code: string | null;
  reason: string;
}

interface GateSummary {
  seconds: number;
  bundle: { version: number; hash: string; policies: number };
  subAgents: number;
  toolsListed: string[];
  calls: { count: number; allowed: number; seconds: number; perSecond: number };
  injected: Record<
    'refundAboveLimit' | 'toolOutsideGrant' | 'pathOutsideSubtree' | 'stagingRefund',
    Denial
  >;
  approval: {
    id: string;
    first: string;
    approvedBy: string;
    reason: string;
    afterApproval: string;
    replay: string;
    answeredAgain: string;
  };
  budget: { limit: number; spent: number; refunds: number; agents: number; next: Denial };
  revocation: { revoked: string; before: string; nextCall: Denial; siblingStillAllowed: boolean };
}

function checkGates(g: GateSummary): void {
  expect(g.bundle).toMatchObject({ version: 1, policies: 6 });
  expect(g.bundle.hash).toMatch(/^[0-9a-f]{64}$/);
  expect(g.subAgents).toBe(6);
  // Gate 1: files.delete is in the catalog but no grant names it.
  expect(g.toolsListed).toEqual(['crm/orders.lookup', 'crm/orders.refund', 'files/files.read']);
  expect(g.calls).toMatchObject({ count: 6000, allowed: 6000 });
  expect(g.calls.perSecond).toBeGreaterThan(0);
  // Each injected call: denied, by the lock and for the reason the scenario means.
  const chain = { decision: 'deny', lock: 'chain', code: 'ERR_GATE_CHAIN_DENIED' };
  expect(g.injected.refundAboveLimit).toMatchObject(chain);
  expect(g.injected.refundAboveLimit.reason).toBe(
    'chain level 1 (`orders.refund#amount`): `orders.refund#amount` value `300` is outside `<=100`',
  );
  expect(g.injected.toolOutsideGrant).toMatchObject(chain);
  expect(g.injected.toolOutsideGrant.reason).toMatch(
    /^chain level 0 \(`tools`\): `tools` value `files\.delete` is not one of /,
  );
  expect(g.injected.pathOutsideSubtree).toMatchObject(chain);
  expect(g.injected.pathOutsideSubtree.reason).toBe(
    'chain level 1 (`files.read#path`): `files.read#path` value `/tickets/9921/customer-export.csv` is outside `=/tickets/4471/**`',
  );
  expect(g.injected.stagingRefund).toEqual({
    decision: 'deny',
    lock: 'policy',
    code: 'ERR_GATE_POLICY_DENIED',
    reason: 'forbidden by `refunds-from-production-only`',
  });
  // The approval: asked, answered by the human, used once; a replay asks again; a second answer is refused.
  expect(g.approval).toMatchObject({
    first: 'approval_required',
    reason: 'customer verified by phone: charged twice',
    afterApproval: 'allow',
    replay: 'approval_required',
    answeredAgain: 'ERR_APPROVAL_CLOSED',
  });
  expect(g.approval.id).toMatch(/^[0-9a-f]{32}$/);
  expect(g.approval.approvedBy).toMatch(/^I[0-9a-f]{64}$/);
  // The budget: 100 (approved) + 5 × 40 = 300 of 300; the sixth sibling refund is refused.
  expect(g.budget).toMatchObject({ limit: 300, spent: 300, refunds: 5, agents: 5 });
  expect(g.budget.next).toMatchObject({
    decision: 'deny',
    lock: 'budget',
    code: 'ERR_GATE_BUDGET_EXHAUSTED',
  });
  expect(g.budget.next.reason).toContain('has 0 left, the call asks 40');
  // The revocation: allowed just before, denied on the very next call; a sibling unaffected.
  expect(g.revocation).toMatchObject({ before: 'allow', siblingStillAllowed: true });
  expect(g.revocation.nextCall).toMatchObject(chain);
  expect(g.revocation.nextCall.reason).toContain(
    `ERR_REVOKED: identity \`${g.revocation.revoked}\``,
  );
  // npm start stays fast: the gates part takes a few seconds at most even on a loaded machine.
  expect(g.seconds).toBeLessThan(15);
}
