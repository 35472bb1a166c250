// The audit records (docs/spec/audit.md, "Records"): JCS (RFC 8785) JSON objects, each signed
// with a credential purpose key over SHA-256 of the JCS bytes of the record without its
// `signature` member. The agent signs its invocation; the enforcement point signs its decision,
// the outcome, lease references and decision traces. Shapes only here; signing and verifying are
// in ./sign-records.ts and ./verify-records.ts.
import type { Identifier } from '../identity/index.js';

/** The `type` of an invocation record that carries its delegation chain verbatim (the first form). */
export const INVOCATION_RECORD_TYPE = 'mandate/invocation/v1';
/**
 * The `type` of an invocation record that names its delegation chain by hash (`chainHash`); the
 * chain itself is in a chain record earlier in the log.
 */
export const CHAIN_REF_INVOCATION_RECORD_TYPE = 'mandate/invocation/v2';
/** The `type` of a chain record: a delegation chain logged once, before the first invocation naming it. */
export const CHAIN_RECORD_TYPE = 'mandate/chain/v1';
/** The `type` of a decision record. */
export const DECISION_RECORD_TYPE = 'mandate/decision/v1';
/** The `type` of an outcome record. */
export const OUTCOME_RECORD_TYPE = 'mandate/outcome/v1';
/** The `type` of a lease reference record. */
export const LEASE_RECORD_TYPE = 'mandate/lease/v1';
/** The `type` of a decision trace record. */
export const TRACE_RECORD_TYPE = 'mandate/trace/v1';

/** Every record type, in the order the spec lists them. */
export const AUDIT_RECORD_TYPES = [
  INVOCATION_RECORD_TYPE,
  CHAIN_REF_INVOCATION_RECORD_TYPE,
  CHAIN_RECORD_TYPE,
  DECISION_RECORD_TYPE,
  OUTCOME_RECORD_TYPE,
  LEASE_RECORD_TYPE,
  TRACE_RECORD_TYPE,
] as const;

/** One of {@link AUDIT_RECORD_TYPES}. */
export type AuditRecordType = (typeof AUDIT_RECORD_TYPES)[number];

/**
 * Lower-case hex SHA-256 (64 digits). A record's hash is SHA-256 of its exact bytes as logged
 * (the whole JCS object, signature included).
 */
export type RecordHash = string;

/** A record's signature: the key type and the signature bytes in base64url (no padding). */
export interface RecordSignature {
  readonly keyType: 'ed25519' | 'p256';
  readonly value: string;
}

/** One input the agent received before an escalated call: its digest, its value when disclosed. */
export interface ReportedInput {
  /** What the input was (`user_message`, `tool_result:read_orders`, …), at most 256 characters. */
  readonly name: string;
  /** Hex SHA-256 of the JCS form of the value. */
  readonly digest: string;
  /** The value itself, only when the agent was configured to disclose it. */
  readonly value?: unknown;
}

/** What the agent reports about why it makes a call: the inputs it received and its reasoning. */
export interface InvocationReport {
  readonly inputs: readonly ReportedInput[];
  /** At most 16,384 characters. */
  readonly reasoning: string;
}

/** The members both invocation forms share. */
interface InvocationMembers {
  /** The acting agent: the chain's actor and the subject of `attestation`. */
  readonly agent: Identifier;
  readonly tool: string;
  /** The tool's server, `null` when the call did not name one. */
  readonly server: string | null;
  /** Hex SHA-256 of the JCS (RFC 8785) text of the arguments (as gates' `argumentsDigest`). */
  readonly argumentsDigest: string;
  /** 16 random bytes, hex: unique per agent within the enforcement point's window. */
  readonly nonce: string;
  /** When the agent signed, Unix seconds. */
  readonly issuedAt: number;
  /** The hash of this agent's previous invocation record; `null` for its first. */
  readonly previous: RecordHash | null;
  /** Present only when the agent reports inputs and reasoning (escalations). */
  readonly report?: InvocationReport;
  /** The agent's credential-key attestation, base64url. */
  readonly attestation: string;
  readonly signature: RecordSignature;
}

