/**
 * Offline verification of an audit trail: the log (every entry against signed checkpoints, via
 * {@link verifyLog}) and every record in it — its signature, the delegation chain as it stood at
 * the record's own time (expiry, and the revocations the log held before it), the per-agent
 * links, nonces, and the records that hang off an invocation. Nothing but the entries, the
 * checkpoints and the trusted identities is consulted: no network, no store.
 *
 * Problems are reported, not thrown: the first one in log order, with a typed code and its
 * position (1-based line, log index, record hash). Where the log alone locates an edit only to a
 * range between two checkpoints, the records' own signatures locate it to one line.
 */
import { isMandateError, type ErrorCode } from '../core/index.js';
import type { Identifier, VerifiedIdentity } from '../identity/index.js';
import { ChainVerifier } from '../credentials/index.js';
import type { NoteVerifierKey, VerifiedCheckpoint } from './checkpoint.js';
import { VouchedHistories, type TrustedHistories } from './vouched-histories.js';
import { withParsedExportTexts, type ParsedExportTexts } from './export.js';
import { auditRecordHash, blobBytes, jsonDigest } from './record-codec.js';
import {
  CHAIN_RECORD_TYPE,
  CHAIN_REF_INVOCATION_RECORD_TYPE,
  DECISION_RECORD_TYPE,
  INVOCATION_RECORD_TYPE,
  LEASE_RECORD_TYPE,
  OUTCOME_RECORD_TYPE,
  TRACE_RECORD_TYPE,
} from './records.js';
import { REVOCATION_RECORD_TYPE, verifyRevocationRecord } from './revocation-record.js';
import { RevocationSequences } from './revocation-sequence.js';
import {
  checkEnforcerRecord,
  DeferredSignatures,
  signedAsItSays,
  verifyInvocationHashed,
  type EnforcerRecord,
  type VerifiedKeyCache,
  type VerifyEnforcerRecordOptions,
  type VerifyInvocationOptions,
} from './verify-records.js';
import { LogProblemCode, verifyLog, type LogEntryLine, type LogPosition } from './verify-log.js';

/**
 * Codes a trail verification reports besides the log's ({@link LogProblemCode}) and those the
 * record verifiers throw (`ERR_AUDIT_SIGNATURE_INVALID`, `ERR_AUDIT_SIGNER_UNTRUSTED`,
 * `ERR_AUDIT_RECORD_MISMATCH`, `ERR_AUDIT_APPROVAL_INVALID`, a chain's `ERR_DELEGATION_EXPIRED`,
 * `ERR_REVOKED`, …), which are reported as thrown.
 */
export const TrailProblemCode = {
  /** A record is not a well-formed record of a known type. */
  recordMalformed: 'ERR_AUDIT_RECORD_MALFORMED',
  /** An invocation's `previous` is not the hash of the same agent's previous invocation. */
  agentChainMismatch: 'ERR_AUDIT_AGENT_CHAIN_MISMATCH',
  /** An agent's nonce appears twice. */
  nonceReplayed: 'ERR_AUDIT_NONCE_REPLAYED',
  /** A decision, outcome, lease or trace names an invocation not earlier in the log. */
  invocationUnknown: 'ERR_AUDIT_INVOCATION_UNKNOWN',
  /** A second decision for an invocation already decided (the gate decides each once). */
  decisionDuplicate: 'ERR_AUDIT_DECISION_DUPLICATE',
  /** An invocation names a chain by hash that no chain record earlier in the log holds. */
  chainUnknown: 'ERR_AUDIT_CHAIN_UNKNOWN',
  /** A second chain record for a chain already logged. */
  chainDuplicate: 'ERR_AUDIT_CHAIN_DUPLICATE',
} as const;

/** Where a trail problem is (as {@link LogPosition}), with the record's hash as `id`. */
export type TrailPosition = LogPosition;

/** The first problem found in a trail. */
export interface TrailProblem {
  readonly code: ErrorCode;
  readonly message: string;
  readonly position: TrailPosition;
  /** The code of what a wrapping report found (e.g. `ERR_AUDIT_SIGNATURE_INVALID` under `ERR_AUDIT_RECORD_EDITED`). */
  readonly cause?: ErrorCode;
}

