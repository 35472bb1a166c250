// How the demo's steps time themselves (one place for every step and both threads of step 19).

/** Seconds since `start` (a `process.hrtime.bigint()` reading). */
export function secondsSince(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/** Wall-clock milliseconds, comparable across threads (step 19's revocation latency). */
export function wallMs(): number {
  return performance.timeOrigin + performance.now();
}
