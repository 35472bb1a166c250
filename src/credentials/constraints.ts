import { invalid, isUnixSeconds } from '../core/internal.js';
import { isMandateError, type ErrorCode, type MandateError } from '../core/index.js';

/**
 * Constraints: what a mandate credential or a delegation link allows, one constraint per
 * attribute name. Pure, synchronous, no I/O.
 *
 * Enforcement model (research/standards.md §2.1): an authorization decision evaluates the
 * CONJUNCTION of every link's constraints against the concrete request (`checkRequest`); the
 * subset rule (`checkNarrower`) only rejects bad delegations early and shows effective authority.
 * A name a child omits is inherited from its parent (never "unrestricted"), because the parent's
 * constraint is still evaluated.
 *
 * Text forms (the CLI grammar is `name` + value part; the value part's UTF-8 bytes are the
 * attribute value on the wire):
 *
 * | kind                  | value part                                          | request accepted when                                                         | child C may narrow parent P when                                                                    |
 * | --------------------- | --------------------------------------------------- | ----------------------------------------------------------------------------- | --------------------------------------------------------------------------------------------------- |
 * | `set`                 | `=a` (equality), `=a,b,c` (sorted, unique), `=*`    | the value is one of the values; `=*` accepts any value that is present        | P is `*`; or C is not `*` and every value of C is in P                                              |
 * | `max`                 | `<=N`                                               | the value is a strict integer and ≤ N                                         | C.limit ≤ P.limit                                                                                   |
 * | `min`                 | `>=N`                                               | the value is a strict integer and ≥ N                                         | C.limit ≥ P.limit                                                                                   |
 * | `path`                | `=/a/b` (exact), `=/a/b/**` (subtree), `=/`, `=/**` | the value is a valid path; exact: identical; subtree: at or below, by segment | P exact: C is the identical exact path; P subtree: C's segments begin with P's (C exact or subtree) |
 * | `window`              | `=@NOT_BEFORE..NOT_AFTER` (unix seconds)            | NOT_BEFORE ≤ `request.nowSeconds` < NOT_AFTER, whatever the name              | C.notBefore ≥ P.notBefore and C.notAfter ≤ P.notAfter                                               |
 * | different kinds       |                                                     |                                                                               | never (amplification)                                                                               |
 * | name only in P        |                                                     | P's constraint still applies (conjunction)                                    | always: C inherits it                                                                               |
 * | name only in C        |                                                     | C's constraint applies                                                        | always: C may add names                                                                             |
 * | malformed either side |                                                     | denied                                                                        | never                                                                                               |
 *
 * Deny by default: absent `tools` grants no tool. So a chain allows an action only when some level
 * carries `tools` and every level that carries it accepts the action (delegation.ts `authorize`),
 * and a child may not add `tools` below a parent that has none (that would grant from nothing).
 *
 * Which value a constraint reads (names are exact strings; see the lexical rules):
 * - `tools` reads `request.action`;
 * - a scoped name `TOOL#ARG` applies only to calls whose action is exactly TOOL, and there reads
 *   argument ARG (or, for a window, `request.nowSeconds`); calls of other tools it leaves alone;
 * - an infrastructure name (`INFRASTRUCTURE_ATTRIBUTES`: `relay`, Ockam's `ockam-relay`,
 *   `ockam-role`, `project_id`, `trust_context_id`) is a capability of the network (a relay
 *   registration, an enroller role), never a constraint on tool calls: it is not evaluated here,
 *   so an argument can neither satisfy nor fail it;
 * - a label (a name starting with `label.`, e.g. `label.environments=dev,staging`) is a fact
 *   about the subject that policies read (the gates show it to Cedar as `principal.labels`), never
 *   a constraint on tool calls: like an infrastructure name it is not evaluated here, and a link
 *   may narrow but never add one;
 * - a `window` reads `request.nowSeconds`, which must be unix seconds (a safe non-negative
 *   integer; anything else is denied);
 * - any other name — dots included: `orders.refund.amount` is one argument name, not a scope —
 *   reads `request.args.get(name)` on every call.
 * A missing argument is denied (fail closed).
 *
 * A scoped constraint must name a tool that the `tools` constraint in force at its level (the
 * level's own, else the nearest above; `tools=*` grants any) accepts: `assertScopedToolsGranted`,
 * run when a credential, ticket or link is issued and when a chain is verified
 * (`ERR_CONSTRAINT_TOOL_NOT_GRANTED`). A constraint on a tool nobody may call is a mistake (a
 * misspelled tool), not a restriction.
 *
 * Lexical rules (all ASCII; anything else is `ERR_CONSTRAINT_SYNTAX`):
 * - names: an argument name, 1–64 of `a-z 0-9 _ . -` (lowercase only), or a scoped name
 *   `TOOL#ARG`: a tool name, one `#`, an argument name. `#` appears in neither part, so the split
 *   is unambiguous;
 * - tool names (in `tools` and before `#`): 1–128 of `A-Z a-z 0-9 _ . : @ / -`, case-sensitive,
 *   not starting with `@` or `/` (so an MCP name such as `github/create_issue` or `db:query` is a
 *   tool name, while a value starting with `/` is a path). A tool name never holds `#`, `,`, `*`,
 *   `=`, `<`, `>`, `!`, `~` or whitespace;
 * - set values: exactly the tool names, or exactly `*` alone; at most 256 values;
 * - integers: optional `-`, digits, no leading zeros, not `-0`, within ±(2^53−1) — no `+`, spaces,
 *   exponents, hex or fractions; the same rule applies to request values checked by `max`/`min`;
 * - paths: `/` then segments of 1–128 of `A-Z a-z 0-9 _ . : @ -`, never only dots (`.`, `..`),
 *   no empty segments, no trailing `/`, no `%` (no percent-encoding), `**` only as the final
 *   segment of a constraint (subtree); at most 2048 characters; compared case-sensitively;
 * - windows: NOT_BEFORE < NOT_AFTER, both non-negative integers; the CLI also accepts
 *   `YYYY-MM-DDTHH:MM:SSZ` (UTC), stored as unix seconds.
 *
 * Wire decoding is canonical-only (a set must be sorted and unique, times are unix seconds), so
 * `encodeConstraintValue(decodeConstraintValue(b))` gives back `b` for every `=`/`<=`/`>=` value.
 * It also maps plain Ockam attribute values (no operator: `enroller`, `*`, a UUID) to a
 * one-element set (or any). A value that starts with an operator this code does not know (`~x`,
 * `!=x`, `<x`, `=~x`) is `ERR_CONSTRAINT_UNKNOWN_KIND`: fail closed, never "ignore the constraint".
 */

