import type { Clock } from '../../core/index.js';
import { isMandateError } from '../../core/index.js';
import { percentile } from '../../core/internal.js';
import {
  ChainVerifier,
  chainFromCredential,
  constraintsToAttributes,
  delegate,
  parseConstraint,
  type Constraint,
  type VerifiedChain,
} from '../../credentials/index.js';
import type { Identifier } from '../../identity/index.js';
import {
  Gate,
  ToolCatalog,
  answerApproval,
  enforceCall,
  mandateCedarSchema,
  signBundle,
  verifyBundle,
  type EnforcementOptions,
  type GateDecision,
  type ToolDescriptor,
} from '../../gates/index.js';
import { EnforcementPoint, StoreBundleSource, type EnforcedInvocation } from '../../node/index.js';
import { AuditLog, EnforcerSigner, InvocationSigner, type RecordHash } from '../../audit/index.js';
import { credentialIssuerOf, type Home } from '../home.js';
import { homeAuditOrigin } from './audit.js';
import { recordRevocations } from './demo-audit.js';

/** The support desk's tools: two on the CRM server, two on the file server. */
export const DEMO_CATALOG: readonly ToolDescriptor[] = [
  {
    name: 'orders.lookup',
    server: 'crm',
    description: 'look an order up',
    inputSchema: {
      type: 'object',
      properties: { order: { type: 'string' } },
      required: ['order'],
      additionalProperties: false,
    },
  },
  {
    name: 'orders.refund',
    server: 'crm',
    description: 'refund (part of) an order',
    inputSchema: {
      type: 'object',
      properties: {
        order: { type: 'string' },
        amount: { type: 'integer', minimum: 1 },
        region: { type: 'string' },
      },
      required: ['order', 'amount', 'region'],
      additionalProperties: false,
    },
  },
  {
    name: 'files.read',
    server: 'files',
    description: 'read a file',
    inputSchema: {
      type: 'object',
      properties: { path: { type: 'string' } },
      required: ['path'],
      additionalProperties: false,
    },
  },
  {
    name: 'files.delete',
    server: 'files',
    description: 'delete a file',
    inputSchema: {
      type: 'object',
      properties: { path: { type: 'string' } },
      required: ['path'],
      additionalProperties: false,
    },
  },
];

/**
 * The organisation's policies for the support desk. `regions` and `environments` are labels the
 * authority puts on the human's credential (`label.regions=…`): tags of every agent below her,
 * which a link may only narrow. One refund policy covers every region a grant names.
 */
export const DEMO_POLICIES = `// Support desk: agents look orders up, read ticket files, and refund within their regions.
@id("look-up-orders")
permit(principal, action in [Action::"listTool", Action::"callTool"], resource == Tool::"crm/orders.lookup");

@id("read-ticket-files")
permit(principal, action in [Action::"listTool", Action::"callTool"], resource == Tool::"files/files.read")
  when { action == Action::"listTool" || (context.args has path && context.args.path like "/tickets/*") };

@id("see-refunds")
permit(principal, action == Action::"listTool", resource == Tool::"crm/orders.refund");

@id("small-refunds")
permit(principal, action == Action::"callTool", resource == Tool::"crm/orders.refund")
  when {
    context.args has amount && context.args.amount <= 50 &&
    context.args has region && principal.hasTag("regions") && principal.getTag("regions").contains(context.args.region)
  };

@id("large-refunds")
@approval("a refund above 50 needs a person")
permit(principal, action == Action::"callTool", resource == Tool::"crm/orders.refund")
  when {
    context.args has amount && context.args.amount > 50 &&
    context.args has region && principal.hasTag("regions") && principal.getTag("regions").contains(context.args.region)
  };

@id("refunds-from-production-only")
forbid(principal, action == Action::"callTool", resource == Tool::"crm/orders.refund")
  unless { principal.hasTag("environments") && principal.getTag("environments").contains("production") };
`;

/** The root grant's cumulative refund budget, and each sub-agent's per-call cap. */
const REFUND_BUDGET = 300;
const DELEGATED_REFUND_CAP = 100;
/** The support agent's per-call refund cap (between the human's and the sub-agents'). */
const SUPPORT_REFUND_CAP = 200;
/** Sub-agents the human delegates to (the last one for staging only). */
const SUB_AGENTS = 6;
/** Gate-2 calls of the swarm's routine work (lookups and ticket reads). */
const ROUTINE_CALLS = 6000;
/** Of those, how many are also signed by their agent and recorded through the enforcement point. */
const RECORDED_SAMPLE = 300;

