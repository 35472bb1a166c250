import { secondsSince } from './demo-time.js';
import type { Clock } from '../../core/index.js';
import { isMandateError } from '../../core/index.js';
import {
  authorize,
  chainFromCredential,
  ChainVerifier,
  constraintsToAttributes,
  delegate,
  parseConstraint,
  parseEnrollmentTicket,
  TRUST_SCOPE_ALL,
  verifyCredential,
  type Constraint,
  type VerifiedChain,
} from '../../credentials/index.js';
import { type Identifier } from '../../identity/index.js';
import { credentialIssuerOf, type Home } from '../home.js';
import { withProgress } from '../progress.js';

const constraints = (...texts: string[]): Map<string, Constraint> =>
  new Map(texts.map((t) => parseConstraint(t)));

export interface CredentialScenarioSummary {
  readonly enrolled: number;
  readonly enrollSeconds: number;
  readonly credentialsVerified: number;
  readonly verifySeconds: number;
  readonly subAgents: number;
  readonly decisions: {
    readonly allowed: number;
    readonly denied: number;
    readonly injectedCallDenied: string;
  };
  readonly revocation: {
    readonly revoked: string;
    readonly subAgentsDeniedAfter: number;
    readonly humanStillAllowed: boolean;
  };
}

/**
 * Steps 5–7 of the demo: an authority enrolls every agent with a one-time ticket (many uses) and
 * gives each a credential; a human delegates to a support agent, which delegates narrower to
 * sub-agents; a prompt-injected call is denied; revoking the support agent's link mid-run takes
 * every sub-agent down with it while the human keeps working.
 */
