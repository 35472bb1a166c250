import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ed25519KeyPairFromSeed, signEd25519 } from '../crypto/index.js';
import { goldenParty } from '../../test/vectors/audit-records-golden.js';
import {
  formatNoteVerifierKey,
  noteVerifierKey,
  signCheckpoint,
  type NoteSigner,
} from './checkpoint.js';
import { formatExportLine, parseExport } from './export.js';
import type { LogEntryLine } from './verify-log.js';
import { CompactRange, hashLeaf } from './merkle.js';
import { verifyTrail, verifyTrailExport } from './verify-trail.js';
import { encodeSignedRecord, toBase64Url } from './record-codec.js';
import { sha256 } from '../crypto/index.js';
import { fromHex } from '../encoding/index.js';
import { decodePurposeKeyAttestation } from '../identity/internal.js';
import { delegationGolden, RECORDS_AT } from '../../test/vectors/audit-records-golden.js';
import { EnforcerSigner } from './sign-records.js';
import { canonicalizeJson } from '../encoding/index.js';

// verifyTrail over A2's golden records (an invocation, its decision, outcome and lease, the next
// invocation, its escalation and the decision trace, a chain record and an invocation naming its
// chain by hash): every single-line tamper is caught.

const golden = JSON.parse(
  readFileSync(new URL('../../docs/spec/vectors/audit-records.json', import.meta.url), 'utf8'),
) as Record<string, { text: string }>;
const ORDER = [
  'invocation',
  'decision',
  'outcome',
  'lease',
  'nextInvocation',
  'escalation',
  'trace',
  // The chain by hash: its chain record, then the invocation naming it (mandate/invocation/v2).
  'chainRecord',
  'invocationByHash',
];
const utf8 = new TextEncoder();
const records = ORDER.map((k) => utf8.encode(golden[k]!.text));
const authority = goldenParty('authority');
const authorities = new Map([[authority.identity.identifier, authority.identity]]);
const ORIGIN = 'mandate.example/audit/trail-test';
const pair = ed25519KeyPairFromSeed(new Uint8Array(32).fill(7));
const signer: NoteSigner = {
  name: ORIGIN,
  keyId: noteVerifierKey(ORIGIN, pair.publicKey).keyId,
  publicKey: pair.publicKey,
  sign: (m) => Promise.resolve(signEd25519(pair.secretKey, m)),
};
const verifiers = [noteVerifierKey(ORIGIN, pair.publicKey)];

async function checkpointOf(list: readonly Uint8Array[]): Promise<string> {
  const range = new CompactRange();
  for (const r of list) range.append(hashLeaf(r));
  return signCheckpoint(
    { origin: ORIGIN, treeSize: list.length, rootHash: range.root(), extensions: [] },
    [signer],
  );
}

const text = records.map((r, i) => formatExportLine(i, r)).join('\n') + '\n';
const lines = text.trimEnd().split('\n');

/** verifyTrail of `entries` against `checkpoint`, the golden authority trusted for both roles. */
function verifyGolden(entries: readonly LogEntryLine[], checkpoint: string) {
  return verifyTrail({ entries, checkpoint, verifiers, authorities, enforcers: authorities });
}

