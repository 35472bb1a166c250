import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../src/store/open-sqlite-store.js';
import { json, run, type Run } from '../helpers/cli.js';
import { CATALOG, POLICIES } from '../helpers/gate-world.js';
import { repoRoot } from '../helpers/vectors.js';

// Issue 11, F1 and F2: a write path's side effects (a deny-set entry; an approval consumed, a
// budget spent) commit with the audit records that log them, or not at all — with a signer that
// fails, an append that fails (a fault injected as a SQLite trigger), and several CLI processes
// racing on one home.

const NOW = 1_800_000_000;

/** The fields of a logged record these tests read. */
interface LoggedRecord {
  readonly type: string;
  readonly sequence?: number;
  readonly decision?: string;
  readonly agent?: string;
  readonly approval?: unknown;
}
const BIN = join(repoRoot, 'src', 'cli', 'bin.ts');

afterEach(() => {
  delete process.env.MANDATE_NOW_SECONDS;
});

class Home {
  readonly dir = mkdtempSync(join(tmpdir(), 'mandate-cli-atomic-'));
  path(name: string): string {
    return join(this.dir, name);
  }
  run(...argv: string[]): Promise<Run> {
    return run('--home', this.dir, '--json', ...argv);
  }
  async ok<T = Record<string, unknown>>(...argv: string[]): Promise<T> {
    const r = await this.run(...argv);
    expect(r.code, `${argv.join(' ')}: ${r.stderr}`).toBe(0);
    return json(r) as T;
  }
  /** `mandate --home DIR --json ARGV…` as its own process (tsx), at time NOW. */
  spawn(...argv: string[]): Promise<Run> {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', BIN, '--home', this.dir, '--json', ...argv],
      {
        cwd: repoRoot,
        env: { ...process.env, MANDATE_NOW_SECONDS: String(NOW) },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    return new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => {
        resolve({ code: code ?? -1, stdout, stderr });
      });
    });
  }
  /** Runs `work` over the home's store, opened beside the CLI's. */
  withStore<T>(work: (store: ReturnType<typeof openSqliteStore>) => T | Promise<T>): Promise<T> {
    const store = openSqliteStore(this.path('mandate.db'));
    return Promise.resolve(work(store)).finally(() => {
      store.close();
    });
  }
  /** Every record in the home's log, as JSON. */
  records(): Promise<LoggedRecord[]> {
    return this.withStore(async (store) => {
      const size = await store.auditLog.size();
      const entries = size === 0 ? [] : await store.auditLog.readEntries(0, size);
      return entries.map((e) => JSON.parse(new TextDecoder().decode(e.record)) as LoggedRecord);
    });
  }
}

/** Makes every append of a record whose text contains `marker` fail, until `heal`. */
function injectAppendFailure(h: Home, marker: string): Promise<void> {
  return h.withStore((store) => {
    store.database.db.exec(
      `CREATE TRIGGER injected_failure BEFORE INSERT ON audit_log_entries
         WHEN instr(CAST(NEW.record AS TEXT), '${marker}') > 0
         BEGIN SELECT RAISE(ABORT, 'injected append failure'); END;`,
    );
  });
}
function heal(h: Home): Promise<void> {
  return h.withStore((store) => {
    store.database.db.exec('DROP TRIGGER injected_failure');
  });
}

/** Signs a checkpoint of the home's log and verifies the whole trail against it. */
async function verifyHome(h: Home): Promise<Record<string, unknown>> {
  await h.ok('audit', 'checkpoint');
  return h.ok('audit', 'verify');
}

const denySetSequence = (h: Home) => h.withStore((store) => store.denySet.currentSequence());

/** No stack trace, whatever the outcome: the CLI's funnel prints `error[CODE]: message`. */
function expectNoStack(r: Run, what: string): void {
  expect(r.stderr, what).not.toMatch(/\n\s+at /);
  expect(r.stderr, what).not.toMatch(/ERR_INTERNAL/);
}

