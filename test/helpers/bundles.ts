import { ManualClock } from '../../src/core/index.js';
import { MemoryVault } from '../../src/vault/index.js';
import { Identities, MemoryIdentityRepository, Purpose } from '../../src/identity/index.js';
import type { CredentialIssuer } from '../../src/credentials/index.js';
import { signBundle } from '../../src/gates/bundle.js';

/** A fixed start time, as a ManualClock gives it. */
export const BUNDLE_T0 = 1_800_000_000;

/** A small schema in Cedar's human-readable format: agents call tools of servers. */
export const TEST_SCHEMA = `
entity Server;
entity Tool in [Server] { risk: Long };
entity Agent { teams: Set<String> };
action callTool appliesTo { principal: Agent, resource: Tool, context: { amount: Long } };
`;

/** Policies valid against {@link TEST_SCHEMA}: `support` may call low-risk tools, under 100. */
export const TEST_POLICIES = `
@id("support-low-risk")
permit(principal, action == Action::"callTool", resource is Tool)
  when { principal.teams.contains("support") && resource.risk < 3 };
@id("cap")
forbid(principal, action == Action::"callTool", resource) when { context.amount > 100 };
`;

/**
 * In-memory identities with a manual clock, and `authority(name)`: a local identity whose
 * credential key signs bundles (the {@link CredentialIssuer} a home's authority would be).
 */
export function bundleWorld(start = BUNDLE_T0) {
  const clock = new ManualClock(start);
  const vault = new MemoryVault();
  const identities = new Identities({ vault, repository: new MemoryIdentityRepository(), clock });
  const authority = async (name: string): Promise<CredentialIssuer> => {
    const created = await identities.create({ name });
    const { verified, keyId } = await identities.purposeKey(name, Purpose.credentials);
    return {
      identity: created.identity,
      credentialKeyId: keyId,
      credentialKeyAttestation: verified.attestation,
    };
  };
  /** Signs version `version` of the test policies (or `policies`) now. */
  const sign = (issuer: CredentialIssuer, version: number, policies = TEST_POLICIES) =>
    signBundle(
      vault,
      issuer,
      { policies, schema: TEST_SCHEMA, version },
      { nowSeconds: clock.nowSeconds() },
    );
  return { clock, vault, identities, authority, sign };
}
