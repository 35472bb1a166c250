// Gate 3's decision (docs/spec/broker.md §2): may this chain's actor lease this secret? Pure and
// synchronous, like gates 1 and 2, and with the same two locks: the chain (what the humans
// delegated: its window, the deny-set, and the `secrets` / `secret_scopes` grants) AND the bundle
// (the `leaseSecret` action; deny by default).
import { isMandateError } from '../core/index.js';
import type { Constraint, DenySet, VerifiedChain } from '../credentials/index.js';
import {
  checkRequest,
  SECRET_SCOPES_ATTRIBUTE,
  SECRETS_ATTRIBUTE,
} from '../credentials/internal.js';
import type {
  CedarValue,
  EntityLookup,
  EntityUid,
  PolicyDecision,
  PolicyRequest,
  ResolvedEntity,
} from '../policy/index.js';
import { agentViewOf } from './request.js';
import type { ActiveBundle } from './types.js';

/** What an agent asks the broker for, as the decision reads it. */
export interface LeaseAsk {
  /** The lease kind (`jwt`, `postgres`, `proxy`). */
  readonly kind: string;
  /** The audience, template or secret name, as the kind names it. */
  readonly resource: string;
  /** The scopes asked for (JWT `scope`); empty where the kind has none. */
  readonly scope: readonly string[];
}

/**
 * The name a lease is decided under: `KIND/RESOURCE`. It is the Cedar resource
 * `Secret::"KIND/RESOURCE"` (attribute `name` the same) and what a chain's `secrets` set names.
 */
export function leaseSecretName(ask: Pick<LeaseAsk, 'kind' | 'resource'>): string {
  return `${ask.kind}/${ask.resource}`;
}

/**
 * A lease decision: gate 2's `GateDecision` shape (gate.ts) without an approval — a lease never
 * waits for a person.
 */
export interface LeaseDecision {
  readonly decision: 'allow' | 'deny';
  readonly lock: 'chain' | 'bundle' | 'policy' | null;
  readonly reasons: readonly string[];
  readonly policies: readonly string[];
  readonly bundle: string | null;
  readonly code?: `ERR_${string}`;
}

const LEASE_SECRET: EntityUid = Object.freeze({ type: 'Action', id: 'leaseSecret' });
const NO_STRINGS: readonly string[] = Object.freeze([]);
const NO_ARGS: ReadonlyMap<string, string> = new Map();

function deny(
  lock: 'chain' | 'bundle' | 'policy',
  code: `ERR_${string}`,
  reason: string,
  bundle: string | null,
): LeaseDecision {
  return { decision: 'deny', lock, code, reasons: [reason], policies: NO_STRINGS, bundle };
}

/** Does `constraint` (a `secrets` or `secret_scopes` set) admit `value`? */
function setAdmits(constraint: Constraint, value: string): boolean {
  return (
    constraint.kind === 'set' &&
    (constraint.values.includes('*') || constraint.values.includes(value))
  );
}

/**
 * Lock 1 for a lease: the chain is within its window and every window constraint of its levels,
 * nothing of it is on the deny-set, some level grants `secrets` and every level that carries it
 * admits `KIND/RESOURCE`, and each scope asked for is admitted by every level carrying
 * `secret_scopes` (with at least one such level when any scope is asked for). `undefined` when
 * the chain allows it.
 */
