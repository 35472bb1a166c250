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
