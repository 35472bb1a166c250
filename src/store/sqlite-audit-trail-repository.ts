import type { Statement, Transaction } from 'better-sqlite3';
import type { Identifier } from '../identity/index.js';
import type { AgentHead, AuditTrailRepository, Escalation, LoggedChain } from '../audit/index.js';
import { checkTrailKey, checkTrailNumber } from '../audit/internal.js';
import type { SqliteDatabase } from './sqlite-database.js';

/**
 * Migration 11: the enforcement point's state beside the audit log — nonces seen (until they
 * expire), each agent's chain head with the log size the heads are current to, and escalations.
 */
export const AUDIT_TRAIL_MIGRATION_SQL = `
  CREATE TABLE audit_nonces (
    agent TEXT NOT NULL,
    nonce TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (agent, nonce)
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX audit_nonces_expiry ON audit_nonces (expires_at);
  CREATE TABLE audit_agent_heads (
    agent TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    idx INTEGER NOT NULL CHECK (idx >= 0)
  ) STRICT;
  CREATE TABLE audit_trail_index (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    indexed_size INTEGER NOT NULL CHECK (indexed_size >= 0)
  ) STRICT;
  CREATE TABLE audit_escalations (
    approval TEXT PRIMARY KEY,
    agent TEXT NOT NULL,
    call TEXT NOT NULL,
    arguments_digest TEXT NOT NULL,
    invocation TEXT NOT NULL,
    idx INTEGER NOT NULL CHECK (idx >= 0),
    created_at INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX audit_escalations_call ON audit_escalations (agent, call, arguments_digest, idx);`;

/**
 * Migration 14: where the audit log holds each chain record (docs/spec/audit.md, "Chain"), so an
 * enforcement point logs each chain once across restarts and processes.
 */
export const AUDIT_CHAINS_MIGRATION_SQL = `
  CREATE TABLE audit_chains (
    hash TEXT PRIMARY KEY,
    idx INTEGER NOT NULL CHECK (idx >= 0)
  ) STRICT;`;

interface EscalationRow {
  approval: string;
  agent: string;
  call: string;
  arguments_digest: string;
  invocation: string;
  idx: number;
  created_at: number;
}

function escalationOf(row: EscalationRow | undefined): Escalation | undefined {
  return row === undefined
    ? undefined
    : {
        approval: row.approval,
        agent: row.agent as Identifier,
        call: row.call,
        argumentsDigest: row.arguments_digest,
        invocation: row.invocation,
        index: row.idx,
        createdAt: row.created_at,
      };
}

/** AuditTrailRepository on SQLite; every write is committed before its promise resolves. */
export class SqliteAuditTrailRepository implements AuditTrailRepository {
  readonly #database: SqliteDatabase;
  readonly #claim: Statement<[string, string, number, number]>;
  readonly #prune: Statement<[number]>;
  readonly #head: Statement<[string], { agent: string; hash: string; idx: number }>;
  readonly #putHead: Statement<[string, string, number]>;
  readonly #indexed: Statement<[], { indexed_size: number }>;
  readonly #putIndexed: Statement<[number]>;
  readonly #putHeads: Transaction<(heads: readonly AgentHead[], size: number) => void>;
  readonly #putEscalation: Statement<[string, string, string, string, string, number, number]>;
  readonly #escalation: Statement<[string], EscalationRow>;
  readonly #findEscalation: Statement<[string, string, string], EscalationRow>;
  readonly #chain: Statement<[string], { hash: string; idx: number }>;
  readonly #putChains: Transaction<(chains: readonly LoggedChain[]) => void>;