export async function runCredentialScenario(
  home: Home,
  agents: readonly Identifier[],
  clock: Clock,
  say: (text: string) => void,
  showProgress: boolean,
): Promise<CredentialScenarioSummary> {
  const now = clock.nowSeconds();
  const authorityIdentity = (await home.identities.create({ name: 'authority' })).identity;
  await home.trustAnchors.addTrustAnchor({
    identifier: authorityIdentity.identifier,
    scope: TRUST_SCOPE_ALL,
    addedAt: now,
  });
  const authority = home.authority('authority');
  const authorities = new Map([[authorityIdentity.identifier, authorityIdentity]]);

  // 5. Enrollment: one ticket, a use per agent; the code is stored only as a hash.
  const grant = constraintsToAttributes(
    constraints('tools=lookup_customer,read_orders', 'tenant=acme'),
  );
  say(`5. enrolling ${agents.length} agents with a one-time ticket and issuing their credentials`);
  const ticket = parseEnrollmentTicket(
    await authority.createTicket(authorityIdentity.identifier, {
      attributes: constraintsToAttributes(
        constraints('tools=lookup_customer,read_orders', 'tenant=acme'),
      ),
      uses: Math.min(agents.length, 1000),
      ttlSeconds: 3600,
      nowSeconds: now,
    }),
  );
  let t = process.hrtime.bigint();
  const credentials: Uint8Array[] = [];
  let code = ticket.code;
  await withProgress('   enrolled', agents.length, showProgress, async (update) => {
    // Redemptions are written 500 to a transaction, as a busy authority would batch them.
    for (let start = 0; start < agents.length; start += 500) {
      await home.store.database.transaction(async () => {
        for (let i = start; i < Math.min(agents.length, start + 500); i++) {
          // A ticket allows at most 1,000 uses: the authority hands out a fresh one per thousand.
          if (i > 0 && i % 1000 === 0) {
            code = parseEnrollmentTicket(
              await authority.createTicket(authorityIdentity.identifier, {
                attributes: grant,
                uses: Math.min(agents.length - i, 1000),
                ttlSeconds: 3600,
                nowSeconds: now,
              }),
            ).code;
          }
          const known = await home.identities.get(agents[i]!);
          const { credential } = await authority.redeem(
            { code, changeHistory: known.identity.changeHistory },
            now,
          );
          credentials.push(credential);
          update(i + 1);
        }
      });
    }
  });
  const enrollSeconds = secondsSince(t);

  t = process.hrtime.bigint();
  for (const credential of credentials)
    verifyCredential(credential, { nowSeconds: now, authorities });
  const verifySeconds = secondsSince(t);
  say(`   ${credentials.length} credentials verified`);

  // 6. Delegation: human → support agent → sub-agents, each link narrower.
  const subAgents = agents.slice(1, Math.min(agents.length, 11));
  say(
    `6. a human delegates to a support agent, which delegates narrower to ${subAgents.length} sub-agents`,
  );
  const human = (await home.identities.create({ name: 'human-dana' })).identity;
  await authority.addMember(
    authorityIdentity.identifier,
    human.identifier,
    constraintsToAttributes(
      constraints(
        'tools=issue_refund,read_orders',
        'issue_refund#amount<=1000',
        'order=/orders/**',
      ),
    ),
    { nowSeconds: now },
  );
  const denySet = await home.denySet(now);
  const verifier = new ChainVerifier({ authorities, denySet });
  const humanChain = chainFromCredential(
    await authority.issueCredential(human.identifier, now),
    human,
  );
  const support = (await home.identities.get(agents[0]!)).identity;
  const supportChain = await delegate(
    home.vault,
    await credentialIssuerOf(home, human),
    verifier.verify(humanChain, { nowSeconds: now }),
    {
      nowSeconds: now,
      subject: support,
      constraints: constraints('issue_refund#amount<=200'),
      purpose: 'support shift',
      ttlSeconds: 1800,
    },
  );
  const supportIssuer = await credentialIssuerOf(home, support);
  const subChains: VerifiedChain[] = [];
  for (const sub of subAgents) {
    const identity = (await home.identities.get(sub)).identity;
    const bytes = await delegate(
      home.vault,
      supportIssuer,
      verifier.verify(supportChain, { nowSeconds: now }),
      {
        nowSeconds: now,
        subject: identity,
        constraints: constraints('tools=read_orders', 'order=/orders/4471/**'),
        purpose: 'resolve complaint #4471',
        ttlSeconds: 600,
      },
    );
    subChains.push(verifier.verify(bytes, { nowSeconds: now, presenter: identity.identifier }));
  }
  const call = (chain: VerifiedChain, action: string, args: Record<string, string>) =>
    authorize(chain, { action, args: new Map(Object.entries(args)), nowSeconds: now }, { denySet });
  let allowed = 0;
  let denied = 0;
  for (const chain of subChains) {
    if (call(chain, 'read_orders', { order: '/orders/4471' }).decision === 'allow') allowed++;
    if (call(chain, 'issue_refund', { order: '/orders/4471', amount: '50' }).decision === 'deny')
      denied++;
  }
  // A sub-agent talked into reading another customer's order by text in a ticket it processed.
  const injected = call(subChains[0]!, 'read_orders', { order: '/orders/9999' });
  const injectedCallDenied =
    injected.decision === 'deny'
      ? `${injected.failed.constraint ?? ''}: ${injected.failed.reason}`
      : 'ALLOWED';
  say(
    `   sub-agents may read order #4471: ${allowed}/${subChains.length}; refunds refused: ${denied}/${subChains.length}`,
  );
  say(`   prompt-injected call to /orders/9999 → ${injected.decision}`);

  // 7. Revocation mid-run: the support agent's link dies, and every chain through it.
  const supportLink = verifier.verify(supportChain, { nowSeconds: now }).links[0]!;
  say(`7. revoking the support agent's delegation (${supportLink.revocationId})`);
  await home.denySetRepository.append(
    [
      {
        kind: 'revocation-id',
        id: supportLink.revocationId,
        revokedAt: now,
        expiresAt: supportLink.expiresAt,
      },
    ],
    now,
  );
  const after = await home.denySet(now);
  let subAgentsDeniedAfter = 0;
  for (const chain of subChains) {
    const decision = authorize(
      chain,
      { action: 'read_orders', args: new Map([['order', '/orders/4471']]), nowSeconds: now },
      { denySet: after },
    );
    if (decision.decision === 'deny') subAgentsDeniedAfter++;
  }
  let humanStillAllowed: boolean;
  try {
    const humanVerified = new ChainVerifier({ authorities, denySet: after }).verify(humanChain, {
      nowSeconds: now,
    });
    humanStillAllowed =
      authorize(
        humanVerified,
        {
          action: 'issue_refund',
          args: new Map([
            ['amount', '500'],
            ['order', '/orders/1'],
          ]),
          nowSeconds: now,
        },
        { denySet: after },
      ).decision === 'allow';
  } catch (error) {
    if (!isMandateError(error)) throw error;
    humanStillAllowed = false;
  }
  say(
    `   sub-agents denied after revocation: ${subAgentsDeniedAfter}/${subChains.length}; the human still works: ${humanStillAllowed ? 'yes' : 'no'}`,
  );

  return {
    enrolled: credentials.length,
    enrollSeconds,
    credentialsVerified: credentials.length,
    verifySeconds,
    subAgents: subChains.length,
    decisions: { allowed, denied, injectedCallDenied },
    revocation: { revoked: supportLink.revocationId, subAgentsDeniedAfter, humanStillAllowed },
  };
}
