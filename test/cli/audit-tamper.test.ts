import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { ManualClock } from '../../src/core/index.js';
import {
  AuditLog,
  auditRecordHash,
  formatNoteVerifierKey,
  hashLeaf,
  rootFromLeafHashes,
  signCheckpoint,
  signRevocationRecord,
} from '../../src/audit/index.js';
import { Purpose } from '../../src/identity/index.js';
import { openHome } from '../../src/cli/home.js';
import {
  AUDIT_VERIFICATION_FAILED_EXIT_CODE,
  homeAuditOrigin,
  homeLogKey,
} from '../../src/cli/commands/audit.js';
import { DEFAULT_AUTHORITY } from '../../src/cli/chains.js';
import { authorityHome, json, run } from '../helpers/cli.js';
import { repoRoot } from '../helpers/vectors.js';
import { editStoredRecord } from '../support/stored-audit-record.js';
import { seedNoteSigner } from '../vectors/audit-golden.js';

// Findings of the outside attack on the audit trail (issue 11, attack11 F3, F7, F8): a store
// rewritten behind the log's back, a checkpoint of another origin, and `covered` on an edited
// record. Each test fails on the code before the fix.

const NOW = 1_800_000_000;

const cli = (home: string, ...argv: string[]) => {
  process.env.MANDATE_NOW_SECONDS = String(NOW);
  return run('--home', home, '--json', ...argv);
};

/** A home whose log holds `n` revocation records signed by its authority (they verify). */
async function revocations(n: number) {
  const names = Array.from({ length: n + 4 }, (_, i) => `id${i}`);
  const h = await authorityHome('mandate-audit-tamper', names);
  for (let i = 0; i < n; i++) expect((await cli(h.home, 'revoke', names[i]!)).code).toBe(0);
  return { ...h, names };
}

function sqlite(home: string, work: (db: Database.Database) => void): void {
  const db = new Database(join(home, 'mandate.db'));
  try {
    work(db);
  } finally {
    db.close();
  }
}

describe('audit checkpoint and verify on a tampered store (F3)', () => {
  it('refuses to sign a tree that does not extend the stored checkpoint, and verify reports the fork', async () => {
    const h = await revocations(4);
    const first = await cli(h.home, 'audit', 'checkpoint');
    expect(first.code, first.stderr).toBe(0);
    expect(json(first)).toMatchObject({ treeSize: 4, signed: true });
    // The guard trigger dropped, the last two entries deleted, three others appended after them.
    sqlite(h.home, (db) => {
      db.exec('DROP TRIGGER audit_log_entries_no_delete');
      db.prepare('DELETE FROM audit_log_entries WHERE idx >= 2').run();
    });
    for (const name of h.names.slice(4, 7))
      expect((await cli(h.home, 'revoke', name)).code).toBe(0);

    const refused = await cli(h.home, 'audit', 'checkpoint');
    expect(refused.code, refused.stderr).toBe(AUDIT_VERIFICATION_FAILED_EXIT_CODE);
    expect(refused.stderr).toMatch(/^error\[ERR_AUDIT_CHECKPOINT_INCONSISTENT\]: /m);
    expect(json(refused)).toMatchObject({
      error: { code: 'ERR_AUDIT_CHECKPOINT_INCONSISTENT' },
      signed: false,
    });

    // A second, contradicting checkpoint signed anyway (as an older build did): `audit verify` on
    // the home checks its log against every checkpoint the home stores.
    const home = await openHome(h.home, { clock: new ManualClock(NOW) });
    try {
      const key = await homeLogKey(home, DEFAULT_AUTHORITY);
      const log = await AuditLog.open({ repository: home.store.auditLog, origin: key.origin });
      const note = await signCheckpoint(
        { origin: key.origin, treeSize: log.size, rootHash: log.root(), extensions: [] },
        [key.signer()],
      );
      await home.store.auditLog.putCheckpoint({ treeSize: log.size, note });
    } finally {
      home.close();
    }
    const verified = await cli(h.home, 'audit', 'verify');
    expect(verified.code, verified.stdout).toBe(AUDIT_VERIFICATION_FAILED_EXIT_CODE);
    expect(json(verified)).toMatchObject({
      ok: false,
      problem: { code: 'ERR_AUDIT_CHECKPOINT_INCONSISTENT' },
    });
  }, 60_000);

  it('refuses a log shorter than its checkpoint, and still signs an honest log that grew', async () => {
    const h = await revocations(3);
    expect((await cli(h.home, 'audit', 'checkpoint')).code).toBe(0);
    expect((await cli(h.home, 'revoke', h.names[3]!)).code).toBe(0);
    const grown = await cli(h.home, 'audit', 'checkpoint');
    expect(grown.code, grown.stderr).toBe(0);
    expect(json(grown)).toMatchObject({ treeSize: 4, signed: true });
    expect((await cli(h.home, 'audit', 'verify')).code).toBe(0);
    sqlite(h.home, (db) => {
      db.exec('DROP TRIGGER audit_log_entries_no_delete');
      db.prepare('DELETE FROM audit_log_entries WHERE idx >= 3').run();
    });
    const refused = await cli(h.home, 'audit', 'checkpoint');
    expect(refused.code).toBe(AUDIT_VERIFICATION_FAILED_EXIT_CODE);
    expect(refused.stderr).toMatch(/^error\[ERR_AUDIT_CHECKPOINT_INCONSISTENT\]: /m);
  }, 60_000);
});

