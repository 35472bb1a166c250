// A parsed policy set → a CompiledPolicySet: each policy's scope becomes index entries (action,
// then resource), and its remaining scope tests and conditions one generated function. Evaluation
// visits only the policies the request's action and resource can select, denies by default, lets
// forbid win and denies on any evaluation error.
import { unsupported } from '../core/internal.js';
import { parsePolicySet, parseSchema, validatePolicySet, type ParsedPolicy } from './cedar.js';
import { PolicyCodegen, type EntityScopeTest } from './codegen.js';
import { EvaluationError, type EvalScope } from './compile-expression.js';
import { conformStore, EntityStore } from './entities.js';
import { DEFAULT_JSON_LIMITS, JsonBudget, isObject, parseEntityUid } from './json-values.js';
import { CedarSchema, SchemaMismatch } from './schema.js';
import type {
  CedarValue,
  EntityLookup,
  EntityUid,
  EvaluablePolicySet,
  PolicyDecision,
  PolicyEvaluationError,
  PolicyRequest,
  ResolvedEntity,
} from './types.js';
import { entityKey } from './values.js';

/** What a compiled policy set says about one of its policies. */
export interface PolicyInfo {
  /** Cedar's id: `policy0`, `policy1`, … in source order. */
  readonly id: string;
  readonly effect: 'permit' | 'forbid';
  /** Annotations (`@id("x")`, `@approval("why")`; a bare `@flag` has the value `""`). */
  readonly annotations: ReadonlyMap<string, string>;
  /** The policy's Cedar text as cedar-wasm split it from the set. */
  readonly text: string;
}

type ActionScope =
  | { readonly kind: 'all' }
  | { readonly kind: 'eq'; readonly uid: EntityUid }
  | { readonly kind: 'in'; readonly targets: readonly EntityUid[] };

type ResourceScope =
  | { readonly kind: 'all' }
  | { readonly kind: 'eq'; readonly uid: EntityUid }
  | { readonly kind: 'is'; readonly type: string }
  | { readonly kind: 'in'; readonly target: EntityUid };

interface CompiledPolicy {
  readonly index: number;
  readonly id: string;
  readonly forbid: boolean;
  readonly action: ActionScope;
  readonly resource: ResourceScope;
  /** Principal scope, the resource type of `is T in E`, then the conditions in order. */
  readonly check: (scope: EvalScope) => boolean;
  /** The decision when this policy alone is satisfied (and nothing errs). */
  readonly decision: PolicyDecision;
}

const budget = (): JsonBudget => new JsonBudget(DEFAULT_JSON_LIMITS);

function refuse(construct: string): never {
  throw unsupported('ERR_POLICY_UNSUPPORTED', `${construct} is not supported`);
}

function scopeEntity(constraint: Record<string, unknown>, where: string): EntityUid {
  if ('slot' in constraint) refuse(`a template slot in the ${where} scope`);
  return parseEntityUid(constraint.entity, where, budget());
}

function sameUid(a: EntityUid, b: EntityUid): boolean {
  return a.type === b.type && a.id === b.id;
}

/** A principal or resource scope constraint: its test (none when unconstrained) and index entry. */
function compileEntityScope(
  json: unknown,
  where: 'principal' | 'resource',
): { test: EntityScopeTest | undefined; index: ResourceScope } {
  if (!isObject(json) || typeof json.op !== 'string')
    return refuse(`a ${where} scope of unknown shape`);
  switch (json.op) {
    case 'All':
      return { test: undefined, index: { kind: 'all' } };
    case '==': {
      const uid = scopeEntity(json, where);
      return { test: { kind: 'eq', uid }, index: { kind: 'eq', uid } };
    }
    case 'in': {
      const target = scopeEntity(json, where);
      return { test: { kind: 'in', target }, index: { kind: 'in', target } };
    }
    case 'is': {
      const type = json.entity_type;
      if (typeof type !== 'string') return refuse(`a ${where} scope of unknown shape`);
      if (json.in === undefined) return { test: { kind: 'is', type }, index: { kind: 'is', type } };
      if (!isObject(json.in)) return refuse(`a ${where} scope of unknown shape`);
      const target = scopeEntity(json.in, where);
      return { test: { kind: 'isIn', type, target }, index: { kind: 'in', target } };
    }
    default:
      return refuse(`the ${where} scope operator \`${json.op}\``);
  }
}

