// The public API of `mandate/audit`: the tamper-evident log (RFC 6962/9162 Merkle tree, C2SP
// checkpoints), its storage interface, and offline verification.
export {
  hashLeaf,
  hashChildren,
  rootFromLeafHashes,
  rootFromInclusionProof,
  verifyInclusion,
  verifyConsistency,
  inclusionProofRanges,
  consistencyProofRanges,
  subtreeNodes,
  combineSubtreeNodes,
  CompactRange,
  EMPTY_TREE_ROOT,
  MERKLE_HASH_BYTES,
  MAX_PROOF_HASHES,
} from './merkle.js';
export type { MerkleNodeId, SubtreeRange } from './merkle.js';
export {
  formatCheckpoint,
  parseCheckpoint,
  signCheckpoint,
  verifyCheckpoint,
  signNote,
  openNote,
  parseNote,
  noteKeyId,
  noteVerifierKey,
  formatNoteVerifierKey,
  parseNoteVerifierKey,
  noteSignerFromVault,
  NOTE_SIGNATURE_TYPE_ED25519,
  MAX_NOTE_BYTES,
  MAX_NOTE_SIGNATURES,
  MAX_CHECKPOINT_EXTENSIONS,
  MAX_NOTE_NAME_BYTES,
} from './checkpoint.js';
export type {
  Checkpoint,
  VerifiedCheckpoint,
  VerifyCheckpointOptions,
  NoteSigner,
  NoteSignature,
  NoteVerifierKey,
  OpenedNote,
} from './checkpoint.js';
export { MAX_AUDIT_RECORD_BYTES, MAX_AUDIT_READ_ENTRIES } from './repository.js';
export type {
  AuditLogRepository,
  AuditLogEntry,
  StoredMerkleNode,
  StoredCheckpoint,
} from './repository.js';
export { MemoryAuditLogRepository } from './memory-audit-log-repository.js';
export { AuditLog } from './audit-log.js';
export type { AuditLogOptions } from './audit-log.js';
export { verifyLog, verifyStoredLog, LogProblemCode } from './verify-log.js';
export type {
  LogEntryLine,
  LogPosition,
  LogProblem,
  LogVerification,
  VerifyLogOptions,
  VerifyStoredLogOptions,
} from './verify-log.js';