/**
 * An agent's signed request to call a tool carrying its chain verbatim (`mandate/invocation/v1`),
 * signed by the agent's credential purpose key: the record verifies alone.
 */
export interface VerbatimInvocationRecord extends InvocationMembers {
  readonly type: typeof INVOCATION_RECORD_TYPE;
  /** The delegation chain verbatim, base64url (no padding). */
  readonly chain: string;
}

/**
 * An agent's signed request to call a tool naming its chain by hash (`mandate/invocation/v2`),
 * signed by the agent's credential purpose key: the signature binds the chain through its hash,
 * and the chain itself is in a {@link ChainRecord} earlier in the log.
 */
export interface ChainRefInvocationRecord extends InvocationMembers {
  readonly type: typeof CHAIN_REF_INVOCATION_RECORD_TYPE;
  /** Hex SHA-256 of the delegation chain bytes. */
  readonly chainHash: string;
}

/** An invocation record, of either form. */
export type InvocationRecord = VerbatimInvocationRecord | ChainRefInvocationRecord;

/** Whether a record is an invocation (either form). */
export function isInvocationRecord(record: AuditRecord): record is InvocationRecord {
  return record.type === INVOCATION_RECORD_TYPE || record.type === CHAIN_REF_INVOCATION_RECORD_TYPE;
}

/** The gate's escalation when a call needs a person (`approval_required`). */
export interface DecisionEscalation {
  /** The approval request's id. */
  readonly id: string;
  /** The `@approval` text: why a person must look. */
  readonly reason: string;
  readonly policies: readonly string[];
}

/**
 * A human's answer as the gate used it: who, what they were shown, their reason, and their
 * signature exactly as the approval carried it (hex fields as in the gates' approval answer).
 */
export interface DecisionApproval {
  readonly id: string;
  readonly approver: Identifier;
  readonly decision: 'approve' | 'deny';
  readonly reason: string;
  readonly answeredAt: number;
  /**
   * What the human was shown: the tool, the arguments (their JCS text is what is displayed, so
   * its digest is `argumentsDigest`, the one the human's signature binds), the `@approval` text,
   * the policies and the bundle. The arguments' text itself only when the enforcement point
   * discloses the tool's arguments (`discloseArguments`); otherwise only their digest is kept.
   */
  readonly shown: {
    readonly tool: string;
    /** Hex SHA-256 of the arguments' JCS text (absent only in records written before it was added). */
    readonly argumentsDigest?: string;
    /** The arguments' JCS text, only when disclosed. */
    readonly arguments?: string;
    /** The `@approval` text. */
    readonly reason: string;
    readonly policies: readonly string[];
    readonly bundleHash: string;
  };
  /** The exact UTF-8 JCS text the human's signature covers. */
  readonly signed: string;
  readonly signatureKeyType: 'ed25519' | 'p256';
  /** Hex. */
  readonly signature: string;
  /** Hex: the approver's credential-key attestation. */
  readonly attestation: string;
  /** Hex: the approver's credential (a chain without links). */
  readonly approverChain: string;
}

/** Fields every record the enforcement point signs carries. */
export interface EnforcerSigned {
  /** The enforcement point's identity. */
  readonly enforcer: Identifier;
  /** Its credential-key attestation, base64url. */
  readonly attestation: string;
  readonly signature: RecordSignature;
}