function compileActionScope(json: unknown): ActionScope {
  if (!isObject(json) || typeof json.op !== 'string')
    return refuse('an action scope of unknown shape');
  switch (json.op) {
    case 'All':
      return { kind: 'all' };
    case '==':
      return { kind: 'eq', uid: scopeEntity(json, 'action') };
    case 'in': {
      if (Array.isArray(json.entities))
        return {
          kind: 'in',
          targets: (json.entities as unknown[]).map((e) => parseEntityUid(e, 'action', budget())),
        };
      return { kind: 'in', targets: [scopeEntity(json, 'action')] };
    }
    default:
      return refuse(`the action scope operator \`${json.op}\``);
  }
}

function annotationsOf(json: unknown): ReadonlyMap<string, string> {
  const annotations = new Map<string, string>();
  if (json === undefined) return annotations;
  if (!isObject(json)) return refuse('annotations of unknown shape');
  for (const [k, v] of Object.entries(json)) {
    if (v !== null && typeof v !== 'string') refuse('annotations of unknown shape');
    annotations.set(k, v ?? '');
  }
  return annotations;
}

function compilePolicy(
  parsed: ParsedPolicy,
  index: number,
): { policy: CompiledPolicy; info: PolicyInfo } {
  const { est } = parsed;
  if (est.effect !== 'permit' && est.effect !== 'forbid') refuse(`the effect \`${est.effect}\``);
  const principal = compileEntityScope(est.principal, 'principal');
  const action = compileActionScope(est.action);
  const resource = compileEntityScope(est.resource, 'resource');
  if (!Array.isArray(est.conditions)) refuse('conditions of unknown shape');
  const gen = new PolicyCodegen();
  const scopeTests: string[] = [];
  if (principal.test !== undefined) scopeTests.push(gen.scopeTest('s.principal', principal.test));
  // The resource index is exact for ==, is and in; `is T in E` is indexed under E and keeps its
  // type test here.
  if (resource.test?.kind === 'isIn')
    scopeTests.push(gen.scopeTest('s.resource', { kind: 'is', type: resource.test.type }));
  const conditions = est.conditions.map((c) => {
    if (!isObject(c) || (c.kind !== 'when' && c.kind !== 'unless'))
      return refuse('a condition of unknown shape');
    return {
      kind: c.kind === 'when' ? ('when' as const) : ('unless' as const),
      body: gen.expression(c.body),
    };
  });
  const check = gen.build(scopeTests, conditions);
  const annotations = annotationsOf(est.annotations);
  return {
    policy: {
      index,
      id: parsed.id,
      forbid: est.effect === 'forbid',
      action,
      resource: resource.index,
      check,
      decision: Object.freeze({
        decision: est.effect === 'forbid' ? 'deny' : 'allow',
        policies: Object.freeze([parsed.id]),
        errors: EMPTY,
      }),
    },
    info: { id: parsed.id, effect: est.effect, annotations, text: parsed.text },
  };
}

// --- the index -----------------------------------------------------------------------------------

type ByUid = Map<string, Map<string, CompiledPolicy[]>>;

function addByUid(map: ByUid, uid: EntityUid, policy: CompiledPolicy): void {
  let ids = map.get(uid.type);
  if (ids === undefined) map.set(uid.type, (ids = new Map<string, CompiledPolicy[]>()));
  const list = ids.get(uid.id);
  if (list === undefined) ids.set(uid.id, [policy]);
  else list.push(policy);
}

function addTo<K>(map: Map<K, CompiledPolicy[]>, key: K, policy: CompiledPolicy): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [policy]);
  else list.push(policy);
}

/** The policies one action selects, by resource scope. */
class ResourceIndex {
  readonly any: CompiledPolicy[] = [];
  readonly eq: ByUid = new Map();
  readonly byType = new Map<string, CompiledPolicy[]>();
  readonly inSelf: ByUid = new Map();
  readonly inKey = new Map<string, CompiledPolicy[]>();

  add(policy: CompiledPolicy): void {
    const r = policy.resource;
    switch (r.kind) {
      case 'all':
        this.any.push(policy);
        break;
      case 'eq':
        addByUid(this.eq, r.uid, policy);
        break;
      case 'is':
        addTo(this.byType, r.type, policy);
        break;
      case 'in':
        addByUid(this.inSelf, r.target, policy);
        addTo(this.inKey, entityKey(r.target), policy);
        break;
    }
  }
}

interface ActionEntry {
  /** The ancestor set the entry was built for (re-built when an entity store changes it). */
  readonly ancestors: ReadonlySet<string> | undefined;
  readonly index: ResourceIndex;
}

