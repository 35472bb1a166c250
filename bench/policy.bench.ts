/**
 * Policy decisions: Mandate's compiled Cedar against cedar-wasm's statefulIsAuthorized on the
 * same policies (pre-parsed with preparsePolicySet), entities and requests, in the same run:
 *   node --import tsx bench/run.ts
 * Each benchmark call decides one request, rotating through the same 8 requests. The policy sets
 * look like an organisation's: per-tool permits and forbids with conditions on the agent's
 * attributes and the call's context, server-wide rules, and a few catch-all forbids; only a few
 * policies apply to any one call. cedar-wasm takes entities as JSON on every call (its API);
 * Mandate's entity store is built once, as the gates build it once per chain.
 */
import { createRequire } from 'node:module';
import {
  compilePolicySet,
  parseCedarEntities,
  parseCedarRequest,
  type PolicyRequest,
} from '../src/policy/index.js';
import { group, row, type TableRow } from './harness.js';

interface CedarAnswer {
  type: string;
  response?: { decision: string };
}
const cedar = createRequire(import.meta.url)('@cedar-policy/cedar-wasm/nodejs') as {
  preparsePolicySet(id: string, policies: { staticPolicies: string }): { type: string };
  preparseSchema(name: string, schema: string): { type: string };
  statefulIsAuthorized(call: unknown): CedarAnswer;
};

const toolCount = (count: number): number => Math.max(1, Math.floor(count / 4));
const serverCount = (count: number): number => Math.max(1, Math.floor(count / 10));
const serverOf = (tool: number, count: number): string => `server${tool % serverCount(count)}`;

/** `count` policies over count/4 tools on count/10 servers. */
function policySet(count: number): string {
  const tools = toolCount(count);
  const out: string[] = [
    'forbid(principal, action, resource) when { principal has revoked && principal.revoked };',
    'forbid(principal, action == Action::"callTool", resource) when { context.amount > 10000 };',
  ];
  for (let i = 0; out.length < count; i++) {
    const tool = `tool${i % tools}`;
    const server = `server${i % serverCount(count)}`;
    switch (i % 4) {
      case 0:
        out.push(
          `permit(principal in Team::"support", action == Action::"callTool", resource == Tool::"${tool}") when { context.amount <= principal.limit && principal.environments.contains("prod") };`,
        );
        break;
      case 1:
        out.push(
          `forbid(principal, action == Action::"callTool", resource == Tool::"${tool}") when { context.args has path && !(context.args.path like "/srv/data/*") };`,
        );
        break;
      case 2:
        out.push(
          `permit(principal is Agent, action in [Action::"listTool", Action::"callTool"], resource in Server::"${server}") when { principal.level >= ${i % 5} } unless { principal.region != "eu" };`,
        );
        break;
      default:
        out.push(
          `@approval("large refund") permit(principal, action == Action::"callTool", resource == Tool::"${tool}") when { resource.risk > 2 && context.amount > 500 };`,
        );
    }
  }
  return out.join('\n');
}

function entitiesJson(count: number): unknown[] {
  const tools = toolCount(count);
  const entities: unknown[] = [
    {
      uid: { type: 'Agent', id: 'refund-bot' },
      attrs: { limit: 1000, level: 3, region: 'eu', environments: ['prod', 'staging'] },
      parents: [{ type: 'Team', id: 'support' }],
    },
    { uid: { type: 'Team', id: 'support' }, attrs: {}, parents: [] },
  ];
  // The tools a request names, each under its server (the rest need not be loaded).
  for (let t = 0; t < Math.min(tools, 8); t++)
    entities.push({
      uid: { type: 'Tool', id: `tool${t}` },
      attrs: { risk: t % 4 },
      parents: [{ type: 'Server', id: serverOf(t, count) }],
    });
  return entities;
}

