import { conflict, invalid, notFound } from '../core/internal.js';
import { MERKLE_HASH_BYTES, type MerkleNodeId } from './merkle.js';
import {
  MAX_AUDIT_READ_ENTRIES,
  MAX_AUDIT_RECORD_BYTES,
  type AuditLogEntry,
  type StoredMerkleNode,
} from './repository.js';

// Argument checks every AuditLogRepository shares (memory and SQLite), so both refuse the same
// inputs with the same codes.

export function checkAppend(
  size: number,
  fromIndex: number,
  entries: readonly AuditLogEntry[],
  nodes: readonly StoredMerkleNode[],
): void {
  if (fromIndex !== size) {
    throw conflict(
      'ERR_AUDIT_LOG_CONFLICT',
      `the audit log holds ${size} entries, not ${fromIndex}: another writer appended`,
    );
  }
  for (const entry of entries) {
    if (!(entry.record instanceof Uint8Array) || entry.record.byteLength > MAX_AUDIT_RECORD_BYTES) {
      throw invalid(
        'ERR_ARGUMENT_INVALID',
        `an audit record is at most ${MAX_AUDIT_RECORD_BYTES} bytes`,
      );
    }
    checkHash(entry.leafHash);
  }
  // The nodes must be exactly those the entries complete, in completion order: entry j
  // completes one node per trailing 1 bit of j, levels 1, 2, … (node (ℓ, (j + 1) / 2^ℓ − 1)).
  let k = 0;
  for (let j = fromIndex; j < fromIndex + entries.length; j++) {
    for (let level = 1, span = 2; (j + 1) % span === 0; level++, span *= 2) {
      const node = nodes[k++];
      if (node?.level !== level || node.index !== (j + 1) / span - 1) throw nodesInvalid();
      checkHash(node.hash);
    }
  }
  if (k !== nodes.length) throw nodesInvalid();
}

const nodesInvalid = () =>
  invalid('ERR_ARGUMENT_INVALID', 'the Merkle nodes are not those the entries complete, in order');

function checkHash(hash: Uint8Array): void {
  if (!(hash instanceof Uint8Array) || hash.byteLength !== MERKLE_HASH_BYTES) {
    throw invalid('ERR_ARGUMENT_INVALID', 'a Merkle hash is 32 bytes');
  }
}

export function checkRange(size: number, from: number, to: number): void {
  if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to) || from < 0 || to < from) {
    throw invalid('ERR_ARGUMENT_INVALID', 'an entry range is `0 ≤ from ≤ to`');
  }
  if (to - from > MAX_AUDIT_READ_ENTRIES) {
    throw invalid('ERR_ARGUMENT_INVALID', `read at most ${MAX_AUDIT_READ_ENTRIES} entries at once`);
  }
  if (to > size) throw entryNotFound(to - 1);
}

export function checkNode(size: number, node: MerkleNodeId): void {
  if (
    !Number.isSafeInteger(node.level) ||
    node.level < 0 ||
    node.level > 52 ||
    !Number.isSafeInteger(node.index) ||
    node.index < 0
  ) {
    throw invalid('ERR_ARGUMENT_INVALID', 'a Merkle node id is a level and an index');
  }
  if ((node.index + 1) * 2 ** node.level > size) {
    throw notFound(
      'ERR_AUDIT_ENTRY_NOT_FOUND',
      `the audit log has no node ${node.level}/${node.index} at size ${size}`,
    );
  }
}

export const entryNotFound = (index: number) =>
  notFound('ERR_AUDIT_ENTRY_NOT_FOUND', `the audit log has no entry ${index}`);

export function checkCheckpoint(treeSize: number, note: string, size: number): void {
  if (!Number.isSafeInteger(treeSize) || treeSize < 0 || treeSize > size) {
    throw invalid(
      'ERR_ARGUMENT_INVALID',
      `a checkpoint of ${treeSize} entries for a log of ${size}`,
    );
  }
  if (typeof note !== 'string' || note.length === 0) {
    throw invalid('ERR_ARGUMENT_INVALID', 'a checkpoint note is text');
  }
}
