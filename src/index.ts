// The package's root export (`import { … } from 'mandate'`): the main entry points of every
// layer, re-exported from each layer's public index. Each subpath (`mandate/identity`,
// `mandate/credentials`, …) holds the rest of its layer's API.
export { ErrorKind, MandateError, isMandateError, systemClock } from './core/index.js';
export type { Clock, ErrorCode, Logger } from './core/index.js';
export { MemoryVault, SoftwareVault, loadOrCreateKeyFile, openKek } from './vault/index.js';
export type { SigningVault, SecureChannelVault } from './vault/index.js';
export {
  Identities,
  MemoryIdentityRepository,
  Purpose,
  VerifiedIdentity,
  parseIdentifier,
  verifyChangeHistory,
} from './identity/index.js';
export type { Identifier, LocalIdentity } from './identity/index.js';
export {
  Authority,
  ChainVerifier,
  DenySet,
  VerifiedChain,
  VerifiedCredential,
  authorize,
  chainFromCredential,
  decodeChain,
  delegate,
  issueCredential,
  parseConstraint,
  verifyChain,
  verifyCredential,
} from './credentials/index.js';
export type { AuthorizationRequest, Decision } from './credentials/index.js';
export { openSqliteStore } from './store/index.js';
export type { SqliteStore } from './store/index.js';
export {
  MemoryNetwork,
  MemoryTransport,
  Router,
  TcpTransport,
  parseRoute,
} from './routing/index.js';
export type { Route } from './routing/index.js';
export {
  SecureChannelListener,
  TrustPolicies,
  openSecureChannel,
  prepareChannelIdentity,
  registerRelay,
  RelayService,
} from './channel/index.js';
export type { SecureChannel, VerifiedPeer } from './channel/index.js';
export {
  Gate,
  ToolCatalog,
  enforceCall,
  answerApproval,
  mandateCedarSchema,
  MANDATE_CEDAR_SCHEMA,
} from './gates/index.js';
export type { GateDecision, ToolCall, ToolDescriptor } from './gates/index.js';