export type Constraint =
  | { readonly kind: 'set'; readonly values: readonly string[] }
  | { readonly kind: 'max'; readonly limit: number }
  | { readonly kind: 'min'; readonly limit: number }
  | { readonly kind: 'path'; readonly segments: readonly string[]; readonly subtree: boolean }
  | { readonly kind: 'window'; readonly notBefore: number; readonly notAfter: number };
/**
 * The constraints of one credential or link, by attribute name.
 */
export type Constraints = ReadonlyMap<string, Constraint>;
/**
 * What {@link authorize} decides on: an action (a tool name, checked against `tools`), its
 * arguments by name, and the time.
 */
export interface AuthorizationRequest {
  readonly action: string;
  readonly args: ReadonlyMap<string, string>;
  readonly nowSeconds: number;
}
export type ConstraintCheck =
  { readonly ok: true } | { readonly ok: false; readonly reason: string };
/** A check over a map of constraints: the first failing name and why. */
export type NamedCheck =
  { readonly ok: true } | { readonly ok: false; readonly name: string; readonly reason: string };

const SYNTAX: ErrorCode = 'ERR_CONSTRAINT_SYNTAX';
const UNKNOWN_KIND: ErrorCode = 'ERR_CONSTRAINT_UNKNOWN_KIND';

const MAX_SET_VALUES = 256;
const MAX_PATH_CHARS = 2048;
const MAX_VALUE_BYTES = 64 * 1024;
/** The name whose constraint reads `request.action` instead of an argument: the grant of tools. */
export const TOOLS_ATTRIBUTE = 'tools';
const ACTION_NAME = TOOLS_ATTRIBUTE;
/** Which names a relay registration reads (channel/relay.ts). */
export const RELAY_ATTRIBUTE = 'relay';
/**
 * What the broker may lease to the chain's actor (gates/lease-decision.ts): a set of
 * `KIND/RESOURCE` names (`jwt/payments-api`, `postgres/readonly`, `proxy/stripe`) or `*`.
 */
export const SECRETS_ATTRIBUTE = 'secrets';
/** The scopes a leased JWT may carry (gates/lease-decision.ts): a set of scope names or `*`. */
export const SECRET_SCOPES_ATTRIBUTE = 'secret_scopes';
/** The attribute by which an authority marks a member as a person: only its credential writes it. */
export const HUMAN_ATTRIBUTE = 'human';
/**
 * Attribute names that are capabilities of the infrastructure, never constraints on a tool call:
 * Mandate's relay registration, and the names Ockam's authority writes (research/ockam.md §3).
 * checkRequest does not evaluate them, so `relay=bob` neither needs nor is satisfied by an
 * argument `relay`. One list, here; the code that reads them (relays, enrollers) looks them up by
 * name.
 */
export const INFRASTRUCTURE_ATTRIBUTES: readonly string[] = Object.freeze([
  RELAY_ATTRIBUTE,
  // `human=true`: the authority marks a member as a person (gates: a `Human` delegator, an
  // approver); a fact about the subject, not a constraint on its calls.
  HUMAN_ATTRIBUTE,
  // Gate 3: what the broker may lease (docs/spec/broker.md §2), read by the lease decision only.
  SECRETS_ATTRIBUTE,
  SECRET_SCOPES_ATTRIBUTE,
  'ockam-relay',
  'ockam-role',
  'project_id',
  'trust_context_id',
]);
const infrastructure: ReadonlySet<string> = new Set(INFRASTRUCTURE_ATTRIBUTES);
/** Names under this prefix are labels: facts policies read, never constraints on calls. */
export const LABEL_PREFIX = 'label.';
/** An infrastructure capability or a label: not evaluated against calls, never added by a link. */
function notACallConstraint(name: string): boolean {
  return infrastructure.has(name) || name.startsWith(LABEL_PREFIX);
}
/** Separates the tool from the argument in a scoped name; in neither a tool nor an argument name. */
const SCOPE = '#';

