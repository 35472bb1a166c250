/**
 * The audit trail as OpenTelemetry GenAI spans (semantic conventions for agent spans, at
 * Development stability: `invoke_agent {gen_ai.agent.name}` and `execute_tool {gen_ai.tool.name}`),
 * with Mandate's own attributes under `mandate.*` for what the conventions do not name (the
 * chain, the decision, the policies, the bundle, the record hashes that join a span to the log).
 *
 * Only `@opentelemetry/api` is used here: spans go to the tracer given, or to the global tracer
 * provider, which is a no-op unless the application registered an SDK — so tracing is off unless
 * configured. The spans are derived from records, after the fact (their times are the records'),
 * and never carry arguments, results or secrets: digests and ids only.
 */
import {
  CHAIN_RECORD_TYPE,
  DECISION_RECORD_TYPE,
  INVOCATION_RECORD_TYPE,
  OUTCOME_RECORD_TYPE,
  isInvocationRecord,
} from './records.js';
import {
  context,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Tracer,
} from '@opentelemetry/api';
import { delegationPath } from './chain-path.js';
import { auditRecordHash, blobBytes, chainHashOf, parseAuditRecord } from './record-codec.js';
import type { DecisionRecord, InvocationRecord, OutcomeRecord } from './records.js';
import type { LogEntryLine } from './verify-log.js';

/**
 * GenAI attribute names, kept here: the conventions moved to `semantic-conventions-genai`, which
 * has no npm package, and `@opentelemetry/semantic-conventions` marks its copies as moved.
 */
export const GenAiAttribute = {
  operationName: 'gen_ai.operation.name',
  agentId: 'gen_ai.agent.id',
  agentName: 'gen_ai.agent.name',
  toolName: 'gen_ai.tool.name',
  toolCallId: 'gen_ai.tool.call.id',
  toolType: 'gen_ai.tool.type',
  errorType: 'error.type',
} as const;

/** Mandate's span attributes. */
export const MandateAttribute = {
  /** Hex SHA-256 of the delegation chain's bytes. */
  chainHash: 'mandate.chain.hash',
  /** The chain as a path of identifiers: the root credential's subject, then each link's. */
  chainPath: 'mandate.chain.path',
  /** The invocation record's hash (also `gen_ai.tool.call.id`). */
  invocation: 'mandate.record.invocation',
  /** The decision record's hash. */
  decisionRecord: 'mandate.record.decision',
  /** The log index of the invocation. */
  logIndex: 'mandate.log.index',
  decision: 'mandate.decision',
  /** The lock that refused or waits (`chain`, `bundle`, `approval`, …). */
  lock: 'mandate.decision.lock',
  code: 'mandate.decision.code',
  reasons: 'mandate.decision.reasons',
  policies: 'mandate.policy.ids',
  bundleHash: 'mandate.bundle.hash',
  approver: 'mandate.approval.approver',
  argumentsDigest: 'mandate.arguments.digest',
  server: 'mandate.tool.server',
  outcome: 'mandate.outcome.status',
  leases: 'mandate.lease.ids',
} as const;

/** Operation names of the spans. */
export const GenAiOperation = { invokeAgent: 'invoke_agent', executeTool: 'execute_tool' } as const;

/** Options of {@link emitTrailSpans}. */
export interface TrailSpansOptions {
  /** Where spans go; default the global provider's tracer `mandate` (a no-op unless configured). */
  readonly tracer?: Tracer;
}

/** What {@link emitTrailSpans} emitted. */
export interface TrailSpansResult {
  readonly agentSpans: number;
  readonly toolSpans: number;
  /** Entries that are not invocation, decision or outcome records (or do not parse): no span. */
  readonly skipped: number;
}

interface Call {
  readonly index: number;
  readonly hash: string;
  readonly invocation: InvocationRecord;
  readonly chainHash: string;
  /** The chain (from the record, or from the log's chain record; none if the log lacks it). */
  readonly chainBytes: Uint8Array | undefined;
  decision?: { readonly hash: string; readonly record: DecisionRecord };
  outcome?: OutcomeRecord;
}

const seconds = (t: number): [number, number] => [t, 0];

/**
 * Emits one `invoke_agent` span per agent and chain (the agent acting under one delegation), and
 * under it one `execute_tool` span per invocation, from the invocation's time to its outcome's
 * (or its decision's). A denied call's span has status ERROR and `error.type` the decision's
 * code (or `deny`); a failed call's, the outcome's error; a call waiting for a person is not an
 * error (`mandate.decision` says `approval_required`). Entries are taken in log order; verify the trail
 * first (`verifyTrail`): spans do not check signatures.
 */
