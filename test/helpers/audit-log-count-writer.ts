// A child process for test/integration/audit-writers.test.ts: appends COUNT records
// `{"writer":W,"n":N}` to the SQLite log at argv[2] (8 concurrent tasks, group commit), prints
// `ack INDEX N` for each acknowledged append, and exits.
import { AuditLog } from '../../src/audit/index.js';
import { openSqliteStore } from '../../src/store/open-sqlite-store.js';

const [path, writer, count] = process.argv.slice(2) as [string, string, string];
const store = openSqliteStore(path);
const log = await AuditLog.open({ repository: store.auditLog, origin: 'writers.example/audit' });
let next = 0;
async function task(): Promise<void> {
  while (next < Number(count)) {
    const n = next++;
    const index = await log.append(new TextEncoder().encode(`{"writer":${writer},"n":${n}}`));
    process.stdout.write(`ack ${index} ${n}\n`);
  }
}
await Promise.all(Array.from({ length: 8 }, task));
await log.close();
store.close();
