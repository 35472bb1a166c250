// The public API of `mandate/node`: services that join layers — identity provisioning on every
// core, the enrollment service and its clients, the live deny-set of a process.
export { provisionIdentities, IdentityProvisioner } from './provision.js';
export type { ProvisionOptions, ProvisionTarget, ProvisionerOptions } from './provision.js';
export {
  EnrollmentService,
  redeemTicketOverChannel,
  fetchCredentialOverChannel,
  ENROLLMENT_SERVICE_ADDRESS,
} from './enrollment-service.js';
export type {
  EnrollmentEvent,
  EnrollmentServiceOptions,
  RedeemTicketOptions,
  RedeemedTicket,
  FetchCredentialOptions,
  IssuedCredential,
} from './enrollment-service.js';
export { DenySetWatcher } from './deny-set-watcher.js';
export type { DenySetWatcherOptions } from './deny-set-watcher.js';
export { StoreBundleSource, DEFAULT_BUNDLE_POLL_MS } from './store-bundle-source.js';
export type { StoreBundleSourceOptions } from './store-bundle-source.js';
export { BusService, BUS_SERVICE_ADDRESS, BUS_END_CODES } from './bus-service.js';
export type { BusServiceOptions } from './bus-service.js';
export { ChannelBusSubscriber } from './channel-bus-subscriber.js';
export type {
  BusChannel,
  ChannelBusEvent,
  ChannelBusSubscriberOptions,
} from './channel-bus-subscriber.js';
export {
  DenySetFeed,
  BundleFeed,
  DEFAULT_FEED_POLL_MS,
  DEFAULT_HEARTBEAT_MS,
} from './bus-feeds.js';
export type {
  FeedOptions,
  DenySetFeedOptions,
  BundleFeedOptions,
  BundleFeedRepository,
} from './bus-feeds.js';
export { BusBundleSource } from './bus-bundle-source.js';
export type { BusBundleSourceOptions } from './bus-bundle-source.js';
export { AuthorityBus } from './authority-bus.js';
export type { AuthorityBusOptions } from './authority-bus.js';
export { EnforcementPoint } from './enforcement-point.js';
export type {
  EnforcementPointOptions,
  EnforcedInvocation,
  CallOutcome,
} from './enforcement-point.js';
export {
  BrokerService,
  BROKER_SERVICE_ADDRESS,
  DEFAULT_BROKER_TIMEOUT_MS,
  leaseSummaryOf,
  requestLeaseOverChannel,
  renewLeaseOverChannel,
  revokeLeaseOverChannel,
} from './broker-service.js';
export type {
  BrokerClientOptions,
  BrokerServiceEvent,
  BrokerServiceOptions,
  LeaseAnswer,
  LeaseSummary,
  LeaseValueFields,
} from './broker-service.js';
export { BrokerTimers, DEFAULT_BROKER_TICK_MS } from './broker-timers.js';
export type { BrokerTimersOptions } from './broker-timers.js';
export { AuditLogLeaseSink, leaseRecordBody } from './lease-audit-sink.js';
export type { AuditLogLeaseSinkOptions } from './lease-audit-sink.js';
export {
  startBrokerHttp,
  oauthErrorOf,
  BrokerHttpPath,
  TOKEN_EXCHANGE_GRANT_TYPE,
  JWT_TOKEN_TYPE,
  ACCESS_TOKEN_TYPE,
  MAX_TOKEN_REQUEST_BYTES,
} from './broker-http.js';
export type { BrokerHttp, BrokerHttpOptions, TokenExchangeRequest } from './broker-http.js';
export {
  EgressProxyService,
  EGRESS_SERVICE_ADDRESS,
  startLocalEgressProxy,
} from './egress-proxy.js';
export type {
  EgressEvent,
  EgressProxyServiceOptions,
  LocalEgressProxy,
  LocalEgressProxyOptions,
} from './egress-proxy.js';
export { RevocationRecorder } from './revocation-recorder.js';
export type { RevocationRecorderOptions } from './revocation-recorder.js';
export {
  loadNodeConfig,
  envNameOf,
  NODE_CONFIG_SCHEMA,
  NodeServiceName,
  ConfigSource,
} from './config.js';
export type { NodeConfig, NodeConfigLayers } from './config.js';
export { startNode } from './node.js';
export type { StartNodeOptions, RunningNode } from './node.js';
export type { NodeServiceContext, RunningService } from './service.js';
export type { BrokerNodeOptions } from './broker-node.js';
export type { AdminNodeOptions, AdminApprovalAnswer } from './admin-node.js';
export { LifecycleState } from './lifecycle.js';
export type { NodeHealth, PartHealth } from './lifecycle.js';
export { HealthPath } from './health-http.js';
export { readAuditTrail, readLogEntries } from './audit-trail-view.js';
export type { AuditTrailView, TrailCall } from './audit-trail-view.js';
export {
  AdminAuth,
  adminLoginText,
  signAdminChallenge,
  ADMIN_LOGIN_SIGNED_TYPE,
  ADMIN_CHALLENGE_TTL_SECONDS,
  DEFAULT_LOGIN_TOKEN_TTL_SECONDS,
  DEFAULT_ADMIN_SESSION_TTL_SECONDS,
  DEFAULT_ADMIN_RATE_LIMITS,
} from './admin-auth.js';
export type {
  AdminAuthOptions,
  AdminChallengeAnswer,
  AdminRateLimits,
  AdminSession,
} from './admin-auth.js';
export {
  createAdminApp,
  startAdminHttp,
  AdminPath,
  ADMIN_SESSION_COOKIE,
  ADMIN_CSRF_HEADER,
} from './admin-http.js';
export type { AdminApp, AdminAppOptions, AdminDataSources, AdminHttp } from './admin-http.js';