/** Counts of what a successful verification checked. */
export interface TrailSummary {
  readonly records: number;
  readonly invocations: number;
  readonly decisions: number;
  readonly agents: number;
  readonly revocations: number;
  /** Chain records (each distinct chain named by hash is logged once). */
  readonly chains: number;
  /** Signatures verified (records, chains are counted once per distinct chain). */
  readonly signatures: number;
}

/** The outcome of {@link verifyTrail}. */
export type TrailVerification =
  | {
      readonly ok: true;
      /** The verified checkpoint the trail was checked against. */
      readonly checkpoint: VerifiedCheckpoint;
      /** Entries past that checkpoint (checked, but covered by no log signature). */
      readonly uncovered: number;
      readonly summary: TrailSummary;
    }
  | { readonly ok: false; readonly problem: TrailProblem };

/** Options of {@link verifyTrail}. */
export interface VerifyTrailOptions {
  /** The log's entries in log order (an export parsed by {@link parseExport}, or the store's). */
  readonly entries: readonly LogEntryLine[];
  /** The newest signed checkpoint. */
  readonly checkpoint: string | Uint8Array;
  /** An older signed checkpoint the newer must extend (its tree a prefix). */
  readonly from?: string | Uint8Array;
  /**
   * More signed checkpoints of the log (e.g. every one the log's store holds): each must verify
   * and agree with the others and the entries, like `from` (in reports, their positions follow
   * `checkpoint` (0) and `from` (1, when given)).
   */
  readonly moreCheckpoints?: readonly (string | Uint8Array)[];
  /** The log's trusted note keys. */
  readonly verifiers: readonly NoteVerifierKey[];
  /** The origin the checkpoints must name. */
  readonly origin?: string;
  /** Trusted authorities: the roots of chains, and the signers of revocation records. */
  readonly authorities: ReadonlyMap<Identifier, VerifiedIdentity>;
  /** Trusted enforcement points: the signers of decision, outcome, lease and trace records. */
  readonly enforcers: ReadonlyMap<Identifier, VerifiedIdentity>;
  /** Histories the verifier knows (newer than those chains carry); see VerifyChainOptions. */
  readonly knownIdentities?: ReadonlyMap<Identifier, VerifiedIdentity>;
}

/** Options of {@link verifyTrailExport}: {@link VerifyTrailOptions} with the export's text. */
export type VerifyTrailExportOptions = Omit<VerifyTrailOptions, 'entries'> & {
  /** The export file's text (`{"index":N,"record":{…}}` lines). */
  readonly text: string;
};

/** Parses an export file's text, then {@link verifyTrail}. Never throws on bad data. */
export function verifyTrailExport(options: VerifyTrailExportOptions): TrailVerification {
  // parseExport's entries, with the records' texts: each record is decoded and parsed once.
  return withParsedExportTexts(options.text, (parsed) => verifyParsed(options, parsed));
}

function verifyParsed(
  options: VerifyTrailExportOptions,
  parsed: ParsedExportTexts,
): TrailVerification {
  if (!parsed.ok) {
    return {
      ok: false,
      problem: {
        code: LogProblemCode.entryMalformed,
        message: `line ${parsed.line}: ${parsed.message}`,
        position: { line: parsed.line },
      },
    };
  }
  return verifyEntries(
    {
      checkpoint: options.checkpoint,
      verifiers: options.verifiers,
      authorities: options.authorities,
      enforcers: options.enforcers,
      entries: parsed.entries,
      ...(options.from === undefined ? {} : { from: options.from }),
      ...(options.moreCheckpoints === undefined
        ? {}
        : { moreCheckpoints: options.moreCheckpoints }),
      ...(options.origin === undefined ? {} : { origin: options.origin }),
      ...(options.knownIdentities === undefined
        ? {}
        : { knownIdentities: options.knownIdentities }),
    },
    parsed.texts,
    true,
  );
}

/** Chains kept verified: a chain's signatures are checked once, its times on every record. */
const CHAIN_CACHE = 10_000;

/** A record check's failure, turned into a {@link TrailProblem} at the record's position. */
class Problem extends Error {
  constructor(
    readonly problemCode: ErrorCode,
    message: string,
    readonly causeCode?: ErrorCode,
  ) {
    super(message);
  }
}

interface InvocationSeen {
  readonly agent: Identifier;
  readonly argumentsDigest: string;
  readonly line: number;
}

