import { describe, expect, it } from 'vitest';
import { ManualClock } from '../core/index.js';
import { chainFromCredential, issueCredential } from '../credentials/index.js';
import {
  Identities,
  MemoryIdentityRepository,
  Purpose,
  verifyChangeHistory,
  type Identifier,
  type VerifiedIdentity,
} from '../identity/index.js';
import { MemoryVault } from '../vault/index.js';
import { AuditLog } from './audit-log.js';
import {
  checkpointTime,
  noteSignerFromVault,
  noteVerifierKey,
  parseCheckpoint,
  parseNote,
  signCheckpoint,
} from './checkpoint.js';
import { MemoryAuditLogRepository } from './memory-audit-log-repository.js';
import { EnforcerSigner, InvocationSigner } from './sign-records.js';
import { verifyTrail, type VerifyTrailOptions } from './verify-trail.js';

// Keys judged at the time the log vouches for (docs/spec/audit.md): a signer's rotation dated
// after a dated checkpoint covered its records does not undo them; a record the log took after
// the rotation is judged by it.

const T0 = 1_800_000_000;
const ORIGIN = 'mandate.example/audit/vouched';

async function world() {
  const clock = new ManualClock(T0);
  const vault = new MemoryVault();
  const identities = new Identities({ vault, repository: new MemoryIdentityRepository(), clock });
  const party = async (name: string) => {
    const local = await identities.create({ name });
    return issuerOf(name, local.identity);
  };
  const issuerOf = async (name: string, identity: VerifiedIdentity) => {
    const { verified, keyId } = await identities.purposeKey(name, Purpose.credentials);
    return {
      identity,
      issuer: { identity, credentialKeyId: keyId, credentialKeyAttestation: verified.attestation },
    };
  };
  const authority = await party('authority');
  const gateway = await party('gateway');
  const agent = await party('agent');
  const chain = chainFromCredential(
    await issueCredential(vault, authority.issuer, agent.identity, new Map(), {
      nowSeconds: T0,
      ttlSeconds: 100_000,
    }),
    agent.identity,
  );
  const repository = new MemoryAuditLogRepository();
  const log = await AuditLog.open({ repository, origin: ORIGIN, clock });
  const stored = async () => (await repository.listCheckpoints()).map((c) => c.note);
  const noteKey = await vault.getSigningKey(authority.issuer.credentialKeyId);
  const noteSigner = noteSignerFromVault(vault, noteKey, ORIGIN);
  const agentSigner = new InvocationSigner(vault, agent.issuer);
  let n = 0;
  /** An invocation by the agent at the clock's time. */
  const invocation = () =>
    agentSigner.sign({
      chain,
      tool: 'issue_refund',
      args: { order: `o-${n++}` },
      nowSeconds: clock.nowSeconds(),
    });
  /** A decision on `invocation` by `enforcer` at the clock's time. */
  const decision = (
    enforcer: EnforcerSigner,
    signed: { hash: string; record: { agent: Identifier } },
  ) =>
    enforcer.signDecision({
      invocation: signed.hash,
      agent: signed.record.agent,
      decision: 'allow',
      lock: null,
      code: null,
      reasons: [],
      policies: ['p'],
      bundle: 'b'.repeat(64),
      escalation: null,
      approval: null,
      decidedAt: clock.nowSeconds(),
    });
  const gate = new EnforcerSigner(vault, gateway.issuer);
  await log.append((await gate.signChain(chain, T0)).bytes);
  const verify = async (extra: Partial<VerifyTrailOptions> = {}, checkpoints?: string[]) => {
    const notes = checkpoints ?? (await stored());
    const entries = (await log.readEntries(0, log.size)).map((e, index) => ({
      index,
      record: e.record,
    }));
    return verifyTrail({
      entries,
      checkpoint: notes[notes.length - 1]!,
      moreCheckpoints: notes.slice(0, -1),
      verifiers: [noteVerifierKey(ORIGIN, noteKey.publicKey)],
      authorities: new Map([[authority.identity.identifier, authority.identity]]),
      enforcers: new Map([[gateway.identity.identifier, gateway.identity]]),
      ...extra,
    });
  };
  /** The log's checkpoints again, undated (the same sizes and roots, signed without a time). */
  const undated = async () => {
    const notes: string[] = [];
    for (const note of await stored()) {
      const { extensions, ...body } = parseCheckpoint(parseNote(note).text);
      notes.push(
        await signCheckpoint(
          { ...body, extensions: extensions.filter((l) => checkpointTime([l]) === undefined) },
          [noteSigner],
        ),
      );
    }
    return notes;
  };
  return {
    stored,
    clock,
    identities,
    issuerOf,
    vault,
    gateway,
    agent,
    log,
    noteSigner,
    gate,
    invocation,
    decision,
    verify,
    undated,
  };
}

