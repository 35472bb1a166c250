import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  AuditLog,
  hashLeaf,
  noteVerifierKey,
  rootFromLeafHashes,
  verifyStoredLog,
} from '../../src/audit/index.js';
import { toHex } from '../../src/encoding/index.js';
import { openSqliteStore } from '../../src/store/open-sqlite-store.js';
import { repoRoot } from '../helpers/vectors.js';
import { seedNoteSigner } from '../vectors/audit-golden.js';

const ORIGIN = 'writers.example/audit';
const enc = (text: string) => new TextEncoder().encode(text);
const signer = seedNoteSigner(ORIGIN, new Uint8Array(32).fill(0x6b));
const verifiers = [noteVerifierKey(ORIGIN, signer.publicKey)];

/** Runs a child that appends `count` records as writer `writer`; resolves with its acks. */
function childWriter(path: string, writer: number, count: number): Promise<Map<number, string>> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(repoRoot, 'test', 'helpers', 'audit-log-count-writer.ts'),
      path,
      String(writer),
      String(count),
    ],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const acks = new Map<number, string>();
  let buffered = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) {
      const m = /^ack (\d+) (\d+)$/.exec(line);
      if (m) acks.set(Number(m[1]), `{"writer":${writer},"n":${m[2]}}`);
    }
  });
  return new Promise((resolve, reject) =>
    child.once('exit', (code) => {
      if (code === 0) resolve(acks);
      else reject(new Error(`writer ${writer} exited with ${code}; stderr:\n${stderr}`));
    }),
  );
}

describe('several writers on one SQLite audit log', () => {
  it('two connections: a writer whose view is stale catches up and appends at the new end', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'mandate-audit-writers-')), 'mandate.db');
    const first = openSqliteStore(path);
    const second = openSqliteStore(path);
    try {
      const a = await AuditLog.open({ repository: first.auditLog, origin: ORIGIN });
      const b = await AuditLog.open({ repository: second.auditLog, origin: ORIGIN });
      expect(await a.append(enc('a0'))).toBe(0);
      expect(await a.append(enc('a1'))).toBe(1);
      // b opened at size 0: its append is refused by the store, then retried at index 2.
      expect(await b.append(enc('b0'))).toBe(2);
      expect(b.size).toBe(3);
      const [a2, a3] = await Promise.all([a.append(enc('a2')), a.append(enc('a3'))]);
      expect([a2, a3]).toEqual([3, 4]);
      expect(await b.append(enc('b1'))).toBe(5);
      const records = ['a0', 'a1', 'b0', 'a2', 'a3', 'b1'].map(enc);
      const root = rootFromLeafHashes(records.map(hashLeaf));
      expect(toHex(b.root())).toBe(toHex(root));
      expect(toHex(await a.rootAt(3))).toBe(
        toHex(rootFromLeafHashes(records.slice(0, 3).map(hashLeaf))),
      );
      const entries = await b.readEntries(0, 6);
      expect(entries.map((e) => new TextDecoder().decode(e.record))).toEqual([
        'a0',
        'a1',
        'b0',
        'a2',
        'a3',
        'b1',
      ]);
      // Each signs a checkpoint of what it knows: a's (5 entries) is a prefix of b's (6).
      await a.checkpoint([signer]);
      await b.checkpoint([signer]);
      expect((await first.auditLog.listCheckpoints()).map((c) => c.treeSize)).toEqual([5, 6]);
      const report = await verifyStoredLog(first.auditLog, { verifiers, origin: ORIGIN });
      expect(report.ok ? 'ok' : report.problem).toBe('ok');
    } finally {
      first.close();
      second.close();
    }
  });

  it('two child processes and a long-running writer append concurrently: nothing lost, no fork', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'mandate-audit-writers-')), 'mandate.db');
    const store = openSqliteStore(path);
    try {
      // The long-running writer (a gate) opens first and holds its view of the log.
      const log = await AuditLog.open({ repository: store.auditLog, origin: ORIGIN });
      const mine = new Map<number, string>();
      let stop = false;
      let n = 0;
      const local = (async () => {
        while (!stop) {
          const text = `{"writer":0,"n":${n++}}`;
          mine.set(await log.append(enc(text)), text);
          await new Promise((resolve) => setTimeout(resolve, 1));
        }
      })();
      const children = await Promise.all([childWriter(path, 1, 300), childWriter(path, 2, 300)]);
      stop = true;
      await local;
      // After the others are done, the long-running writer still appends, at the end.
      const text = `{"writer":0,"n":${n}}`;
      const last = await log.append(enc(text));
      mine.set(last, text);
      const reopened = await AuditLog.open({ repository: store.auditLog, origin: ORIGIN });
      expect(last).toBe(reopened.size - 1);
      const acks = new Map([...mine, ...children[0], ...children[1]]);
      expect(acks.size).toBe(mine.size + 600);
      expect(reopened.size).toBe(acks.size);
      const records: Uint8Array[] = [];
      for (let from = 0; from < reopened.size; from += 10_000)
        records.push(
          ...(await reopened.readEntries(from, Math.min(reopened.size, from + 10_000))).map(
            (e) => e.record,
          ),
        );
      records.forEach((record, index) => {
        expect(new TextDecoder().decode(record)).toBe(acks.get(index));
      });
      expect(toHex(reopened.root())).toBe(toHex(rootFromLeafHashes(records.map(hashLeaf))));
      expect(toHex(log.root())).toBe(toHex(reopened.root()));
      await log.checkpoint([signer]);
      const report = await verifyStoredLog(store.auditLog, { verifiers, origin: ORIGIN });
      expect(report.ok ? 'ok' : report.problem).toBe('ok');
    } finally {
      store.close();
    }
  }, 120_000);
});
