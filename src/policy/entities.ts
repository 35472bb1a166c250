// Entities and requests: an EntityStore (transitive ancestors computed once, cycles refused as
// Cedar refuses them), and parsers of Cedar's own JSON forms for entities and requests.
import { invalid } from '../core/internal.js';
import { parseJsonNoDuplicateKeys } from '../encoding/index.js';
import {
  DEFAULT_JSON_LIMITS,
  JsonBudget,
  isObject,
  parseCedarRecord,
  parseEntityUid,
  type JsonLimits,
} from './json-values.js';
import type {
  EntityInput,
  EntityLookup,
  EntityUid,
  PolicyRequest,
  ResolvedEntity,
} from './types.js';
import type { CedarSchema } from './schema.js';
import { cedarEquals, entityKey } from './values.js';

/** Limits on Cedar JSON input: {@link JsonLimits} plus the size of the text and entity count. */
export interface CedarInputLimits extends JsonLimits {
  /** Longest JSON text accepted (UTF-16 code units), checked before parsing. */
  readonly maxTextLength: number;
  /** Most entities in one entity list. */
  readonly maxEntities: number;
}

/** The default limits: 16 Mi characters of text, 100,000 entities, depth 32. */
export const DEFAULT_CEDAR_INPUT_LIMITS: CedarInputLimits = {
  ...DEFAULT_JSON_LIMITS,
  maxTextLength: 16 << 20,
  maxEntities: 100_000,
};

/** Most (entity, ancestor) pairs a store computes. */
const MAX_ANCESTOR_ENTRIES = 4_000_000;

function fail(message: string): never {
  throw invalid('ERR_POLICY_INPUT_INVALID', message);
}

/**
 * Entities by reference, with each entity's transitive ancestors computed when the store is
 * built. A hierarchy with a cycle is refused (`ERR_POLICY_INPUT_INVALID`), as Cedar refuses it; a
 * parent that is not itself in the store is an ancestor without ancestors of its own. The same
 * entity given twice is accepted only when both copies are equal, as in Cedar.
 */
export class EntityStore implements EntityLookup {
  private readonly byType: Map<string, Map<string, ResolvedEntity>>;
  /** How many entities the store holds. */
  readonly size: number;

  private constructor(byType: Map<string, Map<string, ResolvedEntity>>, size: number) {
    this.byType = byType;
    this.size = size;
  }

  /**
   * Builds a store from entity inputs.
   *
   * @example
   * ```ts
   * const store = EntityStore.fromEntities([
   *   { uid: { type: 'Agent', id: 'a' }, attrs: new Map(), parents: [{ type: 'Human', id: 'h' }] },
   * ]);
   * store.get({ type: 'Agent', id: 'a' })?.ancestors.has('Human::"h"'); // true
   * ```
   */
  static fromEntities(
    inputs: Iterable<EntityInput>,
    limits: Pick<CedarInputLimits, 'maxEntities'> = DEFAULT_CEDAR_INPUT_LIMITS,
  ): EntityStore {
    const byKey = new Map<string, EntityInput>();
    for (const input of inputs) {
      const key = entityKey(input.uid);
      const previous = byKey.get(key);
      if (previous !== undefined) {
        if (!sameEntity(previous, input)) fail(`duplicate entity \`${key}\``);
        continue;
      }
      if (byKey.size >= limits.maxEntities) fail(`more than ${limits.maxEntities} entities`);
      byKey.set(key, input);
    }
    // Ancestors by depth-first search with memoisation; `visiting` finds cycles.
    const ancestors = new Map<string, Set<string>>();
    const visiting = new Set<string>();
    let total = 0;
    const resolve = (key: string): Set<string> => {
      const done = ancestors.get(key);
      if (done !== undefined) return done;
      const input = byKey.get(key);
      const out = new Set<string>();
      if (input === undefined) return out;
      visiting.add(key);
      // An explicit stack would avoid deep recursion; the entity count bound keeps it finite and
      // a RangeError on a pathological chain is caught below as an input error.
      for (const parent of input.parents) {
        const pk = entityKey(parent);
        if (visiting.has(pk)) fail(`the entity hierarchy has a cycle containing \`${pk}\``);
        out.add(pk);
        for (const a of resolve(pk)) out.add(a);
      }
      visiting.delete(key);
      // The transitive closure is quadratic in a long chain: bound it like any other input size.
      total += out.size;
      if (total > MAX_ANCESTOR_ENTRIES)
        fail(`the entity hierarchy has more than ${MAX_ANCESTOR_ENTRIES} ancestor relations`);
      ancestors.set(key, out);
      return out;
    };
    const byType = new Map<string, Map<string, ResolvedEntity>>();
    try {
      for (const [key, input] of byKey) {
        const resolved: ResolvedEntity =
          input.tags === undefined
            ? { uid: input.uid, attrs: input.attrs, ancestors: resolve(key) }
            : { uid: input.uid, attrs: input.attrs, ancestors: resolve(key), tags: input.tags };
        let ids = byType.get(input.uid.type);
        if (ids === undefined)
          byType.set(input.uid.type, (ids = new Map<string, ResolvedEntity>()));
        ids.set(input.uid.id, Object.freeze(resolved));
      }
    } catch (error) {
      if (error instanceof RangeError) fail('the entity hierarchy is too deep');
      throw error;
    }
    const store = new EntityStore(byType, byKey.size);
    storeInputs.set(store, [...byKey.values()]);
    return store;
  }

