import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { ManualClock } from '../../src/core/index.js';
import {
  AuditLog,
  EnforcerSigner,
  signInvocation,
  signRevocationRecord,
  type RecordHash,
} from '../../src/audit/index.js';
import { openHome } from '../../src/cli/home.js';
import {
  homeAuditOrigin,
  AUDIT_VERIFICATION_FAILED_EXIT_CODE,
  MAX_EXPORT_FILE_LINES,
} from '../../src/cli/commands/audit.js';
import { readBytesArgument } from '../../src/cli/input.js';
import { Purpose, type Identifier } from '../../src/identity/index.js';
import type { CredentialIssuer } from '../../src/credentials/index.js';
import { editStoredRecord } from '../support/stored-audit-record.js';
import { json, run, type Run } from '../helpers/cli.js';

// `mandate audit export|checkpoint|verify|show|query` end to end, in process, over a home whose
// log holds a real trail: an agent's signed invocations (dana → agent), the gateway's decisions
// and outcomes, and a revocation of the agent — then the tamper cases on the exported file.

const NOW = 1_800_000_000;

afterEach(() => {
  delete process.env.MANDATE_NOW_SECONDS;
});

class Home {
  readonly dir = mkdtempSync(join(tmpdir(), 'mandate-cli-audit-'));
  path(name: string): string {
    return join(this.dir, name);
  }
  run(...argv: string[]): Promise<Run> {
    process.env.MANDATE_NOW_SECONDS = String(NOW);
    // The trail's decisions are countersigned by `gateway`, which the auditor names (the default
    // trusts the authority only).
    const named =
      argv[0] === 'audit' && argv[1] === 'verify' && !argv.includes('--enforcer')
        ? ['--enforcer', 'gateway']
        : [];
    return run('--home', this.dir, '--json', ...argv, ...named);
  }
  /** Without the default `--enforcer gateway`. */
  raw(...argv: string[]): Promise<Run> {
    process.env.MANDATE_NOW_SECONDS = String(NOW);
    return run('--home', this.dir, '--json', ...argv);
  }
  async ok<T = Record<string, unknown>>(...argv: string[]): Promise<T> {
    const r = await this.run(...argv);
    expect(r.code, `${argv.join(' ')}: ${r.stderr}`).toBe(0);
    return json(r) as T;
  }
}

interface World {
  readonly h: Home;
  /** The invocation hashes, in order. */
  readonly invocations: RecordHash[];
  readonly records: number;
}

