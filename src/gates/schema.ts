import { invalid } from '../core/internal.js';
import type { ToolDescriptor } from './tool-descriptor.js';

/** Options of {@link mandateCedarSchema}. */
export interface MandateSchemaOptions {
  /** The tool catalog whose arguments `context.args` declares. */
  readonly tools?: readonly ToolDescriptor[];
}

const MAX_SCHEMA_DEPTH = 8;
const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
const CEDAR_RESERVED = new Set([
  'true',
  'false',
  'if',
  'then',
  'else',
  'in',
  'is',
  'like',
  'has',
  'principal',
  'action',
  'resource',
  'context',
  'permit',
  'forbid',
  'when',
  'unless',
  '__cedar',
]);

/** An attribute name as Cedar schema text: bare when an identifier, else a quoted string. */
function attributeName(name: string): string {
  return IDENT.test(name) && !CEDAR_RESERVED.has(name) ? name : JSON.stringify(name);
}

/**
 * The Cedar type text of a JSON Schema, or `undefined` when it has no Cedar form (no `type`, a
 * union of types, `null`): such an argument is validated by the JSON Schema but not shown to
 * policies. The same rule drives the runtime conversion (request.ts `compileArgumentConverter`).
 */
export function cedarTypeOfJsonSchema(schema: unknown, depth = 0): string | undefined {
  if (depth > MAX_SCHEMA_DEPTH || typeof schema !== 'object' || schema === null) return undefined;
  const s = schema as Record<string, unknown>;
  switch (jsonSchemaType(s)) {
    case 'string':
      return 'String';
    case 'integer':
      return 'Long';
    case 'number':
      // Not shown to policies yet: the engine's decimal values are built by the policy layer,
      // which does not export a constructor to the gates (docs/spec/policy.md §4.3).
      return undefined;
    case 'boolean':
      return 'Bool';
    case 'array': {
      const item = cedarTypeOfJsonSchema(s['items'], depth + 1);
      return item === undefined ? undefined : `Set<${item}>`;
    }
    case 'object': {
      const fields = objectFields(s, depth);
      if (fields === undefined) return undefined;
      return `{${fields.map(([name, type, required]) => `${attributeName(name)}${required ? '' : '?'}: ${type}`).join(', ')}}`;
    }
    default:
      return undefined;
  }
}

/** The one JSON type a schema declares (`type`, else the type of every `enum`/`const` value). */
export function jsonSchemaType(s: Readonly<Record<string, unknown>>): string | undefined {
  const type = s['type'];
  if (typeof type === 'string') return type;
  if (Array.isArray(type) && type.length === 1 && typeof type[0] === 'string') return type[0];
  if (type !== undefined) return undefined;
  const values = Array.isArray(s['enum'])
    ? (s['enum'] as unknown[])
    : 'const' in s
      ? [s['const']]
      : [];
  if (values.length > 0 && values.every((v) => typeof v === 'string')) return 'string';
  if (values.length > 0 && values.every((v) => typeof v === 'boolean')) return 'boolean';
  if (values.length > 0 && values.every((v) => Number.isSafeInteger(v))) return 'integer';
  return undefined;
}

/** An object schema's Cedar-typed properties: [name, type, required]; untyped ones left out. */
export function objectFields(
  s: Readonly<Record<string, unknown>>,
  depth: number,
): [string, string, boolean][] | undefined {
  const properties = s['properties'];
  if (properties !== undefined && (typeof properties !== 'object' || properties === null))
    return undefined;
  const required = new Set(
    Array.isArray(s['required']) ? s['required'].filter((r) => typeof r === 'string') : [],
  );
  const out: [string, string, boolean][] = [];
  for (const [name, property] of Object.entries((properties ?? {}) as Record<string, unknown>)) {
    const type = cedarTypeOfJsonSchema(property, depth + 1);
    if (type !== undefined) out.push([name, type, required.has(name)]);
  }
  return out;
}

/**
 * The Mandate Cedar schema text and, for a catalog, the union of
 * its tools' top-level arguments in `context.args` (every one optional, since a call of one tool
 * lacks another's). Two tools that give one argument name different Cedar types are
 * `ERR_GATE_SCHEMA_CONFLICT`: rename one, or publish a schema of your own.
 */
export function mandateCedarSchema(options: MandateSchemaOptions = {}): string {
  const args = new Map<string, string>();
  for (const tool of options.tools ?? []) {
    const fields = objectFields(tool.inputSchema, 0) ?? [];
    for (const [name, type] of fields) {
      const seen = args.get(name);
      if (seen !== undefined && seen !== type)
        throw invalid(
          'ERR_GATE_SCHEMA_CONFLICT',
          `argument \`${name}\` is \`${seen}\` in one tool and \`${type}\` in \`${tool.name}\``,
        );
      args.set(name, type);
    }
  }
  const argsType = [...args].map(([name, type]) => `${attributeName(name)}?: ${type}`).join(', ');
  return `// The Mandate Cedar schema (docs/spec/policy.md §4). Generated; do not edit by hand.
type Args = {${argsType}};
type ApprovalState = {granted: Bool, approvers: Set<String>};
entity Human = {identifier: String};
entity Server = {name: String};
entity Tool in [Server] = {name: String, server: String, description: String};
entity Secret = {name: String};
entity Agent in [Human, Agent] = {
  identifier: String,
  authority: String,
  root: String,
  human: Bool,
  depth: Long,
  remainingDepth: Long,
  purpose: String,
  purposes: Set<String>,
  delegators: Set<String>,
  notBefore: Long,
  expiresAt: Long,
  tools: Set<String>,
} tags Set<String>;
action listTool appliesTo {principal: [Agent], resource: [Tool], context: {now: Long}};
action callTool appliesTo {
  principal: [Agent],
  resource: [Tool],
  context: {now: Long, args: Args, approval: ApprovalState},
};
action leaseSecret appliesTo {principal: [Agent], resource: [Secret], context: {now: Long}};
action relay appliesTo {principal: [Agent], resource: [Agent], context: {now: Long}};
action connect appliesTo {principal: [Agent], resource: [Agent, Server], context: {now: Long}};
`;
}

/**
 * The Mandate Cedar schema (docs/spec/policy.md §4): the entity types and actions every bundle's
 * policies are written against.
 *
 * - `Agent`: the identity that presents a chain and acts (always the principal, also a human
 *   acting under its own credential, with `human == true`); its parents are the delegators
 *   (`Human` for a root credential subject the authority marked `human=true`, else `Agent`).
 * - its attributes are fixed (identifier, depth, purposes, delegators, window, `tools`); the
 *   credential labels (`label.NAME` sets, which constrain no call) are its tags, by NAME:
 *   `principal.hasTag("regions") && principal.getTag("regions").contains("eu-west-1")`.
 * - `callTool`'s `context.args` is the tool's arguments converted per its JSON Schema; its
 *   attributes are the union of the catalog's top-level arguments, all optional (a policy tests
 *   `context.args has amount` first). The default schema declares none: generate one for a catalog
 *   with {@link mandateCedarSchema}.
 */
export const MANDATE_CEDAR_SCHEMA: string = mandateCedarSchema();
