import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  AuditLog,
  formatExportLine,
  MAX_AUDIT_READ_ENTRIES,
  parseAuditRecord,
  parseExport,
  signRevocationRecord,
  verifyInvocation,
  verifyTrailExport,
  type DecisionRecord,
  type InvocationRecord,
  type RecordHash,
  type TrailSummary,
  DECISION_RECORD_TYPE,
  INVOCATION_RECORD_TYPE,
} from '../../audit/index.js';
import {
  ChainVerifier,
  constraintsFromAttributes,
  formatConstraint,
  type Constraints,
  type CredentialIssuer,
  type DenySetUpdate,
  type VerifiedChain,
} from '../../credentials/index.js';
import type { Identifier } from '../../identity/index.js';
import type { Home } from '../home.js';
import { DEFAULT_AUTHORITY } from '../chains.js';
import { homeLogKey } from './audit.js';

/** One level of the chain, as the answer shows it: who was granted what on the tool. */
export interface DemoChainLevel {
  /** Who granted: the authority for the root credential, the delegator for a link. */
  readonly grantedBy: Identifier;
  readonly grantedTo: Identifier;
  /** The level's constraints that bear on the tool, as `mandate delegate --constraint` writes them. */
  readonly constraints: readonly string[];
}

/** "Which agent issued refund X, on whose behalf, under which constraints and policy, approved by whom." */
export interface DemoRefundAnswer {
  readonly invocation: RecordHash;
  /** Line numbers (1-based) of the invocation and its decision in the export. */
  readonly lines: { readonly invocation: number; readonly decision: number };
  readonly tool: string;
  readonly server: string | null;
  /** The arguments, as the decision record discloses them (their digest matches the agent's). */
  readonly arguments: unknown;
  readonly issuedAt: number;
  /** The acting agent (it signed the invocation). */
  readonly agent: Identifier;
  /** On whose behalf: the authority, then the human it vouched for, then each delegate, the agent last. */
  readonly path: readonly Identifier[];
  /** The same path by this home's names, where it has them. */
  readonly pathNames: readonly string[];
  readonly constraints: readonly DemoChainLevel[];
  readonly decision: string;
  /** The determining policy ids and the bundle that decided. */
  readonly policies: readonly string[];
  readonly bundle: string | null;
  /** The enforcement point that countersigned the decision. */
  readonly decidedBy: Identifier;
  readonly approval: {
    readonly id: string;
    readonly approver: Identifier;
    readonly approverName: string | null;
    /** Whether the approver is the human at the root of the agent's chain. */
    readonly approverIsChainRoot: boolean;
    readonly reason: string;
    /** What the human was shown: the `@approval` text. */
    readonly shown: string;
    readonly answeredAt: number;
  };
}

export interface AuditScenarioSummary {
  readonly seconds: number;
  /** The export and the checkpoint, in the demo home. */
  readonly files: {
    readonly trail: string;
    readonly checkpoint: string;
    readonly tampered: string;
  };
  readonly checkpointTreeSize: number;
  readonly verified: boolean;
  readonly verifySeconds: number;
  readonly counts: TrailSummary;
  /** The copy with one edited line: what the verifier reports. */
  readonly tamper: {
    readonly line: number;
    readonly detected: boolean;
    readonly code: string | null;
    readonly cause: string | null;
    readonly reportedLine: number | null;
  };
  readonly answer: DemoRefundAnswer;
}

/**
 * Step 16 of the demo: the authority signs a checkpoint of the home's audit log; the trail is
 * exported to a file; the file is verified offline (nothing but the files and the trusted
 * identities); an edited copy fails at its line; and the question an auditor asks about the
 * approved refund is answered from the verified export alone.
 */
/** The home's audit log's first `size` entries as export lines (`mandate audit export`). */
export async function exportLogLines(
  home: Home,
  size: number,
  each?: (record: Uint8Array) => void,
): Promise<string[]> {
  const lines: string[] = [];
  for (let from = 0; from < size; from += MAX_AUDIT_READ_ENTRIES) {
    const to = Math.min(size, from + MAX_AUDIT_READ_ENTRIES);
    for (const [k, e] of (await home.store.auditLog.readEntries(from, to)).entries()) {
      lines.push(formatExportLine(from + k, e.record));
      each?.(e.record);
    }
  }
  return lines;
}

/**
 * Appends a deny-set update's entries to the log as revocation records signed by the authority
 * (as `mandate revoke` does), so an offline verifier checks every later record against them.
 * Returns the last record's index (-1 for none).
 */
export async function recordRevocations(
  home: Home,
  log: AuditLog,
  authority: CredentialIssuer,
  revocation: DenySetUpdate,
  nowSeconds: number,
): Promise<number> {
  let index = -1;
  for (const [k, entry] of revocation.entries.entries())
    index = await log.append(
      await signRevocationRecord(
        home.vault,
        authority,
        entry,
        revocation.fromSequence + k + 1,
        nowSeconds,
      ),
    );
  return index;
}

