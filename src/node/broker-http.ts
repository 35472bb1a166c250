// The broker's HTTP side (docs/spec/broker.md §4.5): the JWKS relying parties verify lease
// tokens with, the RFC 8693 token-exchange endpoint, and the list of revoked token ids.
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { listenHttp } from './http-listen.js';
import {
  ErrorKind,
  isMandateError,
  systemClock,
  type Clock,
  type ErrorCode,
  type Logger,
} from '../core/index.js';
import { invalid, silentLogger } from '../core/internal.js';
import type { VerifiedChain } from '../credentials/index.js';
import {
  CHAIN_PROOF_TOKEN_TYPE,
  MAX_EXCHANGE_PROOF_CHARS,
  parseScopeText,
  type ExchangeProofRequest,
  type JwtLeaseProvider,
  type VerifiedExchangeProof,
} from '../broker/index.js';

/** RFC 8693 §2.1 `grant_type` of a token exchange. */
export const TOKEN_EXCHANGE_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:token-exchange';
/** RFC 8693 §3 token type of a JWT: the `issued_token_type` of every answer. */
export const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
/** RFC 8693 §3 access-token type: accepted as `requested_token_type` (the JWT is one). */
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
/** The paths the broker serves. */
export const BrokerHttpPath = {
  jwks: '/.well-known/jwks.json',
  token: '/token',
  revoked: '/revoked',
} as const;
/** Bound on a token request's body: a proof and a few short parameters. */
export const MAX_TOKEN_REQUEST_BYTES = MAX_EXCHANGE_PROOF_CHARS + 8 * 1024;

/** What the `exchange` callback is asked: a lease of a token for `audience` with `scope`. */
export interface TokenExchangeRequest {
  readonly audience: string;
  readonly scope: readonly string[];
}

/** Options of {@link startBrokerHttp}. */
export interface BrokerHttpOptions {
  /** Default `127.0.0.1`, port 0 (any free port). */
  readonly listen?: { readonly host?: string; readonly port?: number };
  readonly jwt: JwtLeaseProvider;
  /**
   * The token endpoint's URL as agents address it (a proof's `aud`); default
   * `http://HOST:PORT/token` from the bound address. Set it behind a reverse proxy.
   */
  readonly tokenEndpoint?: string;
  /** Verifies a proof against its request (verifyExchangeProof with the broker's options). */
  readonly verifyProof: (
    proof: string,
    request: ExchangeProofRequest,
  ) => Promise<VerifiedExchangeProof>;
  /** Decides and issues the lease (the broker's `lease`), returning the token once. */
  readonly exchange: (
    chain: VerifiedChain,
    request: TokenExchangeRequest,
  ) => Promise<{ readonly leaseId: string; readonly token: string; readonly expiresAt: number }>;
  readonly clock?: Clock;
  readonly logger?: Logger;
}

/** A running broker HTTP server. */
export interface BrokerHttp {
  /** `http://HOST:PORT`, as bound. */
  readonly url: string;
  readonly tokenEndpoint: string;
  readonly address: { readonly host: string; readonly port: number };
  /** Stops accepting, ends idle connections, and resolves once the server is closed. */
  close(): Promise<void>;
}

/** RFC 6749 §5.2 / RFC 8693 §2.2.2 error codes, plus 5xx answers. */
type OAuthError =
  | 'invalid_request'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'invalid_target'
  | 'invalid_scope'
  | 'temporarily_unavailable'
  | 'server_error';

const REQUEST_INVALID: ErrorCode = 'ERR_TOKEN_EXCHANGE_REQUEST_INVALID';
const TOKEN_PARAMETERS = new Set([
  'grant_type',
  'subject_token',
  'subject_token_type',
  'audience',
  'scope',
  'requested_token_type',
  // RFC 8693 §2.1 parameters Mandate does not use: refused if present (below), never ignored.
  'resource',
  'actor_token',
  'actor_token_type',
]);

/**
 * The OAuth error a Mandate error becomes at the token endpoint (docs/spec/broker.md §4.5).
 * `phase` is where it was raised: reading the request, verifying the proof (`subject_token`:
 * anything it carries that does not hold is `invalid_grant`), or deciding and issuing the lease.
 */
