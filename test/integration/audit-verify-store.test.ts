import { describe, expect, it } from 'vitest';
import {
  AuditLog,
  hashLeaf,
  noteVerifierKey,
  verifyStoredLog,
  type LogVerification,
  type NoteVerifierKey,
} from '../../src/audit/index.js';
import { openSqliteStore } from '../../src/store/open-sqlite-store.js';
import { seedNoteSigner } from '../vectors/audit-golden.js';

// verifyStoredLog against a SQLite file edited behind the log's back (the triggers dropped
// first, as an attacker with the file would).

const ORIGIN = 'test.example/audit';
const signer = seedNoteSigner(ORIGIN, new Uint8Array(32).fill(3));
const verifiers: NoteVerifierKey[] = [noteVerifierKey(ORIGIN, signer.publicKey)];
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const problemOf = (result: LogVerification) => {
  if (result.ok) throw new Error('expected a problem');
  return result.problem;
};

describe('verifyStoredLog (SQLite)', () => {
  async function stored() {
    const store = openSqliteStore(':memory:');
    const log = await AuditLog.open({ repository: store.auditLog, origin: ORIGIN });
    await Promise.all(Array.from({ length: 40 }, (_, i) => log.append(enc(`{"record":${i}}`))));
    await log.checkpoint([signer]);
    const db = store.database.db;
    // An attacker with the file drops the guards first.
    const unguard = (): void => {
      for (const t of ['audit_log_entries_no_update', 'audit_log_entries_no_delete']) {
        db.exec(`DROP TRIGGER ${t}`);
      }
    };
    return { store, log, db, unguard };
  }
  const verify = (repository: Parameters<typeof verifyStoredLog>[0]) =>
    verifyStoredLog(repository, { verifiers, origin: ORIGIN });

  it('verifies an intact store', async () => {
    const { store } = await stored();
    const result = await verify(store.auditLog);
    expect(result.ok && result.checkpoint.treeSize).toBe(40);
    store.close();
  });

  it('locates an edited row exactly, and an edit with its leaf hash to the pair', async () => {
    const { store, db, unguard } = await stored();
    unguard();
    db.prepare("UPDATE audit_log_entries SET record = x'7b7d' WHERE idx = 13").run();
    expect(problemOf(await verify(store.auditLog))).toMatchObject({
      code: 'ERR_AUDIT_RECORD_EDITED',
      position: { index: 13, until: 14 },
    });
    db.prepare('UPDATE audit_log_entries SET leaf_hash = ? WHERE idx = 13').run(
      Buffer.from(hashLeaf(enc('{}'))),
    );
    expect(problemOf(await verify(store.auditLog))).toMatchObject({
      code: 'ERR_AUDIT_RECORD_EDITED',
      position: { index: 12, until: 14 },
    });
    store.close();
  });

  it('reports a deleted row and a truncated log', async () => {
    const { store, db, unguard } = await stored();
    unguard();
    db.prepare('DELETE FROM audit_log_entries WHERE idx = 7').run();
    expect(problemOf(await verify(store.auditLog))).toMatchObject({
      code: 'ERR_AUDIT_RECORD_DELETED',
      position: { index: 7 },
    });
    db.prepare('DELETE FROM audit_log_entries WHERE idx >= 30').run();
    expect(problemOf(await verify(store.auditLog))).toMatchObject({
      code: 'ERR_AUDIT_LOG_TRUNCATED',
      position: { index: 30, until: 40 },
    });
    store.close();
  });
});
