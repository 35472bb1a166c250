import { conflict, invalid, isUnixSeconds, forbidden, unavailable } from '../core/internal.js';
import { isMandateError, MandateError } from '../core/index.js';
import { isIdentifier } from '../identity/index.js';

/**
 * Revocation at scale (research/standards.md §3): every credential and delegation link has a
 * revocation id, and the authority keeps an append-only, sequenced list of what is revoked — link
 * ids, and whole identities (which revokes everything an identity issued or holds). Verifiers hold
 * a `DenySet` fed by incremental updates in the style of `spiffe_sequence`, prune entries once the
 * revoked thing has expired anyway, and fail closed when their view is older than a bound.
 * Revocation is irreversible: nothing here removes an entry before its expiry.
 */
export const DenyEntryKind = {
  /** A credential's or delegation link's revocation id: 32 lowercase hex digits. */
  revocationId: 'revocation-id',
  /** An identity's identifier (`I` + 64 lowercase hex digits). */
  identity: 'identity',
} as const;
export type DenyEntryKind = (typeof DenyEntryKind)[keyof typeof DenyEntryKind];

/**
 * One revocation: a credential or link (by revocation id) or a whole identity, and until when it matters.
 */
export interface DenyEntry {
  readonly kind: DenyEntryKind;
  readonly id: string;
  /**
   * Unix seconds after which the entry may be pruned: the revoked thing's own expiry (for an
   * identity, a far bound chosen by the revoker).
   */
  readonly expiresAt: number;
  readonly revokedAt: number;
  readonly reason?: string;
}

/**
 * Entries `fromSequence + 1 … toSequence`, one sequence step per entry, issued at `issuedAt`
 * (the authority's word that its list stood at `toSequence` then).
 */
export interface DenySetUpdate {
  readonly fromSequence: number;
  readonly toSequence: number;
  readonly entries: readonly DenyEntry[];
  readonly issuedAt: number;
}

/** Every unexpired entry up to `sequence`, as of `issuedAt`. */
export interface DenySetSnapshot {
  readonly sequence: number;
  readonly entries: readonly DenyEntry[];
  readonly issuedAt: number;
}

/**
 * Options of {@link DenySet}.
 */
export interface DenySetOptions {
  /** How old (now − the last update or heartbeat) the view may be before every check fails. */
  readonly maxStalenessSeconds: number;
}

/** The fields of an entry as they arrive from a decoder or a database row, before checking. */
export interface DenyEntryFields {
  readonly kind: string;
  readonly id: string;
  readonly expiresAt: number;
  readonly revokedAt: number;
  readonly reason?: string | undefined;
}

const MAX_REASON_LENGTH = 200;
const REVOCATION_ID_RE = /^[0-9a-f]{32}$/;
// No control, format, surrogate, private-use or unassigned code points: a reason is shown to people.
const PRINTABLE_RE = /^\P{C}*$/u;

/**
 * Checks an entry field by field (id shape must match its kind; times are safe non-negative
 * integers; a reason is at most 200 printable characters) and returns a fresh copy holding only
 * the known fields. Throws ERR_DENY_ENTRY_INVALID.
 */
export function parseDenyEntry(fields: DenyEntryFields): DenyEntry {
  const { kind, id, expiresAt, revokedAt, reason } = fields;
  let entryKind: DenyEntryKind;
  if (kind === DenyEntryKind.revocationId) {
    if (typeof id !== 'string' || !REVOCATION_ID_RE.test(id))
      throw entryInvalid(`a revocation id is 32 lowercase hex digits, not ${excerpt(id)}`);
    entryKind = kind;
  } else if (kind === DenyEntryKind.identity) {
    if (typeof id !== 'string' || !isIdentifier(id))
      throw entryInvalid(`an identity is \`I\` and 64 lowercase hex digits, not ${excerpt(id)}`);
    entryKind = kind;
  } else {
    throw entryInvalid(
      `a deny entry's kind is \`revocation-id\` or \`identity\`, not ${excerpt(kind)}`,
    );
  }
  if (!isTime(expiresAt))
    throw entryInvalid(`\`expiresAt\` of ${excerpt(id)} is not a non-negative integer`);
  if (!isTime(revokedAt))
    throw entryInvalid(`\`revokedAt\` of ${excerpt(id)} is not a non-negative integer`);
  if (reason === undefined) return { kind: entryKind, id, expiresAt, revokedAt };
  if (typeof reason !== 'string' || reason.length > MAX_REASON_LENGTH || !PRINTABLE_RE.test(reason))
    throw entryInvalid(
      `the reason for ${excerpt(id)} is not at most ${MAX_REASON_LENGTH} printable characters`,
    );
  return { kind: entryKind, id, expiresAt, revokedAt, reason };
}

