// A small world for the gates: an authority; a human (dana) whose root credential the authority
// marked `human=true` and gave a refund budget; a support agent she delegated to; sub-agents the
// support agent delegated to; a second human (an approver) and a non-human identity; a tool
// catalog and a compiled bundle over the Mandate schema.
import { MemoryVault } from '../../src/vault/index.js';
import { Identities, MemoryIdentityRepository, Purpose } from '../../src/identity/index.js';
import {
  ChainVerifier,
  chainFromCredential,
  constraintsToAttributes,
  delegate,
  issueCredential,
  parseConstraint,
  type Constraint,
  type CredentialIssuer,
  type VerifiedChain,
} from '../../src/credentials/index.js';
import { encodeConstraintValue } from '../../src/credentials/internal.js';
import { freshDenySet } from './deny-set.js';
import { compilePolicySet } from '../../src/policy/index.js';
import { sha256 } from '../../src/crypto/index.js';
import { toHex } from '../../src/encoding/index.js';
import {
  ToolCatalog,
  mandateCedarSchema,
  type ActiveBundle,
  type BundleSource,
  type ToolDescriptor,
} from '../../src/gates/index.js';

export const GATE_NOW = 1_800_000_000;

export const CATALOG: ToolDescriptor[] = [
  {
    name: 'issue_refund',
    server: 'orders',
    description: 'refund an order',
    inputSchema: {
      type: 'object',
      properties: {
        order: { type: 'string' },
        amount: { type: 'integer', minimum: 0 },
        note: { type: 'string', maxLength: 200 },
      },
      required: ['order', 'amount'],
      additionalProperties: false,
    },
  },
  {
    name: 'read_orders',
    server: 'orders',
    description: 'read an order',
    inputSchema: {
      type: 'object',
      properties: { order: { type: 'string' } },
      required: ['order'],
      additionalProperties: false,
    },
  },
  {
    name: 'deploy',
    server: 'infra',
    description: 'deploy a service',
    inputSchema: {
      type: 'object',
      properties: {
        service: { type: 'string' },
        environment: { type: 'string', enum: ['dev', 'staging', 'prod'] },
        region: { type: 'string' },
        replicas: { type: 'integer' },
        tags: { type: 'array', items: { type: 'string' } },
      },
      required: ['service', 'environment', 'region'],
    },
  },
  {
    name: 'delete_everything',
    server: 'infra',
    description: 'not for agents',
    inputSchema: { type: 'object', properties: {} },
  },
];

/**
 * The organisation's policies. `environments`, `regions` and `approved_by` are attributes the
 * authority puts on credentials: one `deploy` policy covers every environment × region pair a
 * credential names (instead of a role per pair: deploy-prod-eu, deploy-staging-us, …).
 */
export const POLICIES = `
@id("read-orders")
permit(principal, action in [Action::"listTool", Action::"callTool"], resource == Tool::"orders/read_orders");

@id("list-refunds")
permit(principal, action == Action::"listTool", resource == Tool::"orders/issue_refund");

@id("small-refunds")
permit(principal, action == Action::"callTool", resource == Tool::"orders/issue_refund")
  when { context.args has amount && context.args.amount <= 200 };

@id("large-refunds")
@approval("refunds above 200 need a person")
permit(principal, action == Action::"callTool", resource == Tool::"orders/issue_refund")
  when { context.args has amount && context.args.amount > 200 && context.args.amount <= 1000 };

@id("deploy")
permit(principal, action in [Action::"listTool", Action::"callTool"], resource == Tool::"infra/deploy")
  when {
    action == Action::"listTool" ||
    (context.args has environment && context.args has region &&
     principal.hasTag("environments") && principal.getTag("environments").contains(context.args.environment) &&
     principal.hasTag("regions") && principal.getTag("regions").contains(context.args.region) &&
     principal.hasTag("approved_by") && principal.getTag("approved_by").contains("security"))
  };

@id("prod-needs-a-human-path")
forbid(principal, action == Action::"callTool", resource == Tool::"infra/deploy")
  when { context.args has environment && context.args.environment == "prod" && principal.depth > 1 };
`;

export const SCHEMA = mandateCedarSchema({ tools: CATALOG });

/**
 * A bundle as a source hands it over, compiled from `policies` (validated against `schema` unless
 * `null`), binding `catalog` (the world's CATALOG by default; `null`: none).
 */
export function bundleOf(
  policies = POLICIES,
  version = 1,
  schema: string | null = SCHEMA,
  catalog: ToolCatalog | null = new ToolCatalog(CATALOG),
): ActiveBundle {
  return {
    version,
    hash: toHex(
      sha256(new TextEncoder().encode(`${version}\n${policies}\n${catalog?.digest ?? ''}`)),
    ),
    issuer: 'I00',
    createdAt: GATE_NOW,
    policySet: compilePolicySet(schema === null ? { policies } : { policies, schema }),
    ...(catalog === null ? {} : { catalog }),
  };
}

