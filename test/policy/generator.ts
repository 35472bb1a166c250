// Generators for the differential tests of the compiled Cedar engine against cedar-wasm.
//
// One fixed "world" (entity types, attribute names and their intended types, actions) keeps the
// generated schemas, policies, entities and requests coherent: policies read the attributes the
// entities and contexts carry, and scope constraints name the entities requests use, so cases
// reach allow, deny and errors alike. Variation comes from which attributes a schema marks
// optional, which entities exist, and (when no schema constrains the case) deliberately ill-typed
// expressions, missing or wrongly typed attributes, missing entities, tags, names special to JS
// objects, and case-level mutations (hierarchy cycles, duplicate entities). A few schema cases
// carry data that does not conform to their schema. Longs sit near ±2^63 (Cedar's overflow) and
// near ±2^53 (JavaScript's safe integers); `decimal` and `ip` values come in several spellings of
// equal values.
//
// Everything is built from fast-check combinators so counterexamples shrink. cedar-wasm converts
// the entities and context on every request (about 12 µs per attribute value on this machine),
// which is why the data is kept lean: entities are present half of the time, loose records carry
// two in five of their attributes.

import fc from 'fast-check';

/** Cedar's JSON entity reference. */
export interface UidJson {
  readonly type: string;
  readonly id: string;
}

/** A Cedar JSON value (entity and extension values use Cedar's `__entity` / `__extn` escapes). */
export type ValueJson =
  | boolean
  | number
  | string
  | readonly ValueJson[]
  | { readonly __entity: UidJson }
  | { readonly __extn: { readonly fn: string; readonly arg: string } }
  | { readonly [key: string]: ValueJson };

/** One entity in Cedar's JSON entity format. */
export interface EntityJson {
  readonly uid: UidJson;
  readonly attrs: Record<string, ValueJson>;
  readonly parents: readonly UidJson[];
  readonly tags?: Record<string, ValueJson>;
}

/** A request in Cedar's JSON request format. */
export interface RequestJson {
  readonly principal: UidJson;
  readonly action: UidJson;
  readonly resource: UidJson;
  readonly context: Record<string, ValueJson>;
}

/** A generated case: a policy set (one policy per entry, ids `policy0`, `policy1`, …), an optional schema, entities and requests. */
export interface GeneratedCase {
  readonly schema: string | undefined;
  readonly policies: readonly string[];
  readonly entities: readonly EntityJson[];
  readonly requests: readonly RequestJson[];
}

// ---------------------------------------------------------------------------------------------
// The world

type AttrType =
  | 'Bool'
  | 'Long'
  | 'String'
  | 'SetString'
  | 'SetLong'
  | 'SetEntity'
  | 'Human'
  | 'Server'
  | 'Limits'
  | 'Args'
  | 'Decimal'
  | 'Ip';

/** Expression types the generator produces (entity types are collapsed into `Entity`). */
type ExprType =
  | 'Bool'
  | 'Long'
  | 'String'
  | 'Entity'
  | 'SetString'
  | 'SetLong'
  | 'SetEntity'
  | 'Record'
  | 'Decimal'
  | 'Ip';

const EXPR_TYPES: readonly ExprType[] = [
  'Bool',
  'Long',
  'String',
  'Entity',
  'SetString',
  'SetLong',
  'SetEntity',
  'Record',
  'Decimal',
  'Ip',
];

/** Shared by `Agent` and `Human` so that `principal.x` validates whatever the principal type. */
const PRINCIPAL_SHAPE: Readonly<Record<string, AttrType>> = {
  level: 'Long',
  name: 'String',
  active: 'Bool',
  tags: 'SetString',
  owner: 'Human',
  limits: 'Limits',
  amount: 'Decimal',
  addr: 'Ip',
};

/** Shared by `Tool`, `Server` and `Secret`. */
const RESOURCE_SHAPE: Readonly<Record<string, AttrType>> = {
  level: 'Long',
  name: 'String',
  tags: 'SetString',
  server: 'Server',
  owners: 'SetEntity',
};

const GROUP_SHAPE: Readonly<Record<string, AttrType>> = { name: 'String' };

const CONTEXT_SHAPE: Readonly<Record<string, AttrType>> = {
  args: 'Args',
  count: 'Long',
  scores: 'SetLong',
  approved: 'Bool',
  envs: 'SetString',
  who: 'Human',
  price: 'Decimal',
  src: 'Ip',
};

const LIMITS_SHAPE: Readonly<Record<string, AttrType>> = { max: 'Long', env: 'String' };
const ARGS_SHAPE: Readonly<Record<string, AttrType>> = {
  amount: 'Long',
  path: 'String',
  env: 'String',
};

interface EntityTypeDecl {
  readonly name: string;
  readonly ids: readonly string[];
  readonly shape: Readonly<Record<string, AttrType>>;
  /** Parent types, as the schema declares them (`memberOfTypes`). */
  readonly parentTypes: readonly string[];
}

const ENTITY_TYPES: readonly EntityTypeDecl[] = [
  {
    name: 'Agent',
    ids: ['a0', 'a1'],
    shape: PRINCIPAL_SHAPE,
    parentTypes: ['Agent', 'Human', 'Group'],
  },
  { name: 'Human', ids: ['h0', 'ü'], shape: PRINCIPAL_SHAPE, parentTypes: ['Group'] },
  {
    name: 'Group',
    ids: ['g0', 'g1', 'g2', 'a0'],
    shape: GROUP_SHAPE,
    parentTypes: ['Group', 'Org::Team'],
  },
  { name: 'Tool', ids: ['t0', 'a::"b'], shape: RESOURCE_SHAPE, parentTypes: ['Server', 'Group'] },
  { name: 'Server', ids: ['s0'], shape: RESOURCE_SHAPE, parentTypes: ['Group'] },
  { name: 'Secret', ids: [''], shape: RESOURCE_SHAPE, parentTypes: ['Server'] },
  // A namespaced type, with an id another type also uses.
  { name: 'Org::Team', ids: ['t0'], shape: GROUP_SHAPE, parentTypes: [] },
];

const PRINCIPAL_TYPES = ['Agent', 'Human'] as const;
const RESOURCE_TYPES = ['Tool', 'Server', 'Secret'] as const;
const ACTIONS = ['listTool', 'callTool', 'leaseSecret', 'relay', 'connect'] as const;
/** `Action::"toolOps"` groups `listTool` and `callTool`. */
const ACTION_GROUP = 'toolOps';
const GROUPED_ACTIONS: readonly string[] = ['listTool', 'callTool'];

