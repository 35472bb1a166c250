import { isMandateError, MandateError, type Clock, type Logger } from '../core/index.js';
import { invalid, MAX_TIMER_MS, withJitter, unauthorized, unavailable } from '../core/internal.js';
import { randomUnit } from '../crypto/index.js';
import { decodeChain, decodeCredential, type DenySet } from '../credentials/index.js';
import type { Identifier, VerifiedIdentity } from '../identity/index.js';
import {
  openSecureChannel,
  StaticKeyManager,
  TrustPolicies,
  VerifiedPeerCache,
  withCredentials,
  type SecureChannelOptions,
} from '../channel/index.js';
import { fetchCredentialOverChannel, type IssuedCredential } from './enrollment-service.js';
import {
  formatRoute,
  localAddress,
  parseRoute,
  TransportType,
  type Route,
  type Router,
  type TcpTransport,
} from '../routing/index.js';
import { parseTcpPeer, RELAY_PREFIX } from '../routing/internal.js';
import type { Home } from './home.js';

// What the node and the commands that reach a node share: a stderr logger, waiting for a signal,
// listening, turning route text into a route that starts with a TCP connection, and keeping a
// node's credentials fresh from its authority, and a home's side of secure channels.

/** The local address of a node's secure-channel listener. */
export const API = 'api';

/** Resolves on the first SIGINT or SIGTERM. */
export function untilSignal(): Promise<string> {
  return watchSignals().signal;
}

/**
 * `signal` resolves on the first SIGINT or SIGTERM after this call; `dispose()` stops listening
 * (the process's default handling of those signals returns once no listener is left).
 */
