// Gates 1 and 2 (docs/spec/policy.md §5): pure and synchronous; the clock is a parameter.
import { isMandateError, type ErrorCode } from '../core/index.js';
import {
  authorize,
  type Constraint,
  type DenySet,
  type VerifiedChain,
} from '../credentials/index.js';
import { checkRequest, TOOLS_ATTRIBUTE } from '../credentials/internal.js';
import type {
  CedarValue,
  EntityLookup,
  EntityUid,
  PolicyDecision,
  PolicyRequest,
  ResolvedEntity,
} from '../policy/index.js';
import { entityKey } from '../policy/index.js';
import { ToolCatalog, type CatalogTool } from './catalog.js';
import {
  agentViewOf,
  ChainArgumentsView,
  checkArgumentBounds,
  DEFAULT_ARGUMENT_LIMITS,
  type AgentView,
  type ArgumentLimits,
} from './request.js';
import type { ActiveBundle, BundleSource, ToolDescriptor } from './types.js';
import { checkLeaseChain, evaluateLease, type LeaseAsk } from './lease-decision.js';

/** Which lock refused (or, for `approval_required`, which lock waits). */
export type GateLock = 'chain' | 'schema' | 'policy' | 'bundle' | 'approval' | 'budget' | 'rate';

/** What a `@approval("reason")` policy asks a human to decide. */
export interface ApprovalPrompt {
  /** The annotation's text: why a person must look. */
  readonly reason: string;
  /** The `@approval` policies that determined the allow. */
  readonly policies: readonly string[];
  /** The approval request's id, once one is recorded (enforceCall). */
  readonly id?: string;
}

/**
 * A gate's answer. `lock` names the lock that refused (deny), that waits (`approval`), or is
 * `null` on allow; `reasons` are for people and the audit log; `policies` are the determining
 * policy ids; `bundle` is the hash of the bundle that decided, `null` when none was consulted.
 * `code` is the machine-readable cause of a deny.
 */
export interface GateDecision {
  readonly decision: 'allow' | 'deny' | 'approval_required';
  readonly lock: GateLock | null;
  readonly reasons: readonly string[];
  readonly policies: readonly string[];
  readonly bundle: string | null;
  readonly code?: ErrorCode;
  readonly approval?: ApprovalPrompt;
}

/** A tool call as it reaches gate 2: the tool's name, its server (optional when unambiguous), its JSON arguments. */
export interface ToolCall {
  readonly tool: string;
  readonly server?: string;
  readonly args: unknown;
}

/** Approval state shown to policies as `context.approval` (an approval the gate found for this very call). */
export interface ApprovalState {
  readonly granted: boolean;
  readonly approvers: readonly string[];
}

/** Options of {@link Gate}. */
export interface GateOptions {
  /**
   * Optional: the gates take their tools from the bundle in force (its signed catalog). When
   * given, it must be that catalog (same digest), or every decision denies
   * (`ERR_GATE_CATALOG_MISMATCH`): a catalog given at call time never changes a tool's argument
   * types or server.
   */
  readonly catalog?: ToolCatalog;
  readonly bundles: BundleSource;
  /** The live deny-set; without it revocation is not checked (a gate should always have one). */
  readonly denySet?: DenySet;
  readonly argumentLimits?: ArgumentLimits;
  /** Gate-1 results kept (default 10,000 entries; the least recently used go first). */
  readonly listCacheSize?: number;
  /** How long a gate-1 result is reused at most (default 60 s): `context.now` of listTool moves on. */
  readonly listCacheSeconds?: number;
}

const CALL_TOOL: EntityUid = Object.freeze({ type: 'Action', id: 'callTool' });
const LIST_TOOL: EntityUid = Object.freeze({ type: 'Action', id: 'listTool' });
const APPROVAL_ANNOTATION = 'approval';
const NOT_GRANTED: ApprovalState = Object.freeze({ granted: false, approvers: [] });
const NOT_GRANTED_RECORD: ReadonlyMap<string, CedarValue> = new Map<string, CedarValue>([
  ['granted', false],
  ['approvers', []],
]);
const EMPTY_RECORD: ReadonlyMap<string, CedarValue> = new Map();
const NO_STRINGS: readonly string[] = Object.freeze([]);

