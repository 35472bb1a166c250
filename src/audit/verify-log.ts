/**
 * Offline verification of a whole log: every entry against one or more signed checkpoints.
 * Problems are reported, not thrown: the first one, with a typed code and its position.
 *
 * What can be located exactly, and from what:
 * - the order of the entries' own log indices locates a deleted, reordered, duplicated or
 *   inserted line (an insert that claims a position another line holds);
 * - a log shorter than its checkpoint is a truncation at its end;
 * - an edited record changes the root of every checkpoint that covers it, so it is located
 *   between the last checkpoint that still matches and the first that does not (exactly, when
 *   the log keeps checkpoints that close together). Within such a range only signatures inside
 *   the records (the record layer's) can point at one line;
 * - in the store (`verifyStoredLog`), each entry's stored leaf hash and every stored perfect
 *   subtree hash locate an edit to one entry, or to the span of the first subtree that disagrees.
 */
import { isMandateError, type ErrorCode } from '../core/index.js';
import { bytesEqual } from '../encoding/index.js';
import { verifyCheckpoint, type NoteVerifierKey, type VerifiedCheckpoint } from './checkpoint.js';
import { CompactRange, hashLeaf, subtreeNodes, type MerkleNodeId } from './merkle.js';
import { MAX_AUDIT_READ_ENTRIES, type AuditLogRepository } from './repository.js';

/** The codes of {@link LogProblem}, besides the `ERR_CHECKPOINT_…` codes of a bad checkpoint. */
export const LogProblemCode = {
  recordEdited: 'ERR_AUDIT_RECORD_EDITED',
  recordDeleted: 'ERR_AUDIT_RECORD_DELETED',
  recordInserted: 'ERR_AUDIT_RECORD_INSERTED',
  recordReordered: 'ERR_AUDIT_RECORD_REORDERED',
  recordDuplicated: 'ERR_AUDIT_RECORD_DUPLICATED',
  logTruncated: 'ERR_AUDIT_LOG_TRUNCATED',
  entryMalformed: 'ERR_AUDIT_ENTRY_MALFORMED',
  checkpointInconsistent: 'ERR_AUDIT_CHECKPOINT_INCONSISTENT',
} as const;

/** One line of an exported log: the log index it claims, the record bytes, an optional id. */
export interface LogEntryLine {
  readonly index: number;
  readonly record: Uint8Array;
  /** The record's own id, repeated in reports. */
  readonly id?: string;
}

/** Where a problem is. Lines are 1-based positions in the list given; indices are log indices. */
export interface LogPosition {
  readonly line?: number;
  readonly index?: number;
  /** With `index`: the problem lies in the entries `[index, until)`. */
  readonly until?: number;
  readonly id?: string;
  /** Which checkpoint (position in the list given, 0-based). */
  readonly checkpoint?: number;
}

/** The first problem found. */
export interface LogProblem {
  readonly code: ErrorCode;
  readonly message: string;
  readonly position: LogPosition;
}

/** The outcome of {@link verifyLog} or {@link verifyStoredLog}. */
export type LogVerification =
  | {
      readonly ok: true;
      /** The verified checkpoint of the largest tree. */
      readonly checkpoint: VerifiedCheckpoint;
      /** Entries past that checkpoint: present, but covered by no signature. */
      readonly uncovered: number;
      /** Every checkpoint given, verified and agreeing with the entries, by tree size. */
      readonly checkpoints: readonly VerifiedCheckpoint[];
    }
  | { readonly ok: false; readonly problem: LogProblem };

/** Options of {@link verifyLog}. */
export interface VerifyLogOptions {
  /** The log's entries in log order. */
  readonly entries: readonly LogEntryLine[];
  /** One or more signed checkpoints of the log (any order); the largest must cover the log. */
  readonly checkpoints: readonly (string | Uint8Array)[];
  /** The log's trusted note keys. */
  readonly verifiers: readonly NoteVerifierKey[];
  /** The origin every checkpoint must name. */
  readonly origin?: string;
}

const fail = (code: ErrorCode, message: string, position: LogPosition): LogVerification => ({
  ok: false,
  problem: { code, message, position },
});

type Checked =
  | { readonly ok: true; readonly sorted: readonly (VerifiedCheckpoint & { at: number })[] }
  | { readonly ok: false; readonly result: LogVerification };

