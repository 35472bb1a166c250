// From a verified chain and a tool call to a Cedar request (docs/spec/policy.md §4). Everything
// derived from a chain is built once per chain (a WeakMap on the VerifiedChain) and everything
// derived from a tool once per catalog; a call adds only its arguments.
import { invalid } from '../core/internal.js';
import type { Constraint, Constraints, VerifiedChain } from '../credentials/index.js';
import { HUMAN_ATTRIBUTE, LABEL_PREFIX, TOOLS_ATTRIBUTE } from '../credentials/internal.js';
import { toHex } from '../encoding/index.js';
import {
  entityKey,
  type CedarValue,
  type EntityUid,
  type ResolvedEntity,
} from '../policy/index.js';
import { jsonSchemaType, objectFields } from './schema.js';

/** Bounds on a call's arguments, checked before anything else reads them. */
export interface ArgumentLimits {
  /** Nesting depth of objects and arrays (the argument object itself is depth 1). Default 8. */
  readonly maxDepth: number;
  /** Values in all (every object member, array element and scalar). Default 1,000. */
  readonly maxNodes: number;
  /** UTF-16 code units of one string (a key or a value). Default 16,384. */
  readonly maxStringLength: number;
  /** UTF-16 code units of every string together. Default 65,536. */
  readonly maxTotalStringLength: number;
}

/** The default argument bounds: depth 8, 1,000 values, 16,384 characters a string, 65,536 in all. */
export const DEFAULT_ARGUMENT_LIMITS: ArgumentLimits = Object.freeze({
  maxDepth: 8,
  maxNodes: 1000,
  maxStringLength: 16_384,
  maxTotalStringLength: 65_536,
});

const OBJECT_PROTOTYPE = Object.prototype;

/**
 * Checks that `args` is plain JSON data within the limits: objects with the plain prototype (or
 * none), arrays, strings, finite numbers, booleans and null; nothing deeper, larger or longer
 * than `limits`. `ERR_GATE_ARGUMENTS_TOO_LARGE` past a bound, `ERR_GATE_ARGUMENTS_INVALID` for
 * anything that is not JSON data. The walk stops at the first bound it crosses, so a huge value
 * costs no more than the bound.
 */
export function checkArgumentBounds(
  args: unknown,
  limits: ArgumentLimits = DEFAULT_ARGUMENT_LIMITS,
): void {
  const budget = { nodes: limits.maxNodes, chars: limits.maxTotalStringLength };
  walk(args, 1, limits, budget);
}

function walk(
  value: unknown,
  depth: number,
  limits: ArgumentLimits,
  budget: { nodes: number; chars: number },
): void {
  if (--budget.nodes < 0)
    throw invalid(
      'ERR_GATE_ARGUMENTS_TOO_LARGE',
      `the arguments hold more than ${limits.maxNodes} values`,
    );
  switch (typeof value) {
    case 'string':
      countString(value, limits, budget);
      return;
    case 'number':
      if (!Number.isFinite(value))
        throw invalid(
          'ERR_GATE_ARGUMENTS_INVALID',
          'the arguments hold a number that is not finite',
        );
      return;
    case 'boolean':
      return;
    case 'object': {
      if (value === null) return;
      if (depth > limits.maxDepth)
        throw invalid(
          'ERR_GATE_ARGUMENTS_TOO_LARGE',
          `the arguments nest deeper than ${limits.maxDepth}`,
        );
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) walk(value[i], depth + 1, limits, budget);
        return;
      }
      const prototype: unknown = Object.getPrototypeOf(value);
      if (prototype !== OBJECT_PROTOTYPE && prototype !== null)
        throw invalid(
          'ERR_GATE_ARGUMENTS_INVALID',
          'the arguments hold a value that is not JSON data',
        );
      const record = value as Record<string, unknown>;
      for (const key in record) {
        if (!Object.hasOwn(record, key)) continue;
        countString(key, limits, budget);
        walk(record[key], depth + 1, limits, budget);
      }
      return;
    }
    default:
      throw invalid(
        'ERR_GATE_ARGUMENTS_INVALID',
        `the arguments hold a ${typeof value}, which is not JSON data`,
      );
  }
}