/**
 * The entities of one request: the chain's (principal and delegators) and the tool's. One
 * instance per gate, re-pointed before each evaluation (evaluation is synchronous), so a call
 * allocates no lookup.
 */
class RequestEntities implements EntityLookup {
  view: AgentView | undefined;
  tool: CatalogTool | undefined;
  readonly #tools = new Map<string, ResolvedEntity>();

  constructor(catalog: ToolCatalog) {
    for (const tool of catalog.tools) {
      for (const entity of tool.entities) {
        this.#tools.set(entityKey(entity.uid), {
          uid: entity.uid,
          attrs: entity.attrs,
          ancestors: new Set(entity.parents.map(entityKey)),
        });
      }
    }
  }

  get(uid: EntityUid): ResolvedEntity | undefined {
    const tool = this.tool;
    if (uid.type === 'Tool') {
      if (tool !== undefined && uid.id === tool.uid.id) return tool.resolvedTool;
      return this.#tools.get(entityKey(uid));
    }
    if (uid.type === 'Server') {
      if (tool !== undefined && uid.id === tool.serverUid.id) return tool.resolvedServer;
      return this.#tools.get(entityKey(uid));
    }
    return this.view?.entities.get(uid.type)?.get(uid.id);
  }
}

interface ListEntry {
  readonly tools: readonly ToolDescriptor[];
  readonly computedAt: number;
}

/**
 * Gates 1 and 2 over one tool catalog and one bundle source. `listTools` filters the catalog for
 * a verified chain; `decide` checks one call. Both are pure and synchronous and fail closed: any
 * error is a deny naming its lock. Approvals, budgets and rate limits, which need storage, are
 * {@link enforceCall}'s.
 */
