/**
 * The audit log's hot paths against their floors, measured in the same run:
 *   node --import tsx bench/run.ts
 * Appending: durable appends through the AuditLog (group commit: a batch of concurrent appends
 * shares one SQLite transaction) against the raw floor of the same batch — one SHA-256 leaf hash
 * per record and one SQLite transaction inserting the rows into a plain table. Proofs: inclusion
 * and consistency proofs of a 1,000,000-entry log on SQLite, generated (node reads) and verified
 * (RFC 9162 §2.1.3.2/§2.1.4.2) against their floors: the same node reads as bare statements, and
 * the proof's SHA-256 node hashes.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import {
  AuditLog,
  CompactRange,
  MemoryAuditLogRepository,
  consistencyProofRanges,
  hashChildren,
  hashLeaf,
  inclusionProofRanges,
  subtreeNodes,
  verifyConsistency,
  verifyInclusion,
  type StoredMerkleNode,
} from '../src/audit/index.js';
import {
  EnforcerSigner,
  InvocationSigner,
  type SignedRecord,
  type InvocationRecord,
} from '../src/audit/index.js';
import { ed25519KeyPairFromSeed, randomUnit, sha256, signEd25519 } from '../src/crypto/index.js';
import { MemoryVault } from '../src/vault/index.js';
import { Identities, MemoryIdentityRepository, Purpose } from '../src/identity/index.js';
import {
  chainFromCredential,
  issueCredential,
  type CredentialIssuer,
} from '../src/credentials/index.js';
import { openSqliteStore } from '../src/store/open-sqlite-store.js';
import { group, type TableRow } from './harness.js';

const RECORD_BYTES = 300; // about one JCS invocation or decision record without its chain
const BATCHES = [1, 16, 256] as const;

function record(n: number): Uint8Array {
  const bytes = new Uint8Array(RECORD_BYTES).fill(0x61);
  new DataView(bytes.buffer).setFloat64(0, n);
  return bytes;
}

async function appendRows(): Promise<TableRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'mandate-bench-audit-'));
  const store = openSqliteStore(join(dir, 'mandate.db'));
  const log = await AuditLog.open({ repository: store.auditLog, origin: 'bench/audit' });
  // The floor: the same WAL file settings, one plain table, one transaction per batch.
  const raw = new Database(join(dir, 'floor.db'));
  raw.pragma('journal_mode = WAL');
  raw.pragma('synchronous = NORMAL');
  raw.exec(
    'CREATE TABLE t (idx INTEGER PRIMARY KEY, record BLOB NOT NULL, leaf_hash BLOB NOT NULL) STRICT',
  );
  const insert = raw.prepare('INSERT INTO t (idx, record, leaf_hash) VALUES (?, ?, ?)');
  let rawNext = 0;
  const rawBatch = raw.transaction((records: readonly Uint8Array[]) => {
    for (const r of records) insert.run(rawNext++, r, hashLeaf(r));
  });
  let n = 0;
  const rows: TableRow[] = [];
  try {
    for (const size of BATCHES) {
      const results = await group(`audit-append-${size}`)
        .add(
          'floor',
          () => {
            const records = Array.from({ length: size }, () => record(n++));
            rawBatch(records);
          },
          {
            label: `raw floor: ${size} SHA-256 leaf hashes + 1 SQLite transaction of ${size} rows`,
          },
        )
        .add(
          'append',
          async () => {
            await Promise.all(Array.from({ length: size }, () => log.append(record(n++))));
          },
          { label: `AuditLog.append × ${size} concurrent (one group commit)` },
        )
        .run();
      const append = results.get('append');
      const floor = results.get('floor');
      rows.push({
        what: `durable audit append, batch ${size} (${RECORD_BYTES}-byte records), per record`,
        usPerOp: append.usPerOp / size,
        baseline: 'raw floor per record (leaf hash + share of one transaction)',
        baselineUsPerOp: floor.usPerOp / size,
        ratio: results.ratio('append', 'floor'),
        target: `${Math.round((1e6 * size) / append.usPerOp).toLocaleString('en-US')} appends/s`,
      });
    }
  } finally {
    await log.close();
    store.close();
    raw.close();
  }
  return rows;
}

async function proofRows(): Promise<TableRow[]> {
  const size = process.env.MANDATE_BENCH_QUICK === '1' ? 20_000 : 1_000_000;
  const dir = mkdtempSync(join(tmpdir(), 'mandate-bench-audit-proofs-'));
  const store = openSqliteStore(join(dir, 'mandate.db'));
  // Fill the log in chunks straight through the repository (what AuditLog commits, minus the
  // per-record promises), then open it as a log.
  let range = new CompactRange();
  for (let from = 0; from < size; from += 10_000) {
    const next = range.clone();
    const nodes: StoredMerkleNode[] = [];
    const entries = [];
    for (let i = from; i < Math.min(size, from + 10_000); i++) {
      const r = record(i).subarray(0, 64);
      const leafHash = hashLeaf(r);
      entries.push({ record: r, leafHash });
      next.append(leafHash, (node, hash) => nodes.push({ ...node, hash }));
    }
    await store.auditLog.append(range.size, entries, nodes);
    range = next;
  }
  const log = await AuditLog.open({ repository: store.auditLog, origin: 'bench/audit' });
  const root = log.root();
  const db = store.database.db;
  const leaf = db.prepare<[number], { leaf_hash: Buffer }>(
    'SELECT leaf_hash FROM audit_log_entries WHERE idx = ?',
  );
  const node = db.prepare<[number, number], { hash: Buffer }>(
    'SELECT substr(nodes, ?, 32) AS hash FROM audit_log_entries WHERE idx = ?',
  );

  const PROBES = 256;
  const indices = Array.from({ length: PROBES }, () => Math.floor(randomUnit() * size));
  const firsts = Array.from({ length: PROBES }, () => 1 + Math.floor(randomUnit() * (size - 1)));
  const leafHashes = await Promise.all(
    indices.map(async (i) => (await log.readEntries(i, i + 1))[0]!.leafHash),
  );
  const inclusionProofs = await Promise.all(indices.map((i) => log.inclusionProof(i, size)));
  const firstRoots = await Promise.all(firsts.map((m) => log.rootAt(m)));
  const consistencyProofs = await Promise.all(firsts.map((m) => log.consistencyProof(m, size)));
  const nodeLists = (ranges: ReturnType<typeof inclusionProofRanges>) =>
    ranges.flatMap((r) => subtreeNodes(r));
  const inclusionNodes = indices.map((i) => nodeLists(inclusionProofRanges(i, size)));
  const consistencyNodes = firsts.map((m) => nodeLists(consistencyProofRanges(m, size)));
  const readRaw = (ids: readonly { level: number; index: number }[]): number => {
    let bytes = 0;
    for (const id of ids) {
      const row =
        id.level === 0
          ? leaf.get(id.index)?.leaf_hash
          : node.get((id.level - 1) * 32 + 1, (id.index + 1) * 2 ** id.level - 1)?.hash;
      bytes += row!.byteLength;
    }
    return bytes;
  };
  const hashFloor = (proof: readonly Uint8Array[]): Uint8Array => {
    let h = proof[0]!;
    for (let i = 1; i < proof.length; i++) h = hashChildren(proof[i]!, h);
    return h;
  };
  let k = 0;
  const nextProbe = (): number => (k = (k + 1) % PROBES);

  const results = await group('audit-proofs')
    .add('inclusionGenerate', () => log.inclusionProof(indices[nextProbe()]!, size), {
      label: `inclusion proof, generate (SQLite, ${size.toLocaleString('en-US')} entries)`,
    })
    .add('inclusionReads', () => readRaw(inclusionNodes[nextProbe()]!), {
      label: 'the same node reads as bare SQLite statements',
    })
    .add(
      'inclusionVerify',
      () => {
        const p = nextProbe();
        verifyInclusion(indices[p]!, size, leafHashes[p]!, inclusionProofs[p]!, root);
      },
      { label: `inclusion proof, verify (RFC 9162 §2.1.3.2)` },
    )
    .add('inclusionHashes', () => hashFloor(inclusionProofs[nextProbe()]!), {
      label: 'raw floor: the proof’s SHA-256 node hashes',
    })
    .add('consistencyGenerate', () => log.consistencyProof(firsts[nextProbe()]!, size), {
      label: `consistency proof, generate (SQLite, ${size.toLocaleString('en-US')} entries)`,
    })
    .add('consistencyReads', () => readRaw(consistencyNodes[nextProbe()]!), {
      label: 'the same node reads as bare SQLite statements',
    })
    .add(
      'consistencyVerify',
      () => {
        const p = nextProbe();
        verifyConsistency(firsts[p]!, size, firstRoots[p]!, root, consistencyProofs[p]!);
      },
      { label: 'consistency proof, verify (RFC 9162 §2.1.4.2)' },
    )
    .add('consistencyHashes', () => hashFloor(consistencyProofs[nextProbe()]!), {
      label: 'raw floor: the proof’s SHA-256 node hashes (×2 in the algorithm)',
    })
    .run();
  store.close();
  const sized = (id: string, baseline: string): TableRow => {
    const r = results.get(id);
    const b = results.get(baseline);
    return {
      what: r.label,
      usPerOp: r.usPerOp,
      baseline: b.label,
      baselineUsPerOp: b.usPerOp,
      ratio: results.ratio(id, baseline),
    };
  };
  return [
    sized('inclusionGenerate', 'inclusionReads'),
    sized('inclusionVerify', 'inclusionHashes'),
    sized('consistencyGenerate', 'consistencyReads'),
    sized('consistencyVerify', 'consistencyHashes'),
  ];
}

/**
 * Durable signed records: per call, the agent signs its invocation (JCS, SHA-256, Ed25519 through
 * its vault), the enforcement point countersigns a decision naming it, and both are appended to
 * the SQLite log; a batch of concurrent calls shares one group commit. Floor: the two Ed25519
 * signatures alone (libsodium, over a 32-byte digest), per call.
 */
