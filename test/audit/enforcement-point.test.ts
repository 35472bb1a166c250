// The enforcement point: signed invocations in, gate 2, the invocation and its countersigned
// decision durable in the audit log before the answer; replays, stale and unchained invocations
// refused with nothing logged; each agent's chain linear under a concurrent burst; escalations
// traced with the person's answer.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  AuditLog,
  auditRecordHash,
  CHAIN_RECORD_TYPE,
  CHAIN_REF_INVOCATION_RECORD_TYPE,
  chainHashOf,
  EnforcerSigner,
  InvocationSigner,
  MemoryAuditLogRepository,
  MemoryAuditTrailRepository,
  parseAuditRecord,
  signInvocation,
  verifyEnforcerRecord,
  verifyInvocation,
  type AuditRecord,
  type DecisionRecord,
  type AuditTrailRepository,
  type SignedRecord,
  type InvocationRecord,
} from '../../src/audit/index.js';
import {
  Gate,
  MemoryApprovalRepository,
  MemoryBudgetRepository,
  answerApproval,
  type EnforcementOptions,
} from '../../src/gates/index.js';
import { EnforcementPoint } from '../../src/node/enforcement-point.js';
import { openSqliteStore, type SqliteStore } from '../../src/store/open-sqlite-store.js';
import { isMandateError } from '../../src/core/index.js';
import { canonicalizeJson, toHex } from '../../src/encoding/index.js';
import { credentialSigningKey, signWithCredentialKey } from '../../src/credentials/internal.js';
import { GATE_NOW, HeldBundleSource, bundleOf, gateWorld } from '../helpers/gate-world.js';

const NOW = GATE_NOW + 20;
const stores: SqliteStore[] = [];
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
});

async function codeOf(work: () => Promise<unknown>): Promise<string> {
  try {
    await work();
  } catch (error) {
    if (isMandateError(error)) return error.code;
    throw error;
  }
  return 'no error';
}

async function setup(options: { path?: string; trail?: AuditTrailRepository } = {}) {
  const w = await gateWorld({ subAgents: 3 });
  const bundles = new HeldBundleSource(bundleOf());
  const approvals = new MemoryApprovalRepository();
  const enforcement: EnforcementOptions = {
    gate: new Gate({ catalog: w.catalog, bundles, denySet: w.denySet }),
    bundles,
    approvals,
    budgets: new MemoryBudgetRepository(),
    denySet: w.denySet,
    authorities: w.authorities,
  };
  const enforcers = new Map([[w.authority.identity.identifier, w.authority.identity]]);
  const signer = new EnforcerSigner(w.vault, w.authority.issuer);
  const open = async (path?: string, trail?: AuditTrailRepository) => {
    let repository, trailRepository;
    if (path === undefined) {
      repository = new MemoryAuditLogRepository();
      trailRepository = trail ?? new MemoryAuditTrailRepository();
    } else {
      const store = openSqliteStore(path);
      stores.push(store);
      repository = store.auditLog;
      trailRepository = trail ?? store.auditTrail;
    }
    const log = await AuditLog.open({ repository, origin: 'example.com/audit/test' });
    const point = await EnforcementPoint.open({
      enforcement,
      chains: w.verifier,
      authorities: w.authorities,
      log,
      trail: trailRepository,
      signer,
      discloseArguments: ({ tool }) => tool === 'read_orders',
    });
    return { log, point, trail: trailRepository };
  };
  const opened = await open(options.path, options.trail);
  const agents = [
    { party: w.support, chain: w.supportChainBytes },
    ...w.subAgents.map((s) => ({ party: s, chain: s.bytes })),
  ];
  const records = async (log: AuditLog): Promise<AuditRecord[]> =>
    (await log.readEntries(0, log.size)).map((e) => parseAuditRecord(e.record));
  return { w, approvals, enforcers, signer, open, agents, records, ...opened };
}

const readOrder = (order = 'o-1') => ({ order });

