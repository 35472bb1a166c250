import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { skipUnless } from '../support/postgres-cluster.js';
import { killChildren, startMandate, withStdin } from '../helpers/processes.js';
import {
  ARTIFACTS,
  buildDashboard,
  chromiumUnavailable,
  DASHBOARD_LINE_RE,
  launchChromium,
} from './chromium.js';

// The dashboard over a real `mandate up --demo` in Debian's Chromium: the graph draws the demo's
// chains (human-ava → support-agent → its sub-agents, the one revoked mid-run marked), a
// revocation made with the CLI while the page is open shows on it without a reload, and the
// audit explorer lists the demo's denied calls with their inclusion proofs verified in the browser.

const skip = skipUnless(chromiumUnavailable(), 'the dashboard demo browser test');

let home: string | undefined;
let browser: Browser | undefined;
let page: Page;
let url: string;
const problems: string[] = [];
/** Documents the page loaded (the login link's, and any reload). */
let loads = 0;

const node = (name: string) => page.locator(`[data-testid=graph-node][data-name="${name}"]`);
const edge = (from: string, to?: string) =>
  page.locator(
    `[data-testid=graph-edge][data-from="${from}"]${to === undefined ? '' : `[data-to="${to}"]`}`,
  );

beforeAll(async () => {
  if (skip) return;
  await buildDashboard();
  home = join(mkdtempSync(join(tmpdir(), 'mandate-dashboard-demo-')), 'home');
  const up = startMandate(home, 'up', '--demo', '--agents', '12', '--rotate', '2');
  // The scenario first (minutes on a loaded 2-core machine), then the node.
  await up.waitFor(/ up home=\S+\/demo services=authority,relay,broker,gateway,admin /, 240_000);
  // stdout and stderr are two pipes: the dashboard line, printed before that log line, may
  // still be on its way.
  const line = await vi.waitFor(
    () => {
      const found = DASHBOARD_LINE_RE.exec(up.stdout());
      if (found === null) throw new Error(`no dashboard line on stdout:\n${up.stdout()}`);
      return found;
    },
    { timeout: 10_000 },
  );
  url = line[1]!;
  browser = await launchChromium();
  mkdirSync(ARTIFACTS, { recursive: true });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('pageerror', (e) => problems.push(e.message));
  page.on('load', () => loads++);
  await page.goto(url);
  await page
    .locator('[data-testid=agent-row]', { hasText: 'human-ava' })
    .waitFor({ timeout: 30_000 });
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await killChildren();
  if (home !== undefined) rmSync(dirname(home), { recursive: true, force: true });
});

describe.skipIf(skip)('the dashboard over `mandate up --demo` in Chromium', () => {
  it('draws the demo’s delegation chains with the revoked branches marked', async () => {
    await page.click('[data-testid=tab-graph]');
    await node('support-agent').waitFor({ timeout: 15_000 });
    // human-ava → support-agent → the sub-agents, the chain live.
    expect(await node('human-ava').getAttribute('data-revoked')).toBe('false');
    expect(await node('support-agent').getAttribute('data-revoked')).toBe('false');
    expect(await edge('human-ava', 'support-agent').getAttribute('data-revoked')).toBe('false');
    const subs: { to: string; revoked: boolean }[] = [];
    for (const line of await edge('support-agent').all())
      subs.push({
        to: (await line.getAttribute('data-to')) ?? '',
        revoked: (await line.getAttribute('data-revoked')) === 'true',
      });
    expect(subs.length).toBeGreaterThanOrEqual(3);
    // The sub-agent the scenario revokes mid-run: its node and the edge to it marked revoked.
    const revoked = subs.filter((s) => s.revoked);
    expect(revoked).toHaveLength(1);
    expect(await node(revoked[0]!.to).getAttribute('data-revoked')).toBe('true');
    expect(await node(revoked[0]!.to).textContent()).toContain('REVOKED');
    // The broker scenario's compromised agent, revoked too; the gateway's human untouched.
    expect(await node('compromised-agent').getAttribute('data-revoked')).toBe('true');
    expect(await node('human-kai').getAttribute('data-revoked')).toBe('false');
    expect(await edge('human-kai').count()).toBeGreaterThanOrEqual(2);
    await page.screenshot({ path: join(ARTIFACTS, 'demo-graph.png') });
  }, 60_000);

  it('shows a revocation made with the CLI while the page is open, without a reload', async () => {
    const target = await page
      .locator('[data-testid=graph-edge][data-from="support-agent"][data-revoked=false]')
      .first()
      .getAttribute('data-to');
    expect(target).toMatch(/^agent-\d+$/);
    // No reload or navigation from here on: the page must update itself.
    const loadsBefore = loads;
    const revoke = await withStdin(
      join(home!, 'demo'),
      '',
      'revoke',
      target!,
      '--reason',
      'dashboard test',
    );
    expect(revoke.code, revoke.stderr).toBe(0);
    expect(JSON.parse(revoke.stdout)).toMatchObject({ kind: 'identity', known: true });
    await page
      .locator(`[data-testid=graph-node][data-name="${target!}"][data-revoked=true]`)
      .waitFor({ timeout: 20_000 });
    expect(await edge('support-agent', target!).getAttribute('data-revoked')).toBe('true');
    expect(await node('support-agent').getAttribute('data-revoked')).toBe('false');
    expect(loads).toBe(loadsBefore);
    await page.screenshot({ path: join(ARTIFACTS, 'demo-graph-revoked.png') });
  }, 60_000);

  it('lists the demo’s denied calls in the audit explorer, each proof verified in the browser', async () => {
    await page.click('[data-testid=tab-audit]');
    await page.selectOption('[data-testid=audit-search] select', 'deny');
    await page.click('[data-testid=audit-search] button[type=submit]');
    const summary = page.locator('p', { hasText: /^\d+ calls; checkpoint of size \d+$/ });
    await summary.waitFor({ timeout: 20_000 });
    const total = Number(/^(\d+)/.exec(await summary.innerText())![1]);
    // The injected and over-limit calls of the gates, gateway and broker scenarios.
    expect(total).toBeGreaterThanOrEqual(5);
    const cards = page.locator('[data-testid=audit-call]');
    await expect.poll(() => cards.count(), { timeout: 20_000 }).toBe(Math.min(total, 20));
    const badges = await cards.locator('.badge').allInnerTexts();
    expect(new Set(badges)).toEqual(new Set(['deny']));
    const texts = await cards.allInnerTexts();
    expect(texts.some((t) => t.includes('chain: human-ava → support-agent → agent-'))).toBe(true);
    expect(texts.some((t) => t.includes('chain: human-kai → swarm-'))).toBe(true);
    await expect
      .poll(
        async () => {
          const proofs = await page.locator('[data-testid=proof]').allInnerTexts();
          return proofs.length === badges.length && proofs.every((t) => t.startsWith('verified'));
        },
        { timeout: 30_000 },
      )
      .toBe(true);
    await page.screenshot({ path: join(ARTIFACTS, 'demo-audit.png'), fullPage: true });
    expect(problems).toEqual([]);
  }, 90_000);
});
