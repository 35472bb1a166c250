import Database from 'better-sqlite3';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { skipUnless } from '../support/postgres-cluster.js';
import { repoRoot } from '../helpers/vectors.js';
import { json } from '../helpers/cli.js';
import { DASHBOARD_NOW, dashboardWorld, type DashboardHome } from '../helpers/dashboard-world.js';
import { editStoredRecord, storedRecordTexts } from '../support/stored-audit-record.js';
import {
  ARTIFACTS,
  buildDashboard,
  chromiumUnavailable,
  DASHBOARD_LINE_RE,
  launchChromium,
} from './chromium.js';

// The dashboard end to end in Debian's Chromium (playwright-core, never a browser download):
// `mandate dashboard` prints its login link; the page logs in with it, shows the agents, the
// delegation graph with the revoked branch, searches the audit log and verifies each inclusion
// proof in the browser (and shows a tampered one failing, whether changed on the way or edited in
// the database while the server had the trail cached), and approves the waiting call.

const skip = skipUnless(chromiumUnavailable(), 'the dashboard browser test');

let h: DashboardHome;
let approvalId: string;
let child: ChildProcess | undefined;
let browser: Browser | undefined;
let url: string;

beforeAll(async () => {
  if (skip) return;
  await buildDashboard();
  ({ h, approval: approvalId } = await dashboardWorld());
  child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(repoRoot, 'src', 'cli', 'bin.ts'),
      '--home',
      h.dir,
      'dashboard',
      '--as',
      'approver',
    ],
    {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, MANDATE_NOW_SECONDS: String(DASHBOARD_NOW) },
    },
  );
  url = await new Promise<string>((resolve, reject) => {
    let out = '';
    let err = '';
    child!.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    child!.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const line = DASHBOARD_LINE_RE.exec(out);
      if (line !== null) resolve(line[1]!);
    });
    child!.once('exit', (code) => {
      reject(new Error(`exited ${String(code)}: ${err}`));
    });
  });
  browser = await launchChromium();
  mkdirSync(ARTIFACTS, { recursive: true });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  if (child !== undefined && child.exitCode === null) {
    const exited = new Promise((resolve) => child!.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
  delete process.env.MANDATE_NOW_SECONDS;
});

const proofTexts = (page: Page) => page.locator('[data-testid=proof]').allInnerTexts();

describe.skipIf(skip)('the dashboard in Chromium', () => {
  it('logs in with the printed token, shows agents, graph, verified proofs, and approves', async () => {
    const page = await browser!.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(url);
    // Logged in; the token left the address bar.
    await page.locator('[data-testid=agent-row]', { hasText: 'dana' }).waitFor();
    expect(page.url()).not.toContain('token=');
    expect(await page.locator('[data-testid=agent-row]').count()).toBe(2);
    expect(await page.locator('[data-testid=agents-range]').innerText()).toMatch(
      /^members 1–2 of 2/,
    );

    // A second browser cannot reuse the link.
    const other = await browser!.newPage();
    await other.goto(url);
    await other.locator('[data-testid=login-required]').waitFor();
    await other.close();

    await page.click('[data-testid=tab-graph]');
    await page.locator('[data-testid=graph-node][data-name=sub][data-revoked=true]').waitFor();
    expect(
      await page.locator('[data-testid=graph-node][data-name=agent]').getAttribute('data-revoked'),
    ).toBe('false');
    expect(await page.locator('[data-testid=graph-edge][data-revoked=true]').count()).toBe(1);
    await page.screenshot({ path: join(ARTIFACTS, 'graph.png') });

    await page.click('[data-testid=tab-audit]');
    await page.click('[data-testid=audit-search] button[type=submit]');
    await expect
      .poll(() => page.locator('[data-testid=audit-call]').count(), { timeout: 10_000 })
      .toBe(4);
    await expect
      .poll(async () => (await proofTexts(page)).every((t) => t.startsWith('verified')), {
        timeout: 10_000,
      })
      .toBe(true);
    await page.screenshot({ path: join(ARTIFACTS, 'audit.png') });

    // One proof hash flipped on the way: the browser's own check fails it.
    await page.route('**/api/audit?**', async (route) => {
      const response = await route.fetch();
      const body = (await response.json()) as {
        calls: { proofs: { invocation: { hashes: string[] } | null } }[];
      };
      const hashes = body.calls[0]!.proofs.invocation!.hashes;
      hashes[0] = (hashes[0]!.startsWith('A') ? 'B' : 'A') + hashes[0]!.slice(1);
      await route.fulfill({ response, json: body });
    });
    await page.selectOption('[data-testid=audit-search] select', 'deny');
    await page.click('[data-testid=audit-search] button[type=submit]');
    await expect
      .poll(() => proofTexts(page), { timeout: 10_000 })
      .toEqual(['FAILED: the proof does not lead to the checkpoint root']);
    await page.unroute('**/api/audit?**');

    // The live stream shows the log's decisions.
    await page.click('[data-testid=tab-live]');
    await expect
      .poll(() => page.locator('[data-testid=live-row]').count(), { timeout: 10_000 })
      .toBe(4);

    await page.click('[data-testid=tab-approvals]');
    const row = page.locator(`[data-testid=approval-row][data-status=pending]`);
    await row.locator('input').fill('customer verified by phone');
    await row.locator('button', { hasText: 'approve' }).click();
    await page.locator('[data-testid=approval-row][data-status=approved]').waitFor();
    await page.screenshot({ path: join(ARTIFACTS, 'approvals.png') });
    const listed = await h.ok<{
      approvals: { id: string; status: string; answer: { reason: string } }[];
    }>('approvals', 'list');
    expect(listed.approvals[0]).toMatchObject({
      id: approvalId,
      status: 'approved',
      answer: { reason: 'customer verified by phone' },
    });
    const through = await h.call('agent', 'issue_refund', { order: 'o-2', amount: 300 });
    expect(through.code).toBe(0);
    expect(json(through)).toMatchObject({ decision: 'allow', approval: approvalId });

    // The denied call's decision record edited in SQLite (its guard trigger dropped) after the
    // server read the trail: the page shows the record as stored, and its proof failing.
    const db = new Database(join(h.dir, 'mandate.db'));
    try {
      const denied = storedRecordTexts(db)
        .map((row) => ({ idx: row.idx, record: JSON.parse(row.text) as object }))
        .filter(({ record }) => 'decision' in record && record.decision === 'deny');
      expect(denied).toHaveLength(1);
      db.exec('DROP TRIGGER audit_log_entries_no_update');
      editStoredRecord(db, denied[0]!.idx, () =>
        JSON.stringify({ ...denied[0]!.record, reasons: ['edited in the database'] }),
      );
    } finally {
      db.close();
    }
    await page.click('[data-testid=tab-audit]');
    await page.selectOption('[data-testid=audit-search] select', 'deny');
    await page.click('[data-testid=audit-search] button[type=submit]');
    await expect
      .poll(() => proofTexts(page), { timeout: 10_000 })
      .toEqual(['FAILED: the proof does not lead to the checkpoint root']);
    expect(await page.locator('[data-testid=audit-call]').innerText()).toContain(
      'edited in the database',
    );
    expect(problems).toEqual([]);
  }, 120_000);
});