/** One refusal as the demo shows it (`refused`: the enforcement point refused the invocation). */
export interface DemoDenial {
  readonly decision: GateDecision['decision'] | 'refused';
  readonly lock: string | null;
  readonly code: string | null;
  readonly reason: string;
}

export interface GateScenarioSummary {
  /** The whole scenario, steps 9–15. */
  readonly seconds: number;
  readonly bundle: { readonly version: number; readonly hash: string; readonly policies: number };
  readonly subAgents: number;
  /** Gate 1 for one sub-agent: the tools it sees (`SERVER/NAME`). */
  readonly toolsListed: readonly string[];
  readonly calls: {
    readonly count: number;
    readonly allowed: number;
    readonly seconds: number;
    readonly perSecond: number;
    /** Each decision's time, median and 99th percentile (nearest rank), in microseconds. */
    readonly p50Micros: number;
    readonly p99Micros: number;
  };
  readonly injected: {
    readonly refundAboveLimit: DemoDenial;
    readonly toolOutsideGrant: DemoDenial;
    readonly pathOutsideSubtree: DemoDenial;
    readonly stagingRefund: DemoDenial;
  };
  readonly approval: {
    readonly id: string;
    readonly first: string;
    readonly approvedBy: string;
    readonly reason: string;
    readonly afterApproval: string;
    readonly replay: string;
    readonly answeredAgain: string;
  };
  readonly budget: {
    readonly limit: number;
    readonly spent: number;
    readonly refunds: number;
    readonly agents: number;
    readonly next: DemoDenial;
  };
  readonly revocation: {
    readonly revoked: Identifier;
    readonly before: string;
    readonly nextCall: DemoDenial;
    readonly siblingStillAllowed: boolean;
    /** The log index of the revocation record (signed by the authority). */
    readonly recordIndex: number;
    /**
     * Revocation-to-enforcement latency: milliseconds from the deny-set entry being committed to
     * the refusal of the revoked agent's very next call being in its hands — the authority's
     * signed revocation record, the enforcement point's deny-set catching up, and that call
     * (signed, submitted, refused). Enforcement is synchronous: the next call is the one refused.
     */
    readonly latencyMs: number;
  };
  /** What went through the enforcement point into the home's audit log. */
  readonly audit: {
    /** Signed invocations recorded with their countersigned decisions. */
    readonly calls: number;
    /** Records in the log at the end of the scenario (invocations, decisions, traces, revocations). */
    readonly records: number;
    /** The sample of routine calls: signed by their agents, recorded, as fast as the log takes them. */
    readonly sample: {
      readonly count: number;
      readonly seconds: number;
      readonly perSecond: number;
    };
    /** "Refund X": the approved refund's invocation record hash and its approval id. */
    readonly refund: { readonly invocation: RecordHash; readonly approval: string };
  };
}

const constraints = (...texts: string[]): Map<string, Constraint> =>
  new Map(texts.map((t) => parseConstraint(t)));

const denial = (d: GateDecision): DemoDenial => ({
  decision: d.decision,
  lock: d.lock,
  code: d.code ?? null,
  reason: d.reasons.join('; '),
});

const show = (d: GateDecision): string =>
  d.decision === 'allow'
    ? `allow (${d.policies.join(', ')})`
    : `${d.decision}, lock ${d.lock ?? '-'}${d.code === undefined ? '' : ` ${d.code}`}: ${d.reasons.join('; ')}`;

/**
 * Steps 9–15 of the demo: the authority publishes a signed policy bundle over a tool catalog; a
 * human with a refund budget delegates to sub-agents of the swarm; their tool calls pass gates 1
 * and 2; prompt-injected calls, a forbidden refund, an exhausted shared budget, a human approval
 * (used once) and a revocation mid-run each show their lock and reason.
 */
