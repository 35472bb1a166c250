export {
  createHandshake,
  staticKeyFromSecret,
  NoiseSuite,
  SplitOrder,
  OCKAM_PROTOCOL_NAME,
  NOISE_MAX_MESSAGE_BYTES,
} from './noise.js';
export type {
  CipherState,
  NoiseHandshake,
  NoiseHandshakeOptions,
  NoiseKeyPair,
  NoiseStaticKey,
  TransportCipherStates,
} from './noise.js';
