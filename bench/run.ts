/**
 * `npm run bench`: every hot path next to its floor, measured in this run (ratios per round, see
 * harness.ts). `--markdown` also prints the tables for the README. MANDATE_BENCH_QUICK=1 is a
 * smoke run whose numbers mean nothing.
 */
import { markdownTable, printTable } from './harness.js';
import { identityBenchmarks } from './identity.bench.js';
import { credentialBenchmarks } from './credentials.bench.js';
import { channelBenchmarks } from './channel.bench.js';
import { busBenchmarks } from './bus.bench.js';
import { policyBenchmarks } from './policy.bench.js';
import { gateBenchmarks } from './gates.bench.js';
import { auditBenchmarks } from './audit.bench.js';
import { trailBenchmarks } from './trail.bench.js';

console.log('# crypto floors\n');
await import('./crypto.bench.js');
console.log('\n# identities\n');
const rows = await identityBenchmarks();
printTable(rows);
if (process.argv.includes('--markdown')) console.log(`\n${markdownTable(rows)}`);
console.log('\n# credentials\n');
const credentialRows = await credentialBenchmarks();
printTable(credentialRows);
if (process.argv.includes('--markdown')) console.log(`\n${markdownTable(credentialRows)}`);
console.log('\n# secure channels\n');
const channelRows = await channelBenchmarks();
printTable(channelRows);
if (process.argv.includes('--markdown')) console.log(`\n${markdownTable(channelRows)}`);
console.log('\n# policy decisions\n');
const policyRows = await policyBenchmarks();
printTable(policyRows);
if (process.argv.includes('--markdown')) console.log(`\n${markdownTable(policyRows)}`);
console.log('\n# gates\n');
const gateRows = await gateBenchmarks();
printTable(gateRows);
if (process.argv.includes('--markdown')) console.log(`\n${markdownTable(gateRows)}`);
console.log('\n# revocation to enforcement on a running node\n');
const busRows = await busBenchmarks();
printTable(busRows);
if (process.argv.includes('--markdown')) console.log(`\n${markdownTable(busRows)}`);
console.log('\n# audit log\n');
const auditRows = await auditBenchmarks();
printTable(auditRows);
if (process.argv.includes('--markdown')) console.log(`\n${markdownTable(auditRows)}`);
console.log('\n# audit trail verification\n');
const trailRows = await trailBenchmarks();
printTable(trailRows);
if (process.argv.includes('--markdown')) console.log(`\n${markdownTable(trailRows)}`);
