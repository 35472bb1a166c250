import type { Envelope, Worker } from '../../src/routing/index.js';

/** A worker that keeps what it receives and lets a test wait until `n` messages are in. */
export function collector(): Worker & { received: Envelope[]; waitFor(n: number): Promise<void> } {
  const received: Envelope[] = [];
  let wake: (() => void) | undefined;
  let want = Infinity;
  return {
    received,
    handleMessage(_ctx, envelope) {
      received.push(envelope);
      if (received.length >= want) wake?.();
    },
    waitFor(n) {
      want = n;
      return received.length >= n ? Promise.resolve() : new Promise((r) => (wake = r));
    },
  };
}
