// A child process for test/integration/audit-crash.test.ts: appends audit records to the SQLite
// log at argv[2] in a burst (32 concurrent writers, group commit), prints `ack INDEX RUN N` for
// every acknowledged append and signs a checkpoint now and then, until it is killed. The first
// record is checkpointed before any ack is printed, so a kill at any point after the first ack
// leaves at least one stored checkpoint to verify against.
import { AuditLog } from '../../src/audit/index.js';
import { fromHex } from '../../src/encoding/index.js';
import { openSqliteStore } from '../../src/store/open-sqlite-store.js';
import { seedNoteSigner } from '../vectors/audit-golden.js';

const [path, run, origin, seedHex] = process.argv.slice(2) as [string, string, string, string];
const store = openSqliteStore(path);
const log = await AuditLog.open({ repository: store.auditLog, origin });
const signer = seedNoteSigner(origin, fromHex(seedHex));
process.stdout.write(`ready ${log.size}\n`);

let next = 0;
let acked = 0;
{
  const n = next++;
  const index = await log.append(new TextEncoder().encode(`{"run":${run},"n":${n}}`));
  await log.checkpoint([signer]);
  acked++;
  process.stdout.write(`ack ${index} ${run} ${n}\n`);
}
async function writer(): Promise<void> {
  for (;;) {
    const n = next++;
    const index = await log.append(new TextEncoder().encode(`{"run":${run},"n":${n}}`));
    process.stdout.write(`ack ${index} ${run} ${n}\n`);
    if (++acked % 500 === 0) await log.checkpoint([signer]);
  }
}
await Promise.all(Array.from({ length: 32 }, writer));