describe('audit verify on the home: the store’s own hashes and rows (attack of 2026-12-04)', () => {
  it('reports a zeroed stored leaf hash, a zeroed stored subtree hash and a deleted row, each with its code and index', async () => {
    const h = await revocations(8);
    expect((await cli(h.home, 'audit', 'checkpoint')).code).toBe(0);
    expect((await cli(h.home, 'audit', 'verify')).code).toBe(0);
    const verify = async () => {
      const r = await cli(h.home, 'audit', 'verify');
      expect(r.code, r.stderr).toBe(AUDIT_VERIFICATION_FAILED_EXIT_CODE);
      return (json(r) as { problem: { code: string; position: { index?: number } } }).problem;
    };
    const saved: { leaf?: Buffer; nodes?: Buffer } = {};
    // Entry 5's stored leaf hash zeroed (its record untouched): proofs of it would fail.
    sqlite(h.home, (db) => {
      db.exec('DROP TRIGGER audit_log_entries_no_update');
      db.exec('DROP TRIGGER audit_log_entries_no_delete');
      saved.leaf = (
        db.prepare('SELECT leaf_hash FROM audit_log_entries WHERE idx = 5').get() as {
          leaf_hash: Buffer;
        }
      ).leaf_hash;
      db.prepare('UPDATE audit_log_entries SET leaf_hash = zeroblob(32) WHERE idx = 5').run();
    });
    expect(await verify()).toMatchObject({
      code: 'ERR_AUDIT_RECORD_EDITED',
      position: { index: 5 },
    });
    // Put back; entry 7's stored subtree hashes (nodes 6–7, 4–7, 0–7) zeroed instead.
    sqlite(h.home, (db) => {
      db.prepare('UPDATE audit_log_entries SET leaf_hash = ? WHERE idx = 5').run(saved.leaf!);
      db.prepare(
        'UPDATE audit_log_entries SET nodes = zeroblob(length(nodes)) WHERE idx = 7',
      ).run();
    });
    expect((await verify()).code).toBe('ERR_AUDIT_RECORD_EDITED');
    // Entry 3's stored subtree hashes emptied (too short to hold them): reported, not thrown
    // (was ERR_AUDIT_ENTRY_NOT_FOUND, exit 6).
    sqlite(h.home, (db) => {
      db.prepare("UPDATE audit_log_entries SET nodes = x'' WHERE idx = 3").run();
    });
    expect(await verify()).toMatchObject({
      code: 'ERR_AUDIT_RECORD_EDITED',
      position: { index: 2, until: 4 },
    });
    // A row deleted: the deleted record, at its index (was ERR_AUDIT_ENTRY_NOT_FOUND, exit 6).
    sqlite(h.home, (db) => {
      db.prepare('DELETE FROM audit_log_entries WHERE idx = 2').run();
    });
    expect(await verify()).toMatchObject({
      code: 'ERR_AUDIT_RECORD_DELETED',
      position: { index: 2 },
    });
  }, 60_000);
});