const EXTENSION_TYPES: ReadonlySet<string> = new Set(['Decimal', 'Ip']);

/** A shape without its extension-typed attributes when the profile has no extensions. */
function shapeIn(
  shape: Readonly<Record<string, AttrType>>,
  ext: boolean,
): Readonly<Record<string, AttrType>> {
  if (ext) return shape;
  return Object.fromEntries(Object.entries(shape).filter(([, t]) => !EXTENSION_TYPES.has(t)));
}

function typeDecl(name: string): EntityTypeDecl {
  const decl = ENTITY_TYPES.find((t) => t.name === name);
  if (decl === undefined) throw new Error(`unknown entity type ${name}`);
  return decl;
}

/** Every entity reference of the world, in the order parents may point to (a DAG). */
const ALL_UIDS: readonly UidJson[] = ENTITY_TYPES.flatMap((t) =>
  t.ids.map((id) => ({ type: t.name, id })),
);

// ---------------------------------------------------------------------------------------------
// Literal pools (shared by policies and data so that comparisons can succeed)

const LONG_SMALL = [0, 1, 2, 3, 5, 7, 10, 42, 100, -1, -7] as const;
/** Boundaries of Cedar's i64 and of JavaScript's safe integers, as Cedar literals. */
const LONG_EDGE_TEXT = [
  '9223372036854775807',
  '-9223372036854775808',
  '9223372036854775806',
  '4611686018427387904',
  '3037000499',
  '3037000500',
  '9007199254740991',
  '-9007199254740991',
  '9007199254740992',
  '9007199254740993',
  '-9007199254740993',
  '4503599627370496',
  '2147483647',
  '4294967296',
] as const;
/** Edges inside JavaScript's safe range, as entity or context values. */
const LONG_EDGE_DATA = [
  9007199254740991, -9007199254740991, 4503599627370496, 3037000499, 3037000500, 2147483647,
  4294967296,
] as const;
/**
 * ±2^53: exact JS numbers that Cedar accepts as Longs but that are outside the safe range (the
 * engine refuses them). Rare, since one in the entities refuses every request of the case.
 */
const LONG_UNSAFE_DATA = [9007199254740992, -9007199254740992] as const;

const STRINGS = [
  '',
  'a',
  'ab',
  'abc',
  'tool',
  'prod',
  'dev',
  'a*b',
  'ünï',
  '日本',
  'x😀y',
  'line\nbreak',
  'q"uote',
  'back\\slash',
  'tab\there',
  '${x}`',
  '\u2028',
] as const;

/** Decimals, with equal values in different spellings (`1.5`, `1.50`; `0.0`, `-0.0`). */
const DECIMALS = [
  '0.0',
  '-0.0',
  '1.5',
  '1.50',
  '-2.25',
  '1.0001',
  '922337203685477.5807',
  '-922337203685477.5808',
];
/** Addresses and ranges, with equal values in different spellings (`::1`, `0:0:0:0:0:0:0:1`). */
const IPS = [
  '10.0.0.1',
  '10.0.0.1/32',
  '10.0.0.0/24',
  '10.0.0.0/8',
  '192.168.0.0/16',
  '127.0.0.1',
  '224.0.0.1',
  '0.0.0.0/0',
  '::1',
  '0:0:0:0:0:0:0:1',
  '::/0',
  'fe80::1',
  'fe80::/10',
  'ff02::1',
];
/** Arguments that the extension constructors reject (an evaluation error in Cedar). */
const BAD_DECIMALS = ['1.23456', 'abc', '1e3', '922337203685477.5808', '1.', '.5', '+1.0'];
const BAD_IPS = [
  '300.1.1.1',
  'not-an-ip',
  '10.0.0.1/40',
  '::ffff:10.0.0.1',
  '010.0.0.1',
  '::1/129',
];

/**
 * Strings shaped like decimals and addresses, valid or not (digit counts past Cedar's limits,
 * leading zeros, octets past 255, prefixes past the width, IPv6 with and without `::`), so the
 * engine's parsers meet Cedar's on more than the pools above.
 */
const decimalLike: fc.Arbitrary<string> = fc.stringMatching(/^-?[0-9]{1,16}(\.[0-9]{0,5})?$/);
const ipLike: fc.Arbitrary<string> = fc.oneof(
  fc.stringMatching(/^([0-9]{1,3}\.){3}[0-9]{1,3}(\/[0-9]{1,2})?$/),
  fc.stringMatching(/^([0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}(\/[0-9]{1,3})?$/),
);

/** A Cedar string literal for `s`. */
export function cedarString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (cp < 0x20 || cp === 0x7f) out += `\\u{${cp.toString(16)}}`;
    else out += ch;
  }
  return out + '"';
}

function uidText(uid: UidJson): string {
  return `${uid.type}::${cedarString(uid.id)}`;
}

function uidsOf(...types: readonly string[]): UidJson[] {
  return types.flatMap((t) => typeDecl(t).ids.map((id) => ({ type: t, id })));
}

// ---------------------------------------------------------------------------------------------
// Expressions

/** Whether the expressions must be well typed (a schema-checked case) or may be ill typed. */
export type Typing = 'typed' | 'loose';

type Gen = (t: ExprType, depth: number) => fc.Arbitrary<string>;

function access(base: string, attr: string): fc.Arbitrary<string> {
  return fc.constantFrom(`${base}.${attr}`, `${base}[${cedarString(attr)}]`);
}

/** Attribute reads of a given expression type, as `(base, attr)` pairs. */
function attrReads(t: ExprType, ext: boolean): string[] {
  const out: string[] = [];
  const add = (base: string, shape: Readonly<Record<string, AttrType>>): void => {
    for (const [name, at] of Object.entries(shapeIn(shape, ext)))
      if (exprTypeOf(at) === t) out.push(`${base}|${name}`);
  };
  add('principal', PRINCIPAL_SHAPE);
  add('resource', RESOURCE_SHAPE);
  add('context', CONTEXT_SHAPE);
  add('principal.limits', LIMITS_SHAPE);
  add('context.args', ARGS_SHAPE);
  add('principal.owner', PRINCIPAL_SHAPE);
  add('resource.server', RESOURCE_SHAPE);
  return out;
}

