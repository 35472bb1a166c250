// The MCP gateway as a node service (`gateway start`; docs/spec/mcp.md, docs/spec/node.md): the
// upstreams of its `mcpServers` file, gates 1 and 2 over the node's policy bundles and deny-set,
// the enforcement point countersigning every decision into the home's audit log (checkpointed
// while it grows), gate 3 for leased upstreams, and the MCP worker behind the node's listener.
import { isMandateError, type Logger } from '../core/index.js';
import { invalid, notFound } from '../core/internal.js';
import { ChainVerifier } from '../credentials/index.js';
import { Gate } from '../gates/index.js';
import { AuditLog, EnforcerSigner } from '../audit/index.js';
import { Broker } from '../broker/index.js';
import {
  GatewayLeaseProvider,
  MCP_SERVICE_ADDRESS,
  McpChannelListener,
  McpGateway,
  parseGatewayConfigText,
  type GatewayConfig,
} from '../mcp/index.js';
import { BrokerTimers } from './broker-timers.js';
import { openHomeEnforcementPoint } from './enforcement-point.js';
import { credentialIssuerOf, type Home } from './home.js';
import { checkpointHomeLog, DEFAULT_AUTHORITY, homeAuditOrigin } from './home-audit.js';
import { leaseRecordBody } from './lease-audit-sink.js';
import type { PartHealth } from './lifecycle.js';
import { readRegularFile, type RegularFileRead } from './regular-file.js';
import { nodeBundleSource } from './store-bundle-source.js';
import { lockEnforcement } from './home-lock.js';
import { ServiceParts, type NodeServiceContext, type RunningService } from './service.js';

/** How long the gateway's bundle source may go without reading the store before it fails closed. */
const GATEWAY_BUNDLE_STALENESS_SECONDS = 10;
/** How often the gateway signs a checkpoint of its log while the log grows, by default. */
export const DEFAULT_GATEWAY_CHECKPOINT_INTERVAL_SECONDS = 10;
/** Largest gateway configuration file read (parseGatewayConfigText bounds its characters too). */
const MAX_GATEWAY_CONFIG_BYTES = 2 * 1024 * 1024;
/** setInterval holds at most 2^31 - 1 ms (about 24 days). */
const MAX_INTERVAL_MS = 2 ** 31 - 1;

/** The listener address of the gateway service: its MCP worker. */
export const GATEWAY_SERVICE_ADDRESSES: readonly string[] = [MCP_SERVICE_ADDRESS];

/**
 * The gateway configuration file (`mcpServers` and `mandate` keys) of `gateway.config`. A missing
 * file is `ERR_NODE_CONFIG_NOT_FOUND`; one that does not parse, `ERR_MCP_CONFIG_INVALID`.
 */
export function readGatewayConfigFile(file: string): GatewayConfig {
  let read: RegularFileRead;
  try {
    read = readRegularFile(file, MAX_GATEWAY_CONFIG_BYTES);
  } catch {
    throw invalid('ERR_NODE_CONFIG_INVALID', `gateway configuration \`${file}\` cannot be read`);
  }
  if ('refused' in read)
    switch (read.refused) {
      case 'missing':
        throw notFound(
          'ERR_NODE_CONFIG_NOT_FOUND',
          `no gateway configuration \`${file}\` (\`gateway.config\`)`,
        );
      case 'not_regular':
        throw invalid(
          'ERR_NODE_CONFIG_INVALID',
          `gateway configuration \`${file}\` (\`gateway.config\`) is not a regular file`,
        );
      case 'too_large':
        throw invalid(
          'ERR_MCP_CONFIG_INVALID',
          `gateway configuration \`${file}\` is larger than ${MAX_GATEWAY_CONFIG_BYTES} bytes`,
        );
    }
  const bytes = read.bytes;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw invalid('ERR_MCP_CONFIG_INVALID', `gateway configuration \`${file}\` is not UTF-8 text`);
  }
  return parseGatewayConfigText(text);
}

/**
 * Signs a checkpoint of the home's log (as `mandate audit checkpoint` does, with the authority's
 * key) every `everyMs` when it grew, and once more from `stop`: records past the latest
 * checkpoint are the only ones an export can drop unnoticed, so the gateway keeps that window
 * short. A failure is logged, never fatal (the log itself is durable).
 */
function checkpointWhileGrowing(
  home: Home,
  log: AuditLog,
  everyMs: number,
  logger: Logger,
): { stop(): Promise<void> } {
  let running: Promise<void> = Promise.resolve();
  const sign = (): Promise<void> =>
    (running = running.then(async () => {
      try {
        const treeSize = await checkpointHomeLog(home, log);
        if (treeSize !== undefined) logger.info('audit checkpoint signed', { treeSize });
      } catch (error) {
        logger.warn('audit checkpoint not signed', {
          reason: isMandateError(error) ? error.code : 'error',
        });
      }
    }));
  const timer = setInterval(() => void sign(), Math.min(everyMs, MAX_INTERVAL_MS));
  timer.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      await sign();
    },
  };
}

