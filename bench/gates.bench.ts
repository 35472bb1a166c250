/**
 * The gates: a full gate-2 decision (the cached chain re-checked with `authorize`, the arguments
 * bounded, validated by the tool's compiled ajv schema and converted, and the bundle's 100
 * compiled policies evaluated) next to cedar-wasm's statefulIsAuthorized deciding the same Cedar
 * request on the same (pre-parsed) policies — cedar-wasm alone, without lock 1 or schema
 * validation; and gate 1 over a 50-tool catalog (uncached, and as cached) next to 50 cedar-wasm
 * listTool calls. Gate 2 is measured with one chain calling again and again, and with 6 chains
 * (sibling sub-agents) taking turns, which must cost the same: nothing the gates or the engine
 * cache per chain may hold only the last one. Run: node --import tsx bench/run.ts
 */
import { createRequire } from 'node:module';
import {
  Gate,
  ToolCatalog,
  agentViewOf,
  mandateCedarSchema,
  type ActiveBundle,
  type ToolDescriptor,
} from '../src/gates/index.js';
import { compilePolicySet, type CedarValue } from '../src/policy/index.js';
import { GATE_NOW, gateWorld } from '../test/helpers/gate-world.js';
import { group, row, type TableRow } from './harness.js';

interface CedarAnswer {
  type: string;
  response?: { decision: string };
}
const cedar = createRequire(import.meta.url)('@cedar-policy/cedar-wasm/nodejs') as {
  preparsePolicySet(id: string, policies: { staticPolicies: string }): { type: string };
  statefulIsAuthorized(call: unknown): CedarAnswer;
};

const TOOLS = 50;
/** Sibling sub-agents whose chains take turns in the "6 chains" row. */
const CHAINS = 6;
const NOW = GATE_NOW + 30;

/** 50 tools on 5 servers, each taking the same 5 arguments. */
function catalog(): ToolDescriptor[] {
  return Array.from({ length: TOOLS }, (_, t) => ({
    name: `tool${t}`,
    server: `server${t % 5}`,
    description: `tool number ${t}`,
    inputSchema: {
      type: 'object',
      properties: {
        order: { type: 'string', maxLength: 64 },
        amount: { type: 'integer', minimum: 0 },
        note: { type: 'string', maxLength: 200 },
        priority: { type: 'integer', minimum: 0, maximum: 5 },
        urgent: { type: 'boolean' },
      },
      required: ['order', 'amount'],
      additionalProperties: false,
    },
  }));
}

/** 100 policies an organisation might write: per-tool permits and forbids on labels and arguments. */
function policies(count: number): string {
  const out: string[] = [
    'forbid(principal, action, resource) when { principal.depth > 4 };',
    '@id("list") permit(principal, action == Action::"listTool", resource) when { principal.hasTag("teams") && principal.getTag("teams").contains("support") };',
  ];
  for (let i = 0; out.length < count; i++) {
    const tool = `Tool::"server${i % 5}/tool${i % TOOLS}"`;
    switch (i % 4) {
      case 0:
        out.push(
          `permit(principal, action == Action::"callTool", resource == ${tool}) when { context.args has amount && context.args.amount <= 500 && principal.hasTag("environments") && principal.getTag("environments").contains("prod") };`,
        );
        break;
      case 1:
        out.push(
          `forbid(principal, action == Action::"callTool", resource == ${tool}) when { context.args has order && context.args.order like "test-*" };`,
        );
        break;
      case 2:
        out.push(
          `permit(principal, action == Action::"callTool", resource in Server::"server${i % 5}") when { context.args has priority && context.args.priority >= ${i % 5} } unless { context.args has urgent && context.args.urgent };`,
        );
        break;
      default:
        out.push(
          `@approval("large") permit(principal, action == Action::"callTool", resource == ${tool}) when { context.args has amount && context.args.amount > 500 };`,
        );
    }
  }
  return out.join('\n');
}

/** A Cedar value as Cedar's JSON writes it. */
function toJson(value: CedarValue): unknown {
  if (typeof value !== 'object') return value;
  if (Array.isArray(value)) return (value as readonly CedarValue[]).map(toJson);
  if (value instanceof Map)
    return Object.fromEntries(
      [...(value as ReadonlyMap<string, CedarValue>)].map(([k, v]) => [k, toJson(v)]),
    );
  if ('extension' in value) return { __extn: { fn: value.extension, arg: value.text } };
  const uid = value as { type: string; id: string };
  return { __entity: { type: uid.type, id: uid.id } };
}

function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`benchmark setup: ${what}`);
}

