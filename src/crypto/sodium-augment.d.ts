// @types/sodium-native lags sodium-native 5: declare the functions it misses that we call. Their
// native binding takes any typed array (`js_typedarray_span_t` in binding.cc), so no Buffer views.
import 'sodium-native';

declare module 'sodium-native' {
  export function crypto_aead_chacha20poly1305_ietf_encrypt(
    ciphertext: Uint8Array,
    message: Uint8Array,
    additionalData: Uint8Array | null,
    nsec: null,
    nonce: Uint8Array,
    key: Uint8Array,
  ): number;
  export function crypto_aead_chacha20poly1305_ietf_decrypt(
    message: Uint8Array,
    nsec: null,
    ciphertext: Uint8Array,
    additionalData: Uint8Array | null,
    nonce: Uint8Array,
    key: Uint8Array,
  ): number;
}
