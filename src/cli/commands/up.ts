import type { Command } from 'commander';
import { mkdirSync } from 'node:fs';
import {
  loadNodeConfig,
  NodeServiceName,
  type BrokerNodeOptions,
  type NodeConfig,
  type RunningNode,
} from '../../node/index.js';
import type { Logger } from '../../core/index.js';
import {
  assertAdminIdentities,
  lockDemo,
  lockNodeHome,
  watchSignals,
  type HomeLock,
} from '../../node/internal.js';
import type { CliContext } from '../context.js';
import { openHome as openHomeAt, type Home } from '../home.js';
import { quietableLogger, stderrLogger } from '../logging.js';
import { DEFAULT_AUTHORITY } from '../chains.js';
import { ensureAuthority } from './authority.js';
import { TRUST_SCOPE_ALL } from '../../credentials/index.js';
import { invalid } from '../../core/internal.js';
import { brokerNodeOptions } from './broker.js';
import { postgresAdminUrl } from './broker-postgres.js';
import { announceDashboard, startNodeWithDashboard } from './dashboard.js';
import { demoOptions, printDemoSummary, runDemoScenario, type DemoScale } from './demo.js';
import {
  runNodeSwarm,
  SwarmInterrupted,
  writeNodeGatewayConfig,
  type NodeSwarmSummary,
} from './demo-node.js';

// `up`: everything on one machine — the one-time set-up of a fresh home, then one node composing
// the services below from one config (docs/spec/node.md §5), its dashboard address on stdout.

/**
 * The services `up` composes, in start order (stopped in reverse). A service the node gains is
 * one more name here (and, if it runs only when configured, one entry in {@link WHEN_CONFIGURED}).
 */
export const UP_SERVICES: readonly NodeServiceName[] = [
  NodeServiceName.authority,
  NodeServiceName.relay,
  NodeServiceName.broker,
  NodeServiceName.gateway,
  NodeServiceName.admin,
];

/** The services of {@link UP_SERVICES} that run only when their config section is given. */
const WHEN_CONFIGURED: Partial<Record<NodeServiceName, (config: NodeConfig) => boolean>> = {
  [NodeServiceName.broker]: (config) => Object.keys(config.broker).length > 0,
  [NodeServiceName.gateway]: (config) => config.gateway !== undefined,
};

/** `up`'s defaults, under the config file: the authority it sets up, on a free loopback port. */
const UP_DEFAULTS = {
  identity: DEFAULT_AUTHORITY,
  listen: '127.0.0.1:0',
} as const;

export interface UpOptions {
  config?: string;
  listen?: string;
  exit?: boolean;
  demo?: boolean;
  agents: string;
  rotate: string;
}

export function registerUpCommand(program: Command, context: () => CliContext): void {
  program
    .command('up')
    .description(
      'set up this home on first use (an authority) and run one node with the authority, relay and admin services (and the broker and the MCP gateway when the config has their sections) until SIGINT or SIGTERM; prints `dashboard: URL` with a one-time login token (logs on stderr)',
    )
    .option('--config <file>', 'a JSON node config (see docs/spec/node.md); flags win over it')
    .option(
      '--listen <host:port>',
      'where the node listens for secure channels (default 127.0.0.1:0, a free port)',
    )
    .option('--exit', 'stop the node right after printing the dashboard address')
    .option(
      '--demo',
      "first run the swarm scenario (`mandate demo`) in <home>/demo, then serve that home with the MCP gateway in front of the scenario's servers while a swarm of --agents agents enrolls with tickets and calls tools through the node (step 19); its agents, delegation chains and signed trail on the dashboard",
    )
    .option(
      '--agents <n>',
      'with --demo: agent identities to provision, and agents in the swarm through the node',
      '5000',
    )
    .option('--rotate <n>', 'with --demo: how many of them rotate their primary key', '250')
    .action((opts: UpOptions) => runUp(context(), opts));
}