describe('revoke: the deny-set entry and its record, both or neither', () => {
  async function authorityHome(): Promise<Home> {
    process.env.MANDATE_NOW_SECONDS = String(NOW);
    const h = new Home();
    await h.ok('authority', 'init');
    for (const name of ['a1', 'a2', 'a3', 'a4', 'a5', 'a6'])
      await h.ok('identity', 'create', '--name', name);
    return h;
  }

  it('a signer that fails (the clock before the key) leaves no deny-set row', async () => {
    const h = await authorityHome();
    process.env.MANDATE_NOW_SECONDS = String(NOW - 3600);
    const early = await h.run('revoke', 'a1', '--reason', 'clock wrong');
    expect(early.code).not.toBe(0);
    expect(early.stderr).toMatch(/^error\[ERR_PURPOSE_KEY_NOT_YET_VALID\]/);
    expect(await denySetSequence(h)).toBe(0);
    // Once the clock is right, the same revocation is recorded with its record.
    process.env.MANDATE_NOW_SECONDS = String(NOW);
    const done = await h.ok<{ sequence: number; logIndex: number }>('revoke', 'a1');
    expect(done.sequence).toBe(1);
    const records = await h.records();
    expect(records[done.logIndex]).toMatchObject({ type: 'mandate/revocation/v1', sequence: 1 });
    expect(await verifyHome(h)).toMatchObject({ ok: true });
  });

  it('an append that fails rolls the deny-set row back; the re-run records both', async () => {
    const h = await authorityHome();
    await injectAppendFailure(h, 'mandate/revocation/v1');
    const failed = await h.run('revoke', 'a2');
    expect(failed.code).not.toBe(0);
    expect(await denySetSequence(h)).toBe(0);
    await heal(h);
    const done = await h.ok<{ sequence: number }>('revoke', 'a2');
    expect(done.sequence).toBe(1);
    const revocations = (await h.records()).filter((r) => r.type === 'mandate/revocation/v1');
    expect(revocations.map((r) => r.sequence)).toEqual([1]);
  });

  it('concurrent revoke processes: every deny-set entry has its record, in order, and verify passes', async () => {
    const h = await authorityHome();
    const names = ['a1', 'a2', 'a3', 'a4', 'a5', 'a6'];
    const runs = await Promise.all(names.map((n) => h.spawn('revoke', n, '--reason', 'race')));
    runs.forEach((r, i) => {
      expectNoStack(r, names[i]!);
      expect([0, 7], `${names[i]!}: ${r.stderr}`).toContain(r.code);
    });
    const sequence = await denySetSequence(h);
    expect(sequence).toBe(runs.filter((r) => r.code === 0).length);
    const revocations = (await h.records()).filter((r) => r.type === 'mandate/revocation/v1');
    // Logged in deny-set order, one record per entry, no gap.
    expect(revocations.map((r) => r.sequence)).toEqual(
      Array.from({ length: sequence }, (_, i) => i + 1),
    );
    expect(await verifyHome(h)).toMatchObject({ ok: true });
  }, 120_000);

  it('audit verify reports a deny-set entry with no record between two logged ones', async () => {
    const h = await authorityHome();
    await h.ok('revoke', 'a1');
    // What the old `revoke` left behind when its append failed: a row with no record.
    const a2 = await h.ok<{ identifier: string }>('identity', 'show', 'a2');
    await h.withStore((store) =>
      store.denySet.append(
        [{ kind: 'identity', id: a2.identifier, revokedAt: NOW, expiresAt: NOW + 86_400 }],
        NOW,
      ),
    );
    await h.ok('revoke', 'a3');
    await h.ok('audit', 'checkpoint');
    const verified = await h.run('audit', 'verify');
    expect(verified.code).not.toBe(0);
    expect(verified.stdout + verified.stderr).toMatch(/ERR_AUDIT_REVOCATION_MISSING/);
  });
});

