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
  CHECKPOINT_TIME_PREFIX,
  checkpointTime,
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
export {
  INVOCATION_RECORD_TYPE,
  CHAIN_REF_INVOCATION_RECORD_TYPE,
  CHAIN_RECORD_TYPE,
  isInvocationRecord,
  DECISION_RECORD_TYPE,
  OUTCOME_RECORD_TYPE,
  LEASE_RECORD_TYPE,
  TRACE_RECORD_TYPE,
  AUDIT_RECORD_TYPES,
} from './records.js';
export type {
  AuditRecord,
  AuditRecordType,
  RecordHash,
  RecordSignature,
  ReportedInput,
  InvocationReport,
  InvocationRecord,
  VerbatimInvocationRecord,
  ChainRefInvocationRecord,
  ChainRecord,
  DecisionRecord,
  DecisionEscalation,
  DecisionApproval,
  EnforcerSigned,
  OutcomeRecord,
  LeaseRecord,
  TraceRecord,
  TraceResolution,
} from './records.js';
export {
  parseAuditRecord,
  readAuditRecord,
  encodeAuditRecord,
  auditRecordHash,
  chainHashOf,
  jsonDigest,
  recordSigningBytes,
  toBase64Url,
  fromBase64Url,
} from './record-codec.js';
export { signInvocation, InvocationSigner, EnforcerSigner } from './sign-records.js';
export type { SignedRecord, InvocationToSign, InputToReport } from './sign-records.js';
export {
  verifyInvocation,
  verifyEnforcerRecord,
  VerifiedInvocation,
  VerifiedEnforcerRecord,
} from './verify-records.js';
export type {
  VerifyInvocationOptions,
  VerifyEnforcerRecordOptions,
  EnforcerRecord,
  VerifiedKeyCache,
} from './verify-records.js';
export { MemoryAuditTrailRepository } from './trail-repository.js';
export type {
  AuditTrailRepository,
  AgentHead,
  Escalation,
  LoggedChain,
} from './trail-repository.js';
export { formatExportLine, parseExportLine, parseExport, MAX_EXPORT_LINE_BYTES } from './export.js';
export type { ExportLine, ParsedExport } from './export.js';
export { ExportScanner } from './export.js';
export type { ExportScan } from './export.js';
export { verifyTrail, verifyTrailExport, TrailProblemCode } from './verify-trail.js';
export type {
  TrailPosition,
  TrailProblem,
  TrailSummary,
  TrailVerification,
  VerifyTrailOptions,
  VerifyTrailExportOptions,
} from './verify-trail.js';
export {
  REVOCATION_RECORD_TYPE,
  signAppliedRevocationRecord,
  signRevocationRecord,
  verifyRevocationRecord,
} from './revocation-record.js';
export type { RevocationRecord } from './revocation-record.js';
export { delegationPath } from './chain-path.js';
export { emitTrailSpans, GenAiAttribute, GenAiOperation, MandateAttribute } from './otel.js';
export type { TrailSpansOptions, TrailSpansResult } from './otel.js';
