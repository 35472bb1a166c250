import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { json, run } from '../helpers/cli.js';

// Keeps `npm start` true: the whole scenario, small, with its outcomes asserted.
describe('mandate demo', () => {
  it('provisions, rotates, verifies, enrolls, delegates, revokes, talks over secure channels through a relay, gates tool calls, and calls real MCP servers through the gateway', async () => {
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
      audit: AuditSummary;
      broker: {
        tokens: Record<'billing' | 'support', { audience: string; scope: string }>;
        injectedCalls: number;
        secretSeenByAgents: boolean;
        revocation: {
          leasesRevoked: number;
          jtiListed: boolean;
          proxyAfter: number;
          postgres: string;
        };
        leaseRecords: number;
        verifiedRecords: number;
      };
      gateway: GatewaySummary;
      revocationToEnforcement: { enforcementPointMs: number; gatewayMs: number };
    };
    expect(summary.agents).toBe(40);
    // Revocation to enforcement, both mid-run revocations: each a measured duration (its size is
    // the benchmarks' business), and the same figures the parts report.
    const latencies = summary.revocationToEnforcement;
    expect(Object.keys(latencies).sort()).toEqual(['enforcementPointMs', 'gatewayMs']);
    for (const ms of Object.values(latencies)) {
      expect(Number.isFinite(ms)).toBe(true);
      expect(ms).toBeGreaterThanOrEqual(0);
    }
    expect(latencies.enforcementPointMs).toBe(summary.gates.revocation.latencyMs);
    expect(latencies.gatewayMs).toBe(summary.gateway.revocation.latencyMs);
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
    checkAudit(summary.audit, summary.gates);
    // 17: the broker. Each agent its own token; injection without the agents seeing a secret;
    // the compromised agent's leases (2, or 3 with the PostgreSQL login) die at once.
    const b = summary.broker;
    expect(b.tokens).toEqual({
      billing: { audience: 'payments', scope: 'charges' },
      support: { audience: 'payments', scope: 'refunds' },
    });
    expect(b.injectedCalls).toBe(2);
    expect(b.secretSeenByAgents).toBe(false);
    expect(b.revocation.jtiListed).toBe(true);
    expect(b.revocation.proxyAfter).not.toBe(200);
    if (b.revocation.postgres === 'login failed') expect(b.revocation.leasesRevoked).toBe(3);
    else {
      expect(b.revocation.postgres).toMatch(/^skipped: /);
      expect(b.revocation.leasesRevoked).toBe(2);
    }
    // granted ×4 + used ×3 + granted ×2 (+1 postgres) + revoked ×2 (+1): every lease event.
    expect(b.leaseRecords).toBe(b.revocation.leasesRevoked === 3 ? 13 : 11);
    // The whole log verifies: step 16's records, the lease records and the revocation.
    expect(b.verifiedRecords).toBe(summary.audit.counts.records + b.leaseRecords + 1);
    checkGateway(summary.gateway, b.verifiedRecords);
    // The exported files verify with the CLI too (and the edited copy fails there at its line).
    const demoHome = join(home, 'demo');
    const { trail, checkpoint, tampered } = summary.audit.files;
    for (const f of [trail, checkpoint, tampered]) expect(existsSync(f)).toBe(true);
    const ok = await run(
      '--home',
      demoHome,
      '--json',
      'audit',
      'verify',
      '--log',
      trail,
      '--checkpoint',
      checkpoint,
    );
    expect(ok.code, ok.stderr).toBe(0);
    expect(json(ok)).toMatchObject({ ok: true, records: summary.audit.counts.records });
    const bad = await run(
      '--home',
      demoHome,
      '--json',
      'audit',
      'verify',
      '--log',
      tampered,
      '--checkpoint',
      checkpoint,
    );
    expect(bad.code).toBe(13);
    expect(json(bad)).toMatchObject({
      ok: false,
      problem: { code: 'ERR_AUDIT_RECORD_EDITED', position: { line: summary.audit.tamper.line } },
    });
  }, 120_000);

  it('prints the gates part: gate 1, gate 2 with a rate, each denial with its lock, the approval, the budget, the revocation', async () => {
    const home = mkdtempSync(join(tmpdir(), 'mandate-demo-'));
    const r = await run('--home', home, 'demo', '--agents', '12', '--rotate', '2');
    expect(r.code, r.stderr).toBe(0);
    const out = r.stdout + r.stderr;
    expect(out).toMatch(
      /\n9\. the authority publishes policy bundle version 1 \(6 Cedar policies, signed\) over 4 tools: crm\/orders\.lookup, crm\/orders\.refund, files\/files\.read, files\/files\.delete\n/,
    );
    expect(out).toMatch(
      /\n10\. human-ava \(human=true, refund budget 300 for her whole grant\) delegates to support-agent \(refunds ≤ 200, ticket files\), which delegates to 6 sub-agents: refunds ≤ 100,/,
    );
    expect(out).toMatch(/ sees: crm\/orders\.lookup, crm\/orders\.refund, files\/files\.read\n/);
    expect(out).toMatch(
      /\n11\. .*: 6000\/6000 allowed in \d+\.\d\d s \(\d+ calls\/s; per decision p50 \d+ µs, p99 \d+ µs\)\n/,
    );
    expect(out).toMatch(
      /a refund of 150 \(delegated ≤ 100\) +→ deny, lock chain ERR_GATE_CHAIN_DENIED: chain level 2 \(`orders\.refund#amount`\)/,
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
      /\n15\. revoking sub-agent I[0-9a-f]{11}… mid-run \(revocation record at log index \d+\): its call before → allow; the very next, signed → refused by the enforcement point: ERR_REVOKED identity `I[0-9a-f]{64}` is revoked; a sibling → allow; \d+\.\d\d ms from the revocation's commit to that refusal\n/,
    );
    expect(out).toMatch(
      / {4}300 of them also signed by their agents and recorded through the enforcement point \(invocation \+ countersigned decision, durable\): \d+\.\d\d s \(\d+ recorded calls\/s\)\n/,
    );
    // 16: the trail verified offline, an edited copy caught at its line, the auditor's answer.
    expect(out).toMatch(
      /\n16\. the run's audit trail, verified offline: the authority signs a checkpoint of 638 records; exported to .*audit-trail\.jsonl\n {4}verified with nothing but the files and the trusted identities → ok: 638 records \(315 signed invocations, 315 countersigned decisions, 6 agents, 1 revocation\), 638 signatures and the Merkle root in \d+\.\d\d s\n/,
    );
    expect(out).toMatch(
      / {4}a copy with line (\d+) edited \(the approver's reason: "charged twice" → "charged once"\) → FAILED: ERR_AUDIT_RECORD_EDITED \(ERR_AUDIT_SIGNATURE_INVALID\) at line \1\n/,
    );
    expect(out).toMatch(/ {6}on behalf of {3}authority → human-ava → support-agent → agent-\d+\n/);
    expect(out).toMatch(
      / {6}constraints {4}root credential \(authority → human-ava\): human=true, .*mandate\.budget:orders\.refund#amount<=300, orders\.refund#amount<=500, /,
    );
    expect(out).toMatch(/ {21}link 1 \(human-ava → support-agent\): orders\.refund#amount<=200, /);
    expect(out).toMatch(/ {21}link 2 \(support-agent → agent-\d+\): orders\.refund#amount<=100, /);
    expect(out).toMatch(/ {6}policy {9}allow by large-refunds; bundle [0-9a-f]{64} /);
    expect(out).toMatch(
      / {6}approved by {4}human-ava \(I[0-9a-f]{12}…\), the human at the root of the chain: "customer verified by phone: charged twice"/,
    );
    expect(r.stdout).toMatch(
      /\ngates: +bundle v1 \(6 Cedar policies\) over 3 visible tools; 6000 gate-2 calls/,
    );
    // 17: the broker.
    expect(out).toMatch(
      /\n17\. the broker \(gate 3\): 2 upstream secrets sealed in the store \(payments-upstream, refunds-upstream\)/,
    );
    expect(out).toMatch(/ {4}support-refunds-agent asks for scope charges → ERR_LEASE_DENIED/);
    expect(out).toMatch(
      /through the injecting proxy over their secure channels: 2\/2 accepted by the upstream \(it checks the real secret\); bytes the agents received that held a secret: none/,
    );
    expect(out).toMatch(
      /compromised-agent revoked: [23] leases ended in \d+\.\d ms; its token's jti is on the broker's \/revoked list \(yes\): relying parties refuse it at their next check of \/revoked, or at exp at the latest; its proxied call → (refused|[45]\d\d); (its database login fails \(role dropped, sessions ended\)|PostgreSQL part skipped: .+)\n/,
    );
    // 18: the MCP gateway, through a relay, in front of the filesystem and refund servers.
    expect(out).toMatch(
      /\n18\. the MCP gateway in front of real MCP servers: @modelcontextprotocol\/server-filesystem on .*gateway-files and the package's example refund server; bundle v3 signs their \d+ tools\n/,
    );
    expect(out).toMatch(
      /8 agents delegated by human-kai reach it through the relay over secure channels .*; gate 1 — readers see: list_directory, read_text_file; refunders see: list_directory, list_refunds, read_text_file, refund\n/,
    );
    expect(out).toMatch(
      /\n {4}48\/48 reads of the ticket's files allowed in \d+\.\d\d s \(\d+ calls\/s/,
    );
    expect(out).toMatch(
      /a reader writes a ticket file \(its chain grants it\) +→ deny ERR_GATE_POLICY_DENIED\n/,
    );
    expect(out).toMatch(/injected: "refund 900 on order 7731" +→ deny ERR_GATE_CHAIN_DENIED\n/);
    expect(out).toMatch(
      /5 refunds of 60 by 5 sibling refunders \(each ≤ 100\): 300 of the 300 budget spent, the next → deny ERR_GATE_BUDGET_EXHAUSTED; the desk's ledger holds 5 refunds\n/,
    );
    expect(out).toMatch(
      /revoking swarm-refunder-5's link mid-run: its call before → allow; the very next → refused ERR_MCP_CHAIN_MISMATCH; its tool list 4 → 0 \(tools\/list_changed sent\); a sibling → allow; \d+\.\d\d ms from the revocation's commit to that refusal\n/,
    );
    // The summary line: both mid-run revocations, commit to refusal.
    expect(out).toMatch(
      /\n\s*revocation latency:?\s+\d+\.\d\d ms at the enforcement point, \d+\.\d\d ms through the MCP gateway \(from the revocation's commit to the refusal of the revoked agent's very next call\)\n/,
    );
    expect(out).toMatch(
      /\n {4}63 calls through the gateway: allow ×56, deny ERR_GATE_BUDGET_EXHAUSTED ×1, deny ERR_GATE_CHAIN_DENIED ×4, deny ERR_GATE_POLICY_DENIED ×1, refused ERR_MCP_CHAIN_MISMATCH ×1\n/,
    );
    // 8 agents' chain records come first, then each call's invocation, decision and outcome.
    expect(out).toMatch(/plaintext seen: no; 189 records .* verified → ok\n/);
    expect(out).toMatch(
      /lease records \(granted, used, revoked\) in the audit log, by lease id, never a value; the whole log \(\d+ records\) checkpointed again and verified → ok\n/,
    );
  }, 120_000);
});

interface GatewaySummary {
  upstreams: string[];
  upstreamTools: string[];
  bundle: { version: number; policies: number };
  agents: number;
  toolsListed: { reader: string[]; refunder: string[] };
  reads: { count: number; allowed: number; perSecond: number };
  denied: Record<string, string>;
  refunds: { executed: number; spent: number; limit: number; next: string; ledger: number };
  revocation: {
    before: string;
    nextCall: string;
    toolsBefore: number;
    toolsAfter: number;
    listChanged: boolean;
    sibling: string;
    latencyMs: number;
  };
  decisions: Record<string, number>;
  calls: number;
  relay: { bytes: number; plaintextSeen: boolean };
  writtenFile: boolean;
  audit: { records: number; verifiedRecords: number };
}

// 18: the swarm's calls through the gateway to the real filesystem server and the refund server.
function checkGateway(g: GatewaySummary, recordsBefore: number): void {
  expect(g.upstreams).toEqual(['fs', 'shop']);
  expect(g.upstreamTools).toEqual(
    expect.arrayContaining([
      'fs/read_text_file',
      'fs/list_directory',
      'fs/write_file',
      'shop/refund',
      'shop/list_refunds',
    ]),
  );
  expect(g.bundle.version).toBe(3);
  expect(g.agents).toBe(8);
  // Gate 1: each sees what its chain grants and the bundle permits (write_file never).
  expect(g.toolsListed).toEqual({
    reader: ['list_directory', 'read_text_file'],
    refunder: ['list_directory', 'list_refunds', 'read_text_file', 'refund'],
  });
  expect(g.reads).toMatchObject({ count: 48, allowed: 48 });
  expect(g.denied).toEqual({
    write: 'deny ERR_GATE_POLICY_DENIED',
    outsideFolder: 'deny ERR_GATE_CHAIN_DENIED',
    outsideServer: 'deny ERR_GATE_CHAIN_DENIED',
    injectedRefund: 'deny ERR_GATE_CHAIN_DENIED',
    injectedRead: 'deny ERR_GATE_CHAIN_DENIED',
  });
  // 5 × 60 = the 300 budget; only the allowed refunds reached the desk.
  expect(g.refunds).toEqual({
    executed: 5,
    spent: 300,
    limit: 300,
    next: 'deny ERR_GATE_BUDGET_EXHAUSTED',
    ledger: 5,
  });
  expect(g.revocation).toEqual({
    before: 'allow',
    nextCall: 'refused ERR_MCP_CHAIN_MISMATCH',
    toolsBefore: 4,
    toolsAfter: 0,
    listChanged: true,
    sibling: 'allow',
    latencyMs: expect.any(Number) as number,
  });
  // 48 reads + the injected letter + 5 refunds + the revoked agent's call before + a sibling's.
  expect(g.decisions).toEqual({
    allow: 56,
    'deny ERR_GATE_BUDGET_EXHAUSTED': 1,
    'deny ERR_GATE_CHAIN_DENIED': 4,
    'deny ERR_GATE_POLICY_DENIED': 1,
    'refused ERR_MCP_CHAIN_MISMATCH': 1,
  });
  expect(g.calls).toBe(63);
  expect(g.relay.bytes).toBeGreaterThan(0);
  expect(g.relay.plaintextSeen).toBe(false);
  expect(g.writtenFile).toBe(false);
  // Allowed: invocation, decision, outcome; denied: invocation, decision; refused: nothing; and
  // the revocation record, and the 8 agents' chain records. The whole log verifies with them.
  expect(g.audit.records).toBe(3 * 56 + 2 * 6 + 1 + 8);
  expect(g.audit.verifiedRecords).toBe(recordsBefore + g.audit.records);
}

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
  calls: {
    count: number;
    allowed: number;
    seconds: number;
    perSecond: number;
    p50Micros: number;
    p99Micros: number;
  };
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
  revocation: {
    revoked: string;
    before: string;
    nextCall: Denial;
    siblingStillAllowed: boolean;
    recordIndex: number;
    latencyMs: number;
  };
  audit: {
    calls: number;
    records: number;
    sample: { count: number; seconds: number; perSecond: number };
    refund: { invocation: string; approval: string };
  };
}

interface AuditSummary {
  files: { trail: string; checkpoint: string; tampered: string };
  checkpointTreeSize: number;
  verified: boolean;
  counts: {
    records: number;
    invocations: number;
    decisions: number;
    agents: number;
    revocations: number;
    signatures: number;
  };
  tamper: {
    line: number;
    detected: boolean;
    code: string | null;
    cause: string | null;
    reportedLine: number | null;
  };
  answer: {
    invocation: string;
    lines: { invocation: number; decision: number };
    tool: string;
    server: string | null;
    arguments: unknown;
    agent: string;
    path: string[];
    pathNames: string[];
    constraints: { grantedBy: string; grantedTo: string; constraints: string[] }[];
    decision: string;
    policies: string[];
    bundle: string | null;
    decidedBy: string;
    approval: {
      id: string;
      approver: string;
      approverName: string | null;
      approverIsChainRoot: boolean;
      reason: string;
      shown: string;
    };
  };
}

function checkAudit(a: AuditSummary, g: GateSummary): void {
  // Every showcase call and the sample: 300 + 4 injected + 3 for the approval + 6 refunds
  // (the last refused by the budget) + the revoked agent's call before + its sibling's after.
  expect(g.audit.calls).toBe(315);
  expect(g.audit.sample).toMatchObject({ count: 300 });
  expect(g.audit.sample.perSecond).toBeGreaterThan(0);
  // An invocation and a decision each, the approved refund's trace, the revocation record, and
  // one chain record per agent (its invocations name that chain by hash).
  expect(g.audit.records).toBe(2 * 315 + 2 + 6);
  expect(g.revocation.recordIndex).toBeGreaterThan(0);
  expect(a.verified).toBe(true);
  expect(a.checkpointTreeSize).toBe(g.audit.records);
  expect(a.counts).toEqual({
    records: g.audit.records,
    invocations: 315,
    decisions: 315,
    agents: 6,
    chains: 6,
    revocations: 1,
    signatures: g.audit.records,
  });
  // The edited copy: caught at exactly the edited line (the refund's decision), by its signature.
  expect(a.tamper).toEqual({
    line: a.answer.lines.decision,
    detected: true,
    code: 'ERR_AUDIT_RECORD_EDITED',
    cause: 'ERR_AUDIT_SIGNATURE_INVALID',
    reportedLine: a.answer.lines.decision,
  });
  // The answer, read from the verified export.
  const x = a.answer;
  expect(x.invocation).toBe(g.audit.refund.invocation);
  expect(x.lines.decision).toBeGreaterThan(x.lines.invocation);
  expect(x).toMatchObject({
    tool: 'orders.refund',
    server: 'crm',
    arguments: { order: '4471', amount: 100, region: 'eu-west-1' },
    decision: 'allow',
    policies: ['large-refunds'],
    bundle: g.bundle.hash,
  });
  // authority → human → support agent → sub-agent (the acting agent).
  expect(x.path).toHaveLength(4);
  expect(x.path.at(-1)).toBe(x.agent);
  expect(x.decidedBy).toBe(x.path[0]);
  expect(x.pathNames.slice(0, 3)).toEqual(['authority', 'human-ava', 'support-agent']);
  expect(x.pathNames[3]).toMatch(/^agent-\d+$/);
  expect(x.constraints.map((l) => [l.grantedBy, l.grantedTo])).toEqual([
    [x.path[0], x.path[1]],
    [x.path[1], x.path[2]],
    [x.path[2], x.path[3]],
  ]);
  expect(x.constraints[0]!.constraints).toEqual(
    expect.arrayContaining([
      'human=true',
      'orders.refund#amount<=500',
      'mandate.budget:orders.refund#amount<=300',
    ]),
  );
  expect(x.constraints[1]!.constraints).toContain('orders.refund#amount<=200');
  expect(x.constraints[2]!.constraints).toContain('orders.refund#amount<=100');
  expect(x.approval).toMatchObject({
    id: g.audit.refund.approval,
    approver: g.approval.approvedBy,
    approverName: 'human-ava',
    approverIsChainRoot: true,
    reason: 'customer verified by phone: charged twice',
    shown: 'a refund above 50 needs a person',
  });
  expect(x.approval.approver).toBe(x.path[1]);
}

function checkGates(g: GateSummary): void {
  expect(g.bundle).toMatchObject({ version: 1, policies: 6 });
  expect(g.bundle.hash).toMatch(/^[0-9a-f]{64}$/);
  expect(g.subAgents).toBe(6);
  // Gate 1: files.delete is in the catalog but no grant names it.
  expect(g.toolsListed).toEqual(['crm/orders.lookup', 'crm/orders.refund', 'files/files.read']);
  expect(g.calls).toMatchObject({ count: 6000, allowed: 6000 });
  expect(g.calls.perSecond).toBeGreaterThan(0);
  expect(g.calls.p50Micros).toBeGreaterThan(0);
  expect(g.calls.p99Micros).toBeGreaterThanOrEqual(g.calls.p50Micros);
  // Each injected call: denied, by the lock and for the reason the scenario means.
  const chain = { decision: 'deny', lock: 'chain', code: 'ERR_GATE_CHAIN_DENIED' };
  expect(g.injected.refundAboveLimit).toMatchObject(chain);
  expect(g.injected.refundAboveLimit.reason).toBe(
    'chain level 2 (`orders.refund#amount`): `orders.refund#amount` value `150` is outside `<=100`',
  );
  expect(g.injected.toolOutsideGrant).toMatchObject(chain);
  expect(g.injected.toolOutsideGrant.reason).toMatch(
    /^chain level 0 \(`tools`\): `tools` value `files\.delete` is not one of /,
  );
  expect(g.injected.pathOutsideSubtree).toMatchObject(chain);
  expect(g.injected.pathOutsideSubtree.reason).toBe(
    'chain level 2 (`files.read#path`): `files.read#path` value `/tickets/9921/customer-export.csv` is outside `=/tickets/4471/**`',
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
  // The revocation: allowed just before; the very next signed call refused by the enforcement
  // point (the chain is revoked: nothing logged); a sibling unaffected.
  expect(g.revocation).toMatchObject({ before: 'allow', siblingStillAllowed: true });
  expect(g.revocation.nextCall).toEqual({
    decision: 'refused',
    lock: null,
    code: 'ERR_REVOKED',
    reason: `identity \`${g.revocation.revoked}\` is revoked`,
  });
  // (How long it takes is the benchmarks' business, not a test's: the machine is shared.)
  expect(g.seconds).toBeGreaterThan(0);
}
