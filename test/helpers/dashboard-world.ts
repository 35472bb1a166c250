// A home for the admin API and dashboard tests, made through the CLI: an authority; dana (a
// human) who delegated to `agent`, which delegated to `sub`; `approver`, a human who answers
// approvals; a published bundle; calls through gate 2 (allowed, denied, one waiting for a
// human); a signed checkpoint; then `sub` revoked.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { json, run, type Run } from './cli.js';
import { CATALOG, POLICIES } from './gate-world.js';

export const DASHBOARD_NOW = 1_800_000_000;

export class DashboardHome {
  readonly dir = mkdtempSync(join(tmpdir(), 'mandate-dashboard-'));
  path(name: string): string {
    return join(this.dir, name);
  }
  run(...argv: string[]): Promise<Run> {
    process.env.MANDATE_NOW_SECONDS = String(DASHBOARD_NOW);
    return run('--home', this.dir, '--json', ...argv);
  }
  async ok<T = Record<string, unknown>>(...argv: string[]): Promise<T> {
    const r = await this.run(...argv);
    expect(r.code, `${argv.join(' ')}: ${r.stderr}`).toBe(0);
    return json(r) as T;
  }
  call(chain: string, tool: string, args: Record<string, unknown>): Promise<Run> {
    return this.run(
      'gate',
      'call',
      '--chain',
      this.path(`${chain}.chain`),
      '--presenter',
      chain,
      '--catalog',
      this.path('catalog.json'),
      '--tool',
      tool,
      '--args',
      JSON.stringify(args),
    );
  }
}

/** The home, and the id of the approval waiting for a human. */
export async function dashboardWorld(): Promise<{ h: DashboardHome; approval: string }> {
  const h = new DashboardHome();
  await h.ok('authority', 'init');
  for (const name of ['dana', 'agent', 'sub', 'approver'])
    await h.ok('identity', 'create', '--name', name);
  await h.ok(
    'credential',
    'issue',
    '--to',
    'dana',
    '--attr',
    'tools=read_orders,issue_refund',
    '--attr',
    'human=true',
    '--out',
    h.path('dana.chain'),
  );
  await h.ok(
    'credential',
    'issue',
    '--to',
    'approver',
    '--attr',
    'human=true',
    '--out',
    h.path('approver.chain'),
  );
  await h.ok(
    'delegate',
    '--chain',
    h.path('dana.chain'),
    '--from',
    'dana',
    '--to',
    'agent',
    '--constraint',
    'tools=read_orders,issue_refund',
    '--constraint',
    'issue_refund#amount<=400',
    '--out',
    h.path('agent.chain'),
  );
  await h.ok(
    'delegate',
    '--chain',
    h.path('agent.chain'),
    '--from',
    'agent',
    '--to',
    'sub',
    '--constraint',
    'tools=read_orders',
    '--out',
    h.path('sub.chain'),
  );
  writeFileSync(h.path('catalog.json'), JSON.stringify({ tools: CATALOG }));
  writeFileSync(h.path('policies.cedar'), POLICIES);
  await h.ok('policy', 'publish', h.path('policies.cedar'), '--catalog', h.path('catalog.json'));
  expect((await h.call('agent', 'issue_refund', { order: 'o-1', amount: 150 })).code).toBe(0);
  expect((await h.call('agent', 'issue_refund', { order: 'o-1', amount: 450 })).code).toBe(5);
  expect((await h.call('sub', 'read_orders', { order: 'o-1' })).code).toBe(0);
  const waiting = await h.call('agent', 'issue_refund', { order: 'o-2', amount: 300 });
  expect(waiting.code).toBe(12);
  const approval = (json(waiting) as { approval: string }).approval;
  await h.ok('audit', 'checkpoint');
  await h.ok('revoke', 'sub', '--reason', 'compromised');
  return { h, approval };
}
