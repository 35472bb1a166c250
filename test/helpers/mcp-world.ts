// A world for the MCP gateway: an authority, a human (dana) with a root credential, agents she
// delegated to (with path constraints), a gateway identity, the real filesystem MCP server on a
// temporary folder behind an McpGateway, a policy bundle binding the gateway's catalog, and
// agents connecting with the SDK Client over secure channels on an in-memory network.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { ManualClock } from '../../src/core/index.js';
import { MemoryVault } from '../../src/vault/index.js';
import { Identities, MemoryIdentityRepository, Purpose } from '../../src/identity/index.js';
import {
  ChainVerifier,
  chainFromCredential,
  constraintsToAttributes,
  delegate,
  issueCredential,
  parseConstraint,
  type CredentialIssuer,
} from '../../src/credentials/index.js';
import {
  prepareChannelIdentity,
  SecureChannelListener,
  TrustPolicies,
} from '../../src/channel/index.js';
import {
  localAddress,
  MemoryNetwork,
  MemoryTransport,
  Router,
  type Route,
} from '../../src/routing/index.js';
import {
  Gate,
  MemoryApprovalRepository,
  MemoryBudgetRepository,
  mandateCedarSchema,
  type ActiveBundle,
  type ToolCatalog,
} from '../../src/gates/index.js';
import { compilePolicySet } from '../../src/policy/index.js';
import {
  AuditLog,
  EnforcerSigner,
  MemoryAuditLogRepository,
  MemoryAuditTrailRepository,
} from '../../src/audit/index.js';
import { EnforcementPoint } from '../../src/node/index.js';
import { sha256 } from '../../src/crypto/index.js';
import { toHex } from '../../src/encoding/index.js';
import {
  connectMcpChannel,
  McpChannelListener,
  McpGateway,
  parseGatewayConfig,
  type ChannelClientTransport,
} from '../../src/mcp/index.js';
import { encodeConstraintValue } from '../../src/credentials/internal.js';
import { freshDenySet } from './deny-set.js';
import { HeldBundleSource } from './gate-world.js';

const require = createRequire(import.meta.url);
/** The reference filesystem MCP server's entry (run with `process.execPath`). */
export const FILESYSTEM_SERVER =
  require.resolve('@modelcontextprotocol/server-filesystem/dist/index.js');
/** test/support/mcp-test-server.ts: `faults` (echo, hang, crash, garbage) or `shop` (refund). */
export const TEST_SERVER = fileURLToPath(new URL('../support/mcp-test-server.ts', import.meta.url));
/** How to run {@link TEST_SERVER}: `command`, and `args` to put before its mode. */
export const TEST_SERVER_COMMAND = {
  command: process.execPath,
  args: ['--import', 'tsx', TEST_SERVER],
};

/** Policies over the filesystem server: read tools listed and callable, writes forbidden. */
export const FS_POLICIES = `
@id("fs-read")
permit(principal, action in [Action::"listTool", Action::"callTool"], resource in Server::"fs")
  when { ["read_text_file", "list_directory", "list_allowed_directories"].contains(resource.name) };

@id("fs-write-listed")
permit(principal, action == Action::"listTool", resource == Tool::"fs/write_file");

@id("no-writes")
forbid(principal, action, resource == Tool::"fs/write_file");
`;

export interface McpWorldOptions {
  readonly policies?: string;
  /** Extra `mcpServers` entries (with `fs`, unless `fs` is given as `null`). */
  readonly servers?: Record<string, unknown>;
  readonly mandate?: Record<string, unknown>;
  /** A budget on the root grant: `refund#amount` summed over every agent under it. */
  readonly refundBudget?: number;
}

