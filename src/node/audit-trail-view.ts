// The trail of calls as the audit log tells it, for display (the CLI's `audit show|query` and the
// admin API): each invocation with its decision, outcome and delegation path. Reading only:
// verification is `verifyTrail`'s.
import {
  delegationPath,
  fromBase64Url,
  auditRecordHash,
  DECISION_RECORD_TYPE,
  CHAIN_RECORD_TYPE,
  CHAIN_REF_INVOCATION_RECORD_TYPE,
  INVOCATION_RECORD_TYPE,
  OUTCOME_RECORD_TYPE,
  TRACE_RECORD_TYPE,
  MAX_AUDIT_READ_ENTRIES,
  type AuditLogRepository,
  type LogEntryLine,
} from '../audit/index.js';

/** One call as the trail tells it: the invocation and what hangs off it. */
export interface TrailCall {
  readonly hash: string;
  readonly index: number;
  readonly agent: string;
  /** The chain as a path: the root credential's subject, then each link's subject (the acting agent last). */
  readonly path: readonly string[];
  readonly tool: string;
  readonly server: string | null;
  readonly argumentsDigest: string;
  readonly issuedAt: number;
  decision?: {
    readonly hash: string;
    readonly index: number;
    readonly decision: string;
    readonly lock: string | null;
    readonly code: string | null;
    readonly reasons: readonly string[];
    readonly policies: readonly string[];
    readonly bundle: string | null;
    readonly approval: { approver: string; decision: string; reason: string } | null;
    readonly escalation: { id: string; reason: string } | null;
    readonly arguments?: unknown;
  };
  outcome?: {
    readonly hash: string;
    readonly index: number;
    readonly status: string;
    readonly error: string | null;
    readonly leases: readonly string[];
  };
  report?: unknown;
  /** Later decision records naming the same invocation (never shown as its decision). */
  extraDecisions?: string[];
  /**
   * Whether the invocation is included under the home's latest checkpoint, verified (signature
   * and inclusion); `null`: not known (an exported log).
   */
  covered?: boolean | null;
}

/** The calls of a trail, every record by hash, and the decision traces. */
export interface AuditTrailView {
  readonly calls: TrailCall[];
  readonly byHash: Map<string, { index: number; record: Record<string, unknown> }>;
  readonly traces: Record<string, unknown>[];
}

const decoder = new TextDecoder('utf-8', { fatal: false });

function chainPathOf(chain: string): string[] {
  try {
    return delegationPath(fromBase64Url(chain, 'chain')) ?? [];
  } catch {
    return [];
  }
}

/**
 * Reads records for display (verification is `audit verify`'s): unparseable ones are skipped. A
 * call's decision is the first that names it; later ones are listed as extra (a trail holding
 * them does not verify). Coverage is set afterwards, for the calls shown ({@link markCoverage}).
 */
export function readAuditTrail(entries: readonly LogEntryLine[]): AuditTrailView {
  const reader = new AuditTrailReader();
  reader.add(entries);
  return { calls: reader.calls, byHash: reader.byHash, traces: reader.traces };
}

/**
 * {@link readAuditTrail} a batch at a time: entries added in log order, in any number of
 * batches, make the same calls as one read of all of them (a decision or outcome attaches to the
 * call read before it, whichever batch that was in). What a cache of a growing log appends to.
 */
export class AuditTrailReader {
  readonly calls: TrailCall[] = [];
  /** Every record by hash; empty with `keepRecords: false`. */
  readonly byHash = new Map<string, { index: number; record: Record<string, unknown> }>();
  /** The decision traces; empty with `keepRecords: false`. */
  readonly traces: Record<string, unknown>[] = [];
  readonly #keepRecords: boolean;
  readonly #callByHash = new Map<string, TrailCall>();
  // Chains logged once by hash (chain records), for the invocations that name theirs by hash.
  readonly #chainTexts = new Map<string, string>();

  /**
   * `keepRecords: false` keeps only the calls and the chains they name, not `byHash` (every parsed
   * record: most of the memory of a long log) nor `traces`.
   */
  constructor(options: { readonly keepRecords?: boolean } = {}) {
    this.#keepRecords = options.keepRecords ?? true;
  }

