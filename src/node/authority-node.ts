// The authority as a node service (`authority start`; docs/spec/node.md, docs/spec/policy.md §3):
// the enrollment service (tickets redeemed, members' credentials renewed) and the bus service
// serving this home's deny-set and policy bundles to members' nodes, both at the node's listener.
import type { Clock } from '../core/index.js';
import { invalid, notFound } from '../core/internal.js';
import { Authority } from '../credentials/index.js';
import type { Identifier } from '../identity/index.js';
import { InProcessBus } from '../bus/index.js';
import { BundleFeed, DenySetFeed } from './bus-feeds.js';
import { BUS_SERVICE_ADDRESS, BusService } from './bus-service.js';
import { ENROLLMENT_SERVICE_ADDRESS, EnrollmentService } from './enrollment-service.js';
import type { Home } from './home.js';
import { ServiceParts, type NodeServiceContext, type RunningService } from './service.js';

/** The listener addresses of the authority service. */
export const AUTHORITY_SERVICE_ADDRESSES: readonly string[] = [
  ENROLLMENT_SERVICE_ADDRESS,
  BUS_SERVICE_ADDRESS,
];

/**
 * This home's authority, issuing credentials that live `ttlSeconds`
 * (`authorityService.credentialTtlSeconds`, `--credential-ttl`) instead of the policy's default;
 * at most the policy's maximum.
 */
function authorityWithTtl(
  home: Home,
  clock: Clock,
  identifier: Identifier,
  ttlSeconds: number | undefined,
): Authority {
  const standard = home.authority(identifier);
  if (ttlSeconds === undefined) return standard;
  const max = standard.policy.maxCredentialTtlSeconds;
  if (ttlSeconds > max)
    throw invalid(
      'ERR_NODE_CONFIG_INVALID',
      `node config: \`authorityService.credentialTtlSeconds\` must be at most ${max} seconds`,
    );
  return new Authority({
    identities: home.identities,
    vault: home.vault,
    repository: home.store.authority,
    authority: identifier,
    clock,
    policy: { ...standard.policy, defaultCredentialTtlSeconds: ttlSeconds },
  });
}

/**
 * The authority service of a node whose `identity` is the authority. Its peers are no members
 * yet: the node's listener admits any identity that proves itself (the definition says so), and
 * a revoked one fails the handshake; the enrollment service enrolls exactly the identity of the
 * channel. Members' nodes subscribe to the bus service through the same listener — members only,
 * never a revoked one. The bus is fed from this home's store: a revocation or a bundle published
 * here after the start reaches subscribers within a poll (200 ms).
 *
 * Its stop closes the bus service, waits for a redemption in flight, then stops the feeds.
 */
export async function startAuthority(node: NodeServiceContext): Promise<RunningService> {
  const { config, home, router, denySet, clock, logger } = node;
  // The node's channel identity (checked local when the node took its side of channels).
  const known = await home.identities.get(config.identity);
  const identifier = known.identity.identifier;
  const authority = authorityWithTtl(
    home,
    clock,
    identifier,
    config.authorityService?.credentialTtlSeconds,
  );
  const bus = new InProcessBus({ logger });
  const parts = new ServiceParts('authority', logger);
  parts.add(() => {
    bus.close();
  });
  try {
    const denySetFeed = await DenySetFeed.start({
      repository: home.denySetRepository,
      bus,
      clock,
      logger,
    });
    parts.add(() => denySetFeed.stop());
    const bundleFeed = await BundleFeed.start({
      repository: home.store.policyBundles,
      bus,
      clock,
      logger,
    });
    parts.add(() => bundleFeed.stop());
    const enrollment = new EnrollmentService(router, {
      authority,
      identities: home.identities,
      denySet,
      clock,
      logger,
    });
    parts.add(() => enrollment.close());
    const busService = new BusService(router, {
      bus,
      logger,
      authorize: async (peer) => {
        denySet.assertNoneRevoked([peer.identifier], clock.nowSeconds());
        if ((await authority.member(peer.identifier)) === undefined)
          throw notFound(
            'ERR_MEMBER_NOT_FOUND',
            `\`${peer.identifier}\` is not a member of this authority`,
          );
      },
    });
    // Closed first: no new subscription while the redemption in flight finishes.
    parts.add(() => {
      busService.close();
    });
  } catch (error) {
    await parts.stopAll();
    throw error;
  }
  return {
    stop: parts.stopAll,
    listening: {
      authority: identifier,
      credentialTtlSeconds: authority.policy.defaultCredentialTtlSeconds,
    },
  };
}