/**
 * `config` with the demo's gateway (`file`, written by {@link writeNodeGatewayConfig}; it signs
 * a checkpoint every second while its log grows) and, unless the config has a broker section, a
 * broker whose JWKS is served on a free loopback port; both among its services.
 */
function withDemoServices(config: NodeConfig, file: string): NodeConfig {
  const gateway = { config: file, checkpointIntervalSeconds: 1 };
  const broker = Object.keys(config.broker).length > 0 ? config.broker : { http: '127.0.0.1:0' };
  const withBoth = { ...config, gateway, broker };
  return { ...withBoth, services: upServices(withBoth) };
}

/** The services `up` runs under `config`: {@link UP_SERVICES}, less those not configured. */
export function upServices(config: NodeConfig): NodeServiceName[] {
  return UP_SERVICES.filter((name) => WHEN_CONFIGURED[name]?.(config) ?? true);
}

/** `up`: {@link startUp}, then until a signal (or at once with `--exit`), then stops. */
export async function runUp(ctx: CliContext, opts: UpOptions): Promise<void> {
  const { node, logger, interrupted, signal } = await startUp(ctx, opts);
  if (interrupted !== undefined) logger.info('stopping', { signal: interrupted });
  else if (opts.exit === true) logger.info('stopping', { reason: '--exit' });
  else logger.info('stopping', { signal: await signal });
  await node.stop();
  logger.info('stopped');
}

/** What {@link startUp} started; `interrupted` names the signal that cut `--demo`'s step 19 short. */
export interface StartedUp {
  readonly node: RunningNode;
  readonly logger: Logger;
  readonly interrupted?: string;
  /**
   * The first SIGINT or SIGTERM since the node started: listened for from then on without a gap
   * (a gap between two listeners lets a signal take its default action, killing the process
   * with the node running). The listening ends with the node's `stop`.
   */
  readonly signal: Promise<string>;
}

/**
 * What `up` does before it waits: the config, the scenario with `--demo`, the one-time set-up
 * and the node with every service and its dashboard line. The caller stops the node (at once
 * when `interrupted`: no dashboard line was printed).
 */
export async function startUp(ctx: CliContext, opts: UpOptions): Promise<StartedUp> {
  // The whole config first: a bad one is refused before the home is touched or a port bound.
  const loaded = loadNodeConfig({
    defaults: UP_DEFAULTS,
    ...(opts.config === undefined ? {} : { file: opts.config }),
    env: process.env,
    flags: {
      ...(opts.listen === undefined ? {} : { listen: opts.listen }),
      // Those that always run; the config's sections add the others (upServices).
      services: UP_SERVICES.filter((name) => WHEN_CONFIGURED[name] === undefined),
    },
    flagNames: { listen: '--listen' },
  });
  const config: NodeConfig = { ...loaded, services: upServices(loaded) };
  // The demo's flags too, before anything is touched.
  const demo = opts.demo === true ? demoOptions(opts) : undefined;
  // One node per home, taken before anything is written (the demo's home lies inside it), and
  // held until the node has stopped; with --demo the home it serves is held too, once made.
  mkdirSync(ctx.homeDir, { recursive: true, mode: 0o700 });
  const locks: HomeLock[] = [lockNodeHome(ctx.homeDir)];
  // With --demo, also the run that recreates <home>/demo, from before the scenario to the stop.
  if (demo !== undefined)
    try {
      locks.push(lockDemo(ctx.homeDir));
    } catch (error) {
      locks[0]!.release();
      throw error;
    }
  const release = (): void => {
    for (const lock of locks.splice(0).reverse()) lock.release();
  };
  let served: Served;
  try {
    served = await serve(ctx, demo, config, (lock) => locks.push(lock));
  } catch (error) {
    release();
    throw error;
  }
  const { node, logger, interrupted, signals } = served;
  return {
    logger,
    signal: signals.signal,
    ...(interrupted === undefined ? {} : { interrupted }),
    // Its stop ends the listening for signals, then releases the home's locks.
    node: {
      listening: node.listening,
      healthUrl: node.healthUrl,
      dashboardUrl: () => node.dashboardUrl(),
      health: () => node.health(),
      stop: async () => {
        signals.dispose();
        try {
          await node.stop();
        } finally {
          release();
        }
      },
    },
  };
}

