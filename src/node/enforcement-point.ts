// The enforcement point: gate 2 (`enforceCall`) behind signed invocations, with every invocation
// and its countersigned decision in the audit log before the decision is returned
// (docs/spec/audit.md, "Enforcement point").
import { conflict, forbidden, invalid, unauthorized, unavailable } from '../core/internal.js';
import type { Identifier, VerifiedIdentity } from '../identity/index.js';
import type { ChainVerifier, DenySet } from '../credentials/index.js';
import type { Home } from './home.js';
import {
  enforceCall,
  recordApprovalAnswer,
  type EnforcementOptions,
  type GateDecision,
} from '../gates/index.js';
import type { ApprovalAnswer, ApprovalRecord } from '../gates/index.js';
import {
  jsonDigest,
  parseAuditRecord,
  verifyInvocation,
  type AgentHead,
  type AuditLog,
  type AuditTrailRepository,
  type DecisionApproval,
  type DecisionRecord,
  type EnforcerSigner,
  type InvocationRecord,
  type LeaseRecord,
  type OutcomeRecord,
  type RecordHash,
  type SignedRecord,
  type TraceRecord,
  type VerifiedInvocation,
  type VerifiedKeyCache,
  auditRecordHash,
  CHAIN_RECORD_TYPE,
  CHAIN_REF_INVOCATION_RECORD_TYPE,
  isInvocationRecord,
  type LoggedChain,
} from '../audit/index.js';

/** Options of {@link EnforcementPoint.open}. */
export interface EnforcementPointOptions {
  /** Gate 2 as `enforceCall` takes it (gate, bundles, approvals, budgets, authorities, …). */
  readonly enforcement: EnforcementOptions;
  /** Verifies (and caches) the invocations' chains: the gate's authorities and deny-set. */
  readonly chains: ChainVerifier;
  /** The authorities the chains' roots come from (the same as `chains` has). */
  readonly authorities: ReadonlyMap<Identifier, VerifiedIdentity>;
  /** The audit log the records go to (its writer: one enforcement point per log). */
  readonly log: AuditLog;
  /** Nonces, agent heads and escalations, in the same store as the log. */
  readonly trail: AuditTrailRepository;
  /** The enforcement point's own credential key, for its countersignatures. */
  readonly signer: EnforcerSigner;
  /** How far an invocation's `issuedAt` may be from the clock, either way (default 300 s). */
  readonly windowSeconds?: number;
  /** Whether a call's arguments go into its decision record (default: never, only the digest). */
  readonly discloseArguments?: (call: {
    readonly tool: string;
    readonly server: string | null;
  }) => boolean;
  /**
   * Called before each invocation is verified, to bring the deny-set the chains are checked
   * against up to the revocations committed so far (`DenySetWatcher.catchUp` for a long-running
   * process on one home): a call made after `mandate revoke` returned is refused, not allowed
   * until the next poll (and then fail `audit verify`, its revocation record being earlier).
   */
  readonly catchUp?: () => Promise<void>;
}

/** What {@link EnforcementPoint.submit} returns once both records are durable. */
export interface EnforcedInvocation {
  readonly invocation: VerifiedInvocation;
  readonly decision: GateDecision;
  readonly decisionRecord: SignedRecord<DecisionRecord>;
  readonly invocationIndex: number;
  readonly decisionIndex: number;
  /** The decision trace, when this decision used a person's answer to an escalation. */
  readonly trace?: { readonly record: SignedRecord<TraceRecord>; readonly index: number };
}

/** What happened when the tool ran, as {@link EnforcementPoint.recordOutcome} takes it. */
export type CallOutcome =
  | { readonly result: unknown; readonly leases?: readonly string[] }
  | { readonly error: string; readonly leases?: readonly string[] };

const DEFAULT_WINDOW_SECONDS = 300;
const REINDEX_BATCH = 10_000;
/** Persist heads at least every this many accepted invocations, even under steady load. */
const PERSIST_EVERY = 4096;
/** Forget expired nonces every this many accepted invocations. */
const PRUNE_EVERY = 4096;

interface Head {
  hash: RecordHash;
  /** -1 while its append is in flight. */
  index: number;
}

