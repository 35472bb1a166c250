import { inspect } from 'node:util';
import { sodium } from './sodium.js';

const REDACTED = '[redacted]';

/**
 * Secret bytes in guarded memory. `sodium_malloc` gives each allocation guard pages and mlock(2)
 * (never swapped, never in a core dump), at a cost of several pages per call; thousands of agent
 * keys would exhaust RLIMIT_MEMLOCK. So one arena takes guarded chunks and carves fixed slots out
 * of them; a freed slot is wiped and reused for the next secret of the same size.
 */
export class SecureArena {
  readonly #chunkBytes: number;
  #chunk: Buffer | undefined;
  #offset = 0;
  readonly #free = new Map<number, Buffer[]>();
  #allocatedBytes = 0;

  constructor(chunkBytes = 64 * 1024) {
    this.#chunkBytes = chunkBytes;
  }

  allocate(length: number): SecretBytes {
    const freeList = this.#free.get(length);
    const reused = freeList?.pop();
    if (reused !== undefined) return new SecretBytes(reused, this);
    // 8-byte alignment keeps slots apart from each other's tails.
    const span = (length + 7) & ~7;
    if (this.#chunk === undefined || this.#offset + span > this.#chunk.length) {
      this.#chunk = sodium.sodium_malloc(Math.max(this.#chunkBytes, span));
      this.#offset = 0;
    }
    const slot = this.#chunk.subarray(this.#offset, this.#offset + length);
    this.#offset += span;
    this.#allocatedBytes += span;
    return new SecretBytes(slot, this);
  }

  /** Copies `bytes` into a fresh slot; the caller should wipe its own copy. */
  allocateFrom(bytes: Uint8Array): SecretBytes {
    const secret = this.allocate(bytes.byteLength);
    secret.expose().set(bytes);
    return secret;
  }

  get allocatedBytes(): number {
    return this.#allocatedBytes;
  }

  /** @internal called by SecretBytes.destroy */
  release(slot: Buffer): void {
    sodium.sodium_memzero(slot);
    let list = this.#free.get(slot.length);
    if (list === undefined) {
      list = [];
      this.#free.set(slot.length, list);
    }
    list.push(slot);
  }
}

/** A secret whose every string form is `[redacted]`; `expose()` is the only way to the bytes. */
export class SecretBytes {
  #slot: Buffer | undefined;
  readonly #arena: SecureArena;

  constructor(slot: Buffer, arena: SecureArena) {
    this.#slot = slot;
    this.#arena = arena;
  }

  get byteLength(): number {
    return this.#slot?.length ?? 0;
  }

  get destroyed(): boolean {
    return this.#slot === undefined;
  }

  /** The bytes themselves, for a crypto call; never keep, log or copy the result. */
  expose(): Buffer {
    if (this.#slot === undefined) throw new Error('secret used after destroy');
    return this.#slot;
  }

  /** Wipes the bytes and returns the slot to the arena. Idempotent. */
  destroy(): void {
    if (this.#slot === undefined) return;
    this.#arena.release(this.#slot);
    this.#slot = undefined;
  }

  toString(): string {
    return REDACTED;
  }
  toJSON(): string {
    return REDACTED;
  }
  [inspect.custom](): string {
    return REDACTED;
  }
}
