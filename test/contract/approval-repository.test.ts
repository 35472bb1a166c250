import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MemoryApprovalRepository } from '../../src/gates/index.js';
import { openSqliteStore } from '../../src/store/index.js';
import { repoRoot } from '../helpers/vectors.js';
import { SqliteDatabase } from '../../src/store/sqlite-database.js';
import {
  GATES_MIGRATION_SQL,
  SqliteApprovalRepository,
} from '../../src/store/sqlite-gate-repositories.js';
import {
  approvalAnswer,
  approvalRecord,
  runApprovalRepositoryContract,
} from './approval-repository-contract.js';

const NOW = 1_800_000_000;

runApprovalRepositoryContract('memory', () => ({ repository: new MemoryApprovalRepository() }));
runApprovalRepositoryContract('sqlite', () => {
  // The lead gives the migration its place in SQLITE_MIGRATIONS (9); alone here, any version will do.
  const database = new SqliteDatabase(':memory:', [
    { version: 1, name: 'gates', sql: GATES_MIGRATION_SQL },
  ]);
  return {
    repository: new SqliteApprovalRepository(database),
    close: () => {
      database.close();
    },
  };
});

describe('SqliteApprovalRepository across processes', () => {
  it('four processes consuming one approval at once: exactly one gets it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mandate-approval-procs-'));
    const path = join(dir, 'mandate.db');
    const store = openSqliteStore(path);
    await store.approvals.create(approvalRecord({ id: 'race' }));
    await store.approvals.answer('race', approvalAnswer(), NOW + 5);
    store.close();
    const script = join(dir, 'consume.mts');
    writeFileSync(
      script,
      `import { openSqliteStore } from ${JSON.stringify(join(repoRoot, 'src/store/index.ts'))};
const store = openSqliteStore(process.argv[2]);
const ok = await store.approvals.consume('race', ${NOW + 6});
store.close();
process.stdout.write(ok ? '1' : '0');
`,
    );
    const run = () =>
      new Promise<number>((resolve, reject) => {
        const child = spawn(process.execPath, ['--import', 'tsx', script, path], { cwd: repoRoot });
        let out = '';
        let err = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (err += d.toString()));
        child.on('error', reject);
        child.on('exit', (code) => {
          if (code === 0) resolve(Number(out));
          else reject(new Error(err));
        });
      });
    const results = await Promise.all([run(), run(), run(), run()]);
    expect(results.reduce((a, b) => a + b, 0)).toBe(1);
    const reopened = openSqliteStore(path);
    try {
      expect((await reopened.approvals.get('race'))?.status).toBe('used');
    } finally {
      reopened.close();
    }
  }, 120_000);
});
