import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { seedNoteSigner } from '../../test/vectors/audit-golden.js';
import { AuditLog } from './audit-log.js';
import { noteVerifierKey, signCheckpoint, type NoteVerifierKey } from './checkpoint.js';
import { MemoryAuditLogRepository } from './memory-audit-log-repository.js';
import { verifyLog, type LogEntryLine, type LogVerification } from './verify-log.js';

const ORIGIN = 'test.example/audit';
const signer = seedNoteSigner(ORIGIN, new Uint8Array(32).fill(3));
const verifiers: NoteVerifierKey[] = [noteVerifierKey(ORIGIN, signer.publicKey)];
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const N = 50;

interface Built {
  readonly entries: LogEntryLine[];
  readonly newest: string;
  /** A checkpoint after every entry: exact positions for edits. */
  readonly every: string[];
  readonly at20: string;
}

async function build(): Promise<Built> {
  const log = await AuditLog.open({ repository: new MemoryAuditLogRepository(), origin: ORIGIN });
  const every: string[] = [];
  let at20 = '';
  for (let i = 0; i < N; i++) {
    await log.append(enc(`{"record":${i}}`));
    const note = await log.checkpoint([signer]);
    every.push(note);
    if (i === 19) at20 = note;
  }
  const entries = (await log.readEntries(0, N)).map((e, index) => ({
    index,
    record: e.record,
    id: `r${index}`,
  }));
  return { entries, newest: every[N - 1]!, every, at20 };
}

const problemOf = (result: LogVerification) => {
  if (result.ok) throw new Error('expected a problem');
  return result.problem;
};

