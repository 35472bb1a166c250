/**
 * The trusted histories an auditor judges each record by: as they stood at a time the log
 * vouches for (docs/spec/audit.md, "Keys judged at the time the log vouches for").
 */
import type { Identifier, VerifiedIdentity } from '../identity/index.js';
import { MAX_CLOCK_SKEW_SECONDS } from '../identity/internal.js';
import type { VerifiedCheckpoint } from './checkpoint.js';

/** The identities a trail is verified with. */
export interface TrustedHistories {
  readonly authorities: ReadonlyMap<Identifier, VerifiedIdentity>;
  readonly enforcers: ReadonlyMap<Identifier, VerifiedIdentity>;
  readonly knownIdentities?: ReadonlyMap<Identifier, VerifiedIdentity> | undefined;
}

/**
 * For each entry of a verified log, the time by which it was in the log — the earliest time
 * among the dated checkpoints (`mandate-time`, signed) that cover it — and the trusted histories
 * as they stood then: each cut to the changes dated at most {@link MAX_CLOCK_SKEW_SECONDS} after
 * it (a rotation dated later was made after the record was logged, so it cannot have revoked or
 * retired the key the record was signed with; one dated earlier may have, and counts). An entry
 * no dated checkpoint covers is judged by the histories as given (the newest the auditor has).
 *
 * What a caller builds from a set of histories (`make`: chain verifiers, option objects) is made
 * once per distinct set — as many as there were rotations, not checkpoints.
 */
export class VouchedHistories<T> {
  readonly #sizes: number[] = [];
  /** `#times[k]`: the earliest time of the dated checkpoints `k…` (by tree size). */
  readonly #times: number[] = [];
  readonly #trusted: TrustedHistories;
  readonly #make: (histories: TrustedHistories) => T;
  readonly #made = new Map<string, T>();
  readonly #newest: T;
  #next = 0;
  #lastSeconds = NaN;
  #last: T | undefined;

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
      this.#times[k] = earliest;
    }
    this.#trusted = trusted;
    this.#make = make;
    this.#newest = make(trusted);
  }

  /**
   * What `make` built from the histories entry `index` is judged by. Indices must be asked in
   * increasing order (the log's).
   */
  at(index: number): T {
    const sizes = this.#sizes;
    while (this.#next < sizes.length && sizes[this.#next]! <= index) this.#next++;
    if (this.#next === sizes.length) return this.#newest;
    return this.#asOf(this.#times[this.#next]! + MAX_CLOCK_SKEW_SECONDS);
  }

  #asOf(seconds: number): T {
    if (seconds === this.#lastSeconds) return this.#last!;
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
    let made = this.#made.get(key);
    if (made === undefined) {
      made =
        authorities === this.#trusted.authorities &&
        enforcers === this.#trusted.enforcers &&
        knownIdentities === this.#trusted.knownIdentities
          ? this.#newest
          : this.#make({ authorities, enforcers, knownIdentities });
      this.#made.set(key, made);
    }
    this.#lastSeconds = seconds;
    this.#last = made;
    return made;
  }
}