function countString(
  text: string,
  limits: ArgumentLimits,
  budget: { nodes: number; chars: number },
): void {
  if (text.length > limits.maxStringLength)
    throw invalid(
      'ERR_GATE_ARGUMENTS_TOO_LARGE',
      `an argument string exceeds ${limits.maxStringLength} characters`,
    );
  budget.chars -= text.length;
  if (budget.chars < 0)
    throw invalid(
      'ERR_GATE_ARGUMENTS_TOO_LARGE',
      `the argument strings exceed ${limits.maxTotalStringLength} characters together`,
    );
}

// --- arguments → Cedar ------------------------------------------------------------------------

/** Converts a validated argument object into `context.args` (a Cedar record). */
export type ArgumentConverter = (
  args: Readonly<Record<string, unknown>>,
) => ReadonlyMap<string, CedarValue>;

type ValueConverter = (value: unknown) => CedarValue;

function unrepresentable(why: string): never {
  throw invalid('ERR_GATE_ARGUMENT_UNREPRESENTABLE', why);
}

function valueConverter(schema: unknown, depth: number): ValueConverter | undefined {
  if (depth > 8 || typeof schema !== 'object' || schema === null) return undefined;
  const s = schema as Record<string, unknown>;
  switch (jsonSchemaType(s)) {
    case 'string':
      return (v) =>
        typeof v === 'string' ? v : unrepresentable('a string argument is not a string');
    case 'boolean':
      return (v) =>
        typeof v === 'boolean' ? v : unrepresentable('a boolean argument is not a boolean');
    case 'integer':
      // Cedar's Long is 64-bit; Mandate's values are safe JavaScript integers (docs/spec/policy.md §1).
      return (v) =>
        Number.isSafeInteger(v)
          ? (v as number)
          : unrepresentable(`\`${String(v)}\` is not a safe integer`);
    case 'number':
      // Not shown to policies (as in schema.ts): see docs/spec/policy.md §4.3.
      return undefined;
    case 'array': {
      const item = valueConverter(s['items'], depth + 1);
      if (item === undefined) return undefined;
      return (v) =>
        Array.isArray(v) ? v.map(item) : unrepresentable('an array argument is not an array');
    }
    case 'object':
      return recordConverter(s, depth);
    default:
      return undefined;
  }
}

function recordConverter(
  s: Readonly<Record<string, unknown>>,
  depth: number,
): ValueConverter | undefined {
  const properties = (s['properties'] ?? {}) as Record<string, unknown>;
  const fields = objectFields(s, depth);
  if (fields === undefined) return undefined;
  const converters: [string, ValueConverter][] = [];
  for (const [name] of fields) {
    const c = valueConverter(properties[name], depth + 1);
    if (c !== undefined) converters.push([name, c]);
  }
  return (v) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v))
      return unrepresentable('an object argument is not an object');
    const record = v as Record<string, unknown>;
    const out = new Map<string, CedarValue>();
    for (let i = 0; i < converters.length; i++) {
      const [name, convert] = converters[i]!;
      if (!Object.hasOwn(record, name)) continue;
      const value = record[name];
      // JSON null has no Cedar form: an argument that is null is absent to policies.
      if (value !== null) out.set(name, convert(value));
    }
    return out;
  };
}

/**
 * The converter of one tool's arguments, compiled from its input schema (the rule in
 * docs/spec/policy.md §4): `string` → String, `integer` → Long, `boolean` → Bool, `array` → Set of its `items`' type, `object` → Record of its typed `properties`.
 * Arguments whose schema has no single type, and arguments the schema does not declare, are not
 * shown to policies. Throws `ERR_GATE_ARGUMENT_UNREPRESENTABLE` for a value its type cannot hold.
 */