describe('verifyLog', () => {
  let b: Built;
  beforeAll(async () => {
    b = await build();
  });
  const run = (entries: readonly LogEntryLine[], checkpoints: readonly string[] = [b.newest]) =>
    verifyLog({ entries, checkpoints, verifiers, origin: ORIGIN });

  it('verifies an intact log, and counts entries past the checkpoint as uncovered', () => {
    const result = run(b.entries, [b.newest, b.at20]);
    expect(result.ok && result.checkpoint.treeSize).toBe(N);
    const longer = run(b.entries, [b.at20]);
    expect(longer.ok && longer.uncovered).toBe(30);
  });

  it('reports a forged or re-signed checkpoint', async () => {
    const edited = b.newest.replace(`\n${N}\n`, `\n${N - 1}\n`);
    expect(problemOf(run(b.entries, [edited]))).toMatchObject({
      code: 'ERR_CHECKPOINT_SIGNATURE_INVALID',
      position: { checkpoint: 0 },
    });
    const other = seedNoteSigner(ORIGIN, new Uint8Array(32).fill(4));
    const resigned = await signCheckpoint(
      { origin: ORIGIN, treeSize: N, rootHash: new Uint8Array(32), extensions: [] },
      [other],
    );
    expect(problemOf(run(b.entries, [b.at20, resigned]))).toMatchObject({
      code: 'ERR_CHECKPOINT_UNVERIFIED',
      position: { checkpoint: 1 },
    });
  });

  it('locates an edited record between checkpoints, exactly with one per entry', () => {
    const edited = b.entries.map((e, i) => (i === 16 ? { ...e, record: enc('{"record":99}') } : e));
    expect(problemOf(run(edited))).toMatchObject({
      code: 'ERR_AUDIT_RECORD_EDITED',
      position: { line: 1, index: 0, until: N },
    });
    expect(problemOf(run(edited, [b.newest, b.at20]))).toMatchObject({
      code: 'ERR_AUDIT_RECORD_EDITED',
      position: { line: 1, index: 0, until: 20 },
    });
    expect(problemOf(run(edited, b.every))).toMatchObject({
      code: 'ERR_AUDIT_RECORD_EDITED',
      position: { line: 17, index: 16, until: 17, id: 'r16' },
    });
  });

  it('locates deleted, inserted, reordered and duplicated lines', () => {
    const without = b.entries.filter((_, i) => i !== 16);
    expect(problemOf(run(without))).toMatchObject({
      code: 'ERR_AUDIT_RECORD_DELETED',
      position: { line: 17, index: 16 },
    });
    const fake = { index: 16, record: enc('{"record":"forged"}'), id: 'forged' };
    const insertedBefore = [...b.entries.slice(0, 16), fake, ...b.entries.slice(16)];
    expect(problemOf(run(insertedBefore))).toMatchObject({
      code: 'ERR_AUDIT_RECORD_INSERTED',
      position: { line: 17, id: 'forged' },
    });
    const insertedAfter = [...b.entries.slice(0, 17), fake, ...b.entries.slice(17)];
    expect(problemOf(run(insertedAfter))).toMatchObject({
      code: 'ERR_AUDIT_RECORD_INSERTED',
      position: { line: 18, id: 'forged' },
    });
    const swapped = [...b.entries];
    [swapped[16], swapped[17]] = [swapped[17]!, swapped[16]!];
    expect(problemOf(run(swapped))).toMatchObject({
      code: 'ERR_AUDIT_RECORD_REORDERED',
      position: { line: 17, index: 16, id: 'r17' },
    });
    const doubled = [...b.entries.slice(0, 17), b.entries[16]!, ...b.entries.slice(17)];
    expect(problemOf(run(doubled))).toMatchObject({
      code: 'ERR_AUDIT_RECORD_DUPLICATED',
      position: { line: 18, index: 16 },
    });
    const malformed = [...b.entries.slice(0, 3), { index: -1, record: enc('x') }];
    expect(problemOf(run(malformed))).toMatchObject({
      code: 'ERR_AUDIT_ENTRY_MALFORMED',
      position: { line: 4 },
    });
  });

  it('reports a log shorter than its checkpoint', () => {
    expect(problemOf(run(b.entries.slice(0, 45)))).toMatchObject({
      code: 'ERR_AUDIT_LOG_TRUNCATED',
      position: { line: 46, index: 45, until: N },
    });
    expect(problemOf(run([]))).toMatchObject({ code: 'ERR_AUDIT_LOG_TRUNCATED' });
  });

  it('reports checkpoints that disagree with each other', async () => {
    const fork = await signCheckpoint(
      { origin: ORIGIN, treeSize: 20, rootHash: new Uint8Array(32).fill(1), extensions: [] },
      [signer],
    );
    expect(problemOf(run(b.entries, [b.newest, b.at20, fork]))).toMatchObject({
      code: 'ERR_AUDIT_CHECKPOINT_INCONSISTENT',
    });
    expect(problemOf(run(b.entries, [b.newest, fork]))).toMatchObject({
      code: 'ERR_AUDIT_CHECKPOINT_INCONSISTENT',
      position: { checkpoint: 1 },
    });
    expect(problemOf(run(b.entries, []))).toMatchObject({
      code: 'ERR_AUDIT_CHECKPOINT_INCONSISTENT',
    });
  });

  it('never accepts a log with any one line edited, dropped, repeated or moved', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: N - 1 }),
        fc.integer({ min: 0, max: N - 1 }),
        fc.constantFrom('edit', 'drop', 'repeat', 'move', 'flip'),
        fc.nat(255),
        (i, j, kind, byte) => {
          const entries = [...b.entries];
          const e = entries[i]!;
          if (kind === 'edit') {
            const record = e.record.slice();
            const at = byte % record.length;
            record[at] = record[at]! ^ (1 + (byte % 255));
            entries[i] = { ...e, record };
          } else if (kind === 'drop') entries.splice(i, 1);
          else if (kind === 'repeat') entries.splice(j, 0, e);
          else if (kind === 'move') {
            if (i === j) return;
            entries.splice(i, 1);
            entries.splice(j, 0, e);
          } else entries[i] = { ...e, index: e.index ^ (1 + (byte % 7)) };
          expect(run(entries).ok).toBe(false);
        },
      ),
      { numRuns: 300 },
    );
  });
});
