/**
 * Reusable memory for outgoing frames. A transport writes each frame into a buffer taken here
 * and gives it back once the socket has taken the bytes (the write completed), so a stream of
 * frames of similar size reuses a few buffers instead of allocating one per frame: a fresh 16 KiB
 * buffer per message costs more than the copy into it, in page faults and in collections of
 * external memory. Buffers below MIN_POOLED_BYTES come from Buffer's own pool instead.
 *
 * Capacities are powers of two; each class keeps at most MAX_FREE_PER_CLASS buffers, so the pool
 * holds at most MAX_FREE_PER_CLASS of each size. Only buffers the pool made come back into it.
 */
const MIN_POOLED_BYTES = 4096;
/** Free buffers kept per size class: a connection's send window of frames, and some to spare. */
export const MAX_FREE_PER_CLASS = 16;

export class FramePool {
  readonly #free = new Map<number, ArrayBuffer[]>();
  readonly #ours = new WeakSet<ArrayBuffer>();

  /** `length` bytes, not zeroed: for a writer that overwrites every byte. */
  take(length: number): Uint8Array {
    if (length < MIN_POOLED_BYTES) {
      const small = Buffer.allocUnsafe(length);
      return new Uint8Array(small.buffer, small.byteOffset, length);
    }
    const capacity = 2 ** Math.ceil(Math.log2(length));
    const buffer = this.#free.get(capacity)?.pop() ?? this.#allocate(capacity);
    return new Uint8Array(buffer, 0, length);
  }

  /** Hands back a buffer from `take` whose bytes nothing will read again. */
  give(frame: Uint8Array): void {
    const buffer = frame.buffer;
    if (!(buffer instanceof ArrayBuffer) || !this.#ours.has(buffer)) return;
    let free = this.#free.get(buffer.byteLength);
    if (free === undefined) this.#free.set(buffer.byteLength, (free = []));
    if (free.length < MAX_FREE_PER_CLASS && !free.includes(buffer)) free.push(buffer);
  }

  #allocate(capacity: number): ArrayBuffer {
    const buffer = Buffer.allocUnsafeSlow(capacity).buffer;
    this.#ours.add(buffer);
    return buffer;
  }
}