function exprTypeOf(at: AttrType): ExprType {
  switch (at) {
    case 'Human':
    case 'Server':
      return 'Entity';
    case 'Limits':
    case 'Args':
      return 'Record';
    default:
      return at;
  }
}

const longLiteral: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...LONG_SMALL).map(String) },
  { weight: 2, arbitrary: fc.constantFrom(...LONG_EDGE_TEXT) },
  { weight: 1, arbitrary: fc.integer({ min: -1000, max: 1000 }).map(String) },
);
const stringLiteral: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...STRINGS).map(cedarString) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 4 }).map(cedarString) },
);
const entityLiteral: fc.Arbitrary<string> = fc
  .constantFrom(...ALL_UIDS, { type: 'Agent', id: 'ghost' })
  .map(uidText);

function leaf(t: ExprType, typing: Typing, ext: boolean): fc.Arbitrary<string> {
  const reads = attrReads(t, ext).map((r) => {
    const [base, attr] = r.split('|') as [string, string];
    return access(base, attr);
  });
  const withReads = (lit: fc.Arbitrary<string>): fc.Arbitrary<string> =>
    reads.length === 0 ? lit : fc.oneof(lit, fc.oneof(...reads));
  switch (t) {
    case 'Bool':
      return withReads(fc.constantFrom('true', 'false'));
    case 'Long':
      return withReads(longLiteral);
    case 'String':
      return withReads(stringLiteral);
    case 'Entity':
      return fc.oneof(
        { weight: 2, arbitrary: fc.constantFrom('principal', 'resource') },
        { weight: 1, arbitrary: fc.constant('action') },
        { weight: 3, arbitrary: entityLiteral },
        { weight: 2, arbitrary: fc.oneof(...reads) },
      );
    case 'SetString':
      return withReads(fc.array(stringLiteral, { minLength: 1, maxLength: 3 }).map(setText));
    case 'SetLong':
      return withReads(fc.array(longLiteral, { minLength: 1, maxLength: 3 }).map(setText));
    case 'SetEntity':
      return withReads(fc.array(entityLiteral, { minLength: 1, maxLength: 3 }).map(setText));
    case 'Record':
      // Both key orders: record equality ignores order.
      return withReads(
        fc
          .tuple(longLiteral, stringLiteral, fc.boolean())
          .map(([max, env, flip]) =>
            flip ? `{"env": ${env}, max: ${max}}` : `{max: ${max}, "env": ${env}}`,
          ),
      );
    case 'Decimal': {
      const good = fc.constantFrom(...DECIMALS);
      const arg =
        typing === 'typed'
          ? good
          : fc.oneof(
              { weight: 9, arbitrary: good },
              { weight: 1, arbitrary: fc.constantFrom(...BAD_DECIMALS) },
              { weight: 1, arbitrary: decimalLike },
            );
      return withReads(arg.map((d) => `decimal(${cedarString(d)})`));
    }
    case 'Ip': {
      const good = fc.constantFrom(...IPS);
      const arg =
        typing === 'typed'
          ? good
          : fc.oneof(
              { weight: 9, arbitrary: good },
              { weight: 1, arbitrary: fc.constantFrom(...BAD_IPS) },
              { weight: 1, arbitrary: ipLike },
            );
      return withReads(arg.map((d) => `ip(${cedarString(d)})`));
    }
  }
}

function setText(items: readonly string[]): string {
  return `[${items.join(', ')}]`;
}

const likePattern: fc.Arbitrary<string> = fc
  .array(
    fc.oneof(
      { weight: 3, arbitrary: fc.constant('*') },
      {
        weight: 4,
        arbitrary: fc.constantFrom('a', 'b', 'ab', 'to', 'ol', 'pr', 'od', 'ü', '日', '😀', 'x'),
      },
      { weight: 1, arbitrary: fc.constantFrom('\\*', '\\n', '\\"', '\\\\', '\\u{fc}') },
    ),
    { maxLength: 4 },
  )
  .map((parts) => `"${parts.join('')}"`);

const ENTITY_TYPE_NAMES = [
  'Agent',
  'Human',
  'Group',
  'Tool',
  'Server',
  'Secret',
  'Action',
  'Org::Team',
] as const;

function getTag(entity: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc
    .tuple(entity, fc.constantFrom('"role"', '"env"', '"n"', '"zz"'))
    .map(([e, tag]) => `${e}.getTag(${tag})`);
}