/** Revocations the log holds, by revoked id: the earliest entry, with where it appeared. */
interface RevocationSeen {
  readonly revokedAt: number;
  readonly line: number;
}

/**
 * Verifies a trail: the log (checkpoint signatures, their consistency, index order, length and
 * Merkle roots — {@link verifyLog}), then each record in log order. Reports the first problem;
 * never throws on bad data. An edit the checkpoints locate only to a range is located to the
 * first record in it whose own checks fail.
 */
export function verifyTrail(options: VerifyTrailOptions): TrailVerification {
  return verifyEntries(options, undefined, true);
}

/**
 * verifyTrail with each record's signature checked when the record is, not with the others
 * after (DeferredSignatures): the same report; the reference the deferred checks are tested
 * against. Not part of the package's API.
 */
export function verifyTrailInOrder(options: VerifyTrailOptions): TrailVerification {
  return verifyEntries(options, undefined, false);
}

/**
 * verifyTrail, with the records' texts when the caller has them (`texts[i]` the strict UTF-8
 * decoding of `entries[i].record`, or undefined): they are not decoded again. With `defer`,
 * record signatures under keys already verified are checked together after the records' other
 * rules (DeferredSignatures), reported as if checked in order.
 */
function verifyEntries(
  options: VerifyTrailOptions,
  texts: readonly (string | undefined)[] | undefined,
  defer: boolean,
): TrailVerification {
  const { entries } = options;
  // Positions: 0 the checkpoint, 1 `from` (when given), then `moreCheckpoints`.
  const checkpoints = [
    options.checkpoint,
    ...(options.from === undefined ? [] : [options.from]),
    ...(options.moreCheckpoints ?? []),
  ];
  const log = verifyLog({
    entries,
    checkpoints,
    verifiers: options.verifiers,
    ...(options.origin === undefined ? {} : { origin: options.origin }),
  });
  if (!log.ok) {
    const { problem } = log;
    // The checkpoints locate an edit to [index, until): the record checks find the line.
    if (problem.code === LogProblemCode.recordEdited && problem.position.index !== undefined) {
      const until = problem.position.until ?? problem.position.index + 1;
      // Only evidence of alteration may name the line: an authentic record that fails a
      // semantic check (a chain expired at its time) is not where the edit is.
      const located = checkRecords(options, texts, defer, until, true);
      if (!located.ok) {
        const p = located.problem;
        const line = p.position.line;
        if (line !== undefined && line - 1 >= problem.position.index && line - 1 < until)
          return {
            ok: false,
            problem: {
              code: LogProblemCode.recordEdited,
              message: `line ${line} was changed after it was logged: ${p.message}`,
              position: { ...p.position, until: line },
              cause: p.code,
            },
          };
      } else {
        // No record in the range was altered, yet the root differs: authentic records moved
        // (swapped and renumbered). An invocation or a link named before it is where.
        const ordered = checkRecords(options, texts, defer, until);
        const p = ordered.ok ? undefined : ordered.problem;
        const line = p?.position.line;
        if (
          p !== undefined &&
          line !== undefined &&
          line - 1 >= problem.position.index &&
          line - 1 < until &&
          locatesMove(p.code)
        )
          return {
            ok: false,
            problem: {
              code: LogProblemCode.recordReordered,
              message: `line ${line} is out of order: its signature is intact but it does not belong here (a record moved and renumbered, or one taken from another log): ${p.message}`,
              position: p.position,
              cause: p.code,
            },
          };
      }
    }
    // A log shorter than its checkpoint: if the records show an invocation missing in the middle
    // (lines deleted and the rest renumbered: an agent's link or a decision names it), that is
    // where the deletion is.
    if (problem.code === LogProblemCode.logTruncated) {
      const located = checkRecords(options, texts, defer, entries.length);
      if (!located.ok && locatesMove(located.problem.code))
        return {
          ok: false,
          problem: {
            code: LogProblemCode.recordDeleted,
            message: `a record is missing before line ${located.problem.position.line ?? '?'}: ${located.problem.message}`,
            position: located.problem.position,
            cause: located.problem.code,
          },
        };
    }
    return { ok: false, problem };
  }
  const checked = checkRecords(options, texts, defer, entries.length, false, log.checkpoints);
  if (!checked.ok) return checked;
  return {
    ok: true,
    checkpoint: log.checkpoint,
    uncovered: log.uncovered,
    summary: checked.summary,
  };
}

