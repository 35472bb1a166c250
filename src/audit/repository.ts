import type { MerkleNodeId } from './merkle.js';

/** One log entry as stored: the record's bytes (opaque to the log) and its RFC 6962 leaf hash. */
export interface AuditLogEntry {
  readonly record: Uint8Array;
  /** `hashLeaf(record)`, 32 bytes. */
  readonly leafHash: Uint8Array;
}

/** A perfect subtree hash of level ≥ 1 (level 0 are the entries' leaf hashes). */
export interface StoredMerkleNode extends MerkleNodeId {
  readonly hash: Uint8Array;
}

/** A signed checkpoint as the log stored it. */
export interface StoredCheckpoint {
  readonly treeSize: number;
  /** The signed note (C2SP signed-note / tlog-checkpoint). */
  readonly note: string;
}

/** Bound on one record's bytes. */
export const MAX_AUDIT_RECORD_BYTES = 1024 * 1024;
/** Bound on entries per read. */
export const MAX_AUDIT_READ_ENTRIES = 10_000;

/**
 * Storage of the audit log: an append-only sequence of entries, the hash of every perfect
 * subtree, and the signed checkpoints. Implemented in memory (`MemoryAuditLogRepository`) and on
 * SQLite (`store/`); both pass test/contract/audit-log-repository-contract.ts.
 *
 * The repository trusts its one writer (`AuditLog`) to compute leaf and node hashes; it checks
 * shapes and sizes, never hashes. Integrity is checked by `verifyStoredLog`.
 */
export interface AuditLogRepository {
  /** The number of entries. */
  size(): Promise<number>;
  /**
   * Appends `entries` at indices `fromIndex…` and the perfect subtree nodes they complete (all of
   * them, in completion order: by entry, then by level, as `CompactRange.append` reports them), in
   * one transaction: durable (survives a kill of the process) when the promise resolves. Throws
   * `ERR_AUDIT_LOG_CONFLICT` when the log does not hold exactly `fromIndex` entries (another
   * writer appended), `ERR_ARGUMENT_INVALID` for a hash that is not 32 bytes or a record over
   * {@link MAX_AUDIT_RECORD_BYTES}; nothing is written then.
   */
  append(
    fromIndex: number,
    entries: readonly AuditLogEntry[],
    nodes: readonly StoredMerkleNode[],
  ): Promise<void>;
  /** Entries `[from, to)`, at most {@link MAX_AUDIT_READ_ENTRIES}; `ERR_AUDIT_ENTRY_NOT_FOUND` past the end. */
  readEntries(from: number, to: number): Promise<AuditLogEntry[]>;
  /**
   * The hashes of `nodes` in order (level 0: leaf hashes); `ERR_AUDIT_ENTRY_NOT_FOUND` for a node
   * the log does not (yet) hold.
   */
  readNodes(nodes: readonly MerkleNodeId[]): Promise<Uint8Array[]>;
  /** Stores a signed checkpoint; a second one for the same size is ignored (first wins). */
  putCheckpoint(checkpoint: StoredCheckpoint): Promise<void>;
  /** The checkpoint of the largest tree size, if any. */
  latestCheckpoint(): Promise<StoredCheckpoint | undefined>;
  /** Every stored checkpoint, by increasing tree size. */
  listCheckpoints(): Promise<StoredCheckpoint[]>;
}