function compound(
  t: ExprType,
  d: number,
  g: Gen,
  typing: Typing,
  ext: boolean,
): fc.Arbitrary<string> {
  const types = ext ? EXPR_TYPES : EXPR_TYPES.filter((u) => !EXTENSION_TYPES.has(u));
  const keys = (shape: Readonly<Record<string, AttrType>>): string[] =>
    Object.keys(shapeIn(shape, ext));
  const sub = (u: ExprType): fc.Arbitrary<string> => g(u, d - 1);
  const bin = (op: string, u: ExprType, v: ExprType = u): fc.Arbitrary<string> =>
    fc.tuple(sub(u), sub(v)).map(([a, b]) => `(${a} ${op} ${b})`);
  const ite = fc
    .tuple(sub('Bool'), sub(t), sub(t))
    .map(([c, a, b]) => `(if ${c} then ${a} else ${b})`);
  switch (t) {
    case 'Bool': {
      const eqType = fc.constantFrom(...types);
      const sameEq = eqType.chain((u) => fc.tuple(fc.constantFrom('==', '!='), sub(u), sub(u)));
      const anyEq = fc.tuple(
        fc.constantFrom('==', '!='),
        eqType.chain((u) => sub(u)),
        eqType.chain((u) => sub(u)),
      );
      const eq = (
        typing === 'typed'
          ? sameEq
          : fc.oneof({ weight: 4, arbitrary: sameEq }, { weight: 1, arbitrary: anyEq })
      ).map(([op, a, b]) => `(${a} ${op} ${b})`);
      const hasOn = fc.oneof(
        fc.tuple(
          fc.constantFrom('principal', 'principal.owner'),
          fc.constantFrom(...keys(PRINCIPAL_SHAPE), 'nope'),
        ),
        fc.tuple(
          fc.constantFrom('resource', 'resource.server'),
          fc.constantFrom(...keys(RESOURCE_SHAPE), 'nope'),
        ),
        fc.tuple(fc.constant('context'), fc.constantFrom(...keys(CONTEXT_SHAPE), 'nope')),
        fc.tuple(fc.constant('context.args'), fc.constantFrom(...keys(ARGS_SHAPE), 'nope')),
        fc.tuple(fc.constant('principal.limits'), fc.constantFrom(...keys(LIMITS_SHAPE), 'nope')),
        fc.tuple(fc.constant('context'), fc.constantFrom('args.amount', 'args.path', 'args.nope')),
      );
      const has = hasOn.chain(([base, attr]) =>
        attr.includes('.')
          ? fc.constant(`(${base} has ${attr})`)
          : fc.constantFrom(`(${base} has ${attr})`, `(${base} has ${cedarString(attr)})`),
      );
      const guarded = hasOn
        .filter(([, attr]) => !attr.includes('.') && attr !== 'nope')
        .chain(([base, attr]) => fc.tuple(fc.constant(`(${base} has ${attr})`), sub('Bool')))
        .map(([h, b]) => `(${h} && ${b})`);
      const setOps = fc.constantFrom<[ExprType, ExprType]>(
        ['SetString', 'String'],
        ['SetLong', 'Long'],
        ['SetEntity', 'Entity'],
      );
      const contains = setOps.chain(([s, e]) =>
        fc.oneof(
          fc.tuple(sub(s), sub(e)).map(([a, b]) => `${a}.contains(${b})`),
          fc
            .tuple(sub(s), sub(s), fc.constantFrom('containsAll', 'containsAny'))
            .map(([a, b, m]) => `${a}.${m}(${b})`),
          sub(s).map((a) => `${a}.isEmpty()`),
        ),
      );
      const isType = fc.constantFrom(...ENTITY_TYPE_NAMES);
      const entityTests = fc.oneof(
        bin('in', 'Entity'),
        bin('in', 'Entity', 'SetEntity'),
        fc.tuple(sub('Entity'), isType).map(([e, ty]) => `(${e} is ${ty})`),
        fc
          .tuple(sub('Entity'), isType, fc.oneof(sub('Entity'), sub('SetEntity')))
          .map(([e, ty, p]) => `(${e} is ${ty} in ${p})`),
      );
      const decimalCmp = fc
        .tuple(
          sub('Decimal'),
          sub('Decimal'),
          fc.constantFrom('lessThan', 'lessThanOrEqual', 'greaterThan', 'greaterThanOrEqual'),
        )
        .map(([a, b, m]) => `${a}.${m}(${b})`);
      const ipTest = fc.oneof(
        fc
          .tuple(sub('Ip'), fc.constantFrom('isIpv4', 'isIpv6', 'isLoopback', 'isMulticast'))
          .map(([a, m]) => `${a}.${m}()`),
        fc.tuple(sub('Ip'), sub('Ip')).map(([a, b]) => `${a}.isInRange(${b})`),
      );
      const extension = ext
        ? [
            { weight: 1, arbitrary: decimalCmp },
            { weight: 1, arbitrary: ipTest },
          ]
        : [];
      // Entity tags and `has` on any operand: no schema here declares tags, so loose cases only.
      const looseOnly =
        typing === 'loose'
          ? [
              {
                weight: 1,
                arbitrary: fc
                  .tuple(sub('Entity'), fc.constantFrom('"role"', '"env"', '"n"', '"zz"'))
                  .map(([e, tag]) => `${e}.hasTag(${tag})`),
              },
              {
                weight: 1,
                arbitrary: eqType
                  .chain((u) => sub(u))
                  .chain((b) => fc.constantFrom(`(${b} has level)`, `(${b} has "max")`)),
              },
            ]
          : [];
      return fc.oneof(
        { weight: 2, arbitrary: sub('Bool').map((a) => `(!${a})`) },
        { weight: 4, arbitrary: bin('&&', 'Bool') },
        { weight: 3, arbitrary: bin('||', 'Bool') },
        {
          weight: 5,
          arbitrary: fc
            .tuple(fc.constantFrom('<', '<=', '>', '>='), sub('Long'), sub('Long'))
            .map(([op, a, b]) => `(${a} ${op} ${b})`),
        },
        { weight: 5, arbitrary: eq },
        {
          weight: 3,
          arbitrary: fc.tuple(sub('String'), likePattern).map(([s, p]) => `(${s} like ${p})`),
        },
        { weight: 4, arbitrary: entityTests },
        { weight: 3, arbitrary: has },
        { weight: 3, arbitrary: guarded },
        { weight: 4, arbitrary: contains },
        { weight: 2, arbitrary: ite },
        ...extension,
        ...looseOnly,
      );
    }
    case 'Long':
      return fc.oneof(
        { weight: typing === 'loose' ? 1 : 0, arbitrary: getTag(sub('Entity')) },
        { weight: 3, arbitrary: bin('+', 'Long') },
        { weight: 2, arbitrary: bin('-', 'Long') },
        { weight: 2, arbitrary: bin('*', 'Long') },
        { weight: 1, arbitrary: sub('Long').map((a) => `(-${a})`) },
        { weight: 1, arbitrary: ite },
      );
    case 'String':
      return typing === 'loose'
        ? fc.oneof({ weight: 3, arbitrary: ite }, { weight: 1, arbitrary: getTag(sub('Entity')) })
        : ite;
    case 'Entity':
    case 'Decimal':
    case 'Ip':
      return ite;
    case 'SetString':
      return fc.oneof(fc.array(sub('String'), { minLength: 1, maxLength: 3 }).map(setText), ite);
    case 'SetLong':
      return fc.oneof(fc.array(sub('Long'), { minLength: 1, maxLength: 3 }).map(setText), ite);
    case 'SetEntity':
      return fc.oneof(fc.array(sub('Entity'), { minLength: 1, maxLength: 3 }).map(setText), ite);
    case 'Record':
      return fc.oneof(
        fc.tuple(sub('Long'), sub('String')).map(([max, env]) => `{max: ${max}, env: ${env}}`),
        ite,
      );
  }
}

/** Odd expressions only an untyped case may contain: reads of absent attributes, empty sets, records. */
const looseOddities: fc.Arbitrary<string> = fc.constantFrom(
  'principal.nope',
  'context.nope',
  'resource["no pe"]',
  '[]',
  '{}',
  '{a: 1}.a',
  '{a: 1}.b',
  'principal.owner.owner',
  'Group::"g0".name',
  'Agent::"ghost".level',
  'action.name',
  '[1, "a", true]',
  // Names that are special to JavaScript objects (the engine must not read prototypes).
  '(principal has toString)',
  '(context has constructor)',
  'context["__proto__"]',
  'principal["constructor"]',
  '{"__proto__": 1}["__proto__"]',
  '({"__proto__": 1} has "__proto__")',
  // An extension the engine refuses at compile time (counted as refused, bounded by the suite).
  'datetime("2024-10-15")',
);

