// Test helper: runs cedar-wasm's isAuthorized next to the
// compiled engine on the same policies, entities and request.
import { createRequire } from 'node:module';
import { compilePolicySet, parseCedarEntities, parseCedarRequest } from '../../src/policy/index.js';

interface CedarAnswer {
  type: 'success' | 'failure';
  errors?: { message: string }[];
  response?: {
    decision: 'allow' | 'deny';
    diagnostics: { reason: string[]; errors: { policyId: string; error: { message: string } }[] };
  };
}

const cedar = createRequire(import.meta.url)('@cedar-policy/cedar-wasm/nodejs') as {
  isAuthorized(call: unknown): CedarAnswer;
};

export interface Case {
  readonly policies: string;
  readonly entities?: unknown[];
  readonly request?: Record<string, unknown>;
  readonly schema?: string;
}

export const DEFAULT_REQUEST = {
  principal: { type: 'Agent', id: 'a' },
  action: { type: 'Action', id: 'callTool' },
  resource: { type: 'Tool', id: 't' },
  context: {},
};

export interface Outcome {
  readonly decision: 'allow' | 'deny';
  readonly policies: readonly string[];
  readonly errors: readonly string[];
}

/** Cedar's answer, reasons and erroring policy ids sorted; undefined when Cedar refuses input. */
export function cedarOutcome(c: Case): Outcome | undefined {
  const request = { ...DEFAULT_REQUEST, ...c.request };
  const answer = cedar.isAuthorized({
    ...request,
    policies: { staticPolicies: c.policies },
    entities: c.entities ?? [],
    ...(c.schema === undefined ? {} : { schema: c.schema }),
  });
  if (answer.type !== 'success' || answer.response === undefined) return undefined;
  return {
    decision: answer.response.decision,
    policies: [...answer.response.diagnostics.reason].sort(),
    errors: answer.response.diagnostics.errors.map((e) => e.policyId).sort(),
  };
}

/** Mandate's outcome on the same case (throws what the engine throws). */
export function mandateOutcome(c: Case): Outcome {
  const set = compilePolicySet(
    c.schema === undefined ? { policies: c.policies } : { policies: c.policies, schema: c.schema },
  );
  const decision = set.evaluate(
    parseCedarRequest({ ...DEFAULT_REQUEST, ...c.request }),
    parseCedarEntities(c.entities ?? []),
  );
  return {
    decision: decision.decision,
    policies: [...decision.policies].sort(),
    errors: decision.errors.map((e) => e.policy).sort(),
  };
}