describe('audit verify on the home: rows moved with their stored hashes (second attack)', () => {
  it('are located by the store’s own hashes, not only to the range between checkpoints', async () => {
    const h = await revocations(8);
    expect((await cli(h.home, 'audit', 'checkpoint')).code).toBe(0);
    sqlite(h.home, (db) => {
      db.exec('DROP TRIGGER audit_log_entries_no_delete');
      db.exec(`
        CREATE TEMP TABLE moved AS SELECT * FROM audit_log_entries WHERE idx IN (5, 6);
        DELETE FROM audit_log_entries WHERE idx IN (5, 6);
        INSERT INTO audit_log_entries SELECT 11 - idx, record, leaf_hash, nodes, text_id, text_at FROM moved;`);
    });
    const r = await cli(h.home, 'audit', 'verify');
    expect(r.code, r.stderr).toBe(AUDIT_VERIFICATION_FAILED_EXIT_CODE);
    const { problem } = json(r) as {
      problem: { code: string; position: { index: number; until: number } };
    };
    expect(problem.code).toBe('ERR_AUDIT_RECORD_EDITED');
    // Within the two moved rows' subtree (entries 4…7), not the checkpoint's whole range 0…8.
    expect(problem.position.index).toBeGreaterThanOrEqual(4);
    expect(problem.position.until).toBeLessThanOrEqual(8);
    expect(problem.position.until - problem.position.index).toBeLessThan(8);
  }, 60_000);
});

describe('audit verify and checkpoint on a log cut short with its newer checkpoints (second attack)', () => {
  it('are refused while the home’s trail index has read past the log’s end', async () => {
    const h = await revocations(6);
    expect((await cli(h.home, 'audit', 'checkpoint')).code).toBe(0);
    // What an enforcement point records as it reads the log (its trail index: 6 entries read).
    sqlite(h.home, (db) => {
      db.prepare(
        'INSERT INTO audit_trail_index (id, indexed_size) VALUES (1, 6) ON CONFLICT (id) DO UPDATE SET indexed_size = 6',
      ).run();
    });
    expect((await cli(h.home, 'audit', 'verify')).code).toBe(0);
    // Rolled back: the last two entries and the checkpoint that covered them deleted, an older
    // checkpoint of the first four signed in its place (as `audit checkpoint` would have).
    const home = await openHome(h.home, { clock: new ManualClock(NOW) });
    let older: string;
    try {
      const key = await homeLogKey(home, DEFAULT_AUTHORITY);
      const entries = await home.store.auditLog.readEntries(0, 4);
      older = await signCheckpoint(
        {
          origin: key.origin,
          treeSize: 4,
          rootHash: rootFromLeafHashes(entries.map((e) => hashLeaf(e.record))),
          extensions: [],
        },
        [key.signer()],
      );
    } finally {
      home.close();
    }
    sqlite(h.home, (db) => {
      db.exec('DROP TRIGGER audit_log_entries_no_delete');
      db.prepare('DELETE FROM audit_log_entries WHERE idx >= 4').run();
      db.prepare('DELETE FROM audit_log_checkpoints').run();
      db.prepare(
        'INSERT INTO audit_log_checkpoints (tree_size, note, created_at) VALUES (4, ?, 0)',
      ).run(older);
    });
    const verify = await cli(h.home, 'audit', 'verify');
    expect(verify.code, verify.stderr).toBe(AUDIT_VERIFICATION_FAILED_EXIT_CODE);
    expect(json(verify)).toMatchObject({
      ok: false,
      problem: { code: 'ERR_AUDIT_LOG_TRUNCATED', position: { index: 4 } },
    });
    const checkpoint = await cli(h.home, 'audit', 'checkpoint');
    expect(checkpoint.code, checkpoint.stderr).toBe(AUDIT_VERIFICATION_FAILED_EXIT_CODE);
    expect(checkpoint.stderr).toMatch(/ERR_AUDIT_CHECKPOINT_INCONSISTENT.*cut off/);
    // No checkpoint left at all: still the cut, not "run `audit checkpoint`".
    sqlite(h.home, (db) => db.prepare('DELETE FROM audit_log_checkpoints').run());
    expect(json(await cli(h.home, 'audit', 'verify'))).toMatchObject({
      problem: { code: 'ERR_AUDIT_LOG_TRUNCATED' },
    });
  }, 60_000);
});