const EMPTY: readonly never[] = Object.freeze([]);
const DENY: PolicyDecision = Object.freeze({ decision: 'deny', policies: EMPTY, errors: EMPTY });
const MAX_ACTION_ENTRIES = 4096;

const NOT_LOOKED_UP: unique symbol = Symbol('not looked up');

/** One evaluation: the request, the entities, and what the visited policies said. */
class Evaluation implements EvalScope {
  readonly principal: EntityUid;
  readonly action: EntityUid;
  readonly resource: EntityUid;
  readonly context: ReadonlyMap<string, CedarValue>;
  // Allocated only when needed: most decisions have one determining policy and no error.
  permits: CompiledPolicy[] | undefined = undefined;
  forbids: CompiledPolicy[] | undefined = undefined;
  errors: PolicyEvaluationError[] | undefined = undefined;
  /** Set when a looked-up entity does not conform to the schema: the decision denies. */
  inputError: string | undefined = undefined;
  // The principal and resource are read again and again (scope, attributes): look each up once.
  private principalEntity: ResolvedEntity | undefined | typeof NOT_LOOKED_UP = NOT_LOOKED_UP;
  private resourceEntity: ResolvedEntity | undefined | typeof NOT_LOOKED_UP = NOT_LOOKED_UP;

  // A fresh, short-lived object per decision: measured cheaper than reusing a long-lived one,
  // whose every write of a young request value passes V8's write barrier.
  constructor(
    request: PolicyRequest,
    context: ReadonlyMap<string, CedarValue>,
    private readonly entities: EntityLookup,
    private readonly schemaActions: ByUidEntities | undefined,
    private readonly checker: ((entity: ResolvedEntity) => ResolvedEntity | string) | undefined,
  ) {
    this.principal = request.principal;
    this.action = request.action;
    this.resource = request.resource;
    this.context = context;
  }

  lookup(uid: EntityUid): ResolvedEntity | undefined {
    if (uid === this.principal) {
      if (this.principalEntity === NOT_LOOKED_UP) this.principalEntity = this.find(uid);
      return this.principalEntity;
    }
    if (uid === this.resource) {
      if (this.resourceEntity === NOT_LOOKED_UP) this.resourceEntity = this.find(uid);
      return this.resourceEntity;
    }
    return this.find(uid);
  }

  private find(uid: EntityUid): ResolvedEntity | undefined {
    if (this.schemaActions !== undefined) {
      const action = this.schemaActions.get(uid.type)?.get(uid.id);
      if (action !== undefined) return action;
    }
    const entity = this.entities.get(uid);
    if (entity === undefined || this.checker === undefined) return entity;
    const checked = this.checker(entity);
    if (typeof checked !== 'string') return checked;
    this.inputError ??= checked;
    return undefined;
  }

  run(list: readonly CompiledPolicy[] | undefined): void {
    if (list === undefined) return;
    for (let i = 0; i < list.length; i++) {
      const policy = list[i]!;
      let satisfied: boolean;
      try {
        satisfied = policy.check(this);
      } catch (error) {
        (this.errors ??= []).push({ policy: policy.id, message: errorMessage(error) });
        continue;
      }
      if (!satisfied) continue;
      if (policy.forbid) (this.forbids ??= []).push(policy);
      else (this.permits ??= []).push(policy);
    }
  }

  /** The decision of what the policies said. */
  decide(): PolicyDecision {
    if (this.inputError !== undefined) return inputDenied(this.inputError);
    const { permits, forbids, errors } = this;
    if (errors !== undefined)
      return { decision: 'deny', policies: forbids === undefined ? EMPTY : ids(forbids), errors };
    // One determining policy (the usual case) has its decision built at compile time.
    if (forbids !== undefined)
      return forbids.length === 1
        ? forbids[0]!.decision
        : { decision: 'deny', policies: ids(forbids), errors: EMPTY };
    if (permits !== undefined)
      return permits.length === 1
        ? permits[0]!.decision
        : { decision: 'allow', policies: ids(permits), errors: EMPTY };
    return DENY;
  }
}

type ByUidEntities = Map<string, Map<string, ResolvedEntity>>;

/** The request or the entities do not conform to the schema: Cedar refuses them, Mandate denies. */
function inputDenied(message: string): PolicyDecision {
  return {
    decision: 'deny',
    policies: EMPTY,
    errors: [{ policy: '', message: `does not conform to the schema: ${message}` }],
  };
}

