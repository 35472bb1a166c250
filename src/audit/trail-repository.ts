import { invalid } from '../core/internal.js';
import type { Identifier } from '../identity/index.js';
import type { RecordHash } from './records.js';

/** An agent's chain head: the hash and log index of its last logged invocation. */
export interface AgentHead {
  readonly agent: Identifier;
  readonly hash: RecordHash;
  readonly index: number;
}

/** A chain record in the log: the chain's hex SHA-256 and the record's log index. */
export interface LoggedChain {
  readonly hash: string;
  readonly index: number;
}

/**
 * An escalated invocation (decision `approval_required`), found again when its approval is used
 * or denied: by the approval id, or by the call (agent, server/tool and arguments digest).
 */
export interface Escalation {
  readonly approval: string;
  readonly agent: Identifier;
  /** `SERVER/TOOL` as the invocation named it (`/TOOL` without a server). */
  readonly call: string;
  readonly argumentsDigest: string;
  /** The escalated invocation's record hash and log index. */
  readonly invocation: RecordHash;
  readonly index: number;
  readonly createdAt: number;
}

/**
 * The enforcement point's state beside its audit log: the nonces it has seen (replay refusal
 * within the validity window), each agent's chain head (an index over the log, current up to
 * `indexedSize`: entries past it are re-read on open), and escalations. Implemented in memory
 * (`MemoryAuditTrailRepository`) and on SQLite (migration 11); both pass
 * test/contract/audit-trail-repository-contract.ts.
 */
export interface AuditTrailRepository {
  /**
   * Records `nonce` of `agent` until `expiresAt`. `true` when it was not held (or held only by an
   * expired claim, now replaced); `false` when an unexpired claim holds it. Atomic (two claims of
   * one nonce: one wins) and durable when the promise resolves.
   */
  claimNonce(
    agent: Identifier,
    nonce: string,
    expiresAt: number,
    nowSeconds: number,
  ): Promise<boolean>;
  /** Forgets the nonces expired at `nowSeconds`; returns how many. */
  pruneNonces(nowSeconds: number): Promise<number>;
  /** The agent's head as last stored. */
  head(agent: Identifier): Promise<AgentHead | undefined>;
  /**
   * Stores heads (each replaces the agent's only if its index is higher) and raises the indexed
   * size to `indexedSize` (never lowers it), in one transaction.
   */
  putHeads(heads: readonly AgentHead[], indexedSize: number): Promise<void>;
  /** The log size up to which the stored heads are current (0 at first). */
  indexedSize(): Promise<number>;
  /** Stores an escalation; a second one for the same approval id is ignored (first wins). */
  putEscalation(escalation: Escalation): Promise<void>;
  /** The escalation of an approval id. */
  escalation(approval: string): Promise<Escalation | undefined>;
  /** The newest escalation of this call (agent, `SERVER/TOOL`, arguments digest). */
  findEscalation(
    agent: Identifier,
    call: string,
    argumentsDigest: string,
  ): Promise<Escalation | undefined>;
  /** Where the log holds the chain record of a chain (its hex SHA-256), if it does. */
  loggedChain(hash: string): Promise<LoggedChain | undefined>;
  /** Stores where chain records are (the first stored per chain wins), in one transaction. */
  putLoggedChains(chains: readonly LoggedChain[]): Promise<void>;
}

const MAX_KEY_CHARS = 1024;

/** The checks both implementations apply before storing. */
export function checkTrailKey(value: string, what: string): void {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_KEY_CHARS)
    throw invalid('ERR_ARGUMENT_INVALID', `\`${what}\` must be 1 to ${MAX_KEY_CHARS} characters`);
}

/** Checks a count or Unix time. */
export function checkTrailNumber(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0)
    throw invalid('ERR_ARGUMENT_INVALID', `\`${what}\` must be a non-negative integer`);
}

function attempt<T>(work: () => T): Promise<T> {
  try {
    return Promise.resolve(work());
  } catch (error) {
    return Promise.reject(error instanceof Error ? error : new Error(String(error)));
  }
}