describe('audit verify --key: the note origin and the key name (F7)', () => {
  it("refuses a key not named after the log's origin, and a note of another origin", async () => {
    const h = await revocations(3);
    expect((await cli(h.home, 'audit', 'checkpoint')).code).toBe(0);
    const file = join(h.dir, 'log.jsonl');
    expect((await cli(h.home, 'audit', 'export', '--out', file)).code).toBe(0);
    const records = readFileSync(file, 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => new TextEncoder().encode(l.slice(l.indexOf(',"record":') + 10, -1)));
    const rootHash = rootFromLeafHashes(records.map(hashLeaf));
    const home = await openHome(h.home, { clock: new ManualClock(NOW) });
    let origin: string;
    try {
      origin = homeAuditOrigin((await home.identities.get('authority')).identity.identifier);
    } finally {
      home.close();
    }
    const seed = new Uint8Array(32).fill(7);
    let notes = 0;
    const note = async (body: string, name: string) => {
      const signer = seedNoteSigner(name, seed);
      const path = join(h.dir, `note-${++notes}.txt`);
      writeFileSync(
        path,
        await signCheckpoint({ origin: body, treeSize: records.length, rootHash, extensions: [] }, [
          signer,
        ]),
      );
      return { path, key: formatNoteVerifierKey(signer) };
    };
    // Origin `evil`, key `evil`: another log's note passed off for this home's.
    const evil = await note('evil', 'evil');
    let r = await cli(
      h.home,
      'audit',
      'verify',
      '--log',
      file,
      '--checkpoint',
      evil.path,
      '--key',
      evil.key,
    );
    expect(r.code, r.stdout).toBe(3);
    expect(r.stderr).toMatch(/^error\[ERR_CHECKPOINT_KEY_ORIGIN_MISMATCH\]: /);
    // The home's origin, a key named `evil`.
    const renamed = await note(origin, 'evil');
    r = await cli(
      h.home,
      'audit',
      'verify',
      '--log',
      file,
      '--checkpoint',
      renamed.path,
      '--key',
      renamed.key,
    );
    expect(r.stderr).toMatch(/^error\[ERR_CHECKPOINT_KEY_ORIGIN_MISMATCH\]: /);
    // A key named after the home's origin, over a note naming `evil`: a failed verification.
    const other = await note('evil', origin);
    r = await cli(
      h.home,
      'audit',
      'verify',
      '--log',
      file,
      '--checkpoint',
      other.path,
      '--key',
      other.key,
    );
    expect(r.code).toBe(AUDIT_VERIFICATION_FAILED_EXIT_CODE);
    expect(json(r)).toMatchObject({ problem: { code: 'ERR_CHECKPOINT_ORIGIN_MISMATCH' } });
    // The auditor names the other log explicitly: then its own key verifies it.
    r = await cli(
      h.home,
      'audit',
      'verify',
      '--log',
      file,
      '--checkpoint',
      evil.path,
      '--key',
      evil.key,
      '--origin',
      'evil',
    );
    expect(r.code, r.stdout).toBe(0);
    expect(json(r)).toMatchObject({ ok: true, origin: 'evil' });
  }, 60_000);
});

