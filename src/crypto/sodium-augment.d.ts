// @types/sodium-native lags sodium-native 5: declare the functions it misses that we call.
import 'sodium-native';

declare module 'sodium-native' {
  export function crypto_aead_chacha20poly1305_ietf_encrypt(
    ciphertext: Buffer,
    message: Buffer,
    additionalData: Buffer | null,
    nsec: null,
    nonce: Buffer,
    key: Buffer,
  ): number;
  export function crypto_aead_chacha20poly1305_ietf_decrypt(
    message: Buffer,
    nsec: null,
    ciphertext: Buffer,
    additionalData: Buffer | null,
    nonce: Buffer,
    key: Buffer,
  ): number;
}
