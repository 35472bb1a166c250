// Gate 2 with its stateful locks (docs/spec/policy.md §5): approvals, rate limits, budgets.
import { isMandateError } from '../core/index.js';
import type { DenySet, VerifiedChain } from '../credentials/index.js';
import type { Identifier, VerifiedIdentity } from '../identity/index.js';
import {
  argumentsDigest,
  newApprovalId,
  verifyApprovalAnswer,
  type ApprovalBinding,
  type ApprovalRecord,
  type ApprovalRepository,
} from './approvals.js';
import { budgetsOf, type BudgetDeclaration, type BudgetRepository } from './budgets.js';
import type { Gate, GateDecision, GateLock, ToolCall } from './gate.js';
import { agentViewOf } from './request.js';
import type { BundleSource } from './types.js';

/** Options of {@link enforceCall}. */
export interface EnforcementOptions {
  readonly gate: Gate;
  /** The same source the gate reads: an approval binds the bundle version. */
  readonly bundles: BundleSource;
  /** Without it, `approval_required` stays a refusal that cannot be answered. */
  readonly approvals?: ApprovalRepository;
  /** Counters for budgets and rate limits; without it a declared budget denies (fail closed). */
  readonly budgets?: BudgetRepository;
  /** Calls per minute per agent (the chain's actor); none: unlimited. */
  readonly callsPerMinute?: number;
  /** How long an approval request stays answerable and, once approved, usable (default 900 s). */
  readonly approvalTtlSeconds?: number;
  /**
   * Most pending, unexpired approval requests one agent may have (default 20): past it a call that
   * needs a person is denied (`ERR_GATE_APPROVALS_PENDING_LIMIT`), so an agent cannot flood the
   * humans' queue.
   */
  readonly maxPendingApprovals?: number;
  /** Checked for the approver when an approval is used. */
  readonly denySet?: DenySet;
  /**
   * The authorities whose `human=true` an approval's answer must carry, checked again when the
   * approval is used (without them an approved call is denied: `ERR_GATE_APPROVAL_UNAVAILABLE`).
   */
  readonly authorities?: ReadonlyMap<Identifier, VerifiedIdentity>;
}

const DEFAULT_APPROVAL_TTL_SECONDS = 900;
const DEFAULT_MAX_PENDING_APPROVALS = 20;

function denied(
  lock: GateLock,
  code: GateDecision['code'] & string,
  reason: string,
  from: GateDecision,
): GateDecision {
  return {
    decision: 'deny',
    lock,
    code,
    reasons: [reason],
    policies: from.policies,
    bundle: from.bundle,
  };
}

/**
 * Gate 2 in full, for one call about to execute: {@link Gate.decide}, then — for an allow — the
 * rate limit and the cumulative budgets; for `approval_required`, the approval request bound to
 * this very call: recorded (or found) and returned with its id, or, once a human approved it,
 * verified, the call re-decided with `context.approval.granted`, and the approval consumed
 * (single use). Any storage error denies. Execute the tool only on `allow`.
 */
export async function enforceCall(
  options: EnforcementOptions,
  chain: VerifiedChain,
  call: ToolCall,
  nowSeconds: number,
): Promise<GateDecision> {
  // Which stored lock was being consulted when something threw: the deny names it.
  const stage: { lock: GateLock } = { lock: 'approval' };
  try {
    return await enforce(options, chain, call, nowSeconds, stage);
  } catch (error) {
    return {
      decision: 'deny',
      lock: stage.lock,
      code: isMandateError(error) ? error.code : 'ERR_GATE_STORE_FAILED',
      reasons: [isMandateError(error) ? error.message : 'the gate could not reach its store'],
      policies: [],
      bundle: null,
    };
  }
}