/**
 * Codes by which an authentic record shows that one it names (an invocation, its agent's
 * previous one, a chain record) is missing before it: where a deletion or a move is.
 */
function locatesMove(code: ErrorCode): boolean {
  return (
    code === TrailProblemCode.agentChainMismatch ||
    code === TrailProblemCode.invocationUnknown ||
    code === TrailProblemCode.chainUnknown
  );
}

type Checked =
  | { readonly ok: true; readonly summary: TrailSummary }
  | { readonly ok: false; readonly problem: TrailProblem };

/**
 * Whether a record check's failure shows the record's bytes were altered (a signature or an
 * encoding that does not match), as opposed to an authentic record failing a semantic check.
 */
function isAlteration(code: ErrorCode): boolean {
  return (
    code.endsWith('_SIGNATURE_INVALID') ||
    code === 'ERR_AUDIT_SIGNATURE_MISSING' ||
    code === TrailProblemCode.recordMalformed ||
    code === 'ERR_AUDIT_RECORD_TYPE' ||
    code === 'ERR_AUDIT_CHAIN_MISMATCH' ||
    code.endsWith('_MALFORMED') ||
    code === 'ERR_JCS_INVALID'
  );
}

/** What records are checked with, for one set of trusted histories. */
interface Judging {
  readonly trusted: TrustedHistories;
  readonly invocationOptions: VerifyInvocationOptions;
  readonly enforcerOptions: VerifyEnforcerRecordOptions;
}

/**
 * The record checks over the first `count` entries (assumed in index order). With
 * `alterationOnly`, failures that are not evidence of alteration ({@link isAlteration}) are
 * skipped and the first altered record is reported.
 */
