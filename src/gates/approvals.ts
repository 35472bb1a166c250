// Human escalation (docs/spec/policy.md §5.3): approval requests bound to one call, answered by a
// human identity with a decision signed by its credential key, consumed exactly once.
import { isMandateError } from '../core/index.js';
import { conflict, forbidden, invalid, notFound, unauthorized } from '../core/internal.js';
import { canonicalizeJson, fromHex, hasControlCharacters, toHex } from '../encoding/index.js';
import { jcsSha256, randomBytes } from '../crypto/index.js';
import type { Identifier, VerifiedIdentity } from '../identity/index.js';
import {
  verifyChain,
  type CredentialIssuer,
  type CredentialKeyVault,
  type DenySet,
  type VerifiedChain,
} from '../credentials/index.js';
import {
  credentialSigningKey,
  signWithCredentialKey,
  verifyCredentialKeySignature,
} from '../credentials/internal.js';
import { rootIsHuman } from './request.js';

/** Where an approval request stands. `used`: an approved request that let its call through once. */
export type ApprovalStatus = 'pending' | 'approved' | 'denied' | 'used';

/** What one approval request is bound to: exactly one call of one agent under one chain and bundle. */
export interface ApprovalBinding {
  readonly agent: Identifier;
  /** Hex SHA-256 of the chain's last element. */
  readonly chainHash: string;
  /** `SERVER/NAME`. */
  readonly tool: string;
  /** Hex SHA-256 of the JCS (RFC 8785) form of the arguments. */
  readonly argumentsDigest: string;
  readonly bundleVersion: number;
}

/** A human's signed answer. `signed` is the exact UTF-8 JCS text the signature covers. */
export interface ApprovalAnswer {
  readonly approver: Identifier;
  readonly decision: 'approve' | 'deny';
  readonly reason: string;
  readonly answeredAt: number;
  readonly signed: string;
  readonly signatureKeyType: 'ed25519' | 'p256';
  /** Hex. */
  readonly signature: string;
  /** Hex: the approver's credential-key attestation. */
  readonly attestation: string;
  /**
   * Hex: the approver's own credential (a chain without links) as presented: what proves, again
   * at every use, that a trusted authority marked the approver `human=true`.
   */
  readonly approverChain: string;
}

/** One approval request and, once answered, its answer: what the human saw and why they decided. */
export interface ApprovalRecord extends ApprovalBinding {
  readonly id: string;
  /** The arguments in JCS form: exactly what the human is shown. */
  readonly arguments: string;
  readonly bundleHash: string;
  /** The `@approval` text(s): why a person must look. */
  readonly reason: string;
  readonly policies: readonly string[];
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly status: ApprovalStatus;
  readonly answer?: ApprovalAnswer;
  readonly usedAt?: number;
}

/**
 * Approval requests, durable. Every state change is atomic and conditional: `answer` only from
 * `pending` before expiry, `consume` only from `approved` before expiry, each exactly once under
 * concurrency (two consumers of one approval: one wins, the other gets `false`).
 */
export interface ApprovalRepository {
  /** Stores a new pending request (`ERR_APPROVAL_EXISTS` for a taken id). */
  create(record: ApprovalRecord): Promise<void>;
  get(id: string): Promise<ApprovalRecord | undefined>;
  /** The newest request for exactly this binding that is pending, approved or denied and not expired (used ones are closed). */
  findOpen(binding: ApprovalBinding, nowSeconds: number): Promise<ApprovalRecord | undefined>;
  /** How many requests of this agent are pending and not expired (the cap on an agent's asks). */
  countPending(agent: string, nowSeconds: number): Promise<number>;
  /** Newest first, at most `limit` (default 100). */
  list(options?: {
    readonly status?: ApprovalStatus;
    readonly limit?: number;
  }): Promise<ApprovalRecord[]>;
  /** pending → approved|denied with the answer; `false` if it was not pending or has expired. */
  answer(id: string, answer: ApprovalAnswer, nowSeconds: number): Promise<boolean>;
  /** approved → used; `false` if it was not approved, was used, or has expired. */
  consume(id: string, nowSeconds: number): Promise<boolean>;
}

