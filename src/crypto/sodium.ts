// The one place that loads libsodium. sodium-native wants Buffers; callers pass Uint8Arrays,
// which `asBuffer` views without copying.
import sodium from 'sodium-native';

export { sodium };

export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes)
    ? bytes
    : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