/**
 * Takes signed invocations, refuses the unsigned, mis-signed, stale (`issuedAt` outside the
 * window: `ERR_AUDIT_INVOCATION_STALE`), replayed (`ERR_AUDIT_NONCE_REPLAYED`) and those that do
 * not continue their agent's chain (`ERR_AUDIT_AGENT_CHAIN_MISMATCH`) — none of these is logged —
 * runs gate 2, and appends the invocation and the decision it countersigns to the audit log,
 * resolving only once both are durable. An agent's invocations are serialised at the head check,
 * so its chain stays linear under concurrency; the appends themselves share the log's group commit.
 *
 * The agent heads are kept in memory and persisted with the log size they are current to; on open,
 * the log entries past that size are read again, so a crash loses no head.
 */
export class EnforcementPoint {
  readonly #options: EnforcementPointOptions;
  readonly #window: number;
  readonly #heads = new Map<Identifier, Head>();
  readonly #dirty = new Map<Identifier, AgentHead>();
  readonly #serial = new Map<Identifier, Promise<unknown>>();
  /** Log size when each in-flight invocation's append was issued (its index is at least that). */
  readonly #inFlight = new Map<RecordHash, number>();
  /** The agents' credential keys, checked once per attestation (not per invocation). */
  readonly #keys: VerifiedKeyCache = new Map();
  /** Chains (by hex SHA-256) whose chain record is in the log (`true`) or being appended. */
  readonly #chains = new Map<string, true | Promise<void>>();
  #sinceLastPersist = 0;
  #sinceLastPrune = 0;
  #persisting: Promise<void> | undefined;

