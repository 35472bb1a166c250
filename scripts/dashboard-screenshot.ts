// The README's dashboard screenshots: `node --import tsx scripts/dashboard-screenshot.ts` builds the
// dashboard from its sources, runs `mandate up --demo --agents 40 --rotate 4` on a temporary home,
// logs in with Debian's Chromium (/usr/bin/chromium through playwright-core, never a browser
// download) and writes docs/img/dashboard.png (the delegation graph) and
// docs/img/dashboard-audit.png (the denied calls, each proof verified in the browser), 1280×800.
// Run it again after changing the page, and commit the PNGs (docs/img is not in the package).
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { killChildren, startMandate } from '../test/helpers/processes.js';
import { repoRoot } from '../test/helpers/vectors.js';
import {
  buildDashboard,
  chromiumUnavailable,
  DASHBOARD_LINE_RE,
  launchChromium,
} from '../test/dashboard/chromium.js';

const OUT = join(repoRoot, 'docs', 'img');
const VIEWPORT = { width: 1280, height: 800 };

const unavailable = chromiumUnavailable();
if (unavailable !== undefined) throw new Error(`dashboard-screenshot: ${unavailable}`);

const work = mkdtempSync(join(tmpdir(), 'mandate-screenshot-'));
let browser: Browser | undefined;
try {
  await buildDashboard(true);
  const up = startMandate(join(work, 'home'), 'up', '--demo', '--agents', '40', '--rotate', '4');
  await up.waitFor(/ up home=\S+\/demo services=authority,relay,admin /, 600_000);
  const link = DASHBOARD_LINE_RE.exec(up.stdout())?.[1];
  if (link === undefined) throw new Error(`no dashboard line on stdout:\n${up.stdout()}`);
  browser = await launchChromium();
  const page = await browser.newPage({ viewport: VIEWPORT });
  await page.goto(link);
  await page
    .locator('[data-testid=agent-row]', { hasText: 'human-ava' })
    .waitFor({ timeout: 30_000 });
  mkdirSync(OUT, { recursive: true });

  await page.click('[data-testid=tab-graph]');
  await page
    .locator('[data-testid=graph-node][data-name=support-agent]')
    .waitFor({ timeout: 30_000 });
  await page.screenshot({ path: join(OUT, 'dashboard.png') });

  await page.click('[data-testid=tab-audit]');
  await page.selectOption('[data-testid=audit-search] select', 'deny');
  await page.click('[data-testid=audit-search] button[type=submit]');
  const proofs = page.locator('[data-testid=proof]');
  await proofs.first().waitFor({ timeout: 30_000 });
  await page
    .locator('[data-testid=proof]', { hasText: /^verifying…$/ })
    .first()
    .waitFor({ state: 'detached', timeout: 30_000 });
  await page.screenshot({ path: join(OUT, 'dashboard-audit.png') });
  console.log(`dashboard-screenshot: wrote ${join(OUT, 'dashboard.png')} and dashboard-audit.png`);
} finally {
  await browser?.close();
  await killChildren();
  rmSync(work, { recursive: true, force: true });
}