/** A bundle source that holds what it is given (a node's source after `accept`). */
export class HeldBundleSource implements BundleSource {
  bundle: ActiveBundle | undefined;
  constructor(bundle?: ActiveBundle) {
    this.bundle = bundle;
  }
  current(): ActiveBundle | undefined {
    return this.bundle;
  }
}

const constraints = (...texts: string[]): Map<string, Constraint> =>
  new Map(texts.map((t) => parseConstraint(t)));

export interface GateWorldOptions {
  readonly root?: readonly string[];
  readonly budget?: number;
  readonly subAgents?: number;
  /** The `tools` constraint of every link (default the three tools the tests call). */
  readonly linkTools?: string;
}

export async function gateWorld(options: GateWorldOptions = {}) {
  const linkTools = `tools=${options.linkTools ?? 'read_orders,issue_refund,deploy'}`;
  const vault = new MemoryVault();
  const identities = new Identities({
    vault,
    repository: new MemoryIdentityRepository(),
    clock: { nowSeconds: () => GATE_NOW },
  });
  const make = async (name: string) => {
    const local = await identities.create({ name });
    const { verified, keyId } = await identities.purposeKey(name, Purpose.credentials);
    const issuer: CredentialIssuer = {
      identity: local.identity,
      credentialKeyId: keyId,
      credentialKeyAttestation: verified.attestation,
    };
    return { identity: local.identity, issuer, primaryKeyId: local.primaryKeyId };
  };
  const authority = await make('authority');
  const dana = await make('dana');
  const support = await make('support');
  const approver = await make('approver');
  const robot = await make('robot');
  const authorities = new Map([[authority.identity.identifier, authority.identity]]);
  const denySet = freshDenySet(GATE_NOW, 3600);
  const verifier = new ChainVerifier({ authorities, denySet });
  const rootAttributes = constraintsToAttributes(
    constraints(
      ...(options.root ?? [
        'tools=read_orders,issue_refund,deploy',
        'human=true',
        'label.environments=dev,staging',
        'label.regions=eu-west-1',
        'label.approved_by=security',
      ]),
    ),
  );
  if (options.budget !== undefined)
    rootAttributes.set(
      'mandate.budget:issue_refund#amount',
      encodeConstraintValue({ kind: 'max', limit: options.budget }),
    );
  const credential = (subject: typeof dana, attributes: Map<string, Uint8Array>) =>
    issueCredential(vault, authority.issuer, subject.identity, attributes, {
      nowSeconds: GATE_NOW,
      ttlSeconds: 3600,
    });
  const danaChainBytes = chainFromCredential(await credential(dana, rootAttributes), dana.identity);
  const verify = (
    bytes: Uint8Array,
    presenter?: `I${string}`,
    nowSeconds = GATE_NOW + 10,
  ): VerifiedChain =>
    verifier.verify(bytes, { nowSeconds, ...(presenter === undefined ? {} : { presenter }) });
  const danaChain = verify(danaChainBytes, dana.identity.identifier);
  const supportChainBytes = await delegate(vault, dana.issuer, danaChain, {
    nowSeconds: GATE_NOW,
    subject: support.identity,
    constraints: constraints(linkTools, 'issue_refund#amount<=1000'),
    purpose: 'support shift',
    ttlSeconds: 1800,
  });
  const supportChain = verify(supportChainBytes, support.identity.identifier);
  const subAgents = [];
  for (let i = 0; i < (options.subAgents ?? 2); i++) {
    const sub = await make(`sub-${i}`);
    const bytes = await delegate(vault, support.issuer, supportChain, {
      nowSeconds: GATE_NOW,
      subject: sub.identity,
      constraints: constraints(linkTools, 'issue_refund#amount<=400'),
      purpose: `complaint #${4470 + i}`,
      ttlSeconds: 600,
    });
    subAgents.push({ ...sub, bytes, chain: verify(bytes, sub.identity.identifier) });
  }
  const approverChain = verify(
    chainFromCredential(
      await credential(approver, constraintsToAttributes(constraints('human=true'))),
      approver.identity,
    ),
    approver.identity.identifier,
  );
  const robotChain = verify(
    chainFromCredential(
      await credential(robot, constraintsToAttributes(constraints('tools=read_orders'))),
      robot.identity,
    ),
    robot.identity.identifier,
  );
  const catalog = new ToolCatalog(CATALOG);
  return {
    vault,
    identities,
    authority,
    dana,
    support,
    approver,
    robot,
    authorities,
    denySet,
    verifier,
    danaChain,
    supportChain,
    supportChainBytes,
    subAgents,
    approverChain,
    robotChain,
    catalog,
    verify,
  };
}