  private constructor(options: EnforcementPointOptions) {
    this.#options = options;
    this.#window = options.windowSeconds ?? DEFAULT_WINDOW_SECONDS;
    if (!Number.isSafeInteger(this.#window) || this.#window < 1 || this.#window > 86_400)
      throw invalid('ERR_ARGUMENT_INVALID', '`windowSeconds` must be 1 to 86400');
  }

  /** Opens the enforcement point over its log: brings the agent heads up to the log's size. */
  static async open(options: EnforcementPointOptions): Promise<EnforcementPoint> {
    const point = new EnforcementPoint(options);
    await point.#reindex();
    return point;
  }

  async #reindex(): Promise<void> {
    const { log, trail } = this.#options;
    const size = log.size;
    let from = await trail.indexedSize();
    if (from > size) from = size;
    const heads = new Map<Identifier, AgentHead>();
    const chains: LoggedChain[] = [];
    while (from < size) {
      const to = Math.min(size, from + REINDEX_BATCH);
      const entries = await log.readEntries(from, to);
      entries.forEach((entry, i) => {
        let record;
        try {
          record = parseAuditRecord(entry.record);
        } catch {
          return; // other record types (written by other parts) carry no agent head
        }
        if (isInvocationRecord(record))
          heads.set(record.agent, {
            agent: record.agent,
            hash: auditRecordHash(entry.record),
            index: from + i,
          });
        else if (record.type === CHAIN_RECORD_TYPE)
          chains.push({ hash: record.chainHash, index: from + i });
      });
      from = to;
    }
    // Chain records first: the indexed size must not pass one whose position is not stored.
    if (chains.length > 0) await trail.putLoggedChains(chains);
    await trail.putHeads([...heads.values()], size);
    for (const h of heads.values()) this.#heads.set(h.agent, { hash: h.hash, index: h.index });
  }

  /** The hash of the agent's last logged (or in-flight) invocation; `null` before its first. */
  async head(agent: Identifier): Promise<RecordHash | null> {
    const known = this.#heads.get(agent);
    if (known !== undefined) return known.hash;
    const stored = await this.#options.trail.head(agent);
    if (stored === undefined) return null;
    // Another task may have moved it meanwhile; the in-memory head wins.
    if (!this.#heads.has(agent)) this.#heads.set(agent, { hash: stored.hash, index: stored.index });
    return this.#heads.get(agent)!.hash;
  }

  /** Runs `work` after every earlier `work` of the same agent. */
  #exclusive<T>(agent: Identifier, work: () => Promise<T>): Promise<T> {
    const before = this.#serial.get(agent) ?? Promise.resolve();
    const run = before.then(work, work);
    const tail = run.catch(() => undefined);
    this.#serial.set(agent, tail);
    void tail.then(() => {
      if (this.#serial.get(agent) === tail) this.#serial.delete(agent);
    });
    return run;
  }

  /**
   * Verifies a signed invocation and its arguments, decides it (gate 2), and logs the invocation
   * and the countersigned decision; resolves once both are durable. Refusals throw and log nothing:
   * record and chain errors as verifyInvocation's, `ERR_AUDIT_RECORD_MISMATCH` (the arguments are
   * not those signed), `ERR_AUDIT_INVOCATION_STALE`, `ERR_AUDIT_AGENT_CHAIN_MISMATCH`,
   * `ERR_AUDIT_NONCE_REPLAYED`. Execute the tool only on `decision.decision === 'allow'`.
   *
   * `chain`: the chain the agent presents (its channel's, a CLI flag), required for an invocation
   * that names its chain by hash (`ERR_AUDIT_CHAIN_UNKNOWN` without it, `ERR_AUDIT_CHAIN_MISMATCH`
   * for another chain); the first such invocation of a chain logs a chain record before it.
   */
  async submit(
    bytes: Uint8Array,
    args: unknown,
    nowSeconds: number,
    chain?: Uint8Array,
  ): Promise<EnforcedInvocation> {
    const o = this.#options;
    await o.catchUp?.();
    // A revoked enforcement point countersigns nothing: its records would fail `audit verify`
    // (found by an outside attack: `gate call --as` a revoked identity logged a decision).
    if (o.enforcement.denySet?.isRevoked(o.signer.identifier) === true)
      throw forbidden(
        'ERR_REVOKED',
        `the enforcement point \`${o.signer.identifier}\` is revoked: it countersigns no call`,
      );
    const invocation = verifyInvocation(bytes, {
      authorities: o.authorities,
      chains: o.chains,
      nowSeconds,
      keys: this.#keys,
      ...(chain === undefined ? {} : { chain }),
    });
    const record = invocation.record;
    if (Math.abs(nowSeconds - record.issuedAt) > this.#window)
      throw unauthorized(
        'ERR_AUDIT_INVOCATION_STALE',
        `the invocation was signed at ${record.issuedAt}, more than ${this.#window} s from now (${nowSeconds})`,
      );
    // The offline verifier checks the chain and the agent's key at `issuedAt`: the gate checks
    // them then too (as well as now, above), so a record it logs is one the verifier accepts.
    if (record.issuedAt !== nowSeconds) {
      o.chains.verify(invocation.chainBytes, {
        nowSeconds: record.issuedAt,
        presenter: record.agent,
        hash: invocation.chainHash,
      });
      const key = invocation.signer.issuerKey;
      if (!(key.createdAt <= record.issuedAt + 60 && record.issuedAt < key.expiresAt))
        throw unauthorized(
          'ERR_AUDIT_INVOCATION_STALE',
          `the agent's credential key was not valid at the invocation's time (${record.issuedAt})`,
        );
    }
    if (jsonDigest(args) !== record.argumentsDigest)
      throw invalid('ERR_AUDIT_RECORD_MISMATCH', 'the arguments are not those the agent signed');
    const { appended } = await this.#exclusive(record.agent, async () => {
      const head = await this.head(record.agent);
      if (record.previous !== head)
        throw conflict(
          'ERR_AUDIT_AGENT_CHAIN_MISMATCH',
          `the invocation follows \`${record.previous ?? 'nothing'}\`, the agent's last is \`${head ?? 'nothing'}\``,
        );
      const fresh = await o.trail.claimNonce(
        record.agent,
        record.nonce,
        record.issuedAt + this.#window + 1,
        nowSeconds,
      );
      if (!fresh)
        throw conflict(
          'ERR_AUDIT_NONCE_REPLAYED',
          `nonce \`${record.nonce}\` of \`${record.agent}\` was already used`,
        );
      if (++this.#sinceLastPrune >= PRUNE_EVERY) {
        this.#sinceLastPrune = 0;
        // Housekeeping off the answer's path; a failure leaves expired rows for the next round.
        void o.trail.pruneNonces(nowSeconds).catch(() => undefined);
      }
      // The chain record goes in before the first invocation naming the chain (a refusal above
      // logs nothing; a failure here logs no invocation).
      if (record.type === CHAIN_REF_INVOCATION_RECORD_TYPE)
        await this.#logChain(record.chainHash, invocation.chainBytes, nowSeconds);
      const previous = this.#heads.get(record.agent);
      this.#heads.set(record.agent, { hash: invocation.hash, index: -1 });
      this.#inFlight.set(invocation.hash, o.log.size);
      // Issued inside the agent's turn: its invocations reach the log in chain order.
      const appending = o.log.append(bytes).then(
        (index) => {
          const h = this.#heads.get(record.agent);
          if (h?.hash === invocation.hash) h.index = index;
          this.#dirty.set(record.agent, { agent: record.agent, hash: invocation.hash, index });
          return index;
        },
        (error: unknown) => {
          if (this.#heads.get(record.agent)?.hash === invocation.hash) {
            if (previous === undefined) this.#heads.delete(record.agent);
            else this.#heads.set(record.agent, previous);
          }
          throw error;
        },
      );
      appending
        .catch(() => undefined)
        .finally(() => {
          this.#inFlight.delete(invocation.hash);
          this.#afterAppend();
        });
      return { appended: appending };
    });
    try {
      return await this.#decide(invocation, args, nowSeconds, appended);
    } finally {
      await appended.catch(() => undefined);
    }
  }

  async #decide(
    invocation: VerifiedInvocation,
    args: unknown,
    nowSeconds: number,
    appended: Promise<number>,
  ): Promise<EnforcedInvocation> {
    const o = this.#options;
    const record = invocation.record;
    const call = {
      tool: record.tool,
      ...(record.server === null ? {} : { server: record.server }),
      args,
    };
    const decision = await enforceCall(o.enforcement, invocation.chain, call, nowSeconds);
    const callKey = `${record.server ?? ''}/${record.tool}`;
    // The person's answer this decision used: an approval consumed (allow), or a denial.
    let used: ApprovalRecord | undefined;
    if (decision.decision === 'allow' && decision.approval?.id !== undefined)
      used = await o.enforcement.approvals?.get(decision.approval.id);
    else if (decision.code === 'ERR_APPROVAL_DENIED') {
      const escalated = await o.trail.findEscalation(record.agent, callKey, record.argumentsDigest);
      if (escalated !== undefined) used = await o.enforcement.approvals?.get(escalated.approval);
    }
    const disclose = o.discloseArguments?.({ tool: record.tool, server: record.server }) === true;
    const approval = used === undefined ? null : approvalOf(used, disclose);
    const escalation =
      decision.decision === 'approval_required' && decision.approval?.id !== undefined
        ? {
            id: decision.approval.id,
            reason: decision.approval.reason,
            policies: decision.approval.policies,
          }
        : null;
    const decisionRecord = await o.signer.signDecision({
      invocation: invocation.hash,
      agent: record.agent,
      decision: decision.decision,
      lock: decision.lock,
      code: decision.code ?? null,
      reasons: decision.reasons,
      policies: decision.policies,
      bundle: decision.bundle,
      escalation,
      approval,
      ...(disclose ? { arguments: args } : {}),
      decidedAt: nowSeconds,
    });
    const decisionAppended = o.log.append(decisionRecord.bytes);
    let traceAppended: Promise<{ record: SignedRecord<TraceRecord>; index: number }> | undefined;
    if (used?.answer !== undefined && approval !== null) {
      traceAppended = this.#trace(invocation, used, nowSeconds);
    }
    // Every append is awaited before any failure is thrown: one that fails after another already
    // failed must not go unhandled (it would end the process with a stack trace).
    await Promise.allSettled([
      appended,
      decisionAppended,
      ...(traceAppended ? [traceAppended] : []),
    ]);
    const invocationIndex = await appended;
    const decisionIndex = await decisionAppended;
    if (escalation !== null)
      await o.trail.putEscalation({
        approval: escalation.id,
        agent: record.agent,
        call: callKey,
        argumentsDigest: record.argumentsDigest,
        invocation: invocation.hash,
        index: invocationIndex,
        createdAt: nowSeconds,
      });
    const trace = traceAppended === undefined ? undefined : await traceAppended;
    return {
      invocation,
      decision,
      decisionRecord,
      invocationIndex,
      decisionIndex,
      ...(trace === undefined ? {} : { trace }),
    };
  }