export function compileArgumentConverter(
  inputSchema: Readonly<Record<string, unknown>>,
): ArgumentConverter {
  const convert = recordConverter(inputSchema, 0);
  if (convert === undefined) return () => EMPTY_RECORD;
  return (args) => convert(args) as ReadonlyMap<string, CedarValue>;
}

const EMPTY_RECORD: ReadonlyMap<string, CedarValue> = new Map();

/**
 * {@link chainArguments} as a view that converts on read: gate 2 re-points one instance per call
 * (`of`) instead of building a Map, since `authorize` only `get`s the few names its constraints
 * name. The other ReadonlyMap methods materialise the same entries.
 */
export class ChainArgumentsView implements ReadonlyMap<string, string> {
  #record: Readonly<Record<string, unknown>> = EMPTY_ARGS;

  /** Re-points the view at `record` and returns it. */
  of(record: Readonly<Record<string, unknown>>): this {
    this.#record = record;
    return this;
  }

  get(key: string): string | undefined {
    if (!Object.hasOwn(this.#record, key)) return undefined;
    const value = this.#record[key];
    if (typeof value === 'string') return value;
    if (typeof value === 'boolean') return value ? 'true' : 'false';
    if (Number.isSafeInteger(value)) return String(value);
    return undefined;
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  get size(): number {
    return chainArguments(this.#record).size;
  }

  forEach(fn: (value: string, key: string, map: ReadonlyMap<string, string>) => void): void {
    for (const [key, value] of chainArguments(this.#record)) fn(value, key, this);
  }

  entries(): MapIterator<[string, string]> {
    return chainArguments(this.#record).entries();
  }

  keys(): MapIterator<string> {
    return chainArguments(this.#record).keys();
  }

  values(): MapIterator<string> {
    return chainArguments(this.#record).values();
  }

  [Symbol.iterator](): MapIterator<[string, string]> {
    return this.entries();
  }
}

const EMPTY_ARGS: Readonly<Record<string, unknown>> = Object.freeze({});

/**
 * The arguments as lock 1 (the chain's constraints, `authorize`) reads them: each top-level
 * string as is, each safe integer in decimal, each boolean as `true`/`false`; other values
 * (decimals, arrays, objects, null) are absent, so a constraint on them denies.
 */
export function chainArguments(
  args: Readonly<Record<string, unknown>>,
): ReadonlyMap<string, string> {
  const out = new Map<string, string>();
  for (const key in args) {
    if (!Object.hasOwn(args, key)) continue;
    const value = args[key];
    if (typeof value === 'string') out.set(key, value);
    else if (typeof value === 'boolean') out.set(key, value ? 'true' : 'false');
    else if (Number.isSafeInteger(value)) out.set(key, String(value));
  }
  return out;
}

// --- the chain → Agent ------------------------------------------------------------------------

/** The credential attribute by which an authority marks a root credential's subject as a person. */
export { HUMAN_ATTRIBUTE };

/** Whether the chain's root credential marks its subject `human=true`. */
export function rootIsHuman(chain: VerifiedChain): boolean {
  const marker = chain.rootConstraints.get(HUMAN_ATTRIBUTE);
  return marker?.kind === 'set' && marker.values.length === 1 && marker.values[0] === 'true';
}

/** What a chain contributes to every Cedar request: the principal and its ancestry, resolved. */
export interface AgentView {
  readonly principal: EntityUid;
  /** The principal and every delegator, by type and id. */
  readonly entities: ReadonlyMap<string, ReadonlyMap<string, ResolvedEntity>>;
  /** Hex SHA-256 of the chain's last element: what caches and approvals key on. */
  readonly chainHash: string;
}

const views = new WeakMap<VerifiedChain, AgentView>();

/**
 * The chain as Cedar sees it (docs/spec/policy.md §4), built once per VerifiedChain. The principal
 * is `Agent::"<actor identifier>"`; its ancestors are the delegators, nearest first: each
 * `Agent::"<identifier>"`, except the root credential's subject, which is `Human::"<identifier>"`
 * when the authority marked it `human=true`. Every Agent (the principal and the intermediate
 * delegators) carries the attributes of its own prefix of the chain.
 */
export function agentViewOf(chain: VerifiedChain): AgentView {
  let view = views.get(chain);
  if (view === undefined) {
    view = buildView(chain);
    views.set(chain, view);
  }
  return view;
}

function buildView(chain: VerifiedChain): AgentView {
  const human = rootIsHuman(chain);
  const byType = new Map<string, Map<string, ResolvedEntity>>([
    ['Agent', new Map()],
    ['Human', new Map()],
  ]);
  const subjects = [chain.root.subject, ...chain.links.map((l) => l.subject)];
  const ancestors: string[] = [];
  let narrowed: Map<string, Constraint> = new Map(chain.rootConstraints);
  let notBefore = chain.root.createdAt;
  let expiresAt = chain.root.expiresAt;
  const purposes: string[] = [];
  let principal: EntityUid = { type: 'Agent', id: chain.actor };
  for (let level = 0; level < subjects.length; level++) {
    const link = level === 0 ? undefined : chain.links[level - 1]!;
    if (link !== undefined) {
      narrowed = new Map([...narrowed, ...link.constraints]);
      notBefore = Math.max(notBefore, link.notBefore);
      expiresAt = Math.min(expiresAt, link.expiresAt);
      purposes.push(link.purpose);
    }
    const identifier = subjects[level]!;
    const isHumanRoot = level === 0 && human && subjects.length > 1;
    const uid: EntityUid = isHumanRoot
      ? { type: 'Human', id: identifier }
      : { type: 'Agent', id: identifier };
    const entity: ResolvedEntity = isHumanRoot
      ? {
          uid,
          attrs: new Map<string, CedarValue>([['identifier', identifier]]),
          ancestors: new Set(ancestors),
        }
      : {
          uid,
          attrs: new Map<string, CedarValue>([
            ['identifier', identifier],
            ['authority', chain.root.issuer],
            ['root', chain.root.subject],
            ['human', level === 0 && human],
            ['depth', level],
            ['remainingDepth', link?.depth ?? chain.rootDepth],
            ['purpose', link?.purpose ?? ''],
            ['purposes', [...purposes]],
            ['delegators', subjects.slice(0, level)],
            ['notBefore', notBefore],
            ['expiresAt', expiresAt],
            ['tools', toolsOf(narrowed)],
          ]),
          ancestors: new Set(ancestors),
          tags: labelsRecord(narrowed),
        };
    byType.get(uid.type)!.set(identifier, entity);
    ancestors.push(entityKey(uid));
    principal = uid;
  }
  return {
    principal,
    entities: byType,
    chainHash: toHex(chain.hash),
  };
}

/** The `tools` grant nearest to the actor as a set (`["*"]` for any); empty when none. */
function toolsOf(constraints: ReadonlyMap<string, Constraint>): CedarValue {
  const tools = constraints.get(TOOLS_ATTRIBUTE);
  return tools?.kind === 'set' ? [...tools.values] : [];
}

/** The labels (`label.NAME` sets) by NAME: the Agent entity's tags. */
export function labelsRecord(constraints: Constraints): ReadonlyMap<string, CedarValue> {
  const out = new Map<string, CedarValue>();
  for (const [name, constraint] of constraints) {
    // Tags share one type (`Set<String>`): a label is a set; one of another kind is not shown.
    if (name.startsWith(LABEL_PREFIX) && constraint.kind === 'set')
      out.set(name.slice(LABEL_PREFIX.length), [...constraint.values]);
  }
  return out;
}