async function enforce(
  options: EnforcementOptions,
  chain: VerifiedChain,
  call: ToolCall,
  nowSeconds: number,
  stage: { lock: GateLock },
): Promise<GateDecision> {
  const first = options.gate.decide(chain, call, { nowSeconds });
  if (first.decision === 'deny') return first;
  if (first.decision === 'allow')
    return spendAndCount(options, chain, call, nowSeconds, first, undefined, stage);
  const approvals = options.approvals;
  if (approvals === undefined)
    return denied(
      'approval',
      'ERR_GATE_APPROVAL_UNAVAILABLE',
      'this call needs a human approval, and this gate records none',
      first,
    );
  const bundle = options.bundles.current();
  if (bundle === undefined || bundle.hash !== first.bundle || bundle.catalog === undefined)
    return denied('bundle', 'ERR_GATE_NO_BUNDLE', 'the bundle changed while deciding', first);
  const tool = bundle.catalog.get(call.tool, call.server)!;
  const { text, digest } = argumentsDigest(call.args);
  const binding: ApprovalBinding = {
    agent: chain.actor,
    chainHash: agentViewOf(chain).chainHash,
    tool: tool.uid.id,
    argumentsDigest: digest,
    bundleVersion: bundle.version,
  };
  const latest = await approvals.findOpen(binding, nowSeconds);
  if (latest === undefined) {
    const cap = options.maxPendingApprovals ?? DEFAULT_MAX_PENDING_APPROVALS;
    if ((await approvals.countPending(chain.actor, nowSeconds)) >= cap)
      return denied(
        'approval',
        'ERR_GATE_APPROVALS_PENDING_LIMIT',
        `this agent already has ${cap} approval requests waiting for a person`,
        first,
      );
    const record: ApprovalRecord = {
      ...binding,
      id: newApprovalId(),
      arguments: text,
      bundleHash: bundle.hash,
      reason: first.approval!.reason,
      policies: first.approval!.policies,
      createdAt: nowSeconds,
      expiresAt: nowSeconds + (options.approvalTtlSeconds ?? DEFAULT_APPROVAL_TTL_SECONDS),
      status: 'pending',
    };
    await approvals.create(record);
    return { ...first, approval: { ...first.approval!, id: record.id } };
  }
  if (latest.status === 'pending')
    return { ...first, approval: { ...first.approval!, id: latest.id } };
  if (latest.status === 'denied')
    return denied(
      'approval',
      'ERR_APPROVAL_DENIED',
      `\`${latest.answer?.approver ?? 'a human'}\` denied this call: ${latest.answer?.reason ?? ''}`,
      first,
    );
  // Approved: the answer must verify (signed by the human, for exactly this binding) before it counts.
  if (options.authorities === undefined)
    return denied(
      'approval',
      'ERR_GATE_APPROVAL_UNAVAILABLE',
      'this gate cannot check who approved: it has no authorities',
      first,
    );
  const answer = verifyApprovalAnswer(latest, nowSeconds, {
    authorities: options.authorities,
    ...(options.denySet === undefined ? {} : { denySet: options.denySet }),
  });
  const second = options.gate.decide(chain, call, {
    nowSeconds,
    approval: { granted: true, approvers: [answer.approver] },
  });
  if (second.decision !== 'allow') return second;
  return spendAndCount(options, chain, call, nowSeconds, second, latest, stage);
}

async function spendAndCount(
  options: EnforcementOptions,
  chain: VerifiedChain,
  call: ToolCall,
  nowSeconds: number,
  decision: GateDecision,
  approval: ApprovalRecord | undefined,
  stage: { lock: GateLock },
): Promise<GateDecision> {
  stage.lock = 'budget';
  const budgets = options.budgets;
  const declared = budgetsOf(chain).filter((b) => b.tool === call.tool);
  stage.lock = 'rate';
  if (options.callsPerMinute !== undefined) {
    if (budgets === undefined)
      return denied(
        'rate',
        'ERR_GATE_BUDGET_UNAVAILABLE',
        'a rate limit is set, and this gate has no counters',
        decision,
      );
    const counted = await budgets.countCall(
      `rate:${chain.actor}`,
      Math.floor(nowSeconds / 60),
      options.callsPerMinute,
    );
    if (!counted.ok)
      return denied(
        'rate',
        'ERR_GATE_RATE_LIMITED',
        `agent \`${chain.actor}\` made ${counted.total} calls this minute, at most ${options.callsPerMinute} allowed`,
        decision,
      );
  }
  stage.lock = 'budget';
  const spent: BudgetDeclaration[] = [];
  const amounts: number[] = [];
  // Each spent budget is refunded at most once (the list shrinks as it goes), however often called.
  const refundAll = async (): Promise<void> => {
    while (spent.length > 0) {
      await budgets!.refund(spent.at(-1)!.key, amounts.at(-1)!);
      spent.pop();
      amounts.pop();
    }
  };
  try {
    return await spendAll();
  } catch (error) {
    // A store error after some budgets were spent: give them back before the call is denied (a
    // deny consumes nothing). A refund that fails too leaves the original error to report.
    await refundAll().catch(() => undefined);
    throw error;
  }

  async function spendAll(): Promise<GateDecision> {
    for (const budget of declared) {
      if (budgets === undefined)
        return denied(
          'budget',
          'ERR_GATE_BUDGET_UNAVAILABLE',
          'a budget is declared, and this gate has no counters',
          decision,
        );
      const value = (call.args as Record<string, unknown>)[budget.argument];
      if (!Number.isSafeInteger(value) || (value as number) < 0) {
        await refundAll();
        return denied(
          'budget',
          'ERR_GATE_BUDGET_ARGUMENT',
          `argument \`${budget.argument}\` of \`${budget.tool}\` must be a non-negative integer: a budget counts it`,
          decision,
        );
      }
      const result = await budgets.spend(budget.key, value as number, budget.limit);
      if (!result.ok) {
        await refundAll();
        return denied(
          'budget',
          'ERR_GATE_BUDGET_EXHAUSTED',
          `the budget \`${budget.tool}#${budget.argument}<=${budget.limit}\` of this root grant has ${budget.limit - result.total} left, the call asks ${String(value)}`,
          decision,
        );
      }
      spent.push(budget);
      amounts.push(value as number);
    }
    if (approval !== undefined) {
      stage.lock = 'approval';
      if (!(await options.approvals!.consume(approval.id, nowSeconds))) {
        await refundAll();
        return denied(
          'approval',
          'ERR_APPROVAL_CLOSED',
          `approval \`${approval.id}\` was used or expired`,
          decision,
        );
      }
      return {
        ...decision,
        approval: { reason: approval.reason, policies: approval.policies, id: approval.id },
      };
    }
    return decision;
  }
}