function checkCheckpoints(
  notes: readonly (string | Uint8Array)[],
  verifiers: readonly NoteVerifierKey[],
  origin: string | undefined,
): Checked {
  if (notes.length === 0) {
    return {
      ok: false,
      result: fail(LogProblemCode.checkpointInconsistent, 'no checkpoint to verify against', {}),
    };
  }
  const verified: (VerifiedCheckpoint & { at: number })[] = [];
  for (const [at, note] of notes.entries()) {
    try {
      const options = origin === undefined ? {} : { origin };
      verified.push({ ...verifyCheckpoint(note, verifiers, options), at });
    } catch (error) {
      if (!isMandateError(error)) throw error;
      return { ok: false, result: fail(error.code, error.message, { checkpoint: at }) };
    }
  }
  const first = verified[0]!;
  for (const c of verified) {
    if (c.origin !== first.origin) {
      return {
        ok: false,
        result: fail(LogProblemCode.checkpointInconsistent, 'the checkpoints name different logs', {
          checkpoint: c.at,
        }),
      };
    }
  }
  const sorted = [...verified].sort((a, b) => a.treeSize - b.treeSize);
  for (let i = 1; i < sorted.length; i++) {
    const a = sorted[i - 1]!;
    const b = sorted[i]!;
    if (a.treeSize === b.treeSize && !bytesEqual(a.rootHash, b.rootHash)) {
      return {
        ok: false,
        result: fail(
          LogProblemCode.checkpointInconsistent,
          `two signed checkpoints of size ${a.treeSize} with different roots: the log forked`,
          { checkpoint: b.at },
        ),
      };
    }
  }
  // A dated checkpoint of a larger tree is not dated earlier than any of a smaller tree (a log
  // dates each no earlier than the one before: AuditLog.checkpoint) — undated ones between them
  // notwithstanding: an earlier date would vouch that records were logged before a rotation they
  // came after.
  let latest: (VerifiedCheckpoint & { at: number }) | undefined;
  for (const c of sorted) {
    if (c.time === undefined) continue;
    if (latest !== undefined && latest.treeSize < c.treeSize && c.time < latest.time!)
      return {
        ok: false,
        result: fail(
          LogProblemCode.checkpointInconsistent,
          `the checkpoint of size ${c.treeSize} is dated ${c.time}, before the one of size ${latest.treeSize} (${latest.time})`,
          { checkpoint: c.at },
        ),
      };
    if (latest === undefined || c.time > latest.time!) latest = c;
  }
  return { ok: true, sorted };
}

/**
 * Roots at each checkpoint size of the first `count` entries' leaf hashes; the first checkpoint
 * whose root differs, or undefined when all match. Entries are hashed once, in one pass, each as
 * it is appended (no list of hashes is kept: the young generation has less to copy).
 */
function firstRootMismatch(
  entries: readonly LogEntryLine[],
  count: number,
  sorted: readonly (VerifiedCheckpoint & { at: number })[],
): number | undefined {
  const range = new CompactRange();
  let c = 0;
  while (c < sorted.length && sorted[c]!.treeSize === 0) {
    if (!bytesEqual(range.root(), sorted[c]!.rootHash)) return c;
    c++;
  }
  for (let i = 0; i < count && c < sorted.length; i++) {
    range.append(hashLeaf(entries[i]!.record));
    while (c < sorted.length && sorted[c]!.treeSize === range.size) {
      if (!bytesEqual(range.root(), sorted[c]!.rootHash)) return c;
      c++;
    }
  }
  return undefined;
}

/**
 * Verifies an exported log against its signed checkpoints: each checkpoint's signature by a
 * trusted key, their agreement, the order of the entries' indices, the length, and the Merkle
 * root at every checkpoint size. Reports the first problem (see the module comment for what is
 * located how); never throws on bad data.
 */