/** An arbitrary for expressions of type `t`, nested up to `depth`. */
export function exprArbitrary(
  typing: Typing,
  ext: boolean,
): (t: ExprType, depth: number) => fc.Arbitrary<string> {
  // Depth only decreases, so building eagerly (memoised by type and depth) terminates.
  const g: Gen = (t, depth) => build(t, depth);
  const built = new Map<string, fc.Arbitrary<string>>();
  const build = (t: ExprType, depth: number): fc.Arbitrary<string> => {
    const key = `${t}/${depth}`;
    const hit = built.get(key);
    if (hit !== undefined) return hit;
    let arb: fc.Arbitrary<string> =
      depth <= 0
        ? leaf(t, typing, ext)
        : fc.oneof(
            { weight: 2, arbitrary: leaf(t, typing, ext) },
            { weight: 3, arbitrary: compound(t, depth, g, typing, ext) },
          );
    if (typing === 'loose') {
      // An operand of the wrong type (or an odd read) in about one node of sixteen.
      const others = EXPR_TYPES.filter((u) => u !== t && (ext || !EXTENSION_TYPES.has(u)));
      const wrong = fc.constantFrom(...others).chain((u) => leaf(u, typing, ext));
      arb = fc.oneof(
        { weight: 28, arbitrary: arb },
        { weight: 1, arbitrary: wrong },
        { weight: 1, arbitrary: looseOddities },
      );
    }
    built.set(key, arb);
    return arb;
  };
  return g;
}

// ---------------------------------------------------------------------------------------------
// Policies

function scopeArbitrary(
  variable: 'principal' | 'resource',
  types: readonly string[],
): fc.Arbitrary<string> {
  const own = uidsOf(...types).map(uidText);
  const ancestors = uidsOf(...new Set(types.flatMap((t) => typeDecl(t).parentTypes))).map(uidText);
  const anyInTarget = fc.constantFrom(...own, ...ancestors);
  return fc.oneof(
    { weight: 9, arbitrary: fc.constant(variable) },
    { weight: 2, arbitrary: fc.constantFrom(...own).map((u) => `${variable} == ${u}`) },
    { weight: 3, arbitrary: anyInTarget.map((u) => `${variable} in ${u}`) },
    { weight: 2, arbitrary: fc.constantFrom(...types).map((t) => `${variable} is ${t}`) },
    {
      weight: 2,
      arbitrary: fc
        .tuple(fc.constantFrom(...types), anyInTarget)
        .map(([t, u]) => `${variable} is ${t} in ${u}`),
    },
  );
}

const actionText = (a: string): string => `Action::${cedarString(a)}`;

const actionScope: fc.Arbitrary<string> = fc.oneof(
  { weight: 7, arbitrary: fc.constant('action') },
  { weight: 3, arbitrary: fc.constantFrom(...ACTIONS).map((a) => `action == ${actionText(a)}`) },
  { weight: 1, arbitrary: fc.constant(`action in ${actionText(ACTION_GROUP)}`) },
  {
    weight: 2,
    arbitrary: fc
      .subarray([...ACTIONS, ACTION_GROUP], { minLength: 1, maxLength: 3 })
      .map((as) => `action in [${as.map(actionText).join(', ')}]`),
  },
);

/** One policy's text. */
export function policyArbitrary(typing: Typing, ext: boolean, maxDepth = 3): fc.Arbitrary<string> {
  const g = exprArbitrary(typing, ext);
  const condition = fc.integer({ min: 0, max: maxDepth }).chain((d) => g('Bool', d));
  const clause: fc.Arbitrary<[string, string]> = fc.tuple(
    fc.constantFrom('when', 'when', 'unless'),
    condition,
  );
  const conditions: fc.Arbitrary<[string, string][]> = fc.oneof(
    { weight: 3, arbitrary: fc.constant<[string, string][]>([]) },
    { weight: 3, arbitrary: fc.array(clause, { minLength: 1, maxLength: 2 }) },
  );
  return fc
    .record({
      effect: fc.oneof(
        { weight: 5, arbitrary: fc.constant('permit') },
        { weight: 1, arbitrary: fc.constant('forbid') },
      ),
      principal: scopeArbitrary('principal', PRINCIPAL_TYPES),
      action: actionScope,
      resource: scopeArbitrary('resource', RESOURCE_TYPES),
      conditions,
      annotation: fc.oneof(
        { weight: 7, arbitrary: fc.constant(null) },
        {
          weight: 1,
          arbitrary: fc.constantFrom(
            '@approval("a person decides")',
            '@note("x")',
            '@id("custom")',
          ),
        },
      ),
    })
    .map(({ effect, principal, action, resource, conditions, annotation }) => {
      const clauses = conditions.map(([kind, body]) => ` ${kind} { ${body} }`).join('');
      return `${annotation === null ? '' : annotation + '\n'}${effect} (${principal}, ${action}, ${resource})${clauses};`;
    });
}

// ---------------------------------------------------------------------------------------------
// Schemas

/** Which attributes the schema marks optional (`attr?`), by `Type.attr` / `context.attr`. */
export type Optionality = ReadonlySet<string>;

function schemaType(at: AttrType): string {
  switch (at) {
    case 'Bool':
      return 'Bool';
    case 'Long':
      return 'Long';
    case 'String':
      return 'String';
    case 'SetString':
      return 'Set<String>';
    case 'SetLong':
      return 'Set<Long>';
    case 'SetEntity':
      return 'Set<Human>';
    case 'Human':
      return 'Human';
    case 'Server':
      return 'Server';
    case 'Limits':
      return '{ max: Long, env: String }';
    case 'Args':
      return '{ amount: Long, path: String, env: String }';
    case 'Decimal':
      return 'decimal';
    case 'Ip':
      return 'ipaddr';
  }
}

function shapeText(
  prefix: string,
  shape: Readonly<Record<string, AttrType>>,
  optional: Optionality,
  ext: boolean,
): string {
  const fields = Object.entries(shapeIn(shape, ext)).map(
    ([name, at]) => `${name}${optional.has(`${prefix}.${name}`) ? '?' : ''}: ${schemaType(at)}`,
  );
  return `{ ${fields.join(', ')} }`;
}

