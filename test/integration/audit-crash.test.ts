import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import {
  AuditLog,
  hashLeaf,
  noteVerifierKey,
  rootFromLeafHashes,
  verifyCheckpoint,
  verifyConsistency,
  verifyStoredLog,
} from '../../src/audit/index.js';
import { randomUnit } from '../../src/crypto/index.js';
import { toHex } from '../../src/encoding/index.js';
import { openSqliteStore } from '../../src/store/open-sqlite-store.js';
import { repoRoot } from '../helpers/vectors.js';
import { seedNoteSigner } from '../vectors/audit-golden.js';

const ORIGIN = 'crash.example/audit';
const SEED = new Uint8Array(32).fill(0x5a);
const RUNS = 10;
const key = noteVerifierKey(ORIGIN, seedNoteSigner(ORIGIN, SEED).publicKey);

interface Ack {
  readonly index: number;
  readonly record: string;
}

/** Starts a writer, waits for its first acks, kills it with SIGKILL after a random delay. */
async function burstAndKill(path: string, run: number): Promise<Ack[]> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(repoRoot, 'test', 'helpers', 'audit-log-writer.ts'),
      path,
      String(run),
      ORIGIN,
      toHex(SEED),
    ],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const acks: Ack[] = [];
  let buffered = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) {
      const m = /^ack (\d+) (\d+) (\d+)$/.exec(line);
      if (m) acks.push({ index: Number(m[1]), record: `{"run":${m[2]},"n":${m[3]}}` });
    }
  });
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      resolve();
    }),
  );
  try {
    const deadline = Date.now() + 60_000;
    while (acks.length === 0 && Date.now() < deadline && child.exitCode === null) await sleep(5);
    if (acks.length === 0) throw new Error(`the writer acknowledged nothing; stderr:\n${stderr}`);
    await sleep(Math.floor(randomUnit() * 400));
  } finally {
    // Killed on every path: a writer left running would append until its memory runs out.
    child.kill('SIGKILL');
    await exited;
  }
  expect(child.signalCode).toBe('SIGKILL');
  return acks;
}

describe('audit log crash safety (kill -9 during a burst of appends)', () => {
  it(`loses no acknowledged record and still verifies, over ${RUNS} kills`, async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'mandate-audit-crash-')), 'mandate.db');
    const acked: Ack[] = [];
    let lastCheckpointSize = 0;
    for (let run = 0; run < RUNS; run++) {
      acked.push(...(await burstAndKill(path, run)));

      const store = openSqliteStore(path);
      try {
        const log = await AuditLog.open({ repository: store.auditLog, origin: ORIGIN });
        // Every acknowledged record is there, at the index it was acknowledged with.
        expect(log.size).toBeGreaterThanOrEqual(acked.length);
        const all: Uint8Array[] = [];
        for (let from = 0; from < log.size; from += 10_000) {
          const entries = await log.readEntries(from, Math.min(log.size, from + 10_000));
          all.push(...entries.map((e) => e.record));
        }
        const text = all.map((r) => new TextDecoder().decode(r));
        for (const ack of acked) expect(text[ack.index]).toBe(ack.record);
        expect(new Set(text).size).toBe(text.length);
        // The root recomputed from the records is the one the stored nodes give.
        expect(toHex(rootFromLeafHashes(all.map(hashLeaf)))).toBe(toHex(log.root()));
        expect(toHex(await log.rootAt(log.size))).toBe(toHex(log.root()));
        // Leaf hashes, subtree hashes and every stored checkpoint agree.
        const report = await verifyStoredLog(store.auditLog, { verifiers: [key], origin: ORIGIN });
        expect(report.ok ? 'ok' : report.problem).toBe('ok');
        // Consecutive checkpoints are consistent, by proofs the log generates. The writer signs
        // one before its first ack, so every run leaves at least one.
        const checkpoints = (await store.auditLog.listCheckpoints()).map((c) =>
          verifyCheckpoint(c.note, [key], { origin: ORIGIN }),
        );
        expect(checkpoints.length).toBeGreaterThan(0);
        for (let i = 1; i < checkpoints.length; i++) {
          const a = checkpoints[i - 1]!;
          const b = checkpoints[i]!;
          verifyConsistency(
            a.treeSize,
            b.treeSize,
            a.rootHash,
            b.rootHash,
            await log.consistencyProof(a.treeSize, b.treeSize),
          );
        }
        lastCheckpointSize = checkpoints.at(-1)?.treeSize ?? 0;
      } finally {
        store.close();
      }
    }
    expect(acked.length).toBeGreaterThan(RUNS);
    expect(lastCheckpointSize).toBeGreaterThan(0);
  }, 240_000);
});
