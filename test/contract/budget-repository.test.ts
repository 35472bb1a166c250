import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MemoryBudgetRepository } from '../../src/gates/index.js';
import { openSqliteStore } from '../../src/store/index.js';
import { SqliteDatabase } from '../../src/store/sqlite-database.js';
import {
  GATES_MIGRATION_SQL,
  SqliteBudgetRepository,
} from '../../src/store/sqlite-gate-repositories.js';
import { repoRoot } from '../helpers/vectors.js';
import { runBudgetRepositoryContract } from './budget-repository-contract.js';

const MIGRATIONS = [{ version: 1, name: 'gates', sql: GATES_MIGRATION_SQL }];

runBudgetRepositoryContract('memory', () => ({ repository: new MemoryBudgetRepository() }));
runBudgetRepositoryContract('sqlite', () => {
  const path = join(mkdtempSync(join(tmpdir(), 'mandate-budget-')), 'db.sqlite');
  const databases = [new SqliteDatabase(path, MIGRATIONS)];
  return {
    repository: new SqliteBudgetRepository(databases[0]!),
    sibling: () => {
      const second = new SqliteDatabase(path, MIGRATIONS);
      databases.push(second);
      return new SqliteBudgetRepository(second);
    },
    close: () => {
      for (const d of databases) d.close();
    },
  };
});

describe('SqliteBudgetRepository across processes', () => {
  it('four processes spending one budget at once never overshoot it, and it survives a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mandate-budget-procs-'));
    const path = join(dir, 'mandate.db');
    openSqliteStore(path).close(); // every migration applied once, before the race
    const script = join(dir, 'spend.mts');
    writeFileSync(
      script,
      `import { openSqliteStore } from ${JSON.stringify(join(repoRoot, 'src/store/index.ts'))};
const store = openSqliteStore(process.argv[2]);
let ok = 0;
for (let i = 0; i < 25; i++) if ((await store.budgets.spend('root-grant:issue_refund#amount', 3, 100)).ok) ok++;
store.close();
process.stdout.write(String(ok));
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
    const successes = await Promise.all([run(), run(), run(), run()]);
    expect(successes.reduce((a, b) => a + b, 0)).toBe(33); // floor(100 / 3)
    const reopened = openSqliteStore(path);
    try {
      expect(await reopened.budgets.spent('root-grant:issue_refund#amount')).toBe(99);
      expect((await reopened.budgets.spend('root-grant:issue_refund#amount', 2, 100)).ok).toBe(
        false,
      );
    } finally {
      reopened.close();
    }
  }, 120_000);
});
