import { concatBytes, toHex } from '../encoding/index.js';
import { sha256 } from '../crypto/index.js';

/**
 * What a deny list names to revoke one credential or delegation link: 32 lowercase hex digits.
 * It is derived from the signature, which is unique per issuance whenever the signed bytes
 * differ (and, for P-256, even when they do not: ECDSA signatures are randomised).
 */
export type RevocationId = string;

const REVOCATION_ID_DOMAIN = new TextEncoder().encode('mandate/revocation-id/v1');
const REVOCATION_ID_BYTES = 16;

/** hex(SHA-256("mandate/revocation-id/v1" ‖ signature)[0..16]) of the raw signature bytes. */
export function revocationIdOf(signature: Uint8Array): RevocationId {
  return toHex(
    sha256(concatBytes(REVOCATION_ID_DOMAIN, signature)).subarray(0, REVOCATION_ID_BYTES),
  );
}
