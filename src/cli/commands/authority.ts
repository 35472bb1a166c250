import type { Command } from 'commander';
import { invalid, notFound } from '../../core/internal.js';
import { LIVE_DENY_SET_STALENESS_SECONDS } from '../home.js';
import { isMandateError } from '../../core/index.js';
import { toHex } from '../../encoding/index.js';
import { Authority, DenySet, TRUST_SCOPE_ALL } from '../../credentials/index.js';
import type { Identifier, VerifiedIdentity } from '../../identity/index.js';
import { StaticKeyManager, SecureChannelListener, TrustPolicies } from '../../channel/index.js';
import { Router, TcpTransport } from '../../routing/index.js';
import {
  BUS_SERVICE_ADDRESS,
  BundleFeed,
  BusService,
  DenySetFeed,
  ENROLLMENT_SERVICE_ADDRESS,
  EnrollmentService,
} from '../../node/index.js';
import { DenySetFollower, InProcessBus } from '../../bus/index.js';
import type { Home } from '../home.js';
import type { CliContext } from '../context.js';
import { formatFields } from '../output.js';
import { parseDuration } from '../parse.js';
import { listenTcp, untilSignal } from '../node-runtime.js';
import { stderrLogger } from '../logging.js';
import { DEFAULT_AUTHORITY, requireLocal } from '../chains.js';

export function registerAuthorityCommands(program: Command, context: () => CliContext): void {
  const authorityCommand = program
    .command('authority')
    .description('run this home as an authority');
  authorityCommand
    .command('init')
    .option('--name <name>', 'name of the authority identity', DEFAULT_AUTHORITY)
    .description('create (or reuse) the authority identity and trust it as an issuer')
    .action((opts: { name: string }) => runAuthorityInit(context(), opts));

  authorityCommand
    .command('start')
    .description(
      'run the authority node until SIGINT or SIGTERM: redeems tickets, renews members’ credentials and serves its deny-set and policy bundles to members’ nodes over secure channels (logs on stderr)',
    )
    .requiredOption('--listen <host:port>', 'where to listen, e.g. 127.0.0.1:4200')
    .option('--name <name>', 'name of the authority identity', DEFAULT_AUTHORITY)
    .option(
      '--credential-ttl <duration>',
      'lifetime of the credentials it issues (redeemed and renewed), at most 1d (default 1h)',
    )
    .action((opts: { listen: string; name: string; credentialTtl?: string }) =>
      runAuthorityStart(context(), opts),
    );
}

/**
 * The authority identity `name` of an open home, created when the home has none by that name,
 * and trusted as an issuer for every scope (again, harmlessly, when it already is): the one-time
 * set-up of `authority init` and `up`.
 */
export async function ensureAuthority(
  home: Home,
  name: string,
  nowSeconds: number,
): Promise<{ readonly identity: VerifiedIdentity; readonly created: boolean }> {
  let identity: VerifiedIdentity;
  let created = false;
  try {
    identity = (await home.identities.get(name)).identity;
  } catch {
    identity = (await home.identities.create({ name })).identity;
    created = true;
  }
  await home.trustAnchors.addTrustAnchor({
    identifier: identity.identifier,
    scope: TRUST_SCOPE_ALL,
    addedAt: nowSeconds,
  });
  return { identity, created };
}

/** `authority init`: create (or reuse) the authority identity and trust it as an issuer. */
export async function runAuthorityInit(ctx: CliContext, opts: { name: string }): Promise<void> {
  const home = await ctx.openHome();
  try {
    const { identity } = await ensureAuthority(home, opts.name, ctx.clock.nowSeconds());
    ctx.out.result(
      {
        identifier: identity.identifier,
        name: opts.name,
        changeHistory: toHex(identity.changeHistory),
      },
      () =>
        formatFields([
          ['authority', identity.identifier],
          ['name', opts.name],
        ]),
    );
  } finally {
    home.close();
  }
}

