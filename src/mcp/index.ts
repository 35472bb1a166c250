// The public API of `mandate/mcp`: the MCP gateway (gates 1 and 2 in front of real MCP servers,
// every call signed, decided and logged), its configuration, and MCP over a Mandate secure
// channel (the SDK transports for both ends). docs/spec/mcp.md.
export {
  parseGatewayConfig,
  parseGatewayConfigText,
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_CALL_TIMEOUT_MS,
} from './config.js';
export type {
  GatewayConfig,
  UpstreamConfig,
  StdioUpstreamConfig,
  HttpUpstreamConfig,
  UpstreamMandateConfig,
  UpstreamLeaseConfig,
  RestartConfig,
} from './config.js';
export { Upstream } from './upstream.js';
export type { UpstreamTool, UpstreamOptions, UpstreamState } from './upstream.js';
export { mergeUpstreamTools, catalogOf } from './catalog.js';
export type { MergedTools } from './catalog.js';
export {
  ChannelClientTransport,
  ChannelServerTransport,
  McpChannelListener,
  connectMcpChannel,
  gatewayTrustPolicy,
  GATEWAY_ROLE_ATTRIBUTE,
  GATEWAY_ROLE,
  MCP_SERVICE_ADDRESS,
  INVOCATION_META_KEY,
  SESSION_NOTIFICATION,
} from './channel-transport.js';
export {
  approvalSigner,
  approvalElicitationMessage,
  APPROVAL_REQUEST_META_KEY,
  APPROVAL_ANSWER_META_KEY,
  APPROVER_CAPABILITY,
} from './approval-elicitation.js';
export type {
  ApprovalSigner,
  ApprovalSignerOptions,
  ElicitedApproval,
} from './approval-elicitation.js';
export {
  traceContextOf,
  withTraceContext,
  TRACEPARENT_META_KEY,
  TRACESTATE_META_KEY,
} from './trace-context.js';
export type {
  ChannelClientTransportOptions,
  McpChannelListenerOptions,
  InvocationSigning,
  SessionNotice,
} from './channel-transport.js';
export { GatewayLeaseProvider, leasedUpstreamConfig } from './leases.js';
export type { AgentUpstream, GatewayLeaseOptions, GatewayLeaseValue } from './leases.js';
export { McpGateway, DECISION_META_KEY } from './gateway.js';
export type { McpGatewayOptions, GatewayDecisionMeta, ElicitationOutcome } from './gateway.js';