describe('audit show|query: covered means included and verified (F8)', () => {
  it('a record edited in the store is not covered', async () => {
    const golden = JSON.parse(
      readFileSync(new URL('../../docs/spec/vectors/audit-records.json', import.meta.url), 'utf8'),
    ) as Record<string, { text: string; hash: string }>;
    const h = await authorityHome('mandate-audit-covered', []);
    const home = await openHome(h.home, { clock: new ManualClock(NOW) });
    try {
      const authority = await home.identities.get('authority');
      const log = await AuditLog.open({
        repository: home.store.auditLog,
        origin: homeAuditOrigin(authority.identity.identifier),
      });
      for (const k of ['invocation', 'decision', 'nextInvocation', 'escalation'])
        await log.append(new TextEncoder().encode(golden[k]!.text));
      await log.close();
    } finally {
      home.close();
    }
    expect((await cli(h.home, 'audit', 'checkpoint')).code).toBe(0);
    const before = await cli(h.home, 'audit', 'show', golden.nextInvocation!.hash);
    expect(json(before)).toMatchObject({ call: { covered: true } });

    let edited = '';
    sqlite(h.home, (db) => {
      db.exec('DROP TRIGGER audit_log_entries_no_update');
      ({ after: edited } = editStoredRecord(db, 2, (text) => {
        expect(text).toBe(golden.nextInvocation!.text);
        return text.replace(/"nonce":"0/, '"nonce":"f');
      }));
      expect(edited).not.toBe(golden.nextInvocation!.text);
    });
    const id = auditRecordHash(new TextEncoder().encode(edited));
    const after = await cli(h.home, 'audit', 'show', id);
    expect(after.code, after.stderr).toBe(0);
    const shown = json(after) as { call: { covered: boolean | null }; inclusion: string };
    expect(shown.inclusion).toMatch(/^NOT included/);
    expect(shown.call.covered).toBe(false);
    const q = json(await cli(h.home, 'audit', 'query')) as {
      calls: { invocation: string; covered: boolean | null }[];
    };
    expect(q.calls.map((c) => c.covered)).toStrictEqual([true, false]);
    expect(q.calls[1]!.invocation).toBe(id);

    // The first call's decision edited (its invocation intact): the call is not covered either —
    // it read "included, its signature verified" beside the edited decision (second attack).
    sqlite(h.home, (db) => {
      editStoredRecord(db, 1, (text) => text.replace('"decision":"allow"', '"decision":"deny"'));
    });
    const q2 = json(await cli(h.home, 'audit', 'query')) as {
      calls: { covered: boolean | null; decision: { decision: string } | null }[];
    };
    expect(q2.calls.map((c) => c.covered)).toStrictEqual([false, false]);
    expect(
      json(await cli(h.home, 'audit', 'show', golden.invocation!.hash)) as unknown,
    ).toMatchObject({ call: { covered: false } });
  }, 60_000);
});

describe('audit verify --log: a crafted large file fails fast (F5)', () => {
  it('stops at line 2 of 1,999,999 repeated lines, in a process with a 96 MB heap', async () => {
    const h = await revocations(1);
    expect((await cli(h.home, 'audit', 'checkpoint')).code).toBe(0);
    const file = join(h.dir, 'flood.jsonl');
    const fd = openSync(file, 'w');
    try {
      const block = '{"index":0,"record":{}}\n'.repeat(100_000);
      for (let i = 0; i < 19; i++) writeSync(fd, block);
      writeSync(fd, '{"index":0,"record":{}}\n'.repeat(99_999));
    } finally {
      closeSync(fd);
    }
    // The whole file parsed (as before) takes over a gigabyte: with 96 MB it would die.
    const r = spawnSync(
      process.execPath,
      [
        '--max-old-space-size=96',
        '--import',
        'tsx',
        join(repoRoot, 'src', 'cli', 'bin.ts'),
        '--home',
        h.home,
        '--json',
        'audit',
        'verify',
        '--log',
        file,
      ],
      {
        cwd: repoRoot,
        encoding: 'utf8',
        env: { ...process.env, MANDATE_NOW_SECONDS: String(NOW) },
      },
    );
    expect(r.status, r.stderr).toBe(AUDIT_VERIFICATION_FAILED_EXIT_CODE);
    expect(JSON.parse(r.stdout)).toMatchObject({
      ok: false,
      records: 2,
      problem: { code: 'ERR_AUDIT_RECORD_DUPLICATED', position: { line: 2, index: 0 } },
    });
  }, 120_000);
});

describe('audit verify --log: an authentic record of a fork, substituted (F4)', () => {
  it('is reported at the line it replaced, proved by the home store', async () => {
    const h = await revocations(6);
    expect((await cli(h.home, 'audit', 'checkpoint')).code).toBe(0);
    const file = join(h.dir, 'log.jsonl');
    expect((await cli(h.home, 'audit', 'export', '--out', file)).code).toBe(0);
    // A revocation record the authority really signed, but that the log never held.
    const home = await openHome(h.home, { clock: new ManualClock(NOW) });
    let fork: Uint8Array;
    try {
      const known = await home.identities.get('authority');
      const { verified, keyId } = await home.identities.purposeKey(known, Purpose.credentials);
      const target = await home.identities.get(h.names.at(-1)!);
      fork = await signRevocationRecord(
        home.vault,
        {
          identity: known.identity,
          credentialKeyId: keyId,
          credentialKeyAttestation: verified.attestation,
          verifiedKey: verified,
        },
        {
          kind: 'identity',
          id: target.identity.identifier,
          revokedAt: NOW,
          expiresAt: NOW + 86_400,
          reason: 'fork',
        },
        3,
        NOW,
      );
    } finally {
      home.close();
    }
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    lines[2] = `{"index":2,"record":${new TextDecoder().decode(fork)}}`;
    writeFileSync(join(h.dir, 'fork.jsonl'), `${lines.join('\n')}\n`);
    const r = await cli(h.home, 'audit', 'verify', '--log', join(h.dir, 'fork.jsonl'));
    expect(r.code, r.stdout).toBe(AUDIT_VERIFICATION_FAILED_EXIT_CODE);
    expect(json(r)).toMatchObject({
      ok: false,
      problem: { code: 'ERR_AUDIT_RECORD_EDITED', position: { line: 3, index: 2 } },
    });
  }, 60_000);
});