/** What {@link serve} started: the node, and the signals listened for since its start. */
interface Served {
  readonly node: RunningNode;
  readonly logger: Logger;
  readonly signals: ReturnType<typeof watchSignals>;
  readonly interrupted?: string;
}

async function serve(
  ctx: CliContext,
  demo: DemoScale | undefined,
  upConfig: NodeConfig,
  hold: (lock: HomeLock) => void,
): Promise<Served> {
  let config = upConfig;
  // With --demo: the scenario first, in <home>/demo (its checks throw on any failure); the node
  // then serves that home, its gateway in front of the scenario's MCP servers unless the config
  // names its own, and the swarm works through it (step 19) before the summary is printed.
  // The demo home's node lock, taken as the scenario makes the folder, is held until the stop.
  const scenario = demo === undefined ? undefined : await runDemoScenario(ctx, demo, hold);
  const demoHome = scenario?.home;
  const swarmGateway = demoHome !== undefined && config.gateway === undefined;
  if (swarmGateway) config = withDemoServices(config, writeNodeGatewayConfig(demoHome));
  const warn = (line: string): void => {
    process.stderr.write(`${line}\n`);
  };
  const broker: BrokerNodeOptions | undefined = config.services.includes(NodeServiceName.broker)
    ? brokerNodeOptions(config, postgresAdminUrl({}, process.env, warn), warn)
    : undefined;
  const logger = stderrLogger();
  // The node's own lines: held back while the swarm works through it (step 19), counted.
  const nodeLog = quietableLogger(logger);
  // The one-time set-up, in the node's own open of the home: on a fresh home, the authority
  // (`authority init`'s); on a home set up before, nothing changes.
  const openHome = async (): Promise<Home> => {
    const home = await (demoHome === undefined
      ? ctx.openHome()
      : openHomeAt(demoHome, { clock: ctx.clock }));
    try {
      // The node acts as the authority (`identity`); the admin service's checkpoint signer
      // (`admin.authority`) is set up too when the config names another.
      const keys = [
        ['identity', config.identity],
        ['admin.authority', config.admin.authority],
      ] as const;
      const anchors = await home.trustAnchors.listTrustAnchors();
      // Set up before: it trusts an authority for every scope already.
      const authorities = new Set<string>(
        anchors.filter((a) => a.scope === TRUST_SCOPE_ALL).map((a) => a.identifier),
      );
      if (authorities.size > 0) {
        await assertAuthorities(home, authorities, keys);
        return home;
      }
      // Everything checked before anything is written: a refused set-up leaves no trust behind.
      await assertFresh(home, anchors.length, keys);
      // The operator: one the home has or the set-up makes (the admin service would refuse any
      // other only after the set-up had written the authority).
      if (config.services.includes('admin'))
        await assertAdminIdentities(home, config, [config.identity, config.admin.authority]);
      for (const name of new Set([config.identity, config.admin.authority])) {
        const { identity, created } = await ensureAuthority(home, name, ctx.clock.nowSeconds());
        if (created)
          logger.info('up: created the authority', { name, identifier: identity.identifier });
      }
    } catch (error) {
      home.close();
      throw error;
    }
    return home;
  };
  // From the node's start to its dashboard line, a signal is the caller's to act on: the node,
  // once started, is stopped cleanly (its last checkpoint signed) rather than the process killed.
  const signals = watchSignals();
  let signalled: string | undefined;
  void signals.signal.then((name) => {
    signalled = name;
  });
  let node: RunningNode;
  try {
    node = await startNodeWithDashboard(ctx, config, nodeLog.logger, {
      openHome,
      ...(broker === undefined ? {} : { broker }),
      announce: false,
    });
  } catch (error) {
    signals.dispose();
    throw error;
  }
  const started = (interrupted?: string): Served => ({
    node,
    logger,
    signals,
    ...(interrupted === undefined ? {} : { interrupted }),
  });
  try {
    if (signalled !== undefined) return started(signalled);
    if (scenario !== undefined && demo !== undefined) {
      const route = node.listening.route;
      const say = (text: string): void => {
        if (!ctx.out.json) ctx.out.note(text);
      };
      let swarm: NodeSwarmSummary | undefined;
      if (swarmGateway && route !== undefined) {
        nodeLog.quiet(true);
        // A signal stops the swarm, then the node.
        try {
          swarm = await runNodeSwarm({
            demoDir: scenario.home,
            route,
            agents: demo.agents,
            clock: ctx.clock,
            say,
            showProgress: !ctx.out.json,
            interrupt: signals.signal,
          });
        } catch (error) {
          if (!(error instanceof SwarmInterrupted)) throw error;
          say(`    step 19 interrupted by ${error.signal}: stopping the node`);
          return started(error.signal);
        } finally {
          nodeLog.quiet(false);
        }
      } else
        say(
          '19. skipped: the config names its own gateway (or a wildcard listen address), so the swarm does not run through the node',
        );
      printDemoSummary(ctx, swarm === undefined ? scenario : { ...scenario, node: swarm });
    }
    if (signalled !== undefined) return started(signalled);
    announceDashboard(ctx, node);
  } catch (error) {
    signals.dispose();
    await node.stop().catch(() => undefined);
    throw error;
  }
  logger.info('up', {
    ...(demoHome === undefined ? {} : { home: demoHome }),
    services: config.services.join(','),
    listening: node.listening.address,
  });
  return started();
}