export async function runAuditScenario(
  home: Home,
  dir: string,
  refund: { readonly approval: string },
  say: (text: string) => void,
): Promise<AuditScenarioSummary> {
  const started = process.hrtime.bigint();
  const authority = await home.identities.get(DEFAULT_AUTHORITY);
  const logKey = await homeLogKey(home, DEFAULT_AUTHORITY);
  const { origin } = logKey;

  // The checkpoint, signed by the authority, and the export (`mandate audit checkpoint|export`).
  const log = await AuditLog.open({ repository: home.store.auditLog, origin });
  let note: string;
  let treeSize: number;
  try {
    note = await log.checkpoint([logKey.signer()]);
    treeSize = log.size;
  } finally {
    await log.close();
  }
  const lines = await exportLogLines(home, treeSize);
  const files = {
    trail: join(dir, 'audit-trail.jsonl'),
    checkpoint: join(dir, 'audit-checkpoint.txt'),
    tampered: join(dir, 'audit-trail-tampered.jsonl'),
  };
  writeFileSync(files.trail, `${lines.join('\n')}\n`, { mode: 0o644 });
  writeFileSync(files.checkpoint, note, { mode: 0o644 });

  // Offline: the two files, and the identities the verifier trusts (the authority: roots of
  // chains, revocations, checkpoint key; and the enforcement point it runs).
  const trusted = {
    verifiers: [logKey.verifier],
    authorities: await home.trustedAuthorities(),
    enforcers: new Map([[authority.identity.identifier, authority.identity]]),
  };
  const text = readFileSync(files.trail, 'utf8');
  const checkpoint = readFileSync(files.checkpoint, 'utf8');
  const t = process.hrtime.bigint();
  const verdict = verifyTrailExport({ text, checkpoint, ...trusted });
  const verifySeconds = Number(process.hrtime.bigint() - t) / 1e9;
  if (!verdict.ok)
    throw new Error(
      `the demo's own trail did not verify: ${verdict.problem.code} ${verdict.problem.message}`,
    );
  const counts = verdict.summary;
  say(
    `16. the run's audit trail, verified offline: the authority signs a checkpoint of ${treeSize} records; exported to ${files.trail}`,
  );
  say(
    `    verified with nothing but the files and the trusted identities → ok: ${counts.records} records (${counts.invocations} signed invocations, ${counts.decisions} countersigned decisions, ${counts.agents} agents, ${counts.revocations} revocation), ${counts.signatures} signatures and the Merkle root in ${verifySeconds.toFixed(2)} s`,
  );

  // The answer, from the verified export: the decision that used the human's approval.
  const answer = await answerFromExport(home, text, refund.approval, trusted.authorities);

  // Someone edits one line of a copy: the approver's stated reason on the refund's decision.
  copyFileSync(files.trail, files.tampered);
  const copy = readFileSync(files.tampered, 'utf8').split('\n');
  const edited = answer.lines.decision;
  const original = copy[edited - 1]!;
  const changed = original.replace('charged twice', 'charged once');
  if (changed === original) throw new Error('the line to tamper with has no approval reason');
  copy[edited - 1] = changed;
  writeFileSync(files.tampered, copy.join('\n'), { mode: 0o644 });
  const caught = verifyTrailExport({
    text: readFileSync(files.tampered, 'utf8'),
    checkpoint,
    ...trusted,
  });
  const tamper = caught.ok
    ? { line: edited, detected: false, code: null, cause: null, reportedLine: null }
    : {
        line: edited,
        detected: true,
        code: caught.problem.code,
        cause: caught.problem.cause ?? null,
        reportedLine: caught.problem.position.line ?? null,
      };
  say(
    `    a copy with line ${edited} edited (the approver's reason: "charged twice" → "charged once") → ${tamper.detected ? `FAILED: ${tamper.code ?? ''}${tamper.cause === null ? '' : ` (${tamper.cause})`} at line ${tamper.reportedLine ?? '?'}` : 'NOT DETECTED'}`,
  );

  const shortId = (id: string, name: string | null) =>
    name === null ? `${id.slice(0, 13)}…` : `${name} (${id.slice(0, 13)}…)`;
  const a = answer;
  say(
    `    which agent issued refund X (${JSON.stringify(a.arguments)}), on whose behalf, under which constraints and policy, approved by whom — from the verified export:`,
  );
  say(
    `      agent          ${shortId(a.agent, a.pathNames.at(-1) ?? null)} signed the invocation (line ${a.lines.invocation})`,
  );
  say(`      on behalf of   ${a.pathNames.join(' → ')}`);
  for (const [i, level] of a.constraints.entries())
    say(
      `      ${(i === 0 ? 'constraints' : '').padEnd(14)} ${i === 0 ? 'root credential' : `link ${i}`} (${a.pathNames[i]} → ${a.pathNames[i + 1]}): ${level.constraints.join(', ') || '-'}`,
    );
  say(
    `      policy         ${a.decision} by ${a.policies.join(', ')}; bundle ${a.bundle ?? '-'} (decision at line ${a.lines.decision}, countersigned by ${shortId(a.decidedBy, a.pathNames[0] ?? null)})`,
  );
  say(
    `      approved by    ${shortId(a.approval.approver, a.approval.approverName)}${a.approval.approverIsChainRoot ? ', the human at the root of the chain' : ''}: "${a.approval.reason}" (shown: "${a.approval.shown}")`,
  );

  return {
    seconds: Number(process.hrtime.bigint() - started) / 1e9,
    files,
    checkpointTreeSize: treeSize,
    verified: true,
    verifySeconds,
    counts,
    tamper,
    answer,
  };
}