/** The enforcement point's decision on one invocation (`mandate/decision/v1`). */
export interface DecisionRecord extends EnforcerSigned {
  readonly type: typeof DECISION_RECORD_TYPE;
  /** The invocation record's hash. */
  readonly invocation: RecordHash;
  /** The invocation's agent (repeated so a reader needs no join). */
  readonly agent: Identifier;
  readonly decision: 'allow' | 'deny' | 'approval_required';
  /** The lock that refused or waits; `null` on allow. */
  readonly lock: string | null;
  /** The machine-readable cause of a deny; `null` otherwise. */
  readonly code: string | null;
  readonly reasons: readonly string[];
  /** The determining policy ids. */
  readonly policies: readonly string[];
  /** Hex hash of the bundle that decided; `null` when none was consulted. */
  readonly bundle: string | null;
  /** Present when the call needs a person. */
  readonly escalation: DecisionEscalation | null;
  /** The human's answer this decision used (approved and consumed, or denied). */
  readonly approval: DecisionApproval | null;
  /** The arguments, only when the enforcement point is configured to disclose this tool's. */
  readonly arguments?: unknown;
  readonly decidedAt: number;
}

/** What happened when the tool ran (`mandate/outcome/v1`). */
export interface OutcomeRecord extends EnforcerSigned {
  readonly type: typeof OUTCOME_RECORD_TYPE;
  readonly invocation: RecordHash;
  readonly agent: Identifier;
  readonly status: 'ok' | 'error';
  /** Hex SHA-256 of the result's JCS text when `ok`; `null` on error. */
  readonly resultDigest: string | null;
  /** A stable error code (`ERR_…` or the tool's own) when `error`; `null` when `ok`. */
  readonly error: string | null;
  /** Ids of the leases the call used — never secret values. */
  readonly leases: readonly string[];
  readonly completedAt: number;
}

/** A lease's life event, by reference only (`mandate/lease/v1`). */
export interface LeaseRecord extends EnforcerSigned {
  readonly type: typeof LEASE_RECORD_TYPE;
  /** The invocation the lease serves, if any. */
  readonly invocation: RecordHash | null;
  readonly agent: Identifier;
  /** The lease's id. */
  readonly lease: string;
  /** The secret's name or reference (`vault:stripe/refunds`), never its value. */
  readonly resource: string;
  readonly event: 'granted' | 'renewed' | 'used' | 'revoked' | 'expired';
  readonly at: number;
  /** When the lease ends; `null` for `revoked`/`expired`. `used`: a proxied request it served. */
  readonly expiresAt: number | null;
}

/** How a person resolved an escalation. */
export interface TraceResolution {
  readonly decision: 'approve' | 'deny';
  readonly approver: Identifier;
  readonly reason: string;
  readonly answeredAt: number;
}

/**
 * A decision trace (`mandate/trace/v1`): an escalated call with what the agent received and
 * reported, the applicable policies and how the person resolved it — usable as an evaluation case.
 */
export interface TraceRecord extends EnforcerSigned {
  readonly type: typeof TRACE_RECORD_TYPE;
  /** The invocation that was escalated (decision `approval_required`). */
  readonly escalation: RecordHash;
  /** The later invocation the resolution decided (the retried call). */
  readonly resolvedBy: RecordHash;
  readonly agent: Identifier;
  /** Hex SHA-256 of the chain bytes. */
  readonly chainHash: string;
  /** The approval request's id. */
  readonly approval: string;
  /** The policies that asked for a person. */
  readonly policies: readonly string[];
  /** The agent's report from the escalated invocation (copied; `null` when it reported none). */
  readonly report: InvocationReport | null;
  readonly resolution: TraceResolution;
  readonly recordedAt: number;
}

/**
 * A delegation chain as the enforcement point logged it (`mandate/chain/v1`), once per distinct
 * chain and before the first invocation naming it by hash.
 */
export interface ChainRecord extends EnforcerSigned {
  readonly type: typeof CHAIN_RECORD_TYPE;
  /** The chain bytes, base64url (no padding). */
  readonly chain: string;
  /** Hex SHA-256 of the chain bytes: what invocations name. */
  readonly chainHash: string;
  readonly loggedAt: number;
}

/** Any audit record. */
export type AuditRecord =
  InvocationRecord | DecisionRecord | OutcomeRecord | LeaseRecord | TraceRecord | ChainRecord;