  /** The entity with this reference, or `undefined`. */
  get(uid: EntityUid): ResolvedEntity | undefined {
    return this.byType.get(uid.type)?.get(uid.id);
  }
}

// Each store's inputs (direct parents included), for the schema check; not part of the API.
const storeInputs = new WeakMap<EntityStore, readonly EntityInput[]>();

/**
 * A store whose entities conform to `schema`: the same store when they do as they are, a new
 * one when Cedar's schema-directed forms had to be converted; throws SchemaMismatch otherwise.
 */
export function conformStore(store: EntityStore, schema: CedarSchema): EntityStore {
  const inputs = storeInputs.get(store) ?? [];
  let converted: EntityInput[] | undefined;
  for (let i = 0; i < inputs.length; i++) {
    const input = inputs[i]!;
    const resolved = store.get(input.uid)!;
    const conformed = schema.conformEntity(resolved, input.parents);
    if (conformed !== resolved && converted === undefined) converted = inputs.slice(0, i);
    if (converted !== undefined) {
      const next: EntityInput =
        conformed.tags === undefined
          ? { uid: input.uid, attrs: conformed.attrs, parents: input.parents }
          : {
              uid: input.uid,
              attrs: conformed.attrs,
              parents: input.parents,
              tags: conformed.tags,
            };
      converted.push(next);
    }
  }
  return converted === undefined
    ? store
    : EntityStore.fromEntities(converted, { maxEntities: Number.MAX_SAFE_INTEGER });
}

function sameEntity(a: EntityInput, b: EntityInput): boolean {
  const parentsA = a.parents.map((p) => p);
  const parentsB = b.parents.map((p) => p);
  return (
    cedarEquals(a.attrs, b.attrs) &&
    cedarEquals(parentsA, parentsB) &&
    cedarEquals(a.tags ?? new Map(), b.tags ?? new Map())
  );
}

function parseJsonText(json: unknown, limits: CedarInputLimits, what: string): unknown {
  if (typeof json !== 'string') return json;
  if (json.length > limits.maxTextLength)
    fail(`the ${what} JSON is longer than ${limits.maxTextLength} characters`);
  // Not JSON, or a key twice in one object (an attribute, a context field) has no one meaning: refused, as
  // the gates refuse it in tool arguments (the depth bound leaves room for the wrappers).
  return parseJsonNoDuplicateKeys(
    json,
    'ERR_POLICY_INPUT_INVALID',
    `the ${what}`,
    limits.maxDepth + 8,
  );
}

/**
 * Parses Cedar's JSON entity format — `[{"uid":{"type","id"},"attrs":{…},"parents":[…],
 * "tags"?:{…}}]`, attribute values with the `__entity` escape — into an {@link EntityStore}.
 * Accepts the JSON text or the parsed value. Integers must be safe JS integers; extension values
 * (`__extn`) are refused (`ERR_POLICY_UNSUPPORTED`); anything else malformed or past the limits
 * is `ERR_POLICY_INPUT_INVALID`.
 */
export function parseCedarEntities(
  json: unknown,
  limits: CedarInputLimits = DEFAULT_CEDAR_INPUT_LIMITS,
): EntityStore {
  const value = parseJsonText(json, limits, 'entity list');
  if (!Array.isArray(value)) fail('the entity list is not a JSON array');
  if (value.length > limits.maxEntities) fail(`more than ${limits.maxEntities} entities`);
  const budget = new JsonBudget(limits);
  const inputs = (value as unknown[]).map((item, i): EntityInput => {
    const path = `[${i}]`;
    if (!isObject(item)) fail(`\`${path}\`: an entity is a JSON object`);
    if (item.uid === undefined) fail(`\`${path}\`: missing field \`uid\``);
    if (item.attrs === undefined) fail(`\`${path}\`: missing field \`attrs\``);
    if (item.parents === undefined) fail(`\`${path}\`: missing field \`parents\``);
    const uid = parseEntityUid(item.uid, `${path}.uid`, budget);
    const attrs = parseCedarRecord(item.attrs, `${path}.attrs`, budget);
    if (!Array.isArray(item.parents)) fail(`\`${path}.parents\`: expected an array`);
    const parents = (item.parents as unknown[]).map((p, j) =>
      parseEntityUid(p, `${path}.parents[${j}]`, budget),
    );
    if (item.tags === undefined) return { uid, attrs, parents };
    return { uid, attrs, parents, tags: parseCedarRecord(item.tags, `${path}.tags`, budget) };
  });
  return EntityStore.fromEntities(inputs, limits);
}

/**
 * Parses Cedar's JSON request form — `{"principal":{"type","id"},"action":{…},"resource":{…},
 * "context":{…}}` (context optional, default empty) — into a {@link PolicyRequest}. Accepts the
 * JSON text or the parsed value; errors as {@link parseCedarEntities}.
 */
export function parseCedarRequest(
  json: unknown,
  limits: CedarInputLimits = DEFAULT_CEDAR_INPUT_LIMITS,
): PolicyRequest {
  const value = parseJsonText(json, limits, 'request');
  if (!isObject(value)) fail('the request is not a JSON object');
  const budget = new JsonBudget(limits);
  for (const field of ['principal', 'action', 'resource'] as const)
    if (value[field] === undefined) fail(`the request has no \`${field}\``);
  return {
    principal: parseEntityUid(value.principal, 'principal', budget),
    action: parseEntityUid(value.action, 'action', budget),
    resource: parseEntityUid(value.resource, 'resource', budget),
    context:
      value.context === undefined ? new Map() : parseCedarRecord(value.context, 'context', budget),
  };
}
