// An enforcement point that learns a revocation from its authority over the bus logs it: one
// revocation record per entry per log, signed by the enforcement point, kept once across snapshot
// replays and restarts; `verifyTrail` accepts it from a trusted enforcement point only, and checks
// the records after it against it.
import { describe, expect, it } from 'vitest';
import {
  AuditLog,
  EnforcerSigner,
  InvocationSigner,
  MemoryAuditLogRepository,
  MemoryAuditTrailRepository,
  noteVerifierKey,
  verifyRevocationRecord,
  verifyTrail,
  type NoteSigner,
} from '../../src/audit/index.js';
import { DenySetFollower, InProcessBus, BusTopic } from '../../src/bus/index.js';
import { DenyEntryKind, DenySet, type DenyEntry } from '../../src/credentials/index.js';
import { ed25519KeyPairFromSeed, signEd25519 } from '../../src/crypto/index.js';
import { Gate, MemoryApprovalRepository, MemoryBudgetRepository } from '../../src/gates/index.js';
import { EnforcementPoint } from '../../src/node/enforcement-point.js';
import { RevocationRecorder } from '../../src/node/revocation-recorder.js';
import { expectCode } from '../helpers/errors.js';
import { GATE_NOW, HeldBundleSource, bundleOf, gateWorld } from '../helpers/gate-world.js';

const NOW = GATE_NOW + 20;
const ORIGIN = 'example.com/audit/revocations';
const pair = ed25519KeyPairFromSeed(new Uint8Array(32).fill(9));
const noteSigner: NoteSigner = {
  name: ORIGIN,
  keyId: noteVerifierKey(ORIGIN, pair.publicKey).keyId,
  publicKey: pair.publicKey,
  sign: (m) => Promise.resolve(signEd25519(pair.secretKey, m)),
};
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 20));
const REVOCATION_TYPE = '"type":"mandate/revocation/v1"}';
const decoder = new TextDecoder();

