/**
 * The trusted histories an auditor judges each record by: as they stood at a time the log
 * vouches for (docs/spec/audit.md, "Keys judged at the time the log vouches for").
 */
import type { Identifier, VerifiedIdentity } from '../identity/index.js';
import type { VerifiedCheckpoint } from './checkpoint.js';

/** The identities a trail is verified with. */
export interface TrustedHistories {
  readonly authorities: ReadonlyMap<Identifier, VerifiedIdentity>;
  readonly enforcers: ReadonlyMap<Identifier, VerifiedIdentity>;
  readonly knownIdentities?: ReadonlyMap<Identifier, VerifiedIdentity> | undefined;
}

/**
 * For each entry of a verified log, the time by which it was in the log — the second before the
 * earliest date among the dated checkpoints (`mandate-time`, signed) that cover it — and the
 * trusted histories as they stood at a time: each cut to its changes dated at or before it (a
 * rotation dated later, or in the checkpoint's own second, was made after the record was logged,
 * so it cannot have revoked or retired the key the record was signed with; one dated earlier may
 * have, and counts). A record claiming a later time than that is judged again at the second
 * before its own time, when a trusted history changed in between ({@link later}). An entry no
 * dated checkpoint covers is judged by the histories as given (the newest the auditor has).
 *
 * What a caller builds from a set of histories (`make`: chain verifiers, option objects) is made
 * once per distinct set — as many as there were rotations, not checkpoints or records.
 */
export class VouchedHistories<T> {
  readonly #sizes: number[] = [];
  /** `#times[k]`: the second before the earliest date of the dated checkpoints `k…` (by size). */
  readonly #times: number[] = [];
  /** The dates of every trusted history's changes after its first, ascending. */
  readonly #changes: number[];
  readonly #trusted: TrustedHistories;
  readonly #make: (histories: TrustedHistories) => T;
  readonly #made = new Map<string, T>();
  /** What was made for recent times. */
  readonly #recent = new Map<number, T>();
  readonly #newest: T;
  #next = 0;

  constructor(
    checkpoints: readonly VerifiedCheckpoint[] | undefined,
    trusted: TrustedHistories,
    make: (histories: TrustedHistories) => T,
  ) {
    const dated = (checkpoints ?? [])
      .filter((c) => c.time !== undefined)
      .sort((a, b) => a.treeSize - b.treeSize);
    let earliest = Infinity;
    for (let k = dated.length - 1; k >= 0; k--) {
      earliest = Math.min(earliest, dated[k]!.time!);
      this.#sizes[k] = dated[k]!.treeSize;
      // The second before it: a rotation dated in the checkpoint's own second is taken to follow
      // it (a script that checkpoints, then rotates, usually lands both in one second).
      this.#times[k] = earliest - 1;
    }
    this.#changes = [];
    for (const map of [trusted.authorities, trusted.enforcers, trusted.knownIdentities])
      for (const identity of map?.values() ?? [])
        for (let i = 1; i < identity.changes.length; i++)
          this.#changes.push(identity.changes[i]!.attestationsValidFrom);
    this.#changes.sort((a, b) => a - b);
    this.#trusted = trusted;
    this.#make = make;
    this.#newest = make(trusted);
  }

  /**
   * The time by which entry `index` was in the log, as the dated checkpoints covering it vouch:
   * the second before the earliest of their dates (Infinity when none covers it). Indices must
   * be asked in increasing order (the log's).
   */
  vouchedAt(index: number): number {
    const sizes = this.#sizes;
    while (this.#next < sizes.length && sizes[this.#next]! <= index) this.#next++;
    return this.#next === sizes.length ? Infinity : this.#times[this.#next]!;
  }

  /**
   * For a record the log held by `vouchedAt` that claims the later time `time`: what `make` built
   * for the histories at `time`, when a trusted history changed in between — the record is
   * checked again with it; undefined when nothing changed (or the record claims no later time).
   */
  later(vouchedAt: number, time: number): T | undefined {
    // As for a checkpoint, the second before: a rotation in the record's own second is taken to
    // follow it.
    const before = time - 1;
    return vouchedAt !== Infinity && before > vouchedAt && this.changedWithin(vouchedAt, before)
      ? this.at(before)
      : undefined;
  }

  /** Whether a trusted history has a change dated after `from` and at or before `to`. */
  changedWithin(from: number, to: number): boolean {
    const changes = this.#changes;
    let lo = 0;
    let hi = changes.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (changes[mid]! <= from) lo = mid + 1;
      else hi = mid;
    }
    return lo < changes.length && changes[lo]! <= to;
  }

  /** What `make` built from the trusted histories as they stood at `seconds` (Infinity: as given). */
  at(seconds: number): T {
    if (seconds === Infinity) return this.#newest;
    let made = this.#recent.get(seconds);
    if (made !== undefined) return made;
    const cut = (
      map: ReadonlyMap<Identifier, VerifiedIdentity> | undefined,
      lengths: number[],
    ): ReadonlyMap<Identifier, VerifiedIdentity> | undefined => {
      if (map === undefined) return undefined;
      let changed: Map<Identifier, VerifiedIdentity> | undefined;
      for (const [id, identity] of map) {
        const prefix = identity.asOf(seconds);
        lengths.push(prefix.changes.length);
        if (prefix !== identity) (changed ??= new Map(map)).set(id, prefix);
      }
      return changed ?? map;
    };
    const lengths: number[] = [];
    const authorities = cut(this.#trusted.authorities, lengths)!;
    const enforcers = cut(this.#trusted.enforcers, lengths)!;
    const knownIdentities = cut(this.#trusted.knownIdentities, lengths);
    const key = lengths.join(',');
    made = this.#made.get(key);
    if (made === undefined) {
      made =
        authorities === this.#trusted.authorities &&
        enforcers === this.#trusted.enforcers &&
        knownIdentities === this.#trusted.knownIdentities
          ? this.#newest
          : this.#make({ authorities, enforcers, knownIdentities });
      this.#made.set(key, made);
    }
    if (this.#recent.size >= RECENT_TIMES) this.#recent.clear();
    this.#recent.set(seconds, made);
    return made;
  }
}

/** Times whose histories are kept at hand (cleared when full). */
const RECENT_TIMES = 64;