export async function gateBenchmarks(): Promise<TableRow[]> {
  const tools = catalog();
  const w = await gateWorld({
    root: ['tools=*', 'human=true', 'label.environments=prod,staging', 'label.teams=support'],
    linkTools: `issue_refund,${tools.map((t) => t.name).join(',')}`,
    subAgents: CHAINS,
  });
  const chains = w.subAgents.map((s) => s.chain);
  const chain = chains[0]!;
  const text = policies(100);
  const schema = mandateCedarSchema({ tools });
  const toolCatalog = new ToolCatalog(tools);
  // The bundle binds the catalog (docs/spec/policy.md §2): the gates decide over its tools.
  const bundle: ActiveBundle = {
    version: 1,
    hash: 'bench',
    issuer: w.authority.identity.identifier,
    createdAt: GATE_NOW,
    policySet: compilePolicySet({ policies: text, schema }),
    catalog: toolCatalog,
  };
  const gate = new Gate({
    catalog: toolCatalog,
    bundles: { current: () => bundle },
    denySet: w.denySet,
  });
  const uncached = new Gate({
    catalog: toolCatalog,
    bundles: { current: () => bundle },
    denySet: w.denySet,
    listCacheSize: 0,
  });
  // 8 calls with 5 argument fields each, on tools the policies treat differently.
  const calls = Array.from({ length: 8 }, (_, k) => ({
    tool: `tool${(k * 4) % TOOLS}`,
    server: `server${((k * 4) % TOOLS) % 5}`,
    args: {
      order: k === 3 ? 'test-1' : `o-${k}`,
      amount: 100 + 60 * k,
      note: 'customer asked',
      priority: k % 6,
      urgent: k === 5,
    },
  }));
  const decisions = calls.map((c) => gate.decide(chain, c, { nowSeconds: NOW }));
  for (const other of chains)
    for (let k = 0; k < calls.length; k++)
      check(
        gate.decide(other, calls[k]!, { nowSeconds: NOW }).decision === decisions[k]!.decision,
        `every sibling chain is decided alike on call ${k}`,
      );
  check(
    decisions.some((d) => d.decision === 'allow') && decisions.some((d) => d.decision !== 'allow'),
    'calls mix allow and deny',
  );

  // The same requests in Cedar's JSON: the agent, its delegators, the tool and its server.
  const view = agentViewOf(chain);
  const entityJson: unknown[] = [];
  for (const byId of view.entities.values())
    for (const e of byId.values())
      entityJson.push({
        uid: e.uid,
        attrs: toJson(e.attrs),
        ...(e.tags === undefined ? {} : { tags: toJson(e.tags) }),
        parents: [...e.ancestors].map((key) => {
          const at = key.indexOf('::');
          return { type: key.slice(0, at), id: JSON.parse(key.slice(at + 2)) as string };
        }),
      });
  for (const t of toolCatalog.tools)
    for (const e of t.entities)
      entityJson.push({ uid: e.uid, attrs: toJson(e.attrs), parents: e.parents });
  const psetId = 'gates-bench-100';
  check(
    cedar.preparsePolicySet(psetId, { staticPolicies: text }).type === 'success',
    'cedar preparses',
  );
  const cedarCalls = calls.map((c) => ({
    principal: view.principal,
    action: { type: 'Action', id: 'callTool' },
    resource: { type: 'Tool', id: `${c.server}/${c.tool}` },
    context: { now: NOW, args: c.args, approval: { granted: false, approvers: [] } },
    preparsedPolicySetId: psetId,
    entities: entityJson,
  }));
  for (let k = 0; k < calls.length; k++) {
    const theirs = cedar.statefulIsAuthorized(cedarCalls[k]!);
    check(theirs.type === 'success', 'cedar decides');
    const ours = decisions[k]!.decision === 'deny' ? 'deny' : 'allow';
    check(ours === theirs.response?.decision, `call ${k} decided alike (${ours})`);
  }
  const listCalls = toolCatalog.tools.map((t) => ({
    principal: view.principal,
    action: { type: 'Action', id: 'listTool' },
    resource: t.uid,
    context: { now: NOW },
    preparsedPolicySetId: psetId,
    entities: entityJson,
  }));
  check(uncached.listTools(chain, NOW).length === TOOLS, 'gate 1 lists every tool');

  let i = 0;
  let j = 0;
  let m = 0;
  const gate2 = await group('gate-2')
    .add('gate', () => gate.decide(chain, calls[i++ & 7]!, { nowSeconds: NOW }), {
      label: 'gate 2: chain re-check + ajv + bundle, 100 policies, 5 args',
    })
    .add(
      'turns',
      () => {
        const k = m++;
        return gate.decide(chains[k % CHAINS]!, calls[k & 7]!, { nowSeconds: NOW });
      },
      { label: `gate 2, as above, ${CHAINS} chains taking turns` },
    )
    .add('cedar', () => cedar.statefulIsAuthorized(cedarCalls[j++ & 7]!), {
      label: 'cedar-wasm statefulIsAuthorized alone, same request',
    })
    .run();
  const gate1 = await group('gate-1')
    .add('list', () => uncached.listTools(chain, NOW), {
      label: 'gate 1: 50-tool catalog (uncached)',
    })
    .add('cached', () => gate.listTools(chain, NOW), { label: 'gate 1: 50-tool catalog (cached)' })
    .add(
      'cedar',
      () => {
        let allowed = 0;
        for (const call of listCalls)
          if (cedar.statefulIsAuthorized(call).response?.decision === 'allow') allowed++;
        return allowed;
      },
      { label: '50 cedar-wasm listTool calls' },
    )
    .run();
  return [
    row(gate2, 'gate', { baseline: 'cedar', target: '< 2 µs median' }),
    row(gate2, 'turns', { baseline: 'gate', target: 'same as one chain (×1.0)' }),
    row(gate1, 'list', { baseline: 'cedar' }),
    row(gate1, 'cached', { baseline: 'cedar' }),
  ];
}