function checkRecords(
  options: VerifyTrailOptions,
  texts: readonly (string | undefined)[] | undefined,
  defer: boolean,
  count: number,
  alterationOnly = false,
  checkpoints?: readonly VerifiedCheckpoint[],
): Checked {
  const { entries } = options;
  const heads = new Map<Identifier, string>();
  const nonces = new Map<Identifier, Set<string>>();
  const invocations = new Map<string, InvocationSeen>();
  const revoked = new Map<string, RevocationSeen>();
  // The chains the log's chain records hold, by hash (checked against it once, on their line).
  const loggedChains = new Map<string, Uint8Array>();
  const chainLines = new Map<string, number>();
  // Each signer's credential key (its attestation) is verified once and reused at the later
  // records' times while it stays in its window (verify-records.ts, VerifiedKeyCache): one
  // signature check per record instead of two. Per run, nothing kept across calls. (Keyed by
  // the signer's history length too: a key is judged again under a longer history.)
  const keys: VerifiedKeyCache = new Map();
  // Each record is judged by the trusted histories as they stood when a dated checkpoint
  // vouches it was in the log (vouched-histories.ts); what verifying needs is made once per set.
  const vouched = new VouchedHistories<Judging>(checkpoints, options, (trusted) => {
    // No deny-set here: revocations are checked against the log's own history, at each time.
    const chains = new ChainVerifier({
      authorities: trusted.authorities,
      cacheSize: CHAIN_CACHE,
      maxCacheAgeSeconds: Number.MAX_SAFE_INTEGER,
      ...(trusted.knownIdentities === undefined
        ? {}
        : { knownIdentities: trusted.knownIdentities }),
    });
    return {
      trusted,
      invocationOptions: { authorities: trusted.authorities, chains, keys, loggedChains },
      enforcerOptions: { enforcers: trusted.enforcers, authorities: trusted.authorities, keys },
    };
  });
  let decisions = 0;
  const decided = new Map<string, number>();
  let revocations = 0;
  let signatures = 0;
  // The authority's deny-set sequence numbers: reused (at once) or with a gap (after the loop).
  const sequences = new RevocationSequences();
  // Signatures under keys already verified, checked after the other rules (see verifyEntries):
  // before any problem is reported, and at the end, the ones left are checked in order, and the
  // first that fails is the problem (its record came first, and would have stopped there).
  const deferred = defer ? new DeferredSignatures() : undefined;
  // (What a verification throws is reported as the catch below reports it; it is never a
  // MandateError with a code isAlteration would skip: Ed25519 and P-256 checks throw none.)
  const unsettled = (): Checked | undefined => {
    const failed = deferred?.settle();
    if (failed === undefined) return undefined;
    const at = entries[failed.line]!;
    const position = positionOf(failed.line, at, at.id ?? auditRecordHash(at.record));
    const { error } = failed;
    return isMandateError(error)
      ? { ok: false, problem: { code: error.code, message: error.message, position } }
      : {
          ok: false,
          problem: {
            code: TrailProblemCode.recordMalformed,
            message: 'the record could not be checked',
            position,
          },
        };
  };
  for (let line = 0; line < count && line < entries.length; line++) {
    const entry = entries[line]!;
    if (deferred !== undefined) deferred.line = line;
    // The histories the record is judged by: as they stood when the log held it (a dated
    // checkpoint covers it) — or at its own time if it claims a later one and a trusted history
    // changed in between: then it is checked again (`vouched.later`; a time only adds changes
    // that count). (No closure per record: they cost about 0.4 µs here.)
    const vouchedAt = vouched.vouchedAt(entry.index);
    const as = vouched.at(vouchedAt);
    const text = texts?.[line];
    // The record's hash (its given id, else its bytes' hex SHA-256) and its position are taken
    // when needed: an invocation's hash is what later records name, a position a problem's.
    let hash: string | undefined;
    try {
      // Locating an edit: a record whose signature does not verify under its own attestation's
      // key was changed after it was signed — found before a semantic check (an edited time
      // that expires the chain, another signer's attestation) stops at something that is not
      // evidence of alteration. (Found by an outside attack: such edits were reported as a
      // range of lines.)
      if (alterationOnly && !signedAsItSays(entry.record, text))
        throw new Problem(
          'ERR_AUDIT_SIGNATURE_INVALID',
          "the record's signature does not verify under the key its own attestation names: it was changed after it was signed",
        );
      const kind = kindOf(entry.record);
      if (kind === 'revocation') {
        let r = verifyRevocationRecord(entry.record, as.trusted.authorities, as.trusted.enforcers);
        const later = vouched.later(vouchedAt, r.appliedAt ?? r.revokedAt);
        if (later !== undefined)
          r = verifyRevocationRecord(
            entry.record,
            later.trusted.authorities,
            later.trusted.enforcers,
          );
        signatures++;
        revocations++;
        // One an enforcement point logged: that point as revoked when it applied the entry.
        if (r.enforcer !== undefined && r.appliedAt !== undefined) {
          const by = revoked.get(r.enforcer);
          if (by !== undefined && by.revokedAt <= r.appliedAt)
            throw new Problem(
              'ERR_REVOKED',
              `the enforcement point \`${r.enforcer}\` was revoked at ${by.revokedAt} (line ${by.line}), before it signed at ${r.appliedAt}`,
            );
        }
        if (!revoked.has(r.id)) revoked.set(r.id, { revokedAt: r.revokedAt, line: line + 1 });
        const reused = sequences.add(
          r,
          positionOf(line, entry, (hash ??= entry.id ?? auditRecordHash(entry.record))),
        );
        if (reused !== undefined) throw new Problem(reused.code, reused.message);
        continue;
      }
      if (kind === 'invocation') {
        let verified;
        try {
          const id = (hash ??= entry.id ?? auditRecordHash(entry.record));
          verified = verifyInvocationHashed(entry.record, as.invocationOptions, id, text, deferred);
          const later = vouched.later(vouchedAt, verified.record.issuedAt);
          if (later !== undefined)
            verified = verifyInvocationHashed(
              entry.record,
              later.invocationOptions,
              id,
              text,
              deferred,
            );
        } catch (error) {
          if (isMandateError(error) && error.code === TrailProblemCode.chainUnknown)
            throw new Problem(
              TrailProblemCode.chainUnknown,
              'the invocation names its chain by a hash no chain record earlier in the log holds (deleted, moved after it, or altered)',
            );
          throw error;
        }
        signatures++;
        const { record } = verified;
        const agent = record.agent;
        // (Nothing to look up while the log has held no revocation.)
        if (revoked.size > 0)
          for (const id of verified.chain.revocationSubjects) {
            const r = revoked.get(id);
            if (r !== undefined && r.revokedAt <= record.issuedAt)
              throw new Problem(
                'ERR_REVOKED',
                `\`${id}\` in the chain was revoked at ${r.revokedAt} (line ${r.line}), before the agent signed at ${record.issuedAt}`,
              );
          }
        const expected = heads.get(agent) ?? null;
        if (record.previous !== expected)
          throw new Problem(
            TrailProblemCode.agentChainMismatch,
            record.previous !== null && invocations.has(record.previous)
              ? `the agent's invocation names ${short(record.previous)} as its previous, but ${short(expected)} came after that one`
              : `the agent's invocation names ${short(record.previous)} as its previous, which the log does not hold before it (expected ${short(expected)})`,
          );
        let seen = nonces.get(agent);
        if (seen === undefined) nonces.set(agent, (seen = new Set()));
        if (seen.has(record.nonce))
          throw new Problem(
            TrailProblemCode.nonceReplayed,
            `the agent used nonce \`${record.nonce}\` before`,
          );
        seen.add(record.nonce);
        heads.set(agent, verified.hash);
        invocations.set(verified.hash, {
          agent,
          argumentsDigest: record.argumentsDigest,
          line: line + 1,
        });
        continue;
      }
      // A record the enforcement point signed; its binding to the invocation it names (earlier
      // in the log) is checked here, from what the invocation's verification kept.
      let { record: r } = checkEnforcerRecord(entry.record, as.enforcerOptions, text, deferred);
      const later = vouched.later(vouchedAt, recordTime(r));
      if (later !== undefined)
        ({ record: r } = checkEnforcerRecord(entry.record, later.enforcerOptions, text, deferred));
      signatures++;
      // The enforcement point (and a decision's approver) as revoked then.
      const time = recordTime(r);
      const enforcerRevoked = revoked.size === 0 ? undefined : revoked.get(r.enforcer);
      if (enforcerRevoked !== undefined && enforcerRevoked.revokedAt <= time)
        throw new Problem(
          'ERR_REVOKED',
          `the enforcement point \`${r.enforcer}\` was revoked at ${enforcerRevoked.revokedAt} (line ${enforcerRevoked.line}), before it signed at ${time}`,
        );
      if (r.type === DECISION_RECORD_TYPE && r.approval !== null) {
        const approverRevoked = revoked.size === 0 ? undefined : revoked.get(r.approval.approver);
        if (approverRevoked !== undefined && approverRevoked.revokedAt <= r.approval.answeredAt)
          throw new Problem(
            'ERR_REVOKED',
            `the approver \`${r.approval.approver}\` was revoked at ${approverRevoked.revokedAt} (line ${approverRevoked.line}), before answering at ${r.approval.answeredAt}`,
          );
      }
      if (r.type === CHAIN_RECORD_TYPE) {
        const earlier = chainLines.get(r.chainHash);
        if (earlier !== undefined)
          throw new Problem(
            TrailProblemCode.chainDuplicate,
            `chain ${short(r.chainHash)} was already logged on line ${earlier}`,
          );
        loggedChains.set(r.chainHash, blobBytes(r.chain, 'chain'));
        chainLines.set(r.chainHash, line + 1);
        continue;
      }
      const named = r.type === TRACE_RECORD_TYPE ? [r.resolvedBy, r.escalation] : [r.invocation];
      for (const invocation of named) {
        if (invocation === null) continue;
        const seen = invocations.get(invocation);
        if (seen === undefined)
          throw new Problem(
            TrailProblemCode.invocationUnknown,
            `the record names invocation ${short(invocation)}, which is not earlier in the log`,
          );
        if (r.agent !== seen.agent)
          throw new Problem(
            'ERR_AUDIT_RECORD_MISMATCH',
            `the record's agent is not its invocation's (line ${seen.line})`,
          );
        if (r.type !== DECISION_RECORD_TYPE) continue;
        const earlier = decided.get(invocation);
        if (earlier !== undefined)
          throw new Problem(
            TrailProblemCode.decisionDuplicate,
            `the invocation (line ${seen.line}) was already decided on line ${earlier}`,
          );
        if (Object.hasOwn(r, 'arguments') && jsonDigest(r.arguments) !== seen.argumentsDigest)
          throw new Problem(
            'ERR_AUDIT_RECORD_MISMATCH',
            `the disclosed arguments do not match the digest the agent signed (line ${seen.line})`,
          );
        if (r.approval !== null && approvedDigest(r.approval.signed) !== seen.argumentsDigest)
          throw new Problem(
            'ERR_AUDIT_APPROVAL_INVALID',
            `the human approved other arguments than the agent signed (line ${seen.line})`,
          );
      }
      if (r.type === DECISION_RECORD_TYPE) {
        decisions++;
        decided.set(r.invocation, line + 1);
      }
    } catch (error) {
      const earlier = unsettled();
      if (earlier !== undefined) return earlier;
      if (alterationOnly) {
        const code =
          error instanceof Problem
            ? error.problemCode
            : isMandateError(error)
              ? error.code
              : TrailProblemCode.recordMalformed;
        if (!isAlteration(code)) continue;
      }
      const position = positionOf(
        line,
        entry,
        (hash ??= entry.id ?? auditRecordHash(entry.record)),
      );
      if (error instanceof Problem)
        return {
          ok: false,
          problem: {
            code: error.problemCode,
            message: error.message,
            position,
            ...(error.causeCode === undefined ? {} : { cause: error.causeCode }),
          },
        };
      if (isMandateError(error))
        return { ok: false, problem: { code: error.code, message: error.message, position } };
      return {
        ok: false,
        problem: {
          code: TrailProblemCode.recordMalformed,
          message: 'the record could not be checked',
          position,
        },
      };
    }
  }
  const earlier = unsettled();
  if (earlier !== undefined) return earlier;
  const gap = alterationOnly ? undefined : sequences.firstGap();
  if (gap !== undefined)
    return { ok: false, problem: { code: gap.code, message: gap.message, position: gap.at } };
  return {
    ok: true,
    summary: {
      records: Math.min(count, entries.length),
      invocations: invocations.size,
      decisions,
      agents: heads.size,
      revocations,
      chains: chainLines.size,
      signatures,
    },
  };
}