describe('verifyTrail', () => {
  it('verifies the golden trail and counts what it checked', async () => {
    const checkpoint = await checkpointOf(records);
    const result = verifyTrailExport({
      text,
      checkpoint,
      verifiers,
      authorities,
      enforcers: authorities,
    });
    expect(result.ok, JSON.stringify(result)).toBe(true);
    if (!result.ok) return;
    expect(result.summary).toMatchObject({
      records: 9,
      invocations: 3,
      decisions: 2,
      agents: 1,
      chains: 1,
    });
    expect(formatNoteVerifierKey(verifiers[0]!)).toMatch(/^mandate\.example\/audit\/trail-test\+/);
  });

  it('reports an untrusted enforcer and an unknown authority at the line', async () => {
    const checkpoint = await checkpointOf(records);
    const noEnforcer = verifyTrailExport({
      text,
      checkpoint,
      verifiers,
      authorities,
      enforcers: new Map(),
    });
    expect(noEnforcer.ok ? undefined : noEnforcer.problem).toMatchObject({
      code: 'ERR_AUDIT_SIGNER_UNTRUSTED',
      position: { line: 2, index: 1 },
    });
    const noAuthority = verifyTrailExport({
      text,
      checkpoint,
      verifiers,
      authorities: new Map(),
      enforcers: authorities,
    });
    expect(noAuthority.ok ? undefined : noAuthority.problem.position.line).toBe(1);
  });

  it('never verifies a trail with one line edited, deleted, duplicated, moved or dropped', async () => {
    const checkpoint = await checkpointOf(records);
    fc.assert(
      fc.property(
        fc.constantFrom('edit', 'delete', 'duplicate', 'swap', 'truncate'),
        fc.nat(lines.length - 1),
        fc.nat(lines.length - 1),
        fc.nat(400),
        (kind, at, other, offset) => {
          const tampered = [...lines];
          switch (kind) {
            case 'edit': {
              // Flip one character inside the record to another that keeps the line JSON-ish.
              const line = tampered[at]!;
              const start = line.indexOf(',"record":') + 11;
              const i = start + (offset % (line.length - start - 2));
              const c = line[i]!;
              const swap = /[0-9]/.test(c)
                ? String((Number(c) + 1) % 10)
                : /[a-z]/.test(c)
                  ? c === 'z'
                    ? 'a'
                    : String.fromCharCode(c.charCodeAt(0) + 1)
                  : c;
              if (swap === c) return;
              tampered[at] = line.slice(0, i) + swap + line.slice(i + 1);
              break;
            }
            case 'delete':
              tampered.splice(at, 1);
              break;
            case 'duplicate':
              tampered.splice(at, 0, tampered[at]!);
              break;
            case 'swap':
              if (at === other) return;
              [tampered[at], tampered[other]] = [tampered[other]!, tampered[at]!];
              break;
            case 'truncate':
              tampered.length = at;
              break;
          }
          const result = verifyTrailExport({
            text: tampered.join('\n') + '\n',
            checkpoint,
            verifiers,
            authorities,
            enforcers: authorities,
          });
          expect(result.ok).toBe(false);
          if (result.ok) return;
          // Every report names where: a line, or the index range the checkpoint covers.
          const p = result.problem.position;
          expect(p.line !== undefined || p.index !== undefined).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('reports a chain record deleted, moved after its invocation, altered or logged twice, at its line', async () => {
    const at = ORDER.indexOf('chainRecord');
    const verify = async (list: readonly Uint8Array[], against = list) =>
      verifyGolden(
        list.map((record, index) => ({ index, record })),
        await checkpointOf(against),
      );
    const problemOf = (r: Awaited<ReturnType<typeof verify>>) => (r.ok ? undefined : r.problem);
    // Deleted and the rest renumbered, against the log's checkpoint: the invocation naming it.
    const deleted = records.filter((_, i) => i !== at);
    expect(problemOf(await verify(deleted, records))).toMatchObject({
      code: 'ERR_AUDIT_RECORD_DELETED',
      cause: 'ERR_AUDIT_CHAIN_UNKNOWN',
      position: { line: at + 1 },
    });
    // Even under a checkpoint that covers the log without it (a log written so): the invocation.
    expect(problemOf(await verify(deleted))).toMatchObject({
      code: 'ERR_AUDIT_CHAIN_UNKNOWN',
      position: { line: at + 1 },
    });
    // Moved after the invocation naming it, under a checkpoint covering that order.
    const moved = [...records.slice(0, at), records[at + 1]!, records[at]!];
    expect(problemOf(await verify(moved))).toMatchObject({
      code: 'ERR_AUDIT_CHAIN_UNKNOWN',
      position: { line: at + 1 },
    });
    // Its chain swapped for another (the signature no longer verifies).
    const record = JSON.parse(golden.chainRecord!.text) as Record<string, unknown>;
    const bobChain = Buffer.from(fromHex(delegationGolden.chains[1]!.bytes)).toString('base64url');
    const altered = [...records];
    altered[at] = utf8.encode(canonicalizeJson({ ...record, chain: bobChain }));
    expect(problemOf(await verify(altered, records))).toMatchObject({
      code: 'ERR_AUDIT_RECORD_EDITED',
      position: { line: at + 1 },
    });
    // Re-signed by the enforcer with a hash that is not its chain's: a typed mismatch.
    const signer = new EnforcerSigner(authority.vault, authority.issuer);
    const body: Record<string, unknown> = { ...record, chain: bobChain };
    delete body.signature;
    const { bytes: forged } = await encodeSignedRecord(body, async (bytes) => ({
      keyType: 'ed25519' as const,
      value: toBase64Url(await authority.vault.sign('k', sha256(bytes))),
    }));
    const mismatched: Uint8Array[] = [...records];
    mismatched[at] = forged;
    expect(problemOf(await verify(mismatched))).toMatchObject({
      code: 'ERR_AUDIT_CHAIN_MISMATCH',
      position: { line: at + 1 },
    });
    // A second chain record for the same chain, later in a log that covers it.
    const again = await signer.signChain(
      fromHex(delegationGolden.chains[2]!.bytes),
      RECORDS_AT + 60,
    );
    expect(problemOf(await verify([...records, again.bytes]))).toMatchObject({
      code: 'ERR_AUDIT_CHAIN_DUPLICATE',
      position: { line: records.length + 1 },
    });
  });

  it('locates an edited record to its line even when only the newest checkpoint covers it', async () => {
    const checkpoint = await checkpointOf(records);
    const parsed = parseExport(text);
    if (!parsed.ok) throw new Error('golden export does not parse');
    const edited = [...parsed.entries];
    const bytes = new TextDecoder()
      .decode(edited[4]!.record)
      .replace('"issue_refund"', '"issue_refunc"');
    edited[4] = { index: 4, record: utf8.encode(bytes) };
    const result = verifyGolden(edited, checkpoint);
    expect(result.ok ? undefined : result.problem).toMatchObject({
      code: 'ERR_AUDIT_RECORD_EDITED',
      position: { line: 5, index: 4 },
      cause: 'ERR_AUDIT_SIGNATURE_INVALID',
    });
  });

  it('blames the edited line, never an earlier authentic record that fails a semantic check', async () => {
    const checkpoint = await checkpointOf(records);
    const parsed = parseExport(text);
    if (!parsed.ok) throw new Error('golden export does not parse');
    const edited = [...parsed.entries];
    const bytes = new TextDecoder()
      .decode(edited[4]!.record)
      .replace('"issue_refund"', '"issue_refunc"');
    edited[4] = { index: 4, record: utf8.encode(bytes) };
    // No trusted enforcer: the authentic decision on line 2 fails (untrusted signer), but it
    // was not altered; the edit is on line 5.
    const result = verifyTrail({
      entries: edited,
      checkpoint,
      verifiers,
      authorities,
      enforcers: new Map(),
    });
    expect(result.ok ? undefined : result.problem).toMatchObject({
      code: 'ERR_AUDIT_RECORD_EDITED',
      position: { line: 5, index: 4 },
      cause: 'ERR_AUDIT_SIGNATURE_INVALID',
    });
  });

  it('locates an edit that a semantic check meets first to its line: a time, the agent, another signer’s attestation', async () => {
    const checkpoint = await checkpointOf(records);
    const parsed = parseExport(text);
    if (!parsed.ok) throw new Error('golden export does not parse');
    const at = (line: number) =>
      JSON.parse(new TextDecoder().decode(parsed.entries[line]!.record)) as Record<string, unknown>;
    const decisionAttestation = at(1).attestation;
    const edits: ((r: Record<string, unknown>) => void)[] = [
      // Long after the chain expired (its check fails before the signature's).
      (r) => (r.issuedAt = (r.issuedAt as number) + 10_000_000),
      // Another identity as the agent (the chain does not carry its history).
      (r) => (r.agent = authority.identity.identifier),
      // The enforcement point's attestation in the agent's record.
      (r) => (r.attestation = decisionAttestation),
    ];
    for (const edit of edits) {
      const record = at(4);
      edit(record);
      const entries = [...parsed.entries];
      entries[4] = { index: 4, record: utf8.encode(canonicalizeJson(record)) };
      const result = verifyGolden(entries, checkpoint);
      expect(result.ok ? undefined : result.problem).toMatchObject({
        code: 'ERR_AUDIT_RECORD_EDITED',
        position: { line: 5, index: 4, until: 5 },
        cause: 'ERR_AUDIT_SIGNATURE_INVALID',
      });
    }
  });

  it('refuses a second decision for an invocation, even under a checkpoint that covers it', async () => {
    const list = [records[0]!, records[1]!, records[1]!, ...records.slice(2)];
    const checkpoint = await checkpointOf(list);
    const result = verifyGolden(
      list.map((record, index) => ({ index, record })),
      checkpoint,
    );
    expect(result.ok ? undefined : result.problem).toMatchObject({
      code: 'ERR_AUDIT_DECISION_DUPLICATE',
      position: { line: 3, index: 2 },
    });
  });

  it('reports two authentic lines swapped and renumbered as reordered, at the first', async () => {
    const checkpoint = await checkpointOf(records);
    const swapped = [records[1]!, records[0]!, ...records.slice(2)];
    const result = verifyGolden(
      swapped.map((record, index) => ({ index, record })),
      checkpoint,
    );
    expect(result.ok ? undefined : result.problem).toMatchObject({
      code: 'ERR_AUDIT_RECORD_REORDERED',
      position: { line: 1, index: 0 },
      cause: 'ERR_AUDIT_INVOCATION_UNKNOWN',
    });
  });

  it('never throws on arbitrary text or on lines built around arbitrary records', async () => {
    const checkpoint = await checkpointOf(records);
    const options = { checkpoint, verifiers, authorities, enforcers: authorities };
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), fc.json({ maxDepth: 3 }), (junk, value) => {
        const record = JSON.stringify(value);
        for (const text of [
          junk,
          `{"index":0,"record":${record}}\n`,
          `${lines[0]}\n{"index":1,"record":${record}}\n`,
        ]) {
          const r = verifyTrailExport({ ...options, text });
          expect(typeof r.ok).toBe('boolean');
        }
      }),
      { numRuns: 300 },
    );
  });

  it('checks consistency with an older checkpoint, and reports a malformed line without throwing', async () => {
    const older = await checkpointOf(records.slice(0, 4));
    const newer = await checkpointOf(records);
    const ok = verifyTrailExport({
      text,
      checkpoint: newer,
      from: older,
      verifiers,
      authorities,
      enforcers: authorities,
    });
    expect(ok.ok).toBe(true);
    // An "older" checkpoint of another history (its records in another order).
    const forked = await checkpointOf([records[1]!, records[0]!, records[2]!, records[3]!]);
    const bad = verifyTrailExport({
      text,
      checkpoint: newer,
      from: forked,
      verifiers,
      authorities,
      enforcers: authorities,
    });
    expect(bad.ok ? undefined : bad.problem.code).toBe('ERR_AUDIT_CHECKPOINT_INCONSISTENT');
    for (const junk of [
      '',
      'x',
      '{"index":0}',
      '{"index":"0","record":{}}',
      '\u2028',
      '{"index":0,"record":[1]}',
    ]) {
      const r = verifyTrailExport({
        text: `${junk}\n`,
        checkpoint: newer,
        verifiers,
        authorities,
        enforcers: authorities,
      });
      expect(r.ok).toBe(false);
    }
  });
  it('checks each record at its own time through the key cache: a key cached earlier does not carry past its window', async () => {
    // The golden enforcer (the authority) signs by hand one more record at `at` (its signer
    // would refuse an expired key): inside the attestation's window the trail verifies; past it,
    // though the same key verified (and was cached) for the earlier records, it fails there.
    const seed = ed25519KeyPairFromSeed(
      fromHex(delegationGolden.identities.authority.credentialKeySeed),
    );
    const { expiresAt } = decodePurposeKeyAttestation(authority.issuer.credentialKeyAttestation);
    // An outcome (a second decision for the invocation would be ERR_AUDIT_DECISION_DUPLICATE).
    const outcome = JSON.parse(golden.outcome!.text) as Record<string, unknown>;
    const trailWith = async (at: number) => {
      const body: Record<string, unknown> = { ...outcome, completedAt: at };
      delete body.signature;
      const { text: signed } = await encodeSignedRecord(body, (bytes) =>
        Promise.resolve({
          keyType: 'ed25519' as const,
          value: toBase64Url(signEd25519(seed.secretKey, sha256(bytes))),
        }),
      );
      const list = [...records, utf8.encode(signed)];
      return verifyTrailExport({
        text: list.map((r, i) => formatExportLine(i, r)).join('\n') + '\n',
        checkpoint: await checkpointOf(list),
        verifiers,
        authorities,
        enforcers: authorities,
      });
    };
    const inside = await trailWith(expiresAt);
    expect(inside.ok, JSON.stringify(inside)).toBe(true);
    const past = await trailWith(expiresAt + 1);
    expect(past.ok ? undefined : past.problem).toMatchObject({
      code: 'ERR_PURPOSE_KEY_EXPIRED',
      position: { line: records.length + 1, index: records.length },
    });
  });
});