describe('records judged by the histories as they stood when a dated checkpoint covered them', () => {
  it('an enforcement point that rotated with revocation still verifies its earlier records; a record the log took after, signed with the revoked key, does not', async () => {
    const w = await world();
    const first = await w.invocation();
    await w.log.append(first.bytes);
    await w.log.append((await w.decision(w.gate, first)).bytes);
    // Signed now, with the key about to be revoked, and kept back: logged after the rotation.
    const held = await w.invocation();
    await w.log.append(held.bytes);
    const late = await w.decision(w.gate, held);
    w.clock.advance(10);
    await w.log.checkpoint([w.noteSigner]);
    w.clock.advance(100);
    const rotated = await w.identities.rotate('gateway', { revokeAllPurposeKeys: true });
    w.clock.advance(10);
    const gate = new EnforcerSigner(
      w.vault,
      (await w.issuerOf('gateway', rotated.identity)).issuer,
    );
    const next = await w.invocation();
    await w.log.append(next.bytes);
    await w.log.append((await w.decision(gate, next)).bytes);
    await w.log.checkpoint([w.noteSigner]);
    const enforcers = new Map([[rotated.identity.identifier, rotated.identity]]);

    const honest = await w.verify({ enforcers });
    expect(honest.ok, JSON.stringify(honest)).toBe(true);
    // Undated checkpoints vouch for no time: the newest history judges every record.
    const undated = await w.verify({ enforcers }, await w.undated());
    expect(undated.ok ? undefined : undated.problem).toMatchObject({
      code: 'ERR_PURPOSE_KEY_REVOKED',
      position: { line: 1 },
    });

    // The held decision, appended now: no checkpoint dated before the rotation covers it.
    await w.log.append(late.bytes);
    const unchecked = await w.verify({ enforcers });
    expect(unchecked.ok ? undefined : unchecked.problem).toMatchObject({
      code: 'ERR_PURPOSE_KEY_REVOKED',
      position: { line: 7 },
    });
    w.clock.advance(10);
    await w.log.checkpoint([w.noteSigner]);
    const covered = await w.verify({ enforcers });
    expect(covered.ok ? undefined : covered.problem).toMatchObject({
      code: 'ERR_PURPOSE_KEY_REVOKED',
      position: { line: 7 },
    });
  });

  it('an enforcement point rotated twice (past its grace window) still verifies its records from before', async () => {
    const w = await world();
    const first = await w.invocation();
    await w.log.append(first.bytes);
    await w.log.append((await w.decision(w.gate, first)).bytes);
    await w.log.checkpoint([w.noteSigner]);
    w.clock.advance(1000);
    await w.identities.rotate('gateway');
    w.clock.advance(1000);
    const twice = await w.identities.rotate('gateway');
    const enforcers = new Map([[twice.identity.identifier, twice.identity]]);
    const result = await w.verify({ enforcers });
    expect(result.ok, JSON.stringify(result)).toBe(true);
    const undated = await w.verify({ enforcers }, await w.undated());
    expect(undated.ok ? undefined : undated.problem.code).toBe('ERR_PURPOSE_KEY_STALE');
  });

  it('an agent key revoked by a rotation the auditor knows of verifies before it, not in records logged after', async () => {
    const w = await world();
    const first = await w.invocation();
    await w.log.append(first.bytes);
    await w.log.append((await w.decision(w.gate, first)).bytes);
    const held = await w.invocation();
    await w.log.checkpoint([w.noteSigner]);
    w.clock.advance(100);
    const rotated = await w.identities.rotate('agent', { revokeAllPurposeKeys: true });
    // The history the auditor has (the home's), newer than the one the chain carries.
    const knownIdentities = new Map([
      [rotated.identity.identifier, verifyChangeHistory(rotated.identity.changeHistory)],
    ]);
    const before = await w.verify({ knownIdentities });
    expect(before.ok, JSON.stringify(before)).toBe(true);
    // Signed with the old key before the rotation, logged after it.
    await w.log.append(held.bytes);
    w.clock.advance(10);
    await w.log.checkpoint([w.noteSigner]);
    const after = await w.verify({ knownIdentities });
    expect(after.ok ? undefined : after.problem).toMatchObject({
      code: 'ERR_PURPOSE_KEY_REVOKED',
      position: { line: 4 },
    });
    // Without the newer history the auditor cannot know of the rotation.
    expect((await w.verify()).ok).toBe(true);
  });
});