/** A home with a trail: 6 calls by the agent (decision + outcome each), then its revocation. */
async function world(
  options: { readonly lateCall?: boolean; readonly revoke?: 'agent' | 'gateway' } = {},
): Promise<World> {
  const h = new Home();
  await h.ok('authority', 'init');
  for (const name of ['dana', 'agent', 'gateway']) await h.ok('identity', 'create', '--name', name);
  await h.ok(
    'credential',
    'issue',
    '--to',
    'dana',
    '--attr',
    'tools=read_orders,issue_refund',
    '--out',
    h.path('dana.chain'),
  );
  await h.ok(
    'delegate',
    '--chain',
    h.path('dana.chain'),
    '--from',
    'dana',
    '--to',
    'agent',
    '--constraint',
    'tools=read_orders,issue_refund',
    '--out',
    h.path('agent.chain'),
  );
  const home = await openHome(h.dir, { clock: new ManualClock(NOW) });
  try {
    const issuer = async (name: string): Promise<CredentialIssuer> => {
      const known = await home.identities.get(name);
      const { verified, keyId } = await home.identities.purposeKey(known, Purpose.credentials);
      return {
        identity: known.identity,
        credentialKeyId: keyId,
        credentialKeyAttestation: verified.attestation,
        verifiedKey: verified,
      };
    };
    const agent = await issuer('agent');
    const gatewayIssuer = await issuer('gateway');
    const gateway = new EnforcerSigner(home.vault, gatewayIssuer);
    const authority = await issuer('authority');
    const chain = readBytesArgument(h.path('agent.chain'), 'chain');
    const log = await AuditLog.open({
      repository: home.store.auditLog,
      origin: homeAuditOrigin(authority.identity.identifier),
    });
    const invocations: RecordHash[] = [];
    let previous: RecordHash | null = null;
    const call = async (i: number, at: number) => {
      const args = { order: `#44${70 + i}`, amount: 10 * (i + 1) };
      // The first form (the chain carried in every invocation): logs written before the chain
      // records still verify; test/cli/gate-audit.test.ts covers the form by hash end to end.
      const inv = await signInvocation(home.vault, agent, {
        chain,
        tool: i % 2 === 0 ? 'issue_refund' : 'read_orders',
        args,
        nowSeconds: at,
        previous,
        chainForm: 'verbatim',
      });
      previous = inv.hash;
      invocations.push(inv.hash);
      await log.append(inv.bytes);
      const deny = i === 3;
      const decision = await gateway.signDecision({
        invocation: inv.hash,
        agent: agent.identity.identifier,
        decision: deny ? 'deny' : 'allow',
        lock: deny ? 'bundle' : null,
        code: deny ? 'ERR_POLICY_DENIED' : null,
        reasons: deny ? ['forbid: refunds over 30 need a person'] : [],
        policies: deny ? ['refund-limit'] : ['allow-support'],
        bundle: 'ab'.repeat(32),
        escalation: null,
        approval: null,
        arguments: args,
        decidedAt: at,
      });
      await log.append(decision.bytes);
      if (!deny) {
        const outcome = await gateway.signOutcome({
          invocation: inv.hash,
          agent: agent.identity.identifier,
          status: 'ok',
          resultDigest: 'cd'.repeat(32),
          error: null,
          leases: [],
          completedAt: at + 1,
        });
        await log.append(outcome.bytes);
      }
    };
    for (let i = 0; i < 6; i++) await call(i, NOW + i * 10);
    // The agent is revoked at NOW + 60; a call it signs afterwards is made with a revoked chain.
    // On the home's deny-set too, as `mandate revoke` does: the record carries its sequence.
    const revoked = {
      kind: 'identity' as const,
      id: (options.revoke === 'gateway' ? gatewayIssuer : agent).identity.identifier,
      revokedAt: NOW + 60,
      expiresAt: NOW + 86_400,
      reason: 'compromised',
    };
    const { toSequence } = await home.denySetRepository.append([revoked], NOW + 60);
    await log.append(
      await signRevocationRecord(home.vault, authority, revoked, toSequence, NOW + 60),
    );
    if (options.lateCall === true) await call(6, NOW + 70);
    await log.close();
    return { h, invocations, records: log.size };
  } finally {
    home.close();
  }
}

const lines = (file: string): string[] => readFileSync(file, 'utf8').trimEnd().split('\n');
const writeLines = (file: string, list: readonly string[]): void => {
  writeFileSync(file, `${list.join('\n')}\n`);
};

interface Problem {
  code: string;
  message: string;
  position: { line?: number; index?: number; until?: number; id?: string; checkpoint?: number };
  cause?: string;
}

async function verifyFails(h: Home, ...argv: string[]): Promise<Problem> {
  const r = await h.run('audit', 'verify', ...argv);
  expect(r.code, r.stderr).toBe(AUDIT_VERIFICATION_FAILED_EXIT_CODE);
  expect(r.stderr).toMatch(/^verification failed: ERR_[A-Z_]+/);
  const out = json(r) as { ok: boolean; problem: Problem };
  expect(out.ok).toBe(false);
  return out.problem;
}

