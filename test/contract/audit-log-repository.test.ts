import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MemoryAuditLogRepository } from '../../src/audit/index.js';
import { openSqliteStore } from '../../src/store/open-sqlite-store.js';
import { runAuditLogRepositoryContract } from './audit-log-repository-contract.js';

runAuditLogRepositoryContract('memory', () => ({ repository: new MemoryAuditLogRepository() }));
runAuditLogRepositoryContract('sqlite', () => {
  const store = openSqliteStore(':memory:');
  return {
    repository: store.auditLog,
    close: () => {
      store.close();
    },
  };
});

describe('SqliteAuditLogRepository', () => {
  it('is durable across reopening the file, and its triggers refuse edits and deletes', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'mandate-audit-')), 'mandate.db');
    const store = openSqliteStore(path);
    const { AuditLog } = await import('../../src/audit/index.js');
    const log = await AuditLog.open({ repository: store.auditLog, origin: 'o' });
    await Promise.all([1, 2, 3].map((i) => log.append(Uint8Array.of(i))));
    const root = log.root();
    const db = store.database.db;
    expect(() =>
      db.prepare("UPDATE audit_log_entries SET record = x'00' WHERE idx = 0").run(),
    ).toThrow(/append-only/);
    expect(() => db.prepare('DELETE FROM audit_log_entries WHERE idx = 2').run()).toThrow(
      /append-only/,
    );
    store.close();
    const again = openSqliteStore(path);
    const reopened = await AuditLog.open({ repository: again.auditLog, origin: 'o' });
    expect(reopened.size).toBe(3);
    expect(reopened.root()).toEqual(root);
    again.close();
  });
});
