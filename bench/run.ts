/**
 * `npm run bench`: every hot path next to its floor, measured in this run (ratios per round, see
 * harness.ts). `--markdown` also prints the tables for the README; `--only NAME[,NAME…]` runs
 * only those sections (names below). MANDATE_BENCH_QUICK=1 is a smoke run whose numbers mean
 * nothing.
 */
import { markdownTable, printTable, type TableRow } from './harness.js';
import { identityBenchmarks } from './identity.bench.js';
import { credentialBenchmarks } from './credentials.bench.js';
import { channelBenchmarks } from './channel.bench.js';
import { auditBenchmarks } from './audit.bench.js';
import { busBenchmarks } from './bus.bench.js';
import { policyBenchmarks } from './policy.bench.js';
import { gateBenchmarks } from './gates.bench.js';
import { trailBenchmarks } from './trail.bench.js';
import { brokerBenchmarks } from './broker.bench.js';
import { proxyBenchmarks } from './proxy.bench.js';
import { postgresBenchmarks } from './broker-postgres.bench.js';
import { mcpBenchmarks } from './mcp.bench.js';
import { aeadBenchmarks } from './aead.bench.js';
import { upBenchmarks } from './up.bench.js';

interface Section {
  readonly name: string;
  readonly title: string;
  /** Rows to print, or `undefined` when the section prints its own tables. */
  readonly run: () => Promise<readonly TableRow[] | undefined>;
}

const sections: readonly Section[] = [
  {
    name: 'crypto',
    title: 'crypto floors',
    run: async () => {
      await import('./crypto.bench.js');
      return undefined;
    },
  },
  {
    name: 'aead',
    title: 'AEAD per message: node:crypto AES-256-GCM against libsodium ChaCha20-Poly1305',
    run: aeadBenchmarks,
  },
  { name: 'identities', title: 'identities', run: identityBenchmarks },
  { name: 'credentials', title: 'credentials', run: credentialBenchmarks },
  { name: 'channels', title: 'secure channels', run: () => channelBenchmarks() },
  { name: 'audit', title: 'audit log', run: auditBenchmarks },
  { name: 'policy', title: 'policy decisions', run: policyBenchmarks },
  { name: 'gates', title: 'gates', run: gateBenchmarks },
  {
    name: 'bus',
    title: 'revocation to enforcement on a running node',
    run: () => busBenchmarks(),
  },
  { name: 'trail', title: 'audit trail verification', run: trailBenchmarks },
  { name: 'broker', title: 'broker: JWT leases, revoke-by-identity', run: brokerBenchmarks },
  { name: 'proxy', title: 'credential-injecting egress proxy', run: proxyBenchmarks },
  { name: 'postgres', title: 'PostgreSQL role leases', run: postgresBenchmarks },
  {
    name: 'mcp',
    title: 'MCP gateway: latency per tools/call, throughput, memory per agent',
    run: mcpBenchmarks,
  },
  {
    name: 'up',
    title:
      '`mandate up --demo` (a child process, step 19 through the node included): per phase against its floors, end to end; node memory with 1,000 channels',
    run: upBenchmarks,
  },
];

const onlyAt = process.argv.indexOf('--only');
const only =
  onlyAt < 0 ? undefined : new Set((process.argv[onlyAt + 1] ?? '').split(',').filter(Boolean));
const unknown = [...(only ?? [])].filter((name) => !sections.some((s) => s.name === name));
if (only !== undefined && (only.size === 0 || unknown.length > 0)) {
  console.error(
    `--only takes section names from: ${sections.map((s) => s.name).join(', ')}${unknown.length > 0 ? ` (unknown: ${unknown.join(', ')})` : ''}`,
  );
  process.exit(2);
}
let first = true;
for (const section of sections) {
  if (only !== undefined && !only.has(section.name)) continue;
  console.log(`${first ? '' : '\n'}# ${section.title}\n`);
  first = false;
  const rows = await section.run();
  if (rows === undefined) continue;
  printTable(rows);
  if (process.argv.includes('--markdown')) console.log(`\n${markdownTable(rows)}`);
}
