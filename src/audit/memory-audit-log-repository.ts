/* eslint-disable @typescript-eslint/require-await -- the interface is async for databases; here the work is synchronous and `async` only turns throws into rejections */
import { copyBytes } from '../encoding/index.js';
import { MERKLE_HASH_BYTES, type MerkleNodeId } from './merkle.js';
import type {
  AuditLogEntry,
  AuditLogRepository,
  StoredCheckpoint,
  StoredMerkleNode,
} from './repository.js';
import {
  checkAppend,
  checkCheckpoint,
  checkNode,
  checkRange,
  entryNotFound,
} from './repository-checks.js';

const CHUNK_HASHES = 8192;

/** 32-byte hashes in 256 KiB chunks: a million nodes without a million small objects. */
class HashColumn {
  readonly #chunks: Uint8Array[] = [];
  #length = 0;

  get length(): number {
    return this.#length;
  }

  push(hash: Uint8Array): void {
    const offset = this.#length % CHUNK_HASHES;
    if (offset === 0) this.#chunks.push(new Uint8Array(CHUNK_HASHES * MERKLE_HASH_BYTES));
    this.#chunks[this.#chunks.length - 1]!.set(hash, offset * MERKLE_HASH_BYTES);
    this.#length++;
  }

  get(index: number): Uint8Array {
    const chunk = this.#chunks[Math.floor(index / CHUNK_HASHES)]!;
    const offset = (index % CHUNK_HASHES) * MERKLE_HASH_BYTES;
    return chunk.slice(offset, offset + MERKLE_HASH_BYTES);
  }
}

/**
 * The audit log in memory: for tests, benchmarks and short-lived processes (nothing survives
 * the process). Nodes of level ≥ 1 are kept in chunked columns, one per level.
 */
export class MemoryAuditLogRepository implements AuditLogRepository {
  readonly #records: Uint8Array[] = [];
  readonly #leaves = new HashColumn();
  readonly #levels: HashColumn[] = [];
  readonly #checkpoints = new Map<number, string>();

  async size(): Promise<number> {
    return this.#records.length;
  }

  async append(
    fromIndex: number,
    entries: readonly AuditLogEntry[],
    nodes: readonly StoredMerkleNode[],
  ): Promise<void> {
    checkAppend(this.#records.length, fromIndex, entries, nodes);
    for (const entry of entries) {
      this.#records.push(copyBytes(entry.record));
      this.#leaves.push(entry.leafHash);
    }
    // checkAppend made sure these are the nodes the entries complete: each level's column
    // grows by its next index.
    for (const node of nodes) {
      (this.#levels[node.level - 1] ??= new HashColumn()).push(node.hash);
    }
  }

  async readEntries(from: number, to: number): Promise<AuditLogEntry[]> {
    checkRange(this.#records.length, from, to);
    const out: AuditLogEntry[] = [];
    for (let i = from; i < to; i++) {
      out.push({ record: this.#records[i]!.slice(), leafHash: this.#leaves.get(i) });
    }
    return out;
  }

  async readNodes(nodes: readonly MerkleNodeId[]): Promise<Uint8Array[]> {
    return nodes.map((node) => {
      checkNode(this.#records.length, node);
      if (node.level === 0) return this.#leaves.get(node.index);
      const column = this.#levels[node.level - 1];
      if (column === undefined || node.index >= column.length) throw entryNotFound(node.index);
      return column.get(node.index);
    });
  }

  async putCheckpoint(checkpoint: StoredCheckpoint): Promise<void> {
    checkCheckpoint(checkpoint.treeSize, checkpoint.note, this.#records.length);
    if (!this.#checkpoints.has(checkpoint.treeSize)) {
      this.#checkpoints.set(checkpoint.treeSize, checkpoint.note);
    }
  }

  async latestCheckpoint(): Promise<StoredCheckpoint | undefined> {
    return (await this.listCheckpoints()).at(-1);
  }

  async listCheckpoints(): Promise<StoredCheckpoint[]> {
    return [...this.#checkpoints]
      .sort(([a], [b]) => a - b)
      .map(([treeSize, note]) => ({ treeSize, note }));
  }
}