/** The Cedar schema text of the world, with the given optional attributes. */
export function schemaText(optional: Optionality, ext: boolean): string {
  const lines = ENTITY_TYPES.map((t) => {
    const path = t.name.split('::');
    const name = path.pop()!;
    const parents = t.parentTypes.length === 0 ? '' : ` in [${t.parentTypes.join(', ')}]`;
    const decl = `entity ${name}${parents} = ${shapeText(t.name, t.shape, optional, ext)};`;
    return path.length === 0 ? decl : `namespace ${path.join('::')} { ${decl} }`;
  });
  lines.push(`type Ctx = ${shapeText('context', CONTEXT_SHAPE, optional, ext)};`);
  lines.push(`action ${cedarString(ACTION_GROUP)};`);
  for (const a of ACTIONS) {
    const member = GROUPED_ACTIONS.includes(a) ? ` in [${cedarString(ACTION_GROUP)}]` : '';
    lines.push(
      `action ${cedarString(a)}${member} appliesTo { principal: [${PRINCIPAL_TYPES.join(', ')}], resource: [${RESOURCE_TYPES.join(', ')}], context: Ctx };`,
    );
  }
  return lines.join('\n') + '\n';
}

/** Attributes a schema may mark optional. */
function optionalCandidates(ext: boolean): string[] {
  return [
    ...ENTITY_TYPES.flatMap((t) => Object.keys(shapeIn(t.shape, ext)).map((a) => `${t.name}.${a}`)),
    ...Object.keys(shapeIn(CONTEXT_SHAPE, ext)).map((a) => `context.${a}`),
  ];
}

// ---------------------------------------------------------------------------------------------
// Data: entities and requests

const longData: fc.Arbitrary<number> = fc.oneof(
  { weight: 500, arbitrary: fc.constantFrom(...LONG_SMALL) },
  { weight: 200, arbitrary: fc.constantFrom(...LONG_EDGE_DATA) },
  { weight: 100, arbitrary: fc.integer({ min: -1000, max: 1000 }) },
  { weight: 1, arbitrary: fc.constantFrom(...LONG_UNSAFE_DATA) },
);
const stringData: fc.Arbitrary<string> = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(...STRINGS) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 4 }) },
);
/**
 * An entity reference value. With `schemaForms`, also in the form Cedar accepts only where a
 * schema says the slot holds an entity: `{"type","id"}` without `__entity`.
 */
const entityRef = (types: readonly string[], schemaForms: boolean): fc.Arbitrary<ValueJson> =>
  fc
    .tuple(fc.constantFrom(...uidsOf(...types), { type: types[0]!, id: 'ghost' }), fc.nat(9))
    .map(([u, form]) => (schemaForms && form < 3 ? { ...u } : { __entity: u }));

/**
 * An extension value. With `schemaForms`, also the forms Cedar accepts only where a schema says
 * the slot holds an extension value: the bare string, and `{"fn","arg"}` without `__extn`.
 */
const extensionValue = (
  fn: string,
  args: readonly string[],
  schemaForms: boolean,
): fc.Arbitrary<ValueJson> =>
  fc.tuple(fc.constantFrom(...args), fc.nat(9)).map(([arg, form]): ValueJson => {
    if (schemaForms && form < 2) return arg;
    if (schemaForms && form < 3) return { fn, arg };
    return { __extn: { fn, arg } };
  });

function valueArbitrary(at: AttrType, schemaForms = false): fc.Arbitrary<ValueJson> {
  switch (at) {
    case 'Bool':
      return fc.boolean();
    case 'Long':
      return longData;
    case 'String':
      return stringData;
    case 'SetString':
      return fc.uniqueArray(stringData, { maxLength: 3 });
    case 'SetLong':
      return fc.uniqueArray(longData, { maxLength: 3 });
    case 'SetEntity':
      return fc.uniqueArray(entityRef(['Human'], schemaForms), {
        maxLength: 3,
        selector: (v) => JSON.stringify(v),
      });
    case 'Human':
      return entityRef(['Human'], schemaForms);
    case 'Server':
      return entityRef(['Server'], schemaForms);
    case 'Limits':
      return recordArbitrary(LIMITS_SHAPE, new Set(), '', 'typed', false);
    case 'Args':
      return recordArbitrary(ARGS_SHAPE, new Set(), '', 'typed', false);
    case 'Decimal':
      return extensionValue('decimal', DECIMALS, schemaForms);
    case 'Ip':
      return extensionValue('ip', IPS, schemaForms);
  }
}

const ATTR_TYPES: readonly AttrType[] = [
  'Bool',
  'Long',
  'String',
  'SetString',
  'SetLong',
  'SetEntity',
  'Human',
  'Server',
  'Limits',
  'Args',
  'Decimal',
  'Ip',
];

/**
 * A record (entity attributes or context) of `shape`. Typed: every required attribute present
 * with its type. Loose: attributes go missing and some take a value of another type.
 */
function recordArbitrary(
  shape: Readonly<Record<string, AttrType>>,
  optional: Optionality,
  prefix: string,
  typing: Typing,
  ext: boolean,
): fc.Arbitrary<Record<string, ValueJson>> {
  const attrTypes = ext ? ATTR_TYPES : ATTR_TYPES.filter((t) => !EXTENSION_TYPES.has(t));
  const fields = Object.entries(shapeIn(shape, ext)).map(([name, at]) => {
    const isOptional = optional.has(`${prefix}.${name}`);
    const value =
      typing === 'typed'
        ? valueArbitrary(at, true)
        : fc.oneof(
            { weight: 30, arbitrary: valueArbitrary(at) },
            { weight: 2, arbitrary: fc.constantFrom(...attrTypes).chain((t) => valueArbitrary(t)) },
            // `{"type","id"}` without `__entity` is a record, not an entity reference.
            {
              weight: 1,
              arbitrary: fc.constantFrom(...uidsOf('Human')).map((u): ValueJson => ({ ...u })),
            },
          );
    // Cedar's cost per request grows with the attribute values it converts (about 15 µs each):
    // loose records carry two in five of their attributes (missing ones are what the loose cases
    // are about anyway).
    const presence =
      typing === 'typed' && !isOptional
        ? fc.constant(true)
        : fc.oneof(
            { weight: 2, arbitrary: fc.constant(true) },
            { weight: 3, arbitrary: fc.constant(false) },
          );
    return fc.tuple(fc.constant(name), presence, value);
  });
  // A loose record sometimes carries a key that is special to JavaScript objects, as an own
  // property (Object.fromEntries defines it; an object literal would set the prototype).
  const odd: fc.Arbitrary<[string, ValueJson] | null> =
    typing === 'loose'
      ? fc.oneof(
          { weight: 30, arbitrary: fc.constant(null) },
          {
            weight: 1,
            arbitrary: fc.tuple(fc.constantFrom('__proto__', 'constructor', 'toString'), longData),
          },
        )
      : fc.constant(null);
  return fc
    .tuple(fc.tuple(...fields), odd)
    .map(([entries, extra]) =>
      Object.fromEntries([
        ...entries
          .filter(([, present]) => present)
          .map(([name, , value]) => [name, value] as const),
        ...(extra === null ? [] : [extra]),
      ]),
    );
}

