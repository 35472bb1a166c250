// The only file that loads cedar-wasm: parse a policy set into policies and their JSON EST,
// check a schema, validate policies strictly against it. Loaded lazily, once, with
// createRequire: the package's ESM build does not load on Node 20, its Node.js build does.
import { createRequire } from 'node:module';
import { internal, invalid, unsupported } from '../core/internal.js';
import { checkPolicyTextBounds, checkSchemaTextBounds } from './text-bounds.js';

/** The JSON EST of one policy as cedar-wasm's `policyToJson` gives it (checked by compile.ts). */
export interface PolicyEst {
  readonly effect: string;
  readonly principal: unknown;
  readonly action: unknown;
  readonly resource: unknown;
  readonly conditions: readonly unknown[];
  readonly annotations?: Readonly<Record<string, string | null>>;
}

/** One parsed static policy: Cedar's id (`policy0`, `policy1`, … in source order) and its EST. */
export interface ParsedPolicy {
  readonly id: string;
  /** Position in the source (the number in the id). */
  readonly index: number;
  readonly text: string;
  readonly est: PolicyEst;
}

interface DetailedError {
  readonly message: string;
  readonly help?: string | null;
  readonly sourceLocations?: readonly { readonly start: number; readonly end: number }[];
}

type Answer<T> = ({ type: 'success' } & T) | { type: 'failure'; errors: DetailedError[] };

/** The subset of cedar-wasm's Node.js API this file uses (its .d.ts, narrowed). */
interface CedarWasm {
  getCedarVersion(): string;
  policySetTextToParts(text: string): Answer<{ policies: string[]; policy_templates: string[] }>;
  policyToJson(policy: string): Answer<{ json: PolicyEst }>;
  checkParseSchema(schema: string): Answer<object>;
  schemaToJsonWithResolvedTypes(schema: string): Answer<{ json: unknown }>;
  validate(call: {
    validationSettings: { mode: 'strict' };
    schema: string;
    policies: { staticPolicies: string };
  }): Answer<{
    validationErrors: { policyId: string; error: DetailedError }[];
    validationWarnings: unknown[];
  }>;
}

let loaded: CedarWasm | undefined;
const CEDAR_WASM = '@cedar-policy/cedar-wasm/nodejs';
const requireCjs = createRequire(import.meta.url);

/** cedar-wasm's Node.js build, loaded on first use. */
export function cedarWasm(): CedarWasm {
  // The .d.ts of cedar-wasm types the module; this narrowed interface is what we rely on.
  loaded ??= requireCjs(CEDAR_WASM) as CedarWasm;
  return loaded;
}

/**
 * One call into cedar-wasm. An exception from inside it (a stack overflow, a WebAssembly trap
 * such as `memory access out of bounds`) is `ERR_POLICY_ENGINE_FAILED`, and the module is
 * dropped: after a trap its memory may be corrupt (every later call fails), so the next call
 * loads a fresh instance.
 */
export function engine<T>(work: (cedar: CedarWasm) => T): T {
  try {
    return work(cedarWasm());
  } catch (cause) {
    loaded = undefined;
    Reflect.deleteProperty(requireCjs.cache, requireCjs.resolve(CEDAR_WASM));
    throw internal(
      'ERR_POLICY_ENGINE_FAILED',
      `the Cedar engine failed on this input (${cause instanceof Error ? cause.name : 'error'}): it was reloaded`,
      cause,
    );
  }
}

/** Policy texts longer than this are refused before they reach the parser. */
export const MAX_POLICY_TEXT_BYTES = 1 << 20;
const MAX_MESSAGE_CHARS = 300;
const MAX_MESSAGES = 5;

function bounded(text: string): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length > MAX_MESSAGE_CHARS ? `${oneLine.slice(0, MAX_MESSAGE_CHARS)}…` : oneLine;
}

function describe(errors: readonly DetailedError[], source?: string): string {
  const shown = errors.slice(0, MAX_MESSAGES).map((e) => {
    const at = e.sourceLocations?.[0];
    const where =
      at === undefined || source === undefined ? '' : ` at ${lineColumn(source, at.start)}`;
    return `${bounded(e.message)}${where}`;
  });
  const more = errors.length > MAX_MESSAGES ? ` (and ${errors.length - MAX_MESSAGES} more)` : '';
  return `${shown.join('; ')}${more}`;
}