export async function runGateScenario(
  home: Home,
  agents: readonly Identifier[],
  clock: Clock,
  say: (text: string) => void,
): Promise<GateScenarioSummary> {
  const started = process.hrtime.bigint();
  const now = clock.nowSeconds();
  const tools = DEMO_CATALOG;
  const catalog = new ToolCatalog(tools);

  // 9. A signed policy bundle, validated against the Mandate schema with the catalog's arguments,
  // binding the catalog: the gates take their tools from the bundle.
  const authorityKnown = await home.identities.get('authority');
  const authority = home.authority('authority');
  const authorityId = authorityKnown.identity.identifier;
  const previous = await home.store.policyBundles.latestBundle();
  const bundleBytes = await signBundle(
    home.vault,
    await credentialIssuerOf(home, authorityKnown.identity),
    {
      policies: DEMO_POLICIES,
      schema: mandateCedarSchema({ tools }),
      version: (previous?.version ?? 0) + 1,
      catalog,
    },
    { nowSeconds: now },
  );
  const bundle = verifyBundle(bundleBytes, {
    nowSeconds: now,
    authorities: await home.trustedAuthorities(),
  });
  await home.store.policyBundles.publishBundle(bundleBytes, now);
  say(
    `9. the authority publishes policy bundle version ${bundle.version} (${bundle.policySet.policies.length} Cedar policies, signed) over ${tools.length} tools: ${tools.map((t) => `${t.server}/${t.name}`).join(', ')}`,
  );

  // 10. A human's root grant (a refund budget for everything below her) and sub-agents.
  const human = (await home.identities.create({ name: 'human-ava' })).identity;
  await authority.addMember(
    authorityId,
    human.identifier,
    constraintsToAttributes(
      constraints(
        'human=true',
        'tools=orders.lookup,orders.refund,files.read',
        'orders.refund#amount<=500',
        'files.read#path=/tickets/**',
        'label.regions=eu-west-1,eu-central-1',
        'label.environments=production,staging',
        `mandate.budget:orders.refund#amount<=${REFUND_BUDGET}`,
      ),
    ),
    { nowSeconds: now },
  );
  const watcher = await home.watchDenySet({ clock });
  try {
    const denySet = watcher.denySet;
    const authorities = await home.trustedAuthorities();
    const verifier = new ChainVerifier({ authorities, denySet });
    const humanBytes = chainFromCredential(
      await authority.issueCredential(human.identifier, now),
      human,
    );
    const humanChain = verifier.verify(humanBytes, {
      nowSeconds: now,
      presenter: human.identifier,
    });
    const humanIssuer = await credentialIssuerOf(home, human);
    // She delegates to a support agent, which delegates narrower to the swarm's sub-agents.
    const support = (await home.identities.create({ name: 'support-agent' })).identity;
    const supportChain = verifier.verify(
      await delegate(home.vault, humanIssuer, humanChain, {
        nowSeconds: now,
        subject: support,
        constraints: constraints(
          'tools=orders.lookup,orders.refund,files.read',
          `orders.refund#amount<=${SUPPORT_REFUND_CAP}`,
          'files.read#path=/tickets/**',
        ),
        purpose: 'support shift',
        ttlSeconds: 3600,
      }),
      { nowSeconds: now, presenter: support.identifier },
    );
    const supportIssuer = await credentialIssuerOf(home, support);
    const subIds = agents.slice(-SUB_AGENTS);
    const subs: VerifiedChain[] = [];
    for (const [i, id] of subIds.entries()) {
      const identity = (await home.identities.get(id)).identity;
      const staging = i === subIds.length - 1;
      const bytes = await delegate(home.vault, supportIssuer, supportChain, {
        nowSeconds: now,
        subject: identity,
        constraints: constraints(
          'tools=orders.lookup,orders.refund,files.read',
          `orders.refund#amount<=${DELEGATED_REFUND_CAP}`,
          'files.read#path=/tickets/4471/**',
          ...(staging ? ['label.environments=staging'] : []),
        ),
        purpose: 'resolve complaint #4471',
        ttlSeconds: 900,
      });
      subs.push(verifier.verify(bytes, { nowSeconds: now, presenter: identity.identifier }));
    }
    const staging = subs.at(-1)!;
    const workers = subs.slice(0, -1);
    say(
      `10. human-ava (human=true, refund budget ${REFUND_BUDGET} for her whole grant) delegates to support-agent (refunds ≤ ${SUPPORT_REFUND_CAP}, ticket files), which delegates to ${subs.length} sub-agents: refunds ≤ ${DELEGATED_REFUND_CAP}, files under /tickets/4471/ (one for staging only)`,
    );

    const bundles = await StoreBundleSource.start({
      repository: home.store.policyBundles,
      authorities: () => home.trustedAuthorities(),
      maxStalenessSeconds: 60,
      clock,
    });
    try {
      const gate = new Gate({ catalog, bundles, denySet });
      const enforcement: EnforcementOptions = {
        gate,
        bundles,
        approvals: home.store.approvals,
        budgets: home.store.budgets,
        denySet,
        authorities,
      };
      const call = (chain: VerifiedChain, tool: string, args: Record<string, unknown>) =>
        enforceCall(enforcement, chain, { tool, args }, now);

      // The enforcement point: each showcase call signed by the acting agent, verified, decided,
      // and recorded with the decision the authority countersigns, in the home's audit log.
      const log = await AuditLog.open({
        repository: home.store.auditLog,
        origin: homeAuditOrigin(authorityId),
      });
      try {
        const authorityIssuer = await credentialIssuerOf(home, authorityKnown.identity);
        const point = await EnforcementPoint.open({
          enforcement,
          chains: verifier,
          authorities,
          log,
          trail: home.store.auditTrail,
          signer: new EnforcerSigner(home.vault, authorityIssuer),
          // Refunds' arguments go into their decision records: the trail says which refund it was.
          discloseArguments: (c) => c.tool === 'orders.refund',
        });
        const signers = new Map<Identifier, InvocationSigner>();
        const signerOf = async (chain: VerifiedChain): Promise<InvocationSigner> => {
          let signer = signers.get(chain.actor);
          if (signer === undefined) {
            const identity = (await home.identities.get(chain.actor)).identity;
            signer = new InvocationSigner(
              home.vault,
              await credentialIssuerOf(home, identity),
              await point.head(chain.actor),
            );
            signers.set(chain.actor, signer);
          }
          return signer;
        };
        const serverOf = new Map(tools.map((t) => [t.name, t.server]));
        let recorded = 0;
        /**
         * Signs the call as its agent and submits it: resolves once submitted (in the agent's
         * order), with `recorded` resolving once both records are durable.
         */
        const submit = async (
          chain: VerifiedChain,
          tool: string,
          args: Record<string, unknown>,
        ): Promise<{ recorded: Promise<EnforcedInvocation> }> => {
          const server = serverOf.get(tool);
          const signed = await (
            await signerOf(chain)
          ).sign({
            chain: chain.bytes,
            tool,
            ...(server === undefined ? {} : { server }),
            args,
            nowSeconds: now,
          });
          return {
            recorded: point.submit(signed.bytes, args, now, chain.bytes).then((r) => {
              recorded++;
              return r;
            }),
          };
        };
        const audited = async (chain: VerifiedChain, tool: string, args: Record<string, unknown>) =>
          (await (await submit(chain, tool, args)).recorded).decision;

        // Gate 1: what a sub-agent may even see.
        const toolsListed = gate.listTools(subs[0]!, now).map((t) => `${t.server}/${t.name}`);
        say(`    gate 1 — ${subs[0]!.actor.slice(0, 12)}… sees: ${toolsListed.join(', ')}`);

        // 11. The swarm's routine calls through gate 2.
        let allowed = 0;
        const latencies: number[] = [];
        const t = process.hrtime.bigint();
        for (let i = 0; i < ROUTINE_CALLS; i++) {
          const chain = subs[i % subs.length]!;
          const started = process.hrtime.bigint();
          const decision =
            i % 2 === 0
              ? await call(chain, 'orders.lookup', { order: `4471-${i % 17}` })
              : await call(chain, 'files.read', { path: `/tickets/4471/message-${i % 23}.txt` });
          latencies.push(Number(process.hrtime.bigint() - started) / 1e3);
          if (decision.decision === 'allow') allowed++;
        }
        const seconds = Number(process.hrtime.bigint() - t) / 1e9;
        const perSecond = Math.round(ROUTINE_CALLS / seconds);
        const p50Micros = Math.round(percentile(latencies, 50));
        const p99Micros = Math.round(percentile(latencies, 99));
        say(
          `11. the swarm's tool calls pass gate 2 (chain, arguments, policies): ${allowed}/${ROUTINE_CALLS} allowed in ${seconds.toFixed(2)} s (${perSecond} calls/s; per decision p50 ${p50Micros} µs, p99 ${p99Micros} µs)`,
        );
        if (allowed !== ROUTINE_CALLS) throw new Error('a routine call was refused');
        // A sample of the same calls through the enforcement point: each agent signs its calls in
        // order, the submissions overlap, and the log's group commit makes them durable together.
        const ts = process.hrtime.bigint();
        const submitted: Promise<EnforcedInvocation>[] = [];
        for (let i = 0; i < RECORDED_SAMPLE; i++) {
          const chain = subs[i % subs.length]!;
          const { recorded: done } = await (i % 2 === 0
            ? submit(chain, 'orders.lookup', { order: `4471-${i % 17}` })
            : submit(chain, 'files.read', { path: `/tickets/4471/message-${i % 23}.txt` }));
          done.catch(() => undefined); // awaited below; a rejection there stops the demo
          submitted.push(done);
        }
        const sampleAllowed = (await Promise.all(submitted)).filter(
          (r) => r.decision.decision === 'allow',
        ).length;
        const sampleSeconds = Number(process.hrtime.bigint() - ts) / 1e9;
        const samplePerSecond = Math.round(RECORDED_SAMPLE / sampleSeconds);
        if (sampleAllowed !== RECORDED_SAMPLE)
          throw new Error('a recorded routine call was refused');
        say(
          `    ${RECORDED_SAMPLE} of them also signed by their agents and recorded through the enforcement point (invocation + countersigned decision, durable): ${sampleSeconds.toFixed(2)} s (${samplePerSecond} recorded calls/s)`,
        );

        // 12. Calls a prompt injection talked a sub-agent into; a refund policy forbids.
        say('12. prompt-injected calls, each refused with its lock and reason');
        const injectedRefund = await audited(workers[1]!, 'orders.refund', {
          order: '4471',
          amount: 150,
          region: 'eu-west-1',
        });
        const outsideGrant = await audited(workers[1]!, 'files.delete', { path: '/tickets/4471' });
        const outsidePath = await audited(workers[1]!, 'files.read', {
          path: '/tickets/9921/customer-export.csv',
        });
        const stagingRefund = await audited(staging, 'orders.refund', {
          order: '4471',
          amount: 20,
          region: 'eu-west-1',
        });
        const line = (what: string, d: GateDecision) => {
          say(`    ${what.padEnd(38)} → ${show(d)}`);
        };
        line(`a refund of 150 (delegated ≤ ${DELEGATED_REFUND_CAP})`, injectedRefund);
        line('files.delete (never granted)', outsideGrant);
        line("read another customer's ticket file", outsidePath);
        line('a refund by the staging-only sub-agent', stagingRefund);
        for (const d of [injectedRefund, outsideGrant, outsidePath, stagingRefund])
          if (d.decision !== 'deny') throw new Error('an injected call was not denied');

        // 13. A large refund waits for a person, passes once when she approves, never twice.
        const large = { order: '4471', amount: 100, region: 'eu-west-1' };
        const asked = await audited(workers[0]!, 'orders.refund', large);
        const id = asked.approval?.id;
        if (asked.decision !== 'approval_required' || id === undefined)
          throw new Error('the large refund did not ask for an approval');
        say(`13. refund of 100 → ${show(asked)} (request ${id})`);
        const reason = 'customer verified by phone: charged twice';
        const answered = await answerApproval(home.store.approvals, {
          id,
          decision: 'approve',
          reason,
          approver: humanChain,
          signer: { ...humanIssuer },
          vault: home.vault,
          nowSeconds: now,
        });
        say(`    human-ava approves (signed): "${answered.answer?.reason ?? ''}"`);
        const refundX = await (await submit(workers[0]!, 'orders.refund', large)).recorded;
        const passed = refundX.decision;
        say(`    the same call again → ${show(passed)}, approval ${passed.approval?.id ?? '-'}`);
        const replay = await audited(workers[0]!, 'orders.refund', large);
        say(
          `    replayed → ${replay.decision}${replay.approval?.id === undefined ? '' : ` (a new request ${replay.approval.id}: the approval was used)`}`,
        );
        let answeredAgain = 'ACCEPTED';
        try {
          await answerApproval(home.store.approvals, {
            id,
            decision: 'approve',
            reason,
            approver: humanChain,
            signer: humanIssuer,
            vault: home.vault,
            nowSeconds: now,
          });
        } catch (error) {
          if (!isMandateError(error)) throw error;
          answeredAgain = error.code;
        }
        say(`    approving request ${id} again → ${answeredAgain}`);

        // 14. Siblings share the root grant's refund budget; the one that would pass it is refused.
        let refunds = 0;
        const refunders = new Set<string>();
        let next: GateDecision | undefined;
        for (let i = 0; i < 20; i++) {
          const chain = workers[i % workers.length]!;
          const d = await audited(chain, 'orders.refund', {
            order: `44${70 + i}`,
            amount: 40,
            region: i % 2 === 0 ? 'eu-west-1' : 'eu-central-1',
          });
          if (d.decision !== 'allow') {
            next = d;
            break;
          }
          refunds++;
          refunders.add(chain.actor);
        }
        if (next === undefined) throw new Error('the budget was never exhausted');
        const spent = await home.store.budgets.spent(
          `${humanChain.root.revocationId}:orders.refund#amount`,
        );
        say(
          `14. ${refunders.size} sibling sub-agents refund 40 each: ${refunds} refunds, ${spent} of ${REFUND_BUDGET} spent (with the approved 100); the next → ${show(next)}`,
        );

        // 15. Revocation mid-run: the very next call of the revoked sub-agent is denied.
        const victim = workers[2]!;
        const before = await audited(victim, 'orders.lookup', { order: '4471' });
        const revocation = await home.denySetRepository.append(
          [
            {
              kind: 'identity',
              id: victim.actor,
              revokedAt: now,
              expiresAt: now + 10 * 365 * 86_400,
              reason: 'demo: compromised by a prompt injection',
            },
          ],
          now,
        );
        const committed = process.hrtime.bigint();
        // Into the audit log too, signed by the authority (as `mandate revoke` does): an offline
        // verifier checks every later record against it.
        const recordIndex = await recordRevocations(home, log, authorityIssuer, revocation, now);
        await watcher.refresh();
        // The agent signs its next call; the enforcement point refuses the revoked chain before
        // gate 2 (nothing is logged for a refused invocation: the revocation record says why).
        let after: DemoDenial;
        try {
          after = denial(await audited(victim, 'orders.lookup', { order: '4471' }));
        } catch (error) {
          if (!isMandateError(error)) throw error;
          after = { decision: 'refused', lock: null, code: error.code, reason: error.message };
        }
        const latencyMs = Number(process.hrtime.bigint() - committed) / 1e6;
        const sibling = await audited(workers[3]!, 'orders.lookup', { order: '4471' });
        say(
          `15. revoking sub-agent ${victim.actor.slice(0, 12)}… mid-run (revocation record at log index ${recordIndex}): its call before → ${before.decision}; the very next, signed → ${after.decision === 'refused' ? `refused by the enforcement point: ${after.code ?? ''} ${after.reason}` : `${after.decision}, lock ${after.lock ?? '-'} ${after.code ?? ''}: ${after.reason}`}; a sibling → ${sibling.decision}; ${latencyMs.toFixed(2)} ms from the revocation's commit to that refusal`,
        );
        await point.flush();

        return {
          seconds: Number(process.hrtime.bigint() - started) / 1e9,
          bundle: {
            version: bundle.version,
            hash: bundle.hash,
            policies: bundle.policySet.policies.length,
          },
          subAgents: subs.length,
          toolsListed,
          calls: { count: ROUTINE_CALLS, allowed, seconds, perSecond, p50Micros, p99Micros },
          injected: {
            refundAboveLimit: denial(injectedRefund),
            toolOutsideGrant: denial(outsideGrant),
            pathOutsideSubtree: denial(outsidePath),
            stagingRefund: denial(stagingRefund),
          },
          approval: {
            id,
            first: asked.decision,
            approvedBy: answered.answer?.approver ?? '',
            reason: answered.answer?.reason ?? '',
            afterApproval: passed.decision,
            replay: replay.decision,
            answeredAgain,
          },
          budget: {
            limit: REFUND_BUDGET,
            spent,
            refunds,
            agents: refunders.size,
            next: denial(next),
          },
          revocation: {
            revoked: victim.actor,
            before: before.decision,
            nextCall: after,
            siblingStillAllowed: sibling.decision === 'allow',
            recordIndex,
            latencyMs,
          },
          audit: {
            calls: recorded,
            records: log.size,
            sample: { count: RECORDED_SAMPLE, seconds: sampleSeconds, perSecond: samplePerSecond },
            refund: { invocation: refundX.invocation.hash, approval: id },
          },
        };
      } finally {
        await log.close();
      }
    } finally {
      await bundles.stop();
    }
  } finally {
    await watcher.stop();
  }
}