describe('gate call: approvals and budgets commit with the logged decision, or not at all', () => {
  const AGENTS = ['g1', 'g2', 'g3', 'g4', 'g5'];
  /** A distinct amount above the approval threshold (200) per agent. */
  const amountOf = (agent: string) => 200 + 10 * (AGENTS.indexOf(agent) + 1);

  async function gateHome(budget: number): Promise<Home> {
    process.env.MANDATE_NOW_SECONDS = String(NOW);
    const h = new Home();
    await h.ok('authority', 'init');
    for (const name of ['dana', 'approver', ...AGENTS])
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
      '--attr',
      `mandate.budget:issue_refund#amount<=${budget}`,
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
    for (const agent of AGENTS)
      await h.ok(
        'delegate',
        '--chain',
        h.path('dana.chain'),
        '--from',
        'dana',
        '--to',
        agent,
        '--constraint',
        'tools=read_orders,issue_refund',
        '--purpose',
        'refunds',
        '--out',
        h.path(`${agent}.chain`),
      );
    writeFileSync(h.path('catalog.json'), JSON.stringify({ tools: CATALOG }));
    writeFileSync(h.path('policies.cedar'), POLICIES);
    await h.ok('policy', 'publish', h.path('policies.cedar'), '--catalog', h.path('catalog.json'));
    return h;
  }

  const callArgs = (h: Home, agent: string, amount: number) => [
    'gate',
    'call',
    '--chain',
    h.path(`${agent}.chain`),
    '--presenter',
    agent,
    '--catalog',
    h.path('catalog.json'),
    '--tool',
    'issue_refund',
    '--args',
    JSON.stringify({ order: `o-${agent}`, amount }),
  ];

  /** Each agent asks, and the approver approves its call. */
  async function approveAll(h: Home, agents: readonly string[]): Promise<void> {
    for (const agent of agents) {
      const asked = await h.run(...callArgs(h, agent, amountOf(agent)));
      expect(asked.code, asked.stderr).toBe(12);
      const id = (json(asked) as { approval: string }).approval;
      await h.ok('approvals', 'approve', id, '--as', 'approver', '--reason', 'verified');
    }
  }

  /** The books: approvals used, budget spent, and what the log says was allowed. */
  async function books(h: Home) {
    const used = await h.withStore(
      (store) =>
        store.database.db
          .prepare<[], { n: number }>("SELECT count(*) AS n FROM approvals WHERE status = 'used'")
          .get()!.n,
    );
    const spent = await h.withStore(
      (store) =>
        store.database.db
          .prepare<[], { s: number | null }>('SELECT sum(spent) AS s FROM gate_budgets')
          .get()!.s ?? 0,
    );
    const records = await h.records();
    const identifiers = new Map<string, string>();
    for (const agent of AGENTS)
      identifiers.set(
        (await h.ok<{ identifier: string }>('identity', 'show', agent)).identifier,
        agent,
      );
    const allowed = records.filter(
      (r) => r.type === 'mandate/decision/v1' && r.decision === 'allow',
    );
    // Each allowed decision's approval was consumed (single use) and its amount spent.
    return {
      used,
      spent,
      allowedWithApproval: allowed.filter(
        (r) => r.type === 'mandate/decision/v1' && r.approval !== null,
      ).length,
      allowedAgents: allowed.map((r) => identifiers.get(r.agent ?? '')!),
    };
  }

  it('an append that fails consumes no approval and spends no budget; the re-run does, once', async () => {
    const h = await gateHome(2000);
    await approveAll(h, ['g1']);
    await injectAppendFailure(h, 'mandate/decision/v1');
    const failed = await h.run(...callArgs(h, 'g1', amountOf('g1')));
    expect(failed.code).not.toBe(0);
    expect(await books(h)).toMatchObject({ used: 0, spent: 0, allowedWithApproval: 0 });
    await heal(h);
    const done = await h.run(...callArgs(h, 'g1', amountOf('g1')));
    expect(done.code, done.stderr).toBe(0);
    expect(await books(h)).toMatchObject({
      used: 1,
      spent: amountOf('g1'),
      allowedWithApproval: 1,
    });
    expect(await verifyHome(h)).toMatchObject({ ok: true });
  });

  it('one agent calling from four processes at once: each call is chained on the last and logged', async () => {
    const h = await gateHome(2000);
    const amounts = [11, 12, 13, 14];
    const runs = await Promise.all(amounts.map((a) => h.spawn(...callArgs(h, 'g1', a))));
    runs.forEach((r, i) => {
      expectNoStack(r, String(amounts[i]));
      expect(r.code, r.stderr).toBe(0);
    });
    const b = await books(h);
    expect(b.allowedAgents).toEqual(['g1', 'g1', 'g1', 'g1']);
    expect(b.spent).toBe(11 + 12 + 13 + 14);
    expect(await verifyHome(h)).toMatchObject({ ok: true });
  }, 120_000);

  it('five approved calls in five processes at once: approvals used and budget spent match the log', async () => {
    // 210 + 220 + 230 + 240 + 250 = 1150 > 700: some calls must be refused by the budget.
    const h = await gateHome(700);
    await approveAll(h, AGENTS);
    const runs = await Promise.all(
      AGENTS.map((agent) => h.spawn(...callArgs(h, agent, amountOf(agent)))),
    );
    runs.forEach((r, i) => {
      expectNoStack(r, AGENTS[i]!);
      expect([0, 5, 12, 7], `${AGENTS[i]!}: ${r.code} ${r.stderr}`).toContain(r.code);
    });
    const b = await books(h);
    expect(b.used).toBe(b.allowedWithApproval);
    expect(b.spent).toBe(b.allowedAgents.reduce((sum, agent) => sum + amountOf(agent), 0));
    expect(b.spent).toBeLessThanOrEqual(700);
    expect(b.allowedAgents.sort()).toEqual(AGENTS.filter((_, i) => runs[i]!.code === 0).sort());
    expect(await verifyHome(h)).toMatchObject({ ok: true });
  }, 180_000);
});
