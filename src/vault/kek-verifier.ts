import {
  AEAD_NONCE_BYTES,
  AEAD_TAG_BYTES,
  AeadAlgorithm,
  aeadDecrypt,
  aeadEncrypt,
  randomBytes,
  type SecretBytes,
} from '../crypto/index.js';
import { encodeCbor } from '../encoding/index.js';
import type { KekSource, KekVerifierRecord } from './types.js';

/**
 * KEK verifier format, version 1: the AES-256-GCM seal of nothing, under the KEK, bound to a
 * label and the KEK's source.
 *
 *   verifier = 0x01 ‖ nonce (12 random bytes) ‖ tag (16) of AES-256-GCM(KEK, nonce, ∅, aad)
 *   aad      = CBOR ["mandate/vault/kek-verifier", 1, source]
 *
 * Written once, when a store first gets a KEK; checked on every open before anything is sealed or
 * unsealed, so a wrong passphrase fails at once instead of sealing new keys under another KEK.
 * It reveals no more about the KEK than any sealed key does (both are GCM tags under it): a
 * passphrase can be guessed offline against either, at the cost of one scrypt per guess.
 */
const KEK_VERIFIER_VERSION = 0x01;
const LABEL = 'mandate/vault/kek-verifier';
const VERIFIER_BYTES = 1 + AEAD_NONCE_BYTES + AEAD_TAG_BYTES;
const NOTHING = new Uint8Array(0);

const aadOf = (source: KekSource): Uint8Array => encodeCbor([LABEL, KEK_VERIFIER_VERSION, source]);

export function sealKekVerifier(kek: SecretBytes, source: KekSource): KekVerifierRecord {
  const nonce = randomBytes(AEAD_NONCE_BYTES);
  const tag = aeadEncrypt(AeadAlgorithm.aes256gcm, kek.expose(), nonce, NOTHING, aadOf(source));
  const verifier = new Uint8Array(VERIFIER_BYTES);
  verifier[0] = KEK_VERIFIER_VERSION;
  verifier.set(nonce, 1);
  verifier.set(tag, 1 + AEAD_NONCE_BYTES);
  return { source, verifier };
}

/** True when `kek` is the key that sealed `record` (and its source was not edited since). */
export function kekMatchesVerifier(kek: SecretBytes, record: KekVerifierRecord): boolean {
  const { verifier } = record;
  if (verifier.byteLength !== VERIFIER_BYTES || verifier[0] !== KEK_VERIFIER_VERSION) return false;
  try {
    aeadDecrypt(
      AeadAlgorithm.aes256gcm,
      kek.expose(),
      verifier.subarray(1, 1 + AEAD_NONCE_BYTES),
      verifier.subarray(1 + AEAD_NONCE_BYTES),
      aadOf(record.source),
    );
    return true;
  } catch {
    return false;
  }
}