function requestsJson(count: number): Record<string, unknown>[] {
  const tools = toolCount(count);
  return Array.from({ length: 8 }, (_, k) => ({
    principal: { type: 'Agent', id: 'refund-bot' },
    action: { type: 'Action', id: 'callTool' },
    resource: { type: 'Tool', id: `tool${k % Math.min(tools, 8)}` },
    context: { amount: 100 + 100 * k, args: { path: k % 3 === 0 ? '/etc/x' : '/srv/data/x' } },
  }));
}

function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`benchmark setup: ${what}`);
}

/** The schema the policy sets validate against, for the run with request and entity checks. */
const SCHEMA = `
entity Team;
entity Agent in [Team] {
  limit: Long, level: Long, region: String, environments: Set<String>, revoked?: Bool
};
entity Server;
entity Tool in [Server] { risk: Long };
type Call = { amount: Long, args: { path?: String } };
action listTool appliesTo { principal: [Agent], resource: [Tool], context: Call };
action callTool appliesTo { principal: [Agent], resource: [Tool], context: Call };
`;

async function compare(count: number, withSchema: boolean): Promise<TableRow> {
  const policies = policySet(count);
  const set = compilePolicySet(withSchema ? { policies, schema: SCHEMA } : { policies });
  check(set.policies.length === count, `${count} policies compiled`);
  const entityJson = entitiesJson(count);
  const entities = parseCedarEntities(entityJson);
  const requestJson = requestsJson(count);
  const requests: PolicyRequest[] = requestJson.map((r) => parseCedarRequest(r));
  const psetId = `bench-${count}`;
  check(
    cedar.preparsePolicySet(psetId, { staticPolicies: policies }).type === 'success',
    'cedar preparses the set',
  );
  if (withSchema)
    check(cedar.preparseSchema('bench', SCHEMA).type === 'success', 'cedar preparses the schema');
  // Calls are pre-built so the baseline times cedar-wasm, not object spreading.
  const cedarCalls = requestJson.map((r) => ({
    ...r,
    preparsedPolicySetId: psetId,
    ...(withSchema ? { preparsedSchemaName: 'bench' } : {}),
    entities: entityJson,
  }));
  // Both engines decide every request the same way (none of these requests errs).
  let allows = 0;
  for (let k = 0; k < requests.length; k++) {
    const ours = set.evaluate(requests[k]!, entities);
    const theirs = cedar.statefulIsAuthorized(cedarCalls[k]!);
    check(theirs.type === 'success', 'cedar decides');
    check(ours.errors.length === 0, `no evaluation error: ${JSON.stringify(ours.errors)}`);
    check(ours.decision === theirs.response?.decision, `request ${k} decided alike`);
    if (ours.decision === 'allow') allows++;
  }
  check(allows > 0 && allows < requests.length, 'the requests mix allow and deny');
  let i = 0;
  let j = 0;
  const what = withSchema ? `${count} policies and a schema` : `${count} policies`;
  const results = await group(`policy-${count}${withSchema ? '-schema' : ''}`)
    .add('mandate', () => set.evaluate(requests[i++ & 7]!, entities), {
      label: `decide with ${what} (Mandate, compiled)`,
    })
    .add('cedar', () => cedar.statefulIsAuthorized(cedarCalls[j++ & 7]!), {
      label: `cedar-wasm statefulIsAuthorized, ${what} pre-parsed`,
    })
    .run();
  const r = row(results, 'mandate', {
    baseline: 'cedar',
    ...(count === 100 && !withSchema ? { target: '≤ 0.01× (≥ 100× faster)' } : {}),
  });
  // The ratio column rounds to 0.00×: the label says how many times faster.
  return { ...r, what: `${r.what}: ${Math.round(1 / r.ratio!).toLocaleString('en-US')}× faster` };
}

export async function policyBenchmarks(): Promise<TableRow[]> {
  const rows: TableRow[] = [];
  for (const count of [10, 100, 1000]) rows.push(await compare(count, false));
  // With a schema both engines also check the request and the entities against it.
  rows.push(await compare(100, true));
  return rows;
}