  add(entries: Iterable<LogEntryLine>): void {
    for (const e of entries) this.#read(e);
  }

  #read(e: LogEntryLine): void {
    let record: Record<string, unknown>;
    try {
      const value: unknown = JSON.parse(decoder.decode(e.record));
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return;
      record = value as Record<string, unknown>;
    } catch {
      return;
    }
    const hash = e.id ?? auditRecordHash(e.record);
    if (this.#keepRecords) this.byHash.set(hash, { index: e.index, record });
    const str = (k: string): string => (typeof record[k] === 'string' ? record[k] : '');
    switch (record.type) {
      case CHAIN_RECORD_TYPE:
        if (!this.#chainTexts.has(str('chainHash')))
          this.#chainTexts.set(str('chainHash'), str('chain'));
        break;
      case INVOCATION_RECORD_TYPE:
      case CHAIN_REF_INVOCATION_RECORD_TYPE: {
        const call: TrailCall = {
          hash,
          index: e.index,
          agent: str('agent'),
          path: chainPathOf(
            record.type === INVOCATION_RECORD_TYPE
              ? str('chain')
              : (this.#chainTexts.get(str('chainHash')) ?? ''),
          ),
          tool: str('tool'),
          server: typeof record.server === 'string' ? record.server : null,
          argumentsDigest: str('argumentsDigest'),
          issuedAt: typeof record.issuedAt === 'number' ? record.issuedAt : 0,
          ...(record.report === undefined ? {} : { report: record.report }),
        };
        this.calls.push(call);
        this.#callByHash.set(hash, call);
        break;
      }
      case DECISION_RECORD_TYPE: {
        const call = this.#callByHash.get(str('invocation'));
        if (call === undefined) break;
        if (call.decision !== undefined) {
          (call.extraDecisions ??= []).push(hash);
          break;
        }
        const approval = record.approval as Record<string, unknown> | null;
        const escalation = record.escalation as Record<string, unknown> | null;
        call.decision = {
          hash,
          index: e.index,
          decision: str('decision'),
          lock: typeof record.lock === 'string' ? record.lock : null,
          code: typeof record.code === 'string' ? record.code : null,
          reasons: Array.isArray(record.reasons) ? (record.reasons as string[]) : [],
          policies: Array.isArray(record.policies) ? (record.policies as string[]) : [],
          bundle: typeof record.bundle === 'string' ? record.bundle : null,
          approval:
            approval === null || typeof approval !== 'object'
              ? null
              : {
                  approver: String(approval.approver),
                  decision: String(approval.decision),
                  reason: String(approval.reason),
                },
          escalation:
            escalation === null || typeof escalation !== 'object'
              ? null
              : { id: String(escalation.id), reason: String(escalation.reason) },
          ...(Object.hasOwn(record, 'arguments') ? { arguments: record.arguments } : {}),
        };
        break;
      }
      case OUTCOME_RECORD_TYPE: {
        const call = this.#callByHash.get(str('invocation'));
        if (call === undefined) break;
        call.outcome = {
          hash,
          index: e.index,
          status: str('status'),
          error: typeof record.error === 'string' ? record.error : null,
          leases: Array.isArray(record.leases) ? (record.leases as string[]) : [],
        };
        break;
      }
      case TRACE_RECORD_TYPE:
        if (this.#keepRecords) this.traces.push({ ...record, hash });
        break;
      default:
        break;
    }
  }
}

/** Every entry of a stored log, in order, read in pages of {@link MAX_AUDIT_READ_ENTRIES}. */
export async function readLogEntries(repository: AuditLogRepository): Promise<LogEntryLine[]> {
  const size = await repository.size();
  const out: LogEntryLine[] = [];
  for (let from = 0; from < size; from += MAX_AUDIT_READ_ENTRIES) {
    const to = Math.min(size, from + MAX_AUDIT_READ_ENTRIES);
    for (const [k, e] of (await repository.readEntries(from, to)).entries())
      out.push({ index: from + k, record: e.record });
  }
  return out;
}
