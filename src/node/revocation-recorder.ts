import { isMandateError, systemClock, type Clock, type Logger } from '../core/index.js';
import type { SigningVault } from '../vault/index.js';
import { silentLogger } from '../core/internal.js';
import type { CredentialIssuer, DenyEntry } from '../credentials/index.js';
import type { Identifier } from '../identity/index.js';
import {
  REVOCATION_RECORD_TYPE,
  signAppliedRevocationRecord,
  type AuditLog,
} from '../audit/index.js';
import type { SequencedDenyEntry } from '../bus/index.js';
import { bytesEndWith } from '../encoding/index.js';

/** Options of {@link RevocationRecorder.open}. */
export interface RevocationRecorderOptions {
  /** The enforcement point's log, through its one writer (the `AuditLog` the point appends to). */
  readonly log: AuditLog;
  /** Holds the enforcement point's credential key. */
  readonly vault: SigningVault;
  /** The enforcement point: the records' signer and `enforcer`. */
  readonly enforcer: CredentialIssuer;
  /** The authority the deny-set entries come from (the records' `authority`). */
  readonly authority: Identifier;
  readonly clock?: Clock;
  readonly logger?: Logger;
}

/** How many entries the opening scan reads at a time. */
const SCAN_BATCH = 10_000;
const utf8 = new TextEncoder();
const REVOCATION_SUFFIX = utf8.encode(`"type":"${REVOCATION_RECORD_TYPE}"}`);

const keyOf = (entry: Pick<DenyEntry, 'kind' | 'id'>): string => `${entry.kind}:${entry.id}`;

interface Pending {
  readonly entry: DenyEntry;
  readonly sequence: number;
  readonly appliedAt: number;
}

/**
 * Logs the deny-set entries an enforcement point learns from its authority (over the bus:
 * `DenySetFollower`'s `onApplied`, `AuthorityBus`'s `onDenyEntries`) as revocation records it
 * signs itself (`signAppliedRevocationRecord`: the entry, the authority, `enforcer`, `appliedAt`),
 * so its trail shows from when it enforced each revocation, and `audit verify` checks the records
 * after it against it (docs/spec/audit.md, "Records").
 *
 * Each entry is logged once per log: `open` reads the revocation records the log holds already
 * (whoever signed them), and an entry named by one is not logged again — a snapshot replayed on
 * reconnection or after a restart adds nothing. An entry whose signing or append fails is kept and
 * tried again with the next delivery (the deny-set itself is already updated: enforcement never
 * waits for the log).
 */
export class RevocationRecorder {
  readonly #options: RevocationRecorderOptions;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #logged: Set<string>;
  readonly #pending = new Map<string, Pending>();
  #tail: Promise<void> = Promise.resolve();

  private constructor(options: RevocationRecorderOptions, logged: Set<string>) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? silentLogger;
    this.#logged = logged;
  }

  /** Reads the revocations the log holds (in batches), then records from there on. */
  static async open(options: RevocationRecorderOptions): Promise<RevocationRecorder> {
    const { log } = options;
    const logged = new Set<string>();
    const size = log.size;
    for (let from = 0; from < size; from += SCAN_BATCH) {
      for (const { record } of await log.readEntries(from, Math.min(size, from + SCAN_BATCH))) {
        if (!bytesEndWith(record, REVOCATION_SUFFIX)) continue;
        try {
          const r = JSON.parse(new TextDecoder().decode(record)) as {
            kind?: unknown;
            id?: unknown;
          };
          if (typeof r.kind === 'string' && typeof r.id === 'string')
            logged.add(`${r.kind}:${r.id}`);
        } catch {
          // Not JSON: not a revocation this recorder can have written; `audit verify` reports it.
        }
      }
    }
    return new RevocationRecorder(options, logged);
  }

  /** How many distinct entries the log holds a revocation record for. */
  get logged(): number {
    return this.#logged.size;
  }

  /**
   * Logs the entries the log does not hold yet, in order, one at a time; `appliedAt` is now.
   * Resolves once they are durable, or once a failure was logged (never rejects): what failed is
   * tried again with the next call.
   */
  record(entries: readonly SequencedDenyEntry[]): Promise<void> {
    const appliedAt = this.#clock.nowSeconds();
    for (const { entry, sequence } of entries) {
      const key = keyOf(entry);
      if (!this.#logged.has(key) && !this.#pending.has(key))
        this.#pending.set(key, { entry, sequence, appliedAt });
    }
    const run = this.#tail.then(() => this.#drain());
    this.#tail = run;
    return run;
  }

  async #drain(): Promise<void> {
    const { log, vault, enforcer, authority } = this.#options;
    for (const [key, { entry, sequence, appliedAt }] of this.#pending) {
      try {
        await log.append(
          await signAppliedRevocationRecord(vault, enforcer, authority, entry, sequence, appliedAt),
        );
      } catch (error) {
        this.#logger.warn('audit: a revocation was not logged (tried again with the next one)', {
          reason: isMandateError(error) ? error.code : 'error',
          id: entry.id,
        });
        return;
      }
      this.#logged.add(key);
      this.#pending.delete(key);
    }
  }
}
