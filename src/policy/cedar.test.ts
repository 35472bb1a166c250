import { describe, expect, it } from 'vitest';
import { isMandateError } from '../core/index.js';
import { compilePolicySet, validatePolicies } from './index.js';

const SCHEMA = `
entity Human;
entity Agent in [Human] { level: Long, environments: Set<String> };
entity Server;
entity Tool in [Server] { server: Server };
action callTool appliesTo { principal: Agent, resource: Tool, context: { amount: Long } };
`;

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    if (isMandateError(error)) return error.code;
    throw error;
  }
  return undefined;
}

describe('parse and validate', () => {
  it("refuses text that does not parse with ERR_POLICY_SYNTAX and Cedar's message", () => {
    expect(codeOf(() => compilePolicySet({ policies: 'permit(principal, action, resource' }))).toBe(
      'ERR_POLICY_SYNTAX',
    );
    expect(() =>
      compilePolicySet({ policies: 'permit(principal, action, resource) when { 1 + };' }),
    ).toThrow(/^policy set does not parse: .* at 1:\d+/);
    expect(
      codeOf(() =>
        compilePolicySet({ policies: 'permit(principal, action, resource) when { nope(1) };' }),
      ),
    ).toBe('ERR_POLICY_SYNTAX');
  });

  it('bounds the text it hands to the parser', () => {
    const huge = `permit(principal, action, resource) when { ${'true && '.repeat(200_000)}true };`;
    expect(codeOf(() => compilePolicySet({ policies: huge }))).toBe('ERR_POLICY_SYNTAX');
  });

  it('refuses a schema that does not parse with ERR_POLICY_SCHEMA_INVALID', () => {
    expect(
      codeOf(() => {
        validatePolicies('permit(principal, action, resource);', 'entity Agent {');
      }),
    ).toBe('ERR_POLICY_SCHEMA_INVALID');
  });

  it('validates strictly against the schema (ERR_POLICY_INVALID names the policy)', () => {
    expect(
      codeOf(() => {
        validatePolicies(
          'permit(principal is Agent, action == Action::"callTool", resource is Tool) when { principal.level > 2 && context.amount < 100 };',
          SCHEMA,
        );
      }),
    ).toBeUndefined();
    for (const bad of [
      'permit(principal, action == Action::"callTool", resource) when { principal.nope };',
      'permit(principal, action == Action::"callTool", resource) when { principal.level == "x" };',
      'permit(principal, action == Action::"deleteAll", resource);',
      'permit(principal is Agent, action == Action::"callTool", resource) when { principal.level };',
    ]) {
      let error: unknown;
      try {
        validatePolicies(`permit(principal, action, resource);\n${bad}`, SCHEMA);
      } catch (e) {
        error = e;
      }
      expect(isMandateError(error, 'ERR_POLICY_INVALID'), bad).toBe(true);
      expect((error as Error).message).toContain('`policy1`');
    }
    expect(
      codeOf(() =>
        compilePolicySet({
          policies:
            'permit(principal, action == Action::"callTool", resource) when { principal.nope };',
          schema: SCHEMA,
        }),
      ),
    ).toBe('ERR_POLICY_INVALID');
  });
});

describe('unsupported constructs are refused at compile time, naming the construct', () => {
  const cases: [string, RegExp][] = [
    ['permit(principal == ?principal, action, resource);', /template/],
    ['permit(principal, action, resource in ?resource);', /template/],
    [
      'permit(principal, action, resource) when { datetime("2024-01-01") < datetime("2025-01-01") };',
      /`datetime`/,
    ],
    [
      'permit(principal, action, resource) when { context.d.offset(duration("1h")) == context.d };',
      /`(offset|duration)`/,
    ],
    ['permit(principal, action, resource) when { context.d.toDate() == context.d };', /`toDate`/],
  ];
  for (const [policies, construct] of cases)
    it(policies, () => {
      let error: unknown;
      try {
        compilePolicySet({ policies });
      } catch (e) {
        error = e;
      }
      expect(isMandateError(error, 'ERR_POLICY_UNSUPPORTED')).toBe(true);
      expect((error as Error).message).toMatch(construct);
    });
});
