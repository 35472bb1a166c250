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
export {
  encodeIdentityPayload,
  decodeIdentityPayload,
  verifyPeer,
  TrustPolicies,
  VerifiedPeerCache,
  withCredentials,
} from './identity-payload.js';
export type {
  IdentityPayload,
  VerifiedPeer,
  TrustPolicy,
  VerifyPeerOptions,
} from './identity-payload.js';
export {
  ChannelEncryptor,
  ChannelDecryptor,
  REKEY_INTERVAL,
  REPLAY_WINDOW,
} from './transport-cipher.js';
export { ChannelHandshake } from './channel-handshake.js';
export type {
  ChannelHandshakeOptions,
  EstablishedChannel,
  HandshakeStep,
} from './channel-handshake.js';
export {
  openSecureChannel,
  SecureChannelListener,
  SecureChannelLocalInfo,
  channelPeerOf,
  ChannelMessageType,
  DEFAULT_LISTENER_ADDRESS,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_MAX_HANDSHAKES,
} from './secure-channel.js';
export type {
  SecureChannel,
  SecureChannelEvent,
  SecureChannelOptions,
  SecureChannelListenerOptions,
} from './secure-channel.js';
export {
  RelayService,
  RelayRegistration,
  registerRelay,
  checkRelayName,
  relayAddress,
  mayRegisterRelay,
  RELAY_SERVICE_ADDRESS,
  RELAY_ATTRIBUTE,
  DEFAULT_RELAY_TIMEOUT_MS,
} from './relay.js';
export type {
  RelayEvent,
  RelayServiceOptions,
  RegisterRelayOptions,
  RelayRegistrationResult,
  RelayRegistrationOptions,
  RelayRegistrationEvent,
} from './relay.js';
export { prepareChannelIdentity, DEFAULT_CHANNEL_KEY_TTL_SECONDS } from './channel-identity.js';
export type { ChannelIdentity, ChannelIdentityOptions } from './channel-identity.js';
