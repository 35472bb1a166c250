// The public API of `mandate/channel`: secure channels over routes (`openSecureChannel`,
// `SecureChannelListener`), the identity a channel presents, trust policies, and relays. The
// Noise state machine, the identity payload codec and the transport ciphers are internals
// (tests import their files directly); nothing here is needed by another layer's internals.
export type { NoiseStaticKey } from './noise.js';
export { TrustPolicies, VerifiedPeerCache, withCredentials } from './identity-payload.js';
export type { VerifiedPeer, TrustPolicy, VerifyPeerOptions } from './identity-payload.js';
export {
  openSecureChannel,
  SecureChannelListener,
  SecureChannelLocalInfo,
  channelPeerOf,
} from './secure-channel.js';
export type { CredentialRefreshOptions } from './credential-refresh.js';
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
  relayAddress,
  RELAY_SERVICE_ADDRESS,
} from './relay.js';
export type {
  RelayEvent,
  RelayServiceOptions,
  RegisterRelayOptions,
  RelayRegistrationResult,
  RelayRegistrationOptions,
  RelayRegistrationEvent,
} from './relay.js';
export { prepareChannelIdentity } from './channel-identity.js';
export type { ChannelIdentity, ChannelIdentityOptions } from './channel-identity.js';
export { StaticKeyManager } from './static-key-manager.js';
export type {
  AttestedStaticKey,
  StaticKeySource,
  StaticKeyManagerOptions,
} from './static-key-manager.js';