describe('EnforcementPoint', () => {
  it('logs the invocation and the countersigned decision before answering; both verify offline', async () => {
    const s = await setup();
    const agent = new InvocationSigner(s.w.vault, s.w.support.issuer);
    const args = readOrder();
    const signed = await agent.sign({
      chain: s.w.supportChainBytes,
      tool: 'read_orders',
      server: 'orders',
      args,
      nowSeconds: NOW,
    });
    const result = await s.point.submit(signed.bytes, args, NOW, s.w.supportChainBytes);
    expect(result.decision.decision).toBe('allow');
    // The chain's record first (its first invocation by hash), then the invocation and decision.
    expect([result.invocationIndex, result.decisionIndex]).toEqual([1, 2]);
    expect(s.log.size).toBe(3);
    const [chained, first, second] = await s.log.readEntries(0, 3);
    const chainRecord = verifyEnforcerRecord(chained!.record, { enforcers: s.enforcers });
    expect(chainRecord.record).toMatchObject({
      type: 'mandate/chain/v1',
      chainHash: chainHashOf(s.w.supportChainBytes),
    });
    expect(first!.record).toEqual(signed.bytes);
    expect(second!.record).toEqual(result.decisionRecord.bytes);
    const invocation = verifyInvocation(first!.record, {
      authorities: s.w.authorities,
      chain: s.w.supportChainBytes,
    });
    const decision = verifyEnforcerRecord(second!.record, { enforcers: s.enforcers, invocation });
    expect(decision.record).toMatchObject({
      type: 'mandate/decision/v1',
      decision: 'allow',
      policies: ['read-orders'],
      arguments: args,
    });
    // A denied call is logged as well, its arguments not disclosed for that tool.
    const deny = await agent.sign({
      chain: s.w.supportChainBytes,
      tool: 'issue_refund',
      server: 'orders',
      args: { order: 'o-2', amount: 5000 },
      nowSeconds: NOW,
    });
    const denied = await s.point.submit(
      deny.bytes,
      { order: 'o-2', amount: 5000 },
      NOW,
      s.w.supportChainBytes,
    );
    expect(denied.decision.decision).toBe('deny');
    expect(denied.decisionRecord.record).not.toHaveProperty('arguments');
    expect(denied.invocation.record.previous).toBe(signed.hash);
    expect(await s.point.head(s.w.support.identity.identifier)).toBe(deny.hash);
  });

  it('refuses unsigned, mis-signed, stale, replayed and unchained invocations and logs none', async () => {
    const s = await setup();
    const agent = new InvocationSigner(s.w.vault, s.w.support.issuer);
    const args = readOrder();
    const sign = (nowSeconds = NOW) =>
      agent.sign({ chain: s.w.supportChainBytes, tool: 'read_orders', args, nowSeconds });
    const good = await sign();
    const record = JSON.parse(new TextDecoder().decode(good.bytes)) as Record<string, unknown>;
    const unsigned = Object.fromEntries(Object.entries(record).filter(([k]) => k !== 'signature'));
    const enc = (v: unknown) => new TextEncoder().encode(canonicalizeJson(v));
    expect(
      await codeOf(() => s.point.submit(enc(unsigned), args, NOW, s.w.supportChainBytes)),
    ).toBe('ERR_AUDIT_SIGNATURE_MISSING');
    expect(
      await codeOf(() =>
        s.point.submit(enc({ ...record, tool: 'issue_refund' }), args, NOW, s.w.supportChainBytes),
      ),
    ).toBe('ERR_AUDIT_SIGNATURE_INVALID');
    expect(
      await codeOf(() => s.point.submit(good.bytes, readOrder('o-9'), NOW, s.w.supportChainBytes)),
    ).toBe('ERR_AUDIT_RECORD_MISMATCH');
    expect(
      await codeOf(() => s.point.submit(good.bytes, args, NOW + 301, s.w.supportChainBytes)),
    ).toBe('ERR_AUDIT_INVOCATION_STALE');
    // Another agent's chain under support's signature.
    const sub = s.w.subAgents[0]!;
    const foreign = await signInvocation(s.w.vault, s.w.support.issuer, {
      chain: sub.bytes,
      tool: 'read_orders',
      args,
      nowSeconds: NOW,
    });
    expect(await codeOf(() => s.point.submit(foreign.bytes, args, NOW, sub.bytes))).toBe(
      'ERR_CHAIN_PRESENTER_MISMATCH',
    );
    expect(s.log.size).toBe(0);
    await s.point.submit(good.bytes, args, NOW, s.w.supportChainBytes);
    // The same bytes again: no longer the successor of the agent's head.
    expect(
      await codeOf(() => s.point.submit(good.bytes, args, NOW + 1, s.w.supportChainBytes)),
    ).toBe('ERR_AUDIT_AGENT_CHAIN_MISMATCH');
    // The same nonce on a correctly chained invocation: a replay.
    const replay = await signInvocation(s.w.vault, s.w.support.issuer, {
      chain: s.w.supportChainBytes,
      tool: 'read_orders',
      args,
      nowSeconds: NOW + 2,
      previous: good.hash,
      nonce: Buffer.from(good.record.nonce, 'hex'),
    });
    expect(
      await codeOf(() => s.point.submit(replay.bytes, args, NOW + 2, s.w.supportChainBytes)),
    ).toBe('ERR_AUDIT_NONCE_REPLAYED');
    expect(s.log.size).toBe(3);
  });

  it('refuses a forward-dated invocation whose chain is expired at its issuedAt (the verifier time)', async () => {
    const s = await setup();
    const agent = new InvocationSigner(s.w.vault, s.w.support.issuer);
    const args = readOrder();
    const expires = s.w.verifier.verify(s.w.supportChainBytes, {
      nowSeconds: NOW,
      presenter: s.w.support.issuer.identity.identifier,
    }).expiresAt;
    // Signed 250 s ahead of the gate's clock, inside the window, past the chain's expiry.
    const ahead = await agent.sign({
      chain: s.w.supportChainBytes,
      tool: 'read_orders',
      args,
      nowSeconds: expires + 200,
    });
    expect(
      await codeOf(() => s.point.submit(ahead.bytes, args, expires - 50, s.w.supportChainBytes)),
    ).toBe('ERR_DELEGATION_EXPIRED');
    expect(s.log.size).toBe(0);
    // Inside the chain's validity at both times: logged, and it verifies at its issuedAt.
    const fine = await new InvocationSigner(s.w.vault, s.w.support.issuer).sign({
      chain: s.w.supportChainBytes,
      tool: 'read_orders',
      args,
      nowSeconds: expires - 100,
    });
    await s.point.submit(fine.bytes, args, expires - 350, s.w.supportChainBytes);
    const [, first] = await s.log.readEntries(0, 2);
    expect(
      verifyInvocation(first!.record, {
        authorities: s.w.authorities,
        chain: s.w.supportChainBytes,
      }).agent,
    ).toBe(s.w.support.issuer.identity.identifier);
  });

  it('keeps heads and nonces across a restart (SQLite), and rebuilds heads from the log alone', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'mandate-trail-')), 'mandate.db');
    const s = await setup({ path });
    const agent = new InvocationSigner(s.w.vault, s.w.support.issuer);
    const args = readOrder();
    const sent: SignedRecord<InvocationRecord>[] = [];
    for (let i = 0; i < 3; i++) {
      const signed = await agent.sign({
        chain: s.w.supportChainBytes,
        tool: 'read_orders',
        args,
        nowSeconds: NOW + i,
      });
      sent.push(signed);
      await s.point.submit(signed.bytes, args, NOW + i, s.w.supportChainBytes);
    }
    await s.point.flush();
    await s.log.close();
    stores.splice(0).forEach((st) => {
      st.close();
    });
    const again = await s.open(path);
    expect(await again.point.head(s.w.support.identity.identifier)).toBe(sent[2]!.hash);
    const signAfter = (previous: string, nowSeconds: number, nonce?: Uint8Array) =>
      signInvocation(s.w.vault, s.w.support.issuer, {
        chain: s.w.supportChainBytes,
        tool: 'read_orders',
        args,
        nowSeconds,
        previous,
        ...(nonce === undefined ? {} : { nonce }),
      });
    const replay = await signAfter(
      sent[2]!.hash,
      NOW + 5,
      Buffer.from(sent[1]!.record.nonce, 'hex'),
    );
    expect(
      await codeOf(() => again.point.submit(replay.bytes, args, NOW + 5, s.w.supportChainBytes)),
    ).toBe('ERR_AUDIT_NONCE_REPLAYED');
    // The chain was logged once, before the first call; a call after the restart logs no second
    // chain record (its position is stored), nor one after a trail index rebuilt from the log.
    const chainRecords = async (log: AuditLog) =>
      (await s.records(log)).filter((r) => r.type === CHAIN_RECORD_TYPE).length;
    const next = await signAfter(sent[2]!.hash, NOW + 6);
    await again.point.submit(next.bytes, args, NOW + 6, s.w.supportChainBytes);
    expect(await chainRecords(again.log)).toBe(1);
    await again.point.flush();
    // A trail index that lost everything (a crash before any head was stored): rebuilt from the log.
    const rebuilt = await s.open(path, new MemoryAuditTrailRepository());
    expect(await rebuilt.point.head(s.w.support.identity.identifier)).toBe(next.hash);
    const last = await signAfter(next.hash, NOW + 7);
    await rebuilt.point.submit(last.bytes, args, NOW + 7, s.w.supportChainBytes);
    expect(await chainRecords(rebuilt.log)).toBe(1);
  });

  it('keeps every agent chain linear under a concurrent burst', async () => {
    const s = await setup();
    const perAgent = 25;
    const work = s.agents.flatMap(({ party, chain }) => {
      const signer = new InvocationSigner(s.w.vault, party.issuer);
      return Array.from({ length: perAgent }, (_, i) => {
        const args = readOrder(`o-${i}`);
        return signer
          .sign({ chain, tool: 'read_orders', server: 'orders', args, nowSeconds: NOW })
          .then((signed) => s.point.submit(signed.bytes, args, NOW, chain));
      });
    });
    const results = await Promise.all(work);
    expect(results.every((r) => r.decision.decision === 'allow')).toBe(true);
    const records = await s.records(s.log);
    // Each agent's chain logged once, before the first invocation naming it.
    expect(records).toHaveLength((2 * perAgent + 1) * s.agents.length);
    const hashes = (await s.log.readEntries(0, s.log.size)).map((e) => auditRecordHash(e.record));
    const last = new Map<string, string | null>();
    const seen = new Set<string>();
    const chains = new Set<string>();
    records.forEach((r, i) => {
      if (r.type === CHAIN_RECORD_TYPE) {
        expect(chains.has(r.chainHash)).toBe(false);
        chains.add(r.chainHash);
      } else if (r.type === CHAIN_REF_INVOCATION_RECORD_TYPE) {
        expect(chains.has(r.chainHash)).toBe(true);
        expect(r.previous).toBe(last.get(r.agent) ?? null);
        last.set(r.agent, hashes[i]!);
        seen.add(hashes[i]!);
      } else if (r.type === 'mandate/decision/v1') {
        expect(seen.has(r.invocation)).toBe(true); // after its invocation
      }
    });
    for (const { party } of s.agents)
      expect(await s.point.head(party.identity.identifier)).toBe(
        last.get(party.identity.identifier),
      );
  });

  it('traces an escalation: the report, the policies, and how the person resolved it', async () => {
    const s = await setup();
    const agent = new InvocationSigner(s.w.vault, s.w.support.issuer);
    const args = { order: 'o-4471', amount: 500 };
    const ask = (nowSeconds: number, withReport: boolean) =>
      agent.sign({
        chain: s.w.supportChainBytes,
        tool: 'issue_refund',
        server: 'orders',
        args,
        nowSeconds,
        ...(withReport
          ? {
              report: {
                inputs: [{ name: 'user_message', value: 'the parcel never came', disclose: true }],
                reasoning: 'a full refund of a lost parcel',
              },
            }
          : {}),
      });
    const first = await ask(NOW, true);
    const escalated = await s.point.submit(first.bytes, args, NOW, s.w.supportChainBytes);
    expect(escalated.decision.decision).toBe('approval_required');
    const id = escalated.decisionRecord.record.escalation!.id;
    await answerApproval(s.approvals, {
      id,
      decision: 'approve',
      reason: 'carrier confirmed the loss',
      approver: s.w.approverChain,
      signer: s.w.approver.issuer,
      vault: s.w.vault,
      nowSeconds: NOW + 5,
    });
    const retry = await ask(NOW + 10, false);
    const allowed = await s.point.submit(retry.bytes, args, NOW + 10, s.w.supportChainBytes);
    expect(allowed.decision.decision).toBe('allow');
    const approval = allowed.decisionRecord.record.approval!;
    expect(approval).toMatchObject({
      id,
      approver: s.w.approver.identity.identifier,
      decision: 'approve',
      reason: 'carrier confirmed the loss',
      shown: {
        tool: 'orders/issue_refund',
        argumentsDigest: retry.record.argumentsDigest,
      },
    });
    // Disclosure is off for this tool: the record keeps what was shown as its digest only.
    expect(Object.hasOwn(approval.shown, 'arguments')).toBe(false);
    expect(new TextDecoder().decode(allowed.decisionRecord.bytes)).not.toContain('o-4471');
    const invocation = verifyInvocation(retry.bytes, {
      authorities: s.w.authorities,
      chain: s.w.supportChainBytes,
    });
    verifyEnforcerRecord(allowed.decisionRecord.bytes, {
      enforcers: s.enforcers,
      invocation,
      authorities: s.w.authorities,
    });
    expect(
      await codeOf(() =>
        Promise.resolve().then(() =>
          verifyEnforcerRecord(allowed.decisionRecord.bytes, {
            enforcers: s.enforcers,
            invocation,
          }),
        ),
      ),
    ).toBe('ERR_AUDIT_APPROVAL_INVALID');
    // An enforcer that records an approval by a non-human (here: the robot signing the same text)
    // is caught offline.
    const robotSigned = approval.signed.replace(
      s.w.approver.identity.identifier,
      s.w.robot.identity.identifier,
    );
    const robotKey = await credentialSigningKey(s.w.vault, s.w.robot.issuer, NOW + 5);
    const robotSignature = await signWithCredentialKey(
      s.w.vault,
      s.w.robot.issuer,
      robotKey,
      new TextEncoder().encode(robotSigned),
    );
    const body = Object.fromEntries(
      Object.entries(allowed.decisionRecord.record).filter(
        ([k]) => !['type', 'signature', 'enforcer', 'attestation'].includes(k),
      ),
    ) as Omit<DecisionRecord, 'type' | 'signature' | 'enforcer' | 'attestation'>;
    const forged = await s.signer.signDecision({
      ...body,
      approval: {
        ...approval,
        approver: s.w.robot.identity.identifier,
        signed: robotSigned,
        signature: toHex(robotSignature.bytes),
        attestation: toHex(s.w.robot.issuer.credentialKeyAttestation),
        approverChain: toHex(s.w.robotChain.bytes),
      },
    });
    expect(() =>
      verifyEnforcerRecord(forged.bytes, {
        enforcers: s.enforcers,
        invocation,
        authorities: s.w.authorities,
      }),
    ).toThrow(/not marked `human=true`/);
    // What was shown: the disclosed text with its digest verifies; other text, or another
    // digest than the signed one, does not.
    type Shown = NonNullable<DecisionRecord['approval']>['shown'];
    const reshown = async (shown: Shown) =>
      (await s.signer.signDecision({ ...body, approval: { ...approval, shown } })).bytes;
    const verifies = (bytes: Uint8Array) =>
      verifyEnforcerRecord(bytes, {
        enforcers: s.enforcers,
        invocation,
        authorities: s.w.authorities,
      });
    verifies(await reshown({ ...approval.shown, arguments: canonicalizeJson(args) }));
    // A record written before `argumentsDigest` existed: the text only.
    const withoutDigest = Object.fromEntries(
      Object.entries(approval.shown).filter(([k]) => k !== 'argumentsDigest'),
    ) as Shown;
    verifies(await reshown({ ...withoutDigest, arguments: canonicalizeJson(args) }));
    for (const shown of [
      { ...approval.shown, arguments: canonicalizeJson({ ...args, amount: 5 }) },
      { ...withoutDigest, arguments: canonicalizeJson({ ...args, amount: 5 }) },
      { ...approval.shown, argumentsDigest: 'ab'.repeat(32) },
    ]) {
      const bytes = await reshown(shown);
      expect(() => verifies(bytes)).toThrow(/arguments shown/);
    }
    const trace = allowed.trace!.record.record;
    expect(trace).toMatchObject({
      escalation: first.hash,
      resolvedBy: retry.hash,
      approval: id,
      policies: ['large-refunds'],
      report: first.record.report,
      resolution: { decision: 'approve', approver: s.w.approver.identity.identifier },
    });
    verifyEnforcerRecord(allowed.trace!.record.bytes, { enforcers: s.enforcers, invocation });
    // A denial is traced too.
    const other = { order: 'o-4472', amount: 600 };
    const ask2 = (nowSeconds: number) =>
      agent.sign({
        chain: s.w.supportChainBytes,
        tool: 'issue_refund',
        server: 'orders',
        args: other,
        nowSeconds,
      });
    const e2 = await s.point.submit(
      (await ask2(NOW + 20)).bytes,
      other,
      NOW + 20,
      s.w.supportChainBytes,
    );
    await answerApproval(s.approvals, {
      id: e2.decisionRecord.record.escalation!.id,
      decision: 'deny',
      reason: 'ask the carrier first',
      approver: s.w.approverChain,
      signer: s.w.approver.issuer,
      vault: s.w.vault,
      nowSeconds: NOW + 25,
    });
    const d2 = await s.point.submit(
      (await ask2(NOW + 30)).bytes,
      other,
      NOW + 30,
      s.w.supportChainBytes,
    );
    expect(d2.decision.code).toBe('ERR_APPROVAL_DENIED');
    expect(d2.decisionRecord.record.approval?.decision).toBe('deny');
    expect(d2.trace?.record.record.resolution.decision).toBe('deny');
  });

  it('logs outcomes and lease references, bound to their invocation', async () => {
    const s = await setup();
    const args = readOrder();
    const signed = await signInvocation(s.w.vault, s.w.support.issuer, {
      chain: s.w.supportChainBytes,
      tool: 'read_orders',
      args,
      nowSeconds: NOW,
    });
    const result = await s.point.submit(signed.bytes, args, NOW, s.w.supportChainBytes);
    const lease = await s.point.recordLease({
      invocation: result.invocation.hash,
      agent: result.invocation.agent,
      lease: 'lease-7',
      resource: 'vault:orders/db',
      event: 'granted',
      at: NOW,
      expiresAt: NOW + 60,
    });
    const outcome = await s.point.recordOutcome(
      result.invocation,
      { result: { order: 'o-1', total: 40 }, leases: ['lease-7'] },
      NOW + 1,
    );
    const failed = await s.point.recordOutcome(
      result.invocation,
      { error: 'ERR_UPSTREAM' },
      NOW + 2,
    );
    for (const r of [lease, outcome, failed])
      verifyEnforcerRecord(r.record.bytes, {
        enforcers: s.enforcers,
        invocation: result.invocation,
      });
    expect([lease.index, outcome.index, failed.index]).toEqual([3, 4, 5]);
    expect(outcome.record.record.resultDigest).toMatch(/^[0-9a-f]{64}$/);
    expect(failed.record.record).toMatchObject({
      status: 'error',
      error: 'ERR_UPSTREAM',
      resultDigest: null,
    });
  });

  it('any interleaving of agents, replays and stale sends keeps one linear chain per agent (property)', async () => {
    const s = await setup();
    const ops = fc.array(
      fc.record({
        agent: fc.nat(s.agents.length - 1),
        kind: fc.constantFrom('send', 'send', 'send', 'replay', 'stale', 'burst'),
      }),
      { minLength: 1, maxLength: 12 },
    );
    await fc.assert(
      fc.asyncProperty(ops, async (plan) => {
        const log = await AuditLog.open({
          repository: new MemoryAuditLogRepository(),
          origin: 'example.com/audit/property',
        });
        const point = await EnforcementPoint.open({
          enforcement: {
            gate: new Gate({
              catalog: s.w.catalog,
              bundles: new HeldBundleSource(bundleOf()),
              denySet: s.w.denySet,
            }),
            bundles: new HeldBundleSource(bundleOf()),
            denySet: s.w.denySet,
            authorities: s.w.authorities,
          },
          chains: s.w.verifier,
          authorities: s.w.authorities,
          log,
          trail: new MemoryAuditTrailRepository(),
          signer: s.signer,
        });
        const signers = s.agents.map((a) => new InvocationSigner(s.w.vault, a.party.issuer));
        const lastSent = new Map<number, Uint8Array>();
        let accepted = 0;
        let n = 0;
        const send = async (k: number, at = NOW): Promise<string> => {
          const args = readOrder(`o-${n++}`);
          const signed = await signers[k]!.sign({
            chain: s.agents[k]!.chain,
            tool: 'read_orders',
            args,
            nowSeconds: at,
          });
          lastSent.set(k, signed.bytes);
          return codeOf(() => point.submit(signed.bytes, args, NOW, s.agents[k]!.chain));
        };
        const pending: Promise<string>[] = [];
        for (const op of plan) {
          if (op.kind === 'send') pending.push(send(op.agent));
          else if (op.kind === 'burst') for (let i = 0; i < 3; i++) pending.push(send(op.agent));
          else if (op.kind === 'stale') {
            // Signed far from the clock: refused; the agent's signer moved on, so later sends of
            // this agent no longer follow the head and are refused too until it resyncs.
            const code = await send(op.agent, NOW + 1000);
            expect(code).toBe('ERR_AUDIT_INVOCATION_STALE');
            signers[op.agent] = new InvocationSigner(
              s.w.vault,
              s.agents[op.agent]!.party.issuer,
              await point.head(s.agents[op.agent]!.party.identity.identifier),
            );
          } else {
            const bytes = lastSent.get(op.agent);
            await Promise.all(pending);
            if (bytes !== undefined) {
              const args = JSON.parse(new TextDecoder().decode(bytes)) as {
                argumentsDigest: string;
              };
              expect(args.argumentsDigest).toMatch(/^[0-9a-f]{64}$/);
              const code = await codeOf(() =>
                point.submit(bytes, {}, NOW, s.agents[op.agent]!.chain),
              );
              expect(code).not.toBe('no error');
            }
          }
        }
        const codes = await Promise.all(pending);
        for (const c of codes) {
          if (c === 'no error') accepted++;
          else expect(c).toBe('ERR_AUDIT_AGENT_CHAIN_MISMATCH');
        }
        const entries = await log.readEntries(0, log.size);
        const last = new Map<string, string | null>();
        const logged = new Set<string>();
        const chains = new Set<string>();
        let decisions = 0;
        for (const e of entries) {
          const r = parseAuditRecord(e.record);
          if (r.type === CHAIN_RECORD_TYPE) {
            expect(chains.has(r.chainHash)).toBe(false);
            chains.add(r.chainHash);
          } else if (r.type === CHAIN_REF_INVOCATION_RECORD_TYPE) {
            expect(chains.has(r.chainHash)).toBe(true);
            expect(r.previous).toBe(last.get(r.agent) ?? null);
            last.set(r.agent, auditRecordHash(e.record));
            logged.add(auditRecordHash(e.record));
          } else if (r.type === 'mandate/decision/v1') {
            expect(logged.has(r.invocation)).toBe(true);
            decisions++;
          }
        }
        expect([logged.size, decisions]).toEqual([accepted, accepted]);
        expect(log.size).toBe(2 * accepted + chains.size);
      }),
      { numRuns: 15 },
    );
  });
});
