/**
 * A retry delay with jitter: `delayMs` spread uniformly over [delayMs / 2, delayMs] ("equal
 * jitter"). A swarm that lost its relay or authority at the same moment then comes back spread
 * over half the backoff instead of in lockstep, while no retry comes sooner than half the delay.
 * `random` returns a number in [0, 1) (the crypto layer's `randomUnit`; a fixed value in tests).
 */
export function withJitter(delayMs: number, random: () => number): number {
  const r = random();
  const unit = Number.isFinite(r) ? Math.min(Math.max(r, 0), 1) : 1;
  return Math.round(delayMs / 2 + (delayMs / 2) * unit);
}

/** setTimeout fires at once beyond 2^31 − 1 ms: longer waits are taken in steps of at most this. */
export const MAX_TIMER_MS = 2_147_483_647;
