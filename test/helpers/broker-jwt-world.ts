// A world for token exchange: an authority; dana (root credential granting JWT leases for two
// audiences and three scopes: `secrets=jwt/AUDIENCE`, `secret_scopes=…`, as the broker decides); a 3-link chain dana → planner → billing → payer that narrows the
// scopes; broker keys (Ed25519 and P-256) in the broker's own vault; a chain verifier with a
// live deny-set; and a JwtLeaseProvider per key.
import { ManualClock } from '../../src/core/index.js';
import { MemoryVault, type SigningKeyType } from '../../src/vault/index.js';
import { Identities, MemoryIdentityRepository, Purpose } from '../../src/identity/index.js';
import {
  ChainVerifier,
  chainFromCredential,
  constraintsToAttributes,
  delegate,
  issueCredential,
  parseConstraint,
  type Constraint,
  type CredentialIssuer,
  type VerifiedChain,
} from '../../src/credentials/index.js';
import { JwtLeaseProvider, type LeaseContext } from '../../src/broker/index.js';
import { freshDenySet } from './deny-set.js';

export const JWT_NOW = 1_800_000_000;
export const PAYMENTS = 'https://api.payments.example';
export const LEDGER = 'https://ledger.example';

const constraints = (...texts: string[]): Map<string, Constraint> =>
  new Map(texts.map((t) => parseConstraint(t)));

export async function brokerJwtWorld(options: { readonly agentKeyType?: SigningKeyType } = {}) {
  const clock = new ManualClock(JWT_NOW);
  const vault = new MemoryVault();
  const identities = new Identities({ vault, repository: new MemoryIdentityRepository(), clock });
  const make = async (name: string) => {
    const local = await identities.create({
      name,
      ...(options.agentKeyType === undefined ? {} : { credentialKeyType: options.agentKeyType }),
    });
    const { verified, keyId } = await identities.purposeKey(name, Purpose.credentials);
    const issuer: CredentialIssuer = {
      identity: local.identity,
      credentialKeyId: keyId,
      credentialKeyAttestation: verified.attestation,
    };
    return { identity: local.identity, issuer, id: local.identity.identifier };
  };
  const authority = await make('authority');
  const dana = await make('dana');
  const planner = await make('planner');
  const billing = await make('billing');
  const payer = await make('payer');
  const stranger = await make('stranger');
  const authorities = new Map([[authority.id, authority.identity]]);
  const denySet = freshDenySet(JWT_NOW, 3600);
  const chains = new ChainVerifier({ authorities, denySet });
  const verify = (bytes: Uint8Array, presenter: `I${string}`): VerifiedChain =>
    chains.verify(bytes, { nowSeconds: clock.nowSeconds(), presenter });

  const root = await issueCredential(
    vault,
    authority.issuer,
    dana.identity,
    constraintsToAttributes(
      constraints(
        'tools=read_orders',
        `secrets=jwt/${PAYMENTS},jwt/${LEDGER}`,
        'secret_scopes=payments:read,payments:refund,payments:write',
      ),
    ),
    { nowSeconds: JWT_NOW, ttlSeconds: 3600 },
  );
  const danaBytes = chainFromCredential(root, dana.identity);
  const danaChain = verify(danaBytes, dana.id);
  const plannerBytes = await delegate(vault, dana.issuer, danaChain, {
    nowSeconds: JWT_NOW,
    subject: planner.identity,
    constraints: constraints('secret_scopes=payments:read,payments:refund'),
    purpose: 'plan refunds',
    ttlSeconds: 1800,
  });
  const plannerChain = verify(plannerBytes, planner.id);
  const billingBytes = await delegate(vault, planner.issuer, plannerChain, {
    nowSeconds: JWT_NOW,
    subject: billing.identity,
    constraints: constraints(`secrets=jwt/${PAYMENTS}`),
    purpose: 'billing run',
    ttlSeconds: 1200,
  });
  const billingChain = verify(billingBytes, billing.id);
  const payerBytes = await delegate(vault, billing.issuer, billingChain, {
    nowSeconds: JWT_NOW,
    subject: payer.identity,
    constraints: constraints(`secrets=jwt/${PAYMENTS}`),
    purpose: 'pay invoice 4471',
    ttlSeconds: 600,
  });
  const payerChain = verify(payerBytes, payer.id);
  // A chain that grants no JWT leases at all.
  const strangerChain = verify(
    chainFromCredential(
      await issueCredential(
        vault,
        authority.issuer,
        stranger.identity,
        constraintsToAttributes(constraints('tools=read_orders')),
        { nowSeconds: JWT_NOW, ttlSeconds: 3600 },
      ),
      stranger.identity,
    ),
    stranger.id,
  );

  // The broker's own vault: its token key never shares a vault with the agents'.
  const brokerVault = new MemoryVault();
  const ed25519Key = await brokerVault.generateSigningKey('ed25519');
  const p256Key = await brokerVault.generateSigningKey('p256');
  const provider = (keyType: SigningKeyType, issuer = 'https://broker.example') =>
    new JwtLeaseProvider({
      vault: brokerVault,
      key: keyType === 'ed25519' ? ed25519Key : p256Key,
      issuer,
      clock,
    });

  let leases = 0;
  /** A lease context as the broker would decide it: `ttlSeconds` capped by the chain. */
  const contextOf = (
    chain: VerifiedChain,
    audience: string,
    scope: readonly string[],
    ttlSeconds = 300,
  ): LeaseContext => ({
    leaseId: `lease_${String(++leases).padStart(32, '0')}`,
    holder: chain.actor,
    chain,
    resource: audience,
    scope,
    nowSeconds: clock.nowSeconds(),
    expiresAt: Math.min(clock.nowSeconds() + ttlSeconds, chain.expiresAt),
  });

  return {
    clock,
    vault,
    authority,
    dana,
    planner,
    billing,
    payer,
    stranger,
    authorities,
    denySet,
    chains,
    danaChain,
    plannerChain,
    billingChain,
    payerChain,
    payerBytes,
    strangerChain,
    brokerVault,
    ed25519Key,
    p256Key,
    provider,
    contextOf,
  };
}