describe('RevocationRecorder', () => {
  it('logs each entry the bus delivers once, signed by the enforcement point; the trail verifies', async () => {
    const w = await gateWorld({ subAgents: 1 });
    const sub = w.subAgents[0]!;
    const bundles = new HeldBundleSource(bundleOf());
    const repository = new MemoryAuditLogRepository();
    const log = await AuditLog.open({ repository, origin: ORIGIN });
    const point = await EnforcementPoint.open({
      enforcement: {
        gate: new Gate({ catalog: w.catalog, bundles, denySet: w.denySet }),
        bundles,
        approvals: new MemoryApprovalRepository(),
        budgets: new MemoryBudgetRepository(),
        denySet: w.denySet,
        authorities: w.authorities,
      },
      chains: w.verifier,
      authorities: w.authorities,
      log,
      trail: new MemoryAuditTrailRepository(),
      signer: new EnforcerSigner(w.vault, w.authority.issuer),
    });
    // The node's own identity (robot) records what it applies; the authority is the source.
    const clock = { nowSeconds: () => NOW + 6 };
    const recorderOptions = {
      log,
      vault: w.vault,
      enforcer: w.robot.issuer,
      authority: w.authority.identity.identifier,
      clock,
    };
    let recorder = await RevocationRecorder.open(recorderOptions);
    const recorded: Promise<void>[] = [];
    const bus = new InProcessBus();
    const other: DenyEntry = {
      kind: DenyEntryKind.revocationId,
      id: 'ab'.repeat(16),
      revokedAt: NOW - 100,
      expiresAt: NOW + 3600,
    };
    bus.publishSnapshot(BusTopic.denySet, { sequence: 1, entries: [other], issuedAt: NOW });
    const follower = new DenySetFollower(bus, w.denySet, {
      onApplied: (entries) => recorded.push(recorder.record(entries)),
    });
    follower.start();
    await follower.ready;
    await Promise.all(recorded);
    expect(log.size).toBe(1);

    // The agent calls while it is not revoked: logged.
    const agent = new InvocationSigner(w.vault, sub.issuer);
    const args = { order: 'o-1' };
    const call = (nowSeconds: number) =>
      agent.sign({ chain: sub.bytes, tool: 'read_orders', server: 'orders', args, nowSeconds });
    const first = await call(NOW);
    expect((await point.submit(first.bytes, args, NOW, sub.bytes)).decision.decision).toBe('allow');
    expect(log.size).toBe(4);

    // The authority revokes the agent; the update reaches the node: enforced and logged.
    const revocation: DenyEntry = {
      kind: DenyEntryKind.identity,
      id: sub.identity.identifier,
      revokedAt: NOW + 5,
      expiresAt: NOW + 86_400,
      reason: 'left the team',
    };
    bus.publish(BusTopic.denySet, {
      fromSequence: 1,
      toSequence: 2,
      entries: [revocation],
      issuedAt: NOW + 5,
    });
    await settle();
    await Promise.all(recorded);
    expect(log.size).toBe(5);
    const [logged] = await log.readEntries(4, 5);
    const record = verifyRevocationRecord(
      logged!.record,
      w.authorities,
      new Map([[w.robot.identity.identifier, w.robot.identity]]),
    );
    expect(record).toMatchObject({
      kind: 'identity',
      id: sub.identity.identifier,
      revokedAt: NOW + 5,
      sequence: 2,
      authority: w.authority.identity.identifier,
      enforcer: w.robot.identity.identifier,
      appliedAt: NOW + 6,
      reason: 'left the team',
    });
    // Without the enforcement point among the trusted ones, it is not accepted.
    expectCode(
      () => verifyRevocationRecord(logged!.record, w.authorities),
      'ERR_AUDIT_SIGNER_UNTRUSTED',
    );
    // … nor when the authority it names is not trusted.
    expectCode(
      () =>
        verifyRevocationRecord(
          logged!.record,
          new Map(),
          new Map([[w.robot.identity.identifier, w.robot.identity]]),
        ),
      'ERR_AUDIT_SIGNER_UNTRUSTED',
    );
    // The gate refuses the agent from now on (nothing logged).
    const second = await call(NOW + 6);
    await expect(point.submit(second.bytes, args, NOW + 6, sub.bytes)).rejects.toMatchObject({
      code: 'ERR_REVOKED',
    });
    expect(log.size).toBe(5);

    // A snapshot replayed (a reconnection), then a restart over the same log with a fresh set:
    // nothing is logged twice.
    bus.publishSnapshot(BusTopic.denySet, {
      sequence: 2,
      entries: [other, revocation],
      issuedAt: NOW + 7,
    });
    await settle();
    await Promise.all(recorded);
    follower.stop();
    recorder = await RevocationRecorder.open(recorderOptions);
    expect(recorder.logged).toBe(2);
    const restarted = new DenySetFollower(bus, new DenySet({ maxStalenessSeconds: 60 }), {
      onApplied: (entries) => recorded.push(recorder.record(entries)),
    });
    restarted.start();
    await restarted.ready;
    await Promise.all(recorded);
    restarted.stop();
    expect(log.size).toBe(5);
    const revocations = (await log.readEntries(0, log.size)).filter((e) =>
      decoder.decode(e.record).endsWith(REVOCATION_TYPE),
    );
    expect(revocations).toHaveLength(2);

    // The trail verifies with the node among the trusted enforcement points …
    const enforcers = new Map([
      [w.authority.identity.identifier, w.authority.identity],
      [w.robot.identity.identifier, w.robot.identity],
    ]);
    const verifiers = [noteVerifierKey(ORIGIN, pair.publicKey)];
    const trail = async () => ({
      entries: (await log.readEntries(0, log.size)).map((e, index) => ({
        index,
        record: e.record,
      })),
      checkpoint: await log.checkpoint([noteSigner]),
      verifiers,
      origin: ORIGIN,
      authorities: w.authorities,
    });
    const ok = verifyTrail({ ...(await trail()), enforcers });
    expect(ok).toMatchObject({ ok: true, summary: { revocations: 2, invocations: 1 } });
    // … not without it (the record names an enforcement point the auditor does not trust).
    const untrusted = verifyTrail({
      ...(await trail()),
      enforcers: new Map([[w.authority.identity.identifier, w.authority.identity]]),
    });
    expect(untrusted).toMatchObject({
      ok: false,
      problem: { code: 'ERR_AUDIT_SIGNER_UNTRUSTED', position: { line: 1 } },
    });
    // An invocation of the revoked agent put in the log after the record (bypassing the gate)
    // fails: the verifier knows the revocation from the record on.
    await log.append(second.bytes);
    const late = verifyTrail({ ...(await trail()), enforcers });
    expect(late).toMatchObject({
      ok: false,
      problem: { code: 'ERR_REVOKED', position: { line: 6 } },
    });
  });

  it('keeps an entry whose append failed and logs it with the next delivery', async () => {
    const w = await gateWorld({ subAgents: 0 });
    const log = await AuditLog.open({ repository: new MemoryAuditLogRepository(), origin: ORIGIN });
    const recorder = await RevocationRecorder.open({
      log,
      vault: w.vault,
      enforcer: w.robot.issuer,
      authority: w.authority.identity.identifier,
      clock: { nowSeconds: () => NOW },
    });
    const entry = (n: number): DenyEntry => ({
      kind: DenyEntryKind.revocationId,
      id: n.toString(16).padStart(32, '0'),
      revokedAt: NOW,
      expiresAt: NOW + 60,
    });
    const append = log.append.bind(log);
    let fail = true;
    log.append = (bytes: Uint8Array) =>
      fail ? Promise.reject(new Error('disk full')) : append(bytes);
    await recorder.record([{ entry: entry(1), sequence: 1 }]);
    expect(log.size).toBe(0);
    fail = false;
    await recorder.record([{ entry: entry(2), sequence: 2 }]);
    expect(log.size).toBe(2);
    expect(recorder.logged).toBe(2);
  });
});