/**
 * The gateway service of a node whose identity is the gateway's (its channels and its
 * countersignatures). Any identity that proves itself may open a session (the definition says so):
 * the gateway decides per message from the chains that still stand, so a call after a revocation
 * is refused, not silently dropped. Policy bundles come from the home's store (or the authority's
 * bus with `authority`); a revocation committed on this home before a call is seen by that call.
 * Upstreams with `mandate.lease` get their credentials from a broker on this home — `proxy` leases
 * decided with each agent's own chain, stored with the home's leases, recorded in the audit log by
 * the gateway's identity, ended by the deny-set cascade and expiry on the broker's timers.
 *
 * Ready while every upstream is up. Its stop ends the sessions, closes the upstreams, signs a last
 * checkpoint and closes the log.
 */
export async function startGateway(node: NodeServiceContext): Promise<RunningService> {
  const { config, home, router, denySet, clock, logger } = node;
  const file = config.gateway?.config;
  if (file === undefined)
    throw invalid(
      'ERR_NODE_CONFIG_INVALID',
      'node config: `gateway.config` is required with the `gateway` service',
    );
  const gatewayConfig = readGatewayConfigFile(file);
  const everyMs =
    (config.gateway?.checkpointIntervalSeconds ?? DEFAULT_GATEWAY_CHECKPOINT_INTERVAL_SECONDS) *
    1000;
  // One enforcement point per home (node/home-lock.ts): taken before anything opens.
  const lock = lockEnforcement(home.dir);
  const parts = new ServiceParts('gateway', logger);
  parts.add(() => {
    lock.release();
  });
  let gateway: McpGateway;
  try {
    const authorities = await home.trustedAuthorities();
    const followed = await nodeBundleSource(node, GATEWAY_BUNDLE_STALENESS_SECONDS);
    parts.add(() => followed.stop());
    const bundles = followed.bundles;
    const gate = new Gate({ bundles, denySet });
    const authority = await home.identities.get(DEFAULT_AUTHORITY);
    const log = await AuditLog.open({
      repository: home.store.auditLog,
      origin: homeAuditOrigin(authority.identity.identifier),
      clock,
    });
    parts.add(() => log.close());
    const checkpoints = checkpointWhileGrowing(home, log, everyMs, logger);
    parts.add(() => checkpoints.stop());
    const point = await openHomeEnforcementPoint(home, {
      gate,
      bundles,
      denySet,
      chains: new ChainVerifier({ authorities, denySet }),
      authorities,
      log,
      signer: new EnforcerSigner(home.vault, await credentialIssuerOf(home, config.identity)),
      catchUp: () => node.catchUpDenySet(),
    });
    let broker: Broker | undefined;
    if (gatewayConfig.upstreams.some((u) => u.mandate.lease !== undefined)) {
      broker = new Broker({
        leases: home.store.brokerLeases,
        decide: (chain, ask, o) => gate.decideLease(chain, ask, o),
        providers: [new GatewayLeaseProvider({ secrets: home.secrets })],
        audit: {
          record: async (event) => {
            await point.recordLease(leaseRecordBody(event));
          },
        },
        clock,
        logger,
      });
      const timers = await BrokerTimers.start({ broker, denySet, logger });
      parts.add(() => timers.stop());
    }
    gateway = await McpGateway.start({
      config: gatewayConfig,
      gate,
      point,
      bundles,
      clock,
      logger,
      ...(broker === undefined ? {} : { leases: { broker, secrets: home.secrets } }),
    });
    const started = gateway;
    parts.add(() => started.close());
    const mcp = new McpChannelListener(router, {
      maxMessageBytes: gatewayConfig.maxMessageBytes,
      logger,
      onSession: (session) => {
        started.connect(session).catch((error: unknown) => {
          logger.warn('mcp session failed', {
            reason: isMandateError(error) ? error.code : 'error',
          });
        });
      },
    });
    node.onChannelClosed((address) => {
      mcp.channelClosed(address);
    });
    parts.add(() => mcp.close());
  } catch (error) {
    await parts.stopAll();
    throw error;
  }
  const upstreams = gateway.upstreams;
  return {
    stop: parts.stopAll,
    health: (): PartHealth => {
      const down = upstreams.filter((u) => u.state !== 'up').map((u) => u.name);
      return down.length === 0
        ? { ready: true }
        : { ready: false, reason: `upstreams not up: ${down.join(',')}` };
    },
    listening: { upstreams: upstreams.map((u) => u.name).join(',') },
  };
}