function errorMessage(error: unknown): string {
  if (error instanceof EvaluationError) return error.message;
  // A RangeError (stack overflow on a deep value) or any other surprise still only denies.
  return `evaluation failed: ${error instanceof Error ? error.message : String(error)}`;
}

/** The policies' ids in source order. Plain loops: the decision path calls no builtin with a
 * callback (an insertion sort suits the few policies a decision names). */
function ids(policies: CompiledPolicy[]): readonly string[] {
  for (let i = 1; i < policies.length; i++) {
    const p = policies[i]!;
    let j = i - 1;
    while (j >= 0 && policies[j]!.index > p.index) {
      policies[j + 1] = policies[j]!;
      j--;
    }
    policies[j + 1] = p;
  }
  const out = new Array<string>(policies.length);
  for (let i = 0; i < policies.length; i++) out[i] = policies[i]!.id;
  return out;
}

// The only way to a CompiledPolicySet is compilePolicySet, which parses and validates first.
let construct: (
  parsed: readonly ParsedPolicy[],
  schema: CedarSchema | undefined,
) => CompiledPolicySet;

/** What {@link compilePolicySet} compiles. */
export interface PolicySetSource {
  /** The policy set in Cedar's policy language. */
  readonly policies: string;
  /**
   * A schema in Cedar's human-readable schema format. When given, the policies must validate
   * against it in strict mode, and evaluation takes action entities (the action hierarchy) from
   * it, as Cedar's authorizer does when given a schema.
   */
  readonly schema?: string;
}

/**
 * Parses, (with a schema) validates, and compiles a Cedar policy set.
 *
 * Throws `ERR_POLICY_SYNTAX` when the text does not parse, `ERR_POLICY_SCHEMA_INVALID` when the
 * schema does not, `ERR_POLICY_INVALID` when a policy fails strict validation against the
 * schema, and `ERR_POLICY_UNSUPPORTED` naming a construct the compiler does not support
 * (templates, extension functions such as `decimal`, `ip`, `datetime`).
 *
 * @example
 * ```ts
 * const set = compilePolicySet({
 *   policies: 'permit(principal, action == Action::"callTool", resource is Tool) when { principal.level > 2 };',
 * });
 * const entities = parseCedarEntities([{ uid: { type: 'Agent', id: 'a' }, attrs: { level: 3 }, parents: [] }]);
 * const decision = set.evaluate(
 *   parseCedarRequest({
 *     principal: { type: 'Agent', id: 'a' },
 *     action: { type: 'Action', id: 'callTool' },
 *     resource: { type: 'Tool', id: 'refund' },
 *     context: {},
 *   }),
 *   entities,
 * );
 * decision.decision; // 'allow'; decision.policies: ['policy0']
 * ```
 */
export function compilePolicySet(source: PolicySetSource): CompiledPolicySet {
  const parsed = parsePolicySet(source.policies);
  if (source.schema === undefined) return construct(parsed, undefined);
  const schema = new CedarSchema(parseSchema(source.schema));
  validatePolicySet(source.policies, source.schema);
  return construct(parsed, schema);
}

/**
 * A compiled Cedar policy set: evaluate requests against entities on the hot path. Obtained only
 * from {@link compilePolicySet}.
 */
export class CompiledPolicySet implements EvaluablePolicySet {
  /** Each policy's id, effect, annotations and text, in source order. */
  readonly policies: readonly PolicyInfo[];
  private readonly compiled: readonly CompiledPolicy[];
  private readonly byId: ReadonlyMap<string, PolicyInfo>;
  private readonly actionEntries: ByUidMap<ActionEntry> = new Map();
  private actionEntryCount = 0;
  private readonly schema: CedarSchema | undefined;
  private readonly schemaActions: ByUidEntities | undefined;
  private readonly conformedStores = new WeakMap<EntityStore, EntityStore | string>();
  private readonly conformedEntities = new WeakMap<ResolvedEntity, ResolvedEntity | string>();
  private readonly checkEntity = (entity: ResolvedEntity): ResolvedEntity | string => {
    let checked = this.conformedEntities.get(entity);
    if (checked === undefined) {
      try {
        checked = this.schema!.conformEntity(entity, undefined);
      } catch (error) {
        if (!(error instanceof SchemaMismatch)) throw error;
        checked = error.message;
      }
      this.conformedEntities.set(entity, checked);
    }
    return checked;
  };

  static {
    construct = (parsed, schema) => new CompiledPolicySet(parsed, schema);
  }