  constructor(database: SqliteDatabase) {
    this.#database = database;
    const db = database.db;
    // Insert, or take over a claim that has expired; an unexpired claim changes nothing.
    this.#claim = db.prepare(
      `INSERT INTO audit_nonces (agent, nonce, expires_at) VALUES (?, ?, ?)
       ON CONFLICT (agent, nonce) DO UPDATE SET expires_at = excluded.expires_at
       WHERE audit_nonces.expires_at <= ?`,
    );
    this.#prune = db.prepare('DELETE FROM audit_nonces WHERE expires_at <= ?');
    this.#head = db.prepare('SELECT agent, hash, idx FROM audit_agent_heads WHERE agent = ?');
    this.#putHead = db.prepare(
      `INSERT INTO audit_agent_heads (agent, hash, idx) VALUES (?, ?, ?)
       ON CONFLICT (agent) DO UPDATE SET hash = excluded.hash, idx = excluded.idx
       WHERE excluded.idx > audit_agent_heads.idx`,
    );
    this.#indexed = db.prepare('SELECT indexed_size FROM audit_trail_index WHERE id = 1');
    this.#putIndexed = db.prepare(
      `INSERT INTO audit_trail_index (id, indexed_size) VALUES (1, ?)
       ON CONFLICT (id) DO UPDATE SET indexed_size = max(indexed_size, excluded.indexed_size)`,
    );
    this.#putHeads = db.transaction((heads, size) => {
      for (const h of heads) this.#putHead.run(h.agent, h.hash, h.index);
      this.#putIndexed.run(size);
    });
    this.#putEscalation = db.prepare(
      `INSERT INTO audit_escalations (approval, agent, call, arguments_digest, invocation, idx, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (approval) DO NOTHING`,
    );
    this.#escalation = db.prepare('SELECT * FROM audit_escalations WHERE approval = ?');
    this.#findEscalation = db.prepare(
      `SELECT * FROM audit_escalations WHERE agent = ? AND call = ? AND arguments_digest = ?
       ORDER BY idx DESC LIMIT 1`,
    );
    this.#chain = db.prepare('SELECT hash, idx FROM audit_chains WHERE hash = ?');
    const putChain = db.prepare<[string, number]>(
      'INSERT INTO audit_chains (hash, idx) VALUES (?, ?) ON CONFLICT (hash) DO NOTHING',
    );
    this.#putChains = db.transaction((chains) => {
      for (const c of chains) putChain.run(c.hash, c.index);
    });
  }

  claimNonce(
    agent: Identifier,
    nonce: string,
    expiresAt: number,
    nowSeconds: number,
  ): Promise<boolean> {
    try {
      checkTrailKey(agent, 'agent');
      checkTrailKey(nonce, 'nonce');
      checkTrailNumber(expiresAt, 'expiresAt');
      checkTrailNumber(nowSeconds, 'nowSeconds');
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    return this.#database.write(
      () => this.#claim.run(agent, nonce, expiresAt, nowSeconds).changes === 1,
    );
  }

  pruneNonces(nowSeconds: number): Promise<number> {
    try {
      checkTrailNumber(nowSeconds, 'nowSeconds');
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    return this.#database.write(() => this.#prune.run(nowSeconds).changes);
  }

  head(agent: Identifier): Promise<AgentHead | undefined> {
    return this.#database.write(() => {
      const row = this.#head.get(agent);
      return row === undefined
        ? undefined
        : { agent: row.agent as Identifier, hash: row.hash, index: row.idx };
    });
  }

  putHeads(heads: readonly AgentHead[], indexedSize: number): Promise<void> {
    try {
      checkTrailNumber(indexedSize, 'indexedSize');
      for (const h of heads) {
        checkTrailKey(h.agent, 'agent');
        checkTrailKey(h.hash, 'hash');
        checkTrailNumber(h.index, 'index');
      }
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    return this.#database.write(() => {
      this.#putHeads.immediate(heads, indexedSize);
    });
  }

  indexedSize(): Promise<number> {
    return this.#database.write(() => this.#indexed.get()?.indexed_size ?? 0);
  }

  putEscalation(e: Escalation): Promise<void> {
    try {
      checkTrailKey(e.approval, 'approval');
      checkTrailKey(e.agent, 'agent');
      checkTrailKey(e.call, 'call');
      checkTrailKey(e.argumentsDigest, 'argumentsDigest');
      checkTrailKey(e.invocation, 'invocation');
      checkTrailNumber(e.index, 'index');
      checkTrailNumber(e.createdAt, 'createdAt');
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    return this.#database.write(() => {
      this.#putEscalation.run(
        e.approval,
        e.agent,
        e.call,
        e.argumentsDigest,
        e.invocation,
        e.index,
        e.createdAt,
      );
    });
  }

  escalation(approval: string): Promise<Escalation | undefined> {
    return this.#database.write(() => escalationOf(this.#escalation.get(approval)));
  }

  findEscalation(
    agent: Identifier,
    call: string,
    argumentsDigest: string,
  ): Promise<Escalation | undefined> {
    return this.#database.write(() =>
      escalationOf(this.#findEscalation.get(agent, call, argumentsDigest)),
    );
  }

  loggedChain(hash: string): Promise<LoggedChain | undefined> {
    return this.#database.write(() => {
      const row = this.#chain.get(hash);
      return row === undefined ? undefined : { hash: row.hash, index: row.idx };
    });
  }

  putLoggedChains(chains: readonly LoggedChain[]): Promise<void> {
    try {
      for (const c of chains) {
        checkTrailKey(c.hash, 'hash');
        checkTrailNumber(c.index, 'index');
      }
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    return this.#database.write(() => {
      this.#putChains.immediate(chains);
    });
  }
}