export function verifyLog(options: VerifyLogOptions): LogVerification {
  const checked = checkCheckpoints(options.checkpoints, options.verifiers, options.origin);
  if (!checked.ok) return checked.result;
  const { sorted } = checked;
  const newest = sorted[sorted.length - 1]!;
  const entries = options.entries;
  const at = (line: number): LogPosition => {
    const e = entries[line];
    return {
      line: line + 1,
      ...(e !== undefined && Number.isSafeInteger(e.index) ? { index: e.index } : {}),
      ...(e?.id === undefined ? {} : { id: e.id }),
    };
  };

  // 1. The indices: 0, 1, 2, … in order.
  for (let line = 0; line < entries.length; line++) {
    const e = entries[line]!;
    if (!Number.isSafeInteger(e.index) || e.index < 0 || !(e.record instanceof Uint8Array)) {
      return fail(
        LogProblemCode.entryMalformed,
        'an entry has no valid log index or record',
        at(line),
      );
    }
  }
  // Every line before the first out of order holds its own index: entry k is on line k + 1.
  let expected = 0;
  const roots = (list: readonly LogEntryLine[]): boolean =>
    firstRootMismatch(list, list.length, sorted) === undefined;
  for (let line = 0; line < entries.length; line++) {
    const e = entries[line]!;
    if (e.index === expected) {
      expected++;
      continue;
    }
    if (e.index < expected) {
      const earlier = e.index;
      if (bytesEqual(entries[earlier]!.record, e.record)) {
        return fail(
          LogProblemCode.recordDuplicated,
          `line ${line + 1} repeats entry ${e.index} (line ${earlier + 1})`,
          at(line),
        );
      }
      // Two different records claim one position: the one whose removal restores the roots is
      // the insertion (the later line when neither does).
      const withoutLater = entries.filter((_, i) => i !== line);
      const withoutEarlier = entries.filter((_, i) => i !== earlier);
      const inserted = !roots(withoutLater) && roots(withoutEarlier) ? earlier : line;
      return fail(
        LogProblemCode.recordInserted,
        `line ${inserted + 1} claims position ${e.index}, which line ${(inserted === line ? earlier : line) + 1} holds`,
        at(inserted),
      );
    }
    if (entries.some((x) => x.index === expected)) {
      return fail(
        LogProblemCode.recordReordered,
        `line ${line + 1} holds entry ${e.index} where entry ${expected} belongs`,
        { ...at(line), index: expected },
      );
    }
    return fail(
      LogProblemCode.recordDeleted,
      `entry ${expected} is missing before line ${line + 1}`,
      { ...at(line), index: expected },
    );
  }

  // 2. The length.
  if (entries.length < newest.treeSize) {
    return fail(
      LogProblemCode.logTruncated,
      `the log has ${entries.length} entries, its checkpoint ${newest.treeSize}`,
      {
        line: entries.length + 1,
        index: entries.length,
        until: newest.treeSize,
        checkpoint: newest.at,
      },
    );
  }

  // 3. The roots.
  const covered = Math.min(entries.length, newest.treeSize);
  const mismatch = firstRootMismatch(entries, covered, sorted);
  if (mismatch !== undefined) {
    const checkpoint = sorted[mismatch]!;
    const from = mismatch === 0 ? 0 : sorted[mismatch - 1]!.treeSize;
    // Entries that match an older checkpoint and a newer one that covers them does not: the
    // checkpoints themselves disagree only if the newest matches (else an edit is likelier).
    if (
      mismatch < sorted.length - 1 &&
      firstRootMismatch(entries, covered, [newest]) === undefined
    ) {
      return fail(
        LogProblemCode.checkpointInconsistent,
        `the checkpoint of size ${checkpoint.treeSize} is not a prefix of the newest one`,
        { checkpoint: checkpoint.at },
      );
    }
    return fail(
      LogProblemCode.recordEdited,
      from + 1 === checkpoint.treeSize
        ? `entry ${from} differs from the one the checkpoint signed`
        : `an entry in ${from}…${checkpoint.treeSize - 1} differs from those the checkpoint signed`,
      { ...at(from), index: from, until: checkpoint.treeSize, checkpoint: checkpoint.at },
    );
  }
  return {
    ok: true,
    checkpoint: newest,
    uncovered: entries.length - newest.treeSize,
    checkpoints: sorted,
  };
}

/**
 * The stored hashes of `nodes`, or the problem when one is missing: a row whose stored subtree
 * hashes were cut short (or emptied) reads as no node there — an edit of the store, reported as
 * such rather than thrown (found by an outside attack).
 */
async function readStoredNodes(
  repository: AuditLogRepository,
  nodes: readonly MerkleNodeId[],
): Promise<Uint8Array[] | LogVerification> {
  try {
    return await repository.readNodes(nodes);
  } catch (error) {
    if (!isMandateError(error, 'ERR_AUDIT_ENTRY_NOT_FOUND')) throw error;
    for (const node of nodes) {
      try {
        await repository.readNodes([node]);
      } catch (one) {
        if (!isMandateError(one, 'ERR_AUDIT_ENTRY_NOT_FOUND')) throw one;
        const span = 2 ** node.level;
        return fail(
          LogProblemCode.recordEdited,
          `the stored hash of entries ${node.index * span}…${(node.index + 1) * span - 1} is missing from the store`,
          { index: node.index * span, until: (node.index + 1) * span },
        );
      }
    }
    throw error;
  }
}