const ARGUMENT_NAME_RE = /^[a-z0-9_.-]{1,64}$/;
/** A tool name, and so a set value (`tools=…`); a first `/` would make it a path, `@` a window. */
const SET_VALUE_RE = /^[A-Za-z0-9_.:-][A-Za-z0-9_.:@/-]{0,127}$/;
const SEGMENT_RE = /^(?!\.+$)[A-Za-z0-9_.:@-]{1,128}$/;
const UNSIGNED_RE = /^(?:0|[1-9][0-9]*)$/;
// Segments are separated by `/`, which no segment contains, so this cannot backtrack badly.
const PATH_RE = /^(?:\/|(?:\/(?!\.+(?:\/|$))[A-Za-z0-9_.:@-]{1,128})+)$/;
const ISO_RE = /^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})Z$/;
/** First characters that mark an operator (or a form) rather than a plain Ockam value. */
const OPERATOR_START_RE = /^[!"#$%&'()*+,/;<=>?@[\\\]^`{|}~]/;

const GRAMMAR =
  'write `name=value`, `name=a,b,c`, `name=*`, `name<=N`, `name>=N`, `name=/path` or `name=/path/**`, or `name=@START..END`';

const OK = Object.freeze({ ok: true } as const);
const deny = (reason: string): ConstraintCheck => ({ ok: false, reason });
const syntax = (message: string): MandateError => invalid(SYNTAX, message);

/** A user value shown in a message: bounded, printable ASCII, no backticks. */
function show(text: string): string {
  const clipped = text.length > 64 ? `${text.slice(0, 64)}…` : text;
  return clipped.replace(/[^\x20-\x5f\x61-\x7e…]/g, '?');
}

// ---------------------------------------------------------------------------------------------
// Compiled form: validated once, cached per (deeply frozen) constraint object, read on every call.

type Compiled =
  | {
      readonly kind: 'set';
      readonly any: boolean;
      readonly members: ReadonlySet<string>;
      readonly sorted: readonly string[];
    }
  | { readonly kind: 'max' | 'min'; readonly limit: number }
  | {
      readonly kind: 'path';
      readonly subtree: boolean;
      readonly segments: readonly string[];
      /** `/a/b`, or `/` for the root. */
      readonly exact: string;
      /** `exact` + `/` (just `/` for the root): a subtree admits `exact` and what starts with this. */
      readonly below: string;
    }
  | { readonly kind: 'window'; readonly notBefore: number; readonly notAfter: number }
  | { readonly kind: 'malformed'; readonly reason: string };

/**
 * Constraints from this module are deeply frozen, so their compiled form is cached and a check
 * allocates nothing. A caller's own object literal is compiled (and validated) on every call —
 * still correct, just slower — unless the caller freezes it and its array.
 */
const compiledCache = new WeakMap<object, Compiled>();

function compiledOf(constraint: Constraint): Compiled {
  const cached = compiledCache.get(constraint);
  if (cached !== undefined) return cached;
  const compiled = compile(constraint);
  if (isDeeplyFrozen(constraint)) compiledCache.set(constraint, compiled);
  return compiled;
}

function isDeeplyFrozen(constraint: Constraint): boolean {
  if (typeof constraint !== 'object' || constraint === null || !Object.isFrozen(constraint))
    return false;
  if (constraint.kind === 'set') return Object.isFrozen(constraint.values);
  if (constraint.kind === 'path') return Object.isFrozen(constraint.segments);
  return true;
}

/** Validates a constraint from anywhere (it may be a caller's literal or a cast) without throwing. */
function compile(constraint: Constraint): Compiled {
  const malformed = (reason: string): Compiled => ({ kind: 'malformed', reason });
  if (typeof constraint !== 'object' || constraint === null) return malformed('not an object');
  // Read through `unknown`: a caller may have cast anything to Constraint.
  const kind: unknown = constraint.kind;
  switch (kind) {
    case 'set': {
      const values: unknown = (constraint as { values?: unknown }).values;
      if (!Array.isArray(values) || values.length === 0 || values.length > MAX_SET_VALUES)
        return malformed(`a set holds 1 to ${MAX_SET_VALUES} values`);
      const members = new Set<string>();
      for (const value of values as unknown[]) {
        if (typeof value !== 'string') return malformed('a set value is not a string');
        if (value === '*') {
          if (values.length !== 1) return malformed('`*` must stand alone in a set');
        } else if (!SET_VALUE_RE.test(value))
          return malformed(`set value \`${show(value)}\` is invalid`);
        members.add(value);
      }
      const any = members.has('*');
      return { kind: 'set', any, members, sorted: [...members].sort(compareAscii) };
    }
    case 'max':
    case 'min': {
      const limit: unknown = (constraint as { limit?: unknown }).limit;
      if (typeof limit !== 'number' || !Number.isSafeInteger(limit))
        return malformed('a limit must be a safe integer');
      return { kind, limit };
    }
    case 'path': {
      const segments: unknown = (constraint as { segments?: unknown }).segments;
      const subtree: unknown = (constraint as { subtree?: unknown }).subtree;
      if (!Array.isArray(segments) || typeof subtree !== 'boolean') return malformed('not a path');
      const checked: string[] = [];
      for (const segment of segments as unknown[]) {
        if (typeof segment !== 'string' || !SEGMENT_RE.test(segment))
          return malformed(`path segment \`${show(String(segment))}\` is invalid`);
        checked.push(segment);
      }
      const exact = `/${checked.join('/')}`;
      if (exact.length > MAX_PATH_CHARS)
        return malformed(`a path is at most ${MAX_PATH_CHARS} characters`);
      return {
        kind: 'path',
        subtree,
        segments: checked,
        exact,
        below: checked.length === 0 ? '/' : `${exact}/`,
      };
    }
    case 'window': {
      const notBefore: unknown = (constraint as { notBefore?: unknown }).notBefore;
      const notAfter: unknown = (constraint as { notAfter?: unknown }).notAfter;
      if (
        typeof notBefore !== 'number' ||
        typeof notAfter !== 'number' ||
        !Number.isSafeInteger(notBefore) ||
        !Number.isSafeInteger(notAfter) ||
        notBefore < 0
      )
        return malformed('window bounds must be non-negative safe integers');
      if (notBefore >= notAfter) return malformed('a window must end after it starts');
      return { kind: 'window', notBefore, notAfter };
    }
    default:
      return malformed(`unknown constraint kind \`${show(String(kind))}\``);
  }
}

function compareAscii(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function valueTextOf(compiled: Exclude<Compiled, { kind: 'malformed' }>): string {
  switch (compiled.kind) {
    case 'set':
      return `=${compiled.sorted.join(',')}`;
    case 'max':
      return `<=${compiled.limit}`;
    case 'min':
      return `>=${compiled.limit}`;
    case 'path':
      return compiled.subtree
        ? `=${compiled.segments.length === 0 ? '' : compiled.exact}/**`
        : `=${compiled.exact}`;
    case 'window':
      return `=@${compiled.notBefore}..${compiled.notAfter}`;
  }
}

/** Canonical value text for messages; never throws. */
function describe(compiled: Compiled): string {
  return compiled.kind === 'malformed' ? 'a malformed constraint' : show(valueTextOf(compiled));
}

// ---------------------------------------------------------------------------------------------
// Constructors: every constraint this module returns is deeply frozen (and so cached).

function makeSet(values: readonly string[]): Constraint {
  return Object.freeze({ kind: 'set', values: Object.freeze([...values]) });
}
function makePath(segments: readonly string[], subtree: boolean): Constraint {
  return Object.freeze({ kind: 'path', segments: Object.freeze([...segments]), subtree });
}

// ---------------------------------------------------------------------------------------------
// Parsing. `cli` mode is the CLI grammar (lenient on set order and duplicates, ISO times);
// `wire` mode is attribute bytes (canonical only, plain Ockam values, unknown operators typed).

type Mode = 'cli' | 'wire';

function checkName(name: string): void {
  const scope = name.indexOf(SCOPE);
  const argument = scope < 0 ? name : name.slice(scope + 1);
  if (scope >= 0 && !SET_VALUE_RE.test(name.slice(0, scope)))
    throw syntax(
      `the tool in constraint name \`${show(name)}\` must be 1 to 128 of \`A-Z a-z 0-9 _ . : @ / -\`, not starting with \`@\` or \`/\``,
    );
  if (!ARGUMENT_NAME_RE.test(argument))
    throw syntax(
      argument.length > 0 && ARGUMENT_NAME_RE.test(argument.toLowerCase())
        ? `constraint name \`${show(name)}\` must be lowercase`
        : `constraint name \`${show(name)}\` must be 1 to 64 of \`a-z 0-9 _ . -\`, or \`TOOL#ARGUMENT\``,
    );
}

/**
 * A strict integer: optional `-`, digits, no leading zeros, not `-0`, within ±(2^53−1); else
 * `undefined`. Hand-written rather than a regex plus `Number()`, which accepts spaces, `+`, `0x`,
 * exponents and fractions, because it runs on every max/min check.
 */
function strictInteger(text: string): number | undefined {
  const negative = text.charCodeAt(0) === 0x2d;
  const start = negative ? 1 : 0;
  const digits = text.length - start;
  // 16 digits hold every safe integer; the first digit may be 0 only in `0` itself.
  if (digits < 1 || digits > 16) return undefined;
  let value = 0;
  for (let i = start; i < text.length; i++) {
    const digit = text.charCodeAt(i) - 0x30;
    if (digit < 0 || digit > 9 || (digit === 0 && i === start && digits > 1)) return undefined;
    // Exact while below 2^53; a larger true value rounds to 2^53 or more, refused below.
    value = value * 10 + digit;
  }
  if (!Number.isSafeInteger(value) || (negative && value === 0)) return undefined;
  return negative ? -value : value;
}

function parseInteger(text: string, what: string): number {
  const value = strictInteger(text);
  if (value !== undefined) return value;
  if (/^-?[1-9][0-9]*$/.test(text))
    throw syntax(`${what} \`${show(text)}\` is outside the safe integer range`);
  throw syntax(
    `${what} \`${show(text)}\` is not an integer (digits with an optional leading \`-\`, no leading zeros)`,
  );
}

function parseTime(text: string, mode: Mode): number {
  if (UNSIGNED_RE.test(text)) return parseInteger(text, 'window bound');
  const iso = mode === 'cli' ? ISO_RE.exec(text) : null;
  if (iso === null)
    throw syntax(
      mode === 'cli'
        ? `window bound \`${show(text)}\` is neither unix seconds nor \`YYYY-MM-DDTHH:MM:SSZ\``
        : `window bound \`${show(text)}\` is not unix seconds`,
    );
  const field = (index: number): number => Number(iso[index]);
  const [y, mo, d, h, mi, s] = [field(1), field(2), field(3), field(4), field(5), field(6)];
  const ms = Date.UTC(y, mo - 1, d, h, mi, s);
  const back = new Date(ms);
  if (
    Number.isNaN(ms) ||
    back.getUTCFullYear() !== y ||
    back.getUTCMonth() !== mo - 1 ||
    back.getUTCDate() !== d ||
    back.getUTCHours() !== h ||
    back.getUTCMinutes() !== mi ||
    back.getUTCSeconds() !== s
  )
    throw syntax(`window bound \`${show(text)}\` is not a valid UTC time`);
  if (ms < 0) throw syntax(`window bound \`${show(text)}\` is before 1970`);
  return ms / 1000;
}

function parseWindow(text: string, mode: Mode): Constraint {
  const dots = text.indexOf('..');
  if (dots < 0) throw syntax(`window \`@${show(text)}\` must be \`@START..END\``);
  const notBefore = parseTime(text.slice(0, dots), mode);
  const notAfter = parseTime(text.slice(dots + 2), mode);
  if (notBefore >= notAfter)
    throw syntax(`window \`@${show(text)}\` is empty: it must end after it starts`);
  return Object.freeze({ kind: 'window', notBefore, notAfter });
}

/** Is `text` a valid exact path (see the lexical rules at the top)? */
function isValidPath(text: string): boolean {
  return text.length <= MAX_PATH_CHARS && PATH_RE.test(text);
}

/** Why `text` is not a valid path, in words; `undefined` when it is valid. */
function pathProblem(text: string): string | undefined {
  if (text.length > MAX_PATH_CHARS) return `is longer than ${MAX_PATH_CHARS} characters`;
  if (isValidPath(text)) return undefined;
  if (!text.startsWith('/')) return 'must start with `/`';
  if (text.endsWith('/')) return 'must not end with `/`';
  if (text.includes('%')) return 'must not use percent-encoding';
  if (text.includes('*')) return 'may use `**` only as its last segment, for a subtree';
  for (const segment of text.slice(1).split('/')) {
    if (segment === '') return 'must not have empty segments';
    if (/^\.+$/.test(segment)) return 'must not have `.` or `..` segments';
    if (segment.length > 128) return 'has a segment longer than 128 characters';
  }
  return 'may hold only `A-Z a-z 0-9 _ . : @ -` in its segments';
}

function parsePath(text: string): Constraint {
  if (text === '/**') return makePath([], true);
  const subtree = text.endsWith('/**');
  const base = subtree ? text.slice(0, -3) : text;
  const problem =
    base === '/' && subtree ? 'must be written `/**` for everything' : pathProblem(base);
  if (problem !== undefined) throw syntax(`path \`${show(text)}\` ${problem}`);
  return makePath(base === '/' ? [] : base.slice(1).split('/'), subtree);
}

function parseSet(text: string, mode: Mode): Constraint {
  if (text === '*') return makeSet(['*']);
  const values = text.split(',');
  if (values.length > MAX_SET_VALUES) throw syntax(`a set holds at most ${MAX_SET_VALUES} values`);
  for (const value of values) {
    if (value === '') throw syntax(`set \`${show(text)}\` has an empty value`);
    if (value === '*') throw syntax(`set \`${show(text)}\`: \`*\` must stand alone`);
    if (!SET_VALUE_RE.test(value))
      throw syntax(
        `set value \`${show(value)}\` must be 1 to 128 of \`A-Z a-z 0-9 _ . : @ / -\`, not starting with \`@\``,
      );
  }
  if (mode === 'cli') return makeSet([...new Set(values)].sort(compareAscii));
  for (let i = 1; i < values.length; i++)
    if (compareAscii(values[i - 1]!, values[i]!) >= 0)
      throw syntax(`set \`${show(text)}\` is not sorted and unique (canonical form)`);
  return makeSet(values);
}

/** After `=`: `*`, a set, a path or a window. */
function parseEqualsValue(text: string, mode: Mode): Constraint {
  if (text === '') throw syntax(`the value after \`=\` is empty; ${GRAMMAR}`);
  if (text.startsWith('/')) return parsePath(text);
  if (text.startsWith('@')) return parseWindow(text.slice(1), mode);
  if (text.startsWith('*') || !OPERATOR_START_RE.test(text)) return parseSet(text, mode);
  if (mode === 'wire')
    throw invalid(UNKNOWN_KIND, `unknown constraint operator in \`=${show(text)}\``);
  throw syntax(`\`=${show(text)}\` is not a known constraint form; ${GRAMMAR}`);
}

function parseValueText(text: string, mode: Mode): Constraint {
  if (text.startsWith('<='))
    return Object.freeze({ kind: 'max', limit: parseInteger(text.slice(2), 'limit') });
  if (text.startsWith('>='))
    return Object.freeze({ kind: 'min', limit: parseInteger(text.slice(2), 'limit') });
  if (text.startsWith('=')) return parseEqualsValue(text.slice(1), mode);
  if (mode === 'cli') throw syntax(`unknown operator in \`${show(text)}\`; ${GRAMMAR}`);
  // A plain Ockam attribute value.
  if (text === '') throw syntax('a constraint value is empty');
  if (text === '*') return makeSet(['*']);
  if (SET_VALUE_RE.test(text)) return makeSet([text]);
  if (OPERATOR_START_RE.test(text))
    throw invalid(UNKNOWN_KIND, `unknown constraint operator in \`${show(text)}\``);
  throw syntax(`attribute value \`${show(text)}\` is neither a constraint nor a plain value`);
}

/**
 * Parses the CLI grammar: `k=v` (equality), `k=a,b,c` (set; any order, duplicates dropped),
 * `k=*`, `k<=N`, `k>=N`, `k=/a/b` or `k=/a/b/**` (path), `k=@START..END` (window; unix seconds or
 * `YYYY-MM-DDTHH:MM:SSZ`). Throws ERR_CONSTRAINT_SYNTAX with the grammar in the message otherwise.
 */
export function parseConstraint(text: string): readonly [string, Constraint] {
  if (typeof text !== 'string') throw syntax('a constraint must be text');
  if (text.length > MAX_VALUE_BYTES)
    throw syntax(`a constraint is at most ${MAX_VALUE_BYTES} characters`);
  const at = text.search(/[=<>!~]/);
  if (at < 0) throw syntax(`constraint \`${show(text)}\` has no operator; ${GRAMMAR}`);
  const name = text.slice(0, at);
  checkName(name);
  return Object.freeze([name, parseValueText(text.slice(at), 'cli')] as const);
}

const utf8Encoder = new TextEncoder();
const asciiDecoder = new TextDecoder('utf-8', { fatal: true });

/** Canonical value text (`=a,b`, `<=100`, `=/orders/**`, `=@1..2`) as UTF-8 bytes; ERR_CONSTRAINT_SYNTAX if the constraint is malformed. */
export function encodeConstraintValue(constraint: Constraint): Uint8Array {
  return utf8Encoder.encode(canonicalValueText(constraint));
}

function canonicalValueText(constraint: Constraint): string {
  const compiled = compiledOf(constraint);
  if (compiled.kind === 'malformed') throw syntax(`cannot encode a constraint: ${compiled.reason}`);
  return valueTextOf(compiled);
}

/**
 * Inverse of encodeConstraintValue (canonical forms only), and maps a plain Ockam attribute value
 * (`enroller`, `*`, a UUID: no operator) to a one-element set or to any. A value that starts with
 * an unknown operator → ERR_CONSTRAINT_UNKNOWN_KIND; anything else malformed (non-ASCII, empty,
 * non-canonical, over 64 KiB) → ERR_CONSTRAINT_SYNTAX. Throws nothing but MandateError.
 */
export function decodeConstraintValue(bytes: Uint8Array): Constraint {
  if (!(bytes instanceof Uint8Array)) throw syntax('a constraint value must be bytes');
  if (bytes.length > MAX_VALUE_BYTES)
    throw syntax(`a constraint value is at most ${MAX_VALUE_BYTES} bytes`);
  for (const byte of bytes)
    if (byte < 0x21 || byte > 0x7e)
      throw syntax('a constraint value may hold only printable ASCII without spaces');
  return parseValueText(asciiDecoder.decode(bytes), 'wire');
}

/** Back to the CLI grammar (canonical): `parseConstraint(formatConstraint(n, c))` equals `[n, c]` for canonical `c`. */
export function formatConstraint(name: string, constraint: Constraint): string {
  checkName(name);
  return `${name}${canonicalValueText(constraint)}`;
}

// ---------------------------------------------------------------------------------------------
// Subset rule

/**
 * May a child declare `child` where its parent declares `parent` for the same name? A reason
 * when not (amplification). The rule per kind (see the table at the top):
 * - set: C ⊆ P element-wise; `*` in C only if P is `*`; P `*` admits any set;
 * - max: C.limit ≤ P.limit; min: C.limit ≥ P.limit;
 * - path: P exact admits only the identical exact path; P subtree admits any path (exact or
 *   subtree) whose segments start with P's segments — by segment, so `/orders/**` does not cover
 *   `/ordersX`;
 * - window: C.notBefore ≥ P.notBefore and C.notAfter ≤ P.notAfter;
 * - different kinds: never; a malformed constraint on either side: never.
 * Sound: whatever request value C accepts, P accepts (a property test checks it).
 */
export function checkNarrower(child: Constraint, parent: Constraint): ConstraintCheck {
  const c = compiledOf(child);
  const p = compiledOf(parent);
  if (c.kind === 'malformed') return deny(`the child constraint is malformed: ${c.reason}`);
  if (p.kind === 'malformed') return deny(`the parent constraint is malformed: ${p.reason}`);
  const wider = (): ConstraintCheck => deny(`\`${describe(c)}\` is wider than \`${describe(p)}\``);
  if (c.kind === 'set' && p.kind === 'set') {
    if (p.any) return OK;
    if (c.any) return wider();
    for (const value of c.sorted)
      if (!p.members.has(value)) return deny(`\`${show(value)}\` is not in \`${describe(p)}\``);
    return OK;
  }
  if (c.kind === 'max' && p.kind === 'max') return c.limit <= p.limit ? OK : wider();
  if (c.kind === 'min' && p.kind === 'min') return c.limit >= p.limit ? OK : wider();
  if (c.kind === 'path' && p.kind === 'path') {
    if (!p.subtree) return !c.subtree && c.exact === p.exact ? OK : wider();
    const below =
      c.segments.length >= p.segments.length && p.segments.every((s, i) => c.segments[i] === s);
    return below ? OK : deny(`\`${describe(c)}\` is not at or below \`${describe(p)}\``);
  }
  if (c.kind === 'window' && p.kind === 'window') {
    if (c.notBefore < p.notBefore)
      return deny(`\`${describe(c)}\` starts before \`${describe(p)}\``);
    if (c.notAfter > p.notAfter) return deny(`\`${describe(c)}\` ends after \`${describe(p)}\``);
    return OK;
  }
  return deny(
    `a \`${c.kind}\` constraint cannot narrow a \`${p.kind}\` constraint \`${describe(p)}\``,
  );
}

/**
 * Whole-map subset rule: every parent name that the child carries must be equal or narrower;
 * a name the child omits is inherited (allowed: evaluation is a conjunction over all links); a
 * child may add names — except `tools`: a parent without `tools` grants no tool (deny by
 * default), so a child adding `tools` would grant from nothing; and except an infrastructure
 * attribute (`relay`, …), a capability that only narrows where the parent holds it. Returns the first failing name,
 * `tools` first, then in the parent's order.
 */
export function checkConstraintsNarrower(child: Constraints, parent: Constraints): NamedCheck {
  if (child.has(ACTION_NAME) && !parent.has(ACTION_NAME))
    return {
      ok: false,
      name: ACTION_NAME,
      reason: 'nothing above grants any tool, so no `tools` can narrow it',
    };
  // An infrastructure attribute is a capability, not a restriction (no call reads it): a child
  // adding one would grant what nothing above holds (`relay=*` under a chain without `relay`).
  for (const name of child.keys()) {
    if (notACallConstraint(name) && !parent.has(name))
      return {
        ok: false,
        name,
        reason: `\`${show(name)}\` is a capability nothing above grants, so a link cannot add it`,
      };
  }
  for (const [name, parentConstraint] of parent) {
    const childConstraint = child.get(name);
    if (childConstraint === undefined) continue;
    const check = checkNarrower(childConstraint, parentConstraint);
    if (!check.ok) return { ok: false, name, reason: check.reason };
  }
  return OK;
}

// ---------------------------------------------------------------------------------------------
// Evaluation (runs on every tool call: no allocation on success for constraints from this module)

/**
 * Which requests {@link checkRequest} must look at for this constraint, decided once per
 * constraint so that a caller may skip the rest (authorize's per-chain plan): `null` when it
 * passes every request (a valid infrastructure or label constraint), the tool's name when it is
 * a valid `TOOL#ARG` constraint (it passes every call of another tool), `undefined` when every
 * request must be checked. Only a deeply frozen constraint (from this module) is ever skipped: a
 * caller's mutable object could change between the plan and the call.
 */
export function requestScope(name: string, constraint: Constraint): string | null | undefined {
  if (!isDeeplyFrozen(constraint) || compiledOf(constraint).kind === 'malformed') return undefined;
  const scope = name.indexOf(SCOPE);
  if (scope >= 0) return name.slice(0, scope);
  return notACallConstraint(name) ? null : undefined;
}

/**
 * Does the request satisfy this one constraint? `tools` reads `request.action`; `TOOL#ARG`
 * applies only to calls of TOOL and reads ARG; an infrastructure name is not evaluated; a window
 * reads `request.nowSeconds` (denied unless unix seconds); any other name reads
 * `request.args.get(name)`; a missing argument is denied. max/min accept only strict integers
 * (`-?(0|[1-9][0-9]*)`, safe, not `-0`); a path value must itself be a valid exact path.
 */
export function checkRequest(
  name: string,
  constraint: Constraint,
  request: AuthorizationRequest,
): ConstraintCheck {
  const compiled = compiledOf(constraint);
  if (compiled.kind === 'malformed')
    return deny(`constraint \`${show(name)}\` is malformed: ${compiled.reason}`);
  // `TOOL#ARG` scopes a constraint to one tool: it applies only to calls of exactly that tool
  // (`issue_refund#amount<=100` leaves `read_orders` alone). Unscoped names apply to every call.
  let argument = name;
  const scope = name.indexOf(SCOPE);
  if (scope >= 0) {
    if (request.action !== name.slice(0, scope)) return OK;
    argument = name.slice(scope + 1);
  } else if (notACallConstraint(name)) {
    return OK;
  }
  if (compiled.kind === 'window') {
    const now = request.nowSeconds;
    if (isUnixSeconds(now) && compiled.notBefore <= now && now < compiled.notAfter) return OK;
    return deny(
      !isUnixSeconds(now)
        ? `\`${show(name)}\`: the time \`${show(String(now))}\` is not unix seconds`
        : now < compiled.notBefore
          ? `\`${show(name)}\` is not valid before ${compiled.notBefore} (now ${now})`
          : `\`${show(name)}\` is not valid from ${compiled.notAfter} (now ${now})`,
    );
  }
  const value = name === ACTION_NAME ? request.action : request.args.get(argument);
  if (typeof value !== 'string')
    return deny(
      name === ACTION_NAME
        ? 'the request has no action'
        : `argument \`${show(argument)}\` is missing`,
    );
  // An action outside the tool-name grammar names no tool a grant could mean: `tools=*` must not
  // admit `orders.refund ` (or a zero-width space, an empty name, `a#b`) and thereby skip every
  // `orders.refund#…` constraint for a gate that trims or normalises names before dispatching.
  // A set of named tools admits only its members, which the set grammar already keeps to tool
  // names: the pattern runs only where something wider (`*`, another kind) reads the action.
  if (
    name === ACTION_NAME &&
    (compiled.kind !== 'set' || compiled.any) &&
    !SET_VALUE_RE.test(value)
  )
    return deny(`the action \`${show(value)}\` is not a tool name`);
  switch (compiled.kind) {
    case 'set':
      if (compiled.any || compiled.members.has(value)) return OK;
      return deny(
        `\`${show(name)}\` value \`${show(value)}\` is not one of \`${describe(compiled)}\``,
      );
    case 'max':
    case 'min': {
      const number = strictInteger(value);
      if (number === undefined)
        return deny(`\`${show(name)}\` value \`${show(value)}\` is not a safe integer`);
      if (compiled.kind === 'max' ? number <= compiled.limit : number >= compiled.limit) return OK;
      return deny(
        `\`${show(name)}\` value \`${show(value)}\` is outside \`${describe(compiled)}\``,
      );
    }
    case 'path': {
      if (!isValidPath(value))
        return deny(`\`${show(name)}\` value \`${show(value)}\` is not a valid path`);
      if (value === compiled.exact || (compiled.subtree && value.startsWith(compiled.below)))
        return OK;
      return deny(
        `\`${show(name)}\` value \`${show(value)}\` is outside \`${describe(compiled)}\``,
      );
    }
  }
}

const NO_ARGUMENTS: ReadonlyMap<string, string> = new Map();

/**
 * Every scoped constraint `TOOL#ARG` that `declared` (one level: a credential, a ticket, a link)
 * carries must name a tool that the `tools` constraint in force at that level grants: the
 * level's own `tools`, else `inherited` (the nearest above); none grants nothing, `tools=*` any.
 * Throws ERR_CONSTRAINT_TOOL_NOT_GRANTED naming the first that does not, prefixed by `where`.
 */
export function assertScopedToolsGranted(
  declared: Constraints,
  inherited: Constraint | undefined,
  where = '',
): void {
  const tools = declared.get(ACTION_NAME) ?? inherited;
  for (const name of declared.keys()) {
    const scope = name.indexOf(SCOPE);
    if (scope < 0) continue;
    const tool = name.slice(0, scope);
    const granted =
      tools !== undefined &&
      checkRequest(ACTION_NAME, tools, { action: tool, args: NO_ARGUMENTS, nowSeconds: 0 }).ok;
    if (!granted)
      throw invalid(
        'ERR_CONSTRAINT_TOOL_NOT_GRANTED',
        `${where}constraint \`${show(name)}\` is scoped to tool \`${show(tool)}\`, which no \`tools\` constraint grants`,
      );
  }
}

// ---------------------------------------------------------------------------------------------
// Attributes (Ockam credential attributes: UTF-8 name → value bytes)

/** Decodes every attribute into a constraint; throws ERR_CONSTRAINT_SYNTAX / ERR_CONSTRAINT_UNKNOWN_KIND naming the attribute. */
export function constraintsFromAttributes(
  attributes: ReadonlyMap<string, Uint8Array>,
): Constraints {
  const constraints = new Map<string, Constraint>();
  for (const [name, bytes] of attributes) {
    checkName(name);
    try {
      constraints.set(name, decodeConstraintValue(bytes));
    } catch (error) {
      if (!isMandateError(error)) throw error;
      throw invalid(error.code, `attribute \`${name}\`: ${error.message}`, error);
    }
  }
  return constraints;
}

/** Encodes every constraint as its canonical value bytes. */
export function constraintsToAttributes(constraints: Constraints): Map<string, Uint8Array> {
  const attributes = new Map<string, Uint8Array>();
  for (const [name, constraint] of constraints) {
    checkName(name);
    attributes.set(name, encodeConstraintValue(constraint));
  }
  return attributes;
}