describe('the time a record is judged at', () => {
  it('a rotation in the same second as the checkpoint that covered the records does not undo them', async () => {
    const w = await world();
    const first = await w.invocation();
    await w.log.append(first.bytes);
    await w.log.append((await w.decision(w.gate, first)).bytes);
    await w.log.checkpoint([w.noteSigner]);
    // In the same second as the checkpoint (a script: checkpoint, then rotate).
    const rotated = await w.identities.rotate('gateway', { revokeAllPurposeKeys: true });
    const result = await w.verify({
      enforcers: new Map([[rotated.identity.identifier, rotated.identity]]),
    });
    expect(result.ok, JSON.stringify(result)).toBe(true);
  });

  it('a record claiming a time after a rotation is judged then, even under an earlier checkpoint', async () => {
    const w = await world();
    const first = await w.invocation();
    await w.log.append(first.bytes);
    await w.log.checkpoint([w.noteSigner]);
    // Signed with the old key, dated after the rotation below, logged under a checkpoint dated
    // before it.
    w.clock.set(T0 + 500);
    const late = await w.decision(w.gate, first);
    await w.log.append(late.bytes);
    w.clock.set(T0 + 20);
    await w.log.checkpoint([w.noteSigner]);
    w.clock.set(T0 + 100);
    const rotated = await w.identities.rotate('gateway', { revokeAllPurposeKeys: true });
    const result = await w.verify({
      enforcers: new Map([[rotated.identity.identifier, rotated.identity]]),
    });
    expect(result.ok ? undefined : result.problem).toMatchObject({
      code: 'ERR_PURPOSE_KEY_REVOKED',
      position: { line: 3 },
    });
  });

  it('refuses checkpoints whose dates go back as the tree grows', async () => {
    const w = await world();
    await w.log.append((await w.invocation()).bytes);
    await w.log.checkpoint([w.noteSigner]);
    const [dated] = await w.stored();
    const [undatedFirst] = await w.undated();
    await w.log.append((await w.invocation()).bytes);
    const at = async (extensions: string[]) =>
      signCheckpoint({ origin: ORIGIN, treeSize: w.log.size, rootHash: w.log.root(), extensions }, [
        w.noteSigner,
      ]);
    const back = await at([`mandate-time ${T0 - 1}`]);
    const result = await w.verify({}, [dated!, back]);
    expect(result.ok ? undefined : result.problem).toMatchObject({
      code: 'ERR_AUDIT_CHECKPOINT_INCONSISTENT',
      position: { checkpoint: 0 },
    });
    // An undated checkpoint between the two changes nothing.
    await w.log.append((await w.invocation()).bytes);
    const between = await at([]);
    await w.log.append((await w.invocation()).bytes);
    const after = await w.verify({}, [dated!, between, await at([`mandate-time ${T0 - 1}`])]);
    expect(after.ok ? undefined : after.problem.code).toBe('ERR_AUDIT_CHECKPOINT_INCONSISTENT');
    // Undated ones alone, and a later date, verify.
    expect((await w.verify({}, [undatedFirst!, between])).ok).toBe(true);
    expect((await w.verify({}, [dated!, between, await at([`mandate-time ${T0}`])])).ok).toBe(true);
  });
});

describe('VerifiedIdentity.asOf', () => {
  it('is the history as it stood: a verified prefix, the same object each time', async () => {
    const clock = new ManualClock(T0);
    const identities = new Identities({
      vault: new MemoryVault(),
      repository: new MemoryIdentityRepository(),
      clock,
    });
    const created = await identities.create({ name: 'a' });
    clock.advance(100);
    await identities.rotate('a');
    clock.advance(100);
    const { identity } = await identities.rotate('a', { revokeAllPurposeKeys: true });
    expect(identity.asOf(T0 + 200)).toBe(identity);
    const one = identity.asOf(T0 + 99);
    expect(one.changes.length).toBe(1);
    expect(one.changeHistory).toEqual(created.identity.changeHistory);
    expect(identity.asOf(T0 - 5)).toBe(one);
    const two = identity.asOf(T0 + 100);
    expect(two.changes.length).toBe(2);
    expect(identity.asOf(T0 + 150)).toBe(two);
    // Its bytes are the history as it was: they verify as the same identity.
    const again = verifyChangeHistory(two.changeHistory);
    expect([again.identifier, again.changes.length]).toEqual([identity.identifier, 2]);
  });
});