export async function mcpWorld(options: McpWorldOptions = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'mandate-mcp-'));
  mkdirSync(join(dir, 'allowed'));
  mkdirSync(join(dir, 'secret'));
  writeFileSync(join(dir, 'allowed', 'a.txt'), 'hello from a');
  writeFileSync(join(dir, 'secret', 'key.txt'), 'the secret');
  const now = Math.floor(Date.now() / 1000);
  const clock = new ManualClock(now);
  const vault = new MemoryVault();
  const identities = new Identities({ vault, repository: new MemoryIdentityRepository(), clock });
  const make = async (name: string) => {
    const local = await identities.create({ name });
    const { verified, keyId } = await identities.purposeKey(name, Purpose.credentials);
    const issuer: CredentialIssuer = {
      identity: local.identity,
      credentialKeyId: keyId,
      credentialKeyAttestation: verified.attestation,
    };
    return { identity: local.identity, primaryKeyId: local.primaryKeyId, issuer };
  };
  const authority = await make('authority');
  const dana = await make('dana');
  const gatewayParty = await make('gateway');
  const authorities = new Map([[authority.identity.identifier, authority.identity]]);
  const denySet = freshDenySet(now, 3600);
  const verifier = new ChainVerifier({ authorities, denySet });
  const constraints = (...texts: string[]) => new Map(texts.map((t) => parseConstraint(t)));
  const rootAttributes = constraintsToAttributes(
    constraints(
      'tools=read_text_file,list_directory,write_file,list_allowed_directories,echo,hang,crash,garbage,refund,refunds_done,remote_shout',
      'human=true',
    ),
  );
  if (options.refundBudget !== undefined)
    rootAttributes.set(
      'mandate.budget:refund#amount',
      encodeConstraintValue({ kind: 'max', limit: options.refundBudget }),
    );
  const rootCredential = await issueCredential(
    vault,
    authority.issuer,
    dana.identity,
    rootAttributes,
    {
      nowSeconds: now,
      ttlSeconds: 3600,
    },
  );
  const danaChainBytes = chainFromCredential(rootCredential, dana.identity);
  const danaChain = verifier.verify(danaChainBytes, {
    nowSeconds: now,
    presenter: dana.identity.identifier,
  });
  /** An agent dana delegated to, with `grants` (default: fs tools, reads under `allowed/`). */
  const agent = async (name: string, grants?: readonly string[]) => {
    const party = await make(name);
    const chain = await delegate(vault, dana.issuer, danaChain, {
      nowSeconds: now,
      subject: party.identity,
      constraints: constraints(
        ...(grants ?? [
          'tools=read_text_file,list_directory,write_file,list_allowed_directories',
          `read_text_file#path=${dir}/allowed/**`,
        ]),
      ),
      purpose: `${name} session`,
      ttlSeconds: 1800,
    });
    return { ...party, chain };
  };

  const config = parseGatewayConfig({
    mcpServers: {
      fs: { command: process.execPath, args: [FILESYSTEM_SERVER, dir] },
      ...options.servers,
    },
    mandate: { restart: { initialDelayMs: 50, maxDelayMs: 400 }, ...options.mandate },
  });
  const bundles = new HeldBundleSource();
  const gate = new Gate({ bundles, denySet });
  const approvals = new MemoryApprovalRepository();
  const budgets = new MemoryBudgetRepository();
  const logRepository = new MemoryAuditLogRepository();
  const log = await AuditLog.open({ repository: logRepository, origin: 'example.com/mcp/test' });
  const point = await EnforcementPoint.open({
    enforcement: { gate, bundles, approvals, budgets, denySet, authorities },
    chains: verifier,
    authorities,
    log,
    trail: new MemoryAuditTrailRepository(),
    signer: new EnforcerSigner(vault, gatewayParty.issuer),
  });
  const gateway = await McpGateway.start({
    config,
    gate,
    point,
    bundles,
    clock,
    refreshIntervalMs: 0,
  });
  let version = 0;
  /** Signs (here: holds) a bundle of `policies` over `catalog` (default: the gateway's now). */
  const publish = (policies = options.policies ?? FS_POLICIES, catalog?: ToolCatalog) => {
    const bound = catalog ?? gateway.catalog();
    const schema = mandateCedarSchema({ tools: bound.tools.map((t) => t.descriptor) });
    version++;
    const bundle: ActiveBundle = {
      version,
      hash: toHex(sha256(new TextEncoder().encode(`${version}\n${policies}\n${bound.digest}`))),
      issuer: authority.identity.identifier,
      createdAt: now,
      policySet: compilePolicySet({ policies, schema }),
      catalog: bound,
    };
    bundles.bundle = bundle;
    return bundle;
  };
  publish();

  const network = new MemoryNetwork();
  const gwRouter = new Router();
  const gwTransport = new MemoryTransport(gwRouter, network);
  gwTransport.listen('gateway');
  const mcp = new McpChannelListener(gwRouter, {
    onSession: (transport) => {
      void gateway.connect(transport);
    },
  });
  const gwChannel = await prepareChannelIdentity(vault, {
    identity: gatewayParty.identity,
    primaryKeyId: gatewayParty.primaryKeyId,
    nowSeconds: now,
  });
  const listener = new SecureChannelListener(gwRouter, {
    ...gwChannel,
    // Any verified identity: the gateway decides per message from the chains that still stand, so
    // a call after a revocation is answered (refused) rather than dropped by the channel.
    verify: { authorities, trustPolicy: TrustPolicies.anyIdentity(), denySet },
    clock,
    deliverTo: [mcp.address],
    onEvent: (event) => {
      if (event.type === 'closed') mcp.channelClosed(event.address);
    },
  });
  gwRouter.allowFromAnyConnection('api');

  const cleanups: (() => Promise<unknown>)[] = [];
  /** Connects an agent with the SDK Client over a secure channel (signing its calls). */
  const connect = async (
    party: Awaited<ReturnType<typeof agent>>,
    connectOptions: {
      sign?: boolean;
      chain?: Uint8Array;
      /** The route to the gateway's channel listener (default: straight to it, `[gateway, api]`). */
      route?: (transport: MemoryTransport) => Route;
    } = {},
  ): Promise<{ client: Client; transport: ChannelClientTransport }> => {
    const router = new Router();
    const transport = new MemoryTransport(router, network);
    cleanups.push(() => transport.close());
    const chain = connectOptions.chain ?? party.chain;
    const me = await prepareChannelIdentity(vault, {
      identity: party.identity,
      primaryKeyId: party.primaryKeyId,
      chains: [chain],
      nowSeconds: now,
    });
    const mcpTransport = await connectMcpChannel(
      router,
      connectOptions.route?.(transport) ?? [
        localAddress(transport.connect('gateway')),
        localAddress('api'),
      ],
      {
        ...me,
        verify: {
          authorities,
          trustPolicy: TrustPolicies.identifier(gatewayParty.identity.identifier),
        },
        clock,
      },
      connectOptions.sign === false
        ? {}
        : { signing: { vault, issuer: party.issuer, chain, clock } },
    );
    const client = new Client({ name: 'test-agent', version: '1' });
    await client.connect(mcpTransport);
    cleanups.push(() => client.close());
    return { client, transport: mcpTransport };
  };

  const close = async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
    await mcp.close();
    await listener.close();
    await gateway.close();
    await gwTransport.close();
    await log.close();
  };
  return {
    dir,
    network,
    clock,
    now,
    vault,
    authority,
    dana,
    danaChain,
    gatewayParty,
    gwRouter,
    gwTransport,
    authorities,
    denySet,
    verifier,
    approvals,
    budgets,
    log,
    logRepository,
    point,
    gate,
    gateway,
    bundles,
    mcp,
    listener,
    publish,
    agent,
    connect,
    close,
  };
}