export function checkLeaseChain(
  chain: VerifiedChain,
  ask: LeaseAsk,
  nowSeconds: number,
  denySet: DenySet | undefined,
): LeaseDecision | undefined {
  if (!Number.isSafeInteger(nowSeconds) || nowSeconds < chain.notBefore)
    return deny('chain', 'ERR_GATE_CHAIN_DENIED', 'the chain is not valid yet', null);
  if (nowSeconds >= chain.expiresAt)
    return deny('chain', 'ERR_GATE_CHAIN_DENIED', `the chain expired at ${chain.expiresAt}`, null);
  if (denySet !== undefined) {
    try {
      denySet.assertNoneRevoked(chain.revocationSubjects, nowSeconds);
    } catch (error) {
      return deny(
        'chain',
        isMandateError(error) ? error.code : 'ERR_GATE_CHAIN_DENIED',
        isMandateError(error) ? error.message : 'the deny-set could not be checked',
        null,
      );
    }
  }
  const name = leaseSecretName(ask);
  let granted = false;
  let scopesGranted = false;
  for (const [level, constraints] of chain.levels.entries()) {
    for (const [key, constraint] of constraints) {
      // Windows bound every action of the delegate, leases included (a scoped `TOOL#ARG`
      // window binds one tool's calls only).
      if (constraint.kind === 'window' && !key.includes('#')) {
        const check = checkRequest(key, constraint, { action: '', args: NO_ARGS, nowSeconds });
        if (!check.ok)
          return deny(
            'chain',
            'ERR_GATE_CHAIN_DENIED',
            `chain level ${level}: ${check.reason}`,
            null,
          );
      }
    }
    const secrets = constraints.get(SECRETS_ATTRIBUTE);
    if (secrets !== undefined) {
      if (!setAdmits(secrets, name))
        return deny(
          'chain',
          'ERR_GATE_CHAIN_DENIED',
          `chain level ${level}: \`${SECRETS_ATTRIBUTE}\` does not grant \`${name}\``,
          null,
        );
      granted = true;
    }
    const scopes = constraints.get(SECRET_SCOPES_ATTRIBUTE);
    if (scopes !== undefined) {
      for (const scope of ask.scope)
        if (!setAdmits(scopes, scope))
          return deny(
            'chain',
            'ERR_GATE_CHAIN_DENIED',
            `chain level ${level}: \`${SECRET_SCOPES_ATTRIBUTE}\` does not grant scope \`${scope}\``,
            null,
          );
      scopesGranted = true;
    }
  }
  if (!granted)
    return deny(
      'chain',
      'ERR_GATE_CHAIN_DENIED',
      `no level of the chain grants \`${SECRETS_ATTRIBUTE}\`: nothing may be leased`,
      null,
    );
  if (ask.scope.length > 0 && !scopesGranted)
    return deny(
      'chain',
      'ERR_GATE_CHAIN_DENIED',
      `no level of the chain grants \`${SECRET_SCOPES_ATTRIBUTE}\`: no scope may be asked for`,
      null,
    );
  return undefined;
}

/** The entities of one lease decision: the chain's (principal, delegators) and the secret. */
class LeaseEntities implements EntityLookup {
  constructor(
    readonly agents: ReadonlyMap<string, ReadonlyMap<string, ResolvedEntity>>,
    readonly secret: ResolvedEntity,
  ) {}

  get(uid: EntityUid): ResolvedEntity | undefined {
    if (uid.type === 'Secret') return uid.id === this.secret.uid.id ? this.secret : undefined;
    return this.agents.get(uid.type)?.get(uid.id);
  }
}

/**
 * Lock 2 for a lease: the bundle's `leaseSecret` decision for principal `Agent::"<actor>"`,
 * resource `Secret::"KIND/RESOURCE"`, context `{now}`. Any evaluation error denies.
 */
export function evaluateLease(
  bundle: ActiveBundle,
  chain: VerifiedChain,
  ask: LeaseAsk,
  nowSeconds: number,
): LeaseDecision {
  const name = leaseSecretName(ask);
  const view = agentViewOf(chain);
  const uid: EntityUid = { type: 'Secret', id: name };
  const entities = new LeaseEntities(view.entities, {
    uid,
    attrs: new Map<string, CedarValue>([['name', name]]),
    ancestors: new Set(),
  });
  const request: PolicyRequest = {
    principal: view.principal,
    action: LEASE_SECRET,
    resource: uid,
    context: new Map<string, CedarValue>([['now', nowSeconds]]),
  };
  let decision: PolicyDecision;
  try {
    decision = bundle.policySet.evaluate(request, entities);
  } catch {
    return deny('policy', 'ERR_GATE_POLICY_ERROR', 'the policy evaluation failed', bundle.hash);
  }
  const names = decision.policies.map((id) => bundle.policySet.annotations(id)?.get('id') ?? id);
  if (decision.errors.length > 0)
    return {
      decision: 'deny',
      lock: 'policy',
      code: 'ERR_GATE_POLICY_ERROR',
      reasons: decision.errors.map((e) =>
        e.policy === ''
          ? `the request ${e.message}`
          : `policy \`${e.policy}\` failed: ${e.message}`,
      ),
      policies: names,
      bundle: bundle.hash,
    };
  if (decision.decision === 'deny')
    return {
      decision: 'deny',
      lock: 'policy',
      code: 'ERR_GATE_POLICY_DENIED',
      reasons: [
        names.length === 0
          ? `no policy permits leasing \`${name}\``
          : `forbidden by ${names.map((p) => `\`${p}\``).join(', ')}`,
      ],
      policies: names,
      bundle: bundle.hash,
    };
  return {
    decision: 'allow',
    lock: null,
    reasons: NO_STRINGS,
    policies: names,
    bundle: bundle.hash,
  };
}