/** In-memory approvals (tests, one process). */
export class MemoryApprovalRepository implements ApprovalRepository {
  readonly #records = new Map<string, ApprovalRecord>();

  create(record: ApprovalRecord): Promise<void> {
    if (this.#records.has(record.id))
      return Promise.reject(conflict('ERR_APPROVAL_EXISTS', `approval \`${record.id}\` exists`));
    this.#records.set(record.id, record);
    return Promise.resolve();
  }

  get(id: string): Promise<ApprovalRecord | undefined> {
    return Promise.resolve(this.#records.get(id));
  }

  findOpen(binding: ApprovalBinding, nowSeconds: number): Promise<ApprovalRecord | undefined> {
    let found: ApprovalRecord | undefined;
    for (const r of this.#records.values()) {
      if (
        r.status !== 'used' &&
        nowSeconds < r.expiresAt &&
        sameBinding(r, binding) &&
        (found === undefined || r.createdAt >= found.createdAt)
      )
        found = r;
    }
    return Promise.resolve(found);
  }

  countPending(agent: string, nowSeconds: number): Promise<number> {
    let count = 0;
    for (const r of this.#records.values())
      if (r.agent === agent && r.status === 'pending' && nowSeconds < r.expiresAt) count++;
    return Promise.resolve(count);
  }

  list(
    options: { readonly status?: ApprovalStatus; readonly limit?: number } = {},
  ): Promise<ApprovalRecord[]> {
    const all = [...this.#records.values()]
      .filter((r) => options.status === undefined || r.status === options.status)
      .reverse()
      .sort((a, b) => b.createdAt - a.createdAt);
    return Promise.resolve(all.slice(0, options.limit ?? 100));
  }

  answer(id: string, answer: ApprovalAnswer, nowSeconds: number): Promise<boolean> {
    const r = this.#records.get(id);
    if (r === undefined || r.status !== 'pending' || nowSeconds >= r.expiresAt)
      return Promise.resolve(false);
    this.#records.set(id, {
      ...r,
      status: answer.decision === 'approve' ? 'approved' : 'denied',
      answer,
    });
    return Promise.resolve(true);
  }

  consume(id: string, nowSeconds: number): Promise<boolean> {
    const r = this.#records.get(id);
    if (r === undefined || r.status !== 'approved' || nowSeconds >= r.expiresAt)
      return Promise.resolve(false);
    this.#records.set(id, { ...r, status: 'used', usedAt: nowSeconds });
    return Promise.resolve(true);
  }
}

export function sameBinding(a: ApprovalBinding, b: ApprovalBinding): boolean {
  return (
    a.agent === b.agent &&
    a.chainHash === b.chainHash &&
    a.tool === b.tool &&
    a.argumentsDigest === b.argumentsDigest &&
    a.bundleVersion === b.bundleVersion
  );
}

/**
 * The arguments' JCS text and its SHA-256 (hex): what an approval binds — crypto's `jcsSha256`,
 * the same digest an invocation record names (audit's `jsonDigest`).
 */
export function argumentsDigest(args: unknown): { readonly text: string; readonly digest: string } {
  return jcsSha256(args);
}

/** A new approval request's id: 16 random bytes, hex. */
export function newApprovalId(): string {
  return toHex(randomBytes(16));
}

const SIGNED_TYPE = 'mandate/approval-decision/v1';
const MAX_REASON_CHARS = 1024;

/** The text a human's decision signs: every field of the binding, the request and the answer, in JCS. */
export function approvalSignedText(
  record: ApprovalToSign,
  answer: Pick<ApprovalAnswer, 'approver' | 'decision' | 'reason' | 'answeredAt'>,
): string {
  return canonicalizeJson({
    type: SIGNED_TYPE,
    id: record.id,
    agent: record.agent,
    chainHash: record.chainHash,
    tool: record.tool,
    argumentsDigest: record.argumentsDigest,
    bundleVersion: record.bundleVersion,
    bundleHash: record.bundleHash,
    expiresAt: record.expiresAt,
    decision: answer.decision,
    reason: answer.reason,
    approver: answer.approver,
    answeredAt: answer.answeredAt,
  });
}

/**
 * What a human's decision signs besides the answer: the request's id, its binding, the bundle's
 * hash and the request's expiry (the fields {@link approvalSignedText} covers).
 */
export type ApprovalToSign = Pick<
  ApprovalRecord,
  | 'id'
  | 'agent'
  | 'chainHash'
  | 'tool'
  | 'argumentsDigest'
  | 'bundleVersion'
  | 'bundleHash'
  | 'expiresAt'
>;

/** Options of {@link signApprovalAnswer}: who answers, and how. */
export interface SignApprovalOptions {
  readonly decision: 'approve' | 'deny';
  /** Why: kept in the record (1–1024 characters, no control characters). */
  readonly reason: string;
  /**
   * The approver's own credential as a verified chain without links: the authority marked its
   * subject `human=true`. A delegated chain (an agent acting for a human) is refused.
   */
  readonly approver: VerifiedChain;
  /** The approver's credential key, as for issuing. */
  readonly signer: CredentialIssuer;
  /** The vault holding the approver's credential key (a `SigningVault` will do). */
  readonly vault: CredentialKeyVault;
  readonly nowSeconds: number;
}

/** Options of {@link answerApproval}. */
export interface AnswerApprovalOptions extends SignApprovalOptions {
  readonly id: string;
}

/**
 * Signs a human's answer to an approval request without touching any store (the request may live
 * in a gateway elsewhere, shown through MCP elicitation): checks the reason, that the approver is
 * a human (its own credential, marked `human=true` by a trusted authority, not a delegation), that
 * it signs with its own key and is not the requesting agent; signs {@link approvalSignedText} with
 * the approver's credential key. Errors: `ERR_APPROVAL_REASON_INVALID`, `ERR_APPROVAL_NOT_HUMAN`,
 * `ERR_APPROVAL_SELF`. Whoever records it checks it again ({@link verifyApprovalAnswer}).
 */
export async function signApprovalAnswer(
  request: ApprovalToSign,
  options: SignApprovalOptions,
): Promise<ApprovalAnswer> {
  const { approver, signer, nowSeconds } = options;
  checkAnswerer(options);
  if (request.agent === approver.actor)
    throw forbidden('ERR_APPROVAL_SELF', 'an agent cannot answer its own approval request');
  const fields = {
    approver: approver.actor,
    decision: options.decision,
    reason: options.reason,
    answeredAt: nowSeconds,
  } as const;
  const signed = approvalSignedText(request, fields);
  const key = await credentialSigningKey(options.vault, signer, nowSeconds);
  const signature = await signWithCredentialKey(
    options.vault,
    signer,
    key,
    new TextEncoder().encode(signed),
  );
  return {
    ...fields,
    signed,
    signatureKeyType: signature.keyType,
    signature: toHex(signature.bytes),
    attestation: toHex(signer.credentialKeyAttestation),
    approverChain: toHex(approver.bytes),
  };
}

/** The checks on who answers and what they say, before anything is looked up or signed. */
function checkAnswerer(options: SignApprovalOptions): void {
  const { approver, signer, reason } = options;
  if (
    typeof reason !== 'string' ||
    reason.trim() === '' ||
    reason.length > MAX_REASON_CHARS ||
    hasControlCharacters(reason)
  )
    throw invalid(
      'ERR_APPROVAL_REASON_INVALID',
      `a reason is 1 to ${MAX_REASON_CHARS} characters without control characters`,
    );
  if (options.decision !== 'approve' && options.decision !== 'deny')
    throw invalid('ERR_APPROVAL_REASON_INVALID', 'a decision is `approve` or `deny`');
  if (approver.links.length > 0 || !rootIsHuman(approver))
    throw forbidden(
      'ERR_APPROVAL_NOT_HUMAN',
      `\`${approver.actor}\` is not an identity the authority marked \`human=true\` (its own credential, not a delegation)`,
    );
  if (approver.actor !== signer.identity.identifier)
    throw forbidden('ERR_APPROVAL_NOT_HUMAN', 'the signing identity is not the credential subject');
}

/**
 * A human answers an approval request: checks that the approver is a human (its own credential,
 * marked `human=true` by a trusted authority, not a delegation), that it is not the requesting
 * agent, that the request is pending and unexpired; signs the decision with the approver's
 * credential key; records it. Errors: `ERR_APPROVAL_NOT_FOUND`, `ERR_APPROVAL_NOT_HUMAN`,
 * `ERR_APPROVAL_SELF`, `ERR_APPROVAL_CLOSED`, `ERR_APPROVAL_REASON_INVALID`.
 */
export async function answerApproval(
  repository: ApprovalRepository,
  options: AnswerApprovalOptions,
): Promise<ApprovalRecord> {
  const { nowSeconds } = options;
  checkAnswerer(options);
  const record = await repository.get(options.id);
  if (record === undefined)
    throw notFound('ERR_APPROVAL_NOT_FOUND', `no approval request \`${options.id}\``);
  if (record.agent === options.approver.actor)
    throw forbidden('ERR_APPROVAL_SELF', 'an agent cannot answer its own approval request');
  assertOpen(record, nowSeconds);
  const answer = await signApprovalAnswer(record, options);
  return storeAnswer(repository, record, answer, nowSeconds);
}

function assertOpen(record: ApprovalRecord, nowSeconds: number): void {
  if (record.status !== 'pending' || nowSeconds >= record.expiresAt)
    throw conflict(
      'ERR_APPROVAL_CLOSED',
      `approval \`${record.id}\` is ${nowSeconds >= record.expiresAt && record.status === 'pending' ? 'expired' : record.status}`,
    );
}

async function storeAnswer(
  repository: ApprovalRepository,
  record: ApprovalRecord,
  answer: ApprovalAnswer,
  nowSeconds: number,
): Promise<ApprovalRecord> {
  if (!(await repository.answer(record.id, answer, nowSeconds)))
    throw conflict(
      'ERR_APPROVAL_CLOSED',
      `approval \`${record.id}\` was answered or expired meanwhile`,
    );
  return { ...record, status: answer.decision === 'approve' ? 'approved' : 'denied', answer };
}

/** How far in the future (seconds) a signed answer's `answeredAt` may lie: clocks differ a little. */
const ANSWER_CLOCK_SKEW_SECONDS = 60;

/**
 * Records an answer signed elsewhere ({@link signApprovalAnswer}, e.g. by the person behind an MCP
 * client through elicitation): the request must be pending and unexpired, the answer not from
 * the requesting agent (`ERR_APPROVAL_SELF`), not from the future, and it must verify exactly as
 * an answer does when it is used ({@link verifyApprovalAnswer}: a human of a trusted authority,
 * signed over this very request and binding). Nothing is stored unless all of that holds.
 */
export async function recordApprovalAnswer(
  repository: ApprovalRepository,
  id: string,
  answer: ApprovalAnswer,
  nowSeconds: number,
  options: VerifyApprovalOptions,
): Promise<ApprovalRecord> {
  const record = await repository.get(id);
  if (record === undefined)
    throw notFound('ERR_APPROVAL_NOT_FOUND', `no approval request \`${id}\``);
  if (record.agent === answer.approver)
    throw forbidden('ERR_APPROVAL_SELF', 'an agent cannot answer its own approval request');
  assertOpen(record, nowSeconds);
  if (
    !Number.isSafeInteger(answer.answeredAt) ||
    answer.answeredAt > nowSeconds + ANSWER_CLOCK_SKEW_SECONDS
  )
    throw unauthorized('ERR_APPROVAL_SIGNATURE_INVALID', 'the answer is dated in the future');
  verifyApprovalAnswer({ ...record, answer }, nowSeconds, options);
  return storeAnswer(repository, record, answer, nowSeconds);
}

/** Options of {@link verifyApprovalAnswer}: whom the gate trusts, and its live deny-set. */
export interface VerifyApprovalOptions {
  /** The authorities whose `human=true` counts (as for verifying chains). */
  readonly authorities: ReadonlyMap<Identifier, VerifiedIdentity>;
  readonly denySet?: DenySet;
}

/**
 * Re-checks a recorded answer before it lets a call through, trusting nothing the store says:
 * the answer falls in the request's window; the approver's credential verifies (as of the answer)
 * under a trusted authority, carries no delegation and marks its subject `human=true`
 * (`ERR_APPROVAL_NOT_HUMAN`); the signed text is exactly this record's binding and answer and its
 * signature verifies under the approver's attested credential key; and, with a deny-set, neither
 * the approver nor its credential is revoked now. Otherwise `ERR_APPROVAL_SIGNATURE_INVALID`.
 */
export function verifyApprovalAnswer(
  record: ApprovalRecord,
  nowSeconds: number,
  options: VerifyApprovalOptions,
): ApprovalAnswer {
  const answer = record.answer;
  if (answer === undefined)
    throw unauthorized('ERR_APPROVAL_SIGNATURE_INVALID', `approval \`${record.id}\` has no answer`);
  try {
    if (
      !Number.isSafeInteger(answer.answeredAt) ||
      answer.answeredAt < record.createdAt ||
      answer.answeredAt >= record.expiresAt
    )
      throw unauthorized(
        'ERR_APPROVAL_SIGNATURE_INVALID',
        'the answer is outside the request window',
      );
    const chain = verifyChain(fromHex(answer.approverChain), {
      nowSeconds: answer.answeredAt,
      authorities: options.authorities,
      presenter: answer.approver,
    });
    if (chain.links.length > 0 || !rootIsHuman(chain))
      throw forbidden('ERR_APPROVAL_NOT_HUMAN', `\`${answer.approver}\` is not a human identity`);
    if (answer.signed !== approvalSignedText(record, answer))
      throw unauthorized('ERR_APPROVAL_SIGNATURE_INVALID', 'the signed text is not this record');
    const identity = chain.identities.get(answer.approver);
    if (identity === undefined)
      throw unauthorized(
        'ERR_APPROVAL_SIGNATURE_INVALID',
        'the approver credential lacks its history',
      );
    verifyCredentialKeySignature(
      new TextEncoder().encode(answer.signed),
      { keyType: answer.signatureKeyType, bytes: fromHex(answer.signature) },
      fromHex(answer.attestation),
      { nowSeconds: answer.answeredAt, authorities: new Map([[identity.identifier, identity]]) },
      { untrusted: 'ERR_APPROVAL_SIGNATURE_INVALID', signature: 'ERR_APPROVAL_SIGNATURE_INVALID' },
      'approval',
    );
    options.denySet?.assertNoneRevoked(chain.revocationSubjects, nowSeconds);
  } catch (error) {
    if (
      isMandateError(error, 'ERR_APPROVAL_SIGNATURE_INVALID') ||
      isMandateError(error, 'ERR_APPROVAL_NOT_HUMAN')
    )
      throw error;
    throw unauthorized(
      'ERR_APPROVAL_SIGNATURE_INVALID',
      `the answer to approval \`${record.id}\` does not verify`,
      error,
    );
  }
  return answer;
}
