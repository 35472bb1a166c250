import { asBuffer, sodium } from './sodium.js';

/** Bytes from libsodium's CSPRNG (getrandom(2) underneath). */
export function randomBytes(length: number): Uint8Array {
  const out = Buffer.allocUnsafe(length);
  sodium.randombytes_buf(out);
  return new Uint8Array(out.buffer, out.byteOffset, length);
}

/** Fills `out` from libsodium's CSPRNG: random bytes straight into a caller's buffer (a nonce slot). */
export function randomFill(out: Uint8Array): void {
  sodium.randombytes_buf(asBuffer(out));
}

/** A uniform number in [0, 1) from libsodium's CSPRNG (for jitter; the global PRNG is banned). */
export function randomUnit(): number {
  return sodium.randombytes_random() / 0x1_0000_0000;
}
