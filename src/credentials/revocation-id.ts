import { invalid } from '../core/internal.js';
import { concatBytes, fromHex, toHex } from '../encoding/index.js';
import { sha256 } from '../crypto/index.js';
import { isIdentifier, type Identifier } from '../identity/index.js';

/**
 * What a deny list names to revoke one credential or delegation link: 32 lowercase hex digits.
 *
 * It names what was signed and who signed it — never the signature. A signature is bytes its
 * holder can rewrite without any key (ECDSA's (r, n − s); a lax Ed25519 verifier's S + L), and a
 * revocation id that moved with it would let the holder of a revoked credential present it again
 * under a new id (issue 8). The signed data cannot change without the signature failing, and a
 * credential or link is unique per issuance: a link carries a random nonce, a credential its
 * subject, attributes and window. Two credentials with the very same content from the same issuer
 * are the same grant and share their revocation id.
 */
export type RevocationId = string;

const REVOCATION_ID_DOMAIN = new TextEncoder().encode('mandate/revocation-id/v2');
const REVOCATION_ID_BYTES = 16;
const SHA256_BYTES = 32;

/**
 * hex(SHA-256("mandate/revocation-id/v2" ‖ issuer ‖ SHA-256(signed data))[0..16]), where issuer
 * is the 32 identifier bytes of the issuing identity and the signed data is the VersionedData
 * bytes the issuer signed (for a credential, what `VerifiedCredential.hash` is the hash of; for a
 * link, `VerifiedLink.hash`).
 */
export function revocationIdOf(issuer: Identifier, signedDataHash: Uint8Array): RevocationId {
  if (!isIdentifier(issuer))
    throw invalid('ERR_ARGUMENT_INVALID', '`issuer` must be an identifier');
  // A 64-byte signature here is a caller's mistake: refuse it rather than hash it.
  if (signedDataHash.byteLength !== SHA256_BYTES)
    throw invalid(
      'ERR_ARGUMENT_INVALID',
      '`signedDataHash` must be the 32-byte SHA-256 of the signed data',
    );
  return toHex(
    sha256(concatBytes(REVOCATION_ID_DOMAIN, fromHex(issuer.slice(1)), signedDataHash)).subarray(
      0,
      REVOCATION_ID_BYTES,
    ),
  );
}