/** A record's position: its line (0-based here), log index and hash. */
function positionOf(line: number, entry: LogEntryLine, hash: string): TrailPosition {
  return { line: line + 1, index: entry.index, id: hash };
}

const short = (hash: string | null): string => (hash === null ? 'none' : `${hash.slice(0, 12)}…`);

const utf8 = new TextEncoder();
const INVOCATION_SUFFIX = utf8.encode(`"type":"${INVOCATION_RECORD_TYPE}"}`);
const CHAIN_REF_INVOCATION_SUFFIX = utf8.encode(`"type":"${CHAIN_REF_INVOCATION_RECORD_TYPE}"}`);
const REVOCATION_SUFFIX = utf8.encode(`"type":"${REVOCATION_RECORD_TYPE}"}`);

/**
 * Which verifier a record goes to, without parsing it: in JCS, `type` is the last member of
 * every record type (no other member sorts after it), so the bytes end with it. A record that
 * is not what its ending says is refused by the strict verifier it goes to (unknown members,
 * another type, not JCS), so this only picks the verifier.
 */
function kindOf(bytes: Uint8Array): 'invocation' | 'revocation' | 'enforcer' {
  if (endsWith(bytes, CHAIN_REF_INVOCATION_SUFFIX) || endsWith(bytes, INVOCATION_SUFFIX))
    return 'invocation';
  if (endsWith(bytes, REVOCATION_SUFFIX)) return 'revocation';
  return 'enforcer';
}

/** bytesEndWith, compared from the last byte (the suffixes differ there, not where they begin). */
function endsWith(bytes: Uint8Array, suffix: Uint8Array): boolean {
  const at = bytes.byteLength - suffix.byteLength;
  if (at < 0) return false;
  for (let i = suffix.byteLength - 1; i >= 0; i--) if (bytes[at + i] !== suffix[i]) return false;
  return true;
}

/** When the enforcement point signed a record: its own time member. */
function recordTime(r: EnforcerRecord): number {
  switch (r.type) {
    case DECISION_RECORD_TYPE:
      return r.decidedAt;
    case OUTCOME_RECORD_TYPE:
      return r.completedAt;
    case LEASE_RECORD_TYPE:
      return r.at;
    case CHAIN_RECORD_TYPE:
      return r.loggedAt;
    default:
      return r.recordedAt;
  }
}

/** The `argumentsDigest` an approval's signed text binds (undefined when it has none). */
function approvedDigest(signed: string): unknown {
  try {
    return (JSON.parse(signed) as { argumentsDigest?: unknown }).argumentsDigest;
  } catch {
    return undefined;
  }
}
