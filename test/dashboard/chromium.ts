import { existsSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { repoRoot } from '../helpers/vectors.js';

// What the dashboard's browser tests (and scripts/dashboard-screenshot.ts) share: Debian's
// Chromium driven by playwright-core (never a browser download), the dashboard built from its
// sources, and the login link a node prints.

/** Debian's `chromium` package (`.ci/run` installs it when missing). */
export const CHROMIUM = '/usr/bin/chromium';

/** Screenshots, kept for people to look at (not compared). */
export const ARTIFACTS = join(tmpdir(), 'mandate-dashboard-artifacts');

/** The one stdout line with the login link (`mandate dashboard`, `mandate up`); group 1 is the link. */
export const DASHBOARD_LINE_RE =
  /^dashboard: (http:\/\/127\.0\.0\.1:\d+\/#token=[\w-]+&key=\S+)\n/m;

/** Why Chromium cannot be driven here, or `undefined`. */
export function chromiumUnavailable(): string | undefined {
  return existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is absent`;
}

const BUILT = join(repoRoot, 'dist', 'dashboard', 'index.html');

/** The newest modification time (ms) of the dashboard's sources. */
function newestSourceMs(): number {
  const dir = join(repoRoot, 'dashboard');
  let newest = 0;
  const walk = (at: string): void => {
    for (const name of readdirSync(at)) {
      const path = join(at, name);
      const stat = statSync(path);
      if (stat.isDirectory()) walk(path);
      else newest = Math.max(newest, stat.mtimeMs);
    }
  };
  walk(dir);
  return newest;
}

/**
 * Builds dist/dashboard (vite) when it is missing or older than the dashboard's sources, so a
 * browser never drives a stale page; `force` builds it anyway.
 */
export async function buildDashboard(force = false): Promise<void> {
  if (!force && existsSync(BUILT) && statSync(BUILT).mtimeMs >= newestSourceMs()) return;
  const { build } = await import('vite');
  await build({ configFile: join(repoRoot, 'dashboard', 'vite.config.ts'), logLevel: 'warn' });
}

/** Headless Chromium (no sandbox as root, where Chromium refuses one). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
  });
}