export function oauthErrorOf(
  error: unknown,
  phase: 'request' | 'proof' | 'exchange',
): { status: 400 | 413 | 500 | 503; error: OAuthError } {
  if (!isMandateError(error)) return { status: 500, error: 'server_error' };
  const code = error.code;
  if (code === 'ERR_TOKEN_EXCHANGE_TOO_LARGE') return { status: 413, error: 'invalid_request' };
  if (code === 'ERR_TOKEN_EXCHANGE_GRANT_UNSUPPORTED')
    return { status: 400, error: 'unsupported_grant_type' };
  if (code === 'ERR_JWT_AUDIENCE_INVALID') return { status: 400, error: 'invalid_target' };
  if (code === 'ERR_JWT_SCOPE_INVALID' || code === 'ERR_LEASE_DENIED')
    return { status: 400, error: 'invalid_scope' };
  if (
    code === 'ERR_TOKEN_EXCHANGE_REQUEST_INVALID' ||
    code === 'ERR_TOKEN_EXCHANGE_PROOF_MALFORMED'
  )
    return { status: 400, error: 'invalid_request' };
  switch (error.kind) {
    case ErrorKind.exhausted:
    case ErrorKind.unavailable:
    case ErrorKind.timeout:
      return { status: 503, error: 'temporarily_unavailable' };
    case ErrorKind.internal:
      return { status: 500, error: 'server_error' };
    default:
      if (phase === 'request') return { status: 400, error: 'invalid_request' };
      // The proof, its chain or its signature does not hold (expired, revoked, replayed, …).
      if (phase === 'proof') return { status: 400, error: 'invalid_grant' };
      // Authenticated, but the broker will not lease this token (policy, lease decision).
      if (error.kind === ErrorKind.unauthorized) return { status: 400, error: 'invalid_grant' };
      if (error.kind === ErrorKind.invalid) return { status: 400, error: 'invalid_request' };
      return { status: 400, error: 'invalid_target' };
  }
}

/** RFC 6749 §5.2: error_description is %x20-21 / %x23-5B / %x5D-7E. */
function describe(error: unknown): string {
  if (!isMandateError(error) || error.kind === ErrorKind.internal) return 'ERR_INTERNAL';
  return `${error.code}: ${error.message}`.replace(/[^\x20\x21\x23-\x5b\x5d-\x7e]/g, '?');
}

function noStore(c: Context): void {
  c.header('Cache-Control', 'no-store');
  c.header('Pragma', 'no-cache');
}

/** Reads an `application/x-www-form-urlencoded` body; each parameter at most once (RFC 6749 §3.2). */
function readForm(text: string): Map<string, string> {
  const form = new Map<string, string>();
  for (const [name, value] of new URLSearchParams(text)) {
    if (!TOKEN_PARAMETERS.has(name))
      throw invalid(REQUEST_INVALID, `unknown parameter \`${name.slice(0, 64)}\``);
    if (form.has(name)) throw invalid(REQUEST_INVALID, `parameter \`${name}\` is sent twice`);
    form.set(name, value);
  }
  return form;
}

function required(form: Map<string, string>, name: string): string {
  const value = form.get(name);
  if (value === undefined || value === '')
    throw invalid(REQUEST_INVALID, `parameter \`${name}\` is required`);
  return value;
}

/**
 * Starts the broker's HTTP server (hono on Node's http, loopback by default):
 * - `GET /.well-known/jwks.json`: the JWKS of the lease-token key;
 * - `POST /token`: RFC 8693 token exchange — the agent's proof as `subject_token` (type
 *   {@link CHAIN_PROOF_TOKEN_TYPE}), `audience`, `scope`; answers a JWT lease token
 *   (§2.2.1) or an RFC 6749 §5.2 error whose description carries the Mandate error code;
 * - `GET /revoked`: the revoked token ids (`jti`) that may still be within their `exp`.
 * Bodies over {@link MAX_TOKEN_REQUEST_BYTES} are refused (413) before they are read in full.
 */