describe('mandate audit', () => {
  let w: World;
  let exported: string[];
  beforeAll(async () => {
    w = await world();
    const cp = await w.h.ok<{ treeSize: number; signed: boolean; key: string }>(
      'audit',
      'checkpoint',
      '--out',
      w.h.path('cp.txt'),
    );
    expect(cp.treeSize).toBe(w.records);
    expect(cp.signed).toBe(true);
    const ex = await w.h.ok<{ records: number }>('audit', 'export', '--out', w.h.path('log.jsonl'));
    expect(ex.records).toBe(w.records);
    exported = lines(w.h.path('log.jsonl'));
  }, 60_000);

  it('exports one JCS line per record and verifies offline (file) and the home log', async () => {
    expect(exported).toHaveLength(w.records);
    expect(exported[0]).toMatch(
      /^\{"index":0,"record":\{"agent":"I[0-9a-f]{64}","argumentsDigest"/,
    );
    const ok = await w.h.ok<{ ok: boolean; records: number; summary: Record<string, number> }>(
      'audit',
      'verify',
      '--log',
      w.h.path('log.jsonl'),
      '--checkpoint',
      w.h.path('cp.txt'),
    );
    expect(ok.ok).toBe(true);
    expect(ok.summary).toMatchObject({ invocations: 6, decisions: 6, agents: 1, revocations: 1 });
    const home = await w.h.ok<{ ok: boolean; records: number }>('audit', 'verify');
    expect(home).toMatchObject({ ok: true, records: w.records });
    // A second checkpoint of an unchanged log signs nothing new.
    const again = await w.h.ok<{ signed: boolean }>('audit', 'checkpoint');
    expect(again.signed).toBe(false);
  });

  it('writes the trail as OpenTelemetry GenAI spans through the SDK', async () => {
    const out = await w.h.ok<{ spans: number }>(
      'audit',
      'export',
      '--out',
      w.h.path('again.jsonl'),
      '--spans',
      w.h.path('spans.jsonl'),
    );
    expect(out.spans).toBe(7); // one invoke_agent, six execute_tool
    const spans = lines(w.h.path('spans.jsonl')).map(
      (l) =>
        JSON.parse(l) as {
          name: string;
          parentSpanId: string | null;
          spanId: string;
          attributes: Record<string, unknown>;
          status: { code: string };
        },
    );
    const agent = spans.find((s) => s.name.startsWith('invoke_agent '))!;
    const tools = spans.filter((s) => s.name.startsWith('execute_tool '));
    expect(tools).toHaveLength(6);
    for (const t of tools) expect(t.parentSpanId).toBe(agent.spanId);
    const denied = tools.find((t) => t.attributes['mandate.decision'] === 'deny')!;
    expect(denied.status.code).toBe('ERROR');
    expect(denied.attributes['error.type']).toBe('ERR_POLICY_DENIED');
    expect(denied.attributes['gen_ai.tool.call.id']).toBe(w.invocations[3]);
    expect(readFileSync(w.h.path('again.jsonl'), 'utf8')).toBe(
      readFileSync(w.h.path('log.jsonl'), 'utf8'),
    );
  });

  it('locates an edited line exactly, by its signature', async () => {
    const edited = [...exported];
    edited[4] = edited[4]!.replace('"order":"#4471"', '"order":"#4472"');
    expect(edited[4]).not.toBe(exported[4]);
    writeLines(w.h.path('edited.jsonl'), edited);
    const p = await verifyFails(
      w.h,
      '--log',
      w.h.path('edited.jsonl'),
      '--checkpoint',
      w.h.path('cp.txt'),
    );
    expect(p.code).toBe('ERR_AUDIT_RECORD_EDITED');
    expect(p.position.line).toBe(5);
    expect(p.cause).toBe('ERR_AUDIT_SIGNATURE_INVALID');
  });

  it('reports a deleted, inserted, swapped and duplicated line at its position', async () => {
    const deleted = exported.filter((_, i) => i !== 3);
    writeLines(w.h.path('deleted.jsonl'), deleted);
    let p = await verifyFails(
      w.h,
      '--log',
      w.h.path('deleted.jsonl'),
      '--checkpoint',
      w.h.path('cp.txt'),
    );
    expect(p.code).toBe('ERR_AUDIT_RECORD_DELETED');
    expect(p.position).toMatchObject({ line: 4, index: 3 });

    // An extra record claiming position 2 (a copy of another line's record under index 2).
    const foreign = exported[7]!.replace(/^\{"index":7,/, '{"index":2,');
    const inserted = [...exported.slice(0, 3), foreign, ...exported.slice(3)];
    writeLines(w.h.path('inserted.jsonl'), inserted);
    p = await verifyFails(
      w.h,
      '--log',
      w.h.path('inserted.jsonl'),
      '--checkpoint',
      w.h.path('cp.txt'),
    );
    expect(p.code).toBe('ERR_AUDIT_RECORD_INSERTED');
    expect(p.position.line).toBe(4);

    const swapped = [...exported];
    [swapped[5], swapped[6]] = [swapped[6]!, swapped[5]!];
    writeLines(w.h.path('swapped.jsonl'), swapped);
    p = await verifyFails(
      w.h,
      '--log',
      w.h.path('swapped.jsonl'),
      '--checkpoint',
      w.h.path('cp.txt'),
    );
    expect(p.code).toBe('ERR_AUDIT_RECORD_REORDERED');
    expect(p.position).toMatchObject({ line: 6, index: 5 });

    const duplicated = [...exported.slice(0, 3), exported[2]!, ...exported.slice(3)];
    writeLines(w.h.path('duplicated.jsonl'), duplicated);
    p = await verifyFails(
      w.h,
      '--log',
      w.h.path('duplicated.jsonl'),
      '--checkpoint',
      w.h.path('cp.txt'),
    );
    expect(p.code).toBe('ERR_AUDIT_RECORD_DUPLICATED');
    expect(p.position).toMatchObject({ line: 4, index: 2 });
  });

  it('reports a truncated log, a deletion with renumbered lines, and a malformed line', async () => {
    writeLines(w.h.path('truncated.jsonl'), exported.slice(0, -2));
    let p = await verifyFails(
      w.h,
      '--log',
      w.h.path('truncated.jsonl'),
      '--checkpoint',
      w.h.path('cp.txt'),
    );
    expect(p.code).toBe('ERR_AUDIT_LOG_TRUNCATED');
    expect(p.position).toMatchObject({ index: w.records - 2, until: w.records });

    // Call 2 (lines 7–9) removed, and the rest renumbered: the agent's next invocation names a
    // predecessor the log no longer holds.
    const kept = [...exported.slice(0, 6), ...exported.slice(9)].map((l, i) =>
      l.replace(/^\{"index":\d+,/, `{"index":${i},`),
    );
    writeLines(w.h.path('renumbered.jsonl'), kept);
    p = await verifyFails(
      w.h,
      '--log',
      w.h.path('renumbered.jsonl'),
      '--checkpoint',
      w.h.path('cp.txt'),
    );
    expect(p.code).toBe('ERR_AUDIT_RECORD_DELETED');
    expect(p.position.line).toBe(7);
    expect(p.cause).toBe('ERR_AUDIT_AGENT_CHAIN_MISMATCH');
    // Only a decision's invocation removed (line 7): the decision after it names it.
    const orphan = [...exported.slice(0, 6), ...exported.slice(7)].map((l, i) =>
      l.replace(/^\{"index":\d+,/, `{"index":${i},`),
    );
    writeLines(w.h.path('orphan.jsonl'), orphan);
    p = await verifyFails(
      w.h,
      '--log',
      w.h.path('orphan.jsonl'),
      '--checkpoint',
      w.h.path('cp.txt'),
    );
    expect(p.code).toBe('ERR_AUDIT_RECORD_DELETED');
    expect(p.position.line).toBe(7);
    expect(p.cause).toBe('ERR_AUDIT_INVOCATION_UNKNOWN');

    writeLines(w.h.path('garbage.jsonl'), [
      ...exported.slice(0, 2),
      '{"index":2}',
      ...exported.slice(3),
    ]);
    p = await verifyFails(
      w.h,
      '--log',
      w.h.path('garbage.jsonl'),
      '--checkpoint',
      w.h.path('cp.txt'),
    );
    expect(p.code).toBe('ERR_AUDIT_ENTRY_MALFORMED');
    expect(p.position.line).toBe(3);
  });

  it('refuses a forged checkpoint, one signed by another key, and a forged older one (--from)', async () => {
    const note = readFileSync(w.h.path('cp.txt'), 'utf8');
    const [origin, size, root, ...rest] = note.split('\n');
    const forgedRoot = `${root![0] === 'A' ? 'B' : 'A'}${root!.slice(1)}`;
    writeFileSync(w.h.path('forged.txt'), [origin, size, forgedRoot, ...rest].join('\n'));
    let p = await verifyFails(
      w.h,
      '--log',
      w.h.path('log.jsonl'),
      '--checkpoint',
      w.h.path('forged.txt'),
    );
    expect(p.code).toBe('ERR_CHECKPOINT_SIGNATURE_INVALID');

    // The same log signed by another home's authority: not a trusted key.
    const other = await world();
    await other.h.ok('audit', 'checkpoint', '--out', other.h.path('cp.txt'));
    p = await verifyFails(
      w.h,
      '--log',
      w.h.path('log.jsonl'),
      '--checkpoint',
      other.h.path('cp.txt'),
    );
    expect(p.code).toBe('ERR_CHECKPOINT_UNVERIFIED');

    // --from: an older checkpoint (here the same one) must verify and be a prefix; a forged one fails.
    const ok = await w.h.ok<{ ok: boolean }>(
      'audit',
      'verify',
      '--log',
      w.h.path('log.jsonl'),
      '--checkpoint',
      w.h.path('cp.txt'),
      '--from',
      w.h.path('cp.txt'),
    );
    expect(ok.ok).toBe(true);
    p = await verifyFails(
      w.h,
      '--log',
      w.h.path('log.jsonl'),
      '--checkpoint',
      w.h.path('cp.txt'),
      '--from',
      w.h.path('forged.txt'),
    );
    expect(p.code).toBe('ERR_CHECKPOINT_SIGNATURE_INVALID');
    expect(p.position.checkpoint).toBe(1);
  }, 120_000);

  it('checks a chain as it stood at each record: a call signed after the revocation fails', async () => {
    const g = await world({ lateCall: true });
    await g.h.ok('audit', 'checkpoint', '--out', g.h.path('cp.txt'));
    await g.h.ok('audit', 'export', '--out', g.h.path('log.jsonl'));
    const p = await verifyFails(
      g.h,
      '--log',
      g.h.path('log.jsonl'),
      '--checkpoint',
      g.h.path('cp.txt'),
    );
    expect(p.code).toBe('ERR_REVOKED');
    expect(p.position.line).toBe(19);
    expect(p.message).toMatch(/revoked at \d+ \(line 18\)/);
  }, 60_000);

  it('exports decision traces as evaluation cases (--traces)', async () => {
    // The golden records (an escalated call, its trace, the retried call) in a home's log.
    const golden = JSON.parse(
      readFileSync(new URL('../../docs/spec/vectors/audit-records.json', import.meta.url), 'utf8'),
    ) as Record<string, { text: string; hash: string }>;
    const h = new Home();
    const home = await openHome(h.dir, { clock: new ManualClock(NOW) });
    try {
      const log = await AuditLog.open({ repository: home.store.auditLog, origin: 'test/traces' });
      for (const k of ['invocation', 'decision', 'nextInvocation', 'escalation', 'trace'])
        await log.append(new TextEncoder().encode(golden[k]!.text));
      await log.close();
    } finally {
      home.close();
    }
    const out = await h.ok<{ traces: number }>(
      'audit',
      'export',
      '--out',
      h.path('t.jsonl'),
      '--traces',
    );
    expect(out.traces).toBe(1);
    const [c] = lines(h.path('t.jsonl')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const trace = JSON.parse(golden.trace!.text) as Record<string, unknown>;
    const escalated = JSON.parse(golden.nextInvocation!.text) as Record<string, unknown>;
    expect(c).toMatchObject({
      id: golden.trace!.hash,
      agent: trace.agent,
      chainHash: trace.chainHash,
      policies: trace.policies,
      expected: (trace.resolution as { decision: string }).decision,
      call: { tool: escalated.tool, argumentsDigest: escalated.argumentsDigest },
    });
    expect(c!.reasoning).toBe((trace.report as { reasoning: string } | null)?.reasoning ?? null);
  });

  it('checks the enforcement point as revoked then: a decision signed after its revocation fails', async () => {
    const g = await world({ lateCall: true, revoke: 'gateway' });
    await g.h.ok('audit', 'checkpoint', '--out', g.h.path('cp.txt'));
    await g.h.ok('audit', 'export', '--out', g.h.path('log.jsonl'));
    const p = await verifyFails(
      g.h,
      '--log',
      g.h.path('log.jsonl'),
      '--checkpoint',
      g.h.path('cp.txt'),
    );
    expect(p.code).toBe('ERR_REVOKED');
    expect(p.position.line).toBe(20); // the late invocation (line 19) verifies; its decision does not
    expect(p.message).toMatch(/enforcement point .* was revoked/);
  }, 60_000);

  it('`mandate revoke` logs a signed revocation record that verification then counts', async () => {
    const g = await world();
    await g.h.ok('revoke', 'dana', '--reason', 'left the company');
    await g.h.ok('audit', 'checkpoint');
    const ok = await g.h.ok<{ ok: boolean; summary: { revocations: number } }>('audit', 'verify');
    expect(ok.ok).toBe(true);
    expect(ok.summary.revocations).toBe(2);
    await g.h.ok('audit', 'export', '--out', g.h.path('log.jsonl'));
    const last = JSON.parse(lines(g.h.path('log.jsonl')).at(-1)!) as {
      record: { type: string; kind: string; reason: string; sequence: number };
    };
    expect(last.record).toMatchObject({
      type: 'mandate/revocation/v1',
      kind: 'identity',
      reason: 'left the company',
      sequence: 2,
    });
  }, 60_000);

  it('trusts only the authority as enforcer by default, and refuses uncovered records unless asked', async () => {
    const g = await world();
    await g.h.ok('audit', 'checkpoint');
    // The gateway's decisions are not the authority's: by default they do not verify.
    let r = await g.h.raw('audit', 'verify');
    expect(r.code, r.stderr).toBe(13);
    expect(json(r)).toMatchObject({
      ok: false,
      problem: { code: 'ERR_AUDIT_SIGNER_UNTRUSTED', position: { line: 2, index: 1 } },
    });
    // Named by the auditor, they do.
    expect(await g.h.ok('audit', 'verify', '--enforcer', 'gateway')).toMatchObject({ ok: true });
    // A record past the checkpoint: refused with a typed code, accepted with --allow-uncovered.
    await g.h.ok('revoke', 'dana', '--reason', 'left the company');
    r = await g.h.run('audit', 'verify');
    expect(r.code, r.stderr).toBe(13);
    expect(json(r)).toMatchObject({
      ok: false,
      problem: { code: 'ERR_AUDIT_RECORDS_UNCOVERED', position: { index: g.records } },
    });
    expect(await g.h.ok('audit', 'verify', '--allow-uncovered')).toMatchObject({
      ok: true,
      uncovered: 1,
    });
    // The older checkpoint given while the home holds a newer one: a note says so.
    await g.h.ok('audit', 'checkpoint', '--out', g.h.path('old-cp.txt'));
    // (The agent is on the deny-set already: a link's revocation id is new.)
    await g.h.ok('revoke', '0123456789abcdef0123456789abcdef', '--reason', 'retired');
    await g.h.ok('audit', 'checkpoint');
    r = await g.h.run(
      'audit',
      'verify',
      '--checkpoint',
      g.h.path('old-cp.txt'),
      '--allow-uncovered',
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/holds a newer checkpoint \(size \d+\) than the one given/);
  }, 60_000);

  it('keeps verifying a trail after its signers rotate with revocation, by the dated checkpoint that covered it', async () => {
    const g = await world();
    // Dated by the home's clock (NOW): every record so far was in the log by then.
    const cp = await g.h.ok<{ treeSize: number }>(
      'audit',
      'checkpoint',
      '--out',
      g.h.path('cp.txt'),
    );
    expect(readFileSync(g.h.path('cp.txt'), 'utf8')).toContain(`\nmandate-time ${NOW}\n`);
    await g.h.ok('audit', 'export', '--out', g.h.path('log.jsonl'));
    // Later, the gateway's and the agent's keys are revoked by rotations (key compromise).
    process.env.MANDATE_NOW_SECONDS = String(NOW + 1000);
    for (const name of ['gateway', 'agent']) {
      const r = await run(
        '--home',
        g.h.dir,
        '--json',
        'identity',
        'rotate',
        name,
        '--revoke-purpose-keys',
      );
      expect(r.code, r.stderr).toBe(0);
    }
    // The home's log and the export still verify: the records were logged before the rotations.
    expect(await g.h.ok('audit', 'verify')).toMatchObject({ ok: true, records: cp.treeSize });
    expect(
      await g.h.ok(
        'audit',
        'verify',
        '--log',
        g.h.path('log.jsonl'),
        '--checkpoint',
        g.h.path('cp.txt'),
      ),
    ).toMatchObject({ ok: true });
    // Older checkpoints, repeatable: each is checked (a second one altered fails, at its place).
    const note = readFileSync(g.h.path('cp.txt'), 'utf8');
    writeFileSync(
      g.h.path('altered.txt'),
      note.replace(`mandate-time ${NOW}`, `mandate-time ${NOW - 1}`),
    );
    const from = ['--log', g.h.path('log.jsonl'), '--from', g.h.path('cp.txt'), '--from'];
    expect(await g.h.ok('audit', 'verify', ...from, g.h.path('cp.txt'))).toMatchObject({
      ok: true,
    });
    expect(await verifyFails(g.h, ...from, g.h.path('altered.txt'))).toMatchObject({
      code: 'ERR_CHECKPOINT_SIGNATURE_INVALID',
      position: { checkpoint: 2 },
    });
  }, 60_000);

  it('query marks uncovered calls; a later decision never replaces the first one', async () => {
    const g = await world();
    await g.h.ok('audit', 'checkpoint');
    const home = await openHome(g.h.dir, { clock: new ManualClock(NOW) });
    try {
      const known = await home.identities.get('gateway');
      const { verified, keyId } = await home.identities.purposeKey(known, Purpose.credentials);
      const gateway = new EnforcerSigner(home.vault, {
        identity: known.identity,
        credentialKeyId: keyId,
        credentialKeyAttestation: verified.attestation,
        verifiedKey: verified,
      });
      const authority = await home.identities.get('authority');
      const log = await AuditLog.open({
        repository: home.store.auditLog,
        origin: homeAuditOrigin(authority.identity.identifier),
      });
      // A second decision for the first (allowed) call, past the checkpoint: a deny.
      const first = (await home.store.auditLog.readEntries(0, 1))[0]!;
      const agent = (JSON.parse(new TextDecoder().decode(first.record)) as { agent: Identifier })
        .agent;
      const forged = await gateway.signDecision({
        invocation: g.invocations[0]!,
        agent,
        decision: 'deny',
        lock: 'bundle',
        code: 'ERR_POLICY_DENIED',
        reasons: ['rewritten'],
        policies: [],
        bundle: 'ab'.repeat(32),
        escalation: null,
        approval: null,
        decidedAt: NOW + 100,
      });
      await log.append(forged.bytes);
      await log.close();
    } finally {
      home.close();
    }
    const q = await g.h.ok<{
      calls: {
        invocation: string;
        covered: boolean | null;
        decision: { decision: string };
        extraDecisions?: string[];
      }[];
    }>('audit', 'query', '--limit', '1');
    expect(q.calls[0]).toMatchObject({
      invocation: g.invocations[0],
      covered: true,
      decision: { decision: 'allow' },
    });
    expect(q.calls[0]!.extraDecisions).toHaveLength(1);
    // Covered, the second decision is a verification failure at its line.
    await g.h.ok('audit', 'checkpoint');
    const p = await verifyFails(g.h);
    expect(p).toMatchObject({
      code: 'ERR_AUDIT_DECISION_DUPLICATE',
      position: { line: g.records + 1 },
    });
  }, 60_000);

  it('refuses a --log that is not a regular file or has too many lines, without reading it all', async () => {
    const fifo = w.h.path('pipe.jsonl');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    for (const file of ['/dev/zero', fifo, w.h.dir]) {
      for (const argv of [
        ['verify', '--log', file, '--checkpoint', w.h.path('cp.txt')],
        ['query', '--log', file],
      ]) {
        const r = await w.h.run('audit', ...argv);
        expect(r.code, `${file}: ${r.stderr}`).not.toBe(0);
        expect(r.stderr).toMatch(/^error\[ERR_FILE_NOT_REGULAR\]/);
      }
    }
    // Short lines past the line bound: refused before any is parsed.
    const many = w.h.path('many.jsonl');
    writeFileSync(many, '{}\n'.repeat(MAX_EXPORT_FILE_LINES + 1));
    const r = await w.h.run('audit', 'verify', '--log', many, '--checkpoint', w.h.path('cp.txt'));
    expect(r.stderr).toMatch(/^error\[ERR_INPUT_TOO_LARGE\].*lines/);
    const q = await w.h.run('audit', 'show', 'abcdef0123', '--log', many);
    expect(q.stderr).toMatch(/^error\[ERR_INPUT_TOO_LARGE\].*lines/);
  }, 60_000);

  it('finds a row edited in the database (its guard trigger dropped) at its line', async () => {
    const g = await world();
    await g.h.ok('audit', 'checkpoint');
    const db = new Database(join(g.h.dir, 'mandate.db'));
    try {
      db.exec('DROP TRIGGER audit_log_entries_no_update');
      const { before, after } = editStoredRecord(db, 4, (text) =>
        text.replace('"amount":20', '"amount":2000'),
      );
      expect(after).not.toBe(before);
    } finally {
      db.close();
    }
    const p = await verifyFails(g.h);
    expect(p.code).toBe('ERR_AUDIT_RECORD_EDITED');
    expect(p.position).toMatchObject({ line: 5, index: 4 });
  }, 60_000);

  it('answers typed errors: no checkpoint yet, no such record, a bad query', async () => {
    const h = new Home();
    await h.ok('authority', 'init');
    let r = await h.raw('audit', 'verify');
    expect(r.code).toBe(6);
    expect(r.stderr).toMatch(/^error\[ERR_AUDIT_CHECKPOINT_NOT_FOUND\]: /);
    r = await h.run('audit', 'show', 'abcdef0123');
    expect(r.code).toBe(6);
    expect(r.stderr).toMatch(/^error\[ERR_AUDIT_RECORD_NOT_FOUND\]: /);
    r = await h.run('audit', 'show', 'not-hex');
    expect(r.stderr).toMatch(/^error\[ERR_ARGUMENT_INVALID\]: /);
    r = await h.run('audit', 'query', '--decision', 'maybe');
    expect(r.stderr).toMatch(/^error\[ERR_ARGUMENT_INVALID\]: /);
    r = await h.raw(
      'audit',
      'verify',
      '--log',
      h.path('missing.jsonl'),
      '--checkpoint',
      h.path('x'),
    );
    expect(r.stderr).toMatch(/^error\[ERR_FILE_NOT_FOUND\]: /);
    // An empty log checkpoints at size 0 and verifies.
    expect(await h.ok('audit', 'checkpoint')).toMatchObject({ treeSize: 0, signed: true });
    const empty = await h.raw('audit', 'verify');
    expect(empty.code, empty.stderr).toBe(0);
  });

  it('shows and queries the trail: who, for whom, what, the decision and why, inclusion', async () => {
    const shown = await w.h.ok<{
      call: { agent: string; onBehalfOf: string[]; tool: string; decision: { decision: string } };
      inclusion: string;
    }>('audit', 'show', w.invocations[3]!.slice(0, 16));
    expect(shown.call.tool).toBe('read_orders');
    expect(shown.call.decision.decision).toBe('deny');
    expect(shown.call.onBehalfOf).toHaveLength(2);
    expect(shown.call.onBehalfOf[1]).toBe(shown.call.agent);
    expect(shown.inclusion).toMatch(
      /^included in the checkpoint of size \d+, its signature verified/,
    );
    const denied = await w.h.ok<{ calls: { invocation: string }[] }>(
      'audit',
      'query',
      '--decision',
      'deny',
    );
    expect(denied.calls.map((c) => c.invocation)).toStrictEqual([w.invocations[3]]);
    const refunds = await w.h.ok<{ calls: unknown[] }>(
      'audit',
      'query',
      '--agent',
      'agent',
      '--tool',
      'issue_refund',
      '--since',
      String(NOW + 15),
    );
    expect(refunds.calls).toHaveLength(2);
    const human = await run('--home', w.h.dir, 'audit', 'show', w.invocations[3]!);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/on behalf of: +I[0-9a-f]{64} → I[0-9a-f]{64}/);
    expect(human.stdout).toMatch(/why: +forbid: refunds over 30 need a person/);
  });
});
