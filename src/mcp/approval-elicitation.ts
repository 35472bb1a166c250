// Human approvals through MCP elicitation (docs/spec/mcp.md, "Approvals"): what the gateway asks
// the person behind an agent's MCP client, and the signed answer it takes back. An elicitation's
// `accept` by itself proves nothing (the agent's own client could send it): the answer counts only
// as an approval record signed by a human identity the gate's authorities vouch for, bound to the
// call's argument digest — exactly what `mandate approvals approve` signs out of band.
import type { ElicitRequestFormParams } from '@modelcontextprotocol/sdk/types.js';
import type { Clock } from '../core/index.js';
import { systemClock } from '../core/index.js';
import { signApprovalAnswer, type ApprovalAnswer, type ApprovalToSign } from '../gates/index.js';
import type { CredentialIssuer, CredentialKeyVault, VerifiedChain } from '../credentials/index.js';

/** Where the gateway's `elicitation/create` carries the request to sign. */
export const APPROVAL_REQUEST_META_KEY = 'io.mandate/approval-request';
/** Where the elicitation's result carries the human's signed answer. */
export const APPROVAL_ANSWER_META_KEY = 'io.mandate/approval-answer';
/**
 * The client capability (`capabilities.experimental`) saying that an approver answers the
 * gateway's elicitations (`mandate mcp connect --approver`); without it the gateway does not ask,
 * and approvals stay out of band.
 */
export const APPROVER_CAPABILITY = 'io.mandate/approver';

/** An approval request as the gateway shows it through elicitation. */
export interface ElicitedApproval extends ApprovalToSign {
  /** The tool's name as the agent called it. */
  readonly name: string;
  /** The upstream serving it. */
  readonly server: string;
  /** The policy's `@approval` text: why a person must look (never other policy internals). */
  readonly reason: string;
  /** The arguments' JCS text, unless the gateway hides them (then only their digest is shown). */
  readonly arguments?: string;
}

const MAX_TEXT = 64 * 1024;

/** What the person reads: the tool, its server, the arguments or their digest, why, the id. */
export function approvalElicitationMessage(request: ElicitedApproval): string {
  return [
    `Approve this tool call by agent ${request.agent}?`,
    `tool: ${request.name} (server ${request.server})`,
    request.arguments === undefined
      ? `arguments: hidden, SHA-256 ${request.argumentsDigest}`
      : `arguments: ${request.arguments}`,
    `why: ${request.reason}`,
    `approval id: ${request.id} (answer by ${new Date(request.expiresAt * 1000).toISOString()})`,
    'Accept to approve, decline to deny: your answer is signed with your key and logged.',
  ].join('\n');
}

/** The form: one optional reason, kept with the signed answer. */
export const APPROVAL_REQUESTED_SCHEMA: ElicitRequestFormParams['requestedSchema'] = {
  type: 'object',
  properties: {
    reason: {
      type: 'string',
      title: 'Reason',
      description: 'why you approve or deny (kept with your signed answer)',
      maxLength: 1024,
    },
  },
};

const isHex = (v: unknown, length?: number): v is string =>
  typeof v === 'string' &&
  /^[0-9a-f]*$/.test(v) &&
  v.length > 0 &&
  v.length <= MAX_TEXT &&
  (length === undefined || v.length === length);
const isText = (v: unknown): v is string =>
  typeof v === 'string' && v.length > 0 && v.length <= MAX_TEXT;
const isTime = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** The gateway's request, parsed strictly from untrusted `_meta`; undefined when it is not one. */
export function parseElicitedApproval(value: unknown): ElicitedApproval | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const v = value as Record<string, unknown>;
  if (
    !isText(v['id']) ||
    !isText(v['agent']) ||
    !isHex(v['chainHash'], 64) ||
    !isText(v['tool']) ||
    !isHex(v['argumentsDigest'], 64) ||
    !isTime(v['bundleVersion']) ||
    !isHex(v['bundleHash'], 64) ||
    !isTime(v['expiresAt']) ||
    !isText(v['name']) ||
    !isText(v['server']) ||
    !isText(v['reason']) ||
    !(v['arguments'] === undefined || isText(v['arguments']))
  )
    return undefined;
  return {
    id: v['id'],
    agent: v['agent'] as ElicitedApproval['agent'],
    chainHash: v['chainHash'],
    tool: v['tool'],
    argumentsDigest: v['argumentsDigest'],
    bundleVersion: v['bundleVersion'],
    bundleHash: v['bundleHash'],
    expiresAt: v['expiresAt'],
    name: v['name'],
    server: v['server'],
    reason: v['reason'],
    ...(v['arguments'] === undefined ? {} : { arguments: v['arguments'] }),
  };
}

/** A signed answer, parsed strictly from untrusted `_meta`; undefined when it is not one. */
export function parseApprovalAnswer(value: unknown): ApprovalAnswer | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const v = value as Record<string, unknown>;
  const decision = v['decision'];
  const keyType = v['signatureKeyType'];
  if (
    !isText(v['approver']) ||
    (decision !== 'approve' && decision !== 'deny') ||
    typeof v['reason'] !== 'string' ||
    v['reason'].length > MAX_TEXT ||
    !isTime(v['answeredAt']) ||
    !isText(v['signed']) ||
    (keyType !== 'ed25519' && keyType !== 'p256') ||
    !isHex(v['signature']) ||
    !isHex(v['attestation']) ||
    !isHex(v['approverChain'])
  )
    return undefined;
  return {
    approver: v['approver'] as ApprovalAnswer['approver'],
    decision,
    reason: v['reason'],
    answeredAt: v['answeredAt'],
    signed: v['signed'],
    signatureKeyType: keyType,
    signature: v['signature'],
    attestation: v['attestation'],
    approverChain: v['approverChain'],
  };
}

/** Signs the person's answer to an approval the gateway elicited (the agent's side holds one). */
export interface ApprovalSigner {
  sign(
    request: ElicitedApproval,
    decision: 'approve' | 'deny',
    reason: string,
  ): Promise<ApprovalAnswer>;
}

/** Options of {@link approvalSigner}. */
export interface ApprovalSignerOptions {
  /**
   * The human's own credential (no delegation, `human=true`), verified; a function is asked at
   * every answer (e.g. for a short-lived credential issued on demand).
   */
  readonly approver: VerifiedChain | (() => Promise<VerifiedChain>);
  /** The human's credential key, and the vault holding it. */
  readonly signer: CredentialIssuer;
  readonly vault: CredentialKeyVault;
  readonly clock?: Clock;
}

/** An {@link ApprovalSigner} over a human identity's credential key (`signApprovalAnswer`). */
export function approvalSigner(options: ApprovalSignerOptions): ApprovalSigner {
  const clock = options.clock ?? systemClock;
  return {
    async sign(request, decision, reason) {
      const approver =
        typeof options.approver === 'function' ? await options.approver() : options.approver;
      return signApprovalAnswer(request, {
        decision,
        reason,
        approver,
        signer: options.signer,
        vault: options.vault,
        nowSeconds: clock.nowSeconds(),
      });
    },
  };
}
