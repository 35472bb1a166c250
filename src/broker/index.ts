// The public API of `mandate/broker` (gate 3, DESIGN.md §2 layer 8): the sealed secret store,
// leases and their providers (token exchange, dynamic PostgreSQL roles, injection). The broker's
// services over secure channels and HTTP live in `node`.
export { LeaseKind, LeaseState } from './types.js';
export type {
  IssuedLease,
  JwtLeaseValue,
  Lease,
  LeaseAuditSink,
  LeaseContext,
  LeaseProvider,
  PostgresLeaseValue,
  SecretInfo,
  SecretReader,
} from './types.js';
export {
  bindingMatches,
  checkProxyRequest,
  MAX_PROXY_HEADER_BYTES,
  MAX_PROXY_HEADERS,
  MAX_PROXY_PATH_CHARS,
  MIN_INJECTED_SECRET_BYTES,
  parseInjectionBinding,
  ProxyLeaseProvider,
  rewriteRequest,
  SCRUB_MARKER,
  Scrubber,
  ScrubStream,
  secretForms,
} from './injection.js';
export type {
  ActiveInjection,
  Injection,
  InjectionBinding,
  InjectionBindingConfig,
  InjectionScheme,
  ProxyLeaseProviderOptions,
  ProxyLeaseValue,
  ProxyRequest,
  RewrittenRequest,
  UpstreamRequest,
} from './injection.js';