/** The constraints of a level that bear on `tool`: its grant, its arguments, its labels, its budget. */
function onTool(constraints: Constraints, tool: string): string[] {
  const out: string[] = [];
  for (const [name, c] of constraints)
    if (
      name === 'tools' ||
      name === 'human' ||
      name.startsWith(`${tool}#`) ||
      name.startsWith('label.') ||
      name.startsWith(`mandate.budget:${tool}#`)
    )
      out.push(formatConstraint(name, c));
  return out;
}

function levelsOf(chain: VerifiedChain, tool: string): DemoChainLevel[] {
  let root: Constraints;
  try {
    // The credential's attributes, the reserved ones (a budget) included.
    root = constraintsFromAttributes(chain.root.attributes);
  } catch {
    root = chain.rootConstraints;
  }
  return [
    {
      grantedBy: chain.root.issuer,
      grantedTo: chain.root.subject,
      constraints: onTool(root, tool),
    },
    ...chain.links.map((l) => ({
      grantedBy: l.issuer,
      grantedTo: l.subject,
      constraints: onTool(l.constraints, tool),
    })),
  ];
}

/**
 * Reads the answer out of an export that verified: the allowed decision that used approval
 * `approvalId`, the invocation it names, the chain that invocation carries (checked again, at the
 * invocation's own time, against the trusted authorities only).
 */
async function answerFromExport(
  home: Home,
  text: string,
  approvalId: string,
  authorities: Awaited<ReturnType<Home['trustedAuthorities']>>,
): Promise<DemoRefundAnswer> {
  const parsed = parseExport(text);
  if (!parsed.ok) throw new Error(`the export does not parse at line ${parsed.line}`);
  let decision: { record: DecisionRecord; line: number } | undefined;
  const invocations = new Map<RecordHash, { bytes: Uint8Array; line: number }>();
  for (const [i, entry] of parsed.entries.entries()) {
    let record;
    try {
      record = parseAuditRecord(entry.record);
    } catch {
      continue; // a revocation record
    }
    if (record.type === INVOCATION_RECORD_TYPE)
      invocations.set(entry.id!, { bytes: entry.record, line: i + 1 });
    else if (
      record.type === DECISION_RECORD_TYPE &&
      record.decision === 'allow' &&
      record.approval?.id === approvalId
    )
      decision = { record, line: i + 1 };
  }
  if (decision === undefined) throw new Error(`no allowed decision used approval ${approvalId}`);
  const d = decision.record;
  const invoked = invocations.get(d.invocation);
  if (invoked === undefined) throw new Error('the decision names no invocation of the export');
  const verified = verifyInvocation(invoked.bytes, {
    authorities,
    chains: new ChainVerifier({ authorities }),
  });
  const record: InvocationRecord = verified.record;
  const chain = verified.chain;
  const path = [chain.root.issuer, chain.root.subject, ...chain.links.map((l) => l.subject)];
  const names = new Map<Identifier, string | null>();
  for (const id of [...path, d.approval!.approver])
    if (!names.has(id)) names.set(id, (await home.identities.find(id))?.name ?? null);
  const approval = d.approval!;
  return {
    invocation: d.invocation,
    lines: { invocation: invoked.line, decision: decision.line },
    tool: record.tool,
    server: record.server,
    arguments: d.arguments ?? null,
    issuedAt: record.issuedAt,
    agent: record.agent,
    path,
    pathNames: path.map((id) => names.get(id) ?? `${id.slice(0, 13)}…`),
    constraints: levelsOf(chain, record.tool),
    decision: d.decision,
    policies: d.policies,
    bundle: d.bundle,
    decidedBy: d.enforcer,
    approval: {
      id: approval.id,
      approver: approval.approver,
      approverName: names.get(approval.approver) ?? null,
      approverIsChainRoot: approval.approver === chain.root.subject,
      reason: approval.reason,
      shown: approval.shown.reason,
      answeredAt: approval.answeredAt,
    },
  };
}