export class Gate {
  readonly #catalog: ToolCatalog | undefined;
  readonly #bundles: BundleSource;
  readonly #denySet: DenySet | undefined;
  readonly #limits: ArgumentLimits;
  // The entities of the last catalog decided over (one bundle is in force for long stretches).
  #entitiesCatalog: ToolCatalog | undefined;
  #entities: RequestEntities | undefined;
  readonly #listCache = new Map<string, ListEntry>();
  readonly #listCacheSize: number;
  readonly #listCacheSeconds: number;
  readonly #chainArgs = new ChainArgumentsView();
  /** Gate-2 answers rendered from the engine's frozen decisions, for `#renderedFor` only. */
  readonly #rendered = new Map<PolicyDecision, GateDecision>();
  #renderedFor: ActiveBundle | undefined;
  readonly #callContext = new Map<string, CedarValue>();
  readonly #request: { -readonly [K in keyof PolicyRequest]: PolicyRequest[K] } = {
    principal: LIST_TOOL,
    action: LIST_TOOL,
    resource: LIST_TOOL,
    context: EMPTY_RECORD,
  };

  constructor(options: GateOptions) {
    this.#catalog = options.catalog;
    this.#bundles = options.bundles;
    this.#denySet = options.denySet;
    this.#limits = options.argumentLimits ?? DEFAULT_ARGUMENT_LIMITS;
    this.#listCacheSize = options.listCacheSize ?? 10_000;
    this.#listCacheSeconds = options.listCacheSeconds ?? 60;
  }

  /** The catalog given at construction, if any (the tools decided over are the bundle's). */
  get catalog(): ToolCatalog | undefined {
    return this.#catalog;
  }

  /** The bundle's catalog, or a deny: none bound, or not the one this gate was given. */
  #catalogOf(bundle: ActiveBundle): ToolCatalog | GateDecision {
    const bound = bundle.catalog;
    if (bound === undefined)
      return deny(
        'bundle',
        'ERR_GATE_NO_CATALOG',
        'the bundle in force binds no tool catalog: publish it with `--catalog`',
        bundle.hash,
      );
    const given = this.#catalog;
    if (given !== undefined && given !== bound && given.digest !== bound.digest)
      return deny(
        'bundle',
        'ERR_GATE_CATALOG_MISMATCH',
        `the catalog given (${given.digest.slice(0, 12)}…) is not the bundle's (${bound.digest.slice(0, 12)}…)`,
        bundle.hash,
      );
    return bound;
  }

  #entitiesOf(catalog: ToolCatalog): RequestEntities {
    if (this.#entitiesCatalog !== catalog || this.#entities === undefined) {
      this.#entities = new RequestEntities(catalog);
      this.#entitiesCatalog = catalog;
    }
    return this.#entities;
  }

  /** The bundle in force, or a deny decision saying why there is none. */
  #bundle(): ActiveBundle | GateDecision {
    try {
      const bundle = this.#bundles.current();
      if (bundle !== undefined) return bundle;
      return deny('bundle', 'ERR_GATE_NO_BUNDLE', 'no policy bundle is in force', null);
    } catch (error) {
      return deny(
        'bundle',
        isMandateError(error) ? error.code : 'ERR_GATE_NO_BUNDLE',
        isMandateError(error) ? error.message : 'the bundle source failed',
        null,
      );
    }
  }

  /**
   * Gate 1: the tools of the bundle's catalog this chain may see — those its `tools` grant names at every level
   * that carries one AND for which the bundle permits `listTool`. An expired or revoked chain,
   * or no bundle, sees none. Cached per (chain hash, bundle hash, deny-set sequence) for at most
   * `listCacheSeconds`.
   */
  listTools(chain: VerifiedChain, nowSeconds: number): readonly ToolDescriptor[] {
    if (!chainValid(chain, nowSeconds, this.#denySet)) return NO_TOOLS;
    const bundle = this.#bundle();
    if (!('policySet' in bundle)) return NO_TOOLS;
    const catalog = this.#catalogOf(bundle);
    if (!(catalog instanceof ToolCatalog)) return NO_TOOLS;
    const view = agentViewOf(chain);
    const key = `${view.chainHash}|${bundle.hash}|${this.#denySet?.sequence ?? -1}`;
    const cached = this.#listCache.get(key);
    if (
      cached !== undefined &&
      nowSeconds - cached.computedAt < this.#listCacheSeconds &&
      nowSeconds >= cached.computedAt
    )
      return cached.tools;
    const visible: ToolDescriptor[] = [];
    const context = new Map<string, CedarValue>([['now', nowSeconds]]);
    for (const tool of catalog.tools) {
      if (!toolGranted(chain, tool.descriptor.name)) continue;
      const decision = this.#evaluate(bundle, catalog, view, tool, LIST_TOOL, context);
      if (decision !== undefined && decision.decision === 'allow') visible.push(tool.descriptor);
    }
    const tools = Object.freeze(visible);
    this.#listCache.delete(key);
    this.#listCache.set(key, { tools, computedAt: nowSeconds });
    if (this.#listCache.size > this.#listCacheSize) {
      const oldest = this.#listCache.keys().next();
      if (oldest.done !== true) this.#listCache.delete(oldest.value);
    }
    return tools;
  }

  #evaluate(
    bundle: ActiveBundle,
    catalog: ToolCatalog,
    view: AgentView,
    tool: CatalogTool,
    action: EntityUid,
    context: ReadonlyMap<string, CedarValue>,
  ): PolicyDecision | undefined {
    const request = this.#request;
    request.principal = view.principal;
    request.action = action;
    request.resource = tool.uid;
    request.context = context;
    const entities = this.#entitiesOf(catalog);
    entities.view = view;
    entities.tool = tool;
    try {
      return bundle.policySet.evaluate(request, entities);
    } catch {
      return undefined;
    } finally {
      entities.view = undefined;
      entities.tool = undefined;
      request.context = EMPTY_RECORD;
    }
  }

  /**
   * Gate 2, for one call, in this order (the first refusal decides): the arguments' bounds; the
   * chain (time, deny-set, the conjunction of its constraints: `authorize`); the bundle (one in
   * force, binding a catalog equal to the one this gate was given, if any); the tool (known to
   * the bundle's catalog) and its arguments (its input schema, then their Cedar form); the
   * bundle's policies (`callTool`; an evaluation error denies). An allow determined by a
   * `@approval("…")` permit is `approval_required` unless `approval.granted`.
   */
  decide(
    chain: VerifiedChain,
    call: ToolCall,
    options: { readonly nowSeconds: number; readonly approval?: ApprovalState },
  ): GateDecision {
    const { nowSeconds } = options;
    const args = call.args;
    try {
      checkArgumentBounds(args, this.#limits);
    } catch (error) {
      return denyFrom('schema', error);
    }
    if (typeof args !== 'object' || args === null || Array.isArray(args))
      return deny(
        'schema',
        'ERR_GATE_ARGUMENTS_INVALID',
        'the arguments are not a JSON object',
        null,
      );
    const record = args as Readonly<Record<string, unknown>>;
    // Lock 1: what the humans delegated.
    const delegated = authorize(
      chain,
      { action: call.tool, args: this.#chainArgs.of(record), nowSeconds },
      this.#denySet === undefined ? {} : { denySet: this.#denySet },
    );
    if (delegated.decision === 'deny')
      return deny(
        'chain',
        'ERR_GATE_CHAIN_DENIED',
        `chain level ${delegated.failed.link}${delegated.failed.constraint === null ? '' : ` (\`${delegated.failed.constraint}\`)`}: ${delegated.failed.reason}`,
        null,
      );
    // The tools are the bundle's (its signed catalog): the bundle lock comes before the tool.
    const bundle = this.#bundle();
    if (!('policySet' in bundle)) return bundle;
    const catalog = this.#catalogOf(bundle);
    if (!(catalog instanceof ToolCatalog)) return catalog;
    const tool = catalog.get(call.tool, call.server);
    if (tool === undefined)
      return deny(
        'schema',
        'ERR_GATE_TOOL_UNKNOWN',
        `tool \`${call.server === undefined ? call.tool : `${call.server}/${call.tool}`}\` is not in the catalog (or more than one server offers it)`,
        null,
      );
    if (!tool.validate(record))
      return deny('schema', 'ERR_GATE_ARGUMENTS_INVALID', tool.lastError(), null);
    let cedarArgs: ReadonlyMap<string, CedarValue>;
    try {
      cedarArgs = tool.convert(record);
    } catch (error) {
      return denyFrom('schema', error);
    }
    // Lock 2: what the organisation permits.
    const approval = options.approval ?? NOT_GRANTED;
    // One context record per gate, re-filled per call: evaluation is synchronous and keeps nothing.
    const context = this.#callContext
      .set('now', nowSeconds)
      .set('args', cedarArgs)
      .set(
        'approval',
        approval === NOT_GRANTED
          ? NOT_GRANTED_RECORD
          : new Map<string, CedarValue>([
              ['granted', approval.granted],
              ['approvers', approval.approvers],
            ]),
      );
    const decision = this.#evaluate(bundle, catalog, agentViewOf(chain), tool, CALL_TOOL, context);
    context.set('args', EMPTY_RECORD);
    if (decision === undefined)
      return deny('policy', 'ERR_GATE_POLICY_ERROR', 'the policy evaluation failed', bundle.hash);
    // The engine's usual decisions (one determining policy, or none) are frozen objects built
    // with the policy set: what gate 2 makes of one under this bundle is the same every time,
    // so it is rendered once. The decision itself was computed for this call.
    if (approval === NOT_GRANTED && Object.isFrozen(decision)) {
      if (this.#renderedFor !== bundle) {
        this.#rendered.clear();
        this.#renderedFor = bundle;
      }
      let rendered = this.#rendered.get(decision);
      if (rendered === undefined) {
        rendered = deepFreeze(render(bundle, decision, approval));
        if (this.#rendered.size >= MAX_RENDERED) this.#rendered.clear();
        this.#rendered.set(decision, rendered);
      }
      return rendered;
    }
    return render(bundle, decision, approval);
  }

  /**
   * Gate 3 (docs/spec/broker.md §2): may the chain's actor lease `ask`? Lock 1 is the chain
   * (window, deny-set, the `secrets` and `secret_scopes` grants: lease-decision.ts), lock 2 the
   * bundle's `leaseSecret` for `Secret::"KIND/RESOURCE"`; the first refusal decides, and any
   * error denies. Needs no tool catalog.
   */
  decideLease(
    chain: VerifiedChain,
    ask: LeaseAsk,
    options: { readonly nowSeconds: number },
  ): GateDecision {
    const refused = checkLeaseChain(chain, ask, options.nowSeconds, this.#denySet);
    if (refused !== undefined) return refused;
    const bundle = this.#bundle();
    if (!('policySet' in bundle)) return bundle;
    return evaluateLease(bundle, chain, ask, options.nowSeconds);
  }
}

/** Gate 2's answer for the bundle's decision (lock 2, and the approval it may ask for). */
function render(
  bundle: ActiveBundle,
  decision: PolicyDecision,
  approval: ApprovalState,
): GateDecision {
  if (decision.errors.length > 0)
    return {
      decision: 'deny',
      lock: 'policy',
      code: 'ERR_GATE_POLICY_ERROR',
      // An error of no policy (id '') is the request's: it does not conform to the schema.
      reasons: decision.errors.map((e) =>
        e.policy === ''
          ? `the request ${e.message}`
          : `policy \`${policyName(bundle, e.policy)}\` failed: ${e.message}`,
      ),
      policies: decision.errors
        .filter((e) => e.policy !== '')
        .map((e) => policyName(bundle, e.policy)),
      bundle: bundle.hash,
    };
  if (decision.decision === 'deny')
    return {
      decision: 'deny',
      lock: 'policy',
      code: 'ERR_GATE_POLICY_DENIED',
      reasons: [
        decision.policies.length === 0
          ? 'no policy permits this call'
          : `forbidden by ${decision.policies.map((p) => `\`${policyName(bundle, p)}\``).join(', ')}`,
      ],
      policies: namesOf(bundle, decision.policies),
      bundle: bundle.hash,
    };
  const prompt = approvalPrompt(bundle, decision.policies);
  if (prompt !== undefined && !approval.granted)
    return {
      decision: 'approval_required',
      lock: 'approval',
      reasons: [prompt.reason],
      policies: namesOf(bundle, decision.policies),
      bundle: bundle.hash,
      approval: prompt,
    };
  return {
    decision: 'allow',
    lock: null,
    reasons: NO_STRINGS,
    policies: namesOf(bundle, decision.policies),
    bundle: bundle.hash,
  };
}

/** Rendered decisions a gate keeps for its current bundle (they are at most one per policy, plus the default deny). */
const MAX_RENDERED = 4096;

function deepFreeze(decision: GateDecision): GateDecision {
  Object.freeze(decision.reasons);
  Object.freeze(decision.policies);
  if (decision.approval !== undefined) {
    Object.freeze(decision.approval.policies);
    Object.freeze(decision.approval);
  }
  return Object.freeze(decision);
}

const NO_TOOLS: readonly ToolDescriptor[] = Object.freeze([]);

/** Per policy set: each policy's name (its `@id`, else Cedar's id) as a one-element list, and its `@approval` text. */
interface PolicyFacts {
  readonly names: readonly string[];
  readonly approval: string | undefined;
}
const factsCache = new WeakMap<object, Map<string, PolicyFacts>>();

// The last policy set asked about: one bundle is in force for long stretches.
let lastSet: object | undefined;
let lastFacts: Map<string, PolicyFacts> | undefined;

function factsOf(bundle: ActiveBundle, id: string): PolicyFacts {
  let byId = bundle.policySet === lastSet ? lastFacts : factsCache.get(bundle.policySet);
  if (byId === undefined) factsCache.set(bundle.policySet, (byId = new Map<string, PolicyFacts>()));
  let facts = byId.get(id);
  if (facts === undefined) {
    const annotations = bundle.policySet.annotations(id);
    facts = Object.freeze({
      names: Object.freeze([annotations?.get('id') ?? id]),
      approval: annotations?.get(APPROVAL_ANNOTATION),
    });
    byId.set(id, facts);
  }
  lastSet = bundle.policySet;
  lastFacts = byId;
  return facts;
}

/**
 * The `@approval` texts of the determining permits. Every determining permit is one that on its
 * own would allow the call, so an allow needs a person when ANY of them asks for one: otherwise
 * adding a second, broader permit would silently bypass an approval policy.
 */
function approvalPrompt(
  bundle: ActiveBundle,
  policies: readonly string[],
): ApprovalPrompt | undefined {
  let reasons: string[] | undefined;
  let asking: string[] | undefined;
  for (const id of policies) {
    const facts = factsOf(bundle, id);
    const text = facts.approval;
    if (text === undefined) continue;
    (reasons ??= []).push(
      text === '' ? `policy \`${facts.names[0]!}\` requires a human approval` : text,
    );
    (asking ??= []).push(facts.names[0]!);
  }
  return reasons === undefined ? undefined : { reason: reasons.join('; '), policies: asking! };
}

/** A policy as decisions name it: its `@id` annotation when it has one, else Cedar's id (`policy0`, …). */
function policyName(bundle: ActiveBundle, id: string): string {
  return factsOf(bundle, id).names[0]!;
}

function namesOf(bundle: ActiveBundle, ids: readonly string[]): readonly string[] {
  if (ids.length === 1) return factsOf(bundle, ids[0]!).names;
  return ids.map((id) => policyName(bundle, id));
}

function deny(
  lock: GateLock,
  code: ErrorCode,
  reason: string,
  bundle: string | null,
): GateDecision {
  return { decision: 'deny', lock, code, reasons: [reason], policies: NO_STRINGS, bundle };
}

function denyFrom(lock: GateLock, error: unknown): GateDecision {
  if (isMandateError(error)) return deny(lock, error.code, error.message, null);
  return deny(lock, 'ERR_GATE_ARGUMENTS_INVALID', 'the arguments could not be checked', null);
}

function chainValid(
  chain: VerifiedChain,
  nowSeconds: number,
  denySet: DenySet | undefined,
): boolean {
  if (
    !Number.isSafeInteger(nowSeconds) ||
    nowSeconds < chain.notBefore ||
    nowSeconds >= chain.expiresAt
  )
    return false;
  if (denySet === undefined) return true;
  try {
    denySet.assertNoneRevoked(chain.revocationSubjects, nowSeconds);
    return true;
  } catch {
    return false;
  }
}

/** Lock 1 for listing: every level that carries `tools` grants this tool, and some level carries it. */
export function toolGranted(chain: VerifiedChain, tool: string): boolean {
  let granted = false;
  for (const level of chain.levels) {
    const tools: Constraint | undefined = level.get(TOOLS_ATTRIBUTE);
    if (tools === undefined) continue;
    if (!checkRequest(TOOLS_ATTRIBUTE, tools, { action: tool, args: EMPTY_ARGS, nowSeconds: 0 }).ok)
      return false;
    granted = true;
  }
  return granted;
}

const EMPTY_ARGS: ReadonlyMap<string, string> = new Map();