export function emitTrailSpans(
  entries: readonly LogEntryLine[],
  options: TrailSpansOptions = {},
): TrailSpansResult {
  const tracer = options.tracer ?? trace.getTracer('mandate');
  const calls: Call[] = [];
  const byHash = new Map<string, Call>();
  // The chains the log's chain records hold, by hash, for invocations that name theirs by hash.
  const chainTexts = new Map<string, string>();
  let skipped = 0;
  for (const entry of entries) {
    let record;
    try {
      record = parseAuditRecord(entry.record);
    } catch {
      skipped++;
      continue;
    }
    const hash = entry.id ?? auditRecordHash(entry.record);
    if (record.type === CHAIN_RECORD_TYPE) {
      if (!chainTexts.has(record.chainHash)) chainTexts.set(record.chainHash, record.chain);
      skipped++; // no span of its own: its hash and path go on its invocations' spans
    } else if (isInvocationRecord(record)) {
      const chain =
        record.type === INVOCATION_RECORD_TYPE ? record.chain : chainTexts.get(record.chainHash);
      const chainBytes = chain === undefined ? undefined : blobBytes(chain, 'chain');
      const chainHash =
        record.type === INVOCATION_RECORD_TYPE ? chainHashOf(chainBytes!) : record.chainHash;
      const call: Call = { index: entry.index, hash, invocation: record, chainHash, chainBytes };
      calls.push(call);
      byHash.set(hash, call);
    } else if (record.type === DECISION_RECORD_TYPE) {
      const call = byHash.get(record.invocation);
      if (call === undefined) skipped++;
      else call.decision = { hash, record };
    } else if (record.type === OUTCOME_RECORD_TYPE) {
      const call = byHash.get(record.invocation);
      if (call === undefined) skipped++;
      else call.outcome = record;
    } else skipped++;
  }
  // One agent span per (agent, chain), over its calls in log order.
  const groups = new Map<string, Call[]>();
  for (const call of calls) {
    const key = `${call.invocation.agent} ${call.chainHash}`;
    const group = groups.get(key);
    if (group === undefined) groups.set(key, [call]);
    else group.push(call);
  }
  let toolSpans = 0;
  for (const group of groups.values()) {
    const first = group[0]!.invocation;
    const { chainHash, chainBytes } = group[0]!;
    const path = chainBytes === undefined ? undefined : delegationPath(chainBytes);
    const end = Math.max(...group.map(endOf));
    const agentAttributes: Attributes = {
      [GenAiAttribute.operationName]: GenAiOperation.invokeAgent,
      [GenAiAttribute.agentId]: first.agent,
      [GenAiAttribute.agentName]: first.agent,
      [MandateAttribute.chainHash]: chainHash,
      ...(path === undefined ? {} : { [MandateAttribute.chainPath]: path }),
    };
    const agentSpan = tracer.startSpan(
      `${GenAiOperation.invokeAgent} ${first.agent}`,
      {
        kind: SpanKind.INTERNAL,
        startTime: seconds(Math.min(...group.map((c) => c.invocation.issuedAt))),
        attributes: agentAttributes,
      },
      context.active(),
    );
    const parent = trace.setSpan(context.active(), agentSpan);
    for (const call of group) {
      const inv = call.invocation;
      const d = call.decision?.record;
      const attributes: Attributes = {
        [GenAiAttribute.operationName]: GenAiOperation.executeTool,
        [GenAiAttribute.toolName]: inv.tool,
        [GenAiAttribute.toolCallId]: call.hash,
        [GenAiAttribute.toolType]: 'function',
        [GenAiAttribute.agentId]: inv.agent,
        [MandateAttribute.chainHash]: chainHash,
        [MandateAttribute.invocation]: call.hash,
        [MandateAttribute.logIndex]: call.index,
        [MandateAttribute.argumentsDigest]: inv.argumentsDigest,
        ...(inv.server === null ? {} : { [MandateAttribute.server]: inv.server }),
      };
      if (d !== undefined) {
        attributes[MandateAttribute.decisionRecord] = call.decision!.hash;
        attributes[MandateAttribute.decision] = d.decision;
        attributes[MandateAttribute.policies] = [...d.policies];
        attributes[MandateAttribute.reasons] = [...d.reasons];
        if (d.lock !== null) attributes[MandateAttribute.lock] = d.lock;
        if (d.code !== null) attributes[MandateAttribute.code] = d.code;
        if (d.bundle !== null) attributes[MandateAttribute.bundleHash] = d.bundle;
        if (d.approval !== null) attributes[MandateAttribute.approver] = d.approval.approver;
      }
      const o = call.outcome;
      if (o !== undefined) {
        attributes[MandateAttribute.outcome] = o.status;
        if (o.leases.length > 0) attributes[MandateAttribute.leases] = [...o.leases];
      }
      const span = tracer.startSpan(
        `${GenAiOperation.executeTool} ${inv.tool}`,
        { kind: SpanKind.INTERNAL, startTime: seconds(inv.issuedAt), attributes },
        parent,
      );
      // A refusal or a failed call is an error; a call waiting for a person is not (yet).
      const error =
        d?.decision === 'deny'
          ? (d.code ?? d.decision)
          : o?.status === 'error'
            ? (o.error ?? 'error')
            : undefined;
      if (error !== undefined) {
        span.setAttribute(GenAiAttribute.errorType, error);
        span.setStatus({
          code: SpanStatusCode.ERROR,
          message: d?.decision === 'deny' ? `deny: ${d.reasons.join('; ')}` : error,
        });
      }
      span.end(seconds(endOf(call)));
      toolSpans++;
    }
    agentSpan.end(seconds(end));
  }
  return { agentSpans: groups.size, toolSpans, skipped };
}

function endOf(call: Call): number {
  return call.outcome?.completedAt ?? call.decision?.record.decidedAt ?? call.invocation.issuedAt;
}