export async function signedRecordRows(): Promise<TableRow[]> {
  const now = Math.floor(Date.now() / 1000);
  const vault = new MemoryVault();
  const identities = new Identities({
    vault,
    repository: new MemoryIdentityRepository(),
    clock: { nowSeconds: () => now },
  });
  const party = async (name: string) => {
    const local = await identities.create({ name });
    const { verified, keyId } = await identities.purposeKey(name, Purpose.credentials);
    const issuer: CredentialIssuer = {
      identity: local.identity,
      credentialKeyId: keyId,
      credentialKeyAttestation: verified.attestation,
    };
    return { identity: local.identity, issuer };
  };
  const authority = await party('authority');
  const agent = await party('agent');
  const chain = chainFromCredential(
    await issueCredential(
      vault,
      authority.issuer,
      agent.identity,
      new Map([['tools', new TextEncoder().encode('issue_refund')]]),
      { nowSeconds: now, ttlSeconds: 3600 },
    ),
    agent.identity,
  );
  const invocations = new InvocationSigner(vault, agent.issuer);
  const enforcer = new EnforcerSigner(vault, authority.issuer);
  const dir = mkdtempSync(join(tmpdir(), 'mandate-bench-records-'));
  const store = openSqliteStore(join(dir, 'mandate.db'));
  const log = await AuditLog.open({ repository: store.auditLog, origin: 'bench/records' });
  const agentKey = ed25519KeyPairFromSeed(new Uint8Array(32).fill(1));
  const gateKey = ed25519KeyPairFromSeed(new Uint8Array(32).fill(2));
  const message = new Uint8Array(300).fill(0x61);
  let n = 0;
  // The same calls into a log held in memory: what the signing costs without the disk.
  const memoryLog = await AuditLog.open({
    repository: new MemoryAuditLogRepository(),
    origin: 'bench/records',
  });
  const oneCall = async (target: AuditLog = log): Promise<number> => {
    const args = { order: `o-${n++}`, amount: 40 };
    const invocation: SignedRecord<InvocationRecord> = await invocations.sign({
      chain,
      tool: 'issue_refund',
      server: 'orders',
      args,
      nowSeconds: now,
    });
    const appended = target.append(invocation.bytes);
    const decision = await enforcer.signDecision({
      invocation: invocation.hash,
      agent: invocation.record.agent,
      decision: 'allow',
      lock: null,
      code: null,
      reasons: [],
      policies: ['small-refunds'],
      bundle: 'b'.repeat(64),
      escalation: null,
      approval: null,
      decidedAt: now,
    });
    await target.append(decision.bytes);
    return appended;
  };
  const rows: TableRow[] = [];
  let recordBytes = 0;
  try {
    // The chain is logged once (a chain record, before the first invocation naming it by hash),
    // as an enforcement point does: not per call, so outside the timing.
    for (const target of [log, memoryLog])
      await target.append((await enforcer.signChain(chain, now)).bytes);
    {
      const sample = await invocations.sign({
        chain,
        tool: 'issue_refund',
        args: {},
        nowSeconds: now,
      });
      recordBytes = sample.bytes.length;
    }
    for (const size of BATCHES) {
      const results = await group(`audit-signed-records-${size}`)
        .add(
          'floor',
          () => {
            for (let i = 0; i < size; i++) {
              message[0] = i;
              signEd25519(agentKey.secretKey, sha256(message));
              signEd25519(gateKey.secretKey, sha256(message));
            }
          },
          { label: `raw floor: ${size} × 2 Ed25519 signatures (libsodium, SHA-256 digest)` },
        )
        .add(
          'memory',
          async () => {
            await Promise.all(Array.from({ length: size }, () => oneCall(memoryLog)));
          },
          { label: `the same ${size} calls into a log in memory (no disk)` },
        )
        .add(
          'records',
          async () => {
            await Promise.all(Array.from({ length: size }, () => oneCall()));
          },
          {
            label: `${size} concurrent calls: invocation signed + decision countersigned + both appended`,
          },
        )
        .run();
      const records = results.get('records');
      const floor = results.get('floor');
      rows.push({
        what: `durable signed records, batch ${size}, per call: agent-signed invocation (${recordBytes} B, its chain by hash) + countersigned decision + both appended (no gate verification)`,
        usPerOp: records.usPerOp / size,
        baseline: 'the two Ed25519 signatures alone, per call',
        baselineUsPerOp: floor.usPerOp / size,
        ratio: results.ratio('records', 'floor'),
        target: `${Math.round((1e6 * size) / records.usPerOp).toLocaleString('en-US')} calls/s (≥ 0.5× the floor's rate: ratio ≤ 2×)`,
      });
      const memory = results.get('memory');
      rows.push({
        what: `the same, batch ${size}, into a log in memory (signing and encoding only), per call`,
        usPerOp: memory.usPerOp / size,
        baseline: 'the two Ed25519 signatures alone, per call',
        baselineUsPerOp: floor.usPerOp / size,
        ratio: results.ratio('memory', 'floor'),
      });
    }
  } finally {
    await log.close();
    store.close();
  }
  return rows;
}

/** Every audit-log row of the performance table. */
export async function auditBenchmarks(): Promise<TableRow[]> {
  return [...(await appendRows()), ...(await signedRecordRows()), ...(await proofRows())];
}