export function watchSignals(): { readonly signal: Promise<string>; dispose(): void } {
  let dispose = (): void => undefined;
  const signal = new Promise<string>((resolve) => {
    const on = (name: string): void => {
      dispose();
      resolve(name);
    };
    dispose = () => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
  return { signal, dispose };
}

/**
 * Listens on `host:port` text; returns the bound address and, when it has one, the route text
 * others dial (`/ip4/H/tcp/P`; none for a wildcard host such as 0.0.0.0).
 */
export async function listenTcp(
  transport: TcpTransport,
  text: string,
): Promise<{ address: string; route: string | undefined }> {
  const { host, port } = parseListenAddress(text);
  const listener = await transport.listen({ host, port });
  const address = `${listener.host}:${String(listener.port)}`;
  let route: string | undefined;
  if (listener.host !== '0.0.0.0') {
    try {
      route = formatRoute([{ type: TransportType.tcp, value: address }]);
    } catch {
      route = undefined; // an IPv6 host has no route text yet
    }
  }
  return { address, route };
}

/**
 * `host:port` to listen at; port 0 asks for any free port. An IPv6 host may be bracketed
 * (`[::1]:4000`); the host returned is bare (`::1`), as `listen` takes it.
 */
export function parseListenAddress(text: string): { host: string; port: number } {
  const { host, port } =
    text.endsWith(':0') && text.length > 2
      ? { host: text.slice(0, -2), port: 0 }
      : parseTcpPeer(text);
  return { host: host.replace(/^\[(.*)\]$/, '$1'), port };
}

/** Route text whose first hop is a TCP address (`/ip4/…/tcp/…` or `/dnsaddr/…/tcp/…`). */
export function parseDialRoute(text: string): Route {
  const route = parseRoute(text);
  if (route[0]?.type !== TransportType.tcp) {
    throw invalid('ERR_ARGUMENT_INVALID', `route \`${text}\` must start with /ip4 or /dnsaddr`);
  }
  return route;
}

/** A route whose first hop is a TCP address, with that hop replaced by a connection. */
export function connectRoute(transport: TcpTransport, text: string): Route {
  const route = parseDialRoute(text);
  const first = route[0];
  if (first === undefined) return route; // parseDialRoute saw to it
  return [localAddress(transport.connect(first.value)), ...route.slice(1)];
}

/** The route to a node's channel listener: `api` is added unless the route names a service. */
export function toListener(route: Route): Route {
  const last = route[route.length - 1];
  const namesService =
    last?.type === TransportType.local && !last.value.startsWith(RELAY_PREFIX) && route.length > 1;
  return namesService ? route : [...route, localAddress(API)];
}

/** The renewer acts this long before the channels' own refresh timers, so one fetch serves all. */
const RENEW_AHEAD_SECONDS = 1;
/** After a failed renewal, try again after this long (the channels retry on their own too). */
const RENEW_RETRY_MS = 5_000;
/** Never fetch more often than this, whatever the credentials' lifetime. */
const MIN_RENEW_INTERVAL_MS = 1_000;

const iso = (seconds: number): string => new Date(seconds * 1000).toISOString();

export interface CredentialRenewerOptions {
  readonly router: Router;
  readonly transport: TcpTransport;
  /** Route text to the authority node (`authority start`), e.g. `/ip4/127.0.0.1/tcp/4200`. */
  readonly route: string;
  /** This node's identity: a member of the authority, the subject of what it fetches. */
  readonly identity: VerifiedIdentity;
  /** This node's secure-channel key(s) and identity payload (with the `--credential` files). */
  readonly staticKey: SecureChannelOptions['staticKey'];
  readonly identityPayload: Uint8Array;
  /** The `--credential` files' credentials, presented too until they are due. */
  readonly fileCredentials: readonly Uint8Array[];
  /** This home's trust anchors: the node at `route` must be one of them. */
  readonly anchors: ReadonlyMap<Identifier, VerifiedIdentity>;
  /** This home's live deny-set: a revoked authority is not asked. */
  readonly denySet: DenySet;
  /** Renew this long before the first credential presented expires. */
  readonly leadSeconds: number;
  readonly clock: Clock;
  readonly logger: Logger;
}

/**
 * A node's credentials from its authority (`node start` / `relay start --authority ROUTE`). At
 * `start` it fetches a fresh credential through a secure channel to the authority node
 * (`fetchCredentialOverChannel`); from then on it keeps the node's identity payload fresh: a
 * timer fetches a new credential `leadSeconds` (and one second) before the first credential
 * presented expires, and `onRenewed` hands the new payload on (the listener's
 * `refreshCredentials`: later handshakes and every open channel). `renew` is the channels'
 * `credentialRefresh.renew`: it serves the current payload while it is fresh, so the channels'
 * own timers, which fire a second later, share the renewer's fetch instead of each making one.
 *
 * Each fetch opens its own channel (the TCP connection is reused while it lasts), so a restarted
 * authority is simply reached again. The channel presents no credentials — the authority needs
 * none — and trusts only this home's trust anchors; after the first fetch, only the authority
 * that answered it.
 */
export class CredentialRenewer {
  readonly #options: CredentialRenewerOptions;
  /** The authority as last seen (a newer history it presented wins), once the first fetch is done. */
  #authority: VerifiedIdentity | undefined;
  #payload: Uint8Array;
  #expiresAt = Number.POSITIVE_INFINITY;
  #inFlight: Promise<Uint8Array> | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;
  #onRenewed: ((identityPayload: Uint8Array) => Promise<void>) | undefined;

  constructor(options: CredentialRenewerOptions) {
    this.#options = options;
    this.#payload = options.identityPayload;
  }

  /** The identity payload to present now: the latest credential and the files' not yet due. */
  get identityPayload(): Uint8Array {
    return this.#payload;
  }

  /** The authority that answered the first fetch (as last seen); undefined before `start`. */
  get authority(): VerifiedIdentity | undefined {
    return this.#authority;
  }

  /** `callback` gets every renewed payload (not the first one), e.g. a listener's refresh. */
  onRenewed(callback: (identityPayload: Uint8Array) => Promise<void>): void {
    this.#onRenewed = callback;
  }

  /**
   * The first fetch. Rejects with `ERR_AUTHORITY_UNREACHABLE` when the authority cannot be
   * reached (connection, handshake, no answer), `ERR_CHANNEL_PEER_REJECTED` when the node at the
   * route is not one of this home's trust anchors, the authority's refusal (e.g.
   * `ERR_MEMBER_NOT_FOUND`), or `ERR_ARGUMENT_INVALID` when this home trusts no authority or the
   * credentials it issues do not outlive `leadSeconds`.
   */
  async start(): Promise<void> {
    const { route, anchors, leadSeconds, clock, logger } = this.#options;
    if (anchors.size === 0) {
      throw invalid(
        'ERR_ARGUMENT_INVALID',
        '`--authority` needs an authority this home trusts: enroll first (`mandate ticket redeem`)',
      );
    }
    let issued: IssuedCredential;
    try {
      issued = await this.#fetch();
    } catch (error) {
      throw unreachable(route, error);
    }
    const now = clock.nowSeconds();
    const lifetime = issued.verified.expiresAt - now;
    if (lifetime <= leadSeconds + RENEW_AHEAD_SECONDS) {
      throw invalid(
        'ERR_ARGUMENT_INVALID',
        `\`--refresh-lead\` (${leadSeconds}s) must be shorter than the credentials the authority issues (${lifetime}s)`,
      );
    }
    this.#apply(issued);
    logger.info('credentials fetched', {
      expires: iso(issued.verified.expiresAt),
      authority: issued.authority.identifier,
    });
    this.#schedule();
  }

  /**
   * `credentialRefresh.renew`: the current payload while fresh (or once stopped: the node is
   * shutting down), else a new fetch, shared by every channel that asks meanwhile.
   */
  readonly renew = (): Promise<Uint8Array> => {
    if (this.#stopped || this.#options.clock.nowSeconds() < this.#dueAt())
      return Promise.resolve(this.#payload);
    return this.#renew();
  };

  /** Stops the timer and waits for a fetch in flight, if any. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#inFlight?.catch(() => undefined);
  }

  #dueAt(): number {
    return this.#expiresAt - this.#options.leadSeconds - RENEW_AHEAD_SECONDS;
  }

  #renew(): Promise<Uint8Array> {
    this.#inFlight ??= this.#fetch()
      .then((issued) => {
        this.#apply(issued);
        this.#options.logger.info('credentials renewed', {
          expires: iso(issued.verified.expiresAt),
        });
        this.#schedule();
        const payload = this.#payload;
        this.#onRenewed?.(payload).catch((error: unknown) => {
          this.#options.logger.warn('credentials not passed on', { reason: codeOf(error) });
        });
        return payload;
      })
      .finally(() => {
        this.#inFlight = undefined;
      });
    return this.#inFlight;
  }

  #schedule(delayMs?: number): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    const dueAt = this.#dueAt();
    if (!Number.isFinite(dueAt)) return;
    const waitMs = delayMs ?? (dueAt - this.#options.clock.nowSeconds()) * 1000;
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        // A long wait is taken in steps, and the clock has whole seconds: not due yet, wait again.
        if (this.#options.clock.nowSeconds() < this.#dueAt()) {
          this.#schedule();
          return;
        }
        this.#renew().catch((error: unknown) => {
          if (this.#stopped) return;
          // Jittered, so nodes that lost their authority together do not return in lockstep.
          const retryInMs = withJitter(RENEW_RETRY_MS, randomUnit);
          this.#options.logger.warn('credentials renewal failed', {
            reason: codeOf(error),
            retryInMs,
          });
          this.#schedule(retryInMs);
        });
      },
      Math.min(Math.max(MIN_RENEW_INTERVAL_MS, waitMs), MAX_TIMER_MS),
    );
    this.#timer.unref();
  }

  /** Presents `issued` with the files' credentials that are not due yet. */
  #apply(issued: IssuedCredential): void {
    const { fileCredentials, leadSeconds, clock, identityPayload } = this.#options;
    const now = clock.nowSeconds();
    const kept = fileCredentials.filter(
      (credential) =>
        decodeCredential(credential).expiresAt - leadSeconds - RENEW_AHEAD_SECONDS > now,
    );
    this.#authority = issued.authority;
    this.#payload = withCredentials(identityPayload, [issued.credential, ...kept]);
    this.#expiresAt = Math.min(
      issued.verified.expiresAt,
      ...kept.map((credential) => decodeCredential(credential).expiresAt),
    );
  }

  async #fetch(): Promise<IssuedCredential> {
    const {
      router,
      transport,
      route,
      identity,
      staticKey,
      identityPayload,
      anchors,
      denySet,
      clock,
    } = this.#options;
    const pinned = this.#authority;
    // Before the first fetch, any trust anchor of this home; then the one that answered.
    const trusted: ReadonlyMap<Identifier, VerifiedIdentity> =
      pinned === undefined ? anchors : new Map([[pinned.identifier, pinned]]);
    const channel = await openSecureChannel(router, toListener(connectRoute(transport, route)), {
      staticKey,
      // The authority needs no credentials (its listener trusts any identity): none are shown.
      identityPayload: withCredentials(identityPayload, []),
      verify: {
        authorities: trusted,
        knownIdentities: trusted,
        trustPolicy: TrustPolicies.any(
          ...[...trusted.keys()].map((id) => TrustPolicies.identifier(id)),
        ),
        denySet,
      },
      clock,
      logger: this.#options.logger,
    });
    try {
      // The trust policy admits anchors only; fetchCredentialOverChannel checks the peer again.
      const authority = trusted.get(channel.peer.identifier);
      if (authority === undefined) {
        throw unauthorized(
          'ERR_ENROLLMENT_AUTHORITY_MISMATCH',
          `the channel's peer \`${channel.peer.identifier}\` is not a trusted authority`,
        );
      }
      // A rotated authority's newer history comes back in `authority`: #apply keeps it.
      return await fetchCredentialOverChannel(router, channel, {
        authority,
        subject: identity,
        clock,
      });
    } finally {
      await channel.close();
    }
  }
}

const codeOf = (error: unknown): string => (isMandateError(error) ? error.code : 'error');

/** Failures that mean the authority could not be reached or did not answer. */
const UNREACHABLE: ReadonlySet<string> = new Set([
  'ERR_CHANNEL_HANDSHAKE_TIMEOUT',
  'ERR_CHANNEL_CLOSED',
  'ERR_ENROLLMENT_TIMEOUT',
]);

/** The first fetch's failure, as `--authority` reports it. */
function unreachable(route: string, error: unknown): unknown {
  if (!isMandateError(error)) return error;
  if (error.code === 'ERR_CHANNEL_PEER_REJECTED') {
    // With a cause, this side refused the peer; without, the peer refused this side.
    return new MandateError(
      error.code,
      error.kind,
      error.cause === undefined
        ? `the authority at \`${route}\` refused this node's identity or credentials`
        : `the node at \`${route}\` is not an authority this home trusts (or failed to prove it)`,
      { cause: error.cause },
    );
  }
  if (UNREACHABLE.has(error.code) || error.code.startsWith('ERR_TRANSPORT_')) {
    return unavailable(
      'ERR_AUTHORITY_UNREACHABLE',
      `cannot reach the authority at \`${route}\` (${error.code})`,
      error,
    );
  }
  return error;
}

/** The local address of a node's echo service (`node start`), which `channel ping` times. */
export const ECHO = 'echo';

/** What {@link homeChannelOptions} needs besides the home. */
export interface HomeChannelOptions {
  /** The local identity (name or identifier) whose side of channels this is. */
  readonly identity: string;
  /** Credential chains of length 0 (as `credential issue --out` writes them) to present. */
  readonly credentialChains: readonly Uint8Array[];
  /** The deny-set peers are checked against. */
  readonly denySet: DenySet;
  readonly clock: Clock;
  readonly logger: Logger;
}

/**
 * This process's side of secure channels: the home's identity, X25519 keys attested by its
 * primary key and rotated while the process runs (a `StaticKeyManager`; the keys live only in
 * memory), and the given credentials. Peers
 * must hold a credential from one of this home's trust anchors, and nothing of them may be on
 * `denySet` — the home's live deny-set (`home.watchDenySet`), checked at the handshake and again
 * on every delivery.
 */
export async function homeChannelOptions(
  home: Home,
  opts: HomeChannelOptions,
): Promise<{
  identity: VerifiedIdentity;
  options: SecureChannelOptions;
  /** The credentials of `credentialChains`. */
  credentials: readonly Uint8Array[];
}> {
  const { clock, logger, denySet } = opts;
  const known = await home.identities.get(opts.identity);
  if (known.primaryKeyId === null) {
    throw invalid(
      'ERR_IDENTITY_NOT_LOCAL',
      `identity \`${opts.identity}\` has no key in this vault`,
    );
  }
  const credentials = opts.credentialChains.map((chain) => decodeChain(chain).root);
  // Peers are verified against the home-wide anchors only, never those of one enrollment.
  const authorities = await home.trustedAuthorities();
  // Rotated while the process runs (its timer is unref'd): new handshakes always present a
  // valid attestation, however long a node runs.
  const staticKeys = await StaticKeyManager.start(home.vault, {
    identity: known.identity,
    primaryKeyId: known.primaryKeyId,
    clock,
    logger,
  });
  return {
    identity: known.identity,
    credentials,
    options: {
      staticKey: staticKeys,
      identityPayload: staticKeys.identityPayload(credentials),
      verify: {
        authorities,
        trustPolicy: TrustPolicies.credentialHolder(),
        denySet,
        // Peers that come back (reconnects, many channels from one agent) skip the signatures.
        cache: new VerifiedPeerCache(),
      },
      clock,
      logger,
    },
  };
}
