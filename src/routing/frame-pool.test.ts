import { describe, expect, it } from 'vitest';
import { FramePool, MAX_FREE_PER_CLASS } from './frame-pool.js';

describe('frame pool', () => {
  it('reuses a buffer once it is given back, for any frame of its size class', () => {
    const pool = new FramePool();
    const a = pool.take(16 * 1024 + 60);
    expect(a.byteLength).toBe(16 * 1024 + 60);
    expect(a.buffer.byteLength).toBe(32 * 1024);
    // Not given back yet: another frame gets other memory.
    const b = pool.take(20_000);
    expect(b.buffer).not.toBe(a.buffer);
    pool.give(a);
    const c = pool.take(30_000);
    expect(c.buffer).toBe(a.buffer);
    expect(c.byteLength).toBe(30_000);
    // A buffer is pooled once, however often it is given back.
    pool.give(c);
    pool.give(c);
    expect(pool.take(17_000).buffer).toBe(a.buffer);
    expect(pool.take(17_000).buffer).not.toBe(a.buffer);
  });

  it('never takes in memory it did not make, and leaves small frames to Buffer', () => {
    const pool = new FramePool();
    const foreign = new Uint8Array(32 * 1024);
    pool.give(foreign);
    expect(pool.take(20_000).buffer).not.toBe(foreign.buffer);
    const small = pool.take(100);
    expect(small.byteLength).toBe(100);
    pool.give(small);
    expect(pool.take(100).buffer === small.buffer && small.byteOffset === 0).toBe(false);
  });

  it('keeps a bounded number of free buffers per size class', () => {
    const pool = new FramePool();
    const taken = Array.from({ length: MAX_FREE_PER_CLASS + 5 }, () => pool.take(10_000));
    for (const frame of taken) pool.give(frame);
    const again = Array.from({ length: MAX_FREE_PER_CLASS + 5 }, () => pool.take(10_000));
    const reused = again.filter((f) => taken.some((t) => t.buffer === f.buffer)).length;
    expect(reused).toBe(MAX_FREE_PER_CLASS);
  });
});