function entityArbitrary(
  uid: UidJson,
  index: number,
  optional: Optionality,
  typing: Typing,
  ext: boolean,
): fc.Arbitrary<EntityJson | null> {
  const decl = typeDecl(uid.type);
  // Parents come later in ALL_UIDS: a DAG (diamonds included); cycles are a case-level mutation.
  const forward = ALL_UIDS.filter((p, j) => j > index && decl.parentTypes.includes(p.type));
  const parents: fc.Arbitrary<readonly UidJson[]> =
    forward.length === 0
      ? fc.constant([])
      : fc.subarray(forward, { maxLength: Math.min(3, forward.length) });
  // Tags in one loose entity in eight (each value costs cedar-wasm microseconds per request).
  const tags: fc.Arbitrary<Record<string, ValueJson> | null> =
    typing === 'loose'
      ? fc.oneof(
          { weight: 7, arbitrary: fc.constant(null) },
          {
            weight: 1,
            arbitrary: fc.dictionary(
              fc.constantFrom('role', 'env', 'n'),
              fc.oneof(stringData, longData),
              { minKeys: 1, maxKeys: 2 },
            ),
          },
        )
      : fc.constant(null);
  return fc.option(
    fc
      .tuple(recordArbitrary(decl.shape, optional, uid.type, typing, ext), parents, tags)
      .map(([attrs, ps, t]) =>
        t === null ? { uid, attrs, parents: ps } : { uid, attrs, parents: ps, tags: t },
      ),
    // (`freq: n` makes one in n null.) Groups have one attribute and make the hierarchies deep:
    // present three times in four; the others half of the time.
    { freq: uid.type === 'Group' ? 4 : 2 },
  );
}

/**
 * Action entities: `listTool` and `callTool` are members of `toolOps`, as the schema says. (The
 * other actions have no parents and no attributes: absent, they behave the same.)
 */
const ACTION_ENTITIES: readonly EntityJson[] = [
  { uid: { type: 'Action', id: ACTION_GROUP }, attrs: {}, parents: [] },
  ...GROUPED_ACTIONS.map((a) => ({
    uid: { type: 'Action', id: a },
    attrs: {},
    parents: [{ type: 'Action', id: ACTION_GROUP }],
  })),
];

function requestArbitrary(
  optional: Optionality,
  typing: Typing,
  ext: boolean,
): fc.Arbitrary<RequestJson> {
  // Loose requests also name absent entities and types no schema would allow there.
  const principals = [
    ...uidsOf(...PRINCIPAL_TYPES),
    ...(typing === 'loose'
      ? [
          { type: 'Agent', id: 'ghost' },
          { type: 'Group', id: 'g0' },
        ]
      : []),
  ];
  const resources = [
    ...uidsOf(...RESOURCE_TYPES),
    ...(typing === 'loose'
      ? [
          { type: 'Tool', id: 'ghost' },
          { type: 'Org::Team', id: 't0' },
        ]
      : []),
  ];
  const actions = [...ACTIONS, ...(typing === 'loose' ? [ACTION_GROUP] : [])];
  return fc.record({
    principal: fc.constantFrom(...principals),
    action: fc.constantFrom(...actions).map((id) => ({ type: 'Action', id })),
    resource: fc.constantFrom(...resources),
    context: recordArbitrary(CONTEXT_SHAPE, optional, 'context', typing, ext),
  });
}

/** Options of {@link caseArbitrary}. */
export interface CaseOptions {
  readonly minRequests?: number;
  readonly maxRequests?: number;
  /** Most policies in a set (a few sets get up to this many; most get up to 5). */
  readonly maxPolicies?: number;
  readonly maxDepth?: number;
  /** Whether to generate `decimal` and `ip` values and calls (default on). */
  readonly extensions?: boolean;
  /** Whether a few schema cases carry data that does not conform to the schema (default on). */
  readonly nonconforming?: boolean;
}

/**
 * A whole case. About a quarter of the cases carry a schema; those are generated well typed (so
 * most validate) and their data conforms to the schema. The rest are loose.
 */
