import { sodium } from './sodium.js';

/** Bytes from libsodium's CSPRNG (getrandom(2) underneath). */
export function randomBytes(length: number): Uint8Array {
  const out = Buffer.allocUnsafe(length);
  sodium.randombytes_buf(out);
  return new Uint8Array(out.buffer, out.byteOffset, length);
}
