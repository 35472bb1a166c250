// The trail of a stored audit log, kept between requests (the admin API's views): the log is
// append-only, so each read parses only the entries appended since the last one. What makes that
// safe to serve is in {@link CachedAuditTrail}.
import { isMandateError, type Logger } from '../core/index.js';
import { silentLogger } from '../core/internal.js';
import { bytesEqual } from '../encoding/index.js';
import {
  CompactRange,
  MAX_AUDIT_READ_ENTRIES,
  subtreeNodes,
  type AuditLogRepository,
} from '../audit/index.js';
import { AuditTrailReader, type TrailCall } from './audit-trail-view.js';

/** The trail as of one read. */
export interface AuditTrailSnapshot {
  /** Entries read: the stored log's size when the read began, or more. */
  readonly size: number;
  /**
   * The calls, in log order. The array is this snapshot's (a later read does not grow it), the
   * calls are not: a later read may attach a decision, an outcome or an extra decision to one.
   */
  readonly calls: readonly TrailCall[];
  /**
   * Changes whenever what was read changes (entries appended, or the trail read afresh): equal
   * versions have equal calls, so a view derived from them can be kept by version.
   */
  readonly version: number;
}

/** Why a cache was dropped (the warn line's `reason`). */
export const TrailCacheReset = {
  /** The store holds fewer entries than were read. */
  shorter: 'shorter',
  /** The stored Merkle tree over the entries read is not the one they were read with. */
  root: 'root',
  /** A record read again from the store differs from the one read into the cache. */
  record: 'record',
  /** A read failed (a row missing behind the log's back, a database error). */
  error: 'error',
} as const;
export type TrailCacheReset = (typeof TrailCacheReset)[keyof typeof TrailCacheReset];

/**
 * A stored log's trail, read once and then only past what was read. Before each read it checks,
 * in O(log n) reads, that the store still holds what was read: at least as many entries, and the
 * same Merkle tree over them — the root of the stored perfect-subtree hashes of `[0, size)`
 * equals the root of the leaf hashes read with the entries. A store that is shorter, or whose tree
 * differs (entries rewritten with their hashes, truncated and appended again), is read afresh
 * from its first entry.
 *
 * What this does not see is a record rewritten in place behind the hashes' back (its leaf hash and
 * subtree hashes left as they were): only reading every record again would, which is the cost this
 * cache exists to avoid. So the records an answer carries (the audit view's records and the bytes
 * its inclusion proofs are checked over) are never taken from here: callers read them from the
 * store per request, compare them with the calls' hashes, and {@link reset} when one differs
 * ({@link TrailCacheReset.record}). A tampered record the dashboard shows thus fails its proof
 * exactly as before; `mandate audit verify` checks every record.
 *
 * Reads are serialised: each sees at least every entry committed before it began.
 */
export class CachedAuditTrail {
  readonly #repository: AuditLogRepository;
  readonly #logger: Logger;
  #reader = new AuditTrailReader({ keepRecords: false });
  /** The leaf hashes of the entries read, as a compact range (its size: how many were read). */
  #range = new CompactRange();
  /** The root of {@link #range}, once asked for at its size. */
  #root: Uint8Array | undefined;
  #version = 0;
  #queue: Promise<unknown> = Promise.resolve();
  /** Asked for by {@link reset}: done by the next read, in turn (never under a read running). */
  #resetAsked: TrailCacheReset | undefined;

  constructor(repository: AuditLogRepository, logger: Logger = silentLogger) {
    this.#repository = repository;
    this.#logger = logger;
  }

  /** The trail as the store holds it now: appended entries parsed, the rest as read before. */
  read(): Promise<AuditTrailSnapshot> {
    const run = this.#queue.then(() => this.#refresh());
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Drops what was read: the next {@link read} starts from the first entry (a read running
   * meanwhile ends as it began, on what it read).
   */
  reset(reason: TrailCacheReset): void {
    this.#resetAsked ??= reason;
  }

  #drop(reason: TrailCacheReset): void {
    if (this.#range.size > 0)
      this.#logger.warn('admin audit trail read afresh', { reason, entries: this.#range.size });
    this.#reader = new AuditTrailReader({ keepRecords: false });
    this.#range = new CompactRange();
    this.#root = undefined;
    this.#version++;
  }

  async #refresh(): Promise<AuditTrailSnapshot> {
    try {
      if (this.#resetAsked !== undefined) {
        this.#drop(this.#resetAsked);
        this.#resetAsked = undefined;
      }
      const size = await this.#repository.size();
      const read = this.#range.size;
      if (read > 0) {
        if (size < read) this.#drop(TrailCacheReset.shorter);
        else {
          const hashes = await this.#repository.readNodes(subtreeNodes({ start: 0, end: read }));
          this.#root ??= this.#range.root();
          if (!bytesEqual(CompactRange.fromNodes(read, hashes).root(), this.#root))
            this.#drop(TrailCacheReset.root);
        }
      }
      while (this.#range.size < size) {
        const from = this.#range.size;
        const to = Math.min(size, from + MAX_AUDIT_READ_ENTRIES);
        const entries = await this.#repository.readEntries(from, to);
        this.#reader.add(entries.map((e, k) => ({ index: from + k, record: e.record })));
        for (const e of entries) this.#range.append(e.leafHash);
        this.#root = undefined;
        this.#version++;
      }
    } catch (error) {
      // Whatever was read may no longer be what is stored: the next read starts over (and meets
      // the same failure, as a read of the whole log would).
      this.#drop(TrailCacheReset.error);
      this.#logger.warn('admin cannot read the audit log', {
        code: isMandateError(error) ? error.code : 'ERR_INTERNAL',
      });
      throw error;
    }
    return {
      size: this.#range.size,
      calls: this.#reader.calls.slice(),
      version: this.#version,
    };
  }
}