export function caseArbitrary(options: CaseOptions = {}): fc.Arbitrary<GeneratedCase> {
  const minRequests = options.minRequests ?? 1;
  const maxRequests = options.maxRequests ?? 20;
  const maxPolicies = options.maxPolicies ?? 13;
  const maxDepth = options.maxDepth ?? 3;
  const ext = options.extensions ?? true;
  const nonconforming = options.nonconforming ?? true;
  const body = (
    typing: Typing,
    optional: Optionality,
    schema: string | undefined,
    dataTyping: Typing,
  ): fc.Arbitrary<GeneratedCase> => {
    const policy = policyArbitrary(typing, ext, maxDepth);
    return fc
      .record({
        policies: fc.oneof(
          {
            weight: 9,
            arbitrary: fc.array(policy, { minLength: 1, maxLength: Math.min(5, maxPolicies) }),
          },
          {
            weight: 1,
            arbitrary: fc.array(policy, { minLength: 1, maxLength: maxPolicies, size: 'max' }),
          },
        ),
        // Without the action entities `action in Action::"toolOps"` is false (no schema) or
        // comes from the schema's `in [toolOps]`. (Each entity costs cedar-wasm a few
        // microseconds per request to convert, so they come only in some cases.)
        actions: fc.boolean(),
        entities: fc.tuple(
          ...ALL_UIDS.map((u, i) => entityArbitrary(u, i, optional, dataTyping, ext)),
        ),
        mutation: fc.oneof(
          { weight: 95, arbitrary: fc.constant<Mutation>('none') },
          { weight: 3, arbitrary: fc.constant<Mutation>('cycle') },
          { weight: 1, arbitrary: fc.constant<Mutation>('duplicate') },
          { weight: 1, arbitrary: fc.constant<Mutation>('conflicting duplicate') },
        ),
        // Schema cases: one small offence against the schema in otherwise conforming data.
        offence: fc.oneof(
          { weight: 12, arbitrary: fc.constant<Offence | null>(null) },
          {
            weight: schema !== undefined && nonconforming ? 1 : 0,
            arbitrary: fc.constantFrom<Offence | null>(...OFFENCES),
          },
        ),
        pick: fc.nat(),
        requests: fc.array(requestArbitrary(optional, dataTyping, ext), {
          minLength: minRequests,
          maxLength: maxRequests,
          // Uniform length: the requests amortise the per-set cost of both engines.
          size: 'max',
        }),
      })
      .map(({ policies, actions, entities, mutation, offence, pick, requests }) =>
        offend(
          {
            schema,
            policies,
            entities: mutate(
              [
                ...(actions ? ACTION_ENTITIES : []),
                ...entities.filter((e): e is EntityJson => e !== null),
              ],
              mutation,
              pick,
            ),
            requests,
          },
          offence,
          pick,
        ),
      );
  };
  const typed = fc
    .tuple(
      fc.subarray(optionalCandidates(ext), { maxLength: 4 }),
      // A few schema cases carry data that does not conform to the schema (Cedar refuses it).
      fc.oneof(
        { weight: 30, arbitrary: fc.constant<Typing>('typed') },
        { weight: nonconforming ? 1 : 0, arbitrary: fc.constant<Typing>('loose') },
      ),
    )
    .chain(([names, dataTyping]) => {
      const optional = new Set(names);
      return body('typed', optional, schemaText(optional, ext), dataTyping);
    });
  return fc.oneof(
    { weight: 1, arbitrary: typed },
    { weight: 3, arbitrary: body('loose', new Set(), undefined, 'loose') },
  );
}

type Mutation = 'none' | 'cycle' | 'duplicate' | 'conflicting duplicate';

/**
 * Entity-list mutations Cedar refuses or accepts specially: a hierarchy cycle (a back edge from a
 * parent, or a self-loop), the same entity twice (accepted), and two different entities with
 * the same uid (refused).
 */
function mutate(entities: EntityJson[], mutation: Mutation, pick: number): EntityJson[] {
  if (mutation === 'none' || entities.length === 0) return entities;
  const i = pick % entities.length;
  const e = entities[i]!;
  switch (mutation) {
    case 'cycle': {
      const key = (u: UidJson): string => `${u.type}::${u.id}`;
      const j = entities.findIndex((p) => e.parents.some((q) => key(q) === key(p.uid)));
      if (j < 0)
        return entities.map((x, k) => (k === i ? { ...x, parents: [...x.parents, x.uid] } : x));
      return entities.map((x, k) => (k === j ? { ...x, parents: [...x.parents, e.uid] } : x));
    }
    case 'duplicate':
      return [...entities, e];
    case 'conflicting duplicate':
      return [...entities, { ...e, attrs: { ...e.attrs, level: 999 } }];
  }
}

const OFFENCES = [
  'missing attribute',
  'undeclared attribute',
  'attribute of another type',
  'parent of a type the schema does not allow',
  'entity of an undeclared type',
  'action entity with other parents',
  'context without an attribute',
  'context with an undeclared attribute',
  'context attribute of another type',
  'principal of a type the action does not apply to',
] as const;
type Offence = (typeof OFFENCES)[number];

/** One offence against the schema (Cedar refuses the entities, or the one request it touches). */
function offend(c: GeneratedCase, offence: Offence | null, pick: number): GeneratedCase {
  if (offence === null) return c;
  const entities = c.entities.filter((e) => e.uid.type !== 'Action');
  const e = entities.length === 0 ? undefined : entities[pick % entities.length]!;
  const withEntity = (f: (x: EntityJson) => EntityJson): GeneratedCase =>
    e === undefined ? c : { ...c, entities: c.entities.map((x) => (x === e ? f(x) : x)) };
  const r = pick % c.requests.length;
  const withRequest = (f: (x: RequestJson) => RequestJson): GeneratedCase => ({
    ...c,
    requests: c.requests.map((x, i) => (i === r ? f(x) : x)),
  });
  switch (offence) {
    case 'missing attribute':
      return withEntity((x) => ({
        ...x,
        attrs: Object.fromEntries(Object.entries(x.attrs).slice(1)),
      }));
    case 'undeclared attribute':
      return withEntity((x) => ({ ...x, attrs: { ...x.attrs, undeclared: 1 } }));
    case 'attribute of another type':
      return withEntity((x) => ({ ...x, attrs: { ...x.attrs, name: 7 } }));
    case 'parent of a type the schema does not allow':
      return withEntity((x) => ({ ...x, parents: [...x.parents, { type: 'Secret', id: '' }] }));
    case 'entity of an undeclared type':
      return {
        ...c,
        entities: [...c.entities, { uid: { type: 'Stranger', id: 'x' }, attrs: {}, parents: [] }],
      };
    case 'action entity with other parents':
      return {
        ...c,
        entities: [
          ...c.entities.filter((x) => !(x.uid.type === 'Action' && x.uid.id === 'relay')),
          {
            uid: { type: 'Action', id: 'relay' },
            attrs: {},
            parents: [{ type: 'Action', id: ACTION_GROUP }],
          },
        ],
      };
    case 'context without an attribute':
      return withRequest((x) => ({
        ...x,
        context: Object.fromEntries(Object.entries(x.context).slice(1)),
      }));
    case 'context with an undeclared attribute':
      return withRequest((x) => ({ ...x, context: { ...x.context, undeclared: true } }));
    case 'context attribute of another type':
      return withRequest((x) => ({ ...x, context: { ...x.context, count: 'many' } }));
    case 'principal of a type the action does not apply to':
      return withRequest((x) => ({ ...x, principal: { type: 'Group', id: 'g0' } }));
  }
}

/** The policy set text of a case (ids `policy0`, `policy1`, … in order, as cedar-wasm assigns them). */
export function policySetText(policies: readonly string[]): string {
  return policies.join('\n');
}
