import { conflict, internal } from '../core/internal.js';
import type {
  ApprovalAnswer,
  ApprovalBinding,
  ApprovalRecord,
  ApprovalRepository,
  ApprovalStatus,
  BudgetRepository,
  CounterResult,
} from '../gates/index.js';
import { checkAmount } from '../gates/internal.js';
import type { SqliteDatabase } from './sqlite-database.js';

/**
 * Migration 9: approval requests (one row each; the answer as its JSON record, which holds the
 * signed text and signature) and the gate's counters (cumulative budgets, per-window call counts).
 */
export const GATES_MIGRATION_SQL = `CREATE TABLE approvals (
  id TEXT PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 128),
  agent TEXT NOT NULL,
  chain_hash TEXT NOT NULL,
  tool TEXT NOT NULL,
  arguments_digest TEXT NOT NULL,
  bundle_version INTEGER NOT NULL,
  arguments TEXT NOT NULL,
  bundle_hash TEXT NOT NULL,
  reason TEXT NOT NULL,
  policies TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'used')),
  answer TEXT,
  used_at INTEGER,
  CHECK ((status = 'pending') = (answer IS NULL)),
  CHECK ((status = 'used') = (used_at IS NOT NULL))
) STRICT;
CREATE INDEX approvals_binding ON approvals (agent, chain_hash, tool, arguments_digest, bundle_version);
CREATE INDEX approvals_created ON approvals (created_at);
CREATE TABLE gate_budgets (
  key TEXT PRIMARY KEY,
  spent INTEGER NOT NULL CHECK (spent BETWEEN 0 AND 9007199254740991)
) STRICT;
CREATE TABLE gate_call_counts (
  key TEXT PRIMARY KEY,
  window_index INTEGER NOT NULL,
  count INTEGER NOT NULL CHECK (count >= 0)
) STRICT;`;

interface ApprovalRow {
  id: string;
  agent: string;
  chain_hash: string;
  tool: string;
  arguments_digest: string;
  bundle_version: number;
  arguments: string;
  bundle_hash: string;
  reason: string;
  policies: string;
  created_at: number;
  expires_at: number;
  status: string;
  answer: string | null;
  used_at: number | null;
}

const STATUSES: ReadonlySet<string> = new Set(['pending', 'approved', 'denied', 'used']);

function recordOf(row: ApprovalRow): ApprovalRecord {
  if (!STATUSES.has(row.status))
    throw internal('ERR_STORE_CORRUPT', `approval \`${row.id}\` has an unknown status`);
  let policies: unknown;
  let answer: unknown;
  try {
    policies = JSON.parse(row.policies);
    answer = row.answer === null ? undefined : JSON.parse(row.answer);
  } catch (cause) {
    throw internal('ERR_STORE_CORRUPT', `approval \`${row.id}\` does not parse`, cause);
  }
  if (!Array.isArray(policies) || !policies.every((p) => typeof p === 'string'))
    throw internal('ERR_STORE_CORRUPT', `approval \`${row.id}\` has malformed policies`);
  return {
    id: row.id,
    agent: row.agent as ApprovalRecord['agent'],
    chainHash: row.chain_hash,
    tool: row.tool,
    argumentsDigest: row.arguments_digest,
    bundleVersion: row.bundle_version,
    arguments: row.arguments,
    bundleHash: row.bundle_hash,
    reason: row.reason,
    policies,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    status: row.status as ApprovalStatus,
    ...(answer === undefined ? {} : { answer: answer as ApprovalAnswer }),
    ...(row.used_at === null ? {} : { usedAt: row.used_at }),
  };
}

/** {@link ApprovalRepository} over SQLite: every state change one conditional UPDATE. */
export class SqliteApprovalRepository implements ApprovalRepository {
  readonly #database: SqliteDatabase;

  constructor(database: SqliteDatabase) {
    this.#database = database;
  }