/**
 * On a home not set up before, `up` makes each of `keys` a new authority identity: none of them
 * may name an identity the home has already (an agent, a member, an imported history: trusting it
 * for every scope would make it an issuer), and the home may trust no authority at all yet (a
 * member's home trusts the authority it enrolled with, for that member only: `up` does not turn
 * it into an authority of its own).
 */
async function assertFresh(
  home: Home,
  anchors: number,
  keys: readonly (readonly [key: string, name: string])[],
): Promise<void> {
  if (anchors > 0)
    throw invalid(
      'ERR_NODE_CONFIG_INVALID',
      `node config: this home trusts an authority for some identities only (a member's home, enrolled elsewhere): \`up\` sets up its authority (\`identity\`) only on a fresh home; use another --home`,
    );
  for (const [key, name] of keys)
    if ((await home.identities.find(name)) !== undefined)
      throw invalid(
        'ERR_NODE_CONFIG_INVALID',
        `node config: \`${key}\` names \`${name}\`, an identity this home has that is not its authority: \`up\` makes a new one only under a name not in use; check the name, or make it one first with \`mandate authority init --name ${name}\``,
      );
}

/**
 * On a home set up before, `up` changes nothing: each of `keys` (`identity`, `admin.authority`)
 * must name a local identity among `authorities`, those the home trusts for every scope. A typo in
 * `MANDATE_IDENTITY` must not quietly create, and trust, one more issuer (found by an outside
 * attack); nor may it make an agent of the home an authority.
 */
async function assertAuthorities(
  home: Home,
  authorities: ReadonlySet<string>,
  keys: readonly (readonly [key: string, name: string])[],
): Promise<void> {
  for (const [key, name] of keys) {
    const known = await home.identities.find(name);
    if (known?.primaryKeyId != null && authorities.has(known.identity.identifier)) continue;
    throw invalid(
      'ERR_NODE_CONFIG_INVALID',
      `node config: \`${key}\` names \`${name}\`, which is not an authority of this home (one with its key here, trusted for every scope): the home was set up before, and \`up\` sets up only a fresh one; check the name, or make it one with \`mandate authority init --name ${name}\``,
    );
  }
}
