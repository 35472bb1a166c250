/**
 * The deny-set sequence numbers of the authority-signed revocation records in a trail
 * (docs/spec/audit.md, "Revocation records"). An authority's home writes a deny-set entry and its
 * record in one transaction, so from its first logged revocation on, every later entry of its
 * deny-set has its record: a number missing between the smallest and the largest logged is a
 * revocation that took effect with no record (`ERR_AUDIT_REVOCATION_MISSING`), and one number
 * naming two different entries is a contradiction (`ERR_AUDIT_REVOCATION_SEQUENCE_REUSED`).
 * Entries before the first record (a home that revoked before it had an authority) are not
 * expected in the log. Records an enforcement point signed (`enforcer`) are not counted: a point
 * logs what it learned over the bus, from wherever it joined.
 */
import type { Identifier } from '../identity/index.js';
import type { RevocationRecord } from './revocation-record.js';

/** Codes {@link RevocationSequences} reports. */
export const RevocationSequenceCode = {
  /** A deny-set sequence number between two logged ones has no record. */
  missing: 'ERR_AUDIT_REVOCATION_MISSING',
  /** Two records of one authority name different entries under one sequence number. */
  reused: 'ERR_AUDIT_REVOCATION_SEQUENCE_REUSED',
} as const;

/** Where a record was seen: its 1-based line, log index and hash. */
export interface RevocationSeenAt {
  readonly line?: number;
  readonly index?: number;
  readonly id?: string;
}

/** A problem {@link RevocationSequences} found, at the record it names. */
export interface RevocationSequenceProblem {
  readonly code: (typeof RevocationSequenceCode)[keyof typeof RevocationSequenceCode];
  readonly message: string;
  readonly at: RevocationSeenAt;
}

interface Seen {
  readonly entry: string;
  readonly at: RevocationSeenAt;
}

/** Collects the authority-signed revocation records of a trail, in log order. */
export class RevocationSequences {
  readonly #byAuthority = new Map<Identifier, Map<number, Seen>>();

  /** Notes one verified record; reports a sequence number reused for another entry at once. */
  add(record: RevocationRecord, at: RevocationSeenAt): RevocationSequenceProblem | undefined {
    if (record.enforcer !== undefined) return undefined;
    let seen = this.#byAuthority.get(record.authority);
    if (seen === undefined) {
      seen = new Map<number, Seen>();
      this.#byAuthority.set(record.authority, seen);
    }
    const entry = `${record.kind}:${record.id}`;
    const before = seen.get(record.sequence);
    if (before === undefined) {
      seen.set(record.sequence, { entry, at });
      return undefined;
    }
    if (before.entry === entry) return undefined;
    return {
      code: RevocationSequenceCode.reused,
      message: `deny-set sequence ${record.sequence} of \`${record.authority}\` names \`${record.id}\` here and another entry at line ${before.at.line ?? '?'}`,
      at,
    };
  }

  /**
   * The first gap: for each authority, the smallest number between its smallest and largest
   * logged sequence that has no record, reported at the record logged with the next number.
   */
  firstGap(): RevocationSequenceProblem | undefined {
    let first: RevocationSequenceProblem | undefined;
    for (const [authority, seen] of this.#byAuthority) {
      const numbers = [...seen.keys()].sort((a, b) => a - b);
      for (let i = 1; i < numbers.length; i++) {
        const previous = numbers[i - 1]!;
        const next = numbers[i]!;
        if (next === previous + 1) continue;
        const at = seen.get(next)!.at;
        if (first === undefined || (at.line ?? 0) < (first.at.line ?? 0))
          first = {
            code: RevocationSequenceCode.missing,
            message: `the deny-set of \`${authority}\` has ${next - previous - 1 === 1 ? `entry ${previous + 1}` : `entries ${previous + 1} to ${next - 1}`} with no revocation record (logged: ${previous}, then ${next})`,
            at,
          };
        break;
      }
    }
    return first;
  }
}