function lineColumn(text: string, offset: number): string {
  let line = 1;
  let column = 1;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      column = 1;
    } else column++;
  }
  return `${line}:${column}`;
}

function checkTextSize(text: string, what: string, code: `ERR_${string}`): void {
  if (Buffer.byteLength(text, 'utf8') > MAX_POLICY_TEXT_BYTES)
    throw invalid(code, `the ${what} is larger than ${MAX_POLICY_TEXT_BYTES} bytes`);
}

/**
 * Parses a static policy set. Ids are Cedar's own for a static policy set: `policy0`, `policy1`,
 * … in source order (annotations such as `@id` are kept in the EST, not used as ids). Templates
 * (policies with `?principal`/`?resource` slots) are refused: Mandate does not link templates.
 */
export function parsePolicySet(text: string): ParsedPolicy[] {
  checkTextSize(text, 'policy set', 'ERR_POLICY_SYNTAX');
  checkPolicyTextBounds(text);
  const parts = engine((cedar) => cedar.policySetTextToParts(text));
  if (parts.type === 'failure')
    throw invalid(
      'ERR_POLICY_SYNTAX',
      `policy set does not parse: ${describe(parts.errors, text)}`,
    );
  if (parts.policy_templates.length > 0)
    throw unsupported(
      'ERR_POLICY_UNSUPPORTED',
      'policy templates (slots `?principal`, `?resource`) are not supported',
    );
  // cedar-wasm returns the parts ordered by policy id as strings (`policy0`, `policy1`,
  // `policy10`, …, `policy2`, …), not in source order: give each part the id in that order.
  const ids = parts.policies.map((_, i) => `policy${i}`).sort();
  const parsed = parts.policies.map((policyText, index) => {
    const id = ids[index]!;
    const answer = engine((cedar) => cedar.policyToJson(policyText));
    if (answer.type === 'failure')
      throw invalid(
        'ERR_POLICY_SYNTAX',
        `policy \`${id}\` does not parse: ${describe(answer.errors, policyText)}`,
      );
    return { id, index: Number(id.slice('policy'.length)), text: policyText, est: answer.json };
  });
  return parsed.sort((a, b) => a.index - b.index);
}

/**
 * Checks that a schema (Cedar's human-readable schema format) parses; returns its JSON form with
 * every type name resolved (entity or common type, fully qualified).
 */
export function parseSchema(schema: string): unknown {
  checkTextSize(schema, 'schema', 'ERR_POLICY_SCHEMA_INVALID');
  checkSchemaTextBounds(schema);
  const answer = engine((cedar) => cedar.schemaToJsonWithResolvedTypes(schema));
  if (answer.type === 'failure')
    throw invalid(
      'ERR_POLICY_SCHEMA_INVALID',
      `schema does not parse: ${describe(answer.errors, schema)}`,
    );
  return answer.json;
}

/**
 * Validates a policy set strictly against a schema: a syntax error is `ERR_POLICY_SYNTAX`, a
 * schema that does not parse `ERR_POLICY_SCHEMA_INVALID`, a policy that fails validation
 * `ERR_POLICY_INVALID` (the message names the policy ids and Cedar's reasons, bounded).
 */
export function validatePolicySet(text: string, schema: string): void {
  parsePolicySet(text);
  parseSchema(schema);
  const answer = engine((cedar) =>
    cedar.validate({
      validationSettings: { mode: 'strict' },
      schema,
      policies: { staticPolicies: text },
    }),
  );
  if (answer.type === 'failure')
    throw invalid('ERR_POLICY_INVALID', `policy set does not validate: ${describe(answer.errors)}`);
  if (answer.validationErrors.length > 0) {
    const errors = answer.validationErrors.map((e) => ({
      ...e.error,
      message: `\`${e.policyId}\`: ${e.error.message}`,
    }));
    throw invalid(
      'ERR_POLICY_INVALID',
      `policy set does not validate against the schema: ${describe(errors)}`,
    );
  }
}