/**
 * The verifier's view of the deny-set. `isRevoked` and `assertNoneRevoked` run on every tool call:
 * they are one `Map` lookup per id and allocate nothing unless they throw.
 *
 * @example
 * ```ts
 * const denySet = new DenySet({ maxStalenessSeconds: 30 });
 * denySet.applySnapshot(await store.denySet.snapshot(now)); // fresh from now on
 * const chain = verifyChain(bytes, { nowSeconds: now, authorities, denySet }); // a revoked link: ERR_REVOKED
 * ```
 */
export class DenySet {
  // One map for both kinds: the shapes (32 hex digits vs `I` + 64) cannot collide.
  readonly #entries = new Map<string, DenyEntry>();
  readonly #maxStalenessSeconds: number;
  #sequence = 0;
  // -Infinity until the first update, heartbeat or snapshot: a new set is stale, so fails closed.
  #freshAt = Number.NEGATIVE_INFINITY;

  constructor(options: DenySetOptions) {
    if (!isTime(options.maxStalenessSeconds))
      throw invalid('ERR_ARGUMENT_INVALID', '`maxStalenessSeconds` must be a non-negative integer');
    this.#maxStalenessSeconds = options.maxStalenessSeconds;
  }

  /** A set holding exactly the snapshot's entries, at its sequence, fresh as of its `issuedAt`. */
  static fromSnapshot(snapshot: DenySetSnapshot, options: DenySetOptions): DenySet {
    const set = new DenySet(options);
    set.applySnapshot(snapshot);
    return set;
  }

  get sequence(): number {
    return this.#sequence;
  }

  get size(): number {
    return this.#entries.size;
  }

