import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AuditLog, hashLeaf, MemoryAuditLogRepository } from '../audit/index.js';
import { openSqliteStore } from './open-sqlite-store.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function home() {
  const dir = mkdtempSync(join(tmpdir(), 'mandate-audit-texts-'));
  dirs.push(dir);
  return join(dir, 'mandate.db');
}

const utf8 = new TextEncoder();
const attestation = (n: number) => `${String.fromCharCode(65 + n)}${'x'.repeat(329)}`;
// Record-shaped bytes: the repository stores any bytes, and takes out an `attestation` value.
const record = (i: number, signer: number) =>
  utf8.encode(`{"agent":"I${i}","attestation":"${attestation(signer)}","type":"t"}`);
// The first `"attestation":"` is cut, up to the next quote byte: here a disclosed argument's value
// up to its escaped quote (a lossless cut all the same).
const withArgument = (i: number) =>
  utf8.encode(
    `{"agent":"I${i}","arguments":{"attestation":"${'a'.repeat(70)}\\"q"},"attestation":"${attestation(0)}","type":"t"}`,
  );

describe('SQLite audit log: a signer attestation stored once (migration 16)', () => {
  it('keeps each distinct value once and reads every record back byte for byte', async () => {
    const store = openSqliteStore(home());
    const log = await AuditLog.open({ repository: store.auditLog, origin: 'test' });
    const records = Array.from({ length: 40 }, (_, i) => record(i, i % 3));
    // Short values and records without the member are stored whole.
    records.push(withArgument(40), withArgument(41));
    records.push(utf8.encode('{"attestation":"short","type":"t"}'), utf8.encode('{"type":"t"}'));
    await Promise.all(records.map((r) => log.append(r)));
    const db = store.database.db;
    const texts = db.prepare('SELECT count(*) AS n FROM audit_log_texts').get() as { n: number };
    // Three signers' values and the disclosed argument's.
    expect(texts.n).toBe(4);
    const stored = db
      .prepare('SELECT length(record) AS n, text_id FROM audit_log_entries ORDER BY idx')
      .all() as { n: number; text_id: number | null }[];
    expect(stored[0]!.n).toBeLessThan(records[0]!.length - 60);
    expect(stored.slice(-2).map((row) => row.text_id)).toEqual([null, null]);
    const read = await store.auditLog.readEntries(0, records.length);
    expect(read.map((e) => Buffer.from(e.record).toString())).toEqual(
      records.map((r) => Buffer.from(r).toString()),
    );
    expect(read.map((e) => Buffer.from(e.leafHash).toString('hex'))).toEqual(
      records.map((r) => Buffer.from(hashLeaf(r)).toString('hex')),
    );
    // One commit of 44 entries, inserted several rows per statement: the nodes each row carries
    // give the tree a log in memory computes (read back by a writer opening the store).
    const memory = await AuditLog.open({ repository: new MemoryAuditLogRepository(), origin: 't' });
    await Promise.all(records.map((r) => memory.append(r)));
    const reopened = await AuditLog.open({ repository: store.auditLog, origin: 'test' });
    expect(Buffer.from(reopened.root()).toString('hex')).toBe(
      Buffer.from(memory.root()).toString('hex'),
    );
    for (const index of [0, 15, 16, 17, 31, 32, 43])
      expect(await reopened.inclusionProof(index)).toEqual(await memory.inclusionProof(index));
    await log.close();
    store.close();
  });

  it('forgets a text whose transaction rolled back, and a missing text leaves the entry altered', async () => {
    const path = home();
    const store = openSqliteStore(path);
    const log = await AuditLog.open({ repository: store.auditLog, origin: 'test' });
    const db = store.database.db;
    db.exec(`CREATE TRIGGER fail_once BEFORE INSERT ON audit_log_entries
      WHEN NEW.idx = 1 BEGIN SELECT RAISE(ABORT, 'injected'); END`);
    await log.append(record(0, 0));
    // The batch inserts signer 1's text, then fails: rolled back, text and all.
    await expect(log.append(record(1, 1))).rejects.toThrow('injected');
    expect(db.prepare('SELECT count(*) AS n FROM audit_log_texts').get()).toEqual({ n: 1 });
    db.exec('DROP TRIGGER fail_once');
    // Another text takes the id the rolled-back one had; signer 1's gets a new one.
    await log.append(record(1, 2));
    await log.append(record(2, 1));
    const read = await store.auditLog.readEntries(0, 3);
    expect(read.map((e) => Buffer.from(e.record).toString())).toEqual(
      [record(0, 0), record(1, 2), record(2, 1)].map((r) => Buffer.from(r).toString()),
    );
    // A text deleted behind the triggers' back: its entries read without it, not as appended.
    db.exec('DROP TRIGGER audit_log_texts_no_delete');
    db.exec('DELETE FROM audit_log_texts');
    const altered = await store.auditLog.readEntries(0, 1);
    expect(Buffer.from(altered[0]!.record).toString()).not.toBe(
      Buffer.from(record(0, 0)).toString(),
    );
    await log.close();
    store.close();
  });
});