/** In-memory trail state (tests, one process). */
export class MemoryAuditTrailRepository implements AuditTrailRepository {
  readonly #nonces = new Map<string, number>();
  readonly #heads = new Map<Identifier, AgentHead>();
  readonly #escalations = new Map<string, Escalation>();
  readonly #chains = new Map<string, LoggedChain>();
  #indexed = 0;

  claimNonce(
    agent: Identifier,
    nonce: string,
    expiresAt: number,
    nowSeconds: number,
  ): Promise<boolean> {
    return attempt(() => {
      checkTrailKey(agent, 'agent');
      checkTrailKey(nonce, 'nonce');
      checkTrailNumber(expiresAt, 'expiresAt');
      checkTrailNumber(nowSeconds, 'nowSeconds');
      const key = `${agent}\n${nonce}`;
      const held = this.#nonces.get(key);
      if (held !== undefined && held > nowSeconds) return false;
      this.#nonces.set(key, expiresAt);
      return true;
    });
  }

  pruneNonces(nowSeconds: number): Promise<number> {
    return attempt(() => {
      checkTrailNumber(nowSeconds, 'nowSeconds');
      let n = 0;
      for (const [key, expiresAt] of this.#nonces) {
        if (expiresAt <= nowSeconds) {
          this.#nonces.delete(key);
          n++;
        }
      }
      return n;
    });
  }

  head(agent: Identifier): Promise<AgentHead | undefined> {
    return Promise.resolve(this.#heads.get(agent));
  }

  putHeads(heads: readonly AgentHead[], indexedSize: number): Promise<void> {
    return attempt(() => {
      checkTrailNumber(indexedSize, 'indexedSize');
      for (const h of heads) {
        checkTrailKey(h.agent, 'agent');
        checkTrailKey(h.hash, 'hash');
        checkTrailNumber(h.index, 'index');
      }
      for (const h of heads) {
        const old = this.#heads.get(h.agent);
        if (old === undefined || h.index > old.index) this.#heads.set(h.agent, { ...h });
      }
      this.#indexed = Math.max(this.#indexed, indexedSize);
    });
  }

  indexedSize(): Promise<number> {
    return Promise.resolve(this.#indexed);
  }

  putEscalation(escalation: Escalation): Promise<void> {
    return attempt(() => {
      checkTrailKey(escalation.approval, 'approval');
      checkTrailKey(escalation.agent, 'agent');
      checkTrailKey(escalation.call, 'call');
      checkTrailKey(escalation.argumentsDigest, 'argumentsDigest');
      checkTrailKey(escalation.invocation, 'invocation');
      checkTrailNumber(escalation.index, 'index');
      checkTrailNumber(escalation.createdAt, 'createdAt');
      if (!this.#escalations.has(escalation.approval))
        this.#escalations.set(escalation.approval, { ...escalation });
    });
  }

  escalation(approval: string): Promise<Escalation | undefined> {
    return Promise.resolve(this.#escalations.get(approval));
  }

  findEscalation(
    agent: Identifier,
    call: string,
    argumentsDigest: string,
  ): Promise<Escalation | undefined> {
    let found: Escalation | undefined;
    for (const e of this.#escalations.values()) {
      if (e.agent === agent && e.call === call && e.argumentsDigest === argumentsDigest)
        if (found === undefined || e.index > found.index) found = e;
    }
    return Promise.resolve(found);
  }

  loggedChain(hash: string): Promise<LoggedChain | undefined> {
    return Promise.resolve(this.#chains.get(hash));
  }

  putLoggedChains(chains: readonly LoggedChain[]): Promise<void> {
    return attempt(() => {
      for (const c of chains) {
        checkTrailKey(c.hash, 'hash');
        checkTrailNumber(c.index, 'index');
      }
      for (const c of chains) if (!this.#chains.has(c.hash)) this.#chains.set(c.hash, { ...c });
    });
  }
}