  async create(record: ApprovalRecord): Promise<void> {
    const db = this.#database.db;
    await this.#database.write(() => {
      const result = db
        .prepare(
          `INSERT INTO approvals (id, agent, chain_hash, tool, arguments_digest, bundle_version, arguments,
             bundle_hash, reason, policies, created_at, expires_at, status, answer, used_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', NULL, NULL)
           ON CONFLICT (id) DO NOTHING`,
        )
        .run(
          record.id,
          record.agent,
          record.chainHash,
          record.tool,
          record.argumentsDigest,
          record.bundleVersion,
          record.arguments,
          record.bundleHash,
          record.reason,
          JSON.stringify(record.policies),
          record.createdAt,
          record.expiresAt,
        );
      if (result.changes === 0)
        throw conflict('ERR_APPROVAL_EXISTS', `approval \`${record.id}\` exists`);
    });
  }

  get(id: string): Promise<ApprovalRecord | undefined> {
    const row = this.#database.db
      .prepare<[string], ApprovalRow>('SELECT * FROM approvals WHERE id = ?')
      .get(id);
    return Promise.resolve(row === undefined ? undefined : recordOf(row));
  }

  findOpen(binding: ApprovalBinding, nowSeconds: number): Promise<ApprovalRecord | undefined> {
    const row = this.#database.db
      .prepare<[string, string, string, string, number, number], ApprovalRow>(
        `SELECT * FROM approvals WHERE agent = ? AND chain_hash = ? AND tool = ? AND arguments_digest = ?
           AND bundle_version = ? AND status != 'used' AND expires_at > ?
         ORDER BY created_at DESC, rowid DESC LIMIT 1`,
      )
      .get(
        binding.agent,
        binding.chainHash,
        binding.tool,
        binding.argumentsDigest,
        binding.bundleVersion,
        nowSeconds,
      );
    return Promise.resolve(row === undefined ? undefined : recordOf(row));
  }

  countPending(agent: string, nowSeconds: number): Promise<number> {
    const row = this.#database.db
      .prepare<[string, number], { n: number }>(
        `SELECT COUNT(*) AS n FROM approvals WHERE agent = ? AND status = 'pending' AND expires_at > ?`,
      )
      .get(agent, nowSeconds);
    return Promise.resolve(row?.n ?? 0);
  }

  list(
    options: { readonly status?: ApprovalStatus; readonly limit?: number } = {},
  ): Promise<ApprovalRecord[]> {
    const limit = Math.max(0, Math.min(options.limit ?? 100, 10_000));
    const rows =
      options.status === undefined
        ? this.#database.db
            .prepare<[number], ApprovalRow>(
              'SELECT * FROM approvals ORDER BY created_at DESC, rowid DESC LIMIT ?',
            )
            .all(limit)
        : this.#database.db
            .prepare<[string, number], ApprovalRow>(
              'SELECT * FROM approvals WHERE status = ? ORDER BY created_at DESC, rowid DESC LIMIT ?',
            )
            .all(options.status, limit);
    return Promise.resolve(rows.map(recordOf));
  }

  answer(id: string, answer: ApprovalAnswer, nowSeconds: number): Promise<boolean> {
    const db = this.#database.db;
    return this.#database.write(
      () =>
        db
          .prepare(
            `UPDATE approvals SET status = ?, answer = ? WHERE id = ? AND status = 'pending' AND expires_at > ?`,
          )
          .run(
            answer.decision === 'approve' ? 'approved' : 'denied',
            JSON.stringify(answer),
            id,
            nowSeconds,
          ).changes === 1,
    );
  }

  consume(id: string, nowSeconds: number): Promise<boolean> {
    const db = this.#database.db;
    return this.#database.write(
      () =>
        db
          .prepare(
            `UPDATE approvals SET status = 'used', used_at = ? WHERE id = ? AND status = 'approved' AND expires_at > ?`,
          )
          .run(nowSeconds, id, nowSeconds).changes === 1,
    );
  }
}

/**
 * {@link BudgetRepository} over SQLite. A spend or a count is one `BEGIN IMMEDIATE` transaction
 * (read, compare, write), so concurrent processes on one database file serialise on SQLite's
 * write lock and two spends that together exceed a limit never both succeed.
 */
export class SqliteBudgetRepository implements BudgetRepository {
  readonly #database: SqliteDatabase;

  constructor(database: SqliteDatabase) {
    this.#database = database;
  }

  spend(key: string, amount: number, limit: number): Promise<CounterResult> {
    checkAmount(amount);
    const db = this.#database.db;
    return this.#database.write(() =>
      db
        .transaction((): CounterResult => {
          const row = db
            .prepare<[string], { spent: number }>('SELECT spent FROM gate_budgets WHERE key = ?')
            .get(key);
          const total = row?.spent ?? 0;
          if (total + amount > limit) return { ok: false, total };
          db.prepare(
            'INSERT INTO gate_budgets (key, spent) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET spent = excluded.spent',
          ).run(key, total + amount);
          return { ok: true, total: total + amount };
        })
        .immediate(),
    );
  }

  refund(key: string, amount: number): Promise<void> {
    checkAmount(amount);
    const db = this.#database.db;
    return this.#database.write(() => {
      db.prepare('UPDATE gate_budgets SET spent = max(0, spent - ?) WHERE key = ?').run(
        amount,
        key,
      );
    });
  }

  spent(key: string): Promise<number> {
    const row = this.#database.db
      .prepare<[string], { spent: number }>('SELECT spent FROM gate_budgets WHERE key = ?')
      .get(key);
    return Promise.resolve(row?.spent ?? 0);
  }

  countCall(key: string, window: number, limit: number): Promise<CounterResult> {
    const db = this.#database.db;
    return this.#database.write(() =>
      db
        .transaction((): CounterResult => {
          const row = db
            .prepare<[string], { window_index: number; count: number }>(
              'SELECT window_index, count FROM gate_call_counts WHERE key = ?',
            )
            .get(key);
          if (row !== undefined && row.window_index > window)
            return { ok: false, total: row.count };
          const count = row === undefined || row.window_index < window ? 0 : row.count;
          if (count >= limit) return { ok: false, total: count };
          db.prepare(
            `INSERT INTO gate_call_counts (key, window_index, count) VALUES (?, ?, ?)
             ON CONFLICT (key) DO UPDATE SET window_index = excluded.window_index, count = excluded.count`,
          ).run(key, window, count + 1);
          return { ok: true, total: count + 1 };
        })
        .immediate(),
    );
  }
}
