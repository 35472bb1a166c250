// A SCRAM-SHA-256 verifier (RFC 5802 §3, RFC 7677) in PostgreSQL's text form, computed here so
// that `CREATE ROLE … PASSWORD` carries the verifier and never the password: the plaintext does not
// reach the server, its statement log or an error it echoes. PostgreSQL stores a password that is
// already a valid verifier as it is (the same path `psql \password` takes).
import { hmacSha256, pbkdf2Sha256, sha256, wipe } from '../crypto/index.js';

/** PostgreSQL's default `scram_iterations` (fixed at 4096 before version 16). */
export const SCRAM_ITERATIONS = 4096;
export const SCRAM_SALT_BYTES = 16;

const encoder = new TextEncoder();
const base64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64');

/**
 * `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (base64), PostgreSQL's
 * `pg_authid.rolpassword` form. The password must be ASCII without control characters: the
 * server applies SASLprep to what the client sends, and for such a password it changes nothing,
 * so computing over the raw bytes gives the verifier the server would have computed.
 */
export async function scramSha256Verifier(
  password: string,
  salt: Uint8Array,
  iterations: number = SCRAM_ITERATIONS,
): Promise<string> {
  // SaltedPassword := Hi(Normalize(password), salt, i), Hi being PBKDF2 with HMAC-SHA-256.
  const salted = await pbkdf2Sha256(encoder.encode(password), salt, iterations, 32);
  const clientKey = hmacSha256(salted, encoder.encode('Client Key'));
  const storedKey = sha256(clientKey);
  const serverKey = hmacSha256(salted, encoder.encode('Server Key'));
  wipe(salted);
  wipe(clientKey);
  return `SCRAM-SHA-256$${iterations}:${base64(salt)}$${base64(storedKey)}:${base64(serverKey)}`;
}
