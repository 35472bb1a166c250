// cedar-wasm as the reference for the differential tests: validation of a generated case against
// its schema, and `statefulIsAuthorized` over a pre-parsed policy set (and schema) per case.

import { createRequire } from 'node:module';
import { setFlagsFromString } from 'node:v8';
import type * as CedarWasm from '@cedar-policy/cedar-wasm';
import type { EntityJson, GeneratedCase, RequestJson } from './generator.js';

// Long differential runs (Node 20.20, V8 11.3) died three times in about 350,000 cases with V8's
// fatal `unreachable code` in Deoptimizer::DoComputeBuiltinContinuation. Our suspect, not proven:
// deoptimisation inside a JS→Wasm call that TurboFan inlined into optimised JavaScript. Without
// that inlining, 300,000 cases and repeated suite runs completed, in the same CPU time. The flag
// only changes how V8 compiles calls into Wasm; it is set before any is optimised.
setFlagsFromString('--no-turbo-inline-js-wasm-calls');

const cedar = createRequire(import.meta.url)('@cedar-policy/cedar-wasm/nodejs') as typeof CedarWasm;

/** cedar-wasm's own version, for the summary line. */
export const cedarVersion: string = cedar.getCedarVersion();

/** What Cedar answered for one request. */
export type CedarAnswer =
  | {
      readonly kind: 'decision';
      readonly decision: 'allow' | 'deny';
      /** `diagnostics.reason`, sorted. */
      readonly policies: readonly string[];
      /** Ids of the policies that errored, sorted, with Cedar's messages. */
      readonly errors: readonly { readonly policy: string; readonly message: string }[];
    }
  | {
      /** Cedar refused the request as a whole (entities, context or request did not parse or conform). */
      readonly kind: 'failure';
      readonly messages: readonly string[];
    };

/** Policy ids as cedar-wasm assigns them to a policy set in text: `policy0`, `policy1`, …. */
export function policyIds(policies: readonly string[]): string[] {
  return policies.map((_, i) => `policy${i}`);
}

function policyRecord(policies: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  policies.forEach((p, i) => (out[`policy${i}`] = p));
  return out;
}

/** Parse errors of a policy set, or `[]` when it parses. */
export function cedarParseErrors(policies: readonly string[]): string[] {
  const answer = cedar.checkParsePolicySet({ staticPolicies: policyRecord(policies) });
  return answer.type === 'success' ? [] : answer.errors.map((e) => e.message);
}

/** Strict-mode validation errors of the case's policies against its schema (`[]` when valid). */
export function cedarValidationErrors(c: GeneratedCase): string[] {
  if (c.schema === undefined) return ['no schema'];
  const answer = cedar.validate({
    schema: c.schema,
    policies: { staticPolicies: policyRecord(c.policies) },
    validationSettings: { mode: 'strict' },
  });
  if (answer.type === 'failure') return answer.errors.map((e) => e.message);
  return answer.validationErrors.map((e) => `${e.policyId}: ${e.error.message}`);
}

function toAnswer(answer: CedarWasm.AuthorizationAnswer): CedarAnswer {
  if (answer.type === 'failure')
    return { kind: 'failure', messages: answer.errors.map((e) => e.message) };
  const { decision, diagnostics } = answer.response;
  return {
    kind: 'decision',
    decision,
    policies: [...diagnostics.reason].sort(),
    errors: diagnostics.errors
      .map((e) => ({ policy: e.policyId, message: e.error.message }))
      .sort((a, b) => (a.policy < b.policy ? -1 : a.policy > b.policy ? 1 : 0)),
  };
}

// cedar-wasm keeps pre-parsed sets in a cache it never empties: the sessions share two slots and a
// session re-parses when another one took the slot since (so many cases do not grow memory).
const SET_SLOT = 'differential-set';
const SCHEMA_SLOT = 'differential-schema';
let slotOwner: symbol | undefined;

/**
 * A session over one case: the policy set (and the schema, when `withSchema`) parsed once, then
 * one `statefulIsAuthorized` per request.
 */
export class CedarSession {
  readonly #policies: Record<string, string>;
  readonly #schema: string | undefined;
  readonly #entities: CedarWasm.Entities;
  readonly #token = Symbol('cedar session');

  constructor(c: GeneratedCase, withSchema: boolean) {
    this.#policies = policyRecord(c.policies);
    this.#schema = withSchema ? c.schema : undefined;
    this.#entities = c.entities as EntityJson[] as CedarWasm.Entities;
    this.#claim();
  }

  #claim(): void {
    if (slotOwner === this.#token) return;
    const parsed = cedar.preparsePolicySet(SET_SLOT, { staticPolicies: this.#policies });
    if (parsed.type !== 'success') {
      throw new Error(
        `cedar does not parse the policies: ${parsed.errors.map((e) => e.message).join('; ')}`,
      );
    }
    if (this.#schema !== undefined) {
      const s = cedar.preparseSchema(SCHEMA_SLOT, this.#schema);
      if (s.type !== 'success') {
        throw new Error(
          `cedar does not parse the schema: ${s.errors.map((e) => e.message).join('; ')}`,
        );
      }
    }
    slotOwner = this.#token;
  }

  /** Decides `r` against the case's entities, or against `entities` when given. */
  decide(r: RequestJson, entities?: readonly EntityJson[]): CedarAnswer {
    this.#claim();
    const call: CedarWasm.StatefulAuthorizationCall = {
      principal: r.principal,
      action: r.action,
      resource: r.resource,
      context: r.context as CedarWasm.Context,
      preparsedPolicySetId: SET_SLOT,
      entities:
        entities === undefined ? this.#entities : (entities as EntityJson[] as CedarWasm.Entities),
    };
    if (this.#schema !== undefined) call.preparsedSchemaName = SCHEMA_SLOT;
    return toAnswer(cedar.statefulIsAuthorized(call));
  }
}

/** `isAuthorized` without pre-parsing: the plain reference the stateful path is checked against. */
export function cedarDecideOnce(
  c: GeneratedCase,
  r: RequestJson,
  withSchema: boolean,
  entities: readonly EntityJson[] = c.entities,
): CedarAnswer {
  const call: CedarWasm.AuthorizationCall = {
    principal: r.principal,
    action: r.action,
    resource: r.resource,
    context: r.context as CedarWasm.Context,
    policies: { staticPolicies: policyRecord(c.policies) },
    entities: entities as EntityJson[] as CedarWasm.Entities,
  };
  if (withSchema && c.schema !== undefined) call.schema = c.schema;
  return toAnswer(cedar.isAuthorized(call));
}