  private constructor(parsed: readonly ParsedPolicy[], schema: CedarSchema | undefined) {
    const compiled: CompiledPolicy[] = [];
    const infos: PolicyInfo[] = [];
    parsed.forEach((p, i) => {
      const { policy, info } = compilePolicy(p, i);
      compiled.push(policy);
      infos.push(info);
    });
    this.compiled = compiled;
    this.policies = Object.freeze(infos);
    this.byId = new Map(infos.map((i) => [i.id, i]));
    this.schema = schema;
    this.schemaActions = schema?.actionEntities;
  }

  /** A policy's annotations by id; `undefined` for an unknown id. */
  annotations(policyId: string): ReadonlyMap<string, string> | undefined {
    return this.byId.get(policyId)?.annotations;
  }

  /**
   * Decides a request: deny by default, forbid over permit, and deny on any evaluation error
   * (where Cedar would skip the policy that errs). `policies` names the satisfied forbids when
   * the decision is deny, else the satisfied permits, in source order.
   */
  evaluate(request: PolicyRequest, entities: EntityLookup): PolicyDecision {
    let context = request.context;
    let lookup = entities;
    let checker: ((entity: ResolvedEntity) => ResolvedEntity | string) | undefined;
    if (this.schema !== undefined) {
      // With a schema, Cedar refuses a request or entities that do not conform: deny.
      try {
        context = this.schema.conformRequest(
          request.principal,
          request.action,
          request.resource,
          request.context,
        );
      } catch (error) {
        if (error instanceof SchemaMismatch) return inputDenied(error.message);
        throw error;
      }
      if (entities instanceof EntityStore) {
        const conformed = this.conformedStore(entities);
        if (typeof conformed === 'string') return inputDenied(conformed);
        lookup = conformed;
      } else checker = this.checkEntity;
    }
    const evaluation = new Evaluation(request, context, lookup, this.schemaActions, checker);
    const index = this.resourceIndexFor(evaluation);
    const resource = request.resource;
    evaluation.run(index.any);
    if (index.eq.size > 0) evaluation.run(index.eq.get(resource.type)?.get(resource.id));
    if (index.byType.size > 0) evaluation.run(index.byType.get(resource.type));
    if (index.inKey.size > 0) {
      evaluation.run(index.inSelf.get(resource.type)?.get(resource.id));
      const ancestors = evaluation.lookup(resource)?.ancestors;
      if (ancestors !== undefined && ancestors.size > 0) {
        if (ancestors.size <= index.inKey.size) {
          for (const key of ancestors) evaluation.run(index.inKey.get(key));
        } else {
          for (const [key, list] of index.inKey) if (ancestors.has(key)) evaluation.run(list);
        }
      }
    }
    return evaluation.decide();
  }

  private conformedStore(store: EntityStore): EntityStore | string {
    let conformed = this.conformedStores.get(store);
    if (conformed === undefined) {
      try {
        conformed = conformStore(store, this.schema!);
      } catch (error) {
        if (!(error instanceof SchemaMismatch)) throw error;
        conformed = error.message;
      }
      this.conformedStores.set(store, conformed);
    }
    return conformed;
  }

  /** The resource index of the policies whose action scope selects the request's action. */
  private resourceIndexFor(evaluation: Evaluation): ResourceIndex {
    const action = evaluation.action;
    const ancestors = evaluation.lookup(action)?.ancestors;
    const cached = this.actionEntries.get(action.type)?.get(action.id);
    if (cached !== undefined && cached.ancestors === ancestors) return cached.index;
    const index = new ResourceIndex();
    for (const policy of this.compiled)
      if (actionSelects(policy.action, action, ancestors)) index.add(policy);
    if (this.actionEntryCount >= MAX_ACTION_ENTRIES) {
      this.actionEntries.clear();
      this.actionEntryCount = 0;
    }
    let byId = this.actionEntries.get(action.type);
    if (byId === undefined)
      this.actionEntries.set(action.type, (byId = new Map<string, ActionEntry>()));
    if (!byId.has(action.id)) this.actionEntryCount++;
    byId.set(action.id, { ancestors, index });
    return index;
  }
}

type ByUidMap<T> = Map<string, Map<string, T>>;

function actionSelects(
  scope: ActionScope,
  action: EntityUid,
  ancestors: ReadonlySet<string> | undefined,
): boolean {
  switch (scope.kind) {
    case 'all':
      return true;
    case 'eq':
      return sameUid(scope.uid, action);
    case 'in':
      return scope.targets.some(
        (t) => sameUid(t, action) || (ancestors !== undefined && ancestors.has(entityKey(t))),
      );
  }
}