/** Options of {@link verifyStoredLog}. */
export interface VerifyStoredLogOptions {
  readonly verifiers: readonly NoteVerifierKey[];
  readonly origin?: string;
}

/**
 * Verifies the log a repository holds: every record against its stored leaf hash, every stored
 * perfect subtree hash against the hashes below it, every stored checkpoint's signature and root.
 * Reads the log in chunks; reports the first problem.
 */
export async function verifyStoredLog(
  repository: AuditLogRepository,
  options: VerifyStoredLogOptions,
): Promise<LogVerification> {
  const stored = await repository.listCheckpoints();
  const checked = checkCheckpoints(
    stored.map((c) => c.note),
    options.verifiers,
    options.origin,
  );
  if (!checked.ok) return checked.result;
  const { sorted } = checked;
  for (const c of sorted) {
    if (c.treeSize !== stored[c.at]!.treeSize) {
      return fail(
        LogProblemCode.checkpointInconsistent,
        `a checkpoint stored under size ${stored[c.at]!.treeSize} signs size ${c.treeSize}`,
        { checkpoint: c.at },
      );
    }
  }
  const newest = sorted[sorted.length - 1]!;
  const size = await repository.size();
  if (size < newest.treeSize) {
    return fail(
      LogProblemCode.logTruncated,
      `the log has ${size} entries, its checkpoint ${newest.treeSize}`,
      { index: size, until: newest.treeSize, checkpoint: newest.at },
    );
  }
  const range = new CompactRange();
  let c = 0;
  let rootProblem: LogVerification | undefined;
  for (let from = 0; from < size; from += MAX_AUDIT_READ_ENTRIES) {
    const to = Math.min(size, from + MAX_AUDIT_READ_ENTRIES);
    let entries;
    try {
      entries = await repository.readEntries(from, to);
    } catch (error) {
      if (!isMandateError(error, 'ERR_AUDIT_ENTRY_NOT_FOUND')) throw error;
      let missing = from;
      for (; missing < to; missing++) {
        try {
          await repository.readEntries(missing, missing + 1);
        } catch {
          break;
        }
      }
      return fail(LogProblemCode.recordDeleted, `entry ${missing} is missing from the store`, {
        index: missing,
      });
    }
    const completed: { node: MerkleNodeId; hash: Uint8Array }[] = [];
    for (const [k, entry] of entries.entries()) {
      const index = from + k;
      if (!bytesEqual(hashLeaf(entry.record), entry.leafHash)) {
        return fail(
          LogProblemCode.recordEdited,
          `entry ${index} does not match its stored leaf hash`,
          { index, until: index + 1 },
        );
      }
      range.append(entry.leafHash, (node, hash) => completed.push({ node, hash }));
      while (rootProblem === undefined && c < sorted.length && sorted[c]!.treeSize === range.size) {
        if (!bytesEqual(range.root(), sorted[c]!.rootHash)) {
          const start = c === 0 ? 0 : sorted[c - 1]!.treeSize;
          rootProblem = fail(
            LogProblemCode.recordEdited,
            `an entry in ${start}…${range.size - 1} differs from those the checkpoint signed`,
            { index: start, until: range.size, checkpoint: sorted[c]!.at },
          );
        }
        c++;
      }
    }
    const hashes = await readStoredNodes(
      repository,
      completed.map((n) => n.node),
    );
    if (!Array.isArray(hashes)) return hashes;
    for (const [k, { node, hash }] of completed.entries()) {
      if (!bytesEqual(hashes[k]!, hash)) {
        const span = 2 ** node.level;
        return fail(
          LogProblemCode.recordEdited,
          `the stored hash of entries ${node.index * span}…${(node.index + 1) * span - 1} disagrees with them`,
          { index: node.index * span, until: (node.index + 1) * span },
        );
      }
    }
    // The stored hashes point closer than a checkpoint does: they are compared first.
    if (rootProblem !== undefined) return rootProblem;
  }
  // The compact range the log continues from must be the one just recomputed.
  const tops = size === 0 ? [] : subtreeNodes({ start: 0, end: size });
  const topHashes = await readStoredNodes(repository, tops);
  if (!Array.isArray(topHashes)) return topHashes;
  if (!bytesEqual(CompactRange.fromNodes(size, topHashes).root(), range.root())) {
    return fail(
      LogProblemCode.recordEdited,
      'the stored subtree hashes disagree with the entries',
      {
        index: 0,
        until: size,
      },
    );
  }
  return { ok: true, checkpoint: newest, uncovered: size - newest.treeSize, checkpoints: sorted };
}
