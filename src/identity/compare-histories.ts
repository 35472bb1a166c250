import { conflict } from '../core/internal.js';
import { bytesEqual } from '../encoding/index.js';
import type { VerifiedIdentity } from './verified-identity.js';

export const HistoryRelation = {
  newer: 'newer',
  equal: 'equal',
  older: 'older',
  conflict: 'conflict',
} as const;
export type HistoryRelation = (typeof HistoryRelation)[keyof typeof HistoryRelation];

/**
 * How `candidate` relates to `known` (both verified, same identifier), change hash by change hash
 * as Ockam's `Identity::compare`: a longer history that extends the known one is newer, a prefix
 * is older, anything else is a fork.
 */
export function compareHistories(
  known: VerifiedIdentity,
  candidate: VerifiedIdentity,
): HistoryRelation {
  const shared = Math.min(known.changes.length, candidate.changes.length);
  for (let i = 0; i < shared; i++) {
    if (!bytesEqual(known.changes[i]!.changeHash, candidate.changes[i]!.changeHash))
      return HistoryRelation.conflict;
  }
  if (candidate.changes.length > known.changes.length) return HistoryRelation.newer;
  if (candidate.changes.length < known.changes.length) return HistoryRelation.older;
  return HistoryRelation.equal;
}

/**
 * The history to trust when a presented history of an identity meets the one already known: the
 * presented one if it extends the known one, else the known one (never a rollback). A fork —
 * histories that diverge — is refused with ERR_IDENTITY_HISTORY_FORK: one of them was signed by a
 * stolen or superseded key. Every verifier that meets a presented history uses this, so none can
 * forget the fork check.
 */
export function newerHistory(
  known: VerifiedIdentity | undefined,
  presented: VerifiedIdentity,
): VerifiedIdentity {
  if (known === undefined) return presented;
  const relation = compareHistories(known, presented);
  if (relation === HistoryRelation.conflict) {
    throw conflict(
      'ERR_IDENTITY_HISTORY_FORK',
      `a presented history of \`${presented.identifier}\` diverges from the known one`,
    );
  }
  return relation === HistoryRelation.newer ? presented : known;
}