  async #trace(
    resolvedBy: VerifiedInvocation,
    used: ApprovalRecord,
    nowSeconds: number,
  ): Promise<{ record: SignedRecord<TraceRecord>; index: number }> {
    const o = this.#options;
    const answer = used.answer!;
    const escalated = await o.trail.escalation(used.id);
    let report: InvocationRecord['report'] | null = null;
    let escalationHash = resolvedBy.hash;
    if (escalated !== undefined) {
      escalationHash = escalated.invocation;
      const [entry] = await o.log.readEntries(escalated.index, escalated.index + 1);
      const original = entry === undefined ? undefined : parseAuditRecord(entry.record);
      if (original !== undefined && isInvocationRecord(original)) report = original.report ?? null;
    }
    const record = await o.signer.signTrace({
      escalation: escalationHash,
      resolvedBy: resolvedBy.hash,
      agent: resolvedBy.agent,
      chainHash: resolvedBy.chainHash,
      approval: used.id,
      policies: used.policies,
      report: report ?? null,
      resolution: {
        decision: answer.decision,
        approver: answer.approver,
        reason: answer.reason,
        answeredAt: answer.answeredAt,
      },
      recordedAt: nowSeconds,
    });
    const index = await o.log.append(record.bytes);
    return { record, index };
  }

  /**
   * Logs what happened when an allowed call ran: the result's digest (JCS + SHA-256) or an error
   * code, and the ids of the leases it used. Resolves once durable.
   */
  async recordOutcome(
    invocation: VerifiedInvocation,
    outcome: CallOutcome,
    nowSeconds: number,
  ): Promise<{ readonly record: SignedRecord<OutcomeRecord>; readonly index: number }> {
    const ok = 'result' in outcome;
    const record = await this.#options.signer.signOutcome({
      invocation: invocation.hash,
      agent: invocation.agent,
      status: ok ? 'ok' : 'error',
      resultDigest: ok ? jsonDigest(outcome.result) : null,
      error: ok ? null : outcome.error,
      leases: outcome.leases ?? [],
      completedAt: nowSeconds,
    });
    return { record, index: await this.#options.log.append(record.bytes) };
  }

  /** An approval request of this point's gate (undefined without one, or without an approval store). */
  approvalRequest(id: string): Promise<ApprovalRecord | undefined> {
    return this.#options.enforcement.approvals?.get(id) ?? Promise.resolve(undefined);
  }

  /**
   * Records a person's answer to one of this point's approval requests that was signed elsewhere
   * (MCP elicitation through the agent's client): checked as `recordApprovalAnswer` does, against
   * the same authorities and deny-set as an answer given out of band, before it is stored. The
   * agent then calls again; the answer is verified once more when it is used.
   */
  async recordApprovalAnswer(
    id: string,
    answer: ApprovalAnswer,
    nowSeconds: number,
  ): Promise<ApprovalRecord> {
    const e = this.#options.enforcement;
    if (e.approvals === undefined || e.authorities === undefined)
      throw unavailable(
        'ERR_GATE_APPROVAL_UNAVAILABLE',
        'this enforcement point records no approvals or knows no authorities',
      );
    return recordApprovalAnswer(e.approvals, id, answer, nowSeconds, {
      authorities: e.authorities,
      ...(e.denySet === undefined ? {} : { denySet: e.denySet }),
    });
  }

  /** Logs a lease event by reference (ids and names, never a secret). Resolves once durable. */
  async recordLease(
    lease: Omit<LeaseRecord, 'type' | 'signature' | 'enforcer' | 'attestation'>,
  ): Promise<{ readonly record: SignedRecord<LeaseRecord>; readonly index: number }> {
    const record = await this.#options.signer.signLease(lease);
    return { record, index: await this.#options.log.append(record.bytes) };
  }

  /**
   * Makes sure the log holds a chain record for the chain `hash` names: known, stored (an earlier
   * run or process), or signed and appended now — once, however many calls ask at a time. Its
   * position is stored once durable; until then it counts as in flight, so the stored indexed
   * size stays below it and a crash before the store rereads it on open.
   */
  #logChain(hash: string, chain: Uint8Array, nowSeconds: number): Promise<void> {
    const known = this.#chains.get(hash);
    if (known === true) return Promise.resolve();
    if (known !== undefined) return known;
    const o = this.#options;
    const logging = (async () => {
      if ((await o.trail.loggedChain(hash)) !== undefined) return;
      const signed = await o.signer.signChain(chain, nowSeconds);
      this.#inFlight.set(signed.hash, o.log.size);
      let index: number;
      try {
        index = await o.log.append(signed.bytes);
      } catch (error) {
        this.#inFlight.delete(signed.hash);
        throw error;
      }
      // Not stored: it stays in flight (the heads' indexed size stays below it; reopening reads
      // it again), and the invocation goes ahead — the record is in the log.
      await o.trail.putLoggedChains([{ hash, index }]).then(
        () => this.#inFlight.delete(signed.hash),
        () => undefined,
      );
    })();
    this.#chains.set(hash, logging);
    logging.then(
      () => this.#chains.set(hash, true),
      () => {
        if (this.#chains.get(hash) === logging) this.#chains.delete(hash);
      },
    );
    return logging;
  }

  #afterAppend(): void {
    this.#sinceLastPersist++;
    if (this.#inFlight.size === 0 || this.#sinceLastPersist >= PERSIST_EVERY) void this.#persist();
  }

  /** Stores the heads changed since the last call with the log size they are current to. */
  #persist(): Promise<void> {
    if (this.#persisting !== undefined) return this.#persisting;
    if (this.#dirty.size === 0) return Promise.resolve();
    this.#sinceLastPersist = 0;
    // Every invocation below the smallest in-flight issue size has resolved, so its head is here.
    let current = this.#options.log.size;
    for (const issuedAt of this.#inFlight.values()) current = Math.min(current, issuedAt);
    const heads = [...this.#dirty.values()];
    this.#dirty.clear();
    this.#persisting = this.#options.trail
      .putHeads(heads, current)
      .catch(() => {
        // Not persisted: put them back; the next persist (or the reindex on open) covers them.
        for (const h of heads) {
          const now = this.#dirty.get(h.agent);
          if (now === undefined || now.index < h.index) this.#dirty.set(h.agent, h);
        }
      })
      .finally(() => {
        this.#persisting = undefined;
      });
    return this.#persisting;
  }

  /** Waits for the in-flight appends and stores the agent heads. */
  async flush(): Promise<void> {
    await this.#options.log.flush();
    while (this.#persisting !== undefined) await this.#persisting;
    await this.#persist();
  }
}

/** The approval a decision carries: the arguments shown as their digest, their text only if disclosed. */
function approvalOf(used: ApprovalRecord, disclose: boolean): DecisionApproval | null {
  const a = used.answer;
  if (a === undefined) return null;
  return {
    id: used.id,
    approver: a.approver,
    decision: a.decision,
    reason: a.reason,
    answeredAt: a.answeredAt,
    shown: {
      tool: used.tool,
      argumentsDigest: used.argumentsDigest,
      ...(disclose ? { arguments: used.arguments } : {}),
      reason: used.reason,
      policies: used.policies,
      bundleHash: used.bundleHash,
    },
    signed: a.signed,
    signatureKeyType: a.signatureKeyType,
    signature: a.signature,
    attestation: a.attestation,
    approverChain: a.approverChain,
  };
}

/**
 * An enforcement point over a home: gate 2 with the home's approval and budget stores, the home's
 * audit trail, countersigned by `signer` — what the gateway, `gate call` and the demo share; the
 * rest of {@link EnforcementPointOptions} as given.
 */
export function openHomeEnforcementPoint(
  home: Home,
  options: Omit<EnforcementPointOptions, 'enforcement' | 'trail'> & {
    readonly gate: EnforcementOptions['gate'];
    readonly bundles: EnforcementOptions['bundles'];
    readonly denySet: DenySet;
  },
): Promise<EnforcementPoint> {
  const { gate, bundles, denySet, ...rest } = options;
  return EnforcementPoint.open({
    ...rest,
    enforcement: {
      gate,
      bundles,
      approvals: home.store.approvals,
      budgets: home.store.budgets,
      denySet,
      authorities: options.authorities,
    },
    trail: home.store.auditTrail,
  });
}
