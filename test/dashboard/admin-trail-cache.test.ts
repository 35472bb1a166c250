import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/index.js';
import { silentLogger } from '../../src/core/internal.js';
import { openHome, type Home } from '../../src/cli/home.js';
import { startHomeDashboard } from '../../src/cli/commands/dashboard.js';
import { homeLogKey } from '../../src/cli/commands/audit.js';
import type { AdminHttp } from '../../src/node/index.js';
import { hashLeaf, verifyCheckpoint, verifyInclusion } from '../../src/audit/index.js';
import { decodeBase64Strict } from '../../src/encoding/index.js';
import { DASHBOARD_NOW, dashboardWorld, type DashboardHome } from '../helpers/dashboard-world.js';

// The admin API keeps the parsed trail between requests (src/node/audit-trail-cache.ts). Over a
// real home, with the API's cache warm, the store is changed behind its back — calls appended by
// the CLI, a record edited in SQLite with its guard trigger dropped, rows deleted, then appended
// again — and each time the warm API answers exactly what a fresh one (nothing cached) answers;
// the edited record is served as stored, and its inclusion proof fails.

let h: DashboardHome;
let home: Home;
let warm: AdminHttp;
const clock = new ManualClock(DASHBOARD_NOW);
const VIEWS = [
  '/api/graph',
  '/api/agents',
  '/api/audit',
  '/api/audit?decision=deny',
  '/api/audit?agent=agent&limit=2&offset=1',
];

beforeAll(async () => {
  ({ h } = await dashboardWorld());
  home = await openHome(h.dir, { clock });
  warm = await start();
}, 60_000);

afterAll(async () => {
  await warm.close();
  home.close();
  delete process.env.MANDATE_NOW_SECONDS;
});

async function start(): Promise<AdminHttp> {
  const { http } = await startHomeDashboard(home, {
    as: 'approver',
    authority: 'authority',
    clock,
    logger: silentLogger,
  });
  return http;
}

async function get(http: AdminHttp, path: string): Promise<unknown> {
  const token = new URL(http.loginUrl()).hash.replace(/^#token=/, '');
  const login = await fetch(`${http.url}/api/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: http.url },
    body: JSON.stringify({ token }),
  });
  const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!;
  const r = await fetch(`${http.url}${path}`, { headers: { cookie } });
  expect(r.status, path).toBe(200);
  return r.json();
}

/** The warm API's answers, checked against those of an API started now (its cache empty). */
async function expectFreshAnswers(): Promise<void> {
  const warmAnswers = [];
  for (const path of VIEWS) warmAnswers.push(await get(warm, path));
  const fresh = await start();
  try {
    for (const [i, path] of VIEWS.entries())
      expect(warmAnswers[i], path).toEqual(await get(fresh, path));
  } finally {
    await fresh.close();
  }
}

/** Runs `work` on the home's database with the log's guard triggers dropped, then restores them. */
function behindTheLogsBack(work: (db: Database.Database) => void): void {
  const db = new Database(join(h.dir, 'mandate.db'));
  try {
    const triggers = db
      .prepare("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?")
      .all('audit_log_entries') as { sql: string }[];
    db.exec('DROP TRIGGER audit_log_entries_no_update; DROP TRIGGER audit_log_entries_no_delete');
    work(db);
    for (const { sql } of triggers) db.exec(sql);
  } finally {
    db.close();
  }
}

interface AuditAnswer {
  total: number;
  checkpoint: { treeSize: number; note: string };
  calls: {
    hash: string;
    decision?: { reasons: string[] };
    decisionRecord: { reasons: string[] } | null;
    proofs: Record<
      'invocation' | 'decision',
      { index: number; treeSize: number; record: string; hashes: string[] } | null
    >;
  }[];
}

describe('the admin API over a store changed behind its back', () => {
  it('picks up calls appended by another process', async () => {
    const before = (await get(warm, '/api/audit')) as AuditAnswer;
    await expectFreshAnswers();
    expect((await h.call('agent', 'read_orders', { order: 'o-7' })).code).toBe(0);
    const after = (await get(warm, '/api/audit')) as AuditAnswer;
    expect(after.total).toBe(before.total + 1);
    await expectFreshAnswers();
  }, 60_000);

  it('serves a record edited in SQLite as stored: its proof fails, and the view is the stored record’s', async () => {
    const denied = (await get(warm, '/api/audit?decision=deny')) as AuditAnswer;
    const proof = denied.calls[0]!.proofs.decision!;
    expect(proof.index).toBeLessThan(denied.checkpoint.treeSize);
    behindTheLogsBack((db) => {
      const row = db
        .prepare('SELECT record FROM audit_log_entries WHERE idx = ?')
        .get(proof.index) as { record: Buffer };
      const record = JSON.parse(row.record.toString('utf8')) as { reasons: string[] };
      record.reasons = ['edited in the database'];
      db.prepare('UPDATE audit_log_entries SET record = ? WHERE idx = ?').run(
        Buffer.from(JSON.stringify(record)),
        proof.index,
      );
    });
    const edited = (await get(warm, '/api/audit?decision=deny')) as AuditAnswer;
    const call = edited.calls[0]!;
    // The record as stored now, and the call read from it (not the one the cache had parsed).
    expect(call.decisionRecord?.reasons).toEqual(['edited in the database']);
    expect(call.decision?.reasons).toEqual(['edited in the database']);
    const served = call.proofs.decision!;
    const [stored] = await home.store.auditLog.readEntries(served.index, served.index + 1);
    expect(decodeBase64Strict(served.record, 'base64')).toEqual(stored!.record);
    // What the browser checks: the stored bytes no longer lead to the signed root.
    const key = await homeLogKey(home, 'authority');
    const checkpoint = verifyCheckpoint(edited.checkpoint.note, [key.verifier], {
      origin: key.origin,
    });
    expect(() => {
      verifyInclusion(
        served.index,
        checkpoint.treeSize,
        hashLeaf(decodeBase64Strict(served.record, 'base64')!),
        served.hashes.map((x) => decodeBase64Strict(x, 'base64')!),
        checkpoint.rootHash,
      );
    }).toThrow();
    await expectFreshAnswers();
  }, 60_000);

  it('answers as a fresh read when rows are deleted, and when the log grows again past them', async () => {
    const truncate = async (entries: number) => {
      const size = await home.store.auditLog.size();
      behindTheLogsBack((db) => {
        db.prepare('DELETE FROM audit_log_entries WHERE idx >= ?').run(size - entries);
      });
      return size;
    };
    // Shorter than what the cache read.
    await get(warm, '/api/graph');
    await truncate(4);
    await expectFreshAnswers();
    // Shortened, then appended again by the CLI past the size the cache read before the cache
    // looks again: as long as before or longer, but another tree.
    await get(warm, '/api/graph');
    const size = await truncate(4);
    for (const order of ['o-11', 'o-12', 'o-13'])
      expect((await h.call('agent', 'read_orders', { order })).code).toBe(0);
    expect(await home.store.auditLog.size()).toBeGreaterThan(size);
    await expectFreshAnswers();
  }, 60_000);
});