  /**
   * Applies an update (all or nothing). One that starts past this set's sequence throws
   * ERR_DENY_SET_GAP: fetch the missing updates or a snapshot. One that ends at or before it is a
   * duplicate or a replay and is ignored, freshness included; one that overlaps it contributes
   * only its entries past this set's sequence. Malformed → ERR_DENY_SET_UPDATE_INVALID.
   */
  apply(update: DenySetUpdate): void {
    const { fromSequence, toSequence, issuedAt } = update;
    if (!isTime(fromSequence) || !isTime(toSequence) || !isTime(issuedAt))
      throw updateInvalid(
        'an update needs non-negative integer `fromSequence`, `toSequence` and `issuedAt`',
      );
    const entries = parseEntries(update.entries, 'update');
    if (toSequence !== fromSequence + entries.length)
      throw updateInvalid(
        `an update from sequence \`${fromSequence}\` to \`${toSequence}\` cannot carry ${entries.length} entries`,
      );
    if (fromSequence > this.#sequence) throw gap(fromSequence, this.#sequence);
    if (fromSequence < this.#sequence && toSequence <= this.#sequence) return;
    for (let i = this.#sequence - fromSequence; i < entries.length; i++) {
      const entry = entries[i]!;
      // A pruned id revoked again comes back with its new expiry.
      this.#entries.set(entry.id, entry);
    }
    this.#sequence = toSequence;
    if (issuedAt > this.#freshAt) this.#freshAt = issuedAt;
  }

  /**
   * Catches up from a snapshot, when updates cannot (ERR_DENY_SET_GAP: the entries this set
   * misses were pruned). Adds every entry of the snapshot, moves to its sequence and refreshes to
   * its `issuedAt`; entries this set holds and the snapshot no longer does are kept (they were
   * pruned as expired: revocation is never undone here). A snapshot behind this set's sequence
   * means the list went back (a reset or a foreign list): ERR_DENY_SET_GAP, nothing changes, and
   * the set goes stale. Malformed → ERR_DENY_SET_UPDATE_INVALID.
   */
  applySnapshot(snapshot: DenySetSnapshot): void {
    const { sequence, issuedAt } = snapshot;
    if (!isTime(sequence) || !isTime(issuedAt))
      throw updateInvalid('a snapshot needs a non-negative integer `sequence` and `issuedAt`');
    const entries = parseEntries(snapshot.entries, 'snapshot');
    if (entries.length > sequence)
      throw updateInvalid(
        `a snapshot at sequence \`${sequence}\` cannot hold ${entries.length} entries`,
      );
    if (sequence < this.#sequence)
      throw conflict(
        'ERR_DENY_SET_GAP',
        `the deny-set is at sequence \`${this.#sequence}\` and was sent a snapshot at \`${sequence}\`; the list went back`,
      );
    for (const entry of entries) this.#entries.set(entry.id, entry);
    this.#sequence = sequence;
    if (issuedAt > this.#freshAt) this.#freshAt = issuedAt;
  }

  /**
   * A heartbeat: the authority's word that its list still stood at `sequence` at `issuedAt`. A
   * heartbeat past this set's sequence means updates were missed (ERR_DENY_SET_GAP); an older one
   * is ignored.
   */
  markFresh(sequence: number, issuedAt: number): void {
    if (!isTime(sequence) || !isTime(issuedAt))
      throw updateInvalid('a heartbeat needs a non-negative integer `sequence` and `issuedAt`');
    if (sequence > this.#sequence) throw gap(sequence, this.#sequence);
    if (sequence < this.#sequence) return;
    if (issuedAt > this.#freshAt) this.#freshAt = issuedAt;
  }

  /** Whether `id` (a revocation id or an identifier) is in the set; ignores freshness. */
  isRevoked(id: string): boolean {
    return this.#entries.has(id);
  }

  /**
   * The per-call check, with every id of a chain (each link's revocation id and each identity in
   * it). Throws ERR_DENY_SET_STALE when `nowSeconds - lastFreshAt > maxStalenessSeconds` (and when
   * the set was never refreshed, or `nowSeconds` is not unix seconds: fail closed), ERR_REVOKED when
   * any id is in the set.
   */
  assertNoneRevoked(ids: readonly string[], nowSeconds: number): void {
    // A time that is not unix seconds (NaN, ±Infinity, a fraction, a missing clock) is stale.
    if (!isUnixSeconds(nowSeconds) || nowSeconds - this.#freshAt > this.#maxStalenessSeconds)
      throw this.#stale(nowSeconds);
    // An index loop, not for-of: no iterator object on the hot path, even before optimisation.
    for (let i = 0; i < ids.length; i++) {
      const entry = this.#entries.get(ids[i]!);
      if (entry !== undefined)
        throw forbidden(
          'ERR_REVOKED',
          `${entry.kind === DenyEntryKind.identity ? 'identity' : 'revocation id'} \`${entry.id}\` is revoked`,
        );
    }
  }

  /** Drops entries whose `expiresAt` is before `nowSeconds`; the sequence stays. Returns how many. */
  prune(nowSeconds: number): number {
    checkNonNegativeInteger('nowSeconds', nowSeconds);
    let pruned = 0;
    for (const [id, entry] of this.#entries) {
      if (entry.expiresAt < nowSeconds) {
        this.#entries.delete(id);
        pruned++;
      }
    }
    return pruned;
  }

  /**
   * The unexpired entries at this set's sequence. `issuedAt` is the set's freshness time (0 if it
   * was never refreshed), not `nowSeconds`: a set rebuilt from it is exactly as fresh as this one.
   */
  snapshot(nowSeconds: number): DenySetSnapshot {
    checkNonNegativeInteger('nowSeconds', nowSeconds);
    const entries: DenyEntry[] = [];
    for (const entry of this.#entries.values())
      if (entry.expiresAt >= nowSeconds) entries.push(entry);
    return {
      sequence: this.#sequence,
      entries,
      issuedAt: this.#freshAt === Number.NEGATIVE_INFINITY ? 0 : this.#freshAt,
    };
  }

  #stale(nowSeconds: number): MandateError {
    const message = !isUnixSeconds(nowSeconds)
      ? `the time \`${String(nowSeconds)}\` is not unix seconds, so the deny-set cannot be fresh`
      : this.#freshAt === Number.NEGATIVE_INFINITY
        ? 'the deny-set has never been refreshed'
        : `the deny-set was last refreshed at \`${this.#freshAt}\`, more than \`${this.#maxStalenessSeconds}\` s before \`${nowSeconds}\``;
    return unavailable('ERR_DENY_SET_STALE', message);
  }
}

/** The authority's side: the durable, sequenced list. */
export interface DenySetRepository {
  /**
   * Appends entries (all checked first: ERR_DENY_ENTRY_INVALID, nothing written), assigning the
   * next sequence numbers atomically, one per new id. An id already present — or earlier in the
   * same call — is a no-op and takes no sequence number. Returns the update to push to verifiers:
   * the new entries only, from the sequence before to the sequence after, issued at `nowSeconds`.
   * Inside a database transaction, push it only after the transaction commits.
   */
  append(entries: readonly DenyEntry[], nowSeconds: number): Promise<DenySetUpdate>;
  /**
   * Every entry after `sequence`, for a verifier catching up. ERR_DENY_SET_GAP when some of them
   * have been pruned, or `sequence` is ahead of the list: the verifier then takes a snapshot.
   */
  updatesSince(sequence: number, nowSeconds: number): Promise<DenySetUpdate>;
  /** Every entry not yet expired at `nowSeconds` (`expiresAt >= nowSeconds`), in sequence order. */
  snapshot(nowSeconds: number): Promise<DenySetSnapshot>;
  /** Deletes entries whose `expiresAt` is before `nowSeconds`; sequence numbers are never reused. */
  prune(nowSeconds: number): Promise<number>;
  currentSequence(): Promise<number>;
}

/** A DenySetRepository in process memory: for tests and single-process deployments. */
export class MemoryDenySetRepository implements DenySetRepository {
  // Insertion order is sequence order, which updatesSince and snapshot rely on.
  readonly #bySequence = new Map<number, DenyEntry>();
  readonly #present = new Set<string>();
  #sequence = 0;

  append(entries: readonly DenyEntry[], nowSeconds: number): Promise<DenySetUpdate> {
    return settle(() => {
      checkNonNegativeInteger('nowSeconds', nowSeconds);
      const parsed = entries.map(parseDenyEntry);
      const fromSequence = this.#sequence;
      const added: DenyEntry[] = [];
      for (const entry of parsed) {
        if (this.#present.has(entry.id)) continue;
        this.#sequence++;
        this.#bySequence.set(this.#sequence, entry);
        this.#present.add(entry.id);
        added.push(entry);
      }
      return { fromSequence, toSequence: this.#sequence, entries: added, issuedAt: nowSeconds };
    });
  }

  updatesSince(sequence: number, nowSeconds: number): Promise<DenySetUpdate> {
    return settle(() => {
      checkNonNegativeInteger('sequence', sequence);
      checkNonNegativeInteger('nowSeconds', nowSeconds);
      if (sequence > this.#sequence) throw denySetAheadError(sequence, this.#sequence);
      const entries: DenyEntry[] = [];
      for (const [entrySequence, entry] of this.#bySequence)
        if (entrySequence > sequence) entries.push(entry);
      if (entries.length !== this.#sequence - sequence) throw denySetPrunedError(sequence);
      return { fromSequence: sequence, toSequence: this.#sequence, entries, issuedAt: nowSeconds };
    });
  }

  snapshot(nowSeconds: number): Promise<DenySetSnapshot> {
    return settle(() => {
      checkNonNegativeInteger('nowSeconds', nowSeconds);
      const entries: DenyEntry[] = [];
      for (const entry of this.#bySequence.values())
        if (entry.expiresAt >= nowSeconds) entries.push(entry);
      return { sequence: this.#sequence, entries, issuedAt: nowSeconds };
    });
  }

  prune(nowSeconds: number): Promise<number> {
    return settle(() => {
      checkNonNegativeInteger('nowSeconds', nowSeconds);
      let pruned = 0;
      for (const [entrySequence, entry] of this.#bySequence) {
        if (entry.expiresAt < nowSeconds) {
          this.#bySequence.delete(entrySequence);
          this.#present.delete(entry.id);
          pruned++;
        }
      }
      return pruned;
    });
  }

  currentSequence(): Promise<number> {
    return Promise.resolve(this.#sequence);
  }
}

// For DenySetRepository implementations (the SQLite one lives in src/store): one wording of the
// errors every implementation raises.

/** ERR_DENY_SET_GAP from a repository whose caller is ahead of it (a reset or foreign list). */
export function denySetAheadError(sequence: number, current: number): MandateError {
  return conflict(
    'ERR_DENY_SET_GAP',
    `sequence \`${sequence}\` is ahead of the deny-set's \`${current}\`; take a snapshot`,
  );
}

/** ERR_DENY_SET_GAP from a repository that has pruned entries the caller has not seen. */
export function denySetPrunedError(sequence: number): MandateError {
  return conflict(
    'ERR_DENY_SET_GAP',
    `entries after sequence \`${sequence}\` have been pruned; take a snapshot`,
  );
}

/** ERR_ARGUMENT_INVALID unless `value` is a safe non-negative integer (a time or a sequence). */
export function checkNonNegativeInteger(name: string, value: number): void {
  if (!isTime(value))
    throw invalid('ERR_ARGUMENT_INVALID', `\`${name}\` must be a non-negative integer`);
}

function isTime(value: unknown): value is number {
  return isUnixSeconds(value);
}

/** Parses the entries of an update or snapshot; any fault makes the whole message invalid. */
function parseEntries(entries: readonly DenyEntry[], what: string): DenyEntry[] {
  if (!isList(entries)) throw updateInvalid(`the ${what}'s entries are not a list`);
  const parsed: DenyEntry[] = [];
  const seen = new Set<string>();
  for (const entry of entries) {
    let checked: DenyEntry;
    try {
      checked = parseDenyEntry(entry);
    } catch (error) {
      if (!isMandateError(error, 'ERR_DENY_ENTRY_INVALID')) throw error;
      throw updateInvalid(`the ${what} holds an invalid entry: ${error.message}`, error);
    }
    if (seen.has(checked.id)) throw updateInvalid(`the ${what} holds ${excerpt(checked.id)} twice`);
    seen.add(checked.id);
    parsed.push(checked);
  }
  return parsed;
}

/** Array.isArray without its type guard, which would narrow a typed list to any[]. */
function isList(value: unknown): boolean {
  return Array.isArray(value);
}

function gap(from: number, current: number): MandateError {
  return conflict(
    'ERR_DENY_SET_GAP',
    `the deny-set is at sequence \`${current}\` and was sent \`${from}\`; fetch the updates in between or a snapshot`,
  );
}

const updateInvalid = (message: string, cause?: unknown): MandateError =>
  invalid('ERR_DENY_SET_UPDATE_INVALID', message, cause);

const entryInvalid = (message: string): MandateError => invalid('ERR_DENY_ENTRY_INVALID', message);

/** A value for a message: quoted and cut short, since it may be anything a peer sent. */
function excerpt(value: unknown): string {
  if (typeof value !== 'string') return `a ${typeof value}`;
  // One line whatever was sent: backticks and anything outside printable ASCII become `?`.
  const shown = value.slice(0, 72).replace(/[^\x20-\x7e]|`/g, '?');
  return `\`${shown}${value.length > 72 ? '…' : ''}\``;
}

/** Runs `work` now and turns a throw into a rejection (repository methods never throw). */
function settle<T>(work: () => T): Promise<T> {
  return new Promise((resolve) => {
    resolve(work());
  });
}
