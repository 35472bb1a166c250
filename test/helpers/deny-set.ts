import { DenyEntryKind, DenySet } from '../../src/credentials/index.js';

/** A deny-set refreshed at `nowSeconds`, allowed to go `maxStalenessSeconds` without an update. */
export function freshDenySet(nowSeconds: number, maxStalenessSeconds = 600): DenySet {
  const set = new DenySet({ maxStalenessSeconds });
  set.markFresh(0, nowSeconds);
  return set;
}

/** Applies the next update: one revoked id (a revocation id, or an identifier with `identity`). */
export function revoke(
  set: DenySet,
  id: string,
  options: { readonly expiresAt: number; readonly nowSeconds: number; readonly identity?: boolean },
): void {
  set.apply({
    fromSequence: set.sequence,
    toSequence: set.sequence + 1,
    issuedAt: options.nowSeconds,
    entries: [
      {
        kind: options.identity === true ? DenyEntryKind.identity : DenyEntryKind.revocationId,
        id,
        expiresAt: options.expiresAt,
        revokedAt: options.nowSeconds,
      },
    ],
  });
}