/** `authority start`: the authority node, until SIGINT or SIGTERM. */
export async function runAuthorityStart(
  ctx: CliContext,
  opts: { listen: string; name: string; credentialTtl?: string },
): Promise<void> {
  const ttlSeconds =
    opts.credentialTtl === undefined
      ? undefined
      : parseDuration(opts.credentialTtl, '--credential-ttl');
  const logger = stderrLogger();
  const home = await ctx.openHome();
  const router = new Router({ logger });
  // The authority's bus (docs/spec/policy.md §3): fed from this home's store, followed by this
  // process's own verifiers and, through the bus service, by members' nodes.
  const bus = new InProcessBus({ logger });
  let denySetFeed: DenySetFeed | undefined;
  let bundleFeed: BundleFeed | undefined;
  let follower: DenySetFollower | undefined;
  try {
    const known = await home.identities.get(opts.name).catch((error: unknown) => {
      if (!isMandateError(error, 'ERR_IDENTITY_NOT_FOUND')) throw error;
      throw notFound(
        'ERR_IDENTITY_NOT_FOUND',
        `no authority \`${opts.name}\` in this home: create it with \`mandate authority init\``,
      );
    });
    const primaryKeyId = requireLocal(known, opts.name);
    // The channel key lives in this process only, attested for a day and rotated every half day.
    const staticKeys = await StaticKeyManager.start(home.vault, {
      identity: known.identity,
      primaryKeyId,
      clock: ctx.clock,
      logger,
    });
    const transport = new TcpTransport(router, { logger });
    // Revocations made in this home after the start reach the bus within a poll (200 ms), and
    // from it the listener and the services here, and every member's node that follows.
    denySetFeed = await DenySetFeed.start({
      repository: home.denySetRepository,
      bus,
      clock: ctx.clock,
      logger,
    });
    bundleFeed = await BundleFeed.start({
      repository: home.store.policyBundles,
      bus,
      clock: ctx.clock,
      logger,
    });
    const denySet = new DenySet({ maxStalenessSeconds: LIVE_DENY_SET_STALENESS_SECONDS });
    follower = new DenySetFollower(bus, denySet, { logger });
    follower.start();
    await follower.ready;
    // Redeemers are no members yet: any identity that proves itself may open a channel, and
    // its messages reach the enrollment service only, which enrolls exactly that identity.
    // A revoked identity fails the handshake, and an open channel of one closes. Members'
    // nodes subscribe to the bus service through the same listener.
    const listener = new SecureChannelListener(router, {
      staticKey: staticKeys,
      identityPayload: staticKeys.identityPayload(),
      verify: { authorities: new Map(), trustPolicy: TrustPolicies.anyIdentity(), denySet },
      deliverTo: [ENROLLMENT_SERVICE_ADDRESS, BUS_SERVICE_ADDRESS],
      clock: ctx.clock,
      logger,
    });
    router.allowFromAnyConnection(listener.address);
    const authority = authorityWithTtl(home, ctx, known.identity.identifier, ttlSeconds);
    const service = new EnrollmentService(router, {
      authority,
      identities: home.identities,
      denySet,
      clock: ctx.clock,
      logger,
    });
    // Members only, and never a revoked one (the listener's checks hold for every message too).
    const busService = new BusService(router, {
      bus,
      logger,
      authorize: async (peer) => {
        denySet.assertNoneRevoked([peer.identifier], ctx.clock.nowSeconds());
        if ((await authority.member(peer.identifier)) === undefined)
          throw notFound(
            'ERR_MEMBER_NOT_FOUND',
            `\`${peer.identifier}\` is not a member of this authority`,
          );
      },
    });
    const bound = await listenTcp(transport, opts.listen);
    logger.info('listening', {
      address: bound.address,
      route: bound.route,
      authority: known.identity.identifier,
      credentialTtlSeconds: authority.policy.defaultCredentialTtlSeconds,
    });
    const signal = await untilSignal();
    logger.info('stopping', { signal });
    // Channels first (no new requests), then the redemption in flight, if any.
    busService.close();
    await listener.close();
    await service.close();
  } finally {
    await router.close();
    follower?.stop();
    await denySetFeed?.stop();
    await bundleFeed?.stop();
    bus.close();
    home.close();
  }
}

/**
 * The authority service of `authority start`: this home's, issuing credentials that live
 * `ttlSeconds` (`--credential-ttl`) instead of the policy's default; at most the policy's maximum.
 */
function authorityWithTtl(
  home: Home,
  ctx: CliContext,
  identifier: Identifier,
  ttlSeconds: number | undefined,
): Authority {
  const standard = home.authority(identifier);
  if (ttlSeconds === undefined) return standard;
  const max = standard.policy.maxCredentialTtlSeconds;
  if (ttlSeconds > max)
    throw invalid('ERR_ARGUMENT_INVALID', `\`--credential-ttl\` must be at most ${max} seconds`);
  return new Authority({
    identities: home.identities,
    vault: home.vault,
    repository: home.store.authority,
    authority: identifier,
    clock: ctx.clock,
    policy: { ...standard.policy, defaultCredentialTtlSeconds: ttlSeconds },
  });
}