export async function startBrokerHttp(options: BrokerHttpOptions): Promise<BrokerHttp> {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? silentLogger;
  const host = options.listen?.host ?? '127.0.0.1';
  const port = options.listen?.port ?? 0;
  let tokenEndpoint = options.tokenEndpoint ?? '';

  const app = new Hono();
  app.get(BrokerHttpPath.jwks, (c) => {
    c.header('Cache-Control', 'public, max-age=300');
    return c.json(options.jwt.jwks());
  });
  app.get(BrokerHttpPath.revoked, (c) => {
    noStore(c);
    return c.json({
      iss: options.jwt.issuer,
      iat: clock.nowSeconds(),
      revoked: options.jwt.revokedJtis().map((r) => ({ jti: r.jti, exp: r.expiresAt })),
    });
  });

  const fail = (
    c: Context,
    error: unknown,
    phase: 'request' | 'proof' | 'exchange' = 'request',
  ): Response => {
    const { status, error: code } = oauthErrorOf(error, phase);
    const description = describe(error);
    logger.info('token exchange refused', {
      error: code,
      code: isMandateError(error) ? error.code : 'ERR_INTERNAL',
    });
    if (!isMandateError(error)) logger.error('token exchange failed', { reason: String(error) });
    noStore(c);
    return c.json({ error: code, error_description: description }, status);
  };

  app.post(
    BrokerHttpPath.token,
    bodyLimit({
      maxSize: MAX_TOKEN_REQUEST_BYTES,
      onError: (c) =>
        fail(
          c,
          invalid(
            'ERR_TOKEN_EXCHANGE_TOO_LARGE',
            `a token request is at most ${MAX_TOKEN_REQUEST_BYTES} bytes`,
          ),
        ),
    }),
    async (c) => {
      let phase: 'request' | 'proof' | 'exchange' = 'request';
      try {
        const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
        if (type !== 'application/x-www-form-urlencoded')
          throw invalid(
            REQUEST_INVALID,
            'a token request is `application/x-www-form-urlencoded` (RFC 6749 §4.1.3)',
          );
        const form = readForm(await c.req.text());
        if (required(form, 'grant_type') !== TOKEN_EXCHANGE_GRANT_TYPE)
          throw invalid(
            'ERR_TOKEN_EXCHANGE_GRANT_UNSUPPORTED',
            `\`grant_type\` must be \`${TOKEN_EXCHANGE_GRANT_TYPE}\``,
          );
        for (const unused of ['resource', 'actor_token', 'actor_token_type'])
          if (form.has(unused))
            throw invalid(REQUEST_INVALID, `parameter \`${unused}\` is not supported`);
        const proof = required(form, 'subject_token');
        if (required(form, 'subject_token_type') !== CHAIN_PROOF_TOKEN_TYPE)
          throw invalid(
            REQUEST_INVALID,
            `\`subject_token_type\` must be \`${CHAIN_PROOF_TOKEN_TYPE}\``,
          );
        const requested = form.get('requested_token_type');
        if (
          requested !== undefined &&
          requested !== JWT_TOKEN_TYPE &&
          requested !== ACCESS_TOKEN_TYPE
        )
          throw invalid(REQUEST_INVALID, `\`requested_token_type\` must be \`${JWT_TOKEN_TYPE}\``);
        const audience = required(form, 'audience');
        const scope = parseScopeText(form.get('scope') ?? '');
        phase = 'proof';
        const verified = await options.verifyProof(proof, { tokenEndpoint, audience, scope });
        phase = 'exchange';
        const lease = await options.exchange(verified.chain, { audience, scope });
        noStore(c);
        return c.json({
          access_token: lease.token,
          issued_token_type: JWT_TOKEN_TYPE,
          // The JWT is an access token for `audience`, presented as a bearer token there.
          token_type: 'Bearer',
          expires_in: Math.max(0, lease.expiresAt - clock.nowSeconds()),
          ...(scope.length === 0 ? {} : { scope: scope.join(' ') }),
          mandate_lease_id: lease.leaseId,
        });
      } catch (error) {
        return fail(c, error, phase);
      }
    },
  );

  // Requests in progress get two seconds to finish on close; then their connections are cut.
  const listening = await listenHttp(app.fetch, host, port, 2_000);
  const url = listening.url;
  if (tokenEndpoint === '') tokenEndpoint = `${url}${BrokerHttpPath.token}`;
  logger.info('broker http listening', { url });
  return { url, tokenEndpoint, address: listening.address, close: () => listening.close() };
}
